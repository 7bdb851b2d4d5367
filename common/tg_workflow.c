/*
 * tg_workflow: validation, input checking, execution order and template rendering of workflow
 * definitions in the builder's format (contract in tg_workflow.h; README "Workflow definitions").
 *
 * Validation collects every problem it finds (one error object per problem, naming the node and
 * the field) rather than stopping at the first, so a 422 can show them all: the graph rules come
 * from tg_graph's lenient build (tg_graph_int.h), the per-type config rules from
 * tg_workflow_nodes.c, and the template references are checked here against the graph (an input
 * the Start node declares; a node that runs before the one using it). Rendering never modifies
 * its input: it builds a new value, and a reference that does not resolve aborts the whole
 * render with a message naming the reference. One render call has one output budget
 * (TG_WORKFLOW_RENDER_MAX) that every substitution draws from before it copies anything, so a
 * definition that repeats a reference to a large value fails with TG_ETOOBIG instead of making
 * the worker copy that value again and again. Nothing here does I/O or keeps state.
 */
#include "tg_workflow.h"
#include "tg_workflow_int.h"

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_graph_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define add_err tg_workflow__err
#define NONE ((size_t)-1)
#define REF_MAX 256

static const char *str_member(const json_t *o, const char *key)
{
  const json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int nonempty(const char *s)
{
  return s && *s;
}

/* ---- validation ---- */

/* One validation: the errors, the graph, and the node whose config is being walked. */
typedef struct vstate {
  json_t *errs;
  const tg_graph *g;
  const json_t *declared; /* the Start node's inputVariables */
  size_t node;
  char *anc; /* anc[i]: node i runs before st->node (when anc_ready) */
  size_t *queue;
  int anc_ready;
  const char *field; /* the field of the condition being checked (tg_expr_each_var) */
} vstate;

static void on_report(void *arg, const char *node, const char *field, const char *message)
{
  add_err(arg, node, field, "%s", message);
}

/* Marks the ancestors of st->node (backwards over predecessors). */
static void ancestors(vstate *st)
{
  size_t head = 0, tail = 0, n = tg_graph_size(st->g);
  memset(st->anc, 0, n);
  st->queue[tail++] = st->node;
  while (head < tail) {
    const tg_graph_node *gn = tg_graph_node_at(st->g, st->queue[head++]);
    for (size_t i = 0; i < gn->npred; i++)
      if (!st->anc[gn->pred[i]]) {
        st->anc[gn->pred[i]] = 1;
        st->queue[tail++] = gn->pred[i];
      }
  }
  st->anc_ready = 1;
}

static int declared_input(const vstate *st, const char *name, size_t len)
{
  size_t i;
  const json_t *v;
  json_array_foreach(st->declared, i, v)
  {
    const char *n = str_member(v, "name");
    if (n && strlen(n) == len && memcmp(n, name, len) == 0)
      return 1;
  }
  return 0;
}

/*
 * Checks a reference ("inputs.x", "nodes.<id>.output.y", "vars.z", "secrets.name") used by
 * st->node. Returns 1 when it is known, else 0 with the reason in why.
 */
static int known_ref(vstate *st, const char *ref, size_t len, char *why, size_t n)
{
  size_t r = 0, s;
  while (r < len && ref[r] != '.')
    r++;
  s = r < len ? r + 1 : len; /* the second segment starts here */
  while (r + 1 < len && s < len && ref[s] != '.')
    s++;
  if (r == 6 && memcmp(ref, "inputs", 6) == 0) {
    /* A Start without inputVariables takes any inputs (the chain format of DESIGN.md). */
    if (s > r + 1 && json_is_array(st->declared) && !declared_input(st, ref + r + 1, s - r - 1)) {
      snprintf(why, n, "input %.*s is not declared by the Start node", (int)(s - r - 1),
               ref + r + 1);
      return 0;
    }
    return 1;
  }
  if (r == 5 && memcmp(ref, "nodes", 5) == 0) {
    char id[REF_MAX];
    size_t k;
    if (s <= r + 1)
      return 1;
    snprintf(id, sizeof id, "%.*s", (int)(s - r - 1), ref + r + 1);
    if ((k = tg_graph_find(st->g, id)) == NONE) {
      snprintf(why, n, "there is no node %s", id);
      return 0;
    }
    if (!st->anc_ready)
      ancestors(st);
    if (!st->anc[k]) {
      snprintf(why, n, "node %s does not run before this node", id);
      return 0;
    }
    return 1;
  }
  if (r == 4 && memcmp(ref, "vars", 4) == 0)
    return 1;
  if (r == 7 && memcmp(ref, "secrets", 7) == 0) {
    if (s > r + 1)
      return 1;
    snprintf(why, n, "a secrets reference needs a name: {{secrets.<name>}}");
    return 0;
  }
  snprintf(why, n, "a reference starts with inputs, nodes, vars or secrets");
  return 0;
}

static void check_string(vstate *st, const char *s, const char *field)
{
  size_t a, b, pos = 0, len;
  const char *ref;
  char why[REF_MAX + 64];
  while (tg_workflow__next_template(s, pos, &a, &b)) {
    tg_workflow__ref(s, a, b, &ref, &len);
    if (len >= REF_MAX)
      add_err(st->errs, tg_graph_node_at(st->g, st->node)->id, field,
              "template reference %.40s... is longer than %d bytes", s + a, REF_MAX);
    else if (!known_ref(st, ref, len, why, sizeof why))
      add_err(st->errs, tg_graph_node_at(st->g, st->node)->id, field,
              "unknown template reference %.*s: %s", (int)(b - a), s + a, why);
    pos = b;
  }
}

/* Checks the templates of every string in v; field holds v's path (up to flen bytes used). */
static void walk(vstate *st, const json_t *v, char *field, size_t flen, size_t cap)
{
  if (json_is_string(v)) {
    check_string(st, json_string_value(v), field);
  } else if (json_is_object(v)) {
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)v, k, m)
    {
      snprintf(field + flen, cap - flen, ".%s", k);
      walk(st, m, field, strlen(field), cap);
    }
  } else if (json_is_array(v)) {
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m)
    {
      snprintf(field + flen, cap - flen, "[%zu]", i);
      walk(st, m, field, strlen(field), cap);
    }
  }
  field[flen] = '\0';
}

