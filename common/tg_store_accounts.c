/*
 * tg_store_accounts: the statements over connected_accounts and mcp_connections (see
 * tg_store_accounts.h for the rules they keep).
 *
 * Invariant of this file: every UPDATE of connected_accounts binds now_ms as ?1 and carries BUMP
 * (or, for observations, BUMP_IF_CHANGED), the only place where version and updated_at move; an
 * INSERT starts a row at version 1 with created_at = updated_at = now_ms.
 */
#include "tg_store_accounts.h"

#include "tg_db.h"
#include "tg_err.h"

#include <string.h>

/* The bump of every change: ?1 is now_ms. */
#define BUMP "version = connected_accounts.version + 1, updated_at = ?1"
/* The bump of an observation: version only when status (?2, NULL keeps it) or status_reason (?3)
 * changes; updated_at always. */
#define BUMP_IF_CHANGED                                                                            \
  "version = version + CAST(status IS DISTINCT FROM coalesce(?2, status) OR status_reason IS "     \
  "DISTINCT FROM ?3 AS INTEGER), "                                                                 \
  "updated_at = ?1"

#define ROW_COLUMNS                                                                                \
  "id, provider, auth_config_id, status, status_reason, composio_account_id, version, "            \
  "last_checked_at"

/* A row with its MCP endpoint (ca: the account, m: the endpoint, LEFT JOIN). */
#define ENDPOINT_COLUMNS                                                                           \
  "ca.provider, ca.auth_config_id, ca.status, ca.status_reason, ca.composio_account_id, "          \
  "ca.version, ca.last_checked_at, ca.connected_at, ca.created_at, ca.updated_at, m.url AS "       \
  "mcp_url, m.headers_enc IS NOT NULL AS has_headers, m.last_synced_at, m.last_error"

/* ---------------------------------------------------------------- reads */

json_t *tg_store_accounts_find(tg_db *db, int *err, const char *user_id, const char *auth_config_id)
{
  return tg_db_query_one(db, err,
                         "SELECT " ROW_COLUMNS " FROM connected_accounts WHERE user_id = ? AND "
                         "auth_config_id = ?",
                         "ss", user_id, auth_config_id);
}

json_t *tg_store_accounts_list(tg_db *db, int *err, const char *user_id)
{
  return tg_db_query(db, err, "SELECT " ROW_COLUMNS " FROM connected_accounts WHERE user_id = ?",
                     "s", user_id);
}

json_t *tg_store_accounts_list_active(tg_db *db, int *err, int limit)
{
  return tg_db_query(db, err,
                     "SELECT id, user_id, provider, composio_account_id, version FROM "
                     "connected_accounts WHERE status = 'ACTIVE' AND composio_account_id IS "
                     "NOT NULL ORDER BY last_checked_at NULLS FIRST LIMIT ?",
                     "i", limit);
}

json_t *tg_store_accounts_list_endpoints(tg_db *db, int *err, const char *user_id)
{
  return tg_db_query(db, err,
                     "SELECT " ENDPOINT_COLUMNS " FROM connected_accounts ca LEFT JOIN "
                     "mcp_connections m ON m.connected_account_id = ca.id WHERE ca.user_id = ? "
                     "ORDER BY ca.provider",
                     "s", user_id);
}

json_t *tg_store_accounts_find_by_ca(tg_db *db, int *err, const char *composio_account_id)
{
  return tg_db_query_one(db, err,
                         "SELECT user_id, provider FROM connected_accounts WHERE "
                         "composio_account_id = ?",
                         "s", composio_account_id);
}

/* ---------------------------------------------------------------- status changes */

int tg_store_accounts_start(tg_db *db, const char *user_id, const char *provider,
                            const char *auth_config_id, const char *composio_account_id,
                            int replace_active, int64_t now_ms, int *changed)
{
  int rc, n = 0;
  json_t *row = tg_store_accounts_find(db, &rc, user_id, auth_config_id);
  if (!row && rc != TG_ENOTFOUND)
    return rc;
  if (!row) {
    rc = tg_db_exec(db, &n,
                    "INSERT INTO connected_accounts (user_id, provider, auth_config_id, "
                    "composio_account_id, status, version, created_at, updated_at) "
                    "VALUES (?2, ?3, ?4, ?5, 'PENDING', 1, ?1, ?1)",
                    "Issss", (long long)now_ms, user_id, provider, auth_config_id,
                    composio_account_id);
  } else {
    const char *st = json_string_value(json_object_get(row, "status"));
    if (!st || strcmp(st, "ACTIVE") != 0 || replace_active)
      rc = tg_db_exec(db, &n,
                      "UPDATE connected_accounts SET status = 'PENDING', composio_account_id = "
                      "?2, status_reason = NULL, " BUMP " WHERE id = ?3",
                      "IsI", (long long)now_ms, composio_account_id,
                      (long long)json_integer_value(json_object_get(row, "id")));
    json_decref(row);
  }
  if (changed)
    *changed = rc == 0 ? n : 0;
  return rc;
}

