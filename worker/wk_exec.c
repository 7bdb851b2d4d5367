/*
 * wk_exec: executes one run's workflow (DESIGN.md sections 5 and 6).
 *
 * The nodes run in tg_workflow_order. The context is {"inputs": ..., "nodes": {id: {"output":
 * CallToolResult}}}, so later arguments can say {{nodes.<id>.output.content.0.text}}. The End
 * node renders outputVariables into the run's output.
 *
 * The journal: each MCP call that goes out is bracketed by two fenced writes, a 'pending'
 * tool_executions row BEFORE the call (arguments redacted by key with tg_redact and by value
 * for the run's secret inputs, wk_secrets.c) and its completion after (success / failed /
 * unknown, response and error redacted by value, error_class, duration_ms). A retry is a
 * new call and gets its own row, so the table shows every request that left the worker.
 *
 * Failures are classified (error_class on the row and on the run): provider_auth (401/403),
 * mcp_session_lost (tg_mcp re-initialised once and lost the session again), tool_error
 * (isError:true), rate_limited (429), timeout, internal. Transient ones are retried up to
 * TOOLGATE_TOOL_RETRIES times, after a delay of TOOLGATE_RETRY_BASE_MS * 2^n with jitter
 * (half fixed, half random), or exactly the server's Retry-After for a 429: a request that
 * certainly never reached the server (tg_mcp_error.not_delivered: connection refused or not
 * established, the session could not start), HTTP 5xx and 429. A call that was sent and got no
 * answer (timeout, connection reset or closed after the request went out) may have had
 * effects: its row is 'unknown' and it is retried only when the tool's annotations from
 * tools/list say readOnlyHint or idempotentHint (listed lazily, once per session, the first
 * time such a call fails). Everything else fails the run at once.
 *
 * The run deadline (TOOLGATE_RUN_DEADLINE_MS from the claim) interrupts a call in flight: the
 * r->dl timer runs while a call is out and cancels it with tg_mcp_cancel (notifications/
 * cancelled, stream closed); its row is 'unknown' (or 'failed' if it had not left yet) with
 * error_class timeout and the run fails 'timeout' without a retry. SIGTERM's grace expiry
 * cancels calls the same way (wk_exec_cancel_call) and releases the run.
 *
 * Between steps (before a call, after a completion, when a backoff ends) the run stops if its
 * lease is lost, finishes as 'canceled' if cancel_requested was seen, and fails with 'timeout'
 * once past its deadline (a backoff that would end past the deadline is not started).
 * cancel_requested deliberately does NOT interrupt a call in flight: the request is already
 * out, so cutting it short saves nothing certain and turns a known outcome into 'unknown'; the
 * call is bounded by TOOLGATE_MCP_TIMEOUT_MS and the run deadline, and its row records what
 * really happened before the run ends 'canceled'.
 *
 * Managed nodes {provider, tool, arguments} use the user's registry client; ad-hoc nodes {url,
 * headers, tool, arguments} use an ephemeral client closed after each call.
 */
#include "wk.h"

#include "tg_err.h"
#include "tg_log.h"
#include "tg_workflow.h"
#include "tg_clock.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERROR_TEXT 2000
#define MAX_BACKOFF_MS 30000

typedef struct exec_job {
  wk_run *r;
  /* insert */
  json_t *redacted;
  int inserted;
  int64_t exec_id;
  /* completion */
  const char *status;      /* static */
  json_t *response;        /* owned */
  char *error;             /* owned */
  const char *error_class; /* static */
  int64_t duration_ms;
  int changes;
  int cancel; /* cancel_requested, read after the completion */
  /* retry decision, loop side only */
  int err;             /* TG_E* of the call, 0 for success / tool_error */
  int maybe_ran;       /* the request may have reached the server and run: row 'unknown' */
  int not_delivered;   /* it certainly did not (tg_mcp_error.not_delivered) */
  int stopped;         /* the worker stopped the call (run deadline): no retry */
  long http_status;    /* of the failed call */
  long retry_after_ms; /* of a 429, else -1 */
} exec_job;

static void next_step(wk_run *r);
static void begin_call(wk_run *r);

static const char *node_str(const json_t *node, const char *key)
{
  return json_string_value(json_object_get(node, key));
}

