/*
 * mcp-peer: a small, scriptable MCP server (Streamable HTTP, JSON responses) on tg_httpd, for
 * the worker's integration tests and benchmark. Test tool only: it binds where it is told
 * (127.0.0.1 in every test) and its control API needs no credentials.
 *
 * MCP side (every path except /_peer/... and /healthz is an MCP endpoint, so per-user URLs such
 * as /mcp/alice work): POST initialize creates a session bound to the request's path and answers
 * with Mcp-Session-Id; later requests must carry a session created on the SAME path, else 404
 * (-32001 "Session not found"), so a session id sent to another user's URL is caught. Requests
 * are answered as application/json; notifications and responses get 202; DELETE ends a
 * session; GET is 405 unless GET streams are on (below). Churn (--drop-session-after N, or the
 * control route below): a session serves N JSON-RPC requests (tools/list, tools/call, ping), and
 * the next one gets 404 before it is executed and drops the session, as a server that expires
 * sessions quickly does. Tools: echo {message} (readOnlyHint), add {a, b} (idempotentHint), sleep
 * {ms} (no hints: a call that times out must not be retried), sleep_ro {ms} (readOnlyHint), fail
 * {message} (isError:true), plus the tools added by POST /_peer/list_changed (echo's schema).
 *
 * Control API:
 *   POST /_peer/script {"method"?, "tool"?, "count", "status", "retry_after"?}  (or an array):
 *        the next `count` matching MCP requests get HTTP `status` instead of an answer (404 also
 *        drops the session; 429 sends Retry-After: retry_after seconds).
 *   GET  /_peer/log    every MCP request received, in order: {t_ms, http_method, path,
 *        rpc_method, rpc_id?, request_id? (notifications/cancelled), tool, arguments, session,
 *        session_path, status, headers{...}} where headers
 *        holds the request's x-api-key, authorization, mcp-session-id, mcp-protocol-version and
 *        x-user headers (tg_httpd looks headers up by name; these are the ones the worker may
 *        send). Capped at 200000 entries (then only counted).
 *   POST /_peer/churn {"drop_session_after": N}: as --drop-session-after (0 = never).
 *   GET  /_peer/stats  counters; POST /_peer/reset clears log, scripts and counters (not churn).
 *   POST /_peer/get_streams {"enabled": bool}: a GET with a session of its path opens a
 *        text/event-stream that stays open (the server-initiated channel); off (405) by default.
 *   POST /_peer/list_changed {"add_tool"?: name}: adds the tool to tools/list, then sends
 *        notifications/tools/list_changed on every open GET stream; answers {"streams": n}.
 * Invariant: every request is answered exactly once (delayed sleep answers are flushed with
 * 503 at shutdown).
 */
#include "tg_db.h"
#include "tg_err.h"
#include "tg_httpd.h"
#include "tg_log.h"
#include "tg_id.h"

#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAX_LOG 200000
#define MAX_SESSIONS 8192
#define MAX_SLEEP_MS 600000

typedef struct session {
  struct session *next;
  char id[40];
  char *path;
  long served; /* JSON-RPC requests answered on it */
} session;

typedef struct rule {
  struct rule *next;
  char *method, *tool; /* NULL: any */
  int count, status, retry_after;
} rule;

typedef struct delayed {
  struct delayed *next, *prev;
  uv_timer_t t;
  tg_httpd_req *req;
  json_t *body;
  char sid_hdr[64];
} delayed;

typedef struct peer {
  uv_loop_t *loop;
  tg_httpd *srv;
  session *sessions;
  size_t n_sessions;
  rule *rules, **rules_tail;
  json_t *log;
  uint64_t t0;
  long n_requests, n_dropped, n_init, n_calls, n_deletes, n_scripted;
  delayed *delayed;
  long drop_after; /* requests a session serves before the next one gets 404; 0 = never */
  int get_streams; /* GET opens a stream (else 405) */
  json_t *streams; /* open GET streams: array of pointers as integers (tg_httpd_req *) */
  json_t *extra;   /* names of the tools added by /_peer/list_changed */
  int stopping;
} peer;

