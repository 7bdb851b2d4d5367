/*
 * Unit tests of worker/wk_tool_calc.c, the calculator built-in: precedence (+ - below * / %
 * below unary minus below ^), ^ right-associative, unary minus and plus, parentheses, decimal
 * numbers with exponents, and the errors: division and modulo by zero, results that are not
 * finite (huge numbers, 0^-1, a negative base to a fractional power), garbage of every kind,
 * and nesting bombs of parentheses, unary minus and ^ past the depth limit.
 */
#include "tg_unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_err.h"
#include "wk_tool.h"

/* expr evaluates to want (exactly: every case is exact in binary floating point). */
static void expect(const char *expr, double want)
{
  char err[128] = "";
  double got = NAN;
  int rc = wk_tool_calc(expr, &got, err, sizeof err);
  if (rc != 0 || got != want)
    fail_msg("%s: rc %d got %.17g want %.17g (%s)", expr, rc, got, want, err);
}

/* expr fails with a message containing needle, leaving *out alone. */
static void expect_error(const char *expr, const char *needle)
{
  char err[128] = "";
  double got = 12345;
  int rc = wk_tool_calc(expr, &got, err, sizeof err);
  if (rc != TG_EINVAL || got != 12345 || !strstr(err, needle))
    fail_msg("%s: rc %d got %g err \"%s\", want \"%s\"", expr ? expr : "(null)", rc, got, err,
             needle);
}

/* n copies of pre, then mid, then n copies of post: a new string. */
static char *nest(const char *pre, const char *mid, const char *post, size_t n)
{
  size_t lp = strlen(pre), lm = strlen(mid), lq = strlen(post), i;
  char *s = malloc(n * (lp + lq) + lm + 1), *p = s;
  assert_non_null(s);
  for (i = 0; i < n; i++, p += lp)
    memcpy(p, pre, lp);
  memcpy(p, mid, lm);
  p += lm;
  for (i = 0; i < n; i++, p += lq)
    memcpy(p, post, lq);
  *p = '\0';
  return s;
}

static void test_precedence(void **state)
{
  (void)state;
  expect("2+3*4", 14);
  expect("2*3+4", 10);
  expect("(2+3)*4", 20);
  expect("10-4-3", 3);   /* left-associative */
  expect("100/10/5", 2); /* left-associative */
  expect("2*3%4", 2);    /* (2*3)%4 */
  expect("7%3", 1);
  expect("2+2^3*2", 18); /* ^ binds tighter than * */
  expect("1 + 2 * 3 - 4 / 2", 5);
  expect(" \t 42 \n", 42);
}

static void test_power(void **state)
{
  (void)state;
  expect("2^3^2", 512); /* 2^(3^2), not (2^3)^2 = 64 */
  expect("(2^3)^2", 64);
  expect("2^-1", 0.5);
  expect("2^-2^2", 0.0625); /* 2^(-(2^2)) */
  expect("4^0.5", 2);
  expect("0^0", 1);
}

static void test_unary(void **state)
{
  (void)state;
  expect("-3", -3);
  expect("+3", 3);
  expect("--3", 3);
  expect("-2^2", -4); /* -(2^2) */
  expect("(-2)^2", 4);
  expect("2*-3", -6);
  expect("2--3", 5);
  expect("-(1+2)*3", -9);
  expect("-7%3", -1); /* fmod keeps the dividend's sign */
}

static void test_numbers(void **state)
{
  (void)state;
  expect(".5", 0.5);
  expect("5.", 5);
  expect("1.25e2", 125);
  expect("1E+3", 1000);
  expect("25e-2", 0.25);
  expect("007", 7);
  expect("99999999999999999999", 1e20);
  expect("1e308", 1e308);
  expect("1e-400", 0); /* underflow is zero, not an error */
}

static void test_division_by_zero(void **state)
{
  (void)state;
  expect_error("1/0", "division by zero");
  expect_error("0/0", "division by zero");
  expect_error("5%0", "division by zero");
  expect_error("1/(2-2)", "division by zero");
  expect_error("1/-0", "division by zero");
}

static void test_not_finite(void **state)
{
  (void)state;
  expect_error("1e400", "not a finite number");
  expect_error("1e308*10", "not a finite number");
  expect_error("1e308+1e308", "not a finite number");
  expect_error("2^1024", "not a finite number");
  expect_error("10^10^10", "not a finite number");
  expect_error("0^-1", "not a finite number");
  expect_error("(-8)^(1/3)", "not a finite number"); /* NaN */
}

static void test_garbage(void **state)
{
  (void)state;
  expect_error(NULL, "unexpected end");
  expect_error("", "unexpected end");
  expect_error("   ", "unexpected end");
  expect_error("2+", "unexpected end");
  expect_error("2*", "unexpected end");
  expect_error("-", "unexpected end");
  expect_error("abc", "unexpected character");
  expect_error("1 2", "unexpected character");
  expect_error("2**3", "unexpected character");
  expect_error("2x", "unexpected character");
  expect_error("1.2.3", "unexpected character");
  expect_error("(1+2", "missing )");
  expect_error("1+2)", "unbalanced )");
  expect_error("()", "unexpected character");
  expect_error(".", "bad number");
  expect_error("0x10", "bad number");
  expect_error("inf", "unexpected character");
  expect_error("nan", "unexpected character");
  expect_error("1;rm -rf /", "unexpected character");
  expect_error("1\0352", "unexpected character");
  expect_error("__import__('os')", "unexpected character");
}

static void test_depth(void **state)
{
  char *s;
  (void)state;
  s = nest("(", "1", ")", 64); /* at the limit */
  expect(s, 1);
  free(s);
  s = nest("(", "1", ")", 65);
  expect_error(s, "nesting too deep");
  free(s);
  s = nest("(", "1", ")", 200000); /* a bomb: refused without using the stack */
  expect_error(s, "nesting too deep");
  free(s);
  s = nest("-", "1", "", 200000);
  expect_error(s, "nesting too deep");
  free(s);
  s = nest("2^", "1", "", 200000);
  expect_error(s, "nesting too deep");
  free(s);
  s = nest("(-2^", "1", ")", 100000);
  expect_error(s, "nesting too deep");
  free(s);
  s = nest("1+", "1", "", 100000); /* long but flat: fine */
  expect(s, 100001);
  free(s);
}

static void test_error_buffer(void **state)
{
  char err[8];
  double got = 0;
  (void)state;
  assert_int_equal(wk_tool_calc("1/0", &got, err, sizeof err), TG_EINVAL);
  assert_int_equal(strlen(err), sizeof err - 1); /* truncated, terminated */
  assert_int_equal(wk_tool_calc("(1", &got, NULL, 0), TG_EINVAL);
}

TG_UNIT_MAIN(cmocka_unit_test(test_precedence), cmocka_unit_test(test_power),
             cmocka_unit_test(test_unary), cmocka_unit_test(test_numbers),
             cmocka_unit_test(test_division_by_zero), cmocka_unit_test(test_not_finite),
             cmocka_unit_test(test_garbage), cmocka_unit_test(test_depth),
             cmocka_unit_test(test_error_buffer))
