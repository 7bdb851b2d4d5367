/* Unit tests for common/tg_jsonrpc.c: building messages and classifying every shape. */
#include "tg_unit.h"

#include "tg_err.h"
#include "tg_jsonrpc.h"

#include <stdlib.h>
#include <string.h>

static void decode_ok(const char *text, tg_jsonrpc_kind kind, tg_jsonrpc_msg *m)
{
  int rc = tg_jsonrpc_decode(text, strlen(text), m);
  if (rc)
    fail_msg("%s: %s", text, m->reason);
  assert_int_equal(m->kind, kind);
}

static void test_build_request(void **state)
{
  char *s = NULL;
  json_t *params = json_pack("{s:s}", "name", "echo");
  tg_jsonrpc_msg m;
  assert_int_equal(tg_jsonrpc_request(&s, 7, "tools/call", params), 0);
  decode_ok(s, TG_JSONRPC_REQUEST, &m);
  assert_true(tg_jsonrpc_id_is(m.id, 7));
  assert_string_equal(m.method, "tools/call");
  assert_true(json_equal(m.params, params));
  tg_jsonrpc_msg_clear(&m);
  free(s);
  /* No params member at all when params is NULL. */
  assert_int_equal(tg_jsonrpc_request(&s, 1, "ping", NULL), 0);
  assert_null(strstr(s, "params"));
  free(s);
  assert_int_equal(tg_jsonrpc_request(&s, 1, NULL, NULL), TG_EINVAL);
  assert_null(s);
  json_t *bad = json_string("x");
  assert_int_equal(tg_jsonrpc_request(&s, 1, "m", bad), TG_EINVAL);
  json_decref(bad);
  json_decref(params);
}

static void test_build_notification_and_responses(void **state)
{
  char *s = NULL;
  tg_jsonrpc_msg m;
  json_t *id = json_integer(0), *sid = json_string("abc"), *res = json_pack("{s:i}", "x", 1);

  assert_int_equal(tg_jsonrpc_notification(&s, "notifications/initialized", NULL), 0);
  decode_ok(s, TG_JSONRPC_NOTIFICATION, &m);
  assert_null(m.id);
  assert_null(strstr(s, "\"id\""));
  tg_jsonrpc_msg_clear(&m);
  free(s);

  assert_int_equal(tg_jsonrpc_result(&s, id, NULL), 0); /* ping answer */
  decode_ok(s, TG_JSONRPC_RESPONSE, &m);
  assert_true(tg_jsonrpc_id_is(m.id, 0));
  assert_true(json_is_object(m.result) && json_object_size(m.result) == 0);
  tg_jsonrpc_msg_clear(&m);
  free(s);

  assert_int_equal(tg_jsonrpc_result(&s, sid, res), 0);
  decode_ok(s, TG_JSONRPC_RESPONSE, &m);
  assert_string_equal(json_string_value(m.id), "abc");
  assert_true(json_equal(m.result, res));
  tg_jsonrpc_msg_clear(&m);
  free(s);

  assert_int_equal(tg_jsonrpc_error(&s, id, -32601, "Method not found", NULL), 0);
  decode_ok(s, TG_JSONRPC_RESPONSE, &m);
  assert_true(m.is_error);
  assert_int_equal(m.error_code, -32601);
  assert_string_equal(m.error_message, "Method not found");
  assert_null(m.result);
  tg_jsonrpc_msg_clear(&m);
  free(s);

  assert_int_equal(tg_jsonrpc_error(&s, NULL, -32700, "Parse error", res), 0);
  decode_ok(s, TG_JSONRPC_RESPONSE, &m);
  assert_null(m.id);
  assert_true(json_equal(m.error_data, res));
  tg_jsonrpc_msg_clear(&m);
  free(s);

  json_t *real = json_real(1.5);
  assert_int_equal(tg_jsonrpc_result(&s, real, NULL), TG_EINVAL);
  assert_int_equal(tg_jsonrpc_result(&s, NULL, NULL), TG_EINVAL);
  json_decref(real);
  json_decref(id);
  json_decref(sid);
  json_decref(res);
}

