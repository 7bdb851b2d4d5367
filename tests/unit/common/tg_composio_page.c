/*
 * Unit tests for common/tg_composio_page.c: the connected-accounts page decoder built on yajl's
 * event parser. Each case is also decoded by the jansson reference
 * (tests/fuzz/composio_page_oracle.h) where jansson accepts it, so the expected values are the
 * ones the old tree decoder gave, not values written down twice.
 */
#include "tg_unit.h"

#include "../../fuzz/composio_page_oracle.h"
#include "tg_composio_page.h"
#include "tg_err.h"

#include <string.h>

/* Decodes body; asserts the result agrees with the jansson reference when jansson accepts it. */
static int decode(const char *body, tg_composio_page *p, const char **why)
{
  tg_composio_account *ref;
  json_t *tree;
  const char *cursor;
  size_t n;
  int rc = tg_composio_page_decode(body, strlen(body), p, why);
  int o = oracle_page(body, strlen(body), &tree, &ref, &n, &cursor);
  if (o == 0) {
    assert_int_equal(rc, 0);
    assert_int_equal(p->n_items, n);
    assert_true(same_str(p->next_cursor, cursor));
    for (size_t i = 0; i < n; i++)
      assert_true(same_account(&p->items[i], &ref[i]));
  } else if (o == 1) {
    assert_int_equal(rc, TG_EPROTO);
  }
  free(ref);
  json_decref(tree);
  return rc;
}

/* What the simulator (and Composio, reference 2.3) sends: every field read, the rest skipped. */
static void test_real_item(void **state)
{
  tg_composio_page p;
  const char *why;
  (void)state;
  assert_int_equal(
      decode("{\"items\":[{\"id\":\"ca_JG_M-j4vqtJ8\",\"status\":\"ACTIVE\",\"status_reason\":null,"
             "\"is_disabled\":false,\"toolkit\":{\"slug\":\"everything\"},\"auth_config\":{\"id\":"
             "\"ac_e\",\"auth_scheme\":\"OAUTH2\",\"is_composio_managed\":true,\"is_disabled\":"
             "false},\"user_id\":\"u1\",\"created_at\":\"2026-11-21T10:36:14.217Z\",\"state\":{"
             "\"authScheme\":\"OAUTH2\",\"val\":{\"status\":\"ACTIVE\",\"access_token\":\"tok_x\","
             "\"expires_in\":3600}},\"data\":{}},{\"id\":\"ca_2\",\"status\":\"EXPIRED\","
             "\"status_reason\":\"token revoked\",\"is_disabled\":true}],\"next_cursor\":\"c2\","
             "\"total_pages\":2,\"current_page\":1,\"total_items\":3}",
             &p, &why),
      0);
  assert_int_equal(p.n_items, 2);
  assert_string_equal(p.items[0].id, "ca_JG_M-j4vqtJ8");
  assert_string_equal(p.items[0].status, "ACTIVE");
  assert_null(p.items[0].status_reason);
  assert_int_equal(p.items[0].is_disabled, 0);
  assert_int_equal(p.items[0].auth_refresh_required, 0);
  assert_string_equal(p.items[0].toolkit_slug, "everything");
  assert_string_equal(p.items[0].auth_config_id, "ac_e");
  assert_string_equal(p.items[0].user_id, "u1");
  assert_string_equal(p.items[1].status_reason, "token revoked");
  assert_int_equal(p.items[1].is_disabled, 1);
  assert_null(p.items[1].toolkit_slug);
  assert_string_equal(p.next_cursor, "c2");
  tg_composio_page_clear(&p);
  tg_composio_page_clear(&p); /* idempotent */
}

/* A repeated key counts once, with its last value, at every level. */
static void test_last_key_wins(void **state)
{
  tg_composio_page p;
  const char *why;
  (void)state;
  assert_int_equal(
      decode("{\"items\":[{\"id\":\"old\"}],\"next_cursor\":\"a\",\"items\":[{\"id\":\"a\",\"id\":"
             "\"b\",\"status\":\"ACTIVE\",\"toolkit\":{\"slug\":\"x\"},\"toolkit\":5,"
             "\"auth_config\":{\"id\":\"ac1\",\"id\":\"ac2\"},\"state\":{\"val\":{"
             "\"auth_refresh_required\":true}},\"state\":{\"val\":{}},\"is_disabled\":true,"
             "\"is_disabled\":\"true\"}],\"next_cursor\":7}",
             &p, &why),
      0);
  assert_int_equal(p.n_items, 1);
  assert_string_equal(p.items[0].id, "b");
  assert_null(p.items[0].toolkit_slug);
  assert_string_equal(p.items[0].auth_config_id, "ac2");
  assert_int_equal(p.items[0].auth_refresh_required, 0);
  assert_int_equal(p.items[0].is_disabled, 0);
  assert_null(p.next_cursor);
  tg_composio_page_clear(&p);
}

