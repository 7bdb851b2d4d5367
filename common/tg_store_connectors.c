/*
 * tg_store_connectors: the statements over connectors and the sealing of their secrets (contract
 * in tg_store_connectors.h).
 *
 * Invariants: secret_enc always holds the sealed compact JSON (sorted keys) of the secret
 * object, sealed for the row's own id and user, so a blob copied to another row or user does not
 * open; PUBLIC_COLS never selects secret_enc; every read and write is limited to the caller's
 * live rows (user_id = ? AND deleted_at IS NULL), which is what makes another user's connector
 * "not found". Reads that open secrets select hex(secret_enc) (tg_db_query omits BLOBs).
 */
#include "tg_store_connectors.h"

#include "tg_db.h"
#include "tg_err.h"
#include "tg_id.h"
#include "tg_sealed.h"
#include "tg_sql.h"
#include "tg_store_connector_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE "connectors"
#define PUBLIC_COLS                                                                                \
  "id, kind, name, description, config AS config_json, auth_status, version, created_at, "         \
  "updated_at FROM connectors "
#define LIVE "user_id = ? AND deleted_at IS NULL "
/* A row with its sealed secret as hex, in dialect D (tg_sql.h). */
/* clang-format off */
#define SECRET_SQL(D)                                                                              \
  "SELECT id, kind, name, description, config AS config_json, auth_status, version, "              \
  D##_HEX("secret_enc")                                                                            \
  " AS secret_hex FROM connectors WHERE id = ? AND " LIVE
/* clang-format on */

/* TG_ECONFLICT when user has another live connector named name (except: its id, or NULL). */
static int name_taken(tg_db *db, const char *user, const char *name, const char *except)
{
  int rc = 0;
  json_t *r =
      tg_db_query_one(db, &rc, "SELECT id FROM connectors WHERE " LIVE "AND name = ? AND id != ?",
                      "sss", user, name, except ? except : "");
  json_decref(r);
  return r ? TG_ECONFLICT : rc == TG_ENOTFOUND ? 0 : rc;
}

/* Serialises in's config into *config and seals its secret (compact JSON, sorted keys) for
 * (id, user) into *blob. */
static int prepare(const tg_crypto *c, const char *id, const char *user,
                   const tg_connector_input *in, unsigned char **blob, size_t *blob_len,
                   char **config)
{
  if (!(*config = json_dumps(in->config, JSON_COMPACT | JSON_SORT_KEYS)))
    return TG_ENOMEM;
  return tg_sealed_seal_object(c, TABLE, id, user, in->secret, blob, blob_len);
}

int tg_store_connectors_create(tg_db *db, const tg_crypto *c, const char *user,
                               const tg_connector_input *in, int64_t now_ms, json_t **row)
{
  unsigned char *blob = NULL;
  size_t blob_len = 0;
  char id[64], *config = NULL;
  int rc;
  *row = NULL;
  if (!c)
    return TG_ESTATE;
  tg_random_id(id, sizeof id, "con_", 12);
  if ((rc = prepare(c, id, user, in, &blob, &blob_len, &config)) != 0)
    goto out;
  if ((rc = tg_db_begin(db, 1)) != 0)
    goto out;
  if ((rc = name_taken(db, user, in->name, NULL)) == 0)
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO connectors (id, user_id, kind, name, description, config, "
                    "secret_enc, auth_status, version, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                    "ssssssbsII", id, user, in->kind, in->name, in->description, config, blob,
                    blob_len, in->oauth ? "not_connected" : NULL, (long long)now_ms,
                    (long long)now_ms);
  if ((rc = tg_db_end(db, rc)) == 0)
    *row = tg_store_connectors_get(db, &rc, user, id);
out:
  free(blob);
  free(config);
  return *row ? 0 : rc ? rc : TG_ENOMEM;
}

int tg_store_connectors_update(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                               const tg_connector_input *in, int64_t now_ms, json_t **row)
{
  unsigned char *blob = NULL;
  size_t blob_len = 0;
  char *config = NULL;
  json_t *old = NULL;
  const char *status = NULL, *old_status, *old_url;
  int rc;
  *row = NULL;
  if (!c)
    return TG_ESTATE;
  if ((rc = prepare(c, id, user, in, &blob, &blob_len, &config)) != 0)
    goto out;
  if ((rc = tg_db_begin(db, 1)) != 0)
    goto out;
  if (!(old = tg_store_connectors_get(db, &rc, user, id)))
    goto end;
  if (strcmp(json_string_value(json_object_get(old, "kind")), in->kind) != 0) {
    rc = TG_EINVAL;
    goto end;
  }
  if ((rc = name_taken(db, user, in->name, id)) != 0)
    goto end;
  old_status = json_string_value(json_object_get(old, "auth_status"));
  old_url = json_string_value(json_object_get(json_object_get(old, "config"), "url"));
  if (in->oauth)
    status = old_status && old_url &&
                     strcmp(old_url, json_string_value(json_object_get(in->config, "url"))) == 0
                 ? old_status
                 : "not_connected";
  rc = tg_db_exec(db, NULL,
                  "UPDATE connectors SET name = ?, description = ?, config = ?, secret_enc = ?, "
                  "auth_status = ?, version = version + 1, updated_at = ? WHERE id = ? AND " LIVE,
                  "sssbsIss", in->name, in->description, config, blob, blob_len, status,
                  (long long)now_ms, id, user);
end:
  if ((rc = tg_db_end(db, rc)) == 0)
    *row = tg_store_connectors_get(db, &rc, user, id);
out:
  json_decref(old);
  free(blob);
  free(config);
  return *row ? 0 : rc ? rc : TG_ENOMEM;
}

