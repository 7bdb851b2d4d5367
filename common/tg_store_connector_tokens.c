/*
 * tg_store_connector_tokens: the statements over connector_tokens and connector_oauth_states and
 * the sealing of what they hold (contract in tg_store_connector_tokens.h).
 *
 * Invariants: a state row is keyed by the SHA-256 of the state, never the state itself; it is
 * consumed by the single UPDATE in state_consume (two callbacks racing for one state cannot both
 * succeed; the reads after it only explain a refusal or return the row). Every sealed value is
 * compact JSON (or the verifier's text) sealed for its own row and user, with a table part per
 * column so that a blob moved to the other column of the same row does not open. Reads of
 * blobs select hex(...) (tg_db_query omits BLOBs) and open them with tg_sealed_open_hex.
 */
#include "tg_store_connector_tokens.h"

#include "tg_mcp_auth.h"

#include "tg_connector.h"
#include "tg_db.h"
#include "tg_err.h"
#include "tg_sealed.h"
#include "tg_sql.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define T_TOKENS "connector_tokens"
#define T_CLIENT "connector_tokens.client"
#define T_STATES "connector_oauth_states"
/* Statements in dialect D (tg_sql.h): the sealed columns come back as hex. */
/* clang-format off */
#define STATE_SQL(D)                                                                               \
  "SELECT user_id, connector_id, redirect_uri, expires_at, used_at, "                              \
  D##_HEX("verifier_enc")                                                                          \
  " AS v FROM connector_oauth_states WHERE state = ?"
#define LOAD_SQL(D)                                                                                \
  "SELECT " D##_HEX("token_enc") " AS t, " D##_HEX("client_enc") " AS c, meta AS meta_json "       \
  "FROM connector_tokens WHERE connector_id = ? AND user_id = ?"
/* clang-format on */

void tg_store_connector_tokens_state_key(const char *state, char key[44])
{
  tg_mcp_auth_s256(state, key); /* the same SHA-256 + base64url as a PKCE challenge */
}

/* Opens hex (NULL or empty: *out NULL, 0) sealed for (table, id, user) as an object. */
static int open_json(const tg_crypto *c, const char *table, const char *id, const char *user,
                     const char *hex, json_t **out)
{
  *out = NULL;
  return hex && *hex ? tg_sealed_open_hex_object(c, table, id, user, hex, out) : 0;
}

/* ---------------------------------------------------------------- connector_oauth_states */

int tg_store_connector_tokens_state_insert(tg_db *db, const tg_crypto *c, const char *state,
                                           const char *user, const char *id, const char *verifier,
                                           const char *redirect_uri, int64_t now_ms)
{
  char key[44];
  unsigned char *blob = NULL;
  size_t blob_len = 0;
  json_t *v;
  int rc;
  if (!c)
    return TG_ESTATE;
  tg_store_connector_tokens_state_key(state, key);
  if (!(v = json_pack("{s:s}", "code_verifier", verifier)))
    return TG_ENOMEM;
  rc = tg_sealed_seal_object(c, T_STATES, key, user, v, &blob, &blob_len);
  tg_connector_drop(v);
  if (rc == 0)
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO connector_oauth_states (state, user_id, connector_id, "
                    "verifier_enc, redirect_uri, created_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    "sssbsII", key, user, id, blob, blob_len, redirect_uri, (long long)now_ms,
                    (long long)(now_ms + TG_CONNECTOR_STATE_TTL_MS));
  free(blob);
  return rc;
}

void tg_store_connector_tokens_state_clear(tg_connector_oauth_state *s)
{
  if (!s)
    return;
  free(s->user_id);
  free(s->connector_id);
  if (s->verifier)
    tg_crypto_wipe_free(s->verifier, strlen(s->verifier));
  free(s->redirect_uri);
  memset(s, 0, sizeof *s);
}

int tg_store_connector_tokens_state_consume(tg_db *db, const tg_crypto *c, const char *state,
                                            const char *caller, int64_t now_ms,
                                            tg_connector_oauth_state *out, const char **refused)
{
  char key[44];
  int rc, changes = 0;
  json_t *row, *sealed = NULL;
  const char *user;
  memset(out, 0, sizeof *out);
  *refused = NULL;
  tg_store_connector_tokens_state_key(state, key);
  /* read first (it explains a refusal), then consume with every condition in the UPDATE: of two
   * callbacks racing for the state, one changes the row and the other is told "used" */
  row = tg_db_query_one(db, &rc, TG_SQL_OF(db, STATE_SQL), "s", key);
  if (!row) {
    *refused = rc == TG_ENOTFOUND ? "unknown" : NULL;
    return rc == TG_ENOTFOUND ? 0 : rc;
  }
  user = json_string_value(json_object_get(row, "user_id"));
  rc = tg_db_exec(db, &changes,
                  "UPDATE connector_oauth_states SET used_at = ?1 WHERE state = ?2 AND "
                  "used_at IS NULL AND expires_at > ?1 AND (?3 = '' OR user_id = ?3)",
                  "Iss", (long long)now_ms, key, caller);
  if (rc == 0 && changes != 1)
    *refused = !json_is_null(json_object_get(row, "used_at"))                     ? "used"
               : *caller && strcmp(caller, user) != 0                             ? "other_user"
               : json_integer_value(json_object_get(row, "expires_at")) <= now_ms ? "expired"
                                                                                  : "used";
  if (rc == 0 && !*refused) {
    rc = open_json(c, T_STATES, key, user, json_string_value(json_object_get(row, "v")), &sealed);
    if (rc == 0 && !json_string_value(json_object_get(sealed, "code_verifier")))
      rc = TG_EINVAL;
  }
  if (rc == 0 && !*refused) {
    out->user_id = strdup(user);
    out->connector_id = strdup(json_string_value(json_object_get(row, "connector_id")));
    out->redirect_uri = strdup(json_string_value(json_object_get(row, "redirect_uri")));
    out->verifier = strdup(json_string_value(json_object_get(sealed, "code_verifier")));
    if (!out->user_id || !out->connector_id || !out->redirect_uri || !out->verifier) {
      tg_store_connector_tokens_state_clear(out);
      rc = TG_ENOMEM;
    }
  }
  tg_connector_drop(sealed);
  json_decref(row);
  return rc;
}

