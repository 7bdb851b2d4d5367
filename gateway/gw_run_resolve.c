/*
 * gw_run_resolve: POST /api/runs/{id}/resolve {node_id, action: "retry" | "skip" | "fail"}, the
 * user's answer to a run in 'attention' with reason outcome_unknown (README "Workflow
 * execution"): a node was in flight when an earlier attempt ended and cannot safely run again.
 *
 * One IMMEDIATE transaction (tg_store_runs_resolve): the node's last journal row takes the
 * resolution; retry and skip requeue the run (the engine runs the node again, or counts it as
 * succeeded with output null), fail fails it with error_class outcome_unknown. Answers: 200
 * {run_id, status, node_id, action}; 400 for a body that is not JSON; 422 for a missing node_id
 * or an unknown action; 404 for a missing run or another user's; 409 resolve_not_pending when
 * the run is not waiting for this answer about this node.
 */
#include "gw.h"
#include "tg_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct resolve_ctx {
  gw_job j;
  char run_id[GW_USER_MAX + 1];
  char node_id[GW_USER_MAX + 1];
  const char *action; /* static */
} resolve_ctx;
GW_JOB_FIRST(resolve_ctx);

static int resolve_work(tg_db *db, void *arg)
{
  resolve_ctx *c = arg;
  int rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits), outcome;
  if (rc != 0)
    return rc;
  rc =
      tg_store_runs_resolve(db, c->run_id, c->j.user, c->node_id, c->action, tg_now_ms(), &outcome);
  if (rc == TG_ENOTFOUND) {
    gw_job_fail(&c->j, 404, "not_found", "No such run.");
    return 0;
  }
  if (rc != 0)
    return rc;
  if (outcome != TG_RESOLVE_DONE) {
    gw_job_fail(&c->j, 409, "resolve_not_pending",
                "The run is not in attention with outcome_unknown for this node.");
    return 0;
  }
  c->j.status = 200;
  c->j.body = json_pack("{s:s, s:s, s:s, s:s}", "run_id", c->run_id, "status",
                        strcmp(c->action, "fail") == 0 ? "failed" : "queued", "node_id", c->node_id,
                        "action", c->action);
  tg_info("run_resolve", "{s:s, s:s, s:s, s:s}", "user_id", c->j.user, "run_id", c->run_id,
          "node_id", c->node_id, "action", c->action);
  return c->j.body ? 0 : TG_ENOMEM;
}

static const char *action_name(const char *s)
{
  static const char *const names[] = {"retry", "skip", "fail", NULL};
  return gw_name_in(s, names);
}

void gw_run_resolve(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id)
{
  json_t *body = gw_parse_body(req);
  const char *node, *action;
  resolve_ctx *c;
  if (!body)
    return;
  node = json_string_value(json_object_get(body, "node_id"));
  action = action_name(json_string_value(json_object_get(body, "action")));
  if (!node || !*node || strlen(node) > GW_USER_MAX || !action) {
    json_decref(body);
    gw_respond_error(req, 422, "invalid_request",
                     "The body must be {\"node_id\": \"...\", \"action\": \"retry\" | \"skip\" | "
                     "\"fail\"}.",
                     NULL, NULL);
    return;
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c))) {
    json_decref(body);
    return;
  }
  snprintf(c->run_id, sizeof c->run_id, "%s", run_id);
  snprintf(c->node_id, sizeof c->node_id, "%s", node);
  c->action = action;
  json_decref(body);
  if (gw_submit(&c->j, resolve_work, gw_job_done_free, c) != 0)
    free(c);
}
