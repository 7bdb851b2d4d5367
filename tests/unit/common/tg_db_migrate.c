/*
 * Unit tests for the migration runner of common/tg_db_sqlite.c and schema/003_cheaper_writes.sql on
 * real SQLite files: a version-2 database (built with the real 001 and 002 migrations) holding rows
 * in every table migrates to 3 with every row kept byte for byte (BLOBs included), mcp_connections
 * is not emptied by the rebuild of its ON DELETE CASCADE parent, the views answer, foreign keys
 * are on and enforced afterwards, the status CHECKs accept exactly the allowed values, a second
 * open changes nothing, and two connections migrating at once both succeed.
 */
#include "tg_unit.h"

#include "tg_db_sqlite.h"
#include "tg_err.h"
#include "temp_dir.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tables[] = {
    "users",        "credit_ledger", "auth_configs",  "connected_accounts", "mcp_connections",
    "oauth_states", "workflows",     "workflow_runs", "tool_executions",    "webhook_events"};
#define N_TABLES (sizeof tables / sizeof *tables)

static void exec_ok(tg_db *db, const char *sql)
{
  char *msg = NULL;
  int rc = sqlite3_exec(tg_db_sqlite_handle(db), sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    fail_msg("%s", msg ? msg : "?");
}

/* One row in every table, two runs with tool executions, BLOBs in both encrypted columns. */
static void seed_v2(tg_db *db)
{
  exec_ok(
      db,
      "INSERT INTO users VALUES ('u1', 90, 1), ('u2', 0, 2);"
      "INSERT INTO credit_ledger (user_id, run_id, delta, reason, created_at) VALUES "
      "('u1', NULL, 100, 'grant', 1), ('u1', 'run_a', -10, 'run_admitted', 2);"
      "INSERT INTO auth_configs VALUES ('ac_g', 'gmail', 'gmail', 'Gmail', NULL, 1, 1),"
      " ('ac_s', 'slack', 'slack', 'Slack', '[\"SLACK_SEND\"]', 1, 1);"
      "INSERT INTO connected_accounts VALUES (7, 'u1', 'gmail', 'ac_g', 'ca_1', 'ACTIVE', NULL, "
      "3, 5, 4, 1, 5), (9, 'u1', 'slack', 'ac_s', 'ca_2', 'EXPIRED', 'token expired', 2, 5, "
      "NULL, 1, 5);"
      "INSERT INTO mcp_connections VALUES (1, 7, 'https://mcp.example/u1', x'00ff10', 6, NULL, "
      "1, 6), (2, 9, NULL, NULL, NULL, 'cleared', 1, 6);"
      "INSERT INTO oauth_states VALUES ('st1', 'u1', 'gmail', NULL, 'ca_1', 1, 99, NULL);"
      "INSERT INTO workflows VALUES ('wf_1', 'u1', 'demo', '{\"nodes\":[]}', 1, 1);"
      "INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, metadata, output, "
      "error, error_class, idempotency_key, request_hash, cost, attempt, claimed_by, "
      "lease_expires_at, available_at, cancel_requested, created_at, started_at, finished_at, "
      "inputs_secret_enc) VALUES "
      "('run_a', 'wf_1', 'u1', 'succeeded', '{\"a\":1}', '{}', '{\"ok\":true}', NULL, NULL, "
      "'key-1', 'h1', 10, 1, 'w1', NULL, 2, 0, 2, 3, 4, x'deadbeef'),"
      "('run_b', 'wf_1', 'u1', 'running', '{}', '{\"tool_constraints\":{}}', NULL, NULL, "
      "NULL, NULL, 'h2', 10, 2, 'w2', 50, 2, 1, 2, 3, NULL, NULL),"
      "('run_c', 'wf_1', 'u1', 'queued', '{}', '{}', NULL, NULL, NULL, NULL, 'h3', 10, 0, "
      "NULL, NULL, 8, 0, 8, NULL, NULL, NULL);"
      "INSERT INTO tool_executions VALUES (1, 'run_a', 1, 'n1', 'gmail', 'GMAIL_SEND', '{}', "
      "'{\"content\":[]}', 'success', NULL, NULL, 12, 3, 4), (2, 'run_b', 2, 'n1', NULL, "
      "'echo', NULL, NULL, 'pending', NULL, NULL, NULL, 3, NULL);"
      "INSERT INTO webhook_events VALUES ('wh_1', 'connected_account.expired', 5);");
}

/* Every table's rows as one canonical text (column values; BLOBs as hex). */
static char *snapshot(tg_db *db)
{
  size_t cap = 1 << 16, len = 0;
  char *out = calloc(1, cap);
  assert_non_null(out);
  for (size_t t = 0; t < N_TABLES; t++) {
    char sql[128];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY rowid", tables[t]);
    assert_int_equal(sqlite3_prepare_v2(tg_db_sqlite_handle(db), sql, -1, &st, NULL), SQLITE_OK);
    len += (size_t)snprintf(out + len, cap - len, "[%s]\n", tables[t]);
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(st); i++) {
        int type = sqlite3_column_type(st, i);
        len += (size_t)snprintf(out + len, cap - len, "%s=", sqlite3_column_name(st, i));
        if (type == SQLITE_BLOB) {
          const unsigned char *b = sqlite3_column_blob(st, i);
          for (int k = 0; k < sqlite3_column_bytes(st, i); k++)
            len += (size_t)snprintf(out + len, cap - len, "%02x", b[k]);
        } else if (type == SQLITE_NULL) {
          len += (size_t)snprintf(out + len, cap - len, "NULL");
        } else {
          len += (size_t)snprintf(out + len, cap - len, "%d:%s", type,
                                  (const char *)sqlite3_column_text(st, i));
        }
        len += (size_t)snprintf(out + len, cap - len, "|");
      }
      len += (size_t)snprintf(out + len, cap - len, "\n");
      assert_true(len < cap - 1024);
    }
    sqlite3_finalize(st);
  }
  return out;
}

