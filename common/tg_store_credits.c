/*
 * tg_store_credits: the statements over users and credit_ledger (see tg_store_credits.h for the
 * rule they keep: users.credits equals the sum of the user's ledger deltas).
 *
 * Invariant of this file: every statement that changes users.credits (or creates a user with
 * credits) is followed, in the same function and the caller's transaction, by the INSERT of the
 * ledger row with the same delta; when the change matched no row, no ledger row is written. The
 * hot reads (the user's existence, the balance) step cached statements directly: one step, no
 * row object.
 */
#include "tg_store_credits.h"

#include "tg_db_stmt.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_clock.h"

static int ledger_insert(tg_db *db, const char *user_id, const char *run_id, int64_t delta,
                         const char *reason, int64_t now_ms)
{
  return tg_db_exec(db, NULL,
                    "INSERT INTO credit_ledger (user_id, run_id, delta, reason, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    "ssIsI", user_id, run_id, (long long)delta, reason, (long long)now_ms);
}

int tg_store_credits_ensure_user_tx(tg_db *db, const char *user_id, int64_t default_credits)
{
  int rc, changes = 0;
  int64_t now = tg_now_ms();
  rc = tg_db_exec(
      db, &changes,
      "INSERT INTO users (id, credits, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", "sII",
      user_id, (long long)default_credits, (long long)now);
  if (rc == 0 && changes == 1) {
    rc = ledger_insert(db, user_id, NULL, default_credits, "grant", now);
    if (rc == 0)
      tg_info("user_created", "{s:s, s:I}", "user_id", user_id, "credits",
              (json_int_t)default_credits);
  }
  return rc;
}

/* Steps the one-row read sql (?1 = user_id) on a cached statement: 0 with column 0 in *v (when
 * v is not NULL), TG_ENOTFOUND without a row, or an error (logged). */
static int read_user(tg_db *db, const char *sql, const char *user_id, int64_t *v)
{
  tg_stmt *st = tg_stmt_prepare(db, sql);
  int rc;
  if (!st)
    return TG_EDB;
  if ((rc = tg_stmt_bind_text(st, 1, user_id)) == 0)
    rc = tg_stmt_step(st);
  if (rc == TG_STMT_ROW && v)
    *v = tg_stmt_column_int64(st, 0);
  rc = rc == TG_STMT_ROW ? 0 : rc == TG_STMT_DONE ? TG_ENOTFOUND : rc;
  tg_stmt_reset(st);
  return rc;
}

int tg_store_credits_ensure_user(tg_db *db, const char *user_id, int64_t default_credits)
{
  /* Most requests come from known users: a read avoids taking the write lock. */
  int rc = read_user(db, "SELECT 1 FROM users WHERE id = ?1", user_id, NULL);
  if (rc != TG_ENOTFOUND)
    return rc;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  rc = tg_store_credits_ensure_user_tx(db, user_id, default_credits);
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0)
    tg_db_rollback(db);
  return rc;
}

int tg_store_credits_balance(tg_db *db, const char *user_id, int64_t *credits)
{
  *credits = 0;
  return read_user(db, "SELECT credits FROM users WHERE id = ?1", user_id, credits);
}

int tg_store_credits_debit(tg_db *db, const char *user_id, const char *run_id, int64_t cost,
                           int64_t now_ms, int64_t *credits)
{
  int rc, changes = 0;
  /* The check and the take in one statement: credits never go below zero. */
  rc = tg_db_exec(db, &changes,
                  "UPDATE users SET credits = credits - ?1 WHERE id = ?2 AND credits >= ?1", "Is",
                  (long long)cost, user_id);
  if (rc != 0)
    return rc;
  if (changes == 1)
    return (rc = ledger_insert(db, user_id, run_id, -cost, "run_admitted", now_ms)) ? rc : 1;
  rc = tg_store_credits_balance(db, user_id, credits);
  return rc == 0 || rc == TG_ENOTFOUND ? 0 : rc;
}

int tg_store_credits_refund(tg_db *db, const char *user_id, const char *run_id, int64_t amount,
                            int64_t now_ms)
{
  int rc, changes = 0;
  rc = tg_db_exec(db, &changes, "UPDATE users SET credits = credits + ?1 WHERE id = ?2", "Is",
                  (long long)amount, user_id);
  if (rc == 0 && changes == 1)
    rc = ledger_insert(db, user_id, run_id, amount, "run_refund", now_ms);
  return rc;
}

json_t *tg_store_credits_ledger(tg_db *db, int *err, const char *user_id, int limit)
{
  return tg_db_query(db, err,
                     "SELECT id, run_id, delta, reason, created_at FROM credit_ledger "
                     "WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                     "si", user_id, limit);
}
