/*
 * wk_sweep: the worker's periodic review expiry (README "Reviews (HITL)").
 *
 * Every SWEEP_MS a timer runs tg_store_reviews_expire in a tg_dbq job (never two at once):
 * pending reviews past expires_at whose run is parked become 'expired' and their runs 'failed'
 * (review_expired); pending reviews of runs that ended otherwise become 'canceled'. Each expiry
 * is logged. Several workers may sweep at once: the statements only move 'pending' rows, so a
 * review expires once. The sweep is freed once its timer is closed and no job is in flight.
 */
#include "wk.h"

#include "tg_clock.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_store_reviews.h"

#include <stdlib.h>

#define SWEEP_MS 2000
#define SWEEP_BATCH 100

struct wk_sweep {
  wk_worker *w;
  uv_timer_t timer;
  int timer_open;
  int job;
  int stopped;
  json_t *expired; /* the job's result */
};

static void sweep_free_maybe(wk_sweep *s)
{
  if (s->stopped && !s->job && !s->timer_open) {
    json_decref(s->expired);
    free(s);
  }
}

static int sweep_work(tg_db *db, void *arg)
{
  wk_sweep *s = arg;
  return tg_store_reviews_expire(db, tg_now_ms(), SWEEP_BATCH, &s->expired);
}

static void sweep_done(void *arg, int status)
{
  wk_sweep *s = arg;
  size_t i;
  json_t *row;
  s->job = 0;
  if (status != 0 && status != TG_ECANCELED)
    tg_warn("review_sweep_failed", "{s:s}", "error", tg_errname(status));
  json_array_foreach(s->expired, i, row)
  {
    tg_info("review_expired", "{s:O, s:O, s:O, s:O}", "review_id", json_object_get(row, "id"),
            "run_id", json_object_get(row, "run_id"), "node_id", json_object_get(row, "node_id"),
            "user_id", json_object_get(row, "user_id"));
  }
  json_decref(s->expired);
  s->expired = NULL;
  sweep_free_maybe(s);
}

static void on_sweep(uv_timer_t *t)
{
  wk_sweep *s = t->data;
  if (s->job || s->stopped)
    return;
  if (tg_dbq_submit(s->w->dbq, sweep_work, sweep_done, s) == 0)
    s->job = 1;
}

int wk_sweep_start(wk_worker *w)
{
  wk_sweep *s = calloc(1, sizeof *s);
  if (!s)
    return TG_ENOMEM;
  s->w = w;
  uv_timer_init(w->loop, &s->timer);
  s->timer.data = s;
  s->timer_open = 1;
  uv_timer_start(&s->timer, on_sweep, SWEEP_MS, SWEEP_MS);
  w->sweep = s;
  return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
  wk_sweep *s = h->data;
  s->timer_open = 0;
  sweep_free_maybe(s);
}

void wk_sweep_stop(wk_worker *w)
{
  wk_sweep *s = w->sweep;
  if (!s)
    return;
  w->sweep = NULL;
  s->stopped = 1;
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
