/*
 * tg_graph_vars: the variables an Agent node is asked to produce as structured output (contract
 * in tg_graph_vars.h; README "Agent nodes").
 *
 * One pass over the graph in topological order. Each node is a reader of the bare variables it
 * names: the variables of its Conditional branches (tg_expr_each_var_typed; "x.y" and "vars.x.y"
 * name x, "inputs.*" and "nodes.*" name none), every {{vars.x}} template in its config, and an
 * End node's outputVariables entries {name, type} (those without a value). A variable x read by
 * node r is known when it is a declared input of Start, or an ancestor of r may produce it:
 *   - any MCP or API node (its output is only known once it ran): every variable is known;
 *   - a Code node whose config.outputs names x, or whose code assigns x at top level (a line
 *     that starts with `x =`, `x: T =`, `a, x =`, `x +=`, or `let|const|var x =`);
 *   - an Agent whose config.outputSchema has property x, or that this pass already asked for x;
 *     every Agent gives "text";
 *   - a HITL node (decision, comment, decided_at) or a Self-Review node (passed, confidence,
 *     issues).
 * An unknown x is asked of the nearest Agent before r (breadth-first over predecessors, in the
 * definition's connection order; r itself excluded); none: nothing is asked (the run then fails
 * where x is read, with the error naming it). Ancestors count whatever branch a Conditional
 * takes: a variable produced on one branch only is not asked again on another.
 *
 * Types: the most specific one seen over all reads, from the conditions (a number compared with
 * a number literal...) and End's declared types; "any" (the empty schema {}) when nothing says.
 * Pure: reads the graph, allocates only its result and scratch arrays.
 */
#include "tg_graph_vars.h"

#include "tg_err.h"
#include "tg_workflow_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define NONE ((size_t)-1)
#define NAME_MAX_LEN 128 /* a variable name longer than this is never asked for */
#define MAX_TARGETS 32   /* names of one assignment line of a Code node */

static const char *const hitl_vars[] = {"decision", "comment", "decided_at"};
static const char *const review_vars[] = {"passed", "confidence", "issues"};
static const char *const end_types[] = {"string", "number", "boolean", "object", "array"};

typedef struct pass {
  const tg_graph *g;
  size_t n;
  json_t **asked; /* per node: name -> type ("" for any), what the pass asks of that Agent */
  json_t **code;  /* per node: the names a Code node assigns (code_assigns), else NULL */
  char *anc;      /* scratch: the ancestors of the current reader */
  size_t *queue;  /* scratch: the reader, then its ancestors breadth-first */
  size_t qlen;
  size_t reader;
  int opaque; /* an MCP/API ancestor: every variable is known */
  int rc;
} pass;

/* ---- what a node produces ---- */

static int is_ident_start(char c)
{
  return isalpha((unsigned char)c) || c == '_';
}

static int is_ident(char c)
{
  return isalnum((unsigned char)c) || c == '_';
}

/* Adds to set the names the line [p, end) of a Code node's source assigns at top level (at most
 * MAX_TARGETS of one line; a name past them stays unknown, which only asks an Agent for it).
 * 0 or TG_ENOMEM. */
static int line_assigns(const char *p, const char *end, json_t *set)
{
  static const char *const decl[] = {"let ", "const ", "var "};
  const char *name[MAX_TARGETS];
  size_t len[MAX_TARGETS], n = 0;
  int hit = 0;
  for (size_t i = 0; i < sizeof decl / sizeof decl[0]; i++)
    if ((size_t)(end - p) > strlen(decl[i]) && strncmp(p, decl[i], strlen(decl[i])) == 0)
      p += strlen(decl[i]);
  while (p < end) {
    const char *s = p;
    if (!is_ident_start(*p))
      return 0;
    while (p < end && is_ident(*p))
      p++;
    if (n < MAX_TARGETS && (size_t)(p - s) <= NAME_MAX_LEN) {
      name[n] = s;
      len[n++] = (size_t)(p - s);
    }
    while (p < end && *p == ' ')
      p++;
    if (p < end && *p == ':') /* an annotation: x: int = 3 */
      while (p < end && *p != '=')
        p++;
    if (p < end && *p == ',') {
      p++;
      while (p < end && *p == ' ')
        p++;
      continue;
    }
    if (p < end && strchr("+-*/%|&^", *p) && p + 1 < end && p[1] == '=')
      hit = 1;
    else
      hit = p < end && *p == '=' && (p + 1 == end || p[1] != '=');
    break;
  }
  for (size_t i = 0; hit && i < n; i++)
    if (json_object_setn_new(set, name[i], len[i], json_true()))
      return TG_ENOMEM;
  return 0;
}

