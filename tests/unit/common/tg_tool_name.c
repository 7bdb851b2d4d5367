/*
 * Unit tests of common/tg_tool_name.c: names equal ignoring ASCII case with a space and an
 * underscore the same; lookup by tool_id first (anywhere in the list), then by name.
 */
#include "tg_unit.h"

#include "tg_tool_name.h"

static void test_name_eq(void **state)
{
  (void)state;
  assert_true(tg_tool_name_eq("Code Execution", "code_execution"));
  assert_true(tg_tool_name_eq("DOCUMENT_analysis", "Document Analysis"));
  assert_false(tg_tool_name_eq("Code Execution", "code_executions"));
  assert_false(tg_tool_name_eq("code-execution", "code_execution"));
  assert_false(tg_tool_name_eq("", "x"));
  assert_true(tg_tool_name_eq("", ""));
}

static void test_lookup(void **state)
{
  json_t *rows = json_loads("[{\"tool_id\":\"a1\",\"name\":\"code_execution\"},"
                            "{\"tool_id\":\"b2\",\"name\":\"a1\"},{\"name\":\"no id\"},"
                            "{\"tool_id\":\"c3\",\"name\":\"Document_Analysis\"}]",
                            0, NULL);
  (void)state;
  assert_non_null(rows);
  assert_ptr_equal(tg_tool_lookup(rows, "Code Execution"), json_array_get(rows, 0));
  assert_ptr_equal(tg_tool_lookup(rows, "a1"), json_array_get(rows, 0)); /* the id wins */
  assert_ptr_equal(tg_tool_lookup(rows, "document analysis"), json_array_get(rows, 3));
  assert_ptr_equal(tg_tool_lookup(rows, "No Id"), json_array_get(rows, 2));
  assert_null(tg_tool_lookup(rows, "Crystal Ball"));
  assert_null(tg_tool_lookup(rows, NULL));
  assert_null(tg_tool_lookup(NULL, "x"));
  json_decref(rows);
}

TG_UNIT_MAIN(cmocka_unit_test(test_name_eq), cmocka_unit_test(test_lookup))
