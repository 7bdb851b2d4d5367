/*
 * tg_db_sqlite: what only SQLite has, for the code that needs the driver itself: tg_dbq's WAL
 * hook and checkpoint jobs, and the SQLite-only tests (migrations, schema dumps). Everything else
 * goes through tg_db.h and tg_db_stmt.h.
 */
#ifndef TG_DB_SQLITE_H
#define TG_DB_SQLITE_H

#include "tg_db.h"

#include <sqlite3.h>

/* The connection's SQLite handle (owned by db; valid until tg_db_close), or NULL when db is not
 * a SQLite connection (tg_db_dialect). */
sqlite3 *tg_db_sqlite_handle(tg_db *db);

/* Converts a SQLite result code to TG_E* and logs the message (what: a label, may be NULL) when
 * it is an error other than a constraint violation. */
int tg_db_sqlite_err(tg_db *db, int sqlite_rc, const char *what);

#endif