/* A condition's variable: paths under inputs and nodes must be known, as in templates. */
static void on_var(void *arg, const char *path)
{
  vstate *st = arg;
  char why[REF_MAX + 64];
  if ((strncmp(path, "inputs.", 7) == 0 || strncmp(path, "nodes.", 6) == 0) &&
      strlen(path) < REF_MAX && !known_ref(st, path, strlen(path), why, sizeof why))
    add_err(st->errs, tg_graph_node_at(st->g, st->node)->id, st->field, "unknown variable %s: %s",
            path, why);
}

/* A Self-Review node's config.target: a node that runs before it (it judges that output). */
static void check_review_target(vstate *st, const tg_graph_node *gn)
{
  const json_t *t = json_object_get(gn->config, "target");
  char id[REF_MAX], why[REF_MAX + 64], ref[REF_MAX + 8];
  if (!t || json_is_null(t) || !tg_graph__id(t, id, sizeof id))
    return; /* absent, or not an id: tg_workflow_nodes.c says so */
  snprintf(ref, sizeof ref, "nodes.%s", id);
  if (!known_ref(st, ref, strlen(ref), why, sizeof why))
    add_err(st->errs, gn->id, "config.target", "%s", why);
}

static void check_node(vstate *st)
{
  const tg_graph_node *gn = tg_graph_node_at(st->g, st->node);
  char field[256] = "config";
  tg_workflow__check_config(gn, st->errs);
  if (gn->type == TG_NODE_CODE)
    return;
  st->anc_ready = 0;
  if (gn->type == TG_NODE_SELF_REVIEW)
    check_review_target(st, gn);
  walk(st, gn->config, field, strlen(field), sizeof field);
  for (size_t i = 0; i < gn->nbranches; i++) {
    char f[64];
    snprintf(f, sizeof f, "config.branches[%zu].condition", i);
    st->field = f;
    tg_expr_each_var(gn->branches[i].cond, on_var, st);
  }
}