static int64_t count(tg_db *db, const char *sql)
{
  int err = 0;
  json_t *row = tg_db_query_one(db, &err, sql, NULL);
  int64_t n;
  assert_non_null(row);
  n = json_integer_value(json_object_get(row, "n"));
  json_decref(row);
  return n;
}

static char *schema_text(tg_db *db)
{
  int err = 0;
  json_t *rows = tg_db_query(
      db, &err, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name", NULL);
  char *s;
  assert_non_null(rows);
  s = json_dumps(rows, JSON_SORT_KEYS);
  json_decref(rows);
  return s;
}

static void test_v2_to_v3_keeps_rows(void **state)
{
  tg_db *db;
  char *before, *after, *schema1, *schema2;
  (void)state;
  assert_int_equal(tg_db_open_version(&db, path, 1000, 2), 0);
  assert_int_equal(tg_db_schema_version(db), 2);
  seed_v2(db);
  before = snapshot(db);
  tg_db_close(db);

  assert_int_equal(tg_db_open_version(&db, path, 1000, 3), 0); /* migration 3 alone */
  assert_int_equal(tg_db_schema_version(db), 3);
  after = snapshot(db);
  assert_string_equal(after, before); /* mcp_connections included: no cascade */
  assert_int_equal(count(db, "SELECT count(*) AS n FROM mcp_connections"), 2);
  assert_int_equal(count(db, "SELECT foreign_keys AS n FROM pragma_foreign_keys"), 1);
  assert_int_equal(count(db, "SELECT count(*) AS n FROM pragma_foreign_key_check"), 0);

  /* The views answer over the rebuilt tables. */
  assert_int_equal(count(db, "SELECT tool_calls AS n FROM v_runs WHERE id = 'run_a'"), 1);
  assert_int_equal(count(db, "SELECT count(*) AS n FROM v_connections WHERE has_mcp_url"), 1);
  assert_int_equal(count(db, "SELECT count(*) AS n FROM v_tool_executions"), 2);
  assert_int_equal(count(db, "SELECT ledger_rows AS n FROM v_credits WHERE user_id = 'u1'"), 2);

  /* The new indexes exist and the old constraint's autoindex is gone. */
  assert_int_equal(count(db, "SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND "
                             "tbl_name = 'workflow_runs' AND sql LIKE '%WHERE%'"),
                   3);
  assert_int_equal(count(db, "SELECT count(*) AS n FROM sqlite_master WHERE name = "
                             "'sqlite_autoindex_workflow_runs_2'"),
                   0);

  /* A second open is a no-op: same version, schema and rows. */
  schema1 = schema_text(db);
  tg_db_close(db);
  assert_int_equal(tg_db_open_version(&db, path, 1000, 3), 0); /* migration 3 alone */
  assert_int_equal(tg_db_schema_version(db), 3);
  schema2 = schema_text(db);
  assert_string_equal(schema2, schema1);
  free(after);
  after = snapshot(db);
  assert_string_equal(after, before);

  /* Foreign keys are enforced on the rebuilt parent: a dangling child is refused, and deleting
   * the account cascades to its MCP connection. */
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO mcp_connections (connected_account_id, created_at, "
                              "updated_at) VALUES (12345, 1, 1)",
                              NULL),
                   TG_ECONFLICT);
  assert_int_equal(tg_db_exec(db, NULL, "DELETE FROM connected_accounts WHERE id = 7", NULL), 0);
  assert_int_equal(count(db, "SELECT count(*) AS n FROM mcp_connections"), 1);
  tg_db_close(db);
  free(before);
  free(after);
  free(schema1);
  free(schema2);
}

