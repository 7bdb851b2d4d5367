/*
 * Unit tests for gateway/gw_composio_fault.c: the one mapping from a Composio failure to an HTTP
 * answer. No answer, 5xx and 429 are 503 composio_unavailable with Retry-After (Composio's,
 * rounded up, else the default); 401/403 are 502 composio_auth_failed and any other 4xx or an
 * undecodable 2xx 502 composio_error, both without Retry-After.
 */
#include "tg_unit.h"

#include "gw_composio_fault.h"
#include "tg_err.h"

#include <string.h>

static void expect(int err, long http_status, long retry_ms, int status, const char *code,
                   long retry_s)
{
  gw_composio_fault f;
  memset(&f, 0x5a, sizeof f);
  gw_composio_fault_of(&f, err, http_status, retry_ms);
  assert_int_equal(f.status, status);
  assert_string_equal(f.code, code);
  assert_non_null(f.message);
  assert_int_equal(f.retry_after_s, retry_s);
  assert_null(f.headers[1]);
  if (retry_s) {
    assert_ptr_equal(f.headers[0], f.header);
    assert_true(f.retry_after_ms > 0 && (f.retry_after_ms + 999) / 1000 == retry_s);
  } else {
    assert_null(f.headers[0]);
    assert_int_equal(f.retry_after_ms, 0);
  }
}

static void test_unavailable_is_503_with_retry_after(void **state)
{
  gw_composio_fault f;
  (void)state;
  expect(TG_EHTTP, 500, -1, 503, "composio_unavailable", GW_COMPOSIO_RETRY_S);
  expect(TG_EHTTP, 503, 7000, 503, "composio_unavailable", 7);
  expect(TG_EHTTP, 502, 1, 503, "composio_unavailable", 1); /* rounded up */
  expect(TG_EIO, 0, -1, 503, "composio_unavailable", GW_COMPOSIO_RETRY_S);
  expect(TG_ETIMEDOUT, 0, -1, 503, "composio_unavailable", GW_COMPOSIO_RETRY_S);
  expect(TG_ECANCELED, 0, -1, 503, "composio_unavailable", GW_COMPOSIO_RETRY_S);
  expect(TG_ENOMEM, 0, -1, 503, "composio_unavailable", GW_COMPOSIO_RETRY_S);
  expect(0, 0, 2500, 503, "composio_unavailable", 3);
  gw_composio_fault_of(&f, TG_EHTTP, 503, 12000);
  assert_string_equal(f.header, "Retry-After: 12");
  assert_int_equal(f.retry_after_ms, 12000);
}

static void test_rate_limited_is_503_with_its_retry_after(void **state)
{
  (void)state;
  expect(TG_ERATELIMIT, 429, 3000, 503, "composio_unavailable", 3);
  expect(TG_ERATELIMIT, 429, -1, 503, "composio_unavailable", GW_COMPOSIO_RETRY_S);
  expect(TG_EHTTP, 429, 4000, 503, "composio_unavailable", 4);
}

static void test_key_rejected_is_502_without_retry(void **state)
{
  (void)state;
  expect(TG_EAUTH, 401, -1, 502, "composio_auth_failed", 0);
  expect(TG_EAUTH, 403, 9000, 502, "composio_auth_failed", 0); /* its Retry-After is ignored */
  expect(TG_EHTTP, 403, -1, 502, "composio_auth_failed", 0);
}

static void test_other_refusals_are_502_composio_error(void **state)
{
  (void)state;
  expect(TG_EHTTP, 400, -1, 502, "composio_error", 0);
  expect(TG_EHTTP, 422, 5000, 502, "composio_error", 0);
  expect(TG_ENOTFOUND, 404, -1, 502, "composio_error", 0);
  expect(TG_EPROTO, 201, -1, 502, "composio_error", 0);
}

TG_UNIT_MAIN(cmocka_unit_test(test_unavailable_is_503_with_retry_after),
             cmocka_unit_test(test_rate_limited_is_503_with_its_retry_after),
             cmocka_unit_test(test_key_rejected_is_502_without_retry),
             cmocka_unit_test(test_other_refusals_are_502_composio_error))
