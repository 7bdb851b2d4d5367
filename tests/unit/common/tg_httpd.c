/*
 * Unit tests for common/tg_httpd.c: a real server on 127.0.0.1 (port 0) driven by raw sockets.
 *
 * The server runs on a private loop in the test thread; a helper thread plays the client with
 * blocking sockets (5 s receive timeout), stores what it read, and wakes the loop with a
 * uv_async_t, whose callback closes the server. Every test then asserts uv_loop_close() == 0,
 * so a leaked handle fails it; ASan reports leaked memory.
 */
#define _GNU_SOURCE /* memmem, asprintf */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tg_err.h"
#include "tg_httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct fixture fixture;
typedef void (*client_fn)(fixture *f);

struct fixture {
  uv_loop_t loop;
  uv_async_t done;
  tg_httpd *srv;
  int port;
  client_fn client;
  char out[65536]; /* what the client read */
  size_t out_len;
  int n_handled;
  int late_rc; /* tg_httpd_respond result of a late answer */
  int late_done;
  tg_httpd_req *held;
  int closed;
  int eofs; /* clean EOFs the client saw (the client thread must not assert) */
  /* /stream: a streaming response of STREAM_TOTAL bytes written as fast as back-pressure allows */
  size_t streamed; /* bytes the server queued */
  int busy, drained, stream_closed;
  size_t client_bytes; /* bytes the client read (head included) */
  /* /shared*: tg_httpd_respond_shared from shared_body */
  int released;       /* release calls seen */
  int released_early; /* of /shared-small: released before respond returned */
  int shared_ok;      /* the client read /shared's body intact (set by the client thread) */
};

#define SHARED_LEN 200000
static char shared_body[SHARED_LEN];

static void on_release(void *arg)
{
  fixture *f = arg;
  f->released++;
}

#define STREAM_TOTAL (8u << 20)
#define STREAM_PIECE 65536

/* --- client side (helper thread) --- */

static int dial(int port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
  while (n > 0) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    s += w;
    n -= (size_t)w;
  }
}

static void send_str(int fd, const char *s)
{
  send_all(fd, s, strlen(s));
}

/* Number of complete responses (headers + Content-Length body) at the start of buf. */
static int count_responses(const char *buf, size_t len)
{
  int n = 0;
  size_t off = 0;
  while (off < len) {
    const char *end = memmem(buf + off, len - off, "\r\n\r\n", 4);
    if (!end)
      break;
    size_t hlen = (size_t)(end - (buf + off)) + 4;
    size_t clen = 0;
    const char *cl = memmem(buf + off, hlen, "Content-Length: ", 16);
    if (cl)
      clen = strtoul(cl + 16, NULL, 10);
    if (strncmp(buf + off, "HTTP/1.1 100", 12) == 0)
      n--; /* an interim response does not count */
    if (off + hlen + clen > len)
      break;
    off += hlen + clen;
    n++;
  }
  return n;
}

/* Reads until n complete responses arrived, EOF, or the timeout. */
static void read_responses(fixture *f, int fd, int n)
{
  while (f->out_len < sizeof f->out - 1) {
    if (n > 0 && count_responses(f->out, f->out_len) >= n)
      break;
    ssize_t r = recv(fd, f->out + f->out_len, sizeof f->out - 1 - f->out_len, 0);
    if (r <= 0)
      break;
    f->out_len += (size_t)r;
  }
  f->out[f->out_len] = '\0';
}

/* Reads until EOF (or timeout / reset); returns 1 when the server closed cleanly. */
static int read_to_eof(fixture *f, int fd)
{
  for (;;) {
    ssize_t r = recv(fd, f->out + f->out_len, sizeof f->out - 1 - f->out_len, 0);
    if (r == 0) {
      f->out[f->out_len] = '\0';
      return 1;
    }
    if (r < 0) {
      f->out[f->out_len] = '\0';
      return 0;
    }
    f->out_len += (size_t)r;
  }
}

