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
 * Cancel, in one IMMEDIATE transaction (tg_store_runs_cancel): queued or waiting -> canceled, the
 * admission debit refunded to the user with a credit_ledger 'run_refund' row (a waiting run's
 * pending review canceled); running -> cancel_requested = 1
 * (the worker stops the run at its next step); canceled -> the same answer again (no second
 * refund); any other status -> 409 run_not_cancelable.
 */
#include "gw.h"
#include "tg_clock.h"
#include "tg_store_nodes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GET_RUN, GET_TOOLS, LIST, CANCEL };

typedef struct run_ctx {
  gw_job j;
  char run_id[GW_USER_MAX + 1];
  int op; /* GET_RUN, GET_TOOLS, LIST, CANCEL */
  /* LIST */
  const char *status; /* static, or NULL */
  char workflow_id[GW_USER_MAX + 1];
  gw_page page;
} run_ctx;
GW_JOB_FIRST(run_ctx);

static int list_work(tg_db *db, run_ctx *c)
{
  int rc;
  json_t *rows = tg_store_runs_list(db, &rc,
                                    &(tg_run_filter){
                                        .user_id = c->j.user,
                                        .status = c->status,
                                        .workflow_id = *c->workflow_id ? c->workflow_id : NULL,
                                        .after_id = *c->page.after_id ? c->page.after_id : NULL,
                                        .after_at = c->page.after_at,
                                        .limit = c->page.limit + 1,
                                    });
  if (!rows)
    return rc;
  return gw_page_answer(&c->j, "runs", rows, c->page.limit);
}

static int cancel_work(tg_db *db, run_ctx *c)
{
  tg_run_cancel out;
  int rc;
  gw_write_lock();
  rc = tg_store_runs_cancel(db, c->run_id, c->j.user, tg_now_ms(), &out);
  gw_write_unlock();
  if (rc == TG_ENOTFOUND) {
    gw_job_fail(&c->j, 404, "not_found", "No such run.");
    return 0;
  }
  if (rc != 0)
    return rc;
  if (out.outcome == TG_RUN_NOT_CANCELABLE) {
    gw_job_fail(&c->j, 409, "run_not_cancelable",
                "Only queued, waiting or running runs can be canceled.");
    c->j.body = json_pack("{s:s}", "status", out.status);
    return 0;
  }
  c->j.status = 200;
  if (out.outcome == TG_RUN_CANCELED)
    c->j.body = json_pack("{s:s, s:s, s:I}", "run_id", c->run_id, "status", "canceled", "refunded",
                          (json_int_t)out.refunded);
  else
    c->j.body = json_pack("{s:s, s:s, s:b}", "run_id", c->run_id, "status", "running",
                          "cancel_requested", 1);
  tg_info("run_cancel", "{s:s, s:s, s:O}", "user_id", c->j.user, "run_id", c->run_id, "outcome",
          json_object_get(c->j.body, "status"));
  return 0;
}

/* The run's model tokens, {input_tokens, output_tokens}: the sum of its nodes' (each node's
 * own is its sum over the run's attempts). A new object, or NULL when out of memory. */
static json_t *usage_of(const json_t *nodes)
{
  json_int_t in = 0, out = 0;
  size_t i;
  const json_t *n;
  json_array_foreach(nodes, i, n)
  {
    in += json_integer_value(json_object_get(n, "input_tokens"));
    out += json_integer_value(json_object_get(n, "output_tokens"));
  }
  return json_pack("{s:I, s:I}", "input_tokens", in, "output_tokens", out);
}

static int run_work(tg_db *db, void *arg)
{
  run_ctx *c = arg;
  int rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  json_t *run, *list;
  if (rc != 0)
    return rc;
  if (c->op == LIST)
    return list_work(db, c);
  if (c->op == CANCEL)
    return cancel_work(db, c);
  run = tg_store_runs_get(db, &rc, c->run_id, c->j.user);
  if (!run) {
    if (rc == TG_ENOTFOUND) {
      gw_job_fail(&c->j, 404, "not_found", "No such run.");
      return 0;
    }
    return rc;
  }
  if (c->op == GET_RUN) {
    json_t *nodes = tg_store_nodes_states(db, &rc, c->run_id); /* the journal, for the UI */
    if (!nodes || json_object_set_new(run, "nodes", nodes) ||
        json_object_set_new(run, "usage", usage_of(nodes))) {
      json_decref(run);
      return rc ? rc : TG_ENOMEM;
    }
    c->j.status = 200;
    c->j.body = run;
    return 0;
  }
  json_decref(run);
  list = tg_store_runs_tool_executions(db, &rc, c->run_id);
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
  static const char *const names[] = {"queued",    "running",  "succeeded", "failed",
                                      "attention", "canceled", "waiting",   NULL};
  return gw_name_in(s, names);
}

void gw_run_list(gw_app *app, tg_httpd_req *req, const char *user)
{
  const char *status = tg_httpd_query(req, "status");
  const char *wf = tg_httpd_query(req, "workflow_id");
  gw_page page;
  const char *bad = gw_page_parse(req, &page);
  run_ctx *c;

  if (status && !status_name(status))
    bad = "status must be one of queued, running, succeeded, failed, attention, canceled, "
          "waiting.";
  if (wf && (!*wf || strlen(wf) > GW_USER_MAX))
    bad = "workflow_id is not a workflow id.";
  if (bad) {
    gw_respond_error(req, 400, "invalid_request", bad, NULL, NULL);
    return;
  }
  if (!(c = ctx_new(app, req, user, NULL, LIST)))
    return;
  c->status = status ? status_name(status) : NULL;
  c->page = page;
  snprintf(c->workflow_id, sizeof c->workflow_id, "%s", wf ? wf : "");
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
