/*
 * tg_pg_listen: a LISTEN connection on the loop (see tg_pg_listen.h for the contract).
 *
 * States: IDLE (no connection; the retry timer may be armed), CONNECTING (PQconnectPoll
 * steps, each on the readiness libpq asked for), LISTENING (the LISTEN command sent, its
 * result not read yet), READY (notifications arrive). Any failure goes back to IDLE through
 * lose(), which closes the poll handle before PQfinish closes the socket, as uv_poll requires.
 *
 * libpq may change the socket between PQconnectPoll calls (one per address tried), and a
 * uv_poll handle is bound to one descriptor: each descriptor gets its own heap-allocated
 * handle, freed in its close callback. l itself is freed when its last handle has closed.
 */
#include "tg_pg_listen.h"

#include "tg_db_uri.h"
#include "tg_err.h"
#include "tg_log.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IDLE, CONNECTING, LISTENING, READY };

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 5000

struct tg_pg_listen {
  uv_loop_t *loop;
  char *uri;
  char command[96]; /* LISTEN "<channel>" */
  tg_pg_listen_cb cb;
  void *arg;
  PGconn *conn;
  int state;
  uv_poll_t *poll; /* watching poll_fd, or NULL */
  int poll_fd;
  uv_timer_t retry;
  uint64_t backoff_ms;
  unsigned long count;
  int handles; /* open uv handles: the retry timer and any polls still closing */
  int closing;
  char where[160]; /* host:port/dbname, for logs: never the password */
};

static void on_poll(uv_poll_t *h, int status, int events);
static void open_conn(tg_pg_listen *l);

static void maybe_free(tg_pg_listen *l)
{
  if (l->closing && l->handles == 0) {
    free(l->uri);
    free(l);
  }
}

static void on_handle_closed(uv_handle_t *h)
{
  tg_pg_listen *l = h->data;
  if (h != (uv_handle_t *)&l->retry)
    free(h);
  l->handles--;
  maybe_free(l);
}

static void drop_poll(tg_pg_listen *l)
{
  if (!l->poll)
    return;
  uv_close((uv_handle_t *)l->poll, on_handle_closed); /* stops watching the descriptor now */
  l->poll = NULL;
  l->poll_fd = -1;
}

/* Watches the connection's current socket for events; 0 or TG_E*. */
static int watch(tg_pg_listen *l, int events)
{
  int fd = PQsocket(l->conn);
  if (fd < 0)
    return TG_EIO;
  if (l->poll && l->poll_fd != fd)
    drop_poll(l);
  if (!l->poll) {
    uv_poll_t *p = malloc(sizeof *p);
    if (!p)
      return TG_ENOMEM;
    if (uv_poll_init_socket(l->loop, p, fd) != 0) {
      free(p);
      return TG_EIO;
    }
    p->data = l;
    l->handles++;
    l->poll = p;
    l->poll_fd = fd;
  }
  return uv_poll_start(l->poll, events, on_poll) == 0 ? 0 : TG_EIO;
}

static void on_retry(uv_timer_t *t)
{
  open_conn(t->data);
}

/* Drops the connection and schedules the next attempt. */
static void lose(tg_pg_listen *l, const char *why)
{
  char msg[256] = "";
  if (l->conn) {
    const char *e = PQerrorMessage(l->conn);
    size_t n;
    size_t i;
    snprintf(msg, sizeof msg, "%s", e ? e : "");
    for (i = 0; msg[i]; i++) /* libpq's messages span lines; a log line must not */
      if (msg[i] == '\n' || msg[i] == '\t')
        msg[i] = ' ';
    n = strlen(msg);
    while (n && msg[n - 1] == ' ')
      msg[--n] = '\0';
  }
  drop_poll(l);
  if (l->conn)
    PQfinish(l->conn);
  l->conn = NULL;
  l->state = IDLE;
  tg_warn("pg_listen_lost", "{s:s, s:s, s:s, s:I}", "where", l->where, "why", why, "error", msg,
          "retry_ms", (json_int_t)l->backoff_ms);
  uv_timer_start(&l->retry, on_retry, l->backoff_ms, 0);
  l->backoff_ms = l->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : l->backoff_ms * 2;
}

static void step_connect(tg_pg_listen *l)
{
  int f;
  switch (PQconnectPoll(l->conn)) {
  case PGRES_POLLING_READING:
    if (watch(l, UV_READABLE))
      lose(l, "watch");
    return;
  case PGRES_POLLING_WRITING:
    if (watch(l, UV_WRITABLE))
      lose(l, "watch");
    return;
  case PGRES_POLLING_OK:
    break;
  default:
    lose(l, "connect");
    return;
  }
  if (PQsetnonblocking(l->conn, 1) != 0 || !PQsendQuery(l->conn, l->command) ||
      (f = PQflush(l->conn)) < 0) {
    lose(l, "listen");
    return;
  }
  l->state = LISTENING;
  if (watch(l, f ? UV_READABLE | UV_WRITABLE : UV_READABLE))
    lose(l, "watch");
}

