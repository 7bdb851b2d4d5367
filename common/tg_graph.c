/*
 * tg_graph: a workflow definition as a DAG of nodes (contract in tg_graph.h; the lenient mode the
 * validator uses in tg_graph_int.h).
 *
 * Building takes four passes over the definition: the nodes (ids normalised to strings, indexed
 * in a tg_map from id to index, duplicates and bad ids dropped), the connections (ends resolved,
 * duplicate edges dropped through a second map keyed by the index pair), the Conditional
 * branches (each condition parsed with tg_expr, each target one of the node's successors), and
 * the graph rules: one Start, at least one End, no cycle (Kahn's algorithm, which also yields the
 * topological order), every node reachable from Start and reaching an End. Each broken rule is
 * reported once through the caller's callback; strict mode (tg_graph_build) fails on any.
 *
 * Memory: one allocation per array (nodes, the successor and predecessor lists of all nodes
 * laid out in two shared arrays, branches, topo) plus the id strings; nothing changes after the
 * build, so the graph is shared read-only across threads. Limits (tg_graph_int.h) bound the work
 * on hostile input: every pass is linear in nodes + connections except the map lookups.
 */
#include "tg_graph.h"
#include "tg_graph_int.h"

#include "tg_err.h"
#include "tg_map.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE ((size_t)-1)
#define ID_MAX 128

struct tg_graph {
  json_t *def;
  json_t *empty; /* the {} config of nodes without one */
  tg_graph_node *nodes;
  size_t n, start;
  size_t *edges; /* every node's succ list, then every node's pred list */
  size_t *topo, ntopo;
  tg_map *by_id; /* id -> index + 1 */
};

static const char *const type_names[TG_NODE_TYPE_COUNT] = {[TG_NODE_START] = "Start",
                                                           [TG_NODE_END] = "End",
                                                           [TG_NODE_MCP] = "MCP",
                                                           [TG_NODE_API] = "API",
                                                           [TG_NODE_CONDITIONAL] = "Conditional",
                                                           [TG_NODE_HITL] = "HITL",
                                                           [TG_NODE_AGENT] = "Agent",
                                                           [TG_NODE_CODE] = "Code",
                                                           [TG_NODE_SELF_REVIEW] = "Self-Review"};

const char *tg_node_type_name(tg_node_type t)
{
  return (unsigned)t < TG_NODE_TYPE_COUNT ? type_names[t] : "unknown";
}

tg_node_type tg_node_type_parse(const char *s)
{
  for (int t = 0; s && t < TG_NODE_TYPE_COUNT; t++)
    if (strcmp(s, type_names[t]) == 0)
      return (tg_node_type)t;
  return TG_NODE_TYPE_COUNT;
}

const char *tg_graph__id(const json_t *v, char *buf, size_t n)
{
  int len;
  if (json_is_integer(v))
    len = snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  else if (json_is_string(v) && json_string_length(v) > 0 &&
           strlen(json_string_value(v)) == json_string_length(v))
    len = snprintf(buf, n, "%s", json_string_value(v));
  else
    return NULL;
  return len > 0 && (size_t)len < n ? buf : NULL;
}

/* The build's state: the graph, the reporter and the count of reports. */
typedef struct build {
  tg_graph *g;
  tg_graph_report_fn report;
  void *arg;
  size_t problems;
  int rc; /* TG_ENOMEM once memory ran out */
} build;