int tg_store_accounts_fail(tg_db *db, const char *user_id, const char *auth_config_id,
                           const char *reason, int64_t now_ms, int *changed)
{
  return tg_db_exec(db, changed,
                    "UPDATE connected_accounts SET status = 'FAILED', status_reason = ?2, "
                    "last_checked_at = ?1, " BUMP " WHERE user_id = ?3 AND auth_config_id = ?4 "
                    "AND status != 'ACTIVE'",
                    "Isss", (long long)now_ms, reason, user_id, auth_config_id);
}

int tg_store_accounts_connect(tg_db *db, const char *user_id, const char *provider,
                              const char *auth_config_id, const char *composio_account_id,
                              const char *mcp_url, int64_t now_ms)
{
  int rc;
  json_t *row;
  rc = tg_db_exec(db, NULL,
                  "INSERT INTO connected_accounts (user_id, provider, auth_config_id, "
                  "composio_account_id, status, status_reason, version, last_checked_at, "
                  "connected_at, created_at, updated_at) VALUES (?2, ?3, ?4, ?5, 'ACTIVE', NULL, "
                  "1, ?1, ?1, ?1, ?1) ON CONFLICT(user_id, auth_config_id) DO UPDATE SET "
                  "provider = excluded.provider, composio_account_id = "
                  "excluded.composio_account_id, status = 'ACTIVE', status_reason = NULL, "
                  "last_checked_at = ?1, connected_at = ?1, " BUMP,
                  "Issss", (long long)now_ms, user_id, provider, auth_config_id,
                  composio_account_id);
  if (rc != 0)
    return rc;
  row = tg_store_accounts_find(db, &rc, user_id, auth_config_id);
  if (!row)
    return rc;
  rc = tg_db_exec(db, NULL,
                  "INSERT INTO mcp_connections (connected_account_id, url, headers_enc, "
                  "last_synced_at, last_error, created_at, updated_at) VALUES (?2, ?3, NULL, ?1, "
                  "NULL, ?1, ?1) ON CONFLICT(connected_account_id) DO UPDATE SET url = "
                  "excluded.url, headers_enc = NULL, last_synced_at = ?1, last_error = NULL, "
                  "updated_at = ?1",
                  "IIs", (long long)now_ms,
                  (long long)json_integer_value(json_object_get(row, "id")), mcp_url);
  json_decref(row);
  return rc;
}

int tg_store_accounts_retire_previous(tg_db *db, const char *user_id, const char *auth_config_id,
                                      const char *composio_account_id, int64_t now_ms,
                                      char *retired, size_t len)
{
  int rc;
  json_t *row = tg_store_accounts_find(db, &rc, user_id, auth_config_id);
  const char *old;
  if (len)
    *retired = 0;
  if (!row)
    return rc == TG_ENOTFOUND ? 0 : rc;
  old = json_string_value(json_object_get(row, "composio_account_id"));
  rc = 0;
  if (old && *old && (!composio_account_id || strcmp(old, composio_account_id) != 0)) {
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO retired_accounts (composio_account_id, user_id, provider, "
                    "retired_at) VALUES (?, ?, ?, ?) ON CONFLICT(composio_account_id) DO NOTHING",
                    "sssI", old, user_id, json_string_value(json_object_get(row, "provider")),
                    (long long)now_ms);
    if (rc == 0 && strlen(old) < len)
      memcpy(retired, old, strlen(old) + 1);
  }
  json_decref(row);
  return rc;
}

int tg_store_accounts_retired_done(tg_db *db, const char *composio_account_id)
{
  return tg_db_exec(db, NULL, "DELETE FROM retired_accounts WHERE composio_account_id = ?", "s",
                    composio_account_id);
}

int tg_store_accounts_retired_failed(tg_db *db, const char *composio_account_id, const char *error,
                                     int64_t now_ms)
{
  return tg_db_exec(db, NULL,
                    "UPDATE retired_accounts SET attempts = attempts + 1, last_attempt_at = ?, "
                    "last_error = ? WHERE composio_account_id = ?",
                    "Iss", (long long)now_ms, error, composio_account_id);
}

json_t *tg_store_accounts_list_retired(tg_db *db, int *err, int limit)
{
  return tg_db_query(db, err,
                     "SELECT composio_account_id, user_id, provider, attempts FROM "
                     "retired_accounts ORDER BY last_attempt_at NULLS FIRST, retired_at LIMIT ?",
                     "i", limit);
}

