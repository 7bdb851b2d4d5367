/*
 * Unit tests for common/tg_api_request.c: what a config needs (named credentials, host binding,
 * {{secrets.x}} references), the built request for each authentication form (short forms by
 * credential type, object forms, query API keys, basic, oauth2 access tokens), header injection
 * refused, a missing credential reported as TG_ENOTFOUND, the journal's tool name, and the
 * output shape (JSON data, text data, HTTP errors as success:false).
 */
#include "tg_unit.h"

#include "tg_api_request.h"
#include "tg_err.h"

#include <string.h>

static json_t *creds(void)
{
  return json_pack("{s:{s:s, s:{}, s:{s:s}}, s:{s:s, s:{s:s, s:s}, s:{s:s}},"
                   " s:{s:s, s:{}, s:{s:s, s:s}}, s:{s:s, s:{s:s}, s:{s:s}, s:s}}",
                   "crm", "type", "bearer", "meta", "secret", "token", "T0K",          /* */
                   "q", "type", "api_key", "meta", "in", "query", "param_name", "key", /* */
                   "secret", "value", "V&1",                                           /* */
                   "b", "type", "basic", "meta", "secret", "username", "u", "password", "p", "oa",
                   "type", "oauth2", "meta", "token_url", "http://t/", "secret", "client_secret",
                   "cs", "access_token", "ACC");
}

static json_t *cfg(const char *text)
{
  json_error_t e;
  json_t *v = json_loads(text, 0, &e);
  if (!v)
    fail_msg("bad test JSON: %s", e.text);
  return v;
}

/* The header line that starts with name + ':' or NULL. */
static const char *header(const tg_api_request *r, const char *name)
{
  for (size_t i = 0; r->headers[i]; i++)
    if (strncasecmp(r->headers[i], name, strlen(name)) == 0 && r->headers[i][strlen(name)] == ':')
      return r->headers[i] + strlen(name) + 2;
  return NULL;
}

static void test_needs(void **state)
{
  tg_api_needs n;
  char err[256];
  json_t *c = cfg("{\"method\":\"GET\",\"url\":\"https://API.Example.com:8443/v1\","
                  "\"authentication\":\"bearer\",\"headers\":{\"X\":\"{{secrets.other}}\"}}");
  assert_int_equal(tg_api_needs_of(c, &n, err, sizeof err), 0);
  assert_true(n.by_host);
  assert_null(n.auth);
  assert_string_equal(n.host, "api.example.com");
  assert_int_equal(json_array_size(n.names), 1);
  assert_string_equal(json_string_value(json_array_get(n.names, 0)), "other");
  tg_api_needs_free(&n);
  json_decref(c);

  c = cfg("{\"url\":\"http://h/\",\"authentication\":{\"type\":\"oauth2\",\"credential\":\"oa\"},"
          "\"body\":{\"k\":\"{{ secrets.crm }} and {{secrets.crm}}\"}}");
  assert_int_equal(tg_api_needs_of(c, &n, err, sizeof err), 0);
  assert_false(n.by_host);
  assert_string_equal(n.auth, "oa");
  assert_int_equal(json_array_size(n.names), 2); /* oa, crm once */
  tg_api_needs_free(&n);
  json_decref(c);

  c = cfg("{\"url\":\"ftp://h/\"}");
  assert_int_equal(tg_api_needs_of(c, &n, err, sizeof err), TG_EINVAL);
  json_decref(c);
  c = cfg("{\"url\":\"http://h/\",\"authentication\":\"magic\"}");
  assert_int_equal(tg_api_needs_of(c, &n, err, sizeof err), TG_EINVAL);
  json_decref(c);
}

static void test_build_short_forms(void **state)
{
  tg_api_request r;
  char err[256] = "";
  json_t *cr = creds();
  json_t *c =
      cfg("{\"method\":\"post\",\"url\":\"https://api.crm.com/v1/\",\"endpoint\":\"/deals\","
          "\"query_params\":{\"q\":\"a b&c\",\"n\":3},\"headers\":[{\"key\":\"X-A\","
          "\"value\":\"1\"},{\"key\":\"\",\"value\":\"\"}],\"authentication\":\"bearer\","
          "\"credential\":\"crm\",\"body\":{\"name\":\"x\"}}");
  assert_int_equal(tg_api_request_build(c, cr, "crm", &r, err, sizeof err), 0);
  assert_string_equal(r.method, "POST");
  assert_string_equal(r.url, "https://api.crm.com/v1/deals?q=a+b%26c&n=3");
  assert_string_equal(header(&r, "Authorization"), "Bearer T0K");
  assert_string_equal(header(&r, "X-A"), "1");
  assert_string_equal(header(&r, "Content-Type"), "application/json");
  assert_string_equal(r.body, "{\"name\":\"x\"}");
  assert_false(r.idempotent);
  assert_string_equal(r.tool_name, "POST api.crm.com/v1/deals");
  tg_api_request_free(&r);

  /* api_key in the query, by the credential's meta */
  assert_int_equal(tg_api_request_build(c, cr, "q", &r, err, sizeof err), 0);
  assert_non_null(strstr(r.url, "&key=V%261"));
  assert_null(header(&r, "Authorization"));
  tg_api_request_free(&r);

  assert_int_equal(tg_api_request_build(c, cr, "b", &r, err, sizeof err), 0);
  assert_string_equal(header(&r, "Authorization"), "Basic dTpw");
  tg_api_request_free(&r);

  assert_int_equal(tg_api_request_build(c, cr, "oa", &r, err, sizeof err), 0);
  assert_string_equal(header(&r, "Authorization"), "Bearer ACC");
  tg_api_request_free(&r);

  /* no credential: credential_missing */
  assert_int_equal(tg_api_request_build(c, cr, NULL, &r, err, sizeof err), TG_ENOTFOUND);
  assert_int_equal(tg_api_request_build(c, cr, "nope", &r, err, sizeof err), TG_ENOTFOUND);
  assert_non_null(strstr(err, "nope"));
  json_decref(c);

  c = cfg("{\"method\":\"PUT\",\"url\":\"http://h/x\",\"authentication\":\"custom_header\","
          "\"header_name\":\"X-Token\",\"idempotency_key\":\"k-1\"}");
  assert_int_equal(tg_api_request_build(c, cr, "crm", &r, err, sizeof err), 0);
  assert_string_equal(header(&r, "X-Token"), "T0K");
  assert_string_equal(header(&r, "Idempotency-Key"), "k-1");
  assert_true(r.idempotent);
  assert_null(r.body);
  tg_api_request_free(&r);
  json_decref(c);
  json_decref(cr);
}