static peer P;
static uv_signal_t sig_int, sig_term;

static const char *const LOGGED_HEADERS[] = {
    "x-api-key", "authorization", "mcp-session-id", "mcp-protocol-version", "x-user", NULL};

/* ---- sessions ---- */

static session *session_find(const char *id)
{
  for (session *s = P.sessions; s && id; s = s->next)
    if (strcmp(s->id, id) == 0)
      return s;
  return NULL;
}

static void session_drop(session *s)
{
  for (session **pp = &P.sessions; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      P.n_sessions--;
      free(s->path);
      free(s);
      return;
    }
}

static session *session_new(const char *path)
{
  session *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(path))) {
    free(s);
    return NULL;
  }
  tg_random_id(s->id, sizeof s->id, "ps-", 16);
  if (P.n_sessions >= MAX_SESSIONS) { /* drop the oldest (the list tail) */
    session *last = P.sessions;
    while (last && last->next)
      last = last->next;
    session_drop(last);
  }
  s->next = P.sessions;
  P.sessions = s;
  P.n_sessions++;
  return s;
}

/* ---- log and scripts ---- */

static json_t *log_entry(tg_httpd_req *req, const json_t *msg)
{
  json_t *e, *h;
  const char *sid = tg_httpd_header(req, "mcp-session-id");
  session *s = session_find(sid);
  const json_t *params = json_object_get(msg, "params");
  P.n_requests++;
  if (json_array_size(P.log) >= MAX_LOG) {
    P.n_dropped++;
    return NULL;
  }
  e = json_pack("{s:I, s:s, s:s, s:O?, s:O?, s:O?, s:s?, s:s?, s:{}}", "t_ms",
                (json_int_t)(uv_now(P.loop) - P.t0), "http_method", tg_httpd_method(req), "path",
                tg_httpd_path(req), "rpc_method", json_object_get(msg, "method"), "tool",
                json_object_get(params, "name"), "arguments", json_object_get(params, "arguments"),
                "session", sid, "session_path", s ? s->path : NULL, "headers");
  if (!e)
    return NULL;
  /* The request's JSON-RPC id, and the id a notifications/cancelled names. */
  if (json_object_get(msg, "id"))
    json_object_set(e, "rpc_id", json_object_get(msg, "id"));
  if (json_object_get(params, "requestId"))
    json_object_set(e, "request_id", json_object_get(params, "requestId"));
  h = json_object_get(e, "headers");
  for (int i = 0; LOGGED_HEADERS[i]; i++) {
    const char *v = tg_httpd_header(req, LOGGED_HEADERS[i]);
    if (v)
      json_object_set_new(h, LOGGED_HEADERS[i], json_string(v));
  }
  json_array_append_new(P.log, e);
  return e; /* borrowed: P.log holds it */
}

static void note_status(json_t *entry, int status)
{
  if (entry)
    json_object_set_new(entry, "status", json_integer(status));
}

/* The first rule matching msg, with its count consumed; NULL if none. */
static rule *script_take(const json_t *msg)
{
  const char *m = json_string_value(json_object_get(msg, "method"));
  const char *t = json_string_value(json_object_get(json_object_get(msg, "params"), "name"));
  for (rule **pp = &P.rules; *pp; pp = &(*pp)->next) {
    rule *r = *pp;
    if ((r->method && (!m || strcmp(r->method, m) != 0)) ||
        (r->tool && (!t || strcmp(r->tool, t) != 0)))
      continue;
    r->count--;
    return r;
  }
  return NULL;
}

static void rules_gc(void)
{
  rule **pp = &P.rules;
  while (*pp) {
    rule *r = *pp;
    if (r->count <= 0) {
      *pp = r->next;
      free(r->method);
      free(r->tool);
      free(r);
    } else {
      pp = &r->next;
    }
  }
  P.rules_tail = &P.rules;
  while (*P.rules_tail)
    P.rules_tail = &(*P.rules_tail)->next;
}

