/*
 * tg_mcp_rpc: the POST layer of the MCP client (tg_mcp_int.h).
 *
 * A `post` is one fire-and-forget POST or DELETE: notifications/initialized, answers to server
 * requests, notifications/cancelled, the closing DELETE. An `rpc` is one JSON-RPC request: it
 * owns the current HTTP attempt, takes the answer as JSON (into a tg_buf capped at
 * max_response) or as SSE (tg_sse, capped per event), routes every message on the stream (our
 * response completes the rpc it answers, also another pending one's after a resume; server
 * requests are answered by a queued post; notifications are queued for the kick timer) and maps
 * HTTP failures to TG_E*, handing a lost session to tg_mcp_session.c.
 *
 * Invariants: nothing here calls a user callback from inside tg_http's on_data (curl forbids
 * re-entering the multi handle there): answers and notifications are queued and sent or
 * delivered from the kick timer. An rpc is on m->rpcs from tg_mcp__rpc_new until
 * tg_mcp__rpc_complete, which runs its completion exactly once and frees it. Extra headers and
 * the session id are never logged.
 */
#include "tg_mcp_int.h"

#include "tg_err.h"
#include "tg_jsonrpc.h"
#include "tg_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ERROR_BODY (64u << 10) /* kept of a non-2xx body, for the message */
#define MAX_POST_BODY (64u << 10)  /* answer to a notification/response POST or DELETE */
#define BODY_FIRST 1024            /* first allocation of a JSON or error body */
#define GRACE_MS 200               /* a POST stream may end this long after its response */
#define MAX_NOTES 1024             /* queued notifications not yet delivered */

