/*
 * gw_connectors: the routes of a user's connectors (README "Connectors"):
 *   POST /api/connectors/api | /api/connectors/mcp   create (201); ?validate=1 tests first
 *   GET /api/connectors                              {success, count, connectors}
 *   GET | PUT | DELETE /api/connectors/{id}          one, update (200), soft delete (200)
 *   POST /api/connectors/{id}/test | /invoke         {success, status_code, data, error,
 *                                                    elapsed_seconds} (gw_connectors_call.c)
 *
 * Bodies are validated on the loop (tg_connector_parse: 422 invalid_connector listing every
 * field); without TOOLGATE_SECRET_KEY a write is refused with 503 secret_key_missing (secrets are
 * never stored in clear). An update opens the stored connector, lays the body over it
 * (tg_connector_update_body: auth and headers omitted keep the sealed ones), validates the
 * result and writes it, in one job. Every answer carries the public view (tg_connector_public:
 * config lifted, auth without its secret fields, header names only, auth_status): a secret
 * value is never returned or logged. Another user's connector, like a deleted one, is 404.
 * An MCP connector that requires OAuth is tested or invoked with its access token only when
 * its auth_status is ACTIVE (409 connector_not_connected otherwise); ?validate=1 does not test
 * such a connector (it has no token before the browser leg).
 */
#include "gw.h"

#include "tg_clock.h"
#include "tg_store_connectors.h"

#include <stdlib.h>
#include <string.h>

#define ID_MAX 64

typedef struct conn_ctx {
  gw_job j;
  char id[ID_MAX + 1];
  tg_connector_input in; /* create */
  json_t *patch;         /* update: the body */
  json_t *opened;        /* test, invoke: the opened connector (plaintexts) */
  char *bearer;          /* test, invoke: an MCP connector's OAuth access token */
  char *operation;       /* invoke */
  json_t *payload;       /* invoke */
  int test;
} conn_ctx;
GW_JOB_FIRST(conn_ctx);

static void ctx_free(conn_ctx *c)
{
  tg_connector_input_free(&c->in);
  tg_connector_drop(c->patch);
  tg_connector_drop(c->opened);
  if (c->bearer)
    tg_crypto_wipe_free(c->bearer, strlen(c->bearer));
  free(c->operation);
  json_decref(c->payload);
  json_decref(c->j.body);
  free(c);
}

static void reply(conn_ctx *c)
{
  gw_job_reply(&c->j, NULL);
  ctx_free(c);
}

static void conn_done(void *ctx, int status)
{
  conn_ctx *c = ctx;
  if (status != 0) {
    json_decref(c->j.body);
    c->j.body = NULL;
    gw_job_fail_err(&c->j, status);
  }
  if (c->j.status >= 200 && c->j.status < 300 && *c->id) {
    /* the catalog follows: the connector's tools are synced, updated or soft-deleted */
    gw_catalog_connector_changed(c->j.app, c->j.user, c->id);
  }
  reply(c);
}

static void not_found(gw_job *j)
{
  gw_job_fail(j, 404, "not_found", "No connector with that id.");
}

/* Sets the job's answer to a public row (stolen). */
static int answer_row(conn_ctx *c, int status, json_t *row)
{
  c->j.body = tg_connector_public(row);
  json_decref(row);
  if (!c->j.body)
    return TG_ENOMEM;
  c->j.status = status;
  return 0;
}

static int no_key(gw_app *app, tg_httpd_req *req)
{
  if (app->crypto)
    return 0;
  gw_respond_error(req, 503, "secret_key_missing",
                   "The server has no TOOLGATE_SECRET_KEY to store connectors encrypted; ask the "
                   "operator to configure one.",
                   NULL, NULL);
  return 1;
}

/* ---------------------------------------------------------------- create */

static int create_work(tg_db *db, void *arg)
{
  conn_ctx *c = arg;
  json_t *row = NULL;
  int rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  if (rc == 0)
    rc = tg_store_connectors_create(db, c->j.app->crypto, c->j.user, &c->in, tg_now_ms(), &row);
  if (rc == TG_ECONFLICT) {
    gw_job_fail(&c->j, 409, "connector_name_taken", "You have a connector of that name already.");
    return 0;
  }
  if (rc)
    return rc;
  snprintf(c->id, sizeof c->id, "%s", json_string_value(json_object_get(row, "id")));
  return answer_row(c, 201, row);
}

static void submit_create(conn_ctx *c)
{
  if (gw_submit(&c->j, create_work, conn_done, c) != 0)
    ctx_free(c);
}