static int rule_add(const json_t *o)
{
  rule *r;
  const char *m = json_string_value(json_object_get(o, "method"));
  const char *t = json_string_value(json_object_get(o, "tool"));
  json_int_t count = json_integer_value(json_object_get(o, "count"));
  json_int_t status = json_integer_value(json_object_get(o, "status"));
  if (!json_is_object(o) || count < 1 || status < 100 || status > 599)
    return TG_EINVAL;
  if (!(r = calloc(1, sizeof *r)))
    return TG_ENOMEM;
  r->method = m ? strdup(m) : NULL;
  r->tool = t ? strdup(t) : NULL;
  r->count = (int)count;
  r->status = (int)status;
  r->retry_after = (int)json_integer_value(json_object_get(o, "retry_after"));
  *P.rules_tail = r;
  P.rules_tail = &r->next;
  return 0;
}

/* ---- MCP ---- */

static json_t *base_tools(void)
{
  return json_pack(
      "{s:[{s:s, s:{s:s, s:{s:{s:s}}, s:[s]}, s:{s:b}}, {s:s, s:{s:s, s:{s:{s:s}, s:{s:s}}}, "
      "s:{s:b}}, {s:s, s:{s:s, s:{s:{s:s}}}}, {s:s, s:{s:s, s:{s:{s:s}}}, s:{s:b}}, "
      "{s:s, s:{s:s}}]}",
      "tools", "name", "echo", "inputSchema", "type", "object", "properties", "message", "type",
      "string", "required", "message", "annotations", "readOnlyHint", 1, "name", "add",
      "inputSchema", "type", "object", "properties", "a", "type", "number", "b", "type", "number",
      "annotations", "idempotentHint", 1, "name", "sleep", "inputSchema", "type", "object",
      "properties", "ms", "type", "number", "name", "sleep_ro", "inputSchema", "type", "object",
      "properties", "ms", "type", "number", "annotations", "readOnlyHint", 1, "name", "fail",
      "inputSchema", "type", "object");
}

static json_t *tools_list(void)
{
  json_t *r = base_tools(), *tools = json_object_get(r, "tools"), *n;
  size_t i;
  json_array_foreach(P.extra, i, n)
  {
    json_t *t = json_deep_copy(json_array_get(tools, 0));
    json_object_set(t, "name", n);
    json_array_append_new(tools, t);
  }
  return r;
}

/* ---- GET streams ---- */

static void stream_forget(tg_httpd_req *req)
{
  for (size_t i = 0; i < json_array_size(P.streams); i++)
    if ((tg_httpd_req *)(uintptr_t)json_integer_value(json_array_get(P.streams, i)) == req) {
      json_array_remove(P.streams, i);
      return;
    }
}

static void on_stream(tg_httpd_req *req, int event, void *arg)
{
  (void)arg;
  if (event == TG_HTTPD_STREAM_CLOSED) {
    stream_forget(req);
    tg_httpd_stream_end(req);
  }
}

/* Sends one SSE event to every open GET stream; returns how many took it. */
static int streams_send(const char *data)
{
  char ev[256];
  int n = 0, len = snprintf(ev, sizeof ev, "event: message\ndata: %s\n\n", data);
  for (size_t i = 0; i < json_array_size(P.streams); i++) {
    tg_httpd_req *req = (tg_httpd_req *)(uintptr_t)json_integer_value(json_array_get(P.streams, i));
    if (tg_httpd_stream_write(req, ev, (size_t)len) != TG_ECANCELED)
      n++;
  }
  return n;
}

static void streams_end_all(void)
{
  while (json_array_size(P.streams)) {
    tg_httpd_req *req = (tg_httpd_req *)(uintptr_t)json_integer_value(json_array_get(P.streams, 0));
    json_array_remove(P.streams, 0);
    tg_httpd_stream_end(req);
  }
}

