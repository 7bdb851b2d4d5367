/*
 * gw_connector_oauth: the browser leg of MCP authorization for a user's MCP connector (README
 * "Connectors", "MCP authorization"): POST /api/connectors/{id}/oauth/start and GET
 * /api/connectors/oauth/callback.
 *
 * Start:    LOAD (job)   the caller's live MCP connector with OAuth (404 otherwise, 422
 *                        not_oauth), its pre-registered client (config.auth.client_id and the
 *                        sealed client_secret) and a stored registration;
 *           BEGIN (loop) tg_mcp_auth_begin on app->http_egress: discovery, registration, PKCE
 *                        S256, state, resource;
 *           SAVE (job)   one transaction: the registration and session (connector_tokens
 *                        client_enc + meta) and the state row (verifier sealed, 10 minutes);
 *                        states a day past their expiry are deleted;
 *           answer       200 {redirect_url, connector_id, expires_at}.
 * Callback: CLAIM (job)  the state is consumed (single-use, unexpired, the caller's when the
 *                        request carries an identity; the row is keyed by the state's SHA-256);
 *                        refused → 400 invalid_state {reason}; the connector and session loaded;
 *           EXCHANGE     (loop) unless the authorization server sent error=...: tg_mcp_auth_
 *                        restore + _finish (code + verifier → tokens);
 *           STORE (job)  one transaction: tokens sealed in connector_tokens, auth_status
 *                        'ACTIVE' (version + 1);
 *           answer       302 to TOOLGATE_UI_URL?connector=<id>&status=connected, or
 *                        &status=failed&error=<code> (JSON with Accept: application/json).
 * Everything restart-safe lives in the database between the two requests, so a gateway restart
 * between start and callback does not matter. The tg_mcp_auth of a step is freed from the next
 * job's done callback, never inside its own callback. No token, code, verifier or secret is
 * logged or answered; tokens exist in clear only in memory, wiped when the request ends.
 */
#include "gw.h"

#include "tg_clock.h"
#include "tg_connector.h"
#include "tg_mcp_auth.h"
#include "tg_store_connector_tokens.h"
#include "tg_store_connectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALLBACK_PATH "/api/connectors/oauth/callback"
#define ID_MAX 128
#define PARAM_MAX 4096

enum { LOAD, SAVE, CLAIM, STORE };

typedef struct oauth_ctx {
  gw_job j;
  int step;
  int want_json;
  char id[ID_MAX + 1];
  char caller[GW_USER_MAX + 1]; /* callback: identity on the request, "" when none */
  const char *why;              /* callback: refused state reason */
  const char *error;            /* callback: failure code for the UI (static or from as_error) */
  char as_error[64];            /* callback: the authorization server's error=, sanitised */
  char *state, *code;           /* callback: query values (code wiped) */
  json_t *opened;               /* the connector, opened (plaintexts: tg_connector_drop) */
  json_t *client, *meta;        /* the stored registration (plaintexts) and session */
  json_t *tokens;               /* callback: what the exchange returned (plaintexts) */
  tg_connector_oauth_state st;  /* callback: the consumed state */
  char *redirect_uri, *auth_url;
  char *begun_state, *verifier; /* start: handed out by tg_mcp_auth_begin */
  json_t *reg;                  /* start: the registration in use {client_id, ...} (plaintexts) */
  tg_mcp_auth *auth;
  int64_t expires_at;
} oauth_ctx;
GW_JOB_FIRST(oauth_ctx);

static void submit(oauth_ctx *c, int step);

static void wipe_str(char *s)
{
  if (s)
    tg_crypto_wipe_free(s, strlen(s));
}

static void ctx_free(oauth_ctx *c)
{
  tg_mcp_auth_free(c->auth);
  json_decref(c->j.body);
  tg_connector_drop(c->opened);
  tg_connector_drop(c->client);
  json_decref(c->meta);
  tg_connector_drop(c->tokens);
  tg_connector_drop(c->reg);
  tg_store_connector_tokens_state_clear(&c->st);
  free(c->state);
  wipe_str(c->code);
  free(c->redirect_uri);
  free(c->auth_url);
  wipe_str(c->begun_state);
  wipe_str(c->verifier);
  free(c);
}

