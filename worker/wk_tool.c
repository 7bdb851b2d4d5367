/*
 * wk_tool: resolution and invocation of catalog tools for Agent nodes (wk_tool.h; README "Agent
 * nodes").
 *
 * Resolution reads the user's runnable catalog once per node (tg_store_tools_runnable: the
 * built-ins first, so a user's tool named like a built-in never shadows it) and matches each
 * configured name by tool_id, else by name ignoring case with ' ' and '_' the same.
 *
 * Invocation takes one of two paths, so that a tool call behaves exactly like the node that
 * would make the same call:
 *   - through a node executor (a sub-execution): MCP tools (connector or Composio) run through
 *     wk_node_mcp_ops with the config {connector_id | provider, tool, arguments}, API connector
 *     operations and the http_request built-in through wk_node_api_ops ({connector_id,
 *     operation, payload}; {method, url, headers, body, authentication: "none"}). The executor
 *     journals its tool_executions rows (with x->tool_call_id), retries, refreshes tokens and
 *     redacts; this file only maps its wk_node_result to an outcome. Here wk_tool_call plays the
 *     engine's part for that execution (sub.engine points back to it).
 *   - in this file (local): calculator (wk_tool_calc.c) and code_execution (tg_sandbox), and the
 *     error result of a tool with nothing to run it. Each is bracketed by a fenced 'pending'
 *     tool_executions row (provider "builtin") and its completion, written by dbq jobs.
 * http_request arguments are the model's: a {{...}} anywhere in them is refused, so a model
 * cannot make the worker substitute a user's credential into a request it chose.
 *
 * Lifetime: a call is freed after done returned and its timer closed; done is never called
 * from inside wk_tool_call_start (a sub-execution that finishes at once is delivered on the
 * next loop iteration through that timer). Loop thread only, except the jobs' work functions,
 * which read only their job.
 */
#include "wk_tool.h"

#include "tg_clock.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_sandbox.h"
#include "tg_store_runs.h"
#include "tg_store_tools.h"
#include "tg_tool_name.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_NAME_MAX 64
#define MAX_BODY_TEXT (64u << 10) /* bytes of an http_request body given back as text */

/* ---------------------------------------------------------------- resolution */

