/*
 * tg_store_runs: the statements over workflow_runs and tool_executions (see tg_store_runs.h for
 * the transitions, the fence and the refunds they keep).
 *
 * Invariants of this file: every write after the claim carries FENCE (bound as ?1 run id, ?2
 * worker id, ?3 attempt), the only place where "this worker still holds the run" is spelled; the
 * statuses a transition may start from appear only in the statements below (and in
 * tg_store_runs_retryable for the retry, which mirrors RETRYABLE); a refund is written only in
 * the transaction whose run write changed a row. The admission path (insert, reads for LOAD)
 * binds cached statements and reads columns directly, without JSON row objects, where today's
 * row shape is not needed.
 */
#include "tg_store_runs.h"

#include "tg_clock.h"
#include "tg_db_stmt.h"
#include "tg_err.h"
#include "tg_sql.h"
#include "tg_store_credits.h"
#include "tg_store_nodes.h"
#include "tg_store_reviews.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The lease of tg_run_lease: ?1 run id, ?2 worker id, ?3 attempt. */
#define FENCE "id = ?1 AND claimed_by = ?2 AND attempt = ?3 AND status = 'running'"
/* The statuses a retry may start from. */
#define RETRYABLE "status IN ('failed', 'attention')"

/* Two scalar subqueries rather than one OR: each walks its own index and stops at the first row,
 * so a claim costs O(log n) however many runs are queued or finished. (The OR form made SQLite
 * collect and sort every queued row: 1 ms per claim at 3,000 queued, see bench/worker.) Expired
 * leases go first (workflow_runs_lease): they have waited longest. Then a user, fairly: the first
 * entry of user_queue_pick (fewest runs running, then served least recently) among the users
 * with a queued run available now and fewer than ?4 running (schema/005_fair_claim.sql keeps
 * user_queue); then that user's run available earliest (workflow_runs_user_queue).
 * On PostgreSQL (docs/design-postgres.md section 4), with no database-wide write lock, each
 * subquery locks the row it picks FOR UPDATE SKIP LOCKED: concurrent workers skip each other's
 * rows (an expired lease, a user's queue row, a run) instead of waiting for them or claiming
 * one run twice. A user whose queue row another claim holds is skipped by this one, so two
 * workers never claim for one user at once and the cap (?4) stays exact. served_at NULL (never
 * served) sorts first on both backends. */
/* clang-format off */
#define CLAIM_SQL(D)                                                                               \
  "UPDATE workflow_runs SET status = 'running', attempt = attempt + 1, claimed_by = ?1, "          \
  "lease_expires_at = ?2 + ?3, started_at = coalesce(started_at, ?2) "                             \
  "WHERE id = coalesce("                                                                           \
  "(SELECT id FROM workflow_runs WHERE status = 'running' AND lease_expires_at < ?2 "              \
  "ORDER BY lease_expires_at LIMIT 1" D##_SKIP_LOCKED "), "                                        \
  "(SELECT id FROM workflow_runs WHERE status = 'queued' AND user_id = "                           \
  "(SELECT user_id FROM user_queue WHERE head_at <= ?2 AND running < ?4 "                          \
  "ORDER BY running, served_at NULLS FIRST LIMIT 1" D##_SKIP_LOCKED ") "                           \
  "AND available_at <= ?2 ORDER BY available_at LIMIT 1" D##_SKIP_LOCKED ")) "                     \
  "RETURNING id, workflow_id, user_id, inputs AS inputs_json, metadata AS metadata_json, "         \
  "attempt, cost"
/* clang-format on */

static const char LIST_SQL[] =
    "SELECT id, workflow_id, status, metadata AS metadata_json, error, error_class, attempt, "
    "cost, cancel_requested, created_at, started_at, finished_at FROM workflow_runs "
    "WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) AND "
    "(CAST(?3 AS TEXT) IS NULL OR workflow_id = ?3) AND "
    "(CAST(?4 AS TEXT) IS NULL OR created_at < ?5 OR (created_at = ?5 AND id < ?4)) "
    "ORDER BY created_at DESC, id DESC LIMIT ?6";

