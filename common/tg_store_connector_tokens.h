/*
 * tg_store_connector_tokens: the one owner of connector_tokens and connector_oauth_states
 * (schema/007_connectors_tools.sql): what MCP authorization (README "MCP authorization") keeps
 * per user and connector, and the browser leg of its authorization code flow.
 *
 *   connector_oauth_states  one row per POST /api/connectors/{id}/oauth/start: the state is
 *                           random (32 bytes, base64url) and only its SHA-256 is stored, so the
 *                           key looked up reveals nothing through its timing; the PKCE verifier
 *                           is sealed as {code_verifier} (AD "connector_oauth_states|<state
 * hash>|<user id>|<kid>"); consumed at most once, by one UPDATE whose WHERE holds every condition
 * (unused, unexpired, owner). connector_tokens        one row per connector: token_enc the sealed
 * tokens {access_token, refresh_token?, scope?, expires_at (ms)} (AD "connector_tokens|<id>| <user
 * id>|<kid>"), client_enc the sealed client registration {client_id, client_secret?, auth_method?}
 * (AD "connector_tokens.client|<id>|<user id>|<kid>"), meta the clear {issuer, token_endpoint,
 * resource, scope, registration} a refresh needs, expires_at the access token's expiry (ms; NULL
 * unknown).
 *
 * Nothing here logs or returns a secret except the load functions, whose plaintexts the caller
 * wipes (tg_connector_drop, tg_crypto_wipe_free). With a NULL keyring every write is TG_ESTATE:
 * tokens are never stored in clear. Every function runs on the caller's connection (a tg_dbq
 * job) inside whatever transaction it has open; strings are borrowed for the call; times are ms
 * since the epoch. Errors are TG_E* codes.
 */
#ifndef TG_STORE_CONNECTOR_TOKENS_H
#define TG_STORE_CONNECTOR_TOKENS_H

#include "tg_crypto.h"
#include "tg_mcp_auth.h"

#include <jansson.h>
#include <stdint.h>

typedef struct tg_db tg_db;

#define TG_CONNECTOR_STATE_TTL_MS 600000 /* an oauth/start state lives 10 minutes */

/* The SHA-256 of state, base64url without padding (44 bytes with the NUL): the stored key. */
void tg_store_connector_tokens_state_key(const char *state, char key[44]);

/*
 * Records the start of user's authorization of connector id: state (the clear value handed to
 * the authorization server; stored as its key), verifier (sealed), redirect_uri, expiring at
 * now_ms + TG_CONNECTOR_STATE_TTL_MS. Errors: TG_ESTATE (no key), TG_ECONFLICT (state exists),
 * TG_EDB, TG_ENOMEM.
 */
int tg_store_connector_tokens_state_insert(tg_db *db, const tg_crypto *c, const char *state,
                                           const char *user, const char *id, const char *verifier,
                                           const char *redirect_uri, int64_t now_ms);

/* A consumed state: every string malloc'd; free with tg_store_connector_tokens_state_clear
 * (wipes the verifier). */
typedef struct tg_connector_oauth_state {
  char *user_id, *connector_id, *verifier, *redirect_uri;
} tg_connector_oauth_state;
void tg_store_connector_tokens_state_clear(tg_connector_oauth_state *s);

/*
 * Consumes state at now_ms when it exists, is unused, unexpired and belongs to caller (caller ""
 * accepts any user): used_at = now_ms in one statement. On success *out is filled and *refused
 * NULL; when it cannot be consumed nothing is written, *out stays zeroed and *refused is a
 * static string: "unknown", "used", "expired" or "other_user". Returns 0 in both cases, or an
 * error (the state was consumed but its verifier does not open: tg_crypto's; TG_EDB, TG_ENOMEM).
 */
int tg_store_connector_tokens_state_consume(tg_db *db, const tg_crypto *c, const char *state,
                                            const char *caller, int64_t now_ms,
                                            tg_connector_oauth_state *out, const char **refused);

/* Deletes the states that expired before before_ms; *rows (may be NULL) gets how many. */
int tg_store_connector_tokens_states_cleanup(tg_db *db, int64_t before_ms, int *rows);

/*
 * Stores user's client registration for connector id (client: an object {client_id,
 * client_secret?, auth_method?}, sealed) and meta (an object without secrets, stored as is),
 * creating the row when there is none; the tokens are kept. Errors: TG_ESTATE, TG_EINVAL (no
 * client_id), TG_EDB, TG_ENOMEM.
 */
int tg_store_connector_tokens_save_client(tg_db *db, const tg_crypto *c, const char *user,
                                          const char *id, const json_t *client, const json_t *meta,
                                          int64_t now_ms);

/*
 * Stores user's tokens for connector id: tokens {access_token, refresh_token?, scope?,
 * expires_at (ms, 0 unknown)} sealed into token_enc and expires_at copied into its column.
 * A refresh that returns no refresh_token keeps the stored one. The row must exist
 * (save_client first): TG_ENOTFOUND. Errors: TG_ESTATE, TG_EINVAL (no access_token), TG_EDB,
 * TG_ENOMEM.
 */
int tg_store_connector_tokens_save(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                                   const json_t *tokens, int64_t now_ms);

/*
 * Loads user's row for connector id: *tokens and *client (new objects of plaintexts: release
 * with tg_connector_drop; NULL when the column is empty) and *meta (new object, never NULL on
 * success). Any out pointer may be NULL. Errors: TG_ENOTFOUND (no row), TG_ESTATE (sealed data
 * and no key), tg_crypto's (TG_EAUTH), TG_EINVAL, TG_EDB, TG_ENOMEM.
 */
int tg_store_connector_tokens_load(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                                   json_t **tokens, json_t **client, json_t **meta);

/* The tg_mcp_auth_session a loaded row describes (tg_mcp_auth_restore): its strings are
 * borrowed from meta ({issuer, token_endpoint, resource, scope}) and client ({client_id,
 * client_secret, auth_method}), either of which may be NULL. */
tg_mcp_auth_session tg_store_connector_tokens_session(const json_t *meta, const json_t *client);

#endif