static void reply_free(oauth_ctx *c)
{
  gw_job_reply(&c->j, NULL);
  ctx_free(c);
}

/* <origin of TOOLGATE_REDIRECT_URL> + CALLBACK_PATH: malloc'd, NULL when it has no origin. */
static char *callback_url(const gw_app *app)
{
  const char *u = app->cfg.redirect_url, *p = u ? strstr(u, "://") : NULL;
  size_t n;
  char *out;
  if (!p)
    return NULL;
  n = (size_t)(p + 3 - u) + strcspn(p + 3, "/?#");
  if (!(out = malloc(n + sizeof CALLBACK_PATH)))
    return NULL;
  memcpy(out, u, n);
  memcpy(out + n, CALLBACK_PATH, sizeof CALLBACK_PATH);
  return out;
}

static const char *cfg_str(const json_t *opened, const char *k)
{
  return json_string_value(json_object_get(json_object_get(opened, "config"), k));
}

/* The connector's pre-registered client, or NULL: config.auth.client_id and the sealed
 * secret.auth.client_secret. */
static const char *pre_client_id(const json_t *opened)
{
  return json_string_value(
      json_object_get(json_object_get(json_object_get(opened, "config"), "auth"), "client_id"));
}

static const char *pre_client_secret(const json_t *opened)
{
  return json_string_value(
      json_object_get(json_object_get(json_object_get(opened, "secret"), "auth"), "client_secret"));
}

/* The caller's live MCP connector with OAuth into c->opened (work side); answers 404 / 422. */
static int load_connector(tg_db *db, oauth_ctx *c, const char *user)
{
  int rc = tg_store_connectors_open(db, c->j.app->crypto, user, c->id, &c->opened);
  if (rc == TG_ENOTFOUND ||
      (rc == 0 && strcmp(json_string_value(json_object_get(c->opened, "kind")), "mcp") != 0)) {
    gw_job_fail(&c->j, 404, "not_found", "No such MCP connector.");
    return 0;
  }
  if (rc)
    return rc;
  if (!json_string_value(json_object_get(c->opened, "auth_status"))) {
    gw_job_fail(&c->j, 422, "not_oauth", "This MCP connector does not use OAuth.");
    return 0;
  }
  rc =
      tg_store_connector_tokens_load(db, c->j.app->crypto, user, c->id, NULL, &c->client, &c->meta);
  return rc == TG_ENOTFOUND ? 0 : rc;
}

/* ---------------------------------------------------------------- start */

static int store_load_client(void *arg, const char *issuer, tg_mcp_auth_client *out)
{
  oauth_ctx *c = arg;
  const char *was = json_string_value(json_object_get(c->meta, "issuer"));
  if (!c->client || !was || !issuer || strcmp(was, issuer) != 0)
    return 1; /* registered with another authorization server: register again */
  out->client_id = json_string_value(json_object_get(c->client, "client_id"));
  out->client_secret = json_string_value(json_object_get(c->client, "client_secret"));
  out->auth_method = json_string_value(json_object_get(c->client, "auth_method"));
  return out->client_id ? 0 : 1;
}

static void on_begun(void *arg, int err, const char *message, const tg_mcp_auth_begun *b)
{
  oauth_ctx *c = arg;
  const tg_mcp_auth_session *s = b ? &b->session : NULL;
  const char *kind = pre_client_id(c->opened) ? "pre_registered" : "registered";
  if (err) {
    tg_warn("connector_oauth_start_failed", "{s:s, s:s, s:s}", "user_id", c->j.user, "connector_id",
            c->id, "message", message ? message : tg_strerror(err));
    gw_job_fail(&c->j, 502, "authorization_discovery_failed",
                "The MCP server's authorization could not be started.");
    c->j.body = json_pack("{s:s}", "detail", message ? message : tg_strerror(err));
    submit(c, -1); /* frees c->auth outside its callback */
    return;
  }
  if (s->client.client_id && strncmp(s->client.client_id, "https://", 8) == 0)
    kind = "client_id_metadata_document";
  c->auth_url = strdup(b->authorization_url);
  c->begun_state = strdup(b->state);
  c->verifier = strdup(b->verifier);
  c->reg = json_pack("{s:s, s:s?, s:s?}", "client_id", s->client.client_id, "client_secret",
                     s->client.client_secret, "auth_method", s->client.auth_method);
  json_decref(c->meta);
  c->meta = json_pack("{s:s?, s:s, s:s?, s:s?, s:s, s:s}", "issuer", s->issuer, "token_endpoint",
                      s->token_endpoint, "resource", s->resource, "scope", s->scope, "registration",
                      kind, "redirect_uri", c->redirect_uri);
  if (!c->auth_url || !c->begun_state || !c->verifier || !c->reg || !c->meta) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    submit(c, -1);
    return;
  }
  submit(c, SAVE);
}

