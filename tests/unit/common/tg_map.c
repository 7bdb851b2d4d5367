/*
 * Unit tests for common/tg_map.c: put/get/replace/delete/take with values freed exactly once,
 * binary keys, LRU eviction by cost (get refreshes, peek does not), sweep deleting while it
 * walks, and a large map checked against a plain array.
 */
#include "tg_unit.h"

#include "tg_err.h"
#include "tg_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int freed;

static void count_free(void *v)
{
  freed++;
  free(v);
}

static char *val(const char *s)
{
  char *p = strdup(s);
  assert_non_null(p);
  return p;
}

static void test_basic(void **state)
{
  tg_map *m = tg_map_new(0, count_free);
  (void)state;
  freed = 0;
  assert_non_null(m);
  assert_null(tg_map_gets(m, "a"));
  assert_int_equal(tg_map_puts(m, "a", val("1"), 1), 0);
  assert_int_equal(tg_map_puts(m, "b", val("2"), 1), 0);
  assert_string_equal(tg_map_gets(m, "a"), "1");
  assert_int_equal(tg_map_puts(m, "a", val("3"), 1), 0); /* replace frees the old value */
  assert_int_equal(freed, 1);
  assert_string_equal(tg_map_gets(m, "a"), "3");
  assert_int_equal(tg_map_count(m), 2);
  assert_int_equal(tg_map_cost(m), 2);
  assert_int_equal(tg_map_dels(m, "b"), 0);
  assert_int_equal(freed, 2);
  assert_int_equal(tg_map_dels(m, "b"), TG_ENOTFOUND);
  assert_int_equal(tg_map_dels(m, "a"), 0);
  assert_int_equal(freed, 3);
  assert_int_equal(tg_map_count(m), 0);
  assert_int_equal(tg_map_puts(m, "z", val("9"), 1), 0);
  tg_map_free(m); /* frees what is left */
  assert_int_equal(freed, 4);
  tg_map_free(NULL);
}

static void test_binary_keys(void **state)
{
  tg_map *m = tg_map_new(0, NULL);
  static int x, y;
  const char k1[] = {'a', 0, 'b'}, k2[] = {'a', 0, 'c'};
  (void)state;
  assert_int_equal(tg_map_put(m, k1, sizeof k1, &x, 1), 0);
  assert_int_equal(tg_map_put(m, k2, sizeof k2, &y, 1), 0);
  assert_ptr_equal(tg_map_get(m, k1, sizeof k1), &x);
  assert_ptr_equal(tg_map_get(m, k2, sizeof k2), &y);
  assert_null(tg_map_get(m, k1, 1));                /* "a" alone is another key */
  assert_int_equal(tg_map_put(m, "", 0, &x, 1), 0); /* the empty key */
  assert_ptr_equal(tg_map_get(m, "", 0), &x);
  tg_map_free(m);
}

static void test_lru(void **state)
{
  tg_map *m = tg_map_new(10, count_free);
  (void)state;
  freed = 0;
  assert_int_equal(tg_map_puts(m, "a", val("a"), 4), 0);
  assert_int_equal(tg_map_puts(m, "b", val("b"), 4), 0);
  assert_non_null(tg_map_gets(m, "a"));                  /* a is now newer than b */
  assert_int_equal(tg_map_puts(m, "c", val("c"), 4), 0); /* 12 > 10: evicts b */
  assert_int_equal(freed, 1);
  assert_null(tg_map_peek(m, "b", 1));
  assert_non_null(tg_map_peek(m, "a", 1));
  assert_non_null(tg_map_peek(m, "c", 1));
  assert_int_equal(tg_map_cost(m), 8);
  assert_non_null(tg_map_peek(m, "a", 1));               /* peek does not refresh: a stays oldest */
  assert_int_equal(tg_map_puts(m, "d", val("d"), 6), 0); /* 14: evicts a, then 10 fits */
  assert_null(tg_map_peek(m, "a", 1));
  assert_non_null(tg_map_peek(m, "c", 1));
  assert_int_equal(tg_map_cost(m), 10);
  assert_int_equal(tg_map_puts(m, "e", val("e"), 10), 0); /* evicts everything else */
  assert_int_equal(tg_map_count(m), 1);
  {
    char *big = val("big");
    assert_int_equal(tg_map_puts(m, "f", big, 11), TG_ETOOBIG); /* never fits: not taken */
    free(big);
  }
  assert_int_equal(tg_map_count(m), 1);
  assert_int_equal(tg_map_puts(m, "e", val("e2"), 3), 0); /* replace adjusts the cost */
  assert_int_equal(tg_map_cost(m), 3);
  tg_map_free(m);
  assert_int_equal(freed, 6);
}

static int drop_odd(void *ctx, const void *key, size_t klen, void *value)
{
  int *visited = ctx;
  (void)key;
  (void)klen;
  (*visited)++;
  return atoi(value) % 2;
}

static void test_sweep_and_many(void **state)
{
  tg_map *m = tg_map_new(0, count_free);
  char key[32], *v;
  int i, visited = 0;
  (void)state;
  freed = 0;
  for (i = 0; i < 20000; i++) {
    snprintf(key, sizeof key, "user-%d", i);
    snprintf(key + 16, sizeof key - 16, "%d", i);
    assert_int_equal(tg_map_puts(m, key, val(key + 16), 1), 0);
  }
  assert_int_equal(tg_map_count(m), 20000);
  for (i = 0; i < 20000; i += 997) {
    snprintf(key, sizeof key, "user-%d", i);
    v = tg_map_gets(m, key);
    assert_non_null(v);
    assert_int_equal(atoi(v), i);
  }
  tg_map_sweep(m, drop_odd, &visited);
  assert_int_equal(visited, 20000);
  assert_int_equal(tg_map_count(m), 10000);
  assert_int_equal(freed, 10000);
  snprintf(key, sizeof key, "user-%d", 7);
  assert_null(tg_map_gets(m, key));
  snprintf(key, sizeof key, "user-%d", 8);
  assert_non_null(tg_map_gets(m, key));
  tg_map_free(m);
  assert_int_equal(freed, 20000);
}

TG_UNIT_MAIN(cmocka_unit_test(test_basic), cmocka_unit_test(test_binary_keys),
             cmocka_unit_test(test_lru), cmocka_unit_test(test_sweep_and_many))
