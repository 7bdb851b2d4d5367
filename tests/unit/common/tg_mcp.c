/*
 * Unit tests for common/tg_mcp.c against a scripted HTTP server inside the test: a uv_tcp server
 * on 127.0.0.1:0 that reads one request per connection (Content-Length bodies, as curl sends),
 * records it, and answers from the test's script with "Connection: close". Each test runs the
 * real tg_http client on the same loop and ends with uv_loop_close() == 0.
 */
#include "tg_unit.h"

#include "tg_err.h"
#include "tg_http.h"
#include "tg_mcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_REQS 32

typedef struct tctx tctx;

typedef struct conn {
  uv_tcp_t tcp;
  tctx *t;
  char *buf;
  size_t len, cap;
  int answered, closing;
  struct conn *next;
} conn;

typedef struct req_rec {
  char verb[8];
  char *headers; /* raw header block */
  char *body;
  json_t *msg;        /* parsed body or NULL */
  const char *method; /* JSON-RPC method or NULL */
  json_t *id;
} req_rec;

typedef char *(*handler_fn)(tctx *t, conn *c, req_rec *r);

struct tctx {
  uv_loop_t loop;
  uv_tcp_t listener;
  int port;
  conn *conns;
  req_rec reqs[MAX_REQS];
  int n;
  handler_fn handle;
  const char *version; /* protocolVersion the server answers */
  int json_mode;       /* initialize answered as JSON instead of SSE */
  int ids_per_session; /* SSE event ids restart in every session (A.8 allows it) */
  int inits, calls;    /* counters of what the server saw */
  conn *held;          /* a tools/call stream kept open */
  int answers;         /* server-request answers received */
  tg_http_client *http;
  tg_mcp_client *m;
  int pending;       /* client operations not yet completed */
  uv_timer_t linger; /* delays the close when linger_ms > 0 */
  long linger_ms;
  int delete_status; /* answer to DELETE; 0 = 200 */
  int gets;          /* GET requests seen */
  uint64_t t_cut;    /* when the server closed a stream (ms, loop time) */
  uint64_t t_get;    /* when the resume GET arrived */
  int progress[8];   /* progress values delivered, in order */
  int n_progress;
  char notes[4][64]; /* methods delivered to on_notify */
  int n_notes;
  tg_mcp_call *call_handle;
  json_t *tools;
  uv_timer_t aux; /* per-test timer (cancel, drip) */
  char *drip[8];  /* pieces the drip timer writes, one per tick */
  int n_drip, drip_next;
  conn *drip_conn;
  int ncb;
  tg_mcp_error err[4];
  int has_err[4];
  json_t *result[4];
};

/* ---- the scripted server ------------------------------------------------------------------ */

static char *fmt(const char *f, ...)
{
  va_list ap;
  char *s;
  int n;
  va_start(ap, f);
  n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  assert_true(n >= 0);
  s = malloc((size_t)n + 1);
  va_start(ap, f);
  vsnprintf(s, (size_t)n + 1, f, ap);
  va_end(ap);
  return s;
}

static char *json_resp(int status, const char *extra, const char *body)
{
  return fmt("HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n%s\r\n%s",
             status, strlen(body), extra ? extra : "", body);
}

static char *sse_resp(const char *extra, const char *events)
{
  return fmt("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
             "Connection: close\r\n%s\r\n%s",
             extra ? extra : "", events);
}

static char *accepted(void)
{
  /* server-everything's 202: chunked with an empty body (mcp-client.md A.3). */
  return fmt("HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
             "0\r\n\r\n");
}

/* Value of header name in r (case-insensitive), copied into out; NULL if absent. */
static const char *hdr(const req_rec *r, const char *name, char *out, size_t n)
{
  size_t nl = strlen(name);
  for (const char *p = r->headers; p && *p;) {
    const char *e = strstr(p, "\r\n");
    size_t ll = e ? (size_t)(e - p) : strlen(p);
    if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ')
        v++;
      snprintf(out, n, "%.*s", (int)(ll - (size_t)(v - p)), v);
      return out;
    }
    if (!e)
      break;
    p = e + 2;
  }
  return NULL;
}

static void on_conn_closed(uv_handle_t *h)
{
  conn *c = h->data;
  tctx *t = c->t;
  conn **pp = &t->conns;
  while (*pp != c)
    pp = &(*pp)->next;
  *pp = c->next;
  free(c->buf);
  free(c);
}

static void conn_close(conn *c)
{
  if (c->closing)
    return;
  c->closing = 1;
  if (c->t->held == c)
    c->t->held = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

typedef struct wreq {
  uv_write_t w;
  char *data;
  int close_after;
} wreq;

static void on_written(uv_write_t *w, int status)
{
  wreq *wr = (wreq *)w;
  conn *c = w->data;
  if (wr->close_after)
    conn_close(c);
  free(wr->data);
  free(wr);
}

static void conn_write(conn *c, char *data, int close_after)
{
  wreq *wr = calloc(1, sizeof *wr);
  uv_buf_t b = uv_buf_init(data, (unsigned)strlen(data));
  wr->data = data;
  wr->close_after = close_after;
  wr->w.data = c;
  assert_int_equal(uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written), 0);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
  conn *c = h->data;
  if (c->cap - c->len < 4096) {
    c->cap = c->cap ? c->cap * 2 : 8192;
    c->buf = realloc(c->buf, c->cap);
  }
  *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len - 1));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
  conn *c = s->data;
  tctx *t = c->t;
  char *end, clbuf[32];
  size_t hlen, clen = 0;
  req_rec *r;
  char *resp;

  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)nread;
  c->buf[c->len] = 0;
  if (c->answered || !(end = strstr(c->buf, "\r\n\r\n")))
    return;
  hlen = (size_t)(end - c->buf) + 4;
  assert_true(t->n < MAX_REQS);
  r = &t->reqs[t->n];
  r->headers = strndup(c->buf, hlen - 2);
  if (hdr(r, "Content-Length", clbuf, sizeof clbuf))
    clen = strtoul(clbuf, NULL, 10);
  if (c->len < hlen + clen) {
    free(r->headers);
    r->headers = NULL;
    return;
  }
  t->n++;
  c->answered = 1;
  sscanf(c->buf, "%7s", r->verb);
  r->body = strndup(c->buf + hlen, clen);
  r->msg = json_loads(r->body, 0, NULL);
  r->method = json_string_value(json_object_get(r->msg, "method"));
  r->id = json_object_get(r->msg, "id");
  resp = t->handle(t, c, r);
  if (resp)
    conn_write(c, resp, 1);
}

