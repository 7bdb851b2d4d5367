/*
 * tg_graph: a workflow definition as the engine walks it (README "Workflows").
 *
 * Built from a definition in the builder's format (../shared/examples/proposal-generation.json):
 * {title, description, nodes: [{id, type, name, config, icon?, color?, x?, y?, status?}],
 * connections: [{id, from, to}]}. Node ids (and connection ends, and a Conditional branch's
 * targetNodeId) may be integers or strings; the graph names every node by its id as a string
 * (an integer in decimal, no sign for non-negative values). UI fields are ignored.
 *
 * The graph is a DAG with exactly one Start and at least one End; every node is reachable from
 * Start, and an End is reachable from every node. A Conditional's branches each name one of its
 * successors. tg_workflow_validate (tg_workflow.h) reports every way a definition breaks these
 * rules; tg_graph_build refuses such a definition without saying more.
 *
 * Immutable after tg_graph_build: share it across threads read-only.
 */
#ifndef TG_GRAPH_H
#define TG_GRAPH_H

#include "tg_expr.h"

#include <jansson.h>
#include <stddef.h>

typedef enum {
  TG_NODE_START = 0,
  TG_NODE_END,
  TG_NODE_MCP,
  TG_NODE_API,
  TG_NODE_CONDITIONAL,
  TG_NODE_HITL,
  TG_NODE_AGENT,
  TG_NODE_CODE,
  TG_NODE_SELF_REVIEW,
  TG_NODE_TYPE_COUNT
} tg_node_type;

/* One branch of a Conditional, in the definition's order; cond NULL for the "else" branch. */
typedef struct tg_graph_branch {
  const char *condition; /* source text ("" for else) */
  tg_expr *cond;         /* parsed, or NULL for else */
  size_t target;         /* index of the target node, one of the Conditional's successors */
} tg_graph_branch;

typedef struct tg_graph_node {
  const char *id;   /* normalised to a string */
  const char *name; /* the node's "name", or "" */
  tg_node_type type;
  const json_t *def;         /* the definition's node object (borrowed from the graph) */
  const json_t *config;      /* its "config" object ({} when absent; borrowed) */
  size_t *succ, nsucc;       /* successor indexes, in connection order, without duplicates */
  size_t *pred, npred;       /* predecessor indexes */
  tg_graph_branch *branches; /* Conditional only */
  size_t nbranches;
} tg_graph_node;

typedef struct tg_graph tg_graph;

/*
 * Builds the graph of definition (which it increfs and keeps). Returns 0 and *out, or
 * TG_EINVAL (the definition breaks a rule above: validate it first for the reasons), TG_ENOMEM.
 */
int tg_graph_build(tg_graph **out, const json_t *definition);
void tg_graph_free(tg_graph *g); /* NULL-safe */

size_t tg_graph_size(const tg_graph *g);
const tg_graph_node *tg_graph_node_at(const tg_graph *g, size_t i);
size_t tg_graph_start(const tg_graph *g); /* index of the Start node */

/* Index of the node with string id, or (size_t)-1. */
size_t tg_graph_find(const tg_graph *g, const char *id);

/* The node indexes in one topological order (Start first): an array of tg_graph_size entries. */
const size_t *tg_graph_topo(const tg_graph *g);

/* "Start", "End", "MCP", "API", "Conditional", "HITL", "Agent", "Code", "Self-Review". */
const char *tg_node_type_name(tg_node_type t);

/* The type named s (as tg_node_type_name), or TG_NODE_TYPE_COUNT when unknown. */
tg_node_type tg_node_type_parse(const char *s);

#endif