/* Validates; when valid and gout is not NULL, hands over the graph. */
static json_t *validate(const json_t *def, tg_graph **gout)
{
  json_t *errs = json_array();
  tg_graph *g = NULL;
  vstate st;
  int rc;
  size_t n;

  if (gout)
    *gout = NULL;
  if (!errs)
    return NULL;
  memset(&st, 0, sizeof st);
  rc = tg_graph__build(&g, def, on_report, errs, NULL);
  if (rc == TG_ENOMEM)
    add_err(errs, NULL, NULL, "out of memory while validating");
  if (!g)
    return errs;
  n = tg_graph_size(g);
  st.errs = errs;
  st.g = g;
  if (tg_graph_start(g) != NONE)
    st.declared = json_object_get(tg_graph_node_at(g, tg_graph_start(g))->config, "inputVariables");
  if (!(st.anc = malloc(n + 1)) || !(st.queue = malloc((n + 1) * sizeof *st.queue))) {
    add_err(errs, NULL, NULL, "out of memory while validating");
  } else {
    for (st.node = 0; st.node < n; st.node++)
      if (tg_graph_node_at(g, st.node)->type != TG_NODE_UNKNOWN)
        check_node(&st);
  }
  free(st.anc);
  free(st.queue);
  if (json_array_size(errs) == 0) {
    json_decref(errs);
    errs = NULL;
    if (gout) {
      *gout = g;
      g = NULL;
    }
  }
  tg_graph_free(g);
  return errs;
}

json_t *tg_workflow_validate(const json_t *definition)
{
  return validate(definition, NULL);
}

json_t *tg_workflow_order(const json_t *definition)
{
  tg_graph *g;
  json_t *errs = validate(definition, &g), *out;
  const size_t *topo;
  if (errs || !g) {
    json_decref(errs);
    return NULL;
  }
  topo = tg_graph_topo(g);
  if ((out = json_array()))
    for (size_t i = 0; i < tg_graph_size(g); i++)
      if (json_array_append(out, (json_t *)tg_graph_node_at(g, topo[i])->def) != 0) {
        json_decref(out);
        out = NULL;
        break;
      }
  tg_graph_free(g);
  return out;
}

