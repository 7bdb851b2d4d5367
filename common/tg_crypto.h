/*
 * tg_crypto: secrets at rest (DESIGN.md section 8): per-user MCP headers in
 * mcp_connections.headers_enc (and, later, connector credentials) are sealed with libsodium's
 * XChaCha20-Poly1305 (IETF AEAD) under the key in TOOLGATE_SECRET_KEY.
 *
 * Blob layout (stored as a SQLite BLOB): "v1:" <kid> ":" <24-byte nonce> <ciphertext + 16-byte
 * tag>. The associated data is "<table>|<row id>|<user id>|<kid>", so a ciphertext copied to
 * another row, another user or relabelled with another key id fails to open (TG_EAUTH).
 *
 * Keys: TOOLGATE_SECRET_KEY is "<kid>:<base64 of 32 bytes>" or just the base64 (the kid is then
 * "k" + the first 8 hex digits of BLAKE2b(key), a fingerprint). kid: 1..16 of [A-Za-z0-9_-].
 * TOOLGATE_SECRET_KEY_OLD (same syntax, optional) is the previous key: blobs under it still
 * open, new blobs always use the current key, and tg_crypto_rotate_db re-seals everything under
 * the current key. Key bytes live in sodium_malloc'd memory (guarded, locked, wiped on free).
 */
#ifndef TG_CRYPTO_H
#define TG_CRYPTO_H

#include "tg_config.h"
#include "tg_db.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define TG_CRYPTO_KID_MAX 16

typedef struct tg_crypto tg_crypto;

/*
 * Builds a keyring from the current and old key specs (either may be unset). *out is NULL and
 * the result 0 when neither is set (no key configured). Errors: TG_EINVAL with a one-line
 * reason in err naming the variable (bad base64, wrong length, bad kid, old without current,
 * same kid twice), TG_ENOMEM. Calls sodium_init() itself.
 */
int tg_crypto_new(tg_crypto **out, const tg_secret *current, const tg_secret *old, char *err,
                  size_t errlen);
void tg_crypto_free(tg_crypto *c); /* NULL-safe; wipes the keys */

/* The current key's id (lives as long as c). */
const char *tg_crypto_kid(const tg_crypto *c);

/*
 * Seals plaintext pt (n bytes) for (table, row, user) under the current key. *blob is malloc'd
 * (caller frees), *blob_len its length. Errors: TG_EINVAL (c NULL), TG_ENOMEM.
 */
int tg_crypto_seal(const tg_crypto *c, const char *table, int64_t row, const char *user,
                   const void *pt, size_t n, unsigned char **blob, size_t *blob_len);

/*
 * Opens a blob sealed for (table, row, user). *pt is a malloc'd, NUL-terminated copy of the
 * plaintext (*pt_len bytes before the NUL); release it with tg_crypto_wipe_free. Errors:
 * TG_EINVAL (not a v1 blob), TG_ENOTFOUND (its kid is not in the keyring), TG_EAUTH (wrong row,
 * user or key, or tampered), TG_ENOMEM.
 */
int tg_crypto_open(const tg_crypto *c, const char *table, int64_t row, const char *user,
                   const unsigned char *blob, size_t blob_len, char **pt, size_t *pt_len);

/* The same with the row id as text (e.g. workflow_runs.id "run_..."); an integer row id n in
 * tg_crypto_seal/open is the text "%lld" of n here, so both open each other's blobs. */
int tg_crypto_seal_id(const tg_crypto *c, const char *table, const char *row, const char *user,
                      const void *pt, size_t n, unsigned char **blob, size_t *blob_len);
int tg_crypto_open_id(const tg_crypto *c, const char *table, const char *row, const char *user,
                      const unsigned char *blob, size_t blob_len, char **pt, size_t *pt_len);

/* Copies the kid of a v1 blob into kid (TG_CRYPTO_KID_MAX + 1 bytes). 0 or TG_EINVAL. */
int tg_crypto_blob_kid(const unsigned char *blob, size_t blob_len, char *kid);

