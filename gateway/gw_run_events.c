/*
 * gw_run_events: GET /api/runs/{id}/events (README "Run events").
 *
 * JSON (default): {"events": [{seq, type, node_id, at, data}], "next_after": seq} for the events
 * after ?after= (default 0), at most ?limit= (1..1000, default 100); next_after is the last seq
 * returned (or ?after when none), to pass as the next ?after.
 *
 * SSE (Accept: text/event-stream): one event per run_events row, "id: <seq>", "event: <type>",
 * "data: <the JSON object above>", starting after Last-Event-ID (else ?after, else 0). The
 * stream polls the table off the loop: one tg_dbq job per stream every POLL_MS (never two at
 * once, none while the connection is over its write high-water mark), sends a comment line
 * every KEEPALIVE_MS without events, and ends after the run_finished event, or once the run is
 * in a final status and every event was sent (a run that ended without one: canceled while
 * waiting, a review expired). At most STREAMS_PER_USER streams per user (429 past it). Another
 * user's run is 404, as a missing one.
 *
 * Lifetime of a stream: it holds the request from the first job's answer until
 * tg_httpd_stream_end; it is freed once it has ended, its timer is closed and no job is in
 * flight. The client going away (TG_HTTPD_STREAM_CLOSED), the gateway closing its server, a
 * failed job or the end of the run all end it through stream_stop.
 */
#include "gw.h"
#include "tg_json.h"
#include "tg_map.h"
#include "tg_run_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000
#define STREAM_BATCH 200     /* events per poll job */
#define POLL_MS 250          /* between poll jobs of one stream */
#define KEEPALIVE_MS 15000   /* a comment line after this long without a write */
#define STREAMS_PER_USER 8   /* open SSE streams of one user */
#define EVENT_LINE_MAX 65536 /* bytes of one formatted event (data is small by contract) */

/* Open streams per user; freed with the last stream. */
struct gw_streams {
  tg_map *per_user; /* user id -> unsigned open streams */
  size_t open;
};

typedef struct stream {
  gw_job j; /* the request until it is answered (JSON, an error, or the stream's end) */
  char run_id[GW_USER_MAX + 1];
  int64_t after; /* the last seq sent (or asked to start after) */
  int limit;     /* JSON mode */
  int sse;
  /* job results (pool thread -> loop) */
  json_t *rows;
  char status[16];
  /* SSE state */
  uv_timer_t timer;
  int timer_open;
  int job;     /* a poll job is in flight */
  int started; /* tg_httpd_stream_begin answered 0 */
  int stopped; /* stream_stop ran: no more writes, no more jobs */
  int blocked; /* over the high-water mark: wait for DRAINED */
  int counted; /* counted in app->streams */
  uint64_t last_write_ms;
} stream;
GW_JOB_FIRST(stream);

static void stream_poll(stream *s);
static void on_timer(uv_timer_t *t);

/* --- per-user count --- */

static int count_take(gw_app *app, const char *user)
{
  struct gw_streams *g = app->streams;
  unsigned *n;
  if (!g) {
    if (!(g = calloc(1, sizeof *g)) || !(g->per_user = tg_map_new(0, free))) {
      free(g);
      return TG_ENOMEM;
    }
    app->streams = g;
  }
  n = tg_map_gets(g->per_user, user);
  if (n && *n >= STREAMS_PER_USER)
    return TG_ERATELIMIT;
  if (!n) {
    if (!(n = calloc(1, sizeof *n)) || tg_map_puts(g->per_user, user, n, 1) != 0) {
      free(n);
      return TG_ENOMEM;
    }
  }
  ++*n;
  g->open++;
  return 0;
}

static void count_give(gw_app *app, const char *user)
{
  struct gw_streams *g = app->streams;
  unsigned *n = tg_map_gets(g->per_user, user);
  if (n && --*n == 0)
    tg_map_dels(g->per_user, user);
  if (--g->open == 0) {
    tg_map_free(g->per_user);
    free(g);
    app->streams = NULL;
  }
}

/* --- the database side --- */

