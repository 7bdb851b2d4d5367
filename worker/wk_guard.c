/*
 * wk_guard: the pre-execute guard (DESIGN.md sections 4 and 5).
 *
 * Right after the claim, the run's providers are checked again, fresh, with tg_check (one
 * Composio list call, nothing cached). The scope is the one stored at admission
 * (metadata.tool_constraints, see tg_check_scope) united with the providers the workflow's
 * managed MCP nodes use, so a run never calls a provider that was not checked.
 *
 * Outcomes, each written in one dbq job together with the observed statuses:
 *   ok          -> execute;
 *   blocked     -> one transaction: run 'attention' with the 409 fields merged into metadata,
 *                  finished_at, lease cleared, and the run's cost refunded (users.credits +
 *                  a 'run_refund' credit_ledger row); fenced, so a lost lease refunds nothing;
 *   unavailable -> the run goes back to 'queued' at now + retry_after (fenced), fail closed;
 *                  except when Composio rejected our API key: that will not heal by waiting, so
 *                  the run fails with error_class broker_auth.
 * A 429 (tg_check_result.composio_err TG_ERATELIMIT; tg_check sends no per-account GET after
 * it) starts a worker-wide back-off until its Retry-After, as the gateway's check pool does
 * (gateway/gw_checkpool.c): a guard starting before then calls nobody and releases its run at
 * once, available when the back-off ends.
 * With an ok outcome the same job reads cancel_requested, so a run canceled while it was being
 * checked never calls a tool.
 */
#include "wk.h"

#include "tg_connector.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_store_connectors.h"
#include "tg_workflow.h"
#include "tg_clock.h"

#include <stdlib.h>
#include <string.h>

typedef struct guard_job {
  wk_run *r;
  tg_check_result *res;
  int changes;        /* run rows written by the outcome */
  int observed;       /* connected_accounts rows written back */
  int cancel;         /* ok outcome: cancel_requested */
  json_t *connectors; /* the connector ids the workflow names (may be empty) */
} guard_job;

/* Composio rejected our key (tg_check_result.broker_auth): waiting will not heal it. */
static int broker_auth(const tg_check_result *res)
{
  return res->outcome == TG_CHECK_UNAVAILABLE && res->broker_auth;
}

static int write_back(tg_db *db, guard_job *j)
{
  return tg_check_write_back(db, j->r->user_id, j->res, tg_now_ms(), &j->observed);
}

static int attention(tg_db *db, guard_job *j)
{
  wk_run *r = j->r;
  tg_run_lease l = wk_run_lease(j->r);
  char msg[300];
  char *list = json_dumps(j->res->providers, JSON_COMPACT);

  snprintf(msg, sizeof msg, "provider re-authorisation required: %s", list ? list : "?");
  free(list);
  return tg_store_runs_attention(db, &l, r->user_id, r->cost, j->res->providers, j->res->reasons,
                                 msg, tg_now_ms(), &j->changes);
}

/* Runs released during a Composio back-off come back this much after it ends: available_at is
 * wall-clock ms and the back-off monotonic ms, each truncated, and a run back a millisecond
 * early would meet the back-off and be released again. */
#define BACKOFF_MARGIN_MS 20

static int release(tg_db *db, guard_job *j)
{
  tg_run_lease l = wk_run_lease(j->r);
  long delay = j->res->retry_after_ms > 0 ? j->res->retry_after_ms : 5000;
  if (j->res->composio_err == TG_ERATELIMIT)
    delay += BACKOFF_MARGIN_MS;
  int64_t now = tg_now_ms();
  return tg_store_runs_release(db, &l, now + delay, now, &j->changes);
}

/* The workflow's MCP connectors whose authorization is missing or failed join the blocked
 * providers ("connector:<id>"): the run goes to attention as for a provider. */
static int block_connectors(tg_db *db, guard_job *j)
{
  json_t *blocked;
  int rc = 0;
  if (!json_array_size(j->connectors))
    return 0;
  if (!(blocked = tg_store_connectors_blocked(db, &rc, j->r->user_id)))
    return rc;
  if (!j->res->providers)
    j->res->providers = json_array();
  if (!j->res->reasons)
    j->res->reasons = json_object();
  rc = tg_connector_block(j->res->providers, j->res->reasons, j->connectors, blocked);
  json_decref(blocked);
  if (rc > 0)
    j->res->outcome = TG_CHECK_BLOCKED;
  return rc < 0 ? rc : 0;
}

static int guard_work(tg_db *db, void *arg)
{
  guard_job *j = arg;
  int rc = block_connectors(db, j);
  if (rc)
    return rc;
  rc = write_back(db, j);
  if (rc)
    tg_warn("guard_write_back_failed", "{s:s, s:s}", "run_id", j->r->id, "error", tg_errname(rc));
  switch (j->res->outcome) {
  case TG_CHECK_BLOCKED:
    return attention(db, j);
  case TG_CHECK_UNAVAILABLE:
    return broker_auth(j->res) ? 0 : release(db, j);
  default:
    j->cancel = tg_store_runs_cancel_requested(db, j->r->id);
    return 0;
  }
}

/* Wall-clock ms, read now: the clock of the released run's available_at (tg_store_runs), so
 * that the back-off cannot outlast it (its next guard would release it again). The loop's cached
 * time, or a monotonic clock that disagrees with the wall clock by more than BACKOFF_MARGIN_MS
 * (a clock step), could. */
static uint64_t now_ms(void)
{
  return (uint64_t)tg_now_ms();
}