static void start_loaded(oauth_ctx *c)
{
  tg_mcp_auth_options opt = {.server_url = cfg_str(c->opened, "url"),
                             .redirect_uri = c->redirect_uri,
                             .client_name = "toolgate",
                             .client_id = pre_client_id(c->opened),
                             .client_secret = pre_client_secret(c->opened),
                             .grant = TG_MCP_GRANT_CODE,
                             .store = {.load_client = store_load_client, .arg = c}};
  int rc = tg_mcp_auth_new(&c->auth, c->j.app->http_egress, &opt);
  if (rc == 0)
    rc = tg_mcp_auth_begin(c->auth, NULL, on_begun, c);
  if (rc) {
    gw_job_fail(&c->j, 422, "invalid_connector",
                "The connector's URL cannot be used for MCP authorization (https, or http to a "
                "loopback host).");
    reply_free(c);
  }
}

static int save_work(tg_db *db, oauth_ctx *c)
{
  int64_t now = tg_now_ms();
  int rc = tg_db_begin(db, 1);
  if (rc == 0)
    rc = tg_store_connector_tokens_save_client(db, c->j.app->crypto, c->j.user, c->id, c->reg,
                                               c->meta, now);
  if (rc == 0)
    rc = tg_store_connector_tokens_state_insert(db, c->j.app->crypto, c->begun_state, c->j.user,
                                                c->id, c->verifier, c->redirect_uri, now);
  if (rc == 0) /* states a day past their expiry: nobody can use them any more */
    rc = tg_store_connector_tokens_states_cleanup(db, now - 86400000, NULL);
  if ((rc = tg_db_end(db, rc)) == 0) {
    c->expires_at = now + TG_CONNECTOR_STATE_TTL_MS;
    c->j.status = 200;
  }
  return rc;
}

/* ---------------------------------------------------------------- callback */

static int claim_work(tg_db *db, oauth_ctx *c)
{
  int rc = tg_store_connector_tokens_state_consume(db, c->j.app->crypto, c->state, c->caller,
                                                   tg_now_ms(), &c->st, &c->why);
  if (rc)
    return rc;
  if (c->why) { /* the reason says which: unknown, used, expired, other_user */
    c->j.body = json_pack("{s:s}", "reason", c->why);
    gw_job_fail(&c->j, 400, "invalid_state", "This OAuth state cannot be used.");
    return 0;
  }
  snprintf(c->j.user, sizeof c->j.user, "%s", c->st.user_id);
  snprintf(c->id, sizeof c->id, "%s", c->st.connector_id);
  if (c->error) /* the authorization server said no: the state is spent, nothing else to do */
    return 0;
  if ((rc = load_connector(db, c, c->j.user)) != 0 || c->j.status)
    return rc;
  if (!c->client || !json_string_value(json_object_get(c->meta, "token_endpoint")))
    c->error = "no_session";
  return 0;
}

