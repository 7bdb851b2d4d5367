/*
 * tg_httpd: HTTP/1.1 server on libuv + llhttp (contract in tg_httpd.h).
 *
 * Each connection owns a uv_tcp_t, one uv_timer_t (slow headers, slow body, idle keep-alive,
 * lingering close) and a strict llhttp parser. Received bytes land in the server's one read
 * buffer (libuv delivers each read before it asks for the next buffer); process_input() feeds
 * them to llhttp, whose callbacks copy what they keep. on_message_complete pauses the parser, so
 * llhttp_execute() stops right after each request; the request is then handed to the handler
 * and, until it is answered, nothing more is parsed and reading is stopped (pipelined bytes
 * already read are copied into the connection's own input buffer, freed once parsed; later ones
 * queue in the socket). A connection between requests holds no input memory. tg_httpd_respond()
 * queues the response (libuv keeps writes in order) and resumes parsing.
 *
 * Invariants: at most one request per connection is in the handler's hands (c->pending); a
 * request detached from its connection (r->c == NULL) is only waiting to be answered and freed.
 * Connections are freed only in the close callback of their last handle (c->closing marks
 * them before that); write requests free themselves in their callback, which libuv runs before
 * the close callbacks. URL and header pieces are copied out of the input buffer at once.
 * After an error response or Connection: close we shut down our side and drain the client's
 * bytes for a short while ("lingering close"), so the client reads the response before a reset;
 * except after 413, where the point is not to read the body: the connection closes as soon as the
 * response is written.
 * The listening socket is libuv's, except with limits.reuseport: then bind_reuseport() makes it
 * with SO_REUSEPORT (which libuv 1.44 cannot set) and hands it to libuv.
 */
#include "tg_httpd.h"

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_map.h"

#include <errno.h>
#include <llhttp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 65536 /* the server's one read buffer */
/* Reading runs only once every byte read before was parsed, so one chunk is the most a
 * connection's input buffer holds; its cap is a safety net. */
#define IN_CAP (2 * READ_CHUNK)
#define REQ_BUF_FIRST 256           /* first allocation of a request's URL, headers and body */
#define WRITE_HIGH_WATER (1u << 20) /* stop parsing while more than this is queued */
#define LINGER_MS 2000
/* Refused, evicted, failed accepts: one line per 10 s at most; parse errors and timeouts
 * (debug): one per second. */
#define LOG_EVERY_MS 10000
#define LOG_EVERY_DEBUG_MS 1000
#define DISCARD_MAX (256 * 1024) /* received bytes dropped before a close without reading */

typedef struct conn conn;

/* What a connection may be evicted as when the server is full (see evict_one): an idle
 * keep-alive connection, or one still sending its request head; otherwise not evictable. */
enum { CLS_NONE = 0, CLS_IDLE, CLS_HEAD, CLS_COUNT };

typedef struct param {
  char *name, *value; /* decoded; point into the request's qbuf */
} param;

struct tg_httpd_req {
  conn *c; /* NULL once the connection is gone */
  uv_loop_t *loop;
  char method[24];
  tg_buf url;
  tg_buf hdrs;     /* "name\0value\0" pairs */
  size_t *hdr_off; /* offsets of names in hdrs; value follows the name's NUL */
  size_t n_hdrs, cap_hdrs;
  size_t hdr_bytes;  /* names + values, for the cap */
  int in_name;       /* a header name is being received */
  size_t name_start; /* its offset in hdrs */
  tg_buf body;
  char *path;
  char *qbuf;
  param *params;
  size_t n_params;
  int keep_alive;
  int is_head;
  tg_httpd_stream_cb stream_cb; /* a streaming response: set by tg_httpd_stream_begin */
  void *stream_arg;
  int stream_full; /* a write answered TG_EBUSY: DRAINED is owed */
};

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  llhttp_t parser;
  tg_httpd *srv;
  conn *prev, *next;
  tg_buf in;             /* pipelined bytes left from a read; in.ptr[in_off, in.len) unparsed */
  size_t in_off;         /* parsed prefix; the buffer is freed once all of it is parsed */
  tg_httpd_req *cur;     /* being parsed */
  tg_httpd_req *pending; /* in the handler's hands */
  int err_status;        /* cap hit inside a parser callback: 413 / 414 / 431 */
  int closing;           /* uv_close called */
  int handles;           /* open handles (tcp, timer) */
  int reading;
  int eof;
  int finishing;  /* final response queued: no more parsing */
  int lingering;  /* shut down, draining input until EOF or timer */
  int no_linger;  /* close as soon as the final response is written (413: never read the rest) */
  int in_process; /* process_input on the stack */
  int message_begun;
  int streaming;       /* c->pending is a streaming response: reads only watch for the close */
  int cls;             /* CLS_*: the eviction list c is on */
  conn *eprev, *enext; /* in srv->evict[cls], oldest first */
  int open;            /* counted in srv->n_open (and its peer's count) */
  unsigned *peer_n;    /* open connections of this peer address (in srv->peers), or NULL */
  unsigned char peer[16];
  size_t peer_len; /* 4 (IPv4) or 16 (IPv6); 0 when unknown */
};

struct tg_httpd {
  uv_loop_t *loop;
  uv_tcp_t listener;
  tg_httpd_limits lim;
  tg_httpd_handler handler;
  void *arg;
  char *rbuf; /* READ_CHUNK bytes every read lands in (reads are delivered one at a time) */
  conn *conns;
  unsigned n_conns; /* every conn struct, closing ones included */
  unsigned n_open;  /* connections not closing: what max_connections bounds */
  struct {
    conn *first, *last;
  } evict[CLS_COUNT]; /* per class, in order of entry: the first is the longest idle / oldest */
  tg_map *peers;      /* peer address bytes -> unsigned open connections */
  tg_log_rate log_refused, log_evicted, log_accept, log_parse, log_timeout, log_eof;
  uv_timer_t log_timer; /* writes the counts still held every LOG_EVERY_MS (unreferenced) */
  int log_timer_open;
  int port;
  int closing;
  int listener_open;
  void (*on_closed)(void *arg);
  void *closed_arg;
  time_t date_at; /* the second date[] was formatted for */
  char date[40];  /* the Date header's value (IMF-fixdate), formatted once per second */
};

