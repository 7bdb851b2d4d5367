/*
 * Unit tests for common/tg_db.c, tg_db_sqlite.c and tg_dbq.c on real SQLite files in a temp
 * directory: migrations are applied once and idempotently, WAL is on, the typed helpers bind and
 * read back, constraint violations map to TG_ECONFLICT, and tg_dbq runs jobs off the loop thread.
 */
#include "tg_unit.h"

#include "tg_db.h"
#include "tg_db_stmt.h"
#include "tg_dbq.h"
#include "tg_err.h"
#include "temp_dir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_migrations_idempotent(void **state)
{
  tg_db *a, *b;
  json_t *row;
  int err;
  assert_int_equal(tg_db_open(&a, path, 1000), 0);
  assert_true(tg_db_schema_version(a) >= 1);
  /* A second open sees the same version and applies nothing (no "table exists" error). */
  assert_int_equal(tg_db_open(&b, path, 1000), 0);
  assert_int_equal(tg_db_schema_version(b), tg_db_schema_version(a));
  row = tg_db_query_one(a, &err, "PRAGMA journal_mode", NULL);
  assert_non_null(row);
  assert_string_equal(json_string_value(json_object_get(row, "journal_mode")), "wal");
  json_decref(row);
  tg_db_close(b);
  tg_db_close(a);
}

static void test_typed_helpers(void **state)
{
  tg_db *db;
  json_t *rows, *row, *meta;
  int changes, err;
  assert_int_equal(tg_db_open(&db, path, 1000), 0);
  assert_int_equal(tg_db_exec(db, &changes,
                              "INSERT INTO users(id, credits, created_at) VALUES(?,?,?)", "sII",
                              "alice", 5LL, 42LL),
                   0);
  assert_int_equal(changes, 1);
  /* Duplicate primary key → TG_ECONFLICT, not a generic error. */
  assert_int_equal(tg_db_exec(db, NULL, "INSERT INTO users(id, credits, created_at) VALUES(?,?,?)",
                              "sII", "alice", 5LL, 42LL),
                   TG_ECONFLICT);
  meta = json_pack("{s:[s]}", "providers", "gmail");
  assert_int_equal(
      tg_db_exec(db, NULL,
                 "INSERT INTO workflows(id,user_id,name,definition,created_at,updated_at)"
                 " VALUES('wf1','alice','n',?,1,1)",
                 "j", meta),
      0);
  rows = tg_db_query(db, &err,
                     "SELECT workflows.id, definition AS definition_json, credits FROM workflows "
                     "JOIN users ON users.id = workflows.user_id WHERE user_id=?",
                     "s", "alice");
  assert_non_null(rows);
  assert_int_equal(json_array_size(rows), 1);
  row = json_array_get(rows, 0);
  assert_int_equal(json_integer_value(json_object_get(row, "credits")), 5);
  assert_true(json_equal(json_object_get(row, "definition"), meta));
  json_decref(rows);
  json_decref(meta);
  assert_null(tg_db_query_one(db, &err, "SELECT * FROM users WHERE id=?", "s", "bob"));
  assert_int_equal(err, TG_ENOTFOUND);
  /* A CHECK constraint (negative credits) is a conflict too. */
  assert_int_equal(tg_db_exec(db, NULL, "UPDATE users SET credits = -1 WHERE id='alice'", NULL),
                   TG_ECONFLICT);
  tg_db_close(db);
}

/* 'j' binds the compact text json_dumps would give (escapes and UTF-8 included) with its exact
 * length, for a small and a large document; NULL binds NULL; a bare string is bound as JSON
 * text. */
