/*
 * tg_workflow: workflow definitions in the builder's format (README "Workflow definitions";
 * ../shared/examples/proposal-generation.json): validation, input checking, the execution
 * order, and {{...}} substitution.
 *
 * Definition: {title, description, nodes: [{id, type, name, config, icon?, color?, x?, y?,
 * status?}], connections: [{id, from, to}]}. Ids (and connection ends, and branch targets) are
 * integers or non-empty strings, compared in their string form (tg_graph.h); UI fields are kept
 * by the API and ignored here. The graph rules are tg_graph.h's: a DAG, one Start, at least one
 * End, every node reachable from Start and reaching an End, unique ids, connections between
 * existing nodes, a Conditional's branches [{type: "if"|"else", condition, targetNodeId}] each
 * aimed at one of its successors, every successor aimed at, at most one else and last, each
 * condition parsing (tg_expr.h). Config per node type:
 *   Start   inputVariables? [{name, type?, required?, secret?}]
 *   MCP     managed {provider, tool, arguments?} or {connector_id, tool, arguments?} (the
 *           user's MCP connector) or ad-hoc {url, headers?, tool, arguments?}
 *   API     {method? GET|POST|PUT|PATCH|DELETE|HEAD, url, endpoint?, headers?, query_params?,
 *            body?, authentication? ("bearer"|"api_key"|"oauth2"|"custom_header"|"none" or
 *            {type:"bearer", token} | {type:"api_key", in:"header"|"query", name, value} |
 *            {type:"custom_header", name, value} | {type:"oauth2", credential}), credential?,
 *            timeout_ms? 1..300000, idempotency_key?}, or managed {connector_id, operation?,
 *            payload?, timeout_ms?} (the user's API connector)
 *   HITL    {reviewTitle, message, priority?, allowedDecisions (unique strings), timeout_s?
 *            1..31536000}
 *   End     outputVariables? [{name, type}] (the run variable vars.<name>) | [{name, value}] |
 *           {name: value}
 *   Code    {language? "python"|"javascript" (python when absent), code (non-empty, at most
 *            256 KiB), packages? [name], outputs? [name], timeout_s? 1..3600,
 *            memory_mb? 16..65536}
 *   Agent   {prompt, model {provider "anthropic"|"openai"|"openai_compatible", modelName,
 *            displayName?, credential?, baseUrl?}, tools? [names], maxIterations? 1..50,
 *            temperature? 0..2, outputSchema? {JSON schema}}
 *   Self-Review {reviewPrompt, minConfidence 0..1, target? (a node that runs before it), onFail?
 *            "fail"|"continue", model? (as an Agent's)}
 * Literal secrets: an API or ad-hoc MCP node's sensitive header (Authorization,
 * Proxy-Authorization, X-API-Key, Api-Key, Cookie, or a name containing token / secret / key)
 * and its authentication object's token / value must contain a {{secrets.<name>}} reference.
 *
 * Templates: a string in a node's config may contain {{inputs.<name>}} (declared by Start
 * when Start has inputVariables),
 * {{nodes.<id>.output...}} (a node that runs before it), {{vars.<name>}} and
 * {{secrets.<name>}}; the path after the root walks objects by key and arrays by index
 * ("content.0.text"). A string that is exactly one template is replaced by the referenced JSON
 * value (keeping its type); templates inside longer strings are replaced by the value's text
 * (strings raw, other values as compact JSON). A reference that does not resolve is an error
 * naming it, except {{secrets.*}}, which stays as written unless the context has "secrets".
 */
#ifndef TG_WORKFLOW_H
#define TG_WORKFLOW_H

#include <jansson.h>
#include <stddef.h>

/*
 * Validates a definition. Returns NULL when valid, else a new array of every error found, each
 * {"node": id-as-string or null, "field": "config.tool", "message": "..."}, for a 422.
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

/* What the machine offers Code nodes, for tg_workflow_check_code. */
typedef struct tg_workflow_code_env {
  int javascript; /* a javascript interpreter is configured */
  /* 1 when every name of packages (a JSON array of strings) can be imported, 0 with the first
   * missing one copied into missing (size len), -1 when not known (yet); NULL: not checked.
   * tg_sandbox_packages_available fits. */
  int (*packages_available)(const json_t *packages, char *missing, size_t len);
} tg_workflow_code_env;

/*
 * The write-time checks of a definition's Code nodes against env, apart from
 * tg_workflow_validate so that the validator stays pure: a package that is not installed
 * ("package 'foo' is not installed", field config.packages) and javascript without an
 * interpreter. Returns NULL when nothing is refused, else a new array of errors shaped as
 * tg_workflow_validate's. *unknown (may be NULL) is set to 1 when some packages could not be
 * checked (packages_available answered -1). Call on a definition that passed
 * tg_workflow_validate.
 */
json_t *tg_workflow_check_code(const json_t *definition, const tg_workflow_code_env *env,
                               int *unknown);

/* The nodes in one topological order, Start first: a new array of the definition's node
 * objects (increfed), or NULL for an invalid definition or when memory runs out. */
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
 * {"inputs": {...}, "nodes": {"<id>": {"output": ...}}, "vars": {...}, "secrets"?: {...}} (any
 * member may be absent; {{secrets.*}} stays verbatim without "secrets"), producing at most
 * max_bytes (measured as for TG_WORKFLOW_RENDER_MAX). Returns 0, or with *out NULL:
 * TG_ENOTFOUND on an unresolved reference ("unresolved reference {{...}}" in err, size
 * errlen), TG_EINVAL when {{secrets.*}} stays verbatim and a substituted value (an input, a
 * node's output) holds a {{secrets.*}} reference of its own (an executor would substitute it:
 * a tool answer could have a secret sent on), TG_ETOOBIG past max_bytes ("rendered templates
 * exceed the limit of N bytes" in err; checked before the copy is made), TG_ENOMEM (err "").
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
 * The run's output from the End node: config.outputVariables is an array of {name, value} (the
 * value, a template string or any JSON, rendered with tg_workflow_render against ctx) or of
 * {name, type} (the run variable ctx.vars.<name>), or an object name -> value (rendered); all
 * of them from one TG_WORKFLOW_RENDER_MAX budget. Returns a new object {name: value} ({} when
 * there are no outputVariables), or NULL on an unresolved reference, a missing run variable
 * ("output <name> is not set: ..."), past the budget (message in err, as tg_workflow_render) or
 * out of memory.
 */
json_t *tg_workflow_end_output(const json_t *end_node, const json_t *ctx, char *err, size_t errlen);

#endif