/* Commits when rc is 0, else (or when COMMIT fails) rolls back. Returns the final code. */
static int end_tx(tg_db *db, int rc)
{
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0)
    tg_db_rollback(db);
  return rc;
}

/* ---------------------------------------------------------------- admission */

/* PostgreSQL: the workers that LISTEN on this channel claim at once (tg_pg_listen). NOTIFY is
 * delivered at COMMIT, once per transaction however many times it was sent. */
static int notify_workers(tg_db *db)
{
  return tg_db_dialect(db) == TG_DB_PG ? tg_db_exec(db, NULL, "NOTIFY toolgate_runs", "") : 0;
}

int tg_store_runs_insert(tg_db *db, const tg_run_new *run)
{
  int rc = tg_db_exec(db, NULL,
                      "INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, "
                      "metadata, idempotency_key, request_hash, cost, attempt, available_at, "
                      "created_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, 0, ?, ?)",
                      "sssjjssIII", run->run_id, run->workflow_id, run->user_id, run->inputs,
                      run->metadata, run->idempotency_key, run->request_hash, (long long)run->cost,
                      (long long)run->now_ms, (long long)run->now_ms);
  return rc ? rc : notify_workers(db);
}

json_t *tg_store_runs_find_idem(tg_db *db, int *err, const char *user_id,
                                const char *idempotency_key)
{
  return tg_db_query_one(db, err,
                         "SELECT id, status, request_hash FROM workflow_runs WHERE user_id = ? "
                         "AND idempotency_key = ?",
                         "ss", user_id, idempotency_key);
}

int tg_store_runs_retryable(const char *status)
{
  return status && (strcmp(status, "failed") == 0 || strcmp(status, "attention") == 0);
}

/* The run ?2 of user ?3, retryable and not retried yet, in dialect D (tg_sql.h). */
#define RETRIED_WHERE(D)                                                                           \
  "id = ?2 AND user_id = ?3 AND " RETRYABLE                                                        \
  " AND " D##_JSON_TEXT("metadata", "retried_by") " IS NULL"

int tg_store_runs_mark_retried(tg_db *db, const char *run_id, const char *user_id,
                               const char *new_run_id, int *changes)
{
  return tg_db_exec(db, changes,
                    TG_SQL(db,
                           "UPDATE workflow_runs SET metadata = json_set(metadata, '$.retried_by', "
                           "?1) WHERE " RETRIED_WHERE(TG_SQLITE),
                           "UPDATE workflow_runs SET metadata = (metadata::jsonb || "
                           "jsonb_build_object('retried_by', CAST(?1 AS TEXT)))::text "
                           "WHERE " RETRIED_WHERE(TG_PG)),
                    "sss", new_run_id, run_id, user_id);
}

/* ---------------------------------------------------------------- the run API */

json_t *tg_store_runs_get(tg_db *db, int *err, const char *run_id, const char *user_id)
{
  return tg_db_query_one(
      db, err,
      "SELECT id, workflow_id, status, inputs AS inputs_json, metadata AS metadata_json, "
      "output AS output_json, error, error_class, attempt, cost, cancel_requested, created_at, "
      "started_at, finished_at FROM workflow_runs WHERE id = ? AND user_id = ?",
      "ss", run_id, user_id);
}

json_t *tg_store_runs_list(tg_db *db, int *err, const tg_run_filter *f)
{
  return tg_db_query(db, err, LIST_SQL, "ssssIi", f->user_id, f->status, f->workflow_id,
                     f->after_id, (long long)f->after_at, f->limit);
}

json_t *tg_store_runs_tool_executions(tg_db *db, int *err, const char *run_id)
{
  return tg_db_query(db, err,
                     "SELECT id, attempt, node_id, provider, tool_name, arguments AS "
                     "arguments_json, response AS response_json, status, error, error_class, "
                     "duration_ms, executed_at, completed_at FROM tool_executions WHERE run_id = "
                     "? ORDER BY id",
                     "s", run_id);
}

