/*
 * gw_waiter: the list of requests sleeping on a uv timer (app->waiters), so that shutdown can
 * wake each one at once instead of waiting for its timer.
 *
 * A doubly linked list threaded through the gw_waiter each sleeping request embeds; loop thread
 * only. Invariant: a waiter is on the list exactly while its request sleeps; its owner unlinks
 * it (gw_waiter_remove) when woken, and gw_waiter_remove on an unlinked waiter does nothing.
 */
#include "gw.h"

void gw_waiter_add(gw_app *app, gw_waiter *w)
{
  w->prev = NULL;
  w->next = app->waiters;
  if (app->waiters)
    app->waiters->prev = w;
  app->waiters = w;
}

void gw_waiter_remove(gw_app *app, gw_waiter *w)
{
  if (w->prev)
    w->prev->next = w->next;
  else if (app->waiters == w)
    app->waiters = w->next;
  if (w->next)
    w->next->prev = w->prev;
  w->next = w->prev = NULL;
}
