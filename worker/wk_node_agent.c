/*
 * wk_node_agent: the Agent node's executor (wk_node.h; README "Agent nodes").
 *
 * Config {prompt, model{provider, modelName, baseUrl?, credential?}, tools, maxIterations
 * (default 10, at most 50), temperature, outputSchema?, max_tokens?}. One execution:
 *   1. a dbq job resolves config.tools against the user's catalog (wk_tools_resolve; a name
 *      that resolves to nothing fails the node with tool_not_found naming it), opens the named
 *      model credential when there is one, and after a crash (prior_status) counts the node's
 *      tool executions an earlier attempt left pending or unknown;
 *   2. the loop: a model request (tg_llm_send) with the tools; when the reply asks for tool
 *      calls, they all start at once (wk_tool_call_start), and once every one has answered the
 *      assistant message and one tool message per call (in the calls' order) join the
 *      transcript and the model is asked again; maxIterations requests that still end in tool
 *      calls fail the node with max_iterations;
 *   3. the final answer: output {text} plus the keys of the structured answer, or of a final
 *      text that is a JSON object. When the graph needs variables from this node
 *      (tg_graph_agent_schema) or config.outputSchema is set, the answer must meet that schema:
 *      without tools it is asked as structured output from the first request on; with tools
 *      (a forced structured_output tool would leave the model no other tool) the free final
 *      answer is accepted when it meets the schema, else one more request forces structured
 *      output. An answer that fails validation is asked again once, with the validation error
 *      as a user message; then the node fails with invalid_model_output.
 *
 * The system prompt is config.prompt, then "Run variables (JSON):" and the run's bare variables
 * ({inputs, vars} of the scope, secret inputs redacted, capped at 16 KiB); the transcript opens
 * with the user message "Begin.". Endpoint, client and key follow wk_model.h's rule (the one of
 * Self-Review nodes too): a named credential's key lives in this struct only (wiped when the
 * node ends) and in the request headers tg_llm builds.
 *
 * Tokens: every model request's usage (failed ones included) is summed into the result.
 * Model failures keep tg_llm's error class (rate_limited, model_overloaded, model_error,
 * model_auth, invalid_model_output, timeout). A tool's failure is a result the model sees; a
 * lost lease (LOST) or a tool call whose effects are unknown (UNKNOWN, outcome_unknown) stops
 * the node. After a crash the node runs again from the start unless a tool other than the
 * calculator was left in doubt (then UNKNOWN). Cancel (deadline, shutdown) cancels the model
 * request and every tool call; the node reports once they have all answered.
 */
#include "wk_model.h"
#include "wk_node.h"
#include "wk_tool.h"

#include "tg_err.h"
#include "tg_graph_vars.h"
#include "tg_llm.h"
#include "tg_json.h"
#include "tg_log.h"

#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_ITERATIONS 10
#define MAX_ITERATIONS 50
#define MAX_VARS_TEXT (16u << 10)   /* bytes of run variables in the system prompt */
#define MAX_RESULT_TEXT (32u << 10) /* bytes of one tool result given to the model */

typedef struct agent agent;

typedef struct call_slot {
  agent *a;
  wk_tool_call *h; /* in flight, or NULL */
  json_t *call;    /* {id, name, arguments} from the reply */
  json_t *message; /* the tool message once answered */
  int answered;
} call_slot;

struct agent {
  wk_node_exec *x;
  wk_run *r;
  const json_t *model;    /* x->config.model, borrowed */
  const char *credential; /* borrowed from x->config */
  char *api_key;          /* the credential's, plaintext, or NULL: wiped in agent_free */
  char *system;
  double temperature;
  int max_tokens, max_iter, iter;
  json_t *schema;      /* the structured answer asked, or NULL */
  int forcing;         /* the request in flight forces structured output */
  int retried;         /* the validation retry was used */
  json_t *messages;    /* the transcript */
  json_t *model_tools; /* or NULL */
  wk_tool *tools;
  size_t ntools;
  tg_llm_call *llm;
  call_slot *slots;
  size_t nslots, left;
  int stop, in_cancel, lost, unknown;
  char unknown_error[512];
  int64_t in_tok, out_tok;
};

static void ask_model(agent *a);