static void on_connection(uv_stream_t *srv, int status)
{
  tctx *t = srv->data;
  conn *c = calloc(1, sizeof *c);
  assert_int_equal(status, 0);
  c->t = t;
  uv_tcp_init(&t->loop, &c->tcp);
  c->tcp.data = c;
  c->next = t->conns;
  t->conns = c;
  assert_int_equal(uv_accept(srv, (uv_stream_t *)&c->tcp), 0);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void srv_start(tctx *t)
{
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(&t->loop, &t->listener);
  t->listener.data = t;
  assert_int_equal(uv_tcp_bind(&t->listener, (const struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&t->listener, 16, on_connection), 0);
  uv_tcp_getsockname(&t->listener, (struct sockaddr *)&bound, &len);
  t->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void srv_stop(tctx *t)
{
  uv_close((uv_handle_t *)&t->listener, NULL);
  for (conn *c = t->conns; c; c = c->next)
    conn_close(c);
}

/* The parts every script shares: initialize (new session id each time), initialized, DELETE,
 * and answers to server requests. Returns NULL when the request is the script's to answer. */
static char *base(tctx *t, req_rec *r, int *mine)
{
  *mine = 1;
  if (strcmp(r->verb, "DELETE") == 0)
    return fmt("HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
               t->delete_status ? t->delete_status : 200);
  if (r->method && strcmp(r->method, "initialize") == 0) {
    char *body, *sid, *out;
    t->inits++;
    body = fmt("{\"result\":{\"protocolVersion\":\"%s\",\"capabilities\":{\"tools\":{}},"
               "\"serverInfo\":{\"name\":\"scripted\",\"version\":\"1\"}},\"jsonrpc\":\"2.0\","
               "\"id\":%lld}",
               t->version, (long long)json_integer_value(r->id));
    sid = fmt("mcp-session-id: sess-%d\r\n", t->inits); /* lower case on purpose */
    if (t->json_mode) {
      out = json_resp(200, sid, body);
    } else {
      int n = t->ids_per_session ? 1 : t->inits;
      char *ev = fmt("id: prime-%d\ndata: \n\nevent: message\nid: ev-%d\ndata: %s\n\n", n, n, body);
      out = sse_resp(sid, ev);
      free(ev);
    }
    free(body);
    free(sid);
    return out;
  }
  if (r->method && strcmp(r->method, "notifications/initialized") == 0)
    return t->json_mode ? json_resp(200, NULL, "{}") : accepted();
  if (r->msg && !r->method) { /* a response to a server request */
    t->answers++;
    return accepted();
  }
  if (r->method && strcmp(r->method, "notifications/cancelled") == 0)
    return accepted();
  *mine = 0;
  return NULL;
}

/* ---- the client side ---------------------------------------------------------------------- */

static void on_http_closed(void *arg)
{
  srv_stop(arg);
}

static void on_mcp_closed(void *arg)
{
  tctx *t = arg;
  tg_http_client_close(t->http, on_http_closed, t);
}

static void on_linger_closed(uv_handle_t *h)
{
  tctx *t = h->data;
  tg_mcp_close(t->m, on_mcp_closed, t);
}

static void on_linger(uv_timer_t *h)
{
  uv_close((uv_handle_t *)h, on_linger_closed);
}

static void op_done(tctx *t)
{
  if (--t->pending > 0)
    return;
  if (t->linger_ms > 0) {
    uv_timer_init(&t->loop, &t->linger);
    t->linger.data = t;
    uv_timer_start(&t->linger, on_linger, (uint64_t)t->linger_ms, 0);
    return;
  }
  tg_mcp_close(t->m, on_mcp_closed, t);
}

static void on_result(void *arg, const tg_mcp_error *err, json_t *result)
{
  tctx *t = arg;
  int i = t->ncb++;
  assert_true(i < 4);
  if (err) {
    t->has_err[i] = 1;
    t->err[i] = *err;
  } else {
    t->result[i] = json_incref(result);
  }
  op_done(t);
}

/* Options for the next setup() (listen, on_notify, caps); reset by it. */
static tg_mcp_options next_opt;

static void setup(tctx *t, handler_fn h, long timeout_ms)
{
  char url[64];
  const char *headers[] = {"X-Api-Key: secret-k", NULL};
  tg_mcp_options opt = next_opt;
  memset(&next_opt, 0, sizeof next_opt);
  opt.headers = headers;
  opt.request_timeout_ms = timeout_ms;
  memset(t, 0, sizeof *t);
  t->handle = h;
  t->version = "2025-11-25";
  assert_int_equal(uv_loop_init(&t->loop), 0);
  srv_start(t);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/mcp", t->port);
  opt.url = url;
  assert_int_equal(tg_http_client_init(&t->http, &t->loop), 0);
  assert_int_equal(tg_mcp_client_new(&t->m, t->http, &opt), 0);
}

static void call(tctx *t, const char *tool, const char *args_json)
{
  json_t *args = args_json ? json_loads(args_json, 0, NULL) : NULL;
  t->pending++;
  assert_int_equal(tg_mcp_call_tool(t->m, tool, args, on_result, t), 0);
  json_decref(args);
}

static void run_and_teardown(tctx *t)
{
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(t->pending, 0);
  assert_int_equal(uv_loop_close(&t->loop), 0);
}

static void cleanup(tctx *t)
{
  for (int i = 0; i < t->n; i++) {
    free(t->reqs[i].headers);
    free(t->reqs[i].body);
    json_decref(t->reqs[i].msg);
  }
  for (int i = 0; i < 4; i++)
    json_decref(t->result[i]);
  json_decref(t->tools);
}

static const char *text_of(json_t *result)
{
  return json_string_value(
      json_object_get(json_array_get(json_object_get(result, "content"), 0), "text"));
}

static char *echo_result(req_rec *r, const char *extra_json)
{
  json_t *args = json_object_get(json_object_get(r->msg, "params"), "arguments");
  return fmt("{\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"Echo: %s\"}]%s},"
             "\"jsonrpc\":\"2.0\",\"id\":%lld}",
             json_string_value(json_object_get(args, "message")), extra_json ? extra_json : "",
             (long long)json_integer_value(r->id));
}

/* ---- scripts and tests -------------------------------------------------------------------- */

static char *h_json(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *body;
  if (mine)
    return out;
  t->calls++;
  body = echo_result(r, NULL);
  out = json_resp(200, NULL, body);
  free(body);
  return out;
}

static void test_sequence_and_headers_json(void **state)
{
  tctx t;
  char v[128];
  setup(&t, h_json, 0);
  t.json_mode = 1;
  t.version = "2025-06-18"; /* the server negotiates down */
  call(&t, "echo", "{\"message\":\"hi\"}");
  run_and_teardown(&t);

  assert_false(t.has_err[0]);
  assert_string_equal(text_of(t.result[0]), "Echo: hi");
  assert_int_equal(t.n, 4);
  /* initialize: no session yet, both Accept types, our version and clientInfo. */
  assert_string_equal(t.reqs[0].method, "initialize");
  assert_null(hdr(&t.reqs[0], "Mcp-Session-Id", v, sizeof v));
  assert_null(hdr(&t.reqs[0], "MCP-Protocol-Version", v, sizeof v));
  assert_string_equal(hdr(&t.reqs[0], "Accept", v, sizeof v),
                      "application/json, text/event-stream");
  assert_string_equal(hdr(&t.reqs[0], "Content-Type", v, sizeof v), "application/json");
  assert_string_equal(hdr(&t.reqs[0], "X-Api-Key", v, sizeof v), "secret-k");
  json_t *params = json_object_get(t.reqs[0].msg, "params");
  assert_string_equal(json_string_value(json_object_get(params, "protocolVersion")), "2025-11-25");
  assert_true(json_is_object(json_object_get(params, "capabilities")));
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(params, "clientInfo"), "name")),
      "toolgate");
  assert_true(json_is_integer(t.reqs[0].id));
  /* then notifications/initialized and the call, with the session and negotiated version */
  for (int i = 1; i <= 2; i++) {
    assert_string_equal(hdr(&t.reqs[i], "Mcp-Session-Id", v, sizeof v), "sess-1");
    assert_string_equal(hdr(&t.reqs[i], "MCP-Protocol-Version", v, sizeof v), "2025-06-18");
    assert_string_equal(hdr(&t.reqs[i], "Accept", v, sizeof v),
                        "application/json, text/event-stream");
    assert_string_equal(hdr(&t.reqs[i], "X-Api-Key", v, sizeof v), "secret-k");
  }
  assert_string_equal(t.reqs[1].method, "notifications/initialized");
  assert_null(t.reqs[1].id);
  assert_string_equal(t.reqs[2].method, "tools/call");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(t.reqs[2].msg, "params"), "name")), "echo");
  /* close: DELETE with the session */
  assert_string_equal(t.reqs[3].verb, "DELETE");
  assert_string_equal(hdr(&t.reqs[3], "Mcp-Session-Id", v, sizeof v), "sess-1");
  cleanup(&t);
}

