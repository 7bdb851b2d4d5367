/*
 * tg_mcp: MCP Streamable HTTP client (protocol 2025-11-25, accepting 2025-06-18 and 2025-03-26;
 * the version offered in initialize is 2025-11-25 unless the options name an older one).
 *
 * Three layers, in three files sharing tg_mcp_int.h. A `post` is one fire-and-forget POST or
 * DELETE and an `rpc` one JSON-RPC request with its answer (tg_mcp_rpc.c); the session, its
 * streams and their resumption live in tg_mcp_session.c. This file holds the public API and the
 * `op`s: what the caller asked for (connect, tools/list across pages, tools/call), each holding
 * the caller's callback, plus the kick timer's deferred work and closing.
 *
 * Invariants: user callbacks are never called from inside a tg_http on_data callback (curl
 * forbids re-entering the multi handle there), so anything that must happen mid-stream (POSTing
 * an answer) is queued and sent from the `kick` timer. Every rpc/op/post is on one of the
 * client's lists until it completes, so tg_mcp_close can cancel everything. The client is freed
 * only in the kick timer's close callback. Extra headers and the session id are never logged.
 */
#include "tg_mcp_int.h"

#include "tg_err.h"
#include "tg_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MCP_LATEST_VERSION "2025-11-25"
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_CLIENT_VERSION "0.1.0"
#define MAX_EVENT_BYTES (4u << 20)     /* one SSE event */
#define MAX_RESPONSE_BYTES (16u << 20) /* one response body, JSON or SSE */
#define MAX_LIST_PAGES 1000

/* Fills e with err, the HTTP status and a formatted message; rpc_code 0, no Retry-After. */
void tg_mcp__set_err(tg_mcp_error *e, int err, long status, const char *fmt, ...)
{
  va_list ap;
  memset(e, 0, sizeof *e);
  e->err = err;
  e->http_status = status;
  e->retry_after_ms = -1;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
}

static op *op_new(tg_mcp_client *m, int kind, void *arg)
{
  op *o = calloc(1, sizeof *o);
  if (!o)
    return NULL;
  o->m = m;
  o->kind = kind;
  o->arg = arg;
  LINK(m->ops, o);
  return o;
}

static void op_free(op *o)
{
  UNLINK(o->m->ops, o);
  json_decref(o->tools);
  free(o);
}

void tg_mcp__op_finish(op *o, const tg_mcp_error *err, json_t *result)
{
  UNLINK(o->m->ops, o);
  switch (o->kind) {
  case OP_CONNECT:
    o->cb.done(o->arg, err);
    break;
  case OP_LIST:
    o->cb.tools(o->arg, err, err ? NULL : result);
    break;
  default:
    o->cb.result(o->arg, err, err ? NULL : result);
    break;
  }
  json_decref(o->tools);
  free(o);
}

static int list_page(op *o, const char *cursor);

static void on_list_done(rpc *r, const tg_mcp_error *err, json_t *result)
{
  op *o = r->op;
  tg_mcp_error e;
  json_t *tools, *next;
  int rc;

  if (err) {
    tg_mcp__op_finish(o, err, NULL);
    return;
  }
  tools = json_object_get(result, "tools");
  if (!json_is_array(tools)) {
    tg_mcp__set_err(&e, TG_EPROTO, 0, "tools/list: result without a tools array");
    tg_mcp__op_finish(o, &e, NULL);
    return;
  }
  if (json_array_extend(o->tools, tools)) {
    tg_mcp__set_err(&e, TG_ENOMEM, 0, "tools/list: out of memory");
    tg_mcp__op_finish(o, &e, NULL);
    return;
  }
  next = json_object_get(result, "nextCursor");
  if (!json_is_string(next) || json_string_length(next) == 0) {
    tg_mcp__op_finish(o, NULL, o->tools);
    return;
  }
  if (o->m->closing) {
    tg_mcp__set_err(&e, TG_ECANCELED, 0, "mcp client closed");
    tg_mcp__op_finish(o, &e, NULL);
    return;
  }
  if (++o->pages >= MAX_LIST_PAGES) {
    tg_mcp__set_err(&e, TG_EPROTO, 0, "tools/list: more than %d pages", MAX_LIST_PAGES);
    tg_mcp__op_finish(o, &e, NULL);
    return;
  }
  rc = list_page(o, json_string_value(next));
  if (rc) {
    tg_mcp__set_err(&e, rc, 0, "tools/list: %s", tg_strerror(rc));
    tg_mcp__op_finish(o, &e, NULL);
  }
}