static void *client_main(void *arg)
{
  fixture *f = arg;
  f->client(f);
  uv_async_send(&f->done);
  return NULL;
}

/* --- server side (loop thread) --- */

typedef struct later {
  uv_timer_t t;
  tg_httpd_req *req;
  fixture *f;
} later;

static void on_later_closed(uv_handle_t *h)
{
  free(h->data);
}

static void echo(tg_httpd_req *r, fixture *f)
{
  size_t blen;
  const char *body = tg_httpd_body(r, &blen);
  const char *q = tg_httpd_query(r, "q");
  const char *h = tg_httpd_header(r, "x-test");
  char *text = NULL;
  int n = asprintf(&text, "%s %s q=%s h=%s n=%d len=%zu body=%s", tg_httpd_method(r),
                   tg_httpd_path(r), q ? q : "-", h ? h : "-", f->n_handled, blen, body);
  assert_true(n > 0);
  static const char *const hdrs[] = {"Content-Type: text/plain", NULL};
  tg_httpd_respond(r, 200, hdrs, text, (size_t)n);
  free(text);
}

static void on_later(uv_timer_t *t)
{
  later *l = t->data;
  if (strcmp(tg_httpd_path(l->req), "/gone") == 0) {
    l->f->late_rc = tg_httpd_respond(l->req, 200, NULL, "late", 4);
    l->f->late_done = 1;
  } else {
    echo(l->req, l->f);
  }
  uv_close((uv_handle_t *)&l->t, on_later_closed);
}

/* Writes /stream's pieces until the connection pushes back or all are queued. */
static void stream_more(tg_httpd_req *r, fixture *f)
{
  static char piece[STREAM_PIECE];
  while (f->streamed < STREAM_TOTAL) {
    int rc = tg_httpd_stream_write(r, piece, sizeof piece);
    if (rc == TG_EBUSY || rc == 0)
      f->streamed += sizeof piece;
    if (rc == TG_EBUSY) {
      f->busy++;
      return;
    }
    if (rc == TG_ECANCELED)
      return; /* the client went away: CLOSED follows */
    assert_int_equal(rc, 0);
  }
  tg_httpd_stream_end(r);
}

static void on_stream(tg_httpd_req *r, int event, void *arg)
{
  fixture *f = arg;
  if (event == TG_HTTPD_STREAM_DRAINED) {
    f->drained++;
    stream_more(r, f);
    return;
  }
  f->stream_closed++;
  tg_httpd_stream_end(r);
}

/* /async* and /gone answer after 50 ms from a timer, /hold is kept in f->held, /stream streams,
 * the rest at once. */
static void handler(tg_httpd_req *r, void *arg)
{
  fixture *f = arg;
  f->n_handled++;
  const char *p = tg_httpd_path(r);
  if (strncmp(p, "/async", 6) == 0 || strcmp(p, "/gone") == 0) {
    later *l = calloc(1, sizeof *l);
    l->req = r;
    l->f = f;
    uv_timer_init(tg_httpd_loop(r), &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, on_later, strcmp(p, "/gone") == 0 ? 300 : 50, 0);
    return;
  }
  if (strcmp(p, "/stream") == 0) {
    static const char *const hdrs[] = {"Content-Type: application/octet-stream", NULL};
    f->streamed = 0;
    assert_int_equal(tg_httpd_stream_begin(r, 200, hdrs, on_stream, f), 0);
    stream_more(r, f);
    return;
  }
  if (strncmp(p, "/shared", 7) == 0) {
    int small = strcmp(p, "/shared-small") == 0, before = f->released;
    for (size_t i = 0; i < SHARED_LEN; i++)
      shared_body[i] = (char)('a' + i % 26);
    tg_httpd_respond_shared(r, 200, NULL, shared_body, small ? 10 : SHARED_LEN, on_release, f);
    if (small)
      f->released_early = f->released == before + 1;
    return;
  }
  if (strcmp(p, "/hold") == 0) {
    f->held = r;
    return;
  }
  echo(r, f);
}