static char *h_sse(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *body, *ev;
  if (mine)
    return out;
  t->calls++;
  body = echo_result(r, NULL);
  /* priming event, a progress notification, a response for an unknown id, a comment, then the
   * response split over two data lines, then a duplicate that must be ignored. */
  ev = fmt("id: p-1\ndata: \n\n"
           "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
           "\"params\":{\"progress\":1}}\n\n"
           "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{}}\n\n"
           ": keep-alive\r\n"
           "event: message\r\nid: e-2\r\ndata: %.20s\r\ndata: %s\r\n\r\n"
           "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"dup\":1}}\n\n",
           body, body + 20, (long long)json_integer_value(r->id));
  out = sse_resp(NULL, ev);
  free(body);
  free(ev);
  return out;
}

static void test_sse_with_priming(void **state)
{
  tctx t;
  setup(&t, h_sse, 0);
  call(&t, "echo", "{\"message\":\"sse\"}");
  run_and_teardown(&t);
  assert_false(t.has_err[0]);
  assert_string_equal(text_of(t.result[0]), "Echo: sse");
  assert_null(json_object_get(t.result[0], "dup"));
  assert_int_equal(t.inits, 1);
  assert_int_equal(t.calls, 1);
  cleanup(&t);
}

static char *h_errors(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *body;
  const char *name = json_string_value(json_object_get(json_object_get(r->msg, "params"), "name"));
  if (mine)
    return out;
  t->calls++;
  if (strcmp(name, "fail") == 0)
    body = fmt("{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"content\":[{\"type\":\"text\","
               "\"text\":\"boom\"}],\"isError\":true}}",
               (long long)json_integer_value(r->id));
  else
    body = fmt("{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32602,\"message\":"
               "\"Unknown tool: nope\"}}",
               (long long)json_integer_value(r->id));
  out = json_resp(200, NULL, body);
  free(body);
  return out;
}

static void test_iserror_vs_rpc_error(void **state)
{
  tctx t;
  setup(&t, h_errors, 0);
  call(&t, "fail", NULL);
  call(&t, "nope", "{}");
  run_and_teardown(&t);
  assert_int_equal(t.inits, 1); /* the second call waited for the same session */
  for (int i = 0; i < 2; i++) {
    if (t.has_err[i]) {
      assert_int_equal(t.err[i].err, TG_EPROTO);
      assert_int_equal(t.err[i].rpc_code, -32602);
      assert_non_null(strstr(t.err[i].message, "Unknown tool: nope"));
    } else {
      assert_true(json_is_true(json_object_get(t.result[i], "isError")));
      assert_string_equal(text_of(t.result[i]), "boom");
    }
  }
  assert_int_not_equal(t.has_err[0], t.has_err[1]);
  cleanup(&t);
}

/* Session loss: calls on session sess-1 get 404 (or server-everything's 400); `lose` says how
 * many sessions to lose. */
static int lose_sessions, lose_with_400;

static char *h_lost(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *body, sid[64];
  if (mine)
    return out;
  t->calls++;
  hdr(r, "Mcp-Session-Id", sid, sizeof sid);
  if (atoi(sid + 5) <= lose_sessions) {
    if (lose_with_400)
      return json_resp(400, NULL,
                       "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,\"message\":\"Bad "
                       "Request: No valid session ID provided\"},\"id\":null}");
    return json_resp(404, NULL,
                     "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32001,\"message\":\"Session not "
                     "found\"},\"id\":null}");
  }
  body = echo_result(r, NULL);
  out = json_resp(200, NULL, body);
  free(body);
  return out;
}

