/*
 * tg_sql: the fragments of a statement that SQLite and PostgreSQL spell differently, so that a
 * statement is written once and expanded for each dialect.
 *
 * A statement with such a fragment is a function-like macro of a dialect D that spells the
 * fragment D##_HEX(...), D##_JSON_TEXT(...), D##_FOR_UPDATE or D##_SKIP_LOCKED; TG_SQL_OF(db, STMT)
 * expands it as TG_SQL(db, STMT(TG_SQLITE), STMT(TG_PG)): two string literals, one per dialect, as
 * TG_SQL wants (tests/pg/check_sql.py prepares each on its backend). Such macros sit between
 * clang-format off/on, one fragment call a line (clang-format would re-wrap the strings around a
 * call). Everything else in a statement is written in the portable subset
 * (docs/design-postgres.md section 1):
 *   - `a IS [NOT] DISTINCT FROM b`, not SQLite's `a IS [NOT] b`;
 *   - `CAST(?N AS TEXT) IS NULL` where a parameter's only use would leave its type unknown;
 *   - `CAST(<condition> AS INTEGER)` to add a condition to a number;
 *   - in ON CONFLICT DO UPDATE, the existing row's columns qualified by the table's name;
 *   - `NULLS FIRST` where SQLite's order (NULL before any value) matters.
 */
#ifndef TG_SQL_H
#define TG_SQL_H

#include "tg_db.h"

/* The two texts of STMT (a macro of the dialect) for db's backend. */
#define TG_SQL_OF(db, STMT) TG_SQL(db, STMT(TG_SQLITE), STMT(TG_PG))

/* A BLOB/BYTEA column's bytes as hex text (rows as JSON omit bytes): SQLite's hex() is upper
 * case, PostgreSQL's encode(..., 'hex') lower case; tg_sealed_open_hex reads both. */
#define TG_SQLITE_HEX(col) "hex(" col ")"
#define TG_PG_HEX(col) "encode(" col ", 'hex')"

/* The member key (a name, no dots) of the JSON text in column doc, as SQLite's json_extract
 * gives a string or an object/array (text, NULL when absent). Numbers come back as text on
 * PostgreSQL: use it for strings, objects and arrays only. */
#define TG_SQLITE_JSON_TEXT(doc, key) "json_extract(" doc ", '$." key "')"
#define TG_PG_JSON_TEXT(doc, key) "(" doc "::json->>'" key "')"

/* The end of a SELECT that locks the rows it reads until the transaction ends: PostgreSQL's row
 * lock where SQLite's BEGIN IMMEDIATE already holds the database's write lock. */
#define TG_SQLITE_FOR_UPDATE ""
#define TG_PG_FOR_UPDATE " FOR UPDATE"

/* The end of a subquery that picks a row to write (LIMIT n): on PostgreSQL it locks the row and
 * skips rows other transactions hold (a queue's claim); SQLite has one writer at a time. */
#define TG_SQLITE_SKIP_LOCKED ""
#define TG_PG_SKIP_LOCKED " FOR UPDATE SKIP LOCKED"

#endif