/* ?validate=1: the test's answer decides. */
static void on_validated(void *arg, int status, json_t *body)
{
  conn_ctx *c = arg;
  if (status == 200 && json_is_true(json_object_get(body, "success"))) {
    json_decref(body);
    submit_create(c);
    return;
  }
  gw_job_fail(&c->j, 422, "connector_test_failed",
              "The connector's test call failed; nothing was stored.");
  c->j.body = json_pack("{s:o}", "test", body);
  reply(c);
}

static void create(gw_app *app, tg_httpd_req *req, const char *user, const char *kind)
{
  json_t *body = gw_parse_body(req), *errors, *opened;
  const char *v = tg_httpd_query(req, "validate");
  tg_connector_input in;
  conn_ctx *c;
  if (!body)
    return;
  errors = tg_connector_parse(kind, body, &in);
  json_decref(body);
  if (errors) {
    gw_respond_error(req, 422, "invalid_connector", "The connector is invalid.",
                     json_pack("{s:o}", "errors", errors), NULL);
    return;
  }
  if (no_key(app, req) || !(c = gw_job_new(app, req, user, sizeof *c))) {
    tg_connector_input_free(&in);
    return;
  }
  c->in = in;
  if (!v || strcmp(v, "1") != 0 || c->in.oauth) {
    submit_create(c);
    return;
  }
  opened = json_pack("{s:s, s:s, s:s, s:O, s:o}", "id", "con_validate", "kind", c->in.kind, "name",
                     c->in.name, "config", c->in.config, "secret", json_deep_copy(c->in.secret));
  if (!opened || gw_connector_call(app, user, opened, NULL, 1, NULL, NULL, on_validated, c) != 0) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    reply(c);
  }
}

void gw_connector_create_api(gw_app *app, tg_httpd_req *req, const char *user)
{
  create(app, req, user, "api");
}

void gw_connector_create_mcp(gw_app *app, tg_httpd_req *req, const char *user)
{
  create(app, req, user, "mcp");
}

/* ---------------------------------------------------------------- reads */

static int list_work(tg_db *db, void *arg)
{
  conn_ctx *c = arg;
  int rc = 0;
  size_t i;
  json_t *rows = tg_store_connectors_list(db, &rc, c->j.user), *r, *out;
  if (!rows)
    return rc;
  out = json_array();
  json_array_foreach(rows, i, r) json_array_append_new(out, tg_connector_public(r));
  json_decref(rows);
  c->j.body = json_pack("{s:b, s:I, s:o}", "success", 1, "count", (json_int_t)json_array_size(out),
                        "connectors", out);
  c->j.status = 200;
  return c->j.body ? 0 : TG_ENOMEM;
}

void gw_connector_list(gw_app *app, tg_httpd_req *req, const char *user)
{
  conn_ctx *c = gw_job_new(app, req, user, sizeof *c);
  if (c && gw_submit(&c->j, list_work, conn_done, c) != 0)
    ctx_free(c);
}

static int get_work(tg_db *db, void *arg)
{
  conn_ctx *c = arg;
  int rc = 0;
  json_t *row = tg_store_connectors_get(db, &rc, c->j.user, c->id);
  if (!row) {
    if (rc == TG_ENOTFOUND)
      not_found(&c->j);
    return c->j.status ? 0 : rc;
  }
  *c->id = 0; /* nothing changed */
  return answer_row(c, 200, row);
}

static int delete_work(tg_db *db, void *arg)
{
  conn_ctx *c = arg;
  int rc = tg_store_connectors_delete(db, c->j.user, c->id, tg_now_ms());
  if (rc == TG_ENOTFOUND) {
    not_found(&c->j);
    return 0;
  }
  if (rc)
    return rc;
  c->j.status = 200;
  c->j.body = json_pack("{s:b, s:s, s:b}", "success", 1, "id", c->id, "deleted", 1);
  return c->j.body ? 0 : TG_ENOMEM;
}

/* ---------------------------------------------------------------- update */

static int update_work(tg_db *db, void *arg)
{
  conn_ctx *c = arg;
  json_t *opened = NULL, *merged, *errors, *row = NULL;
  tg_connector_input in;
  int rc = tg_store_connectors_open(db, c->j.app->crypto, c->j.user, c->id, &opened);
  if (rc == TG_ENOTFOUND) {
    not_found(&c->j);
    return 0;
  }
  if (rc)
    return rc;
  merged = tg_connector_update_body(opened, c->patch);
  errors = merged
               ? tg_connector_parse(json_string_value(json_object_get(opened, "kind")), merged, &in)
               : NULL;
  tg_connector_drop(opened);
  if (!merged)
    return TG_ENOMEM;
  if (errors) {
    tg_connector_drop(merged);
    gw_job_fail(&c->j, 422, "invalid_connector", "The connector is invalid.");
    c->j.body = json_pack("{s:o}", "errors", errors);
    return 0;
  }
  rc = tg_store_connectors_update(db, c->j.app->crypto, c->j.user, c->id, &in, tg_now_ms(), &row);
  tg_connector_input_free(&in); /* in shares strings with merged: wiped after it */
  tg_connector_drop(merged);
  if (rc == TG_ECONFLICT) {
    gw_job_fail(&c->j, 409, "connector_name_taken", "You have a connector of that name already.");
    return 0;
  }
  if (rc == TG_ENOTFOUND) {
    not_found(&c->j);
    return 0;
  }
  return rc ? rc : answer_row(c, 200, row);
}

