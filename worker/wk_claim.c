/*
 * wk_claim: the lease side of a run: atomic claim, heartbeat, and the fenced writes that end a
 * run (finish, release), plus the run object's lifetime.
 *
 * Claim is one IMMEDIATE transaction with UPDATE ... RETURNING, so two workers can never take
 * the same row; an expired lease ('running' with lease_expires_at < now) is claimable again and
 * the claim bumps attempt. Every later write names (id, claimed_by, attempt, status='running'):
 * after another worker reclaimed the run, or the gateway canceled it, such a write matches no
 * row and this worker stops the run without writing more.
 *
 * The claim job also builds the run's graph and reads its node journal from earlier attempts
 * (tg_store_nodes_journal) for the engine. The final write of a run carries its run_finished
 * event in the same transaction.
 *
 * Lifetime: r->pending counts async operations in flight on behalf of the run (dbq jobs, the
 * provider check, nodes executing). Their completions decrement it first and, if the run has
 * ended meanwhile, only try to free it. A run is freed when it has ended, nothing is pending and
 * the heartbeat timer is closed.
 */
#include "wk.h"

#include "tg_err.h"
#include "tg_log.h"
#include "tg_clock.h"
#include "tg_store_nodes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

tg_run_lease wk_run_lease(const wk_run *r)
{
  return (tg_run_lease){.run_id = r->id, .worker_id = r->w->cfg.worker_id, .attempt = r->attempt};
}

/* ---- run lifetime ---- */