static void check_reinit_replay(int with_400)
{
  tctx t;
  char v[64];
  lose_sessions = 1;
  lose_with_400 = with_400;
  setup(&t, h_lost, 0);
  call(&t, "echo", "{\"message\":\"again\"}");
  run_and_teardown(&t);
  assert_false(t.has_err[0]);
  assert_string_equal(text_of(t.result[0]), "Echo: again");
  assert_int_equal(t.inits, 2);
  assert_int_equal(t.calls, 2);
  /* init, initialized, call(404), init (no session header), initialized, call, DELETE */
  assert_int_equal(t.n, 7);
  assert_string_equal(t.reqs[3].method, "initialize");
  assert_null(hdr(&t.reqs[3], "Mcp-Session-Id", v, sizeof v));
  assert_string_equal(hdr(&t.reqs[5], "Mcp-Session-Id", v, sizeof v), "sess-2");
  assert_true(json_equal(t.reqs[5].msg, t.reqs[2].msg)); /* the same request replayed */
  assert_string_equal(hdr(&t.reqs[6], "Mcp-Session-Id", v, sizeof v), "sess-2");
  cleanup(&t);
}

static void test_404_reinit_and_replay(void **state)
{
  check_reinit_replay(0);
}

static void test_400_no_valid_session_reinit(void **state)
{
  check_reinit_replay(1);
}

/* A new session may reuse the event ids of the old one: after a 404 the new session's
 * initialize answer carries the same ids as the first one's and must not be dropped. */
static void test_event_ids_restart_with_the_session(void **state)
{
  tctx t;
  lose_sessions = 1;
  lose_with_400 = 0;
  setup(&t, h_lost, 0);
  t.ids_per_session = 1;
  call(&t, "echo", "{\"message\":\"again\"}");
  run_and_teardown(&t);
  assert_false(t.has_err[0]);
  assert_string_equal(text_of(t.result[0]), "Echo: again");
  assert_int_equal(t.inits, 2);
  cleanup(&t);
}

static char *h_init_fails(tctx *t, conn *c, req_rec *r)
{
  (void)c;
  if (strcmp(r->verb, "DELETE") == 0)
    return fmt("HTTP/1.1 200 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  t->inits += r->method && strcmp(r->method, "initialize") == 0;
  return json_resp(500, NULL, "{\"error\":\"down\"}");
}

/* The first waiter's callback cancels the second: the batch must not touch the freed call. */
static void on_result_cancel_other(void *arg, const tg_mcp_error *err, json_t *result)
{
  tctx *t = arg;
  on_result(arg, err, result);
  if (t->call_handle) {
    tg_mcp_cancel(t->call_handle); /* its own callback (on_result) runs now, with ECANCELED */
    t->call_handle = NULL;
  }
}

static void on_result_handle(void *arg, const tg_mcp_error *err, json_t *result)
{
  tctx *t = arg;
  t->call_handle = NULL; /* finished: the handle is gone */
  on_result(arg, err, result);
}

static void test_waiter_callback_cancels_another_waiter(void **state)
{
  tctx t;
  setup(&t, h_init_fails, 0);
  t.pending += 3;
  /* Two cancellers around the handle's call: whichever order the batch takes, one of them
   * runs while the handle's call is still waiting and cancels (frees) it. */
  assert_int_equal(tg_mcp_call_tool(t.m, "echo", NULL, on_result_cancel_other, &t), 0);
  assert_int_equal(
      tg_mcp_call_tool_ex(t.m, "echo", NULL, NULL, on_result_handle, &t, &t.call_handle), 0);
  assert_int_equal(tg_mcp_call_tool(t.m, "echo", NULL, on_result_cancel_other, &t), 0);
  run_and_teardown(&t);
  assert_int_equal(t.ncb, 3);
  assert_true(t.has_err[0] && t.has_err[1] && t.has_err[2]);
  assert_int_equal((t.err[0].err == TG_ECANCELED) + (t.err[1].err == TG_ECANCELED) +
                       (t.err[2].err == TG_ECANCELED),
                   1);
  cleanup(&t);
}

static void test_second_loss_is_enotfound(void **state)
{
  tctx t;
  lose_sessions = 99;
  lose_with_400 = 0;
  setup(&t, h_lost, 0);
  call(&t, "echo", "{\"message\":\"x\"}");
  run_and_teardown(&t);
  assert_true(t.has_err[0]);
  assert_int_equal(t.err[0].err, TG_ENOTFOUND);
  assert_int_equal(t.err[0].http_status, 404);
  assert_string_equal(t.err[0].message, "mcp session lost");
  assert_int_equal(t.inits, 2);
  assert_int_equal(t.calls, 2);
  cleanup(&t);
}

static char *h_status(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine);
  const char *name = json_string_value(json_object_get(json_object_get(r->msg, "params"), "name"));
  if (mine)
    return out;
  if (strcmp(r->verb, "GET") == 0) /* the resume of "cut": this server keeps no streams */
    return json_resp(405, NULL, "{}");
  t->calls++;
  if (strcmp(name, "limited") == 0)
    return json_resp(429, "Retry-After: 7\r\n", "{}");
  if (strcmp(name, "denied") == 0)
    return json_resp(401, NULL, "{}");
  if (strcmp(name, "cut") == 0) /* SSE that ends with only the priming event */
    return sse_resp(NULL, "id: p\nretry: 10\ndata: \n\n");
  return sse_resp(NULL, "event: message\ndata: {not json\n\n");
}

static void test_http_statuses_and_bad_streams(void **state)
{
  tctx t;
  setup(&t, h_status, 0);
  call(&t, "limited", NULL);
  call(&t, "denied", NULL);
  call(&t, "cut", NULL);
  call(&t, "garbage", NULL);
  run_and_teardown(&t);
  assert_int_equal(t.ncb, 4);
  int seen = 0;
  for (int i = 0; i < 4; i++) {
    assert_true(t.has_err[i]);
    if (t.err[i].err == TG_ERATELIMIT) {
      assert_int_equal(t.err[i].http_status, 429);
      assert_int_equal(t.err[i].retry_after_ms, 7000);
      seen |= 1;
    } else if (t.err[i].err == TG_EAUTH) {
      assert_int_equal(t.err[i].http_status, 401);
      seen |= 2;
    } else if (strstr(t.err[i].message, "stream ended without a response")) {
      assert_int_equal(t.err[i].err, TG_EPROTO);
      seen |= 4;
    } else {
      assert_int_equal(t.err[i].err, TG_EPROTO);
      assert_non_null(strstr(t.err[i].message, "malformed"));
      seen |= 8;
    }
  }
  assert_int_equal(seen, 15);
  cleanup(&t);
}

