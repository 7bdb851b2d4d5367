/*
 * gw_connectors_call: one test or invoke call through a user's connector, from the gateway
 * (contract at gw_connector_call in gw.h; README "Connectors").
 *
 * API connectors: tg_connector_api_config turns the operation and payload into an API node
 * config and its credential, tg_api_request builds the request exactly as the worker's API node
 * does, and it goes out on app->http_egress (the egress policy of user-supplied URLs); the answer
 * is tg_api_output's. An oauth2 connector first gets its access token from app->oauth2_tokens
 * (cached per user and connector, fetched on app->http_egress; the call waits on the loop), then
 * goes out as with a bearer token; a failed token request ends the call with success:false.
 * MCP connectors: an ephemeral tg_mcp client on app->http_egress with the connector's sealed
 * headers (and its OAuth bearer), closed after the call from a zero timer (never inside one of
 * its own callbacks).
 *
 * Secrets: the plaintexts live in the opened connector, the built request and the client's
 * header lines; all are wiped when the call ends, and every credential value is cut out of the
 * output (tg_redact_values) before cb sees it.
 */
#include "gw.h"

#include "tg_api_request.h"
#include "tg_connector.h"
#include "tg_mcp.h"
#include "tg_redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT_MS 30000
#define MAX_RESPONSE (8u << 20)
#define SECRETS_MAX 64

typedef struct conn_call {
  gw_app *app;
  char *user;
  json_t *opened;
  char *bearer;
  json_t *config; /* API: the built node config and credentials, kept while a token is fetched */
  json_t *creds;
  char *auth;  /* API: the credential that authenticates, or NULL */
  char *token; /* API: the oauth2 access token, or NULL */
  int cached;  /* the token came from the cache */
  int renewed; /* a 401 to a cached token already fetched a new one */
  char *operation;
  json_t *payload;
  int test;
  gw_connector_call_cb cb;
  void *arg;
  tg_api_request req;
  tg_mcp_client *mcp;
  uint64_t start_ms;
  size_t nsecrets;
  const char *secrets[SECRETS_MAX + 1]; /* borrowed from opened, bearer and token */
} conn_call;

typedef struct closer {
  uv_timer_t t;
  tg_mcp_client *mcp;
} closer;

static void closer_freed(uv_handle_t *h)
{
  free(h->data);
}

static void on_close_timer(uv_timer_t *t)
{
  closer *k = t->data;
  tg_mcp_close(k->mcp, NULL, NULL);
  uv_close((uv_handle_t *)&k->t, closer_freed);
}

/* Closes an MCP client from the loop, outside its callbacks. */
static void close_later(gw_app *app, tg_mcp_client *m)
{
  closer *k;
  if (!m)
    return;
  if (!(k = calloc(1, sizeof *k))) {
    tg_mcp_close(m, NULL, NULL); /* out of memory: never from its own callbacks in practice */
    return;
  }
  k->mcp = m;
  uv_timer_init(app->loop, &k->t);
  k->t.data = k;
  uv_timer_start(&k->t, on_close_timer, 0, 0);
}

/* Collects the secret strings of v (an opened connector's secret) into c->secrets. */
static void collect(conn_call *c, const json_t *v)
{
  const char *k;
  json_t *m;
  size_t i;
  if (json_is_string(v) && json_string_length(v) > 0 && c->nsecrets < SECRETS_MAX)
    c->secrets[c->nsecrets++] = json_string_value(v);
  json_object_foreach((json_t *)v, k, m) collect(c, m);
  json_array_foreach(v, i, m) collect(c, m);
}

static void wipe_free(char *s)
{
  if (s)
    tg_crypto_wipe_free(s, strlen(s));
}

static void call_free(conn_call *c)
{
  tg_api_request_free(&c->req);
  tg_connector_drop(c->opened);
  tg_connector_drop(c->config);
  tg_connector_drop(c->creds);
  wipe_free(c->bearer);
  wipe_free(c->token);
  free(c->auth);
  free(c->user);
  free(c->operation);
  json_decref(c->payload);
  close_later(c->app, c->mcp);
  free(c);
}