static json_t *text_result(const char *text, int is_error)
{
  json_t *r = json_pack("{s:[{s:s, s:s}]}", "content", "type", "text", "text", text);
  if (r && is_error)
    json_object_set_new(r, "isError", json_true());
  return r;
}

static json_t *rpc_result(const json_t *id, json_t *result)
{
  return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

static json_t *rpc_error(const json_t *id, int code, const char *message)
{
  return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                   "error", "code", code, "message", message);
}

static void respond(tg_httpd_req *req, json_t *entry, int status, const char *sid, json_t *body)
{
  char hdr[80];
  const char *headers[2] = {NULL, NULL};
  if (sid) {
    snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s", sid);
    headers[0] = hdr;
  }
  note_status(entry, status);
  tg_httpd_respond_json(req, status, headers, body);
}

static void on_delayed_closed(uv_handle_t *h)
{
  free(h->data);
}

static void delayed_fire(delayed *d, int status)
{
  if (d->prev)
    d->prev->next = d->next;
  else
    P.delayed = d->next;
  if (d->next)
    d->next->prev = d->prev;
  if (status == 200) {
    const char *h[2] = {d->sid_hdr, NULL};
    tg_httpd_respond_json(d->req, 200, h, d->body);
  } else {
    json_decref(d->body);
    tg_httpd_respond_error(d->req, status, "shutting_down", "peer is stopping");
  }
  uv_close((uv_handle_t *)&d->t, on_delayed_closed);
}

static void on_delay(uv_timer_t *t)
{
  delayed_fire(t->data, 200);
}

/* tools/call: answers at once, or later for sleep / sleep_ro. */
static void call_tool(tg_httpd_req *req, json_t *entry, const json_t *id, const json_t *params,
                      const char *sid)
{
  const char *name = json_string_value(json_object_get(params, "name"));
  const json_t *args = json_object_get(params, "arguments");
  char buf[512];
  json_t *res;
  P.n_calls++;
  if (!name) {
    respond(req, entry, 200, sid, rpc_error(id, -32602, "missing tool name"));
    return;
  }
  if (strcmp(name, "echo") == 0) {
    const char *m = json_string_value(json_object_get(args, "message"));
    snprintf(buf, sizeof buf, "Echo: %s", m ? m : "");
    res = text_result(buf, 0);
  } else if (strcmp(name, "add") == 0) {
    double a = json_number_value(json_object_get(args, "a"));
    double b = json_number_value(json_object_get(args, "b"));
    snprintf(buf, sizeof buf, "%g", a + b);
    res = text_result(buf, 0);
  } else if (strcmp(name, "fail") == 0) {
    const char *m = json_string_value(json_object_get(args, "message"));
    res = text_result(m ? m : "the tool failed", 1);
  } else if (strcmp(name, "sleep") == 0 || strcmp(name, "sleep_ro") == 0) {
    json_int_t ms = json_integer_value(json_object_get(args, "ms"));
    delayed *d = calloc(1, sizeof *d);
    if (ms < 0 || ms > MAX_SLEEP_MS)
      ms = 0;
    snprintf(buf, sizeof buf, "slept %lld ms", (long long)ms);
    if (!d || !(d->body = rpc_result(id, text_result(buf, 0)))) {
      free(d);
      respond(req, entry, 500, NULL, rpc_error(id, -32603, "out of memory"));
      return;
    }
    note_status(entry, 200);
    d->req = req;
    snprintf(d->sid_hdr, sizeof d->sid_hdr, "Mcp-Session-Id: %s", sid);
    uv_timer_init(P.loop, &d->t);
    d->t.data = d;
    d->next = P.delayed;
    if (P.delayed)
      P.delayed->prev = d;
    P.delayed = d;
    uv_timer_start(&d->t, on_delay, (uint64_t)ms, 0);
    return;
  } else {
    snprintf(buf, sizeof buf, "Unknown tool: %s", name);
    respond(req, entry, 200, sid, rpc_error(id, -32602, buf));
    return;
  }
  respond(req, entry, 200, sid, rpc_result(id, res));
}