int tg_store_connectors_delete(tg_db *db, const char *user, const char *id, int64_t now_ms)
{
  int changes = 0;
  int rc = tg_db_exec(db, &changes,
                      "UPDATE connectors SET deleted_at = ?, version = version + 1, updated_at = ? "
                      "WHERE id = ? AND " LIVE,
                      "IIss", (long long)now_ms, (long long)now_ms, id, user);
  return rc ? rc : changes ? 0 : TG_ENOTFOUND;
}

int tg_store_connectors_set_auth_status(tg_db *db, const char *user, const char *id,
                                        int64_t version, const char *status, int64_t now_ms)
{
  int changes = 0, rc;
  int64_t now_version = 0;
  if (!status || (strcmp(status, "ACTIVE") != 0 && strcmp(status, "not_connected") != 0 &&
                  strcmp(status, "auth_refresh_required") != 0))
    return TG_EINVAL;
  rc = tg_db_exec(db, &changes,
                  "UPDATE connectors SET auth_status = ?, version = version + 1, updated_at = ? "
                  "WHERE id = ? AND " LIVE "AND auth_status IS NOT NULL AND (? < 0 OR version = ?)",
                  "sIssII", status, (long long)now_ms, id, user, (long long)version,
                  (long long)version);
  if (rc || changes)
    return rc;
  /* a live row that did not match: its version moved, or it has no OAuth */
  rc = tg_store_connectors_version(db, user, id, &now_version);
  return rc ? rc : TG_ECONFLICT;
}

json_t *tg_store_connectors_list(tg_db *db, int *err, const char *user)
{
  return tg_db_query(db, err, "SELECT " PUBLIC_COLS "WHERE " LIVE "ORDER BY created_at, id", "s",
                     user);
}

json_t *tg_store_connectors_get(tg_db *db, int *err, const char *user, const char *id)
{
  return tg_db_query_one(db, err, "SELECT " PUBLIC_COLS "WHERE id = ? AND " LIVE, "ss", id, user);
}

int tg_store_connectors_version(tg_db *db, const char *user, const char *id, int64_t *version)
{
  int rc = 0;
  json_t *r = tg_db_query_one(db, &rc, "SELECT version FROM connectors WHERE id = ? AND " LIVE,
                              "ss", id, user);
  if (!r)
    return rc;
  *version = (int64_t)json_integer_value(json_object_get(r, "version"));
  json_decref(r);
  return 0;
}

/* Opens a hex blob sealed for (table, row, user) as a JSON object into *out. */
static int open_object(const tg_crypto *c, const char *table, const char *row, const char *user,
                       const char *hex, json_t **out)
{
  return tg_sealed_open_hex_object(c, table, row, user, hex, out);
}

int tg_store_connectors_open(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                             json_t **out)
{
  int rc = 0;
  json_t *secret = NULL, *r;
  const char *hex;
  *out = NULL;
  r = tg_db_query_one(db, &rc, TG_SQL_OF(db, SECRET_SQL), "ss", id, user);
  if (!r)
    return rc;
  hex = json_string_value(json_object_get(r, "secret_hex"));
  if (hex && *hex && (rc = open_object(c, TABLE, id, user, hex, &secret)) != 0) {
    json_decref(r);
    return rc;
  }
  json_object_del(r, "secret_hex");
  if (json_object_set_new(r, "secret",
                          secret ? secret : json_pack("{s:{}, s:{}}", "auth", "headers"))) {
    json_decref(r);
    return TG_ENOMEM;
  }
  *out = r;
  return 0;
}

json_t *tg_store_connectors_blocked(tg_db *db, int *err, const char *user)
{
  json_t *rows = tg_db_query(db, err,
                             "SELECT id, auth_status FROM connectors WHERE " LIVE
                             "AND auth_status IS NOT NULL AND auth_status != 'ACTIVE'",
                             "s", user);
  json_t *out = rows ? json_object() : NULL, *r;
  size_t i;
  json_array_foreach(rows, i, r)
  {
    json_object_set(out, json_string_value(json_object_get(r, "id")),
                    json_object_get(r, "auth_status"));
  }
  json_decref(rows);
  if (rows && !out && err)
    *err = TG_ENOMEM;
  return out;
}

int tg_store_connectors_access_token(tg_db *db, const tg_crypto *c, const char *user,
                                     const char *id, char **token)
{
  json_t *tok = NULL;
  const char *at;
  int rc = tg_store_connector_tokens_load(db, c, user, id, &tok, NULL, NULL);
  *token = NULL;
  if (rc)
    return rc;
  at = json_string_value(json_object_get(tok, "access_token"));
  if (!at || !*at)
    rc = TG_ENOTFOUND;
  else if (!(*token = strdup(at)))
    rc = TG_ENOMEM;
  tg_connector_drop(tok);
  return rc;
}
