/*
 * wk_tool: the tools of the catalog as an Agent node calls them. README "Agent nodes".
 *
 * Resolution (wk_tools_resolve, a dbq job's work side): each name of an Agent's config.tools is
 * matched against the user's catalog (tg_store_tools: the live built-ins, then the user's live
 * tools) by tool_id exactly, else by name case-insensitively, where a space and an underscore
 * are the same character ("Code Execution" is the built-in code_execution). A name that matches
 * nothing fails resolution naming it (the node fails with tool_not_found).
 *
 * Invocation (wk_tool_call, loop side): one call of a resolved tool with the model's arguments,
 * journaled like every tool call (DESIGN.md section 5): a 'pending' tool_executions row (fenced,
 * arguments redacted, the model's tool_call_id) before the call, completed after it with the
 * redacted response, status, error class and duration. What runs the tool, by the row's
 * definition:
 *   - builtin calculator: tg_expr arithmetic, in process;
 *   - builtin http_request: tg_http on the worker's egress-policied client;
 *   - builtin code_execution: tg_sandbox (never in process);
 *   - source connector, tool_type mcp (synced "mcp:<id>:<tool>" or created from an MCP
 *     connector): tools/call on the connector's MCP server, as a {connector_id} MCP node does;
 *   - source connector, tool_type api: the connector's operation, as a managed API node does;
 *   - source composio: tools/call on the user's Composio MCP session (wk_registry), as a managed
 *     {provider} MCP node does;
 *   - anything else (a registered tool with nothing to run it): an error result
 *     (tool_not_executable) given back to the model, journaled as failed.
 * A tool's failure (isError, an HTTP error status, a code error) is a result the model sees
 * (is_error 1), not a node failure; only a lost lease (lost 1) or a call whose effects are
 * unknown (unknown 1: a timeout after the request left) stop the node.
 *
 * Secrets: arguments and responses pass through the run's redaction (wk_secrets) before they are
 * journaled; credentials a connector needs are resolved into the outgoing request only.
 */
#ifndef WK_TOOL_H
#define WK_TOOL_H

#include "wk_node.h"

#include <jansson.h>

/* One resolved tool (owned by the array wk_tools_resolve returns). */
typedef struct wk_tool {
  char *tool_id;      /* the catalog's tool_id */
  char *name;         /* the name the model sees: [A-Za-z0-9_-], at most 64 bytes, unique
                         within the node (the catalog name with other bytes as '_', suffixed
                         _2, _3... on a clash) */
  char *catalog_name; /* the catalog's name as stored */
  char *description;
  json_t *input_schema; /* object */
  json_t *definition;   /* the row's definition (source, tool_name, connector_id, ...) */
  char *source;         /* builtin | connector | composio | user */
  char *tool_type;      /* local | mcp | api | crewai | custom */
  char *connector_id;   /* or NULL */
} wk_tool;

/*
 * Work side (a dbq job): resolves names (a JSON array of strings, borrowed) for user_id into a
 * new array *out of *n tools (in names' order, duplicates once). 0; TG_ENOTFOUND with the first
 * unresolvable name copied into missing (size len); TG_EINVAL (a name that is not a string);
 * TG_ENOMEM; a database error.
 */
int wk_tools_resolve(tg_db *db, const char *user_id, const json_t *names, wk_tool **out, size_t *n,
                     char *missing, size_t len);

void wk_tools_free(wk_tool *tools, size_t n); /* NULL-safe */

/* The tools as the model is told of them: a new array of {name, description, input_schema}. */
json_t *wk_tools_for_model(const wk_tool *tools, size_t n);

/* The outcome of one call (valid during the callback; take content by setting it NULL). */
typedef struct wk_tool_outcome {
  json_t *content;         /* what the model gets back: the tool's result (text or JSON) */
  int is_error;            /* the tool failed; content says why (the model may try otherwise) */
  int lost;                /* the lease was lost: the node must report WK_NODE_LOST */
  int unknown;             /* the call may have had effects and did not answer: WK_NODE_UNKNOWN */
  const char *error_class; /* when is_error/unknown: tool_error, timeout, egress_refused, ... */
  char error[512];         /* human-readable, redacted */
  int64_t exec_id;         /* its tool_executions row */
} wk_tool_outcome;

typedef struct wk_tool_call wk_tool_call;

/*
 * Calls tool t with arguments (an object, borrowed) for node execution x, as the model's call
 * tool_call_id (borrowed; may be NULL). done(arg, outcome) is called exactly once, later, from
 * the loop, unless wk_tool_call_cancel comes first; when this returns an error (TG_ENOMEM,
 * TG_EINVAL), done is never called. Calls of one node may run concurrently. *out may be NULL.
 */
int wk_tool_call_start(wk_node_exec *x, const wk_tool *t, const char *tool_call_id,
                       const json_t *arguments, void (*done)(void *arg, wk_tool_outcome *o),
                       void *arg, wk_tool_call **out);

/* Interrupts a call (the node was cancelled: why is WK_STOP_DEADLINE or WK_STOP_SHUTDOWN). done
 * is called promptly with unknown 1 when the request may have left, lost 1 when the shutdown
 * left it to the next attempt, else is_error with error_class "timeout"; its journal row is
 * completed accordingly. */
void wk_tool_call_cancel(wk_tool_call *c, int why);

/* The calculator built-in (wk_tool_calc.c): evaluates expr (+ - * / % ^, unary minus,
 * parentheses, decimals) into *out. 0, or TG_EINVAL with the reason in err (size errlen). */
int wk_tool_calc(const char *expr, double *out, char *err, size_t errlen);

#endif