static llhttp_settings_t settings;
static int settings_ready;

/* --- requests --- */

static void req_free(tg_httpd_req *r)
{
  if (!r)
    return;
  tg_buf_free(&r->url);
  tg_buf_free(&r->hdrs);
  tg_buf_free(&r->body);
  free(r->hdr_off);
  free(r->path);
  free(r->qbuf);
  free(r->params);
  free(r);
}

static int hexval(int ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Decodes s in place: %XX to the byte, '+' to a space; a malformed % stays literal. */
static void percent_decode(char *s)
{
  char *w = s;
  for (char *p = s; *p; p++) {
    int hi, lo;
    if (*p == '%' && (hi = hexval((unsigned char)p[1])) >= 0 &&
        (lo = hexval((unsigned char)p[2])) >= 0) {
      *w++ = (char)(hi * 16 + lo);
      p += 2;
    } else {
      *w++ = *p == '+' ? ' ' : *p;
    }
  }
  *w = '\0';
}

/* Splits the target into path and decoded query parameters. */
static int req_prepare(tg_httpd_req *r)
{
  const char *t = tg_buf_str(&r->url);
  const char *q = strchr(t, '?');
  size_t plen = q ? (size_t)(q - t) : strlen(t);
  r->path = strndup(t, plen);
  r->qbuf = strdup(q ? q + 1 : "");
  if (!r->path || !r->qbuf)
    return TG_ENOMEM;
  size_t n = 1;
  for (const char *p = r->qbuf; *p; p++)
    n += *p == '&';
  r->params = calloc(n, sizeof *r->params);
  if (!r->params)
    return TG_ENOMEM;
  char *save = NULL;
  for (char *tok = strtok_r(r->qbuf, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
    char *eq = strchr(tok, '=');
    char *val = eq ? eq + 1 : tok + strlen(tok);
    if (eq)
      *eq = '\0';
    percent_decode(tok);
    percent_decode(val);
    r->params[r->n_params].name = tok;
    r->params[r->n_params].value = val;
    r->n_params++;
  }
  return 0;
}

/* --- connections --- */

static void maybe_finish_server(tg_httpd *s)
{
  if (s->closing && !s->listener_open && !s->log_timer_open && s->n_conns == 0) {
    void (*cb)(void *) = s->on_closed;
    void *arg = s->closed_arg;
    tg_map_free(s->peers);
    free(s->rbuf);
    free(s);
    if (cb)
      cb(arg);
  }
}

static void on_conn_handle_closed(uv_handle_t *h)
{
  conn *c = h->data;
  if (--c->handles > 0)
    return;
  tg_httpd *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->n_conns--;
  if (c->pending) {
    tg_httpd_req *r = c->pending;
    r->c = NULL;
    if (c->streaming)
      r->stream_cb(r, TG_HTTPD_STREAM_CLOSED, r->stream_arg);
  }
  req_free(c->cur);
  tg_buf_free(&c->in);
  free(c);
  maybe_finish_server(s);
}

/* Moves c to the end of eviction list cls (CLS_NONE: off every list). */
static void set_class(conn *c, int cls)
{
  tg_httpd *s = c->srv;
  if (c->cls) {
    if (c->eprev)
      c->eprev->enext = c->enext;
    else
      s->evict[c->cls].first = c->enext;
    if (c->enext)
      c->enext->eprev = c->eprev;
    else
      s->evict[c->cls].last = c->eprev;
    c->eprev = c->enext = NULL;
  }
  c->cls = cls;
  if (cls) {
    c->eprev = s->evict[cls].last;
    if (c->eprev)
      c->eprev->enext = c;
    else
      s->evict[cls].first = c;
    s->evict[cls].last = c;
  }
}

static void conn_close(conn *c)
{
  if (c->closing)
    return;
  c->closing = 1;
  set_class(c, CLS_NONE);
  if (c->open) {
    c->open = 0;
    c->srv->n_open--;
    if (c->peer_n && --*c->peer_n == 0)
      tg_map_del(c->srv->peers, c->peer, c->peer_len);
    c->peer_n = NULL;
  }
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* The header timeout, shortened to pressure_header_timeout_ms while more than 3/4 of
 * max_connections are open, so that slow clients leave room sooner. */
static uint64_t header_timeout(const tg_httpd *s)
{
  uint64_t t = s->lim.header_timeout_ms;
  if ((uint64_t)s->n_open * 4 > (uint64_t)s->lim.max_connections * 3 &&
      s->lim.pressure_header_timeout_ms < t)
    t = s->lim.pressure_header_timeout_ms;
  return t;
}

static void on_timer(uv_timer_t *t);
static void process_input(conn *c, const char *data, size_t len);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out);

static void arm_timer(conn *c, uint64_t ms)
{
  if (!c->closing)
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void start_reading(conn *c)
{
  if (c->closing || c->reading || c->eof)
    return;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = 1;
  else
    conn_close(c);
}

static void stop_reading(conn *c)
{
  if (c->reading && !c->closing)
    uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

/* --- writing --- */

typedef struct wreq {
  uv_write_t w;
  int last; /* after this write: shut down and linger */
  /* A body sent from the caller's memory after data (tg_httpd_respond_shared): released once
   * the write completes or fails. */
  const char *ext;
  size_t ext_len;
  void (*release)(void *arg);
  void *release_arg;
  char data[];
} wreq;

/* Frees wr, giving back the caller's body it pointed to, if any. */
static void wreq_free(wreq *wr)
{
  if (wr->release)
    wr->release(wr->release_arg);
  free(wr);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
  conn *c = sr->data;
  free(sr);
  if (c->closing)
    return;
  if (status < 0 || c->eof) {
    conn_close(c);
    return;
  }
  c->lingering = 1;
  set_class(c, CLS_IDLE);
  arm_timer(c, LINGER_MS);
  start_reading(c);
}

static void begin_linger(conn *c)
{
  uv_shutdown_t *sr = malloc(sizeof *sr);
  if (!sr) {
    conn_close(c);
    return;
  }
  sr->data = c;
  if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(sr);
    conn_close(c);
  }
}

/* Closes once the final response is written, reading nothing more: what the client already sent
 * is discarded (at most DISCARD_MAX bytes, without waiting), so that the kernel does not answer
 * unread data with a reset that could destroy the response in flight; whatever comes later is
 * the client's problem. */
static void close_without_reading(conn *c)
{
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
    char sink[4096];
    for (size_t n = 0; n < DISCARD_MAX;) {
      ssize_t got = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
      if (got <= 0)
        break;
      n += (size_t)got;
    }
  }
  conn_close(c);
}

#define STREAM_LOW_WATER (WRITE_HIGH_WATER / 4)

/* A streaming response's write completed: DRAINED when a writer waits for room. */
static void stream_drained(conn *c)
{
  tg_httpd_req *r = c->pending;
  if (r->stream_full &&
      uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= STREAM_LOW_WATER) {
    r->stream_full = 0;
    r->stream_cb(r, TG_HTTPD_STREAM_DRAINED, r->stream_arg);
  }
}

static void on_write(uv_write_t *w, int status)
{
  wreq *wr = (wreq *)w;
  conn *c = w->data;
  int last = wr->last;
  wreq_free(wr);
  if (c->closing)
    return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (last && c->no_linger) {
    close_without_reading(c);
    return;
  }
  if (last) {
    begin_linger(c);
    return;
  }
  if (c->streaming) {
    stream_drained(c);
    return;
  }
  /* Writes drained below the high-water mark: continue with buffered pipelined input. */
  if (!c->pending && !c->finishing && c->in.len > c->in_off &&
      uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= WRITE_HIGH_WATER)
    process_input(c, NULL, 0);
}

static const char *reason_phrase(int status)
{
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 402:
    return "Payment Required";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 422:
    return "Unprocessable Content";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

/* Queues the first len bytes of wr->data; wr is freed by on_write, or here on failure. last:
 * close (shutdown + linger) once written. */
static int wreq_send(conn *c, wreq *wr, size_t len, int last)
{
  wr->last = last;
  wr->w.data = c;
  uv_buf_t b[2] = {uv_buf_init(wr->data, (unsigned)len),
                   uv_buf_init((char *)wr->ext, (unsigned)wr->ext_len)};
  int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, b, wr->ext_len ? 2 : 1, on_write);
  if (rc < 0) {
    wreq_free(wr);
    conn_close(c);
    return TG_EIO;
  }
  return 0;
}

/* Queues raw bytes (copied). */
static int conn_write(conn *c, const char *data, size_t len, int last)
{
  wreq *wr = malloc(sizeof *wr + len);
  if (!wr)
    return TG_ENOMEM;
  *wr = (wreq){.last = 0};
  memcpy(wr->data, data, len);
  return wreq_send(c, wr, len, last);
}

static int header_says_close(const char *line)
{
  if (strncasecmp(line, "Connection:", 11) != 0)
    return 0;
  const char *v = line + 11;
  while (*v == ' ' || *v == '\t')
    v++;
  return strncasecmp(v, "close", 5) == 0;
}

/* Builds and queues a response. keep_alive 0 closes after it. */
/* Copies n bytes of s to head + off; returns the new offset. The caller sized head
 * (send_response: 256 bytes beyond the extra headers, which the fixed parts stay well under). */
static size_t put(char *head, size_t off, const char *s, size_t n)
{
  memcpy(head + off, s, n);
  return off + n;
}

/* The Date header's value for now (RFC 9110 section 5.6.7, IMF-fixdate), formatted again only
 * when the second changes: the loop answers thousands of requests within one. */
static const char *http_date(tg_httpd *srv)
{
  time_t now = time(NULL);
  if (now != srv->date_at || !srv->date[0]) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    srv->date_at = now;
  }
  return srv->date;
}

/* A body at least this long is sent from the caller's memory by tg_httpd_respond_shared
 * (smaller ones are copied after the head: one write of one buffer). */
#define SHARED_MIN_BYTES (64u << 10)

/* Builds and queues a response: the head, then the body copied after it, or (release != NULL and
 * a long body) sent from the caller's memory and released when written. release(arg) is called
 * exactly once, whatever happens. keep_alive 0 closes after it. */
static int send_response_ext(conn *c, int status, const char *const *headers, const char *body,
                             size_t len, int keep_alive, int is_head, void (*release)(void *),
                             void *release_arg)
{
  for (size_t i = 0; headers && headers[i]; i++)
    if (header_says_close(headers[i]))
      keep_alive = 0;
  if (c->srv->closing)
    keep_alive = 0;
  int no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
  size_t blen = (no_body || is_head) ? 0 : len;
  size_t hcap = 256, total;
  int shared = release && blen >= SHARED_MIN_BYTES;
  for (size_t i = 0; headers && headers[i]; i++)
    hcap += strlen(headers[i]) + 2;
  /* The head is printed straight into the write request, the body copied after it (unless it
   * is shared: then it is the write's second buffer). */
  if (__builtin_add_overflow(hcap, shared ? 0 : blen, &total) ||
      __builtin_add_overflow(total, sizeof(wreq), &total)) {
    if (release)
      release(release_arg);
    return TG_ETOOBIG;
  }
  wreq *wr = malloc(total);
  if (!wr) {
    if (release)
      release(release_arg);
    return TG_ENOMEM;
  }
  *wr = (wreq){.last = 0};
  if (shared) {
    wr->ext = body;
    wr->ext_len = blen;
    wr->release = release;
    wr->release_arg = release_arg;
    blen = 0;
  }
  char *head = wr->data;
  size_t off = (size_t)snprintf(head, hcap, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
  for (size_t i = 0; headers && headers[i]; i++) {
    off = put(head, off, headers[i], strlen(headers[i]));
    off = put(head, off, "\r\n", 2);
  }
  if (!no_body)
    off += (size_t)snprintf(head + off, hcap - off, "Content-Length: %zu\r\n", len);
  off = put(head, off, "Date: ", 6);
  off = put(head, off, http_date(c->srv), strlen(c->srv->date));
  if (keep_alive)
    off = put(head, off, "\r\nConnection: keep-alive\r\n\r\n", 28);
  else
    off = put(head, off, "\r\nConnection: close\r\n\r\n", 23);
  if (blen)
    memcpy(head + off, body, blen);
  if (release && !shared)
    release(release_arg); /* copied (or not sent): the caller's memory is free again */
  int rc = wreq_send(c, wr, off + blen, !keep_alive);
  if (!keep_alive) {
    c->finishing = 1;
    set_class(c, CLS_NONE);
    stop_reading(c);
  }
  return rc;
}

static int send_response(conn *c, int status, const char *const *headers, const char *body,
                         size_t len, int keep_alive, int is_head)
{
  return send_response_ext(c, status, headers, body, len, keep_alive, is_head, NULL, NULL);
}

/* Answers a protocol-level error and closes: 400, 408, 413, 414, 431. */
static void send_error_close(conn *c, int status, const char *code, const char *message)
{
  static const char *const hdrs[] = {"Content-Type: application/json; charset=utf-8", NULL};
  char body[256];
  int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}", code, message);
  uv_timer_stop(&c->timer);
  c->no_linger = status == 413; /* reading the rest of a body we refused is what 413 avoids */
  if (send_response(c, status, hdrs, body, (size_t)n, 0, 0) != 0)
    conn_close(c);
}

/* --- llhttp callbacks --- */

/* The header buffer holds at most max_header_bytes of names and values plus a NUL after each
 * name and value (header_piece and on_header_field_complete check those limits first). */
static size_t hdrs_cap(const tg_httpd_limits *lim)
{
  size_t nuls, cap;
  if (__builtin_mul_overflow(lim->max_headers, (size_t)2, &nuls) ||
      __builtin_add_overflow(lim->max_header_bytes, nuls, &cap) || cap == SIZE_MAX)
    return SIZE_MAX - 1;
  return cap;
}

static tg_httpd_req *cur_req(llhttp_t *p)
{
  conn *c = p->data;
  if (!c->cur) {
    tg_httpd_req *r = calloc(1, sizeof *r);
    const tg_httpd_limits *lim = &c->srv->lim;
    if (!r)
      return NULL;
    r->loop = c->srv->loop;
    tg_buf_init_hint(&r->url, lim->max_url_bytes, REQ_BUF_FIRST);
    tg_buf_init_hint(&r->hdrs, hdrs_cap(lim), REQ_BUF_FIRST);
    tg_buf_init_hint(&r->body, lim->max_body_bytes, REQ_BUF_FIRST);
    c->cur = r;
  }
  return c->cur;
}

static int on_message_begin(llhttp_t *p)
{
  conn *c = p->data;
  c->message_begun = 1;
  if (c->cls != CLS_HEAD)
    set_class(c, CLS_HEAD); /* an idle keep-alive connection starts a request: its head starts */
  arm_timer(c, header_timeout(c->srv));
  return cur_req(p) ? 0 : -1;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
  conn *c = p->data;
  tg_httpd_req *r = cur_req(p);
  if (!r)
    return -1;
  int rc = tg_buf_add(&r->url, at, len);
  if (rc == TG_ETOOBIG)
    c->err_status = 414;
  return rc ? HPE_USER : 0;
}

static int header_piece(llhttp_t *p, const char *at, size_t len, int value)
{
  conn *c = p->data;
  tg_httpd_req *r = cur_req(p);
  if (!r)
    return -1;
  if (__builtin_add_overflow(r->hdr_bytes, len, &r->hdr_bytes) ||
      r->hdr_bytes > c->srv->lim.max_header_bytes) {
    c->err_status = 431;
    return HPE_USER;
  }
  if (!value && !r->in_name) {
    r->in_name = 1;
    r->name_start = r->hdrs.len;
  }
  return tg_buf_add(&r->hdrs, at, len) ? HPE_USER : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
  return header_piece(p, at, len, 0);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
  return header_piece(p, at, len, 1);
}

/* The name in hdrs is complete: terminate it and remember where it starts. */
static int on_header_field_complete(llhttp_t *p)
{
  conn *c = p->data;
  tg_httpd_req *r = c->cur;
  if (r->n_hdrs + 1 > c->srv->lim.max_headers) {
    c->err_status = 431;
    return HPE_USER;
  }
  if (r->n_hdrs == r->cap_hdrs) {
    size_t nc = r->cap_hdrs ? r->cap_hdrs * 2 : 16;
    size_t *no = realloc(r->hdr_off, nc * sizeof *no);
    if (!no)
      return HPE_USER;
    r->hdr_off = no;
    r->cap_hdrs = nc;
  }
  r->in_name = 0;
  r->hdr_off[r->n_hdrs++] = r->name_start;
  return tg_buf_add(&r->hdrs, "", 1) ? HPE_USER : 0;
}

static int on_header_value_complete(llhttp_t *p)
{
  conn *c = p->data;
  tg_httpd_req *r = c->cur;
  /* An empty value produces no on_header_value piece; the NUL still ends it. */
  return tg_buf_add(&r->hdrs, "", 1) ? HPE_USER : 0;
}

static const char *req_header(const tg_httpd_req *r, const char *name)
{
  for (size_t i = 0; i < r->n_hdrs; i++) {
    const char *n = r->hdrs.ptr + r->hdr_off[i];
    if (strcasecmp(n, name) == 0)
      return n + strlen(n) + 1;
  }
  return NULL;
}

static int on_headers_complete(llhttp_t *p)
{
  conn *c = p->data;
  tg_httpd_req *r = c->cur;
  int has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->lim.max_body_bytes) {
    c->err_status = 413;
    return HPE_USER;
  }
  set_class(c, CLS_NONE); /* a request in progress is never evicted */
  snprintf(r->method, sizeof r->method, "%s", llhttp_method_name((llhttp_method_t)p->method));
  r->is_head = p->method == HTTP_HEAD;
  if (has_body) {
    arm_timer(c, c->srv->lim.body_timeout_ms);
    const char *ex = req_header(r, "Expect");
    if (ex && strcasecmp(ex, "100-continue") == 0 && p->http_major == 1 && p->http_minor >= 1) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      if (conn_write(c, cont, sizeof cont - 1, 0) != 0)
        return HPE_USER;
    }
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
  conn *c = p->data;
  int rc = tg_buf_add(&c->cur->body, at, len);
  if (rc == TG_ETOOBIG)
    c->err_status = 413;
  return rc ? HPE_USER : 0;
}

