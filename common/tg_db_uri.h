/*
 * tg_db_uri: what may be said of a TOOLGATE_DB value in a log line.
 *
 * A SQLite path is logged as it is. A PostgreSQL URI (tg_db_is_pg_uri) may carry a user name
 * and a password, in its authority or its query (?password=): only host, port and database name
 * are ever logged (docs/design-postgres.md section 6). Parsed with libpq's PQconninfoParse, so
 * every form libpq accepts is understood the same way here.
 */
#ifndef TG_DB_URI_H
#define TG_DB_URI_H

#include <stddef.h>

/* Writes the loggable form of path into out (NUL-terminated, truncated to outlen): the path
 * itself for SQLite, "host:port/dbname" for PostgreSQL ("postgresql" when the URI does not
 * parse). */
void tg_db_describe(const char *path, char *out, size_t outlen);

#endif
