/* Unit tests for common/tg_crypto.c: seal/open, AD binding to table/row/user, key ids, tamper,
 * the mcp_connections and workflow_runs write and read paths, the start-up check and rotation (temp
 * database). */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tg_crypto.h"
#include "tg_db.h"
#include "tg_err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 32 bytes of 'A'..: fixed keys so failures are reproducible */
#define KEY_A "ka:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
#define KEY_B "kb:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
#define KEY_BARE "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M="

static tg_crypto *ring(const char *cur, const char *old)
{
  tg_secret c = {(char *)cur}, o = {(char *)old};
  tg_crypto *k = NULL;
  char err[256];
  assert_int_equal(tg_crypto_new(&k, &c, &o, err, sizeof err), 0);
  assert_non_null(k);
  return k;
}

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

/* A temp database with one user, one connected account and its mcp_connections row (id 1). */
static tg_db *fixture(char *path, size_t n)
{
  tg_db *db;
  snprintf(path, n, "/tmp/tg_crypto_test_%ld.db", (long)getpid());
  unlink(path);
  assert_int_equal(tg_db_open(&db, path, 2000), 0);
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO users (id, credits, created_at) VALUES ('alice', 1, 0),"
                              " ('bob', 1, 0)",
                              ""),
                   0);
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO auth_configs (id, provider, toolkit_slug, display_name,"
                              " created_at, updated_at) VALUES ('ac_x', 'x', 'x', 'x', 0, 0)",
                              ""),
                   0);
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO connected_accounts (id, user_id, auth_config_id, "
                              "provider, composio_account_id, status, version, created_at, "
                              "updated_at) VALUES (1, 'alice', 'ac_x', 'x', 'ca_1', 'ACTIVE', 1, "
                              "0, 0), (2, 'bob', 'ac_x', 'x', 'ca_2', 'ACTIVE', 1, 0, 0)",
                              ""),
                   0);
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO mcp_connections (id, connected_account_id, url, "
                              "created_at, updated_at) VALUES (1, 1, 'http://x/mcp', 0, 0), "
                              "(2, 2, 'http://y/mcp', 0, 0)",
                              ""),
                   0);
  return db;
}

static char *hex_of(tg_db *db, int id)
{
  json_t *row = tg_db_query_one(
      db, NULL, "SELECT hex(headers_enc) AS h FROM mcp_connections WHERE id = ?", "i", id);
  const char *h = json_string_value(json_object_get(row, "h"));
  char *s = h && *h /* hex(NULL) is '' */
                ? strdup(h)
                : NULL;
  json_decref(row);
  return s;
}

static void test_db_paths(void **state)
{
  char path[128], err[256], *hex, *hex2;
  tg_db *db = fixture(path, sizeof path);
  tg_crypto *a = ring(KEY_A, NULL), *b = ring(KEY_B, NULL), *ba = ring(KEY_B, KEY_A);
  json_t *h = json_pack("{s:s}", "Authorization", "Bearer tok-123"), *got = NULL;
  int count = -1, rotated = -1;
  (void)state;

  /* no key: refuses to store, the check passes on an empty column */
  assert_int_equal(tg_crypto_store_mcp_headers(db, NULL, 1, h), TG_ESTATE);
  assert_int_equal(tg_crypto_check_db(db, NULL, &count, err, sizeof err), 0);
  assert_int_equal(count, 0);
  /* bad headers refused */
  {
    json_t *bad = json_pack("{s:s}", "X-A", "v\r\nX-Injected: 1");
    assert_int_equal(tg_crypto_store_mcp_headers(db, a, 1, bad), TG_EINVAL);
    json_decref(bad);
  }
  assert_int_equal(tg_crypto_store_mcp_headers(db, a, 1, h), 0);
  assert_int_equal(tg_crypto_store_mcp_headers(db, a, 99, h), TG_ENOTFOUND);
  hex = hex_of(db, 1);
  assert_non_null(hex);
  assert_int_equal(tg_crypto_open_mcp_headers_hex(a, 1, "alice", hex, &got), 0);
  assert_string_equal(json_string_value(json_object_get(got, "Authorization")), "Bearer tok-123");
  json_decref(got);
  /* the same ciphertext read as bob's row 2 fails */
  assert_int_equal(tg_crypto_open_mcp_headers_hex(a, 2, "bob", hex, &got), TG_EAUTH);
  assert_null(got);

  /* start-up check: no key → refuse; unknown kid → refuse; right key → count */
  assert_int_equal(tg_crypto_check_db(db, NULL, &count, err, sizeof err), TG_ESTATE);
  assert_non_null(strstr(err, "TOOLGATE_SECRET_KEY is not set"));
  assert_int_equal(tg_crypto_check_db(db, b, &count, err, sizeof err), TG_ESTATE);
  assert_non_null(strstr(err, "key id ka"));
  assert_int_equal(tg_crypto_check_db(db, a, &count, err, sizeof err), 0);
  assert_int_equal(count, 1);

  /* rotation: without the old key nothing changes; with it, the blob is re-sealed under kb */
  assert_int_equal(tg_crypto_rotate_db(db, b, &rotated, err, sizeof err), TG_ENOTFOUND);
  hex2 = hex_of(db, 1);
  assert_string_equal(hex, hex2);
  free(hex2);
  assert_int_equal(tg_crypto_rotate_db(db, ba, &rotated, err, sizeof err), 0);
  assert_int_equal(rotated, 1);
  hex2 = hex_of(db, 1);
  assert_string_not_equal(hex, hex2);
  assert_int_equal(tg_crypto_open_mcp_headers_hex(b, 1, "alice", hex2, &got), 0);
  assert_string_equal(json_string_value(json_object_get(got, "Authorization")), "Bearer tok-123");
  json_decref(got);
  assert_int_equal(tg_crypto_open_mcp_headers_hex(a, 1, "alice", hex2, &got), TG_ENOTFOUND);
  assert_int_equal(tg_crypto_check_db(db, b, &count, err, sizeof err), 0);
  /* a second rotation has nothing to do */
  assert_int_equal(tg_crypto_rotate_db(db, ba, &rotated, err, sizeof err), 0);
  assert_int_equal(rotated, 0);
  /* clearing */
  assert_int_equal(tg_crypto_store_mcp_headers(db, NULL, 1, NULL), 0);
  free(hex2);
  assert_null(hex_of(db, 1));

  free(hex);
  json_decref(h);
  tg_crypto_free(a);
  tg_crypto_free(b);
  tg_crypto_free(ba);
  tg_db_close(db);
  unlink(path);
}