/* The set (an object name -> true) of the names code assigns at top level, scanned once per Code
 * node: a reader's every variable is looked up in it, so a long source is not read again per
 * read. A new object, or NULL when out of memory. */
static json_t *code_assigns(const char *code)
{
  json_t *set = json_object();
  for (const char *p = code; set && p && *p;) {
    const char *end = strchr(p, '\n');
    if (!end)
      end = p + strlen(p);
    if (line_assigns(p, end, set)) {
      json_decref(set);
      return NULL;
    }
    p = *end ? end + 1 : end;
  }
  return set;
}

static int in_set(const char *name, const char *const *set, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, set[i]) == 0)
      return 1;
  return 0;
}

static int in_array(const json_t *a, const char *name)
{
  size_t i;
  const json_t *v;
  json_array_foreach(a, i, v)
  {
    const char *s =
        json_is_object(v) ? json_string_value(json_object_get(v, "name")) : json_string_value(v);
    if (s && strcmp(s, name) == 0)
      return 1;
  }
  return 0;
}

/* 1 when node k (an ancestor of the reader, or Start) gives name. */
static int produces(const pass *ps, size_t k, const char *name)
{
  const tg_graph_node *gn = tg_graph_node_at(ps->g, k);
  switch (gn->type) {
  case TG_NODE_START:
    return in_array(json_object_get(gn->config, "inputVariables"), name);
  case TG_NODE_CODE:
    return in_array(json_object_get(gn->config, "outputs"), name) || strcmp(name, "stdout") == 0 ||
           json_object_get(ps->code[k], name) != NULL;
  case TG_NODE_AGENT:
    return strcmp(name, "text") == 0 ||
           json_object_get(
               json_object_get(json_object_get(gn->config, "outputSchema"), "properties"), name) !=
               NULL ||
           json_object_get(ps->asked[k], name) != NULL;
  case TG_NODE_HITL:
    return in_set(name, hitl_vars, sizeof hitl_vars / sizeof hitl_vars[0]);
  case TG_NODE_SELF_REVIEW:
    return in_set(name, review_vars, sizeof review_vars / sizeof review_vars[0]);
  default:
    return 0;
  }
}

/* ---- the reader's ancestors ---- */

static void mark_ancestors(pass *ps)
{
  size_t head = 0, tail = 0;
  memset(ps->anc, 0, ps->n);
  ps->opaque = 0;
  ps->queue[tail++] = ps->reader;
  while (head < tail) {
    const tg_graph_node *gn = tg_graph_node_at(ps->g, ps->queue[head++]);
    for (size_t i = 0; i < gn->npred; i++) {
      size_t p = gn->pred[i];
      if (ps->anc[p] || p == ps->reader)
        continue;
      ps->anc[p] = 1;
      ps->queue[tail++] = p;
      if (tg_graph_node_at(ps->g, p)->type == TG_NODE_MCP ||
          tg_graph_node_at(ps->g, p)->type == TG_NODE_API)
        ps->opaque = 1;
    }
  }
  ps->qlen = tail;
}

/* The nearest Agent before the reader (its ancestors are marked), or NONE. Breadth-first, so
 * the queue from mark_ancestors is the order: its first Agent is the nearest. */
