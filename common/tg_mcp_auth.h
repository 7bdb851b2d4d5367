/*
 * tg_mcp_auth: the client side of MCP authorization (spec 2025-11-25, basic/authorization; also
 * the 2025-03-26 fallbacks) for MCP servers that answer 401/403.
 *
 * On a challenge it discovers the protected resource metadata (RFC 9728: the WWW-Authenticate
 * resource_metadata URL, else the path-based then the root well-known URL), the authorization
 * server metadata (RFC 8414, then OpenID Connect discovery, in the spec's order of URLs), picks a
 * client (pre-registered from the configuration, a stored registration, a Client ID Metadata
 * Document URL when the server advertises client_id_metadata_document_supported, else dynamic
 * registration, RFC 7591), then gets a token: authorization code with PKCE S256, `state` and the
 * RFC 8707 `resource`, or client_credentials, or (cross-app access) an IdP token exchange and a
 * JWT bearer grant. Tokens are refreshed shortly before expiry and once on a 401; a 403
 * insufficient_scope asks again with the challenge's scope (step-up).
 *
 * Everything from the network is checked: metadata and endpoint URLs must be https or loopback
 * http, the resource in the metadata must cover the MCP server URL (RFC 9728 section 3.3), the
 * issuer must equal the URL it was discovered from (RFC 8414 section 3.3), bodies are capped,
 * state is compared in constant time. Tokens, codes, verifiers and secrets are never logged.
 *
 * All I/O is asynchronous through tg_http on the caller's loop. Callback rule (libuv's): a
 * function taking a callback either returns an error and never calls it, or returns 0 and calls
 * it exactly once from the loop (unless tg_mcp_auth_free runs first: then never).
 */
#ifndef TG_MCP_AUTH_H
#define TG_MCP_AUTH_H

#include "tg_buf.h"
#include "tg_http.h"
#include "tg_mcp.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tg_mcp_auth tg_mcp_auth;

/* Tokens as stored. Strings are borrowed for the duration of the call they are passed to. */
typedef struct tg_mcp_auth_tokens {
  const char *access_token;
  const char *refresh_token; /* NULL when none */
  const char *scope;         /* granted scope, NULL when unknown */
  int64_t expires_at;        /* unix seconds; 0 = unknown */
} tg_mcp_auth_tokens;

/* A client registration with one authorization server (issuer). Strings borrowed as above. */
typedef struct tg_mcp_auth_client {
  const char *client_id;
  const char *client_secret; /* NULL for a public client */
  const char *auth_method;   /* token_endpoint_auth_method: none, client_secret_basic, ... */
} tg_mcp_auth_client;

/* Where tokens and registrations live (the gateway seals them in connector_tokens; toolgate-mcp
 * keeps them in memory: all NULL). Each callback is synchronous and may be NULL. load_* copy into
 * *out and return 0, or return nonzero when there is nothing; the strings they hand out must stay
 * valid until the next call of any store callback. */
typedef struct tg_mcp_auth_store {
  int (*load_tokens)(void *arg, tg_mcp_auth_tokens *out);
  void (*save_tokens)(void *arg, const tg_mcp_auth_tokens *t);
  int (*load_client)(void *arg, const char *issuer, tg_mcp_auth_client *out);
  void (*save_client)(void *arg, const char *issuer, const tg_mcp_auth_client *c);
  void *arg;
} tg_mcp_auth_store;

/* The browser leg: show authorization_url (borrowed for the call) to the user; when the user
 * comes back, call tg_mcp_auth_redirected(a, redirect_url) (from the loop, any time later).
 * Return 0, or nonzero to give up (the flow then fails with TG_EAUTH). */
typedef int (*tg_mcp_auth_browse_cb)(void *arg, tg_mcp_auth *a, const char *authorization_url);

enum { TG_MCP_GRANT_AUTO, TG_MCP_GRANT_CODE, TG_MCP_GRANT_CLIENT_CREDENTIALS };

