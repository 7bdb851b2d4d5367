/*
 * tg_db: SQLite wrapper: open with WAL + foreign keys + busy timeout, apply the compiled-in
 * migrations (schema/NNN_*.sql, PRAGMA user_version), cached prepared statements, transactions,
 * and small helpers that bind by a type string and read rows as JSON.
 *
 * A tg_db is one connection and must be used by one thread at a time (the gateway gives each
 * job a connection from tg_dbq; a worker's jobs do the same). SQLITE_* codes are converted here:
 * SQLITE_BUSY/LOCKED → TG_EBUSY, constraint violations → TG_ECONFLICT, others → TG_EDB, with
 * sqlite3_errmsg logged at this boundary. Raw statements (sqlite3_stmt) are not part of this
 * interface: the modules that own tables get them from tg_db_stmt.h.
 *
 * Binding type strings (one char per parameter, in order):
 *   's' const char * (NULL binds NULL)     'i' int           'I' int64_t (long long)
 *   'n' NULL (consumes no argument)        'j' json_t * (bound as compact JSON text, NULL → NULL)
 *   'b' const void *, size_t bytes (two arguments: a BLOB, copied; a NULL pointer binds NULL)
 */
#ifndef TG_DB_H
#define TG_DB_H

#include <jansson.h>
#include <stdint.h>

typedef struct tg_db tg_db;

/*
 * Backends. tg_db_open chooses by the shape of its path argument (TOOLGATE_DB): a libpq
 * connection URI ("postgresql://..." or "postgres://...") opens PostgreSQL; anything else is a
 * SQLite file path. Statements use SQLite's placeholders (?N, or bare ? numbered left to right);
 * the PostgreSQL backend rewrites them to $N. Where the dialects differ, the owning module
 * writes both texts with TG_SQL (docs/design-postgres.md section 1).
 */
typedef enum { TG_DB_SQLITE = 0, TG_DB_PG = 1 } tg_db_dialect_t;

/* The backend of db. */
tg_db_dialect_t tg_db_dialect(const tg_db *db);

/* One of two statement texts by the backend of db: both are string literals, so the statement
 * caches (keyed by the text's address) keep one entry per dialect. */
#define TG_SQL(db, sqlite_text, pg_text) (tg_db_dialect(db) == TG_DB_PG ? (pg_text) : (sqlite_text))

/* True when path (a TOOLGATE_DB value) names a PostgreSQL database. */
int tg_db_is_pg_uri(const char *path);

/*
 * Opens (creating if needed) the database at path, sets journal_mode=WAL, synchronous=NORMAL,
 * foreign_keys=ON and a busy timeout of busy_timeout_ms, then applies pending migrations in one
 * IMMEDIATE transaction each (safe when several processes start at once), each with foreign
 * keys off and PRAGMA foreign_key_check required empty before its COMMIT. Errors: TG_EDB (with
 * the reason logged), TG_EBUSY, TG_ENOMEM.
 */
int tg_db_open(tg_db **out, const char *path, int busy_timeout_ms);
/* Like tg_db_open but applies migrations only up to schema version max_version (tests of the
 * migrations build an older database with it). */
int tg_db_open_version(tg_db **out, const char *path, int busy_timeout_ms, int max_version);
void tg_db_close(tg_db *db); /* NULL-safe; finalizes cached statements */

/* The schema version applied (PRAGMA user_version). */
int tg_db_schema_version(tg_db *db);

/* BEGIN [IMMEDIATE] / COMMIT / ROLLBACK. rollback is safe when no transaction is open. */
int tg_db_begin(tg_db *db, int immediate);
int tg_db_commit(tg_db *db);
void tg_db_rollback(tg_db *db);
/* Ends the transaction by the outcome of its work: COMMIT when rc is 0 (returning its result),
 * else ROLLBACK and rc. */
int tg_db_end(tg_db *db, int rc);

/* Runs one statement with bound parameters (see types above). *changes (may be NULL) gets
 * sqlite3_changes(). */
int tg_db_exec(tg_db *db, int *changes, const char *sql, const char *types, ...);

/* Runs a query; returns a new JSON array with one object per row (column name → value;
 * INTEGER → integer, REAL → real, TEXT → string, NULL → null, BLOB → omitted) or NULL on error
 * (then *err, if given, has the TG_E* code). Columns whose name ends in "_json" are parsed as
 * JSON and stored under the name without the suffix (invalid JSON stays a string). */
json_t *tg_db_query(tg_db *db, int *err, const char *sql, const char *types, ...);

/* Like tg_db_query but returns the first row only: a new object, or NULL when no row
 * (*err = TG_ENOTFOUND) or on error. */
json_t *tg_db_query_one(tg_db *db, int *err, const char *sql, const char *types, ...);

#endif
