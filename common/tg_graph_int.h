/*
 * tg_graph_int.h: what tg_graph.c shares with the definition validator (tg_workflow.c); nothing
 * else includes it.
 *
 * The validator must report every problem of a definition at once, including the graph's, so
 * the graph builder has a lenient mode that reports each rule it finds broken through a
 * callback and still returns the graph of the well-formed part (nodes with a usable, unique id;
 * connections whose ends exist; valid branches). tg_graph_build is the strict mode: any report
 * makes it fail. Non-static internals are named tg_graph__* (libuv's uv__ convention).
 */
#ifndef TG_GRAPH_INT_H
#define TG_GRAPH_INT_H

#include "tg_graph.h"

/* Limits that keep validation cheap on hostile input: nodes and connections of a definition. */
#define TG_GRAPH_MAX_NODES 1000
#define TG_GRAPH_MAX_CONNECTIONS 4000

/* A node type the graph keeps in lenient mode for a node whose type is missing or unknown. */
#define TG_NODE_UNKNOWN TG_NODE_TYPE_COUNT

/* One broken rule: node is the node's id (NULL when none applies), field the definition's field
 * ("connections[2].to", "config.branches[0].condition"), message a sentence. */
typedef void (*tg_graph_report_fn)(void *arg, const char *node, const char *field,
                                   const char *message);

/*
 * Builds the graph of definition, calling report (may be NULL) for every broken rule of
 * tg_graph.h and of a Conditional's branches. Returns 0 and *out (even when something was
 * reported: the graph then holds the well-formed part, its topological order only the nodes
 * outside cycles, and nodes of unknown type as TG_NODE_UNKNOWN), TG_EINVAL (definition is not an
 * object with a nodes array; reported too), TG_ENOMEM. *problems (may be NULL) gets the number of
 * reports.
 */
int tg_graph__build(tg_graph **out, const json_t *definition, tg_graph_report_fn report, void *arg,
                    size_t *problems);

/* Entries of tg_graph_topo (tg_graph_size unless the definition has a cycle). */
size_t tg_graph__topo_len(const tg_graph *g);

/* Writes the normalised form of a node id (an integer or a non-empty string) to buf; returns
 * buf, or NULL when v is not a usable id or does not fit. */
const char *tg_graph__id(const json_t *v, char *buf, size_t n);

#endif
