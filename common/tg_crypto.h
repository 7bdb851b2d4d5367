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
 * open, new blobs always use the current key (tg_sealed_rotate_db re-seals the database's
 * columns under it). Key bytes live in sodium_malloc'd memory (guarded, locked, wiped on free).
 *
 * This module is the primitives only; the columns that hold sealed values, their start-up check
 * and rotation are tg_sealed's.
 */
#ifndef TG_CRYPTO_H
#define TG_CRYPTO_H

#include "tg_config.h"

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

/* 1 when kid names the current or the old key of c (c may be NULL: 0), else 0. */
int tg_crypto_has_kid(const tg_crypto *c, const char *kid);

#endif