/* Reads what arrived: the LISTEN's result, then notifications. Returns nonzero when l was
 * closed by the callback or the connection was lost (the caller returns at once). */
static int read_input(tg_pg_listen *l)
{
  PGnotify *n;
  PGresult *res;
  if (!PQconsumeInput(l->conn)) {
    lose(l, "read");
    return 1;
  }
  while (!PQisBusy(l->conn) && (res = PQgetResult(l->conn))) {
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
      lose(l, "listen");
      return 1;
    }
    if (l->state == LISTENING) {
      l->state = READY;
      l->backoff_ms = RETRY_FIRST_MS;
      tg_info("pg_listen_ready", "{s:s}", "where", l->where);
      l->cb(l->arg, NULL); /* anything sent while we were away is the poll's to find */
      if (l->closing)
        return 1;
    }
  }
  while (l->conn && (n = PQnotifies(l->conn))) {
    l->count++;
    l->cb(l->arg, n->extra ? n->extra : "");
    PQfreemem(n);
    if (l->closing)
      return 1;
  }
  if (PQstatus(l->conn) == CONNECTION_BAD) {
    lose(l, "closed");
    return 1;
  }
  return 0;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
  tg_pg_listen *l = h->data;
  if (l->closing || h != l->poll)
    return;
  if (l->state == CONNECTING) {
    step_connect(l); /* on an error too: libpq reads the socket's error and says what failed */
    return;
  }
  if (status < 0) {
    lose(l, uv_err_name(status));
    return;
  }
  if (events & UV_WRITABLE) {
    int f = PQflush(l->conn);
    if (f < 0 || watch(l, f ? UV_READABLE | UV_WRITABLE : UV_READABLE)) {
      lose(l, "write");
      return;
    }
  }
  if (events & UV_READABLE)
    read_input(l);
}

/* The server's notices (and libpq's own, such as the FATAL of a terminated backend, whose
 * reason reaches the log through lose()) would go to stderr: not a log line of ours. */
static void quiet(void *arg, const char *message)
{
  (void)arg;
  (void)message;
}

static void open_conn(tg_pg_listen *l)
{
  if (l->closing)
    return;
  /* A numeric host (127.0.0.1) needs no name lookup; with a host name, PQconnectStart
   * resolves it before returning (libpq 34.1), a short wait on the loop once per attempt. */
  l->conn = PQconnectStart(l->uri);
  if (!l->conn || PQstatus(l->conn) == CONNECTION_BAD) {
    lose(l, "connect");
    return;
  }
  PQsetNoticeProcessor(l->conn, quiet, NULL);
  l->state = CONNECTING;
  if (watch(l, UV_WRITABLE)) /* libpq 34.1: begin as if PQconnectPoll said WRITING */
    lose(l, "watch");
}

static int valid_channel(const char *c)
{
  size_t i, n = c ? strlen(c) : 0;
  if (n == 0 || n > 63)
    return 0;
  for (i = 0; i < n; i++)
    if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= '0' && c[i] <= '9') || c[i] == '_'))
      return 0;
  return 1;
}

int tg_pg_listen_start(tg_pg_listen **out, uv_loop_t *loop, const char *uri, const char *channel,
                       tg_pg_listen_cb cb, void *arg)
{
  tg_pg_listen *l;
  *out = NULL;
  if (!uri || !cb || !valid_channel(channel))
    return TG_EINVAL;
  if (!(l = calloc(1, sizeof *l)) || !(l->uri = strdup(uri))) {
    free(l);
    return TG_ENOMEM;
  }
  l->loop = loop;
  l->cb = cb;
  l->arg = arg;
  l->poll_fd = -1;
  l->backoff_ms = RETRY_FIRST_MS;
  snprintf(l->command, sizeof l->command, "LISTEN \"%s\"", channel);
  tg_db_describe(uri, l->where, sizeof l->where);
  uv_timer_init(loop, &l->retry);
  l->retry.data = l;
  l->handles = 1;
  *out = l;
  open_conn(l);
  return 0;
}

unsigned long tg_pg_listen_count(const tg_pg_listen *l)
{
  return l->count;
}

int tg_pg_listen_ready(const tg_pg_listen *l)
{
  return l->state == READY;
}

void tg_pg_listen_close(tg_pg_listen *l)
{
  if (!l || l->closing)
    return;
  l->closing = 1;
  drop_poll(l);
  if (l->conn)
    PQfinish(l->conn);
  l->conn = NULL;
  l->state = IDLE;
  uv_close((uv_handle_t *)&l->retry, on_handle_closed);
}