static void test_json_binding_sizes(void **state)
{
  /* total encoded lengths */
  static const size_t sizes[] = {40, 100000};
  size_t overhead;
  tg_db *db;
  json_t *probe = json_pack("{s:s, s:[i, s]}", "pad", "", "n", 0, "\u00e9\"q\"");
  char *probe_text = json_dumps(probe, JSON_COMPACT);
  overhead = strlen(probe_text);
  free(probe_text);
  json_decref(probe);
  assert_int_equal(tg_db_open(&db, path, 1000), 0);
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t padlen = sizes[i] - overhead;
    char *pad = malloc(padlen + 1), *want;
    json_t *doc, *row;
    int err;
    assert_non_null(pad);
    memset(pad, 'x', padlen);
    pad[padlen] = 0;
    doc = json_pack("{s:s, s:[i, s]}", "pad", pad, "n", 0, "\u00e9\"q\"");
    want = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(strlen(want), sizes[i]);
    row = tg_db_query_one(db, &err, "SELECT ? AS t, length(CAST(? AS BLOB)) AS n", "jj", doc, doc);
    assert_non_null(row);
    assert_string_equal(json_string_value(json_object_get(row, "t")), want);
    assert_int_equal(json_integer_value(json_object_get(row, "n")), (json_int_t)strlen(want));
    json_decref(row);
    json_decref(doc);
    free(want);
    free(pad);
  }
  {
    json_t *str = json_string("a\"b"), *row;
    int err;
    row = tg_db_query_one(db, &err, "SELECT ? AS s, ? IS NULL AS z", "jj", str, (json_t *)NULL);
    assert_non_null(row);
    assert_string_equal(json_string_value(json_object_get(row, "s")), "\"a\\\"b\"");
    assert_int_equal(json_integer_value(json_object_get(row, "z")), 1);
    json_decref(row);
    json_decref(str);
  }
  tg_db_close(db);
}

/* 'b' binds the bytes as a BLOB (a NUL inside included, the following argument still read
 * right), a zero-length BLOB when the length is 0, and NULL for a NULL pointer. */
static void test_blob_binding(void **state)
{
  static const unsigned char bytes[] = {0x00, 0xff, 'a', 0x00};
  tg_db *db;
  json_t *row;
  int err;
  (void)state;
  assert_int_equal(tg_db_open(&db, path, 1000), 0);
  row = tg_db_query_one(
      db, &err,
      "SELECT typeof(?1) AS t, hex(?1) AS h, typeof(?2) || length(?2) AS z, ?3 IS NULL AS n, "
      "?4 AS after",
      "bbbs", bytes, sizeof bytes, bytes, (size_t)0, (const void *)NULL, (size_t)0, "next");
  assert_non_null(row);
  assert_string_equal(json_string_value(json_object_get(row, "t")), "blob");
  assert_string_equal(json_string_value(json_object_get(row, "h")), "00FF6100");
  assert_string_equal(json_string_value(json_object_get(row, "z")), "blob0");
  assert_int_equal(json_integer_value(json_object_get(row, "n")), 1);
  assert_string_equal(json_string_value(json_object_get(row, "after")), "next");
  json_decref(row);
  tg_db_close(db);
}

static int job_insert(tg_db *db, void *arg)
{
  const int *n = arg;
  char id[32];
  snprintf(id, sizeof id, "u%d", *n);
  return tg_db_exec(db, NULL, "INSERT INTO users(id, credits, created_at) VALUES(?,0,0)", "s", id);
}

static int done_count;
static void on_done(void *arg, int status)
{
  assert_int_equal(status, 0);
  done_count++;
}

