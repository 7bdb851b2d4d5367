/*
 * tg_mcp_session: the MCP session and its streams (tg_mcp_int.h).
 *
 * Session state: IDLE → INIT (initialize in flight, then notifications/initialized) → READY,
 * with WAIT before INIT when the start budget is spent (below). rpcs issued before READY wait
 * (r->waiting) and are sent when the session is ready, or failed with the session's error.
 * A stream that ends or breaks after an event with an id is resumed with GET + Last-Event-ID
 * after the server's `retry` (mcp-client.md A.3, A.8); recently seen event ids are remembered
 * per session so a replayed event is dropped. With opt.listen the optional GET stream is opened
 * once a session is ready.
 *
 * Lost sessions. `gen` counts sessions. A 404 (or server-everything's 400 "No valid session
 * ID") to a request carrying the session id means the session is gone and the request was not
 * executed (A.6), so the request is replayed on a newer session:
 * - the first request to see the current session lost drops it and starts one initialize;
 *   requests that lost the same session wait for it, and one that lost an older session than
 *   the current one is sent on the current one at once;
 * - a request is never sent twice on one session: each replay goes to a session newer than the
 *   one it was lost with;
 * - budgets: at most MAX_REPLAYS replays per request; a replay after the first only when the
 *   lost session carried other requests too (churn shared by concurrent callers), so a server
 *   that drops each session at its first request fails a lone request after its second loss;
 *   and at most START_BURST session starts per START_WINDOW_MS for the whole client (later
 *   ones wait in WAIT), so churn cannot make the client loop;
 * - a tools/call whose resume GET gets the 404 is not replayed: its POST was accepted, so it
 *   may have run. Every failure to replay is TG_ENOTFOUND "mcp session lost".
 *
 * Invariants: a session id is only taken from a successful initialize and is checked first
 * (visible ASCII, at most MAX_SESSION_ID bytes); every wait (resume, the grace period of an
 * answered stream, a deferred session start) is a time on its rpc or on the client, and
 * m->timer is always armed for the earliest of them.
 */
#include "tg_mcp_int.h"

#include "tg_err.h"
#include "tg_jsonrpc.h"
#include "tg_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SESSION_ID 256
#define DEFAULT_RETRY_MS 1000L /* resume delay when the stream gave no `retry` */
#define MAX_RETRY_MS 60000L    /* cap on a server's `retry` */
#define MAX_IDLE_RESUMES 3     /* resumes in a row that bring no new event */
#define MAX_REPLAYS 5          /* replays of one request after lost sessions */

/* Versions we accept from the server (mcp-client.md A.2, A.12). */
static const char *const SUPPORTED_VERSIONS[] = {"2025-11-25", "2025-06-18", "2025-03-26", NULL};

int tg_mcp__version_supported(const char *v)
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

static int session_start(tg_mcp_client *m);

/* 1 when the event id was seen recently (a replay); otherwise remembers it. */
int tg_mcp__seen_before(tg_mcp_client *m, const char *id)
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

/* Keeps the resumption cursor of r's SSE streams up to date. */
void tg_mcp__note_cursor(rpc *r)
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

/* Why r, lost with session r->sent_gen, must not be replayed; NULL when it may be. */
static const char *replay_refused(const rpc *r)
{
  if (r->get_attempt && r->op && r->op->kind == OP_CALL)
    return "the call's stream was lost after the server accepted it";
  if (r->sent_gen <= r->lost_gen)
    return "no newer session to replay on";
  if (r->replays >= MAX_REPLAYS)
    return "replay budget spent";
  /* The lost session carried only this request: the server drops sessions at once. An older
   * session than the current one was lost by another request too. */
  if (r->replays > 0 && r->sent_gen == r->m->gen && r->m->sent_in_session <= 1)
    return "the lost session carried no other request";
  return NULL;
}