typedef struct tg_mcp_auth_options {
  const char *server_url;          /* the MCP endpoint; copied */
  const char *redirect_uri;        /* registered and sent; NULL = http://127.0.0.1/callback */
  const char *client_name;         /* for dynamic registration; NULL = "toolgate" */
  const char *client_id;           /* pre-registered client (NULL: register) */
  const char *client_secret;       /* its secret (NULL: public client) */
  const char *client_metadata_url; /* Client ID Metadata Document URL (https), or NULL */
  int grant;                       /* TG_MCP_GRANT_*: AUTO uses client_credentials only when the
                                      server offers it and not authorization_code */
  /* Cross-app access (enterprise-managed authorization, SEP-990): an IdP ID token exchanged at
     the IdP's token endpoint for an ID-JAG, then a JWT bearer grant. All NULL: not used. */
  const char *idp_id_token, *idp_token_endpoint, *idp_client_id;
  /* private_key_jwt client authentication (RFC 7523 section 2.2; SEP-1046): the client's EC P-256
     private key (PEM); the token requests carry an ES256 client assertion instead of a secret.
     NULL: not used. */
  const char *private_key_pem;
  tg_mcp_auth_browse_cb browse; /* NULL: the authorization code grant is not possible */
  void *browse_arg;
  tg_mcp_auth_store store;
  long timeout_ms; /* per HTTP request; 0 = 10000 */
} tg_mcp_auth_options;

/* Creates the auth state for one MCP server (no I/O; loads stored tokens). Strings are copied.
 * Errors: TG_EINVAL (no or bad server_url), TG_ENOMEM. */
int tg_mcp_auth_new(tg_mcp_auth **out, tg_http_client *http, const tg_mcp_auth_options *opt);

/* Cancels what is in flight (no callback runs afterwards), wipes tokens and frees a. NULL-safe. */
void tg_mcp_auth_free(tg_mcp_auth *a);

typedef void (*tg_mcp_auth_done_cb)(void *arg, int err /* 0 or TG_E* */, const char *message);

/* Answers a 401/403 from the MCP server: status, its WWW-Authenticate value (may be NULL).
 * Refreshes or runs the whole flow as needed; cb(arg, 0) when a new token is ready. One
 * challenge at a time: TG_EBUSY while one runs. TG_EAUTH at once for a 403 that is not
 * insufficient_scope. */
int tg_mcp_auth_challenge(tg_mcp_auth *a, long status, const char *www_authenticate,
                          tg_mcp_auth_done_cb cb, void *arg);

/* The user came back: redirect_url is where the authorization server sent the browser (with
 * code and state, or error), or NULL when the user gave up. Ignored when no authorization is
 * waiting. */
void tg_mcp_auth_redirected(tg_mcp_auth *a, const char *redirect_url);

/* ---- the flow split in two (the gateway's browser leg, which may outlive the process) ------ */

/* What a code exchange or a refresh needs from discovery and registration, so that it can run
 * in another process (the gateway keeps it in connector_tokens). Strings borrowed for the call. */
typedef struct tg_mcp_auth_session {
  const char *issuer;
  const char *token_endpoint;
  const char *resource; /* RFC 8707 resource, NULL without resource metadata */
  const char *scope;    /* asked for, NULL for none */
  tg_mcp_auth_client client;
} tg_mcp_auth_session;

/* The first half's result (strings borrowed for the callback): the URL to send the browser to,
 * the state in it, the PKCE verifier the exchange needs, and the session. */
typedef struct tg_mcp_auth_begun {
  const char *authorization_url, *state, *verifier;
  tg_mcp_auth_session session;
} tg_mcp_auth_begun;

typedef void (*tg_mcp_auth_begin_cb)(void *arg, int err, const char *message,
                                     const tg_mcp_auth_begun *b /* NULL when err */);

/* The first half of the authorization code grant: discovery (www_authenticate, may be NULL, as
 * in a challenge), client registration (saved through the store), PKCE, state; then cb(arg, 0,
 * NULL, begun) instead of the browse callback; a is idle again when cb runs (its verifier wiped:
 * keep the one handed out), and cb may free it. Errors as tg_mcp_auth_challenge; the flow's
 * errors come through cb. */
int tg_mcp_auth_begin(tg_mcp_auth *a, const char *www_authenticate, tg_mcp_auth_begin_cb cb,
                      void *arg);

