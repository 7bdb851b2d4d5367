/*
 * scripted_http.h: a tiny HTTP/1.1 server for unit tests, on a libuv loop, 127.0.0.1 only.
 *
 * Each connection carries one request: the server reads the head and a Content-Length body,
 * asks the test's respond() for the raw response bytes, writes them and closes the connection.
 * Every request is recorded (head and body) so tests can assert what the client sent. Not a
 * general server: no chunked request bodies, no pipelining, requests up to 64 KiB.
 * Header-only (static functions) so several test executables can share it.
 */
#ifndef SCRIPTED_HTTP_H
#define SCRIPTED_HTTP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define SH_MAX_REQ 64
#define SH_MAX_CONN 64

typedef struct sh_server sh_server;

/* Returns a malloc'd raw HTTP response for the request, or NULL to close without answering. */
typedef char *(*sh_respond_fn)(sh_server *s, const char *method, const char *target,
                               const char *head, const char *body);

typedef struct sh_conn {
  uv_tcp_t tcp;
  uv_write_t w;
  sh_server *s;
  char buf[65536];
  size_t len;
  int answered;
  char *resp;
} sh_conn;

struct sh_server {
  uv_tcp_t tcp;
  sh_respond_fn respond;
  void *ctx;
  int n_requests;
  char *heads[SH_MAX_REQ];
  char *bodies[SH_MAX_REQ];
  sh_conn *conns[SH_MAX_CONN];
};

/* "HTTP/1.1 <status> X\r\n" + JSON content type + extra (each line ending \r\n) + body. */
static inline char *sh_resp(int status, const char *extra, const char *body)
{
  size_t n = strlen(body) + (extra ? strlen(extra) : 0) + 256;
  char *p = malloc(n);
  snprintf(p, n,
           "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
           "Connection: close\r\n%s\r\n%s",
           status, strlen(body), extra ? extra : "", body);
  return p;
}

/* 1 if request i's head has header line "name: value" (case-insensitive name). */
static inline const char *sh_header(const sh_server *s, int i, const char *name)
{
  static char val[1024];
  const char *h = s->heads[i];
  size_t n = strlen(name);
  while ((h = strstr(h, "\r\n")) != NULL) {
    h += 2;
    if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
      const char *v = h + n + 1, *e;
      while (*v == ' ')
        v++;
      e = strstr(v, "\r\n");
      snprintf(val, sizeof val, "%.*s", (int)(e - v), v);
      return val;
    }
  }
  return NULL;
}

static inline void sh_on_conn_closed(uv_handle_t *h)
{
  sh_conn *k = h->data;
  for (int i = 0; i < SH_MAX_CONN; i++)
    if (k->s->conns[i] == k)
      k->s->conns[i] = NULL;
  free(k->resp);
  free(k);
}

static inline void sh_close_conn(sh_conn *k)
{
  if (!uv_is_closing((uv_handle_t *)&k->tcp))
    uv_close((uv_handle_t *)&k->tcp, sh_on_conn_closed);
}

static inline void sh_on_written(uv_write_t *w, int status)
{
  sh_close_conn(w->data);
}

static inline void sh_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  sh_conn *k = h->data;
  buf->base = k->buf + k->len;
  buf->len = sizeof k->buf - 1 - k->len;
}

static inline void sh_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
  sh_conn *k = st->data;
  sh_server *s = k->s;
  char *end, method[16] = "", target[2048] = "";
  const char *cl;
  size_t head_len, body_len = 0;

  if (n < 0) {
    sh_close_conn(k);
    return;
  }
  k->len += (size_t)n;
  k->buf[k->len] = 0;
  if (k->answered || !(end = strstr(k->buf, "\r\n\r\n")))
    return;
  head_len = (size_t)(end - k->buf) + 4;
  for (cl = k->buf; (cl = strstr(cl, "\r\n")) != NULL;) {
    cl += 2;
    if (strncasecmp(cl, "Content-Length:", 15) == 0) {
      body_len = strtoul(cl + 15, NULL, 10);
      break;
    }
  }
  if (k->len < head_len + body_len)
    return;
  k->answered = 1;
  uv_read_stop(st);
  sscanf(k->buf, "%15s %2047s", method, target);
  if (s->n_requests < SH_MAX_REQ) {
    s->heads[s->n_requests] = strndup(k->buf, head_len);
    s->bodies[s->n_requests] = strndup(k->buf + head_len, body_len);
    s->n_requests++;
  }
  k->resp = s->respond(s, method, target, k->buf, k->buf + head_len);
  if (!k->resp) {
    sh_close_conn(k);
    return;
  }
  {
    uv_buf_t out = uv_buf_init(k->resp, (unsigned)strlen(k->resp));
    k->w.data = k;
    if (uv_write(&k->w, st, &out, 1, sh_on_written))
      sh_close_conn(k);
  }
}

static inline void sh_on_connection(uv_stream_t *server, int status)
{
  sh_server *s = server->data;
  sh_conn *k;
  int slot = -1;

  if (status < 0)
    return;
  k = calloc(1, sizeof *k);
  k->s = s;
  uv_tcp_init(server->loop, &k->tcp);
  k->tcp.data = k;
  for (int i = 0; i < SH_MAX_CONN && slot < 0; i++)
    if (!s->conns[i])
      slot = i;
  if (slot >= 0)
    s->conns[slot] = k;
  if (uv_accept(server, (uv_stream_t *)&k->tcp) || slot < 0 ||
      uv_read_start((uv_stream_t *)&k->tcp, sh_alloc, sh_on_read))
    sh_close_conn(k);
}

/* Listens on 127.0.0.1:port. Returns 0 or a UV error. */
static inline int sh_start(sh_server *s, uv_loop_t *loop, int port, sh_respond_fn respond,
                           void *ctx)
{
  struct sockaddr_in addr;
  int rc;
  memset(s, 0, sizeof *s);
  s->respond = respond;
  s->ctx = ctx;
  uv_tcp_init(loop, &s->tcp);
  s->tcp.data = s;
  uv_ip4_addr("127.0.0.1", port, &addr);
  rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&addr, 0);
  if (!rc)
    rc = uv_listen((uv_stream_t *)&s->tcp, 64, sh_on_connection);
  return rc;
}

/* Closes the listener and every open connection; run the loop afterwards. Frees records. */
static inline void sh_stop(sh_server *s)
{
  for (int i = 0; i < SH_MAX_CONN; i++)
    if (s->conns[i])
      sh_close_conn(s->conns[i]);
  uv_close((uv_handle_t *)&s->tcp, NULL);
  for (int i = 0; i < s->n_requests; i++) {
    free(s->heads[i]);
    free(s->bodies[i]);
  }
  s->n_requests = 0;
}

#endif
