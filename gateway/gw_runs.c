/*
 * gw_runs: reading runs and their tool executions.
 *
 * One job per request: first sight of the user, then the query. A run of another user is
 * indistinguishable from a missing one (404). JSON columns (inputs, metadata, output,
 * arguments, response) are returned as JSON values, not strings (tg_db_query's "_json"
 * aliases).
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run_ctx {
  gw_job j;
  char run_id[GW_USER_MAX + 1];
  int tools; /* 1: list tool executions */
} run_ctx;

static const char run_sql[] =
    "SELECT id, workflow_id, status, inputs AS inputs_json, metadata AS metadata_json, "
    "output AS output_json, error, error_class, attempt, cost, created_at, started_at, "
    "finished_at FROM workflow_runs WHERE id = ? AND user_id = ?";

static const char tools_sql[] =
    "SELECT id, attempt, node_id, provider, tool_name, arguments AS arguments_json, "
    "response AS response_json, status, error, error_class, duration_ms, executed_at, "
    "completed_at FROM tool_executions WHERE run_id = ? ORDER BY id";

static int run_work(tg_db *db, void *arg)
{
  run_ctx *c = arg;
  int rc = gw_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  json_t *run, *list;
  if (rc != 0)
    return rc;
  run = tg_db_query_one(db, &rc, run_sql, "ss", c->run_id, c->j.user);
  if (!run) {
    if (rc == TG_ENOTFOUND) {
      gw_job_fail(&c->j, 404, "not_found", "No such run.");
      return 0;
    }
    return rc;
  }
  if (!c->tools) {
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

static void run_done(void *arg, int status)
{
  run_ctx *c = arg;
  if (status != 0) {
    json_decref(c->j.body);
    c->j.body = NULL;
    gw_job_fail_err(&c->j, status);
  }
  gw_job_reply(&c->j, NULL);
  free(c);
}

static void start(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id, int tools)
{
  run_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    tg_httpd_respond_error(req, 500, "internal", "Out of memory.");
    return;
  }
  c->j.app = app;
  c->j.req = req;
  snprintf(c->j.user, sizeof c->j.user, "%s", user);
  snprintf(c->run_id, sizeof c->run_id, "%s", run_id);
  c->tools = tools;
  if (gw_submit(&c->j, run_work, run_done, c) != 0)
    free(c);
}

void gw_run_get(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id)
{
  start(app, req, user, run_id, 0);
}

void gw_run_tool_executions(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id)
{
  start(app, req, user, run_id, 1);
}