int tg_store_connector_tokens_states_cleanup(tg_db *db, int64_t before_ms, int *rows)
{
  return tg_db_exec(db, rows, "DELETE FROM connector_oauth_states WHERE expires_at < ?", "I",
                    (long long)before_ms);
}

/* ---------------------------------------------------------------- connector_tokens */

int tg_store_connector_tokens_save_client(tg_db *db, const tg_crypto *c, const char *user,
                                          const char *id, const json_t *client, const json_t *meta,
                                          int64_t now_ms)
{
  unsigned char *blob = NULL;
  size_t blob_len = 0;
  int rc;
  if (!c)
    return TG_ESTATE;
  if (!json_string_value(json_object_get(client, "client_id")) || !json_is_object(meta))
    return TG_EINVAL;
  if ((rc = tg_sealed_seal_object(c, T_CLIENT, id, user, client, &blob, &blob_len)) == 0)
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO connector_tokens (connector_id, user_id, client_enc, meta, "
                    "updated_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (connector_id) DO "
                    "UPDATE SET client_enc = ?3, meta = ?4, updated_at = ?5 WHERE "
                    "connector_tokens.user_id = ?2",
                    "ssbjI", id, user, blob, blob_len, meta, (long long)now_ms);
  free(blob);
  return rc;
}

int tg_store_connector_tokens_save(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                                   const json_t *tokens, int64_t now_ms)
{
  unsigned char *blob = NULL;
  size_t blob_len = 0;
  json_t *old = NULL, *t = NULL;
  json_int_t exp = json_integer_value(json_object_get(tokens, "expires_at"));
  int rc, changes = 0;
  if (!c)
    return TG_ESTATE;
  if (!json_string_value(json_object_get(tokens, "access_token")))
    return TG_EINVAL;
  if (!(t = json_deep_copy(tokens)))
    return TG_ENOMEM;
  if (!json_object_get(t, "refresh_token") &&
      tg_store_connector_tokens_load(db, c, user, id, &old, NULL, NULL) == 0 &&
      json_object_get(old, "refresh_token"))
    json_object_set(t, "refresh_token", json_object_get(old, "refresh_token"));
  if ((rc = tg_sealed_seal_object(c, T_TOKENS, id, user, t, &blob, &blob_len)) == 0)
    rc = tg_db_exec(db, &changes,
                    "UPDATE connector_tokens SET token_enc = ?, expires_at = ?, updated_at = ? "
                    "WHERE connector_id = ? AND user_id = ?",
                    "bIIss", blob, blob_len, (long long)exp, (long long)now_ms, id, user);
  if (rc == 0 && exp <= 0)
    rc = tg_db_exec(db, NULL,
                    "UPDATE connector_tokens SET expires_at = NULL WHERE connector_id = ? AND "
                    "user_id = ?",
                    "ss", id, user);
  free(blob);
  tg_connector_drop(old);
  tg_connector_drop(t);
  return rc ? rc : changes ? 0 : TG_ENOTFOUND;
}

int tg_store_connector_tokens_load(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                                   json_t **tokens, json_t **client, json_t **meta)
{
  int rc = 0;
  json_t *r, *tok = NULL, *cli = NULL;
  if (tokens)
    *tokens = NULL;
  if (client)
    *client = NULL;
  if (meta)
    *meta = NULL;
  r = tg_db_query_one(db, &rc, TG_SQL_OF(db, LOAD_SQL), "ss", id, user);
  if (!r)
    return rc;
  if (tokens)
    rc = open_json(c, T_TOKENS, id, user, json_string_value(json_object_get(r, "t")), &tok);
  if (rc == 0 && client)
    rc = open_json(c, T_CLIENT, id, user, json_string_value(json_object_get(r, "c")), &cli);
  if (rc == 0 && meta) {
    json_t *m = json_object_get(r, "meta");
    *meta = json_is_object(m) ? json_incref(m) : json_object();
    rc = *meta ? 0 : TG_ENOMEM;
  }
  json_decref(r);
  if (rc) {
    tg_connector_drop(tok);
    tg_connector_drop(cli);
    return rc;
  }
  if (tokens)
    *tokens = tok;
  if (client)
    *client = cli;
  return 0;
}

tg_mcp_auth_session tg_store_connector_tokens_session(const json_t *meta, const json_t *client)
{
  tg_mcp_auth_session s = {json_string_value(json_object_get(meta, "issuer")),
                           json_string_value(json_object_get(meta, "token_endpoint")),
                           json_string_value(json_object_get(meta, "resource")),
                           json_string_value(json_object_get(meta, "scope")),
                           {json_string_value(json_object_get(client, "client_id")),
                            json_string_value(json_object_get(client, "client_secret")),
                            json_string_value(json_object_get(client, "auth_method"))}};
  return s;
}
