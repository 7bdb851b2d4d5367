/*
 * gw_tools: the catalog routes (README "Tool catalog").
 *
 *   GET /api/agents/available-tools: {success, count, tools: [...]} with the built-ins first. The
 *     answer is cached per user and catalog generation (gw_catalog.c), so a user with 10,000 tools
 *     is answered from memory; on a miss one job reads the catalog and the versions of the
 *     user's tool sources (a changed source starts a background sync). When the registry is
 *     unreadable or has no built-ins, the built-ins come from memory ("degraded": true when
 *     unreadable).
 *   POST /api/agents/create-tool-from-connector {connector_id, tool_name, tool_description}:
 *     a tool of the caller's live connector whose input schema is inferred from the connector's
 *     example_payload (tg_tool_schema); 201 with the tool, 404 unknown connector, 422.
 *   POST /api/tools/register {name, description?, tool_type?, input_schema?, definition?,
 *     tags?}: the caller's own tool "custom:<name>" (201; the same name again updates it).
 *   DELETE /api/tools/{id}: soft-deletes one of the caller's tools; anything else is 404.
 */
#include "gw.h"

#include "tg_clock.h"
#include "tg_json.h"
#include "tg_store_credits.h"
#include "tg_store_connectors.h"
#include "tg_store_tools.h"
#include "tg_tool_schema.h"

#include <stdlib.h>
#include <string.h>

#define JSON_CT "Content-Type: application/json; charset=utf-8"

typedef struct tools_ctx {
  gw_job j;
  uint64_t gen;
  json_t *in;       /* request body */
  json_t *versions; /* available-tools: source versions read */
  char *text;       /* available-tools: the answer */
  size_t len;
  char id[TG_TOOL_ID_LEN + 8];
} tools_ctx;
GW_JOB_FIRST(tools_ctx);

static void ctx_free(tools_ctx *c)
{
  json_decref(c->in);
  json_decref(c->versions);
  free(c->text);
  free(c);
}

/* ---------------------------------------------------------------- available-tools */

static int has_builtin(const json_t *tools)
{
  const json_t *t = json_array_get(tools, 0);
  return t && strcmp(json_string_value(json_object_get(t, "source")), "builtin") == 0;
}

static int available_work(tg_db *db, void *arg)
{
  tools_ctx *c = arg;
  const json_t *builtins = gw_catalog_builtins(c->j.app);
  int rc = 0, degraded = 0;
  json_t *tools = tg_store_tools_catalog(db, &rc, c->j.user), *body;
  if (!tools) {
    tg_warn("catalog_unreadable", "{s:s, s:s}", "user_id", c->j.user, "error", tg_errname(rc));
    degraded = 1;
    tools = json_array();
  }
  if (tools && !has_builtin(tools) && builtins) {
    json_t *all = json_deep_copy(builtins);
    json_array_extend(all, tools);
    json_decref(tools);
    tools = all;
  }
  c->versions = degraded ? NULL : gw_catalog_source_versions(db, &rc, c->j.user);
  body = json_pack("{s:b, s:I, s:o}", "success", 1, "count", (json_int_t)json_array_size(tools),
                   "tools", tools);
  if (body && degraded)
    json_object_set_new(body, "degraded", json_true());
  c->text = body ? tg_json_dumps(body, &c->len) : NULL;
  json_decref(body);
  if (degraded) /* an answer from memory is not cached */
    c->gen = UINT64_MAX;
  return c->text ? 0 : TG_ENOMEM;
}

static void respond_text(tg_httpd_req *req, const char *text, size_t len)
{
  const char *headers[] = {JSON_CT, "Cache-Control: no-store", NULL};
  tg_httpd_respond(req, 200, headers, text, len);
}

static void available_done(void *arg, int status)
{
  tools_ctx *c = arg;
  if (status != 0) {
    gw_job_fail_err(&c->j, status);
    gw_job_reply(&c->j, NULL);
    ctx_free(c);
    return;
  }
  respond_text(c->j.req, c->text, c->len);
  c->j.req = NULL;
  if (c->versions)
    gw_catalog_check_versions(c->j.app, c->j.user, c->versions);
  if (c->gen != UINT64_MAX) {
    gw_catalog_cache_put(c->j.app, c->j.user, c->gen, c->text, c->len);
    c->text = NULL;
  }
  ctx_free(c);
}

