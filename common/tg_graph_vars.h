/*
 * tg_graph_vars: which run variables a workflow reads that no node is known to produce, and
 * which Agent node is asked to produce them. README "Agent nodes".
 *
 * A real model answers in prose unless asked. When a later node reads a bare variable (a
 * Conditional's condition, a {{vars.x}} template in any config, an End node's outputVariables
 * name) that is neither a run input (Start's inputVariables) nor produced by a node before it,
 * the nearest Agent node before the reader is asked for it as structured output. "Produced by a
 * node before it": a Code node whose code assigns the name at top level (a static scan of
 * `name =` lines, or its config.outputs), or any MCP/API node upstream of the reader (their
 * outputs cannot be known before they run, so they may produce anything and no Agent is asked);
 * an Agent's own config.outputSchema properties.
 *
 * Example, the reference workflow: the Conditional 5003 reads win_probability and
 * opportunity_value; opportunity_value is an input, win_probability is produced by nothing
 * upstream, so Agent 5002 ("Win Probability Scorer") is asked for {win_probability: number}.
 * The type is "number" when the name is compared with a number in a condition or declared so in
 * End's outputVariables, else "string" ... or any JSON value when unknown.
 */
#ifndef TG_GRAPH_VARS_H
#define TG_GRAPH_VARS_H

#include "tg_graph.h"

#include <jansson.h>

/*
 * The structured output node i (an Agent) must give: a new JSON schema object
 * {"type":"object","properties":{name:{"type":...}},"required":[names]} built from the variables
 * assigned to i as above, merged with i's config.outputSchema when it has one; or NULL when
 * nothing is asked of it (then the model answers freely). *err (may be NULL) TG_ENOMEM on
 * failure (NULL returned). Pure: reads g only.
 */
json_t *tg_graph_agent_schema(const tg_graph *g, size_t i, int *err);

#endif
