/*
 * tg_sealed: the database columns that hold values sealed with tg_crypto (DESIGN.md section 8),
 * and the whole-database operations over them.
 *
 * Sealed columns: mcp_connections.headers_enc (a connection's per-user MCP headers, a JSON object
 * of header name -> value; AD "mcp_connections|<id>|<user id>|<kid>") and
 * workflow_runs.inputs_secret_enc (a run's secret inputs, a JSON object name -> string; AD
 * "workflow_runs|<run id>|<user id>|<kid>", schema/002_secret_inputs.sql) and
 * credentials.secret_enc (API-node credentials, written by tg_store_credentials; AD
 * "credentials|<id>|<user id>|<kid>"; only checked and re-sealed here) and
 * connectors.secret_enc (a connector's secret fields, written by tg_store_connectors; AD
 * "connectors|<id>|<user id>|<kid>"; only checked and re-sealed here) and the three columns of
 * an MCP connector's authorization, written by tg_store_connector_tokens and only checked and
 * re-sealed here: connector_tokens.token_enc (AD "connector_tokens|<connector id>|<user id>|
 * <kid>"), connector_tokens.client_enc (AD "connector_tokens.client|...") and
 * connector_oauth_states.verifier_enc (AD "connector_oauth_states|<state hash>|..."). Plaintexts
 * are compact JSON with sorted keys; nothing here logs a key, a plaintext or a blob. With a NULL
 * keyring (no TOOLGATE_SECRET_KEY) nothing is sealed or opened (TG_ESTATE): secrets are never
 * stored in clear.
 */
#ifndef TG_SEALED_H
#define TG_SEALED_H

#include "tg_config.h"
#include "tg_crypto.h"
#include "tg_db.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* --- mcp_connections.headers_enc: the encrypted JSON object {"Header-Name": "value", ...}. --- */

/*
 * Work-side (a dbq job or start-up): seals headers (a JSON object of string values; NULL or
 * empty clears the column) for mcp_connections row mcp_id and writes headers_enc. The user id in
 * the AD is read from the row's connected account. Errors: TG_ESTATE (no key configured: secrets
 * are never stored in clear), TG_EINVAL (headers not an object of strings), TG_ENOTFOUND (no
 * such row), TG_EDB/TG_EBUSY, TG_ENOMEM.
 */
int tg_sealed_store_mcp_headers(tg_db *db, const tg_crypto *c, int64_t mcp_id,
                                const json_t *headers);

/*
 * Opens a headers_enc blob given as uppercase or lowercase hex (SQL hex(headers_enc)) for row
 * mcp_id of user into a new JSON object (*headers). Errors as tg_crypto_open, plus TG_EINVAL
 * when the plaintext is not a JSON object of strings.
 */
int tg_sealed_open_mcp_headers_hex(const tg_crypto *c, int64_t mcp_id, const char *user,
                                   const char *hex, json_t **headers);

/*
 * Opens a blob given as hex (SQL hex(<column>)) sealed for (table, row as text, user) into *pt,
 * a NUL-terminated plaintext of *pt_len bytes (release with tg_crypto_wipe_free). Errors:
 * TG_EINVAL (not hex, or not a v1 blob), as tg_crypto_open otherwise.
 */
int tg_sealed_open_hex(const tg_crypto *c, const char *table, const char *row, const char *user,
                       const char *hex, char **pt, size_t *pt_len);

/*
 * Seals the JSON object v for (table, row, user): its compact JSON with sorted keys (the
 * plaintext is wiped) into *blob (malloc'd, *blob_len bytes). Errors: TG_ENOMEM, tg_crypto's.
 */
int tg_sealed_seal_object(const tg_crypto *c, const char *table, const char *row, const char *user,
                          const json_t *v, unsigned char **blob, size_t *blob_len);

/*
 * tg_sealed_open_hex of a plaintext that must be a JSON object: *out a new object (its strings
 * are plaintexts: wipe them before release), or TG_EINVAL when it is not one. TG_ESTATE when c is
 * NULL.
 */
int tg_sealed_open_hex_object(const tg_crypto *c, const char *table, const char *row,
                              const char *user, const char *hex, json_t **out);

/* --- workflow_runs.inputs_secret_enc: the run's secret inputs, a JSON object name -> string
 * (schema/002_secret_inputs.sql; AD "workflow_runs|<run id>|<user id>|<kid>"). --- */

/*
 * Work-side: seals secrets (an object of strings; {} or no members: nothing written, 0) into
 * inputs_secret_enc of run run_id of user. Errors: TG_ESTATE (no key: secrets are never stored
 * in clear), TG_EINVAL (not an object of strings), TG_ENOTFOUND (no such run of user),
 * TG_EDB/TG_EBUSY, TG_ENOMEM. Run it in the transaction that inserts the run.
 */
int tg_sealed_store_run_secrets(tg_db *db, const tg_crypto *c, const char *run_id, const char *user,
                                const json_t *secrets);

/*
 * Work-side: opens inputs_secret_enc of run run_id of user into a new object (*secrets; NULL
 * when the run has none or does not exist). Errors: TG_ESTATE (the run has secrets, no key is
 * configured), as tg_crypto_open, TG_EINVAL (plaintext not an object of strings), TG_EDB.
 */
int tg_sealed_load_run_secrets(tg_db *db, const tg_crypto *c, const char *run_id, const char *user,
                               json_t **secrets);

/*
 * Start-up check: every encrypted column in the database must be readable with c. Returns 0, or
 * TG_ESTATE with a one-line reason in err when the database holds secrets and no key is
 * configured, or when a blob's kid is in neither TOOLGATE_SECRET_KEY nor TOOLGATE_SECRET_KEY_OLD.
 * *count (may be NULL) gets the number of encrypted values. Other errors: TG_EDB/TG_EBUSY.
 */
int tg_sealed_check_db(tg_db *db, const tg_crypto *c, int *count, char *err, size_t errlen);

/*
 * Re-seals every encrypted value whose kid is not the current one under the current key, in one
 * IMMEDIATE transaction (all or nothing). *rotated gets how many were re-sealed. Errors: as
 * tg_crypto_open for a value that does not open (nothing is changed), TG_EDB/TG_EBUSY.
 */
int tg_sealed_rotate_db(tg_db *db, const tg_crypto *c, int *rotated, char *err, size_t errlen);

/*
 * Start-up of a program that reads or writes secrets: builds the keyring from cfg
 * (TOOLGATE_SECRET_KEY, TOOLGATE_SECRET_KEY_OLD) into *out (NULL when no key is set), opens the
 * database at cfg->db_path (applying migrations) and runs tg_sealed_check_db. Returns 0, or an
 * error with a one-line reason in err for the caller to print before refusing to start.
 * Synchronous: call before the event loop runs.
 */
int tg_sealed_startup(const tg_config *cfg, tg_crypto **out, int *count, char *err, size_t errlen);

#endif
