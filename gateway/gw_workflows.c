/*
 * gw_workflows: create, list and read a user's workflow definitions (DESIGN.md section 6).
 *
 * POST accepts {"name"?, "definition": {...}} or the definition itself (a body with "nodes";
 * its "title" is the name). The definition is validated on the loop (tg_workflow_validate, pure
 * CPU on a body capped by tg_httpd) before any database work; 422 invalid_workflow carries the
 * per-node errors. Reads are scoped to the caller: another user's workflow is a 404.
 */
#include "gw.h"
#include "tg_workflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WF_NAME_MAX 200

typedef struct wf_ctx {
  gw_job j;
  char id[GW_USER_MAX + 1];
  char *name;
  json_t *definition;
  int64_t created_at;
  int op; /* OP_* */
} wf_ctx;
GW_JOB_FIRST(wf_ctx);

enum { OP_CREATE, OP_LIST, OP_GET };

static wf_ctx *ctx_new(gw_app *app, tg_httpd_req *req, const char *user, int op)
{
  wf_ctx *c = gw_job_new(app, req, user, sizeof *c);
  if (c)
    c->op = op;
  return c;
}

static void ctx_free(wf_ctx *c)
{
  if (!c)
    return;
  json_decref(c->j.body);
  json_decref(c->definition);
  free(c->name);
  free(c);
}

static int wf_work(tg_db *db, void *arg)
{
  wf_ctx *c = arg;
  int rc = gw_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  json_t *v;
  if (rc != 0)
    return rc;
  switch (c->op) {
  case OP_CREATE:
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO workflows (id, user_id, name, definition, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    "sssjII", c->id, c->j.user, c->name, c->definition, (long long)c->created_at,
                    (long long)c->created_at);
    if (rc != 0)
      return rc;
    c->j.status = 201;
    c->j.body = json_pack("{s:s, s:s, s:O, s:I, s:I}", "id", c->id, "name", c->name, "definition",
                          c->definition, "created_at", (json_int_t)c->created_at, "updated_at",
                          (json_int_t)c->created_at);
    return c->j.body ? 0 : TG_ENOMEM;
  case OP_LIST:
    v = tg_db_query(db, &rc,
                    "SELECT id, name, definition AS definition_json, created_at, updated_at "
                    "FROM workflows WHERE user_id = ? ORDER BY created_at, id",
                    "s", c->j.user);
    if (!v)
      return rc;
    c->j.status = 200;
    c->j.body = json_pack("{s:o}", "workflows", v);
    return c->j.body ? 0 : TG_ENOMEM;
  default:
    v = tg_db_query_one(db, &rc,
                        "SELECT id, name, definition AS definition_json, created_at, "
                        "updated_at FROM workflows WHERE id = ? AND user_id = ?",
                        "ss", c->id, c->j.user);
    if (!v) {
      if (rc != TG_ENOTFOUND)
        return rc;
      gw_job_fail(&c->j, 404, "not_found", "No such workflow.");
      return 0;
    }
    c->j.status = 200;
    c->j.body = v;
    return 0;
  }
}

static void wf_done(void *arg, int status)
{
  wf_ctx *c = arg;
  if (status != 0) {
    json_decref(c->j.body);
    c->j.body = NULL;
    gw_job_fail_err(&c->j, status);
  } else if (c->op == OP_CREATE) {
    tg_info("workflow_created", "{s:s, s:s}", "user_id", c->j.user, "workflow_id", c->id);
  }
  gw_job_reply(&c->j, NULL);
  ctx_free(c);
}

static void submit(wf_ctx *c)
{
  if (gw_submit(&c->j, wf_work, wf_done, c) != 0)
    ctx_free(c);
}

void gw_workflow_create(gw_app *app, tg_httpd_req *req, const char *user)
{
  json_t *body = gw_parse_body(req), *def, *errors;
  const char *name = NULL;
  wf_ctx *c;
  if (!body)
    return;
  if (json_object_get(body, "nodes")) {
    def = body;
    name = json_string_value(json_object_get(body, "title"));
  } else {
    def = json_object_get(body, "definition");
    name = json_string_value(json_object_get(body, "name"));
    if (!name)
      name = json_string_value(json_object_get(def, "title"));
  }
  if (!json_is_object(def)) {
    gw_respond_error(req, 422, "invalid_workflow",
                     "The body must be a workflow definition or {\"definition\": {...}}.",
                     json_pack("{s:[{s:n, s:s, s:s}]}", "errors", "node", "field", "definition",
                               "message", "missing or not an object"),
                     NULL);
    json_decref(body);
    return;
  }
  if ((errors = tg_workflow_validate(def)) != NULL) {
    gw_respond_error(req, 422, "invalid_workflow", "The workflow definition is invalid.",
                     json_pack("{s:o}", "errors", errors), NULL);
    json_decref(body);
    return;
  }
  if (!name || !*name)
    name = "Untitled workflow";
  if (!(c = ctx_new(app, req, user, OP_CREATE))) {
    json_decref(body);
    return;
  }
  c->definition = json_incref(def);
  c->name = strndup(name, WF_NAME_MAX);
  json_decref(body);
  if (!c->name) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    gw_job_reply(&c->j, NULL);
    ctx_free(c);
    return;
  }
  tg_random_id(c->id, sizeof c->id, "wf_", 12);
  c->created_at = tg_now_ms();
  submit(c);
}

void gw_workflow_list(gw_app *app, tg_httpd_req *req, const char *user)
{
  wf_ctx *c = ctx_new(app, req, user, OP_LIST);
  if (c)
    submit(c);
}

void gw_workflow_get(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  wf_ctx *c = ctx_new(app, req, user, OP_GET);
  if (!c)
    return;
  snprintf(c->id, sizeof c->id, "%s", id);
  submit(c);
}