/* Zeroes n bytes at p and frees it (NULL-safe). */
void tg_crypto_wipe_free(void *p, size_t n);

/* --- mcp_connections.headers_enc: the encrypted JSON object {"Header-Name": "value", ...}. --- */

/*
 * Work-side (a dbq job or start-up): seals headers (a JSON object of string values; NULL or
 * empty clears the column) for mcp_connections row mcp_id and writes headers_enc. The user id in
 * the AD is read from the row's connected account. Errors: TG_ESTATE (no key configured: secrets
 * are never stored in clear), TG_EINVAL (headers not an object of strings), TG_ENOTFOUND (no
 * such row), TG_EDB/TG_EBUSY, TG_ENOMEM.
 */
int tg_crypto_store_mcp_headers(tg_db *db, const tg_crypto *c, int64_t mcp_id,
                                const json_t *headers);

/*
 * Opens a headers_enc blob given as uppercase or lowercase hex (SQL hex(headers_enc)) for row
 * mcp_id of user into a new JSON object (*headers). Errors as tg_crypto_open, plus TG_EINVAL
 * when the plaintext is not a JSON object of strings.
 */
int tg_crypto_open_mcp_headers_hex(const tg_crypto *c, int64_t mcp_id, const char *user,
                                   const char *hex, json_t **headers);

/* --- workflow_runs.inputs_secret_enc: the run's secret inputs, a JSON object name -> string
 * (schema/002_secret_inputs.sql; AD "workflow_runs|<run id>|<user id>|<kid>"). --- */

/*
 * Work-side: seals secrets (an object of strings; {} or no members: nothing written, 0) into
 * inputs_secret_enc of run run_id of user. Errors: TG_ESTATE (no key: secrets are never stored
 * in clear), TG_EINVAL (not an object of strings), TG_ENOTFOUND (no such run of user),
 * TG_EDB/TG_EBUSY, TG_ENOMEM. Run it in the transaction that inserts the run.
 */
int tg_crypto_store_run_secrets(tg_db *db, const tg_crypto *c, const char *run_id, const char *user,
                                const json_t *secrets);

/*
 * Work-side: opens inputs_secret_enc of run run_id of user into a new object (*secrets; NULL
 * when the run has none or does not exist). Errors: TG_ESTATE (the run has secrets, no key is
 * configured), as tg_crypto_open, TG_EINVAL (plaintext not an object of strings), TG_EDB.
 */
int tg_crypto_load_run_secrets(tg_db *db, const tg_crypto *c, const char *run_id, const char *user,
                               json_t **secrets);

/*
 * Start-up check: every encrypted column in the database must be readable with c. Returns 0, or
 * TG_ESTATE with a one-line reason in err when the database holds secrets and no key is
 * configured, or when a blob's kid is in neither TOOLGATE_SECRET_KEY nor TOOLGATE_SECRET_KEY_OLD.
 * *count (may be NULL) gets the number of encrypted values. Other errors: TG_EDB/TG_EBUSY.
 */
int tg_crypto_check_db(tg_db *db, const tg_crypto *c, int *count, char *err, size_t errlen);

/*
 * Re-seals every encrypted value whose kid is not the current one under the current key, in one
 * IMMEDIATE transaction (all or nothing). *rotated gets how many were re-sealed. Errors: as
 * tg_crypto_open for a value that does not open (nothing is changed), TG_EDB/TG_EBUSY.
 */
int tg_crypto_rotate_db(tg_db *db, const tg_crypto *c, int *rotated, char *err, size_t errlen);

/*
 * Start-up of a program that reads or writes secrets: builds the keyring from cfg
 * (TOOLGATE_SECRET_KEY, TOOLGATE_SECRET_KEY_OLD) into *out (NULL when no key is set), opens the
 * database at cfg->db_path (applying migrations) and runs tg_crypto_check_db. Returns 0, or an
 * error with a one-line reason in err for the caller to print before refusing to start.
 * Synchronous: call before the event loop runs.
 */
int tg_crypto_startup(const tg_config *cfg, tg_crypto **out, int *count, char *err, size_t errlen);

#endif
