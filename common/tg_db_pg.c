/*
 * tg_db_pg: the PostgreSQL backend of tg_db: one libpq connection (blocking calls, on a tg_dbq
 * pool thread; docs/design-postgres.md section 3) with a statement cache.
 *
 * Statements: the text keeps SQLite's placeholders; at its first prepare on a connection it is
 * rewritten once (?N → $N; a bare ? takes one more than the largest number so far, as SQLite
 * numbers it; nothing inside '...' or "..." or a -- comment is touched) and cached in a tg_map
 * keyed by the text's address, with the text compared on every hit (as tg_db_sqlite.c does).
 * PQprepare names it on the server at its first step, once per connection: a reconnect bumps
 * gen, and a statement prepared under an older gen is prepared again. Parameter types are left
 * to the server (a statement whose parameter type cannot be inferred casts it in its pg text).
 * Parameters are sent as text (int64 as decimal), blobs in binary format; the first step runs
 * PQexecPrepared and the following ones walk the result's rows, read as text and typed by the
 * column's OID. A statement evicted from the cache is deallocated on the server the next time
 * the connection is outside a transaction (DEALLOCATE fails inside an aborted one).
 *
 * Errors (SQLSTATE, https://www.postgresql.org/docs/15/errcodes-appendix.html): 40001/40P01 →
 * TG_EBUSY, class 23 → TG_ECONFLICT (not logged), 57014 → TG_ETIMEDOUT, class 08, 57P01-57P03
 * or a connection that is no longer CONNECTION_OK → TG_EIO, else TG_EDB; the server's message
 * is logged with host:port/dbname, never the URI (it may hold a password). After TG_EIO the
 * connection is broken: its next use resets it (PQreset) at once, and after a failed reset waits
 * 100 ms, doubling to 5 s, before trying again (TG_EIO meanwhile). Whatever was in flight is
 * unknown to the caller (the transaction is gone on the server).
 *
 * Migrations: schema/pg/NNN_*.sql (tg_pg_migrations[], cmake/embed_sql.cmake); the number a
 * file's name starts with is its version. Each runs in one transaction that first takes
 * pg_advisory_xact_lock(MIGRATION_LOCK) and re-reads schema_version under it, so processes
 * starting together apply each step exactly once; the statement timeout is off inside it.
 */
#include "tg_db_backend.h"
#include "tg_db_uri.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_map.h"

#include <libpq-fe.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_SLOTS 96
#define MIGRATION_LOCK "7453766474466387045" /* the advisory lock key of our migrations */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* Type OIDs (src/include/catalog/pg_type.dat; stable across releases). */
enum {
  OID_BOOL = 16,
  OID_BYTEA = 17,
  OID_INT8 = 20,
  OID_INT2 = 21,
  OID_INT4 = 23,
  OID_FLOAT4 = 700,
  OID_FLOAT8 = 701,
  OID_NUMERIC = 1700
};

struct tg_migration {
  const char *name;
  const char *sql;
};
extern const struct tg_migration tg_pg_migrations[];
extern const size_t tg_pg_migrations_count;

static atomic_int statement_timeout_ms = 5000;

typedef struct pg_db {
  tg_db base;
  PGconn *conn;
  tg_map *stmts;       /* address of the SQL text -> pg_stmt *, at most CACHE_SLOTS */
  unsigned gen;        /* bumped by every reconnect: server-side statements are gone */
  unsigned next_name;  /* names tg_<n> of prepared statements */
  int broken;          /* the connection was lost: reset before its next use */
  int closing;         /* tg_db_close: evicted statements need no DEALLOCATE */
  int backoff_ms;      /* wait after a failed reset */
  int64_t retry_at_ms; /* no reset before this (monotonic) */
  char **dealloc;      /* names of evicted statements still prepared on the server */
  size_t ndealloc, dealloc_cap;
  char where[160]; /* host:port/dbname, for logs */
} pg_db;

typedef struct pg_stmt {
  tg_stmt base;
  pg_db *db;
  char *sql;    /* the statement's text as given (compared on cache hits) */
  char *pg_sql; /* with $N placeholders */
  char name[24];
  unsigned gen; /* the connection gen it was prepared under; prepared says whether it was */
  int prepared;
  int nparams;
  const char **values; /* per parameter: text or blob bytes, NULL for NULL */
  int *lengths;
  int *formats;    /* 0 text, 1 binary (blobs) */
  char (*num)[24]; /* an int64's decimal text */
  void **owned;    /* what the statement must free (values[i] bound with free_fn) */
  void (**owned_free)(void *);
  PGresult *res; /* of the current run, NULL before the first step */
  int row, nrows;
  int64_t changes;
  unsigned char *blob; /* a bytea value of the current row, unescaped */
  size_t blob_len;
  int blob_row, blob_col;
} pg_stmt;