/* auth_refresh_required: JSON true at the top level or in state.val; nothing else counts. */
static void test_refresh_required(void **state)
{
  tg_composio_page p;
  const char *why;
  (void)state;
  assert_int_equal(
      decode("{\"items\":[{\"id\":\"1\",\"status\":\"ACTIVE\",\"auth_refresh_required\":true},"
             "{\"id\":\"2\",\"status\":\"ACTIVE\",\"state\":{\"val\":{\"auth_refresh_required\":"
             "true}}},{\"id\":\"3\",\"status\":\"ACTIVE\",\"auth_refresh_required\":\"yes\","
             "\"state\":{\"auth_refresh_required\":true,\"val\":[true]}},{\"id\":\"4\",\"status\":"
             "\"ACTIVE\",\"data\":{\"id\":\"nested\",\"toolkit\":{\"slug\":\"q\"},"
             "\"auth_refresh_required\":true}}]}",
             &p, &why),
      0);
  assert_int_equal(p.n_items, 4);
  assert_int_equal(p.items[0].auth_refresh_required, 1);
  assert_int_equal(p.items[1].auth_refresh_required, 1);
  assert_int_equal(p.items[2].auth_refresh_required, 0);
  assert_int_equal(p.items[3].auth_refresh_required, 0);
  assert_string_equal(p.items[3].id, "4");
  assert_null(p.items[3].toolkit_slug);
  tg_composio_page_clear(&p);
}

/* Escapes are decoded; the copies fit the buffer even when every string is kept. */
static void test_escapes(void **state)
{
  tg_composio_page p;
  const char *why;
  (void)state;
  assert_int_equal(decode("{\"items\":[{\"id\":\"ca_\\u00e9\\\"\\\\\",\"status\":\"A\","
                          "\"user_id\":\"\\ud83d\\ude00\",\"status_reason\":\"\"}],"
                          "\"next_cursor\":\"\\/x\"}",
                          &p, &why),
                   0);
  assert_string_equal(p.items[0].id, "ca_\xc3\xa9\"\\");
  assert_string_equal(p.items[0].user_id, "\xf0\x9f\x98\x80");
  assert_string_equal(p.items[0].status_reason, "");
  assert_string_equal(p.next_cursor, "/x");
  tg_composio_page_clear(&p);
}

static void expect_refused(const char *body, const char *why_expected)
{
  tg_composio_page p;
  const char *why = NULL;
  assert_int_equal(decode(body, &p, &why), TG_EPROTO);
  assert_non_null(why);
  assert_string_equal(why, why_expected);
  assert_null(p.items);
  assert_null(p.strings);
  tg_composio_page_clear(&p);
}

static void test_refused(void **state)
{
  static const char bad_body[] = "composio answered with a body that is not a JSON object";
  static const char no_items[] = "composio list response has no items array";
  static const char bad_item[] = "composio listed a connected account without id or status";
  (void)state;
  expect_refused("", bad_body);
  expect_refused("[]", bad_body);
  expect_refused("\"items\"", bad_body);
  expect_refused("{\"items\":[]} x", bad_body);                   /* trailing data */
  expect_refused("{\"items\":[]}{}", bad_body);                   /* two values */
  expect_refused("{\"items\":[] /* c */}", bad_body);             /* comments */
  expect_refused("{\"items\":[{\"id\":\"a\"", bad_body);          /* truncated */
  expect_refused("{\"items\":[],\"x\":\"a\\u0000b\"}", bad_body); /* NUL in a skipped string */
  expect_refused("{\"items\":[],\"a\\u0000\":1}", bad_body);      /* NUL in a key */
  expect_refused("{\"items\":[],\"x\":\"\xff\"}", bad_body);      /* invalid UTF-8 */
  expect_refused("{}", no_items);
  expect_refused("{\"items\":{}}", no_items);
  expect_refused("{\"items\":[],\"items\":null}", no_items);
  expect_refused("{\"items\":[\"ca_1\"]}", bad_item);
  expect_refused("{\"items\":[[]]}", bad_item);
  expect_refused("{\"items\":[{\"id\":\"\",\"status\":\"ACTIVE\"}]}", bad_item);
  expect_refused("{\"items\":[{\"id\":\"a\",\"status\":1}]}", bad_item);
  expect_refused("{\"items\":[{\"id\":\"a\",\"status\":\"A\"},{\"status\":\"A\"}]}", bad_item);
}

/* The documented leniency: a number jansson cannot hold, in a field nobody reads. */
static void test_big_number(void **state)
{
  tg_composio_page p;
  const char *why;
  (void)state;
  assert_int_equal(decode("{\"items\":[{\"id\":\"a\",\"status\":\"A\",\"n\":"
                          "123456789012345678901234567890}],\"total_items\":1e999}",
                          &p, &why),
                   0);
  assert_int_equal(p.n_items, 1);
  tg_composio_page_clear(&p);
}

/* Deep nesting in a skipped field is walked with one frame and a counter. */
static void test_deep_skip(void **state)
{
  enum { DEPTH = 5000 };
  char *body = malloc(DEPTH * 2 + 64);
  tg_composio_page p;
  const char *why;
  size_t n = 0;
  (void)state;
  assert_non_null(body);
  n += (size_t)sprintf(body, "{\"x\":");
  for (int i = 0; i < DEPTH; i++)
    body[n++] = '[';
  for (int i = 0; i < DEPTH; i++)
    body[n++] = ']';
  sprintf(body + n, ",\"items\":[{\"id\":\"a\",\"status\":\"A\"}]}");
  assert_int_equal(tg_composio_page_decode(body, strlen(body), &p, &why), 0);
  assert_int_equal(p.n_items, 1);
  assert_string_equal(p.items[0].id, "a");
  tg_composio_page_clear(&p);
  free(body);
}

TG_UNIT_MAIN(cmocka_unit_test(test_real_item), cmocka_unit_test(test_last_key_wins),
             cmocka_unit_test(test_refresh_required), cmocka_unit_test(test_escapes),
             cmocka_unit_test(test_refused), cmocka_unit_test(test_big_number),
             cmocka_unit_test(test_deep_skip))
