/*
 * Unit tests for common/tg_config.c: the defaults load for every program and lie inside their
 * ranges; an integer outside its range, or not wholly an integer, is refused with a message
 * naming the variable, the value and the range; a program ignores the integer variables only
 * other programs read; tg_config_parse_int is strict; --help lists every variable with its
 * default and range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tg_config.h"
#include "tg_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loads the configuration of prog with name=value set (value NULL: unset); returns the result
 * and leaves the message in err. */
static int load_with(int prog, const char *name, const char *value, tg_config *c, char *err,
                     size_t errlen)
{
  int rc;
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
  rc = tg_config_load(c, prog, err, errlen);
  unsetenv(name);
  return rc;
}

static void test_defaults(void **state)
{
  static const int progs[] = {TG_PROG_GATEWAY, TG_PROG_WORKER, TG_PROG_SIM, TG_PROG_ALL};
  (void)state;
  for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
    tg_config c;
    char err[256] = "";
    assert_int_equal(tg_config_load(&c, progs[i], err, sizeof err), 0);
    assert_int_equal(c.concurrency, 4);
    assert_int_equal(c.poll_ms, 200);
    assert_int_equal(c.lease_ms, 30000);
    assert_int_equal(c.max_headers, 64);
    assert_int_equal(c.run_deadline_ms, 600000);
    assert_int_equal(c.trust_user_header, 0);
    assert_int_equal(c.listen_port, 8080);
    tg_config_free(&c);
  }
}

static void test_out_of_range(void **state)
{
  static const struct {
    int prog;
    const char *name, *value, *range;
  } bad[] = {
      {TG_PROG_WORKER, "TOOLGATE_WORKER_CONCURRENCY", "0", "from 1 to 1024"},
      {TG_PROG_WORKER, "TOOLGATE_WORKER_CONCURRENCY", "1025", "from 1 to 1024"},
      {TG_PROG_WORKER, "TOOLGATE_POLL_MS", "0", "from 1 to 3600000"},
      {TG_PROG_WORKER, "TOOLGATE_LEASE_MS", "299", "from 300 to 86400000"},
      {TG_PROG_WORKER, "TOOLGATE_REGISTRY_MAX", "0", "from 1 to 65536"},
      {TG_PROG_WORKER, "TOOLGATE_MCP_TIMEOUT_MS", "0", "from 1 to 86400000"},
      {TG_PROG_GATEWAY, "TOOLGATE_MAX_HEADERS", "0", "from 1 to 10000"},
      {TG_PROG_GATEWAY, "TOOLGATE_MAX_CONNECTIONS", "0", "from 1 to 1000000"},
      {TG_PROG_GATEWAY, "TOOLGATE_HEADER_TIMEOUT_MS", "0", "from 1 to 86400000"},
      {TG_PROG_GATEWAY, "TOOLGATE_TRUST_USER_HEADER", "2", "from 0 to 1"},
      {TG_PROG_GATEWAY, "TOOLGATE_RUN_RATE_PER_MIN", "-1", "from 0 to 1000000"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tg_config c;
    char err[256] = "", want[256];
    assert_int_equal(load_with(bad[i].prog, bad[i].name, bad[i].value, &c, err, sizeof err),
                     TG_EINVAL);
    /* gcc's -Wformat-truncation cannot see that no entry is NULL; the table holds no NULL. */
    snprintf(want, sizeof want, "%s: expected an integer %s, got \"%s\"", bad[i].name,
             bad[i].range ? bad[i].range : "", bad[i].value ? bad[i].value : "");
    assert_string_equal(err, want);
    tg_config_free(&c);
  }
}

/* prog's configuration with name=value loads, and its int64_t member at offset is want. */
static void expect_loaded(int prog, const char *name, const char *value, size_t offset,
                          int64_t want)
{
  tg_config c;
  char err[256] = "";
  assert_int_equal(load_with(prog, name, value, &c, err, sizeof err), 0);
  assert_int_equal(*(const int64_t *)((const char *)&c + offset), want);
  tg_config_free(&c);
}

static void test_accepted(void **state)
{
  (void)state;
  expect_loaded(TG_PROG_WORKER, "TOOLGATE_WORKER_CONCURRENCY", "1024",
                offsetof(tg_config, concurrency), 1024);
  expect_loaded(TG_PROG_WORKER, "TOOLGATE_LEASE_MS", "300", offsetof(tg_config, lease_ms), 300);
  expect_loaded(TG_PROG_WORKER, "TOOLGATE_RUN_DEADLINE_MS", "0",
                offsetof(tg_config, run_deadline_ms), 0);
  /* Empty means unset: the default. */
  expect_loaded(TG_PROG_WORKER, "TOOLGATE_POLL_MS", "", offsetof(tg_config, poll_ms), 200);
  /* A shared environment: the gateway does not read the worker's variables, and vice versa. */
  expect_loaded(TG_PROG_GATEWAY, "TOOLGATE_WORKER_CONCURRENCY", "0",
                offsetof(tg_config, concurrency), 4);
  expect_loaded(TG_PROG_WORKER, "TOOLGATE_MAX_HEADERS", "0", offsetof(tg_config, max_headers), 64);
}

static void test_not_a_whole_integer(void **state)
{
  static const char *const bad[] = {"abc", " 5",   "+5",  "5x",
                                    "5 ",  "0x10", "1e3", "99999999999999999999"};
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tg_config c;
    char err[256] = "";
    assert_int_equal(load_with(TG_PROG_WORKER, "TOOLGATE_POLL_MS", bad[i], &c, err, sizeof err),
                     TG_EINVAL);
    assert_non_null(strstr(err, "TOOLGATE_POLL_MS"));
    assert_non_null(strstr(err, bad[i]));
    tg_config_free(&c);
  }
}