static const tg_db_ops pg_ops;

void tg_db_set_statement_timeout_ms(int ms)
{
  atomic_store(&statement_timeout_ms, ms < 0 ? 0 : ms);
}

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Maps the failure of res (may be NULL: a connection-level failure) to TG_E* and logs it. */
static int pg_fail(pg_db *db, const PGresult *res, const char *what)
{
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = res ? PQresultErrorMessage(res) : "";
  int code;
  if (!msg || !*msg)
    msg = PQerrorMessage(db->conn);
  if (PQstatus(db->conn) != CONNECTION_OK ||
      (state && (!strncmp(state, "08", 2) || !strncmp(state, "57P0", 4)))) {
    db->broken = 1;
    code = TG_EIO;
  } else if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01"))) {
    code = TG_EBUSY;
  } else if (state && !strncmp(state, "23", 2)) {
    return TG_ECONFLICT;
  } else if (state && !strcmp(state, "57014")) {
    code = TG_ETIMEDOUT;
  } else {
    code = TG_EDB;
  }
  tg_error("db_error", "{s:s, s:s, s:s, s:s, s:s}", "what", what ? what : "?", "db", db->where,
           "sqlstate", state ? state : "", "message", msg ? msg : "", "error", tg_errname(code));
  return code;
}

/* Runs sql (any number of statements, no parameters) with PQexec. 0 or TG_E*. */
static int exec_plain(pg_db *db, const char *sql)
{
  PGresult *res = PQexec(db->conn, sql);
  ExecStatusType s = PQresultStatus(res);
  int rc = 0;
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
    rc = pg_fail(db, res, sql);
  PQclear(res);
  return rc;
}

/* The per-connection settings (docs/design-postgres.md section 3). */
static int session_setup(pg_db *db)
{
  char sql[160];
  int ms = atomic_load(&statement_timeout_ms);
  snprintf(sql, sizeof sql,
           "SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d", ms, ms);
  return exec_plain(db, sql);
}

/* Deallocates the statements evicted from the cache, when no transaction is open. */
static void flush_dealloc(pg_db *db)
{
  char sql[48];
  if (!db->ndealloc || PQtransactionStatus(db->conn) != PQTRANS_IDLE)
    return;
  while (db->ndealloc) {
    char *name = db->dealloc[--db->ndealloc];
    snprintf(sql, sizeof sql, "DEALLOCATE %s", name);
    free(name);
    if (exec_plain(db, sql))
      break;
  }
}

static void forget_dealloc(pg_db *db)
{
  while (db->ndealloc)
    free(db->dealloc[--db->ndealloc]);
}

/* Makes the connection usable: 0, or TG_EIO while it is lost (see the back-off above). */
static int ensure_conn(pg_db *db)
{
  int64_t now;
  if (!db->broken)
    return 0;
  now = mono_ms();
  if (now < db->retry_at_ms)
    return TG_EIO;
  PQreset(db->conn);
  if (PQstatus(db->conn) == CONNECTION_OK && session_setup(db) == 0) {
    db->broken = 0;
    db->gen++;
    db->backoff_ms = BACKOFF_MIN_MS;
    db->retry_at_ms = 0;
    forget_dealloc(db);
    tg_info("db_reconnected", "{s:s}", "db", db->where);
    return 0;
  }
  db->broken = 1;
  db->retry_at_ms = now + db->backoff_ms;
  tg_warn("db_reconnect_failed", "{s:s, s:s, s:i}", "db", db->where, "message",
          PQerrorMessage(db->conn), "retry_in_ms", db->backoff_ms);
  db->backoff_ms = db->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : db->backoff_ms * 2;
  return TG_EIO;
}

/* ---------------------------------------------------------------- statements */

static void clear_owned(pg_stmt *s, int i)
{
  if (s->owned[i]) {
    s->owned_free[i](s->owned[i]);
    s->owned[i] = NULL;
  }
}