static int events_work(tg_db *db, void *arg)
{
  stream *s = arg;
  int rc = tg_run_events_run_status(db, s->run_id, s->j.user, s->status, sizeof s->status);
  if (rc == TG_ENOTFOUND) {
    gw_job_fail(&s->j, 404, "not_found", "No such run.");
    return 0;
  }
  if (rc != 0)
    return rc;
  /* The status is read before the events: a final status read here means every event of the
   * run is already in the table, so an empty page after it is the end. */
  s->rows = tg_run_events_list(db, &rc, s->run_id, s->after, s->sse ? STREAM_BATCH : s->limit);
  if (!s->rows)
    return rc;
  if (!s->sse) {
    size_t n = json_array_size(s->rows);
    json_int_t next =
        n ? json_integer_value(json_object_get(json_array_get(s->rows, n - 1), "seq")) : s->after;
    s->j.status = 200;
    s->j.body = json_pack("{s:o, s:I}", "events", s->rows, "next_after", next);
    s->rows = NULL;
    return s->j.body ? 0 : TG_ENOMEM;
  }
  return 0;
}

/* --- the stream --- */

static void stream_free_maybe(stream *s)
{
  if (!s->stopped || s->job || s->timer_open)
    return;
  if (s->counted)
    count_give(s->j.app, s->j.user);
  json_decref(s->rows);
  free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
  stream *s = h->data;
  s->timer_open = 0;
  stream_free_maybe(s);
}

/* Ends the stream (or answers the request when it never started) and frees it when nothing of
 * it is in flight. */
static void stream_stop(stream *s)
{
  if (s->stopped)
    return;
  s->stopped = 1;
  if (s->started) {
    tg_httpd_stream_end(s->j.req);
    s->j.req = NULL;
  } else {
    gw_job_reply(&s->j, NULL); /* the outcome set (an error) or 500 */
  }
  if (s->timer_open)
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
  stream_free_maybe(s);
}

static void on_stream(tg_httpd_req *r, int event, void *arg)
{
  stream *s = arg;
  (void)r;
  if (event == TG_HTTPD_STREAM_DRAINED) {
    s->blocked = 0;
    return;
  }
  stream_stop(s); /* CLOSED */
}

/* Writes one formatted piece; 0, or -1 when the stream must stop. */
static int stream_write(stream *s, const char *data, size_t len)
{
  int rc = tg_httpd_stream_write(s->j.req, data, len);
  s->last_write_ms = uv_now(s->j.app->loop);
  if (rc == TG_EBUSY) {
    s->blocked = 1;
    return 0;
  }
  return rc == 0 ? 0 : -1;
}

