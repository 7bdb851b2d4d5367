/*
 * wk_node_mcp: the MCP node (DESIGN.md sections 5 and 6; README "Workflow execution").
 *
 * Managed nodes {provider, tool, arguments} use the user's registry client (wk_registry.c);
 * connector nodes {connector_id, tool, arguments} an ephemeral client with the connector's url
 * and sealed headers, and for a connector with OAuth a link to its tokens (wk_connector_auth.c:
 * refreshed before expiry and once on a 401; a failed refresh fails the node with error_class
 * auth_refresh_required);
 * ad-hoc nodes {url, headers, tool, arguments} an ephemeral client on w->http_egress (the egress
 * policy for user-supplied URLs; w->http when there is none), closed after each call. An
 * ad-hoc node's headers may say {{secrets.<name>}}: the credentials they name are opened (a dbq
 * job) before the client is built, substituted into its header lines only, and wiped when the
 * node ends; a missing one fails the node with credential_missing. The engine rendered the
 * config; the output is the CallToolResult, and the node's run variables
 * (wk_node_ops.vars) are its structuredContent when that is an object, else its single text
 * content parsed as a JSON object when it is one, else none.
 *
 * Every call that goes out is bracketed by two fenced tool_executions writes (tg_store_runs):
 * a 'pending' row BEFORE the call (arguments redacted by key with tg_redact and by value for the
 * run's secret inputs, wk_secrets.c) and its completion after (success / failed / unknown,
 * response and error redacted by value, error_class, duration_ms). A retry is a new call with
 * its own row, so the table shows every request that left the worker.
 *
 * Failures are classified (error_class on the row and on the node): provider_auth (401/403),
 * mcp_session_lost (tg_mcp re-initialised once and lost the session again), tool_error
 * (isError:true), rate_limited (429), timeout, internal. Transient ones are retried up to
 * TOOLGATE_TOOL_RETRIES times after TOOLGATE_RETRY_BASE_MS * 2^n with jitter (half fixed, half
 * random), or exactly the server's Retry-After for a 429: a request that certainly never reached
 * the server (tg_mcp_error.not_delivered), HTTP 5xx and 429. A call that was sent and got no
 * answer (timeout, reset after the request went out) may have had effects: its row is 'unknown'
 * and it is retried only when the tool's annotations from tools/list say readOnlyHint or
 * idempotentHint (listed lazily, once per session). Everything else fails the node at once.
 *
 * After a crash (prior_status 'pending' or 'unknown': this node was in flight when an earlier
 * attempt ended) the call is made again only when tools/list says the tool is readOnlyHint or
 * idempotentHint; otherwise the node reports WK_NODE_UNKNOWN and the user resolves it.
 *
 * Interruption (ops->cancel): the run deadline cancels the call in flight with tg_mcp_cancel
 * (notifications/cancelled, stream closed); its row is 'unknown' (or 'failed' if it had not
 * left) with error_class timeout and the node fails 'timeout' without a retry. The shutdown
 * grace cancels the same way but writes nothing (the run is being released). cancel_requested
 * does not interrupt a call: the engine stops between nodes. When the run stops (lease lost,
 * shutdown) the node reports WK_NODE_LOST without writing more.
 */
#include "wk_node.h"

#include "tg_api_request.h"
#include "tg_clock.h"
#include "tg_connector.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_store_connectors.h"
#include "tg_store_credentials.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERROR_TEXT 2000
#define MAX_BACKOFF_MS 30000

typedef struct mcp_node {
  wk_node_exec *x; /* NULL once done was called */
  wk_run *r;
  const char *id, *tool, *provider; /* borrowed from the graph and x->config */
  const char *tool_call_id;         /* x->tool_call_id (an Agent's call), or NULL */
  json_t *config;                   /* x->config (a reference: outlives x until freed) */
  json_t *args;
  wk_client *client;    /* managed client in use, or NULL */
  tg_mcp_client *adhoc; /* ad-hoc client in use, or NULL */
  json_t *adhoc_tools;  /* ad-hoc: tool name -> annotations, once listed */
  tg_mcp_call *call;    /* the tools/call in flight, or NULL */
  int call_stop;        /* why we canceled it: WK_STOP_* */
  int stop;             /* ops->cancel asked: WK_STOP_* */
  int waiting;          /* the backoff timer runs */
  uint64_t call_start_ms;
  int64_t tool_exec_id; /* the call's tool_executions row */
  int tries;
  json_t *creds;       /* ad-hoc: the credentials its headers' {{secrets.<name>}} name (plaintexts,
                          wiped when the node ends), or NULL */
  char **conn_lines;   /* connector: its header lines (plaintexts, wiped when the node ends) */
  char *conn_url;      /* connector: its url */
  char conn_label[96]; /* connector: "connector:<id>", the journal's provider */
  wk_conn_link *conn_link; /* connector with OAuth: its tokens (wk_connector_auth.c), or NULL */
  uv_timer_t wait;
} mcp_node;