static const json_t *find_type(const json_t *definition, const char *type)
{
  size_t i;
  const json_t *n;
  json_array_foreach(json_object_get(definition, "nodes"), i, n)
  {
    const char *t = str_member(n, "type");
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
    const char *t = str_member(n, "type");
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

/* Resolves a trimmed reference "inputs.a" / "nodes.n1.output.content.0.text" / "vars.x" /
 * "secrets.name" against ctx. */
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
    if (seg == 0 && strcmp(key, "inputs") != 0 && strcmp(key, "nodes") != 0 &&
        strcmp(key, "vars") != 0 && strcmp(key, "secrets") != 0)
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
int tg_workflow__next_template(const char *s, size_t pos, size_t *a, size_t *b)
{
  const char *o = strstr(s + pos, "{{"), *c;
  if (!o || !(c = strstr(o + 2, "}}")))
    return 0;
  *a = (size_t)(o - s);
  *b = (size_t)(c - s) + 2;
  return 1;
}

/* The expression inside the template [a, b), trimmed. */
void tg_workflow__ref(const char *s, size_t a, size_t b, const char **e, size_t *elen)
{
  const char *p = s + a + 2, *q = s + b - 2;
  while (p < q && isspace((unsigned char)*p))
    p++;
  while (q > p && isspace((unsigned char)q[-1]))
    q--;
  *e = p;
  *elen = (size_t)(q - p);
}

/* 1 for a {{secrets.*}} reference while ctx has no "secrets": it stays as written (the
 * executors resolve it into the outgoing request only). */
static int kept(const char *ref, size_t len, const json_t *ctx)
{
  return len >= 8 && strncmp(ref, "secrets.", 8) == 0 &&
         !json_is_object(json_object_get(ctx, "secrets"));
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

/* 1 when text holds a {{secrets.*}} reference ("{{", optional spaces, "secrets."). */
static int holds_secret_ref(const char *text, size_t len)
{
  const char *p = text, *end = text + len;
  while ((p = memchr(p, '{', (size_t)(end - p))) != NULL && end - p >= 2) {
    const char *q = p + 2;
    if (p[1] != '{') {
      p++;
      continue;
    }
    while (q < end && *q == ' ')
      q++;
    if ((size_t)(end - q) >= 8 && memcmp(q, "secrets.", 8) == 0)
      return 1;
    p += 2;
  }
  return 0;
}

/* 1 when any string in v holds a {{secrets.*}} reference. */
static int value_holds_secret_ref(const json_t *v)
{
  const char *k;
  size_t i;
  json_t *m;
  if (json_is_string(v))
    return holds_secret_ref(json_string_value(v), json_string_length(v));
  if (json_is_object(v)) {
    json_object_foreach((json_t *)v, k, m)
    {
      if (holds_secret_ref(k, strlen(k)) || value_holds_secret_ref(m))
        return 1;
    }
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, m)
    {
      if (value_holds_secret_ref(m))
        return 1;
    }
  }
  return 0;
}

/*
 * While secrets stay as written (kept), a value substituted from the run (an input, a node's
 * output) must not bring a {{secrets.*}} reference of its own: the executors substitute every
 * such reference in the rendered config, so a tool or API answer holding one would otherwise
 * have the user's secret sent wherever the next node sends that text. Refused (TG_EINVAL).
 */
static int smuggled(render *st, const json_t *v, const char *s, size_t a, size_t b)
{
  if (json_is_object(json_object_get(st->ctx, "secrets")) || !value_holds_secret_ref(v))
    return 0;
  st->rc = TG_EINVAL;
  if (st->err && st->errlen)
    snprintf(st->err, st->errlen,
             "the value of %.*s holds a {{secrets.<name>}} reference; secrets are substituted "
             "only where the workflow itself writes them",
             (int)(b - a), s + a);
  return 1;
}

static void unresolved(char *err, size_t errlen, const char *s, size_t a, size_t b)
{
  if (err && errlen)
    snprintf(err, errlen, "unresolved reference %.*s", (int)(b - a), s + a);
}

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

  if (!tg_workflow__next_template(s, 0, &a, &b))
    return json_deep_copy(value);
  if (a == 0 && b == slen) {
    const json_t *v;
    tg_workflow__ref(s, a, b, &e, &elen);
    if (kept(e, elen, st->ctx))
      return json_deep_copy(value);
    if (!(v = resolve(e, elen, st->ctx))) {
      unresolved(st->err, st->errlen, s, a, b);
      st->rc = TG_ENOTFOUND;
      return NULL;
    }
    if (smuggled(st, v, s, a, b))
      return NULL;
    return copy_charged(st, v);
  }
  tg_buf_init(&buf, st->left);
  do {
    const json_t *v;
    tg_workflow__ref(s, a, b, &e, &elen);
    if (kept(e, elen, st->ctx)) {
      if ((rc = tg_buf_add(&buf, s + pos, b - pos)))
        break;
      pos = b;
      continue;
    }
    if (!(v = resolve(e, elen, st->ctx))) {
      unresolved(st->err, st->errlen, s, a, b);
      rc = TG_ENOTFOUND;
      break;
    }
    if (smuggled(st, v, s, a, b)) {
      tg_buf_free(&buf);
      return NULL;
    }
    if ((rc = tg_buf_add(&buf, s + pos, a - pos)) || (rc = add_text(&buf, v)))
      break;
    pos = b;
  } while (tg_workflow__next_template(s, pos, &a, &b));
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
      if (json_object_get(v, "value")) {
        r = render_value(&st, json_object_get(v, "value"));
      } else if (!(r = json_object_get(json_object_get(ctx, "vars"), name))) {
        if (err && errlen)
          snprintf(err, errlen, "output %s is not set: no run variable vars.%s", name, name);
        goto fail;
      } else {
        r = copy_charged(&st, r);
      }
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
