/*
 * wk_node_self_review: the Self-Review node (README "Self-Review nodes"): a model judges an
 * earlier node's output and the node passes or fails on its verdict.
 *
 * Config (rendered by the engine): {reviewPrompt, minConfidence 0..1, target?, onFail?
 * "fail"|"continue", model?}. What is judged: config.target's output, else the output of the
 * node's predecessor that ran (the first in connection order when several did, as after a
 * join). The model: config.model, else the nearest Agent before the node (breadth-first over
 * predecessors), else anthropic with DEFAULT_MODEL; its endpoint and key as wk_model.h says.
 *
 * One model call (tg_llm) with the reviewPrompt as the system prompt, the judged output as the
 * user message, and structured output forced to the verdict schema {passed: boolean,
 * confidence: number 0..1, issues: [string]}. An answer that is not a valid verdict (or that
 * tg_llm calls invalid_model_output) is asked again once, with the validation error; a second
 * one fails the node with invalid_model_output. Then: passed and confidence >= minConfidence ->
 * SUCCESS; else FAILED review_failed with the issues in the error, unless onFail is "continue"
 * (SUCCESS). The output, either way, is the verdict. Tokens of every attempt are reported.
 *
 * A model call has no effect outside the worker, so an execution interrupted before (prior
 * status pending or unknown) simply runs again; cancel stops the call and reports timeout.
 */
#include "wk_model.h"
#include "wk_node.h"

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_json.h"
#include "tg_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MODEL "claude-sonnet-4-5"
#define MAX_JUDGED_BYTES (256u << 10) /* the judged output, as JSON text, sent at most */
#define ISSUES_TEXT_MAX 400           /* bytes of issues quoted in a review_failed error */

static const char VERDICT_SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"passed\":{\"type\":\"boolean\",\"description\":\"true when the output meets the review\"},"
    "\"confidence\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1,\"description\":\"how sure "
    "you are of the verdict, 0 to 1\"},"
    "\"issues\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"description\":\"each problem "
    "found, one sentence each; empty when none\"}},"
    "\"required\":[\"passed\",\"confidence\",\"issues\"]}";

static const char INSTRUCTIONS[] =
    "\n\nYou are reviewing the output of an earlier step of an automated workflow. Judge it "
    "against the review criteria above and answer with the verdict object only: passed, your "
    "confidence from 0 to 1, and the issues you found.";

typedef struct review {
  wk_node_exec *x;
  json_t *model;    /* config.model or the default (owned) */
  json_t *messages; /* the transcript (owned) */
  json_t *schema;   /* VERDICT_SCHEMA parsed */
  char *system;
  char *key; /* the credential's key, or NULL (wiped) */
  tg_llm_call *call;
  int attempt;
  int canceled;
  int64_t in, out;
} review;

static void review_free(review *rv)
{
  if (!rv)
    return;
  json_decref(rv->model);
  json_decref(rv->messages);
  json_decref(rv->schema);
  free(rv->system);
  wk_model_key_free(rv->key);
  free(rv);
}

/* Reports res (tokens added) and frees rv. */
static void finish(review *rv, wk_node_result *res)
{
  wk_node_exec *x = rv->x;
  res->input_tokens = rv->in;
  res->output_tokens = rv->out;
  x->priv = NULL;
  review_free(rv);
  x->done(x, res);
}

/* Drops a character cut short at the end of s (a snprintf cut at a byte count), so that the
 * text stays valid UTF-8: the journal's error, the model's messages and the run's answer are
 * JSON strings, and jansson refuses one that is not. */
static void utf8_trim(char *s)
{
  s[tg_json_utf8_cut(s, strlen(s))] = '\0';
}