/* A 429: no guard of this worker calls Composio for retry_after_ms (ms) from now. */
static void back_off(wk_worker *w, long retry_after_ms)
{
  uint64_t until = now_ms() + (uint64_t)(retry_after_ms > 0 ? retry_after_ms : 5000);
  if (until > w->composio_backoff_until) {
    w->composio_backoff_until = until;
    tg_warn("composio_backoff", "{s:I}", "retry_after_ms", (json_int_t)retry_after_ms);
  }
}

static void guard_done(void *arg, int status)
{
  guard_job *j = arg;
  wk_run *r = j->r;
  tg_check_result *res = j->res;
  int changes = j->changes;

  if (j->cancel)
    r->cancel = 1;
  json_decref(j->connectors);
  free(j);
  if (wk_run_op_done(r))
    goto out;
  if (status != 0) {
    wk_run_fail(r, "internal", "pre-execute guard could not write its outcome: %s",
                tg_strerror(status));
    goto out;
  }
  switch (res->outcome) {
  case TG_CHECK_BLOCKED:
    tg_log_json(TG_LOG_INFO, "guard_blocked",
                json_pack("{s:s, s:s, s:I, s:O, s:O, s:b}", "run_id", r->id, "user_id", r->user_id,
                          "attempt", (json_int_t)r->attempt, "blocked_providers", res->providers,
                          "reasons", res->reasons, "written", changes > 0));
    wk_run_end(r);
    break;
  case TG_CHECK_UNAVAILABLE:
    if (broker_auth(res)) {
      wk_run_fail(r, "broker_auth", "Composio rejected the platform API key");
      break;
    }
    tg_warn("guard_unavailable", "{s:s, s:s, s:i, s:s, s:b}", "run_id", r->id, "user_id",
            r->user_id, "retry_after_ms", (int)res->retry_after_ms, "detail",
            res->detail ? res->detail : "", "written", changes > 0);
    wk_run_end(r);
    break;
  default:
    tg_info("guard_ok", "{s:s, s:i}", "run_id", r->id, "composio_calls", res->composio_calls);
    if (!wk_run_should_stop(r))
      wk_engine_start(r);
  }
out:
  tg_check_result_free(res);
}

static void on_checked(void *arg, tg_check_result *res)
{
  wk_run *r = arg;
  guard_job *j;
  r->check = NULL;
  if (wk_run_op_done(r) || wk_run_should_stop(r)) {
    tg_check_result_free(res);
    return;
  }
  if (!(j = calloc(1, sizeof *j))) {
    tg_check_result_free(res);
    wk_run_fail(r, "internal", "out of memory");
    return;
  }
  j->r = r;
  j->res = res;
  j->connectors = tg_connector_ids_of(r->definition);
  if (res->outcome == TG_CHECK_UNAVAILABLE && res->composio_err == TG_ERATELIMIT)
    back_off(r->w, res->retry_after_ms); /* before the release: it ends no later than the run's
                                            available_at */
  if (wk_run_submit(r, guard_work, guard_done, j) != 0) {
    json_decref(j->connectors);
    free(j);
    tg_check_result_free(res);
    wk_run_fail(r, "internal", "cannot queue the guard's outcome");
  }
}

void wk_guard_cancel(wk_run *r)
{
  if (!r->check)
    return;
  tg_check_cancel(r->check);
  r->check = NULL;
  r->pending--; /* its callback will never run */
}

/* 1 when checking scope asks Composio (a provider in it has an ACTIVE row with an account). */
static int needs_composio(const json_t *scope, const tg_check_row *rows, size_t n)
{
  size_t i;
  json_t *p;
  json_array_foreach(scope, i, p)
  {
    if (tg_check_net_row(rows, n, json_string_value(p)))
      return 1;
  }
  return 0;
}

void wk_guard_start(wk_run *r)
{
  size_t n = json_array_size(r->accounts), i;
  tg_check_row *rows;
  json_t *scope = NULL, *used = NULL, *p;
  uint64_t now = now_ms();
  int rc;

  if (!(rows = calloc(n ? n : 1, sizeof *rows)))
    goto oom;
  for (i = 0; i < n; i++) {
    const json_t *a = json_array_get(r->accounts, i);
    rows[i].provider = json_string_value(json_object_get(a, "provider"));
    rows[i].status = json_string_value(json_object_get(a, "status"));
    rows[i].composio_account_id = json_string_value(json_object_get(a, "composio_account_id"));
    rows[i].toolkit_slug = json_string_value(json_object_get(a, "toolkit_slug"));
  }
  used = tg_workflow_providers(r->definition);
  scope =
      used ? tg_check_scope(json_object_get(r->metadata, "tool_constraints"), used, rows, n) : NULL;
  if (!scope || !used)
    goto oom;
  json_array_foreach(used, i, p)
  {
    size_t k;
    int have = 0;
    for (k = 0; k < json_array_size(scope) && !have; k++)
      have = json_equal(json_array_get(scope, k), p);
    if (!have)
      json_array_append(scope, p);
  }
  if (now < r->w->composio_backoff_until && needs_composio(scope, rows, n)) {
    /* Composio asked us to wait: ask nobody, come back when the back-off ends. */
    wk_run_release(r, (int64_t)(r->w->composio_backoff_until - now) + BACKOFF_MARGIN_MS,
                   "composio_backoff");
    goto out;
  }
  rc = tg_check_start(r->w->composio, r->w->loop, r->user_id, scope, rows, n, on_checked, r,
                      &r->check);
  if (rc) {
    tg_warn("guard_not_started", "{s:s, s:s}", "run_id", r->id, "error", tg_errname(rc));
    wk_run_release(r, 5000, "guard_not_started");
  } else {
    r->pending++;
  }
out:
  free(rows);
  json_decref(scope);
  json_decref(used);
  return;
oom:
  free(rows);
  json_decref(scope);
  json_decref(used);
  wk_run_release(r, 5000, "out_of_memory");
}
