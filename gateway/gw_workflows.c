/*
 * gw_workflows: create, list, read, replace and delete a user's workflow definitions (DESIGN.md
 * section 6).
 *
 * POST and PUT accept {"name"?, "definition": {...}} or the definition itself (a body with
 * "nodes"; its "title" is the name). The definition is validated on the loop
 * (tg_workflow_validate, pure CPU on a body capped by tg_httpd; then what its Code nodes need of
 * the machine, gw_packages_check) before any database work; 422 invalid_workflow carries the
 * per-node errors. Every statement is scoped to the caller: another
 * user's workflow is a 404, exactly like one that does not exist. DELETE refuses (409
 * workflow_has_runs) while runs refer to the workflow: their history must keep its definition
 * (the foreign key enforces it; the check only makes the answer clear). Admission caches parsed
 * definitions by their text, so a PUT takes effect for the next run.
 *
 * A create or update answer carries warnings: [{node_id, message}], one per Agent tool name that
 * the user's catalog (tg_store_tools_catalog, read in the same job) cannot resolve by the rule of
 * tg_tool_name.h. A warning is not an error: the definition is stored, since the tool may be
 * registered before the workflow runs; if it is not, the node fails with tool_not_found.
 */
#include "gw.h"
#include "tg_workflow.h"
#include "tg_clock.h"
#include "tg_id.h"
#include "tg_store_tools.h"
#include "tg_tool_name.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WF_NAME_MAX 200

typedef struct wf_ctx {
  gw_job j;
  char id[GW_USER_MAX + 1];
  char *name;
  json_t *definition;
  json_t *warnings; /* create / update: read before the write */
  int64_t created_at;
  int op; /* OP_* */
} wf_ctx;
GW_JOB_FIRST(wf_ctx);

enum { OP_CREATE, OP_LIST, OP_GET, OP_UPDATE, OP_DELETE };

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
  json_decref(c->warnings);
  free(c->name);
  free(c);
}

/* The warnings of c->definition for the user's catalog: a new array, or NULL with *rc set. */
static json_t *tool_warnings(tg_db *db, wf_ctx *c, int *rc)
{
  json_t *warnings = json_array(), *catalog = NULL;
  const json_t *node, *name;
  size_t i, k;
  if (!warnings) {
    *rc = TG_ENOMEM;
    return NULL;
  }
  json_array_foreach(json_object_get(c->definition, "nodes"), i, node)
  {
    const char *type = json_string_value(json_object_get(node, "type"));
    const json_t *tools = json_object_get(json_object_get(node, "config"), "tools");
    char id[128]; /* tg_graph: a node id is at most 127 bytes */
    if (!type || strcmp(type, "Agent") != 0 || json_array_size(tools) == 0)
      continue;
    if (!catalog && !(catalog = tg_store_tools_catalog(db, rc, c->j.user))) {
      json_decref(warnings);
      return NULL;
    }
    if (json_is_integer(json_object_get(node, "id")))
      snprintf(id, sizeof id, "%" JSON_INTEGER_FORMAT,
               json_integer_value(json_object_get(node, "id")));
    else
      snprintf(id, sizeof id, "%s", json_string_value(json_object_get(node, "id")));
    json_array_foreach(tools, k, name)
    {
      char msg[256]; /* a name is at most 128 bytes (tg_workflow_validate): never cut, so the
                      * message stays valid UTF-8 for json_pack */
      if (tg_tool_lookup(catalog, json_string_value(name)))
        continue;
      snprintf(msg, sizeof msg,
               "tool \"%s\" is not in your tool catalog: register it, or the node fails with "
               "tool_not_found",
               json_string_value(name));
      json_array_append_new(warnings, json_pack("{s:s, s:s}", "node_id", id, "message", msg));
    }
  }
  json_decref(catalog);
  return warnings;
}

