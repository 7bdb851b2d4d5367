/*
 * tg_tool_schema: JSON Schema inference from an example (contract in tg_tool_schema.h). The
 * recursion is bounded by TG_TOOL_SCHEMA_DEPTH, so a deeply nested example cannot exhaust the
 * stack.
 */
#include "tg_tool_schema.h"

static json_t *infer(const json_t *v, int depth)
{
  json_t *s, *props, *req, *x;
  const char *k;
  if (depth >= TG_TOOL_SCHEMA_DEPTH)
    return json_object();
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    props = json_object();
    req = json_array();
    s = json_pack("{s:s, s:o, s:o}", "type", "object", "properties", props, "required", req);
    if (!s)
      return NULL;
    json_object_foreach((json_t *)v, k, x)
    {
      json_t *sub = infer(x, depth + 1);
      if (!sub || json_object_set_new(props, k, sub) ||
          json_array_append_new(req, json_string(k))) {
        json_decref(s);
        return NULL;
      }
    }
    return s;
  case JSON_ARRAY:
    if (json_array_size(v) == 0)
      return json_pack("{s:s}", "type", "array");
    if (!(x = infer(json_array_get(v, 0), depth + 1)))
      return NULL;
    return json_pack("{s:s, s:o}", "type", "array", "items", x);
  case JSON_STRING:
    return json_pack("{s:s}", "type", "string");
  case JSON_INTEGER:
    return json_pack("{s:s}", "type", "integer");
  case JSON_REAL:
    return json_pack("{s:s}", "type", "number");
  case JSON_TRUE:
  case JSON_FALSE:
    return json_pack("{s:s}", "type", "boolean");
  default:
    return json_pack("{s:s}", "type", "null");
  }
}

json_t *tg_tool_schema_infer(const json_t *example)
{
  if (!example)
    return json_pack("{s:s, s:{}}", "type", "object", "properties");
  return infer(example, 0);
}