static void report(build *b, const char *node, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(build *b, const char *node, const char *field, const char *fmt, ...)
{
  char msg[384];
  va_list ap;
  b->problems++;
  if (!b->report)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  b->report(b->arg, node, field, msg);
}

size_t tg_graph_find(const tg_graph *g, const char *id)
{
  void *v = tg_map_peek(g->by_id, id, strlen(id));
  return v ? (size_t)(uintptr_t)v - 1 : NONE;
}

/* Index of the node named by v (an id value), or NONE; the normalised id in buf. */
static size_t find_value(const tg_graph *g, const json_t *v, char *buf, size_t n)
{
  return tg_graph__id(v, buf, n) ? tg_graph_find(g, buf) : NONE;
}

/* Text of an id value for a message. */
static const char *id_text(const json_t *v, char *buf, size_t n)
{
  if (tg_graph__id(v, buf, n))
    return buf;
  snprintf(buf, n, "%s", v ? "(not an id)" : "(none)");
  return buf;
}

static int add_nodes(build *b, const json_t *nodes)
{
  tg_graph *g = b->g;
  size_t i;
  const json_t *node;
  json_array_foreach(nodes, i, node)
  {
    char field[48], idbuf[ID_MAX];
    const char *id = tg_graph__id(json_object_get(node, "id"), idbuf, sizeof idbuf);
    const json_t *type = json_object_get(node, "type"), *config = json_object_get(node, "config");
    tg_graph_node *gn = &g->nodes[g->n];
    snprintf(field, sizeof field, "nodes[%zu]", i);
    if (!json_is_object(node)) {
      report(b, NULL, field, "node must be an object");
      continue;
    }
    if (!id) {
      report(b, NULL, field, "node needs an id: an integer or a non-empty string");
      continue;
    }
    if (tg_graph_find(g, id) != NONE) {
      report(b, id, "id", "duplicate node id %s", id);
      continue;
    }
    memset(gn, 0, sizeof *gn);
    if (!(gn->id = strdup(id)))
      return TG_ENOMEM;
    if (tg_map_puts(g->by_id, gn->id, (void *)(uintptr_t)(g->n + 1), 1) != 0) {
      free((char *)gn->id);
      return TG_ENOMEM;
    }
    g->n++;
    gn->name = json_is_string(json_object_get(node, "name"))
                   ? json_string_value(json_object_get(node, "name"))
                   : "";
    gn->def = node;
    gn->config = json_is_object(config) ? config : g->empty;
    gn->type = tg_node_type_parse(json_string_value(type));
    if (!json_is_string(type))
      report(b, id, "type", "node needs a type");
    else if (gn->type == TG_NODE_UNKNOWN)
      report(b, id, "type", "unknown node type %s", json_string_value(type));
  }
  return 0;
}

/* Resolves the connections into succ/pred lists. */
static int add_edges(build *b, const json_t *conns)
{
  tg_graph *g = b->g;
  size_t i, ne = 0, *from = NULL, *to = NULL;
  const json_t *c;
  tg_map *seen = tg_map_new(0, NULL);
  int rc = TG_ENOMEM;
  size_t nc = json_array_size(conns);
  if (!seen || !(from = calloc(nc + 1, sizeof *from)) || !(to = calloc(nc + 1, sizeof *to)))
    goto out;
  json_array_foreach(conns, i, c)
  {
    char field[48], a_id[ID_MAX], b_id[ID_MAX];
    size_t a = find_value(g, json_object_get(c, "from"), a_id, sizeof a_id);
    size_t z = find_value(g, json_object_get(c, "to"), b_id, sizeof b_id);
    size_t key[2] = {a, z};
    if (!json_is_object(c)) {
      snprintf(field, sizeof field, "connections[%zu]", i);
      report(b, NULL, field, "connection must be an object {id, from, to}");
      continue;
    }
    if (a == NONE || z == NONE) {
      char t[ID_MAX];
      snprintf(field, sizeof field, "connections[%zu].%s", i, a == NONE ? "from" : "to");
      report(b, NULL, field, "connection refers to unknown node %s",
             id_text(json_object_get(c, a == NONE ? "from" : "to"), t, sizeof t));
      continue;
    }
    if (tg_map_peek(seen, key, sizeof key))
      continue;
    if (tg_map_put(seen, key, sizeof key, (void *)1, 1) != 0)
      goto out;
    from[ne] = a;
    to[ne++] = z;
    g->nodes[a].nsucc++;
    g->nodes[z].npred++;
  }
  if (!(g->edges = malloc((2 * ne + 1) * sizeof *g->edges)))
    goto out;
  /* Lay the lists out: all successor lists, then all predecessor lists. */
  {
    size_t off = 0;
    for (i = 0; i < g->n; i++) {
      g->nodes[i].succ = g->edges + off;
      off += g->nodes[i].nsucc;
    }
    for (i = 0; i < g->n; i++) {
      g->nodes[i].pred = g->edges + off;
      off += g->nodes[i].npred;
    }
  }
  for (i = 0; i < g->n; i++)
    g->nodes[i].nsucc = g->nodes[i].npred = 0;
  for (i = 0; i < ne; i++) {
    g->nodes[from[i]].succ[g->nodes[from[i]].nsucc++] = to[i];
    g->nodes[to[i]].pred[g->nodes[to[i]].npred++] = from[i];
  }
  rc = 0;
out:
  free(from);
  free(to);
  tg_map_free(seen);
  return rc;
}

static int is_succ(const tg_graph_node *gn, size_t t)
{
  for (size_t i = 0; i < gn->nsucc; i++)
    if (gn->succ[i] == t)
      return 1;
  return 0;
}

/* Parses a Conditional's config.branches into gn->branches (the valid ones). */
static int add_branches(build *b, tg_graph_node *gn)
{
  const json_t *branches = json_object_get(gn->config, "branches"), *br;
  size_t i, nb = json_array_size(branches), nelse = 0;
  char *targeted;
  if (!json_is_array(branches) || nb == 0) {
    report(b, gn->id, "config.branches",
           "Conditional needs branches [{type, condition, targetNodeId}]");
    return 0;
  }
  if (!(gn->branches = calloc(nb, sizeof *gn->branches)) || !(targeted = calloc(gn->nsucc + 1, 1)))
    return TG_ENOMEM;
  json_array_foreach(branches, i, br)
  {
    char field[64], idbuf[ID_MAX], err[256];
    const char *type = json_string_value(json_object_get(br, "type"));
    const char *cond = json_string_value(json_object_get(br, "condition"));
    const json_t *tv = json_object_get(br, "targetNodeId");
    size_t t;
    tg_graph_branch *gb = &gn->branches[gn->nbranches];
    int ok = 1, is_else = type && strcmp(type, "else") == 0;
    snprintf(field, sizeof field, "config.branches[%zu]", i);
    if (!json_is_object(br)) {
      report(b, gn->id, field, "branch must be an object {type, condition, targetNodeId}");
      continue;
    }
    if (!is_else && (!type || strcmp(type, "if") != 0)) {
      snprintf(field, sizeof field, "config.branches[%zu].type", i);
      report(b, gn->id, field, "branch type must be \"if\" or \"else\"");
      ok = 0;
    } else if (is_else && (++nelse > 1 || i + 1 < nb)) {
      snprintf(field, sizeof field, "config.branches[%zu].type", i);
      report(b, gn->id, field,
             nelse > 1 ? "at most one else branch" : "the else branch must come last");
      ok = 0;
    }
    gb->condition = is_else ? "" : cond ? cond : "";
    if (!is_else && ok) {
      int rc;
      snprintf(field, sizeof field, "config.branches[%zu].condition", i);
      if (!cond) {
        report(b, gn->id, field, "an if branch needs a condition (a string)");
        ok = 0;
      } else if ((rc = tg_expr_parse(&gb->cond, cond, err, sizeof err)) == TG_ENOMEM) {
        free(targeted);
        return TG_ENOMEM;
      } else if (rc) {
        report(b, gn->id, field, "condition does not parse: %s", err);
        ok = 0;
      }
    }
    t = find_value(b->g, tv, idbuf, sizeof idbuf);
    snprintf(field, sizeof field, "config.branches[%zu].targetNodeId", i);
    if (t == NONE || !is_succ(gn, t)) {
      char txt[ID_MAX];
      report(b, gn->id, field, "targetNodeId %s is not a successor of this node",
             id_text(tv, txt, sizeof txt));
      ok = 0;
    }
    if (!ok) {
      tg_expr_free(gb->cond);
      memset(gb, 0, sizeof *gb);
      continue;
    }
    gb->target = t;
    for (size_t s = 0; s < gn->nsucc; s++)
      targeted[s] |= gn->succ[s] == t;
    gn->nbranches++;
  }
  for (i = 0; i < gn->nsucc; i++)
    if (!targeted[i])
      report(b, gn->id, "config.branches", "successor %s is not the target of any branch",
             b->g->nodes[gn->succ[i]].id);
  free(targeted);
  return 0;
}

/* Marks what is reachable from the marked nodes, forward (succ) or backward (pred). */
static void reach(const tg_graph *g, char *mark, size_t *queue, int forward)
{
  size_t head = 0, tail = 0, i;
  for (i = 0; i < g->n; i++)
    if (mark[i])
      queue[tail++] = i;
  while (head < tail) {
    const tg_graph_node *gn = &g->nodes[queue[head++]];
    size_t k = forward ? gn->nsucc : gn->npred;
    for (i = 0; i < k; i++) {
      size_t v = forward ? gn->succ[i] : gn->pred[i];
      if (!mark[v]) {
        mark[v] = 1;
        queue[tail++] = v;
      }
    }
  }
}

/* Kahn's algorithm into g->topo; then names one node on each cycle among the rest. */
static int order(build *b)
{
  tg_graph *g = b->g;
  size_t *indeg = calloc(g->n + 1, sizeof *indeg), i, head = 0;
  size_t *stamp = calloc(g->n + 1, sizeof *stamp);
  if (!indeg || !stamp || !(g->topo = malloc((g->n + 1) * sizeof *g->topo))) {
    free(indeg);
    free(stamp);
    return TG_ENOMEM;
  }
  for (i = 0; i < g->n; i++) {
    indeg[i] = g->nodes[i].npred;
    if (!indeg[i])
      g->topo[g->ntopo++] = i;
  }
  while (head < g->ntopo) {
    const tg_graph_node *gn = &g->nodes[g->topo[head++]];
    for (i = 0; i < gn->nsucc; i++)
      if (--indeg[gn->succ[i]] == 0)
        g->topo[g->ntopo++] = gn->succ[i];
  }
  /* Every node left has a predecessor left: walking predecessors must close a cycle. */
  for (i = 0; i < g->n; i++) {
    size_t v = i;
    if (!indeg[i] || stamp[i])
      continue;
    while (!stamp[v]) {
      size_t k = 0;
      stamp[v] = i + 1;
      while (!indeg[g->nodes[v].pred[k]])
        k++;
      v = g->nodes[v].pred[k];
    }
    if (stamp[v] == i + 1)
      report(b, g->nodes[v].id, "connections", "cycle through node %s", g->nodes[v].id);
  }
  free(indeg);
  free(stamp);
  return 0;
}

static int check_rules(build *b)
{
  tg_graph *g = b->g;
  size_t i, nstart = 0, nend = 0;
  char *mark = calloc(g->n + 1, 1);
  size_t *queue = calloc(g->n + 1, sizeof *queue);
  if (!mark || !queue) {
    free(mark);
    free(queue);
    return TG_ENOMEM;
  }
  g->start = NONE;
  for (i = 0; i < g->n; i++) {
    const tg_graph_node *gn = &g->nodes[i];
    if (gn->type == TG_NODE_START && nstart++ == 0)
      g->start = i;
    nend += gn->type == TG_NODE_END;
    if (gn->type == TG_NODE_START && gn->npred)
      report(b, gn->id, "connections", "Start node has an incoming connection");
    if (gn->type == TG_NODE_END && gn->nsucc)
      report(b, gn->id, "connections", "End node has an outgoing connection");
  }
  if (nstart != 1)
    report(b, NULL, "nodes",
           nstart ? "definition has more than one Start node" : "definition has no Start node");
  if (!nend)
    report(b, NULL, "nodes", "definition has no End node");
  if (g->start != NONE) {
    mark[g->start] = 1;
    reach(g, mark, queue, 1);
    for (i = 0; i < g->n; i++)
      if (!mark[i])
        report(b, g->nodes[i].id, "connections", "node %s is unreachable from Start",
               g->nodes[i].id);
  }
  if (nend) {
    for (i = 0; i < g->n; i++)
      mark[i] = g->nodes[i].type == TG_NODE_END;
    reach(g, mark, queue, 0);
    for (i = 0; i < g->n; i++)
      if (!mark[i])
        report(b, g->nodes[i].id, "connections", "no End node is reachable from node %s",
               g->nodes[i].id);
  }
  free(mark);
  free(queue);
  return order(b);
}

int tg_graph__build(tg_graph **out, const json_t *definition, tg_graph_report_fn report_fn,
                    void *arg, size_t *problems)
{
  const json_t *nodes = json_object_get(definition, "nodes");
  const json_t *conns = json_object_get(definition, "connections");
  build b = {NULL, report_fn, arg, 0, 0};
  size_t i, nn = json_array_size(nodes);
  int rc = TG_ENOMEM;

  *out = NULL;
  if (problems)
    *problems = 0;
  if (!json_is_object(definition) || !json_is_array(nodes) || nn == 0) {
    report(&b, NULL, json_is_object(definition) ? "nodes" : NULL,
           json_is_object(definition) ? "definition needs a non-empty nodes array"
                                      : "definition must be an object");
    rc = TG_EINVAL;
    goto done;
  }
  if (nn > TG_GRAPH_MAX_NODES || json_array_size(conns) > TG_GRAPH_MAX_CONNECTIONS) {
    report(&b, NULL, nn > TG_GRAPH_MAX_NODES ? "nodes" : "connections",
           "a definition has at most %d nodes and %d connections", TG_GRAPH_MAX_NODES,
           TG_GRAPH_MAX_CONNECTIONS);
    rc = TG_EINVAL;
    goto done;
  }
  if (!(b.g = calloc(1, sizeof *b.g)) || !(b.g->nodes = calloc(nn, sizeof *b.g->nodes)) ||
      !(b.g->by_id = tg_map_new(0, NULL)) || !(b.g->empty = json_object()))
    goto done;
  b.g->def = json_incref((json_t *)definition);
  if (conns && !json_is_null(conns) && !json_is_array(conns))
    report(&b, NULL, "connections", "must be an array of {id, from, to}");
  if ((rc = add_nodes(&b, nodes)) || (rc = add_edges(&b, json_is_array(conns) ? conns : NULL)))
    goto done;
  for (i = 0; i < b.g->n; i++)
    if (b.g->nodes[i].type == TG_NODE_CONDITIONAL && (rc = add_branches(&b, &b.g->nodes[i])))
      goto done;
  rc = check_rules(&b);
done:
  if (rc == TG_ENOMEM || rc == TG_EINVAL) {
    tg_graph_free(b.g);
    b.g = NULL;
  }
  if (problems)
    *problems = b.problems;
  *out = b.g;
  return rc;
}

int tg_graph_build(tg_graph **out, const json_t *definition)
{
  size_t problems;
  int rc = tg_graph__build(out, definition, NULL, NULL, &problems);
  if (rc == 0 && problems) {
    tg_graph_free(*out);
    *out = NULL;
    rc = TG_EINVAL;
  }
  return rc;
}

void tg_graph_free(tg_graph *g)
{
  if (!g)
    return;
  for (size_t i = 0; i < g->n; i++) {
    for (size_t k = 0; k < g->nodes[i].nbranches; k++)
      tg_expr_free(g->nodes[i].branches[k].cond);
    free(g->nodes[i].branches);
    free((char *)g->nodes[i].id);
  }
  free(g->nodes);
  free(g->edges);
  free(g->topo);
  tg_map_free(g->by_id);
  json_decref(g->empty);
  json_decref(g->def);
  free(g);
}

size_t tg_graph_size(const tg_graph *g)
{
  return g->n;
}

const tg_graph_node *tg_graph_node_at(const tg_graph *g, size_t i)
{
  return &g->nodes[i];
}

size_t tg_graph_start(const tg_graph *g)
{
  return g->start;
}

const size_t *tg_graph_topo(const tg_graph *g)
{
  return g->topo;
}

size_t tg_graph__topo_len(const tg_graph *g)
{
  return g->ntopo;
}
