/*
 * Unit tests for common/tg_json.c: tg_json_dumps must write exactly what json_dumps(JSON_COMPACT
 * | JSON_ENCODE_ANY) writes, including where yajl_gen cannot (deep nesting, invalid UTF-8 put in
 * with json_stringn_nocheck), where it hands over to jansson.
 */
#include "tg_unit.h"

#include "tg_json.h"

#include <stdlib.h>
#include <string.h>

static void same_as_jansson(json_t *v)
{
  size_t n = 0;
  char *ours = tg_json_dumps(v, &n);
  char *ref = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  assert_non_null(ours);
  assert_non_null(ref);
  assert_string_equal(ours, ref);
  assert_int_equal(n, strlen(ref));
  free(ours);
  free(ref);
  json_decref(v);
}

static void test_values(void **state)
{
  (void)state;
  same_as_jansson(json_pack("{s:s, s:I, s:b, s:n, s:[], s:{}}", "run_id", "run_1", "n",
                            (json_int_t)-9223372036854775807LL, "t", 1, "z", "a", "o"));
  same_as_jansson(json_loads("[0.1, 100.0, 1e22, 1.5e-300, -0.0, 123456.789, 2.5E+10]", 0, NULL));
  same_as_jansson(json_stringn("a\0b\"\\/\b\f\n\r\t\x1f\x7f\xc3\xa9\xf0\x9f\x98\x80", 19));
  same_as_jansson(json_integer(42));
  same_as_jansson(json_true());
  same_as_jansson(json_null());
}

/* The exact text, so a change on both sides at once would still show. */
static void test_exact_text(void **state)
{
  json_t *v = json_pack("{s:s, s:[i, f, f], s:s}", "k", "x\ny", "a", 1, 2.0, 1e22, "e", "\xc3\xa9");
  char *t = tg_json_dumps(v, NULL);
  (void)state;
  assert_string_equal(t, "{\"k\":\"x\\ny\",\"a\":[1,2.0,1e22],\"e\":\"\xc3\xa9\"}");
  free(t);
  json_decref(v);
}

/* Past yajl_gen's 128 levels the value goes to json_dumps, which still writes it. */
static void test_deep(void **state)
{
  json_t *v = json_array(), *cur = v;
  (void)state;
  for (int i = 0; i < 300; i++) {
    json_t *next = json_array();
    json_array_append_new(cur, next);
    cur = next;
  }
  same_as_jansson(v);
}

/* A string that is not UTF-8 (json_stringn_nocheck): jansson refuses it, so does tg_json. */
static void test_invalid_utf8(void **state)
{
  json_t *v = json_pack("{s:o}", "k", json_stringn_nocheck("\xff", 1));
  (void)state;
  assert_null(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
  assert_null(tg_json_dumps(v, NULL));
  assert_null(tg_json_dumps(NULL, NULL));
  json_decref(v);
}

/* tg_json_utf8_cut: a cut at every byte of text mixing 1-, 2-, 3- and 4-byte characters never
 * ends inside one, loses at most the character cut short, and leaves a string jansson takes. */
static void test_utf8_cut(void **state)
{
  const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z */
  const size_t whole[] = {0, 1, 3, 6, 10, 11};              /* character boundaries */
  size_t len = strlen(s);
  (void)state;
  for (size_t n = 0; n <= len; n++) {
    size_t cut = tg_json_utf8_cut(s, n), want = 0;
    for (size_t k = 0; k < sizeof whole / sizeof whole[0]; k++)
      if (whole[k] <= n)
        want = whole[k];
    assert_int_equal(cut, want);
    json_t *j = json_stringn(s, cut);
    assert_non_null(j);
    json_decref(j);
  }
  assert_int_equal(tg_json_utf8_cut("\x80\x80", 2), 0); /* continuation bytes only */
}

TG_UNIT_MAIN(cmocka_unit_test(test_values), cmocka_unit_test(test_exact_text),
             cmocka_unit_test(test_deep), cmocka_unit_test(test_invalid_utf8),
             cmocka_unit_test(test_utf8_cut))