int tg_store_accounts_disconnect(tg_db *db, int64_t row_id, const char *reason, int64_t now_ms)
{
  int rc = tg_db_exec(db, NULL,
                      "UPDATE connected_accounts SET status = 'DISCONNECTED', "
                      "status_reason = ?2, " BUMP " WHERE id = ?3",
                      "IsI", (long long)now_ms, reason, (long long)row_id);
  if (rc != 0)
    return rc;
  return tg_db_exec(db, NULL,
                    "UPDATE mcp_connections SET url = NULL, headers_enc = NULL, last_error = NULL, "
                    "updated_at = ?1 WHERE connected_account_id = ?2",
                    "II", (long long)now_ms, (long long)row_id);
}

int tg_store_accounts_set_disconnect_reason(tg_db *db, int64_t row_id,
                                            const char *composio_account_id, const char *reason,
                                            int64_t now_ms, int *changed)
{
  return tg_db_exec(db, changed,
                    "UPDATE connected_accounts SET status_reason = ?2, " BUMP " WHERE id = ?3 AND "
                    "status = 'DISCONNECTED' AND composio_account_id = ?4 AND status_reason IS "
                    "DISTINCT FROM ?2",
                    "IsIs", (long long)now_ms, reason, (long long)row_id, composio_account_id);
}

int tg_store_accounts_expire(tg_db *db, const char *composio_account_id, const char *reason,
                             int64_t now_ms, int *rows)
{
  return tg_db_exec(
      db, rows,
      "UPDATE connected_accounts SET status = 'EXPIRED', status_reason = ?2, "
      "last_checked_at = ?1, " BUMP " WHERE composio_account_id = ?3 AND status != "
      "'DISCONNECTED' AND NOT (status = 'EXPIRED' AND status_reason IS NOT DISTINCT FROM ?2)",
      "Iss", (long long)now_ms, reason, composio_account_id);
}

int tg_store_accounts_expire_abandoned(tg_db *db, const char *reason, int64_t untouched_before_ms,
                                       int64_t now_ms, int *rows)
{
  return tg_db_exec(db, rows,
                    "UPDATE connected_accounts SET status = 'EXPIRED', status_reason = ?2, " BUMP
                    " WHERE status = 'PENDING' AND updated_at < ?3 AND NOT EXISTS (SELECT 1 FROM "
                    "oauth_states s WHERE s.user_id = connected_accounts.user_id AND s.provider = "
                    "connected_accounts.provider AND s.used_at IS NULL AND s.expires_at > ?1)",
                    "IsI", (long long)now_ms, reason, (long long)untouched_before_ms);
}

/* ---------------------------------------------------------------- observations */

static int same_text(const char *a, const char *b)
{
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int tg_store_accounts_observe_row(tg_db *db, int64_t row_id, int64_t version, const char *status,
                                  const char *reason, int64_t now_ms, int *changed)
{
  int rc, n = 0, differs;
  json_t *row = tg_db_query_one(db, &rc,
                                "SELECT status, status_reason FROM connected_accounts WHERE id = ? "
                                "AND version = ?",
                                "II", (long long)row_id, (long long)version);
  const char *old_st;
  if (!row) {
    if (changed)
      *changed = -1;
    return rc == TG_ENOTFOUND ? 0 : rc;
  }
  old_st = json_string_value(json_object_get(row, "status"));
  differs = !old_st || strcmp(old_st, status) != 0 ||
            !same_text(json_string_value(json_object_get(row, "status_reason")), reason);
  json_decref(row);
  if (differs)
    rc = tg_db_exec(db, &n,
                    "UPDATE connected_accounts SET status = ?2, status_reason = ?3, "
                    "last_checked_at = ?1, " BUMP " WHERE id = ?4 AND version = ?5",
                    "IssII", (long long)now_ms, status, reason, (long long)row_id,
                    (long long)version);
  else
    rc = tg_db_exec(db, &n,
                    "UPDATE connected_accounts SET last_checked_at = ?1 WHERE id = ?2 AND "
                    "version = ?3",
                    "III", (long long)now_ms, (long long)row_id, (long long)version);
  if (changed)
    *changed = rc == 0 && n == 1 ? differs : -1;
  return rc;
}

int tg_store_accounts_observe(tg_db *db, const char *user_id, const char *provider,
                              const char *composio_account_id, const char *status,
                              const char *reason, int64_t now_ms, int *rows)
{
  return tg_db_exec(db, rows,
                    "UPDATE connected_accounts SET " BUMP_IF_CHANGED ", "
                    "status = coalesce(?2, status), status_reason = ?3, last_checked_at = ?1 "
                    "WHERE user_id = ?4 AND provider = ?5 AND composio_account_id = ?6 AND "
                    "status <> 'DISCONNECTED'",
                    "Isssss", (long long)now_ms, status, reason, user_id, provider,
                    composio_account_id);
}
