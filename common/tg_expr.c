/*
 * tg_expr: parser and evaluator of the Conditional nodes' condition language (grammar and
 * typing rules in tg_expr.h).
 *
 * The parser is recursive descent over a hand-written lexer. Recursion is bounded by
 * TG_EXPR_MAX_DEPTH: every "(" and every NOT counts one level, and AND / OR chains are kept
 * n-ary (one node with a list of operands) rather than as left-deep binary trees, so the tree is
 * never deeper than the nesting the parser allowed and evaluation recursion is bounded the same
 * way. Nodes live in one array owned by the expression (children are indexes into it), created
 * in source order, which is what tg_expr_each_var walks; freeing is one loop, not a recursion.
 *
 * Evaluation is strict: comparisons never convert, AND / OR / NOT and the condition itself
 * need booleans, and a missing variable is an error. == and != compare two values of one type,
 * or anything with null (x == null is false for a defined non-null x); objects and arrays are
 * never comparable. AND and OR short-circuit, so `x != null AND x > 3` is well-typed when x is
 * null. Every error message names the variable involved, so the engine's expression_error tells
 * the user what to fix.
 */
#include "tg_expr.h"

#include "tg_err.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind { K_NUM, K_STR, K_TRUE, K_FALSE, K_NULL, K_PATH, K_NOT, K_AND, K_OR, K_CMP };
enum op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE };
static const char *const op_text[] = {"<", "<=", ">", ">=", "==", "!="};

/* One tree node. Operands: kid (first) and each operand's next; -1 ends the list. */
typedef struct enode {
  enum kind k;
  enum op op;
  double num;
  char *str; /* K_STR: the unescaped bytes (len of them); K_PATH: the path text */
  size_t len;
  int kid, next;
} enode;

struct tg_expr {
  enode *n;
  size_t count, alloc;
  int root;
};

/* The parser's state. */
typedef struct parser {
  const char *src;
  size_t pos;
  int depth;
  tg_expr *e;
  char *err;
  size_t errlen;
  int rc; /* first error: TG_EINVAL or TG_ENOMEM */
} parser;

