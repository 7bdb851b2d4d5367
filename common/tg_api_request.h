/*
 * tg_api_request: the pure part of the API node (README "API node"): from a node's rendered
 * config and the user's opened credentials to the HTTP request (method, URL, header lines,
 * body), and from the HTTP answer to the node's output. No I/O, no loop: the worker's executor
 * (wk_node_api.c) loads credentials, fetches OAuth2 access tokens, sends, retries and journals.
 *
 * Config: {method, url, endpoint?, headers?, query_params?, body?, authentication?, credential?,
 * idempotency_key?, timeout_ms?, header_name?}. headers and query_params are objects name ->
 * value or arrays of {key|name, value}; a non-string value is sent as its compact JSON. A body
 * that is a string is sent as is, any other JSON value compact with Content-Type:
 * application/json unless the headers set one. endpoint is appended to url (one "/" between).
 *
 * authentication: absent, "" or "none": no authentication. A short form ("bearer", "api_key",
 * "basic", "oauth2", "custom_header") takes the credential named by config.credential, else the
 * user's credential bound to the URL's host, and applies it by the credential's type: bearer ->
 * Authorization: Bearer <token>; api_key -> its header (param_name) or query parameter; basic ->
 * Authorization: Basic; oauth2 -> Authorization: Bearer <access token>; "custom_header" puts the
 * credential's value (token, api key value or access token) into config.header_name (default
 * X-API-Key). An object form is {type:"bearer", token} | {type:"api_key", in:"header"|"query",
 * name, value} | {type:"custom_header", name, value} | {type:"basic", username, password} |
 * {type:"oauth2", credential}; its strings may hold {{secrets.<name>}}.
 *
 * {{secrets.<name>}} in any string of url, endpoint, headers, query_params, body and the
 * authentication object is replaced by the credential's value: bearer token, api_key value,
 * basic base64("username:password"), oauth2 access token. Only the built request holds the
 * values; the config (what is journaled) keeps the references.
 *
 * Credentials (creds) are an object name -> {"type", "meta", "secret", "access_token"?} as
 * tg_store_credentials_open gives them, plus the access token the executor fetched for an
 * oauth2 credential.
 */
#ifndef TG_API_REQUEST_H
#define TG_API_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#define TG_API_DATA_MAX ((size_t)1 << 20) /* bytes of a response body kept as data */
#define TG_API_HEADERS_MAX 64

/* What a config needs from the user's credentials before its request can be built. */
typedef struct tg_api_needs {
  json_t *names;  /* array of credential names: config.credential, authentication.credential
                     and every {{secrets.<name>}}; owned */
  char *auth;     /* the credential that authenticates, when named; NULL otherwise (owned) */
  int by_host;    /* 1: a short form without a named credential: the one bound to host */
  char host[256]; /* the URL's host, lowercase, without brackets */
} tg_api_needs;

/*
 * Reads what config needs into *n (free with tg_api_needs_free). Errors: TG_EINVAL with the
 * reason in err (no method or URL, not http(s), unknown authentication), TG_ENOMEM.
 */
int tg_api_needs_of(const json_t *config, tg_api_needs *n, char *err, size_t errlen);
void tg_api_needs_free(tg_api_needs *n);

/* A request ready for tg_http_send (every member owned; free with tg_api_request_free). */
typedef struct tg_api_request {
  char method[16];
  char *url;
  char *headers[TG_API_HEADERS_MAX + 1]; /* "Name: value" lines, NULL-terminated */
  char *body;                            /* NULL: none */
  size_t body_len;
  long timeout_ms; /* config.timeout_ms, 0 when absent */
  int idempotent;  /* GET HEAD PUT DELETE OPTIONS, or an idempotency key is sent */
  char *tool_name; /* "<METHOD> <host><path>", for the journal (no query, no secret) */
} tg_api_request;

/*
 * Builds the request for config with the credentials creds (may be NULL when needs.names is
 * empty and no authentication is needed); auth is the credential that authenticates (needs.auth
 * or the host-bound one the executor found; NULL when none). Errors, with the reason in err
 * (never a secret value): TG_ENOTFOUND (a credential that authentication or {{secrets.x}} needs
 * is missing: credential_missing; also an oauth2 credential without access_token), TG_EINVAL
 * (malformed config: method, URL, header names, CR/LF in values, too many headers), TG_ENOMEM.
 * On error *req is zeroed.
 */
int tg_api_request_build(const json_t *config, const json_t *creds, const char *auth,
                         tg_api_request *req, char *err, size_t errlen);
void tg_api_request_free(tg_api_request *req); /* wipes the header lines, body and URL */

/* 1 for an idempotent method (RFC 9110 section 9.2.2: GET HEAD PUT DELETE OPTIONS TRACE, any case).
 */
int tg_api_method_idempotent(const char *method);

/* 1 when the API node config's request may be sent twice: an idempotent method (case-insensitive;
 * GET when absent) or a non-empty idempotency_key (sent as Idempotency-Key). */
int tg_api_config_idempotent(const json_t *config);

/*
 * The node's output {success, status_code, data, error, elapsed_seconds}: success is a 2xx
 * status; data the body parsed as JSON when content_type says JSON (application/json or
 * +json) and it parses, else the text (at most TG_API_DATA_MAX bytes, cut at a UTF-8 boundary;
 * null when empty); error null on success, else "HTTP <status>" or error when given. New
 * reference, NULL when memory runs out.
 */
json_t *tg_api_output(long status, const char *content_type, const char *body, size_t len,
                      double elapsed_s, const char *error);

/* The credential names referenced as {{secrets.<name>}} in any string of v: a new array of
 * unique names ([] when none; NULL when memory runs out). */
json_t *tg_api_secret_refs(const json_t *v);

/*
 * s with every {{secrets.<name>}} replaced by the value of credential name in creds (as
 * tg_api_request_build substitutes them): a new malloc'd string (the caller wipes it), or NULL
 * with *rc TG_ENOTFOUND (the credential is missing; err says which, never a value) or
 * TG_ENOMEM.
 */
char *tg_api_subst_secrets(const char *s, const json_t *creds, int *rc, char *err, size_t errlen);

/* Zeroes every string of v in place (credentials' plaintexts) before it is dropped. */
void tg_api_wipe_json(json_t *v);

#endif
