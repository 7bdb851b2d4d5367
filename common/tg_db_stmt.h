/*
 * tg_db_stmt: cached prepared statements of a tg_db, for the modules that own tables.
 *
 * Only the table-owner modules in common/ (tg_store_*.c, tg_sealed.c) and tg_db's own files
 * include this header; routes and worker steps call those modules, never a statement. The
 * interface is the same on both backends (tg_db.h): on SQLite each call is a thin call to the
 * matching sqlite3_* function; on PostgreSQL the statement collects its parameters, runs
 * PQexecPrepared at the first tg_stmt_step and then walks the result's rows.
 *
 * Lifecycle: tg_stmt_prepare hands out a statement of the connection's cache, reset and with
 * every parameter NULL; bind (parameters are numbered from 1, as ?N in the text), step until
 * TG_STMT_DONE (or stop early), read columns while the last step returned TG_STMT_ROW, then
 * tg_stmt_reset. Statements belong to the tg_db (see tg_db.h for its threading rule): never
 * freed by the caller, valid until a later tg_stmt_prepare evicts them from the cache (more
 * than the cache's 96 other statements prepared in between) or until other text is prepared
 * from the same buffer.
 */
#ifndef TG_DB_STMT_H
#define TG_DB_STMT_H

#include "tg_db.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tg_stmt tg_stmt;

/* What tg_stmt_step returns besides a TG_E* code. */
enum { TG_STMT_DONE = 0, TG_STMT_ROW = 1 };

/* The type of a column's value in the current row. */
typedef enum {
  TG_COL_NULL = 0,
  TG_COL_INTEGER, /* SQLite INTEGER; PostgreSQL int2/int4/int8 and bool (0/1) */
  TG_COL_REAL,    /* SQLite REAL; PostgreSQL float4/float8/numeric */
  TG_COL_TEXT,    /* SQLite TEXT; PostgreSQL text, varchar, json and any other type as text */
  TG_COL_BLOB     /* SQLite BLOB; PostgreSQL bytea */
} tg_col_type;

/* A cached prepared statement for sql (reset, every parameter NULL), or NULL on error (logged).
 * Cached by the address of sql (string literals are the rule) and checked against its text on
 * every hit. */
tg_stmt *tg_stmt_prepare(tg_db *db, const char *sql);

/* Binds parameter i (from 1). Text and blobs are NOT copied: the bytes must stay valid until the
 * statement is stepped for the last time or reset. A NULL s or p binds NULL. 0, or TG_EINVAL
 * (i out of range, a blob over 2 GB) / TG_ENOMEM / TG_EDB. */
int tg_stmt_bind_text(tg_stmt *st, int i, const char *s);
int tg_stmt_bind_int64(tg_stmt *st, int i, int64_t v);
int tg_stmt_bind_null(tg_stmt *st, int i);
int tg_stmt_bind_blob(tg_stmt *st, int i, const void *p, size_t n);

/* Runs the statement or moves to its next row: TG_STMT_ROW, TG_STMT_DONE, or a TG_E* code
 * (TG_EBUSY, TG_ECONFLICT, TG_ETIMEDOUT, TG_EIO, TG_EDB; logged unless TG_ECONFLICT). */
int tg_stmt_step(tg_stmt *st);

/* Column reads of the current row (i from 0). Text and blob pointers stay valid until the next
 * step or reset; text is NUL-terminated; NULL reads as 0, NULL and 0 bytes. */
tg_col_type tg_stmt_column_type(tg_stmt *st, int i);
int64_t tg_stmt_column_int64(tg_stmt *st, int i);
const char *tg_stmt_column_text(tg_stmt *st, int i);
const void *tg_stmt_column_blob(tg_stmt *st, int i);
size_t tg_stmt_column_bytes(tg_stmt *st, int i); /* of the text or blob */

/* Rows changed by the statement's last completed run (INSERT/UPDATE/DELETE). */
int64_t tg_stmt_changes(tg_stmt *st);

/* Ends the statement's current run (its binds stay until the next tg_stmt_prepare). NULL-safe. */
void tg_stmt_reset(tg_stmt *st);

#endif