/* Inside cancel's transaction: the transition for a run read in status with cost. */
static int cancel_run(tg_db *db, const char *run_id, const char *user_id, const char *status,
                      int64_t cost, int64_t now_ms, tg_run_cancel *out)
{
  int rc = 0;
  if (strcmp(status, "queued") == 0 || strcmp(status, "waiting") == 0) {
    /* held by no worker: canceled here, its pending review with it, the cost refunded */
    rc = tg_db_exec(
        db, NULL,
        "UPDATE workflow_runs SET status = 'canceled', finished_at = ?1, "
        "error = 'canceled by the user', available_at = ?1 WHERE id = ?2 AND status = ?3",
        "Iss", (long long)now_ms, run_id, status);
    if (rc == 0 && status[0] == 'w')
      rc = tg_store_reviews_cancel_run(db, run_id, now_ms);
    if (rc == 0)
      rc = tg_store_nodes_event(db, run_id, "run_finished", NULL, "{\"status\":\"canceled\"}",
                                now_ms);
    if (rc == 0 && cost > 0)
      rc = tg_store_credits_refund(db, user_id, run_id, cost, now_ms);
    out->outcome = TG_RUN_CANCELED;
    out->refunded = cost;
  } else if (strcmp(status, "running") == 0) {
    rc = tg_db_exec(db, NULL,
                    "UPDATE workflow_runs SET cancel_requested = 1 WHERE id = ? AND "
                    "status = 'running'",
                    "s", run_id);
    out->outcome = TG_RUN_CANCEL_REQUESTED;
  } else if (strcmp(status, "canceled") == 0) {
    out->outcome = TG_RUN_CANCELED; /* again: no second refund */
  } else {
    out->outcome = TG_RUN_NOT_CANCELABLE;
  }
  return rc;
}

/* The run as cancel finds it, its row locked until the transaction ends on PostgreSQL (SQLite's
 * BEGIN IMMEDIATE holds the write lock): a claim cannot take it between this read and the write
 * that depends on it, which would refund a run that then runs. Dialect D (tg_sql.h). */
/* clang-format off */
#define CANCEL_READ(D)                                                                             \
  "SELECT status, cost, cancel_requested FROM workflow_runs WHERE id = ? AND user_id = ?"          \
  D##_FOR_UPDATE
/* clang-format on */

int tg_store_runs_cancel(tg_db *db, const char *run_id, const char *user_id, int64_t now_ms,
                         tg_run_cancel *out)
{
  const char *st;
  json_t *run;
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  run = tg_db_query_one(db, &rc, TG_SQL_OF(db, CANCEL_READ), "ss", run_id, user_id);
  if (!run) {
    tg_db_rollback(db);
    return rc;
  }
  st = json_string_value(json_object_get(run, "status"));
  snprintf(out->status, sizeof out->status, "%s", st ? st : "");
  rc = cancel_run(db, run_id, user_id, out->status,
                  json_integer_value(json_object_get(run, "cost")), now_ms, out);
  json_decref(run);
  return end_tx(db, rc);
}

/* ---------------------------------------------------------------- the worker */

int tg_store_runs_claim(tg_db *db, const char *worker_id, int64_t now_ms, int64_t lease_ms,
                        int64_t user_cap, json_t **run)
{
  json_t *rows;
  int rc, err = 0;
  *run = NULL;
  if ((rc = tg_db_begin(db, 1)))
    return rc;
  if (now_ms <= 0)
    now_ms = tg_now_ms(); /* under the write lock: after every commit this claim can see */
  rows = tg_db_query(db, &err, TG_SQL_OF(db, CLAIM_SQL), "sIII", worker_id, (long long)now_ms,
                     (long long)lease_ms, (long long)(user_cap > 0 ? user_cap : INT64_MAX));
  if (!rows) {
    tg_db_rollback(db);
    return err ? err : TG_EDB;
  }
  if ((rc = end_tx(db, 0))) {
    json_decref(rows);
    return rc;
  }
  *run = json_incref(json_array_get(rows, 0));
  json_decref(rows);
  return 0;
}

