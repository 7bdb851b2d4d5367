/*
 * tg_store_accounts: the one owner of the connected_accounts table, of the per-user MCP
 * endpoint rows (mcp_connections) written with it, and of retired_accounts (Composio accounts a
 * reconnect replaced, until Composio has deleted them). Every statement that changes an account row
 * is here, so its rules live in one place:
 *
 *   - Every change of a row moves version by one and sets updated_at (ms since the epoch) to the
 *     time the caller passes; a write that would change neither status nor status_reason of a
 *     row does not move version (the observe functions, the reason of a disconnected row).
 *   - Status transitions: PENDING on an OAuth start (an ACTIVE row only when the caller says
 *     Composio no longer has it ACTIVE); ACTIVE on connect (insert or update in place,
 *     UNIQUE(user_id, auth_config_id)); FAILED on a failed callback, never over ACTIVE;
 *     DISCONNECTED by the user, which no check, webhook or callback write-back brings back
 *     (except a new connect); EXPIRED from the expiry webhook and for abandoned PENDING rows.
 *   - Observations (what Composio said) are written guarded: by row id and the version read
 *     (single-account checks) or by user, provider and Composio account id (provider checks).
 *
 * Every function runs on the caller's connection (one thread at a time, a tg_dbq job) and inside
 * whatever transaction the caller has open: the store never begins or commits, so a route can
 * combine its writes (user, auth config, OAuth state, account) in one transaction. Errors are
 * the TG_E* codes of tg_db (TG_EDB, TG_EBUSY, TG_ECONFLICT, TG_ENOMEM); times are ms since the
 * epoch; strings are borrowed for the call. Rows come back as new JSON objects (tg_db_query
 * shapes) the caller frees with json_decref.
 */
#ifndef TG_STORE_ACCOUNTS_H
#define TG_STORE_ACCOUNTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_db tg_db;

/* --- Reads. --- */

/*
 * The row of (user_id, auth_config_id): a new object {id, provider, status, status_reason,
 * composio_account_id, version, last_checked_at}, or NULL with *err = TG_ENOTFOUND (no row) or
 * another TG_E* code.
 */
json_t *tg_store_accounts_find(tg_db *db, int *err, const char *user_id,
                               const char *auth_config_id);

/*
 * Every row of user_id: a new array of {id, provider, auth_config_id, status, status_reason,
 * composio_account_id, version, last_checked_at} (empty when none), or NULL with *err set.
 */
json_t *tg_store_accounts_list(tg_db *db, int *err, const char *user_id);

/*
 * The ACTIVE rows with a Composio account id, least recently checked first, at most limit: a new
 * array of {id, user_id, provider, composio_account_id, version}, or NULL with *err set.
 */
json_t *tg_store_accounts_list_active(tg_db *db, int *err, int limit);

/*
 * user_id's rows with their MCP endpoint, ordered by provider: a new array of {provider,
 * auth_config_id, status, status_reason, composio_account_id, version, last_checked_at,
 * connected_at, created_at, updated_at, mcp_url, has_headers (0/1), last_synced_at,
 * last_error} (the mcp_* members null when no endpoint row), or NULL with *err set. mcp_url is
 * the stored URL, secrets included: the caller redacts it before showing it.
 */
json_t *tg_store_accounts_list_endpoints(tg_db *db, int *err, const char *user_id);

/*
 * The owner of the row holding Composio account composio_account_id: a new object {user_id,
 * provider}, or NULL with *err = TG_ENOTFOUND or another TG_E* code.
 */
json_t *tg_store_accounts_find_by_ca(tg_db *db, int *err, const char *composio_account_id);

/* --- Status changes. *changed / *rows (may be NULL) get the number of rows written. --- */

/*
 * An OAuth start produced Composio account composio_account_id (may be NULL) for (user_id,
 * auth_config_id): no row → a new PENDING row (version 1); a row that is not ACTIVE, or an ACTIVE
 * one when replace_active (Composio said it is not usable) → PENDING with the new account id and
 * no reason; an ACTIVE row otherwise keeps everything (the new id waits in the OAuth state until
 * the callback succeeds).
 */
int tg_store_accounts_start(tg_db *db, const char *user_id, const char *provider,
                            const char *auth_config_id, const char *composio_account_id,
                            int replace_active, int64_t now_ms, int *changed);

/*
 * A failed OAuth callback: the row of (user_id, auth_config_id) becomes FAILED with reason
 * (last_checked_at = now_ms) unless it is ACTIVE (a failed reconnect keeps a working
 * connection).
 */
int tg_store_accounts_fail(tg_db *db, const char *user_id, const char *auth_config_id,
                           const char *reason, int64_t now_ms, int *changed);

