/*
 * tg_mcp: MCP Streamable HTTP client (protocol 2025-11-25, accepting 2025-06-18 and 2025-03-26;
 * the version offered in initialize is 2025-11-25 unless the options name an older one).
 *
 * Three layers. A `post` is one fire-and-forget POST/DELETE (notifications/initialized, answers
 * to server requests, notifications/cancelled, the closing DELETE). An `rpc` is one JSON-RPC
 * request: it owns the current HTTP attempt, parses the answer as JSON or SSE incrementally
 * (tg_sse), routes every message on the stream (our response completes it; server requests are
 * answered by a queued POST; notifications are ignored) and maps HTTP failures to TG_E*. An `op`
 * is what the caller asked for (connect, tools/list across pages, tools/call) and holds the
 * caller's callback.
 *
 * Session state: IDLE → INIT (initialize in flight, then notifications/initialized) → READY.
 * rpcs issued before READY wait (r->waiting) and are sent when the session is ready, or failed
 * with the session's error. `gen` counts sessions: an rpc that gets 404 (or server-everything's
 * 400 "No valid session ID") for the session it was sent on drops that session and is replayed
 * once on a new one; a second loss fails it with TG_ENOTFOUND.
 *
 * Invariants: user callbacks are never called from inside a tg_http on_data callback (curl
 * forbids re-entering the multi handle there), so anything that must happen mid-stream (POSTing
 * an answer) is queued and sent from the `kick` timer. Every rpc/op/post is on one of the
 * client's lists until it completes, so tg_mcp_close can cancel everything. The client is freed
 * only in the kick timer's close callback. Extra headers and the session id are never logged.
 */
#include "tg_mcp.h"
#include "tg_buf.h"
#include "tg_err.h"
#include "tg_jsonrpc.h"
#include "tg_log.h"
#include "tg_sse.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MCP_LATEST_VERSION "2025-11-25"
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_CLIENT_VERSION "0.1.0"
#define MAX_EVENT_BYTES (4u << 20)     /* one SSE event */
#define MAX_RESPONSE_BYTES (16u << 20) /* one response body, JSON or SSE */
#define MAX_ERROR_BODY (64u << 10)     /* kept of a non-2xx body, for the message */
#define MAX_POST_BODY (64u << 10)      /* answer to a notification/response POST or DELETE */
#define BODY_FIRST 1024                /* first allocation of a JSON or error body */
#define MAX_SESSION_ID 256
#define MAX_LIST_PAGES 1000
#define DEFAULT_RETRY_MS 1000L /* resume delay when the stream gave no `retry` */
#define MAX_RETRY_MS 60000L    /* cap on a server's `retry` */
#define MAX_IDLE_RESUMES 3     /* resumes in a row that bring no new event */
#define GRACE_MS 200           /* a POST stream may end this long after its response */
#define SEEN_IDS 64            /* event ids remembered to drop replayed duplicates */
#define SEEN_ID_LEN 72         /* longer ids are not remembered */
#define MAX_NOTES 1024         /* queued notifications not yet delivered */

/* Versions we accept from the server (mcp-client.md A.2, A.12). */
static const char *const SUPPORTED_VERSIONS[] = {"2025-11-25", "2025-06-18", "2025-03-26", NULL};

typedef struct rpc rpc;
typedef struct op op;
typedef struct post post;
typedef struct note note;

enum { ST_IDLE, ST_INIT, ST_READY };
enum { MODE_NONE, MODE_JSON, MODE_SSE, MODE_ERRBODY };
enum { OP_CONNECT, OP_LIST, OP_CALL };
enum { POST_INITIALIZED, POST_ANSWER, POST_CANCELLED, POST_DELETE };

struct tg_mcp_client {
  tg_http_client *http;
  uv_timer_t kick; /* deferred work: queued posts, connect ops that are already satisfied */
  char *url;
  char **extra; /* "Name: value" lines from the options; never logged */
  size_t n_extra;
  long timeout_ms;
  size_t max_event, max_response; /* bytes */
  char *client_name, *client_version;
  int state;
  unsigned gen; /* bumped each time a session becomes ready */
  char *session_id;
  char version[16];       /* negotiated; "" without a session */
  char offer_version[16]; /* offered in initialize */
  long long next_id;
  rpc *rpcs;
  op *ops;
  post *posts;
  uv_timer_t timer; /* resume waits (retry) and early closes of answered streams */
  int listen;       /* open the optional GET stream */
  rpc *listener;    /* that stream while it runs */
  tg_mcp_notify_cb on_notify;
  void *notify_arg;
  note *notes, **notes_tail; /* notifications waiting for the kick timer */
  size_t n_notes;
  char seen[SEEN_IDS][SEEN_ID_LEN]; /* ring of recent event ids */
  unsigned seen_next;
  int closing;
  void (*on_closed)(void *);
  void *closed_arg;
};