int tg_store_runs_heartbeat(tg_db *db, const tg_run_lease *l, int64_t lease_until_ms, int *changes,
                            int *cancel)
{
  int err = 0;
  size_t n;
  json_t *rows = tg_db_query(
      db, &err,
      "UPDATE workflow_runs SET lease_expires_at = ?4 WHERE " FENCE " RETURNING cancel_requested",
      "ssII", l->run_id, l->worker_id, (long long)l->attempt, (long long)lease_until_ms);
  if (!rows)
    return err ? err : TG_EDB;
  n = json_array_size(rows);
  if (changes)
    *changes = (int)n;
  if (cancel)
    *cancel = n && json_integer_value(json_object_get(json_array_get(rows, 0), "cancel_requested"));
  json_decref(rows);
  return 0;
}

int tg_store_runs_finish(tg_db *db, const tg_run_lease *l, const char *status, json_t *output,
                         const char *error, const char *error_class, int64_t now_ms, int *changes)
{
  static const char *const ends[] = {"succeeded", "failed", "canceled"};
  size_t i = 0;
  while (i < sizeof ends / sizeof ends[0] && strcmp(status, ends[i]) != 0)
    i++;
  if (i == sizeof ends / sizeof ends[0])
    return TG_EINVAL;
  return tg_db_exec(db, changes,
                    "UPDATE workflow_runs SET status = ?4, output = ?5, error = ?6, "
                    "error_class = ?7, finished_at = ?8, lease_expires_at = NULL WHERE " FENCE,
                    "ssIsjssI", l->run_id, l->worker_id, (long long)l->attempt, ends[i], output,
                    error, error_class, (long long)now_ms);
}

int tg_store_runs_release(tg_db *db, const tg_run_lease *l, int64_t available_at_ms, int64_t now_ms,
                          int *changes)
{
  int rc = tg_db_begin(db, 1), n = 0;
  if (rc)
    return rc;
  rc = tg_db_exec(db, &n,
                  "UPDATE workflow_runs SET status = 'queued', claimed_by = NULL, "
                  "lease_expires_at = NULL, available_at = ?4 WHERE " FENCE,
                  "ssII", l->run_id, l->worker_id, (long long)l->attempt,
                  (long long)available_at_ms);
  if (!rc && n)
    rc = tg_db_exec(db, NULL,
                    "UPDATE tool_executions SET status = 'unknown', error = ?1, "
                    "error_class = 'internal', completed_at = ?2 "
                    "WHERE run_id = ?3 AND attempt = ?4 AND status = 'pending'",
                    "sIsI", "worker released the run while the call was in flight",
                    (long long)now_ms, l->run_id, (long long)l->attempt);
  if (changes)
    *changes = n;
  return end_tx(db, rc);
}

#define ATTENTION_REST "error = ?6, finished_at = ?7, lease_expires_at = NULL WHERE " FENCE

int tg_store_runs_attention(tg_db *db, const tg_run_lease *l, const char *user_id, int64_t cost,
                            json_t *providers, json_t *reasons, const char *error, int64_t now_ms,
                            int *changes)
{
  int rc = tg_db_begin(db, 1), n = 0;
  if (rc)
    return rc;
  rc = tg_db_exec(
      db, &n,
      TG_SQL(db,
             "UPDATE workflow_runs SET status = 'attention', "
             "metadata = json_set(CASE WHEN json_valid(metadata) THEN metadata ELSE '{}' END, "
             "'$.error', 'oauth_refresh_required', '$.providers', json(?4), '$.reasons', "
             "json(?5)), " ATTENTION_REST,
             "UPDATE workflow_runs SET status = 'attention', metadata = (metadata::jsonb || "
             "jsonb_build_object('error', 'oauth_refresh_required', 'providers', ?4::jsonb, "
             "'reasons', ?5::jsonb))::text, " ATTENTION_REST),
      "ssIjjsI", l->run_id, l->worker_id, (long long)l->attempt, providers, reasons, error,
      (long long)now_ms);
  if (!rc && n == 1 && cost > 0)
    rc = tg_store_credits_refund(db, user_id, l->run_id, cost, now_ms);
  if (changes)
    *changes = n;
  return end_tx(db, rc);
}

