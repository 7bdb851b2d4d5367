/*
 * Unit tests of common/tg_expr.c: the condition language's grammar (precedence, keyword and
 * symbol forms, "=" as "==", strings with escapes, numbers with exponents), strict evaluation
 * (null and boolean equality, type mismatches, missing variables, short-circuits), every parse
 * error form with its column, the limits, and the builder's own condition.
 */
#include "tg_unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_err.h"
#include "tg_expr.h"

static const char *scope_text =
    "{\"inputs\":{\"opportunity_value\":250000,\"name\":\"ann\"},"
    "\"nodes\":{\"5002\":{\"output\":{\"win_probability\":20,\"tags\":[\"a\",\"b\"]}}},"
    "\"vars\":{\"win_probability\":20,\"opportunity_value\":250000,\"decision\":\"approve\","
    "\"ok\":true,\"no\":false,\"nothing\":null,\"obj\":{\"k\":1},\"list\":[1,2],"
    "\"quote\":\"it's \\\"x\\\"\\n\",\"big\":1e3}}";

static json_t *scope(void)
{
  json_t *s = json_loads(scope_text, 0, NULL);
  if (!s)
    fail_msg("bad scope");
  return s;
}

/* src parses and evaluates to want. */
static void expect(const char *src, int want)
{
  tg_expr *e = NULL;
  char err[256] = "";
  int got = -1, rc = tg_expr_parse(&e, src, err, sizeof err);
  json_t *s = scope();
  if (rc != 0)
    fail_msg("parse %s: %s", src, err);
  rc = tg_expr_eval(e, s, &got, err, sizeof err);
  if (rc != 0 || got != want)
    fail_msg("%s: rc %d got %d want %d (%s)", src, rc, got, want, err);
  tg_expr_free(e);
  json_decref(s);
}

/* src does not parse; the message contains needle. */
static void expect_parse_error(const char *src, const char *needle)
{
  tg_expr *e = (tg_expr *)1;
  char err[256] = "";
  int rc = tg_expr_parse(&e, src, err, sizeof err);
  if (rc != TG_EINVAL || e != NULL || !strstr(err, needle))
    fail_msg("%s: rc %d, err \"%s\", want \"%s\"", src, rc, err, needle);
}

/* src parses but evaluating it fails with a message containing needle. */
static void expect_eval_error(const char *src, const char *needle)
{
  tg_expr *e = NULL;
  char err[256] = "";
  int got, rc = tg_expr_parse(&e, src, err, sizeof err);
  json_t *s = scope();
  if (rc != 0)
    fail_msg("parse %s: %s", src, err);
  rc = tg_expr_eval(e, s, &got, err, sizeof err);
  if (rc != TG_EINVAL || !strstr(err, needle))
    fail_msg("%s: rc %d, err \"%s\", want \"%s\"", src, rc, err, needle);
  tg_expr_free(e);
  json_decref(s);
}

static void test_builder_condition(void **state)
{
  (void)state;
  expect("win_probability < 30 AND opportunity_value < 500000", 1);
  expect("win_probability < 10 AND opportunity_value < 500000", 0);
  expect("nodes.5002.output.win_probability == 20", 1);
  expect("inputs.opportunity_value >= 250000", 1);
  expect("vars.decision == 'approve'", 1);
  expect("nodes.5002.output.tags.1 == \"b\"", 1);
}

static void test_precedence(void **state)
{
  (void)state;
  expect("true OR false AND false", 1); /* AND binds tighter */
  expect("(true OR false) AND false", 0);
  expect("NOT false AND false", 0); /* NOT binds tighter than AND */
  expect("NOT (false AND false)", 1);
  expect("not not true", 1);
  expect("!no || no && no", 1);
  expect("false or false or true", 1);
  expect("true && true && true && false", 0);
  expect("(1 < 2) == true", 1);
}

