/*
 * tg_db: the public face of the store: picks the backend at open, forwards each call through
 * the connection's tg_db_ops table (tg_db_backend.h), and does once, for both backends, what
 * does not depend on the driver: the bind type strings, rows as JSON objects (with the _json
 * rule), and tg_db_exec / tg_db_query / tg_db_end on top of the statement calls.
 *
 * Invariant: a statement handed out by a backend is used here between one prepare and one
 * reset within a single call, so the statement caches never see a statement in use twice.
 */
#include "tg_db_backend.h"
#include "tg_err.h"
#include "tg_json.h"
#include "tg_log.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tg_db_dialect_t tg_db_dialect(const tg_db *db)
{
  return db->ops->dialect;
}

int tg_db_is_pg_uri(const char *path)
{
  return path && (!strncmp(path, "postgresql://", 13) || !strncmp(path, "postgres://", 11));
}

int tg_db_open(tg_db **out, const char *path, int busy_timeout_ms)
{
  return tg_db_open_version(out, path, busy_timeout_ms, INT_MAX);
}

int tg_db_open_version(tg_db **out, const char *path, int busy_timeout_ms, int max_version)
{
  if (tg_db_is_pg_uri(path))
    return tg_db_pg_open(out, path, max_version);
  return tg_db_sqlite_open(out, path, busy_timeout_ms, max_version);
}

void tg_db_close(tg_db *db)
{
  if (db)
    db->ops->close(db);
}

int tg_db_schema_version(tg_db *db)
{
  return db->ops->schema_version(db);
}

int tg_db_begin(tg_db *db, int immediate)
{
  return db->ops->begin(db, immediate);
}

int tg_db_commit(tg_db *db)
{
  return db->ops->commit(db);
}

void tg_db_rollback(tg_db *db)
{
  db->ops->rollback(db);
}

int tg_db_end(tg_db *db, int rc)
{
  if (rc == 0)
    return tg_db_commit(db);
  tg_db_rollback(db);
  return rc;
}

/* ---------------------------------------------------------------- statements */

tg_stmt *tg_stmt_prepare(tg_db *db, const char *sql)
{
  return db->ops->prepare(db, sql);
}

int tg_stmt_bind_text(tg_stmt *st, int i, const char *s)
{
  return s ? st->ops->bind_text(st, i, s, strlen(s), NULL) : st->ops->bind_null(st, i);
}

int tg_stmt_bind_int64(tg_stmt *st, int i, int64_t v)
{
  return st->ops->bind_int64(st, i, v);
}

int tg_stmt_bind_null(tg_stmt *st, int i)
{
  return st->ops->bind_null(st, i);
}

int tg_stmt_bind_blob(tg_stmt *st, int i, const void *p, size_t n)
{
  return p ? st->ops->bind_blob(st, i, p, n) : st->ops->bind_null(st, i);
}

int tg_stmt_step(tg_stmt *st)
{
  return st->ops->step(st);
}

tg_col_type tg_stmt_column_type(tg_stmt *st, int i)
{
  return st->ops->column_type(st, i);
}

int64_t tg_stmt_column_int64(tg_stmt *st, int i)
{
  return st->ops->column_int64(st, i);
}

const char *tg_stmt_column_text(tg_stmt *st, int i)
{
  return st->ops->column_text(st, i);
}

const void *tg_stmt_column_blob(tg_stmt *st, int i)
{
  return st->ops->column_blob(st, i);
}

size_t tg_stmt_column_bytes(tg_stmt *st, int i)
{
  return st->ops->column_bytes(st, i);
}

int64_t tg_stmt_changes(tg_stmt *st)
{
  return st->ops->changes(st);
}

void tg_stmt_reset(tg_stmt *st)
{
  if (st)
    st->ops->reset(st);
}

/* ---------------------------------------------------------------- typed helpers */