static void fail(review *rv, const char *error_class, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(review *rv, const char *error_class, const char *fmt, ...)
{
  wk_node_result res = {.status = WK_NODE_FAILED, .error_class = error_class};
  char msg[sizeof res.error], *red;
  int n = snprintf(msg, sizeof msg, "Self-Review node %s: ", rv->x->gn->id);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  utf8_trim(msg);
  red = wk_secrets_redact_text(rv->x->r, msg);
  snprintf(res.error, sizeof res.error, "%s", red ? red : msg);
  utf8_trim(res.error);
  free(red);
  finish(rv, &res);
}

/* ---- what is judged, by which model ---- */

static const tg_graph_node *node_by_id(const wk_node_exec *x, const char *id)
{
  size_t k = tg_graph_find(x->r->graph, id);
  return k == (size_t)-1 ? NULL : tg_graph_node_at(x->r->graph, k);
}

/* The node judged: config.target, else the first predecessor with an output in the scope. */
static const tg_graph_node *judged_node(const wk_node_exec *x)
{
  const json_t *t = json_object_get(x->config, "target");
  const json_t *outputs = json_object_get(x->scope, "nodes");
  char id[64];
  if (json_is_string(t))
    return node_by_id(x, json_string_value(t));
  if (json_is_integer(t)) {
    snprintf(id, sizeof id, "%" JSON_INTEGER_FORMAT, json_integer_value(t));
    return node_by_id(x, id);
  }
  for (size_t i = 0; i < x->gn->npred; i++) {
    const tg_graph_node *p = tg_graph_node_at(x->r->graph, x->gn->pred[i]);
    if (json_object_get(outputs, p->id))
      return p;
  }
  return NULL;
}

/* config.model, else the nearest Agent's, else the default: a new object. */
static json_t *review_model(const wk_node_exec *x)
{
  const tg_graph *g = x->r->graph;
  const json_t *m = json_object_get(x->config, "model");
  size_t n = tg_graph_size(g), head = 0, tail = 0, *queue;
  char *seen;
  json_t *found = NULL;
  if (json_is_object(m))
    return json_deep_copy(m);
  queue = malloc(n * sizeof *queue);
  seen = calloc(n, 1);
  if (queue && seen) {
    queue[tail++] = tg_graph_find(g, x->gn->id);
    while (head < tail && !found) {
      const tg_graph_node *gn = tg_graph_node_at(g, queue[head++]);
      for (size_t i = 0; i < gn->npred && !found; i++) {
        const tg_graph_node *p = tg_graph_node_at(g, gn->pred[i]);
        if (seen[gn->pred[i]])
          continue;
        seen[gn->pred[i]] = 1;
        queue[tail++] = gn->pred[i];
        if (p->type == TG_NODE_AGENT && json_is_object(json_object_get(p->config, "model")))
          found = json_deep_copy(json_object_get(p->config, "model"));
      }
    }
  }
  free(queue);
  free(seen);
  if (found)
    return found;
  return json_pack("{s:s, s:s}", "provider", "anthropic", "modelName", DEFAULT_MODEL);
}

/* ---- the verdict ---- */

/* 0 when v is a verdict, else a message saying why in why. */
static int check_verdict(const json_t *v, char *why, size_t len)
{
  const json_t *passed = json_object_get(v, "passed"), *conf = json_object_get(v, "confidence");
  const json_t *issues = json_object_get(v, "issues"), *s;
  size_t i;
  if (!json_is_object(v))
    return snprintf(why, len, "the verdict must be a JSON object"), -1;
  if (!json_is_boolean(passed))
    return snprintf(why, len, "\"passed\" must be a boolean"), -1;
  if (!json_is_number(conf) || !(json_number_value(conf) >= 0 && json_number_value(conf) <= 1))
    return snprintf(why, len, "\"confidence\" must be a number from 0 to 1"), -1;
  if (!json_is_array(issues))
    return snprintf(why, len, "\"issues\" must be an array of strings"), -1;
  json_array_foreach(issues, i, s)
  {
    if (!json_is_string(s))
      return snprintf(why, len, "\"issues\" must be an array of strings"), -1;
  }
  return 0;
}

static void decide(review *rv, const json_t *v)
{
  wk_node_exec *x = rv->x;
  const json_t *min = json_object_get(x->config, "minConfidence");
  const char *on_fail = json_string_value(json_object_get(x->config, "onFail"));
  double conf = json_number_value(json_object_get(v, "confidence"));
  int passed = json_is_true(json_object_get(v, "passed"));
  wk_node_result res = {.status = WK_NODE_SUCCESS};
  int ok = passed && (!json_is_number(min) || conf >= json_number_value(min));
  if (!ok && (!on_fail || strcmp(on_fail, "continue") != 0)) {
    char issues[ISSUES_TEXT_MAX + 1] = "";
    size_t i, used = 0;
    const json_t *s;
    json_array_foreach(json_object_get(v, "issues"), i, s)
    {
      int n = snprintf(issues + used, sizeof issues - used, "%s%s", i ? "; " : "",
                       json_string_value(s));
      if (n < 0 || (size_t)n >= sizeof issues - used)
        break; /* issues holds what fitted, the last one cut short (fail trims the end) */
      used += (size_t)n;
    }
    fail(rv, "review_failed", "%s with confidence %.2f (minimum %.2f); issues: %s",
         passed ? "passed" : "not passed", conf, json_number_value(min),
         issues[0] ? issues : "none");
    return;
  }
  if (!ok)
    tg_info("review_continued", "{s:s, s:s, s:b, s:f}", "run_id", x->r->id, "node_id", x->gn->id,
            "passed", passed, "confidence", conf);
  res.output = json_pack("{s:b, s:f, s:O}", "passed", passed, "confidence", conf, "issues",
                         json_object_get(v, "issues"));
  if (!res.output) {
    fail(rv, "internal", "out of memory");
    return;
  }
  finish(rv, &res);
}

/* ---- the model call ---- */

static int send_request(review *rv);

/* Asks again once after an invalid verdict: the bad answer, then what is wrong with it. */
static int ask_again(review *rv, const json_t *bad, const char *why)
{
  char *text = bad ? json_dumps(bad, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  char msg[640];
  int rc = 0;
  snprintf(msg, sizeof msg,
           "Your verdict was not valid: %s. Answer again with an object {passed: boolean, "
           "confidence: number from 0 to 1, issues: array of strings}.",
           why);
  if (json_array_append_new(rv->messages, json_pack("{s:s, s:s}", "role", "assistant", "content",
                                                    text ? text : "(no verdict)")) ||
      json_array_append_new(rv->messages, json_pack("{s:s, s:s}", "role", "user", "content", msg)))
    rc = TG_ENOMEM;
  free(text);
  return rc ? rc : send_request(rv);
}

static void on_reply(void *arg, int err, const char *error_class, const char *message,
                     tg_llm_reply **reply)
{
  review *rv = arg;
  tg_llm_reply *r = reply ? *reply : NULL;
  char why[256];
  rv->call = NULL;
  if (r) {
    rv->in += r->input_tokens;
    rv->out += r->output_tokens;
  }
  if (err != 0 && (!error_class || strcmp(error_class, "invalid_model_output") != 0)) {
    fail(rv, error_class ? error_class : "model_error", "%s", message ? message : "model error");
    return;
  }
  if (err != 0)
    snprintf(why, sizeof why, "%s", message ? message : "no verdict");
  else if (!r || !r->structured)
    snprintf(why, sizeof why, "no structured verdict in the answer");
  else if (check_verdict(r->structured, why, sizeof why) == 0) {
    decide(rv, r->structured);
    return;
  }
  if (rv->attempt >= 2) {
    fail(rv, "invalid_model_output", "the model's verdict is invalid after a retry: %s", why);
    return;
  }
  if ((err = ask_again(rv, r ? r->structured : NULL, why)) != 0)
    fail(rv, "internal", "cannot ask the model again: %s", tg_strerror(err));
}

static int send_request(review *rv)
{
  wk_node_exec *x = rv->x;
  tg_llm_request req = {0};
  tg_http_client *http;
  char why[256];
  int rc;
  if ((rc = wk_model_endpoint(x->r->w, rv->model, rv->key, &req, &http, why, sizeof why)) != 0) {
    fail(rv, "model_error", "%s", why);
    return 0; /* reported */
  }
  req.system = rv->system;
  req.messages = rv->messages;
  req.output_schema = rv->schema;
  req.temperature = 0;
  rv->attempt++;
  return tg_llm_send(http, &req, on_reply, rv, &rv->call);
}

/* ---- the credential job ---- */

typedef struct key_job {
  review *rv;
  const tg_crypto *crypto;
  char *user, *name;
  char *key;
} key_job;

static int key_work(tg_db *db, void *arg)
{
  key_job *j = arg;
  if (!j->crypto)
    return TG_ESTATE;
  return wk_model_credential_key(db, j->crypto, j->user, j->name, &j->key);
}

static void key_done(void *arg, int status)
{
  key_job *j = arg;
  review *rv = j->rv;
  int rc;
  rv->key = j->key;
  if (rv->canceled)
    fail(rv, "timeout", "interrupted while opening the model credential");
  else if (status == TG_ENOTFOUND)
    fail(rv, "credential_missing", "no credential named \"%s\"", j->name);
  else if (status == TG_EINVAL)
    fail(rv, "credential_missing", "credential \"%s\" has no token or value to use as the API key",
         j->name);
  else if (status != 0)
    fail(rv, status == TG_ESTATE ? "credential_missing" : "internal",
         "cannot open credential \"%s\": %s", j->name, tg_strerror(status));
  else if ((rc = send_request(rv)) != 0)
    fail(rv, "internal", "cannot send the model request: %s", tg_strerror(rc));
  free(j->user);
  free(j->name);
  free(j);
}

/* ---- the executor ---- */

/* a then b in a new string, or NULL when memory runs out. */
static char *concat(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 1);
  if (s) {
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
  }
  return s;
}

static char *judged_text(const wk_node_exec *x, const tg_graph_node *t)
{
  const json_t *out =
      json_object_get(json_object_get(json_object_get(x->scope, "nodes"), t->id), "output");
  json_t *red = wk_secrets_redact(x->r, out ? out : json_null());
  char *text = red ? json_dumps(red, JSON_INDENT(1) | JSON_ENCODE_ANY) : NULL;
  char name[201];
  tg_buf b;
  size_t len = text ? strlen(text) : 0;
  json_decref(red);
  if (!text)
    return NULL;
  if (len > MAX_JUDGED_BYTES) {
    text[MAX_JUDGED_BYTES] = '\0';
    utf8_trim(text);
  }
  snprintf(name, sizeof name, "%s", t->name);
  utf8_trim(name);
  tg_buf_init(&b, MAX_JUDGED_BYTES + 1024);
  if (tg_buf_printf(&b, "The output of step %s (\"%s\", a %s node)%s:\n\n", t->id, name,
                    tg_node_type_name(t->type), len > MAX_JUDGED_BYTES ? ", cut short" : "") ||
      tg_buf_addstr(&b, text)) {
    tg_buf_free(&b);
    free(text);
    return NULL;
  }
  free(text);
  return tg_buf_take(&b, NULL);
}

static void start(wk_node_exec *x)
{
  review *rv = calloc(1, sizeof *rv);
  const tg_graph_node *t;
  const char *prompt = json_string_value(json_object_get(x->config, "reviewPrompt"));
  const char *cred;
  char *user_msg = NULL;
  int rc;
  if (!rv) {
    wk_node_result res = {.status = WK_NODE_FAILED, .error_class = "internal"};
    snprintf(res.error, sizeof res.error, "Self-Review node %s: out of memory", x->gn->id);
    x->done(x, &res);
    return;
  }
  rv->x = x;
  x->priv = rv;
  if (!(t = judged_node(x)) || !json_object_get(json_object_get(x->scope, "nodes"), t->id)) {
    fail(rv, "internal", "there is no output to review (target %s did not run)",
         t ? t->id : "unknown");
    return;
  }
  rv->model = review_model(x);
  rv->schema = json_loads(VERDICT_SCHEMA, 0, NULL);
  user_msg = judged_text(x, t);
  rv->messages = user_msg ? json_pack("[{s:s, s:s}]", "role", "user", "content", user_msg) : NULL;
  free(user_msg);
  rv->system = concat(prompt ? prompt : "", INSTRUCTIONS);
  if (!rv->model || !rv->schema || !rv->messages || !rv->system) {
    fail(rv, "internal", "out of memory");
    return;
  }
  cred = json_string_value(json_object_get(rv->model, "credential"));
  if (cred) {
    key_job *j = calloc(1, sizeof *j);
    if (j) {
      j->rv = rv;
      j->crypto = x->r->w->crypto;
      j->user = strdup(x->r->user_id);
      j->name = strdup(cred);
    }
    if (!j || !j->user || !j->name || tg_dbq_submit(x->r->w->dbq, key_work, key_done, j) != 0) {
      if (j) {
        free(j->user);
        free(j->name);
      }
      free(j);
      fail(rv, "internal", "cannot queue the credential's load");
    }
    return;
  }
  if ((rc = send_request(rv)) != 0)
    fail(rv, "internal", "cannot send the model request: %s", tg_strerror(rc));
}

static void cancel(wk_node_exec *x, int why)
{
  review *rv = x->priv;
  (void)why;
  if (!rv)
    return;
  rv->canceled = 1;
  if (rv->call) { /* else the credential job reports when it ends */
    tg_llm_cancel(rv->call);
    rv->call = NULL;
    fail(rv, "timeout", "interrupted while waiting for the model");
  }
}

const wk_node_ops wk_node_self_review_ops = {
    .type = TG_NODE_SELF_REVIEW,
    .effectful = 1, /* its row shows the call in flight and keeps the tokens */
    .start = start,
    .cancel = cancel,
};