typedef struct exec_job {
  mcp_node *m;
  json_t *redacted;
  int inserted;
  int64_t exec_id;
  const char *status;
  json_t *response;
  char *error;
  const char *error_class;
  int64_t duration_ms;
  int changes;
  int cancel;
  int err, maybe_ran, not_delivered, stopped;
  long http_status, retry_after_ms;
} exec_job;

static void begin_call(mcp_node *m);

static const char *cfg_str(const json_t *config, const char *key)
{
  return json_string_value(json_object_get(config, key));
}

static void job_free(exec_job *j)
{
  if (!j)
    return;
  json_decref(j->redacted);
  json_decref(j->response);
  free(j->error);
  free(j);
}

/* Gives the client back: a managed one to the registry, an ad-hoc one is closed. */
static void give_back(mcp_node *m)
{
  if (m->client) {
    wk_registry_release(m->r->w->reg, m->client);
    m->client = NULL;
  }
  if (m->adhoc) {
    wk_registry_close_later(m->r->w->reg, m->adhoc);
    m->adhoc = NULL;
  }
}

static void on_closed(uv_handle_t *h)
{
  mcp_node *m = h->data;
  if (m->creds)
    tg_api_wipe_json(m->creds);
  json_decref(m->creds);
  json_decref(m->config);
  json_decref(m->args);
  json_decref(m->adhoc_tools);
  tg_connector_lines_free(m->conn_lines);
  free(m->conn_url);
  wk_conn_auth_unlink(m->conn_link);
  free(m);
}

/* Reports res and frees m (after its timer closed). */
static void finish(mcp_node *m, wk_node_result *res)
{
  wk_node_exec *x = m->x;
  give_back(m);
  uv_timer_stop(&m->wait);
  m->waiting = 0;
  m->x = NULL;
  x->priv = NULL;
  uv_close((uv_handle_t *)&m->wait, on_closed);
  x->done(x, res);
}

static void finish_status(mcp_node *m, wk_node_status st, const char *error_class, const char *fmt,
                          ...) __attribute__((format(printf, 4, 5)));
static void finish_status(mcp_node *m, wk_node_status st, const char *error_class, const char *fmt,
                          ...)
{
  wk_node_result res = {.status = st, .error_class = error_class};
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res.error, sizeof res.error, fmt, ap);
  va_end(ap);
  finish(m, &res);
}

static void finish_lost(mcp_node *m)
{
  wk_node_result res = {.status = WK_NODE_LOST};
  finish(m, &res);
}

/* The concatenated text items of a CallToolResult's content, capped. New string. */
static char *result_text(const json_t *result)
{
  size_t i, len = 0;
  const json_t *c;
  char *out = calloc(1, MAX_ERROR_TEXT + 1);
  if (!out)
    return NULL;
  json_array_foreach(json_object_get(result, "content"), i, c)
  {
    const char *t = json_string_value(json_object_get(c, "text"));
    size_t n;
    if (!t)
      continue;
    if (len && len < MAX_ERROR_TEXT)
      out[len++] = '\n';
    n = strlen(t);
    if (n > MAX_ERROR_TEXT - len)
      n = MAX_ERROR_TEXT - len;
    memcpy(out + len, t, n);
    len += n;
  }
  if (!len)
    snprintf(out, MAX_ERROR_TEXT + 1, "tool returned isError without text");
  return out;
}

/* ---- retry decision ---- */

static const char *classify(int err)
{
  switch (err) {
  case TG_EAUTH:
    return "provider_auth";
  case TG_ENOTFOUND:
    return "mcp_session_lost";
  case TG_ERATELIMIT:
    return "rate_limited";
  case TG_ETIMEDOUT:
    return "timeout";
  case TG_EEGRESS:
    return "egress_denied";
  default:
    return "internal";
  }
}

/* Retried without asking the annotations: certainly never reached the server, or the server
 * answered 5xx / 429. A reset or timeout after the request went out is not here (maybe_ran). */
static int transient(const exec_job *j)
{
  return ((j->err == TG_EIO || j->err == TG_ETIMEDOUT) && j->not_delivered) ||
         j->err == TG_ERATELIMIT ||
         (j->err == TG_EHTTP && j->http_status >= 500 && j->http_status <= 599);
}