static int fail(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error, at byte offset at (reported from 1). Returns -1. */
static int fail(parser *p, size_t at, const char *fmt, ...)
{
  va_list ap;
  int n;
  if (p->rc)
    return -1;
  p->rc = TG_EINVAL;
  if (!p->err || !p->errlen)
    return -1;
  n = snprintf(p->err, p->errlen, "column %zu: ", at + 1);
  if (n >= 0 && (size_t)n < p->errlen) {
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* A new node of kind k; its index, or -1 when memory ran out. */
static int add_node(parser *p, enum kind k)
{
  tg_expr *e = p->e;
  if (e->count == e->alloc) {
    size_t na = e->alloc ? e->alloc * 2 : 16;
    enode *nn = realloc(e->n, na * sizeof *nn);
    if (!nn) {
      p->rc = TG_ENOMEM;
      if (p->err && p->errlen)
        p->err[0] = '\0';
      return -1;
    }
    e->n = nn;
    e->alloc = na;
  }
  memset(&e->n[e->count], 0, sizeof e->n[0]);
  e->n[e->count].k = k;
  e->n[e->count].kid = e->n[e->count].next = -1;
  return (int)e->count++;
}

static void skip_space(parser *p)
{
  while (p->src[p->pos] == ' ' || p->src[p->pos] == '\t' || p->src[p->pos] == '\n' ||
         p->src[p->pos] == '\r')
    p->pos++;
}

static int name_start(char c)
{
  return isalpha((unsigned char)c) || c == '_';
}

static int name_char(char c)
{
  return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* Length of the identifier at pos (0 when none). */
static size_t ident_len(const parser *p)
{
  size_t n = 0;
  if (!name_start(p->src[p->pos]))
    return 0;
  while (name_char(p->src[p->pos + n]))
    n++;
  return n;
}

/* 1 when the identifier at pos is the keyword kw (case-insensitive). */
static int at_keyword(const parser *p, const char *kw)
{
  size_t n = ident_len(p);
  return n == strlen(kw) && strncasecmp(p->src + p->pos, kw, n) == 0;
}

/* Consumes "AND"/"&&" (want_and) or "OR"/"||". */
static int take_logical(parser *p, int want_and)
{
  const char *sym = want_and ? "&&" : "||";
  skip_space(p);
  if (at_keyword(p, want_and ? "and" : "or")) {
    p->pos += want_and ? 3 : 2;
    return 1;
  }
  if (strncmp(p->src + p->pos, sym, 2) == 0) {
    p->pos += 2;
    return 1;
  }
  return 0;
}

/* Describes the byte at pos for an error message. */
static void what_at(const parser *p, char *out, size_t n)
{
  unsigned char c = (unsigned char)p->src[p->pos];
  if (!c)
    snprintf(out, n, "end of expression");
  else if (c >= 0x21 && c < 0x7f)
    snprintf(out, n, "'%c'", c);
  else
    snprintf(out, n, "byte 0x%02x", c);
}

static int unexpected(parser *p)
{
  char w[32];
  what_at(p, w, sizeof w);
  return fail(p, p->pos, "unexpected %s", w);
}

static int parse_or(parser *p);

static int parse_string(parser *p)
{
  char q = p->src[p->pos];
  size_t start = p->pos, i = p->pos + 1, n = 0;
  char *s;
  int idx;
  /* The unescaped text is never longer than the source text. */
  while (p->src[i] && p->src[i] != q)
    i += (p->src[i] == '\\' && p->src[i + 1]) ? 2 : 1;
  if (!p->src[i])
    return fail(p, start, "unterminated string");
  if ((idx = add_node(p, K_STR)) < 0)
    return -1;
  if (!(s = malloc(i - start))) {
    p->rc = TG_ENOMEM;
    return -1;
  }
  p->e->n[idx].str = s;
  for (i = start + 1; p->src[i] != q; i++) {
    char c = p->src[i];
    if (c == '\\') {
      switch (p->src[++i]) {
      case '\\':
        c = '\\';
        break;
      case '\'':
        c = '\'';
        break;
      case '"':
        c = '"';
        break;
      case 'n':
        c = '\n';
        break;
      case 't':
        c = '\t';
        break;
      default:
        return fail(p, i - 1, "unknown escape \\%c in a string",
                    isprint((unsigned char)p->src[i]) ? p->src[i] : '?');
      }
    }
    s[n++] = c;
  }
  s[n] = '\0';
  p->e->n[idx].len = n;
  p->pos = i + 1;
  return idx;
}

/* JSON number syntax: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int parse_number(parser *p)
{
  const char *s = p->src + p->pos;
  size_t i = 0;
  char buf[64];
  double v;
  int idx;
  if (s[i] == '-')
    i++;
  if (s[i] == '0')
    i++;
  else if (isdigit((unsigned char)s[i]))
    while (isdigit((unsigned char)s[i]))
      i++;
  else
    return fail(p, p->pos, "invalid number");
  if (s[i] == '.') {
    if (!isdigit((unsigned char)s[++i]))
      return fail(p, p->pos + i, "invalid number: digits must follow '.'");
    while (isdigit((unsigned char)s[i]))
      i++;
  }
  if (s[i] == 'e' || s[i] == 'E') {
    i++;
    if (s[i] == '+' || s[i] == '-')
      i++;
    if (!isdigit((unsigned char)s[i]))
      return fail(p, p->pos + i, "invalid number: digits must follow the exponent");
    while (isdigit((unsigned char)s[i]))
      i++;
  }
  if (name_char(s[i]) || s[i] == '.')
    return fail(p, p->pos + i, "invalid number");
  if (i >= sizeof buf)
    return fail(p, p->pos, "number too long");
  memcpy(buf, s, i);
  buf[i] = '\0';
  v = strtod(buf, NULL);
  if (!isfinite(v))
    return fail(p, p->pos, "number out of range");
  if ((idx = add_node(p, K_NUM)) < 0)
    return -1;
  p->e->n[idx].num = v;
  p->pos += i;
  return idx;
}

static int parse_path(parser *p)
{
  size_t start = p->pos, n = ident_len(p);
  int idx;
  char *s;
  p->pos += n;
  while (p->src[p->pos] == '.') {
    size_t seg = 0;
    p->pos++;
    if (name_start(p->src[p->pos])) {
      seg = ident_len(p);
    } else {
      while (isdigit((unsigned char)p->src[p->pos + seg]))
        seg++;
    }
    if (seg == 0)
      return fail(p, p->pos, "a name or an index must follow '.'");
    p->pos += seg;
  }
  if ((idx = add_node(p, K_PATH)) < 0)
    return -1;
  if (!(s = strndup(p->src + start, p->pos - start))) {
    p->rc = TG_ENOMEM;
    return -1;
  }
  p->e->n[idx].str = s;
  p->e->n[idx].len = p->pos - start;
  return idx;
}

static int enter(parser *p)
{
  if (++p->depth > TG_EXPR_MAX_DEPTH)
    return fail(p, p->pos, "nested deeper than %d levels", TG_EXPR_MAX_DEPTH);
  return 0;
}

static int parse_primary(parser *p)
{
  char c;
  skip_space(p);
  c = p->src[p->pos];
  if (c == '(') {
    int idx;
    size_t open = p->pos;
    if (enter(p) < 0)
      return -1;
    p->pos++;
    if ((idx = parse_or(p)) < 0)
      return -1;
    skip_space(p);
    if (p->src[p->pos] != ')') {
      char w[32];
      what_at(p, w, sizeof w);
      return fail(p, p->pos, "expected ')' to close the '(' at column %zu, found %s", open + 1, w);
    }
    p->pos++;
    p->depth--;
    return idx;
  }
  if (c == '"' || c == '\'')
    return parse_string(p);
  if (c == '-' || isdigit((unsigned char)c))
    return parse_number(p);
  if (name_start(c)) {
    static const struct {
      const char *kw;
      enum kind k;
    } lits[] = {{"true", K_TRUE}, {"false", K_FALSE}, {"null", K_NULL}};
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++)
      if (at_keyword(p, lits[i].kw)) {
        p->pos += strlen(lits[i].kw);
        return add_node(p, lits[i].k);
      }
    if (at_keyword(p, "and") || at_keyword(p, "or") || at_keyword(p, "not"))
      return fail(p, p->pos, "expected a value, found the keyword %.*s", (int)ident_len(p),
                  p->src + p->pos);
    return parse_path(p);
  }
  if (!c)
    return fail(p, p->pos, "expected a value, found the end of the expression");
  return unexpected(p);
}

/* The comparison operator at pos (consumed), or -1. "=" alone is "==". */
static int take_op(parser *p)
{
  const char *s = p->src + p->pos;
  int op = -1;
  size_t n = 1;
  if (s[0] == '<')
    op = s[1] == '=' ? (n = 2, OP_LE) : OP_LT;
  else if (s[0] == '>')
    op = s[1] == '=' ? (n = 2, OP_GE) : OP_GT;
  else if (s[0] == '=')
    op = (n = s[1] == '=' ? 2 : 1, OP_EQ);
  else if (s[0] == '!' && s[1] == '=')
    op = (n = 2, OP_NE);
  if (op >= 0)
    p->pos += n;
  return op;
}

static int parse_cmp(parser *p)
{
  int l = parse_primary(p), r, op, idx;
  if (l < 0)
    return -1;
  skip_space(p);
  if ((op = take_op(p)) < 0)
    return l;
  if ((r = parse_primary(p)) < 0 || (idx = add_node(p, K_CMP)) < 0)
    return -1;
  p->e->n[idx].op = (enum op)op;
  p->e->n[idx].kid = l;
  p->e->n[l].next = r;
  return idx;
}

static int parse_not(parser *p)
{
  int idx, kid;
  skip_space(p);
  if (at_keyword(p, "not") || (p->src[p->pos] == '!' && p->src[p->pos + 1] != '=')) {
    p->pos += p->src[p->pos] == '!' ? 1 : 3;
    if (enter(p) < 0 || (kid = parse_not(p)) < 0 || (idx = add_node(p, K_NOT)) < 0)
      return -1;
    p->depth--;
    p->e->n[idx].kid = kid;
    return idx;
  }
  return parse_cmp(p);
}

/* and := not (AND not)*; or := and (OR and)*; n-ary nodes (see the file comment). */
static int parse_chain(parser *p, int is_and)
{
  int first = is_and ? parse_not(p) : parse_chain(p, 1), last, idx;
  if (first < 0)
    return -1;
  if (!take_logical(p, is_and))
    return first;
  if ((idx = add_node(p, is_and ? K_AND : K_OR)) < 0)
    return -1;
  p->e->n[idx].kid = last = first;
  do {
    int next = is_and ? parse_not(p) : parse_chain(p, 1);
    if (next < 0)
      return -1;
    p->e->n[last].next = next;
    last = next;
  } while (take_logical(p, is_and));
  return idx;
}

static int parse_or(parser *p)
{
  return parse_chain(p, 0);
}

int tg_expr_parse(tg_expr **out, const char *src, char *err, size_t errlen)
{
  parser p = {src, 0, 0, NULL, err, errlen, 0};
  size_t len = strnlen(src, TG_EXPR_MAX_LEN + 1);
  *out = NULL;
  if (err && errlen)
    err[0] = '\0';
  if (len > TG_EXPR_MAX_LEN) {
    fail(&p, TG_EXPR_MAX_LEN, "expression longer than %d bytes", TG_EXPR_MAX_LEN);
    return p.rc;
  }
  if (!(p.e = calloc(1, sizeof *p.e)))
    return TG_ENOMEM;
  skip_space(&p);
  if (!src[p.pos]) {
    fail(&p, p.pos, "empty expression");
  } else if ((p.e->root = parse_or(&p)) >= 0) {
    skip_space(&p);
    if (src[p.pos])
      unexpected(&p);
  }
  if (p.rc) {
    tg_expr_free(p.e);
    return p.rc;
  }
  *out = p.e;
  return 0;
}

void tg_expr_free(tg_expr *e)
{
  if (!e)
    return;
  for (size_t i = 0; i < e->count; i++)
    free(e->n[i].str);
  free(e->n);
  free(e);
}

void tg_expr_each_var(const tg_expr *e, void (*fn)(void *arg, const char *path), void *arg)
{
  for (size_t i = 0; e && i < e->count; i++)
    if (e->n[i].k == K_PATH)
      fn(arg, e->n[i].str);
}

/* The type a literal gives the other operand of a comparison. */
static tg_expr_type literal_type(enum kind k)
{
  switch (k) {
  case K_NUM:
    return TG_EXPR_NUMBER;
  case K_STR:
    return TG_EXPR_STRING;
  case K_TRUE:
  case K_FALSE:
    return TG_EXPR_BOOLEAN;
  default:
    return TG_EXPR_ANY;
  }
}

/* The type node i (a path) is used as: found from its parent, a scan over the nodes (an
 * expression holds at most TG_EXPR_MAX_LEN bytes, and this runs at validation, not per run). */
static tg_expr_type use_of(const tg_expr *e, int i)
{
  if (e->root == i)
    return TG_EXPR_BOOLEAN;
  for (size_t j = 0; j < e->count; j++) {
    const enode *p = &e->n[j];
    if (p->k == K_CMP && (p->kid == i || e->n[p->kid].next == i))
      return literal_type(e->n[p->kid == i ? e->n[p->kid].next : p->kid].k);
    if (p->k == K_AND || p->k == K_OR || p->k == K_NOT)
      for (int c = p->kid; c >= 0; c = e->n[c].next)
        if (c == i)
          return TG_EXPR_BOOLEAN;
  }
  return TG_EXPR_ANY;
}

void tg_expr_each_var_typed(const tg_expr *e,
                            void (*fn)(void *arg, const char *path, tg_expr_type type), void *arg)
{
  for (size_t i = 0; e && i < e->count; i++)
    if (e->n[i].k == K_PATH)
      fn(arg, e->n[i].str, use_of(e, (int)i));
}

/* ---- evaluation ---- */

enum vtype { V_NUM, V_STR, V_BOOL, V_NULL, V_OBJECT, V_ARRAY };
static const char *const vtype_name[] = {"a number", "a string",  "a boolean",
                                         "null",     "an object", "an array"};

typedef struct val {
  enum vtype t;
  double num;
  const char *str;
  size_t len;
  int b;
  const char *var; /* the path it was read from, or NULL for a literal or a sub-expression */
} val;

typedef struct eval {
  const tg_expr *e;
  const json_t *scope;
  char *err;
  size_t errlen;
} eval;

static int eval_fail(eval *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int eval_fail(eval *ev, const char *fmt, ...)
{
  va_list ap;
  if (ev->err && ev->errlen) {
    va_start(ap, fmt);
    vsnprintf(ev->err, ev->errlen, fmt, ap);
    va_end(ap);
  }
  return TG_EINVAL;
}

/* Walks the scope along path (see tg_expr.h); NULL when a segment is missing. */
static const json_t *lookup(const json_t *scope, const char *path)
{
  const json_t *cur;
  const char *s = path;
  size_t n = strcspn(s, ".");
  if ((n == 6 && strncmp(s, "inputs", 6) == 0) || (n == 5 && strncmp(s, "nodes", 5) == 0) ||
      (n == 4 && strncmp(s, "vars", 4) == 0))
    cur = scope;
  else
    cur = json_object_get(scope, "vars");
  for (;;) {
    char key[256];
    n = strcspn(s, ".");
    if (n >= sizeof key)
      return NULL;
    memcpy(key, s, n);
    key[n] = '\0';
    if (json_is_object(cur)) {
      cur = json_object_get(cur, key);
    } else if (json_is_array(cur) && isdigit((unsigned char)key[0])) {
      char *end;
      unsigned long i = strtoul(key, &end, 10);
      cur = *end ? NULL : json_array_get(cur, i);
    } else {
      return NULL;
    }
    if (!cur)
      return NULL;
    if (!s[n])
      return cur;
    s += n + 1;
  }
}

static int eval_bool(eval *ev, int i, int *out);

/* Describes v for a message: "'x' is a string" or "a string". */
static void describe(const val *v, char *out, size_t n)
{
  if (v->var)
    snprintf(out, n, "'%s' is %s", v->var, vtype_name[v->t]);
  else
    snprintf(out, n, "%s", vtype_name[v->t]);
}

static int eval_value(eval *ev, int i, val *v)
{
  const enode *n = &ev->e->n[i];
  memset(v, 0, sizeof *v);
  switch (n->k) {
  case K_NUM:
    v->t = V_NUM;
    v->num = n->num;
    return 0;
  case K_STR:
    v->t = V_STR;
    v->str = n->str;
    v->len = n->len;
    return 0;
  case K_TRUE:
    v->t = V_BOOL;
    v->b = 1;
    return 0;
  case K_FALSE:
    v->t = V_BOOL;
    return 0;
  case K_NULL:
    v->t = V_NULL;
    return 0;
  case K_PATH: {
    const json_t *j = lookup(ev->scope, n->str);
    v->var = n->str;
    if (!j)
      return eval_fail(ev, "variable '%s' is not defined", n->str);
    switch (json_typeof(j)) {
    case JSON_INTEGER:
    case JSON_REAL:
      v->t = V_NUM;
      v->num = json_number_value(j);
      break;
    case JSON_STRING:
      v->t = V_STR;
      v->str = json_string_value(j);
      v->len = json_string_length(j);
      break;
    case JSON_TRUE:
      v->t = V_BOOL;
      v->b = 1;
      break;
    case JSON_FALSE:
      v->t = V_BOOL;
      break;
    case JSON_NULL:
      v->t = V_NULL;
      break;
    case JSON_OBJECT:
      v->t = V_OBJECT;
      break;
    default:
      v->t = V_ARRAY;
      break;
    }
    return 0;
  }
  default:
    v->t = V_BOOL;
    return eval_bool(ev, i, &v->b);
  }
}

/* "type mismatch: 'x' is a string, compared with a number" (the variable first when one is). */
static int mismatch(eval *ev, const val *a, const val *b)
{
  char d[320];
  if (!a->var && b->var) {
    const val *t = a;
    a = b;
    b = t;
  }
  describe(a, d, sizeof d);
  if (b->var)
    return eval_fail(ev, "type mismatch: %s, compared with '%s' (%s)", d, b->var, vtype_name[b->t]);
  return eval_fail(ev, "type mismatch: %s, compared with %s", d, vtype_name[b->t]);
}

/* "type mismatch: 'x' is a boolean; < compares numbers or strings". */
static int not_ordered(eval *ev, const val *bad, const char *what)
{
  char d[320];
  describe(bad, d, sizeof d);
  return eval_fail(ev, "type mismatch: %s; %s", d, what);
}

static int scalar(const val *v)
{
  return v->t != V_OBJECT && v->t != V_ARRAY;
}

static int compare(eval *ev, const enode *n, int *out)
{
  val a, b;
  int rc, c = 0;
  char what[64];
  enum op op = n->op;
  if ((rc = eval_value(ev, n->kid, &a)) || (rc = eval_value(ev, ev->e->n[n->kid].next, &b)))
    return rc;
  if (!scalar(&a) || !scalar(&b)) {
    snprintf(what, sizeof what, "%s compares only numbers, strings, booleans and null",
             op_text[op]);
    return not_ordered(ev, scalar(&a) ? &b : &a, what);
  }
  if (op == OP_EQ || op == OP_NE) {
    if (a.t == V_NULL || b.t == V_NULL)
      c = a.t == b.t;
    else if (a.t != b.t)
      return mismatch(ev, &a, &b);
    else if (a.t == V_NUM)
      c = a.num == b.num;
    else if (a.t == V_STR)
      c = a.len == b.len && memcmp(a.str, b.str, a.len) == 0;
    else
      c = a.b == b.b;
    *out = op == OP_EQ ? c : !c;
    return 0;
  }
  if ((a.t != V_NUM && a.t != V_STR) || (b.t != V_NUM && b.t != V_STR)) {
    snprintf(what, sizeof what, "%s compares numbers or strings", op_text[op]);
    return not_ordered(ev, (a.t != V_NUM && a.t != V_STR) ? &a : &b, what);
  }
  if (a.t != b.t)
    return mismatch(ev, &a, &b);
  if (a.t == V_NUM) {
    c = a.num < b.num ? -1 : a.num > b.num ? 1 : 0;
  } else {
    size_t m = a.len < b.len ? a.len : b.len;
    c = memcmp(a.str, b.str, m);
    if (c == 0)
      c = a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
  }
  switch (op) {
  case OP_LT:
    *out = c < 0;
    break;
  case OP_LE:
    *out = c <= 0;
    break;
  case OP_GT:
    *out = c > 0;
    break;
  default:
    *out = c >= 0;
    break;
  }
  return 0;
}

/* Evaluates operand i where a boolean is needed (by `who`: "AND", "NOT", the condition). */
static int need_bool(eval *ev, int i, const char *who, int *out)
{
  val v;
  int rc = eval_value(ev, i, &v);
  char d[320];
  if (rc)
    return rc;
  if (v.t != V_BOOL) {
    describe(&v, d, sizeof d);
    return eval_fail(ev, "type mismatch: %s, %s needs a boolean", d, who);
  }
  *out = v.b;
  return 0;
}

static int eval_bool(eval *ev, int i, int *out)
{
  const enode *n = &ev->e->n[i];
  int rc, b;
  switch (n->k) {
  case K_CMP:
    return compare(ev, n, out);
  case K_NOT:
    if ((rc = need_bool(ev, n->kid, "NOT", &b)))
      return rc;
    *out = !b;
    return 0;
  case K_AND:
  case K_OR:
    for (int k = n->kid; k >= 0; k = ev->e->n[k].next) {
      if ((rc = need_bool(ev, k, n->k == K_AND ? "AND" : "OR", &b)))
        return rc;
      if (b != (n->k == K_AND)) { /* false AND ..., true OR ...: decided */
        *out = b;
        return 0;
      }
    }
    *out = n->k == K_AND;
    return 0;
  default:
    return need_bool(ev, i, "a condition", out);
  }
}

int tg_expr_eval(const tg_expr *e, const json_t *scope, int *result, char *err, size_t errlen)
{
  eval ev = {e, scope, err, errlen};
  if (err && errlen)
    err[0] = '\0';
  *result = 0;
  return eval_bool(&ev, e->root, result);
}
