/*
 * Unit tests for common/tg_tool_schema.c: scalar types, nested objects and arrays, required keys
 * in the example's order, the empty array, no example, and the depth bound.
 */
#include "tg_unit.h"

#include "tg_tool_schema.h"

#include <string.h>

static void expect(const char *example, const char *schema)
{
  json_t *ex = json_loads(example, JSON_DECODE_ANY, NULL), *want = json_loads(schema, 0, NULL);
  json_t *got = tg_tool_schema_infer(ex);
  char *text = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
  assert_non_null(want);
  if (!json_equal(got, want))
    fail_msg("%s gave %s", example, text);
  free(text);
  json_decref(ex);
  json_decref(want);
  json_decref(got);
}

static void test_scalars(void **state)
{
  (void)state;
  expect("\"x\"", "{\"type\":\"string\"}");
  expect("3", "{\"type\":\"integer\"}");
  expect("3.5", "{\"type\":\"number\"}");
  expect("true", "{\"type\":\"boolean\"}");
  expect("false", "{\"type\":\"boolean\"}");
  expect("null", "{\"type\":\"null\"}");
}

static void test_nested(void **state)
{
  (void)state;
  expect(
      "{\"title\":\"t\",\"labels\":[\"a\"],\"meta\":{\"n\":1,\"ok\":true},\"items\":[{\"id\":2}],"
      "\"none\":[]}",
      "{\"type\":\"object\",\"properties\":{\"title\":{\"type\":\"string\"},\"labels\":{"
      "\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"meta\":{\"type\":\"object\","
      "\"properties\":{\"n\":{\"type\":\"integer\"},\"ok\":{\"type\":\"boolean\"}},"
      "\"required\":[\"n\",\"ok\"]},\"items\":{\"type\":\"array\",\"items\":{\"type\":"
      "\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}},\"required\":[\"id\"]}},"
      "\"none\":{\"type\":\"array\"}},\"required\":[\"title\",\"labels\",\"meta\",\"items\","
      "\"none\"]}");
  expect("{}", "{\"type\":\"object\",\"properties\":{},\"required\":[]}");
}

static void test_required_order_and_none(void **state)
{
  json_t *ex = json_loads("{\"b\":1,\"a\":2}", JSON_PRESERVE_ORDER, NULL);
  json_t *got = tg_tool_schema_infer(ex);
  json_t *none = tg_tool_schema_infer(NULL);
  (void)state;
  assert_string_equal(json_string_value(json_array_get(json_object_get(got, "required"), 0)), "b");
  assert_string_equal(json_string_value(json_object_get(none, "type")), "object");
  json_decref(ex);
  json_decref(got);
  json_decref(none);
}

static void test_depth_bound(void **state)
{
  json_t *v = json_integer(1), *s, *p;
  int depth = 0;
  (void)state;
  for (int i = 0; i < 100; i++)
    v = json_pack("[o]", v);
  s = tg_tool_schema_infer(v);
  for (p = s; json_object_get(p, "items"); p = json_object_get(p, "items"))
    depth++;
  assert_int_equal(depth, TG_TOOL_SCHEMA_DEPTH);
  assert_int_equal(json_object_size(p), 0);
  json_decref(v);
  json_decref(s);
}

TG_UNIT_MAIN(cmocka_unit_test(test_scalars), cmocka_unit_test(test_nested),
             cmocka_unit_test(test_required_order_and_none), cmocka_unit_test(test_depth_bound))
