/*
 * tg_store_reviews: the statements over reviews (see tg_store_reviews.h for the statuses and the
 * run transitions each write goes with).
 *
 * Invariants of this file: a review leaves 'pending' only through a statement that names
 * status = 'pending' in its WHERE clause, so two deciders (or a decider and the expiry) cannot
 * both win: the loser's write matches no row and nothing else in its transaction is kept. The
 * run rows are written through tg_store_runs (the table's owner), in the same transaction.
 */
#include "tg_store_reviews.h"

#include "tg_db.h"
#include "tg_err.h"

#include <stdio.h>
#include <string.h>

#define COLUMNS                                                                                    \
  "id, run_id, node_id, title, priority, message, allowed_decisions AS allowed_decisions_json, "   \
  "status, decision, comment, created_at, decided_at, expires_at"

int tg_store_reviews_create(tg_db *db, const tg_run_lease *l, const tg_review_new *rv,
                            int *inserted)
{
  return tg_db_exec(
      db, inserted,
      "INSERT INTO reviews (id, run_id, node_id, user_id, title, priority, message, "
      "allowed_decisions, status, created_at, expires_at) "
      "SELECT ?4, ?1, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, nullif(?12, 0) WHERE EXISTS "
      "(SELECT 1 FROM workflow_runs WHERE id = ?1 AND claimed_by = ?2 AND attempt = ?3 AND "
      "status = 'running') ON CONFLICT (run_id, node_id) DO NOTHING",
      "ssIssssssjII", l->run_id, l->worker_id, (long long)l->attempt, rv->id, rv->node_id,
      rv->user_id, rv->title, rv->priority, rv->message, rv->allowed_decisions,
      (long long)rv->now_ms, (long long)rv->expires_at);
}

json_t *tg_store_reviews_for_node(tg_db *db, int *err, const char *run_id, const char *node_id)
{
  return tg_db_query_one(db, err,
                         "SELECT " COLUMNS " FROM reviews WHERE run_id = ?1 AND node_id = ?2", "ss",
                         run_id, node_id);
}

json_t *tg_store_reviews_get(tg_db *db, int *err, const char *id, const char *user_id)
{
  return tg_db_query_one(db, err, "SELECT " COLUMNS " FROM reviews WHERE id = ?1 AND user_id = ?2",
                         "ss", id, user_id);
}

json_t *tg_store_reviews_list(tg_db *db, int *err, const tg_review_filter *f)
{
  return tg_db_query(db, err,
                     "SELECT " COLUMNS " FROM reviews WHERE user_id = ?1 AND "
                     "(CAST(?2 AS TEXT) IS NULL OR status = ?2) AND (CAST(?3 AS TEXT) IS NULL OR "
                     "created_at < ?4 OR "
                     "(created_at = ?4 AND id < ?3)) ORDER BY created_at DESC, id DESC LIMIT ?5",
                     "sssIi", f->user_id, f->status, f->after_id, (long long)f->after_at, f->limit);
}

/* 1 when decision is one of the strings of allowed. */
static int allowed(const json_t *allowed, const char *decision)
{
  size_t i;
  json_t *v;
  json_array_foreach(allowed, i, v)
  {
    if (json_is_string(v) && strcmp(json_string_value(v), decision) == 0)
      return 1;
  }
  return 0;
}

int tg_store_reviews_decide(tg_db *db, const char *id, const char *user_id, const char *decision,
                            const char *comment, int64_t now_ms, int *outcome, json_t **review,
                            int *requeued)
{
  json_t *rv = NULL;
  const char *run_id;
  int rc, n = 0;
  *review = NULL;
  if (requeued)
    *requeued = 0;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  rv = tg_store_reviews_get(db, &rc, id, user_id);
  if (!rv)
    goto done;
  if (strcmp(json_string_value(json_object_get(rv, "status")), "pending") != 0) {
    *outcome = TG_REVIEW_CLOSED;
    goto done;
  }
  if (!allowed(json_object_get(rv, "allowed_decisions"), decision)) {
    *outcome = TG_REVIEW_NOT_ALLOWED;
    goto done;
  }
  rc = tg_db_exec(db, &n,
                  "UPDATE reviews SET status = 'decided', decision = ?1, comment = ?2, "
                  "decided_at = ?3 WHERE id = ?4 AND status = 'pending'",
                  "ssIs", decision, comment, (long long)now_ms, id);
  if (rc == 0 && n == 0) {
    *outcome = TG_REVIEW_CLOSED;
    goto done;
  }
  run_id = json_string_value(json_object_get(rv, "run_id"));
  if (rc == 0)
    rc = tg_store_runs_wake(db, run_id, now_ms, requeued);
  *outcome = TG_REVIEW_DECIDED;
  json_decref(rv);
  rv = rc == 0 ? tg_store_reviews_get(db, &rc, id, user_id) : NULL;
done:
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0) {
    tg_db_rollback(db);
    json_decref(rv);
    return rc;
  }
  *review = rv;
  return 0;
}

int tg_store_reviews_cancel_run(tg_db *db, const char *run_id, int64_t now_ms)
{
  return tg_db_exec(db, NULL,
                    "UPDATE reviews SET status = 'canceled', decided_at = ?1 WHERE run_id = ?2 "
                    "AND status = 'pending'",
                    "Is", (long long)now_ms, run_id);
}

/* The expiring UPDATE repeats status = 'pending' outside its subquery: on PostgreSQL a review
 * decided (or expired by another gateway) after the subquery's snapshot is re-checked on its
 * current row and left alone, where the subquery's stale answer would expire it. */
int tg_store_reviews_expire(tg_db *db, int64_t now_ms, int limit, json_t **expired)
{
  json_t *rows = NULL, *row;
  size_t i;
  int rc;
  *expired = NULL;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  rc = tg_db_exec(db, NULL,
                  "UPDATE reviews SET status = 'canceled', decided_at = ?1 WHERE status = "
                  "'pending' AND run_id IN (SELECT id FROM workflow_runs WHERE status IN "
                  "('succeeded', 'failed', 'canceled', 'attention'))",
                  "I", (long long)now_ms);
  if (rc == 0)
    rows = tg_db_query(db, &rc,
                       "UPDATE reviews SET status = 'expired' WHERE status = 'pending' AND "
                       "id IN (SELECT v.id FROM "
                       "reviews v JOIN workflow_runs r ON r.id = v.run_id WHERE v.status = "
                       "'pending' AND v.expires_at IS NOT NULL AND v.expires_at <= ?1 AND "
                       "r.status = 'waiting' ORDER BY v.expires_at LIMIT ?2) "
                       "RETURNING id, run_id, node_id, user_id",
                       "Ii", (long long)now_ms, limit);
  json_array_foreach(rows, i, row)
  {
    char err[256];
    const char *node = json_string_value(json_object_get(row, "node_id"));
    snprintf(err, sizeof err, "the review of node %s expired before a decision", node);
    if ((rc = tg_store_runs_fail_waiting(db, json_string_value(json_object_get(row, "run_id")), err,
                                         "review_expired", now_ms, NULL)) != 0)
      break;
  }
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0) {
    tg_db_rollback(db);
    json_decref(rows);
    return rc;
  }
  *expired = rows;
  return 0;
}
