/*
 * tg_store_connectors: the one owner of the connectors table (schema/007_connectors_tools.sql):
 * a user's own API and MCP connectors (README "Connectors"), and the reads other modules need
 * (the catalog's sync, admission's and the guard's status read, the worker's executors).
 *
 * A row's config holds everything that is not a secret; secret_enc the sealed JSON of the secret
 * fields (tg_connector.h), sealed with tg_crypto for the row's own id and user (AD
 * "connectors|<id>|<user id>|<kid>"). Public reads never select secret_enc; only
 * tg_store_connectors_open gives the secrets out (to the gateway's test / invoke and the worker's
 * executors). Deleting is soft (deleted_at): every read here sees live rows only, so a deleted
 * connector, like another user's, is simply not found. version grows with every change.
 *
 * The public row (list, get, create, update): {id, kind, name, description, config,
 * auth_status, version, created_at, updated_at} (tg_connector_public lifts config for answers).
 * Every function runs on the caller's connection (a tg_dbq job); strings are borrowed for the
 * call; times are ms since the epoch. Errors are TG_E* codes.
 */
#ifndef TG_STORE_CONNECTORS_H
#define TG_STORE_CONNECTORS_H

#include "tg_connector.h"
#include "tg_crypto.h"

#include <jansson.h>
#include <stdint.h>

typedef struct tg_db tg_db;

/*
 * Creates user's connector from in (one IMMEDIATE transaction; id "con_" + random): auth_status
 * 'not_connected' for an MCP connector with in->oauth, else NULL. *row gets the public row.
 * Errors: TG_ESTATE (c NULL: no key configured, secrets are never stored in clear),
 * TG_ECONFLICT (user has a live connector of that name), TG_EDB, TG_EBUSY, TG_ENOMEM.
 */
int tg_store_connectors_create(tg_db *db, const tg_crypto *c, const char *user,
                               const tg_connector_input *in, int64_t now_ms, json_t **row);

/*
 * Replaces user's live connector id with in (same kind; version + 1). auth_status: NULL without
 * OAuth; 'not_connected' when OAuth is newly required or the URL changed; else unchanged.
 * Errors: TG_ENOTFOUND, TG_EINVAL (another kind), TG_ECONFLICT (name taken), TG_ESTATE, TG_EDB,
 * TG_EBUSY, TG_ENOMEM.
 */
int tg_store_connectors_update(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                               const tg_connector_input *in, int64_t now_ms, json_t **row);

/* Soft-deletes user's live connector id (deleted_at, version + 1): 0, TG_ENOTFOUND, TG_EDB. */
int tg_store_connectors_delete(tg_db *db, const char *user, const char *id, int64_t now_ms);

/* The user's live connectors, public rows, oldest first: a new array, or NULL with *err. The
 * catalog's sync reads this too (config holds the operations, example_payload, url). */
json_t *tg_store_connectors_list(tg_db *db, int *err, const char *user);

/* One live connector's public row: a new object, or NULL with *err (TG_ENOTFOUND: none of user's
 * by that id). */
json_t *tg_store_connectors_get(tg_db *db, int *err, const char *user, const char *id);

/* The version of user's live connector id into *version: 0, TG_ENOTFOUND, TG_EDB. */
int tg_store_connectors_version(tg_db *db, const char *user, const char *id, int64_t *version);

/*
 * Opens user's live connector id into *out: the public row plus "secret" (the plaintexts,
 * {"auth": {...}, "headers": {...}}); the caller wipes it (tg_api_wipe_json) before release.
 * Errors: TG_ENOTFOUND, TG_ESTATE (the row has secrets and no key is configured), tg_crypto's
 * (TG_EAUTH), TG_EINVAL (a plaintext that is not an object), TG_EDB, TG_ENOMEM.
 */
int tg_store_connectors_open(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                             json_t **out);

/*
 * The user's live connectors that cannot run now: a new object id -> auth_status for every one
 * whose auth_status is neither NULL nor 'ACTIVE' (one indexed read; usually empty), or NULL with
 * *err.
 */
json_t *tg_store_connectors_blocked(tg_db *db, int *err, const char *user);

/*
 * Sets the MCP authorization state of user's live OAuth connector id to status ('ACTIVE',
 * 'not_connected' or 'auth_refresh_required'; version + 1, updated_at now_ms), fenced by
 * version: only when the row's version is still version (pass -1 for any). A row without OAuth
 * (auth_status NULL) is never changed. Errors: TG_ENOTFOUND (no live connector id of user),
 * TG_ECONFLICT (its version moved: someone else changed it first; or it has no OAuth),
 * TG_EINVAL (another status), TG_EDB, TG_EBUSY.
 */
int tg_store_connectors_set_auth_status(tg_db *db, const char *user, const char *id,
                                        int64_t version, const char *status, int64_t now_ms);

/*
 * The OAuth access token of user's connector id (connector_tokens.token_enc, sealed with AD
 * "connector_tokens|<connector id>|<user id>|<kid>", a JSON object with access_token) into
 * *token (malloc'd; release with tg_crypto_wipe_free). Errors: TG_ENOTFOUND (no row or no
 * token), TG_ESTATE, tg_crypto's, TG_EINVAL, TG_EDB, TG_ENOMEM.
 */
int tg_store_connectors_access_token(tg_db *db, const tg_crypto *c, const char *user,
                                     const char *id, char **token);

#endif