static void clear_result(pg_stmt *s)
{
  PQclear(s->res);
  s->res = NULL;
  s->row = -1;
  s->nrows = 0;
  if (s->blob)
    PQfreemem(s->blob);
  s->blob = NULL;
  s->blob_row = -1;
}

static void clear_binds(pg_stmt *s)
{
  for (int i = 0; i < s->nparams; i++) {
    clear_owned(s, i);
    s->values[i] = NULL;
    s->lengths[i] = 0;
    s->formats[i] = 0;
  }
}

static void free_stmt(void *p)
{
  pg_stmt *s = p;
  pg_db *db = s->db;
  clear_result(s);
  clear_binds(s);
  if (s->prepared && s->gen == db->gen && !db->closing && !db->broken) {
    if (db->ndealloc == db->dealloc_cap) {
      size_t cap = db->dealloc_cap ? db->dealloc_cap * 2 : 8;
      char **grown = realloc(db->dealloc, cap * sizeof *grown);
      if (grown) {
        db->dealloc = grown;
        db->dealloc_cap = cap;
      }
    }
    if (db->ndealloc < db->dealloc_cap && (db->dealloc[db->ndealloc] = strdup(s->name)))
      db->ndealloc++;
  }
  free(s->sql);
  free(s->pg_sql);
  free(s->values);
  free(s->lengths);
  free(s->formats);
  free(s->num);
  free(s->owned);
  free(s->owned_free);
  free(s);
}

/* Rewrites ?N / ? to $N outside quotes and comments: a new string (NULL on ENOMEM), and the
 * number of parameters (the largest N) in *nparams. */
static char *rewrite(const char *sql, int *nparams)
{
  size_t n = strlen(sql);
  char *out = malloc(n * 6 + 1), *o = out; /* "?" becomes at most "$32766" */
  int max = 0;
  char quote = 0;
  if (!out)
    return NULL;
  for (const char *p = sql; *p; p++) {
    if (quote) {
      if (*p == quote)
        quote = 0;
      *o++ = *p;
    } else if (*p == '\'' || *p == '"') {
      quote = *p;
      *o++ = *p;
    } else if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n')
        *o++ = *p++;
      if (!*p)
        break;
      *o++ = *p;
    } else if (*p == '?') {
      long v;
      char *end;
      if (p[1] >= '0' && p[1] <= '9') {
        v = strtol(p + 1, &end, 10);
        p = end - 1;
      } else {
        v = max + 1;
      }
      if (v > max)
        max = v > 32766 ? 32766 : (int)v;
      o += sprintf(o, "$%ld", v);
    } else {
      *o++ = *p;
    }
  }
  *o = 0;
  *nparams = max;
  return out;
}

static pg_stmt *new_stmt(pg_db *db, const char *sql)
{
  pg_stmt *s = calloc(1, sizeof *s);
  size_t k;
  if (!s)
    return NULL;
  s->base.ops = &pg_ops;
  s->db = db;
  s->row = -1;
  s->blob_row = -1;
  if (!(s->sql = strdup(sql)) || !(s->pg_sql = rewrite(sql, &s->nparams)))
    goto fail;
  k = s->nparams ? (size_t)s->nparams : 1;
  s->values = calloc(k, sizeof *s->values);
  s->lengths = calloc(k, sizeof *s->lengths);
  s->formats = calloc(k, sizeof *s->formats);
  s->num = calloc(k, sizeof *s->num);
  s->owned = calloc(k, sizeof *s->owned);
  s->owned_free = calloc(k, sizeof *s->owned_free);
  if (!s->values || !s->lengths || !s->formats || !s->num || !s->owned || !s->owned_free)
    goto fail;
  snprintf(s->name, sizeof s->name, "tg_%u", db->next_name++);
  return s;
fail:
  free_stmt(s);
  return NULL;
}

static tg_stmt *pg_prepare(tg_db *base, const char *sql)
{
  pg_db *db = (pg_db *)base;
  pg_stmt *s = tg_map_get(db->stmts, &sql, sizeof sql);

  if (s && strcmp(s->sql, sql) == 0) {
    clear_result(s);
    clear_binds(s);
  } else {
    if (!(s = new_stmt(db, sql))) {
      tg_error("db_prepare_failed", "{s:s, s:s}", "sql", sql, "message", "out of memory");
      return NULL;
    }
    if (tg_map_put(db->stmts, &sql, sizeof sql, s, 1)) { /* replaces a statement of old text */
      free_stmt(s);
      return NULL;
    }
  }
  if (!db->broken)
    flush_dealloc(db);
  return &s->base;
}