static size_t nearest_agent(const pass *ps)
{
  for (size_t q = 1; q < ps->qlen; q++)
    if (tg_graph_node_at(ps->g, ps->queue[q])->type == TG_NODE_AGENT)
      return ps->queue[q];
  return NONE;
}

/* ---- reads ---- */

static const char *type_name(tg_expr_type t)
{
  switch (t) {
  case TG_EXPR_NUMBER:
    return "number";
  case TG_EXPR_STRING:
    return "string";
  case TG_EXPR_BOOLEAN:
    return "boolean";
  default:
    return "";
  }
}

/* The reader reads the bare variable name[0..len) as type ("" for any). */
static void read_var(pass *ps, const char *name, size_t len, const char *type)
{
  char v[NAME_MAX_LEN + 1];
  size_t agent;
  json_t *prev;
  if (ps->rc || ps->opaque || len == 0 || len > NAME_MAX_LEN)
    return;
  memcpy(v, name, len);
  v[len] = '\0';
  for (size_t q = 1; q < ps->qlen; q++) /* Start among them */
    if (produces(ps, ps->queue[q], v))
      return;
  if ((agent = nearest_agent(ps)) == NONE)
    return;
  prev = json_object_get(ps->asked[agent], v);
  if (prev && (*type == '\0' || *json_string_value(prev) != '\0'))
    return; /* the first specific type stays */
  if (json_object_set_new(ps->asked[agent], v, json_string(type)))
    ps->rc = TG_ENOMEM;
}

/* A path of a condition or a template ("vars.x.y", "x.y"): its bare variable. */
static void read_path(pass *ps, const char *path, size_t len, const char *type)
{
  size_t end;
  if ((len >= 7 && strncmp(path, "inputs.", 7) == 0) ||
      (len >= 6 && strncmp(path, "nodes.", 6) == 0) ||
      (len >= 8 && strncmp(path, "secrets.", 8) == 0) || (len == 6 && !memcmp(path, "inputs", 6)) ||
      (len == 5 && !memcmp(path, "nodes", 5)))
    return;
  if (len >= 5 && strncmp(path, "vars.", 5) == 0) {
    path += 5;
    len -= 5;
  }
  for (end = 0; end < len && path[end] != '.'; end++)
    ;
  /* a deeper path reads a member: the variable itself is an object or an array */
  read_var(ps, path, end, end < len ? "" : type);
}

static void on_cond_var(void *arg, const char *path, tg_expr_type t)
{
  read_path(arg, path, strlen(path), type_name(t));
}

/* Every {{vars.x}} template in v. */
static void read_templates(pass *ps, const json_t *v)
{
  if (json_is_string(v)) {
    const char *s = json_string_value(v), *ref;
    size_t a, b, pos = 0, len;
    while (tg_workflow__next_template(s, pos, &a, &b)) {
      tg_workflow__ref(s, a, b, &ref, &len);
      if (len > 5 && strncmp(ref, "vars.", 5) == 0)
        read_path(ps, ref, len, "");
      pos = b;
    }
  } else if (json_is_object(v)) {
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)v, k, m) read_templates(ps, m);
  } else if (json_is_array(v)) {
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m) read_templates(ps, m);
  }
}

static void read_end_outputs(pass *ps, const json_t *outs)
{
  size_t i;
  const json_t *v;
  json_array_foreach(outs, i, v)
  {
    const char *name = json_string_value(json_object_get(v, "name"));
    const char *type = json_string_value(json_object_get(v, "type"));
    if (!name || json_object_get(v, "value"))
      continue;
    if (!type || !in_set(type, end_types, sizeof end_types / sizeof end_types[0]))
      type = "";
    read_var(ps, name, strlen(name), type);
  }
}

static void read_node(pass *ps)
{
  const tg_graph_node *gn = tg_graph_node_at(ps->g, ps->reader);
  mark_ancestors(ps);
  if (ps->opaque)
    return;
  for (size_t b = 0; b < gn->nbranches; b++)
    tg_expr_each_var_typed(gn->branches[b].cond, on_cond_var, ps);
  if (gn->type == TG_NODE_END)
    read_end_outputs(ps, json_object_get(gn->config, "outputVariables"));
  read_templates(ps, gn->config);
}