static void on_server_closed(void *arg)
{
  fixture *f = arg;
  f->closed = 1;
  if (f->held) {
    /* The connection is gone: the answer is dropped and the request freed. */
    f->late_rc = tg_httpd_respond(f->held, 200, NULL, "x", 1);
    f->held = NULL;
  }
}

static void on_client_done(uv_async_t *a)
{
  fixture *f = a->data;
  tg_httpd_close(f->srv, on_server_closed, f);
  uv_close((uv_handle_t *)a, NULL);
}

static fixture *run_with(client_fn client, const tg_httpd_limits *lim)
{
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(tg_httpd_start(&f->srv, &f->loop, "127.0.0.1", 0, lim, handler, f), 0);
  f->port = tg_httpd_port(f->srv);
  assert_true(f->port > 0);
  f->client = client;
  uv_async_init(&f->loop, &f->done, on_client_done);
  f->done.data = f;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, client_main, f), 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  pthread_join(th, NULL);
  assert_true(f->closed);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  return f;
}

static fixture *run(client_fn client)
{
  return run_with(client, NULL);
}

static int status_of(const char *resp)
{
  int st = 0;
  if (sscanf(resp, "HTTP/1.1 %d", &st) != 1)
    return -1;
  return st;
}

/* --- tests --- */

static void c_simple_get(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "GET /hello?q=a%20b+c&z=1 HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n\r\n");
  read_responses(f, fd, 1);
  close(fd);
}

static void test_simple_get(void **state)
{
  (void)state;
  fixture *f = run(c_simple_get);
  assert_int_equal(status_of(f->out), 200);
  assert_non_null(strstr(f->out, "\r\nContent-Length: "));
  assert_non_null(strstr(f->out, "\r\nDate: "));
  assert_non_null(strstr(f->out, "Connection: keep-alive"));
  assert_non_null(strstr(f->out, "GET /hello q=a b c h=yes n=1 len=0 body="));
  free(f);
}

static void c_post(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello");
  usleep(20000); /* body in two segments */
  send_str(fd, " world");
  read_responses(f, fd, 1);
  close(fd);
}

static void test_post_body(void **state)
{
  (void)state;
  fixture *f = run(c_post);
  assert_int_equal(status_of(f->out), 200);
  assert_non_null(strstr(f->out, "POST /items q=- h=- n=1 len=11 body=hello world"));
  free(f);
}

static void c_async(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "GET /async1 HTTP/1.1\r\nHost: x\r\n\r\n");
  read_responses(f, fd, 1);
  /* Keep-alive: a second request on the same connection. */
  send_str(fd, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
  read_responses(f, fd, 2);
  close(fd);
}

static void test_async_response(void **state)
{
  (void)state;
  fixture *f = run(c_async);
  assert_int_equal(status_of(f->out), 200);
  char *a = strstr(f->out, "GET /async1");
  char *b = strstr(f->out, "GET /second");
  assert_non_null(a);
  assert_non_null(b);
  assert_true(a < b);
  assert_int_equal(f->n_handled, 2);
  free(f);
}