static void test_dbq_jobs(void **state)
{
  uv_loop_t loop;
  tg_dbq *q;
  tg_db *db;
  json_t *row;
  int ids[10], err;
  uv_loop_init(&loop);
  assert_int_equal(tg_dbq_new(&q, &loop, path, 3), 0);
  for (int i = 0; i < 10; i++) {
    ids[i] = i;
    assert_int_equal(tg_dbq_submit(q, job_insert, on_done, &ids[i]), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(done_count, 10);
  assert_int_equal(tg_dbq_pending(q), 0);
  tg_dbq_free(q);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(tg_db_open(&db, path, 1000), 0);
  row = tg_db_query_one(db, &err, "SELECT count(*) AS n FROM users WHERE id LIKE 'u%'", NULL);
  assert_int_equal(json_integer_value(json_object_get(row, "n")), 10);
  json_decref(row);
  tg_db_close(db);
}

/* ~600 KB in one transaction: ~150 WAL frames. */
static int job_write_much(tg_db *db, void *arg)
{
  int rc = tg_db_begin(db, 1);
  (void)arg;
  for (int i = 0; rc == 0 && i < 600; i++) {
    char id[32];
    snprintf(id, sizeof id, "big%d", i);
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO users(id, credits, created_at) VALUES(? || zeroblob(1000), 0, 0)",
                    "s", id);
  }
  return rc ? rc : tg_db_commit(db);
}

static long file_size(const char *p)
{
  struct stat st;
  return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static long size_at_commit;
static void on_written(void *arg, int status)
{
  assert_int_equal(status, 0);
  size_at_commit = file_size(path); /* the checkpoint job cannot have started yet */
  (void)arg;
}

/* A commit past the threshold does not checkpoint itself: the database file has not grown when
 * the writing job answers; a separate checkpoint job then copies the WAL into it. */
static void test_dbq_checkpoint_off_commit_path(void **state)
{
  uv_loop_t loop;
  tg_dbq *q;
  tg_db *db;
  json_t *row;
  long before;
  int err;
  (void)state;
  uv_loop_init(&loop);
  assert_int_equal(tg_dbq_new(&q, &loop, path, 2), 0);
  tg_dbq_set_checkpoint_pages(q, 16);
  before = file_size(path);
  assert_int_equal(tg_dbq_submit(q, job_write_much, on_written, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(size_at_commit, before);
  assert_int_equal(tg_dbq_checkpoints(q), 1);
  assert_true(file_size(path) > before + 500 * 1000);
  /* Off: no checkpoint job at all. */
  tg_dbq_set_checkpoint_pages(q, 0);
  assert_int_equal(tg_dbq_submit(q, job_insert, on_written, &(int){99}), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(tg_dbq_checkpoints(q), 1);
  /* The pool was idle, so the checkpoint restarted the WAL: the last write started it over
   * (a few frames, not the hundreds of the big transaction plus its own). */
  assert_int_equal(tg_db_open(&db, path, 1000), 0);
  row = tg_db_query_one(db, &err, "PRAGMA wal_checkpoint(PASSIVE)", NULL);
  assert_non_null(row);
  assert_in_range(json_integer_value(json_object_get(row, "log")), 1, 16);
  json_decref(row);
  tg_db_close(db);
  tg_dbq_free(q);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* The statement cache is keyed by the SQL's address: the same literal is one statement, and
 * other text prepared from the same buffer gets its own statement, never the old one. */
static void test_statement_cache_by_address(void **state)
{
  tg_db *db;
  char buf[64];
  tg_stmt *a, *b;
  static const char *const lit = "SELECT 1 AS one";
  assert_int_equal(tg_db_open(&db, path, 1000), 0);
  a = tg_stmt_prepare(db, lit);
  assert_non_null(a);
  assert_ptr_equal(tg_stmt_prepare(db, lit), a); /* a hit */
  snprintf(buf, sizeof buf, "SELECT %d AS n", 41);
  a = tg_stmt_prepare(db, buf);
  assert_non_null(a);
  assert_int_equal(tg_stmt_step(a), TG_STMT_ROW);
  assert_int_equal(tg_stmt_column_int64(a, 0), 41);
  snprintf(buf, sizeof buf, "SELECT %d AS n", 42); /* same buffer, other text */
  b = tg_stmt_prepare(db, buf);
  assert_non_null(b);
  assert_int_equal(tg_stmt_step(b), TG_STMT_ROW);
  assert_int_equal(tg_stmt_column_int64(b, 0), 42);
  assert_int_equal(tg_stmt_step(b), TG_STMT_DONE);
  tg_stmt_reset(b);
  tg_db_close(db);
}

/* The statement calls: every bind type, column types and reads, changes, RETURNING, and a
 * constraint violation as TG_ECONFLICT from tg_stmt_step. */
static void test_statement_calls(void **state)
{
  tg_db *db;
  tg_stmt *st;
  static const unsigned char blob[] = {0, 1, 2, 255};
  static const char create[] =
      "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT UNIQUE, n INTEGER, b BLOB, z TEXT)";
  assert_int_equal(tg_db_open(&db, path, 1000), 0);
  assert_int_equal(tg_db_exec(db, NULL, create, NULL), 0);
  st = tg_stmt_prepare(db, "INSERT INTO t (s, n, b, z) VALUES (?1, ?2, ?3, ?4) RETURNING id");
  assert_non_null(st);
  assert_int_equal(tg_stmt_bind_text(st, 1, "héllo"), 0);
  assert_int_equal(tg_stmt_bind_int64(st, 2, 9007199254740993LL), 0);
  assert_int_equal(tg_stmt_bind_blob(st, 3, blob, sizeof blob), 0);
  assert_int_equal(tg_stmt_bind_null(st, 4), 0);
  assert_int_equal(tg_stmt_step(st), TG_STMT_ROW);
  assert_int_equal(tg_stmt_column_int64(st, 0), 1);
  assert_int_equal(tg_stmt_step(st), TG_STMT_DONE);
  assert_int_equal(tg_stmt_changes(st), 1);
  tg_stmt_reset(st);

  st = tg_stmt_prepare(db, "SELECT s, n, b, z FROM t WHERE id = ?1");
  assert_int_equal(tg_stmt_bind_int64(st, 1, 1), 0);
  assert_int_equal(tg_stmt_step(st), TG_STMT_ROW);
  assert_int_equal(tg_stmt_column_type(st, 0), TG_COL_TEXT);
  assert_string_equal(tg_stmt_column_text(st, 0), "héllo");
  assert_int_equal(tg_stmt_column_bytes(st, 0), strlen("héllo"));
  assert_int_equal(tg_stmt_column_type(st, 1), TG_COL_INTEGER);
  assert_int_equal(tg_stmt_column_int64(st, 1), 9007199254740993LL);
  assert_int_equal(tg_stmt_column_type(st, 2), TG_COL_BLOB);
  assert_int_equal(tg_stmt_column_bytes(st, 2), sizeof blob);
  assert_memory_equal(tg_stmt_column_blob(st, 2), blob, sizeof blob);
  assert_int_equal(tg_stmt_column_type(st, 3), TG_COL_NULL);
  assert_int_equal(tg_stmt_step(st), TG_STMT_DONE);
  tg_stmt_reset(st);

  st = tg_stmt_prepare(db, "INSERT INTO t (s) VALUES (?1)");
  tg_stmt_bind_text(st, 1, "héllo");
  assert_int_equal(tg_stmt_step(st), TG_ECONFLICT);
  tg_stmt_reset(st);
  /* A prepared statement comes back with its parameters NULL. */
  st = tg_stmt_prepare(db, "INSERT INTO t (s) VALUES (?1)");
  assert_int_equal(tg_stmt_step(st), TG_STMT_DONE);
  tg_stmt_reset(st);
  tg_db_close(db);
}

TG_UNIT_MAIN(
    cmocka_unit_test_setup_teardown(test_migrations_idempotent, temp_dir_setup, temp_dir_teardown),
    cmocka_unit_test_setup_teardown(test_typed_helpers, temp_dir_setup, temp_dir_teardown),
    cmocka_unit_test_setup_teardown(test_json_binding_sizes, temp_dir_setup, temp_dir_teardown),
    cmocka_unit_test_setup_teardown(test_blob_binding, temp_dir_setup, temp_dir_teardown),
    cmocka_unit_test_setup_teardown(test_statement_cache_by_address, temp_dir_setup,
                                    temp_dir_teardown),
    cmocka_unit_test_setup_teardown(test_statement_calls, temp_dir_setup, temp_dir_teardown),
    cmocka_unit_test_setup_teardown(test_dbq_jobs, temp_dir_setup, temp_dir_teardown),
    cmocka_unit_test_setup_teardown(test_dbq_checkpoint_off_commit_path, temp_dir_setup,
                                    temp_dir_teardown))