static int on_message_complete(llhttp_t *p)
{
  conn *c = p->data;
  tg_httpd_req *r = cur_req(p);
  if (!r)
    return -1;
  r->keep_alive = llhttp_should_keep_alive(p);
  uv_timer_stop(&c->timer);
  c->message_begun = 0;
  return HPE_PAUSED; /* process_input dispatches it */
}

static void init_settings(void)
{
  if (settings_ready)
    return;
  llhttp_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_url = on_url;
  settings.on_header_field = on_header_field;
  settings.on_header_value = on_header_value;
  settings.on_header_field_complete = on_header_field_complete;
  settings.on_header_value_complete = on_header_value_complete;
  settings.on_headers_complete = on_headers_complete;
  settings.on_body = on_body;
  settings.on_message_complete = on_message_complete;
  settings_ready = 1;
}

/* --- parsing loop --- */

static void parse_failed(conn *c, llhttp_errno_t err)
{
  int st = c->err_status ? c->err_status : 400;
  tg_log_every(&c->srv->log_parse, uv_now(c->srv->loop), TG_LOG_DEBUG, "httpd_parse_error",
               "{s:i, s:s, s:s}", "status", st, "llhttp", llhttp_errno_name(err), "reason",
               c->parser.reason ? c->parser.reason : "");
  if (st == 413)
    send_error_close(c, 413, "payload_too_large", "request body too large");
  else if (st == 414)
    send_error_close(c, 414, "uri_too_long", "request target too long");
  else if (st == 431)
    send_error_close(c, 431, "headers_too_large", "request headers too large");
  else
    send_error_close(c, 400, "bad_request", "malformed HTTP request");
}