int tg_store_runs_cancel_requested(tg_db *db, const char *run_id)
{
  int err = 0, cancel;
  json_t *row = tg_db_query_one(
      db, &err, "SELECT cancel_requested FROM workflow_runs WHERE id = ?1", "s", run_id);
  cancel = row && json_integer_value(json_object_get(row, "cancel_requested"));
  json_decref(row);
  return cancel;
}

int tg_store_runs_tool_start(tg_db *db, const tg_run_lease *l, const char *node_id,
                             const char *provider, const char *tool_name, const char *tool_call_id,
                             json_t *arguments, int64_t now_ms, int64_t *exec_id, int *inserted)
{
  int err = 0;
  json_t *row = tg_db_query_one(
      db, &err,
      "INSERT INTO tool_executions (run_id, attempt, node_id, provider, tool_name, arguments, "
      "status, executed_at, tool_call_id) SELECT ?1, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9 "
      "WHERE EXISTS (SELECT 1 FROM workflow_runs WHERE " FENCE ") RETURNING id",
      "ssIsssjIs", l->run_id, l->worker_id, (long long)l->attempt, node_id, provider, tool_name,
      arguments, (long long)now_ms, tool_call_id);
  *exec_id = 0;
  *inserted = 0;
  if (!row)
    return err == TG_ENOTFOUND ? 0 : (err ? err : TG_EDB);
  *exec_id = json_integer_value(json_object_get(row, "id"));
  *inserted = 1;
  json_decref(row);
  return 0;
}

int tg_store_runs_tools_in_doubt(tg_db *db, const char *run_id, int64_t attempt,
                                 const char *node_id, const char *skip_tool, int *n)
{
  int err = 0;
  json_t *row = tg_db_query_one(
      db, &err,
      "SELECT count(*) AS n FROM tool_executions WHERE run_id = ?1 AND attempt < ?2 AND "
      "node_id = ?3 AND status IN ('pending', 'unknown') AND NOT (provider IS NOT DISTINCT FROM "
      "'builtin' AND tool_name IS NOT DISTINCT FROM ?4)",
      "sIss", run_id, (long long)attempt, node_id, skip_tool);
  *n = (int)json_integer_value(json_object_get(row, "n"));
  json_decref(row);
  return row ? 0 : err ? err : TG_EDB;
}

int tg_store_runs_tool_finish(tg_db *db, const tg_run_lease *l, int64_t exec_id,
                              const tg_tool_result *res, int64_t now_ms, int *changes)
{
  return tg_db_exec(db, changes,
                    "UPDATE tool_executions SET status = ?4, response = ?5, error = ?6, "
                    "error_class = ?7, duration_ms = ?8, completed_at = ?9 "
                    "WHERE id = ?10 AND EXISTS (SELECT 1 FROM workflow_runs WHERE " FENCE ")",
                    "ssIsjssIII", l->run_id, l->worker_id, (long long)l->attempt, res->status,
                    res->response, res->error, res->error_class, (long long)res->duration_ms,
                    (long long)now_ms, (long long)exec_id);
}

/* ---------------------------------------------------------------- reads for admission and
 * execution */

int tg_store_runs_read_definition(tg_db *db, const char *workflow_id, const char *user_id,
                                  char **text, size_t *len)
{
  tg_stmt *st =
      tg_stmt_prepare(db, "SELECT definition FROM workflows WHERE id = ?1 AND user_id = ?2");
  int rc;
  *text = NULL;
  *len = 0;
  if (!st)
    return TG_EDB;
  tg_stmt_bind_text(st, 1, workflow_id);
  tg_stmt_bind_text(st, 2, user_id);
  rc = tg_stmt_step(st);
  if (rc == TG_STMT_ROW) {
    const char *t = tg_stmt_column_text(st, 0);
    size_t n = tg_stmt_column_bytes(st, 0);
    if (!t || !(*text = malloc(n + 1))) {
      tg_stmt_reset(st);
      return TG_ENOMEM;
    }
    memcpy(*text, t, n);
    (*text)[n] = 0;
    *len = n;
    rc = 0;
  }
  tg_stmt_reset(st);
  return rc;
}