static int list_page(op *o, const char *cursor)
{
  json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
  rpc *r;
  int rc;
  if (!params)
    return TG_ENOMEM;
  r = tg_mcp__rpc_new(o->m, "tools/list", params, 0, on_list_done, o);
  json_decref(params);
  if (!r)
    return TG_ENOMEM;
  rc = tg_mcp__rpc_start(r);
  if (rc) {
    UNLINK(o->m->rpcs, r);
    tg_mcp__rpc_free(r);
  }
  return rc;
}

static void on_call_done(rpc *r, const tg_mcp_error *err, json_t *result)
{
  tg_mcp_error e;
  if (!err && !json_is_object(result)) {
    tg_mcp__set_err(&e, TG_EPROTO, 0, "tools/call: result is not an object");
    err = &e;
  }
  tg_mcp__op_finish(r->op, err, result);
}

static void on_kick(uv_timer_t *h)
{
  tg_mcp_client *m = h->data;
  int again = 1;
  while (again && !m->closing) {
    again = 0;
    for (post *p = m->posts; p; p = p->next)
      if (p->queued) {
        p->queued = 0;
        if (tg_mcp__post_send(p)) {
          UNLINK(m->posts, p);
          tg_mcp__post_free(p);
        }
        again = 1;
        break;
      }
    if (!again && m->notes) {
      note *n = m->notes;
      m->notes = n->next;
      if (!m->notes)
        m->notes_tail = &m->notes;
      m->n_notes--;
      tg_mcp__note_deliver(m, n);
      again = 1;
    }
    for (op *o = m->ops; o && !again; o = o->next)
      if (o->ready_now) {
        tg_mcp__op_finish(o, NULL, NULL);
        again = 1;
        break;
      }
  }
}

/* Runs the deferred work (queued posts and notifications, connects already satisfied) from the
 * loop, outside any tg_http callback. */
void tg_mcp__kick(tg_mcp_client *m)
{
  uv_timer_start(&m->kick, on_kick, 0, 0);
}

int tg_mcp_client_new(tg_mcp_client **out, tg_http_client *http, const tg_mcp_options *opt)
{
  tg_mcp_client *m;
  size_t n = 0;

  *out = NULL;
  if (!http || !opt || !opt->url || !*opt->url)
    return TG_EINVAL;
  for (const char *const *h = opt->headers; h && *h; h++) {
    /* One "Name: value" line each; CR/LF would smuggle extra headers. */
    if (!strchr(*h, ':') || **h == ':' || strpbrk(*h, "\r\n"))
      return TG_EINVAL;
    n++;
  }
  if (opt->protocol_version && !tg_mcp__version_supported(opt->protocol_version))
    return TG_EINVAL;
  m = calloc(1, sizeof *m);
  if (!m)
    return TG_ENOMEM;
  m->http = http;
  m->timeout_ms = opt->request_timeout_ms > 0 ? opt->request_timeout_ms : DEFAULT_TIMEOUT_MS;
  m->url = strdup(opt->url);
  m->client_name = strdup(opt->client_name ? opt->client_name : "toolgate");
  m->client_version = strdup(opt->client_version ? opt->client_version : DEFAULT_CLIENT_VERSION);
  m->extra = calloc(n + 1, sizeof *m->extra);
  if (!m->url || !m->client_name || !m->client_version || !m->extra)
    goto nomem;
  for (size_t i = 0; i < n; i++) {
    if (!(m->extra[i] = strdup(opt->headers[i])))
      goto nomem;
    m->n_extra++;
  }
  snprintf(m->offer_version, sizeof m->offer_version, "%s",
           opt->protocol_version ? opt->protocol_version : MCP_LATEST_VERSION);
  m->listen = opt->listen;
  if (opt->auth)
    m->auth = *opt->auth;
  m->max_event = opt->max_event_bytes ? opt->max_event_bytes : MAX_EVENT_BYTES;
  m->max_response = opt->max_response_bytes ? opt->max_response_bytes : MAX_RESPONSE_BYTES;
  m->on_notify = opt->on_notify;
  m->notify_arg = opt->notify_arg;
  m->notes_tail = &m->notes;
  uv_timer_init(tg_http_loop(http), &m->kick);
  m->kick.data = m;
  uv_timer_init(tg_http_loop(http), &m->timer);
  m->timer.data = m;
  *out = m;
  return 0;
nomem:
  for (size_t i = 0; i < m->n_extra; i++)
    free(m->extra[i]);
  free(m->extra);
  free(m->url);
  free(m->client_name);
  free(m->client_version);
  free(m);
  return TG_ENOMEM;
}

