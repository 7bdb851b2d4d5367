/* Unit tests for common/tg_crypto.c: seal/open, AD binding to table/row/user, key ids, tamper,
 * bad key specs. */
#define _GNU_SOURCE /* memmem */
#include "tg_unit.h"

#include "tg_crypto.h"
#include "tg_err.h"
#include "test_keyring.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void test_seal_open_and_ad(void **state)
{
  tg_crypto *k = ring(KEY_A, NULL);
  unsigned char *blob;
  size_t n, pn;
  char *pt;
  (void)state;
  assert_int_equal(tg_crypto_seal(k, "mcp_connections", 7, "alice", "s3cret", 6, &blob, &n), 0);
  assert_memory_equal(blob, "v1:ka:", 6);
  assert_null(memmem(blob, n, "s3cret", 6)); /* not in clear */
  assert_int_equal(tg_crypto_open(k, "mcp_connections", 7, "alice", blob, n, &pt, &pn), 0);
  assert_int_equal(pn, 6);
  assert_string_equal(pt, "s3cret");
  tg_crypto_wipe_free(pt, pn);
  /* another row, user or table: refused */
  assert_int_equal(tg_crypto_open(k, "mcp_connections", 8, "alice", blob, n, &pt, &pn), TG_EAUTH);
  assert_int_equal(tg_crypto_open(k, "mcp_connections", 7, "bob", blob, n, &pt, &pn), TG_EAUTH);
  assert_int_equal(tg_crypto_open(k, "connectors", 7, "alice", blob, n, &pt, &pn), TG_EAUTH);
  /* one flipped bit anywhere after the header: refused */
  for (size_t i = 6; i < n; i += 5) {
    blob[i] ^= 1;
    assert_int_equal(tg_crypto_open(k, "mcp_connections", 7, "alice", blob, n, &pt, &pn), TG_EAUTH);
    blob[i] ^= 1;
  }
  /* truncated or not v1 */
  assert_int_equal(tg_crypto_open(k, "mcp_connections", 7, "alice", blob, 20, &pt, &pn), TG_EINVAL);
  blob[1] = '2';
  assert_int_equal(tg_crypto_open(k, "mcp_connections", 7, "alice", blob, n, &pt, &pn), TG_EINVAL);
  free(blob);
  tg_crypto_free(k);
}

static void test_key_ids(void **state)
{
  tg_crypto *a = ring(KEY_A, NULL), *b = ring(KEY_B, NULL), *ba = ring(KEY_B, KEY_A);
  tg_crypto *bare = ring(KEY_BARE, NULL);
  unsigned char *blob;
  size_t n, pn;
  char *pt, kid[TG_CRYPTO_KID_MAX + 1];
  (void)state;
  assert_int_equal(tg_crypto_seal(a, "t", 1, "u", "x", 1, &blob, &n), 0);
  assert_int_equal(tg_crypto_open(b, "t", 1, "u", blob, n, &pt, &pn), TG_ENOTFOUND);
  assert_int_equal(tg_crypto_open(ba, "t", 1, "u", blob, n, &pt, &pn), 0); /* old key reads */
  tg_crypto_wipe_free(pt, pn);
  /* relabelling the kid does not help: the kid is in the AD */
  blob[4] = 'b';
  assert_int_equal(tg_crypto_open(b, "t", 1, "u", blob, n, &pt, &pn), TG_EAUTH);
  free(blob);
  /* bare base64: the kid is a fingerprint "k" + 8 hex digits */
  assert_int_equal(strlen(tg_crypto_kid(bare)), 9);
  assert_int_equal(tg_crypto_seal(bare, "t", 1, "u", "x", 1, &blob, &n), 0);
  assert_int_equal(tg_crypto_blob_kid(blob, n, kid), 0);
  assert_string_equal(kid, tg_crypto_kid(bare));
  free(blob);
  tg_crypto_free(a);
  tg_crypto_free(b);
  tg_crypto_free(ba);
  tg_crypto_free(bare);
}

static void test_bad_keys(void **state)
{
  static const char *const bad[] = {"short", "ka:c2hvcnQ=", "bad kid:" KEY_BARE,
                                    "toolongkeyid_12345:" KEY_BARE, "ka:!!!!"};
  tg_secret c, o = {NULL};
  tg_crypto *k = (tg_crypto *)1;
  char err[256];
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    c.value_ = (char *)bad[i];
    assert_int_equal(tg_crypto_new(&k, &c, &o, err, sizeof err), TG_EINVAL);
    assert_null(k);
    assert_non_null(strstr(err, "TOOLGATE_SECRET_KEY"));
  }
  c.value_ = NULL;
  o.value_ = (char *)KEY_A;
  assert_int_equal(tg_crypto_new(&k, &c, &o, err, sizeof err), TG_EINVAL);
  c.value_ = (char *)KEY_A;
  assert_int_equal(tg_crypto_new(&k, &c, &o, err, sizeof err), TG_EINVAL); /* same kid */
  c.value_ = o.value_ = NULL;
  assert_int_equal(tg_crypto_new(&k, &c, &o, err, sizeof err), 0);
  assert_null(k);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seal_open_and_ad),
      cmocka_unit_test(test_key_ids),
      cmocka_unit_test(test_bad_keys),
  };
  if (sodium_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