/* Hands the completed request to the handler. */
static void dispatch(conn *c)
{
  tg_httpd_req *r = c->cur;
  c->cur = NULL;
  if (req_prepare(r) != 0) {
    req_free(r);
    send_error_close(c, 500, "internal", "out of memory");
    return;
  }
  r->c = c;
  c->pending = r;
  stop_reading(c);
  c->srv->handler(r, c->srv->arg);
}

/* The client sent EOF and every complete request was answered: let llhttp see the end (a
 * message cut short is an error; one delimited by EOF completes) and close. */
static void finish_eof(conn *c)
{
  llhttp_errno_t err = llhttp_finish(&c->parser);
  if (err != HPE_OK)
    tg_log_every(&c->srv->log_eof, uv_now(c->srv->loop), TG_LOG_DEBUG, "httpd_eof_mid_request",
                 "{s:s}", "llhttp", llhttp_errno_name(err));
  conn_close(c);
}

static void after_input(conn *c)
{
  if (c->closing || c->finishing || c->pending)
    return;
  if (c->eof) {
    finish_eof(c);
    return;
  }
  if (!c->message_begun) {
    arm_timer(c, c->srv->lim.idle_timeout_ms);
    if (c->cls != CLS_HEAD) /* a new connection stays with the heads until it sends one */
      set_class(c, CLS_IDLE);
  }
  start_reading(c);
}