/* ---- the schema ---- */

static json_t *build_schema(const json_t *asked, const json_t *own, int *rc)
{
  json_t *schema = NULL, *props, *req, *seen = json_object(); /* seen: the names req holds */
  const char *k;
  json_t *t;
  size_t i;
  if (!seen)
    goto oom;
  if (json_is_object(own)) {
    schema = json_deep_copy(own);
  } else {
    schema = json_pack("{s:s}", "type", "object");
  }
  if (!schema)
    goto oom;
  props = json_object_get(schema, "properties");
  if (!json_is_object(props)) {
    if (json_object_set_new(schema, "properties", json_object()))
      goto oom;
    props = json_object_get(schema, "properties");
  }
  req = json_object_get(schema, "required");
  if (!json_is_array(req)) {
    if (json_object_set_new(schema, "required", json_array()))
      goto oom;
    req = json_object_get(schema, "required");
  }
  json_array_foreach(req, i, t)
  {
    if (json_is_string(t) && json_object_set(seen, json_string_value(t), json_true()))
      goto oom;
  }
  json_object_foreach((json_t *)asked, k, t)
  {
    const char *type = json_string_value(t);
    if (!json_object_get(props, k) &&
        json_object_set_new(props, k, *type ? json_pack("{s:s}", "type", type) : json_object()))
      goto oom;
    if (!json_object_get(seen, k) && json_array_append_new(req, json_string(k)))
      goto oom;
  }
  json_decref(seen);
  return schema;
oom:
  json_decref(seen);
  json_decref(schema);
  *rc = TG_ENOMEM;
  return NULL;
}

json_t *tg_graph_agent_schema(const tg_graph *g, size_t i, int *err)
{
  pass ps;
  const size_t *topo = tg_graph_topo(g);
  const tg_graph_node *gn = i < tg_graph_size(g) ? tg_graph_node_at(g, i) : NULL;
  const json_t *own;
  json_t *out = NULL;

  if (err)
    *err = 0;
  if (!gn || gn->type != TG_NODE_AGENT)
    return NULL;
  memset(&ps, 0, sizeof ps);
  ps.g = g;
  ps.n = tg_graph_size(g);
  ps.anc = malloc(ps.n);
  ps.queue = malloc(ps.n * sizeof *ps.queue);
  ps.asked = calloc(ps.n, sizeof *ps.asked);
  ps.code = calloc(ps.n, sizeof *ps.code);
  if (!ps.anc || !ps.queue || !ps.asked || !ps.code) {
    ps.rc = TG_ENOMEM;
    goto done;
  }
  for (size_t k = 0; k < ps.n; k++) {
    const tg_graph_node *kn = tg_graph_node_at(g, k);
    if ((kn->type == TG_NODE_AGENT && !(ps.asked[k] = json_object())) ||
        (kn->type == TG_NODE_CODE &&
         !(ps.code[k] = code_assigns(json_string_value(json_object_get(kn->config, "code")))))) {
      ps.rc = TG_ENOMEM;
      goto done;
    }
  }
  for (size_t t = 0; t < ps.n && ps.rc == 0; t++) {
    ps.reader = topo[t];
    read_node(&ps);
  }
  own = json_object_get(gn->config, "outputSchema");
  if (ps.rc == 0 && (json_object_size(ps.asked[i]) || json_is_object(own)))
    out = build_schema(ps.asked[i], own, &ps.rc);
done:
  for (size_t k = 0; k < ps.n; k++) {
    json_decref(ps.asked ? ps.asked[k] : NULL);
    json_decref(ps.code ? ps.code[k] : NULL);
  }
  free(ps.asked);
  free(ps.code);
  free(ps.anc);
  free(ps.queue);
  if (ps.rc && err)
    *err = ps.rc;
  return ps.rc ? NULL : out;
}