/* The end of a callback: 302 to the UI (or JSON), connected or failed with c->error. */
static void callback_reply(oauth_ctx *c)
{
  const char *ui = c->j.app->cfg.ui_url;
  int ok = !c->error;
  tg_info("connector_oauth_callback", "{s:s, s:s, s:s, s:s?}", "user_id", c->j.user, "connector_id",
          c->id, "outcome", ok ? "connected" : "failed", "error", c->error);
  if (ok)
    gw_catalog_connector_changed(c->j.app, c->j.user, c->id);
  if (c->want_json || !ui) {
    json_decref(c->j.body);
    c->j.status = 200;
    c->j.body = json_pack("{s:s, s:s, s:s?}", "connector_id", c->id, "status",
                          ok ? "connected" : "failed", "error", c->error);
    reply_free(c);
    return;
  }
  {
    size_t n = strlen(ui) + strlen(c->id) + 160;
    char *loc = malloc(n);
    if (!loc) {
      gw_job_fail_err(&c->j, TG_ENOMEM);
      reply_free(c);
      return;
    }
    snprintf(loc, n, "Location: %s%sconnector=%s&status=%s%s%s", ui, strchr(ui, '?') ? "&" : "?",
             c->id, ok ? "connected" : "failed", ok ? "" : "&error=", ok ? "" : c->error);
    tg_httpd_respond(c->j.req, 302, (const char *const[]){loc, NULL}, "", 0);
    c->j.req = NULL;
    free(loc);
    ctx_free(c);
  }
}

static int store_load_tokens(void *arg, tg_mcp_auth_tokens *out)
{
  (void)arg;
  (void)out;
  return 1; /* the exchange starts without tokens */
}

static void store_save_tokens(void *arg, const tg_mcp_auth_tokens *t)
{
  oauth_ctx *c = arg;
  tg_connector_drop(c->tokens);
  c->tokens = json_pack("{s:s, s:s?, s:s?, s:I}", "access_token", t->access_token, "refresh_token",
                        t->refresh_token, "scope", t->scope, "expires_at",
                        (json_int_t)(t->expires_at * 1000));
}

static void on_exchanged(void *arg, int err, const char *message)
{
  oauth_ctx *c = arg;
  if (err || !c->tokens) {
    tg_warn("connector_oauth_exchange_failed", "{s:s, s:s, s:s}", "user_id", c->j.user,
            "connector_id", c->id, "message", message ? message : tg_strerror(err));
    c->error = "token_exchange_failed";
  }
  submit(c, STORE); /* writes nothing after a failure; frees c->auth outside its callback */
}

static void exchange(oauth_ctx *c)
{
  tg_mcp_auth_options opt = {
      .server_url = cfg_str(c->opened, "url"),
      .redirect_uri = c->st.redirect_uri,
      .store = {.load_tokens = store_load_tokens, .save_tokens = store_save_tokens, .arg = c}};
  tg_mcp_auth_session s = tg_store_connector_tokens_session(c->meta, c->client);
  int rc = tg_mcp_auth_new(&c->auth, c->j.app->http_egress, &opt);
  if (rc == 0)
    rc = tg_mcp_auth_restore(c->auth, &s);
  if (rc == 0)
    rc = tg_mcp_auth_finish(c->auth, c->code, c->st.verifier, on_exchanged, c);
  if (rc) {
    c->error = "token_exchange_failed";
    callback_reply(c);
  }
}

static int store_work(tg_db *db, oauth_ctx *c)
{
  int64_t now = tg_now_ms();
  int rc;
  if (c->error)
    return 0;
  if ((rc = tg_db_begin(db, 1)) == 0)
    rc = tg_store_connector_tokens_save(db, c->j.app->crypto, c->j.user, c->id, c->tokens, now);
  if (rc == 0)
    rc = tg_store_connectors_set_auth_status(db, c->j.user, c->id, -1, "ACTIVE", now);
  rc = tg_db_end(db, rc);
  if (rc == TG_ENOTFOUND || rc == TG_ECONFLICT) { /* deleted or changed meanwhile */
    c->error = "connector_changed";
    rc = 0;
  }
  return rc;
}

/* ---------------------------------------------------------------- steps */

static int work(tg_db *db, void *arg)
{
  oauth_ctx *c = arg;
  switch (c->step) {
  case LOAD:
    return load_connector(db, c, c->j.user);
  case SAVE:
    return save_work(db, c);
  case CLAIM:
    return claim_work(db, c);
  case STORE:
    return store_work(db, c);
  default:
    return 0; /* -1: nothing to do; the done callback frees the auth state */
  }
}