static void c_pipelined(fixture *f)
{
  int fd = dial(f->port);
  /* The first is slow (async), the second instant: answers must still come in order. */
  send_str(fd, "GET /async-first HTTP/1.1\r\nHost: x\r\n\r\n"
               "POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
               "GET /third?q=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  f->eofs += read_to_eof(f, fd);
  close(fd);
}

static void test_pipelined_in_order(void **state)
{
  (void)state;
  fixture *f = run(c_pipelined);
  char *a = strstr(f->out, "GET /async-first q=- h=- n=1");
  char *b = strstr(f->out, "POST /second q=- h=- n=2 len=3 body=abc");
  char *c = strstr(f->out, "GET /third q=3 h=- n=3");
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_true(a < b && b < c);
  assert_int_equal(count_responses(f->out, f->out_len), 3);
  assert_non_null(strstr(f->out, "Connection: close"));
  assert_int_equal(f->eofs, 1);
  free(f);
}

static void c_big_header(fixture *f)
{
  int fd = dial(f->port);
  char *big = malloc(20000);
  memset(big, 'a', 19999);
  big[19999] = '\0';
  send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
  send_str(fd, big);
  send_str(fd, "\r\n\r\n");
  free(big);
  read_to_eof(f, fd);
  close(fd);
}

static void test_oversize_header_431(void **state)
{
  (void)state;
  fixture *f = run(c_big_header);
  assert_int_equal(status_of(f->out), 431);
  assert_non_null(strstr(f->out, "Connection: close"));
  assert_int_equal(f->n_handled, 0);
  free(f);
}

static void c_many_headers(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < 70; i++) {
    char line[64];
    snprintf(line, sizeof line, "X-H%d: v\r\n", i);
    send_str(fd, line);
  }
  send_str(fd, "\r\n");
  read_to_eof(f, fd);
  close(fd);
}

static void test_too_many_headers_431(void **state)
{
  (void)state;
  fixture *f = run(c_many_headers);
  assert_int_equal(status_of(f->out), 431);
  free(f);
}

static void c_long_url(fixture *f)
{
  int fd = dial(f->port);
  char *u = malloc(9000);
  memset(u, 'u', 8999);
  u[8999] = '\0';
  send_str(fd, "GET /");
  send_str(fd, u);
  send_str(fd, " HTTP/1.1\r\nHost: x\r\n\r\n");
  free(u);
  read_to_eof(f, fd);
  close(fd);
}

static void test_long_url_414(void **state)
{
  (void)state;
  fixture *f = run(c_long_url);
  assert_int_equal(status_of(f->out), 414);
  free(f);
}

static void c_big_body_declared(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n");
  read_to_eof(f, fd);
  close(fd);
}

static void c_big_body_chunked(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 5; i++)
    send_str(fd, "200\r\n"
                 "................................................................................"
                 "................................................................................"
                 "................................................................................"
                 "................................................................................"
                 "................................................................................"
                 "................................................................................"
                 "................................\r\n");
  read_to_eof(f, fd);
  close(fd);
}

static void test_oversize_body_413(void **state)
{
  (void)state;
  tg_httpd_limits lim;
  tg_httpd_limits_default(&lim);
  lim.max_body_bytes = 1000;
  fixture *f = run_with(c_big_body_declared, &lim);
  assert_int_equal(status_of(f->out), 413);
  assert_int_equal(f->n_handled, 0);
  free(f);
  f = run_with(c_big_body_chunked, &lim); /* no Content-Length: caught while reading */
  assert_int_equal(status_of(f->out), 413);
  assert_int_equal(f->n_handled, 0);
  free(f);
}

static void c_garbage(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "HELLO THERE\r\n\r\n");
  read_to_eof(f, fd);
  close(fd);
}

static void test_garbage_400(void **state)
{
  (void)state;
  fixture *f = run(c_garbage);
  assert_int_equal(status_of(f->out), 400);
  assert_non_null(strstr(f->out, "\"error\":\"bad_request\""));
  assert_int_equal(f->n_handled, 0);
  free(f);
}

static void c_cl_te(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  read_to_eof(f, fd);
  close(fd);
}

static void test_cl_and_te_400(void **state)
{
  (void)state;
  fixture *f = run(c_cl_te);
  assert_int_equal(status_of(f->out), 400);
  assert_int_equal(f->n_handled, 0);
  free(f);
}

static void c_chunked(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               "Expect: 100-continue\r\n\r\n");
  /* The interim 100 Continue comes before we send the body. */
  char tmp[64] = {0};
  ssize_t r = recv(fd, tmp, 25, MSG_WAITALL);
  if (r == 25 && memcmp(tmp, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0)
    memcpy(f->out, "CONTINUE-OK ", 12), f->out_len = 12;
  send_str(fd, "5\r\nhello\r\n");
  send_str(fd, "6\r\n world\r\n0\r\n\r\n");
  read_responses(f, fd, 1);
  close(fd);
}

