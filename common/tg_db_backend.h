/*
 * tg_db_backend: the contract between tg_db.c (the public functions) and the two backends,
 * tg_db_sqlite.c and tg_db_pg.c. Private to those three files.
 *
 * A connection is a backend's struct whose first member is struct tg_db (so a tg_db * is also a
 * pointer to it); a statement likewise starts with struct tg_stmt. Each points at its backend's
 * one static tg_db_ops table. tg_db.c does everything that is the same on both backends on top
 * of these calls: the bind type strings, the rows as JSON (the _json rule), tg_db_exec/query,
 * tg_db_end. Errors come back as TG_E* codes, already logged by the backend (constraint
 * violations excepted).
 */
#ifndef TG_DB_BACKEND_H
#define TG_DB_BACKEND_H

#include "tg_db_stmt.h"

typedef struct tg_db_ops {
  tg_db_dialect_t dialect;
  void (*close)(tg_db *db);
  int (*schema_version)(tg_db *db);
  int (*begin)(tg_db *db, int immediate);
  int (*commit)(tg_db *db);
  void (*rollback)(tg_db *db);
  tg_stmt *(*prepare)(tg_db *db, const char *sql);
  /* s is not NULL; n its length; free_fn: NULL when s stays valid (not copied), else the
   * statement owns s and frees it with free_fn once done with it (also on failure). */
  int (*bind_text)(tg_stmt *st, int i, const char *s, size_t n, void (*free_fn)(void *));
  int (*bind_int64)(tg_stmt *st, int i, int64_t v);
  int (*bind_null)(tg_stmt *st, int i);
  int (*bind_blob)(tg_stmt *st, int i, const void *p, size_t n); /* p not NULL, not copied */
  int (*step)(tg_stmt *st);
  int (*column_count)(tg_stmt *st);
  const char *(*column_name)(tg_stmt *st, int i);
  tg_col_type (*column_type)(tg_stmt *st, int i);
  int64_t (*column_int64)(tg_stmt *st, int i);
  double (*column_double)(tg_stmt *st, int i);
  const char *(*column_text)(tg_stmt *st, int i);
  const void *(*column_blob)(tg_stmt *st, int i);
  size_t (*column_bytes)(tg_stmt *st, int i);
  int64_t (*changes)(tg_stmt *st);
  void (*reset)(tg_stmt *st);
} tg_db_ops;

struct tg_db {
  const tg_db_ops *ops;
};

struct tg_stmt {
  const tg_db_ops *ops;
};

/* The backends' openers (tg_db_open_version's contract). */
int tg_db_sqlite_open(tg_db **out, const char *path, int busy_timeout_ms, int max_version);
int tg_db_pg_open(tg_db **out, const char *uri, int max_version);

#endif