static void run_free(wk_run *r)
{
  wk_worker *w = r->w;
  wk_run **pp;
  for (pp = &w->runs; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  free(r->id);
  free(r->workflow_id);
  free(r->user_id);
  json_decref(r->inputs);
  json_decref(r->metadata);
  json_decref(r->definition);
  json_decref(r->accounts);
  wk_engine_free(r);
  tg_graph_free(r->graph);
  json_decref(r->journal);
  wk_secrets_free(r);
  free(r);
  w->in_flight--;
  wk_on_run_freed(w);
}

static void maybe_free(wk_run *r)
{
  if (r->ended && r->pending == 0 && r->timers_open == 0)
    run_free(r);
}

static void on_timer_closed(uv_handle_t *h)
{
  wk_run *r = h->data;
  r->timers_open--;
  maybe_free(r);
}

void wk_run_end(wk_run *r)
{
  if (r->ended)
    return;
  r->ended = 1; /* nodes still in flight report later and are dropped (wk_engine.c) */
  uv_timer_stop(&r->hb);
  uv_timer_stop(&r->dl);
  uv_close((uv_handle_t *)&r->hb, on_timer_closed);
  uv_close((uv_handle_t *)&r->dl, on_timer_closed);
}

int wk_run_op_done(wk_run *r)
{
  r->pending--;
  if (r->ended) {
    maybe_free(r);
    return 1;
  }
  return 0;
}

int wk_run_submit(wk_run *r, tg_dbq_work_fn work, tg_dbq_done_fn done, void *job)
{
  int rc = tg_dbq_submit(r->w->dbq, work, done, job);
  if (rc == 0)
    r->pending++;
  return rc;
}

int wk_run_should_stop(wk_run *r)
{
  if (r->ended)
    return 1;
  if (r->lost || r->aborted) {
    tg_info("run_stopped", "{s:s, s:I, s:s}", "run_id", r->id, "attempt", (json_int_t)r->attempt,
            "why", r->lost ? "lease_lost" : "shutdown");
    wk_run_end(r);
    return 1;
  }
  return 0;
}

/* ---- heartbeat ---- */

typedef struct hb_job {
  wk_run *r;
  int changes;
  int cancel;
} hb_job;

static int hb_work(tg_db *db, void *arg)
{
  hb_job *j = arg;
  wk_run *r = j->r;
  tg_run_lease l = wk_run_lease(r);
  return tg_store_runs_heartbeat(db, &l, tg_now_ms() + r->w->cfg.lease_ms, &j->changes, &j->cancel);
}

static void hb_done(void *arg, int status)
{
  hb_job *j = arg;
  wk_run *r = j->r;
  int changes = j->changes;
  if (j->cancel)
    r->cancel = 1;
  free(j);
  r->hb_job = 0;
  if (wk_run_op_done(r))
    return;
  if (status == 0 && changes == 0) {
    /* Another worker holds the run now, or it was canceled: stop at the next step. */
    r->lost = 1;
    uv_timer_stop(&r->hb); /* nothing left to extend */
    tg_warn("lease_lost", "{s:s, s:I}", "run_id", r->id, "attempt", (json_int_t)r->attempt);
  } else if (status != 0) {
    tg_log_every(&r->w->log_hb_failed, uv_now(r->w->loop), TG_LOG_WARN, "heartbeat_failed",
                 "{s:s, s:s}", "run_id", r->id, "error", tg_errname(status));
  }
}

static void on_heartbeat(uv_timer_t *t)
{
  wk_run *r = container_of(t, wk_run, hb);
  hb_job *j;
  if (r->ended || r->hb_job || !(j = calloc(1, sizeof *j)))
    return;
  j->r = r;
  if (wk_run_submit(r, hb_work, hb_done, j) == 0)
    r->hb_job = 1;
  else
    free(j);
}

/* ---- finish / release ---- */

typedef struct end_job {
  wk_run *r;
  const char *status; /* static */
  json_t *output;
  char *error;
  const char *error_class; /* static */
  int64_t delay_ms;        /* release */
  char why[64];            /* release */
  int changes;
} end_job;

/* The final write and its run_finished event, in one transaction. */
static int finish_work(tg_db *db, void *arg)
{
  end_job *j = arg;
  tg_run_lease l = wk_run_lease(j->r);
  int64_t now = tg_now_ms();
  char data[96];
  int rc = tg_db_begin(db, 1);
  if (rc)
    return rc;
  rc = tg_store_runs_finish(db, &l, j->status, j->output, j->error, j->error_class, now,
                            &j->changes);
  snprintf(data, sizeof data, "{\"status\":\"%s\"}", j->status);
  if (rc == 0 && j->changes)
    rc = tg_store_nodes_event(db, j->r->id, "run_finished", NULL, data, now);
  return tg_db_end(db, rc);
}

static void finish_done(void *arg, int status)
{
  end_job *j = arg;
  wk_run *r = j->r;
  if (!wk_run_op_done(r)) {
    if (status != 0)
      tg_error("run_finish_failed", "{s:s, s:s}", "run_id", r->id, "error", tg_errname(status));
    tg_log(j->changes ? TG_LOG_INFO : TG_LOG_WARN, "run_finished",
           "{s:s, s:I, s:s, s:s?, s:s?, s:I, s:b}", "run_id", r->id, "attempt",
           (json_int_t)r->attempt, "status", j->status, "error_class", j->error_class, "error",
           j->error, "duration_ms", (json_int_t)(uv_now(r->w->loop) - r->claimed_ms), "written",
           j->changes > 0);
    wk_run_end(r);
  }
  json_decref(j->output);
  free(j->error);
  free(j);
}

void wk_run_finish(wk_run *r, const char *status, json_t *output, const char *error,
                   const char *error_class)
{
  end_job *j;
  if (wk_run_should_stop(r)) {
    json_decref(output);
    return;
  }
  if (!(j = calloc(1, sizeof *j)) || (error && !(j->error = wk_secrets_redact_text(r, error)))) {
    free(j);
    json_decref(output);
    tg_error("run_finish_failed", "{s:s, s:s}", "run_id", r->id, "error", "out of memory");
    wk_run_end(r);
    return;
  }
  j->r = r;
  j->status = status;
  j->output = wk_secrets_redact(r, output); /* by value: an output may quote a secret input */
  json_decref(output);
  j->error_class = error_class;
  if (wk_run_submit(r, finish_work, finish_done, j) != 0) {
    tg_error("run_finish_failed", "{s:s, s:s}", "run_id", r->id, "error", "queue closed");
    json_decref(j->output);
    free(j->error);
    free(j);
    wk_run_end(r);
  }
}

void wk_run_fail(wk_run *r, const char *error_class, const char *fmt, ...)
{
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  wk_run_finish(r, "failed", NULL, msg, error_class);
}

/* Releases the run; this attempt's calls still 'pending' become 'unknown' (tg_store_runs.h). */
static int release_work(tg_db *db, void *arg)
{
  end_job *j = arg;
  tg_run_lease l = wk_run_lease(j->r);
  int64_t now = tg_now_ms();
  return tg_store_runs_release(db, &l, now + j->delay_ms, now, &j->changes);
}

static void release_done(void *arg, int status)
{
  end_job *j = arg;
  wk_run *r = j->r;
  if (status != 0)
    tg_error("run_release_failed", "{s:s, s:s}", "run_id", r->id, "error", tg_errname(status));
  tg_info("run_released", "{s:s, s:I, s:s, s:I, s:b}", "run_id", r->id, "attempt",
          (json_int_t)r->attempt, "why", j->why, "delay_ms", (json_int_t)j->delay_ms, "written",
          j->changes > 0);
  free(j);
  if (!wk_run_op_done(r))
    wk_run_end(r);
}

void wk_run_release(wk_run *r, int64_t delay_ms, const char *why)
{
  end_job *j = calloc(1, sizeof *j);
  if (!j || (j->r = r, j->delay_ms = delay_ms, snprintf(j->why, sizeof j->why, "%s", why),
             wk_run_submit(r, release_work, release_done, j) != 0)) {
    free(j);
    tg_error("run_release_failed", "{s:s, s:s}", "run_id", r->id, "error", "cannot queue");
    wk_run_end(r); /* the lease expires on its own */
  }
}

/* ---- claim ---- */

typedef struct claim_job {
  wk_worker *w;
  wk_run *r; /* filled on the pool thread; the loop does not look at it until done */
  int found;
  int load_err; /* claimed, but loading the definition or accounts failed */
} claim_job;

static char *dup_member(const json_t *row, const char *key)
{
  const char *s = json_string_value(json_object_get(row, key));
  return s ? strdup(s) : NULL;
}

static int claim_work(tg_db *db, void *arg)
{
  claim_job *j = arg;
  wk_run *r = j->r;
  json_t *row;
  int rc, err = 0;

  r->lease_set_at = tg_now_ms();
  rc = tg_store_runs_claim(db, j->w->cfg.worker_id, 0, j->w->cfg.lease_ms,
                           j->w->cfg.user_concurrency, &row);
  if (rc || !row)
    return rc;
  j->found = 1;
  r->id = dup_member(row, "id");
  r->workflow_id = dup_member(row, "workflow_id");
  r->user_id = dup_member(row, "user_id");
  r->attempt = json_integer_value(json_object_get(row, "attempt"));
  r->cost = json_integer_value(json_object_get(row, "cost"));
  r->inputs = json_incref(json_object_get(row, "inputs"));
  r->metadata = json_incref(json_object_get(row, "metadata"));
  json_decref(row);
  if (!r->id || !r->workflow_id || !r->user_id) {
    j->load_err = TG_ENOMEM;
    return 0;
  }
  if (!(r->definition = tg_store_runs_read_definition_json(db, &err, r->workflow_id))) {
    j->load_err = err ? err : TG_ENOTFOUND;
    return 0;
  }
  if (tg_graph_build(&r->graph, r->definition) != 0)
    r->graph = NULL; /* the engine fails the run with the validator's reason */
  if (!(r->journal = tg_store_nodes_journal(db, &err, r->id)))
    j->load_err = err ? err : TG_EDB;
  else if ((rc = wk_secrets_load(db, r)))
    j->load_err = rc;
  else if (!(r->accounts = tg_store_runs_read_accounts(db, &err, r->user_id)))
    j->load_err = err ? err : TG_EDB;
  return 0;
}

static void start_run(wk_worker *w, wk_run *r)
{
  /* The lease runs from the claim on the pool thread, not from now: when this callback came
   * late (a loaded loop), the first heartbeat comes sooner so the lease does not lapse. */
  uint64_t every = (uint64_t)w->cfg.lease_ms / 3;
  int64_t late = tg_now_ms() - r->lease_set_at;
  uint64_t first = late <= 0 ? every : (uint64_t)late >= every ? 0 : every - (uint64_t)late;
  r->next = w->runs;
  w->runs = r;
  w->in_flight++;
  r->claimed_ms = uv_now(w->loop);
  if (w->cfg.run_deadline_ms > 0)
    r->deadline_ms = r->claimed_ms + (uint64_t)w->cfg.run_deadline_ms;
  uv_timer_init(w->loop, &r->hb);
  uv_timer_init(w->loop, &r->dl);
  r->hb.data = r->dl.data = r;
  r->timers_open = 2;
  uv_timer_start(&r->hb, on_heartbeat, first, every);
}

static void claim_done(void *arg, int status)
{
  claim_job *j = arg;
  wk_worker *w = j->w;
  wk_run *r = j->r;
  int found = j->found, load_err = j->load_err;

  free(j);
  w->claiming = 0;
  if (status != 0 || !found) {
    if (status != 0 && status != TG_ECANCELED)
      tg_log_every(&w->log_claim_failed, uv_now(w->loop), TG_LOG_ERROR, "claim_failed", "{s:s}",
                   "error", tg_errname(status));
    free(r); /* nothing was filled when no row was claimed */
    w->queue_empty = status == 0;
    wk_on_run_freed(w);
    return;
  }
  w->queue_empty = 0;
  start_run(w, r);
  tg_info("claimed", "{s:s, s:s, s:s, s:I}", "run_id", r->id, "workflow_id",
          r->workflow_id ? r->workflow_id : "", "user_id", r->user_id ? r->user_id : "", "attempt",
          (json_int_t)r->attempt);
  if (w->stopping)
    wk_run_release(r, 0, "shutdown");
  else if (load_err)
    wk_run_fail(r, "internal", "cannot load the run: %s", tg_strerror(load_err));
  else if (!json_is_object(r->definition))
    wk_run_fail(r, "internal", "workflow definition is not a JSON object");
  else
    wk_guard_start(r);
  wk_claim_maybe(w); /* claim the next one right away */
}

void wk_claim_maybe(wk_worker *w)
{
  claim_job *j;
  if (w->stopping || w->claiming || w->in_flight >= w->cfg.concurrency)
    return;
  if (!(j = calloc(1, sizeof *j)) || !(j->r = calloc(1, sizeof *j->r))) {
    free(j);
    return;
  }
  j->w = w;
  j->r->w = w;
  if (tg_dbq_submit(w->dbq, claim_work, claim_done, j) != 0) {
    free(j->r);
    free(j);
    return;
  }
  w->claiming = 1;
}