/* The checks a connect or list call starts with, then its op in *o: TG_EINVAL without m or a
 * callback, TG_ECANCELED once m is closing, TG_ENOMEM. */
static int op_start(tg_mcp_client *m, int has_cb, int kind, void *arg, op **o)
{
  if (!m || !has_cb)
    return TG_EINVAL;
  if (m->closing)
    return TG_ECANCELED;
  *o = op_new(m, kind, arg);
  return *o ? 0 : TG_ENOMEM;
}

int tg_mcp_connect(tg_mcp_client *m, tg_mcp_done_cb cb, void *arg)
{
  op *o;
  int rc = op_start(m, cb != NULL, OP_CONNECT, arg, &o);
  if (rc)
    return rc;
  o->cb.done = cb;
  if (m->state == ST_READY) {
    o->ready_now = 1;
    tg_mcp__kick(m);
    return 0;
  }
  if (m->state == ST_IDLE && (rc = tg_mcp__session_begin(m))) {
    op_free(o);
    return rc;
  }
  o->waiting_session = 1;
  return 0;
}

int tg_mcp_list_tools(tg_mcp_client *m, tg_mcp_tools_cb cb, void *arg)
{
  op *o;
  int rc = op_start(m, cb != NULL, OP_LIST, arg, &o);
  if (rc)
    return rc;
  o->cb.tools = cb;
  o->tools = json_array();
  if (!o->tools) {
    op_free(o);
    return TG_ENOMEM;
  }
  rc = list_page(o, NULL);
  if (rc)
    op_free(o);
  return rc;
}

int tg_mcp_call_tool_ex(tg_mcp_client *m, const char *name, const json_t *arguments,
                        tg_mcp_progress_cb on_progress, tg_mcp_result_cb cb, void *arg,
                        tg_mcp_call **out)
{
  json_t *params;
  op *o;
  rpc *r;
  int rc;

  if (out)
    *out = NULL;
  if (!m || !name || !*name || !cb || (arguments && !json_is_object(arguments)))
    return TG_EINVAL;
  if (m->closing)
    return TG_ECANCELED;
  params = json_pack("{s:s}", "name", name);
  if (!params || (arguments && json_object_set(params, "arguments", (json_t *)arguments))) {
    json_decref(params);
    return TG_ENOMEM;
  }
  /* The progress token is the request id (unique in the session, A.9). */
  if (on_progress &&
      json_object_set_new(params, "_meta",
                          json_pack("{s:I}", "progressToken", (json_int_t)(m->next_id + 1)))) {
    json_decref(params);
    return TG_ENOMEM;
  }
  o = op_new(m, OP_CALL, arg);
  r = o ? tg_mcp__rpc_new(m, "tools/call", params, 0, on_call_done, o) : NULL;
  json_decref(params);
  if (!r) {
    if (o)
      op_free(o);
    return TG_ENOMEM;
  }
  o->cb.result = cb;
  o->on_progress = on_progress;
  rc = tg_mcp__rpc_start(r);
  if (rc) {
    UNLINK(m->rpcs, r);
    tg_mcp__rpc_free(r);
    op_free(o);
    return rc;
  }
  if (out)
    *out = (tg_mcp_call *)o;
  return 0;
}

