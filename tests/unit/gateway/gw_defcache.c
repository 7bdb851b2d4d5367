/*
 * Unit tests for gateway/gw_defcache.c: a hit returns the cached parse and leaves the caller's
 * text alone; a changed text of the same workflow (even of the same length) is parsed again and
 * replaces the entry; eviction by text bytes and by count, least recently used first; texts over
 * GW_DEFCACHE_MAX_TEXT are never cached; invalid JSON becomes a string; two caches never share.
 * A miss is seen from the outside by the text moving into the cache (*text set to NULL).
 */
#include "tg_unit.h"

#include "gw_defcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_text(const char *s)
{
  char *p = strdup(s);
  assert_non_null(p);
  return p;
}

/* A JSON string of n bytes in all ("xxx...x" with the quotes), malloc'd. */
static char *big_text(size_t n, char fill)
{
  char *p = malloc(n + 1);
  assert_non_null(p);
  memset(p, fill, n);
  p[0] = p[n - 1] = '"';
  p[n] = 0;
  return p;
}

/* Looks wf_id up with text (malloc'd, consumed); *def gets the parse (owned). Returns 0 when the
 * text moved into the cache (a miss, now cached), 1 when it did not (a hit, or not cacheable). */
static int lookup(gw_defcache *dc, const char *wf_id, char *text, json_t **def)
{
  size_t len = strlen(text);
  char *t = text;
  json_t *uses = NULL;
  *def = gw_defcache_get(dc, wf_id, &t, len, &uses);
  assert_non_null(*def);
  assert_true(json_is_array(json_object_get(uses, "providers")));
  assert_true(json_is_array(json_object_get(uses, "connectors")));
  json_decref(uses);
  if (!t)
    return 0;
  free(t);
  return 1;
}

static void test_hit_and_change(void **state)
{
  gw_defcache *dc;
  json_t *a, *b, *c, *d;
  (void)state;
  assert_int_equal(gw_defcache_new(&dc, GW_DEFCACHE_BYTES, GW_DEFCACHE_ENTRIES), 0);
  assert_int_equal(lookup(dc, "wf_1", dup_text("{\"v\": 1}"), &a), 0);
  assert_int_equal(json_integer_value(json_object_get(a, "v")), 1);
  assert_int_equal(lookup(dc, "wf_1", dup_text("{\"v\": 1}"), &b), 1);
  assert_ptr_equal(a, b); /* the cached parse, shared */
  /* Edited workflow, same length: parsed again, never the old answer. */
  assert_int_equal(lookup(dc, "wf_1", dup_text("{\"v\": 2}"), &c), 0);
  assert_int_equal(json_integer_value(json_object_get(c, "v")), 2);
  assert_int_equal(gw_defcache_count(dc), 1); /* replaced, not added */
  /* Another workflow with the same text is its own entry. */
  assert_int_equal(lookup(dc, "wf_2", dup_text("{\"v\": 2}"), &d), 0);
  assert_ptr_not_equal(c, d);
  assert_int_equal(gw_defcache_count(dc), 2);
  json_decref(a);
  json_decref(b);
  json_decref(c);
  json_decref(d);
  gw_defcache_free(dc);
  gw_defcache_free(NULL);
}

static void test_invalid_json_and_text_over_the_cap(void **state)
{
  gw_defcache *dc;
  json_t *a;
  (void)state;
  assert_int_equal(gw_defcache_new(&dc, GW_DEFCACHE_BYTES, GW_DEFCACHE_ENTRIES), 0);
  assert_int_equal(lookup(dc, "wf_bad", dup_text("{not json"), &a), 0);
  assert_string_equal(json_string_value(a), "{not json");
  json_decref(a);
  assert_int_equal(lookup(dc, "wf_big", big_text(GW_DEFCACHE_MAX_TEXT + 1, 'x'), &a), 1);
  assert_int_equal(gw_defcache_count(dc), 1); /* parsed, not cached: the caller kept the text */
  json_decref(a);
  gw_defcache_free(dc);
}

