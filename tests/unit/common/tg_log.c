/* Unit tests for common/tg_log.c's redaction: by key (tg_redact), by value (tg_redact_text,
 * tg_redact_values) and the per-run values held for the log scrubber (tg_log_hold_secret), the
 * last checked on real log lines captured from stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tg_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_redact_text(void **state)
{
  const char *const secrets[] = {"abc", "abcdef", "", NULL};
  const char *const none[] = {NULL};
  char *s;
  (void)state;
  s = tg_redact_text("x abcdef y abc z abcabc", secrets);
  /* the longest match wins: nothing of "abcdef" is left */
  assert_string_equal(s, "x [REDACTED] y [REDACTED] z [REDACTED][REDACTED]");
  free(s);
  s = tg_redact_text("nothing here", secrets);
  assert_string_equal(s, "nothing here");
  free(s);
  s = tg_redact_text("abc", none);
  assert_string_equal(s, "abc");
  free(s);
  s = tg_redact_text("", secrets);
  assert_string_equal(s, "");
  free(s);
  assert_null(tg_redact_text(NULL, secrets));
  /* worst case growth: every byte a secret */
  {
    const char *const one[] = {"a", NULL};
    s = tg_redact_text("aaaa", one);
    assert_string_equal(s, "[REDACTED][REDACTED][REDACTED][REDACTED]");
    free(s);
  }
}

static void test_redact_values(void **state)
{
  const char *const secrets[] = {"hunter2-long", NULL};
  json_t *v = json_pack("{s:s, s:[s, i, {s:s}], s:{s:s}, s:n, s:b}", "msg", "Echo: hunter2-long!",
                        "list", "hunter2-long", 7, "deep", "x hunter2-long", "k", "hunter2-long",
                        "plain", "n", "t", 1);
  json_t *r = tg_redact_values(v, secrets);
  char *text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS), *orig;
  (void)state;
  assert_non_null(text);
  assert_null(strstr(text, "hunter2"));
  assert_string_equal(json_string_value(json_object_get(r, "msg")), "Echo: [REDACTED]!");
  assert_string_equal(json_string_value(json_array_get(json_object_get(r, "list"), 0)),
                      "[REDACTED]");
  assert_int_equal(json_integer_value(json_array_get(json_object_get(r, "list"), 1)), 7);
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "k"), "[REDACTED]")),
                      "plain");
  assert_true(json_is_true(json_object_get(r, "t")));
  /* the input is not modified */
  orig = json_dumps(v, JSON_COMPACT);
  assert_non_null(strstr(orig, "hunter2-long"));
  free(orig);
  free(text);
  json_decref(r);
  json_decref(v);
  assert_null(tg_redact_values(NULL, secrets));
}

/* Runs fn with stderr redirected to a temp file; returns what was written (malloc'd). */
static char *capture(void (*fn)(void))
{
  char path[64], *buf;
  FILE *f;
  long n;
  int saved;
  snprintf(path, sizeof path, "/tmp/tg_log_test_%ld.txt", (long)getpid());
  fflush(stderr);
  saved = dup(2);
  assert_true(saved >= 0);
  assert_non_null(f = fopen(path, "w+"));
  assert_true(dup2(fileno(f), 2) >= 0);
  fn();
  fflush(stderr);
  assert_true(dup2(saved, 2) >= 0);
  close(saved);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  rewind(f);
  buf = calloc(1, (size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  unlink(path);
  return buf;
}

static void log_lines(void)
{
  tg_info("probe", "{s:s, s:s}", "note", "value is pw-9 and pw-9-long", "other", "x");
}

static void test_held_secrets(void **state)
{
  char *out;
  (void)state;
  tg_log_init("test", TG_LOG_INFO);
  out = capture(log_lines);
  assert_non_null(strstr(out, "pw-9-long"));
  free(out);

  assert_int_equal(tg_log_hold_secret("pw-9"), 0);
  assert_int_equal(tg_log_hold_secret("pw-9-long"), 0);
  assert_int_equal(tg_log_hold_secret("pw-9"), 0); /* held twice */
  assert_int_equal(tg_log_hold_secret(""), 0);     /* ignored */
  out = capture(log_lines);
  assert_null(strstr(out, "pw-9"));
  assert_non_null(strstr(out, "value is [REDACTED] and [REDACTED]"));
  free(out);

  tg_log_release_secret("pw-9-long");
  tg_log_release_secret("pw-9"); /* still held once */
  out = capture(log_lines);
  assert_non_null(strstr(out, "value is [REDACTED] and [REDACTED]-long"));
  free(out);
  tg_log_release_secret("pw-9");
  tg_log_release_secret("never-held"); /* harmless */
  out = capture(log_lines);
  assert_non_null(strstr(out, "value is pw-9 and pw-9-long"));
  free(out);
}

static void test_redact_by_key(void **state)
{
  json_t *v = json_pack("{s:s, s:{s:s}, s:s}", "Authorization", "Bearer x", "h", "api_key", "k",
                        "idempotency_key", "keep");
  json_t *r = tg_redact(v);
  (void)state;
  assert_string_equal(json_string_value(json_object_get(r, "Authorization")), "[REDACTED]");
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "h"), "api_key")),
                      "[REDACTED]");
  assert_string_equal(json_string_value(json_object_get(r, "idempotency_key")), "keep");
  json_decref(r);
  json_decref(v);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_redact_text),
      cmocka_unit_test(test_redact_values),
      cmocka_unit_test(test_held_secrets),
      cmocka_unit_test(test_redact_by_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