int tg_mcp_call_tool(tg_mcp_client *m, const char *name, const json_t *arguments,
                     tg_mcp_result_cb cb, void *arg)
{
  return tg_mcp_call_tool_ex(m, name, arguments, NULL, cb, arg, NULL);
}

void tg_mcp_cancel(tg_mcp_call *call)
{
  op *o = (op *)call;
  tg_mcp_client *m;
  if (!o)
    return;
  m = o->m;
  for (rpc *r = m->rpcs; r; r = r->next) {
    if (r->op != o || r->is_listen || r->completing)
      continue;
    if (r->sent && m->state == ST_READY && r->sent_gen == m->gen && !m->closing)
      tg_mcp__send_cancelled(m, r->id, "canceled");
    r->undelivered = !r->sent; /* canceled while waiting for the session */
    tg_mcp__rpc_fail(r, TG_ECANCELED, 0, "%s: canceled", r->method);
    return;
  }
}

int tg_mcp_is_connected(const tg_mcp_client *m)
{
  return m && m->state == ST_READY;
}

const char *tg_mcp_protocol_version(const tg_mcp_client *m)
{
  return m && m->state == ST_READY && m->version[0] ? m->version : NULL;
}

static void on_kick_closed(uv_handle_t *h)
{
  tg_mcp_client *m = h->data;
  void (*cb)(void *) = m->on_closed;
  void *arg = m->closed_arg;
  for (size_t i = 0; i < m->n_extra; i++)
    free(m->extra[i]);
  free(m->extra);
  free(m->url);
  free(m->client_name);
  free(m->client_version);
  free(m->session_id);
  free(m);
  if (cb)
    cb(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
  tg_mcp_client *m = h->data;
  uv_close((uv_handle_t *)&m->kick, on_kick_closed);
}

void tg_mcp__close_finish(tg_mcp_client *m)
{
  uv_timer_stop(&m->kick);
  uv_timer_stop(&m->timer);
  uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}

void tg_mcp_close(tg_mcp_client *m, void (*on_closed)(void *arg), void *arg)
{
  post *del;
  if (!m || m->closing)
    return;
  m->closing = 1;
  if (m->auth_busy && m->auth.cancel)
    m->auth.cancel(m->auth.self);
  m->auth_busy = 0;
  m->on_closed = on_closed;
  m->closed_arg = arg;
  while (m->rpcs)
    tg_mcp__rpc_fail(m->rpcs, TG_ECANCELED, 0, "mcp client closed");
  while (m->ops) {
    tg_mcp_error e;
    tg_mcp__set_err(&e, TG_ECANCELED, 0, "mcp client closed");
    tg_mcp__op_finish(m->ops, &e, NULL);
  }
  while (m->notes) {
    note *n = m->notes;
    m->notes = n->next;
    tg_mcp__note_free(n);
  }
  m->notes_tail = &m->notes;
  m->n_notes = 0;
  while (m->posts) {
    post *p = m->posts;
    UNLINK(m->posts, p);
    if (p->t)
      tg_http_cancel(p->t);
    tg_mcp__post_free(p);
  }
  if (!m->session_id) {
    tg_mcp__close_finish(m);
    return;
  }
  /* End the session (A.6); the client is freed when the DELETE completes. */
  del = calloc(1, sizeof *del);
  if (!del) {
    tg_mcp__close_finish(m);
    return;
  }
  del->m = m;
  del->kind = POST_DELETE;
  if (tg_mcp__post_send(del)) {
    tg_mcp__post_free(del);
    tg_mcp__close_finish(m);
  }
}
