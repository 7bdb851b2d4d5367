/*
 * tg_workflow_int.h: what the two files of the definition layer share; nothing else includes it.
 *
 * tg_workflow.c holds the public API of tg_workflow.h: validation of the whole definition (the
 * graph rules through tg_graph's lenient build, template references), run inputs, order and
 * rendering. tg_workflow_nodes.c holds the per-type checks of one node's config and the
 * literal-secret rule. Non-static internals are named tg_workflow__*.
 */
#ifndef TG_WORKFLOW_INT_H
#define TG_WORKFLOW_INT_H

#include "tg_graph.h"
#include "tg_workflow.h"

#include <jansson.h>
#include <stddef.h>

/* Appends {"node": node, "field": field, "message": printf(fmt, ...)} to errs (node and field
 * may be NULL: JSON null). Out of memory drops the error. */
void tg_workflow__err(json_t *errs, const char *node, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks the config of node gn by its type (tg_workflow.h lists the rules), appending errors. */
void tg_workflow__check_config(const tg_graph_node *gn, json_t *errs);

/* Finds the next "{{" ... "}}" in s from pos: [*a, *b) is the whole template. 0 when none. */
int tg_workflow__next_template(const char *s, size_t pos, size_t *a, size_t *b);

/* The reference inside the template [a, b) of s, without surrounding spaces. */
void tg_workflow__ref(const char *s, size_t a, size_t b, const char **ref, size_t *len);

#endif