/*
 * A successful OAuth callback: the row of (user_id, auth_config_id) is inserted or updated in
 * place as ACTIVE with composio_account_id, no reason, last_checked_at = connected_at = now_ms;
 * its MCP endpoint row gets mcp_url with no headers and no error (last_synced_at = now_ms).
 * Foreign keys: user_id and auth_config_id must exist (the caller writes them first, in the
 * same transaction).
 */
int tg_store_accounts_connect(tg_db *db, const char *user_id, const char *provider,
                              const char *auth_config_id, const char *composio_account_id,
                              const char *mcp_url, int64_t now_ms);

/*
 * The user disconnects row row_id: DISCONNECTED with reason, and its MCP endpoint loses URL,
 * headers and error. The caller read the row in the same transaction (tg_store_accounts_find)
 * and decided it is not DISCONNECTED yet.
 */
int tg_store_accounts_disconnect(tg_db *db, int64_t row_id, const char *reason, int64_t now_ms);

/*
 * Replaces the reason of row row_id while it is DISCONNECTED and still holds Composio account
 * composio_account_id (what Composio's side of a disconnect became); a row whose reason is
 * already reason is not written.
 */
int tg_store_accounts_set_disconnect_reason(tg_db *db, int64_t row_id,
                                            const char *composio_account_id, const char *reason,
                                            int64_t now_ms, int *changed);

/*
 * Composio expired account composio_account_id (webhook): its rows become EXPIRED with reason
 * (last_checked_at = now_ms), except DISCONNECTED ones and those already EXPIRED with reason.
 */
int tg_store_accounts_expire(tg_db *db, const char *composio_account_id, const char *reason,
                             int64_t now_ms, int *rows);

/*
 * Cleanup: PENDING rows not updated since untouched_before_ms whose user has no open (unused,
 * unexpired at now_ms) OAuth state for the provider become EXPIRED with reason.
 */
int tg_store_accounts_expire_abandoned(tg_db *db, const char *reason, int64_t untouched_before_ms,
                                       int64_t now_ms, int *rows);

/* --- Retired accounts (table retired_accounts): replaced by a reconnect, to be deleted at
 * Composio, so a user does not accumulate live grants. --- */

/*
 * Before a successful OAuth callback stores composio_account_id in the row of (user_id,
 * auth_config_id): when the row holds another Composio account, records that one as retired
 * (retired_at = now_ms; already recorded: kept as it is) and copies its id into retired (len
 * bytes, "" when nothing was retired; an id that does not fit is recorded but not copied). Call
 * in the transaction that stores the new account, before tg_store_accounts_connect.
 */
int tg_store_accounts_retire_previous(tg_db *db, const char *user_id, const char *auth_config_id,
                                      const char *composio_account_id, int64_t now_ms,
                                      char *retired, size_t len);

/* Forgets retired account composio_account_id: Composio has deleted it (or never had it). */
int tg_store_accounts_retired_done(tg_db *db, const char *composio_account_id);

/* Notes a failed delete of retired account composio_account_id: attempts + 1, last_attempt_at =
 * now_ms, last_error = error (a short name, may be NULL). */
int tg_store_accounts_retired_failed(tg_db *db, const char *composio_account_id, const char *error,
                                     int64_t now_ms);

/* Retired accounts still to delete, never-attempted then least recently attempted first, at
 * most limit: a new array of {composio_account_id, user_id, provider, attempts}, or NULL with
 * *err set. */
json_t *tg_store_accounts_list_retired(tg_db *db, int *err, int limit);

/* --- Observations: what Composio said about an account. --- */

/*
 * Writes a single-account observation to row row_id as read at version: status (ours, not
 * NULL), reason (Composio's status_reason verbatim, may be NULL), last_checked_at = now_ms.
 * version and updated_at move only when status or reason differ from the row's. When the row is
 * gone or changed since it was read nothing is written. *changed (may be NULL): 1 status or
 * reason changed, 0 only last_checked_at, -1 nothing written.
 */
int tg_store_accounts_observe_row(tg_db *db, int64_t row_id, int64_t version, const char *status,
                                  const char *reason, int64_t now_ms, int *changed);

/*
 * Writes a provider check's observation to user_id's rows of provider holding
 * composio_account_id, unless DISCONNECTED: status (ours; NULL keeps the row's), reason (may be
 * NULL) and last_checked_at = updated_at = now_ms; version moves only when status or reason
 * changed. *rows (may be NULL) gets the rows written, changed or not.
 */
int tg_store_accounts_observe(tg_db *db, const char *user_id, const char *provider,
                              const char *composio_account_id, const char *status,
                              const char *reason, int64_t now_ms, int *rows);

#endif
