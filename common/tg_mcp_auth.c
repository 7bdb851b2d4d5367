/*
 * tg_mcp_auth: the MCP authorization flow (tg_mcp_auth.h) as a small state machine on the loop.
 *
 * One flow runs at a time; its step says which HTTP answer is awaited (a->t is that transfer):
 *   PRM -> ASM -> [REGISTER] -> BROWSE (waits for tg_mcp_auth_redirected) -> TOKEN
 *                            -> TOKEN (client_credentials)  |  IDP -> TOKEN (cross-app access)
 *   REFRESH -> TOKEN's answer handling; a failed refresh inside a challenge falls back to the flow.
 * tg_mcp_auth_begin runs the same flow up to BROWSE and hands the authorization URL, state and
 * verifier to its caller instead of the browser callback; tg_mcp_auth_restore + _finish run the
 * TOKEN step from a stored session, in whichever process the browser came back to.
 * Discovery and the client registration are kept after the first flow, so a later challenge
 * (step-up, expiry) starts at the grant, unless it names other resource metadata.
 *
 * Invariants: every URL fetched passes tg_mcp_auth_url_allowed; the metadata's resource must
 * cover the server URL and the issuer must be the one the metadata was discovered for (the
 * 2025-03-26 fallback without resource metadata accepts any issuer on the MCP server's own
 * origin, which is where that revision puts the authorization server); response bodies are
 * capped at MAX_BODY; access and refresh tokens, codes, verifiers and client secrets are wiped
 * when dropped and never logged (log lines carry URLs of metadata and endpoints only).
 */
#include "tg_mcp_auth.h"

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_jwt.h"
#include "tg_log.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_BODY (256u << 10)
#define DEFAULT_TIMEOUT_MS 10000L
#define REFRESH_EARLY_S 60
#define GRANT_JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"

enum { S_IDLE, S_PRM, S_ASM, S_REGISTER, S_BROWSE, S_TOKEN, S_REFRESH, S_IDP };

struct tg_mcp_auth {
  tg_http_client *http;
  /* configuration (copied) */
  char *server_url, *redirect_uri, *client_name, *cfg_client_id, *cfg_client_secret, *cimd_url;
  char *idp_id_token, *idp_token_endpoint, *idp_client_id;
  char *private_key_pem; /* private_key_jwt client authentication (ES256), or NULL */
  int grant;
  tg_mcp_auth_browse_cb browse;
  void *browse_arg;
  tg_mcp_auth_store store;
  long timeout_ms;
  /* discovery */
  int discovered, legacy;
  char *prm_url;  /* where the resource metadata came from */
  char *resource; /* RFC 8707 resource (NULL without resource metadata) */
  char *prm_scopes;
  char *issuer;
  json_t *asm_doc; /* authorization server metadata */
  char *authorization_endpoint, *token_endpoint, *registration_endpoint;
  /* client */
  char *client_id, *client_secret, *auth_method;
  /* tokens */
  char *access_token, *refresh_token, *scope, *header;
  int64_t expires_at;
  /* the flow */
  int step;
  tg_http_transfer *t;
  char *urls[3];
  size_t n_urls, url_i;
  char *want_scope, *chal_metadata, *chal_scope;
  char verifier[44], state[44];
  tg_mcp_auth_done_cb cb;
  void *cb_arg;
  tg_mcp_auth_begin_cb begin_cb; /* tg_mcp_auth_begin: the browser leg is the caller's */
  void *begin_arg;
};

static void run_flow(tg_mcp_auth *a);

static void wipe_free(char *s)
{
  if (s)
    sodium_memzero(s, strlen(s));
  free(s);
}

static int dup_opt(char **dst, const char *src)
{
  *dst = NULL;
  return src && !(*dst = strdup(src)) ? TG_ENOMEM : 0;
}

static void set_str(char **dst, const char *src)
{
  wipe_free(*dst);
  *dst = src ? strdup(src) : NULL;
}

static void clear_urls(tg_mcp_auth *a)
{
  while (a->n_urls)
    free(a->urls[--a->n_urls]);
  a->url_i = 0;
}