void gw_tools_available(gw_app *app, tg_httpd_req *req, const char *user)
{
  size_t len = 0;
  void *ref = NULL;
  const char *hit = gw_catalog_cached(app, user, &len, &ref);
  const char *headers[] = {JSON_CT, "Cache-Control: no-store", NULL};
  tools_ctx *c;
  if (hit) { /* written from the cache's memory, which the reference keeps until then */
    tg_httpd_respond_shared(req, 200, headers, hit, len, gw_catalog_cached_release, ref);
    return;
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c)))
    return;
  c->gen = gw_catalog_gen(app, user);
  if (gw_submit(&c->j, available_work, available_done, c) != 0)
    ctx_free(c);
}

/* ---------------------------------------------------------------- writes */

static void write_done(void *arg, int status)
{
  tools_ctx *c = arg;
  if (status == 0 && c->j.status < 300)
    gw_catalog_touch(c->j.app, c->j.user);
  if (status != 0) {
    json_decref(c->j.body);
    c->j.body = NULL;
    gw_job_fail_err(&c->j, status);
  }
  gw_job_reply(&c->j, NULL);
  ctx_free(c);
}

/* 1 when s is a tool name: 1 to 128 of [A-Za-z0-9_.-]. */
static int tool_name_ok(const char *s)
{
  size_t n = 0;
  if (!s)
    return 0;
  for (; s[n]; n++)
    if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
          (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '.' || s[n] == '-'))
      return 0;
  return n >= 1 && n <= TG_TOOL_NAME_MAX;
}

/* Upserts def for the job's user and answers 201 with the stored tool. */
static int write_tool(tg_db *db, tools_ctx *c, const tg_tool_def *def)
{
  char id[TG_TOOL_ID_LEN + 1];
  int rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  if (rc == 0)
    rc = tg_tool_id(c->j.user, def->string_id, id);
  if (rc == 0)
    rc = tg_store_tools_upsert(db, c->j.user, def, tg_now_ms(), NULL);
  if (rc == 0 && (c->j.body = tg_store_tools_get(db, &rc, c->j.user, id)) != NULL)
    c->j.status = 201;
  return c->j.status ? 0 : rc;
}

/* Answers 422 invalid_tool with message when !ok, else runs work for the body in (taken). */
static void start_write(gw_app *app, tg_httpd_req *req, const char *user, json_t *in, int ok,
                        const char *message, tg_dbq_work_fn work)
{
  tools_ctx *c;
  if (!ok) {
    json_decref(in);
    gw_respond_error(req, 422, "invalid_tool", message, NULL, NULL);
    return;
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c))) {
    json_decref(in);
    return;
  }
  c->in = in;
  if (gw_submit(&c->j, work, write_done, c) != 0)
    ctx_free(c);
}

static int from_connector_work(tg_db *db, void *arg)
{
  tools_ctx *c = arg;
  const char *cid = json_string_value(json_object_get(c->in, "connector_id"));
  const char *name = json_string_value(json_object_get(c->in, "tool_name"));
  const char *desc = json_string_value(json_object_get(c->in, "tool_description"));
  json_t *row, *def = NULL;
  char sid[400];
  int rc = 0;
  if (!(row = tg_store_connectors_get(db, &rc, c->j.user, cid))) {
    if (rc != TG_ENOTFOUND)
      return rc;
    gw_job_fail(&c->j, 404, "not_found", "No connector with that id.");
    return 0;
  }
  {
    const char *kind = json_string_value(json_object_get(row, "kind"));
    const json_t *example = json_object_get(json_object_get(row, "config"), "example_payload");
    tg_tool_def d;
    def = json_pack("{s:o, s:s, s:s, s:s}", "input_schema", tg_tool_schema_infer(example), "source",
                    kind, "connector_id", cid, "tool_name", name);
    snprintf(sid, sizeof sid, "custom:%s:%s", cid, name);
    d = (tg_tool_def){.string_id = sid,
                      .name = name,
                      .description = desc ? desc : "",
                      .tool_type = strcmp(kind, "mcp") == 0 ? "mcp" : "api",
                      .source = "connector",
                      .connector_id = cid,
                      .definition = def};
    rc = def ? write_tool(db, c, &d) : TG_ENOMEM;
  }
  json_decref(def);
  json_decref(row);
  return rc;
}