/* Ends the call with 200 and an output. out is stolen. */
static void finish_output(conn_call *c, json_t *out)
{
  json_t *red = out ? tg_redact_values(out, c->secrets) : NULL;
  json_decref(out);
  if (!red)
    c->cb(c->arg, 500, json_pack("{s:s, s:s}", "error", "internal", "message", "Out of memory."));
  else
    c->cb(c->arg, 200, red);
  call_free(c);
}

static void finish_error(conn_call *c, int status, const char *code, const char *msg)
{
  c->cb(c->arg, status, json_pack("{s:s, s:s}", "error", code, "message", msg));
  call_free(c);
}

static double elapsed_s(conn_call *c)
{
  uv_update_time(c->app->loop);
  return (double)(uv_now(c->app->loop) - c->start_ms) / 1000.0;
}

/* {success:false, status_code, data:null, error, elapsed_seconds}. */
static json_t *failed_output(long status, const char *error, double elapsed)
{
  return json_pack("{s:b, s:I, s:n, s:s, s:f}", "success", 0, "status_code", (json_int_t)status,
                   "data", "error", error, "elapsed_seconds", elapsed);
}

/* ---------------------------------------------------------------- API connectors */

static void api_token(conn_call *c, int fresh);

static void on_api_done(void *arg, int err, const tg_http_response *resp)
{
  conn_call *c = arg;
  char msg[256];
  if (!err && resp->status == 401 && c->cached && !c->renewed) {
    /* the cached token may have been revoked: once, a new one (RFC 6750 3.1 invalid_token) */
    c->renewed = 1;
    tg_api_request_free(&c->req);
    memset(&c->req, 0, sizeof c->req);
    api_token(c, 1);
    return;
  }
  if (err) {
    snprintf(msg, sizeof msg, "%s: %s", c->req.tool_name,
             err == TG_EEGRESS ? "the egress policy refuses this address" : tg_strerror(err));
    finish_output(c, failed_output(resp->status, msg, resp->total_ms / 1000.0));
    return;
  }
  finish_output(c, tg_api_output(resp->status, tg_http_header(resp->t, "Content-Type"), resp->body,
                                 resp->body_len, resp->total_ms / 1000.0, NULL));
}

/* Builds the request from c->config and c->creds (with the access token, if any) and sends
 * it; the output comes from on_api_done. */
static void api_send(conn_call *c)
{
  const char *headers[TG_API_HEADERS_MAX + 1];
  char err[256] = "";
  int rc = tg_api_request_build(c->config, c->creds, c->auth, &c->req, err, sizeof err);
  if (rc) {
    finish_output(c, failed_output(0, *err ? err : tg_strerror(rc), elapsed_s(c)));
    return;
  }
  for (size_t i = 0; i <= TG_API_HEADERS_MAX; i++)
    headers[i] = c->req.headers[i];
  rc = tg_http_send(c->app->http_egress,
                    &(tg_http_request){.method = c->req.method,
                                       .url = c->req.url,
                                       .headers = headers,
                                       .body = c->req.body,
                                       .body_len = c->req.body_len,
                                       .timeout_ms = CALL_TIMEOUT_MS,
                                       .max_body = MAX_RESPONSE},
                    on_api_done, c, NULL);
  if (rc)
    on_api_done(c, rc, &(tg_http_response){.body = "", .not_sent = 1});
}

/* Puts the access token token (not owned) into the authenticating credential, as a secret
 * (replacing, and wiping, a previous one). */