static void finish(tg_mcp_auth *a, int err, const char *msg)
{
  tg_mcp_auth_done_cb cb = a->cb;
  void *arg = a->cb_arg;
  a->step = S_IDLE;
  a->cb = NULL;
  clear_urls(a);
  sodium_memzero(a->verifier, sizeof a->verifier);
  if (err)
    tg_warn("mcp_auth_failed", "{s:s, s:s, s:s}", "server", a->server_url, "error", tg_errname(err),
            "message", msg ? msg : "");
  if (cb)
    cb(arg, err, msg);
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static void on_http(void *arg, int err, const tg_http_response *resp);

/* Sends a GET (form NULL) or a form POST to url; basic (may be NULL) is an Authorization line. */
static int send_req(tg_mcp_auth *a, const char *url, const char *form, const char *content_type,
                    const char *basic)
{
  const char *h[4] = {"Accept: application/json", NULL, NULL, NULL};
  char ct[64];
  size_t n = 1;
  tg_http_request req = {.method = form ? "POST" : "GET",
                         .url = url,
                         .body = form,
                         .body_len = form ? strlen(form) : 0,
                         .timeout_ms = a->timeout_ms,
                         .max_body = MAX_BODY};
  if (!tg_mcp_auth_url_allowed(url))
    return TG_EINVAL;
  if (form) {
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
    h[n++] = ct;
  }
  if (basic)
    h[n++] = basic;
  req.headers = h;
  return tg_http_send(a->http, &req, on_http, a, &a->t);
}

/* The JSON object body of a 2xx answer, or NULL. */
static json_t *json_body(const tg_http_response *resp)
{
  json_t *j;
  if (resp->status < 200 || resp->status > 299)
    return NULL;
  j = json_loadb(resp->body, resp->body_len, 0, NULL);
  if (j && !json_is_object(j)) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

static const char *jstr(const json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

static int array_has(const json_t *arr, const char *s)
{
  for (size_t i = 0; i < json_array_size(arr); i++) {
    const char *v = json_string_value(json_array_get(arr, i));
    if (v && strcmp(v, s) == 0)
      return 1;
  }
  return 0;
}

/* ---- discovery ----------------------------------------------------------------------------- */

static void fetch_next(tg_mcp_auth *a, const char *what);

static void start_asm(tg_mcp_auth *a)
{
  clear_urls(a);
  a->step = S_ASM;
  if (tg_mcp_auth_as_urls(a->issuer, a->urls, &a->n_urls)) {
    finish(a, TG_EINVAL, "bad authorization server URL");
    return;
  }
  fetch_next(a, "authorization server metadata");
}

static void fetch_next(tg_mcp_auth *a, const char *what)
{
  while (a->url_i < a->n_urls) {
    const char *url = a->urls[a->url_i++];
    tg_debug("mcp_auth_fetch", "{s:s, s:s}", "what", what, "url", url);
    if (send_req(a, url, NULL, NULL, NULL) == 0)
      return;
  }
  if (a->step == S_PRM) { /* no resource metadata: the 2025-03-26 fallback */
    char *u[2];
    size_t n;
    a->legacy = 1;
    free(a->resource);
    a->resource = NULL;
    /* the origin: the root well-known URL with its well-known part cut off */
    if (tg_mcp_auth_prm_urls(a->server_url, u, &n)) {
      finish(a, TG_EINVAL, "bad server URL");
      return;
    }
    *strstr(u[n - 1], "/.well-known/") = 0;
    free(a->issuer);
    a->issuer = u[n - 1];
    if (n == 2)
      free(u[0]);
    start_asm(a);
    return;
  }
  if (a->step == S_ASM && a->legacy) { /* 2025-03-26 default endpoints */
    char buf[2048];
    snprintf(buf, sizeof buf, "%s/authorize", a->issuer);
    set_str(&a->authorization_endpoint, buf);
    snprintf(buf, sizeof buf, "%s/token", a->issuer);
    set_str(&a->token_endpoint, buf);
    snprintf(buf, sizeof buf, "%s/register", a->issuer);
    set_str(&a->registration_endpoint, buf);
    a->discovered = 1;
    clear_urls(a);
    run_flow(a);
    return;
  }
  finish(a, TG_ENOTFOUND,
         a->step == S_PRM ? "no protected resource metadata" : "no authorization server metadata");
}

static void on_prm(tg_mcp_auth *a, const tg_http_response *resp)
{
  json_t *j = json_body(resp), *servers;
  const char *resource, *as;
  if (!j) {
    fetch_next(a, "protected resource metadata");
    return;
  }
  resource = jstr(j, "resource");
  servers = json_object_get(j, "authorization_servers");
  as = json_string_value(json_array_get(servers, 0));
  if (!resource || !tg_mcp_auth_resource_matches(a->server_url, resource)) {
    json_decref(j);
    finish(a, TG_EAUTH, "protected resource metadata names another resource");
    return;
  }
  if (!as || !tg_mcp_auth_url_allowed(as)) {
    json_decref(j);
    finish(a, TG_EPROTO, "protected resource metadata: no usable authorization server");
    return;
  }
  set_str(&a->prm_url, a->urls[a->url_i - 1]);
  set_str(&a->resource, resource);
  set_str(&a->issuer, as);
  free(a->prm_scopes);
  a->prm_scopes = NULL;
  {
    json_t *sc = json_object_get(j, "scopes_supported"), *v;
    size_t i;
    tg_buf b;
    tg_buf_init(&b, 8192);
    json_array_foreach(sc, i, v)
    {
      if (json_is_string(v))
        tg_buf_printf(&b, "%s%s", b.len ? " " : "", json_string_value(v));
    }
    if (b.len)
      a->prm_scopes = tg_buf_take(&b, NULL);
    tg_buf_free(&b);
  }
  a->legacy = 0;
  json_decref(j);
  start_asm(a);
}

static int endpoint(tg_mcp_auth *a, json_t *j, const char *key, char **dst)
{
  const char *v = jstr(j, key);
  if (v && !tg_mcp_auth_url_allowed(v))
    return TG_EINVAL;
  set_str(dst, v);
  return 0;
}

static void on_asm(tg_mcp_auth *a, const tg_http_response *resp)
{
  json_t *j = json_body(resp);
  const char *issuer;
  int ok;
  if (!j) {
    fetch_next(a, "authorization server metadata");
    return;
  }
  issuer = jstr(j, "issuer");
  if (a->legacy) { /* no resource metadata: the issuer must live on the MCP server's origin */
    size_t n = strlen(a->issuer);
    ok = issuer && strncmp(issuer, a->issuer, n) == 0 && (issuer[n] == 0 || issuer[n] == '/');
  } else {
    ok = tg_mcp_auth_issuer_matches(a->issuer, issuer);
  }
  if (!ok || endpoint(a, j, "authorization_endpoint", &a->authorization_endpoint) ||
      endpoint(a, j, "token_endpoint", &a->token_endpoint) ||
      endpoint(a, j, "registration_endpoint", &a->registration_endpoint) || !a->token_endpoint) {
    json_decref(j);
    finish(a, TG_EPROTO,
           ok ? "authorization server metadata: bad endpoints" : "issuer does not match");
    return;
  }
  json_decref(a->asm_doc);
  a->asm_doc = j;
  a->discovered = 1;
  clear_urls(a);
  run_flow(a);
}

/* ---- client registration ------------------------------------------------------------------- */

static void on_register(tg_mcp_auth *a, const tg_http_response *resp)
{
  json_t *j = json_body(resp);
  tg_mcp_auth_client c;
  if (!j || !jstr(j, "client_id")) {
    json_decref(j);
    finish(a, TG_EPROTO, "client registration refused");
    return;
  }
  set_str(&a->client_id, jstr(j, "client_id"));
  set_str(&a->client_secret, jstr(j, "client_secret"));
  set_str(&a->auth_method, jstr(j, "token_endpoint_auth_method"));
  json_decref(j);
  c.client_id = a->client_id;
  c.client_secret = a->client_secret;
  c.auth_method = a->auth_method;
  if (a->store.save_client)
    a->store.save_client(a->store.arg, a->issuer, &c);
  run_flow(a);
}

/* Picks the client (0), starts a registration (1), or fails (-1). */
static int ensure_client(tg_mcp_auth *a)
{
  tg_mcp_auth_client c = {0};
  json_t *body;
  char *text;
  int rc;
  if (a->client_id)
    return 0;
  if (a->cfg_client_id) {
    set_str(&a->client_id, a->cfg_client_id);
    set_str(&a->client_secret, a->cfg_client_secret);
    return 0;
  }
  if (a->store.load_client && a->store.load_client(a->store.arg, a->issuer, &c) == 0 &&
      c.client_id) {
    set_str(&a->client_id, c.client_id);
    set_str(&a->client_secret, c.client_secret);
    set_str(&a->auth_method, c.auth_method);
    return 0;
  }
  if (a->cimd_url &&
      json_is_true(json_object_get(a->asm_doc, "client_id_metadata_document_supported"))) {
    set_str(&a->client_id, a->cimd_url);
    set_str(&a->auth_method, "none");
    return 0;
  }
  if (!a->registration_endpoint) {
    finish(a, TG_EAUTH, "the authorization server offers no registration: configure a client id");
    return -1;
  }
  body = json_pack("{s:s, s:[s], s:[s,s], s:[s]}", "client_name", a->client_name, "redirect_uris",
                   a->redirect_uri, "grant_types", "authorization_code", "refresh_token",
                   "response_types", "code");
  text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  a->step = S_REGISTER;
  rc = text ? send_req(a, a->registration_endpoint, text, "application/json", NULL) : TG_ENOMEM;
  free(text);
  if (rc) {
    finish(a, rc, "client registration could not be sent");
    return -1;
  }
  return 1;
}

/* ---- grants -------------------------------------------------------------------------------- */

/*
 * private_key_jwt (RFC 7523 section 2.2, OpenID Connect Core section 9): a client assertion
 * signed ES256 with the client's key: iss = sub = client_id, aud = the authorization server's
 * issuer, a 5-minute lifetime and a random jti.
 */
static int assertion_auth(tg_mcp_auth *a, tg_buf *form)
{
  const char *aud = jstr(a->asm_doc, "issuer") ? jstr(a->asm_doc, "issuer") : a->issuer;
  unsigned char r[16];
  char jti[33], *claims, *jwt;
  time_t now = time(NULL);
  json_t *c;
  int rc;
  if (!a->client_id || !aud)
    return TG_EINVAL;
  randombytes_buf(r, sizeof r);
  sodium_bin2hex(jti, sizeof jti, r, sizeof r);
  c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", a->client_id, "sub", a->client_id, "aud",
                aud, "iat", (json_int_t)now, "exp", (json_int_t)now + 300, "jti", jti);
  claims = c ? json_dumps(c, JSON_COMPACT) : NULL;
  json_decref(c);
  jwt = claims ? tg_jwt_sign_es256(claims, a->private_key_pem) : NULL;
  free(claims);
  if (!jwt)
    return TG_EINVAL;
  rc = tg_mcp_auth_form_add(form, "client_id", a->client_id) ||
               tg_mcp_auth_form_add(form, "client_assertion_type",
                                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") ||
               tg_mcp_auth_form_add(form, "client_assertion", jwt)
           ? TG_ENOMEM
           : 0;
  wipe_free(jwt);
  return rc;
}

/* Adds client authentication to form (and *basic, malloc'd, for client_secret_basic). */
static int client_auth(tg_mcp_auth *a, tg_buf *form, char **basic)
{
  const char *m = a->auth_method;
  json_t *supported = json_object_get(a->asm_doc, "token_endpoint_auth_methods_supported");
  *basic = NULL;
  if (a->private_key_pem) /* RFC 7523 section 2.2; SEP-1046 */
    return assertion_auth(a, form);
  if (!m)
    m = !a->client_secret                                           ? "none"
        : !supported || array_has(supported, "client_secret_basic") ? "client_secret_basic"
        : array_has(supported, "client_secret_post")                ? "client_secret_post"
                                                                    : "client_secret_basic";
  if (a->client_secret && strcmp(m, "client_secret_basic") == 0) {
    tg_buf raw;
    size_t n;
    int rc;
    tg_buf_init(&raw, 16384);
    /* RFC 6749 section 2.3.1: each part form-encoded, then joined by ':' */
    rc = tg_mcp_auth_form_add(&raw, "", a->client_id) || tg_buf_add(&raw, ":", 1) ||
         tg_mcp_auth_form_add(&raw, "", a->client_secret);
    if (!rc) {
      /* form_add wrote "=<id>:&=<secret>": keep only the encoded values */
      char *s = (char *)tg_buf_str(&raw), *o = s;
      for (char *p = s; *p; p++)
        if (*p != '=' && *p != '&')
          *o++ = *p;
      *o = 0;
      n = strlen(s);
      *basic = malloc(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) + 32);
      if (*basic) {
        strcpy(*basic, "Authorization: Basic ");
        sodium_bin2base64(*basic + strlen(*basic),
                          sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL),
                          (const unsigned char *)s, n, sodium_base64_VARIANT_ORIGINAL);
      }
      sodium_memzero(s, n);
    }
    tg_buf_free(&raw);
    return rc || !*basic ? TG_ENOMEM : 0;
  }
  if (tg_mcp_auth_form_add(form, "client_id", a->client_id))
    return TG_ENOMEM;
  if (a->client_secret && strcmp(m, "client_secret_post") == 0)
    return tg_mcp_auth_form_add(form, "client_secret", a->client_secret);
  return 0;
}

/* POSTs form (plus client authentication when with_client) to url and moves to step. */
static void post_form(tg_mcp_auth *a, int step, const char *url, tg_buf *form, int with_client)
{
  char *basic = NULL;
  int rc = with_client ? client_auth(a, form, &basic) : 0;
  a->step = step;
  if (!rc)
    rc = send_req(a, url, tg_buf_str(form), "application/x-www-form-urlencoded", basic);
  wipe_free(basic);
  sodium_memzero(form->ptr ? form->ptr : (char *)"", form->ptr ? form->len : 0);
  tg_buf_free(form);
  if (rc)
    finish(a, rc, "token request could not be sent");
}

static int wants_client_credentials(tg_mcp_auth *a)
{
  json_t *g = json_object_get(a->asm_doc, "grant_types_supported");
  if (a->grant == TG_MCP_GRANT_CLIENT_CREDENTIALS)
    return 1;
  return a->grant == TG_MCP_GRANT_AUTO && json_is_array(g) && !array_has(g, "authorization_code") &&
         array_has(g, "client_credentials");
}

/* tg_mcp_auth_begin's end: the browser leg and the exchange belong to the caller now. a is idle
 * before cb runs and untouched after it, so cb may free a. */
static void hand_over(tg_mcp_auth *a, const char *url)
{
  tg_mcp_auth_begin_cb cb = a->begin_cb;
  void *arg = a->begin_arg;
  char verifier[sizeof a->verifier];
  tg_mcp_auth_begun b = {url,
                         a->state,
                         verifier,
                         {a->issuer,
                          a->token_endpoint,
                          a->resource,
                          a->want_scope,
                          {a->client_id, a->client_secret, a->auth_method}}};
  memcpy(verifier, a->verifier, sizeof verifier);
  a->begin_cb = NULL;
  a->cb = NULL;
  finish(a, 0, NULL); /* no callback left: wipes a's verifier, back to idle */
  cb(arg, 0, NULL, &b);
  sodium_memzero(verifier, sizeof verifier);
}

static void start_grant(tg_mcp_auth *a)
{
  tg_buf f;
  tg_buf_init(&f, 1u << 20);
  if (a->idp_id_token && a->idp_token_endpoint) { /* cross-app access: the IdP first */
    tg_mcp_auth_form_add(&f, "grant_type", "urn:ietf:params:oauth:grant-type:token-exchange");
    tg_mcp_auth_form_add(&f, "requested_token_type", "urn:ietf:params:oauth:token-type:id-jag");
    tg_mcp_auth_form_add(&f, "audience",
                         jstr(a->asm_doc, "issuer") ? jstr(a->asm_doc, "issuer") : a->issuer);
    if (a->resource)
      tg_mcp_auth_form_add(&f, "resource", a->resource);
    if (a->want_scope)
      tg_mcp_auth_form_add(&f, "scope", a->want_scope);
    tg_mcp_auth_form_add(&f, "subject_token", a->idp_id_token);
    tg_mcp_auth_form_add(&f, "subject_token_type", "urn:ietf:params:oauth:token-type:id_token");
    if (a->idp_client_id)
      tg_mcp_auth_form_add(&f, "client_id", a->idp_client_id);
    post_form(a, S_IDP, a->idp_token_endpoint, &f, 0);
    return;
  }
  if (wants_client_credentials(a)) {
    tg_mcp_auth_form_add(&f, "grant_type", "client_credentials");
    if (a->want_scope)
      tg_mcp_auth_form_add(&f, "scope", a->want_scope);
    if (a->resource)
      tg_mcp_auth_form_add(&f, "resource", a->resource);
    post_form(a, S_TOKEN, a->token_endpoint, &f, 1);
    return;
  }
  tg_buf_free(&f);
  if ((!a->browse && !a->begin_cb) || !a->authorization_endpoint) {
    finish(a, TG_EAUTH, "sign-in needed, but no browser leg is configured");
    return;
  }
  {
    char challenge[44], *url;
    unsigned char r[24];
    tg_buf u;
    int rc;
    tg_mcp_auth_pkce(a->verifier, challenge);
    randombytes_buf(r, sizeof r);
    sodium_bin2base64(a->state, sizeof a->state, r, sizeof r,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    tg_buf_init(&u, 64u << 10);
    rc = tg_buf_addstr(&u, a->authorization_endpoint) ||
         tg_buf_addstr(&u, strchr(a->authorization_endpoint, '?') ? "&" : "?");
    /* tg_mcp_auth_form_add starts with '&' on a non-empty buffer: the first pair goes via a
       separate buffer so the separator above is the only one */
    {
      tg_buf q;
      tg_buf_init(&q, 64u << 10);
      rc = rc || tg_mcp_auth_form_add(&q, "response_type", "code") ||
           tg_mcp_auth_form_add(&q, "client_id", a->client_id) ||
           tg_mcp_auth_form_add(&q, "redirect_uri", a->redirect_uri) ||
           tg_mcp_auth_form_add(&q, "code_challenge", challenge) ||
           tg_mcp_auth_form_add(&q, "code_challenge_method", "S256") ||
           tg_mcp_auth_form_add(&q, "state", a->state) ||
           (a->want_scope && tg_mcp_auth_form_add(&q, "scope", a->want_scope)) ||
           (a->resource && tg_mcp_auth_form_add(&q, "resource", a->resource)) ||
           tg_buf_add(&u, q.ptr, q.len);
      tg_buf_free(&q);
    }
    url = rc ? NULL : tg_buf_take(&u, NULL);
    tg_buf_free(&u);
    if (!url) {
      finish(a, TG_ENOMEM, "authorization URL");
      return;
    }
    a->step = S_BROWSE;
    tg_info("mcp_auth_browse", "{s:s, s:s}", "server", a->server_url, "authorization_endpoint",
            a->authorization_endpoint);
    if (a->begin_cb) {
      hand_over(a, url);
      free(url);
      return;
    }
    rc = a->browse(a->browse_arg, a, url);
    free(url);
    if (rc && a->step == S_BROWSE)
      finish(a, TG_EAUTH, "the browser leg gave up");
  }
}

/* The authorization code grant's token request (RFC 6749 section 4.1.3, RFC 7636, RFC 8707). */
static void exchange_code(tg_mcp_auth *a, const char *code)
{
  tg_buf f;
  tg_buf_init(&f, 1u << 20);
  tg_mcp_auth_form_add(&f, "grant_type", "authorization_code");
  tg_mcp_auth_form_add(&f, "code", code);
  tg_mcp_auth_form_add(&f, "redirect_uri", a->redirect_uri);
  tg_mcp_auth_form_add(&f, "code_verifier", a->verifier);
  if (a->resource)
    tg_mcp_auth_form_add(&f, "resource", a->resource);
  post_form(a, S_TOKEN, a->token_endpoint, &f, 1);
}

void tg_mcp_auth_redirected(tg_mcp_auth *a, const char *redirect_url)
{
  char *code, *state, *error;
  int state_ok;
  if (!a || a->step != S_BROWSE)
    return;
  if (!redirect_url) {
    finish(a, TG_EAUTH, "sign-in abandoned");
    return;
  }
  code = tg_mcp_auth_query_param(redirect_url, "code");
  state = tg_mcp_auth_query_param(redirect_url, "state");
  error = tg_mcp_auth_query_param(redirect_url, "error");
  state_ok = state && strlen(state) == strlen(a->state) &&
             sodium_memcmp(state, a->state, strlen(a->state)) == 0;
  if (error || !code || !state_ok) {
    char msg[160];
    snprintf(msg, sizeof msg, "authorization failed: %.100s",
             error   ? error
             : !code ? "no code in the redirect"
                     : "state mismatch");
    wipe_free(code);
    free(state);
    free(error);
    finish(a, TG_EAUTH, msg);
    return;
  }
  exchange_code(a, code);
  wipe_free(code);
  free(state);
}

static void save_tokens(tg_mcp_auth *a)
{
  tg_mcp_auth_tokens t = {a->access_token, a->refresh_token, a->scope, a->expires_at};
  size_t n = strlen(a->access_token) + 32;
  wipe_free(a->header);
  if ((a->header = malloc(n)))
    snprintf(a->header, n, "Authorization: Bearer %s", a->access_token);
  if (a->store.save_tokens)
    a->store.save_tokens(a->store.arg, &t);
}

static void on_token(tg_mcp_auth *a, const tg_http_response *resp, int was_refresh)
{
  json_t *j = json_body(resp);
  const char *tok = j ? jstr(j, "access_token") : NULL, *type = j ? jstr(j, "token_type") : NULL;
  json_t *exp = j ? json_object_get(j, "expires_in") : NULL;
  if (!tok || (type && strcasecmp(type, "bearer") != 0)) {
    char msg[200];
    json_t *e = j ? j : json_loadb(resp->body, resp->body_len, 0, NULL);
    const char *err = jstr(e, "error");
    snprintf(msg, sizeof msg, "token endpoint: HTTP %ld %.100s", resp->status,
             err   ? err
             : tok ? "not a bearer token"
                   : "no access token");
    if (e != j)
      json_decref(e);
    json_decref(j);
    if (was_refresh) { /* the refresh token is spent or revoked: sign in again */
      wipe_free(a->refresh_token);
      a->refresh_token = NULL;
      if (a->cb) {
        run_flow(a);
        return;
      }
    }
    finish(a, TG_EAUTH, msg);
    return;
  }
  set_str(&a->access_token, tok);
  if (jstr(j, "refresh_token"))
    set_str(&a->refresh_token, jstr(j, "refresh_token"));
  if (jstr(j, "scope"))
    set_str(&a->scope, jstr(j, "scope"));
  else if (!was_refresh)
    set_str(&a->scope, a->want_scope);
  a->expires_at = json_is_number(exp) && json_number_value(exp) > 0
                      ? (int64_t)time(NULL) + (int64_t)json_number_value(exp)
                      : 0;
  json_decref(j);
  save_tokens(a);
  finish(a, a->header ? 0 : TG_ENOMEM, NULL);
}

static void on_idp(tg_mcp_auth *a, const tg_http_response *resp)
{
  json_t *j = json_body(resp);
  const char *jag = jstr(j, "access_token");
  tg_buf f;
  if (!jag) {
    json_decref(j);
    finish(a, TG_EAUTH, "identity provider refused the token exchange");
    return;
  }
  tg_buf_init(&f, 1u << 20);
  tg_mcp_auth_form_add(&f, "grant_type", GRANT_JWT_BEARER);
  tg_mcp_auth_form_add(&f, "assertion", jag);
  if (a->want_scope)
    tg_mcp_auth_form_add(&f, "scope", a->want_scope);
  json_decref(j);
  post_form(a, S_TOKEN, a->token_endpoint, &f, 1);
}

static void on_http(void *arg, int err, const tg_http_response *resp)
{
  tg_mcp_auth *a = arg;
  int step = a->step;
  a->t = NULL;
  if (err && step != S_PRM && step != S_ASM) {
    finish(a, err, "authorization server unreachable");
    return;
  }
  switch (step) {
  case S_PRM:
    if (err)
      fetch_next(a, "protected resource metadata");
    else
      on_prm(a, resp);
    break;
  case S_ASM:
    if (err)
      fetch_next(a, "authorization server metadata");
    else
      on_asm(a, resp);
    break;
  case S_REGISTER:
    on_register(a, resp);
    break;
  case S_IDP:
    on_idp(a, resp);
    break;
  case S_TOKEN:
  case S_REFRESH:
    on_token(a, resp, step == S_REFRESH);
    break;
  default:
    break;
  }
}

/* Scope to ask for (MCP 2025-11-25 "Scope Selection Strategy"): the challenge's (joined with
 * what was asked before, on a step-up), else the resource metadata's scopes_supported, else
 * none; offline_access added when the authorization server lists it (SEP-2207). */
static void pick_scope(tg_mcp_auth *a)
{
  tg_buf b;
  json_t *as_scopes = json_object_get(a->asm_doc, "scopes_supported");
  tg_buf_init(&b, 16384);
  if (a->chal_scope) {
    if (a->want_scope)
      tg_buf_addstr(&b, a->want_scope);
    for (char *s = a->chal_scope; *s;) {
      size_t n = strcspn(s, " ");
      int have = 0;
      for (const char *p = tg_buf_str(&b); *p;) {
        size_t m = strcspn(p, " ");
        have |= m == n && strncmp(p, s, n) == 0;
        p += m + (p[m] == ' ');
      }
      if (n && !have)
        tg_buf_printf(&b, "%s%.*s", b.len ? " " : "", (int)n, s);
      s += n + (s[n] == ' ');
    }
  } else if (a->prm_scopes) {
    tg_buf_addstr(&b, a->prm_scopes);
  }
  if (b.len && array_has(as_scopes, "offline_access") && !strstr(tg_buf_str(&b), "offline_access"))
    tg_buf_addstr(&b, " offline_access");
  free(a->want_scope);
  a->want_scope = b.len ? tg_buf_take(&b, NULL) : NULL;
  tg_buf_free(&b);
}

/* Runs the flow from wherever discovery stands. */
static void run_flow(tg_mcp_auth *a)
{
  if (!a->discovered) {
    clear_urls(a);
    a->step = S_PRM;
    if (a->chal_metadata) {
      if (!(a->urls[0] = strdup(a->chal_metadata))) {
        finish(a, TG_ENOMEM, NULL);
        return;
      }
      a->n_urls = 1;
    } else if (tg_mcp_auth_prm_urls(a->server_url, a->urls, &a->n_urls)) {
      finish(a, TG_EINVAL, "bad server URL");
      return;
    }
    fetch_next(a, "protected resource metadata");
    return;
  }
  if (ensure_client(a) != 0)
    return;
  pick_scope(a);
  start_grant(a);
}

static int start_refresh(tg_mcp_auth *a)
{
  tg_buf f;
  if (!a->refresh_token || !a->token_endpoint || !a->client_id)
    return TG_ENOTFOUND;
  tg_buf_init(&f, 1u << 20);
  tg_mcp_auth_form_add(&f, "grant_type", "refresh_token");
  tg_mcp_auth_form_add(&f, "refresh_token", a->refresh_token);
  if (a->resource)
    tg_mcp_auth_form_add(&f, "resource", a->resource);
  post_form(a, S_REFRESH, a->token_endpoint, &f, 1);
  return 0;
}

int tg_mcp_auth_challenge(tg_mcp_auth *a, long status, const char *www_authenticate,
                          tg_mcp_auth_done_cb cb, void *arg)
{
  tg_mcp_auth_challenge_params p = {0};
  if (a->step == S_REFRESH && !a->cb) { /* a background refresh: wait for it */
    a->cb = cb;
    a->cb_arg = arg;
    return 0;
  }
  if (a->step != S_IDLE)
    return TG_ESTATE;
  if (www_authenticate)
    tg_mcp_auth_parse_challenge(www_authenticate, &p);
  if (status == 403 && !(p.error && strcmp(p.error, "insufficient_scope") == 0)) {
    tg_mcp_auth_challenge_clear(&p);
    return TG_EAUTH;
  }
  /* Other resource metadata than before: discover again. */
  if (p.resource_metadata && (!a->prm_url || strcmp(p.resource_metadata, a->prm_url) != 0))
    a->discovered = 0;
  if (p.resource_metadata && !tg_mcp_auth_url_allowed(p.resource_metadata)) {
    tg_mcp_auth_challenge_clear(&p);
    return TG_EAUTH;
  }
  free(a->chal_metadata);
  free(a->chal_scope);
  a->chal_metadata = p.resource_metadata;
  a->chal_scope = p.scope;
  free(p.error);
  a->cb = cb;
  a->cb_arg = arg;
  if (status == 401 && a->refresh_token && a->token_endpoint && a->client_id)
    start_refresh(a);
  else
    run_flow(a);
  return 0;
}

/* tg_mcp_auth_begin's errors arrive as a done callback: pass them on. */
static void on_begin_failed(void *arg, int err, const char *message)
{
  tg_mcp_auth *a = arg;
  tg_mcp_auth_begin_cb cb = a->begin_cb;
  a->begin_cb = NULL;
  if (cb)
    cb(a->begin_arg, err ? err : TG_EPROTO, message, NULL);
}

int tg_mcp_auth_begin(tg_mcp_auth *a, const char *www_authenticate, tg_mcp_auth_begin_cb cb,
                      void *arg)
{
  int rc;
  if (a->step != S_IDLE)
    return TG_ESTATE;
  wipe_free(a->refresh_token); /* a sign-in, not a refresh */
  a->refresh_token = NULL;
  a->begin_cb = cb;
  a->begin_arg = arg;
  if ((rc = tg_mcp_auth_challenge(a, 401, www_authenticate, on_begin_failed, a)) != 0)
    a->begin_cb = NULL;
  return rc;
}

int tg_mcp_auth_restore(tg_mcp_auth *a, const tg_mcp_auth_session *s)
{
  if (a->step != S_IDLE)
    return TG_ESTATE;
  if (!s->token_endpoint || !tg_mcp_auth_url_allowed(s->token_endpoint) || !s->client.client_id)
    return TG_EINVAL;
  set_str(&a->issuer, s->issuer);
  set_str(&a->token_endpoint, s->token_endpoint);
  set_str(&a->resource, s->resource);
  set_str(&a->want_scope, s->scope);
  set_str(&a->client_id, s->client.client_id);
  set_str(&a->client_secret, s->client.client_secret);
  set_str(&a->auth_method, s->client.auth_method);
  if (!a->token_endpoint || !a->client_id || (s->issuer && !a->issuer) ||
      (s->resource && !a->resource) || (s->scope && !a->want_scope) ||
      (s->client.client_secret && !a->client_secret) || (s->client.auth_method && !a->auth_method))
    return TG_ENOMEM;
  a->discovered = 1;
  return 0;
}

int tg_mcp_auth_finish(tg_mcp_auth *a, const char *code, const char *verifier,
                       tg_mcp_auth_done_cb cb, void *arg)
{
  if (a->step != S_IDLE || !a->token_endpoint || !a->client_id)
    return TG_ESTATE;
  if (!code || !*code || !verifier || !*verifier || strlen(verifier) >= sizeof a->verifier)
    return TG_EINVAL;
  snprintf(a->verifier, sizeof a->verifier, "%s", verifier);
  a->cb = cb;
  a->cb_arg = arg;
  exchange_code(a, code);
  return 0;
}

int tg_mcp_auth_refresh(tg_mcp_auth *a, tg_mcp_auth_done_cb cb, void *arg)
{
  if (a->step != S_IDLE)
    return TG_ESTATE;
  if (!a->refresh_token || !a->token_endpoint)
    return TG_ENOTFOUND;
  a->cb = cb;
  a->cb_arg = arg;
  return start_refresh(a);
}

const char *tg_mcp_auth_header(tg_mcp_auth *a)
{
  if (a->header && a->expires_at && a->refresh_token && a->step == S_IDLE &&
      (int64_t)time(NULL) + REFRESH_EARLY_S >= a->expires_at)
    start_refresh(a); /* in the background: the current token is still good for a while */
  return a->header;
}

static const char *prov_header(void *self)
{
  return tg_mcp_auth_header(self);
}

static int prov_challenge(void *self, long status, const char *www, tg_mcp_auth_ready_cb cb,
                          void *arg)
{
  return tg_mcp_auth_challenge(self, status, www, cb, arg);
}

static void prov_cancel(void *self)
{
  tg_mcp_auth *a = self;
  a->cb = NULL;
}

tg_mcp_auth_provider tg_mcp_auth_provider_of(tg_mcp_auth *a)
{
  tg_mcp_auth_provider p = {prov_header, prov_challenge, prov_cancel, a};
  return p;
}

int tg_mcp_auth_new(tg_mcp_auth **out, tg_http_client *http, const tg_mcp_auth_options *opt)
{
  tg_mcp_auth *a;
  tg_mcp_auth_tokens t = {0};
  int rc;
  *out = NULL;
  if (!opt->server_url || !tg_mcp_auth_url_allowed(opt->server_url))
    return TG_EINVAL;
  if (!(a = calloc(1, sizeof *a)))
    return TG_ENOMEM;
  a->http = http;
  a->grant = opt->grant;
  a->browse = opt->browse;
  a->browse_arg = opt->browse_arg;
  a->store = opt->store;
  a->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
  rc = dup_opt(&a->server_url, opt->server_url) ||
       dup_opt(&a->redirect_uri,
               opt->redirect_uri ? opt->redirect_uri : "http://127.0.0.1/callback") ||
       dup_opt(&a->client_name, opt->client_name ? opt->client_name : "toolgate") ||
       dup_opt(&a->cfg_client_id, opt->client_id) ||
       dup_opt(&a->cfg_client_secret, opt->client_secret) ||
       dup_opt(&a->cimd_url, opt->client_metadata_url) ||
       dup_opt(&a->idp_id_token, opt->idp_id_token) ||
       dup_opt(&a->private_key_pem, opt->private_key_pem) ||
       dup_opt(&a->idp_token_endpoint, opt->idp_token_endpoint) ||
       dup_opt(&a->idp_client_id, opt->idp_client_id);
  if (rc) {
    tg_mcp_auth_free(a);
    return TG_ENOMEM;
  }
  if (a->store.load_tokens && a->store.load_tokens(a->store.arg, &t) == 0 && t.access_token) {
    set_str(&a->access_token, t.access_token);
    set_str(&a->refresh_token, t.refresh_token);
    set_str(&a->scope, t.scope);
    a->expires_at = t.expires_at;
    save_tokens(a);
  }
  *out = a;
  return 0;
}

void tg_mcp_auth_free(tg_mcp_auth *a)
{
  if (!a)
    return;
  if (a->t)
    tg_http_cancel(a->t);
  clear_urls(a);
  sodium_memzero(a->verifier, sizeof a->verifier);
  sodium_memzero(a->state, sizeof a->state);
  free(a->server_url);
  free(a->redirect_uri);
  free(a->client_name);
  wipe_free(a->cfg_client_id);
  wipe_free(a->cfg_client_secret);
  free(a->cimd_url);
  wipe_free(a->idp_id_token);
  wipe_free(a->private_key_pem);
  free(a->idp_token_endpoint);
  free(a->idp_client_id);
  free(a->prm_url);
  free(a->resource);
  free(a->prm_scopes);
  free(a->issuer);
  json_decref(a->asm_doc);
  free(a->authorization_endpoint);
  free(a->token_endpoint);
  free(a->registration_endpoint);
  wipe_free(a->client_id);
  wipe_free(a->client_secret);
  free(a->auth_method);
  wipe_free(a->access_token);
  wipe_free(a->refresh_token);
  free(a->scope);
  wipe_free(a->header);
  free(a->want_scope);
  free(a->chal_metadata);
  free(a->chal_scope);
  free(a);
}