/* A server request on the call's stream: ping and an unsupported method, answered by POSTs;
 * the server sends the call's response only after both answers arrived. */
static long long held_id;

static char *h_ping(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *hd;
  if (mine) {
    if (t->answers == 2 && t->held) {
      conn_write(t->held,
                 fmt("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{"
                     "\"content\":[{\"type\":\"text\",\"text\":\"after ping\"}]}}\n\n",
                     held_id),
                 1);
      t->held = NULL;
    }
    return out;
  }
  t->calls++;
  held_id = (long long)json_integer_value(r->id);
  hd = sse_resp(NULL,
                "id: p\ndata: \n\n"
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"ping\"}"
                "\n\n"
                "event: message\ndata: {\"method\":\"roots/list\",\"jsonrpc\":\"2.0\",\"id\":5}"
                "\n\n");
  conn_write(c, hd, 0);
  t->held = c;
  return NULL;
}

static void test_server_ping_answered(void **state)
{
  tctx t;
  int ping = -1, other = -1;
  char v[64];
  setup(&t, h_ping, 0);
  call(&t, "slow", NULL);
  run_and_teardown(&t);
  assert_false(t.has_err[0]);
  assert_string_equal(text_of(t.result[0]), "after ping");
  assert_int_equal(t.answers, 2);
  for (int i = 0; i < t.n; i++) {
    json_t *id = t.reqs[i].id;
    if (json_is_string(id) && strcmp(json_string_value(id), "srv-1") == 0)
      ping = i;
    if (json_is_integer(id) && json_integer_value(id) == 5 && !t.reqs[i].method)
      other = i;
  }
  assert_true(ping >= 0 && other >= 0);
  json_t *res = json_object_get(t.reqs[ping].msg, "result");
  assert_true(json_is_object(res) && json_object_size(res) == 0);
  assert_null(json_object_get(t.reqs[ping].msg, "error"));
  assert_int_equal(
      json_integer_value(json_object_get(json_object_get(t.reqs[other].msg, "error"), "code")),
      -32601);
  assert_string_equal(hdr(&t.reqs[ping], "Mcp-Session-Id", v, sizeof v), "sess-1");
  assert_string_equal(hdr(&t.reqs[ping], "MCP-Protocol-Version", v, sizeof v), "2025-11-25");
  cleanup(&t);
}

static char *h_silent(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine);
  if (mine)
    return out;
  t->calls++;
  conn_write(c, sse_resp(NULL, "id: p\ndata: \n\n"), 0);
  return NULL; /* never answers; the connection closes at srv_stop */
}

static void test_timeout_sends_cancelled(void **state)
{
  tctx t;
  int cancelled = 0;
  setup(&t, h_silent, 300);
  t.linger_ms = 200; /* let the fire-and-forget cancel reach the server before close */
  call(&t, "hang", NULL);
  run_and_teardown(&t);
  assert_true(t.has_err[0]);
  assert_int_equal(t.err[0].err, TG_ETIMEDOUT);
  for (int i = 0; i < t.n; i++)
    if (t.reqs[i].method && strcmp(t.reqs[i].method, "notifications/cancelled") == 0)
      cancelled++;
  assert_int_equal(cancelled, 1);
  for (int i = 0; i < t.n; i++)
    if (t.reqs[i].method && strcmp(t.reqs[i].method, "notifications/cancelled") == 0)
      assert_true(json_equal(json_object_get(json_object_get(t.reqs[i].msg, "params"), "requestId"),
                             json_object_get(t.reqs[2].msg, "id")));
  cleanup(&t);
}

static void test_unsupported_version(void **state)
{
  tctx t;
  setup(&t, h_json, 0);
  t.version = "2024-11-05";
  call(&t, "echo", "{\"message\":\"x\"}");
  run_and_teardown(&t);
  assert_true(t.has_err[0]);
  assert_int_equal(t.err[0].err, TG_EPROTO);
  assert_non_null(strstr(t.err[0].message, "2024-11-05"));
  assert_int_equal(t.calls, 0);
  assert_int_equal(t.n, 1); /* no initialized, no DELETE (no session kept) */
  cleanup(&t);
}

static void on_connected_version(void *arg, const tg_mcp_error *err)
{
  tctx *t = arg;
  const char *v = tg_mcp_protocol_version(t->m);
  assert_null(err);
  snprintf(t->notes[0], sizeof t->notes[0], "%s", v ? v : "(none)");
  op_done(t);
}

/* An older protocol version offered on request: initialize carries it, the session uses it;
 * a version we do not speak is refused up front. */
