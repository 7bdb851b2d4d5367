/*
 * tg_oauth2_tokens: an OAuth2 access-token client with a cache, shared by the worker's API nodes
 * and the gateway's API connector calls (README "API node", "Connectors").
 *
 * Tokens are obtained with the credential's grant (RFC 6749 section 4.4 client credentials, or
 * section 6 refresh token when the credential holds a refresh token) from its token_url, through
 * the caller's HTTP client (an egress-checked one: token_url is user-supplied), with the client
 * authenticated in the body (section 2.3.1). A token is cached per (user, credential name,
 * credential contents) until 30 seconds before its expires_in (3600 s when absent), so two users
 * never share a token; requests for a token being fetched wait for that one fetch
 * (single-flight). Loop thread only.
 */
#ifndef TG_OAUTH2_TOKENS_H
#define TG_OAUTH2_TOKENS_H

#include "tg_http.h"

#include <jansson.h>

typedef struct tg_oauth2_tokens tg_oauth2_tokens;
typedef struct tg_oauth2_token_wait tg_oauth2_token_wait;

/* Called once with err 0 and the access token (valid during the call), or an error (TG_EEGRESS,
 * TG_ETIMEDOUT, TG_EIO, TG_EAUTH when the token endpoint refused the grant, TG_EPROTO for an
 * answer without access_token, TG_ECANCELED at shutdown) and a one-line reason that holds no
 * secret. status is the token endpoint's HTTP status (0 when it did not answer). */
typedef void (*tg_oauth2_token_cb)(void *arg, int err, long status, const char *token,
                                   const char *why);

/* A cache whose fetches use http (borrowed; it must outlive the cache's transfers). Returns 0 or
 * TG_ENOMEM; *out is freed with tg_oauth2_tokens_free. */
int tg_oauth2_tokens_new(tg_oauth2_tokens **out, tg_http_client *http);
/* NULL-safe; call when no fetch is in flight (after http was closed: its transfers ended). */
void tg_oauth2_tokens_free(tg_oauth2_tokens *t);

/*
 * The access token of oauth2 credential cred ({type, meta: {token_url, client_id, scope?},
 * secret: {client_secret?, refresh_token?}}) named name of user. When a fresh token is cached
 * (and fresh is 0) *now gets a malloc'd copy (the caller wipes and frees it) and cb is never
 * called. Otherwise the fetch starts or is joined, *w gets a handle for tg_oauth2_token_cancel
 * and cb runs once, later, from the loop. fresh 1 drops the cached token first (the API answered
 * 401 with it). Errors (cb never called): TG_EINVAL (not an oauth2 credential, or no
 * token_url), TG_ENOMEM, and tg_http_send's.
 */
int tg_oauth2_token_get(tg_oauth2_tokens *t, const char *user, const char *name, const json_t *cred,
                        int fresh, char **now, tg_oauth2_token_cb cb, void *arg,
                        tg_oauth2_token_wait **w);

/* Withdraws a waiter (NULL-safe): its cb will never be called (the fetch goes on and fills the
 * cache). */
void tg_oauth2_token_cancel(tg_oauth2_token_wait *w);

#endif
