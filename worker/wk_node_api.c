/*
 * wk_node_api: placeholder for the API node so the engine links; the real executor comes from the
 * `api` branch (issue 13) and replaces this file at merge. Reports FAILED "not implemented".
 */
#include "wk_node.h"

#include <stdio.h>

static void start(wk_node_exec *x)
{
  wk_node_result res = {.status = WK_NODE_FAILED, .error_class = "internal"};
  snprintf(res.error, sizeof res.error, "node %s: the API node is not implemented", x->gn->id);
  x->done(x, &res);
}

const wk_node_ops wk_node_api_ops = {.type = TG_NODE_API, .effectful = 1, .start = start};