static void test_comparisons(void **state)
{
  (void)state;
  expect("1 < 2", 1);
  expect("2 <= 2", 1);
  expect("3 > 2.5", 1);
  expect("2 >= 3", 0);
  expect("2 = 2", 1); /* "=" is "==" */
  expect("2 == 2.0", 1);
  expect("2 != 3", 1);
  expect("-1.5e2 < -149", 1);
  expect("1E3 == big", 1);
  expect("0.5e-1 == 0.05", 1);
  expect("'abc' < 'abd'", 1);
  expect("'ab' < 'abc'", 1);
  expect("\"b\" > 'a'", 1);
  expect("inputs.name == 'ann'", 1);
  expect("quote == 'it\\'s \"x\"\\n'", 1);
  expect("'a\\tb' != \"a\\\\tb\"", 1);
}

static void test_null_and_bool(void **state)
{
  (void)state;
  expect("nothing == null", 1);
  expect("nothing != null", 0);
  expect("decision == null", 0);
  expect("null == null", 1);
  expect("ok == true", 1);
  expect("no != false", 0);
  expect("ok", 1);
  expect("NOT no", 1);
  expect("TRUE and False", 0);
  /* Short-circuit: the missing variable is never read. */
  expect("no AND missing > 1", 0);
  expect("ok OR missing > 1", 1);
  expect("nothing != null AND nothing > 3", 0);
}

static void test_eval_errors(void **state)
{
  (void)state;
  expect_eval_error("missing > 1", "variable 'missing' is not defined");
  /* A bare name reads vars, where inputs.name is not. */
  expect_eval_error("name == 'ann'", "variable 'name' is not defined");
  expect_eval_error("nodes.9.output.x == 1", "variable 'nodes.9.output.x' is not defined");
  expect_eval_error("decision > 3",
                    "type mismatch: 'decision' is a string, compared with a number");
  expect_eval_error("3 == decision", "'decision' is a string, compared with a number");
  expect_eval_error("decision == win_probability",
                    "'decision' is a string, compared with 'win_probability' (a number)");
  expect_eval_error("1 == 'a'", "type mismatch: a number, compared with a string");
  expect_eval_error("ok < true", "'ok' is a boolean; < compares numbers or strings");
  expect_eval_error("nothing >= 1", "'nothing' is null; >= compares numbers or strings");
  expect_eval_error("obj == 1", "'obj' is an object; == compares only numbers");
  expect_eval_error("list != null", "'list' is an array");
  expect_eval_error("win_probability",
                    "'win_probability' is a number, a condition needs a boolean");
  expect_eval_error("'yes'", "a string, a condition needs a boolean");
  expect_eval_error("decision AND ok", "'decision' is a string, AND needs a boolean");
  expect_eval_error("no OR 1", "a number, OR needs a boolean");
  expect_eval_error("NOT nothing", "'nothing' is null, NOT needs a boolean");
}

