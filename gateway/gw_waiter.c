/*
 * gw_waiter: the list of requests sleeping on a uv timer (app->waiters), so that shutdown can
 * wake each one at once instead of waiting for its timer.
 *
 * A doubly linked list (utlist's DL) threaded through the gw_waiter each sleeping request embeds;
 * loop thread only. Invariant: a waiter is on the list exactly while its request sleeps; its owner
 * unlinks it (gw_waiter_remove) when woken, and gw_waiter_remove on an unlinked waiter does
 * nothing.
 */
#include "gw.h"

#include <utlist.h>

void gw_waiter_add(gw_app *app, gw_waiter *w)
{
  DL_PREPEND(app->waiters, w);
}

void gw_waiter_remove(gw_app *app, gw_waiter *w)
{
  if (!w->prev) /* not on the list: utlist keeps prev set on every member (the head's is the tail)
                 */
    return;
  DL_DELETE(app->waiters, w);
  w->next = w->prev = NULL;
}