/* Seeds an idle a with a session (copied): the exchange, a refresh and the client come from it,
 * without discovery. TG_ESTATE while a flow runs, TG_EINVAL without token_endpoint or client_id
 * (or a URL tg_mcp_auth_url_allowed refuses), TG_ENOMEM. */
int tg_mcp_auth_restore(tg_mcp_auth *a, const tg_mcp_auth_session *s);

/* The second half: exchanges code (from the redirect) with verifier at the session's token
 * endpoint (tg_mcp_auth_restore first), sending the options' redirect_uri and the resource; the
 * tokens go through the store's save_tokens, then cb as above. TG_ESTATE while a flow runs or
 * without a session, TG_EINVAL for an empty code or verifier. */
int tg_mcp_auth_finish(tg_mcp_auth *a, const char *code, const char *verifier,
                       tg_mcp_auth_done_cb cb, void *arg);

/* Uses the refresh token now; cb as above. TG_ENOTFOUND without one, TG_EBUSY during a flow. */
int tg_mcp_auth_refresh(tg_mcp_auth *a, tg_mcp_auth_done_cb cb, void *arg);

/* "Authorization: Bearer <token>" for the current token, or NULL without one (borrowed: valid
 * until the next call into a). Starts a background refresh when the token expires within 60 s. */
const char *tg_mcp_auth_header(tg_mcp_auth *a);

/* The provider to put in tg_mcp_options.auth (valid as long as a). */
tg_mcp_auth_provider tg_mcp_auth_provider_of(tg_mcp_auth *a);

/* ---- pure helpers (unit-tested; no I/O) ---------------------------------------------------- */

/* The Bearer challenge's parameters from a WWW-Authenticate value (RFC 9110 section 11.6.1,
 * RFC 6750 section 3, RFC 9728 section 5.1). Each field malloc'd or NULL. */
typedef struct tg_mcp_auth_challenge_params {
  char *resource_metadata, *scope, *error;
  int bearer; /* 1 when a Bearer challenge was found */
} tg_mcp_auth_challenge_params;
int tg_mcp_auth_parse_challenge(const char *header, tg_mcp_auth_challenge_params *out);
void tg_mcp_auth_challenge_clear(tg_mcp_auth_challenge_params *c);

/* 1 when url is absolute https, or http to a loopback host (localhost, 127.0.0.0/8, [::1]),
 * without userinfo or fragment; else 0. */
int tg_mcp_auth_url_allowed(const char *url);

/* RFC 9728 section 3.1 well-known URLs for server_url, in the spec's order: the path-based one
 * (only when the URL has a path) then the root one. out[0..*n) malloc'd. TG_EINVAL, TG_ENOMEM. */
int tg_mcp_auth_prm_urls(const char *server_url, char *out[2], size_t *n);

/* Authorization server metadata URLs for issuer (MCP 2025-11-25 "Authorization Server Metadata
 * Discovery"): with a path, oauth-authorization-server/<path>, openid-configuration/<path>,
 * <path>/.well-known/openid-configuration; without, the two root ones. out malloc'd. */
int tg_mcp_auth_as_urls(const char *issuer, char *out[3], size_t *n);

/* 1 when resource (from the protected resource metadata) covers server_url: same scheme, host
 * and port, and its path is a prefix of server_url's on a segment boundary (RFC 9728 3.3). */
int tg_mcp_auth_resource_matches(const char *server_url, const char *resource);

/* 1 when issuer equals expected (one trailing '/' ignored on either), RFC 8414 section 3.3. */
int tg_mcp_auth_issuer_matches(const char *expected, const char *issuer);

/* Appends "&name=value" (no '&' when buf is empty) form-urlencoded to b. */
int tg_mcp_auth_form_add(tg_buf *b, const char *name, const char *value);

/* The query parameter name of url, percent-decoded, malloc'd; NULL when absent. */
char *tg_mcp_auth_query_param(const char *url, const char *name);

/* PKCE (RFC 7636): a 43-character verifier from 32 random bytes and its S256 challenge
 * (base64url without padding of SHA-256); both NUL-terminated, 44 bytes each. */
void tg_mcp_auth_pkce(char verifier[44], char challenge[44]);
void tg_mcp_auth_s256(const char *verifier, char challenge[44]);

#endif