static void test_eviction_by_bytes(void **state)
{
  gw_defcache *dc;
  json_t *a;
  (void)state;
  /* 8 KiB for at most 4 entries: each costs at least 2 KiB. */
  assert_int_equal(gw_defcache_new(&dc, 8192, 4), 0);
  assert_int_equal(lookup(dc, "wf_a", big_text(3000, 'a'), &a), 0);
  json_decref(a);
  assert_int_equal(lookup(dc, "wf_b", big_text(3000, 'b'), &a), 0);
  json_decref(a);
  assert_int_equal(lookup(dc, "wf_a", big_text(3000, 'a'), &a), 1); /* refreshes wf_a */
  json_decref(a);
  assert_int_equal(gw_defcache_bytes(dc), 6000);
  assert_int_equal(lookup(dc, "wf_c", big_text(3000, 'c'), &a), 0); /* evicts wf_b */
  json_decref(a);
  assert_int_equal(gw_defcache_count(dc), 2);
  assert_int_equal(gw_defcache_bytes(dc), 6000);
  assert_int_equal(lookup(dc, "wf_a", big_text(3000, 'a'), &a), 1);
  json_decref(a);
  assert_int_equal(lookup(dc, "wf_b", big_text(3000, 'b'), &a), 0); /* was evicted */
  json_decref(a);
  /* More than the whole budget: served, not cached, nothing evicted for it. */
  assert_int_equal(lookup(dc, "wf_d", big_text(9000, 'd'), &a), 1);
  json_decref(a);
  assert_int_equal(gw_defcache_count(dc), 2);
  gw_defcache_free(dc);
}

static void test_eviction_by_count(void **state)
{
  gw_defcache *dc;
  json_t *a;
  char id[16];
  (void)state;
  assert_int_equal(gw_defcache_new(&dc, 8192, 4), 0);
  for (int i = 0; i < 6; i++) {
    snprintf(id, sizeof id, "wf_%d", i);
    assert_int_equal(lookup(dc, id, dup_text("{}"), &a), 0);
    json_decref(a);
  }
  assert_int_equal(gw_defcache_count(dc), 4);
  assert_int_equal(gw_defcache_bytes(dc), 8192);
  assert_int_equal(lookup(dc, "wf_5", dup_text("{}"), &a), 1);
  json_decref(a);
  assert_int_equal(lookup(dc, "wf_0", dup_text("{}"), &a), 0); /* the oldest went first */
  json_decref(a);
  gw_defcache_free(dc);
}

static void test_two_caches_never_share(void **state)
{
  gw_defcache *one, *two;
  json_t *a, *b;
  (void)state;
  assert_int_equal(gw_defcache_new(&one, GW_DEFCACHE_BYTES, GW_DEFCACHE_ENTRIES), 0);
  assert_int_equal(gw_defcache_new(&two, GW_DEFCACHE_BYTES, GW_DEFCACHE_ENTRIES), 0);
  assert_int_equal(lookup(one, "wf_1", dup_text("[1]"), &a), 0);
  assert_int_equal(lookup(two, "wf_1", dup_text("[1]"), &b), 0); /* not in the second cache */
  assert_ptr_not_equal(a, b);
  json_decref(b);
  gw_defcache_free(two);
  assert_int_equal(lookup(one, "wf_1", dup_text("[1]"), &b), 1); /* the first keeps its own */
  assert_ptr_equal(a, b);
  gw_defcache_free(one); /* the references handed out outlive the cache */
  assert_int_equal(json_array_size(a), 1);
  json_decref(a);
  json_decref(b);
}

TG_UNIT_MAIN(cmocka_unit_test(test_hit_and_change),
             cmocka_unit_test(test_invalid_json_and_text_over_the_cap),
             cmocka_unit_test(test_eviction_by_bytes), cmocka_unit_test(test_eviction_by_count),
             cmocka_unit_test(test_two_caches_never_share))
