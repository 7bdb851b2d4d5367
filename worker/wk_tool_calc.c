/*
 * wk_tool_calc: the calculator built-in (README "Tool catalog"): + - * / % ^, unary minus,
 * parentheses and decimal numbers, evaluated in process by recursive descent over the text.
 * tg_expr is the workflows' condition language and has no arithmetic, hence this small one.
 *
 * Precedence low to high: + -, then * / %, then unary -, then ^ (right-associative, so
 * 2^3^2 = 2^9 and -2^2 = -4). Division and modulo by zero, a result that is not finite, a
 * nesting deeper than 64 and any stray byte are errors (numbers are decimal: no hexadecimal,
 * inf or nan); nothing is allocated.
 */
#include "wk_tool.h"

#include "tg_err.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_DEPTH 64

typedef struct calc {
  const char *p;
  int depth;
  char *err;
  size_t errlen;
  int failed;
} calc;

static double sum(calc *c);

static void fail(calc *c, const char *what)
{
  if (!c->failed)
    snprintf(c->err, c->errlen, "%s", what);
  c->failed = 1;
}

static void skip(calc *c)
{
  while (isspace((unsigned char)*c->p))
    c->p++;
}

/* Steps over the '(' or '^' at c->p into one more level of nesting; 0 (failed) when too deep.
 * The caller leaves the level with c->depth--. */
static int descend(calc *c)
{
  c->p++;
  if (++c->depth > MAX_DEPTH) {
    fail(c, "nesting too deep");
    return 0;
  }
  return 1;
}

static double primary(calc *c)
{
  double v;
  char *end;
  skip(c);
  if (*c->p == '(') {
    if (!descend(c))
      return 0;
    v = sum(c);
    c->depth--;
    skip(c);
    if (*c->p != ')')
      fail(c, "missing )");
    else
      c->p++;
    return v;
  }
  if (!isdigit((unsigned char)*c->p) && *c->p != '.') {
    fail(c, *c->p ? "unexpected character" : "unexpected end of expression");
    return 0;
  }
  if (c->p[0] == '0' && (c->p[1] == 'x' || c->p[1] == 'X')) {
    fail(c, "bad number"); /* strtod would read hexadecimal */
    return 0;
  }
  v = strtod(c->p, &end);
  if (end == c->p)
    fail(c, "bad number");
  c->p = end;
  return v;
}

static double unary(calc *c);

static double power(calc *c)
{
  double b = primary(c);
  skip(c);
  if (*c->p == '^') {
    if (!descend(c))
      return 0;
    b = pow(b, unary(c));
    c->depth--;
  }
  return b;
}

static double unary(calc *c)
{
  skip(c);
  if (*c->p == '-' || *c->p == '+') {
    int neg = *c->p++ == '-';
    double v;
    if (++c->depth > MAX_DEPTH) {
      fail(c, "nesting too deep");
      return 0;
    }
    v = unary(c);
    c->depth--;
    return neg ? -v : v;
  }
  return power(c);
}

static double product(calc *c)
{
  double v = unary(c);
  for (;;) {
    char op;
    double r;
    skip(c);
    op = *c->p;
    if (op != '*' && op != '/' && op != '%')
      return v;
    c->p++;
    r = unary(c);
    if ((op == '/' || op == '%') && r == 0) {
      fail(c, "division by zero");
      return 0;
    }
    v = op == '*' ? v * r : op == '/' ? v / r : fmod(v, r);
  }
}

static double sum(calc *c)
{
  double v = product(c);
  for (;;) {
    char op;
    skip(c);
    op = *c->p;
    if (op != '+' && op != '-')
      return v;
    c->p++;
    v = op == '+' ? v + product(c) : v - product(c);
  }
}

int wk_tool_calc(const char *expr, double *out, char *err, size_t errlen)
{
  calc c = {.p = expr ? expr : "", .err = err, .errlen = errlen};
  double v = sum(&c);
  skip(&c);
  if (!c.failed && *c.p)
    fail(&c, *c.p == ')' ? "unbalanced )" : "unexpected character");
  if (!c.failed && !isfinite(v))
    fail(&c, "the result is not a finite number");
  if (c.failed)
    return TG_EINVAL;
  *out = v;
  return 0;
}