static int use_token(conn_call *c, const char *token)
{
  json_t *cred = json_object_get(c->creds, c->auth), *old = json_object_get(cred, "access_token");
  char *copy = strdup(token);
  json_incref(old);
  if (!copy || json_object_set_new(cred, "access_token", json_string(token)) != 0) {
    json_decref(old);
    wipe_free(copy);
    return TG_ENOMEM;
  }
  tg_connector_drop(old);
  for (size_t i = 0; c->token && i < c->nsecrets; i++)
    if (c->secrets[i] == c->token)
      c->secrets[i] = copy;
  if (!c->token && c->nsecrets < SECRETS_MAX)
    c->secrets[c->nsecrets++] = copy;
  wipe_free(c->token);
  c->token = copy;
  return 0;
}

static void on_token(void *arg, int err, long status, const char *token, const char *why)
{
  conn_call *c = arg;
  char msg[256];
  if (err) {
    snprintf(msg, sizeof msg, "oauth2 access token: %s",
             err == TG_EEGRESS ? "the egress policy refuses the token_url's address" : why);
    finish_output(c, failed_output(status, msg, elapsed_s(c)));
    return;
  }
  if (use_token(c, token) != 0) {
    finish_output(c, failed_output(0, tg_strerror(TG_ENOMEM), elapsed_s(c)));
    return;
  }
  api_send(c);
}

/* Gets the access token of an oauth2 connector (cached, or fetched: on_token continues; fresh 1
 * drops the cached one first), then sends the request. */
static void api_token(conn_call *c, int fresh)
{
  const char *id = json_string_value(json_object_get(c->opened, "id"));
  tg_oauth2_token_wait *w;
  char *now = NULL;
  int rc = tg_oauth2_token_get(c->app->oauth2_tokens, c->user, id ? id : "",
                               json_object_get(c->creds, c->auth), fresh, &now, on_token, c, &w);
  if (rc) {
    const char *why =
        rc == TG_EINVAL ? "oauth2 access token: the credential has no token_url" : tg_strerror(rc);
    finish_output(c, failed_output(0, why, elapsed_s(c)));
    return;
  }
  if (!(c->cached = now != NULL))
    return;
  rc = use_token(c, now);
  wipe_free(now);
  if (rc)
    finish_output(c, failed_output(0, tg_strerror(rc), elapsed_s(c)));
  else
    api_send(c);
}

static void api_call(conn_call *c)
{
  const json_t *ops = json_object_get(json_object_get(c->opened, "config"), "operations");
  const char *auth = NULL, *type;
  char err[256] = "";
  int rc;
  if (c->test && json_array_size(ops) == 0) {
    /* no operation: a test is a GET of the base URL with the connector's auth */
    json_t *cfg = json_deep_copy(json_object_get(c->opened, "config")); /* may be shared */
    json_object_set_new(
        cfg, "operations",
        json_pack("[{s:s, s:s, s:s}]", "name", "test", "method", "GET", "path", ""));
    json_object_set_new(c->opened, "config", cfg);
    ops = NULL;
  }
  rc = tg_connector_api_config(c->opened, c->operation, c->payload, &c->config, &c->creds, &auth,
                               err, sizeof err);
  if (rc == 0 && auth && !(c->auth = strdup(auth)))
    rc = TG_ENOMEM;
  if (rc == TG_ENOTFOUND && !c->test && strstr(err, "no operation")) {
    finish_error(c, 404, "operation_not_found", err);
    return;
  }
  if (rc) {
    finish_output(c, failed_output(0, *err ? err : tg_strerror(rc), 0));
    return;
  }
  type =
      json_string_value(json_object_get(json_object_get(c->creds, c->auth ? c->auth : ""), "type"));
  if (type && strcmp(type, "oauth2") == 0)
    api_token(c, 0);
  else
    api_send(c);
}

/* ---------------------------------------------------------------- MCP connectors */

static void mcp_failed(conn_call *c, const tg_mcp_error *e)
{
  finish_output(c, failed_output(e->http_status, e->message[0] ? e->message : tg_strerror(e->err),
                                 elapsed_s(c)));
}