static void test_offered_version(void **state)
{
  tctx t;
  char v[128];
  tg_http_client *http;
  tg_mcp_client *m;
  uv_loop_t loop;
  tg_mcp_options bad = {.url = "http://127.0.0.1:1/mcp", .protocol_version = "2024-11-05"};

  next_opt.protocol_version = "2025-06-18";
  setup(&t, h_json, 0);
  t.json_mode = 1;
  t.version = "2025-06-18";
  assert_null(tg_mcp_protocol_version(t.m));
  t.pending++;
  assert_int_equal(tg_mcp_connect(t.m, on_connected_version, &t), 0);
  call(&t, "echo", "{\"message\":\"old\"}");
  run_and_teardown(&t);
  assert_string_equal(t.notes[0], "2025-06-18");
  assert_string_equal(text_of(t.result[0]), "Echo: old");
  assert_string_equal(t.reqs[0].method, "initialize");
  assert_string_equal(json_string_value(json_object_get(json_object_get(t.reqs[0].msg, "params"),
                                                        "protocolVersion")),
                      "2025-06-18");
  assert_string_equal(t.reqs[2].method, "tools/call");
  assert_string_equal(hdr(&t.reqs[2], "MCP-Protocol-Version", v, sizeof v), "2025-06-18");
  cleanup(&t);

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tg_http_client_init(&http, &loop), 0);
  assert_int_equal(tg_mcp_client_new(&m, http, &bad), TG_EINVAL);
  assert_null(m);
  tg_http_client_close(http, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the transport, part 2: resume, early close, server requests, paging, cancel, listen,
 * caps, split chunks, DELETE 405 ------------------------------------------------------------ */

static void on_progress_cb(void *arg, double progress, double total, const char *message)
{
  tctx *t = arg;
  assert_true(t->n_progress < 8);
  assert_true(total == 3.0);
  t->progress[t->n_progress++] = (int)progress;
}

static void on_note(void *arg, const char *method, json_t *params)
{
  tctx *t = arg;
  if (t->n_notes < 4)
    snprintf(t->notes[t->n_notes++], sizeof t->notes[0], "%s", method);
}

static char *progress_event(const char *id, long long token, int p)
{
  return fmt("event: message\nid: %s\ndata: {\"jsonrpc\":\"2.0\",\"method\":"
             "\"notifications/progress\",\"params\":{\"progressToken\":%lld,\"progress\":%d,"
             "\"total\":3}}\n\n",
             id, token, p);
}

/* tools/call: priming (id e1, retry 150), progress 1 (id e2), then the server closes the stream
 * without the response. The resume GET gets a replay of e2 (a duplicate), progress 2 (e3) and
 * the response (e4), and the server keeps that stream open. */
static char *h_resume(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *p1, *p2, *p3, *body, *ev;
  long long token;
  if (mine)
    return out;
  if (strcmp(r->verb, "GET") == 0) {
    t->gets++;
    t->t_get = uv_now(&t->loop);
    token = held_id;
    p1 = progress_event("e2", token, 1);
    p2 = progress_event("e3", token, 2);
    body = fmt("{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"content\":[{\"type\":\"text\","
               "\"text\":\"resumed\"}]}}",
               token);
    ev = fmt("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
             "%s%sevent: message\nid: e4\ndata: %s\n\n",
             p1, p2, body);
    conn_write(c, ev, 0);
    t->held = c; /* never ends by itself: the client must close it */
    free(p1), free(p2), free(body);
    return NULL;
  }
  t->calls++;
  held_id = (long long)json_integer_value(r->id);
  token = json_integer_value(json_object_get(
      json_object_get(json_object_get(r->msg, "params"), "_meta"), "progressToken"));
  assert_int_equal(token, held_id);
  p3 = progress_event("e2", token, 1);
  out = sse_resp(NULL, "id: e1\nretry: 150\ndata: \n\n");
  ev = fmt("%s%s", out, p3);
  free(out), free(p3);
  t->t_cut = uv_now(&t->loop);
  return ev; /* written, then the connection is closed */
}

static void test_resume_with_last_event_id(void **state)
{
  tctx t;
  char v[64];
  int get = -1;
  setup(&t, h_resume, 5000);
  t.pending++;
  assert_int_equal(
      tg_mcp_call_tool_ex(t.m, "slow", NULL, on_progress_cb, on_result, &t, &t.call_handle), 0);
  assert_non_null(t.call_handle);
  run_and_teardown(&t);
  assert_false(t.has_err[0]);
  assert_string_equal(text_of(t.result[0]), "resumed");
  assert_int_equal(t.gets, 1);
  assert_true(t.t_get - t.t_cut >= 140); /* waited `retry` (loop clock granularity aside) */
  assert_true(t.t_get - t.t_cut < 1000);
  /* the duplicate of e2 was dropped: progress 1 then 2, before the result */
  assert_int_equal(t.n_progress, 2);
  assert_int_equal(t.progress[0], 1);
  assert_int_equal(t.progress[1], 2);
  for (int i = 0; i < t.n; i++)
    if (strcmp(t.reqs[i].verb, "GET") == 0)
      get = i;
  assert_true(get >= 0);
  assert_string_equal(hdr(&t.reqs[get], "Last-Event-ID", v, sizeof v), "e2");
  assert_string_equal(hdr(&t.reqs[get], "Accept", v, sizeof v), "text/event-stream");
  assert_string_equal(hdr(&t.reqs[get], "Mcp-Session-Id", v, sizeof v), "sess-1");
  assert_string_equal(hdr(&t.reqs[get], "MCP-Protocol-Version", v, sizeof v), "2025-11-25");
  assert_string_equal(hdr(&t.reqs[get], "X-Api-Key", v, sizeof v), "secret-k");
  assert_null(t.held); /* the client closed the GET stream once the response arrived */
  cleanup(&t);
}

/* A POST stream that sends the response and stays open: the call completes anyway. */
static char *h_linger(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *body, *ev;
  if (mine)
    return out;
  t->calls++;
  body = echo_result(r, NULL);
  ev = fmt("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
           "id: a\ndata: \n\nevent: message\nid: b\ndata: %s\n\n",
           body);
  free(body);
  conn_write(c, ev, 0);
  t->held = c;
  return NULL;
}

static void test_answered_stream_closed_early(void **state)
{
  tctx t;
  uint64_t t0;
  setup(&t, h_linger, 10000);
  t0 = uv_hrtime();
  call(&t, "echo", "{\"message\":\"open\"}");
  run_and_teardown(&t);
  assert_false(t.has_err[0]);
  assert_string_equal(text_of(t.result[0]), "Echo: open");
  assert_true(uv_hrtime() - t0 < 3000000000u); /* not the 10 s timeout */
  assert_null(t.held);
  cleanup(&t);
}

/* Server requests on the call's stream: ping, elicitation with defaults, elicitation without,
 * roots/list. The response comes once all four answers arrived. */
static char *h_requests(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *hd;
  if (mine) {
    if (t->answers == 4 && t->held) {
      conn_write(t->held,
                 fmt("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{"
                     "\"content\":[{\"type\":\"text\",\"text\":\"answered\"}]}}\n\n",
                     held_id),
                 1);
      t->held = NULL;
    }
    return out;
  }
  t->calls++;
  held_id = (long long)json_integer_value(r->id);
  hd = sse_resp(
      NULL,
      "id: p\ndata: \n\n"
      "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"ping\"}\n\n"
      "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"elicitation/create\","
      "\"params\":{\"message\":\"m\",\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
      "\"name\":{\"type\":\"string\",\"default\":\"John\"},\"age\":{\"type\":\"integer\","
      "\"default\":30},\"ok\":{\"type\":\"boolean\",\"default\":true},\"free\":{\"type\":"
      "\"string\"}},\"required\":[\"name\"]}}}\n\n"
      "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"elicitation/create\","
      "\"params\":{\"message\":\"m\",\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
      "\"x\":{\"type\":\"string\"}},\"required\":[\"x\"]}}}\n\n"
      "event: message\ndata: {\"method\":\"roots/list\",\"jsonrpc\":\"2.0\",\"id\":5}\n\n");
  conn_write(c, hd, 0);
  t->held = c;
  return NULL;
}

static json_t *answer_to(tctx *t, json_t *id)
{
  for (int i = 0; i < t->n; i++)
    if (!t->reqs[i].method && t->reqs[i].msg && json_equal(t->reqs[i].id, id))
      return t->reqs[i].msg;
  fail_msg("no answer");
  return NULL;
}

static void test_server_requests_answered(void **state)
{
  tctx t;
  json_t *a, *id;
  setup(&t, h_requests, 0);
  call(&t, "slow", NULL);
  run_and_teardown(&t);
  assert_false(t.has_err[0]);
  assert_string_equal(text_of(t.result[0]), "answered");
  assert_int_equal(t.answers, 4);
  id = json_string("srv-1");
  a = answer_to(&t, id);
  json_decref(id);
  assert_int_equal(json_object_size(json_object_get(a, "result")), 0);
  id = json_integer(7);
  a = json_object_get(answer_to(&t, id), "result");
  json_decref(id);
  assert_string_equal(json_string_value(json_object_get(a, "action")), "accept");
  json_t *want = json_loads("{\"name\":\"John\",\"age\":30,\"ok\":true}", 0, NULL);
  assert_true(json_equal(json_object_get(a, "content"), want));
  json_decref(want);
  id = json_integer(8); /* a required field without default: decline */
  a = json_object_get(answer_to(&t, id), "result");
  json_decref(id);
  assert_string_equal(json_string_value(json_object_get(a, "action")), "decline");
  assert_null(json_object_get(a, "content"));
  id = json_integer(5);
  a = answer_to(&t, id);
  json_decref(id);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "error"), "code")),
                   -32601);
  cleanup(&t);
}