/* Sends the rows of the last job; 1 when the run_finished event was among them. */
static int send_rows(stream *s)
{
  size_t i;
  json_t *ev;
  int finished = 0;
  json_array_foreach(s->rows, i, ev)
  {
    char *data = tg_json_dumps(ev, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
    char *line = data ? malloc(EVENT_LINE_MAX) : NULL;
    int n = line ? snprintf(line, EVENT_LINE_MAX, "id: %lld\nevent: %s\ndata: %s\n\n",
                            (long long)seq, type ? type : "", data)
                 : -1;
    int rc = n > 0 && n < EVENT_LINE_MAX ? stream_write(s, line, (size_t)n) : -1;
    free(line);
    free(data);
    if (rc != 0)
      return -1;
    s->after = seq;
    if (type && strcmp(type, "run_finished") == 0)
      finished = 1;
  }
  return finished;
}

static void on_poll_done(void *arg, int status)
{
  static const char *const headers[] = {"Content-Type: text/event-stream; charset=utf-8",
                                        "Cache-Control: no-cache", "X-Accel-Buffering: no", NULL};
  stream *s = arg;
  int fin;
  s->job = 0;
  if (s->stopped) {
    stream_free_maybe(s);
    return;
  }
  if (status != 0 || s->j.status >= 400) {
    if (status != 0 && !s->started)
      gw_job_fail_err(&s->j, status);
    stream_stop(s);
    return;
  }
  if (!s->started) {
    if (tg_httpd_stream_begin(s->j.req, 200, headers, on_stream, s) != 0) {
      s->started = 1; /* the request is released by tg_httpd_stream_end all the same */
      stream_stop(s);
      return;
    }
    s->started = 1;
    uv_timer_init(s->j.app->loop, &s->timer);
    s->timer.data = s;
    s->timer_open = 1;
    uv_timer_start(&s->timer, on_timer, POLL_MS, POLL_MS);
    s->last_write_ms = uv_now(s->j.app->loop);
  }
  fin = send_rows(s);
  if (fin < 0 || fin == 1 ||
      (json_array_size(s->rows) < STREAM_BATCH && tg_run_events_final(s->status))) {
    stream_stop(s);
    return;
  }
  json_decref(s->rows);
  s->rows = NULL;
}

/* The timer: a keep-alive when due, then the next poll job unless one is in flight or the
 * client is not reading. */
static void stream_poll(stream *s)
{
  if (s->stopped || s->job || s->blocked)
    return;
  if (uv_now(s->j.app->loop) - s->last_write_ms >= KEEPALIVE_MS &&
      stream_write(s, ": keep-alive\n\n", 14) != 0) {
    stream_stop(s);
    return;
  }
  json_decref(s->rows);
  s->rows = NULL;
  if (s->j.app->stopping || tg_dbq_submit(s->j.app->dbq, events_work, on_poll_done, s) != 0) {
    stream_stop(s);
    return;
  }
  s->job = 1;
}

static void on_timer(uv_timer_t *t)
{
  stream_poll(t->data);
}

/* --- the route --- */

/* Parses a non-negative decimal seq; 0 or -1. */
static int parse_seq(const char *text, int64_t *out)
{
  char *end = NULL;
  long long v;
  if (!text || *text < '0' || *text > '9')
    return -1;
  v = strtoll(text, &end, 10);
  if (*end || v < 0)
    return -1;
  *out = v;
  return 0;
}

void gw_run_events(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id)
{
  const char *accept = tg_httpd_header(req, "Accept");
  const char *last_id = tg_httpd_header(req, "Last-Event-ID");
  const char *after = tg_httpd_query(req, "after");
  const char *lim = tg_httpd_query(req, "limit");
  int sse = accept && strstr(accept, "text/event-stream") != NULL;
  int64_t from = 0, limit = PAGE_DEFAULT;
  stream *s;
  int rc;

  if ((after && parse_seq(after, &from) != 0) ||
      (sse && last_id && *last_id && parse_seq(last_id, &from) != 0)) {
    gw_respond_error(req, 400, "invalid_request", "after and Last-Event-ID must be an event seq.",
                     NULL, NULL);
    return;
  }
  if (lim && (parse_seq(lim, &limit) != 0 || limit < 1 || limit > PAGE_MAX)) {
    gw_respond_error(req, 400, "invalid_request", "limit must be an integer from 1 to 1000.", NULL,
                     NULL);
    return;
  }
  if (sse && (rc = count_take(app, user)) != 0) {
    if (rc == TG_ERATELIMIT)
      gw_respond_error(req, 429, "too_many_streams",
                       "Too many event streams open for this user; close one first.", NULL,
                       (const char *const[]){"Retry-After: 5", NULL});
    else
      tg_httpd_respond_error(req, 500, "internal", "Out of memory.");
    return;
  }
  if (!(s = gw_job_new(app, req, user, sizeof *s))) {
    if (sse)
      count_give(app, user);
    return;
  }
  snprintf(s->run_id, sizeof s->run_id, "%s", run_id);
  s->after = from;
  s->limit = (int)limit;
  s->sse = sse;
  s->counted = sse;
  if (!sse) {
    if (gw_submit(&s->j, events_work, gw_job_done_free, s) != 0)
      free(s);
    return;
  }
  if (gw_submit(&s->j, events_work, on_poll_done, s) != 0) {
    count_give(app, user);
    free(s);
    return;
  }
  s->job = 1;
}