/* 1 when the tool's annotations say a repeat is harmless. */
static int safe_to_repeat(const json_t *tools, const char *tool)
{
  const json_t *a = json_object_get(tools, tool ? tool : "");
  return json_is_true(json_object_get(a, "readOnlyHint")) ||
         json_is_true(json_object_get(a, "idempotentHint"));
}

static json_t *known_tools(mcp_node *m)
{
  return m->client ? wk_client_tools(m->client) : m->adhoc_tools;
}

static tg_mcp_client *client_mcp(mcp_node *m)
{
  return m->adhoc ? m->adhoc : m->client ? wk_client_mcp(m->client) : NULL;
}

static void on_backoff(uv_timer_t *t)
{
  mcp_node *m = t->data;
  m->waiting = 0;
  if (wk_run_stopping(m->r))
    finish_lost(m);
  else
    begin_call(m);
}

/* Retries the call after a backoff, or fails the node with j's class. */
static void retry_or_fail(mcp_node *m, exec_job *j, int retryable)
{
  wk_worker *w = m->r->w;
  uint64_t delay;
  give_back(m); /* the call is over */
  if (!retryable || m->tries > w->cfg.tool_retries) {
    if (retryable)
      finish_status(m, WK_NODE_FAILED, j->error_class, "%s (after %d attempts)",
                    j->error ? j->error : "error", m->tries);
    else
      finish_status(m, WK_NODE_FAILED, j->error_class, "%s", j->error ? j->error : "error");
    return;
  }
  if (j->err == TG_ERATELIMIT && j->retry_after_ms >= 0) {
    delay = (uint64_t)j->retry_after_ms; /* the server said when: no jitter */
  } else {
    uint64_t base = (uint64_t)w->cfg.retry_base_ms << (m->tries - 1 < 16 ? m->tries - 1 : 16);
    if (base > MAX_BACKOFF_MS)
      base = MAX_BACKOFF_MS;
    delay = base / 2 + (base / 2 ? randombytes_uniform((uint32_t)(base / 2 + 1)) : 0);
  }
  uv_update_time(w->loop);
  if (m->r->deadline_ms && uv_now(w->loop) + delay >= m->r->deadline_ms) {
    finish_status(m, WK_NODE_FAILED, j->error_class, "%s (no retry: the run deadline comes first)",
                  j->error ? j->error : "error");
    return;
  }
  tg_info("tool_call_retry", "{s:s, s:I, s:s, s:s, s:i, s:I}", "run_id", m->r->id, "attempt",
          (json_int_t)m->r->attempt, "node", m->id, "error_class", j->error_class, "try",
          m->tries + 1, "delay_ms", (json_int_t)delay);
  m->waiting = 1;
  uv_timer_start(&m->wait, on_backoff, delay, 0);
}

typedef struct list_ctx {
  mcp_node *m;
  exec_job *j; /* NULL: deciding a re-execution after a crash */
} list_ctx;

/* prior_status pending/unknown: call again only when the tool says a repeat is harmless. */
static void decide_repeat(mcp_node *m, const char *why)
{
  if (safe_to_repeat(known_tools(m), m->tool)) {
    tg_info("node_reexecuted", "{s:s, s:I, s:s, s:s}", "run_id", m->r->id, "attempt",
            (json_int_t)m->r->attempt, "node", m->id, "tool", m->tool ? m->tool : "");
    begin_call(m);
    return;
  }
  give_back(m);
  finish_status(m, WK_NODE_UNKNOWN, "outcome_unknown",
                "node %s: the call of tool %s was in flight when an earlier attempt ended and "
                "may have run; %s",
                m->id, m->tool ? m->tool : "?",
                why ? why : "the tool is not annotated readOnlyHint or idempotentHint");
}

static void on_tools_listed(void *arg, const tg_mcp_error *err, json_t *tools)
{
  list_ctx *c = arg;
  mcp_node *m = c->m;
  exec_job *j = c->j;
  free(c);
  if (wk_run_stopping(m->r)) {
    job_free(j);
    finish_lost(m);
    return;
  }
  if (err) {
    tg_warn("tools_list_failed", "{s:s, s:s}", "run_id", m->r->id, "error", err->message);
  } else if (m->client) {
    wk_client_set_tools(m->client, tools);
  } else {
    json_decref(m->adhoc_tools);
    m->adhoc_tools = wk_tools_annotations(tools);
  }
  if (!j) {
    decide_repeat(m, err ? "tools/list failed, so nothing says a repeat is harmless" : NULL);
    return;
  }
  /* Unknown annotations (listing failed): not known to be safe, so no retry. */
  retry_or_fail(m, j, safe_to_repeat(known_tools(m), m->tool));
  job_free(j);
}