/* Every allowed status is accepted (INSERT and UPDATE) and others are refused, per table. */
static void check_statuses(tg_db *db, const char *table, const char *insert_fmt,
                           const char *const *ok, const char *const *bad)
{
  char sql[768];
  int changes = 0;
  for (int i = 0; ok[i]; i++) {
    snprintf(sql, sizeof sql, insert_fmt, ok[i]);
    if (tg_db_exec(db, NULL, sql, NULL) != 0)
      fail_msg("%s: '%s' refused", table, ok[i]);
    snprintf(sql, sizeof sql, "UPDATE %s SET status = '%s' WHERE rowid = last_insert_rowid()",
             table, ok[0]);
    assert_int_equal(tg_db_exec(db, &changes, sql, NULL), 0);
    assert_int_equal(changes, 1);
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE rowid = last_insert_rowid()", table);
    assert_int_equal(tg_db_exec(db, NULL, sql, NULL), 0);
  }
  for (int i = 0; bad[i]; i++) {
    snprintf(sql, sizeof sql, insert_fmt, bad[i]);
    if (tg_db_exec(db, NULL, sql, NULL) != TG_ECONFLICT)
      fail_msg("%s: '%s' accepted", table, bad[i]);
  }
  /* An UPDATE to a bad status is refused too. */
  snprintf(sql, sizeof sql, insert_fmt, ok[0]);
  assert_int_equal(tg_db_exec(db, NULL, sql, NULL), 0);
  snprintf(sql, sizeof sql, "UPDATE %s SET status = '%s' WHERE rowid = last_insert_rowid()", table,
           bad[0]);
  assert_int_equal(tg_db_exec(db, NULL, sql, NULL), TG_ECONFLICT);
}

static void test_status_checks(void **state)
{
  static const char *const runs_ok[] = {"queued",    "running",  "succeeded", "failed",
                                        "attention", "canceled", NULL};
  static const char *const runs_bad[] = {"Queued", "done", "", "queued ", NULL};
  static const char *const ca_ok[] = {"PENDING", "ACTIVE",  "EXPIRED",      "INACTIVE",
                                      "FAILED",  "REVOKED", "DISCONNECTED", NULL};
  static const char *const ca_bad[] = {"active", "INITIATED", "", NULL};
  static const char *const te_ok[] = {"pending", "success", "failed", "unknown", NULL};
  static const char *const te_bad[] = {"ok", "PENDING", "", NULL};
  tg_db *db;
  (void)state;
  /* Through the migration from 2 (the path existing databases take)... */
  assert_int_equal(tg_db_open_version(&db, path, 1000, 2), 0);
  seed_v2(db);
  tg_db_close(db);
  assert_int_equal(tg_db_open(&db, path, 1000), 0);
  check_statuses(db, "workflow_runs",
                 "INSERT INTO workflow_runs (id, workflow_id, user_id, status, available_at, "
                 "created_at) VALUES ('run_t' || random(), 'wf_1', 'u1', '%s', 1, 1)",
                 runs_ok, runs_bad);
  check_statuses(db, "connected_accounts",
                 "INSERT INTO connected_accounts (user_id, provider, auth_config_id, status, "
                 "created_at, updated_at) VALUES ('u2', 'gmail', 'ac_g', '%s', 1, 1)",
                 ca_ok, ca_bad);
  check_statuses(db, "tool_executions",
                 "INSERT INTO tool_executions (run_id, attempt, node_id, tool_name, status, "
                 "executed_at) VALUES ('run_a', 1, 'n', 't', '%s', 1)",
                 te_ok, te_bad);
  tg_db_close(db);
}

static void *open_thread(void *arg)
{
  tg_db *db = NULL;
  int *rc = arg;
  *rc = tg_db_open_version(&db, path, 5000, 3); /* migration 3 alone */
  if (*rc == 0 && tg_db_schema_version(db) != 3)
    *rc = -1000;
  tg_db_close(db);
  return NULL;
}

/* Gateway and workers may start together on a version-2 file: each applies 003 at most once. */
static void test_concurrent_migration(void **state)
{
  pthread_t th[4];
  int rc[4];
  tg_db *db;
  char *before, *after;
  (void)state;
  assert_int_equal(tg_db_open_version(&db, path, 1000, 2), 0);
  seed_v2(db);
  before = snapshot(db);
  tg_db_close(db);
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, open_thread, &rc[i]), 0);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(rc[i], 0);
  }
  assert_int_equal(tg_db_open_version(&db, path, 1000, 3), 0);
  after = snapshot(db);
  assert_string_equal(after, before);
  tg_db_close(db);
  free(before);
  free(after);
}

TG_UNIT_MAIN(cmocka_unit_test_setup_teardown(test_v2_to_v3_keeps_rows, temp_dir_setup,
                                             temp_dir_teardown),
             cmocka_unit_test_setup_teardown(test_status_checks, temp_dir_setup, temp_dir_teardown),
             cmocka_unit_test_setup_teardown(test_concurrent_migration, temp_dir_setup,
                                             temp_dir_teardown))
