/*
 * wk_graph_stub: a MINIMAL stand-in for common/tg_graph.c and common/tg_expr.c so the engine
 * builds and runs before the definition layer lands. DELETE AT MERGE: the real modules replace
 * every function here. Graph: string or integer ids, connections, Conditional branches, Kahn's
 * topological order. Expressions: comparisons of a path with a literal (< <= > >= == !=) joined
 * by AND; nothing else.
 */
#include "tg_err.h"
#include "tg_expr.h"
#include "tg_graph.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tg_graph {
  json_t *def, *empty;
  tg_graph_node *nodes;
  char **ids;
  size_t n, start, *topo;
};

#define MAX_TERMS 16
struct tg_expr {
  size_t n;
  char *path[MAX_TERMS];
  char op[MAX_TERMS][3];
  json_t *lit[MAX_TERMS];
};

static const char *const TYPE_NAMES[TG_NODE_TYPE_COUNT] = {
    "Start", "End", "MCP", "API", "Conditional", "HITL", "Agent", "Code", "Self-Review"};

const char *tg_node_type_name(tg_node_type t)
{
  return t < TG_NODE_TYPE_COUNT ? TYPE_NAMES[t] : "?";
}

tg_node_type tg_node_type_parse(const char *s)
{
  for (int i = 0; s && i < TG_NODE_TYPE_COUNT; i++)
    if (strcmp(s, TYPE_NAMES[i]) == 0)
      return (tg_node_type)i;
  return TG_NODE_TYPE_COUNT;
}

static char *id_str(const json_t *v)
{
  char buf[32];
  if (json_is_string(v))
    return strdup(json_string_value(v));
  if (json_is_integer(v)) {
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    return strdup(buf);
  }
  return NULL;
}

size_t tg_graph_find(const tg_graph *g, const char *id)
{
  for (size_t i = 0; id && i < g->n; i++)
    if (strcmp(g->ids[i], id) == 0)
      return i;
  return (size_t)-1;
}

static size_t find_v(const tg_graph *g, const json_t *v)
{
  char *s = id_str(v);
  size_t i = tg_graph_find(g, s);
  free(s);
  return i;
}

static int push(size_t **a, size_t *n, size_t v)
{
  size_t *g;
  for (size_t i = 0; i < *n; i++)
    if ((*a)[i] == v)
      return 0;
  if (!(g = realloc(*a, (*n + 1) * sizeof *g)))
    return TG_ENOMEM;
  g[(*n)++] = v;
  *a = g;
  return 0;
}