static void test_parse_errors(void **state)
{
  char big[TG_EXPR_MAX_LEN + 8], deep[2 * TG_EXPR_MAX_DEPTH + 16];
  size_t i;
  (void)state;
  expect_parse_error("", "column 1: empty expression");
  expect_parse_error("   ", "column 4: empty expression");
  expect_parse_error("a <", "column 4: expected a value, found the end of the expression");
  expect_parse_error("a < < 3", "column 5: unexpected '<'");
  expect_parse_error("a b", "column 3: unexpected 'b'");
  expect_parse_error("a < 1 < 2", "column 7: unexpected '<'");
  expect_parse_error("(a < 1", "column 7: expected ')' to close the '(' at column 1");
  expect_parse_error("'abc", "column 1: unterminated string");
  expect_parse_error("'a\\qb'", "column 3: unknown escape \\q");
  expect_parse_error("1.", "column 3: invalid number: digits must follow '.'");
  expect_parse_error("1e+", "column 4: invalid number: digits must follow the exponent");
  expect_parse_error("12abc", "column 3: invalid number");
  expect_parse_error("-x", "column 1: invalid number");
  expect_parse_error("1e999 > 1", "column 1: number out of range");
  expect_parse_error("a. > 1", "column 3: a name or an index must follow '.'");
  expect_parse_error("a AND", "column 6: expected a value");
  expect_parse_error("AND a", "column 1: expected a value, found the keyword AND");
  expect_parse_error("a & b", "column 3: unexpected '&'");
  expect_parse_error("a | b", "column 3: unexpected '|'");
  expect_parse_error("a < 1 \x01", "column 7: unexpected byte 0x01");
  expect_parse_error("a == #", "column 6: unexpected '#'");
  expect_parse_error(")", "column 1: unexpected ')'");

  memset(big, ' ', sizeof big);
  big[0] = 't';
  big[1] = 'r';
  big[2] = 'u';
  big[3] = 'e';
  big[TG_EXPR_MAX_LEN + 1] = '\0';
  expect_parse_error(big, "longer than 4096 bytes");
  big[TG_EXPR_MAX_LEN] = '\0';
  expect(big, 1);

  for (i = 0; i < TG_EXPR_MAX_DEPTH; i++)
    deep[i] = '(';
  deep[i] = 'x';
  for (i = 0; i < TG_EXPR_MAX_DEPTH; i++)
    deep[TG_EXPR_MAX_DEPTH + 1 + i] = ')';
  deep[2 * TG_EXPR_MAX_DEPTH + 1] = '\0';
  expect_eval_error(deep, "variable 'x' is not defined"); /* 64 levels: fine */
  memmove(deep + 1, deep, strlen(deep) + 1);
  deep[0] = '!';
  expect_parse_error(deep, "nested deeper than 64 levels");
}

static void collect(void *arg, const char *path)
{
  char *buf = arg;
  strcat(buf, path);
  strcat(buf, ";");
}

static void test_each_var(void **state)
{
  tg_expr *e;
  char err[128], seen[256] = "";
  (void)state;
  assert_int_equal(tg_expr_parse(&e, "a.b.0 < 3 OR (NOT c AND inputs.x == 'q' AND nodes.7.output)",
                                 err, sizeof err),
                   0);
  tg_expr_each_var(e, collect, seen);
  assert_string_equal(seen, "a.b.0;c;inputs.x;nodes.7.output;");
  tg_expr_free(e);
  tg_expr_free(NULL);
}

static void collect_typed(void *arg, const char *path, tg_expr_type t)
{
  static const char *const names[] = {"any", "number", "string", "boolean"};
  char *buf = arg;
  strcat(buf, path);
  strcat(buf, ":");
  strcat(buf, names[t]);
  strcat(buf, ";");
}

static void test_each_var_typed(void **state)
{
  tg_expr *e;
  char err[128], seen[256] = "";
  (void)state;
  assert_int_equal(tg_expr_parse(&e,
                                 "3 < n AND s = 'x' AND NOT b AND (f != false) AND a == c AND "
                                 "z != null",
                                 err, sizeof err),
                   0);
  tg_expr_each_var_typed(e, collect_typed, seen);
  assert_string_equal(seen, "n:number;s:string;b:boolean;f:boolean;a:any;c:any;z:any;");
  tg_expr_free(e);
  seen[0] = '\0';
  assert_int_equal(tg_expr_parse(&e, "(ok)", err, sizeof err), 0);
  tg_expr_each_var_typed(e, collect_typed, seen);
  assert_string_equal(seen, "ok:boolean;");
  tg_expr_free(e);
}

TG_UNIT_MAIN(cmocka_unit_test(test_builder_condition), cmocka_unit_test(test_precedence),
             cmocka_unit_test(test_comparisons), cmocka_unit_test(test_null_and_bool),
             cmocka_unit_test(test_eval_errors), cmocka_unit_test(test_parse_errors),
             cmocka_unit_test(test_each_var), cmocka_unit_test(test_each_var_typed))