/* tools/list over three pages. */
static char *h_pages(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *body;
  const char *cursor =
      json_string_value(json_object_get(json_object_get(r->msg, "params"), "cursor"));
  if (mine)
    return out;
  t->calls++;
  if (!cursor)
    body = fmt("{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tools\":[{\"name\":\"a\"},"
               "{\"name\":\"b\"}],\"nextCursor\":\"c/1=\"}}",
               (long long)json_integer_value(r->id));
  else if (strcmp(cursor, "c/1=") == 0)
    body = fmt("{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tools\":[{\"name\":\"c\"}],"
               "\"nextCursor\":\"c/2=\"}}",
               (long long)json_integer_value(r->id));
  else
    body = fmt("{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tools\":[{\"name\":\"d\"}]}}",
               (long long)json_integer_value(r->id));
  out = json_resp(200, NULL, body);
  free(body);
  return out;
}

static void on_tools(void *arg, const tg_mcp_error *err, json_t *tools)
{
  tctx *t = arg;
  assert_null(err);
  t->tools = json_incref(tools);
  op_done(t);
}

static void test_list_follows_next_cursor(void **state)
{
  tctx t;
  char *names;
  setup(&t, h_pages, 0);
  t.pending++;
  assert_int_equal(tg_mcp_list_tools(t.m, on_tools, &t), 0);
  run_and_teardown(&t);
  assert_int_equal(t.calls, 3);
  names = json_dumps(t.tools, JSON_COMPACT);
  assert_string_equal(names,
                      "[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"},{\"name\":\"d\"}]");
  free(names);
  assert_null(json_object_get(json_object_get(t.reqs[2].msg, "params"), "cursor"));
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(t.reqs[3].msg, "params"), "cursor")),
      "c/1=");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(t.reqs[4].msg, "params"), "cursor")),
      "c/2=");
  cleanup(&t);
}

/* Caller cancellation: the stream is held; 150 ms after the call is sent the test cancels it.
 * The server answers notifications/cancelled and then pushes the (late) response on the
 * optional GET stream, which the client must ignore. */
static void on_cancel_timer(uv_timer_t *h)
{
  tctx *t = h->data;
  tg_mcp_cancel(t->call_handle);
  uv_close((uv_handle_t *)h, NULL);
}

static conn *get_conn;

static char *h_cancel(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out;
  if (r->method && strcmp(r->method, "notifications/cancelled") == 0 && get_conn) {
    conn_write(get_conn,
               fmt("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{"
                   "\"content\":[]}}\n\n",
                   held_id),
               0);
  }
  out = base(t, r, &mine);
  if (mine)
    return out;
  if (strcmp(r->verb, "GET") == 0) {
    t->gets++;
    get_conn = c;
    conn_write(c,
               fmt("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                   "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":"
                   "\"notifications/tools/list_changed\"}\n\n"),
               0);
    return NULL;
  }
  t->calls++;
  held_id = (long long)json_integer_value(r->id);
  conn_write(c, sse_resp(NULL, "id: p\ndata: \n\n"), 0);
  t->held = c;
  uv_timer_init(&t->loop, &t->aux);
  t->aux.data = t;
  uv_timer_start(&t->aux, on_cancel_timer, 150, 0);
  return NULL;
}

static void test_cancel_by_caller_and_listen(void **state)
{
  tctx t;
  int cancelled = -1;
  char v[64];
  next_opt.listen = 1;
  next_opt.on_notify = on_note;
  next_opt.notify_arg = &t;
  get_conn = NULL;
  setup(&t, h_cancel, 5000);
  t.linger_ms = 300; /* let the cancel and the late response arrive before close */
  t.pending++;
  assert_int_equal(tg_mcp_call_tool_ex(t.m, "hang", NULL, NULL, on_result, &t, &t.call_handle), 0);
  run_and_teardown(&t);
  assert_int_equal(t.ncb, 1); /* the late response did not call back twice */
  assert_true(t.has_err[0]);
  assert_int_equal(t.err[0].err, TG_ECANCELED);
  assert_null(t.held); /* the client closed the call's stream */
  assert_int_equal(t.gets, 1);
  for (int i = 0; i < t.n; i++) {
    if (t.reqs[i].method && strcmp(t.reqs[i].method, "notifications/cancelled") == 0)
      cancelled = i;
    if (strcmp(t.reqs[i].verb, "GET") == 0) {
      assert_string_equal(hdr(&t.reqs[i], "Accept", v, sizeof v), "text/event-stream");
      assert_null(hdr(&t.reqs[i], "Last-Event-ID", v, sizeof v));
      assert_string_equal(hdr(&t.reqs[i], "Mcp-Session-Id", v, sizeof v), "sess-1");
    }
  }
  assert_true(cancelled >= 0);
  json_t *params = json_object_get(t.reqs[cancelled].msg, "params");
  assert_int_equal(json_integer_value(json_object_get(params, "requestId")), held_id);
  assert_string_equal(json_string_value(json_object_get(params, "reason")), "canceled");
  assert_int_equal(t.n_notes, 1);
  assert_string_equal(t.notes[0], "notifications/tools/list_changed");
  cleanup(&t);
}