static int starts_with_ci(const char *s, const char *prefix)
{
  while (*s == ' ' || *s == '\t')
    s++;
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Headers of one request: a POST (with_body) or a GET stream (sse_get, with last_event_id when
 * resuming) or a DELETE; with_session adds Mcp-Session-Id and MCP-Protocol-Version. Returns a
 * NULL-terminated malloc'd array (free with tg_mcp__free_headers). */
int tg_mcp__build_headers(tg_mcp_client *m, int with_session, int with_body, int sse_get,
                          const char *last_event_id, char ***out)
{
  size_t n = 0, cap = m->n_extra + 7;
  const char *bearer = m->auth.header ? m->auth.header(m->auth.self) : NULL;
  char **h = calloc(cap, sizeof *h);
  if (!h)
    return TG_ENOMEM;
  if (with_body) {
    h[n++] = strdup("Content-Type: application/json");
    h[n++] = strdup("Accept: application/json, text/event-stream");
  } else if (sse_get) {
    h[n++] = strdup("Accept: text/event-stream");
    if (last_event_id && *last_event_id) {
      size_t len = strlen(last_event_id) + 32;
      if ((h[n] = malloc(len)))
        snprintf(h[n], len, "Last-Event-ID: %s", last_event_id);
      n++;
    }
  }
  if (with_session && m->session_id) {
    size_t len = strlen(m->session_id) + 32;
    if ((h[n] = malloc(len)))
      snprintf(h[n], len, "Mcp-Session-Id: %s", m->session_id);
    n++;
  }
  if (with_session && m->version[0]) {
    size_t len = strlen(m->version) + 32;
    if ((h[n] = malloc(len)))
      snprintf(h[n], len, "MCP-Protocol-Version: %s", m->version);
    n++;
  }
  for (size_t i = 0; i < m->n_extra; i++)
    h[n++] = strdup(m->extra[i]);
  if (bearer)
    h[n++] = strdup(bearer);
  for (size_t i = 0; i < n; i++)
    if (!h[i]) {
      for (size_t j = 0; j < n; j++)
        free(h[j]);
      free(h);
      return TG_ENOMEM;
    }
  *out = h;
  return 0;
}

void tg_mcp__free_headers(char **h)
{
  for (size_t i = 0; h && h[i]; i++)
    free(h[i]);
  free(h);
}

void tg_mcp__post_free(post *p)
{
  if (!p)
    return;
  free(p->body);
  free(p);
}

static void on_post_done(void *arg, int err, const tg_http_response *resp)
{
  post *p = arg;
  tg_mcp_client *m = p->m;
  int kind = p->kind;
  long status = resp->status;

  p->t = NULL;
  if (kind != POST_DELETE)
    UNLINK(m->posts, p);
  tg_mcp__post_free(p);
  if (kind == POST_DELETE) {
    /* 200/204, 404 (already gone) and 405 (termination not allowed) all end the session. */
    if (err || (status != 405 && status != 404 && (status < 200 || status > 299)))
      tg_debug("mcp_delete_failed", "{s:I, s:s}", "status", (json_int_t)status, "error",
               tg_errname(err));
    tg_mcp__close_finish(m);
    return;
  }
  if (kind == POST_INITIALIZED && !m->closing) {
    tg_mcp_error e;
    if (err) {
      tg_mcp__set_err(&e, err, 0, "notifications/initialized failed: %s", tg_strerror(err));
      tg_mcp__session_failed(m, &e);
    } else if (status < 200 || status > 299) {
      tg_mcp__set_err(&e, TG_EHTTP, status, "notifications/initialized: HTTP %ld", status);
      tg_mcp__session_failed(m, &e);
    } else {
      tg_mcp__session_ready(m);
    }
    return;
  }
  if (err || status < 200 || status > 299)
    tg_debug("mcp_post_failed", "{s:i, s:I, s:s}", "kind", kind, "status", (json_int_t)status,
             "error", tg_errname(err));
}

/* Sends p now. On error p is unlinked and freed by the caller. */
int tg_mcp__post_send(post *p)
{
  tg_mcp_client *m = p->m;
  char **h = NULL;
  int rc = tg_mcp__build_headers(m, 1, p->body != NULL, 0, NULL, &h);
  tg_http_request req = {
      .method = p->kind == POST_DELETE ? "DELETE" : "POST",
      .url = m->url,
      .body = p->body,
      .body_len = p->body ? strlen(p->body) : 0,
      .timeout_ms = m->timeout_ms,
      .max_body = MAX_POST_BODY,
  };
  if (rc)
    return rc;
  req.headers = (const char *const *)h;
  rc = tg_http_send(m->http, &req, on_post_done, p, &p->t);
  tg_mcp__free_headers(h);
  return rc;
}

/* Creates a post owning body (freed on every path). queued: send from the kick timer. */
int tg_mcp__post_new(tg_mcp_client *m, int kind, char *body, int queued)
{
  post *p = calloc(1, sizeof *p);
  int rc;
  if (!p) {
    free(body);
    return TG_ENOMEM;
  }
  p->m = m;
  p->kind = kind;
  p->body = body;
  LINK(m->posts, p);
  if (queued) {
    p->queued = 1;
    tg_mcp__kick(m);
    return 0;
  }
  rc = tg_mcp__post_send(p);
  if (rc) {
    UNLINK(m->posts, p);
    tg_mcp__post_free(p);
  }
  return rc;
}

void tg_mcp__rpc_reset_attempt(rpc *r)
{
  tg_sse_free(&r->sse);
  tg_buf_free(&r->buf);
  free(r->session_seen);
  json_decref(r->result);
  r->session_seen = NULL;
  r->result = NULL;
  r->total = 0;
  r->mode = MODE_NONE;
  r->got_response = r->is_rpc_error = r->rpc_code = 0;
  r->fail_err = 0;
  r->grace_at = 0;
  r->fail_msg[0] = r->rpc_message[0] = 0;
}

/* Forgets the resumption cursor (a new session starts new streams). */
void tg_mcp__rpc_reset_resume(rpc *r)
{
  free(r->last_event_id);
  r->last_event_id = NULL;
  r->retry_ms = -1;
  r->idle_resumes = 0;
  r->wake_at = 0;
}

void tg_mcp__rpc_free(rpc *r)
{
  if (!r)
    return;
  tg_mcp__rpc_reset_attempt(r);
  tg_mcp__rpc_reset_resume(r);
  free(r->method);
  free(r->body);
  free(r);
}

rpc *tg_mcp__rpc_new(tg_mcp_client *m, const char *method, json_t *params, int is_init,
                     void (*done)(rpc *, const tg_mcp_error *, json_t *), op *o)
{
  rpc *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->m = m;
  r->op = o;
  r->id = ++m->next_id;
  r->is_init = is_init;
  r->done = done;
  r->retry_ms = -1;
  r->method = strdup(method);
  r->deadline_ms = now_ms() + (uint64_t)m->timeout_ms;
  if (!r->method || tg_jsonrpc_request(&r->body, r->id, method, params)) {
    tg_mcp__rpc_free(r);
    return NULL;
  }
  LINK(m->rpcs, r);
  return r;
}

void tg_mcp__note_free(note *n)
{
  free(n->method);
  json_decref(n->params);
  free(n);
}

/* Delivers n (progress of a call or a general notification) and frees it. */
void tg_mcp__note_deliver(tg_mcp_client *m, note *n)
{
  if (n->rpc_id) {
    for (rpc *r = m->rpcs; r; r = r->next)
      if (r->id == n->rpc_id && !r->is_listen && r->op && r->op->on_progress) {
        json_t *tot = json_object_get(n->params, "total");
        r->op->on_progress(r->op->arg, json_number_value(json_object_get(n->params, "progress")),
                           json_is_number(tot) ? json_number_value(tot) : -1.0,
                           json_string_value(json_object_get(n->params, "message")));
        break;
      }
  } else if (m->on_notify) {
    m->on_notify(m->notify_arg, n->method, n->params);
  }
  tg_mcp__note_free(n);
}

/* Delivers the queued progress of r (before its result, in arrival order). */
static void flush_notes_of(tg_mcp_client *m, rpc *r)
{
  note **pp = &m->notes;
  while (*pp && !m->closing) {
    note *n = *pp;
    if (n->rpc_id != r->id) {
      pp = &n->next;
      continue;
    }
    *pp = n->next;
    if (m->notes_tail == &n->next)
      m->notes_tail = pp;
    m->n_notes--;
    tg_mcp__note_deliver(m, n);
    pp = &m->notes; /* the callback may have changed the queue */
  }
}

/* Unlinks r, runs its completion, frees it. */
void tg_mcp__rpc_complete(rpc *r, const tg_mcp_error *err, json_t *result)
{
  tg_mcp_client *m = r->m;
  tg_mcp_error nd;
  if (err && r->undelivered && !err->not_delivered) { /* see tg_mcp_error.not_delivered */
    nd = *err;
    nd.not_delivered = 1;
    err = &nd;
  }
  r->completing = 1;
  if (r->t) {
    tg_http_cancel(r->t);
    r->t = NULL;
  }
  if (!r->is_listen && r->op && r->op->on_progress && !m->closing)
    flush_notes_of(m, r);
  UNLINK(m->rpcs, r);
  if (m->listener == r)
    m->listener = NULL;
  r->done(r, err, result);
  tg_mcp__rpc_free(r);
}

void tg_mcp__rpc_fail(rpc *r, int err, long status, const char *fmt, ...)
{
  tg_mcp_error e;
  va_list ap;
  tg_mcp__set_err(&e, err, status, "%s", "");
  va_start(ap, fmt);
  vsnprintf(e.message, sizeof e.message, fmt, ap);
  va_end(ap);
  tg_mcp__rpc_complete(r, &e, NULL);
}

/* Completes r from the response it received (result or JSON-RPC error). */
void tg_mcp__rpc_finish_response(rpc *r, long status)
{
  if (r->is_rpc_error) {
    tg_mcp_error e;
    tg_mcp__set_err(&e, TG_EPROTO, status, "%s: JSON-RPC error %d: %s", r->method, r->rpc_code,
                    r->rpc_message);
    e.rpc_code = r->rpc_code;
    tg_mcp__rpc_complete(r, &e, NULL);
  } else {
    json_t *res = json_incref(r->result);
    tg_mcp__rpc_complete(r, NULL, res);
    json_decref(res);
  }
}

static void capture_session(rpc *r, const tg_http_transfer *t)
{
  const char *sid;
  if (!r->is_init || r->session_seen)
    return;
  sid = tg_http_header(t, "Mcp-Session-Id");
  if (sid)
    r->session_seen = strdup(sid);
}

/* elicitation/create without a user: accept with the requested schema's defaults when every
 * required field has one, else decline (mcp-client.md B.1, SEP-1034). */
static json_t *elicit_answer(json_t *params)
{
  json_t *schema = json_object_get(params, "requestedSchema");
  json_t *props = json_object_get(schema, "properties"), *req = json_object_get(schema, "required");
  json_t *content, *v;
  const char *k;
  size_t i;

  if (!json_is_object(props))
    return json_pack("{s:s}", "action", "decline");
  content = json_object();
  if (!content)
    return NULL;
  json_object_foreach(props, k, v)
  {
    json_t *d = json_object_get(v, "default");
    if (d && json_object_set(content, k, d)) {
      json_decref(content);
      return NULL;
    }
  }
  json_array_foreach(req, i, v)
  {
    if (!json_is_string(v) || !json_object_get(content, json_string_value(v))) {
      json_object_clear(content);
      break;
    }
  }
  if (json_object_size(content) == 0) {
    json_decref(content);
    return json_pack("{s:s}", "action", "decline");
  }
  return json_pack("{s:s, s:o}", "action", "accept", "content", content);
}

static int queue_note(tg_mcp_client *m, long long rpc_id, const char *method, json_t *params)
{
  note *n;
  if (m->n_notes >= MAX_NOTES) {
    tg_debug("mcp_notification_dropped", "{s:s}", "method", method);
    return 0;
  }
  n = calloc(1, sizeof *n);
  if (!n || !(n->method = strdup(method))) {
    free(n);
    return TG_ENOMEM;
  }
  n->rpc_id = rpc_id;
  n->params = json_incref(params);
  if (!m->notes_tail)
    m->notes_tail = &m->notes;
  *m->notes_tail = n;
  m->notes_tail = &n->next;
  m->n_notes++;
  tg_mcp__kick(m);
  return 0;
}

/* The pending request with id, or NULL. */
static rpc *find_rpc(tg_mcp_client *m, json_t *id)
{
  for (rpc *r = m->rpcs; r; r = r->next)
    if (!r->is_listen && tg_jsonrpc_id_is(id, r->id))
      return r;
  return NULL;
}

/* Handles one JSON-RPC message that arrived on r's stream. Returns 0, TG_ECANCELED to end a GET
 * stream whose awaited response arrived, or TG_EPROTO/TG_ENOMEM (abort). */
static int route_message(rpc *r, const char *text, size_t len)
{
  tg_jsonrpc_msg msg;
  tg_mcp_client *m = r->m;
  int rc = tg_jsonrpc_decode(text, len, &msg);

  if (rc) {
    if (rc == TG_EINVAL) {
      rc = TG_EPROTO;
      snprintf(r->fail_msg, sizeof r->fail_msg, "%s: malformed JSON-RPC message: %s", r->method,
               msg.reason);
    } else {
      snprintf(r->fail_msg, sizeof r->fail_msg, "%s: %s", r->method, tg_strerror(rc));
    }
    r->fail_err = rc;
    tg_jsonrpc_msg_clear(&msg);
    return rc;
  }
  switch (msg.kind) {
  case TG_JSONRPC_RESPONSE: {
    /* Ours, or (after a resume or on the GET stream) another pending request's (A.8). */
    rpc *target = find_rpc(m, msg.id);
    if (!target || target->got_response || target->completing) {
      tg_debug("mcp_response_ignored", "{s:s}", "reason",
               target ? "duplicate" : "unknown or late id");
      break;
    }
    target->got_response = 1;
    if (msg.is_error) {
      target->is_rpc_error = 1;
      target->rpc_code = (int)msg.error_code;
      snprintf(target->rpc_message, sizeof target->rpc_message, "%s", msg.error_message);
    } else {
      target->result = json_incref(msg.result);
    }
    if (target != r) {
      target->grace_at = now_ms(); /* complete it from the timer, closing its stream */
      tg_mcp__schedule(m);
    } else if (r->get_attempt) {
      rc = TG_ECANCELED; /* a resumed GET may stay open: close it now */
    } else {
      target->grace_at = now_ms() + GRACE_MS; /* the POST stream should end by itself */
      tg_mcp__schedule(m);
    }
    break;
  }
  case TG_JSONRPC_REQUEST: {
    /* Answer by a new POST (A.5, A.11): ping gets {}, elicitation the schema's defaults,
     * anything else -32601. */
    char *body = NULL;
    if (strcmp(msg.method, "ping") == 0) {
      rc = tg_jsonrpc_result(&body, msg.id, NULL);
    } else if (strcmp(msg.method, "elicitation/create") == 0) {
      json_t *ans = elicit_answer(msg.params);
      rc = ans ? tg_jsonrpc_result(&body, msg.id, ans) : TG_ENOMEM;
      json_decref(ans);
    } else {
      rc = tg_jsonrpc_error(&body, msg.id, TG_JSONRPC_METHOD_NOT_FOUND, "Method not found", NULL);
    }
    tg_debug("mcp_server_request", "{s:s}", "method", msg.method);
    if (!rc && !m->closing)
      rc = tg_mcp__post_new(m, POST_ANSWER, body, 1);
    else
      free(body);
    if (rc) {
      r->fail_err = rc;
      snprintf(r->fail_msg, sizeof r->fail_msg, "%s: cannot answer a server request: %s", r->method,
               tg_strerror(rc));
    }
    break;
  }
  default: {
    rpc *target = NULL;
    if (strcmp(msg.method, "notifications/progress") == 0) {
      target = find_rpc(m, json_object_get(msg.params, "progressToken"));
      if (target && !(target->op && target->op->on_progress))
        target = NULL;
    }
    if (target)
      rc = queue_note(m, target->id, msg.method, msg.params);
    else if (m->on_notify)
      rc = queue_note(m, 0, msg.method, msg.params);
    else
      tg_debug("mcp_notification_ignored", "{s:s}", "method", msg.method);
    if (rc) {
      r->fail_err = rc;
      snprintf(r->fail_msg, sizeof r->fail_msg, "%s: %s", r->method, tg_strerror(rc));
    }
    break;
  }
  }
  tg_jsonrpc_msg_clear(&msg);
  return rc;
}

static int on_sse_event(void *arg, const tg_sse_event *ev)
{
  rpc *r = arg;
  if (strcmp(ev->type, "message") != 0)
    return 0;
  if (ev->own_id && tg_mcp__seen_before(r->m, ev->id)) {
    tg_debug("mcp_event_duplicate", "{s:s}", "method", r->method);
    return 0;
  }
  return route_message(r, ev->data, ev->data_len);
}

static int rpc_on_data(void *arg, tg_http_transfer *t, const char *buf, size_t len)
{
  rpc *r = arg;
  int rc;

  if (r->mode == MODE_NONE) {
    long status = tg_http_status(t);
    const char *ct = tg_http_header(t, "Content-Type");
    capture_session(r, t);
    if (status < 200 || status > 299) {
      r->mode = MODE_ERRBODY;
    } else if (ct && starts_with_ci(ct, "text/event-stream")) {
      r->mode = MODE_SSE;
      tg_sse_init(&r->sse, r->m->max_event, on_sse_event, r);
    } else if (!ct || starts_with_ci(ct, "application/json")) {
      r->mode = MODE_JSON;
    } else {
      r->fail_err = TG_EPROTO;
      snprintf(r->fail_msg, sizeof r->fail_msg, "%s: unexpected Content-Type %.64s", r->method, ct);
      return TG_EPROTO;
    }
    tg_buf_init_hint(&r->buf,
                     r->mode == MODE_ERRBODY ? MAX_ERROR_BODY
                     : r->is_listen          ? r->m->max_event
                                             : r->m->max_response,
                     BODY_FIRST);
  }
  /* A long-lived GET stream is capped per event, not in total. */
  if (!r->is_listen &&
      (__builtin_add_overflow(r->total, len, &r->total) || r->total > r->m->max_response)) {
    r->fail_err = TG_ETOOBIG;
    snprintf(r->fail_msg, sizeof r->fail_msg, "%s: response exceeds %zu bytes", r->method,
             r->m->max_response);
    return TG_ETOOBIG;
  }
  switch (r->mode) {
  case MODE_ERRBODY:
    if (r->buf.len < MAX_ERROR_BODY) {
      size_t n = len < MAX_ERROR_BODY - r->buf.len ? len : MAX_ERROR_BODY - r->buf.len;
      if (tg_buf_add(&r->buf, buf, n))
        return TG_ENOMEM;
    }
    return 0;
  case MODE_JSON:
    rc = tg_buf_add(&r->buf, buf, len);
    if (rc) {
      r->fail_err = rc;
      snprintf(r->fail_msg, sizeof r->fail_msg, "%s: %s", r->method, tg_strerror(rc));
    }
    return rc;
  default:
    rc = tg_sse_feed(&r->sse, buf, len);
    tg_mcp__note_cursor(r);
    if (rc && !r->fail_err && !(rc == TG_ECANCELED && r->got_response)) {
      r->fail_err = rc;
      snprintf(r->fail_msg, sizeof r->fail_msg, "%s: %s", r->method,
               rc == TG_ETOOBIG ? "SSE event exceeds the size cap" : tg_strerror(rc));
    }
    return rc;
  }
}

static int ci_contains(const char *hay, const char *needle)
{
  size_t n = strlen(needle);
  for (; *hay; hay++)
    if (strncasecmp(hay, needle, n) == 0)
      return 1;
  return 0;
}

static int body_says_session_unknown(const rpc *r)
{
  const char *b = tg_buf_str(&r->buf);
  if (!ci_contains(b, "session"))
    return 0;
  return ci_contains(b, "no valid") || ci_contains(b, "not found") || ci_contains(b, "unknown") ||
         ci_contains(b, "invalid") || ci_contains(b, "expired");
}

/* The non-2xx message: the JSON-RPC error text in the body when there is one. */
static void http_error_detail(const rpc *r, char *out, size_t n)
{
  tg_jsonrpc_msg msg = {0}; /* cleared below even when nothing was decoded */
  out[0] = 0;
  if (r->buf.ptr && tg_jsonrpc_decode(r->buf.ptr, r->buf.len, &msg) == 0 && msg.is_error)
    snprintf(out, n, ": %.200s", msg.error_message);
  tg_jsonrpc_msg_clear(&msg);
}

void tg_mcp__send_cancelled(tg_mcp_client *m, long long id, const char *reason)
{
  json_t *params = json_pack("{s:I, s:s}", "requestId", (json_int_t)id, "reason", reason);
  char *body = NULL;
  if (params && !tg_jsonrpc_notification(&body, "notifications/cancelled", params))
    tg_mcp__post_new(m, POST_CANCELLED, body, 0);
  json_decref(params);
}

void tg_mcp__rpc_timed_out(rpc *r, long status)
{
  tg_mcp_client *m = r->m;
  /* Cancel what the server is working on (A.11); tg_mcp__rpc_complete closes the stream. */
  if (!r->is_init && r->sent && m->state == ST_READY && r->sent_gen == m->gen && !m->closing)
    tg_mcp__send_cancelled(m, r->id, "timeout");
  tg_mcp__rpc_fail(r, TG_ETIMEDOUT, status, "%s: timed out after %ld ms", r->method, m->timeout_ms);
}

/* The provider's challenge ended: resend the requests that waited for it, or fail them. */
static void on_auth_ready(void *arg, int err, const char *message)
{
  tg_mcp_client *m = arg;
  m->auth_busy = 0;
  if (!err)
    m->auth_serial++;
  for (;;) {
    rpc *r = m->rpcs;
    int rc;
    while (r && !r->auth_wait)
      r = r->next;
    if (!r || m->closing)
      return;
    r->auth_wait = 0;
    tg_mcp__rpc_reset_attempt(r);
    if (err) {
      tg_mcp__rpc_fail(r, TG_EAUTH, 401, "%s: authorization failed: %s", r->method,
                       message ? message : tg_strerror(err));
    } else if ((rc = tg_mcp__rpc_send(r, 0)) != 0) {
      if (rc == TG_ETIMEDOUT)
        tg_mcp__rpc_timed_out(r, 0);
      else
        tg_mcp__rpc_fail(r, rc, 0, "%s: %s", r->method, tg_strerror(rc));
    }
  }
}

/* A 401/403 on r's POST: 1 when the auth provider takes it (r is resent later, or failed by
 * on_auth_ready), 0 to fail it here. The provider may answer from inside its challenge call, so
 * r waits (auth_wait) before the call. */
static int auth_retry(rpc *r, long status, const tg_http_response *resp)
{
  tg_mcp_client *m = r->m;
  const char *www = resp->t ? tg_http_header(resp->t, "WWW-Authenticate") : NULL;
  int rc;
  if (!m->auth.challenge || r->auth_tries >= 2 || m->closing)
    return 0;
  r->auth_tries++;
  if (!m->auth_busy && r->auth_serial_sent != m->auth_serial && status == 401) {
    /* a newer token exists than the one this request carried: just resend */
    tg_mcp__rpc_reset_attempt(r);
    if ((rc = tg_mcp__rpc_send(r, 0)) != 0)
      tg_mcp__rpc_fail(r, rc, status, "%s: %s", r->method, tg_strerror(rc));
    return 1;
  }
  r->auth_wait = 1;
  if (m->auth_busy) {
    tg_mcp__rpc_reset_attempt(r);
    return 1;
  }
  m->auth_busy = 1;
  if (m->auth.challenge(m->auth.self, status, www, on_auth_ready, m) != 0) {
    m->auth_busy = 0;
    r->auth_wait = 0;
    return 0;
  }
  return 1;
}

static void rpc_on_done(void *arg, int err, const tg_http_response *resp)
{
  rpc *r = arg;
  long status = resp->status;
  char detail[224];

  r->t = NULL;
  if (r->mode == MODE_NONE && resp->t)
    capture_session(r, resp->t);
  if (!r->got_response && !err && status >= 200 && status <= 299 && r->mode == MODE_JSON &&
      r->buf.len > 0)
    route_message(r, r->buf.ptr, r->buf.len);
  if (r->got_response) {
    /* A response counts even if the stream broke after it. */
    tg_mcp__rpc_finish_response(r, status);
    return;
  }
  if (r->fail_err) {
    tg_mcp__rpc_fail(r, r->fail_err, status, "%s", r->fail_msg);
    return;
  }
  /* The stream ended, or the connection broke, without our response: resume (A.8). */
  if (r->mode == MODE_SSE && (err == 0 || err == TG_EIO) && status >= 200 && status <= 299 &&
      tg_mcp__schedule_resume(r)) {
    tg_mcp__rpc_reset_attempt(r);
    return;
  }
  if (r->is_listen) {
    tg_debug("mcp_listen_ended", "{s:I, s:s}", "status", (json_int_t)status, "error",
             tg_errname(err));
    tg_mcp__rpc_fail(r, err ? err : TG_EHTTP, status, "GET stream ended");
    return;
  }
  if (err) {
    /* This POST never reached the server (not a resume GET: its POST was delivered). */
    r->undelivered = resp->not_sent && !r->get_attempt;
    if (err == TG_ETIMEDOUT)
      tg_mcp__rpc_timed_out(r, status);
    else
      tg_mcp__rpc_fail(r, err, status, "%s: %s", r->method,
                       err == TG_EIO ? "MCP server unreachable or connection reset"
                                     : tg_strerror(err));
    return;
  }
  if (status >= 200 && status <= 299) {
    if (r->get_attempt || r->mode == MODE_SSE)
      tg_mcp__rpc_fail(r, TG_EPROTO, status, "%s: stream ended without a response", r->method);
    else
      tg_mcp__rpc_fail(r, TG_EPROTO, status, "%s: HTTP %ld without a JSON-RPC response", r->method,
                       status);
    return;
  }
  if (r->sent_with_session && (status == 404 || (status == 400 && body_says_session_unknown(r)))) {
    tg_mcp__session_lost(r, status);
    return;
  }
  if ((status == 401 || status == 403) && !r->get_attempt && !r->is_listen &&
      auth_retry(r, status, resp))
    return;
  http_error_detail(r, detail, sizeof detail);
  if (r->get_attempt) {
    tg_mcp__rpc_fail(r, TG_EPROTO, status,
                     "%s: stream ended without a response (resume: HTTP %ld%s)", r->method, status,
                     detail);
  } else if (status == 401 || status == 403) {
    tg_mcp__rpc_fail(r, TG_EAUTH, status, "%s: HTTP %ld, credentials rejected%s", r->method, status,
                     detail);
  } else if (status == 429) {
    tg_mcp_error e;
    tg_mcp__set_err(&e, TG_ERATELIMIT, status, "%s: HTTP 429, rate limited%s", r->method, detail);
    e.retry_after_ms = resp->t ? tg_http_retry_after_ms(resp->t) : -1;
    tg_mcp__rpc_complete(r, &e, NULL);
  } else {
    tg_mcp__rpc_fail(r, TG_EHTTP, status, "%s: HTTP %ld%s", r->method, status, detail);
  }
}

/* Sends r's next HTTP attempt: its POST, or (get) a GET on the endpoint, for the optional stream
 * or a resume with Last-Event-ID. Returns TG_ETIMEDOUT when r's deadline has passed, or
 * tg_http_send's error. */
int tg_mcp__rpc_send(rpc *r, int get)
{
  tg_mcp_client *m = r->m;
  uint64_t now = now_ms();
  char **h = NULL;
  int with_session = get || !r->is_init, rc;
  tg_http_request req = {
      .method = get ? "GET" : "POST",
      .url = m->url,
      .body = get ? NULL : r->body,
      .body_len = get ? 0 : strlen(r->body),
      .on_data = rpc_on_data, /* streamed: rpc_on_data enforces m->max_response */
  };

  if (r->deadline_ms) { /* every request has one; the optional GET stream has none */
    if (now >= r->deadline_ms)
      return TG_ETIMEDOUT;
    req.timeout_ms = (long)(r->deadline_ms - now);
  }
  rc = tg_mcp__build_headers(m, with_session, !get, get, get ? r->last_event_id : NULL, &h);
  if (rc)
    return rc;
  req.headers = (const char *const *)h;
  r->sent_with_session = with_session && m->session_id != NULL;
  r->auth_serial_sent = m->auth_serial;
  r->sent_gen = m->gen;
  r->get_attempt = get;
  rc = tg_http_send(m->http, &req, rpc_on_done, r, &r->t);
  if (!rc && !get) {
    r->sent = 1;
    m->sent_in_session += !r->is_init;
  }
  tg_mcp__free_headers(h);
  return rc;
}
