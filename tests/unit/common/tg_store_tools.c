/*
 * Unit tests for common/tg_store_tools.c: tool ids (UUIDv5 per RFC 9562, checked against
 * Python's uuid.uuid5), an unchanged upsert writing nothing, a changed one moving version,
 * a sync soft-deleting what its prefix no longer names, and the catalog read.
 */
#include "tg_unit.h"

#include "temp_db.h"
#include "tg_err.h"
#include "tg_store_tools.h"

#include <string.h>

static void test_tool_id(void **state)
{
  char id[TG_TOOL_ID_LEN + 1], other[TG_TOOL_ID_LEN + 1];
  (void)state;
  /* python3: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "urn:toolgate:tools"),
   *                     "alice\nbuiltin:calculator") */
  assert_int_equal(tg_tool_id("alice", "builtin:calculator", id), 0);
  assert_string_equal(id, "858a0fd4-c34e-5538-b40a-1113622a5f8c");
  assert_int_equal(tg_tool_id("bob", "builtin:calculator", other), 0);
  assert_string_not_equal(id, other);
  assert_int_equal(tg_tool_id(NULL, "x", id), TG_EINVAL);
}

static int64_t version_of(temp_db *t, const char *user, const char *sid, int64_t *updated,
                          int *deleted)
{
  char id[TG_TOOL_ID_LEN + 1];
  int err = 0;
  json_t *row;
  int64_t v;
  assert_int_equal(tg_tool_id(user, sid, id), 0);
  row = tg_db_query_one(t->db, &err,
                        "SELECT version, updated_at, deleted_at IS NOT NULL AS del FROM tools "
                        "WHERE tool_id = ?",
                        "s", id);
  assert_non_null(row);
  v = json_integer_value(json_object_get(row, "version"));
  *updated = json_integer_value(json_object_get(row, "updated_at"));
  *deleted = (int)json_integer_value(json_object_get(row, "del"));
  json_decref(row);
  return v;
}

static void test_upsert_and_sync(void **state)
{
  temp_db *tp = &temp;
  json_t *def1 = json_pack("{s:{s:s}, s:s}", "input_schema", "type", "object", "source", "api");
  json_t *def2 = json_pack("{s:{s:s}, s:s}", "input_schema", "type", "string", "source", "api");
  tg_tool_def d[2] = {
      {.string_id = "api:con_1:a",
       .name = "a",
       .tool_type = "api",
       .source = "connector",
       .connector_id = "con_1",
       .definition = def1},
      {.string_id = "api:con_1:b",
       .name = "b",
       .tool_type = "api",
       .source = "connector",
       .connector_id = "con_1",
       .definition = def1},
  };
  tg_tools_stats st = {0};
  int64_t upd = 0;
  int del = 0;
  json_t *cat;
  int err = 0;
  (void)state;
  temp_db_open(tp, "unit_store_tools", NULL);
  assert_int_equal(tg_store_tools_sync(tp->db, "alice", "api:con_1:", d, 2, 1000, &st), 0);
  assert_int_equal(st.inserted, 2);
  memset(&st, 0, sizeof st);
  assert_int_equal(tg_store_tools_sync(tp->db, "alice", "api:con_1:", d, 2, 2000, &st), 0);
  assert_int_equal(st.unchanged, 2);
  assert_int_equal(st.inserted + st.updated + st.deleted, 0);
  assert_int_equal(version_of(tp, "alice", "api:con_1:a", &upd, &del), 1);
  assert_int_equal(upd, 1000);
  d[0].definition = def2; /* changed */
  memset(&st, 0, sizeof st);
  assert_int_equal(tg_store_tools_sync(tp->db, "alice", "api:con_1:", d, 1, 3000, &st), 0);
  assert_int_equal(st.updated, 1);
  assert_int_equal(st.deleted, 1); /* b is gone from the set */
  assert_int_equal(version_of(tp, "alice", "api:con_1:a", &upd, &del), 2);
  assert_int_equal(upd, 3000);
  assert_int_equal(version_of(tp, "alice", "api:con_1:b", &upd, &del), 2);
  assert_int_equal(del, 1);
  /* the same source for bob is bob's own row */
  assert_int_equal(tg_store_tools_upsert(tp->db, "bob", &d[0], 4000, NULL), 0);
  cat = tg_store_tools_catalog(tp->db, &err, "alice");
  assert_non_null(cat);
  assert_int_equal(json_array_size(cat), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(cat, 0), "source")),
                      "connector");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(json_array_get(cat, 0), "input_schema"), "type")),
                      "string");
  json_decref(cat);
  assert_int_equal(tg_store_tools_delete_connector(tp->db, "alice", "con_1", 5000, &del), 0);
  assert_int_equal(del, 1);
  json_decref(def1);
  json_decref(def2);
}

TG_UNIT_MAIN(cmocka_unit_test(test_tool_id),
             cmocka_unit_test_teardown(test_upsert_and_sync, temp_db_teardown))