#define PS(st) ((pg_stmt *)(st))

/* Slot i (from 1) of s, or -1 when out of range (logged). */
static int slot(pg_stmt *s, int i)
{
  if (i < 1 || i > s->nparams) {
    tg_error("db_bind_range", "{s:s, s:i}", "sql", s->sql, "index", i);
    return -1;
  }
  clear_owned(s, i - 1);
  s->formats[i - 1] = 0;
  return i - 1;
}

static int pg_bind_text(tg_stmt *st, int i, const char *text, size_t n, void (*free_fn)(void *))
{
  pg_stmt *s = PS(st);
  int k = slot(s, i);
  if (k < 0 || n > INT_MAX) {
    if (free_fn)
      free_fn((void *)text);
    return TG_EINVAL;
  }
  s->values[k] = text; /* NUL-terminated: text format reads up to the NUL */
  s->lengths[k] = (int)n;
  if (free_fn) {
    s->owned[k] = (void *)text;
    s->owned_free[k] = free_fn;
  }
  return 0;
}

static int pg_bind_int64(tg_stmt *st, int i, int64_t v)
{
  pg_stmt *s = PS(st);
  int k = slot(s, i);
  if (k < 0)
    return TG_EINVAL;
  snprintf(s->num[k], sizeof s->num[k], "%lld", (long long)v);
  s->values[k] = s->num[k];
  s->lengths[k] = (int)strlen(s->num[k]);
  return 0;
}

static int pg_bind_null(tg_stmt *st, int i)
{
  pg_stmt *s = PS(st);
  int k = slot(s, i);
  if (k < 0)
    return TG_EINVAL;
  s->values[k] = NULL;
  return 0;
}

static int pg_bind_blob(tg_stmt *st, int i, const void *p, size_t n)
{
  pg_stmt *s = PS(st);
  int k = slot(s, i);
  if (k < 0 || n > INT_MAX)
    return TG_EINVAL;
  s->values[k] = p;
  s->lengths[k] = (int)n;
  s->formats[k] = 1; /* binary bytea: the bytes as they are */
  return 0;
}

/* Prepares s on the server unless this connection has it already. */
static int server_prepare(pg_stmt *s)
{
  pg_db *db = s->db;
  PGresult *res;
  int rc = 0;
  if (s->prepared && s->gen == db->gen)
    return 0;
  res = PQprepare(db->conn, s->name, s->pg_sql, s->nparams, NULL);
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    rc = pg_fail(db, res, s->sql);
  PQclear(res);
  if (rc == 0) {
    s->prepared = 1;
    s->gen = db->gen;
  }
  return rc;
}

static int pg_step(tg_stmt *st)
{
  pg_stmt *s = PS(st);
  pg_db *db = s->db;
  if (!s->res) {
    ExecStatusType status;
    int rc;
    if ((rc = ensure_conn(db)) || (rc = server_prepare(s)))
      return rc;
    s->res = PQexecPrepared(db->conn, s->name, s->nparams, s->values, s->lengths, s->formats, 0);
    status = PQresultStatus(s->res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      rc = pg_fail(db, s->res, s->sql);
      clear_result(s);
      return rc;
    }
    s->nrows = PQntuples(s->res);
    s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
    s->row = -1;
  }
  if (s->row + 1 < s->nrows) {
    s->row++;
    return TG_STMT_ROW;
  }
  s->row = s->nrows;
  return TG_STMT_DONE;
}

/* Whether column i of the current row is NULL (also when there is no current row). */
static int is_null(pg_stmt *s, int i)
{
  return !s->res || s->row < 0 || s->row >= s->nrows || i < 0 || i >= PQnfields(s->res) ||
         PQgetisnull(s->res, s->row, i);
}

static int pg_column_count(tg_stmt *st)
{
  return PS(st)->res ? PQnfields(PS(st)->res) : 0;
}

static const char *pg_column_name(tg_stmt *st, int i)
{
  return PQfname(PS(st)->res, i);
}

static tg_col_type pg_column_type(tg_stmt *st, int i)
{
  pg_stmt *s = PS(st);
  if (is_null(s, i))
    return TG_COL_NULL;
  switch (PQftype(s->res, i)) {
  case OID_BOOL:
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
    return TG_COL_INTEGER;
  case OID_FLOAT4:
  case OID_FLOAT8:
  case OID_NUMERIC:
    return TG_COL_REAL;
  case OID_BYTEA:
    return TG_COL_BLOB;
  default:
    return TG_COL_TEXT;
  }
}

