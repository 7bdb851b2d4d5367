/*
 * tg_workflow: validation, input checking, execution order and template rendering of workflow
 * definitions (DESIGN.md section 6; contract in tg_workflow.h).
 *
 * Validation collects every problem it finds (one error object per problem, naming the node and
 * the field) rather than stopping at the first, so a 422 can show them all. The graph rules are
 * checked only once the nodes themselves are well formed enough to index. Rendering never
 * modifies its input: it builds a new value, and a reference that does not resolve aborts the
 * whole render with a message naming the reference. One render call has one output budget
 * (TG_WORKFLOW_RENDER_MAX) that every substitution draws from before it copies anything, so a
 * definition that repeats a reference to a large value fails with TG_ETOOBIG instead of making
 * the worker copy that value again and again. Nothing here does I/O or keeps state.
 */
#include "tg_workflow.h"

#include "tg_buf.h"
#include "tg_err.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cap on the number of nodes, so validation's quadratic lookups stay cheap on hostile input. */
#define MAX_NODES 256

static const char *const input_types[] = {"string", "number", "boolean", "object", "array"};

static void add_err(json_t *errs, const char *node, const char *field, const char *fmt, ...)
{
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_array_append_new(
      errs, json_pack("{s:s?, s:s?, s:s}", "node", node, "field", field, "message", msg));
}