/* Lists the tools when their annotations are not known yet; 0 when the listing started (its
 * callback decides), else -1 (decide now with what is known). */
static int list_tools(mcp_node *m, exec_job *j)
{
  tg_mcp_client *mc = client_mcp(m);
  list_ctx *c;
  if (known_tools(m) || !mc || !(c = calloc(1, sizeof *c)))
    return -1;
  c->m = m;
  c->j = j;
  if (tg_mcp_list_tools(mc, on_tools_listed, c) != 0) {
    free(c);
    return -1;
  }
  return 0;
}

/* A failed call's row is written: decide. Takes j. */
static void after_failure(mcp_node *m, exec_job *j)
{
  if (j->stopped || !j->maybe_ran) { /* stopped at the run deadline: no retry */
    retry_or_fail(m, j, !j->stopped && transient(j));
    job_free(j);
    return;
  }
  if (list_tools(m, j) == 0)
    return;
  retry_or_fail(m, j, safe_to_repeat(known_tools(m), m->tool));
  job_free(j);
}

/* ---- completion of the tool_executions row ---- */

static int complete_work(tg_db *db, void *arg)
{
  exec_job *j = arg;
  wk_run *r = j->m->r;
  tg_run_lease l = wk_run_lease(r);
  int rc;
  json_t *redacted = NULL;
  /* The node's output keeps the real response; the row gets it redacted. This thread only
   * reads j->response (its reference count belongs to the loop: jansson's incref/decref read
   * the count plainly before their atomic update), so no wk_secrets_redact (which takes a
   * reference when there is nothing to redact) unless there are secrets to take out. */
  if (r->secrets && r->secrets[0] && j->response && !(redacted = wk_secrets_redact(r, j->response)))
    return TG_ENOMEM;
  rc = tg_store_runs_tool_finish(db, &l, j->m->tool_exec_id,
                                 &(tg_tool_result){.status = j->status,
                                                   .response = redacted ? redacted : j->response,
                                                   .error = j->error,
                                                   .error_class = j->error_class,
                                                   .duration_ms = j->duration_ms},
                                 tg_now_ms(), &j->changes);
  json_decref(redacted);
  if (rc || !j->changes)
    return rc;
  j->cancel = tg_store_runs_cancel_requested(db, r->id);
  return 0;
}

static void complete_done(void *arg, int status)
{
  exec_job *j = arg;
  mcp_node *m = j->m;
  wk_run *r = m->r;
  wk_node_result res = {.status = WK_NODE_SUCCESS};

  if (j->cancel)
    r->cancel = 1;
  if (status == 0 && j->changes == 0)
    r->lost = 1;
  if (wk_run_stopping(r)) {
    job_free(j);
    finish_lost(m);
    return;
  }
  if (status != 0) {
    finish_status(m, WK_NODE_FAILED, "internal", "cannot record the tool execution: %s",
                  tg_strerror(status));
    job_free(j);
    return;
  }
  if (strcmp(j->status, "success") != 0) {
    after_failure(m, j);
    return;
  }
  res.output = json_incref(j->response);
  job_free(j);
  finish(m, &res);
}

static void complete(mcp_node *m, exec_job *j)
{
  if (tg_dbq_submit(m->r->w->dbq, complete_work, complete_done, j) != 0) {
    job_free(j);
    finish_status(m, WK_NODE_FAILED, "internal", "cannot queue the tool execution's completion");
  }
}

/* ---- the call ---- */