json_t *tg_store_runs_read_definition_json(tg_db *db, int *err, const char *workflow_id)
{
  json_t *wf =
      tg_db_query_one(db, err, "SELECT definition AS definition_json FROM workflows WHERE id = ?1",
                      "s", workflow_id);
  json_t *def = json_incref(json_object_get(wf, "definition"));
  json_decref(wf);
  return def;
}

static char *col_dup(tg_stmt *st, int i)
{
  const char *t = tg_stmt_column_text(st, i);
  return t ? strdup(t) : NULL;
}

void tg_store_runs_check_rows_free(tg_check_row *rows, size_t n)
{
  for (size_t i = 0; rows && i < n; i++) {
    free((char *)rows[i].provider);
    free((char *)rows[i].status);
    free((char *)rows[i].composio_account_id);
    free((char *)rows[i].toolkit_slug);
  }
  free(rows);
}

int tg_store_runs_read_check_rows(tg_db *db, const char *user_id, tg_check_row **rows, size_t *n)
{
  tg_stmt *st = tg_stmt_prepare(db, "SELECT c.provider, c.status, c.composio_account_id, "
                                    "a.toolkit_slug FROM connected_accounts c JOIN "
                                    "auth_configs a ON a.id = c.auth_config_id WHERE "
                                    "c.user_id = ?1 ORDER BY c.provider");
  tg_check_row *v = NULL;
  size_t cap = 0, k = 0;
  int rc;
  *rows = NULL;
  *n = 0;
  if (!st)
    return TG_EDB;
  tg_stmt_bind_text(st, 1, user_id);
  while ((rc = tg_stmt_step(st)) == TG_STMT_ROW) {
    tg_check_row *r;
    if (k == cap) {
      size_t nc = cap ? cap * 2 : 4;
      tg_check_row *grown = realloc(v, nc * sizeof *grown);
      if (!grown) {
        rc = TG_ENOMEM;
        break;
      }
      v = grown;
      cap = nc;
    }
    r = &v[k++];
    r->provider = col_dup(st, 0);
    r->status = col_dup(st, 1);
    r->composio_account_id = col_dup(st, 2);
    r->toolkit_slug = col_dup(st, 3);
    if (!r->provider || !r->status || !r->toolkit_slug ||
        (tg_stmt_column_type(st, 2) != TG_COL_NULL && !r->composio_account_id)) {
      rc = TG_ENOMEM;
      break;
    }
  }
  tg_stmt_reset(st);
  if (rc != 0) {
    tg_store_runs_check_rows_free(v, k);
    return rc;
  }
  *rows = v;
  *n = k;
  return 0;
}

/* clang-format off */
#define ACCOUNTS_SQL(D)                                                                            \
  "SELECT c.id AS account_id, c.provider, c.status, c.composio_account_id, c.version, "            \
  "a.toolkit_slug, m.url, (m.headers_enc IS NOT NULL) AS has_headers, m.id AS mcp_id, "            \
  D##_HEX("m.headers_enc")                                                                         \
  " AS headers_enc_hex FROM connected_accounts c JOIN auth_configs a ON a.id = c.auth_config_id "  \
  "LEFT JOIN mcp_connections m ON m.connected_account_id = c.id WHERE c.user_id = ?1 "             \
  "ORDER BY c.provider"
/* clang-format on */

json_t *tg_store_runs_read_accounts(tg_db *db, int *err, const char *user_id)
{
  return tg_db_query(db, err, TG_SQL_OF(db, ACCOUNTS_SQL), "s", user_id);
}

/* ---------------------------------------------------------------- waiting runs (HITL) */