void gw_connector_by_id(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  const char *m = tg_httpd_method(req);
  int put = strcmp(m, "PUT") == 0, del = strcmp(m, "DELETE") == 0;
  json_t *body = NULL;
  conn_ctx *c;
  if (strlen(id) > ID_MAX) {
    gw_respond_error(req, 404, "not_found", "No connector with that id.", NULL, NULL);
    return;
  }
  if (put && (!(body = gw_parse_body(req)) || no_key(app, req))) {
    json_decref(body);
    return;
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c))) {
    json_decref(body);
    return;
  }
  snprintf(c->id, sizeof c->id, "%s", id);
  c->patch = body;
  if (gw_submit(&c->j, put ? update_work : del ? delete_work : get_work, conn_done, c) != 0)
    ctx_free(c);
}

/* ---------------------------------------------------------------- test, invoke */

static int open_work(tg_db *db, void *arg)
{
  conn_ctx *c = arg;
  const char *st;
  int rc = tg_store_connectors_open(db, c->j.app->crypto, c->j.user, c->id, &c->opened);
  if (rc == TG_ENOTFOUND) {
    not_found(&c->j);
    return 0;
  }
  if (rc == TG_ESTATE) {
    gw_job_fail(&c->j, 503, "secret_key_missing",
                "The server has no TOOLGATE_SECRET_KEY to open the connector's secrets.");
    return 0;
  }
  if (rc)
    return rc;
  st = json_string_value(json_object_get(c->opened, "auth_status"));
  if (st && strcmp(st, "ACTIVE") == 0)
    rc = tg_store_connectors_access_token(db, c->j.app->crypto, c->j.user, c->id, &c->bearer);
  if (st && (rc == TG_ENOTFOUND || strcmp(st, "ACTIVE") != 0)) {
    gw_job_fail(&c->j, 409, "connector_not_connected",
                "This MCP connector requires authorization and is not connected.");
    c->j.body = json_pack("{s:s}", "auth_status", st);
    return 0;
  }
  return rc;
}

static void on_called(void *arg, int status, json_t *body)
{
  conn_ctx *c = arg;
  c->j.status = status;
  if (status >= 400) {
    c->j.code = status == 404 ? "operation_not_found" : "connector_call_failed";
    c->j.message = "The connector could not be called.";
  }
  c->j.body = body;
  *c->id = 0;
  reply(c);
}

static void opened_done(void *ctx, int status)
{
  conn_ctx *c = ctx;
  json_t *opened = c->opened;
  if (status != 0 || c->j.status != 0) {
    *c->id = 0;
    conn_done(c, status);
    return;
  }
  c->opened = NULL;
  if (gw_connector_call(c->j.app, c->j.user, opened, c->bearer, c->test, c->operation, c->payload,
                        on_called, c) != 0) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    reply(c);
  }
}

static void call_route(gw_app *app, tg_httpd_req *req, const char *user, const char *id, int test)
{
  size_t len = 0;
  json_t *body = NULL;
  conn_ctx *c;
  const json_t *op;
  tg_httpd_body(req, &len);
  if (len && !(body = gw_parse_body(req)))
    return;
  op = json_object_get(body, "operation");
  if (strlen(id) > ID_MAX || (op && !json_is_string(op) && !json_is_null(op))) {
    json_decref(body);
    if (strlen(id) > ID_MAX)
      gw_respond_error(req, 404, "not_found", "No connector with that id.", NULL, NULL);
    else
      gw_respond_error(req, 400, "invalid_request", "operation must be a string.", NULL, NULL);
    return;
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c))) {
    json_decref(body);
    return;
  }
  snprintf(c->id, sizeof c->id, "%s", id);
  c->test = test;
  if (json_is_string(op))
    c->operation = strdup(json_string_value(op));
  c->payload = json_incref(json_object_get(body, "payload"));
  json_decref(body);
  if (gw_submit(&c->j, open_work, opened_done, c) != 0)
    ctx_free(c);
}

void gw_connector_test(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  call_route(app, req, user, id, 1);
}

void gw_connector_invoke(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  call_route(app, req, user, id, 0);
}
