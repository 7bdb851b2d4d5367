/*
 * wk_api: the worker's side of API nodes besides the executor itself: the OAuth2 access-token
 * cache (wk_api_tokens.c). README "API node".
 *
 * Tokens are obtained with the credential's grant (RFC 6749 section 4.4 client credentials, or
 * section 6 refresh token when the credential holds a refresh token) from its token_url, through
 * the worker's egress-checked HTTP client, with the client authenticated in the body (section
 * 2.3.1). A token is cached per (user, credential name, credential contents) until 30 seconds
 * before its expires_in (3600 s when absent); requests for a token being fetched wait for that
 * one fetch (single-flight). Loop thread only.
 */
#ifndef WK_API_H
#define WK_API_H

#include "tg_http.h"

#include <jansson.h>

typedef struct wk_api_tokens wk_api_tokens;
typedef struct wk_api_token_wait wk_api_token_wait;

/* Called once with err 0 and the access token (valid during the call), or an error (TG_EEGRESS,
 * TG_ETIMEDOUT, TG_EIO, TG_EAUTH when the token endpoint refused the grant, TG_EPROTO for an
 * answer without access_token, TG_ECANCELED at shutdown) and a one-line reason. */
typedef void (*wk_api_token_cb)(void *arg, int err, const char *token, const char *why);

/* A cache whose fetches use http (borrowed; it must outlive the cache's transfers). */
int wk_api_tokens_new(wk_api_tokens **out, tg_http_client *http);
/* NULL-safe; call when no fetch is in flight (after http was closed: its transfers ended). */
void wk_api_tokens_free(wk_api_tokens *t);

/*
 * The access token of oauth2 credential cred ({type, meta: {token_url, client_id, scope?},
 * secret: {client_secret?, refresh_token?}}) named name of user. When a fresh token is cached
 * (and fresh is 0) *now gets a malloc'd copy (the caller wipes and frees it) and cb is never
 * called. Otherwise the fetch starts or is joined, *w gets a handle for wk_api_token_cancel and
 * cb runs once, later, from the loop. fresh 1 drops the cached token first (the API answered
 * 401 with it). Errors (cb never called): TG_EINVAL (not an oauth2 credential), TG_ENOMEM, and
 * tg_http_send's.
 */
int wk_api_token_get(wk_api_tokens *t, const char *user, const char *name, const json_t *cred,
                     int fresh, char **now, wk_api_token_cb cb, void *arg, wk_api_token_wait **w);

/* Withdraws a waiter: its cb will never be called (the fetch goes on and fills the cache). */
void wk_api_token_cancel(wk_api_token_wait *w);

#endif
