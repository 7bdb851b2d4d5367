/*
 * wk_node_start: the Start node. Pure and synchronous: its output is the run's inputs (already
 * the run variables' "inputs" and the initial "vars"), so it contributes no variables of its
 * own. The inputs were checked against config.inputVariables at admission.
 */
#include "wk_node.h"

json_t *wk_node_no_vars(const json_t *output)
{
  (void)output;
  return NULL;
}

static void start(wk_node_exec *x)
{
  wk_node_result res = {.status = WK_NODE_SUCCESS,
                        .output = json_incref(json_object_get(x->scope, "inputs"))};
  x->done(x, &res);
}

const wk_node_ops wk_node_start_ops = {
    .type = TG_NODE_START, .effectful = 0, .start = start, .cancel = NULL, .vars = wk_node_no_vars};