static void handle_mcp_post(tg_httpd_req *req)
{
  json_error_t jerr;
  const char *body = tg_httpd_body(req, NULL);
  json_t *msg = json_loads(body, 0, &jerr), *entry;
  const json_t *id;
  const char *method, *sid_in = tg_httpd_header(req, "mcp-session-id");
  session *s;
  rule *r;

  entry = log_entry(req, msg);
  if (!json_is_object(msg)) {
    respond(req, entry, 400, NULL, rpc_error(NULL, -32700, "expected one JSON-RPC object"));
    goto out;
  }
  id = json_object_get(msg, "id");
  method = json_string_value(json_object_get(msg, "method"));
  if ((r = script_take(msg))) {
    char ra[48];
    const char *h[2] = {NULL, NULL};
    P.n_scripted++;
    if (r->status == 404 && (s = session_find(sid_in)))
      session_drop(s);
    if (r->status == 429) {
      snprintf(ra, sizeof ra, "Retry-After: %d", r->retry_after);
      h[0] = ra;
    }
    note_status(entry, r->status);
    tg_httpd_respond_json(req, r->status, h,
                          rpc_error(NULL, r->status == 404 ? -32001 : -32000, "scripted failure"));
    rules_gc();
    goto out;
  }
  if (method && strcmp(method, "initialize") == 0) {
    const char *v =
        json_string_value(json_object_get(json_object_get(msg, "params"), "protocolVersion"));
    if (!v || (strcmp(v, "2025-11-25") && strcmp(v, "2025-06-18") && strcmp(v, "2025-03-26")))
      v = "2025-11-25";
    if (!(s = session_new(tg_httpd_path(req)))) {
      respond(req, entry, 500, NULL, rpc_error(id, -32603, "out of memory"));
      goto out;
    }
    P.n_init++;
    json_object_set_new(entry, "session", json_string(s->id));
    respond(req, entry, 200, s->id,
            rpc_result(id, json_pack("{s:s, s:{s:{}}, s:{s:s, s:s}}", "protocolVersion", v,
                                     "capabilities", "tools", "serverInfo", "name", "mcp-peer",
                                     "version", "0.1.0")));
    goto out;
  }
  if (!id || !method) { /* a notification or a response */
    note_status(entry, 202);
    tg_httpd_respond(req, 202, NULL, "", 0);
    goto out;
  }
  if (!sid_in) {
    respond(req, entry, 400, NULL, rpc_error(id, -32000, "Bad Request: missing Mcp-Session-Id"));
    goto out;
  }
  s = session_find(sid_in);
  if (s && P.drop_after > 0 && s->served >= P.drop_after) {
    session_drop(s);
    s = NULL;
  }
  if (!s || strcmp(s->path, tg_httpd_path(req)) != 0) {
    respond(req, entry, 404, NULL, rpc_error(NULL, -32001, "Session not found"));
    goto out;
  }
  s->served++;
  if (strcmp(method, "tools/list") == 0)
    respond(req, entry, 200, s->id, rpc_result(id, tools_list()));
  else if (strcmp(method, "tools/call") == 0)
    call_tool(req, entry, id, json_object_get(msg, "params"), s->id);
  else if (strcmp(method, "ping") == 0)
    respond(req, entry, 200, s->id, rpc_result(id, json_object()));
  else
    respond(req, entry, 200, s->id, rpc_error(id, -32601, "Method not found"));
out:
  json_decref(msg);
}

