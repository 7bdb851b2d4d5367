/*
 * wk_node_end: the End node. Pure and synchronous: its output becomes the run's output.
 *
 * config.outputVariables (rendered by the engine before start) is either an object name ->
 * value, an array of {name, value} (the value a template, already substituted), or an array of
 * {name, type} whose value is the run variable of that name (vars.<name>; null when no node set
 * it, so an End shared by branches reports what the taken branch produced).
 */
#include "wk_node.h"

#include <stdio.h>

static void start(wk_node_exec *x)
{
  const json_t *ov = json_object_get(x->config, "outputVariables"), *item;
  const json_t *vars = json_object_get(x->scope, "vars");
  wk_node_result res = {.status = WK_NODE_SUCCESS};
  size_t i;

  if (json_is_object(ov)) {
    res.output = json_copy((json_t *)ov);
  } else {
    res.output = json_object();
    json_array_foreach(ov, i, item)
    {
      const char *name = json_string_value(json_object_get(item, "name"));
      json_t *v = json_object_get(item, "value");
      if (!name || !res.output)
        continue;
      if (!v)
        v = json_object_get(vars, name);
      json_object_set_new(res.output, name, v ? json_incref(v) : json_null());
    }
  }
  if (!res.output) {
    res.status = WK_NODE_FAILED;
    res.error_class = "internal";
    snprintf(res.error, sizeof res.error, "node %s: out of memory", x->gn->id);
  }
  x->done(x, &res);
}

const wk_node_ops wk_node_end_ops = {
    .type = TG_NODE_END, .effectful = 0, .start = start, .cancel = NULL, .vars = wk_node_no_vars};
