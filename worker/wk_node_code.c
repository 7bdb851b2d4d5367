/*
 * wk_node_code: the Code node's executor (wk_node.h; README "Code nodes").
 *
 * Config {language, code, packages, timeout_s?, memory_mb?, outputs?}. The code runs in
 * tg_sandbox (bubblewrap; never in the worker) with the run's bare variables as globals: the
 * run inputs overlaid by the variables earlier nodes contributed (scope "inputs", then "vars":
 * the same names a Conditional reads). Limits from the worker's configuration
 * (TOOLGATE_CODE_*, the worker's sandbox pool: a pre-started spare when the node keeps the
 * default memory limit), timeout_s and memory_mb from the node when given.
 *
 * Output: {"stdout": what it printed, "stderr": only when non-empty, ...the names the code
 * defined (tg_sandbox.h decides which)}; a name "stdout" or "stderr" of the code's is left out.
 * The run variables it contributes are those names (not stdout / stderr). Failures carry
 * tg_sandbox's classes: code_error, timeout, memory_exceeded, output_exceeded,
 * sandbox_unavailable, invalid_code_output.
 *
 * A Code node has no effect outside its sandbox (no network, a private /tmp), so it is not
 * effectful: journaled on completion only, and simply run again after a crash. The run deadline
 * and the shutdown grace kill the child (tg_sandbox_cancel) and fail the node with timeout.
 */
#include "wk.h"
#include "wk_node.h"

#include "tg_err.h"
#include "tg_log.h"
#include "tg_sandbox.h"

#include <stdio.h>
#include <string.h>

static void fail(wk_node_exec *x, const char *cls, const char *fmt, const char *detail)
{
  wk_node_result res = {.status = WK_NODE_FAILED, .error_class = cls};
  snprintf(res.error, sizeof res.error, fmt, x->gn->id, detail);
  x->priv = NULL;
  x->done(x, &res);
}

/* The globals: scope.inputs overlaid by scope.vars (a new object). */
static json_t *globals(const json_t *scope)
{
  json_t *g = json_object();
  if (g && (json_object_update(g, json_object_get(scope, "inputs")) != 0 ||
            json_object_update(g, json_object_get(scope, "vars")) != 0)) {
    json_decref(g);
    return NULL;
  }
  return g;
}

static void on_done(void *arg, tg_sandbox_result *sr)
{
  wk_node_exec *x = arg;
  wk_node_result res = {.status = WK_NODE_SUCCESS};
  json_t *out;

  x->priv = NULL;
  if (sr->error_class) {
    tg_info("code_node_failed", "{s:s, s:s, s:s, s:s, s:f}", "run_id", x->r->id, "node_id",
            x->gn->id, "error_class", sr->error_class, "error", sr->message, "ms", sr->wall_ms);
    fail(x, sr->error_class, "node %.64s: %.400s", sr->message);
    return;
  }
  out = json_object();
  json_object_del(sr->result, "stdout");
  json_object_del(sr->result, "stderr");
  if (!out || json_object_set_new(out, "stdout", json_string(sr->stdout_text)) != 0 ||
      (sr->stderr_text[0] &&
       json_object_set_new(out, "stderr", json_string(sr->stderr_text)) != 0) ||
      json_object_update(out, sr->result) != 0) {
    json_decref(out);
    fail(x, "internal", "node %.64s: %.400s", "out of memory");
    return;
  }
  res.output = out;
  x->done(x, &res);
}

static void code_start(wk_node_exec *x)
{
  const json_t *c = x->config;
  const char *lang = json_string_value(json_object_get(c, "language"));
  tg_sandbox_job job = {.language = lang ? lang : "python",
                        .code = json_string_value(json_object_get(c, "code")),
                        .outputs = json_object_get(c, "outputs"),
                        .timeout_s = json_integer_value(json_object_get(c, "timeout_s")),
                        .memory_mb = json_integer_value(json_object_get(c, "memory_mb"))};
  json_t *g;
  tg_sandbox_exec *e = NULL;
  int rc;

  if (strcmp(job.language, "python") != 0) {
    fail(x, "sandbox_unavailable", "node %.64s: language %.64s cannot run on this worker",
         job.language);
    return;
  }
  if (!json_is_array(job.outputs))
    job.outputs = NULL;
  if (!(g = globals(x->scope))) {
    fail(x, "internal", "node %.64s: %.400s", "out of memory");
    return;
  }
  job.inputs = g;
  rc = tg_sandbox_pool_run(x->r->w->sandbox, &job, on_done, x, &e);
  json_decref(g);
  if (rc != 0) {
    fail(x, rc == TG_EINVAL ? "code_error" : "internal", "node %.64s: %.400s",
         rc == TG_EINVAL ? "the node has no code" : tg_strerror(rc));
    return;
  }
  x->priv = e;
}

static void code_cancel(wk_node_exec *x, int why)
{
  tg_sandbox_exec *e = x->priv;
  if (!e)
    return;
  tg_sandbox_cancel(e);
  fail(x, "timeout", "node %.64s: %.64s killed the code",
       why == WK_STOP_SHUTDOWN ? "the worker's shutdown" : "the run deadline");
}

/* The run variables of a Code node: its names, without stdout and stderr. */
static json_t *code_vars(const json_t *output)
{
  json_t *v = json_is_object(output) ? json_copy((json_t *)output) : NULL;
  json_object_del(v, "stdout");
  json_object_del(v, "stderr");
  return v;
}

const wk_node_ops wk_node_code_ops = {.type = TG_NODE_CODE,
                                      .effectful = 0,
                                      .start = code_start,
                                      .cancel = code_cancel,
                                      .vars = code_vars};