int tg_graph_build(tg_graph **out, const json_t *definition)
{
  const json_t *nodes = json_object_get(definition, "nodes");
  const json_t *conns = json_object_get(definition, "connections"), *c;
  tg_graph *g = calloc(1, sizeof *g);
  size_t i, k, *indeg = NULL, q = 0, nstart = 0;
  *out = NULL;
  if (!g)
    return TG_ENOMEM;
  g->def = json_incref((json_t *)definition);
  g->empty = json_object();
  g->n = json_array_size(nodes);
  g->nodes = calloc(g->n + 1, sizeof *g->nodes);
  g->ids = calloc(g->n + 1, sizeof *g->ids);
  g->topo = calloc(g->n + 1, sizeof *g->topo);
  indeg = calloc(g->n + 1, sizeof *indeg);
  if (!g->nodes || !g->ids || !g->topo || !indeg || !g->n || !g->empty)
    goto fail;
  for (i = 0; i < g->n; i++) {
    const json_t *nd = json_array_get(nodes, i), *cfg = json_object_get(nd, "config");
    if (!(g->ids[i] = id_str(json_object_get(nd, "id"))))
      goto fail;
    g->nodes[i].id = g->ids[i];
    g->nodes[i].name = json_string_value(json_object_get(nd, "name"));
    if (!g->nodes[i].name)
      g->nodes[i].name = "";
    g->nodes[i].type = tg_node_type_parse(json_string_value(json_object_get(nd, "type")));
    g->nodes[i].def = nd;
    g->nodes[i].config = json_is_object(cfg) ? cfg : g->empty;
    if (g->nodes[i].type == TG_NODE_TYPE_COUNT)
      goto fail;
    if (g->nodes[i].type == TG_NODE_START) {
      g->start = i;
      nstart++;
    }
  }
  json_array_foreach(conns, k, c)
  {
    size_t a = find_v(g, json_object_get(c, "from")), b = find_v(g, json_object_get(c, "to"));
    size_t before;
    if (a >= g->n || b >= g->n)
      goto fail;
    before = g->nodes[b].npred;
    if (push(&g->nodes[a].succ, &g->nodes[a].nsucc, b) ||
        push(&g->nodes[b].pred, &g->nodes[b].npred, a))
      goto fail;
    if (g->nodes[b].npred > before)
      indeg[b]++;
  }
  for (i = 0; i < g->n; i++) {
    tg_graph_node *n = &g->nodes[i];
    const json_t *br = json_object_get(n->config, "branches"), *b;
    if (n->type != TG_NODE_CONDITIONAL)
      continue;
    if (!(n->branches = calloc(json_array_size(br) + 1, sizeof *n->branches)))
      goto fail;
    json_array_foreach(br, k, b)
    {
      tg_graph_branch *gb = &n->branches[n->nbranches];
      const char *cond = json_string_value(json_object_get(b, "condition"));
      const char *type = json_string_value(json_object_get(b, "type"));
      char err[128];
      gb->target = find_v(g, json_object_get(b, "targetNodeId"));
      gb->condition = cond ? cond : "";
      if (gb->target >= g->n)
        goto fail;
      if (!(type && strcmp(type, "else") == 0) && *gb->condition &&
          tg_expr_parse(&gb->cond, gb->condition, err, sizeof err))
        goto fail;
      n->nbranches++;
    }
  }
  for (i = 0; i < g->n; i++)
    if (!indeg[i])
      g->topo[q++] = i;
  for (i = 0; i < q; i++) {
    tg_graph_node *n = &g->nodes[g->topo[i]];
    for (k = 0; k < n->nsucc; k++)
      if (--indeg[n->succ[k]] == 0)
        g->topo[q++] = n->succ[k];
  }
  if (q != g->n || nstart != 1)
    goto fail;
  free(indeg);
  *out = g;
  return 0;
fail:
  free(indeg);
  tg_graph_free(g);
  return TG_EINVAL;
}