struct rpc {
  tg_mcp_client *m;
  rpc *prev, *next;
  int in_batch; /* taken by session_ready/session_failed, not yet handled */
  op *op;
  long long id;
  char *method;
  char *body;
  int is_init, replayed, waiting, sent_with_session;
  int is_listen;   /* the optional GET stream, not a request */
  int sent;        /* the POST went out at least once (cancellation must be announced) */
  int undelivered; /* set just before an error completion: tg_mcp_error.not_delivered */
  int completing;  /* inside rpc_complete */
  int get_attempt; /* the current transfer is a GET (resume or listen) */
  unsigned sent_gen;
  uint64_t deadline_ms;       /* 0 = none (listen) */
  uint64_t wake_at, grace_at; /* resume time; forced-completion time once answered */
  char *last_event_id;        /* last id seen on this request's streams */
  long retry_ms;              /* last `retry` seen, -1 if none */
  int idle_resumes;           /* resumes in a row without a new event id */
  tg_http_transfer *t;
  /* the current attempt */
  int mode;
  tg_sse_parser sse;
  tg_buf buf;   /* a JSON answer, or the start of an error body; capped by the mode */
  size_t total; /* bytes received on this attempt */
  char *session_seen;
  int got_response, is_rpc_error, rpc_code;
  json_t *result;
  char rpc_message[256];
  int fail_err;
  char fail_msg[256];
  void (*done)(rpc *r, const tg_mcp_error *err, json_t *result);
};

struct op {
  tg_mcp_client *m;
  op *prev, *next;
  int in_batch; /* as rpc.in_batch */
  int kind;
  int waiting_session, ready_now;
  union {
    tg_mcp_done_cb done;
    tg_mcp_tools_cb tools;
    tg_mcp_result_cb result;
  } cb;
  tg_mcp_progress_cb on_progress;
  void *arg;
  json_t *tools;
  int pages;
};

/* A notification to deliver from the kick timer: progress of request rpc_id, or (rpc_id 0) a
 * general one for on_notify. */
struct note {
  note *next;
  long long rpc_id;
  char *method;
  json_t *params;
};

struct post {
  tg_mcp_client *m;
  post *prev, *next;
  int kind;
  char *body; /* NULL for DELETE */
  tg_http_transfer *t;
  int queued; /* waiting for the kick timer */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
  return uv_hrtime() / 1000000u;
}

#define LINK(head, x)                                                                              \
  do {                                                                                             \
    (x)->prev = NULL;                                                                              \
    (x)->next = (head);                                                                            \
    if (head)                                                                                      \
      (head)->prev = (x);                                                                          \
    (head) = (x);                                                                                  \
  } while (0)

#define UNLINK(head, x)                                                                            \
  do {                                                                                             \
    if ((x)->prev)                                                                                 \
      (x)->prev->next = (x)->next;                                                                 \
    else if ((head) == (x))                                                                        \
      (head) = (x)->next;                                                                          \
    if ((x)->next)                                                                                 \
      (x)->next->prev = (x)->prev;                                                                 \
    (x)->prev = (x)->next = NULL;                                                                  \
  } while (0)

static void set_err(tg_mcp_error *e, int err, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_err(tg_mcp_error *e, int err, long status, const char *fmt, ...)
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

static int starts_with_ci(const char *s, const char *prefix)
{
  while (*s == ' ' || *s == '\t')
    s++;
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static int version_supported(const char *v)
{
  for (int i = 0; SUPPORTED_VERSIONS[i]; i++)
    if (strcmp(v, SUPPORTED_VERSIONS[i]) == 0)
      return 1;
  return 0;
}

static int valid_session_id(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > MAX_SESSION_ID)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E)
      return 0;
  return 1;
}

/* Headers of one request: a POST (with_body) or a GET stream (sse_get, with last_event_id when
 * resuming) or a DELETE; with_session adds Mcp-Session-Id and MCP-Protocol-Version. Returns a
 * NULL-terminated malloc'd array (free with free_headers). */