static const char *str(const json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

/* The name the model sees: [A-Za-z0-9_-], at most 64 bytes, unique among tools[0..n). */
static char *model_name(const char *catalog, const wk_tool *tools, size_t n)
{
  char base[MODEL_NAME_MAX + 1], name[MODEL_NAME_MAX + 1];
  size_t i, len = 0;
  int k = 1, clash;
  for (; catalog[len] && len < MODEL_NAME_MAX - 4; len++) {
    unsigned char ch = (unsigned char)catalog[len];
    base[len] = isalnum(ch) || ch == '-' || ch == '_' ? (char)ch : '_';
  }
  base[len] = '\0';
  if (!len)
    snprintf(base, sizeof base, "tool");
  snprintf(name, sizeof name, "%s", base);
  do {
    clash = 0;
    for (i = 0; i < n && !clash; i++)
      clash = strcmp(tools[i].name, name) == 0;
    if (clash)
      snprintf(name, sizeof name, "%s_%d", base, ++k);
  } while (clash);
  return strdup(name);
}

static char *dup_or_null(const char *s)
{
  return s ? strdup(s) : NULL;
}

static int fill(wk_tool *t, const json_t *row, const wk_tool *before, size_t n)
{
  const json_t *def = json_object_get(row, "definition");
  const json_t *schema = json_object_get(def, "input_schema");
  t->tool_id = strdup(str(row, "tool_id"));
  t->catalog_name = strdup(str(row, "name"));
  t->name = model_name(str(row, "name"), before, n);
  t->description = strdup(str(row, "description") ? str(row, "description") : "");
  t->input_schema = json_is_object(schema)
                        ? json_deep_copy(schema)
                        : json_pack("{s:s, s:{}}", "type", "object", "properties");
  t->definition = json_is_object(def) ? json_deep_copy(def) : json_object();
  t->source = strdup(str(row, "source"));
  t->tool_type = strdup(str(row, "tool_type"));
  t->connector_id = dup_or_null(str(row, "connector_id"));
  return t->tool_id && t->catalog_name && t->name && t->description && t->input_schema &&
                 t->definition && t->source && t->tool_type &&
                 (t->connector_id || !str(row, "connector_id"))
             ? 0
             : TG_ENOMEM;
}

int wk_tools_resolve(tg_db *db, const char *user_id, const json_t *names, wk_tool **out, size_t *n,
                     char *missing, size_t len)
{
  int rc = 0;
  json_t *rows = tg_store_tools_runnable(db, &rc, user_id);
  wk_tool *tools = NULL;
  size_t i, k = 0;
  const json_t *nm;
  *out = NULL;
  *n = 0;
  if (!rows)
    return rc ? rc : TG_EDB;
  if (!(tools = calloc(json_array_size(names) + 1, sizeof *tools))) {
    rc = TG_ENOMEM;
    goto out;
  }
  json_array_foreach(names, i, nm)
  {
    const json_t *row;
    size_t d;
    int dup = 0;
    if (!json_is_string(nm)) {
      rc = TG_EINVAL;
      goto out;
    }
    if (!(row = tg_tool_lookup(rows, json_string_value(nm)))) {
      snprintf(missing, len, "%s", json_string_value(nm));
      rc = TG_ENOTFOUND;
      goto out;
    }
    for (d = 0; d < k && !dup; d++)
      dup = strcmp(tools[d].tool_id, str(row, "tool_id")) == 0;
    if (dup)
      continue;
    k++; /* counted before it is filled, so that wk_tools_free releases a partial one */
    if ((rc = fill(&tools[k - 1], row, tools, k - 1)) != 0)
      goto out;
  }
  *out = tools;
  *n = k;
  tools = NULL;
out:
  wk_tools_free(tools, k);
  json_decref(rows);
  return rc;
}

void wk_tools_free(wk_tool *tools, size_t n)
{
  size_t i;
  if (!tools)
    return;
  for (i = 0; i < n; i++) {
    free(tools[i].tool_id);
    free(tools[i].name);
    free(tools[i].catalog_name);
    free(tools[i].description);
    json_decref(tools[i].input_schema);
    json_decref(tools[i].definition);
    free(tools[i].source);
    free(tools[i].tool_type);
    free(tools[i].connector_id);
  }
  free(tools);
}

json_t *wk_tools_for_model(const wk_tool *tools, size_t n)
{
  json_t *a = json_array();
  size_t i;
  for (i = 0; a && i < n; i++)
    if (json_array_append_new(a, json_pack("{s:s, s:s, s:O}", "name", tools[i].name, "description",
                                           tools[i].description, "input_schema",
                                           tools[i].input_schema))) {
      json_decref(a);
      return NULL;
    }
  return a;
}

/* ---------------------------------------------------------------- invocation */

typedef enum { RUN_SUB_MCP, RUN_SUB_API, RUN_HTTP, RUN_CALC, RUN_CODE, RUN_NONE } run_kind;

struct wk_tool_call {
  wk_node_exec *x;
  wk_run *r;
  run_kind kind;
  char *tool;         /* the catalog name (the journal's tool_name for local tools) */
  char *tool_call_id; /* or NULL */
  json_t *args;
  void (*done)(void *arg, wk_tool_outcome *o);
  void *arg;
  wk_tool_outcome o;
  uv_timer_t defer; /* delivers an outcome decided inside wk_tool_call_start */
  int in_start;     /* wk_tool_call_start is on the stack */
  int decided;      /* o holds the outcome */
  int stop;         /* cancel asked: WK_STOP_* */
  /* sub-execution */
  wk_node_exec sub;
  int sub_running;
  /* local */
  int job; /* a dbq job is in flight */
  int64_t exec_id;
  uint64_t started_ms;
  tg_sandbox_exec *sb;
};

static void on_closed(uv_handle_t *h)
{
  wk_tool_call *c = h->data;
  json_decref(c->o.content);
  json_decref(c->args);
  free(c->tool);
  free(c->tool_call_id);
  free(c);
}

static void deliver(wk_tool_call *c)
{
  c->decided = 1;
  if (c->in_start)
    return; /* wk_tool_call_start defers it to the next loop iteration */
  c->done(c->arg, &c->o);
  uv_close((uv_handle_t *)&c->defer, on_closed);
}

static void on_defer(uv_timer_t *t)
{
  wk_tool_call *c = t->data;
  c->in_start = 0;
  deliver(c);
}

static void set_error(wk_tool_call *c, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(wk_tool_call *c, const char *cls, const char *fmt, ...)
{
  va_list ap;
  char *red;
  va_start(ap, fmt);
  vsnprintf(c->o.error, sizeof c->o.error, fmt, ap);
  va_end(ap);
  if (c->r->secrets && (red = wk_secrets_redact_text(c->r, c->o.error)) != NULL) {
    snprintf(c->o.error, sizeof c->o.error, "%s", red);
    free(red);
  }
  c->o.is_error = 1;
  c->o.error_class = cls;
  json_decref(c->o.content);
  c->o.content = json_pack("{s:s, s:s}", "error", cls, "message", c->o.error);
}

/* ---- sub-executions ---- */

/* What the model gets back from an MCP CallToolResult: structuredContent, else the text items
 * joined, else the result. */
static json_t *mcp_content(json_t *output)
{
  const json_t *sc = json_object_get(output, "structuredContent"), *item;
  json_t *text;
  size_t i, len = 0;
  char *joined;
  if (json_is_object(sc))
    return json_incref((json_t *)sc);
  json_array_foreach(json_object_get(output, "content"), i, item)
  {
    if (str(item, "text"))
      len += strlen(str(item, "text")) + 1;
  }
  if (!len)
    return json_incref(output);
  if (!(joined = calloc(1, len + 1)))
    return NULL;
  json_array_foreach(json_object_get(output, "content"), i, item)
  {
    if (!str(item, "text"))
      continue;
    if (*joined)
      strcat(joined, "\n");
    strcat(joined, str(item, "text"));
  }
  text = json_string(joined);
  free(joined);
  return text;
}

/* An API node's output {success, status_code, data, error, elapsed_seconds} as http_request's
 * result {status, body}; a text body is capped. */
static json_t *http_content(const json_t *output)
{
  const json_t *data = json_object_get(output, "data");
  json_t *body;
  if (json_is_string(data) && json_string_length(data) > MAX_BODY_TEXT)
    body = json_stringn(json_string_value(data), MAX_BODY_TEXT);
  else
    body = json_incref(data ? (json_t *)data : json_null());
  return json_pack("{s:O?, s:o}", "status", json_object_get(output, "status_code"), "body", body);
}

static void on_sub_done(wk_node_exec *sx, wk_node_result *res)
{
  wk_tool_call *c = sx->engine;
  c->sub_running = 0;
  switch (res->status) {
  case WK_NODE_SUCCESS:
    c->o.content = c->kind == RUN_SUB_MCP ? mcp_content(res->output)
                   : c->kind == RUN_HTTP  ? http_content(res->output)
                                          : json_incref(res->output);
    if (c->kind != RUN_SUB_MCP && json_is_false(json_object_get(res->output, "success"))) {
      c->o.is_error = 1;
      c->o.error_class = "http_error";
      snprintf(c->o.error, sizeof c->o.error, "HTTP status %lld",
               (long long)json_integer_value(json_object_get(res->output, "status_code")));
    }
    if (!c->o.content)
      set_error(c, "internal", "out of memory");
    break;
  case WK_NODE_UNKNOWN:
    c->o.unknown = 1;
    c->o.error_class = res->error_class;
    snprintf(c->o.error, sizeof c->o.error, "%s", res->error);
    break;
  case WK_NODE_LOST:
    c->o.lost = 1;
    break;
  default:
    if (c->stop == WK_STOP_SHUTDOWN)
      c->o.lost = 1;
    else
      set_error(c, res->error_class ? res->error_class : "tool_error", "%s", res->error);
  }
  json_decref(res->output);
  json_decref(res->vars);
  json_decref(c->sub.config);
  c->sub.config = NULL;
  deliver(c);
}

/* 1 when a string anywhere in v holds "{{". */
static int has_template(const json_t *v)
{
  const char *k;
  const json_t *e;
  size_t i;
  if (json_is_string(v))
    return strstr(json_string_value(v), "{{") != NULL;
  json_object_foreach((json_t *)v, k, e)
  {
    if (strstr(k, "{{") || has_template(e))
      return 1;
  }
  json_array_foreach(v, i, e)
  {
    if (has_template(e))
      return 1;
  }
  return 0;
}

static json_t *sub_config(wk_tool_call *c, const wk_tool *t)
{
  const json_t *def = t->definition;
  switch (c->kind) {
  case RUN_SUB_MCP:
    return strcmp(t->source, "composio") == 0
               ? json_pack("{s:s, s:s, s:O}", "provider", str(def, "provider"), "tool",
                           str(def, "tool_name"), "arguments", c->args)
               : json_pack("{s:s, s:s, s:O}", "connector_id", t->connector_id, "tool",
                           str(def, "tool_name"), "arguments", c->args);
  case RUN_SUB_API:
    return json_pack("{s:s, s:s, s:O}", "connector_id", t->connector_id, "operation",
                     str(def, "operation") ? str(def, "operation") : str(def, "tool_name"),
                     "payload", c->args);
  default: /* RUN_HTTP */
    return json_pack("{s:s, s:O, s:O?, s:O?, s:s}", "method",
                     str(c->args, "method") ? str(c->args, "method") : "GET", "url",
                     json_object_get(c->args, "url"), "headers",
                     json_object_get(c->args, "headers"), "body", json_object_get(c->args, "body"),
                     "authentication", "none");
  }
}

static void start_sub(wk_tool_call *c, const wk_tool *t)
{
  const wk_node_ops *ops = c->kind == RUN_SUB_MCP ? &wk_node_mcp_ops : &wk_node_api_ops;
  if (c->kind == RUN_HTTP &&
      (!json_is_string(json_object_get(c->args, "url")) || has_template(c->args))) {
    set_error(c, "invalid_arguments",
              "http_request needs a url string and takes no {{...}} templates");
    deliver(c);
    return;
  }
  c->sub = (wk_node_exec){.r = c->r,
                          .gn = c->x->gn,
                          .config = sub_config(c, t),
                          .scope = c->x->scope,
                          .tool_call_id = c->tool_call_id,
                          .done = on_sub_done,
                          .engine = c};
  if (!c->sub.config) {
    set_error(c, "invalid_arguments", "tool %s: its definition cannot be called", c->tool);
    deliver(c);
    return;
  }
  c->sub_running = 1;
  ops->start(&c->sub);
}

/* ---- local tools ---- */

typedef struct tool_job {
  wk_tool_call *c;
  const char *node_id, *tool, *tool_call_id;
  json_t *arguments; /* start: redacted */
  int64_t exec_id;
  int inserted, changes;
  tg_tool_result tr; /* finish */
  json_t *response;  /* finish: redacted */
} tool_job;

static void run_local(wk_tool_call *c);

static void job_free(tool_job *j)
{
  json_decref(j->arguments);
  json_decref(j->response);
  free(j);
}

static int start_work(tg_db *db, void *arg)
{
  tool_job *j = arg;
  tg_run_lease l = wk_run_lease(j->c->r);
  return tg_store_runs_tool_start(db, &l, j->node_id, "builtin", j->tool, j->tool_call_id,
                                  j->arguments, tg_now_ms(), &j->exec_id, &j->inserted);
}

static int finish_work(tg_db *db, void *arg)
{
  tool_job *j = arg;
  tg_run_lease l = wk_run_lease(j->c->r);
  return tg_store_runs_tool_finish(db, &l, j->c->exec_id, &j->tr, tg_now_ms(), &j->changes);
}

static void finish_done(void *arg, int status)
{
  tool_job *j = arg;
  wk_tool_call *c = j->c;
  c->job = 0;
  if (status == 0 && !j->changes)
    c->o.lost = 1;
  job_free(j);
  deliver(c);
}

/* Completes the row with what c->o says, then delivers. */
static void complete(wk_tool_call *c)
{
  tool_job *j = calloc(1, sizeof *j);
  uint64_t now;
  if (!j) {
    deliver(c);
    return;
  }
  uv_update_time(c->r->w->loop);
  now = uv_now(c->r->w->loop);
  j->c = c;
  j->response = c->o.content ? wk_secrets_redact(c->r, c->o.content) : NULL;
  j->tr = (tg_tool_result){.status = c->o.unknown    ? "unknown"
                                     : c->o.is_error ? "failed"
                                                     : "success",
                           .response = j->response,
                           .error = c->o.error[0] ? c->o.error : NULL,
                           .error_class = c->o.error_class,
                           .duration_ms = (int64_t)(now - c->started_ms)};
  c->job = 1;
  if (tg_dbq_submit(c->r->w->dbq, finish_work, finish_done, j) != 0) {
    c->job = 0;
    job_free(j);
    deliver(c);
  }
}

static void start_done(void *arg, int status)
{
  tool_job *j = arg;
  wk_tool_call *c = j->c;
  c->job = 0;
  c->exec_id = j->exec_id;
  if (status == 0 && !j->inserted)
    c->o.lost = 1;
  else if (status != 0)
    set_error(c, "internal", "cannot record the tool execution: %s", tg_strerror(status));
  job_free(j);
  if (c->o.lost || c->o.is_error || wk_run_stopping(c->r)) {
    c->o.lost |= wk_run_stopping(c->r);
    deliver(c);
    return;
  }
  uv_update_time(c->r->w->loop);
  c->started_ms = uv_now(c->r->w->loop);
  if (c->stop) {
    set_error(c, "timeout", "the node was interrupted before the tool ran");
    complete(c);
    return;
  }
  run_local(c);
}

static void on_sandbox_done(void *arg, tg_sandbox_result *res)
{
  wk_tool_call *c = arg;
  json_t *out;
  c->sb = NULL;
  out = json_pack("{s:s, s:s, s:i}", "stdout", res->stdout_text ? res->stdout_text : "", "stderr",
                  res->stderr_text ? res->stderr_text : "", "exit_code", res->exit_status);
  if (out && res->result && json_object_size(res->result))
    json_object_set(out, "result", res->result);
  if (res->error_class) {
    set_error(c, res->error_class, "%s", res->message);
    if (out)
      json_object_set_new(c->o.content, "output", out);
  } else {
    c->o.content = out;
    if (!out)
      set_error(c, "internal", "out of memory");
  }
  complete(c);
}

static void run_code(wk_tool_call *c)
{
  const tg_config *cfg = &c->r->w->cfg;
  json_int_t ms = json_integer_value(json_object_get(c->args, "timeout_ms"));
  tg_sandbox_job job = {.language = str(c->args, "language") ? str(c->args, "language") : "python",
                        .code = str(c->args, "code")};
  int rc;
  if (ms > 0 && (ms + 999) / 1000 < cfg->code_timeout_s)
    job.timeout_s = (ms + 999) / 1000;
  if (!job.code) {
    set_error(c, "invalid_arguments", "code_execution needs a code string");
  } else if ((rc = tg_sandbox_pool_run(c->r->w->sandbox, &job, on_sandbox_done, c, &c->sb)) != 0) {
    set_error(c, rc == TG_EINVAL ? "invalid_arguments" : "internal", "code_execution: %s",
              tg_strerror(rc));
  } else {
    return;
  }
  complete(c);
}

static void run_local(wk_tool_call *c)
{
  double v = 0;
  switch (c->kind) {
  case RUN_CALC:
    if (wk_tool_calc(str(c->args, "expression"), &v, c->o.error, sizeof c->o.error) == 0)
      c->o.content = json_pack("{s:f}", "result", v);
    else
      set_error(c, "invalid_arguments", "calculator: %s", c->o.error);
    if (c->o.content && !c->o.is_error && v == floor(v) && fabs(v) < 9e15)
      json_object_set_new(c->o.content, "result", json_integer((json_int_t)v));
    break;
  case RUN_CODE:
    run_code(c);
    return;
  default:
    set_error(c, "tool_not_executable", "tool %s has no definition the worker can run", c->tool);
  }
  complete(c);
}

static void start_local(wk_tool_call *c)
{
  tool_job *j = calloc(1, sizeof *j);
  if (!j || !(j->arguments = wk_secrets_redact_args(c->r, c->args))) {
    free(j);
    set_error(c, "internal", "out of memory");
    deliver(c);
    return;
  }
  j->c = c;
  j->node_id = c->x->gn->id;
  j->tool = c->tool;
  j->tool_call_id = c->tool_call_id;
  c->job = 1;
  if (tg_dbq_submit(c->r->w->dbq, start_work, start_done, j) != 0) {
    c->job = 0;
    job_free(j);
    set_error(c, "internal", "cannot queue the tool execution");
    deliver(c);
  }
}

static run_kind kind_of(const wk_tool *t)
{
  const char *src = str(t->definition, "source"), *name = str(t->definition, "tool_name");
  if (strcmp(t->source, "builtin") == 0 && name)
    return strcmp(name, "calculator") == 0       ? RUN_CALC
           : strcmp(name, "code_execution") == 0 ? RUN_CODE
           : strcmp(name, "http_request") == 0   ? RUN_HTTP
                                                 : RUN_NONE;
  if (strcmp(t->source, "composio") == 0 && str(t->definition, "provider") && name)
    return RUN_SUB_MCP;
  if (t->connector_id && src && strcmp(src, "mcp") == 0 && name)
    return RUN_SUB_MCP;
  if (t->connector_id && src && strcmp(src, "api") == 0)
    return RUN_SUB_API;
  return RUN_NONE;
}

int wk_tool_call_start(wk_node_exec *x, const wk_tool *t, const char *tool_call_id,
                       const json_t *arguments, void (*done)(void *arg, wk_tool_outcome *o),
                       void *arg, wk_tool_call **out)
{
  wk_tool_call *c;
  if (!x || !t || !done || (arguments && !json_is_object(arguments)))
    return TG_EINVAL;
  if (!(c = calloc(1, sizeof *c)))
    return TG_ENOMEM;
  c->x = x;
  c->r = x->r;
  c->kind = kind_of(t);
  c->done = done;
  c->arg = arg;
  c->tool = strdup(t->catalog_name);
  c->tool_call_id = tool_call_id ? strdup(tool_call_id) : NULL;
  c->args = arguments ? json_deep_copy(arguments) : json_object();
  if (!c->tool || (tool_call_id && !c->tool_call_id) || !c->args) {
    json_decref(c->args);
    free(c->tool);
    free(c->tool_call_id);
    free(c);
    return TG_ENOMEM;
  }
  uv_timer_init(c->r->w->loop, &c->defer);
  c->defer.data = c;
  if (out)
    *out = c;
  c->in_start = 1;
  if (c->kind == RUN_CALC || c->kind == RUN_CODE || c->kind == RUN_NONE)
    start_local(c);
  else
    start_sub(c, t);
  if (c->decided)
    uv_timer_start(&c->defer, on_defer, 0, 0);
  else
    c->in_start = 0;
  return 0;
}

void wk_tool_call_cancel(wk_tool_call *c, int why)
{
  if (!c || c->decided || c->stop)
    return;
  c->stop = why;
  if (c->sub_running) {
    wk_node_ops const *ops = c->kind == RUN_SUB_MCP ? &wk_node_mcp_ops : &wk_node_api_ops;
    ops->cancel(&c->sub, why); /* on_sub_done follows */
  } else if (c->sb) {
    tg_sandbox_cancel(c->sb);
    c->sb = NULL;
    set_error(c, "timeout", "the node was interrupted while the code ran");
    complete(c);
  }
  /* else a job is in flight: start_done sees c->stop; finish_done delivers */
}
