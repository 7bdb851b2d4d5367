/*
 * libFuzzer target for workflow definition validation (common/tg_workflow.c), fed the way the
 * gateway feeds it: the input is a request body, parsed with JSON_REJECT_DUPLICATES; when it is
 * {"definition": ..., "inputs": ...} both are used, otherwise the whole value is the definition.
 * A definition that validates must also build as a graph (tg_graph_build agrees with the
 * validator; the topological order puts every node after its predecessors), order (Start first,
 * every node once), list its providers, accept or reject the inputs without crashing, render
 * every node's config and the End output against a context built from the inputs (with and
 * without secrets), and evaluate every Conditional's conditions against it.
 */
#include "tg_graph.h"
#include "tg_workflow.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The graph of a valid definition: it builds, and its order respects every connection. */
static void check_graph(const json_t *def)
{
  tg_graph *g;
  const size_t *topo;
  size_t n, *pos, i, k;
  if (tg_graph_build(&g, def) != 0)
    abort();
  n = tg_graph_size(g);
  topo = tg_graph_topo(g);
  if (topo[0] != tg_graph_start(g) || !(pos = calloc(n, sizeof *pos)))
    abort();
  for (i = 0; i < n; i++)
    pos[topo[i]] = i;
  for (i = 0; i < n; i++) {
    const tg_graph_node *gn = tg_graph_node_at(g, i);
    if (tg_graph_find(g, gn->id) != i)
      abort();
    for (k = 0; k < gn->nsucc; k++)
      if (pos[gn->succ[k]] <= pos[i])
        abort();
  }
  free(pos);
  tg_graph_free(g);
}

/* Evaluates each condition of each Conditional against ctx (errors are expected). */
static void eval_conditions(const json_t *def, const json_t *ctx)
{
  tg_graph *g;
  if (tg_graph_build(&g, def) != 0)
    return;
  for (size_t i = 0; i < tg_graph_size(g); i++) {
    const tg_graph_node *gn = tg_graph_node_at(g, i);
    for (size_t k = 0; k < gn->nbranches; k++) {
      char err[256];
      int result;
      if (gn->branches[k].cond)
        tg_expr_eval(gn->branches[k].cond, ctx, &result, err, sizeof err);
    }
  }
  tg_graph_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  json_t *def, *inputs, *errs, *order = NULL, *providers = NULL, *ctx = NULL;
  char err[256];
  if (!root)
    return 0;
  def = json_object_get(root, "definition");
  inputs = json_object_get(root, "inputs");
  if (!def)
    def = root;
  errs = tg_workflow_validate(def);
  if (errs) {
    if (!json_is_array(errs) || json_array_size(errs) == 0)
      abort(); /* invalid must come with reasons */
    json_decref(errs);
    json_decref(root);
    return 0;
  }
  check_graph(def);
  order = tg_workflow_order(def);
  if (!order || json_array_size(order) != json_array_size(json_object_get(def, "nodes")))
    abort();
  providers = tg_workflow_providers(def);
  if (!json_is_array(providers))
    abort();
  errs = tg_workflow_validate_inputs(def, json_is_object(inputs) ? inputs : NULL);
  ctx = json_pack("{s:o, s:{}, s:o}", "inputs",
                  json_is_object(inputs) ? json_incref(inputs) : json_object(), "nodes", "vars",
                  json_is_object(inputs) ? json_incref(inputs) : json_object());
  if (!errs && ctx) {
    size_t i;
    json_t *node;
    eval_conditions(def, ctx);
    json_array_foreach(order, i, node)
    {
      json_t *r = tg_workflow_render(json_object_get(node, "config"), ctx, err, sizeof err);
      json_t *secrets = json_pack("{s:{s:s}}", "secrets", "k", "v");
      const char *type = json_string_value(json_object_get(node, "type"));
      json_decref(tg_workflow_render(r, secrets, err, sizeof err));
      json_decref(secrets);
      json_decref(r);
      if (type && strcmp(type, "End") == 0)
        json_decref(tg_workflow_end_output(node, ctx, err, sizeof err));
    }
  }
  json_decref(errs);
  json_decref(ctx);
  json_decref(providers);
  json_decref(order);
  json_decref(root);
  return 0;
}
