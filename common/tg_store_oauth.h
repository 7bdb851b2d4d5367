/*
 * tg_store_oauth: the one owner of the two tables of the OAuth and webhook edges:
 *
 *   oauth_states    one row per OAuth start (random state, user, provider, expiry); consumed at
 *                   most once by the callback, in the same statement that checks it (a replay
 *                   or a race finds nothing to consume and writes nothing); deleted by the
 *                   cleanup some time after expiry.
 *   webhook_events  one row per webhook-id received, so that each delivery is processed once;
 *                   forgotten by the cleanup after a week.
 *
 * Every function runs on the caller's connection and inside whatever transaction the caller has
 * open (the store never begins or commits). Errors are the TG_E* codes of tg_db; times are ms
 * since the epoch; strings are borrowed for the call.
 */
#ifndef TG_STORE_OAUTH_H
#define TG_STORE_OAUTH_H

#include <jansson.h>
#include <stdint.h>

typedef struct tg_db tg_db;

/* --- oauth_states --- */

/* Inserts state (unused, created_at, expires_at) for user_id and provider; redirect_uri may be
 * NULL. TG_ECONFLICT when the state exists. */
int tg_store_oauth_state_insert(tg_db *db, const char *state, const char *user_id,
                                const char *provider, const char *redirect_uri,
                                int64_t created_at_ms, int64_t expires_at_ms);

/* Records the Composio account the OAuth link of state created (composio_account_id may be
 * NULL). A state that does not exist is not an error. */
int tg_store_oauth_state_link(tg_db *db, const char *state, const char *composio_account_id);

/*
 * Consumes state at now_ms when it exists, is unused, unexpired and belongs to caller (caller ""
 * accepts any user): used_at = now_ms, in one statement. On success *out is a new object
 * {user_id, provider, composio_account_id (may be null)} and *refused NULL. When the state
 * cannot be consumed nothing is written, *out is NULL and *refused is a static string: "unknown",
 * "used", "expired" or "other_user". Returns 0 in both cases, or a TG_E* code (then *out NULL).
 */
int tg_store_oauth_state_consume(tg_db *db, const char *state, const char *caller, int64_t now_ms,
                                 json_t **out, const char **refused);

/*
 * user_id's open states (unused, unexpired at now_ms) per provider: a new array of {provider,
 * open_states, latest_expires_at} ordered by provider (no state values), or NULL with *err set.
 */
json_t *tg_store_oauth_open_states(tg_db *db, int *err, const char *user_id, int64_t now_ms);

/* Deletes state while it is unused (an OAuth start whose link call failed: nobody can finish
 * it); *rows (may be NULL) gets 1 or 0. */
int tg_store_oauth_state_delete(tg_db *db, const char *state, int *rows);

/* Deletes the states that expired before expired_before_ms; *rows (may be NULL) gets how many. */
int tg_store_oauth_states_cleanup(tg_db *db, int64_t expired_before_ms, int *rows);

/* --- webhook_events --- */

/*
 * Records webhook id (with its event type) as received at now_ms. *first is 1 when this is the
 * first delivery of id, 0 when it was recorded before (then nothing is written).
 */
int tg_store_oauth_webhook_record(tg_db *db, const char *id, const char *type, int64_t now_ms,
                                  int *first);

/* Forgets the webhook ids received before received_before_ms. */
int tg_store_oauth_webhooks_cleanup(tg_db *db, int64_t received_before_ms);

#endif