static int64_t pg_column_int64(tg_stmt *st, int i)
{
  pg_stmt *s = PS(st);
  const char *v;
  if (is_null(s, i))
    return 0;
  v = PQgetvalue(s->res, s->row, i);
  if (PQftype(s->res, i) == OID_BOOL)
    return v[0] == 't';
  return strtoll(v, NULL, 10);
}

static double pg_column_double(tg_stmt *st, int i)
{
  pg_stmt *s = PS(st);
  return is_null(s, i) ? 0 : strtod(PQgetvalue(s->res, s->row, i), NULL);
}

static const char *pg_column_text(tg_stmt *st, int i)
{
  pg_stmt *s = PS(st);
  return is_null(s, i) ? NULL : PQgetvalue(s->res, s->row, i);
}

/* Column i as bytes: a bytea unescaped (kept until the next row), anything else its text. */
static const void *blob_of(pg_stmt *s, int i, size_t *len)
{
  *len = 0;
  if (is_null(s, i))
    return NULL;
  if (PQftype(s->res, i) != OID_BYTEA) {
    *len = (size_t)PQgetlength(s->res, s->row, i);
    return PQgetvalue(s->res, s->row, i);
  }
  if (!s->blob || s->blob_row != s->row || s->blob_col != i) {
    if (s->blob)
      PQfreemem(s->blob);
    s->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, i), &s->blob_len);
    s->blob_row = s->row;
    s->blob_col = i;
    if (!s->blob)
      return NULL;
  }
  *len = s->blob_len;
  return s->blob;
}

static const void *pg_column_blob(tg_stmt *st, int i)
{
  size_t len;
  return blob_of(PS(st), i, &len);
}

static size_t pg_column_bytes(tg_stmt *st, int i)
{
  size_t len;
  blob_of(PS(st), i, &len);
  return len;
}

static int64_t pg_changes(tg_stmt *st)
{
  return PS(st)->changes;
}

static void pg_reset(tg_stmt *st)
{
  clear_result(PS(st));
}

/* ---------------------------------------------------------------- connection */

static int pg_begin(tg_db *base, int immediate)
{
  pg_db *db = (pg_db *)base;
  int rc;
  (void)immediate; /* row locks (SELECT ... FOR UPDATE) take the write lock's place */
  if ((rc = ensure_conn(db)))
    return rc;
  return exec_plain(db, "BEGIN");
}

static int pg_commit(tg_db *base)
{
  pg_db *db = (pg_db *)base;
  PGresult *res;
  int rc = 0;
  if (db->broken)
    return TG_EIO;
  res = PQexec(db->conn, "COMMIT");
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    rc = pg_fail(db, res, "COMMIT");
  else if (!strcmp(PQcmdStatus(res), "ROLLBACK")) { /* the transaction had failed */
    tg_error("db_error", "{s:s, s:s, s:s}", "what", "COMMIT", "db", db->where, "message",
             "the transaction was rolled back");
    rc = TG_EDB;
  }
  PQclear(res);
  return rc;
}

static void pg_rollback(tg_db *base)
{
  pg_db *db = (pg_db *)base;
  if (PQstatus(db->conn) != CONNECTION_OK)
    db->broken = 1;
  if (!db->broken && PQtransactionStatus(db->conn) != PQTRANS_IDLE)
    PQclear(PQexec(db->conn, "ROLLBACK"));
}

/* Reads one integer (first column of the first row) of a parameterless query: 0 or TG_E*. */
static int query_int(pg_db *db, const char *sql, int64_t *v)
{
  PGresult *res = PQexec(db->conn, sql);
  int rc = 0;
  *v = 0;
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    rc = pg_fail(db, res, sql);
  else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
    *v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return rc;
}

static int read_version(pg_db *db, int64_t *v)
{
  int64_t exists;
  int rc = query_int(db,
                     "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_version' AND "
                     "schemaname = current_schema()",
                     &exists);
  if (rc || !exists) {
    *v = 0;
    return rc;
  }
  return query_int(db, "SELECT coalesce(max(version), 0) FROM schema_version", v);
}

static int pg_schema_version(tg_db *base)
{
  int64_t v;
  return read_version((pg_db *)base, &v) ? -1 : (int)v;
}

