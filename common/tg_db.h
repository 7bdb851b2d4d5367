/*
 * tg_db: the store's connection: open (SQLite or PostgreSQL, by the shape of the path), apply
 * the compiled-in migrations, transactions, and small helpers that bind by a type string and
 * read rows as JSON. The same calls and the same TG_E* codes on both backends (tg_db.c
 * dispatches; tg_db_sqlite.c and tg_db_pg.c implement).
 *
 * A tg_db is one connection and must be used by one thread at a time (the gateway gives each
 * job a connection from tg_dbq; a worker's jobs do the same). Driver codes are converted at the
 * backend: busy/locked (SQLite) and serialization failure/deadlock (PostgreSQL 40001/40P01) →
 * TG_EBUSY, constraint violations → TG_ECONFLICT, a lost PostgreSQL connection → TG_EIO, a
 * statement timeout → TG_ETIMEDOUT, others → TG_EDB, with the driver's message logged at that
 * boundary. Prepared statements are not part of this interface: the modules that own tables get
 * them from tg_db_stmt.h.
 *
 * Binding type strings (one char per parameter, in order):
 *   's' const char * (NULL binds NULL)     'i' int           'I' int64_t (long long)
 *   'n' NULL (consumes no argument)        'j' json_t * (bound as compact JSON text, NULL → NULL)
 *   'b' const void *, size_t bytes (two arguments: a BLOB; a NULL pointer binds NULL)
 * Bound text and blobs are read during the call only.
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
 * Opens the database at path and applies pending migrations, each exactly once even when several
 * processes start at once.
 * SQLite (a file path, created if needed): journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON
 * and a busy timeout of busy_timeout_ms; each migration in one IMMEDIATE transaction with foreign
 * keys off and PRAGMA foreign_key_check required empty before its COMMIT.
 * PostgreSQL (a libpq URI; busy_timeout_ms unused): per-connection statement_timeout and
 * idle_in_transaction_session_timeout (tg_db_set_statement_timeout_ms); schema/pg/NNN_*.sql
 * each in one transaction under an advisory lock, recorded in the table schema_version.
 * Errors: TG_EDB (with the reason logged), TG_EBUSY, TG_EIO (server unreachable), TG_ENOMEM.
 */
int tg_db_open(tg_db **out, const char *path, int busy_timeout_ms);
/* Like tg_db_open but applies migrations only up to schema version max_version (tests of the
 * migrations build an older database with it). On PostgreSQL, whose series starts at its
 * baseline (schema/pg/008_baseline.sql), a max_version below the baseline is TG_EINVAL. */
int tg_db_open_version(tg_db **out, const char *path, int busy_timeout_ms, int max_version);
void tg_db_close(tg_db *db); /* NULL-safe; finalizes cached statements */

/* The statement timeout of PostgreSQL connections opened from now on, in ms (also their
 * idle_in_transaction_session_timeout; 0: none). Process-wide, default 5000
 * (TOOLGATE_DB_STATEMENT_TIMEOUT_MS); SQLite has no such setting. Thread-safe. */
void tg_db_set_statement_timeout_ms(int ms);

/* The schema version applied (SQLite: PRAGMA user_version; PostgreSQL: schema_version), or -1
 * when it cannot be read. */
int tg_db_schema_version(tg_db *db);

/* BEGIN [IMMEDIATE] / COMMIT / ROLLBACK (PostgreSQL: plain BEGIN; immediate is ignored, row
 * locks take the write lock's place). rollback is safe when no transaction is open. */
int tg_db_begin(tg_db *db, int immediate);
int tg_db_commit(tg_db *db);
void tg_db_rollback(tg_db *db);
/* Ends the transaction by the outcome of its work: COMMIT when rc is 0 (returning its result),
 * else ROLLBACK and rc. */
int tg_db_end(tg_db *db, int rc);

/* Runs one statement with bound parameters (see types above). *changes (may be NULL) gets the
 * rows it inserted, updated or deleted. */
int tg_db_exec(tg_db *db, int *changes, const char *sql, const char *types, ...);

/* Runs a query; returns a new JSON array with one object per row (column name → value;
 * INTEGER → integer, REAL → real, TEXT → string, NULL → null, BLOB → omitted; on PostgreSQL by
 * the column's type: int2/4/8 and bool → integer, float4/8 and numeric → real, bytea omitted,
 * anything else → string) or NULL on error
 * (then *err, if given, has the TG_E* code). Columns whose name ends in "_json" are parsed as
 * JSON and stored under the name without the suffix (invalid JSON stays a string). */
json_t *tg_db_query(tg_db *db, int *err, const char *sql, const char *types, ...);

/* Like tg_db_query but returns the first row only: a new object, or NULL when no row
 * (*err = TG_ENOTFOUND) or on error. */
json_t *tg_db_query_one(tg_db *db, int *err, const char *sql, const char *types, ...);

#endif