static void handle_mcp(tg_httpd_req *req)
{
  const char *m = tg_httpd_method(req);
  if (strcmp(m, "POST") == 0) {
    handle_mcp_post(req);
  } else if (strcmp(m, "DELETE") == 0) {
    json_t *entry = log_entry(req, NULL);
    session *s = session_find(tg_httpd_header(req, "mcp-session-id"));
    int ok = s && strcmp(s->path, tg_httpd_path(req)) == 0;
    P.n_deletes++;
    if (ok)
      session_drop(s);
    note_status(entry, ok ? 200 : 404);
    tg_httpd_respond(req, ok ? 200 : 404, NULL, "", 0);
  } else if (strcmp(m, "GET") == 0 && P.get_streams) {
    static const char *const sse[] = {"Content-Type: text/event-stream", "Cache-Control: no-cache",
                                      NULL};
    json_t *entry = log_entry(req, NULL);
    session *s = session_find(tg_httpd_header(req, "mcp-session-id"));
    if (!s || strcmp(s->path, tg_httpd_path(req)) != 0) {
      note_status(entry, 404);
      tg_httpd_respond(req, 404, NULL, "", 0);
      return;
    }
    note_status(entry, 200);
    if (tg_httpd_stream_begin(req, 200, sse, on_stream, NULL) != 0 ||
        json_array_append_new(P.streams, json_integer((json_int_t)(uintptr_t)req)) != 0)
      tg_httpd_stream_end(req);
  } else {
    note_status(log_entry(req, NULL), 405);
    tg_httpd_respond(req, 405, NULL, "", 0);
  }
}

/* ---- control ---- */

static void handle_control(tg_httpd_req *req)
{
  const char *path = tg_httpd_path(req), *m = tg_httpd_method(req);
  if (strcmp(path, "/_peer/log") == 0 && strcmp(m, "GET") == 0) {
    tg_httpd_respond_json(
        req, 200, NULL,
        json_pack("{s:O, s:I}", "requests", P.log, "dropped", (json_int_t)P.n_dropped));
  } else if (strcmp(path, "/_peer/stats") == 0 && strcmp(m, "GET") == 0) {
    tg_httpd_respond_json(req, 200, NULL,
                          json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "requests",
                                    (json_int_t)P.n_requests, "initialize", (json_int_t)P.n_init,
                                    "calls", (json_int_t)P.n_calls, "deletes",
                                    (json_int_t)P.n_deletes, "scripted", (json_int_t)P.n_scripted,
                                    "sessions", (json_int_t)P.n_sessions));
  } else if (strcmp(path, "/_peer/script") == 0 && strcmp(m, "POST") == 0) {
    json_t *b = json_loads(tg_httpd_body(req, NULL), 0, NULL), *o;
    size_t i;
    int rc = b ? 0 : TG_EINVAL;
    if (json_is_array(b)) {
      json_array_foreach(b, i, o)
      {
        if (!rc)
          rc = rule_add(o);
      }
    } else if (!rc) {
      rc = rule_add(b);
    }
    json_decref(b);
    if (rc)
      tg_httpd_respond_error(req, 400, "bad_script",
                             "want {method?, tool?, count>=1, status, retry_after?} or an array");
    else
      tg_httpd_respond_json(req, 200, NULL, json_pack("{s:b}", "ok", 1));
  } else if (strcmp(path, "/_peer/churn") == 0 && strcmp(m, "POST") == 0) {
    json_t *b = json_loads(tg_httpd_body(req, NULL), 0, NULL);
    json_t *n = json_object_get(b, "drop_session_after");
    if (json_is_integer(n) && json_integer_value(n) >= 0) {
      P.drop_after = (long)json_integer_value(n);
      tg_httpd_respond_json(req, 200, NULL, json_pack("{s:b}", "ok", 1));
    } else {
      tg_httpd_respond_error(req, 400, "bad_churn", "want {\"drop_session_after\": N >= 0}");
    }
    json_decref(b);
  } else if (strcmp(path, "/_peer/get_streams") == 0 && strcmp(m, "POST") == 0) {
    json_t *b = json_loads(tg_httpd_body(req, NULL), 0, NULL);
    P.get_streams = json_is_true(json_object_get(b, "enabled"));
    if (!P.get_streams)
      streams_end_all();
    json_decref(b);
    tg_httpd_respond_json(req, 200, NULL, json_pack("{s:b}", "ok", 1));
  } else if (strcmp(path, "/_peer/list_changed") == 0 && strcmp(m, "POST") == 0) {
    json_t *b = json_loads(tg_httpd_body(req, NULL), 0, NULL),
           *add = json_object_get(b, "add_tool");
    if (json_is_string(add))
      json_array_append(P.extra, add);
    json_decref(b);
    tg_httpd_respond_json(req, 200, NULL,
                          json_pack("{s:i}", "streams",
                                    streams_send("{\"jsonrpc\":\"2.0\",\"method\":"
                                                 "\"notifications/tools/list_changed\"}")));
  } else if (strcmp(path, "/_peer/reset") == 0 && strcmp(m, "POST") == 0) {
    json_array_clear(P.log);
    for (rule *r = P.rules; r; r = r->next)
      r->count = 0;
    rules_gc();
    P.n_requests = P.n_dropped = P.n_init = P.n_calls = P.n_deletes = P.n_scripted = 0;
    tg_httpd_respond_json(req, 200, NULL, json_pack("{s:b}", "ok", 1));
  } else {
    tg_httpd_respond_error(req, 404, "not_found", "unknown control route");
  }
}