void gw_tools_from_connector(gw_app *app, tg_httpd_req *req, const char *user)
{
  json_t *in = gw_parse_body(req);
  const char *cid, *desc;
  if (!in)
    return;
  cid = json_string_value(json_object_get(in, "connector_id"));
  desc = json_string_value(json_object_get(in, "tool_description"));
  start_write(app, req, user, in,
              cid && *cid && strlen(cid) <= 128 &&
                  tool_name_ok(json_string_value(json_object_get(in, "tool_name"))) &&
                  (!json_object_get(in, "tool_description") || (desc && strlen(desc) <= 4096)),
              "connector_id (string) and tool_name (1 to 128 of A-Z a-z 0-9 _ . -) are required; "
              "tool_description is a string of at most 4096 bytes.",
              from_connector_work);
}

static int register_work(tg_db *db, void *arg)
{
  tools_ctx *c = arg;
  const char *name = json_string_value(json_object_get(c->in, "name"));
  const char *type = json_string_value(json_object_get(c->in, "tool_type"));
  json_t *def = json_deep_copy(json_object_get(c->in, "definition"));
  const json_t *schema = json_object_get(c->in, "input_schema");
  char sid[200];
  tg_tool_def d;
  int rc;
  if (!def)
    def = json_object();
  if (schema)
    json_object_set(def, "input_schema", (json_t *)schema);
  if (!json_object_get(def, "input_schema"))
    json_object_set_new(def, "input_schema", tg_tool_schema_infer(NULL));
  json_object_set_new(def, "source", json_string("user"));
  json_object_set_new(def, "tool_name", json_string(name));
  snprintf(sid, sizeof sid, "custom:%s", name);
  d = (tg_tool_def){.string_id = sid,
                    .name = name,
                    .description = json_string_value(json_object_get(c->in, "description")),
                    .tool_type = type ? type : "custom",
                    .source = "user",
                    .definition = def,
                    .tags = json_object_get(c->in, "tags")};
  rc = write_tool(db, c, &d);
  json_decref(def);
  return rc;
}

static int one_of(const char *s, const char *const *set)
{
  for (; s && *set; set++)
    if (strcmp(s, *set) == 0)
      return 1;
  return 0;
}

void gw_tools_register(gw_app *app, tg_httpd_req *req, const char *user)
{
  static const char *const types[] = {"local", "mcp", "api", "crewai", "custom", NULL};
  json_t *in = gw_parse_body(req), *v, *tags;
  const char *desc;
  size_t i;
  int ok;
  if (!in)
    return;
  desc = json_string_value(json_object_get(in, "description"));
  tags = json_object_get(in, "tags");
  ok = tool_name_ok(json_string_value(json_object_get(in, "name"))) &&
       (!json_object_get(in, "description") || (desc && strlen(desc) <= 4096)) &&
       (!json_object_get(in, "tool_type") ||
        one_of(json_string_value(json_object_get(in, "tool_type")), types)) &&
       (!json_object_get(in, "input_schema") ||
        json_is_object(json_object_get(in, "input_schema"))) &&
       (!json_object_get(in, "definition") || json_is_object(json_object_get(in, "definition"))) &&
       (!tags || (json_is_array(tags) && json_array_size(tags) <= 32));
  json_array_foreach(tags, i, v) ok = ok && json_is_string(v) && json_string_length(v) <= 64;
  start_write(app, req, user, in, ok,
              "name (1 to 128 of A-Z a-z 0-9 _ . -) is required; description a string; tool_type "
              "local, mcp, api, crewai or custom; input_schema and definition objects; tags at "
              "most 32 strings.",
              register_work);
}

static int delete_work(tg_db *db, void *arg)
{
  tools_ctx *c = arg;
  int rc = tg_store_tools_delete(db, c->j.user, c->id, tg_now_ms());
  if (rc == 0) {
    c->j.status = 200;
    c->j.body = json_pack("{s:s, s:b}", "tool_id", c->id, "deleted", 1);
  } else if (rc == TG_ENOTFOUND) {
    gw_job_fail(&c->j, 404, "not_found", "No tool of yours with that id.");
  }
  return c->j.status ? 0 : rc;
}

void gw_tools_delete(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  tools_ctx *c;
  if (strlen(id) != TG_TOOL_ID_LEN) {
    gw_respond_error(req, 404, "not_found", "No tool of yours with that id.", NULL, NULL);
    return;
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c)))
    return;
  snprintf(c->id, sizeof c->id, "%s", id);
  if (gw_submit(&c->j, delete_work, write_done, c) != 0)
    ctx_free(c);
}