/* Empties the connection's own input buffer and gives its memory back. */
static void drop_input(conn *c)
{
  tg_buf_free(&c->in);
  c->in_off = 0;
}

/* Keeps data[0, len), the unparsed rest of a read, in the connection's own buffer (it lived in
 * the server's shared read buffer). Returns 0, or closes c and returns -1 when out of memory. */
static int keep_input(conn *c, const char *data, size_t len)
{
  drop_input(c);
  if (tg_buf_add(&c->in, data, len) != 0) {
    conn_close(c);
    return -1;
  }
  return 0;
}

/* Parses data[0, len), a read in the server's shared buffer, or (data NULL) the unparsed bytes
 * in c->in, dispatching each complete request. What is left when parsing stops for a request in
 * the handler's hands (pipelined requests) or for the write high-water mark moves to c->in. */
static void process_input(conn *c, const char *data, size_t len)
{
  if (c->in_process)
    return; /* a handler answered synchronously; the outer loop continues */
  int from_in = !data;
  if (from_in) {
    len = c->in.len - c->in_off;
    data = len ? c->in.ptr + c->in_off : NULL;
  }
  c->in_process = 1;
  while (!c->closing && !c->finishing && !c->pending && len > 0) {
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WRITE_HIGH_WATER) {
      stop_reading(c); /* on_write continues */
      if (!from_in && keep_input(c, data, len) == 0) {
        from_in = 1;
        data = c->in.ptr;
      }
      break;
    }
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    if (err == HPE_OK) {
      len = 0;
      break;
    }
    if (err != HPE_PAUSED) {
      len = 0;
      parse_failed(c, err);
      break;
    }
    /* Advance past the request instead of moving the rest to the front: a read full of
     * pipelined requests would otherwise be moved once per request (quadratic). */
    size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
    data += used;
    len -= used;
    llhttp_resume(&c->parser);
    if (len > 0 && !from_in) { /* the shared buffer is reused by the next read */
      if (keep_input(c, data, len) != 0)
        break;
      from_in = 1;
      data = c->in.ptr;
    }
    if (from_in)
      c->in_off = c->in.len - len;
    dispatch(c);
  }
  if (from_in && (len == 0 || c->closing))
    drop_input(c);
  else if (from_in)
    c->in_off = c->in.len - len;
  c->in_process = 0;
  after_input(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
  conn *c = h->data;
  (void)hint;
  /* libuv hands this buffer to on_read before it asks for another, so one per server does;
   * whatever must outlive the read is copied out by process_input. */
  *out = uv_buf_init(c->srv->rbuf, READ_CHUNK);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
  conn *c = st->data;
  if (c->closing)
    return;
  if (c->lingering || c->streaming) { /* input is drained and dropped: watch for the close */
    if (nread < 0)
      conn_close(c);
    return;
  }
  if (nread == 0)
    return;
  if (nread == UV_ENOBUFS) {
    conn_close(c);
    return;
  }
  if (nread < 0) {
    stop_reading(c);
    if (nread != UV_EOF) {
      conn_close(c);
      return;
    }
    c->eof = 1;
    process_input(c, NULL, 0); /* ends in after_input, which finishes the parser and closes */
    return;
  }
  if (c->in.len > c->in_off) { /* reading resumes only once c->in is parsed; be safe anyway */
    if (tg_buf_add(&c->in, b->base, (size_t)nread) != 0) {
      conn_close(c);
      return;
    }
    process_input(c, NULL, 0);
    return;
  }
  process_input(c, b->base, (size_t)nread);
}

