/*
 * tg_pg_listen: one PostgreSQL connection that LISTENs on a channel, driven by a libuv loop.
 *
 * The worker's wake-up on PostgreSQL (docs/design-postgres.md section 4): admission ends its
 * transaction with NOTIFY, which the server delivers at COMMIT; a worker holding this
 * connection claims at once instead of at its next poll. The connection is outside the
 * database pool: it is opened with libpq's non-blocking calls (PQconnectStart /
 * PQconnectPoll), its socket watched with uv_poll, and notifications read with
 * PQconsumeInput / PQnotifies on the loop, so the loop never waits on the server.
 *
 * Losing the connection is not an error the caller sees: it is logged, reopened with back-off
 * (100 ms doubling to 5 s), and the callback is called once when it is back (a notification
 * sent while it was gone is lost; the caller's poll is the fallback for exactly that).
 * Sources: libpq "Asynchronous Notification" (34.9) and "Connecting" (PQconnectStartParams,
 * 34.1), PostgreSQL 15 documentation.
 *
 * The URI may carry a password: it is never logged (only host, port and database name are).
 * Loop thread only.
 */
#ifndef TG_PG_LISTEN_H
#define TG_PG_LISTEN_H

#include <uv.h>

typedef struct tg_pg_listen tg_pg_listen;

/* Called on the loop for each notification on the channel (payload: its text, "" when none;
 * valid during the call), and with payload NULL once after a reconnection. */
typedef void (*tg_pg_listen_cb)(void *arg, const char *payload);

/*
 * Starts listening on channel (an SQL identifier: letters, digits and '_', at most 63 bytes)
 * at the PostgreSQL database uri (a libpq connection URI). Returns 0 and *out, or TG_EINVAL
 * (bad channel), TG_ENOMEM. Connection failures are retried, never returned. The caller owns
 * *out until tg_pg_listen_close.
 */
int tg_pg_listen_start(tg_pg_listen **out, uv_loop_t *loop, const char *uri, const char *channel,
                       tg_pg_listen_cb cb, void *arg);

/* Notifications received so far (for tests and metrics). */
unsigned long tg_pg_listen_count(const tg_pg_listen *l);

/* 1 while the LISTEN is in effect on an open connection. */
int tg_pg_listen_ready(const tg_pg_listen *l);

/* Closes the connection and frees l once its handles are closed; the callback is not called
 * again. NULL-safe. */
void tg_pg_listen_close(tg_pg_listen *l);

#endif