static void test_decode_key_order_and_kinds(void **state)
{
  tg_jsonrpc_msg m;
  decode_ok("{\"result\":{\"content\":[]},\"jsonrpc\":\"2.0\",\"id\":3}", TG_JSONRPC_RESPONSE, &m);
  assert_true(tg_jsonrpc_id_is(m.id, 3));
  assert_false(m.is_error);
  tg_jsonrpc_msg_clear(&m);
  decode_ok("{\"result\":null,\"jsonrpc\":\"2.0\",\"id\":4}", TG_JSONRPC_RESPONSE, &m);
  assert_true(json_is_null(m.result));
  tg_jsonrpc_msg_clear(&m);
  decode_ok("{\"method\":\"ping\",\"jsonrpc\":\"2.0\",\"id\":0}", TG_JSONRPC_REQUEST, &m);
  assert_string_equal(m.method, "ping");
  assert_null(m.params);
  tg_jsonrpc_msg_clear(&m);
  decode_ok(
      "{\"params\":{\"progress\":1},\"method\":\"notifications/progress\",\"jsonrpc\":\"2.0\"}",
      TG_JSONRPC_NOTIFICATION, &m);
  assert_int_equal(json_integer_value(json_object_get(m.params, "progress")), 1);
  tg_jsonrpc_msg_clear(&m);
  /* HTTP 400 bodies: error with null id (mcp-client.md B.2 #12). */
  decode_ok(
      "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,\"message\":\"Bad Request\"},\"id\":null}",
      TG_JSONRPC_RESPONSE, &m);
  assert_null(m.id);
  assert_int_equal(m.error_code, -32000);
  tg_jsonrpc_msg_clear(&m);
  tg_jsonrpc_msg_clear(NULL);
}

static void test_decode_invalid(void **state)
{
  static const struct {
    const char *text, *reason_part;
  } cases[] = {
      {"", "not JSON"},
      {"{\"jsonrpc\":\"2.0\",", "not JSON"},
      {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}]", "batch"},
      {"\"hello\"", "not a JSON object"},
      {"42", "not a JSON object"},
      {"{\"id\":1,\"result\":{}}", "jsonrpc"},
      {"{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}", "jsonrpc"},
      {"{\"jsonrpc\":2.0,\"id\":1,\"result\":{}}", "jsonrpc"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1,\"message\":\"x\"}}",
       "both result and error"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1}", "neither"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"x\"}}", "integer code"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"1\",\"message\":\"x\"}}",
       "integer code"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1.5,\"message\":\"x\"}}", "integer code"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"boom\"}", "not an object"},
      {"{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}", "id"},
      {"{\"jsonrpc\":\"2.0\",\"result\":{}}", "id"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":{}}", "id"},
      {"{\"jsonrpc\":\"2.0\",\"id\":[1],\"result\":{}}", "id"},
      {"{\"jsonrpc\":\"2.0\",\"id\":true,\"error\":{\"code\":1}}", "id"},
      {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", "id"},
      {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", "id"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", "method"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"result\":{}}", "method and result"},
      {"{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":\"p\"}", "params"},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"result\":{}}", "not JSON"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    tg_jsonrpc_msg m;
    int rc = tg_jsonrpc_decode(cases[i].text, strlen(cases[i].text), &m);
    if (rc != TG_EINVAL || m.kind != TG_JSONRPC_INVALID || !strstr(m.reason, cases[i].reason_part))
      fail_msg("case %zu %s: rc %d kind %d reason '%s'", i, cases[i].text, rc, m.kind, m.reason);
    tg_jsonrpc_msg_clear(&m);
  }
}

TG_UNIT_MAIN(cmocka_unit_test(test_build_request),
             cmocka_unit_test(test_build_notification_and_responses),
             cmocka_unit_test(test_decode_key_order_and_kinds),
             cmocka_unit_test(test_decode_invalid))
