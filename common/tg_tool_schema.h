/*
 * tg_tool_schema: a tool's JSON Schema (2020-12 vocabulary: type, properties, required, items)
 * inferred from an example payload, for tools made from a connector's example_payload.
 *
 * Rules: an object gives {"type": "object", "properties": {key: schema of its value},
 * "required": [every key present, in the example's order]}; an array gives {"type": "array",
 * "items": schema of its first element} ({"type": "array"} when empty); a string "string", an
 * integer "integer", a real "number", true/false "boolean", null "null". Nesting deeper than
 * TG_TOOL_SCHEMA_DEPTH gives {} (any value) below that depth. Pure.
 */
#ifndef TG_TOOL_SCHEMA_H
#define TG_TOOL_SCHEMA_H

#include <jansson.h>

#define TG_TOOL_SCHEMA_DEPTH 32

/* The schema of example (NULL: {"type": "object", "properties": {}}): a new object, or NULL
 * when out of memory. */
json_t *tg_tool_schema_infer(const json_t *example);

#endif