static void done(void *arg, int status)
{
  oauth_ctx *c = arg;
  tg_mcp_auth_free(c->auth);
  c->auth = NULL;
  if (status != 0) {
    json_decref(c->j.body);
    c->j.body = NULL;
    gw_job_fail_err(&c->j, status);
    reply_free(c);
    return;
  }
  if (c->j.status >= 400 && c->step != STORE) {
    reply_free(c);
    return;
  }
  switch (c->step) {
  case LOAD:
    start_loaded(c);
    return;
  case SAVE:
    json_decref(c->j.body);
    c->j.body = json_pack("{s:s, s:s, s:I}", "redirect_url", c->auth_url, "connector_id", c->id,
                          "expires_at", (json_int_t)c->expires_at);
    tg_info("connector_oauth_start", "{s:s, s:s}", "user_id", c->j.user, "connector_id", c->id);
    reply_free(c);
    return;
  case CLAIM:
    if (c->error)
      callback_reply(c);
    else
      exchange(c);
    return;
  default:
    callback_reply(c);
    return;
  }
}

static void submit(oauth_ctx *c, int step)
{
  c->step = step;
  if (gw_submit(&c->j, work, done, c) != 0)
    ctx_free(c); /* answered 503 */
}

void gw_connector_oauth_start(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  oauth_ctx *c;
  char *cb = callback_url(app);
  if (!app->crypto) {
    free(cb);
    gw_respond_error(req, 503, "secret_key_missing",
                     "The server has no TOOLGATE_SECRET_KEY to store tokens encrypted; ask the "
                     "operator to configure one.",
                     NULL, NULL);
    return;
  }
  if (!cb || strlen(id) > ID_MAX) {
    free(cb);
    gw_respond_error(req, cb ? 404 : 500, cb ? "not_found" : "internal",
                     cb ? "No such MCP connector." : "No public base URL is configured.", NULL,
                     NULL);
    return;
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c))) {
    free(cb);
    return;
  }
  c->redirect_uri = cb;
  snprintf(c->id, sizeof c->id, "%s", id);
  submit(c, LOAD);
}

/* The authorization server's error code, kept only when it is a plain token (RFC 6749 section
 * 4.1.2.1 error codes are [\x20-\x21\x23-\x5B\x5D-\x7E]; ours go into a URL unescaped). */
static void sanitise_error(const char *in, char *out, size_t n)
{
  size_t i = 0;
  for (; in[i] && i + 1 < n; i++) {
    char ch = in[i];
    out[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                     ch == '_' || ch == '-' || ch == '.'
                 ? ch
                 : '_';
  }
  out[i] = 0;
}

/* The answer as JSON instead of the browser's redirect. */
static int wants_json(tg_httpd_req *req)
{
  const char *accept = tg_httpd_header(req, "Accept"), *format = tg_httpd_query(req, "format");
  return (accept && strstr(accept, "application/json")) || (format && strcmp(format, "json") == 0);
}

void gw_connector_oauth_callback(gw_app *app, tg_httpd_req *req)
{
  const char *state = tg_httpd_query(req, "state"), *code = tg_httpd_query(req, "code");
  const char *error = tg_httpd_query(req, "error");
  char caller[GW_USER_MAX + 1] = "";
  const char *bad = !state || !*state || strlen(state) > PARAM_MAX            ? "invalid_state"
                    : !error && (!code || !*code || strlen(code) > PARAM_MAX) ? "invalid_request"
                                                                              : NULL;
  oauth_ctx *c;
  if (bad) {
    gw_respond_error(req, 400, bad, "The OAuth state or code is missing or malformed.", NULL, NULL);
    return;
  }
  /* a browser that carries an identity must be the state's user */
  if ((tg_httpd_header(req, "X-User-Id") || tg_httpd_header(req, "Authorization")) &&
      gw_identify(app, req, caller) != 0)
    return; /* answered 401 */
  if (!(c = gw_job_new(app, req, NULL, sizeof *c)))
    return;
  memcpy(c->caller, caller, sizeof c->caller);
  c->want_json = wants_json(req);
  if (error) {
    sanitise_error(error, c->as_error, sizeof c->as_error);
    c->error = c->as_error;
  }
  if (!(c->state = strdup(state)) || (!error && !(c->code = strdup(code)))) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    reply_free(c);
    return;
  }
  submit(c, CLAIM);
}