static void test_parse_int(void **state)
{
  int64_t v = 7;
  (void)state;
  assert_int_equal(tg_config_parse_int("0", 0, 10, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(tg_config_parse_int("10", 0, 10, &v), 0);
  assert_int_equal(v, 10);
  assert_int_equal(tg_config_parse_int("9223372036854775807", 1, INT64_MAX, &v), 0);
  assert_true(v == INT64_MAX);
  v = 7;
  assert_int_equal(tg_config_parse_int("11", 0, 10, &v), TG_EINVAL);
  assert_int_equal(tg_config_parse_int("0", 1, 10, &v), TG_EINVAL);
  assert_int_equal(tg_config_parse_int("", 0, 10, &v), TG_EINVAL);
  assert_int_equal(tg_config_parse_int(NULL, 0, 10, &v), TG_EINVAL);
  assert_int_equal(tg_config_parse_int("-1", -5, 10, &v), TG_EINVAL); /* digits only */
  assert_int_equal(tg_config_parse_int("9223372036854775808", 0, INT64_MAX, &v), TG_EINVAL);
  assert_int_equal(v, 7); /* untouched on failure */
}

static void test_help(void **state)
{
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  (void)state;
  assert_non_null(f);
  tg_config_help(f, TG_PROG_WORKER, "usage: test");
  fclose(f);
  assert_non_null(strstr(text, "usage: test\n"));
  assert_non_null(strstr(text, "TOOLGATE_WORKER_CONCURRENCY"));
  assert_non_null(strstr(text, "[default: 4; 1 to 1024]"));
  assert_non_null(strstr(text, "TOOLGATE_DB"));
  assert_non_null(strstr(text, "[default: toolgate.db]"));
  assert_null(strstr(text, "TOOLGATE_MAX_HEADERS")); /* the gateway's */
  free(text);
}

/* Group setup: the defaults are under test, not the caller's environment. */
static int clean_environment(void **state)
{
  static const char *const read_here[] = {"TOOLGATE_WORKER_CONCURRENCY", "TOOLGATE_POLL_MS",
                                          "TOOLGATE_LEASE_MS",           "TOOLGATE_LISTEN",
                                          "TOOLGATE_TRUST_USER_HEADER",  "TOOLGATE_MAX_HEADERS",
                                          "TOOLGATE_RUN_DEADLINE_MS"};
  for (size_t i = 0; i < sizeof read_here / sizeof read_here[0]; i++)
    unsetenv(read_here[i]);
  (void)state;
  return 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),  cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_accepted),  cmocka_unit_test(test_not_a_whole_integer),
      cmocka_unit_test(test_parse_int), cmocka_unit_test(test_help),
  };
  return cmocka_run_group_tests(tests, clean_environment, NULL);
}
