/*
 * gw_runs: the run API except admission and retry (gw_admit.c): one run, its tool executions,
 * the caller's runs (filters and cursor paging) and cancel.
 *
 * One job per request: first sight of the user, then the query. A run of another user is
 * indistinguishable from a missing one (404). JSON columns (inputs, metadata, output,
 * arguments, response) are returned as JSON values, not strings (tg_db_query's "_json"
 * aliases).
 *
 * Listing: newest first by (created_at, id); next_cursor is "<created_at>:<id>" of the last
 * row when more may follow, and a request with ?cursor=... continues strictly after it, so
 * pages neither repeat nor skip rows while new runs arrive.
 *
 * Cancel, in one IMMEDIATE transaction: queued -> canceled, the admission debit refunded to the
 * user with a credit_ledger 'run_refund' row; running -> cancel_requested = 1 (the worker stops
 * the run at its next step); canceled -> the same answer again (no second refund); any other
 * status -> 409 run_not_cancelable.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 50
#define LIST_MAX 200

enum { GET_RUN, GET_TOOLS, LIST, CANCEL };

typedef struct run_ctx {
  gw_job j;
  char run_id[GW_USER_MAX + 1];
  int op; /* GET_RUN, GET_TOOLS, LIST, CANCEL */
  /* LIST */
  const char *status; /* static, or NULL */
  char workflow_id[GW_USER_MAX + 1];
  int64_t cursor_at; /* valid when *cursor_id */
  char cursor_id[GW_USER_MAX + 1];
  int limit;
} run_ctx;
GW_JOB_FIRST(run_ctx);

static const char run_sql[] =
    "SELECT id, workflow_id, status, inputs AS inputs_json, metadata AS metadata_json, "
    "output AS output_json, error, error_class, attempt, cost, cancel_requested, created_at, "
    "started_at, finished_at FROM workflow_runs WHERE id = ? AND user_id = ?";

static const char list_sql[] =
    "SELECT id, workflow_id, status, metadata AS metadata_json, error, error_class, attempt, "
    "cost, cancel_requested, created_at, started_at, finished_at FROM workflow_runs "
    "WHERE user_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR workflow_id = ?3) "
    "AND (?4 IS NULL OR created_at < ?5 OR (created_at = ?5 AND id < ?4)) "
    "ORDER BY created_at DESC, id DESC LIMIT ?6";

static const char tools_sql[] =
    "SELECT id, attempt, node_id, provider, tool_name, arguments AS arguments_json, "
    "response AS response_json, status, error, error_class, duration_ms, executed_at, "
    "completed_at FROM tool_executions WHERE run_id = ? ORDER BY id";

static int list_work(tg_db *db, run_ctx *c)
{
  int rc;
  size_t n;
  json_t *rows = tg_db_query(
      db, &rc, list_sql, "ssssIi", c->j.user, c->status, *c->workflow_id ? c->workflow_id : NULL,
      *c->cursor_id ? c->cursor_id : NULL, (long long)c->cursor_at, c->limit + 1);
  json_t *next = json_null();
  if (!rows)
    return rc;
  n = json_array_size(rows);
  if (n > (size_t)c->limit) {
    json_t *last = json_array_get(rows, (size_t)c->limit - 1);
    char cur[GW_USER_MAX + 32];
    snprintf(cur, sizeof cur, "%lld:%s",
             (long long)json_integer_value(json_object_get(last, "created_at")),
             json_string_value(json_object_get(last, "id")));
    json_array_remove(rows, (size_t)c->limit);
    next = json_string(cur);
  }
  c->j.status = 200;
  c->j.body = json_pack("{s:o, s:o}", "runs", rows, "next_cursor", next);
  return c->j.body ? 0 : TG_ENOMEM;
}

static int cancel_tx(tg_db *db, run_ctx *c)
{
  int64_t now = tg_now_ms(), cost;
  const char *st;
  json_t *run;
  int rc;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  run = tg_db_query_one(db, &rc,
                        "SELECT status, cost, cancel_requested FROM workflow_runs WHERE id = ? "
                        "AND user_id = ?",
                        "ss", c->run_id, c->j.user);
  if (!run) {
    tg_db_rollback(db);
    if (rc != TG_ENOTFOUND)
      return rc;
    gw_job_fail(&c->j, 404, "not_found", "No such run.");
    return 0;
  }
  st = json_string_value(json_object_get(run, "status"));
  cost = json_integer_value(json_object_get(run, "cost"));
  if (strcmp(st, "queued") == 0) {
    rc = tg_db_exec(db, NULL,
                    "UPDATE workflow_runs SET status = 'canceled', finished_at = ?1, "
                    "error = 'canceled by the user', available_at = ?1 WHERE id = ?2 AND "
                    "status = 'queued'",
                    "Is", (long long)now, c->run_id);
    if (rc == 0 && cost > 0)
      rc = tg_db_exec(db, NULL, "UPDATE users SET credits = credits + ? WHERE id = ?", "Is",
                      (long long)cost, c->j.user);
    if (rc == 0 && cost > 0)
      rc = tg_db_exec(db, NULL,
                      "INSERT INTO credit_ledger (user_id, run_id, delta, reason, created_at) "
                      "VALUES (?, ?, ?, 'run_refund', ?)",
                      "ssII", c->j.user, c->run_id, (long long)cost, (long long)now);
    if (rc == 0) {
      c->j.status = 200;
      c->j.body = json_pack("{s:s, s:s, s:I}", "run_id", c->run_id, "status", "canceled",
                            "refunded", (json_int_t)cost);
    }
  } else if (strcmp(st, "running") == 0) {
    rc = tg_db_exec(db, NULL,
                    "UPDATE workflow_runs SET cancel_requested = 1 WHERE id = ? AND "
                    "status = 'running'",
                    "s", c->run_id);
    if (rc == 0) {
      c->j.status = 200;
      c->j.body = json_pack("{s:s, s:s, s:b}", "run_id", c->run_id, "status", "running",
                            "cancel_requested", 1);
    }
  } else if (strcmp(st, "canceled") == 0) {
    c->j.status = 200;
    c->j.body = json_pack("{s:s, s:s, s:I}", "run_id", c->run_id, "status", "canceled", "refunded",
                          (json_int_t)0);
  } else {
    gw_job_fail(&c->j, 409, "run_not_cancelable", "Only queued or running runs can be canceled.");
    c->j.body = json_pack("{s:s}", "status", st);
  }
  json_decref(run);
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0) {
    tg_db_rollback(db);
    json_decref(c->j.body);
    c->j.body = NULL;
    c->j.status = 0;
  }
  return rc;
}

