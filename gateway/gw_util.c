/*
 * gw_util: the users and auth_configs rows every route may need to create (first sight of a
 * user with its credit grant; the configured providers' auth configs), and the process-wide
 * lock around the hot write transactions. Work side (pool threads) only.
 */
#include "gw.h"
#include "tg_db_stmt.h"

#include <pthread.h>

int gw_auth_config_upsert_tx(tg_db *db, const tg_provider *p, int64_t now)
{
  return tg_db_exec(db, NULL,
                    "INSERT INTO auth_configs (id, provider, toolkit_slug, display_name, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO "
                    "UPDATE SET provider = excluded.provider, toolkit_slug = "
                    "excluded.toolkit_slug, display_name = excluded.display_name, updated_at = "
                    "excluded.updated_at",
                    "ssssII", p->auth_config_id, p->provider, p->toolkit_slug, p->display_name,
                    (long long)now, (long long)now);
}

int gw_ensure_user_tx(tg_db *db, const char *user, int64_t default_credits)
{
  int rc, changes = 0;
  int64_t now = tg_now_ms();
  rc = tg_db_exec(db, &changes,
                  "INSERT OR IGNORE INTO users (id, credits, created_at) VALUES (?, ?, ?)", "sII",
                  user, (long long)default_credits, (long long)now);
  if (rc == 0 && changes == 1) {
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO credit_ledger (user_id, run_id, delta, reason, created_at) "
                    "VALUES (?, NULL, ?, 'grant', ?)",
                    "sII", user, (long long)default_credits, (long long)now);
    if (rc == 0)
      tg_info("user_created", "{s:s, s:I}", "user_id", user, "credits",
              (json_int_t)default_credits);
  }
  return rc;
}

int gw_ensure_user(tg_db *db, const char *user, int64_t default_credits)
{
  /* Most requests come from known users: a read avoids taking the write lock (one step on a
   * cached statement, no row object). */
  sqlite3_stmt *st = tg_db_prepare(db, "SELECT 1 FROM users WHERE id = ?1");
  int rc;
  if (!st)
    return TG_EDB;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    rc = tg_db_err(db, rc, "ensure user");
  sqlite3_reset(st);
  if (rc == SQLITE_ROW)
    return 0;
  if (rc != SQLITE_DONE)
    return rc;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  rc = gw_ensure_user_tx(db, user, default_credits);
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0)
    tg_db_rollback(db);
  return rc;
}

static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

void gw_write_lock(void)
{
  pthread_mutex_lock(&write_mu);
}

void gw_write_unlock(void)
{
  pthread_mutex_unlock(&write_mu);
}