static void test_chunked_body_and_continue(void **state)
{
  (void)state;
  fixture *f = run(c_chunked);
  assert_true(strncmp(f->out, "CONTINUE-OK HTTP/1.1 200", 24) == 0);
  assert_non_null(strstr(f->out, "POST /c q=- h=- n=1 len=11 body=hello world"));
  free(f);
}

static void c_http10(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "GET /old HTTP/1.0\r\n\r\n");
  f->eofs += read_to_eof(f, fd); /* 1.0 without keep-alive: server closes */
  close(fd);
}

static void test_http10_closes(void **state)
{
  (void)state;
  fixture *f = run(c_http10);
  assert_int_equal(status_of(f->out), 200);
  assert_non_null(strstr(f->out, "Connection: close"));
  assert_non_null(strstr(f->out, "GET /old"));
  assert_int_equal(f->eofs, 1);
  free(f);
}

static void c_half_close(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "GET /async-hc HTTP/1.1\r\nHost: x\r\n\r\nGET /cut HTTP/1.1\r\nHo");
  shutdown(fd, SHUT_WR); /* EOF: the first is answered, the cut-off second is dropped */
  f->eofs += read_to_eof(f, fd);
  close(fd);
}

static void test_half_close_answers_then_closes(void **state)
{
  (void)state;
  fixture *f = run(c_half_close);
  assert_int_equal(status_of(f->out), 200);
  assert_non_null(strstr(f->out, "GET /async-hc"));
  assert_int_equal(count_responses(f->out, f->out_len), 1);
  assert_int_equal(f->eofs, 1);
  assert_int_equal(f->n_handled, 1);
  free(f);
}

static void c_disconnect(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "GET /gone HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(50000);
  close(fd); /* before the 300 ms answer */
  usleep(500000);
}

static void test_disconnect_before_async_response(void **state)
{
  (void)state;
  fixture *f = run(c_disconnect);
  assert_int_equal(f->n_handled, 1);
  assert_true(f->late_done);
  /* Reading is paused while the request waits, so the close may only show on the write. */
  assert_true(f->late_rc == 0 || f->late_rc == TG_ECANCELED);
  free(f);
}

static void c_hold(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(100000);
  close(fd);
}

static void test_request_outlives_server_close(void **state)
{
  (void)state;
  fixture *f = run(c_hold);
  assert_int_equal(f->n_handled, 1);
  assert_int_equal(f->late_rc, TG_ECANCELED);
  free(f);
}

static void c_idle(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  read_responses(f, fd, 1);
  /* Idle keep-alive timeout (200 ms): the server closes. */
  f->eofs += read_to_eof(f, fd);
  close(fd);
  /* Slow headers (200 ms): 408, then close. */
  fd = dial(f->port);
  send_str(fd, "GET /b HTTP/1.1\r\nHo");
  f->eofs += read_to_eof(f, fd);
  close(fd);
}

static void test_timeouts(void **state)
{
  (void)state;
  tg_httpd_limits lim;
  tg_httpd_limits_default(&lim);
  lim.idle_timeout_ms = 200;
  lim.header_timeout_ms = 200;
  fixture *f = run_with(c_idle, &lim);
  assert_int_equal(status_of(f->out), 200);
  assert_non_null(strstr(f->out, "HTTP/1.1 408"));
  assert_int_equal(f->eofs, 2);
  assert_int_equal(f->n_handled, 1);
  free(f);
}

/* Appends tag to what the client read. */
static void note(fixture *f, const char *tag)
{
  size_t n = strlen(tag);
  if (f->out_len + n < sizeof f->out) {
    memcpy(f->out + f->out_len, tag, n + 1);
    f->out_len += n;
  }
}

