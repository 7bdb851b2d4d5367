/*
 * wk_node_conditional: the Conditional node. Pure and synchronous.
 *
 * Takes exactly one branch: the first "if" branch (definition order) whose condition holds
 * (tg_expr_eval against the run variables), else the "else" branch. A condition that cannot be
 * evaluated (a missing variable, a type mismatch) fails the node with expression_error naming
 * the node and the variable, never a silent false; no branch holding and no else fails it the
 * same way. Output: {"branch": index in config.branches, "target": the chosen node's id,
 * "condition": its text}; the engine takes the branch from it (also when a recorded output is
 * reused after a crash). A Conditional contributes no run variables.
 */
#include "wk_node.h"

#include <stdio.h>

static void start(wk_node_exec *x)
{
  const tg_graph_node *gn = x->gn;
  wk_node_result res = {.status = WK_NODE_FAILED, .error_class = "expression_error"};
  size_t k, chosen = gn->nbranches;
  char err[256];

  for (k = 0; k < gn->nbranches && chosen == gn->nbranches; k++) {
    int holds = 0;
    if (!gn->branches[k].cond)
      continue;
    if (tg_expr_eval(gn->branches[k].cond, x->scope, &holds, err, sizeof err) != 0) {
      snprintf(res.error, sizeof res.error, "node %.100s: condition \"%.100s\": %s", gn->id,
               gn->branches[k].condition, err);
      x->done(x, &res);
      return;
    }
    if (holds)
      chosen = k;
  }
  for (k = 0; k < gn->nbranches && chosen == gn->nbranches; k++)
    if (!gn->branches[k].cond)
      chosen = k;
  if (chosen == gn->nbranches) {
    snprintf(res.error, sizeof res.error,
             "node %s: no branch condition holds and there is no else branch", gn->id);
    x->done(x, &res);
    return;
  }
  res.branch = chosen;
  res.output = json_pack("{s:I, s:s, s:s}", "branch", (json_int_t)chosen, "target",
                         tg_graph_node_at(x->r->graph, gn->branches[chosen].target)->id,
                         "condition", gn->branches[chosen].condition);
  if (!res.output) {
    res.error_class = "internal";
    snprintf(res.error, sizeof res.error, "node %s: out of memory", gn->id);
  } else {
    res.status = WK_NODE_SUCCESS;
  }
  x->done(x, &res);
}

const wk_node_ops wk_node_conditional_ops = {.type = TG_NODE_CONDITIONAL,
                                             .effectful = 0,
                                             .start = start,
                                             .cancel = NULL,
                                             .vars = wk_node_no_vars};