static void on_listed(void *arg, const tg_mcp_error *err, json_t *tools)
{
  conn_call *c = arg;
  json_t *names, *t;
  size_t i;
  if (err) {
    mcp_failed(c, err);
    return;
  }
  names = json_array();
  json_array_foreach(tools, i, t) json_array_append(names, json_object_get(t, "name"));
  finish_output(c, json_pack("{s:b, s:i, s:{s:s?, s:o, s:O}, s:n, s:f}", "success", 1,
                             "status_code", 200, "data", "protocol_version",
                             tg_mcp_protocol_version(c->mcp), "tool_names", names, "tools", tools,
                             "error", "elapsed_seconds", elapsed_s(c)));
}

static void on_connected(void *arg, const tg_mcp_error *err)
{
  conn_call *c = arg;
  if (err) {
    mcp_failed(c, err);
    return;
  }
  if (tg_mcp_list_tools(c->mcp, on_listed, c) != 0)
    finish_output(c, failed_output(0, "cannot list the tools", elapsed_s(c)));
}

static void on_called(void *arg, const tg_mcp_error *err, json_t *result)
{
  conn_call *c = arg;
  int is_error;
  if (err) {
    mcp_failed(c, err);
    return;
  }
  is_error = json_is_true(json_object_get(result, "isError"));
  finish_output(c, json_pack("{s:b, s:i, s:O, s:s?, s:f}", "success", !is_error, "status_code", 200,
                             "data", result, "error", is_error ? "tool returned isError" : NULL,
                             "elapsed_seconds", elapsed_s(c)));
}

static void mcp_call(conn_call *c)
{
  const json_t *cfg = json_object_get(c->opened, "config");
  char **lines = tg_connector_mcp_headers(c->opened, c->bearer);
  const json_t *args = c->payload && !json_is_null(c->payload)
                           ? c->payload
                           : json_object_get(cfg, "example_payload");
  json_t *empty = NULL;
  int rc = TG_ENOMEM;
  if (lines)
    rc = tg_mcp_client_new(&c->mcp, c->app->http_egress,
                           &(tg_mcp_options){.url = json_string_value(json_object_get(cfg, "url")),
                                             .headers = (const char *const *)lines,
                                             .request_timeout_ms = CALL_TIMEOUT_MS});
  tg_connector_lines_free(lines);
  if (rc) {
    finish_output(c, failed_output(0, tg_strerror(rc), 0));
    return;
  }
  if (c->test) {
    rc = tg_mcp_connect(c->mcp, on_connected, c);
  } else if (!c->operation || !*c->operation) {
    finish_error(c, 422, "invalid_request",
                 "Invoking an MCP connector needs an operation (the "
                 "tool name).");
    return;
  } else {
    if (!json_is_object(args))
      args = empty = json_object();
    rc = tg_mcp_call_tool(c->mcp, c->operation, args, on_called, c);
    json_decref(empty);
  }
  if (rc)
    finish_output(c, failed_output(0, tg_strerror(rc), 0));
}

int gw_connector_call(gw_app *app, const char *user, json_t *opened, const char *bearer, int test,
                      const char *operation, const json_t *payload, gw_connector_call_cb cb,
                      void *arg)
{
  conn_call *c = calloc(1, sizeof *c);
  if (!c || !(c->user = strdup(user)) || (operation && !(c->operation = strdup(operation))) ||
      (bearer && !(c->bearer = strdup(bearer)))) {
    if (c) {
      free(c->user);
      free(c->operation);
      free(c);
    }
    tg_connector_drop(opened);
    return TG_ENOMEM;
  }
  c->app = app;
  c->opened = opened;
  c->payload = payload ? json_deep_copy(payload) : NULL;
  c->test = test;
  c->cb = cb;
  c->arg = arg;
  collect(c, json_object_get(opened, "secret"));
  if (c->bearer && c->nsecrets < SECRETS_MAX)
    c->secrets[c->nsecrets++] = c->bearer;
  uv_update_time(app->loop);
  c->start_ms = uv_now(app->loop);
  if (strcmp(json_string_value(json_object_get(opened, "kind")), "mcp") == 0)
    mcp_call(c);
  else
    api_call(c);
  return 0;
}