static void on_timer(uv_timer_t *t)
{
  conn *c = t->data;
  if (c->closing)
    return;
  if (c->lingering || c->finishing || !c->message_begun) {
    conn_close(c); /* idle keep-alive, new connection that sent nothing, or linger done */
    return;
  }
  tg_log_every(&c->srv->log_timeout, uv_now(c->srv->loop), TG_LOG_DEBUG, "httpd_request_timeout",
               NULL);
  drop_input(c);
  send_error_close(c, 408, "request_timeout", "request not received in time");
}

/* Makes room for one more connection: closes the longest-idle keep-alive connection, else the
 * one that started its request head longest ago. Returns 0 when there was none to close. */
static int evict_one(tg_httpd *s)
{
  int cls = s->evict[CLS_IDLE].first ? CLS_IDLE : CLS_HEAD;
  conn *v = s->evict[cls].first;
  if (!v)
    return 0;
  tg_log_every(&s->log_evicted, uv_now(s->loop), TG_LOG_WARN, "httpd_connection_evicted",
               "{s:s, s:i}", "reason", cls == CLS_IDLE ? "idle" : "slow_head", "max",
               (int)s->lim.max_connections);
  conn_close(v);
  return 1;
}

/* Counts the accepted c against its peer's cap and the server's, evicting to stay within the
 * latter. Returns NULL, or why c must be refused (conn_close then undoes the counting). */
static const char *admit(tg_httpd *s, conn *c)
{
  struct sockaddr_storage ss;
  int len = sizeof ss;
  c->open = 1;
  s->n_open++;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) {
      c->peer_len = 4;
      memcpy(c->peer, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
      c->peer_len = 16;
      memcpy(c->peer, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
  }
  if (c->peer_len) {
    unsigned *n = tg_map_peek(s->peers, c->peer, c->peer_len);
    if (n && *n >= s->lim.max_connections_per_peer)
      return "max_connections_per_peer";
    if (!n) {
      n = calloc(1, sizeof *n);
      if (!n)
        return "out_of_memory";
      if (tg_map_put(s->peers, c->peer, c->peer_len, n, 1) != 0) {
        free(n);
        return "out_of_memory";
      }
    }
    ++*n;
    c->peer_n = n;
  }
  if (s->n_open > s->lim.max_connections && !evict_one(s))
    return "max_connections"; /* every connection has a request in progress */
  return NULL;
}

static void on_connection(uv_stream_t *l, int status)
{
  tg_httpd *s = l->data;
  if (status < 0) {
    tg_log_every(&s->log_accept, uv_now(s->loop), TG_LOG_WARN, "httpd_accept_failed", "{s:s}", "uv",
                 uv_strerror(status));
    return;
  }
  conn *c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->srv = s;
  tg_buf_init(&c->in, IN_CAP);
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || s->closing) {
    conn_close(c);
    return;
  }
  const char *refused = admit(s, c);
  if (refused) {
    tg_log_every(&s->log_refused, uv_now(s->loop), TG_LOG_WARN, "httpd_connection_refused",
                 "{s:s, s:i, s:i}", "reason", refused, "max", (int)s->lim.max_connections,
                 "max_per_peer", (int)s->lim.max_connections_per_peer);
    conn_close(c);
    return;
  }
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  uv_tcp_nodelay(&c->tcp, 1);
  set_class(c, CLS_HEAD);
  arm_timer(c, header_timeout(s));
  start_reading(c);
}

