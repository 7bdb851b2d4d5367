/*
 * Unit tests for common/tg_accounts_cache.c: an answer is fresh for fresh_ms and then only the
 * last known one; put replaces; drop by provider and by user (not a user whose id merely starts
 * the same); LRU eviction at max_entries; a NULL cache finds nothing; references are kept and
 * released exactly once (ASan/LSan would report a leak or a double free).
 */
#include "tg_unit.h"

#include "tg_accounts_cache.h"
#include "tg_err.h"

#include <stdio.h>
#include <string.h>

static void test_fresh_then_stale(void **state)
{
  tg_accounts_cache *c;
  json_t *a = json_pack("{s:s}", "status", "ACTIVE");
  (void)state;
  assert_int_equal(tg_accounts_cache_new(&c, 10, 30000), 0);
  assert_null(tg_accounts_cache_fresh(c, "u", "gmail", 0));
  assert_int_equal(tg_accounts_cache_put(c, "u", "gmail", a, 1000), 0);
  json_decref(a); /* the cache holds its own reference */
  assert_ptr_equal(tg_accounts_cache_fresh(c, "u", "gmail", 1000), a);
  assert_ptr_equal(tg_accounts_cache_fresh(c, "u", "gmail", 30999), a);
  /* Expired: no longer fresh, still the last known answer. */
  assert_null(tg_accounts_cache_fresh(c, "u", "gmail", 31000));
  assert_ptr_equal(tg_accounts_cache_last(c, "u", "gmail"), a);
  assert_string_equal(
      json_string_value(json_object_get(tg_accounts_cache_last(c, "u", "gmail"), "status")),
      "ACTIVE");
  /* Other keys are separate. */
  assert_null(tg_accounts_cache_last(c, "u", "slack"));
  assert_null(tg_accounts_cache_last(c, "v", "gmail"));
  /* A new put replaces and is fresh again. */
  a = json_pack("{s:s}", "status", "EXPIRED");
  assert_int_equal(tg_accounts_cache_put(c, "u", "gmail", a, 40000), 0);
  assert_ptr_equal(tg_accounts_cache_fresh(c, "u", "gmail", 40000), a);
  json_decref(a);
  assert_int_equal(tg_accounts_cache_count(c), 1);
  tg_accounts_cache_free(c);
}

static void put(tg_accounts_cache *c, const char *user, const char *provider)
{
  json_t *a = json_object();
  assert_int_equal(tg_accounts_cache_put(c, user, provider, a, 0), 0);
  json_decref(a);
}

/* A cache of max_entries holding an empty answer for each "user/provider" in keys (NULL-ended). */
static tg_accounts_cache *filled(size_t max_entries, const char *const *keys)
{
  tg_accounts_cache *c;
  assert_int_equal(tg_accounts_cache_new(&c, max_entries, 30000), 0);
  for (; *keys; keys++) {
    char user[16];
    const char *slash = strchr(*keys, '/');
    snprintf(user, sizeof user, "%.*s", (int)(slash - *keys), *keys);
    put(c, user, slash + 1);
  }
  return c;
}

static void test_drop(void **state)
{
  static const char *const keys[] = {"u/gmail", "u/slack", "uu/gmail", "v/gmail", NULL};
  tg_accounts_cache *c = filled(10, keys);
  (void)state;
  tg_accounts_cache_drop(c, "u", "gmail");
  assert_null(tg_accounts_cache_last(c, "u", "gmail"));
  assert_non_null(tg_accounts_cache_last(c, "u", "slack"));
  tg_accounts_cache_drop(c, "u", "gmail"); /* absent: nothing */
  put(c, "u", "gmail");
  tg_accounts_cache_drop(c, "u", NULL);
  assert_null(tg_accounts_cache_last(c, "u", "gmail"));
  assert_null(tg_accounts_cache_last(c, "u", "slack"));
  assert_non_null(tg_accounts_cache_last(c, "uu", "gmail"));
  assert_non_null(tg_accounts_cache_last(c, "v", "gmail"));
  assert_int_equal(tg_accounts_cache_count(c), 2);
  tg_accounts_cache_free(c);
}

static void test_bounded_lru(void **state)
{
  static const char *const keys[] = {"a/p", "b/p", NULL};
  tg_accounts_cache *c = filled(2, keys);
  (void)state;
  assert_non_null(tg_accounts_cache_fresh(c, "a", "p", 1)); /* a is now the most recent */
  put(c, "c", "p");
  assert_int_equal(tg_accounts_cache_count(c), 2);
  assert_null(tg_accounts_cache_last(c, "b", "p"));
  assert_non_null(tg_accounts_cache_last(c, "a", "p"));
  assert_non_null(tg_accounts_cache_last(c, "c", "p"));
  tg_accounts_cache_free(c);
}

static void test_null_and_limits(void **state)
{
  tg_accounts_cache *c = (tg_accounts_cache *)1;
  char user[600];
  json_t *a = json_object();
  (void)state;
  assert_int_equal(tg_accounts_cache_new(&c, 0, 1), TG_EINVAL);
  assert_null(c);
  assert_null(tg_accounts_cache_fresh(NULL, "u", "p", 0));
  assert_null(tg_accounts_cache_last(NULL, "u", "p"));
  assert_int_equal(tg_accounts_cache_put(NULL, "u", "p", a, 0), TG_EINVAL);
  tg_accounts_cache_drop(NULL, "u", NULL);
  assert_int_equal(tg_accounts_cache_count(NULL), 0);
  tg_accounts_cache_free(NULL);
  assert_int_equal(tg_accounts_cache_new(&c, 4, 1), 0);
  memset(user, 'x', sizeof user - 1);
  user[sizeof user - 1] = 0;
  assert_int_equal(tg_accounts_cache_put(c, user, "p", a, 0), TG_EINVAL);
  assert_null(tg_accounts_cache_last(c, user, "p"));
  assert_int_equal(json_object_size(a), 0);
  json_decref(a);
  tg_accounts_cache_free(c);
}

TG_UNIT_MAIN(cmocka_unit_test(test_fresh_then_stale), cmocka_unit_test(test_drop),
             cmocka_unit_test(test_bounded_lru), cmocka_unit_test(test_null_and_limits))
