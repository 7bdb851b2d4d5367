/*
 * tg_db: one SQLite connection with a statement cache and typed helpers.
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
 * map owns the statements (finalized when evicted or at close).
 */
#include "tg_db_stmt.h"
#include "tg_err.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_map.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 96

struct tg_migration {
  const char *name;
  const char *sql;
};
extern const struct tg_migration tg_migrations[];
extern const size_t tg_migrations_count;

struct tg_db {
  sqlite3 *h;
  tg_map *stmts; /* address of the SQL text -> sqlite3_stmt *, at most CACHE_SLOTS */
};

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

int tg_db_err(tg_db *db, int rc, const char *what)
{
  int code = map_rc(rc);
  if (code && code != TG_ECONFLICT)
    tg_error("db_error", "{s:s, s:i, s:s}", "what", what ? what : "?", "sqlite_code", rc, "message",
             db && db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
  return code;
}

static int exec_plain(tg_db *db, const char *sql)
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

tg_db_dialect_t tg_db_dialect(const tg_db *db)
{
  (void)db;
  return TG_DB_SQLITE;
}

int tg_db_is_pg_uri(const char *path)
{
  return path && (!strncmp(path, "postgresql://", 13) || !strncmp(path, "postgres://", 11));
}

int tg_db_schema_version(tg_db *db)
{
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
static int fk_check(tg_db *db)
{
  sqlite3_stmt *st;
  int rc;
  if (sqlite3_prepare_v2(db->h, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
    return tg_db_err(db, sqlite3_errcode(db->h), "foreign_key_check");
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    tg_error("db_migration_fk_violation", "{s:s, s:I, s:s}", "table",
             (const char *)sqlite3_column_text(st, 0), "rowid",
             (json_int_t)sqlite3_column_int64(st, 1), "parent",
             (const char *)sqlite3_column_text(st, 2));
    rc = TG_EDB;
  } else {
    rc = rc == SQLITE_DONE ? 0 : tg_db_err(db, rc, "foreign_key_check");
  }
  sqlite3_finalize(st);
  return rc;
}

/* Applies migration i (to version i+1) unless another connection did it first. Foreign keys are
 * turned off around the transaction (the pragma is a no-op inside one), so a migration may
 * rebuild a parent table without cascading deletes (lang_altertable.html, "Making Other Kinds
 * Of Table Schema Changes"); foreign_key_check must then find nothing before COMMIT. */
static int migrate_one(tg_db *db, size_t i)
{
  int rc, have;
  char pragma[64];
  if ((rc = exec_plain(db, "PRAGMA foreign_keys=OFF")))
    return rc;
  if ((rc = exec_plain(db, "BEGIN IMMEDIATE")))
    goto fail;
  have = tg_db_schema_version(db); /* re-read under the write lock */
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
  tg_db_rollback(db);
  exec_plain(db, "PRAGMA foreign_keys=ON");
  return rc;
}

static int migrate(tg_db *db, int max_version)
{
  for (size_t i = 0; i < tg_migrations_count && (int)i < max_version; i++) {
    int rc;
    if (tg_db_schema_version(db) > (int)i)
      continue;
    if ((rc = migrate_one(db, i)))
      return rc;
  }
  return 0;
}

int tg_db_open(tg_db **out, const char *path, int busy_timeout_ms)
{
  return tg_db_open_version(out, path, busy_timeout_ms, INT_MAX);
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

static void finalize_stmt(void *stmt)
{
  sqlite3_finalize(stmt);
}

int tg_db_open_version(tg_db **out, const char *path, int busy_timeout_ms, int max_version)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  tg_db *db;
  int rc;

  *out = NULL;
  pthread_once(&once, configure_sqlite);
  db = calloc(1, sizeof *db);
  if (!db || !(db->stmts = tg_map_new(CACHE_SLOTS, finalize_stmt))) {
    free(db);
    return TG_ENOMEM;
  }
  rc = sqlite3_open_v2(path, &db->h,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    tg_error("db_open_failed", "{s:s, s:s}", "path", path, "message",
             db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
    sqlite3_close(db->h);
    tg_map_free(db->stmts);
    free(db);
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
    tg_db_close(db);
    return rc;
  }
  *out = db;
  return 0;
}

void tg_db_close(tg_db *db)
{
  if (!db)
    return;
  tg_map_free(db->stmts); /* finalizes the statements before the connection closes */
  sqlite3_close(db->h);
  free(db);
}

sqlite3 *tg_db_handle(tg_db *db)
{
  return db->h;
}

int tg_db_begin(tg_db *db, int immediate)
{
  return exec_plain(db, immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

int tg_db_commit(tg_db *db)
{
  return exec_plain(db, "COMMIT");
}

void tg_db_rollback(tg_db *db)
{
  if (!sqlite3_get_autocommit(db->h))
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

int tg_db_end(tg_db *db, int rc)
{
  if (rc == 0)
    return tg_db_commit(db);
  tg_db_rollback(db);
  return rc;
}

sqlite3_stmt *tg_db_prepare(tg_db *db, const char *sql)
{
  sqlite3_stmt *st = tg_map_get(db->stmts, &sql, sizeof sql);

  if (st && strcmp(sqlite3_sql(st), sql) == 0) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
  }
  if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
    tg_error("db_prepare_failed", "{s:s, s:s}", "sql", sql, "message", sqlite3_errmsg(db->h));
    return NULL;
  }
  if (tg_map_put(db->stmts, &sql, sizeof sql, st, 1)) { /* replaces a statement of old text */
    sqlite3_finalize(st);
    return NULL;
  }
  return st;
}

static int bind_args(tg_db *db, sqlite3_stmt *st, const char *types, va_list ap)
{
  int idx = 1, rc = SQLITE_OK;
  for (const char *t = types ? types : ""; *t && rc == SQLITE_OK; t++, idx++) {
    switch (*t) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      rc = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, idx);
      break;
    }
    case 'i':
      rc = sqlite3_bind_int(st, idx, va_arg(ap, int));
      break;
    case 'I':
      rc = sqlite3_bind_int64(st, idx, (sqlite3_int64)va_arg(ap, long long));
      break;
    case 'n':
      rc = sqlite3_bind_null(st, idx);
      break;
    case 'b': {
      const void *p = va_arg(ap, const void *);
      size_t n = va_arg(ap, size_t);
      if (!p)
        rc = sqlite3_bind_null(st, idx);
      else if (n > INT_MAX)
        return TG_EINVAL;
      else
        rc = sqlite3_bind_blob(st, idx, p, (int)n, SQLITE_TRANSIENT);
      break;
    }
    case 'j': {
      json_t *j = va_arg(ap, json_t *);
      size_t n = 0;
      char *text;
      if (!j) {
        rc = sqlite3_bind_null(st, idx);
        break;
      }
      if (!(text = tg_json_dumps(j, &n))) /* yajl_gen: the bytes of json_dumps, faster */
        return TG_ENOMEM;
      if (n > INT_MAX) {
        free(text);
        return TG_EINVAL;
      }
      rc = sqlite3_bind_text(st, idx, text, (int)n, free);
      break;
    }
    default:
      tg_error("db_bad_type", "{s:s}", "types", types);
      return TG_EINVAL;
    }
  }
  return rc == SQLITE_OK ? 0 : tg_db_err(db, rc, "bind");
}

int tg_db_exec(tg_db *db, int *changes, const char *sql, const char *types, ...)
{
  sqlite3_stmt *st = tg_db_prepare(db, sql);
  va_list ap;
  int rc;

  if (changes)
    *changes = 0;
  if (!st)
    return TG_EDB;
  va_start(ap, types);
  rc = bind_args(db, st, types, ap);
  va_end(ap);
  if (rc)
    return rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    ;
  if (rc != SQLITE_DONE) {
    rc = tg_db_err(db, rc, sql);
    sqlite3_reset(st);
    return rc;
  }
  if (changes)
    *changes = sqlite3_changes(db->h);
  sqlite3_reset(st);
  return 0;
}

static json_t *row_object(sqlite3_stmt *st)
{
  json_t *row = json_object();
  int n = sqlite3_column_count(st);
  for (int i = 0; row && i < n; i++) {
    const char *name = sqlite3_column_name(st, i);
    size_t len = strlen(name);
    json_t *v = NULL;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      v = json_integer(sqlite3_column_int64(st, i));
      break;
    case SQLITE_FLOAT:
      v = json_real(sqlite3_column_double(st, i));
      break;
    case SQLITE_TEXT: {
      const char *text = (const char *)sqlite3_column_text(st, i);
      if (len > 5 && strcmp(name + len - 5, "_json") == 0) {
        v = json_loads(text, JSON_DECODE_ANY, NULL);
        if (!v)
          v = json_string(text);
      } else {
        v = json_stringn(text, (size_t)sqlite3_column_bytes(st, i));
      }
      break;
    }
    case SQLITE_NULL:
      v = json_null();
      break;
    default:
      continue; /* BLOBs (ciphertexts) never leave the database this way */
    }
    if (len > 5 && strcmp(name + len - 5, "_json") == 0) {
      char key[128];
      snprintf(key, sizeof key, "%.*s", (int)(len - 5), name);
      json_object_set_new(row, key, v);
    } else {
      json_object_set_new(row, name, v);
    }
  }
  return row;
}

static json_t *query(tg_db *db, int *err, int first_only, const char *sql, const char *types,
                     va_list ap)
{
  sqlite3_stmt *st = tg_db_prepare(db, sql);
  json_t *rows;
  int rc;

  if (err)
    *err = 0;
  if (!st) {
    if (err)
      *err = TG_EDB;
    return NULL;
  }
  if ((rc = bind_args(db, st, types, ap))) {
    if (err)
      *err = rc;
    return NULL;
  }
  rows = json_array();
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_array_append_new(rows, row_object(st));
    if (first_only)
      break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    rc = tg_db_err(db, rc, sql);
    sqlite3_reset(st);
    json_decref(rows);
    if (err)
      *err = rc;
    return NULL;
  }
  sqlite3_reset(st);
  return rows;
}

json_t *tg_db_query(tg_db *db, int *err, const char *sql, const char *types, ...)
{
  va_list ap;
  json_t *rows;
  va_start(ap, types);
  rows = query(db, err, 0, sql, types, ap);
  va_end(ap);
  return rows;
}

json_t *tg_db_query_one(tg_db *db, int *err, const char *sql, const char *types, ...)
{
  va_list ap;
  json_t *rows, *row = NULL;
  va_start(ap, types);
  rows = query(db, err, 1, sql, types, ap);
  va_end(ap);
  if (!rows)
    return NULL;
  if (json_array_size(rows) > 0)
    row = json_incref(json_array_get(rows, 0));
  else if (err)
    *err = TG_ENOTFOUND;
  json_decref(rows);
  return row;
}