void tg_graph_free(tg_graph *g)
{
  if (!g)
    return;
  for (size_t i = 0; i < g->n; i++) {
    if (g->nodes) {
      free(g->nodes[i].succ);
      free(g->nodes[i].pred);
      for (size_t k = 0; k < g->nodes[i].nbranches; k++)
        tg_expr_free(g->nodes[i].branches[k].cond);
      free(g->nodes[i].branches);
    }
    if (g->ids)
      free(g->ids[i]);
  }
  free(g->nodes);
  free(g->ids);
  free(g->topo);
  json_decref(g->def);
  json_decref(g->empty);
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

/* ---- expressions: path op literal (AND path op literal)* ---- */

static const char *skip(const char *s)
{
  while (isspace((unsigned char)*s))
    s++;
  return s;
}

int tg_expr_parse(tg_expr **out, const char *src, char *err, size_t errlen)
{
  tg_expr *e = calloc(1, sizeof *e);
  const char *s = src;
  *out = NULL;
  if (!e)
    return TG_ENOMEM;
  for (;;) {
    const char *p = skip(s), *q = p;
    size_t n = e->n;
    json_error_t je;
    if (n == MAX_TERMS)
      goto bad;
    while (isalnum((unsigned char)*q) || *q == '_' || *q == '.' || *q == '-')
      q++;
    if (q == p || !(e->path[n] = strndup(p, (size_t)(q - p))))
      goto bad;
    p = skip(q);
    q = p;
    while (*q && strchr("<>=!", *q))
      q++;
    if (q == p || q - p > 2)
      goto bad;
    memcpy(e->op[n], p, (size_t)(q - p));
    if (strcmp(e->op[n], "=") == 0)
      strcpy(e->op[n], "==");
    p = skip(q);
    q = p;
    if (*p == '\'' || *p == '"') {
      char quote = *p;
      for (q = p + 1; *q && *q != quote; q++)
        ;
      if (!*q)
        goto bad;
      e->lit[n] = json_stringn(p + 1, (size_t)(q - p - 1));
      q++;
    } else {
      char buf[64];
      while (*q && !isspace((unsigned char)*q))
        q++;
      if (q == p || (size_t)(q - p) >= sizeof buf)
        goto bad;
      memcpy(buf, p, (size_t)(q - p));
      buf[q - p] = 0;
      e->lit[n] = json_loads(buf, JSON_DECODE_ANY, &je);
    }
    if (!e->lit[n])
      goto bad;
    e->n++;
    p = skip(q);
    if (!*p)
      break;
    if (strncasecmp(p, "AND", 3) != 0 && strncmp(p, "&&", 2) != 0)
      goto bad;
    s = p + (*p == '&' ? 2 : 3);
  }
  *out = e;
  return 0;
bad:
  snprintf(err, errlen, "column %d: cannot parse", (int)(s - src) + 1);
  tg_expr_free(e);
  return TG_EINVAL;
}

void tg_expr_free(tg_expr *e)
{
  if (!e)
    return;
  for (size_t i = 0; i < MAX_TERMS; i++) {
    free(e->path[i]);
    json_decref(e->lit[i]);
  }
  free(e);
}

void tg_expr_each_var(const tg_expr *e, void (*fn)(void *arg, const char *path), void *arg)
{
  for (size_t i = 0; i < e->n; i++)
    fn(arg, e->path[i]);
}

static const json_t *lookup(const json_t *scope, const char *path)
{
  char buf[256], *save = NULL, *seg;
  const json_t *v = scope;
  int first = 1;
  snprintf(buf, sizeof buf, "%s", path);
  for (seg = strtok_r(buf, ".", &save); seg && v; seg = strtok_r(NULL, ".", &save), first = 0) {
    if (first && strcmp(seg, "inputs") && strcmp(seg, "nodes") && strcmp(seg, "vars"))
      v = json_object_get(v, "vars");
    v = json_is_array(v) ? json_array_get(v, (size_t)atol(seg)) : json_object_get(v, seg);
  }
  return v;
}

int tg_expr_eval(const tg_expr *e, const json_t *scope, int *result, char *err, size_t errlen)
{
  *result = 1;
  for (size_t i = 0; i < e->n; i++) {
    const json_t *v = lookup(scope, e->path[i]), *l = e->lit[i];
    const char *op = e->op[i];
    int c;
    if (!v) {
      snprintf(err, errlen, "variable '%s' is not defined", e->path[i]);
      return TG_EINVAL;
    }
    if (json_is_number(v) && json_is_number(l)) {
      double a = json_number_value(v), b = json_number_value(l);
      c = a < b ? -1 : a > b;
    } else if (json_is_string(v) && json_is_string(l)) {
      c = strcmp(json_string_value(v), json_string_value(l));
    } else if (!strcmp(op, "==") || !strcmp(op, "!=")) {
      c = json_equal((json_t *)v, (json_t *)l) ? 0 : 1;
    } else {
      snprintf(err, errlen, "type mismatch: '%s'", e->path[i]);
      return TG_EINVAL;
    }
    if (!((!strcmp(op, "<") && c < 0) || (!strcmp(op, "<=") && c <= 0) ||
          (!strcmp(op, ">") && c > 0) || (!strcmp(op, ">=") && c >= 0) ||
          (!strcmp(op, "==") && c == 0) || (!strcmp(op, "!=") && c != 0)))
      *result = 0;
  }
  return 0;
}