static int run_work(tg_db *db, void *arg)
{
  run_ctx *c = arg;
  int rc = gw_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  json_t *run, *list;
  if (rc != 0)
    return rc;
  if (c->op == LIST)
    return list_work(db, c);
  if (c->op == CANCEL) {
    gw_write_lock();
    rc = cancel_tx(db, c);
    gw_write_unlock();
    if (rc == 0 && c->j.status == 200)
      tg_info("run_cancel", "{s:s, s:s, s:O}", "user_id", c->j.user, "run_id", c->run_id, "outcome",
              json_object_get(c->j.body, "status"));
    return rc;
  }
  run = tg_db_query_one(db, &rc, run_sql, "ss", c->run_id, c->j.user);
  if (!run) {
    if (rc == TG_ENOTFOUND) {
      gw_job_fail(&c->j, 404, "not_found", "No such run.");
      return 0;
    }
    return rc;
  }
  if (c->op == GET_RUN) {
    c->j.status = 200;
    c->j.body = run;
    return 0;
  }
  json_decref(run);
  list = tg_db_query(db, &rc, tools_sql, "s", c->run_id);
  if (!list)
    return rc;
  c->j.status = 200;
  c->j.body = json_pack("{s:o}", "tool_executions", list);
  return c->j.body ? 0 : TG_ENOMEM;
}

static run_ctx *ctx_new(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id,
                        int op)
{
  run_ctx *c = gw_job_new(app, req, user, sizeof *c);
  if (!c)
    return NULL;
  snprintf(c->run_id, sizeof c->run_id, "%s", run_id ? run_id : "");
  c->op = op;
  return c;
}

static void start(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id, int op)
{
  run_ctx *c = ctx_new(app, req, user, run_id, op);
  if (c && gw_submit(&c->j, run_work, gw_job_done_free, c) != 0)
    free(c);
}

static const char *status_name(const char *s)
{
  static const char *const names[] = {"queued", "running",   "succeeded",
                                      "failed", "attention", "canceled"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i]) == 0)
      return names[i];
  return NULL;
}

/* Parses "<created_at>:<id>" into c. 0 or -1. */
static int parse_cursor(run_ctx *c, const char *cur)
{
  char *end = NULL;
  long long at = strtoll(cur, &end, 10);
  if (end == cur || *end != ':' || at < 0 || !end[1] || strlen(end + 1) > GW_USER_MAX)
    return -1;
  c->cursor_at = at;
  snprintf(c->cursor_id, sizeof c->cursor_id, "%s", end + 1);
  return 0;
}

void gw_run_list(gw_app *app, tg_httpd_req *req, const char *user)
{
  const char *status = tg_httpd_query(req, "status");
  const char *wf = tg_httpd_query(req, "workflow_id");
  const char *cur = tg_httpd_query(req, "cursor");
  const char *lim = tg_httpd_query(req, "limit");
  const char *bad = NULL;
  long limit = LIST_DEFAULT;
  char *end = NULL;
  run_ctx *c;

  if (lim) {
    limit = strtol(lim, &end, 10);
    if (!*lim || *end || limit < 1 || limit > LIST_MAX)
      bad = "limit must be an integer from 1 to 200.";
  }
  if (status && !status_name(status))
    bad = "status must be one of queued, running, succeeded, failed, attention, canceled.";
  if (wf && (!*wf || strlen(wf) > GW_USER_MAX))
    bad = "workflow_id is not a workflow id.";
  if (bad) {
    gw_respond_error(req, 400, "invalid_request", bad, NULL, NULL);
    return;
  }
  if (!(c = ctx_new(app, req, user, NULL, LIST)))
    return;
  c->status = status ? status_name(status) : NULL;
  c->limit = (int)limit;
  snprintf(c->workflow_id, sizeof c->workflow_id, "%s", wf ? wf : "");
  if (cur && parse_cursor(c, cur) != 0) {
    free(c);
    gw_respond_error(req, 400, "invalid_request", "cursor is not one this API returned.", NULL,
                     NULL);
    return;
  }
  if (gw_submit(&c->j, run_work, gw_job_done_free, c) != 0)
    free(c);
}

void gw_run_cancel(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id)
{
  start(app, req, user, run_id, CANCEL);
}

void gw_run_get(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id)
{
  start(app, req, user, run_id, GET_RUN);
}

void gw_run_tool_executions(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id)
{
  start(app, req, user, run_id, GET_TOOLS);
}