int tg_store_runs_wake(tg_db *db, const char *run_id, int64_t now_ms, int *requeued)
{
  int n = 0;
  int rc = tg_db_exec(db, &n,
                      "UPDATE workflow_runs SET status = 'queued', available_at = ?1 "
                      "WHERE id = ?2 AND status = 'waiting'",
                      "Is", (long long)now_ms, run_id);
  if (requeued)
    *requeued = n;
  if (rc == 0 && n)
    rc = notify_workers(db);
  if (rc == 0 && n == 0)
    rc = tg_db_exec(db, NULL,
                    TG_SQL(db,
                           "UPDATE workflow_runs SET metadata = json_set(CASE WHEN "
                           "json_valid(metadata) THEN metadata ELSE '{}' END, '$.resume_pending', "
                           "json('true')) WHERE id = ?1 AND status = 'running'",
                           "UPDATE workflow_runs SET metadata = (metadata::jsonb || "
                           "'{\"resume_pending\": true}')::text WHERE id = ?1 AND "
                           "status = 'running'"),
                    "s", run_id);
  return rc;
}

#define PARK_REST                                                                                  \
  "claimed_by = NULL, lease_expires_at = NULL, available_at = ?4 WHERE " FENCE " RETURNING status"

int tg_store_runs_park(tg_db *db, const tg_run_lease *l, int64_t now_ms, int *changes,
                       int *requeued)
{
  int err = 0;
  json_t *rows = tg_db_query(
      db, &err,
      TG_SQL(db,
             "UPDATE workflow_runs SET status = CASE WHEN json_extract(metadata, "
             "'$.resume_pending') THEN 'queued' ELSE 'waiting' END, metadata = "
             "json_remove(metadata, '$.resume_pending'), " PARK_REST,
             "UPDATE workflow_runs SET status = CASE WHEN (metadata::jsonb->>'resume_pending') = "
             "'true' THEN 'queued' ELSE 'waiting' END, metadata = (metadata::jsonb - "
             "'resume_pending')::text, " PARK_REST),
      "ssII", l->run_id, l->worker_id, (long long)l->attempt, (long long)now_ms);
  if (!rows)
    return err ? err : TG_EDB;
  if (changes)
    *changes = (int)json_array_size(rows);
  if (requeued)
    *requeued = json_array_size(rows) == 1 &&
                strcmp(json_string_value(json_object_get(json_array_get(rows, 0), "status")),
                       "queued") == 0;
  json_decref(rows);
  return 0;
}

int tg_store_runs_fail_waiting(tg_db *db, const char *run_id, const char *error,
                               const char *error_class, int64_t now_ms, int *changes)
{
  int n = 0;
  int rc = tg_db_exec(db, &n,
                      "UPDATE workflow_runs SET status = 'failed', error = ?1, error_class = ?2, "
                      "finished_at = ?3 WHERE id = ?4 AND status = 'waiting'",
                      "ssIs", error, error_class, (long long)now_ms, run_id);
  if (rc == 0 && n)
    rc = tg_store_nodes_event(db, run_id, "run_finished", NULL, "{\"status\":\"failed\"}", now_ms);
  if (changes)
    *changes = n;
  return rc;
}

/* ---------------------------------------------------------------- the workflow engine */

#define UNKNOWN_REST                                                                               \
  "error = ?5, error_class = 'outcome_unknown', lease_expires_at = NULL WHERE " FENCE

int tg_store_runs_outcome_unknown(tg_db *db, const tg_run_lease *l, const char *node_id,
                                  const char *error, int *changes)
{
  return tg_db_exec(
      db, changes,
      TG_SQL(db,
             "UPDATE workflow_runs SET status = 'attention', "
             "metadata = json_set(CASE WHEN json_valid(metadata) THEN metadata ELSE '{}' END, "
             "'$.reason', 'outcome_unknown', '$.node_id', ?4), " UNKNOWN_REST,
             "UPDATE workflow_runs SET status = 'attention', metadata = (metadata::jsonb || "
             "jsonb_build_object('reason', 'outcome_unknown', 'node_id', CAST(?4 AS "
             "TEXT)))::text, " UNKNOWN_REST),
      "ssIss", l->run_id, l->worker_id, (long long)l->attempt, node_id, error);
}

