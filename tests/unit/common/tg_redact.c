/* Unit tests for common/tg_redact.c: by key (tg_redact, tg_redact_is_secret_key) and by value
 * (tg_redact_text, tg_redact_values). */
#include "tg_unit.h"

#include "tg_redact.h"

#include <stdlib.h>
#include <string.h>

/* tg_redact_text(text, secrets) is want. */
static void assert_redacted(const char *text, const char *const *secrets, const char *want)
{
  char *s = tg_redact_text(text, secrets);
  assert_string_equal(s, want);
  free(s);
}

static void test_redact_text(void **state)
{
  const char *const secrets[] = {"abc", "abcdef", "", NULL};
  const char *const none[] = {NULL};
  const char *const one[] = {"a", NULL};
  (void)state;
  /* the longest match wins: nothing of "abcdef" is left */
  assert_redacted("x abcdef y abc z abcabc", secrets,
                  "x [REDACTED] y [REDACTED] z [REDACTED][REDACTED]");
  assert_redacted("nothing here", secrets, "nothing here");
  assert_redacted("abc", none, "abc");
  assert_redacted("", secrets, "");
  assert_null(tg_redact_text(NULL, secrets));
  /* worst case growth: every byte a secret */
  assert_redacted("aaaa", one, "[REDACTED][REDACTED][REDACTED][REDACTED]");
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

static void test_secret_key_names(void **state)
{
  char long_key[200];
  (void)state;
  assert_true(tg_redact_is_secret_key("Authorization"));
  assert_true(tg_redact_is_secret_key("X-API-KEY"));
  assert_true(tg_redact_is_secret_key("github_access_token"));
  assert_true(tg_redact_is_secret_key("Webhook_Secret"));
  assert_true(tg_redact_is_secret_key("db_password"));
  assert_true(tg_redact_is_secret_key("stripe_key"));
  assert_false(tg_redact_is_secret_key("Idempotency_Key"));
  assert_false(tg_redact_is_secret_key("user_id"));
  assert_false(tg_redact_is_secret_key("tokens_used"));
  assert_false(tg_redact_is_secret_key(NULL));
  memset(long_key, 'a', sizeof long_key);
  memcpy(long_key + sizeof long_key - 7, "_TOKEN", 7); /* 199 bytes + NUL */
  assert_true(tg_redact_is_secret_key(long_key));
  memcpy(long_key + sizeof long_key - 7, "_tokex", 7);
  assert_false(tg_redact_is_secret_key(long_key));
}

TG_UNIT_MAIN(cmocka_unit_test(test_redact_text), cmocka_unit_test(test_redact_values),
             cmocka_unit_test(test_redact_by_key), cmocka_unit_test(test_secret_key_names))