void tg_mcp__session_lost(rpc *r, long status)
{
  tg_mcp_client *m = r->m;
  const char *why;
  int rc;
  if (m->state == ST_READY && r->sent_gen == m->gen) {
    tg_warn("mcp_session_lost", "{s:I, s:s}", "status", (json_int_t)status, "method", r->method);
    drop_session(m);
  }
  if ((why = replay_refused(r))) {
    tg_warn("mcp_replay_refused", "{s:s, s:i, s:s}", "method", r->method, "replays", r->replays,
            "reason", why);
    tg_mcp__rpc_fail(r, TG_ENOTFOUND, status, "mcp session lost");
    return;
  }
  r->replays++;
  r->lost_gen = r->sent_gen;
  tg_mcp__rpc_reset_attempt(r);
  tg_mcp__rpc_reset_resume(r);
  rc = tg_mcp__rpc_start(r);
  if (rc)
    tg_mcp__rpc_fail(r, rc, status, "%s: cannot start a new session: %s", r->method,
                     tg_strerror(rc));
}

/* After a stream ended (or broke) past an event with an id: wait `retry` ms and resume with GET
 * + Last-Event-ID (A.3, A.8). Returns 1 when a resume is scheduled. */
int tg_mcp__schedule_resume(rpc *r)
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
  tg_mcp__schedule(m);
  return 1;
}

/* The timer: sends due resumes and completes answered requests whose stream lingers. */
static void on_timer(uv_timer_t *h)
{
  tg_mcp_client *m = h->data;
  uint64_t now = now_ms();
  int again = 1;
  if (m->state == ST_WAIT && m->start_at <= now && !m->closing) {
    int rc;
    m->state = ST_IDLE;
    m->start_at = 0;
    rc = session_start(m);
    if (rc) {
      tg_mcp_error e;
      tg_mcp__set_err(&e, rc, 0, "initialize: %s", tg_strerror(rc));
      tg_mcp__session_failed(m, &e);
    }
  }
  while (again && !m->closing) {
    again = 0;
    for (rpc *r = m->rpcs; r; r = r->next) {
      if (r->got_response && r->grace_at && r->grace_at <= now) {
        tg_mcp__rpc_finish_response(r, 200);
        again = 1;
        break;
      }
      if (r->wake_at && r->wake_at <= now) {
        int rc;
        r->wake_at = 0;
        tg_debug("mcp_stream_resume", "{s:s}", "method", r->method);
        rc = tg_mcp__rpc_send(r, 1);
        if (rc == TG_ETIMEDOUT)
          tg_mcp__rpc_timed_out(r, 0);
        else if (rc)
          tg_mcp__rpc_fail(r, rc, 0, "%s: cannot resume the stream: %s", r->method,
                           tg_strerror(rc));
        again = 1;
        break;
      }
    }
  }
  if (!m->closing)
    tg_mcp__schedule(m);
}

void tg_mcp__schedule(tg_mcp_client *m)
{
  uint64_t next = m->state == ST_WAIT ? m->start_at : 0, now = now_ms();
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
  if (tg_mcp__rpc_send(r, 1)) {
    UNLINK(m->rpcs, r);
    tg_mcp__rpc_free(r);
    return;
  }
  m->listener = r;
}

static void listener_stop(tg_mcp_client *m)
{
  if (m->listener)
    tg_mcp__rpc_fail(m->listener, TG_ECANCELED, 0, "GET stream closed");
}

