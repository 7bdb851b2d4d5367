/*
 * tg_db_sqlite: the SQLite backend of tg_db: one connection with a statement cache.
 *
 * Migrations: schema/NNN_*.sql are compiled in (cmake/embed_sql.cmake) as tg_migrations[];
 * migration i (0-based) brings the schema to version i+1. Each is applied inside BEGIN
 * IMMEDIATE after re-reading user_version under the lock, so processes starting together apply
 * each migration exactly once; with foreign keys OFF around that transaction (so a table
 * rebuild never cascades) and PRAGMA foreign_key_check empty before COMMIT.
 *
 * Statement cache: a tg_map keyed by the address of the SQL text (hashing a pointer instead of
 * ~150 bytes of text on every prepare: the statements are string literals), with the text
 * compared on every hit (sqlite3_sql), so SQL built in a reused buffer is never answered with
 * another text's statement; bounded to CACHE_SLOTS statements (least recently used evicted,
 * which only costs a prepare for the few dozen statements a program has);
 * statements are prepared with SQLITE_PREPARE_PERSISTENT and reset + cleared before reuse. The
 * map owns the statements (finalized when evicted or at close). Each tg_stmt call is one
 * sqlite3_* call: admission's hot path pays an indirect call per bind and step, nothing more.
 */
#include "tg_db_backend.h"
#include "tg_db_sqlite.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_map.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 96

struct tg_migration {
  const char *name;
  const char *sql;
};
extern const struct tg_migration tg_migrations[];
extern const size_t tg_migrations_count;

typedef struct lite_db {
  tg_db base;
  sqlite3 *h;
  tg_map *stmts; /* address of the SQL text -> lite_stmt *, at most CACHE_SLOTS */
} lite_db;

typedef struct lite_stmt {
  tg_stmt base;
  sqlite3_stmt *st;
  lite_db *db;
} lite_stmt;

static const tg_db_ops lite_ops;

static int map_rc(int rc)
{
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE:
    return 0;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return TG_EBUSY;
  case SQLITE_CONSTRAINT:
    return TG_ECONFLICT;
  case SQLITE_NOMEM:
    return TG_ENOMEM;
  default:
    return TG_EDB;
  }
}

