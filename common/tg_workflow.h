/*
 * tg_workflow: workflow definitions (DESIGN.md section 6): validation, input checking, the
 * execution order, and {{...}} substitution.
 *
 * Definition: {title, description, nodes:[{id, type, name, config}], connections:[{id, from,
 * to}]}. Node types executed in this version: Start, MCP, End (API and Conditional are
 * recognised but rejected as not yet executable; Agent, Code, Self-Review, HITL are rejected).
 * A valid definition has exactly one Start and one End, unique non-empty node ids, connections
 * whose ends exist, and a path Start -> ... -> End that is a simple chain (each node at most one
 * outgoing connection, no cycles); every node lies on it.
 *
 * Templates: a string argument may contain {{inputs.name}} and {{nodes.<id>.output...}} where
 * the path after output walks objects by key and arrays by index ("content.0.text"). A string
 * that is exactly one template is replaced by the referenced JSON value (keeping its type);
 * templates inside longer strings are replaced by the value's text (strings raw, other values
 * as compact JSON). A reference that does not resolve is an error naming it.
 */
#ifndef TG_WORKFLOW_H
#define TG_WORKFLOW_H

#include <jansson.h>
#include <stddef.h>

/*
 * Validates a definition. Returns NULL when valid, else a new array of error objects
 * {"node": id-or-null, "field": "config.tool", "message": "..."} for a 422.
 */
json_t *tg_workflow_validate(const json_t *definition);

/*
 * Validates run inputs (an object, or NULL for {}) against the Start node's
 * config.inputVariables [{name, type ("string"|"number"|"boolean"|"object"|"array"),
 * required, secret (only with type "string")}]. Returns NULL when valid, else a new array of
 * {"field": "inputs.<name>", "message": "..."}. Call only on a definition that passed
 * tg_workflow_validate.
 */
json_t *tg_workflow_validate_inputs(const json_t *definition, const json_t *inputs);

/*
 * The names of the Start node's secret input variables ({"name", "type": "string", "secret":
 * true}; DESIGN.md section 8: stored encrypted, shown as "[REDACTED]", redacted by value from
 * everything the worker records) as a new array ([] when none; NULL only when memory runs out).
 * Call on a definition that passed tg_workflow_validate.
 */
json_t *tg_workflow_secret_inputs(const json_t *definition);

/* The nodes in execution order, Start first, End last: a new array of borrowed-then-increfed
 * node objects, or NULL for an invalid definition. */
json_t *tg_workflow_order(const json_t *definition);

/*
 * The output budget of one render call (a node's arguments, or an End node's outputs), in bytes:
 * a string with templates inside costs its rendered length, a string that is exactly one
 * template the compact JSON size of the value it becomes; values without templates are copied
 * from the definition for free. A tool response may be 16 MiB (tg_mcp), so without a budget a
 * definition repeating a reference to it could make the worker copy it many times over.
 */
#define TG_WORKFLOW_RENDER_MAX ((size_t)1 << 20)

/*
 * *out = a new copy of value (any JSON) with templates substituted from ctx, an object
 * {"inputs": {...}, "nodes": {"<id>": {"output": ...}}}, producing at most max_bytes (measured
 * as for TG_WORKFLOW_RENDER_MAX). Returns 0, or with *out NULL: TG_ENOTFOUND on an unresolved
 * reference ("unresolved reference {{...}}" in err, size errlen), TG_ETOOBIG past max_bytes
 * ("rendered templates exceed the limit of N bytes" in err; checked before the copy is made),
 * TG_ENOMEM (err is "").
 */
int tg_workflow_render_capped(json_t **out, const json_t *value, const json_t *ctx,
                              size_t max_bytes, char *err, size_t errlen);

/* tg_workflow_render_capped with TG_WORKFLOW_RENDER_MAX: the new value, or NULL with the reason
 * in err ("" when memory ran out). */
json_t *tg_workflow_render(const json_t *value, const json_t *ctx, char *err, size_t errlen);

/* The providers a definition's managed MCP nodes use ("provider" of each MCP node's config), as
 * a new sorted unique array; the default tool_constraints.providers of a run. */
json_t *tg_workflow_providers(const json_t *definition);

/*
 * The run's output from the End node: config.outputVariables is either an array of
 * {name, value} or an object name -> value; each value (a template string or any JSON) is
 * rendered with tg_workflow_render against ctx, all of them from one TG_WORKFLOW_RENDER_MAX
 * budget. Returns a new object {name: rendered value} ({} when there are no outputVariables), or
 * NULL on an unresolved reference or past the budget (message in err, as tg_workflow_render) or
 * out of memory.
 */
json_t *tg_workflow_end_output(const json_t *end_node, const json_t *ctx, char *err, size_t errlen);

#endif