static void flush_logs(tg_httpd *s)
{
  tg_log_rate_flush(&s->log_refused);
  tg_log_rate_flush(&s->log_evicted);
  tg_log_rate_flush(&s->log_accept);
  tg_log_rate_flush(&s->log_parse);
  tg_log_rate_flush(&s->log_timeout);
  tg_log_rate_flush(&s->log_eof);
}

static void on_log_timer(uv_timer_t *t)
{
  flush_logs(t->data);
}

static void on_log_timer_closed(uv_handle_t *h)
{
  tg_httpd *s = h->data;
  s->log_timer_open = 0;
  maybe_finish_server(s);
}

/* --- public API --- */

void tg_httpd_limits_default(tg_httpd_limits *l)
{
  l->max_url_bytes = 8 * 1024;
  l->max_header_bytes = 16 * 1024;
  l->max_headers = 64;
  l->max_body_bytes = 1024 * 1024;
  l->header_timeout_ms = 10000;
  l->body_timeout_ms = 30000;
  l->idle_timeout_ms = 60000;
  l->max_connections = 1024;
  l->max_connections_per_peer = 256;
  l->pressure_header_timeout_ms = 2000;
  l->reuseport = 0;
}

/*
 * Binds h to sa as uv_tcp_bind does (SO_REUSEADDR), with SO_REUSEPORT set before the bind:
 * libuv 1.44 has no UV_TCP_REUSEPORT, so the socket is made here and handed over with
 * uv_tcp_open, after which h owns it. Returns 0 or a uv error (UV_EADDRINUSE when a listener
 * without SO_REUSEPORT, or of another user, holds the address).
 */
static int bind_reuseport(uv_tcp_t *h, const struct sockaddr *sa)
{
  socklen_t len =
      sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  int on = 1, rc = 0;
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 || bind(fd, sa, len) != 0)
    rc = uv_translate_sys_error(errno);
  else
    rc = uv_tcp_open(h, (uv_os_sock_t)fd);
  if (rc != 0)
    close(fd);
  return rc;
}