/* The heads of resolve_run's two statements (dialect D, tg_sql.h), up to the new metadata. */
/* clang-format off */
#define RESOLVE_FAIL(D)                                                                            \
  "UPDATE workflow_runs SET status = 'failed', finished_at = ?2, "                                 \
  "error = 'the user failed the run: the outcome of node ' || "                                    \
  D##_JSON_TEXT("metadata", "node_id")                                                             \
  " || ' is unknown', error_class = 'outcome_unknown', metadata = "
/* clang-format on */
#define RESOLVE_REQUEUE                                                                            \
  "UPDATE workflow_runs SET status = 'queued', available_at = ?2, error = NULL, "                  \
  "error_class = NULL, claimed_by = NULL, lease_expires_at = NULL, metadata = "

/* Inside resolve's transaction: the run's transition once the node's row took the answer. */
static int resolve_run(tg_db *db, const char *run_id, const char *action, int64_t now_ms)
{
  if (strcmp(action, "fail") == 0)
    return tg_db_exec(db, NULL,
                      TG_SQL(db,
                             RESOLVE_FAIL(TG_SQLITE) "json_set(metadata, '$.resolution', 'fail') "
                                                     "WHERE id = ?1 AND status = 'attention'",
                             RESOLVE_FAIL(TG_PG) "(metadata::jsonb || '{\"resolution\": "
                                                 "\"fail\"}')::text WHERE id = ?1 AND "
                                                 "status = 'attention'"),
                      "sI", run_id, (long long)now_ms);
  return tg_db_exec(db, NULL,
                    TG_SQL(db,
                           RESOLVE_REQUEUE "json_set(json_remove(metadata, '$.reason'), "
                                           "'$.resolution', ?3) WHERE id = ?1 AND "
                                           "status = 'attention'",
                           RESOLVE_REQUEUE "((metadata::jsonb - 'reason') || jsonb_build_object("
                                           "'resolution', CAST(?3 AS TEXT)))::text WHERE id = ?1 "
                                           "AND status = 'attention'"),
                    "sIs", run_id, (long long)now_ms, action);
}

/* The run's status and unknown outcome, its row locked until the transaction ends (the write
 * lock of BEGIN IMMEDIATE on SQLite), in dialect D (tg_sql.h). */
/* clang-format off */
#define RESOLVE_READ(D)                                                                            \
  "SELECT status, " D##_JSON_TEXT("metadata", "reason") " AS reason, "                             \
  D##_JSON_TEXT("metadata", "node_id")                                                             \
  " AS node FROM workflow_runs WHERE id = ?1 AND user_id = ?2" D##_FOR_UPDATE
/* clang-format on */

int tg_store_runs_resolve(tg_db *db, const char *run_id, const char *user_id, const char *node_id,
                          const char *action, int64_t now_ms, int *outcome)
{
  const char *status, *reason, *node;
  json_t *run;
  int rc, n = 0;
  *outcome = TG_RESOLVE_NOT_PENDING;
  if (strcmp(action, "retry") && strcmp(action, "skip") && strcmp(action, "fail"))
    return TG_EINVAL;
  if ((rc = tg_db_begin(db, 1)))
    return rc;
  run = tg_db_query_one(db, &rc, TG_SQL_OF(db, RESOLVE_READ), "ss", run_id, user_id);
  if (!run) {
    tg_db_rollback(db);
    return rc;
  }
  status = json_string_value(json_object_get(run, "status"));
  reason = json_string_value(json_object_get(run, "reason"));
  node = json_string_value(json_object_get(run, "node"));
  if (status && strcmp(status, "attention") == 0 && reason &&
      strcmp(reason, "outcome_unknown") == 0 && node && strcmp(node, node_id) == 0 &&
      (rc = tg_store_nodes_resolve(db, run_id, node_id, action, &n)) == 0 && n == 1 &&
      (rc = resolve_run(db, run_id, action, now_ms)) == 0)
    *outcome = TG_RESOLVE_DONE;
  json_decref(run);
  if (*outcome != TG_RESOLVE_DONE) {
    tg_db_rollback(db);
    return rc;
  }
  return end_tx(db, rc);
}
