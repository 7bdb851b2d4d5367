/*
 * wk_node_hitl: placeholder for the HITL node so the engine links; the real executor comes from the
 * `hitl` branch (issue 13) and replaces this file at merge. Reports FAILED "not implemented".
 */
#include "wk_node.h"

#include <stdio.h>

static void start(wk_node_exec *x)
{
  wk_node_result res = {.status = WK_NODE_FAILED, .error_class = "internal"};
  snprintf(res.error, sizeof res.error, "node %s: the HITL node is not implemented", x->gn->id);
  x->done(x, &res);
}

const wk_node_ops wk_node_hitl_ops = {.type = TG_NODE_HITL, .effectful = 1, .start = start};