static int migration_version(size_t i)
{
  return atoi(tg_pg_migrations[i].name);
}

/* Applies migration i under the advisory lock unless another connection did it first. */
static int migrate_one(pg_db *db, size_t i)
{
  char record[96];
  int64_t have = 0;
  int v = migration_version(i), rc;
  snprintf(record, sizeof record, "INSERT INTO schema_version (version) VALUES (%d)", v);
  if ((rc = exec_plain(db, "BEGIN; SET LOCAL statement_timeout = 0; SELECT "
                           "pg_advisory_xact_lock(" MIGRATION_LOCK "); CREATE TABLE IF NOT "
                           "EXISTS schema_version (version BIGINT PRIMARY KEY)")) ||
      (rc = read_version(db, &have)))
    goto fail;
  if (have < v && ((rc = exec_plain(db, tg_pg_migrations[i].sql)) || (rc = exec_plain(db, record))))
    goto fail;
  if ((rc = pg_commit(&db->base)))
    goto fail;
  if (have < v)
    tg_info("db_migrated", "{s:s, s:i, s:s}", "migration", tg_pg_migrations[i].name, "version", v,
            "db", db->where);
  return 0;
fail:
  pg_rollback(&db->base);
  return rc;
}

static int migrate(pg_db *db, int max_version)
{
  int64_t have;
  int rc;
  if (tg_pg_migrations_count && max_version < migration_version(0)) {
    tg_error("db_open_failed", "{s:s, s:s, s:i}", "db", db->where, "message",
             "PostgreSQL starts at its baseline schema", "baseline", migration_version(0));
    return TG_EINVAL;
  }
  if ((rc = read_version(db, &have)))
    return rc;
  for (size_t i = 0; i < tg_pg_migrations_count && migration_version(i) <= max_version; i++) {
    if (have >= migration_version(i))
      continue;
    if ((rc = migrate_one(db, i)))
      return rc;
  }
  return 0;
}

/* The server's notices (CREATE ... IF NOT EXISTS skipping, ...) as debug log lines, instead of
 * libpq's default of writing them to stderr. */
static void on_notice(void *arg, const char *message)
{
  tg_debug("db_notice", "{s:s, s:s}", "db", ((pg_db *)arg)->where, "message", message);
}

static void pg_close(tg_db *base)
{
  pg_db *db = (pg_db *)base;
  db->closing = 1;
  tg_map_free(db->stmts);
  forget_dealloc(db);
  free(db->dealloc);
  PQfinish(db->conn);
  free(db);
}

int tg_db_pg_open(tg_db **out, const char *uri, int max_version)
{
  /* connect_timeout first: a value in the URI itself overrides it (expand_dbname). */
  static const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname",
                                     NULL};
  const char *values[] = {"10", "toolgate", uri, NULL};
  pg_db *db;
  int rc;

  *out = NULL;
  db = calloc(1, sizeof *db);
  if (!db || !(db->stmts = tg_map_new(CACHE_SLOTS, free_stmt))) {
    free(db);
    return TG_ENOMEM;
  }
  db->base.ops = &pg_ops;
  db->backoff_ms = BACKOFF_MIN_MS;
  tg_db_describe(uri, db->where, sizeof db->where);
  db->conn = PQconnectdbParams(keys, values, 1);
  if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
    tg_error("db_open_failed", "{s:s, s:s}", "db", db->where, "message",
             db->conn ? PQerrorMessage(db->conn) : "out of memory");
    rc = db->conn ? TG_EIO : TG_ENOMEM;
    pg_close(&db->base);
    return rc;
  }
  PQsetNoticeProcessor(db->conn, on_notice, db);
  if ((rc = session_setup(db)) || (rc = migrate(db, max_version))) {
    pg_close(&db->base);
    return rc;
  }
  *out = &db->base;
  return 0;
}

static const tg_db_ops pg_ops = {
    .dialect = TG_DB_PG,
    .close = pg_close,
    .schema_version = pg_schema_version,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .bind_null = pg_bind_null,
    .bind_blob = pg_bind_blob,
    .step = pg_step,
    .column_count = pg_column_count,
    .column_name = pg_column_name,
    .column_type = pg_column_type,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_text = pg_column_text,
    .column_blob = pg_column_blob,
    .column_bytes = pg_column_bytes,
    .changes = pg_changes,
    .reset = pg_reset,
};