static void on_init_done(rpc *r, const tg_mcp_error *err, json_t *result)
{
  tg_mcp_client *m = r->m;
  tg_mcp_error e;
  const char *v;
  char *body = NULL;
  int rc;

  if (err) {
    tg_mcp__session_failed(m, err);
    return;
  }
  v = json_string_value(json_object_get(result, "protocolVersion"));
  if (!json_is_object(result) || !v) {
    tg_mcp__set_err(&e, TG_EPROTO, 0, "initialize: result without protocolVersion");
    tg_mcp__session_failed(m, &e);
    return;
  }
  if (!tg_mcp__version_supported(v)) {
    tg_mcp__set_err(&e, TG_EPROTO, 0, "initialize: unsupported protocol version %.32s", v);
    tg_mcp__session_failed(m, &e);
    return;
  }
  if (r->session_seen && !valid_session_id(r->session_seen)) {
    tg_mcp__set_err(&e, TG_EPROTO, 0, "initialize: invalid Mcp-Session-Id");
    tg_mcp__session_failed(m, &e);
    return;
  }
  snprintf(m->version, sizeof m->version, "%s", v);
  free(m->session_id);
  m->session_id = r->session_seen;
  r->session_seen = NULL;
  rc = tg_jsonrpc_notification(&body, "notifications/initialized", NULL);
  if (!rc)
    rc = tg_mcp__post_new(m, POST_INITIALIZED, body, 0);
  if (rc) {
    tg_mcp__set_err(&e, rc, 0, "notifications/initialized: %s", tg_strerror(rc));
    tg_mcp__session_failed(m, &e);
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
  r = tg_mcp__rpc_new(m, "initialize", params, 1, on_init_done, NULL);
  json_decref(params);
  if (!r)
    return TG_ENOMEM;
  free(m->session_id);
  m->session_id = NULL;
  m->version[0] = 0;
  m->state = ST_INIT;
  m->starts[m->starts_next] = now_ms();
  m->starts_next = (m->starts_next + 1) % START_BURST;
  rc = tg_mcp__rpc_send(r, 0);
  if (rc) {
    UNLINK(m->rpcs, r);
    tg_mcp__rpc_free(r);
    m->state = ST_IDLE;
  }
  return rc;
}

/* Starts a session from IDLE: at once, or (when START_BURST sessions started within the last
 * START_WINDOW_MS) in WAIT until the oldest of them leaves the window. Returns 0 or the error of
 * sending initialize. */
int tg_mcp__session_begin(tg_mcp_client *m)
{
  uint64_t oldest = m->starts[m->starts_next], now = now_ms();
  if (m->state != ST_IDLE)
    return 0;
  if (oldest && now < oldest + START_WINDOW_MS) {
    tg_debug("mcp_session_start_deferred", "{s:I}", "wait_ms",
             (json_int_t)(oldest + START_WINDOW_MS - now));
    m->state = ST_WAIT;
    m->start_at = oldest + START_WINDOW_MS;
    tg_mcp__schedule(m);
    return 0;
  }
  return session_start(m);
}

/* Marks the current waiters as this batch, so callbacks that issue new requests don't join it.
 * The batch is then drained by re-scanning the live lists (next_waiter): a callback may
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

/* Takes the next member of the batch: its rpcs first (*rp), oldest request first so replays
 * are not starved by newer calls under churn, then its ops (*opp). Returns 0 once the batch is
 * drained. */
static int next_waiter(tg_mcp_client *m, rpc **rp, op **opp)
{
  *rp = NULL;
  *opp = NULL;
  for (rpc *r = m->rpcs; r; r = r->next)
    if (r->in_batch && (!*rp || r->id < (*rp)->id))
      *rp = r;
  for (op *o = m->ops; o && !*rp && !*opp; o = o->next)
    if (o->in_batch)
      *opp = o;
  if (*rp)
    (*rp)->in_batch = 0;
  else if (*opp)
    (*opp)->in_batch = 0;
  return *rp || *opp;
}

void tg_mcp__session_ready(tg_mcp_client *m)
{
  rpc *r;
  op *o;

  take_waiters(m);
  m->state = ST_READY;
  m->gen++;
  m->sent_in_session = 0;
  if (m->listen && !m->listener)
    listener_start(m);
  tg_info("mcp_session_ready", "{s:s, s:b}", "protocol_version", m->version, "has_session",
          m->session_id != NULL);
  while (!m->closing && next_waiter(m, &r, &o)) {
    int rc = r ? tg_mcp__rpc_send(r, 0) : 0;
    if (rc)
      tg_mcp__rpc_fail(r, rc, 0, "%s: %s", r->method, tg_strerror(rc));
    else if (o)
      tg_mcp__op_finish(o, NULL, NULL);
  }
}

void tg_mcp__session_failed(tg_mcp_client *m, const tg_mcp_error *err)
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
  while (!m->closing && next_waiter(m, &r, &o)) {
    if (o) {
      tg_mcp__op_finish(o, &e, NULL);
      continue;
    }
    r->undelivered = !r->sent; /* never handed to HTTP: the session did not start */
    tg_mcp__rpc_complete(r, &e, NULL);
  }
}

/* Sends r when the session is ready, else makes it wait (starting the session if needed). */
int tg_mcp__rpc_start(rpc *r)
{
  tg_mcp_client *m = r->m;
  int rc;
  switch (m->state) {
  case ST_READY:
    return tg_mcp__rpc_send(r, 0);
  case ST_IDLE:
    rc = tg_mcp__session_begin(m);
    if (rc)
      return rc;
    /* fall through */
  default:
    r->waiting = 1;
    return 0;
  }
}