static int wf_work(tg_db *db, void *arg)
{
  wf_ctx *c = arg;
  int rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  json_t *v;
  if (rc != 0)
    return rc;
  if ((c->op == OP_CREATE || c->op == OP_UPDATE) && !c->warnings &&
      !(c->warnings = tool_warnings(db, c, &rc)))
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
    c->j.body = json_pack("{s:s, s:s, s:O, s:I, s:I, s:O}", "id", c->id, "name", c->name,
                          "definition", c->definition, "created_at", (json_int_t)c->created_at,
                          "updated_at", (json_int_t)c->created_at, "warnings", c->warnings);
    return c->j.body ? 0 : TG_ENOMEM;
  case OP_UPDATE: {
    int changes = 0;
    rc = tg_db_exec(db, &changes,
                    "UPDATE workflows SET name = ?, definition = ?, updated_at = ? "
                    "WHERE id = ? AND user_id = ?",
                    "sjIss", c->name, c->definition, (long long)c->created_at, c->id, c->j.user);
    if (rc != 0)
      return rc;
    if (changes == 0) {
      gw_job_fail(&c->j, 404, "not_found", "No such workflow.");
      return 0;
    }
    v = tg_db_query_one(db, &rc,
                        "SELECT id, name, definition AS definition_json, created_at, "
                        "updated_at FROM workflows WHERE id = ? AND user_id = ?",
                        "ss", c->id, c->j.user);
    if (!v)
      return rc;
    c->j.status = 200;
    c->j.body = v;
    return json_object_set(v, "warnings", c->warnings) ? TG_ENOMEM : 0;
  }
  case OP_DELETE: {
    int changes = 0;
    json_t *runs;
    if ((rc = tg_db_begin(db, 1)) != 0)
      return rc;
    runs = tg_db_query_one(db, &rc,
                           "SELECT (SELECT count(*) FROM workflows WHERE id = ? AND user_id = ?) "
                           "AS found, (SELECT count(*) FROM workflow_runs WHERE workflow_id = ? "
                           "AND user_id = ?) AS runs",
                           "ssss", c->id, c->j.user, c->id, c->j.user);
    if (!runs)
      return tg_db_end(db, rc);
    if (json_integer_value(json_object_get(runs, "found")) == 0) {
      gw_job_fail(&c->j, 404, "not_found", "No such workflow.");
    } else if (json_integer_value(json_object_get(runs, "runs")) > 0) {
      gw_job_fail(&c->j, 409, "workflow_has_runs",
                  "This workflow has runs, whose history refers to it; it cannot be deleted.");
      c->j.body = json_pack("{s:I}", "runs", json_integer_value(json_object_get(runs, "runs")));
    } else if ((rc = tg_db_exec(db, &changes, "DELETE FROM workflows WHERE id = ? AND user_id = ?",
                                "ss", c->id, c->j.user)) == 0) {
      c->j.status = 200;
      c->j.body = json_pack("{s:s, s:b}", "id", c->id, "deleted", 1);
    }
    json_decref(runs);
    return tg_db_end(db, rc);
  }
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
  } else if (c->j.status < 300 &&
             (c->op == OP_CREATE || c->op == OP_UPDATE || c->op == OP_DELETE)) {
    tg_info(c->op == OP_CREATE   ? "workflow_created"
            : c->op == OP_UPDATE ? "workflow_updated"
                                 : "workflow_deleted",
            "{s:s, s:s}", "user_id", c->j.user, "workflow_id", c->id);
  }
  gw_job_reply(&c->j, NULL);
  ctx_free(c);
}

static void submit(wf_ctx *c)
{
  if (gw_submit(&c->j, wf_work, wf_done, c) != 0)
    ctx_free(c);
}

/* Parses and validates a create/update body into a new context for op; NULL after answering. */
static wf_ctx *ctx_from_body(gw_app *app, tg_httpd_req *req, const char *user, int op)
{
  json_t *body = gw_parse_body(req), *def, *errors;
  const char *name = NULL;
  wf_ctx *c;
  if (!body)
    return NULL;
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
    return NULL;
  }
  if ((errors = tg_workflow_validate(def)) != NULL ||
      (errors = gw_packages_check(app, def)) != NULL) {
    gw_respond_error(req, 422, "invalid_workflow", "The workflow definition is invalid.",
                     json_pack("{s:o}", "errors", errors), NULL);
    json_decref(body);
    return NULL;
  }
  if (!name || !*name)
    name = "Untitled workflow";
  if (!(c = ctx_new(app, req, user, op))) {
    json_decref(body);
    return NULL;
  }
  c->definition = json_incref(def);
  c->name = strndup(name, WF_NAME_MAX);
  json_decref(body);
  if (!c->name) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    gw_job_reply(&c->j, NULL);
    ctx_free(c);
    return NULL;
  }
  c->created_at = tg_now_ms(); /* OP_UPDATE: the new updated_at */
  return c;
}

void gw_workflow_create(gw_app *app, tg_httpd_req *req, const char *user)
{
  wf_ctx *c = ctx_from_body(app, req, user, OP_CREATE);
  if (!c)
    return;
  tg_random_id(c->id, sizeof c->id, "wf_", 12);
  submit(c);
}

void gw_workflow_update(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  wf_ctx *c = ctx_from_body(app, req, user, OP_UPDATE);
  if (!c)
    return;
  snprintf(c->id, sizeof c->id, "%s", id);
  submit(c);
}

void gw_workflow_delete(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  wf_ctx *c = ctx_new(app, req, user, OP_DELETE);
  if (!c)
    return;
  snprintf(c->id, sizeof c->id, "%s", id);
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