static void agent_free(agent *a)
{
  size_t i;
  wk_model_key_free(a->api_key);
  for (i = 0; i < a->nslots; i++) {
    json_decref(a->slots[i].call);
    json_decref(a->slots[i].message);
  }
  free(a->slots);
  free(a->system);
  json_decref(a->schema);
  json_decref(a->messages);
  json_decref(a->model_tools);
  wk_tools_free(a->tools, a->ntools);
  free(a);
}

static void finish(agent *a, wk_node_result *res)
{
  wk_node_exec *x = a->x;
  res->input_tokens = a->in_tok;
  res->output_tokens = a->out_tok;
  x->priv = NULL;
  agent_free(a);
  x->done(x, res);
}

static void fail(agent *a, wk_node_status st, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(agent *a, wk_node_status st, const char *cls, const char *fmt, ...)
{
  wk_node_result res = {.status = st, .error_class = cls};
  va_list ap;
  char *red;
  va_start(ap, fmt);
  vsnprintf(res.error, sizeof res.error, fmt, ap);
  va_end(ap);
  if (a->r->secrets && (red = wk_secrets_redact_text(a->r, res.error)) != NULL) {
    snprintf(res.error, sizeof res.error, "%s", red);
    free(red);
  }
  finish(a, &res);
}

/* The node was interrupted and nothing is in flight any more: report. */
static void finish_stopped(agent *a)
{
  if (a->lost || a->stop == WK_STOP_SHUTDOWN || wk_run_stopping(a->r))
    finish(a, &(wk_node_result){.status = WK_NODE_LOST});
  else if (a->unknown)
    fail(a, WK_NODE_UNKNOWN, "outcome_unknown", "%s", a->unknown_error);
  else
    fail(a, WK_NODE_FAILED, "timeout", "node %s: run deadline of %lld ms passed", a->x->gn->id,
         (long long)a->r->w->cfg.run_deadline_ms);
}

/* ---------------------------------------------------------------- validation */

static int type_is(const char *type, const json_t *v)
{
  if (strcmp(type, "object") == 0)
    return json_is_object(v);
  if (strcmp(type, "array") == 0)
    return json_is_array(v);
  if (strcmp(type, "string") == 0)
    return json_is_string(v);
  if (strcmp(type, "integer") == 0)
    return json_is_integer(v) ||
           (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
  if (strcmp(type, "number") == 0)
    return json_is_number(v);
  if (strcmp(type, "boolean") == 0)
    return json_is_boolean(v);
  if (strcmp(type, "null") == 0)
    return json_is_null(v);
  return 1; /* a type we do not check */
}

/*
 * The small part of JSON Schema the node checks: type (a name or an array of names), enum,
 * required, properties (recursively). 0, or -1 with what failed in err, naming the path.
 */
static int validate(const json_t *schema, const json_t *v, const char *path, char *err,
                    size_t errlen)
{
  const json_t *type = json_object_get(schema, "type"), *e, *props;
  const char *k;
  size_t i;
  int ok = 1;
  if (json_is_string(type)) {
    ok = type_is(json_string_value(type), v);
  } else if (json_is_array(type)) {
    ok = 0;
    json_array_foreach(type, i, e) ok |= json_is_string(e) && type_is(json_string_value(e), v);
  }
  if (!ok) {
    snprintf(err, errlen, "%s: expected type %s", *path ? path : "the answer",
             json_is_string(type) ? json_string_value(type) : "(one of the listed types)");
    return -1;
  }
  if (json_is_array(json_object_get(schema, "enum"))) {
    ok = 0;
    json_array_foreach(json_object_get(schema, "enum"), i, e) ok |= json_equal(e, v);
    if (!ok) {
      snprintf(err, errlen, "%s: not one of the allowed values", *path ? path : "the answer");
      return -1;
    }
  }
  if (!json_is_object(v))
    return 0;
  json_array_foreach(json_object_get(schema, "required"), i, e)
  {
    if (json_is_string(e) && !json_object_get(v, json_string_value(e))) {
      snprintf(err, errlen, "%s%s%s: required and missing", path, *path ? "." : "",
               json_string_value(e));
      return -1;
    }
  }
  props = json_object_get(schema, "properties");
  json_object_foreach((json_t *)props, k, e)
  {
    char sub[256];
    const json_t *val = json_object_get(v, k);
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
    if (val && json_is_object(e) && validate(e, val, sub, err, errlen))
      return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- the final answer */

static void finish_answer(agent *a, const char *text, json_t *answer)
{
  wk_node_result res = {.status = WK_NODE_SUCCESS};
  json_t *out = json_pack("{s:s}", "text", text);
  const char *k;
  json_t *v;
  if (!out) {
    fail(a, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  json_object_foreach(answer, k, v)
  {
    if (strcmp(k, "text") != 0)
      json_object_set(out, k, v);
  }
  res.output = out;
  finish(a, &res);
}

/* Adds the assistant's text to the transcript and a user message; then asks again. */
static void ask_again(agent *a, const char *text, const char *user)
{
  json_array_append_new(a->messages, json_pack("{s:s, s:s}", "role", "assistant", "content", text));
  json_array_append_new(a->messages, json_pack("{s:s, s:s}", "role", "user", "content", user));
  ask_model(a);
}

static void on_final(agent *a, tg_llm_reply *reply)
{
  json_t *answer = reply->structured ? json_incref(reply->structured)
                                     : json_loads(reply->text, JSON_DECODE_ANY, NULL);
  char err[400] = "", msg[600];
  if (!json_is_object(answer)) {
    json_decref(answer);
    answer = NULL;
  }
  if (!a->schema) {
    finish_answer(a, reply->text, answer);
    json_decref(answer);
    return;
  }
  if (answer && validate(a->schema, answer, "", err, sizeof err) == 0) {
    finish_answer(a, reply->text, answer);
    json_decref(answer);
    return;
  }
  json_decref(answer);
  if (!err[0])
    snprintf(err, sizeof err, "the answer is not a JSON object");
  if (!a->forcing) { /* tools were offered: now force the structured answer */
    a->forcing = 1;
    ask_again(a, reply->text[0] ? reply->text : "(no text)",
              "Give your final answer as the structured output.");
    return;
  }
  if (a->retried) {
    fail(a, WK_NODE_FAILED, "invalid_model_output",
         "node %s: the model's structured answer is invalid: %s", a->x->gn->id, err);
    return;
  }
  a->retried = 1;
  snprintf(msg, sizeof msg,
           "Your answer does not meet the output schema: %s. Answer again with a valid object.",
           err);
  ask_again(a, reply->text[0] ? reply->text : "(no text)", msg);
}

/* ---------------------------------------------------------------- tool calls */

static const wk_tool *tool_named(agent *a, const char *name)
{
  size_t i;
  for (i = 0; name && i < a->ntools; i++)
    if (strcmp(a->tools[i].name, name) == 0)
      return &a->tools[i];
  return NULL;
}

static json_t *tool_message(const json_t *call, const json_t *content, int is_error)
{
  char *text = json_is_string(content)
                   ? strdup(json_string_value(content))
                   : json_dumps(content ? content : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
  json_t *m;
  if (!text)
    return NULL;
  if (strlen(text) > MAX_RESULT_TEXT) /* cut at a character: the message is a JSON string */
    memcpy(text + tg_json_utf8_cut(text, MAX_RESULT_TEXT - 16), " ...(truncated)", 16);
  m = json_pack("{s:s, s:O, s:O, s:s, s:b}", "role", "tool", "tool_call_id",
                json_object_get(call, "id"), "name", json_object_get(call, "name"), "content", text,
                "is_error", is_error);
  free(text);
  return m;
}

/* Every call answered: append the messages and ask the model again (or stop). */
static void calls_answered(agent *a)
{
  size_t i;
  if (a->stop || a->lost || a->unknown || wk_run_stopping(a->r)) {
    if (a->stop)
      finish_stopped(a);
    else if (a->lost || wk_run_stopping(a->r))
      finish(a, &(wk_node_result){.status = WK_NODE_LOST});
    else
      fail(a, WK_NODE_UNKNOWN, "outcome_unknown", "%s", a->unknown_error);
    return;
  }
  for (i = 0; i < a->nslots; i++) {
    json_array_append(a->messages, a->slots[i].message);
    json_decref(a->slots[i].call);
    json_decref(a->slots[i].message);
  }
  free(a->slots);
  a->slots = NULL;
  a->nslots = 0;
  ask_model(a);
}

static void on_tool_done(void *arg, wk_tool_outcome *o)
{
  call_slot *s = arg;
  agent *a = s->a;
  s->h = NULL;
  s->answered = 1;
  a->left--;
  if (o->lost)
    a->lost = 1;
  if (o->unknown && !a->unknown) {
    a->unknown = 1;
    snprintf(a->unknown_error, sizeof a->unknown_error,
             "node %.64s: tool call %.64s (%.64s) may have run without an answer: %.200s",
             a->x->gn->id, json_string_value(json_object_get(s->call, "id")),
             json_string_value(json_object_get(s->call, "name")), o->error);
  }
  s->message = tool_message(s->call, o->content, o->is_error || o->unknown);
  if (!s->message && !a->lost)
    a->lost = 1; /* out of memory: stop without writing more */
  if (a->left == 0 && !a->in_cancel)
    calls_answered(a);
}

static void start_calls(agent *a, const json_t *calls)
{
  size_t i, n = json_array_size(calls);
  const json_t *call;
  if (!(a->slots = calloc(n, sizeof *a->slots))) {
    fail(a, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  a->nslots = n;
  a->left = n;
  json_array_foreach(calls, i, call)
  {
    a->slots[i].a = a;
    a->slots[i].call = json_incref((json_t *)call);
  }
  a->in_cancel = 1; /* a call answering at once must not move the loop on before all started */
  for (i = 0; i < n; i++) {
    call_slot *s = &a->slots[i];
    const char *name = json_string_value(json_object_get(s->call, "name"));
    const wk_tool *t = tool_named(a, name);
    int rc = TG_ENOTFOUND;
    if (t)
      rc = wk_tool_call_start(a->x, t, json_string_value(json_object_get(s->call, "id")),
                              json_object_get(s->call, "arguments"), on_tool_done, s, &s->h);
    if (rc) {
      json_t *err = json_pack("{s:s, s:s+}", "error", t ? "invalid_arguments" : "tool_not_found",
                              "message", t ? "cannot call the tool: " : "no tool named ",
                              t ? tg_strerror(rc) : (name ? name : "(none)"));
      wk_tool_outcome o = {.content = err, .is_error = 1};
      on_tool_done(s, &o);
      json_decref(err);
    }
  }
  a->in_cancel = 0;
  if (a->left == 0)
    calls_answered(a);
}

/* ---------------------------------------------------------------- the model */

static void on_model_done(void *arg, int err, const char *error_class, const char *message,
                          tg_llm_reply **replyp)
{
  agent *a = arg;
  tg_llm_reply *reply = replyp ? *replyp : NULL;
  a->llm = NULL;
  if (reply) {
    a->in_tok += reply->input_tokens;
    a->out_tok += reply->output_tokens;
  }
  if (wk_run_stopping(a->r)) {
    finish(a, &(wk_node_result){.status = WK_NODE_LOST});
    return;
  }
  if (err) {
    fail(a, WK_NODE_FAILED, error_class ? error_class : "model_error", "node %s: model: %s",
         a->x->gn->id, message ? message : tg_strerror(err));
    return;
  }
  if (json_array_size(reply->tool_calls) && !a->forcing) {
    json_t *msg;
    if (a->iter >= a->max_iter) {
      fail(a, WK_NODE_FAILED, "max_iterations",
           "node %s: the model still asked for tools after %d iterations", a->x->gn->id,
           a->max_iter);
      return;
    }
    msg = json_pack("{s:s, s:s?, s:O}", "role", "assistant", "content",
                    reply->text[0] ? reply->text : NULL, "tool_calls", reply->tool_calls);
    if (!msg || json_array_append_new(a->messages, msg)) {
      fail(a, WK_NODE_FAILED, "internal", "out of memory");
      return;
    }
    start_calls(a, reply->tool_calls);
    return;
  }
  on_final(a, reply);
}

static void ask_model(agent *a)
{
  wk_worker *w = a->r->w;
  tg_llm_request req = {.system = a->system,
                        .messages = a->messages,
                        .tools = a->forcing ? NULL : a->model_tools,
                        .output_schema = a->forcing ? a->schema : NULL,
                        .temperature = a->temperature,
                        .max_tokens = a->max_tokens,
                        .retry_base_ms = (long)w->cfg.retry_base_ms,
                        .deadline_ms = a->r->deadline_ms};
  tg_http_client *http;
  char why[256];
  int rc;
  if (a->stop) {
    finish_stopped(a);
    return;
  }
  if (wk_model_endpoint(w, a->model, a->api_key, &req, &http, why, sizeof why) != 0) {
    fail(a, WK_NODE_FAILED, "invalid_config", "node %s: %s", a->x->gn->id, why);
    return;
  }
  if (!a->forcing)
    a->iter++;
  if ((rc = tg_llm_send(http, &req, on_model_done, a, &a->llm)) != 0)
    fail(a, WK_NODE_FAILED, "internal", "node %s: cannot send the model request: %s", a->x->gn->id,
         tg_strerror(rc));
}

/* ---------------------------------------------------------------- set-up */

/* The system prompt: config.prompt, then the run's bare variables as JSON (redacted, capped). */
static char *system_prompt(agent *a)
{
  const json_t *scope = a->x->scope;
  json_t *vars = json_pack("{s:O?, s:O?}", "inputs", json_object_get(scope, "inputs"), "vars",
                           json_object_get(scope, "vars"));
  json_t *red = vars ? wk_secrets_redact(a->r, vars) : NULL;
  char *text = red ? json_dumps(red, JSON_COMPACT | JSON_SORT_KEYS) : NULL, *out = NULL;
  const char *prompt = json_string_value(json_object_get(a->x->config, "prompt"));
  size_t n;
  json_decref(vars);
  json_decref(red);
  if (!text)
    return NULL;
  n = strlen(text);
  if (n > MAX_VARS_TEXT)
    n = tg_json_utf8_cut(text, MAX_VARS_TEXT); /* the system prompt is a JSON string */
  if (!prompt)
    prompt = "";
  if ((out = malloc(strlen(prompt) + n + 64)) != NULL)
    snprintf(out, strlen(prompt) + n + 64, "%s\n\nRun variables (JSON):\n%.*s%s", prompt, (int)n,
             text, n < strlen(text) ? " ...(truncated)" : "");
  free(text);
  return out;
}

static json_t *wanted_schema(agent *a)
{
  const json_t *own = json_object_get(a->x->config, "outputSchema");
  size_t i;
  if (a->r->graph && (i = tg_graph_find(a->r->graph, a->x->gn->id)) != (size_t)-1)
    return tg_graph_agent_schema(a->r->graph, i, NULL);
  return json_is_object(own) ? json_deep_copy(own) : NULL;
}

static void begin(agent *a)
{
  json_t *user = json_pack("[{s:s, s:s}]", "role", "user", "content", "Begin.");
  a->messages = user;
  a->system = system_prompt(a);
  a->schema = wanted_schema(a);
  a->model_tools = a->ntools ? wk_tools_for_model(a->tools, a->ntools) : NULL;
  if (!a->messages || !a->system || (a->ntools && !a->model_tools)) {
    fail(a, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  a->forcing = a->schema && !a->ntools; /* with tools, structured output comes at the end */
  ask_model(a);
}

typedef struct setup_job {
  agent *a;
  const char *user, *node_id, *run_id, *credential;
  const json_t *names;
  const tg_crypto *crypto;
  int64_t attempt;
  int prior, in_doubt;
  wk_tool *tools;
  size_t ntools;
  char missing[256];
  int resolve_rc;
  char *key;
  int key_rc; /* wk_model_credential_key's answer: 0, TG_ENOTFOUND, TG_EINVAL */
} setup_job;

static int setup_work(tg_db *db, void *arg)
{
  setup_job *j = arg;
  int rc;
  if (j->prior && (rc = tg_store_runs_tools_in_doubt(db, j->run_id, j->attempt, j->node_id,
                                                     "calculator", &j->in_doubt)) != 0)
    return rc;
  j->resolve_rc =
      wk_tools_resolve(db, j->user, j->names, &j->tools, &j->ntools, j->missing, sizeof j->missing);
  if (j->resolve_rc && j->resolve_rc != TG_ENOTFOUND && j->resolve_rc != TG_EINVAL)
    return j->resolve_rc;
  if (j->credential) {
    j->key_rc = wk_model_credential_key(db, j->crypto, j->user, j->credential, &j->key);
    if (j->key_rc && j->key_rc != TG_ENOTFOUND && j->key_rc != TG_EINVAL)
      return j->key_rc;
  }
  return 0;
}

static void setup_done(void *arg, int status)
{
  setup_job *j = arg;
  agent *a = j->a;
  a->tools = j->tools;
  a->ntools = j->ntools;
  a->api_key = j->key;
  if (a->stop) {
    finish_stopped(a);
  } else if (status) {
    fail(a, WK_NODE_FAILED, status == TG_ESTATE ? "credential_missing" : "internal",
         "node %s: cannot prepare the agent: %s", a->x->gn->id, tg_strerror(status));
  } else if (j->in_doubt) {
    fail(a, WK_NODE_UNKNOWN, "outcome_unknown",
         "node %s: %d tool call(s) of an earlier attempt may have run without an answer",
         a->x->gn->id, j->in_doubt);
  } else if (j->resolve_rc == TG_ENOTFOUND) {
    fail(a, WK_NODE_FAILED, "tool_not_found", "node %s: tool \"%s\" is not in the catalog",
         a->x->gn->id, j->missing);
  } else if (j->resolve_rc) {
    fail(a, WK_NODE_FAILED, "invalid_config", "node %s: config.tools must be tool names",
         a->x->gn->id);
  } else if (j->key_rc == TG_ENOTFOUND) {
    fail(a, WK_NODE_FAILED, "credential_missing", "node %s: no credential named \"%s\"",
         a->x->gn->id, a->credential);
  } else if (j->key_rc == TG_EINVAL) {
    fail(a, WK_NODE_FAILED, "credential_missing",
         "node %s: credential %s has no token or value to use as the API key", a->x->gn->id,
         a->credential);
  } else {
    begin(a);
  }
  free(j);
}

/* The loop's settings from the config (the endpoint is wk_model_endpoint's, per request). */
static void read_config(agent *a)
{
  const json_t *cfg = a->x->config;
  json_int_t it = json_integer_value(json_object_get(cfg, "maxIterations"));
  const json_t *temp = json_object_get(cfg, "temperature");
  a->model = json_object_get(cfg, "model");
  a->credential = json_string_value(json_object_get(a->model, "credential"));
  a->max_iter = it > 0 ? (it > MAX_ITERATIONS ? MAX_ITERATIONS : (int)it) : DEFAULT_ITERATIONS;
  a->temperature = json_is_number(temp) ? json_number_value(temp) : -1;
  a->max_tokens = (int)json_integer_value(json_object_get(cfg, "max_tokens"));
}

static void start(wk_node_exec *x)
{
  agent *a = calloc(1, sizeof *a);
  setup_job *j;
  const json_t *names = json_object_get(x->config, "tools");
  if (!a) {
    wk_node_result res = {.status = WK_NODE_FAILED, .error_class = "internal"};
    snprintf(res.error, sizeof res.error, "out of memory");
    x->done(x, &res);
    return;
  }
  a->x = x;
  a->r = x->r;
  x->priv = a;
  read_config(a);
  if (!(j = calloc(1, sizeof *j))) {
    fail(a, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  *j = (setup_job){.a = a,
                   .user = a->r->user_id,
                   .node_id = x->gn->id,
                   .run_id = a->r->id,
                   .credential = a->credential,
                   .names = json_is_array(names) ? names : NULL,
                   .crypto = a->r->w->crypto,
                   .attempt = a->r->attempt,
                   .prior = x->prior_status != NULL};
  if (tg_dbq_submit(a->r->w->dbq, setup_work, setup_done, j) != 0) {
    free(j);
    fail(a, WK_NODE_FAILED, "internal", "node %s: cannot queue the agent's set-up", x->gn->id);
  }
}

static void cancel(wk_node_exec *x, int why)
{
  agent *a = x->priv;
  size_t i;
  if (!a || a->stop)
    return;
  a->stop = why;
  if (a->llm) {
    tg_llm_cancel(a->llm); /* its callback never runs */
    a->llm = NULL;
    finish_stopped(a);
    return;
  }
  if (!a->left)
    return; /* the set-up job is in flight: setup_done sees a->stop */
  a->in_cancel = 1;
  for (i = 0; i < a->nslots; i++)
    if (a->slots[i].h)
      wk_tool_call_cancel(a->slots[i].h, why);
  a->in_cancel = 0;
  if (a->left == 0)
    calls_answered(a);
}

const wk_node_ops wk_node_agent_ops = {
    .type = TG_NODE_AGENT, .effectful = 1, .start = start, .cancel = cancel};
