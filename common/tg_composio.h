/*
 * tg_composio: asynchronous client for the Composio v3 REST API calls toolgate needs.
 *
 * Facts: ../shared/reference/composio-api.md (sections cited per call). Every call sends
 * x-api-key and Accept/Content-Type application/json, goes through tg_http (curl multi on the
 * loop) and never blocks. Callback rule: when a call returns an error, its callback is never
 * called; when it returns 0, the callback runs exactly once, later, from the loop.
 * Everything passed to a callback is borrowed: valid only until the callback returns.
 */
#ifndef TG_COMPOSIO_H
#define TG_COMPOSIO_H

#include "tg_http.h"

#include <jansson.h>
#include <stddef.h>

typedef struct tg_composio tg_composio;

/* Outcome of one call. */
typedef struct tg_composio_result {
  int err;             /* 0; TG_EAUTH (401/403: our API key was rejected); TG_ENOTFOUND (404);
                          TG_ERATELIMIT (429); TG_EHTTP (other non-2xx); TG_EPROTO (2xx with a
                          body we cannot decode); TG_EIO / TG_ETIMEDOUT (no answer) */
  long http_status;    /* 0 when no answer */
  long retry_after_ms; /* from Retry-After (seconds or HTTP date) on any answer, else -1 */
  const char *message; /* Composio's error.message (or top-level message), or a description */
  int http_calls;      /* HTTP requests this call made (a list: one per page fetched) */
} tg_composio_result;

/* A connected account, decoded from the ConnectedAccount object (reference 2.3). */
typedef struct tg_composio_account {
  const char *id;     /* "ca_..." */
  const char *status; /* INITIALIZING, INITIATED, ACTIVE, FAILED, EXPIRED, INACTIVE, REVOKED */
  const char *status_reason; /* may be NULL */
  int is_disabled;
  int auth_refresh_required;  /* 1 if the object carries a true auth_refresh_required (top level
                                 or in state.val); no schema has it, but DESIGN.md section 4
                                 treats it as blocking when present */
  const char *toolkit_slug;   /* toolkit.slug */
  const char *auth_config_id; /* auth_config.id */
  const char *user_id;        /* deprecated field, may be NULL; never trust it alone */
} tg_composio_account;

/*
 * Decodes a ConnectedAccount object (reference 2.3) as a single account's GET answer is decoded:
 * id and status must be non-empty strings; status_reason, toolkit.slug, auth_config.id and
 * user_id are taken when they are strings (else NULL); is_disabled and auth_refresh_required
 * (top level or in state.val) are 1 only when JSON true. Strings are borrowed from o. Returns 0
 * or TG_EPROTO. List pages are decoded by tg_composio_page without a tree, with the same
 * result (tests/fuzz/fuzz_composio_page.c checks the two against each other).
 */
int tg_composio_decode_account(const json_t *o, tg_composio_account *a);

/* base_url without /api/v3 (e.g. "https://backend.composio.dev"); api_key is copied and is
 * never logged. timeout_ms bounds each HTTP request. */
int tg_composio_new(tg_composio **out, tg_http_client *http, const char *base_url,
                    const char *api_key, long timeout_ms);
void tg_composio_free(tg_composio *c); /* NULL-safe; calls in flight are canceled silently */

/* Cancels, silently, every call in flight on c whose callback argument is arg: their
 * callbacks will never run. For owners (e.g. tg_check) that stop before their calls end. */
void tg_composio_cancel(tg_composio *c, void *arg);

/* GET /api/v3/connected_accounts?user_ids=U&toolkit_slugs=a,b&limit=100, following next_cursor
 * until null/empty (reference 2.2). All pages' items arrive together; on any page's failure
 * res->err is set and n is 0. Same as tg_composio_list_accounts_users with one user. */
typedef void (*tg_composio_list_cb)(void *arg, const tg_composio_result *res,
                                    const tg_composio_account *items, size_t n);
int tg_composio_list_accounts(tg_composio *c, const char *user_id, const char *const *toolkit_slugs,
                              size_t n_slugs, tg_composio_list_cb cb, void *arg);

/*
 * The list for several users at once: GET /api/v3/connected_accounts?user_ids=u1,u2,...
 * &toolkit_slugs=a,b&limit=100, all pages as above. Array parameters go out comma-joined, each
 * value URL-escaped (a comma inside a value becomes %2C), and filters OR within one parameter,
 * AND across parameters (reference section 1 "Array query parameters", 2.2), so the items are
 * the accounts of any of the users in any of the toolkits. Which user an item belongs to is not
 * reliable (its user_id field is deprecated, 2.3): match items by account id. Composio splits
 * a value on commas after decoding (the simulator does), so an id containing ',' should be
 * listed on its own. n_users >= 1 (an empty filter would list the whole project); no id NULL.
 * Errors (cb never called): TG_EINVAL, TG_ETOOBIG (query over 1 MiB), TG_ENOMEM, or tg_http's
 * start error.
 */
int tg_composio_list_accounts_users(tg_composio *c, const char *const *user_ids, size_t n_users,
                                    const char *const *toolkit_slugs, size_t n_slugs,
                                    tg_composio_list_cb cb, void *arg);

/* The query string of the first list page, as the calls above send it (without '?'): *out is
 * malloc'd (free()). Exposed for tests and for callers that bound URL lengths. Returns 0,
 * TG_EINVAL (n_users 0, a NULL array or value), TG_ETOOBIG (the query passes 1 MiB) or
 * TG_ENOMEM. */
int tg_composio_list_query(const char *const *user_ids, size_t n_users,
                           const char *const *toolkit_slugs, size_t n_slugs, char **out);

/* GET /api/v3/connected_accounts/{id} (reference 2.6). acct is NULL when res->err != 0. */
typedef void (*tg_composio_account_cb)(void *arg, const tg_composio_result *res,
                                       const tg_composio_account *acct);
int tg_composio_get_account(tg_composio *c, const char *id, tg_composio_account_cb cb, void *arg);

/* POST /api/v3/connected_accounts/link {auth_config_id, user_id, callback_url} → 201
 * {link_token, redirect_url, expires_at, connected_account_id} (reference 2.5). Any 2xx is
 * accepted; a 2xx without redirect_url is TG_EPROTO. connected_account_id and expires_at are NULL
 * when the response lacks them. */
typedef void (*tg_composio_link_cb)(void *arg, const tg_composio_result *res,
                                    const char *redirect_url, const char *connected_account_id,
                                    const char *expires_at);
int tg_composio_create_link(tg_composio *c, const char *auth_config_id, const char *user_id,
                            const char *callback_url, tg_composio_link_cb cb, void *arg);

/* POST /api/v3/mcp/servers/generate {mcp_server_id, user_ids:[user_id],
 * connected_account_ids:[id] (when id is not NULL), managed_auth_by_composio:true} → 200
 * {mcp_url, user_ids_url[], connected_account_urls[]} (reference 4.1). url is
 * connected_account_urls[0] when an id was given and present, else user_ids_url[0]. */
typedef void (*tg_composio_url_cb)(void *arg, const tg_composio_result *res, const char *url);
int tg_composio_generate_mcp_url(tg_composio *c, const char *mcp_server_id, const char *user_id,
                                 const char *connected_account_id, tg_composio_url_cb cb,
                                 void *arg);

/* DELETE /api/v3/connected_accounts/{id} (reference 2.6); 404 arrives as TG_ENOTFOUND. */
typedef void (*tg_composio_done_cb)(void *arg, const tg_composio_result *res);
int tg_composio_delete_account(tg_composio *c, const char *id, tg_composio_done_cb cb, void *arg);

#endif