static void on_call_done(void *arg, const tg_mcp_error *err, json_t *result)
{
  mcp_node *m = arg;
  wk_run *r = m->r;
  exec_job *j;
  int stop = m->call_stop;

  m->call = NULL;
  m->call_stop = WK_STOP_NONE;
  if (wk_run_stopping(r)) {
    finish_lost(m);
    return;
  }
  uv_update_time(r->w->loop);
  if (!(j = calloc(1, sizeof *j))) {
    finish_status(m, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  j->m = m;
  j->retry_after_ms = -1;
  j->duration_ms = (int64_t)(uv_now(r->w->loop) - m->call_start_ms);
  if (err) {
    j->err = err->err;
    j->http_status = err->http_status;
    j->retry_after_ms = err->retry_after_ms;
    j->not_delivered = err->not_delivered;
    j->error_class = classify(err->err);
    if (err->err == TG_EAUTH && wk_conn_auth_failed(m->conn_link))
      j->error_class = "auth_refresh_required"; /* the connector's refresh failed */
    /* Sent and then no answer (timeout, reset, our cancel): it may have had effects. */
    j->maybe_ran = (err->err == TG_ETIMEDOUT || err->err == TG_EIO || err->err == TG_ECANCELED) &&
                   !err->not_delivered;
    j->status = j->maybe_ran ? "unknown" : "failed";
    if (stop == WK_STOP_DEADLINE) {
      char msg[160];
      snprintf(msg, sizeof msg, "run deadline of %lld ms passed during the call%s",
               (long long)r->w->cfg.run_deadline_ms,
               err->not_delivered ? " (before it was sent)" : "; the call was canceled");
      j->stopped = 1;
      j->error_class = "timeout";
      j->error = strdup(msg);
    } else {
      j->error = strdup(err->message[0] ? err->message : tg_strerror(err->err));
    }
    j->response = json_pack("{s:{s:s, s:s, s:I, s:i}}", "error", "code", tg_errname(err->err),
                            "message", err->message, "http_status", (json_int_t)err->http_status,
                            "rpc_code", err->rpc_code);
    if (j->response && err->retry_after_ms >= 0)
      json_object_set_new(json_object_get(j->response, "error"), "retry_after_ms",
                          json_integer(err->retry_after_ms));
  } else if (json_is_true(json_object_get(result, "isError"))) {
    j->status = "failed";
    j->error_class = "tool_error";
    j->error = result_text(result);
    j->response = json_incref(result);
  } else {
    j->status = "success";
    j->response = json_incref(result);
  }
  if (r->secrets && j->error) { /* stored and logged: by value */
    char *e = wk_secrets_redact_text(r, j->error);
    free(j->error);
    j->error = e;
  }
  tg_log(strcmp(j->status, "success") == 0 ? TG_LOG_INFO : TG_LOG_WARN, "tool_call",
         "{s:s, s:I, s:s, s:s?, s:s, s:s, s:i, s:I, s:s?, s:s?}", "run_id", r->id, "attempt",
         (json_int_t)r->attempt, "node", m->id, "provider", m->provider, "tool",
         m->tool ? m->tool : "", "status", j->status, "try", m->tries, "duration_ms",
         (json_int_t)j->duration_ms, "error_class", j->error_class, "error", j->error);
  complete(m, j);
}

static int insert_work(tg_db *db, void *arg)
{
  exec_job *j = arg;
  mcp_node *m = j->m; /* id, tool, provider are not touched by the loop while this job runs */
  tg_run_lease l = wk_run_lease(m->r);
  return tg_store_runs_tool_start(db, &l, m->id, m->provider ? m->provider : m->conn_label, m->tool,
                                  m->tool_call_id, j->redacted, tg_now_ms(), &j->exec_id,
                                  &j->inserted);
}

static void insert_done(void *arg, int status)
{
  exec_job *j = arg;
  mcp_node *m = j->m;
  wk_run *r = m->r;
  tg_mcp_client *mc;
  int rc;

  if (status == 0 && !j->inserted)
    r->lost = 1;
  if (wk_run_stopping(r) || m->stop == WK_STOP_SHUTDOWN) {
    job_free(j);
    finish_lost(m);
    return;
  }
  if (status != 0) {
    job_free(j);
    finish_status(m, WK_NODE_FAILED, "internal", "cannot record the tool execution: %s",
                  tg_strerror(status));
    return;
  }
  m->tool_exec_id = j->exec_id;
  mc = client_mcp(m);
  uv_update_time(r->w->loop);
  m->call_start_ms = uv_now(r->w->loop);
  m->tries++;
  if (m->stop == WK_STOP_DEADLINE || (r->deadline_ms && m->call_start_ms >= r->deadline_ms)) {
    rc = TG_ETIMEDOUT; /* recording the row took us past the deadline: do not send it */
  } else {
    rc =
        mc ? tg_mcp_call_tool_ex(mc, m->tool, m->args, NULL, on_call_done, m, &m->call) : TG_ESTATE;
  }
  if (rc == 0) {
    job_free(j);
    return;
  }
  /* The call never started: complete the row as failed (not retried). */
  json_decref(j->redacted);
  j->redacted = NULL;
  j->status = "failed";
  j->error_class = rc == TG_ETIMEDOUT ? "timeout" : "internal";
  j->error =
      strdup(rc == TG_ETIMEDOUT ? "run deadline passed before the call was sent" : tg_strerror(rc));
  j->err = rc;
  j->stopped = rc == TG_ETIMEDOUT;
  j->retry_after_ms = -1;
  complete(m, j);
}

/* Builds the ephemeral client of an ad-hoc node on the egress client. */
static int adhoc_client(mcp_node *m, char *err, size_t errlen)
{
  wk_worker *w = m->r->w;
  const json_t *headers = json_object_get(m->config, "headers");
  size_t n = json_object_size(headers), i = 0;
  char **lines = calloc(n + 1, sizeof *lines);
  tg_mcp_options opt = {0};
  const char *k;
  json_t *v;
  int rc = TG_ENOMEM;

  if (!lines)
    goto out;
  if (m->conn_url) { /* a connector: its url and headers */
    opt.url = m->conn_url;
    opt.headers = (const char *const *)m->conn_lines;
    opt.request_timeout_ms = (long)w->cfg.mcp_timeout_ms;
    opt.auth = m->conn_link ? wk_conn_auth_provider(m->conn_link) : NULL;
    if ((rc = tg_mcp_client_new(&m->adhoc, w->http_egress ? w->http_egress : w->http, &opt)))
      snprintf(err, errlen, "cannot create the connector's MCP client: %s", tg_strerror(rc));
    goto out;
  }
  json_object_foreach((json_t *)headers, k, v)
  {
    const char *tpl = json_string_value(v);
    char *val = NULL;
    size_t len;
    rc = TG_ENOMEM;
    /* {{secrets.<name>}} become the user's credential values here only: the journal and the
     * node's config keep the references */
    if (tpl &&
        !(val = m->creds ? tg_api_subst_secrets(tpl, m->creds, &rc, err, errlen) : strdup(tpl)))
      goto out; /* TG_ENOTFOUND: a credential the headers name does not exist */
    if (!val || strpbrk(k, "\r\n:") || strpbrk(val, "\r\n")) {
      snprintf(err, errlen, "ad-hoc header %s is not a valid header", k);
      if (val)
        tg_crypto_wipe_free(val, strlen(val));
      rc = TG_EINVAL;
      goto out;
    }
    len = strlen(k) + strlen(val) + 3;
    if ((lines[i] = malloc(len)) != NULL)
      snprintf(lines[i], len, "%s: %s", k, val);
    tg_crypto_wipe_free(val, strlen(val));
    if (!lines[i++]) {
      rc = TG_ENOMEM;
      goto out;
    }
  }
  opt.url = cfg_str(m->config, "url");
  opt.headers = (const char *const *)lines;
  opt.request_timeout_ms = (long)w->cfg.mcp_timeout_ms;
  if ((rc = tg_mcp_client_new(&m->adhoc, w->http_egress ? w->http_egress : w->http, &opt)))
    snprintf(err, errlen, "cannot create the ad-hoc MCP client: %s", tg_strerror(rc));
out:
  if (rc == TG_ENOMEM && !err[0])
    snprintf(err, errlen, "out of memory");
  for (i = 0; lines && lines[i]; i++)
    tg_crypto_wipe_free(lines[i], strlen(lines[i])); /* may hold secrets */
  free(lines);
  return rc;
}

/* The node's client, managed or ad-hoc: 0, or -1 after finishing the node as failed. */
static int acquire(mcp_node *m)
{
  char err[512] = "";
  int rc = 0;
  if (m->client || m->adhoc)
    return 0;
  if (m->provider) {
    if ((m->client = wk_registry_acquire(m->r->w->reg, m->r, m->provider, err, sizeof err)))
      return 0;
  } else if ((rc = adhoc_client(m, err, sizeof err)) == 0) {
    return 0;
  }
  finish_status(m, WK_NODE_FAILED, rc == TG_ENOTFOUND ? "credential_missing" : "internal",
                "node %s: %s", m->id, err);
  return -1;
}

/* One call: client, pending row, call. */
static void begin_call(mcp_node *m)
{
  exec_job *j;
  if (m->stop) {
    finish_status(m, WK_NODE_FAILED, "timeout", "run deadline of %lld ms passed",
                  (long long)m->r->w->cfg.run_deadline_ms);
    return;
  }
  if (acquire(m))
    return;
  if (!(j = calloc(1, sizeof *j)) || !(j->redacted = wk_secrets_redact_args(m->r, m->args))) {
    free(j);
    finish_status(m, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  j->m = m;
  if (tg_dbq_submit(m->r->w->dbq, insert_work, insert_done, j) != 0) {
    job_free(j);
    finish_status(m, WK_NODE_FAILED, "internal", "cannot queue the tool execution");
  }
}

/* After the ad-hoc headers' credentials (if any) are open: the call, or for a node that was in
 * flight when an earlier attempt ended, the decision whether it may run again. */
static void proceed(mcp_node *m)
{
  if (!m->x->prior_status || m->stop) {
    begin_call(m); /* it reports a stop */
    return;
  }
  /* In flight when an earlier attempt ended: repeat only a tool that says it is harmless. */
  if (acquire(m))
    return;
  if (list_tools(m, NULL) != 0)
    decide_repeat(m, known_tools(m) ? NULL : "its annotations could not be listed");
}

/* Opening the credentials an ad-hoc node's headers name (a dbq job). */
typedef struct creds_job {
  mcp_node *m;
  const tg_crypto *crypto;
  const char *user;
  json_t *names, *creds;
} creds_job;

static int creds_work(tg_db *db, void *arg)
{
  creds_job *j = arg;
  return tg_store_credentials_open(db, j->crypto, j->user, j->names, &j->creds);
}

static void creds_done(void *arg, int status)
{
  creds_job *j = arg;
  mcp_node *m = j->m;
  json_t *creds = j->creds;
  json_decref(j->names);
  free(j);
  if (status != 0) {
    if (creds)
      tg_api_wipe_json(creds);
    json_decref(creds);
    finish_status(m, WK_NODE_FAILED, status == TG_ESTATE ? "credential_missing" : "internal",
                  "node %s: cannot open the credentials its headers name: %s", m->id,
                  tg_strerror(status));
    return;
  }
  m->creds = creds;
  proceed(m);
}

/* 0 when a job opening the credentials named in the ad-hoc headers was started (proceed() runs
 * when it ends); -1 when none are named, or on failure after finishing the node. */
static int load_credentials(mcp_node *m)
{
  json_t *names = tg_api_secret_refs(json_object_get(m->config, "headers"));
  creds_job *j;
  if (names && json_array_size(names) == 0) {
    json_decref(names);
    return -1;
  }
  if (!names || !(j = calloc(1, sizeof *j))) {
    json_decref(names);
    proceed(m); /* the headers keep their references: the server refuses, the node fails */
    return 0;
  }
  j->m = m;
  j->crypto = m->r->w->crypto;
  j->user = m->r->user_id;
  j->names = names;
  if (tg_dbq_submit(m->r->w->dbq, creds_work, creds_done, j) != 0) {
    json_decref(names);
    free(j);
    finish_status(m, WK_NODE_FAILED, "internal", "node %s: cannot queue the credentials", m->id);
  }
  return 0;
}

/* Opening the user's MCP connector of a managed {connector_id} node (a dbq job). */
typedef struct conn_job {
  mcp_node *m;
  const tg_crypto *crypto;
  const char *user, *id;
  char **lines;
  char *url;
  int rc;
  int oauth; /* the connector requires MCP authorization: row holds its tokens */
  wk_conn_auth_row row;
  const char *cls;
  char err[256];
} conn_job;

static int conn_work(tg_db *db, void *arg)
{
  conn_job *j = arg;
  json_t *opened = NULL;
  const char *st;
  int rc = tg_store_connectors_open(db, j->crypto, j->user, j->id, &opened);
  if (rc == 0 && strcmp(json_string_value(json_object_get(opened, "kind")), "mcp") != 0)
    rc = TG_ENOTFOUND; /* an API connector is not an MCP node's */
  if (rc == TG_ENOTFOUND) {
    j->cls = "connector_not_found";
    snprintf(j->err, sizeof j->err, "connector %s not found", j->id);
    return 0;
  }
  if (rc)
    return rc;
  st = json_string_value(json_object_get(opened, "auth_status"));
  j->oauth = st != NULL;
  if (st && (strcmp(st, "ACTIVE") != 0 ||
             (rc = wk_conn_auth_load(db, j->crypto, j->user, j->id,
                                     json_integer_value(json_object_get(opened, "version")),
                                     &j->row)) != 0)) {
    j->cls = "auth_refresh_required";
    snprintf(j->err, sizeof j->err, "connector %s needs authorization (%s)", j->id,
             strcmp(st, "ACTIVE") != 0 ? st
             : rc == TG_ENOTFOUND      ? "not_connected"
                                       : tg_strerror(rc));
    rc = 0;
    goto out;
  }
  j->url = strdup(json_string_value(json_object_get(json_object_get(opened, "config"), "url")));
  j->lines = tg_connector_mcp_headers(opened, NULL); /* the OAuth bearer comes from the link */
  rc = j->url && j->lines ? 0 : TG_ENOMEM;
out:
  tg_connector_drop(opened);
  return rc;
}

/* The connector's token is fresh (err 0) or its refresh failed (TG_EAUTH). */
static void on_token_fresh(void *arg, int err)
{
  mcp_node *m = arg;
  if (err)
    finish_status(m, WK_NODE_FAILED, "auth_refresh_required",
                  "node %s: the token refresh of %s failed; connect it again", m->id,
                  m->conn_label);
  else
    proceed(m);
}

static void conn_done(void *arg, int status)
{
  conn_job *j = arg;
  mcp_node *m = j->m;
  int rc = 0;
  if (status != 0 || j->cls) {
    finish_status(m, WK_NODE_FAILED, j->cls ? j->cls : "internal", "node %s: %s", m->id,
                  j->cls ? j->err : tg_strerror(status));
    goto out;
  }
  m->conn_url = j->url;
  m->conn_lines = j->lines;
  j->url = NULL;
  j->lines = NULL;
  if (j->oauth &&
      (rc = wk_conn_auth_link(m->r->w, m->r->user_id, cfg_str(m->config, "connector_id"),
                              m->conn_url, &j->row, &m->conn_link)) != 0) {
    finish_status(m, WK_NODE_FAILED, "internal", "node %s: %s", m->id, tg_strerror(rc));
    goto out;
  }
  rc = m->conn_link ? wk_conn_auth_fresh(m->conn_link, on_token_fresh, m) : 0;
  if (rc == 0)
    proceed(m);
  else if (rc != 1)
    on_token_fresh(m, rc);
out:
  wk_conn_auth_row_clear(&j->row);
  free(j->url);
  tg_connector_lines_free(j->lines);
  free(j);
}

/* Starts the load of a {connector_id} node's connector; proceed() runs when it is open. */
static void load_connector(mcp_node *m, const char *id)
{
  conn_job *j = calloc(1, sizeof *j);
  snprintf(m->conn_label, sizeof m->conn_label, "connector:%s", id);
  if (!j) {
    finish_status(m, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  j->m = m;
  j->crypto = m->r->w->crypto;
  j->user = m->r->user_id;
  j->id = id;
  if (tg_dbq_submit(m->r->w->dbq, conn_work, conn_done, j) != 0) {
    free(j);
    finish_status(m, WK_NODE_FAILED, "internal", "node %s: cannot queue the connector", m->id);
  }
}

static void start(wk_node_exec *x)
{
  mcp_node *m = calloc(1, sizeof *m);
  const json_t *args;
  if (!m) {
    wk_node_result res = {.status = WK_NODE_FAILED, .error_class = "internal"};
    snprintf(res.error, sizeof res.error, "out of memory");
    x->done(x, &res);
    return;
  }
  x->priv = m;
  m->x = x;
  m->r = x->r;
  m->id = x->gn->id;
  m->tool_call_id = x->tool_call_id;
  m->config = json_incref(x->config);
  m->tool = cfg_str(m->config, "tool");
  m->provider = cfg_str(m->config, "provider");
  args = json_object_get(m->config, "arguments");
  m->args = args && !json_is_null(args) ? json_incref((json_t *)args) : json_object();
  uv_timer_init(x->r->w->loop, &m->wait);
  m->wait.data = m;
  if (json_is_string(json_object_get(m->config, "connector_id")) && !m->provider) {
    load_connector(m, cfg_str(m->config, "connector_id"));
    return;
  }
  if (!m->provider && load_credentials(m) == 0)
    return; /* proceed() runs when they are open */
  proceed(m);
}

static void cancel(wk_node_exec *x, int why)
{
  mcp_node *m = x->priv;
  if (!m)
    return;
  m->stop = why;
  if (m->call) {
    m->call_stop = why;
    tg_mcp_cancel(m->call); /* on_call_done runs before this returns */
  } else if (m->waiting) {
    uv_timer_stop(&m->wait);
    m->waiting = 0;
    if (why == WK_STOP_SHUTDOWN || wk_run_stopping(m->r))
      finish_lost(m);
    else
      finish_status(m, WK_NODE_FAILED, "timeout", "run deadline of %lld ms passed",
                    (long long)m->r->w->cfg.run_deadline_ms);
  }
  /* else a job or tools/list is in flight: its completion sees m->stop */
}

/* structuredContent when it is an object, else the single text content when it parses as a
 * JSON object, else none. */
static json_t *vars(const json_t *output)
{
  const json_t *sc = json_object_get(output, "structuredContent");
  const json_t *content = json_object_get(output, "content");
  const char *text;
  json_t *v;
  if (json_is_object(sc))
    return json_copy((json_t *)sc);
  if (json_array_size(content) != 1 ||
      !(text = json_string_value(json_object_get(json_array_get(content, 0), "text"))))
    return NULL;
  v = json_loads(text, 0, NULL);
  if (json_is_object(v))
    return v;
  json_decref(v);
  return NULL;
}

const wk_node_ops wk_node_mcp_ops = {
    .type = TG_NODE_MCP, .effectful = 1, .start = start, .cancel = cancel, .vars = vars};
