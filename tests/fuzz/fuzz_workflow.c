/*
 * libFuzzer target for workflow definition validation (common/tg_workflow.c), fed the way the
 * gateway feeds it: the input is a request body, parsed with JSON_REJECT_DUPLICATES; when it is
 * {"definition": ..., "inputs": ...} both are used, otherwise the whole value is the definition.
 * A definition that validates must also order (Start first, End last, every node once), list
 * its providers, accept or reject the inputs without crashing, and render every node's config
 * and the End output against a context built from the inputs.
 */
#include "tg_workflow.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
  order = tg_workflow_order(def);
  if (!order || json_array_size(order) != json_array_size(json_object_get(def, "nodes")))
    abort();
  providers = tg_workflow_providers(def);
  if (!json_is_array(providers))
    abort();
  errs = tg_workflow_validate_inputs(def, json_is_object(inputs) ? inputs : NULL);
  ctx = json_pack("{s:o, s:{}}", "inputs",
                  json_is_object(inputs) ? json_incref(inputs) : json_object(), "nodes");
  if (!errs && ctx) {
    size_t i;
    json_t *node;
    json_array_foreach(order, i, node)
    {
      json_t *r = tg_workflow_render(json_object_get(node, "config"), ctx, err, sizeof err);
      json_decref(r);
      if (i + 1 == json_array_size(order))
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