static int build_headers(tg_mcp_client *m, int with_session, int with_body, int sse_get,
                         const char *last_event_id, char ***out)
{
  size_t n = 0, cap = m->n_extra + 6;
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

static void free_headers(char **h)
{
  for (size_t i = 0; h && h[i]; i++)
    free(h[i]);
  free(h);
}

/* ---- posts: fire-and-forget messages ------------------------------------------------------ */

static void session_ready(tg_mcp_client *m);
static void session_failed(tg_mcp_client *m, const tg_mcp_error *err);
static void close_finish(tg_mcp_client *m);
static void on_kick(uv_timer_t *h);

static void post_free(post *p)
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
  post_free(p);
  if (kind == POST_DELETE) {
    /* 200/204, 404 (already gone) and 405 (termination not allowed) all end the session. */
    if (err || (status != 405 && status != 404 && (status < 200 || status > 299)))
      tg_debug("mcp_delete_failed", "{s:I, s:s}", "status", (json_int_t)status, "error",
               tg_errname(err));
    close_finish(m);
    return;
  }
  if (kind == POST_INITIALIZED && !m->closing) {
    tg_mcp_error e;
    if (err) {
      set_err(&e, err, 0, "notifications/initialized failed: %s", tg_strerror(err));
      session_failed(m, &e);
    } else if (status < 200 || status > 299) {
      set_err(&e, TG_EHTTP, status, "notifications/initialized: HTTP %ld", status);
      session_failed(m, &e);
    } else {
      session_ready(m);
    }
    return;
  }
  if (err || status < 200 || status > 299)
    tg_debug("mcp_post_failed", "{s:i, s:I, s:s}", "kind", kind, "status", (json_int_t)status,
             "error", tg_errname(err));
}

/* Sends p now. On error p is unlinked and freed by the caller. */
static int post_send(post *p)
{
  tg_mcp_client *m = p->m;
  char **h = NULL;
  int rc = build_headers(m, 1, p->body != NULL, 0, NULL, &h);
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
  free_headers(h);
  return rc;
}

/* Creates a post owning body (freed on every path). queued: send from the kick timer. */
static int post_new(tg_mcp_client *m, int kind, char *body, int queued)
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
    uv_timer_start(&m->kick, on_kick, 0, 0);
    return 0;
  }
  rc = post_send(p);
  if (rc) {
    UNLINK(m->posts, p);
    post_free(p);
  }
  return rc;
}

/* ---- rpcs --------------------------------------------------------------------------------- */

static void schedule(tg_mcp_client *m);

static void rpc_reset_attempt(rpc *r)
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
static void rpc_reset_resume(rpc *r)
{
  free(r->last_event_id);
  r->last_event_id = NULL;
  r->retry_ms = -1;
  r->idle_resumes = 0;
  r->wake_at = 0;
}

static void rpc_free(rpc *r)
{
  if (!r)
    return;
  rpc_reset_attempt(r);
  rpc_reset_resume(r);
  free(r->method);
  free(r->body);
  free(r);
}

static rpc *rpc_new(tg_mcp_client *m, const char *method, json_t *params, int is_init,
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
    rpc_free(r);
    return NULL;
  }
  LINK(m->rpcs, r);
  return r;
}

static void note_free(note *n)
{
  free(n->method);
  json_decref(n->params);
  free(n);
}

/* Delivers n (progress of a call or a general notification) and frees it. */
static void note_deliver(tg_mcp_client *m, note *n)
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
  note_free(n);
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
    note_deliver(m, n);
    pp = &m->notes; /* the callback may have changed the queue */
  }
}

/* Unlinks r, runs its completion, frees it. */
static void rpc_complete(rpc *r, const tg_mcp_error *err, json_t *result)
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
  rpc_free(r);
}

