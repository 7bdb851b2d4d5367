/*
 * tg_db_stmt: the raw SQLite side of a tg_db, for the modules that own tables.
 *
 * Only the table-owner modules in common/ (tg_store_*.c, tg_sealed.c) and tg_db's own internals
 * (tg_db.c, tg_dbq.c) include this header; routes and worker steps call those modules, never
 * SQLite. Statements handed out here belong to the tg_db's statement cache (see tg_db.h for the
 * connection's threading rule).
 */
#ifndef TG_DB_STMT_H
#define TG_DB_STMT_H

#include "tg_db.h"

#include <sqlite3.h>

/* The connection's SQLite handle (owned by db; valid until tg_db_close). */
sqlite3 *tg_db_handle(tg_db *db);

/* A cached prepared statement for sql (reset and cleared, ready to bind), or NULL on error
 * (logged). Cached by the address of sql (string literals are the rule) and checked against its
 * text on every hit. Owned by db; do not finalize; valid until the next tg_db_prepare may evict
 * it, which needs more than the cache's 96 other statements to be prepared in between, or
 * until other text is prepared from the same buffer. For loops the helpers of tg_db.h do not
 * cover. */
sqlite3_stmt *tg_db_prepare(tg_db *db, const char *sql);

/* Converts a SQLite result code to TG_E* and logs the message (what: a label, may be NULL) when
 * it is an error other than a constraint violation. */
int tg_db_err(tg_db *db, int sqlite_rc, const char *what);

#endif
