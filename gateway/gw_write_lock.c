/*
 * gw_write_lock: the process-wide lock around the gateway's hot write transactions (see gw.h).
 * Work side (pool threads) only. Process-wide on purpose: it orders this process's writers to
 * one SQLite file, whichever gateway instance they belong to.
 */
#include "gw.h"

#include <pthread.h>

static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

void gw_write_lock(void)
{
  pthread_mutex_lock(&write_mu);
}

void gw_write_unlock(void)
{
  pthread_mutex_unlock(&write_mu);
}