static void rpc_fail(rpc *r, int err, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void rpc_fail(rpc *r, int err, long status, const char *fmt, ...)
{
  tg_mcp_error e;
  va_list ap;
  set_err(&e, err, status, "%s", "");
  va_start(ap, fmt);
  vsnprintf(e.message, sizeof e.message, fmt, ap);
  va_end(ap);
  rpc_complete(r, &e, NULL);
}

/* Completes r from the response it received (result or JSON-RPC error). */
static void rpc_finish_response(rpc *r, long status)
{
  if (r->is_rpc_error) {
    tg_mcp_error e;
    set_err(&e, TG_EPROTO, status, "%s: JSON-RPC error %d: %s", r->method, r->rpc_code,
            r->rpc_message);
    e.rpc_code = r->rpc_code;
    rpc_complete(r, &e, NULL);
  } else {
    json_t *res = json_incref(r->result);
    rpc_complete(r, NULL, res);
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

/* 1 when the event id was seen recently (a replay); otherwise remembers it. */
static int seen_before(tg_mcp_client *m, const char *id)
{
  size_t n = strlen(id);
  if (n == 0 || n >= SEEN_ID_LEN)
    return 0;
  for (unsigned i = 0; i < SEEN_IDS; i++)
    if (m->seen[i][0] && strcmp(m->seen[i], id) == 0)
      return 1;
  memcpy(m->seen[m->seen_next], id, n + 1);
  m->seen_next = (m->seen_next + 1) % SEEN_IDS;
  return 0;
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
  uv_timer_start(&m->kick, on_kick, 0, 0);
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
      schedule(m);
    } else if (r->get_attempt) {
      rc = TG_ECANCELED; /* a resumed GET may stay open: close it now */
    } else {
      target->grace_at = now_ms() + GRACE_MS; /* the POST stream should end by itself */
      schedule(m);
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
      rc = post_new(m, POST_ANSWER, body, 1);
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
  if (ev->own_id && seen_before(r->m, ev->id)) {
    tg_debug("mcp_event_duplicate", "{s:s}", "method", r->method);
    return 0;
  }
  return route_message(r, ev->data, ev->data_len);
}

/* Keeps the resumption cursor of r's SSE streams up to date. */
static void note_cursor(rpc *r)
{
  const char *id = tg_sse_last_event_id(&r->sse);
  long rt = tg_sse_retry_ms(&r->sse);
  if (*id && (!r->last_event_id || strcmp(id, r->last_event_id) != 0)) {
    free(r->last_event_id);
    r->last_event_id = strdup(id);
    r->idle_resumes = 0;
  }
  if (rt >= 0)
    r->retry_ms = rt > MAX_RETRY_MS ? MAX_RETRY_MS : rt;
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
    note_cursor(r);
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

static int rpc_send(rpc *r);
static int rpc_send_get(rpc *r);
static int rpc_start(rpc *r);
static void listener_stop(tg_mcp_client *m);

static void drop_session(tg_mcp_client *m)
{
  listener_stop(m);
  free(m->session_id);
  m->session_id = NULL;
  m->version[0] = 0;
  m->state = ST_IDLE;
  /* Event ids are unique only within a session (mcp-client.md A.8): a new session may reuse
   * them, and the replayed request's events must not be taken for duplicates. */
  memset(m->seen, 0, sizeof m->seen);
  m->seen_next = 0;
}

static void session_lost(rpc *r, long status)
{
  tg_mcp_client *m = r->m;
  int rc;
  if (r->replayed) {
    rpc_fail(r, TG_ENOTFOUND, status, "mcp session lost");
    return;
  }
  r->replayed = 1;
  rpc_reset_attempt(r);
  rpc_reset_resume(r);
  if (m->state == ST_READY && r->sent_gen == m->gen) {
    tg_warn("mcp_session_lost", "{s:I, s:s}", "status", (json_int_t)status, "method", r->method);
    drop_session(m);
  }
  rc = rpc_start(r);
  if (rc)
    rpc_fail(r, rc, status, "%s: cannot start a new session: %s", r->method, tg_strerror(rc));
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

static void send_cancelled(tg_mcp_client *m, long long id, const char *reason)
{
  json_t *params = json_pack("{s:I, s:s}", "requestId", (json_int_t)id, "reason", reason);
  char *body = NULL;
  if (params && !tg_jsonrpc_notification(&body, "notifications/cancelled", params))
    post_new(m, POST_CANCELLED, body, 0);
  json_decref(params);
}

static void rpc_timed_out(rpc *r, long status)
{
  tg_mcp_client *m = r->m;
  /* Cancel what the server is working on (A.11); rpc_complete closes the stream. */
  if (!r->is_init && r->sent && m->state == ST_READY && r->sent_gen == m->gen && !m->closing)
    send_cancelled(m, r->id, "timeout");
  rpc_fail(r, TG_ETIMEDOUT, status, "%s: timed out after %ld ms", r->method, m->timeout_ms);
}

/* After a stream ended (or broke) past an event with an id: wait `retry` ms and resume with GET
 * + Last-Event-ID (A.3, A.8). Returns 1 when a resume is scheduled. */
static int schedule_resume(rpc *r)
{
  tg_mcp_client *m = r->m;
  uint64_t at;
  if (!r->last_event_id || m->closing || r->idle_resumes >= MAX_IDLE_RESUMES)
    return 0;
  if (m->state != ST_READY || r->sent_gen != m->gen)
    return 0;
  r->idle_resumes++;
  at = now_ms() + (uint64_t)(r->retry_ms >= 0 ? r->retry_ms : DEFAULT_RETRY_MS);
  if (r->deadline_ms && at > r->deadline_ms)
    at = r->deadline_ms;
  r->wake_at = at ? at : 1;
  tg_debug("mcp_stream_resume_scheduled", "{s:s, s:I}", "method", r->method, "retry_ms",
           (json_int_t)(r->retry_ms >= 0 ? r->retry_ms : DEFAULT_RETRY_MS));
  schedule(m);
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
    rpc_finish_response(r, status);
    return;
  }
  if (r->fail_err) {
    rpc_fail(r, r->fail_err, status, "%s", r->fail_msg);
    return;
  }
  /* The stream ended, or the connection broke, without our response: resume (A.8). */
  if (r->mode == MODE_SSE && (err == 0 || err == TG_EIO) && status >= 200 && status <= 299 &&
      schedule_resume(r)) {
    rpc_reset_attempt(r);
    return;
  }
  if (r->is_listen) {
    tg_debug("mcp_listen_ended", "{s:I, s:s}", "status", (json_int_t)status, "error",
             tg_errname(err));
    rpc_fail(r, err ? err : TG_EHTTP, status, "GET stream ended");
    return;
  }
  if (err) {
    /* This POST never reached the server (not a resume GET: its POST was delivered). */
    r->undelivered = resp->not_sent && !r->get_attempt;
    if (err == TG_ETIMEDOUT)
      rpc_timed_out(r, status);
    else
      rpc_fail(r, err, status, "%s: %s", r->method,
               err == TG_EIO ? "MCP server unreachable or connection reset" : tg_strerror(err));
    return;
  }
  if (status >= 200 && status <= 299) {
    if (r->get_attempt || r->mode == MODE_SSE)
      rpc_fail(r, TG_EPROTO, status, "%s: stream ended without a response", r->method);
    else
      rpc_fail(r, TG_EPROTO, status, "%s: HTTP %ld without a JSON-RPC response", r->method, status);
    return;
  }
  if (r->sent_with_session && (status == 404 || (status == 400 && body_says_session_unknown(r)))) {
    session_lost(r, status);
    return;
  }
  http_error_detail(r, detail, sizeof detail);
  if (r->get_attempt) {
    rpc_fail(r, TG_EPROTO, status, "%s: stream ended without a response (resume: HTTP %ld%s)",
             r->method, status, detail);
  } else if (status == 401 || status == 403) {
    rpc_fail(r, TG_EAUTH, status, "%s: HTTP %ld, credentials rejected%s", r->method, status,
             detail);
  } else if (status == 429) {
    tg_mcp_error e;
    set_err(&e, TG_ERATELIMIT, status, "%s: HTTP 429, rate limited%s", r->method, detail);
    e.retry_after_ms = resp->t ? tg_http_retry_after_ms(resp->t) : -1;
    rpc_complete(r, &e, NULL);
  } else {
    rpc_fail(r, TG_EHTTP, status, "%s: HTTP %ld%s", r->method, status, detail);
  }
}

static int rpc_send(rpc *r)
{
  tg_mcp_client *m = r->m;
  uint64_t now = now_ms();
  char **h = NULL;
  int rc;
  tg_http_request req = {
      .method = "POST",
      .url = m->url,
      .body = r->body,
      .body_len = strlen(r->body),
      .on_data = rpc_on_data, /* streamed: rpc_on_data enforces m->max_response */
  };

  if (now >= r->deadline_ms)
    return TG_ETIMEDOUT;
  req.timeout_ms = (long)(r->deadline_ms - now);
  rc = build_headers(m, !r->is_init, 1, 0, NULL, &h);
  if (rc)
    return rc;
  req.headers = (const char *const *)h;
  r->sent_with_session = !r->is_init && m->session_id != NULL;
  r->sent_gen = m->gen;
  r->get_attempt = 0;
  rc = tg_http_send(m->http, &req, rpc_on_done, r, &r->t);
  if (!rc)
    r->sent = 1;
  free_headers(h);
  return rc;
}

/* GET on the endpoint: the optional stream (listen) or a resume with Last-Event-ID. */
static int rpc_send_get(rpc *r)
{
  tg_mcp_client *m = r->m;
  uint64_t now = now_ms();
  char **h = NULL;
  int rc;
  tg_http_request req = {
      .method = "GET",
      .url = m->url,
      .on_data = rpc_on_data, /* streamed: rpc_on_data enforces m->max_response */
  };

  if (r->deadline_ms) {
    if (now >= r->deadline_ms)
      return TG_ETIMEDOUT;
    req.timeout_ms = (long)(r->deadline_ms - now);
  }
  rc = build_headers(m, 1, 0, 1, r->last_event_id, &h);
  if (rc)
    return rc;
  req.headers = (const char *const *)h;
  r->sent_with_session = m->session_id != NULL;
  r->sent_gen = m->gen;
  r->get_attempt = 1;
  rc = tg_http_send(m->http, &req, rpc_on_done, r, &r->t);
  free_headers(h);
  return rc;
}

/* The timer: sends due resumes and completes answered requests whose stream lingers. */
static void on_timer(uv_timer_t *h)
{
  tg_mcp_client *m = h->data;
  uint64_t now = now_ms();
  int again = 1;
  while (again && !m->closing) {
    again = 0;
    for (rpc *r = m->rpcs; r; r = r->next) {
      if (r->got_response && r->grace_at && r->grace_at <= now) {
        rpc_finish_response(r, 200);
        again = 1;
        break;
      }
      if (r->wake_at && r->wake_at <= now) {
        int rc;
        r->wake_at = 0;
        tg_debug("mcp_stream_resume", "{s:s}", "method", r->method);
        rc = rpc_send_get(r);
        if (rc == TG_ETIMEDOUT)
          rpc_timed_out(r, 0);
        else if (rc)
          rpc_fail(r, rc, 0, "%s: cannot resume the stream: %s", r->method, tg_strerror(rc));
        again = 1;
        break;
      }
    }
  }
  if (!m->closing)
    schedule(m);
}

static void schedule(tg_mcp_client *m)
{
  uint64_t next = 0, now = now_ms();
  for (rpc *r = m->rpcs; r; r = r->next) {
    if (r->got_response && r->grace_at && (!next || r->grace_at < next))
      next = r->grace_at;
    if (r->wake_at && (!next || r->wake_at < next))
      next = r->wake_at;
  }
  if (!next)
    uv_timer_stop(&m->timer);
  else
    uv_timer_start(&m->timer, on_timer, next > now ? next - now : 0, 0);
}

/* ---- the optional GET stream ---------------------------------------------------------------- */

static void on_listen_done(rpc *r, const tg_mcp_error *err, json_t *result)
{
  (void)r, (void)err, (void)result;
}

static void listener_start(tg_mcp_client *m)
{
  rpc *r = calloc(1, sizeof *r);
  if (!r || !(r->method = strdup("GET stream"))) {
    free(r);
    return;
  }
  r->m = m;
  r->is_listen = 1;
  r->retry_ms = -1;
  r->done = on_listen_done;
  LINK(m->rpcs, r);
  if (rpc_send_get(r)) {
    UNLINK(m->rpcs, r);
    rpc_free(r);
    return;
  }
  m->listener = r;
}

static void listener_stop(tg_mcp_client *m)
{
  if (m->listener)
    rpc_fail(m->listener, TG_ECANCELED, 0, "GET stream closed");
}

/* ---- the session -------------------------------------------------------------------------- */

static void on_init_done(rpc *r, const tg_mcp_error *err, json_t *result)
{
  tg_mcp_client *m = r->m;
  tg_mcp_error e;
  const char *v;
  char *body = NULL;
  int rc;

  if (err) {
    session_failed(m, err);
    return;
  }
  v = json_string_value(json_object_get(result, "protocolVersion"));
  if (!json_is_object(result) || !v) {
    set_err(&e, TG_EPROTO, 0, "initialize: result without protocolVersion");
    session_failed(m, &e);
    return;
  }
  if (!version_supported(v)) {
    set_err(&e, TG_EPROTO, 0, "initialize: unsupported protocol version %.32s", v);
    session_failed(m, &e);
    return;
  }
  if (r->session_seen && !valid_session_id(r->session_seen)) {
    set_err(&e, TG_EPROTO, 0, "initialize: invalid Mcp-Session-Id");
    session_failed(m, &e);
    return;
  }
  snprintf(m->version, sizeof m->version, "%s", v);
  free(m->session_id);
  m->session_id = r->session_seen;
  r->session_seen = NULL;
  rc = tg_jsonrpc_notification(&body, "notifications/initialized", NULL);
  if (!rc)
    rc = post_new(m, POST_INITIALIZED, body, 0);
  if (rc) {
    set_err(&e, rc, 0, "notifications/initialized: %s", tg_strerror(rc));
    session_failed(m, &e);
  }
}

static int session_start(tg_mcp_client *m)
{
  json_t *params;
  rpc *r;
  int rc;

  /* Elicitation is declared because server requests for it are answered (with the schema's
   * defaults, or a decline); roots and sampling are not, and get -32601. */
  params = json_pack("{s:s, s:{s:{s:{}}}, s:{s:s, s:s}}", "protocolVersion", m->offer_version,
                     "capabilities", "elicitation", "form", "clientInfo", "name", m->client_name,
                     "version", m->client_version);
  if (!params)
    return TG_ENOMEM;
  r = rpc_new(m, "initialize", params, 1, on_init_done, NULL);
  json_decref(params);
  if (!r)
    return TG_ENOMEM;
  free(m->session_id);
  m->session_id = NULL;
  m->version[0] = 0;
  m->state = ST_INIT;
  rc = rpc_send(r);
  if (rc) {
    UNLINK(m->rpcs, r);
    rpc_free(r);
    m->state = ST_IDLE;
  }
  return rc;
}

static void op_finish(op *o, const tg_mcp_error *err, json_t *result);

/* Marks the current waiters as this batch, so callbacks that issue new requests don't join it.
 * The batch is then drained by re-scanning the live lists (next_rpc/next_op): a callback may
 * cancel, and so free, another member, which then simply is no longer found. */
static void take_waiters(tg_mcp_client *m)
{
  for (rpc *r = m->rpcs; r; r = r->next)
    if (r->waiting) {
      r->waiting = 0;
      r->in_batch = 1;
    }
  for (op *o = m->ops; o; o = o->next)
    if (o->waiting_session) {
      o->waiting_session = 0;
      o->in_batch = 1;
    }
}

static rpc *next_rpc(tg_mcp_client *m)
{
  for (rpc *r = m->rpcs; r; r = r->next)
    if (r->in_batch) {
      r->in_batch = 0;
      return r;
    }
  return NULL;
}

static op *next_op(tg_mcp_client *m)
{
  for (op *o = m->ops; o; o = o->next)
    if (o->in_batch) {
      o->in_batch = 0;
      return o;
    }
  return NULL;
}

static void session_ready(tg_mcp_client *m)
{
  rpc *r;
  op *o;

  take_waiters(m);
  m->state = ST_READY;
  m->gen++;
  if (m->listen && !m->listener)
    listener_start(m);
  tg_info("mcp_session_ready", "{s:s, s:b}", "protocol_version", m->version, "has_session",
          m->session_id != NULL);
  while (!m->closing && (r = next_rpc(m))) {
    int rc = rpc_send(r);
    if (rc)
      rpc_fail(r, rc, 0, "%s: %s", r->method, tg_strerror(rc));
  }
  while (!m->closing && (o = next_op(m)))
    op_finish(o, NULL, NULL);
}

static void session_failed(tg_mcp_client *m, const tg_mcp_error *err)
{
  rpc *r;
  op *o;
  tg_mcp_error e = *err;

  take_waiters(m);
  e.not_delivered = 0; /* that flag was about initialize; each waiter's is set below */
  m->state = ST_IDLE;
  free(m->session_id);
  m->session_id = NULL;
  m->version[0] = 0;
  if (err->err != TG_ECANCELED)
    tg_warn("mcp_initialize_failed", "{s:s, s:I, s:s}", "error", tg_errname(err->err), "status",
            (json_int_t)err->http_status, "message", err->message);
  while (!m->closing && (r = next_rpc(m))) {
    r->undelivered = !r->sent; /* never handed to HTTP: the session did not start */
    rpc_complete(r, &e, NULL);
  }
  while (!m->closing && (o = next_op(m)))
    op_finish(o, &e, NULL);
}

/* Sends r when the session is ready, else makes it wait (starting the session if needed). */
static int rpc_start(rpc *r)
{
  tg_mcp_client *m = r->m;
  int rc;
  switch (m->state) {
  case ST_READY:
    return rpc_send(r);
  case ST_IDLE:
    rc = session_start(m);
    if (rc)
      return rc;
    /* fall through */
  default:
    r->waiting = 1;
    return 0;
  }
}

/* ---- ops ---------------------------------------------------------------------------------- */

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

static void op_finish(op *o, const tg_mcp_error *err, json_t *result)
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
    op_finish(o, err, NULL);
    return;
  }
  tools = json_object_get(result, "tools");
  if (!json_is_array(tools)) {
    set_err(&e, TG_EPROTO, 0, "tools/list: result without a tools array");
    op_finish(o, &e, NULL);
    return;
  }
  if (json_array_extend(o->tools, tools)) {
    set_err(&e, TG_ENOMEM, 0, "tools/list: out of memory");
    op_finish(o, &e, NULL);
    return;
  }
  next = json_object_get(result, "nextCursor");
  if (!json_is_string(next) || json_string_length(next) == 0) {
    op_finish(o, NULL, o->tools);
    return;
  }
  if (o->m->closing) {
    set_err(&e, TG_ECANCELED, 0, "mcp client closed");
    op_finish(o, &e, NULL);
    return;
  }
  if (++o->pages >= MAX_LIST_PAGES) {
    set_err(&e, TG_EPROTO, 0, "tools/list: more than %d pages", MAX_LIST_PAGES);
    op_finish(o, &e, NULL);
    return;
  }
  rc = list_page(o, json_string_value(next));
  if (rc) {
    set_err(&e, rc, 0, "tools/list: %s", tg_strerror(rc));
    op_finish(o, &e, NULL);
  }
}

static int list_page(op *o, const char *cursor)
{
  json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
  rpc *r;
  int rc;
  if (!params)
    return TG_ENOMEM;
  r = rpc_new(o->m, "tools/list", params, 0, on_list_done, o);
  json_decref(params);
  if (!r)
    return TG_ENOMEM;
  rc = rpc_start(r);
  if (rc) {
    UNLINK(o->m->rpcs, r);
    rpc_free(r);
  }
  return rc;
}

static void on_call_done(rpc *r, const tg_mcp_error *err, json_t *result)
{
  tg_mcp_error e;
  if (!err && !json_is_object(result)) {
    set_err(&e, TG_EPROTO, 0, "tools/call: result is not an object");
    err = &e;
  }
  op_finish(r->op, err, result);
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
        if (post_send(p)) {
          UNLINK(m->posts, p);
          post_free(p);
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
      note_deliver(m, n);
      again = 1;
    }
    for (op *o = m->ops; o && !again; o = o->next)
      if (o->ready_now) {
        op_finish(o, NULL, NULL);
        again = 1;
        break;
      }
  }
}

/* ---- public API --------------------------------------------------------------------------- */

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
  if (opt->protocol_version && !version_supported(opt->protocol_version))
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

int tg_mcp_connect(tg_mcp_client *m, tg_mcp_done_cb cb, void *arg)
{
  op *o;
  int rc;
  if (!m || !cb)
    return TG_EINVAL;
  if (m->closing)
    return TG_ECANCELED;
  o = op_new(m, OP_CONNECT, arg);
  if (!o)
    return TG_ENOMEM;
  o->cb.done = cb;
  if (m->state == ST_READY) {
    o->ready_now = 1;
    uv_timer_start(&m->kick, on_kick, 0, 0);
    return 0;
  }
  if (m->state == ST_IDLE && (rc = session_start(m))) {
    op_free(o);
    return rc;
  }
  o->waiting_session = 1;
  return 0;
}

int tg_mcp_list_tools(tg_mcp_client *m, tg_mcp_tools_cb cb, void *arg)
{
  op *o;
  int rc;
  if (!m || !cb)
    return TG_EINVAL;
  if (m->closing)
    return TG_ECANCELED;
  o = op_new(m, OP_LIST, arg);
  if (!o)
    return TG_ENOMEM;
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
  r = o ? rpc_new(m, "tools/call", params, 0, on_call_done, o) : NULL;
  json_decref(params);
  if (!r) {
    if (o)
      op_free(o);
    return TG_ENOMEM;
  }
  o->cb.result = cb;
  o->on_progress = on_progress;
  rc = rpc_start(r);
  if (rc) {
    UNLINK(m->rpcs, r);
    rpc_free(r);
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
      send_cancelled(m, r->id, "canceled");
    r->undelivered = !r->sent; /* canceled while waiting for the session */
    rpc_fail(r, TG_ECANCELED, 0, "%s: canceled", r->method);
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

static void close_finish(tg_mcp_client *m)
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
  m->on_closed = on_closed;
  m->closed_arg = arg;
  while (m->rpcs)
    rpc_fail(m->rpcs, TG_ECANCELED, 0, "mcp client closed");
  while (m->ops) {
    tg_mcp_error e;
    set_err(&e, TG_ECANCELED, 0, "mcp client closed");
    op_finish(m->ops, &e, NULL);
  }
  while (m->notes) {
    note *n = m->notes;
    m->notes = n->next;
    note_free(n);
  }
  m->notes_tail = &m->notes;
  m->n_notes = 0;
  while (m->posts) {
    post *p = m->posts;
    UNLINK(m->posts, p);
    if (p->t)
      tg_http_cancel(p->t);
    post_free(p);
  }
  if (!m->session_id) {
    close_finish(m);
    return;
  }
  /* End the session (A.6); the client is freed when the DELETE completes. */
  del = calloc(1, sizeof *del);
  if (!del) {
    close_finish(m);
    return;
  }
  del->m = m;
  del->kind = POST_DELETE;
  if (post_send(del)) {
    post_free(del);
    close_finish(m);
  }
}