static int bind_args(tg_stmt *st, const char *types, va_list ap)
{
  int idx = 1, rc = 0;
  for (const char *t = types ? types : ""; *t && rc == 0; t++, idx++) {
    switch (*t) {
    case 's':
      rc = tg_stmt_bind_text(st, idx, va_arg(ap, const char *));
      break;
    case 'i':
      rc = st->ops->bind_int64(st, idx, va_arg(ap, int));
      break;
    case 'I':
      rc = st->ops->bind_int64(st, idx, (int64_t)va_arg(ap, long long));
      break;
    case 'n':
      rc = st->ops->bind_null(st, idx);
      break;
    case 'b': {
      const void *p = va_arg(ap, const void *);
      size_t n = va_arg(ap, size_t);
      rc = tg_stmt_bind_blob(st, idx, p, n);
      break;
    }
    case 'j': {
      json_t *j = va_arg(ap, json_t *);
      size_t n = 0;
      char *text;
      if (!j) {
        rc = st->ops->bind_null(st, idx);
        break;
      }
      if (!(text = tg_json_dumps(j, &n))) /* yajl_gen: the bytes of json_dumps, faster */
        return TG_ENOMEM;
      rc = st->ops->bind_text(st, idx, text, n, free); /* the statement owns text */
      break;
    }
    default:
      tg_error("db_bad_type", "{s:s}", "types", types);
      return TG_EINVAL;
    }
  }
  return rc;
}

int tg_db_exec(tg_db *db, int *changes, const char *sql, const char *types, ...)
{
  tg_stmt *st = tg_stmt_prepare(db, sql);
  va_list ap;
  int rc;

  if (changes)
    *changes = 0;
  if (!st)
    return TG_EDB;
  va_start(ap, types);
  rc = bind_args(st, types, ap);
  va_end(ap);
  if (rc) {
    tg_stmt_reset(st);
    return rc;
  }
  while ((rc = tg_stmt_step(st)) == TG_STMT_ROW)
    ;
  if (rc == TG_STMT_DONE && changes)
    *changes = (int)tg_stmt_changes(st);
  tg_stmt_reset(st);
  return rc;
}

static int is_json_name(const char *name, size_t len)
{
  return len > 5 && strcmp(name + len - 5, "_json") == 0;
}

static json_t *row_object(tg_stmt *st)
{
  json_t *row = json_object();
  int n = st->ops->column_count(st);
  for (int i = 0; row && i < n; i++) {
    const char *name = st->ops->column_name(st, i);
    size_t len = strlen(name);
    json_t *v = NULL;
    switch (st->ops->column_type(st, i)) {
    case TG_COL_INTEGER:
      v = json_integer(st->ops->column_int64(st, i));
      break;
    case TG_COL_REAL:
      v = json_real(st->ops->column_double(st, i));
      break;
    case TG_COL_TEXT: {
      const char *text = st->ops->column_text(st, i);
      if (is_json_name(name, len)) {
        v = json_loads(text, JSON_DECODE_ANY, NULL);
        if (!v)
          v = json_string(text);
      } else {
        v = json_stringn(text, st->ops->column_bytes(st, i));
      }
      break;
    }
    case TG_COL_NULL:
      v = json_null();
      break;
    default:
      continue; /* BLOBs (ciphertexts) never leave the database this way */
    }
    if (is_json_name(name, len)) {
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
  tg_stmt *st = tg_stmt_prepare(db, sql);
  json_t *rows;
  int rc;

  if (err)
    *err = 0;
  if (!st) {
    if (err)
      *err = TG_EDB;
    return NULL;
  }
  if ((rc = bind_args(st, types, ap))) {
    tg_stmt_reset(st);
    if (err)
      *err = rc;
    return NULL;
  }
  rows = json_array();
  while ((rc = tg_stmt_step(st)) == TG_STMT_ROW) {
    json_array_append_new(rows, row_object(st));
    if (first_only)
      break;
  }
  tg_stmt_reset(st);
  if (rc < 0) {
    json_decref(rows);
    if (err)
      *err = rc;
    return NULL;
  }
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