/* workflow_runs.inputs_secret_enc: store, load, AD bound to run and user, check and rotation. */
static void test_run_secrets(void **state)
{
  char path[128], err[256];
  tg_db *db = fixture(path, sizeof path);
  tg_crypto *a = ring(KEY_A, NULL), *b = ring(KEY_B, NULL), *ba = ring(KEY_B, KEY_A);
  json_t *sec = json_pack("{s:s}", "api_token", "s3cr3t-value-42"), *got = NULL, *bad;
  int count = -1, rotated = -1;
  (void)state;

  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO workflows (id, user_id, name, definition, created_at, "
                              "updated_at) VALUES ('wf_1', 'alice', 'w', '{}', 0, 0)",
                              ""),
                   0);
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO workflow_runs (id, workflow_id, user_id, status, "
                              "available_at, created_at) VALUES ('run_a', 'wf_1', 'alice', "
                              "'queued', 0, 0), ('run_b', 'wf_1', 'alice', 'queued', 0, 0)",
                              ""),
                   0);
  /* nothing to store is fine without a key; something to store is not */
  assert_int_equal(tg_crypto_store_run_secrets(db, NULL, "run_a", "alice", NULL), 0);
  assert_int_equal(tg_crypto_store_run_secrets(db, NULL, "run_a", "alice", sec), TG_ESTATE);
  bad = json_pack("{s:i}", "n", 1);
  assert_int_equal(tg_crypto_store_run_secrets(db, a, "run_a", "alice", bad), TG_EINVAL);
  json_decref(bad);
  assert_int_equal(tg_crypto_store_run_secrets(db, a, "run_a", "bob", sec), TG_ENOTFOUND);
  assert_int_equal(tg_crypto_store_run_secrets(db, a, "run_a", "alice", sec), 0);

  /* the column holds no plaintext */
  {
    json_t *row = tg_db_query_one(db, NULL,
                                  "SELECT instr(inputs_secret_enc, CAST('s3cr3t' AS BLOB)) AS i "
                                  "FROM workflow_runs WHERE id = 'run_a'",
                                  "");
    assert_int_equal(json_integer_value(json_object_get(row, "i")), 0);
    json_decref(row);
  }
  assert_int_equal(tg_crypto_load_run_secrets(db, a, "run_a", "alice", &got), 0);
  assert_string_equal(json_string_value(json_object_get(got, "api_token")), "s3cr3t-value-42");
  json_decref(got);
  assert_int_equal(tg_crypto_load_run_secrets(db, a, "run_b", "alice", &got), 0);
  assert_null(got); /* no secrets */
  assert_int_equal(tg_crypto_load_run_secrets(db, NULL, "run_a", "alice", &got), TG_ESTATE);
  assert_int_equal(tg_crypto_load_run_secrets(db, b, "run_a", "alice", &got), TG_ENOTFOUND);
  /* copied to another run: does not open */
  assert_int_equal(tg_db_exec(db, NULL,
                              "UPDATE workflow_runs SET inputs_secret_enc = (SELECT "
                              "inputs_secret_enc FROM workflow_runs WHERE id = 'run_a') WHERE id = "
                              "'run_b'",
                              ""),
                   0);
  assert_int_equal(tg_crypto_load_run_secrets(db, a, "run_b", "alice", &got), TG_EAUTH);
  assert_null(got);
  assert_int_equal(
      tg_db_exec(db, NULL, "UPDATE workflow_runs SET inputs_secret_enc = NULL WHERE id = 'run_b'",
                 ""),
      0);

  /* start-up check and rotation cover the column */
  assert_int_equal(tg_crypto_check_db(db, NULL, &count, err, sizeof err), TG_ESTATE);
  assert_non_null(strstr(err, "workflow_runs.inputs_secret_enc"));
  assert_int_equal(tg_crypto_check_db(db, a, &count, err, sizeof err), 0);
  assert_int_equal(count, 1);
  assert_int_equal(tg_crypto_rotate_db(db, ba, &rotated, err, sizeof err), 0);
  assert_int_equal(rotated, 1);
  assert_int_equal(tg_crypto_load_run_secrets(db, b, "run_a", "alice", &got), 0);
  assert_string_equal(json_string_value(json_object_get(got, "api_token")), "s3cr3t-value-42");
  json_decref(got);

  json_decref(sec);
  tg_crypto_free(a);
  tg_crypto_free(b);
  tg_crypto_free(ba);
  tg_db_close(db);
  unlink(path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seal_open_and_ad), cmocka_unit_test(test_key_ids),
      cmocka_unit_test(test_bad_keys),         cmocka_unit_test(test_db_paths),
      cmocka_unit_test(test_run_secrets),
  };
  if (sodium_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