static int lite_err(lite_db *db, int rc, const char *what)
{
  int code = map_rc(rc);
  if (code && code != TG_ECONFLICT)
    tg_error("db_error", "{s:s, s:i, s:s}", "what", what ? what : "?", "sqlite_code", rc, "message",
             db && db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
  return code;
}

sqlite3 *tg_db_sqlite_handle(tg_db *db)
{
  return db && db->ops == &lite_ops ? ((lite_db *)db)->h : NULL;
}

int tg_db_sqlite_err(tg_db *db, int rc, const char *what)
{
  return lite_err(db && db->ops == &lite_ops ? (lite_db *)db : NULL, rc, what);
}

static int exec_plain(lite_db *db, const char *sql)
{
  char *msg = NULL;
  int rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    size_t len = strlen(sql);
    /* A migration is one long text: its head names it. */
    tg_error("db_exec_failed", "{s:s#, s:s}", "sql", sql, len > 160 ? (size_t)160 : len, "message",
             msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return map_rc(rc);
  }
  return 0;
}

static int lite_schema_version(tg_db *base)
{
  lite_db *db = (lite_db *)base;
  sqlite3_stmt *st;
  int v = -1;
  if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
    return -1;
  if (sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* Fails (TG_EDB, logged) when PRAGMA foreign_key_check reports a row: a migration that rebuilt a
 * table must leave every reference valid before it commits. */
static int fk_check(lite_db *db)
{
  sqlite3_stmt *st;
  int rc;
  if (sqlite3_prepare_v2(db->h, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
    return lite_err(db, sqlite3_errcode(db->h), "foreign_key_check");
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    tg_error("db_migration_fk_violation", "{s:s, s:I, s:s}", "table",
             (const char *)sqlite3_column_text(st, 0), "rowid",
             (json_int_t)sqlite3_column_int64(st, 1), "parent",
             (const char *)sqlite3_column_text(st, 2));
    rc = TG_EDB;
  } else {
    rc = rc == SQLITE_DONE ? 0 : lite_err(db, rc, "foreign_key_check");
  }
  sqlite3_finalize(st);
  return rc;
}

static void lite_rollback(tg_db *base)
{
  lite_db *db = (lite_db *)base;
  if (!sqlite3_get_autocommit(db->h))
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

/* Applies migration i (to version i+1) unless another connection did it first. Foreign keys are
 * turned off around the transaction (the pragma is a no-op inside one), so a migration may
 * rebuild a parent table without cascading deletes (lang_altertable.html, "Making Other Kinds
 * Of Table Schema Changes"); foreign_key_check must then find nothing before COMMIT. */
static int migrate_one(lite_db *db, size_t i)
{
  int rc, have;
  char pragma[64];
  if ((rc = exec_plain(db, "PRAGMA foreign_keys=OFF")))
    return rc;
  if ((rc = exec_plain(db, "BEGIN IMMEDIATE")))
    goto fail;
  have = lite_schema_version(&db->base); /* re-read under the write lock */
  if (have <= (int)i) {
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %zu", i + 1);
    if ((rc = exec_plain(db, tg_migrations[i].sql)) || (rc = fk_check(db)) ||
        (rc = exec_plain(db, pragma)))
      goto fail;
  }
  if ((rc = exec_plain(db, "COMMIT")))
    goto fail;
  if (have <= (int)i)
    tg_info("db_migrated", "{s:s, s:i}", "migration", tg_migrations[i].name, "version",
            (int)(i + 1));
  return exec_plain(db, "PRAGMA foreign_keys=ON");
fail:
  lite_rollback(&db->base);
  exec_plain(db, "PRAGMA foreign_keys=ON");
  return rc;
}

static int migrate(lite_db *db, int max_version)
{
  for (size_t i = 0; i < tg_migrations_count && (int)i < max_version; i++) {
    int rc;
    if (lite_schema_version(&db->base) > (int)i)
      continue;
    if ((rc = migrate_one(db, i)))
      return rc;
  }
  return 0;
}

/*
 * Process-wide SQLite settings, before the library initialises (sqlite3_config must precede
 * sqlite3_initialize: https://www.sqlite.org/c3ref/config.html). SQLITE_CONFIG_MEMSTATUS off:
 * SQLite then takes no global memory mutex around every allocation to keep statistics that
 * nothing here reads (sqlite3_memory_used and friends). If the library was already
 * initialised by someone else the call fails with SQLITE_MISUSE and nothing changes.
 */
static void configure_sqlite(void)
{
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void finalize_stmt(void *p)
{
  lite_stmt *s = p;
  sqlite3_finalize(s->st);
  free(s);
}

static void lite_close(tg_db *base)
{
  lite_db *db = (lite_db *)base;
  tg_map_free(db->stmts); /* finalizes the statements before the connection closes */
  sqlite3_close(db->h);
  free(db);
}

int tg_db_sqlite_open(tg_db **out, const char *path, int busy_timeout_ms, int max_version)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  lite_db *db;
  int rc;

  *out = NULL;
  pthread_once(&once, configure_sqlite);
  db = calloc(1, sizeof *db);
  if (!db || !(db->stmts = tg_map_new(CACHE_SLOTS, finalize_stmt))) {
    free(db);
    return TG_ENOMEM;
  }
  db->base.ops = &lite_ops;
  rc = sqlite3_open_v2(path, &db->h,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    tg_error("db_open_failed", "{s:s, s:s}", "path", path, "message",
             db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
    lite_close(&db->base);
    return TG_EDB;
  }
  sqlite3_busy_timeout(db->h, busy_timeout_ms);
  sqlite3_extended_result_codes(db->h, 1);
  if ((rc = exec_plain(db, "PRAGMA journal_mode=WAL")) ||
      (rc = exec_plain(db, "PRAGMA synchronous=NORMAL")) ||
      /* Checkpoint every 8,000 WAL pages (32 MB at 4 KB) instead of SQLite's 1,000: a hot page
       * (a user's credits, a connected account) written many times between two checkpoints is
       * copied back once, and the checkpoint's fsync comes 8 times less often. Measured on the
       * admission benchmark (0 ms): 92-97 -> 88-91 µs of gateway CPU per admission. tg_dbq's
       * connections replace this automatic checkpoint (which runs inside the COMMIT) with a
       * checkpoint job at the same size, off the commit path (tg_dbq.c). */
      (rc = exec_plain(db, "PRAGMA wal_autocheckpoint=8000")) ||
      /* No journal_size_limit: a WAL that grew under load (up to ~512 MB, tg_dbq.c) keeps its
       * size on disk after it restarts; truncating it and regrowing it on the next burst made
       * the WAL's writes and fsyncs allocate blocks again and doubled the log gaps > 10 ms in
       * the admission benchmark. */
      (rc = exec_plain(db, "PRAGMA journal_size_limit=-1")) ||
      /* Cost flat in the table's size: once workflow_runs holds ~1M runs, every admitted user
       * has leaf pages of its own in three per-user indexes, so a commit touches ~3 distinct
       * pages per admission. A 16 MB page cache per connection holds that hot set for ~1,000
       * users (SQLite's default is 2 MB; memory is taken only as pages are used), and a 1 GB
       * map reads the database file's pages without a pread each (measured at 1M queued runs:
       * 10 -> 5.4 reads per admission; only the pages still in the WAL are read). */
      (rc = exec_plain(db, "PRAGMA cache_size=-16384")) ||
      (rc = exec_plain(db, "PRAGMA mmap_size=1073741824")) ||
      (rc = exec_plain(db, "PRAGMA foreign_keys=ON")) || (rc = migrate(db, max_version))) {
    lite_close(&db->base);
    return rc;
  }
  *out = &db->base;
  return 0;
}

static int lite_begin(tg_db *base, int immediate)
{
  return exec_plain((lite_db *)base, immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

static int lite_commit(tg_db *base)
{
  return exec_plain((lite_db *)base, "COMMIT");
}

static tg_stmt *lite_prepare(tg_db *base, const char *sql)
{
  lite_db *db = (lite_db *)base;
  lite_stmt *s = tg_map_get(db->stmts, &sql, sizeof sql);

  if (s && strcmp(sqlite3_sql(s->st), sql) == 0) {
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
    return &s->base;
  }
  if (!(s = calloc(1, sizeof *s)))
    return NULL;
  s->base.ops = &lite_ops;
  s->db = db;
  if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL) != SQLITE_OK) {
    tg_error("db_prepare_failed", "{s:s, s:s}", "sql", sql, "message", sqlite3_errmsg(db->h));
    finalize_stmt(s);
    return NULL;
  }
  if (tg_map_put(db->stmts, &sql, sizeof sql, s, 1)) { /* replaces a statement of old text */
    finalize_stmt(s);
    return NULL;
  }
  return &s->base;
}

#define LS(st) (((lite_stmt *)(st))->st)

static int bind_rc(tg_stmt *st, int rc)
{
  return rc == SQLITE_OK ? 0 : lite_err(((lite_stmt *)st)->db, rc, "bind");
}

static int lite_bind_text(tg_stmt *st, int i, const char *s, size_t n, void (*free_fn)(void *))
{
  if (n > INT_MAX) {
    if (free_fn)
      free_fn((void *)s);
    return TG_EINVAL;
  }
  return bind_rc(st, sqlite3_bind_text(LS(st), i, s, (int)n, free_fn ? free_fn : SQLITE_STATIC));
}

static int lite_bind_int64(tg_stmt *st, int i, int64_t v)
{
  return bind_rc(st, sqlite3_bind_int64(LS(st), i, (sqlite3_int64)v));
}

static int lite_bind_null(tg_stmt *st, int i)
{
  return bind_rc(st, sqlite3_bind_null(LS(st), i));
}

static int lite_bind_blob(tg_stmt *st, int i, const void *p, size_t n)
{
  if (n > INT_MAX)
    return TG_EINVAL;
  return bind_rc(st, sqlite3_bind_blob(LS(st), i, p, (int)n, SQLITE_STATIC));
}

static int lite_step(tg_stmt *st)
{
  int rc = sqlite3_step(LS(st));
  if (rc == SQLITE_ROW)
    return TG_STMT_ROW;
  if (rc == SQLITE_DONE)
    return TG_STMT_DONE;
  return lite_err(((lite_stmt *)st)->db, rc, sqlite3_sql(LS(st)));
}

static int lite_column_count(tg_stmt *st)
{
  return sqlite3_column_count(LS(st));
}

static const char *lite_column_name(tg_stmt *st, int i)
{
  return sqlite3_column_name(LS(st), i);
}

static tg_col_type lite_column_type(tg_stmt *st, int i)
{
  switch (sqlite3_column_type(LS(st), i)) {
  case SQLITE_INTEGER:
    return TG_COL_INTEGER;
  case SQLITE_FLOAT:
    return TG_COL_REAL;
  case SQLITE_TEXT:
    return TG_COL_TEXT;
  case SQLITE_BLOB:
    return TG_COL_BLOB;
  default:
    return TG_COL_NULL;
  }
}

static int64_t lite_column_int64(tg_stmt *st, int i)
{
  return sqlite3_column_int64(LS(st), i);
}

static double lite_column_double(tg_stmt *st, int i)
{
  return sqlite3_column_double(LS(st), i);
}

static const char *lite_column_text(tg_stmt *st, int i)
{
  return (const char *)sqlite3_column_text(LS(st), i);
}

static const void *lite_column_blob(tg_stmt *st, int i)
{
  return sqlite3_column_blob(LS(st), i);
}

static size_t lite_column_bytes(tg_stmt *st, int i)
{
  return (size_t)sqlite3_column_bytes(LS(st), i);
}

static int64_t lite_changes(tg_stmt *st)
{
  return sqlite3_changes(((lite_stmt *)st)->db->h);
}

static void lite_reset(tg_stmt *st)
{
  sqlite3_reset(LS(st));
}

static const tg_db_ops lite_ops = {
    .dialect = TG_DB_SQLITE,
    .close = lite_close,
    .schema_version = lite_schema_version,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .prepare = lite_prepare,
    .bind_text = lite_bind_text,
    .bind_int64 = lite_bind_int64,
    .bind_null = lite_bind_null,
    .bind_blob = lite_bind_blob,
    .step = lite_step,
    .column_count = lite_column_count,
    .column_name = lite_column_name,
    .column_type = lite_column_type,
    .column_int64 = lite_column_int64,
    .column_double = lite_column_double,
    .column_text = lite_column_text,
    .column_blob = lite_column_blob,
    .column_bytes = lite_column_bytes,
    .changes = lite_changes,
    .reset = lite_reset,
};
