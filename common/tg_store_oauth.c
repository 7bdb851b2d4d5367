/*
 * tg_store_oauth: the statements over oauth_states and webhook_events (see tg_store_oauth.h).
 *
 * Invariant: a state is consumed by the single UPDATE in tg_store_oauth_state_consume, whose
 * WHERE clause holds every condition (unused, unexpired, owner), so two callbacks racing for one
 * state cannot both succeed; the reads after it only explain a refusal or return the row.
 */
#include "tg_store_oauth.h"

#include "tg_db.h"
#include "tg_err.h"

/* ---------------------------------------------------------------- oauth_states */

int tg_store_oauth_state_insert(tg_db *db, const char *state, const char *user_id,
                                const char *provider, const char *redirect_uri,
                                int64_t created_at_ms, int64_t expires_at_ms)
{
  return tg_db_exec(db, NULL,
                    "INSERT INTO oauth_states (state, user_id, provider, redirect_uri, "
                    "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                    "ssssII", state, user_id, provider, redirect_uri, (long long)created_at_ms,
                    (long long)expires_at_ms);
}

int tg_store_oauth_state_link(tg_db *db, const char *state, const char *composio_account_id)
{
  return tg_db_exec(db, NULL, "UPDATE oauth_states SET composio_account_id = ? WHERE state = ?",
                    "ss", composio_account_id, state);
}

int tg_store_oauth_state_consume(tg_db *db, const char *state, const char *caller, int64_t now_ms,
                                 json_t **out, const char **refused)
{
  int rc, changes = 0;
  json_t *row;
  *out = NULL;
  *refused = NULL;
  rc = tg_db_exec(db, &changes,
                  "UPDATE oauth_states SET used_at = ?1 WHERE state = ?2 AND used_at IS NULL AND "
                  "expires_at > ?1 AND (?3 = '' OR user_id = ?3)",
                  "Iss", (long long)now_ms, state, caller);
  if (rc != 0)
    return rc;
  if (changes != 1) {
    row = tg_db_query_one(db, &rc,
                          "SELECT user_id, expires_at, used_at FROM oauth_states WHERE state = ?",
                          "s", state);
    if (!row && rc != TG_ENOTFOUND)
      return rc;
    *refused = !row                                                               ? "unknown"
               : !json_is_null(json_object_get(row, "used_at"))                   ? "used"
               : json_integer_value(json_object_get(row, "expires_at")) <= now_ms ? "expired"
                                                                                  : "other_user";
    json_decref(row);
    return 0;
  }
  *out = tg_db_query_one(db, &rc,
                         "SELECT user_id, provider, composio_account_id FROM oauth_states "
                         "WHERE state = ?",
                         "s", state);
  return *out ? 0 : rc;
}

json_t *tg_store_oauth_open_states(tg_db *db, int *err, const char *user_id, int64_t now_ms)
{
  return tg_db_query(db, err,
                     "SELECT provider, count(*) AS open_states, max(expires_at) AS "
                     "latest_expires_at FROM oauth_states WHERE user_id = ? AND used_at IS "
                     "NULL AND expires_at > ? GROUP BY provider ORDER BY provider",
                     "sI", user_id, (long long)now_ms);
}

int tg_store_oauth_state_delete(tg_db *db, const char *state, int *rows)
{
  return tg_db_exec(db, rows, "DELETE FROM oauth_states WHERE state = ? AND used_at IS NULL", "s",
                    state);
}

int tg_store_oauth_states_cleanup(tg_db *db, int64_t expired_before_ms, int *rows)
{
  return tg_db_exec(db, rows, "DELETE FROM oauth_states WHERE expires_at < ?", "I",
                    (long long)expired_before_ms);
}

/* ---------------------------------------------------------------- webhook_events */

int tg_store_oauth_webhook_record(tg_db *db, const char *id, const char *type, int64_t now_ms,
                                  int *first)
{
  int n = 0;
  int rc = tg_db_exec(db, &n,
                      "INSERT INTO webhook_events (id, type, received_at) VALUES (?, ?, ?) "
                      "ON CONFLICT(id) DO NOTHING",
                      "ssI", id, type, (long long)now_ms);
  *first = rc == 0 && n == 1;
  return rc;
}

int tg_store_oauth_webhooks_cleanup(tg_db *db, int64_t received_before_ms)
{
  return tg_db_exec(db, NULL, "DELETE FROM webhook_events WHERE received_at < ?", "I",
                    (long long)received_before_ms);
}