static void handle(tg_httpd_req *req, void *arg)
{
  const char *path = tg_httpd_path(req);
  (void)arg;
  if (strcmp(path, "/healthz") == 0)
    tg_httpd_respond_json(req, 200, NULL, json_pack("{s:b}", "ok", 1));
  else if (strncmp(path, "/_peer/", 7) == 0)
    handle_control(req);
  else
    handle_mcp(req);
}

/* ---- main ---- */

static void on_closed(void *arg)
{
  (void)arg;
}

static void on_signal(uv_signal_t *h, int signum)
{
  (void)signum;
  (void)h;
  if (P.stopping)
    return;
  P.stopping = 1;
  streams_end_all();
  while (P.delayed) {
    uv_timer_stop(&P.delayed->t);
    delayed_fire(P.delayed, 503);
  }
  tg_httpd_close(P.srv, on_closed, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
}

int main(int argc, char **argv)
{
  const char *listen = "127.0.0.1:19850", *colon;
  char host[64];
  uv_loop_t loop;
  tg_httpd_limits lim;
  int port, rc = 1;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen = argv[++i];
    } else if (strcmp(argv[i], "--drop-session-after") == 0 && i + 1 < argc) {
      P.drop_after = atol(argv[++i]);
    } else {
      fprintf(stderr, "usage: mcp-peer [--listen HOST:PORT] [--drop-session-after N]   (port 0: "
                      "any; the bound port is logged as peer_listening)\n");
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  colon = strrchr(listen, ':');
  if (!colon || (size_t)(colon - listen) >= sizeof host) {
    fprintf(stderr, "mcp-peer: bad --listen %s\n", listen);
    return 2;
  }
  snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
  port = atoi(colon + 1);
  tg_log_init("mcp-peer", tg_log_level_parse(getenv("TOOLGATE_LOG_LEVEL")));
  if (sodium_init() < 0)
    return 1;
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop);
  P.loop = &loop;
  P.t0 = uv_now(&loop);
  P.log = json_array();
  P.streams = json_array();
  P.extra = json_array();
  P.rules_tail = &P.rules;
  tg_httpd_limits_default(&lim);
  lim.max_connections = 4096;
  if (tg_httpd_start(&P.srv, &loop, host, port, &lim, handle, NULL) != 0) {
    uv_run(&loop, UV_RUN_DEFAULT);
    goto out;
  }
  uv_signal_init(&loop, &sig_int);
  uv_signal_init(&loop, &sig_term);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  tg_info("peer_listening", "{s:s, s:i}", "host", host, "port", tg_httpd_port(P.srv));
  uv_run(&loop, UV_RUN_DEFAULT);
  rc = 0;
out:
  if (uv_loop_close(&loop) != 0)
    rc = 1;
  while (P.sessions)
    session_drop(P.sessions);
  for (rule *r = P.rules; r; r = r->next)
    r->count = 0;
  rules_gc();
  json_decref(P.log);
  json_decref(P.streams);
  json_decref(P.extra);
  return rc;
}