static const char *cfg_str(const json_t *node, const char *key)
{
  return json_string_value(json_object_get(json_object_get(node, "config"), key));
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

void wk_exec_abort(wk_run *r)
{
  if (r->client) {
    wk_registry_release(r->w->reg, r->client);
    r->client = NULL;
  }
  if (r->adhoc) {
    wk_registry_close_later(r->w->reg, r->adhoc);
    r->adhoc = NULL;
  }
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

/* ---- between steps ---- */

/* 1 when the run must not start another step: stopped, canceled or past its deadline (the
 * last two finish it). */
static int step_blocked(wk_run *r)
{
  if (wk_run_should_stop(r))
    return 1;
  if (r->cancel) {
    tg_info("run_cancel_honoured", "{s:s, s:I, s:I}", "run_id", r->id, "attempt",
            (json_int_t)r->attempt, "step", (json_int_t)r->step);
    wk_run_finish(r, "canceled", NULL, "canceled on request", NULL);
    return 1;
  }
  if (r->deadline_ms) {
    uv_update_time(r->w->loop);
    if (uv_now(r->w->loop) >= r->deadline_ms) {
      wk_run_fail(r, "timeout", "run deadline of %lld ms passed",
                  (long long)r->w->cfg.run_deadline_ms);
      return 1;
    }
  }
  return 0;
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
  default:
    return "internal";
  }
}

/* Retried without asking the annotations: the request certainly never reached the server
 * (connection refused or not established, not fully written), or the server answered 5xx / 429
 * (it asks us to come back). A reset or timeout after the request went out is not here: the
 * call may have run (maybe_ran), so only annotations can make a repeat safe. */
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

static void on_backoff(uv_timer_t *t)
{
  wk_run *r = t->data;
  if (!step_blocked(r))
    begin_call(r);
}

/* Retries the current node's call after a backoff, or fails the run with j's class. */
static void retry_or_fail(wk_run *r, exec_job *j, int retryable)
{
  wk_worker *w = r->w;
  uint64_t delay;
  wk_exec_abort(r); /* the call is over: give the client back */
  if (!retryable || r->tries > w->cfg.tool_retries) {
    if (retryable)
      wk_run_fail(r, j->error_class, "%s (after %d attempts)", j->error ? j->error : "error",
                  r->tries);
    else
      wk_run_finish(r, "failed", NULL, j->error, j->error_class);
    return;
  }
  if (j->err == TG_ERATELIMIT && j->retry_after_ms >= 0) {
    delay = (uint64_t)j->retry_after_ms; /* the server said when: no jitter */
  } else {
    uint64_t base = (uint64_t)w->cfg.retry_base_ms << (r->tries - 1 < 16 ? r->tries - 1 : 16);
    if (base > MAX_BACKOFF_MS)
      base = MAX_BACKOFF_MS;
    delay = base / 2 + (base / 2 ? randombytes_uniform((uint32_t)(base / 2 + 1)) : 0);
  }
  uv_update_time(w->loop);
  if (r->deadline_ms && uv_now(w->loop) + delay >= r->deadline_ms) {
    wk_run_fail(r, j->error_class, "%s (no retry: the run deadline comes first)",
                j->error ? j->error : "error");
    return;
  }
  tg_info("tool_call_retry", "{s:s, s:I, s:s, s:s, s:i, s:I}", "run_id", r->id, "attempt",
          (json_int_t)r->attempt, "node", node_str(r->node, "id"), "error_class", j->error_class,
          "try", r->tries + 1, "delay_ms", (json_int_t)delay);
  uv_timer_start(&r->wait, on_backoff, delay, 0);
}

/* Tool annotations for the timeout decision. */
static json_t *known_tools(wk_run *r)
{
  return r->client ? wk_client_tools(r->client) : r->adhoc_tools;
}

typedef struct list_ctx {
  wk_run *r;
  exec_job *j;
} list_ctx;

static void on_tools_listed(void *arg, const tg_mcp_error *err, json_t *tools)
{
  list_ctx *c = arg;
  wk_run *r = c->r;
  exec_job *j = c->j;
  free(c);
  if (wk_run_op_done(r) || wk_run_should_stop(r))
    goto out;
  if (err) {
    tg_warn("tools_list_failed", "{s:s, s:s}", "run_id", r->id, "error", err->message);
  } else if (r->client) {
    wk_client_set_tools(r->client, tools);
  } else {
    json_decref(r->adhoc_tools);
    r->adhoc_tools = wk_tools_annotations(tools);
  }
  /* Unknown annotations (listing failed): not known to be safe, so no retry. */
  retry_or_fail(r, j, safe_to_repeat(known_tools(r), cfg_str(r->node, "tool")));
out:
  job_free(j);
}

/* A failed call's row is written: decide. Takes j. */
static void after_failure(wk_run *r, exec_job *j)
{
  tg_mcp_client *m = r->adhoc ? r->adhoc : wk_client_mcp(r->client);
  list_ctx *c;
  if (j->stopped) { /* we canceled it at the run deadline: the run fails now */
    retry_or_fail(r, j, 0);
    job_free(j);
    return;
  }
  if (!j->maybe_ran) {
    retry_or_fail(r, j, transient(j));
    job_free(j);
    return;
  }
  if (known_tools(r) || !m || !(c = calloc(1, sizeof *c))) {
    retry_or_fail(r, j, safe_to_repeat(known_tools(r), cfg_str(r->node, "tool")));
    job_free(j);
    return;
  }
  c->r = r;
  c->j = j;
  if (tg_mcp_list_tools(m, on_tools_listed, c) != 0) {
    free(c);
    retry_or_fail(r, j, 0);
    job_free(j);
    return;
  }
  r->pending++;
}

/* ---- completion of the tool_executions row ---- */

static int complete_work(tg_db *db, void *arg)
{
  exec_job *j = arg;
  wk_run *r = j->r;
  tg_run_lease l = wk_run_lease(r);
  int rc;
  json_t *redacted = NULL;
  /* The context keeps the real response (later nodes may use it); the row gets it redacted.
   * This thread only reads j->response: its reference count belongs to the loop, where tg_mcp
   * drops its own references while this job runs, and jansson's json_incref/json_decref test
   * the count with a plain read before their atomic update. So no wk_secrets_redact (which
   * takes a reference when there is nothing to redact) unless there are secrets to take out. */
  if (r->secrets && r->secrets[0] && j->response && !(redacted = wk_secrets_redact(r, j->response)))
    return TG_ENOMEM;
  rc = tg_store_runs_tool_finish(db, &l, r->exec_id,
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
  wk_run *r = j->r;
  const char *node_id;
  json_t *entry;

  if (wk_run_op_done(r))
    goto out;
  if (j->cancel)
    r->cancel = 1;
  if (status != 0) {
    wk_exec_abort(r);
    wk_run_fail(r, "internal", "cannot record the tool execution: %s", tg_strerror(status));
    goto out;
  }
  if (j->changes == 0)
    r->lost = 1;
  if (wk_run_should_stop(r))
    goto out;
  if (strcmp(j->status, "success") != 0) {
    after_failure(r, j);
    return;
  }
  wk_exec_abort(r); /* give the client back: the call is over */
  node_id = node_str(r->node, "id");
  entry = json_pack("{s:O}", "output", j->response);
  if (!entry || json_object_set_new(json_object_get(r->ctx, "nodes"), node_id, entry)) {
    wk_run_fail(r, "internal", "out of memory");
    goto out;
  }
  json_decref(r->args);
  r->args = NULL;
  r->node = NULL;
  r->step++;
  next_step(r);
out:
  job_free(j);
}

static void complete(wk_run *r, exec_job *j)
{
  if (wk_run_submit(r, complete_work, complete_done, j) != 0) {
    job_free(j);
    wk_exec_abort(r);
    wk_run_fail(r, "internal", "cannot queue the tool execution's completion");
  }
}

/* ---- the call ---- */

static void on_call_done(void *arg, const tg_mcp_error *err, json_t *result)
{
  wk_run *r = arg;
  exec_job *j;
  const char *tool = cfg_str(r->node, "tool");
  int stop = r->call_stop;

  r->call = NULL;
  r->call_stop = WK_STOP_NONE;
  uv_timer_stop(&r->dl);
  if (wk_run_op_done(r) || wk_run_should_stop(r))
    return;
  uv_update_time(r->w->loop);
  if (!(j = calloc(1, sizeof *j))) {
    wk_exec_abort(r);
    wk_run_fail(r, "internal", "out of memory");
    return;
  }
  j->r = r;
  j->retry_after_ms = -1;
  j->duration_ms = (int64_t)(uv_now(r->w->loop) - r->call_start_ms);
  if (err) {
    j->err = err->err;
    j->http_status = err->http_status;
    j->retry_after_ms = err->retry_after_ms;
    j->not_delivered = err->not_delivered;
    j->error_class = classify(err->err);
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
         (json_int_t)r->attempt, "node", node_str(r->node, "id"), "provider",
         cfg_str(r->node, "provider"), "tool", tool ? tool : "", "status", j->status, "try",
         r->tries, "duration_ms", (json_int_t)j->duration_ms, "error_class", j->error_class,
         "error", j->error);
  complete(r, j);
}

/* The run deadline passed while a call was in flight: cancel it (its completion runs inside
 * tg_mcp_cancel, records the row and fails the run with 'timeout'). */
static void on_deadline(uv_timer_t *t)
{
  wk_run *r = t->data;
  if (!r->call || r->ended)
    return;
  tg_warn("run_deadline_call_canceled", "{s:s, s:I, s:s, s:I}", "run_id", r->id, "attempt",
          (json_int_t)r->attempt, "node", node_str(r->node, "id"), "deadline_ms",
          (json_int_t)r->w->cfg.run_deadline_ms);
  wk_exec_cancel_call(r, WK_STOP_DEADLINE);
}

void wk_exec_cancel_call(wk_run *r, int why)
{
  tg_mcp_call *call = r->call;
  if (!call)
    return;
  r->call_stop = why;
  tg_mcp_cancel(call); /* on_call_done runs before this returns and clears r->call */
}

static int insert_work(tg_db *db, void *arg)
{
  exec_job *j = arg;
  wk_run *r = j->r; /* node, id, attempt are not touched by the loop while this job runs */
  tg_run_lease l = wk_run_lease(r);
  return tg_store_runs_tool_start(db, &l, node_str(r->node, "id"), cfg_str(r->node, "provider"),
                                  cfg_str(r->node, "tool"), j->redacted, tg_now_ms(), &j->exec_id,
                                  &j->inserted);
}

static void insert_done(void *arg, int status)
{
  exec_job *j = arg;
  wk_run *r = j->r;
  tg_mcp_client *m;
  int rc;

  if (wk_run_op_done(r))
    goto out;
  if (status != 0) {
    wk_exec_abort(r);
    wk_run_fail(r, "internal", "cannot record the tool execution: %s", tg_strerror(status));
    goto out;
  }
  if (!j->inserted)
    r->lost = 1;
  r->exec_id = j->exec_id;
  if (wk_run_should_stop(r))
    goto out;
  m = r->adhoc ? r->adhoc : wk_client_mcp(r->client);
  uv_update_time(r->w->loop);
  r->call_start_ms = uv_now(r->w->loop);
  r->tries++;
  if (r->deadline_ms && r->call_start_ms >= r->deadline_ms) {
    /* Recording the row took us past the deadline (a locked database): do not send it. */
    rc = TG_ETIMEDOUT;
  } else {
    rc = m ? tg_mcp_call_tool_ex(m, cfg_str(r->node, "tool"), r->args, NULL, on_call_done, r,
                                 &r->call)
           : TG_ESTATE;
  }
  if (rc == 0) {
    r->pending++;
    /* The deadline interrupts the call (tg_mcp_cancel); the per-request timeout bounds it too. */
    if (r->deadline_ms)
      uv_timer_start(&r->dl, on_deadline, r->deadline_ms - r->call_start_ms, 0);
    goto out;
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
  complete(r, j);
  return;
out:
  job_free(j);
}

/* Builds the ephemeral client of an ad-hoc node. */
static int adhoc_client(wk_run *r, const json_t *config, char *err, size_t errlen)
{
  const json_t *headers = json_object_get(config, "headers");
  size_t n = json_object_size(headers), i = 0;
  char **lines = calloc(n + 1, sizeof *lines);
  tg_mcp_options opt = {0};
  const char *k;
  json_t *v;
  int rc = TG_ENOMEM;

  if (!lines)
    goto out;
  json_object_foreach((json_t *)headers, k, v)
  {
    const char *val = json_string_value(v);
    size_t len;
    if (!val || strpbrk(k, "\r\n:") || strpbrk(val, "\r\n")) {
      snprintf(err, errlen, "ad-hoc header %s is not a valid header", k);
      rc = TG_EINVAL;
      goto out;
    }
    len = strlen(k) + strlen(val) + 3;
    if (!(lines[i] = malloc(len)))
      goto out;
    snprintf(lines[i++], len, "%s: %s", k, val);
  }
  opt.url = json_string_value(json_object_get(config, "url"));
  opt.headers = (const char *const *)lines;
  opt.request_timeout_ms = (long)r->w->cfg.mcp_timeout_ms;
  if ((rc = tg_mcp_client_new(&r->adhoc, r->w->http, &opt)))
    snprintf(err, errlen, "cannot create the ad-hoc MCP client: %s", tg_strerror(rc));
out:
  if (rc == TG_ENOMEM && !err[0])
    snprintf(err, errlen, "out of memory");
  for (i = 0; lines && lines[i]; i++)
    tg_crypto_wipe_free(lines[i], strlen(lines[i])); /* may hold secrets */
  free(lines);
  return rc;
}

/* One call of the current node (r->node, r->args): client, pending row, call. */
static void begin_call(wk_run *r)
{
  const json_t *config = json_object_get(r->node, "config");
  const char *provider = cfg_str(r->node, "provider"), *id = node_str(r->node, "id");
  char err[512] = "";
  exec_job *j;

  if (provider) {
    if (!(r->client = wk_registry_acquire(r->w->reg, r, provider, err, sizeof err))) {
      wk_run_fail(r, "internal", "node %s: %s", id, err);
      return;
    }
  } else if (adhoc_client(r, config, err, sizeof err)) {
    wk_run_fail(r, "internal", "node %s: %s", id, err);
    return;
  }
  if (!(j = calloc(1, sizeof *j)) || !(j->redacted = wk_secrets_redact_args(r, r->args))) {
    free(j);
    wk_exec_abort(r);
    wk_run_fail(r, "internal", "out of memory");
    return;
  }
  j->r = r;
  if (wk_run_submit(r, insert_work, insert_done, j) != 0) {
    job_free(j);
    wk_exec_abort(r);
    wk_run_fail(r, "internal", "cannot queue the tool execution");
  }
}

static void start_node(wk_run *r, json_t *node)
{
  const json_t *args_tpl = json_object_get(json_object_get(node, "config"), "arguments");
  char err[512] = "";
  json_t *empty = NULL;

  r->node = node;
  r->tries = 0;
  if (!args_tpl || json_is_null(args_tpl))
    args_tpl = empty = json_object();
  r->args = tg_workflow_render(args_tpl, r->ctx, err, sizeof err);
  json_decref(empty);
  if (!r->args) {
    wk_run_fail(r, "internal", "node %s: %s", node_str(node, "id"),
                err[0] ? err : "cannot render arguments");
    return;
  }
  begin_call(r);
}

static void next_step(wk_run *r)
{
  char err[512];
  if (step_blocked(r))
    return;
  for (; r->step < json_array_size(r->order); r->step++) {
    json_t *node = json_array_get(r->order, r->step);
    const char *type = node_str(node, "type"), *id = node_str(node, "id");
    if (strcmp(type, "Start") == 0)
      continue;
    if (strcmp(type, "MCP") == 0) {
      start_node(r, node);
      return;
    }
    if (strcmp(type, "End") == 0) {
      json_t *out = tg_workflow_end_output(node, r->ctx, err, sizeof err);
      if (!out)
        wk_run_fail(r, "internal", "node %s: %s", id, err[0] ? err : "out of memory");
      else
        wk_run_finish(r, "succeeded", out, NULL, NULL);
      return;
    }
    wk_run_fail(r, "internal", "node %s: type %s is not executable", id, type);
    return;
  }
  wk_run_fail(r, "internal", "workflow has no End node");
}

void wk_exec_start(wk_run *r)
{
  json_t *inputs;
  if (!(r->order = tg_workflow_order(r->definition))) {
    json_t *errs = tg_workflow_validate(r->definition);
    const char *msg = json_string_value(json_object_get(json_array_get(errs, 0), "message"));
    wk_run_fail(r, "internal", "invalid workflow definition: %s", msg ? msg : "unknown");
    json_decref(errs);
    return;
  }
  inputs = json_is_object(r->inputs) ? json_incref(r->inputs) : json_object();
  r->ctx = json_pack("{s:o, s:{}}", "inputs", inputs, "nodes");
  if (!r->ctx) {
    wk_run_fail(r, "internal", "out of memory");
    return;
  }
  r->step = 0;
  next_step(r);
}