int tg_httpd_start(tg_httpd **out, uv_loop_t *loop, const char *host, int port,
                   const tg_httpd_limits *limits, tg_httpd_handler handler, void *arg)
{
  struct sockaddr_storage ss;
  *out = NULL;
  if (!host || port < 0 || port > 65535 || !handler)
    return TG_EINVAL;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
    return TG_EINVAL;
  init_settings();
  tg_httpd *s = calloc(1, sizeof *s);
  if (!s)
    return TG_ENOMEM;
  s->loop = loop;
  if (limits)
    s->lim = *limits;
  else
    tg_httpd_limits_default(&s->lim);
  s->handler = handler;
  s->arg = arg;
  s->rbuf = malloc(READ_CHUNK);
  if (!s->rbuf || !(s->peers = tg_map_new(0, free))) {
    free(s->rbuf);
    free(s);
    return TG_ENOMEM;
  }
  tg_log_rate_init(&s->log_refused, LOG_EVERY_MS);
  tg_log_rate_init(&s->log_evicted, LOG_EVERY_MS);
  tg_log_rate_init(&s->log_accept, LOG_EVERY_MS);
  tg_log_rate_init(&s->log_parse, LOG_EVERY_DEBUG_MS);
  tg_log_rate_init(&s->log_timeout, LOG_EVERY_DEBUG_MS);
  tg_log_rate_init(&s->log_eof, LOG_EVERY_DEBUG_MS);
  uv_timer_init(loop, &s->log_timer);
  s->log_timer.data = s;
  s->log_timer_open = 1;
  uv_timer_start(&s->log_timer, on_log_timer, LOG_EVERY_MS, LOG_EVERY_MS);
  uv_unref((uv_handle_t *)&s->log_timer);
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->listener_open = 1;
  int rc = s->lim.reuseport ? bind_reuseport(&s->listener, (struct sockaddr *)&ss)
                            : uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (rc != 0) {
    tg_error("httpd_listen_failed", "{s:s, s:i, s:b, s:s}", "host", host, "port", port, "reuseport",
             s->lim.reuseport != 0, "uv", uv_strerror(rc));
    tg_httpd_close(s, NULL, NULL);
    return rc == UV_EADDRINUSE ? TG_ECONFLICT : TG_EIO;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
  s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  *out = s;
  return 0;
}

int tg_httpd_port(const tg_httpd *s)
{
  return s->port;
}

static void on_listener_closed(uv_handle_t *h)
{
  tg_httpd *s = h->data;
  s->listener_open = 0;
  maybe_finish_server(s);
}

void tg_httpd_close(tg_httpd *s, void (*on_closed)(void *arg), void *arg)
{
  if (!s || s->closing)
    return;
  s->closing = 1;
  s->on_closed = on_closed;
  s->closed_arg = arg;
  flush_logs(s);
  uv_close((uv_handle_t *)&s->log_timer, on_log_timer_closed);
  for (conn *c = s->conns; c; c = c->next)
    conn_close(c);
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

const char *tg_httpd_method(const tg_httpd_req *r)
{
  return r->method;
}

const char *tg_httpd_path(const tg_httpd_req *r)
{
  return r->path;
}

const char *tg_httpd_query(const tg_httpd_req *r, const char *name)
{
  for (size_t i = 0; i < r->n_params; i++)
    if (strcmp(r->params[i].name, name) == 0)
      return r->params[i].value;
  return NULL;
}

int tg_httpd_query_at(const tg_httpd_req *r, size_t i, const char **name, const char **value)
{
  if (i >= r->n_params)
    return 0;
  *name = r->params[i].name;
  *value = r->params[i].value;
  return 1;
}

const char *tg_httpd_header(const tg_httpd_req *r, const char *name)
{
  return req_header(r, name);
}

const char *tg_httpd_body(const tg_httpd_req *r, size_t *len)
{
  if (len)
    *len = r->body.len;
  return tg_buf_str(&r->body);
}

uv_loop_t *tg_httpd_loop(const tg_httpd_req *r)
{
  return r->loop;
}

int tg_httpd_respond(tg_httpd_req *r, int status, const char *const *headers, const char *body,
                     size_t len)
{
  return tg_httpd_respond_shared(r, status, headers, body, len, NULL, NULL);
}

int tg_httpd_respond_shared(tg_httpd_req *r, int status, const char *const *headers,
                            const char *body, size_t len, void (*release)(void *arg), void *arg)
{
  conn *c = r->c;
  if (!c || c->closing) {
    if (c)
      c->pending = NULL;
    req_free(r);
    if (release)
      release(arg);
    return TG_ECANCELED;
  }
  c->pending = NULL;
  int keep = r->keep_alive && !c->eof;
  int rc = send_response_ext(c, status, headers, body ? body : "", body ? len : 0, keep, r->is_head,
                             release, arg);
  req_free(r);
  if (rc != 0)
    return rc == TG_EIO ? TG_ECANCELED : rc;
  if (!c->finishing && !c->closing) {
    if (c->in.len > c->in_off)
      process_input(c, NULL, 0); /* pipelined bytes already buffered */
    else if (!c->in_process)
      after_input(c);
  }
  return 0;
}

int tg_httpd_respond_json(tg_httpd_req *r, int status, const char *const *headers, json_t *body)
{
  const char *ct = "Content-Type: application/json; charset=utf-8";
  const char *hv[34];
  size_t n = 0;
  hv[n++] = ct;
  for (size_t i = 0; headers && headers[i]; i++) {
    if (n == 33) { /* a programming error, not input: never answer with headers missing */
      json_decref(body);
      tg_error("httpd_too_many_headers", "{s:i}", "limit", 32);
      tg_httpd_respond(r, 500, NULL, "", 0);
      return TG_EINVAL;
    }
    hv[n++] = headers[i];
  }
  hv[n] = NULL;
  size_t len = 0;
  /* Objects and arrays only, as json_dumps(JSON_COMPACT) (tg_json_dumps also writes scalars). */
  char *text = json_is_object(body) || json_is_array(body) ? tg_json_dumps(body, &len) : NULL;
  json_decref(body);
  if (!text) {
    static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}";
    tg_httpd_respond(r, 500, hv, oom, sizeof oom - 1);
    return TG_ENOMEM;
  }
  int rc = tg_httpd_respond(r, status, hv, text, len);
  free(text);
  return rc;
}

int tg_httpd_respond_error(tg_httpd_req *r, int status, const char *code, const char *message)
{
  return tg_httpd_respond_json(r, status, NULL,
                               json_pack("{s:s, s:s}", "error", code, "message", message));
}

/* --- streaming responses --- */

int tg_httpd_stream_begin(tg_httpd_req *r, int status, const char *const *headers,
                          tg_httpd_stream_cb cb, void *arg)
{
  conn *c = r->c;
  size_t hcap = 256, off;
  wreq *wr;
  if (!c || c->closing)
    return TG_ECANCELED;
  for (size_t i = 0; headers && headers[i]; i++)
    if (__builtin_add_overflow(hcap, strlen(headers[i]) + 2, &hcap))
      return TG_ETOOBIG;
  if (!(wr = malloc(sizeof *wr + hcap)))
    return TG_ENOMEM;
  *wr = (wreq){.last = 0};
  off = (size_t)snprintf(wr->data, hcap, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
  for (size_t i = 0; headers && headers[i]; i++) {
    off = put(wr->data, off, headers[i], strlen(headers[i]));
    off = put(wr->data, off, "\r\n", 2);
  }
  off = put(wr->data, off, "Date: ", 6);
  off = put(wr->data, off, http_date(c->srv), strlen(c->srv->date));
  off = put(wr->data, off, "\r\nConnection: close\r\n\r\n", 23);
  if (wreq_send(c, wr, off, 0) != 0)
    return TG_ECANCELED; /* c is closing: its close callback releases nothing of r's */
  r->stream_cb = cb;
  r->stream_arg = arg;
  c->streaming = 1;
  c->finishing = 1; /* nothing more is parsed on this connection */
  set_class(c, CLS_NONE);
  start_reading(c);
  return 0;
}

int tg_httpd_stream_write(tg_httpd_req *r, const char *data, size_t len)
{
  conn *c = r->c;
  int rc;
  if (!c || c->closing)
    return TG_ECANCELED;
  if (len == 0)
    return 0;
  if ((rc = conn_write(c, data, len, 0)) != 0)
    return rc == TG_EIO ? TG_ECANCELED : rc;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WRITE_HIGH_WATER) {
    r->stream_full = 1;
    return TG_EBUSY;
  }
  return 0;
}

void tg_httpd_stream_end(tg_httpd_req *r)
{
  conn *c = r->c;
  if (c) {
    c->pending = NULL;
    c->streaming = 0;
    if (!c->closing) {
      stop_reading(c);
      c->no_linger = 1; /* the client sends nothing we must read: close once it is written */
      conn_write(c, "", 0, 1);
    }
  }
  req_free(r);
}