static void test_build_object_forms_and_secrets(void **state)
{
  tg_api_request r;
  char err[256] = "";
  json_t *cr = creds();
  json_t *c = cfg("{\"url\":\"http://h/{{secrets.crm}}/x\",\"authentication\":{\"type\":"
                  "\"api_key\",\"in\":\"header\",\"name\":\"X-Key\",\"value\":\"{{secrets.q}}\"},"
                  "\"headers\":{\"X-Mixed\":\"pre {{secrets.crm}} {{inputs.x}} post\"},"
                  "\"body\":\"raw {{secrets.b}}\"}");
  assert_int_equal(tg_api_request_build(c, cr, NULL, &r, err, sizeof err), 0);
  assert_string_equal(r.method, "GET");
  assert_true(r.idempotent);
  assert_string_equal(r.url, "http://h/T0K/x");
  assert_string_equal(header(&r, "X-Key"), "V&1");
  assert_string_equal(header(&r, "X-Mixed"), "pre T0K {{inputs.x}} post");
  assert_string_equal(r.body, "raw dTpw");
  assert_null(header(&r, "Content-Type")); /* a string body is sent as it is */
  tg_api_request_free(&r);
  json_decref(c);

  c = cfg("{\"url\":\"http://h/\",\"authentication\":{\"type\":\"basic\",\"username\":\"u\","
          "\"password\":\"{{secrets.crm}}\"}}");
  assert_int_equal(tg_api_request_build(c, cr, NULL, &r, err, sizeof err), 0);
  assert_string_equal(header(&r, "Authorization"), "Basic dTpUMEs="); /* u:T0K */
  tg_api_request_free(&r);
  json_decref(c);

  c = cfg("{\"url\":\"http://h/\",\"headers\":{\"X\":\"{{secrets.gone}}\"}}");
  assert_int_equal(tg_api_request_build(c, cr, NULL, &r, err, sizeof err), TG_ENOTFOUND);
  assert_non_null(strstr(err, "gone"));
  json_decref(c);

  /* header injection through a rendered value or a bad name */
  c = cfg("{\"url\":\"http://h/\",\"headers\":{\"X\":\"a\\r\\nEvil: 1\"}}");
  assert_int_equal(tg_api_request_build(c, cr, NULL, &r, err, sizeof err), TG_EINVAL);
  json_decref(c);
  c = cfg("{\"url\":\"http://h/\",\"headers\":{\"X Y\":\"a\"}}");
  assert_int_equal(tg_api_request_build(c, cr, NULL, &r, err, sizeof err), TG_EINVAL);
  json_decref(c);
  c = cfg("{\"url\":\"http://h/\",\"authentication\":\"oauth2\"}");
  assert_int_equal(tg_api_request_build(c, cr, "crm", &r, err, sizeof err), TG_EINVAL);
  json_decref(c);
  json_decref(cr);
}

static void test_output(void **state)
{
  json_t *o = tg_api_output(200, "application/json; charset=utf-8", "{\"a\":1}", 7, 0.25, NULL);
  assert_true(json_is_true(json_object_get(o, "success")));
  assert_int_equal(json_integer_value(json_object_get(o, "status_code")), 200);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "data"), "a")), 1);
  assert_true(json_is_null(json_object_get(o, "error")));
  json_decref(o);

  o = tg_api_output(404, "text/plain", "nope", 4, 0.1, NULL);
  assert_true(json_is_false(json_object_get(o, "success")));
  assert_string_equal(json_string_value(json_object_get(o, "data")), "nope");
  assert_string_equal(json_string_value(json_object_get(o, "error")), "HTTP 404");
  json_decref(o);

  o = tg_api_output(200, "application/problem+json", "not json", 8, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(o, "data")), "not json");
  json_decref(o);

  o = tg_api_output(204, NULL, "", 0, 0, NULL);
  assert_true(json_is_true(json_object_get(o, "success")));
  assert_true(json_is_null(json_object_get(o, "data")));
  json_decref(o);
}

TG_UNIT_MAIN(cmocka_unit_test(test_needs), cmocka_unit_test(test_build_short_forms),
             cmocka_unit_test(test_build_object_forms_and_secrets), cmocka_unit_test(test_output))