/* Notes tag when the server closed fd without a byte more: EOF, or a reset when the server had
 * not read everything fd sent before it closed. */
static void note_if_closed(fixture *f, int fd, const char *tag)
{
  char x;
  ssize_t r = recv(fd, &x, 1, 0);
  if (r == 0 || (r < 0 && errno == ECONNRESET))
    note(f, tag);
}

/* GET /a on fd (keep-alive), then reads until the client has n responses in all. */
static void get_a(fixture *f, int fd, int n)
{
  send_str(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  read_responses(f, fd, n);
}

/* max 1: an idle keep-alive connection makes room for a new client, which is served. */
static void c_evict_idle(fixture *f)
{
  int a = dial(f->port);
  get_a(f, a, 1);
  int b = dial(f->port);
  note_if_closed(f, a, "|A_EVICTED");
  get_a(f, b, 2);
  close(b);
  close(a);
}

/* max 2: with an idle one and two heads, the idle one goes first, then the oldest head. */
static void c_evict_order(fixture *f)
{
  int idle = dial(f->port);
  send_str(idle, "GET /i HTTP/1.1\r\nHost: x\r\n\r\n");
  read_responses(f, idle, 1);
  int slow = dial(f->port);
  send_str(slow, "GET /slow HTTP/1.1\r\n");
  int late = dial(f->port); /* evicts idle */
  note_if_closed(f, idle, "|IDLE_EVICTED");
  send_str(late, "GET /late HTTP/1.1\r\n");
  int c = dial(f->port); /* evicts slow, the older head */
  note_if_closed(f, slow, "|SLOW_EVICTED");
  send_str(late, "Host: x\r\n\r\n");
  read_responses(f, late, 2);
  send_str(c, "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  if (read_to_eof(f, c))
    note(f, "|C_SERVED");
  close(c);
  close(late);
  close(slow);
  close(idle);
}

/* max 1 with a request in progress: nothing to evict, the new client is accepted and closed. */
static void c_max_conns_busy(fixture *f)
{
  int a = dial(f->port);
  send_str(a, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(100 * 1000); /* the request is in the handler's hands */
  int b = dial(f->port);
  note_if_closed(f, b, "|REJECTED");
  close(b);
  close(a);
}

/* One connection per peer: a second one from 127.0.0.1 is closed at once, the first still works. */
static void c_per_peer(fixture *f)
{
  int fds[2] = {dial(f->port), dial(f->port)};
  note_if_closed(f, fds[1], "|PEER_REFUSED");
  get_a(f, fds[0], 1);
  for (int i = 0; i < 2; i++)
    close(fds[i]);
}

/* Above 3/4 of max_connections a head must arrive within pressure_header_timeout_ms. */
static void c_pressure(fixture *f)
{
  int fds[4];
  for (int i = 0; i < 4; i++) /* 4 of 4: under pressure */
    fds[i] = dial(f->port);
  struct timeval t0, t1;
  gettimeofday(&t0, NULL);
  send_str(fds[3], "GET /x HTTP/1.1\r\n");
  read_to_eof(f, fds[3]);
  gettimeofday(&t1, NULL);
  long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
  if (ms < 2000)
    note(f, "|SHORT");
  for (int i = 0; i < 4; i++)
    close(fds[i]);
}

/* Reads one response whose body is SHARED_LEN bytes of the pattern; 1 when intact. */
static int read_shared(int fd)
{
  static char buf[SHARED_LEN + 4096];
  size_t len = 0;
  char *body = NULL;
  while (len < sizeof buf) {
    ssize_t r = recv(fd, buf + len, sizeof buf - len, 0);
    if (r <= 0)
      break;
    len += (size_t)r;
    buf[len < sizeof buf ? len : sizeof buf - 1] = '\0';
    if (!body && (body = strstr(buf, "\r\n\r\n")) != NULL)
      body += 4;
    if (body && (size_t)(buf + len - body) >= SHARED_LEN)
      break;
  }
  if (!body || (size_t)(buf + len - body) != SHARED_LEN || !strstr(buf, "Content-Length: 200000"))
    return 0;
  for (size_t i = 0; i < SHARED_LEN; i++)
    if (body[i] != (char)('a' + i % 26))
      return 0;
  return 1;
}

static void c_shared(fixture *f)
{
  int fd = dial(f->port);
  send_str(fd, "GET /shared HTTP/1.1\r\nHost: x\r\n\r\n");
  f->shared_ok = read_shared(fd);
  send_str(fd, "GET /shared-small HTTP/1.1\r\nHost: x\r\n\r\n");
  read_responses(f, fd, 1);
  close(fd);
  /* a client that asks and goes away without reading */
  fd = dial(f->port);
  send_str(fd, "GET /shared HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(20000);
  close(fd);
  usleep(50000);
}

/* A long body is written from the caller's memory and released exactly once, whether the client
 * read it, a short one was copied (released at once), or the client went away. */
static void test_respond_shared(void **state)
{
  (void)state;
  fixture *f = run(c_shared);
  assert_true(f->shared_ok);
  assert_int_equal(status_of(f->out), 200);
  assert_non_null(strstr(f->out, "\r\n\r\nabcdefghij"));
  assert_true(f->released_early);
  assert_int_equal(f->n_handled, 3);
  assert_int_equal(f->released, 3);
  free(f);
}

static void test_max_connections(void **state)
{
  (void)state;
  tg_httpd_limits lim;
  tg_httpd_limits_default(&lim);
  lim.max_connections = 1;
  fixture *f = run_with(c_evict_idle, &lim);
  assert_non_null(strstr(f->out, "|A_EVICTED"));
  assert_int_equal(count_responses(f->out, f->out_len), 2);
  free(f);

  lim.max_connections = 2;
  f = run_with(c_evict_order, &lim);
  assert_non_null(strstr(f->out, "|IDLE_EVICTED"));
  assert_non_null(strstr(f->out, "|SLOW_EVICTED"));
  assert_non_null(strstr(f->out, "GET /late"));
  assert_non_null(strstr(f->out, "GET /c"));
  assert_non_null(strstr(f->out, "|C_SERVED"));
  assert_null(strstr(f->out, "GET /slow"));
  free(f);

  static const struct {
    client_fn client;
    unsigned max, per_peer;
    uint64_t pressure_ms;
    const char *want[2]; /* in what the client read */
  } cases[] = {
      {c_max_conns_busy, 1, 256, 2000, {"|REJECTED", "|REJECTED"}},
      {c_per_peer, 10, 1, 2000, {"|PEER_REFUSED", "HTTP/1.1 200"}},
      {c_pressure, 4, 256, 200, {"HTTP/1.1 408", "|SHORT"}}, /* 4 of 4 open: under pressure */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lim.max_connections = cases[i].max;
    lim.max_connections_per_peer = cases[i].per_peer;
    lim.pressure_header_timeout_ms = cases[i].pressure_ms;
    f = run_with(cases[i].client, &lim);
    assert_non_null(strstr(f->out, cases[i].want[0]));
    assert_non_null(strstr(f->out, cases[i].want[1]));
    free(f);
  }
}

/* A slow reader: the server's writes push back (TG_EBUSY), resume on DRAINED, and every byte
 * arrives before the close that ends the body. */
static void c_stream_slow(fixture *f)
{
  int fd = dial(f->port);
  char buf[65536];
  send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  usleep(300 * 1000); /* let the queue fill */
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0)
      break;
    if (f->client_bytes == 0) {
      size_t n = (size_t)r < sizeof f->out - 1 ? (size_t)r : sizeof f->out - 1;
      memcpy(f->out, buf, n);
      f->out_len = n;
    }
    f->client_bytes += (size_t)r;
    usleep(200); /* slower than the loopback */
  }
  close(fd);
}

static void test_stream_back_pressure(void **state)
{
  (void)state;
  fixture *f = run(c_stream_slow);
  const char *body = strstr(f->out, "\r\n\r\n");
  assert_int_equal(status_of(f->out), 200);
  assert_non_null(strstr(f->out, "Connection: close"));
  assert_null(strstr(f->out, "Content-Length"));
  assert_non_null(body);
  assert_int_equal(f->client_bytes - (size_t)(body + 4 - f->out), STREAM_TOTAL);
  assert_true(f->busy > 0);
  assert_int_equal(f->drained, f->busy);
  assert_int_equal(f->stream_closed, 0);
  free(f);
}

/* The client goes away mid-stream: CLOSED reaches the route, which ends the stream. */
static void c_stream_gone(fixture *f)
{
  int fd = dial(f->port);
  char buf[4096];
  send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  (void)!recv(fd, buf, sizeof buf, 0);
  close(fd);
  usleep(200 * 1000);
}

static void test_stream_client_gone(void **state)
{
  (void)state;
  signal(SIGPIPE, SIG_IGN); /* as the programs do: a write to the reset socket fails instead */
  fixture *f = run(c_stream_gone);
  assert_int_equal(f->stream_closed, 1);
  free(f);
}

static void never_called(tg_httpd_req *r, void *arg)
{
  (void)arg;
  fail_msg("no client connects in this test");
  tg_httpd_respond(r, 500, NULL, "", 0);
}

/* Listeners that all set reuseport share a port; one that does not set it is refused by theirs
 * (TG_ECONFLICT), and so is one that sets it beside a listener that did not. */
static void test_reuseport(void **state)
{
  uv_loop_t loop;
  tg_httpd *a = NULL, *b = NULL, *c = NULL;
  tg_httpd_limits lim;
  int port;
  (void)state;
  tg_httpd_limits_default(&lim);
  lim.reuseport = 1;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tg_httpd_start(&a, &loop, "127.0.0.1", 0, &lim, never_called, NULL), 0);
  port = tg_httpd_port(a);
  assert_int_equal(tg_httpd_start(&b, &loop, "127.0.0.1", port, &lim, never_called, NULL), 0);
  assert_int_equal(tg_httpd_port(b), port);
  assert_int_equal(tg_httpd_start(&c, &loop, "127.0.0.1", port, NULL, never_called, NULL),
                   TG_ECONFLICT);
  assert_null(c);
  tg_httpd_close(a, NULL, NULL);
  tg_httpd_close(b, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);

  assert_int_equal(tg_httpd_start(&a, &loop, "127.0.0.1", 0, NULL, never_called, NULL), 0);
  port = tg_httpd_port(a);
  assert_int_equal(tg_httpd_start(&b, &loop, "127.0.0.1", port, &lim, never_called, NULL),
                   TG_ECONFLICT);
  assert_null(b);
  tg_httpd_close(a, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simple_get),
      cmocka_unit_test(test_stream_back_pressure),
      cmocka_unit_test(test_stream_client_gone),
      cmocka_unit_test(test_reuseport),
      cmocka_unit_test(test_post_body),
      cmocka_unit_test(test_async_response),
      cmocka_unit_test(test_pipelined_in_order),
      cmocka_unit_test(test_oversize_header_431),
      cmocka_unit_test(test_too_many_headers_431),
      cmocka_unit_test(test_long_url_414),
      cmocka_unit_test(test_oversize_body_413),
      cmocka_unit_test(test_garbage_400),
      cmocka_unit_test(test_cl_and_te_400),
      cmocka_unit_test(test_chunked_body_and_continue),
      cmocka_unit_test(test_http10_closes),
      cmocka_unit_test(test_half_close_answers_then_closes),
      cmocka_unit_test(test_disconnect_before_async_response),
      cmocka_unit_test(test_request_outlives_server_close),
      cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_max_connections),
      cmocka_unit_test(test_respond_shared),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