/* Limits: an SSE event over max_event_bytes, a JSON body over max_response_bytes, and an SSE
 * stream of small events over max_response_bytes each fail their call with TG_ETOOBIG. */
static char *h_big(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *big, *ev;
  const char *name = json_string_value(json_object_get(json_object_get(r->msg, "params"), "name"));
  if (mine)
    return out;
  t->calls++;
  big = malloc(9001);
  memset(big, 'x', 9000);
  big[9000] = 0;
  if (strcmp(name, "event") == 0) {
    ev = fmt("event: message\ndata: {\"pad\":\"%.3000s\"}\n\n", big);
    out = sse_resp(NULL, ev);
  } else if (strcmp(name, "json") == 0) {
    ev = fmt("{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"pad\":\"%s\"}}",
             (long long)json_integer_value(r->id), big);
    out = json_resp(200, NULL, ev);
  } else {
    size_t n = 0;
    ev = malloc(20000);
    for (int i = 0; i < 200; i++)
      n += (size_t)snprintf(ev + n, 20000 - n, ": comment %.40s\n\n", big);
    out = sse_resp(NULL, ev);
  }
  free(ev);
  free(big);
  return out;
}

static void test_size_caps(void **state)
{
  tctx t;
  int seen = 0;
  next_opt.max_event_bytes = 1024;
  next_opt.max_response_bytes = 6000;
  setup(&t, h_big, 0);
  call(&t, "event", NULL);
  call(&t, "json", NULL);
  call(&t, "stream", NULL);
  run_and_teardown(&t);
  assert_int_equal(t.ncb, 3);
  for (int i = 0; i < 3; i++) {
    assert_true(t.has_err[i]);
    assert_int_equal(t.err[i].err, TG_ETOOBIG);
    if (strstr(t.err[i].message, "SSE event exceeds the size cap"))
      seen |= 1;
    else if (strstr(t.err[i].message, "response exceeds 6000 bytes"))
      seen += 2;
  }
  assert_int_equal(seen, 5);
  cleanup(&t);
}

/* A chunked SSE body dripped in separate writes, splitting an event inside its JSON, between
 * CR and LF, and between chunk header and data. */
static void on_drip(uv_timer_t *h)
{
  tctx *t = h->data;
  char *piece = t->drip[t->drip_next++];
  int last = t->drip_next == t->n_drip;
  conn_write(t->drip_conn, piece, last);
  if (last)
    uv_close((uv_handle_t *)h, NULL);
}

static char *chunk(const char *s)
{
  return fmt("%zx\r\n%s\r\n", strlen(s), s);
}

static char *h_drip(tctx *t, conn *c, req_rec *r)
{
  int mine;
  char *out = base(t, r, &mine), *body, *a, *b;
  if (mine)
    return out;
  t->calls++;
  body = echo_result(r, NULL);
  a = fmt("event: message\r\nid: 1\r\ndata: %.15s", body);
  b = fmt("%s\r", body + 15);
  t->drip[0] = fmt("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                   "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
  t->drip[1] = chunk(": hi\r\nid: 0\r\ndata:\r\n\r\n");
  t->drip[2] = chunk(a);
  t->drip[3] = chunk(b);
  t->drip[4] = chunk("\n\r\n");
  t->drip[5] = fmt("0\r\n\r\n");
  t->n_drip = 6;
  t->drip_conn = c;
  free(body), free(a), free(b);
  uv_timer_init(&t->loop, &t->aux);
  t->aux.data = t;
  uv_timer_start(&t->aux, on_drip, 10, 15);
  return NULL;
}

static void test_sse_split_across_chunks(void **state)
{
  tctx t;
  setup(&t, h_drip, 0);
  call(&t, "echo", "{\"message\":\"drip\"}");
  run_and_teardown(&t);
  assert_false(t.has_err[0]);
  assert_string_equal(text_of(t.result[0]), "Echo: drip");
  assert_int_equal(t.drip_next, 6);
  cleanup(&t);
}

static void test_delete_405_and_capabilities(void **state)
{
  tctx t;
  json_t *caps;
  setup(&t, h_json, 0);
  t.json_mode = 1;
  t.delete_status = 405;
  call(&t, "echo", "{\"message\":\"x\"}");
  run_and_teardown(&t); /* close completes although the server refuses the DELETE */
  assert_false(t.has_err[0]);
  assert_string_equal(t.reqs[t.n - 1].verb, "DELETE");
  caps = json_object_get(json_object_get(t.reqs[0].msg, "params"), "capabilities");
  assert_true(json_is_object(json_object_get(json_object_get(caps, "elicitation"), "form")));
  assert_null(json_object_get(caps, "sampling"));
  assert_null(json_object_get(caps, "roots"));
  cleanup(&t);
}

TG_UNIT_MAIN(cmocka_unit_test(test_sequence_and_headers_json),
             cmocka_unit_test(test_sse_with_priming), cmocka_unit_test(test_iserror_vs_rpc_error),
             cmocka_unit_test(test_404_reinit_and_replay),
             cmocka_unit_test(test_400_no_valid_session_reinit),
             cmocka_unit_test(test_event_ids_restart_with_the_session),
             cmocka_unit_test(test_waiter_callback_cancels_another_waiter),
             cmocka_unit_test(test_second_loss_is_enotfound),
             cmocka_unit_test(test_http_statuses_and_bad_streams),
             cmocka_unit_test(test_server_ping_answered),
             cmocka_unit_test(test_timeout_sends_cancelled),
             cmocka_unit_test(test_unsupported_version), cmocka_unit_test(test_offered_version),
             cmocka_unit_test(test_resume_with_last_event_id),
             cmocka_unit_test(test_answered_stream_closed_early),
             cmocka_unit_test(test_server_requests_answered),
             cmocka_unit_test(test_list_follows_next_cursor),
             cmocka_unit_test(test_cancel_by_caller_and_listen), cmocka_unit_test(test_size_caps),
             cmocka_unit_test(test_sse_split_across_chunks),
             cmocka_unit_test(test_delete_405_and_capabilities))