static const char *str_member(const json_t *o, const char *key)
{
  const json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int nonempty(const char *s)
{
  return s && *s;
}

static const char *node_id(const json_t *node)
{
  return str_member(node, "id");
}

static const char *node_type(const json_t *node)
{
  return str_member(node, "type");
}

static int valid_input_type(const char *t)
{
  for (size_t i = 0; t && i < sizeof input_types / sizeof input_types[0]; i++)
    if (strcmp(t, input_types[i]) == 0)
      return 1;
  return 0;
}

static void check_start(const json_t *config, const char *id, json_t *errs)
{
  const json_t *vars = json_object_get(config, "inputVariables");
  size_t i;
  const json_t *v;
  if (!vars || json_is_null(vars))
    return;
  if (!json_is_array(vars)) {
    add_err(errs, id, "config.inputVariables", "must be an array of {name, type, required}");
    return;
  }
  json_array_foreach(vars, i, v)
  {
    char field[64];
    const char *name = str_member(v, "name");
    const json_t *req = json_object_get(v, "required");
    snprintf(field, sizeof field, "config.inputVariables[%zu]", i);
    if (!json_is_object(v) || !nonempty(name)) {
      add_err(errs, id, field, "needs a non-empty name");
      continue;
    }
    if (json_object_get(v, "type") && !valid_input_type(str_member(v, "type")))
      add_err(errs, id, field, "type of %s must be string, number, boolean, object or array", name);
    if (req && !json_is_boolean(req))
      add_err(errs, id, field, "required of %s must be a boolean", name);
    if (json_object_get(v, "secret") && !json_is_boolean(json_object_get(v, "secret")))
      add_err(errs, id, field, "secret of %s must be a boolean", name);
    else if (json_is_true(json_object_get(v, "secret")) &&
             strcmp(str_member(v, "type") ? str_member(v, "type") : "", "string") != 0)
      add_err(errs, id, field, "secret input %s must have type string", name);
  }
}

static void check_mcp(const json_t *config, const char *id, json_t *errs)
{
  const json_t *provider = json_object_get(config, "provider");
  const json_t *url = json_object_get(config, "url");
  const json_t *headers = json_object_get(config, "headers");
  const json_t *args = json_object_get(config, "arguments");
  const char *tool = str_member(config, "tool");

  if (!nonempty(tool))
    add_err(errs, id, "config.tool", "MCP node needs a tool name");
  if (provider && !json_is_null(provider) && !nonempty(json_string_value(provider)))
    add_err(errs, id, "config.provider", "must be a non-empty string");
  if (url && !json_is_null(url)) {
    const char *u = json_string_value(url);
    if (!u || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
      add_err(errs, id, "config.url", "must be an http(s) URL");
  }
  if ((!provider || json_is_null(provider)) && (!url || json_is_null(url)))
    add_err(errs, id, "config.provider",
            "MCP node needs a provider (managed mode) or a url (ad-hoc mode)");
  if (headers && !json_is_null(headers)) {
    const char *k;
    const json_t *hv;
    if (!json_is_object(headers))
      add_err(errs, id, "config.headers", "must be an object of header name to string");
    else
      json_object_foreach((json_t *)headers, k, hv)
      {
        if (!json_is_string(hv)) {
          add_err(errs, id, "config.headers", "header %s must be a string", k);
          break;
        }
      }
  }
  if (args && !json_is_null(args) && !json_is_object(args))
    add_err(errs, id, "config.arguments", "must be an object");
}

static void check_end(const json_t *config, const char *id, json_t *errs)
{
  const json_t *outs = json_object_get(config, "outputVariables");
  size_t i;
  const json_t *v;
  if (!outs || json_is_null(outs) || json_is_object(outs))
    return;
  if (!json_is_array(outs)) {
    add_err(errs, id, "config.outputVariables", "must be an array of {name, value} or an object");
    return;
  }
  json_array_foreach(outs, i, v)
  {
    if (!json_is_object(v) || !nonempty(str_member(v, "name"))) {
      char field[64];
      snprintf(field, sizeof field, "config.outputVariables[%zu]", i);
      add_err(errs, id, field, "needs a non-empty name");
    }
  }
}

/* Per-node checks. Returns 1 when the node can take part in graph checks (has a usable id). */
static void check_node(const json_t *node, size_t idx, json_t *errs, int *n_start, int *n_end)
{
  char field[64];
  const char *id = node_id(node);
  const char *type = node_type(node);
  const json_t *config = json_object_get(node, "config");

  snprintf(field, sizeof field, "nodes[%zu]", idx);
  if (!json_is_object(node)) {
    add_err(errs, NULL, field, "node must be an object");
    return;
  }
  if (!nonempty(id)) {
    add_err(errs, NULL, field, "node needs a non-empty string id");
    return;
  }
  if (config && !json_is_null(config) && !json_is_object(config)) {
    add_err(errs, id, "config", "must be an object");
    config = NULL;
  }
  if (!type) {
    add_err(errs, id, "type", "node needs a type");
    return;
  }
  if (strcmp(type, "Start") == 0) {
    (*n_start)++;
    check_start(config, id, errs);
  } else if (strcmp(type, "End") == 0) {
    (*n_end)++;
    check_end(config, id, errs);
  } else if (strcmp(type, "MCP") == 0) {
    if (!config)
      add_err(errs, id, "config", "MCP node needs a config {provider|url, tool, arguments}");
    else
      check_mcp(config, id, errs);
  } else if (strcmp(type, "API") == 0 || strcmp(type, "Conditional") == 0) {
    add_err(errs, id, "type", "node type %s is not executable in this version", type);
  } else if (strcmp(type, "Agent") == 0 || strcmp(type, "Code") == 0 ||
             strcmp(type, "Self-Review") == 0 || strcmp(type, "HITL") == 0) {
    add_err(errs, id, "type", "node type %s is not supported", type);
  } else {
    add_err(errs, id, "type", "unknown node type %s", type);
  }
}

/* Index of the node with this id in nodes, or -1. */
static long find_node(const json_t *nodes, const char *id)
{
  size_t i;
  const json_t *n;
  if (!id)
    return -1;
  json_array_foreach(nodes, i, n)
  {
    const char *nid = node_id(n);
    if (nid && strcmp(nid, id) == 0)
      return (long)i;
  }
  return -1;
}

/*
 * The graph rules. next[i] is the successor index of node i (-1 none). Fills order (indices,
 * Start first) with *n_order entries when the chain is valid. Returns the number of errors
 * added.
 */
static size_t check_graph(const json_t *nodes, const json_t *conns, json_t *errs, long *order,
                          size_t *n_order)
{
  size_t n = json_array_size(nodes), i, before = json_array_size(errs);
  long next[MAX_NODES], start = -1, end = -1, cur;
  int indeg[MAX_NODES] = {0}, seen[MAX_NODES] = {0};
  const json_t *c;

  for (i = 0; i < n; i++) {
    const json_t *node = json_array_get(nodes, i);
    const char *t = node_type(node);
    next[i] = -1;
    if (t && strcmp(t, "Start") == 0)
      start = (long)i;
    if (t && strcmp(t, "End") == 0)
      end = (long)i;
    if (find_node(nodes, node_id(node)) != (long)i)
      add_err(errs, node_id(node), "id", "duplicate node id %s", node_id(node));
  }
  if (json_array_size(errs) > before)
    return json_array_size(errs) - before;

  json_array_foreach(conns, i, c)
  {
    char field[64];
    const char *from = str_member(c, "from"), *to = str_member(c, "to");
    long a = find_node(nodes, from), b = find_node(nodes, to);
    if (a < 0 || b < 0) {
      snprintf(field, sizeof field, "connections[%zu].%s", i, a < 0 ? "from" : "to");
      add_err(errs, NULL, field, "connection refers to unknown node %s",
              a < 0 ? (from ? from : "(none)") : (to ? to : "(none)"));
      continue;
    }
    if (next[a] >= 0) {
      add_err(errs, from, "connections", "node %s has more than one outgoing connection", from);
      continue;
    }
    next[a] = b;
    indeg[b]++;
  }
  if (json_array_size(errs) > before)
    return json_array_size(errs) - before;

  if (start >= 0 && indeg[start] > 0)
    add_err(errs, node_id(json_array_get(nodes, (size_t)start)), "connections",
            "Start node has an incoming connection");
  if (end >= 0 && next[end] >= 0)
    add_err(errs, node_id(json_array_get(nodes, (size_t)end)), "connections",
            "End node has an outgoing connection");
  *n_order = 0;
  for (cur = start; cur >= 0; cur = next[cur]) {
    if (seen[cur]) {
      add_err(errs, node_id(json_array_get(nodes, (size_t)cur)), "connections",
              "cycle through node %s", node_id(json_array_get(nodes, (size_t)cur)));
      return json_array_size(errs) - before;
    }
    seen[cur] = 1;
    order[(*n_order)++] = cur;
    if (cur == end)
      break;
  }
  if (start >= 0 && end >= 0 && !seen[end])
    add_err(errs, node_id(json_array_get(nodes, (size_t)end)), "connections",
            "no path from Start to End");
  for (i = 0; i < n; i++)
    if (!seen[i]) {
      const char *id = node_id(json_array_get(nodes, i));
      add_err(errs, id, "connections", "node %s is not on the path from Start to End", id);
    }
  return json_array_size(errs) - before;
}

/* Validates and, when valid and order is not NULL, fills the execution order. */
static json_t *validate(const json_t *def, long *order, size_t *n_order)
{
  json_t *errs = json_array();
  const json_t *nodes = json_object_get(def, "nodes");
  const json_t *conns = json_object_get(def, "connections");
  size_t i;
  const json_t *node;
  int n_start = 0, n_end = 0;
  long tmp[MAX_NODES];
  size_t n_tmp = 0;

  if (!errs)
    return NULL;
  if (!json_is_object(def)) {
    add_err(errs, NULL, NULL, "definition must be an object");
    return errs;
  }
  if (!json_is_array(nodes) || json_array_size(nodes) == 0) {
    add_err(errs, NULL, "nodes", "definition needs a non-empty nodes array");
    return errs;
  }
  if (json_array_size(nodes) > MAX_NODES) {
    add_err(errs, NULL, "nodes", "at most %d nodes", MAX_NODES);
    return errs;
  }
  if (conns && !json_is_null(conns) && !json_is_array(conns)) {
    add_err(errs, NULL, "connections", "must be an array of {id, from, to}");
    return errs;
  }
  json_array_foreach(nodes, i, node) check_node(node, i, errs, &n_start, &n_end);
  if (n_start != 1)
    add_err(errs, NULL, "nodes",
            n_start ? "definition has more than one Start node" : "definition has no Start node");
  if (n_end != 1)
    add_err(errs, NULL, "nodes",
            n_end ? "definition has more than one End node" : "definition has no End node");
  if (json_array_size(errs) == 0) {
    /* Nodes are well formed: every one has an id and a type. */
    check_graph(nodes, json_is_array(conns) ? conns : NULL, errs, order ? order : tmp,
                n_order ? n_order : &n_tmp);
  }
  if (json_array_size(errs) == 0) {
    json_decref(errs);
    return NULL;
  }
  return errs;
}

json_t *tg_workflow_validate(const json_t *definition)
{
  return validate(definition, NULL, NULL);
}

json_t *tg_workflow_order(const json_t *definition)
{
  long order[MAX_NODES];
  size_t n = 0;
  json_t *errs = validate(definition, order, &n), *out;
  if (errs) {
    json_decref(errs);
    return NULL;
  }
  if (!(out = json_array()))
    return NULL;
  for (size_t i = 0; i < n; i++)
    json_array_append(out, json_array_get(json_object_get(definition, "nodes"), (size_t)order[i]));
  return out;
}

static const json_t *find_type(const json_t *definition, const char *type)
{
  size_t i;
  const json_t *n;
  json_array_foreach(json_object_get(definition, "nodes"), i, n)
  {
    const char *t = node_type(n);
    if (t && strcmp(t, type) == 0)
      return n;
  }
  return NULL;
}

static int type_matches(const char *type, const json_t *v)
{
  if (!type)
    return 1;
  if (strcmp(type, "string") == 0)
    return json_is_string(v);
  if (strcmp(type, "number") == 0)
    return json_is_number(v);
  if (strcmp(type, "boolean") == 0)
    return json_is_boolean(v);
  if (strcmp(type, "object") == 0)
    return json_is_object(v);
  if (strcmp(type, "array") == 0)
    return json_is_array(v);
  return 1;
}

/* The inputVariables of the definition's Start node (NULL when there are none). */
static const json_t *input_variables(const json_t *definition)
{
  const json_t *start = find_type(definition, "Start");
  return json_object_get(json_object_get(start, "config"), "inputVariables");
}

json_t *tg_workflow_validate_inputs(const json_t *definition, const json_t *inputs)
{
  const json_t *vars = input_variables(definition);
  json_t *errs = json_array();
  size_t i;
  const json_t *v;

  if (!errs)
    return NULL;
  if (inputs && !json_is_object(inputs)) {
    add_err(errs, NULL, "inputs", "inputs must be an object");
    goto out;
  }
  json_array_foreach(vars, i, v)
  {
    char field[160];
    const char *name = str_member(v, "name"), *type = str_member(v, "type");
    const json_t *val;
    if (!name)
      continue;
    val = inputs ? json_object_get(inputs, name) : NULL;
    snprintf(field, sizeof field, "inputs.%s", name);
    if (!val || json_is_null(val)) {
      if (json_is_true(json_object_get(v, "required")))
        add_err(errs, NULL, field, "%s is required", name);
      continue;
    }
    if (!type_matches(type, val))
      add_err(errs, NULL, field, "%s must be of type %s", name, type);
  }
out:
  if (json_array_size(errs) == 0) {
    json_decref(errs);
    return NULL;
  }
  /* Input errors carry no node. */
  json_array_foreach(errs, i, v) json_object_del((json_t *)v, "node");
  return errs;
}

json_t *tg_workflow_secret_inputs(const json_t *definition)
{
  const json_t *vars = input_variables(definition);
  json_t *out = json_array();
  size_t i;
  const json_t *v;
  if (!out)
    return NULL;
  json_array_foreach(vars, i, v)
  {
    const char *name = str_member(v, "name");
    if (name && json_is_true(json_object_get(v, "secret")) &&
        json_array_append_new(out, json_string(name)) != 0) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}

json_t *tg_workflow_providers(const json_t *definition)
{
  json_t *out = json_array();
  size_t i, j;
  const json_t *n;
  if (!out)
    return NULL;
  json_array_foreach(json_object_get(definition, "nodes"), i, n)
  {
    const char *t = node_type(n);
    const char *p = str_member(json_object_get(n, "config"), "provider");
    int dup = 0;
    if (!t || strcmp(t, "MCP") != 0 || !nonempty(p))
      continue;
    for (j = 0; j < json_array_size(out) && !dup; j++)
      dup = strcmp(json_string_value(json_array_get(out, j)), p) == 0;
    if (dup)
      continue;
    /* Insertion sort keeps the array sorted; provider lists are short. */
    for (j = 0; j < json_array_size(out); j++)
      if (strcmp(json_string_value(json_array_get(out, j)), p) > 0)
        break;
    json_array_insert_new(out, j, json_string(p));
  }
  return out;
}

/* ---- templates ---- */

/* Resolves a trimmed expression "inputs.a" / "nodes.n1.output.content.0.text" against ctx. */
static const json_t *resolve(const char *expr, size_t len, const json_t *ctx)
{
  const json_t *cur = ctx;
  size_t i = 0, seg = 0;
  while (i <= len) {
    size_t j = i;
    char key[256];
    while (j < len && expr[j] != '.')
      j++;
    if (j == i || j - i >= sizeof key)
      return NULL;
    memcpy(key, expr + i, j - i);
    key[j - i] = '\0';
    if (seg == 0 && strcmp(key, "inputs") != 0 && strcmp(key, "nodes") != 0)
      return NULL;
    if (json_is_object(cur)) {
      cur = json_object_get(cur, key);
    } else if (json_is_array(cur)) {
      char *end;
      unsigned long idx;
      if (!isdigit((unsigned char)key[0]))
        return NULL;
      idx = strtoul(key, &end, 10);
      if (*end)
        return NULL;
      cur = json_array_get(cur, idx);
    } else {
      return NULL;
    }
    if (!cur)
      return NULL;
    seg++;
    i = j + 1;
  }
  return cur;
}

/* Finds the next "{{" ... "}}" in s from pos; sets [*a, *b) to the whole template. */
static int next_template(const char *s, size_t pos, size_t *a, size_t *b)
{
  const char *o = strstr(s + pos, "{{"), *c;
  if (!o || !(c = strstr(o + 2, "}}")))
    return 0;
  *a = (size_t)(o - s);
  *b = (size_t)(c - s) + 2;
  return 1;
}

/* The expression inside the template [a, b), trimmed. */
static void expr_of(const char *s, size_t a, size_t b, const char **e, size_t *elen)
{
  const char *p = s + a + 2, *q = s + b - 2;
  while (p < q && isspace((unsigned char)*p))
    p++;
  while (q > p && isspace((unsigned char)q[-1]))
    q--;
  *e = p;
  *elen = (size_t)(q - p);
}

static void unresolved(char *err, size_t errlen, const char *s, size_t a, size_t b)
{
  if (err && errlen)
    snprintf(err, errlen, "unresolved reference %.*s", (int)(b - a), s + a);
}

/* One render call: its context, the bytes it may still produce, and its first error. */
typedef struct render {
  const json_t *ctx;
  size_t left; /* of the budget, bytes */
  size_t max;  /* the whole budget, for the message */
  char *err;
  size_t errlen;
  int rc; /* 0, or the TG_E* that stopped the render */
} render;

static void too_big(render *st)
{
  st->rc = TG_ETOOBIG;
  if (st->err && st->errlen)
    snprintf(st->err, st->errlen, "rendered templates exceed the limit of %zu bytes", st->max);
}

/* A json_dump_callback sink: counts against left, or (b != NULL) appends to b. It refuses past
 * its cap, which stops the dump there, and keeps why (a dump also fails when jansson runs out of
 * memory). */
typedef struct sink {
  tg_buf *b;
  size_t left;
  int rc;
} sink;

static int sink_cb(const char *buf, size_t size, void *data)
{
  sink *k = data;
  if (k->b)
    k->rc = tg_buf_add(k->b, buf, size);
  else if (size > k->left)
    k->rc = TG_ETOOBIG;
  else
    k->left -= size;
  return k->rc ? -1 : 0;
}

static int dump(const json_t *v, sink *k)
{
  if (json_dump_callback(v, sink_cb, k, JSON_COMPACT | JSON_ENCODE_ANY) == 0)
    return 0;
  return k->rc ? k->rc : TG_ENOMEM;
}

/* A copy of v, the whole value of a template, charged its compact JSON size. */
static json_t *copy_charged(render *st, const json_t *v)
{
  sink k = {NULL, st->left, 0};
  json_t *out = NULL;
  int rc = dump(v, &k);
  if (!rc && !(out = json_deep_copy(v)))
    rc = TG_ENOMEM;
  if (rc == TG_ETOOBIG)
    too_big(st);
  else if (rc)
    st->rc = rc;
  else
    st->left = k.left;
  return out;
}

/* Appends the text of v (strings raw, other values as compact JSON) to b. */
static int add_text(tg_buf *b, const json_t *v)
{
  sink k = {b, 0, 0};
  if (json_is_string(v))
    return tg_buf_add(b, json_string_value(v), json_string_length(v));
  return dump(v, &k);
}

static json_t *render_string(render *st, const json_t *value)
{
  const char *s = json_string_value(value), *e;
  size_t slen = json_string_length(value), a, b, elen, pos = 0;
  tg_buf buf;
  json_t *out = NULL;
  int rc = 0;

  if (!next_template(s, 0, &a, &b))
    return json_deep_copy(value);
  if (a == 0 && b == slen) {
    const json_t *v;
    expr_of(s, a, b, &e, &elen);
    if (!(v = resolve(e, elen, st->ctx))) {
      unresolved(st->err, st->errlen, s, a, b);
      st->rc = TG_ENOTFOUND;
      return NULL;
    }
    return copy_charged(st, v);
  }
  tg_buf_init(&buf, st->left);
  do {
    const json_t *v;
    expr_of(s, a, b, &e, &elen);
    if (!(v = resolve(e, elen, st->ctx))) {
      unresolved(st->err, st->errlen, s, a, b);
      rc = TG_ENOTFOUND;
      break;
    }
    if ((rc = tg_buf_add(&buf, s + pos, a - pos)) || (rc = add_text(&buf, v)))
      break;
    pos = b;
  } while (next_template(s, pos, &a, &b));
  if (!rc)
    rc = tg_buf_add(&buf, s + pos, slen - pos);
  if (!rc && !(out = json_stringn(tg_buf_str(&buf), tg_buf_len(&buf))))
    rc = TG_ENOMEM;
  if (!rc)
    st->left -= tg_buf_len(&buf);
  else if (rc == TG_ETOOBIG)
    too_big(st);
  else
    st->rc = rc;
  tg_buf_free(&buf);
  return out;
}

static json_t *render_value(render *st, const json_t *value)
{
  json_t *out;
  if (!value)
    return json_null();
  if (json_is_string(value))
    return render_string(st, value);
  if (json_is_object(value)) {
    const char *k;
    json_t *v;
    if (!(out = json_object()))
      return NULL;
    json_object_foreach((json_t *)value, k, v)
    {
      json_t *r = render_value(st, v);
      if (!r || json_object_set_new(out, k, r)) {
        json_decref(out);
        return NULL;
      }
    }
    return out;
  }
  if (json_is_array(value)) {
    size_t i;
    json_t *v;
    if (!(out = json_array()))
      return NULL;
    json_array_foreach(value, i, v)
    {
      json_t *r = render_value(st, v);
      if (!r || json_array_append_new(out, r)) {
        json_decref(out);
        return NULL;
      }
    }
    return out;
  }
  return json_deep_copy(value);
}

static void render_init(render *st, const json_t *ctx, size_t max_bytes, char *err, size_t errlen)
{
  st->ctx = ctx;
  st->left = st->max = max_bytes;
  st->err = err;
  st->errlen = errlen;
  st->rc = 0;
  if (err && errlen)
    err[0] = '\0';
}

int tg_workflow_render_capped(json_t **out, const json_t *value, const json_t *ctx,
                              size_t max_bytes, char *err, size_t errlen)
{
  render st;
  render_init(&st, ctx, max_bytes, err, errlen);
  *out = render_value(&st, value);
  if (*out)
    return 0;
  return st.rc ? st.rc : TG_ENOMEM;
}

json_t *tg_workflow_render(const json_t *value, const json_t *ctx, char *err, size_t errlen)
{
  json_t *out;
  tg_workflow_render_capped(&out, value, ctx, TG_WORKFLOW_RENDER_MAX, err, errlen);
  return out;
}

json_t *tg_workflow_end_output(const json_t *end_node, const json_t *ctx, char *err, size_t errlen)
{
  const json_t *outs = json_object_get(json_object_get(end_node, "config"), "outputVariables");
  json_t *out = json_object();
  size_t i;
  const char *k;
  json_t *v;
  render st;

  render_init(&st, ctx, TG_WORKFLOW_RENDER_MAX, err, errlen);
  if (!out)
    return NULL;
  if (json_is_array(outs)) {
    json_array_foreach(outs, i, v)
    {
      const char *name = str_member(v, "name");
      json_t *r;
      if (!name)
        continue;
      r = render_value(&st, json_object_get(v, "value"));
      if (!r || json_object_set_new(out, name, r))
        goto fail;
    }
  } else if (json_is_object(outs)) {
    json_object_foreach((json_t *)outs, k, v)
    {
      json_t *r = render_value(&st, v);
      if (!r || json_object_set_new(out, k, r))
        goto fail;
    }
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}
