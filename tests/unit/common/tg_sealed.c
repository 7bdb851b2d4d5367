/* Unit tests for common/tg_sealed.c: the mcp_connections and workflow_runs write and read paths,
 * the start-up check and rotation (temp database). */
#include "tg_unit.h"

#include "tg_sealed.h"
#include "tg_err.h"
#include "test_keyring.h"
#include "temp_db.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two users, each with a connected account and its mcp_connections row (ids 1: alice, 2: bob),
 * and a workflow of alice's with two runs (run_a, run_b). */
static const char seed[] =
    "INSERT INTO users (id, credits, created_at) VALUES ('alice', 1, 0), ('bob', 1, 0);"
    "INSERT INTO auth_configs (id, provider, toolkit_slug, display_name, created_at, updated_at)"
    " VALUES ('ac_x', 'x', 'x', 'x', 0, 0);"
    "INSERT INTO connected_accounts (id, user_id, auth_config_id, provider, composio_account_id,"
    " status, version, created_at, updated_at) VALUES (1, 'alice', 'ac_x', 'x', 'ca_1', 'ACTIVE',"
    " 1, 0, 0), (2, 'bob', 'ac_x', 'x', 'ca_2', 'ACTIVE', 1, 0, 0);"
    "INSERT INTO mcp_connections (id, connected_account_id, url, created_at, updated_at) VALUES"
    " (1, 1, 'http://x/mcp', 0, 0), (2, 2, 'http://y/mcp', 0, 0);"
    "INSERT INTO workflows (id, user_id, name, definition, created_at, updated_at) VALUES"
    " ('wf_1', 'alice', 'w', '{}', 0, 0);"
    "INSERT INTO workflow_runs (id, workflow_id, user_id, status, available_at, created_at) VALUES"
    " ('run_a', 'wf_1', 'alice', 'queued', 0, 0), ('run_b', 'wf_1', 'alice', 'queued', 0, 0);";

static int setup(void **state)
{
  (void)state;
  temp_db_open(&temp, "tg_sealed_test", seed);
  return 0;
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
  char err[256], *hex, *hex2;
  tg_db *db = temp.db;
  tg_crypto *a = ring(KEY_A, NULL), *b = ring(KEY_B, NULL), *ba = ring(KEY_B, KEY_A);
  json_t *h = json_pack("{s:s}", "Authorization", "Bearer tok-123"), *got = NULL;
  int count = -1, rotated = -1;
  (void)state;

  /* no key: refuses to store, the check passes on an empty column */
  assert_int_equal(tg_sealed_store_mcp_headers(db, NULL, 1, h), TG_ESTATE);
  assert_int_equal(tg_sealed_check_db(db, NULL, &count, err, sizeof err), 0);
  assert_int_equal(count, 0);
  /* bad headers refused */
  {
    json_t *bad = json_pack("{s:s}", "X-A", "v\r\nX-Injected: 1");
    assert_int_equal(tg_sealed_store_mcp_headers(db, a, 1, bad), TG_EINVAL);
    json_decref(bad);
  }
  assert_int_equal(tg_sealed_store_mcp_headers(db, a, 1, h), 0);
  assert_int_equal(tg_sealed_store_mcp_headers(db, a, 99, h), TG_ENOTFOUND);
  hex = hex_of(db, 1);
  assert_non_null(hex);
  assert_int_equal(tg_sealed_open_mcp_headers_hex(a, 1, "alice", hex, &got), 0);
  assert_string_equal(json_string_value(json_object_get(got, "Authorization")), "Bearer tok-123");
  json_decref(got);
  /* the same ciphertext read as bob's row 2 fails */
  assert_int_equal(tg_sealed_open_mcp_headers_hex(a, 2, "bob", hex, &got), TG_EAUTH);
  assert_null(got);

  /* start-up check: no key → refuse; unknown kid → refuse; right key → count */
  assert_int_equal(tg_sealed_check_db(db, NULL, &count, err, sizeof err), TG_ESTATE);
  assert_non_null(strstr(err, "TOOLGATE_SECRET_KEY is not set"));
  assert_int_equal(tg_sealed_check_db(db, b, &count, err, sizeof err), TG_ESTATE);
  assert_non_null(strstr(err, "key id ka"));
  assert_int_equal(tg_sealed_check_db(db, a, &count, err, sizeof err), 0);
  assert_int_equal(count, 1);

  /* rotation: without the old key nothing changes; with it, the blob is re-sealed under kb */
  assert_int_equal(tg_sealed_rotate_db(db, b, &rotated, err, sizeof err), TG_ENOTFOUND);
  hex2 = hex_of(db, 1);
  assert_string_equal(hex, hex2);
  free(hex2);
  assert_int_equal(tg_sealed_rotate_db(db, ba, &rotated, err, sizeof err), 0);
  assert_int_equal(rotated, 1);
  hex2 = hex_of(db, 1);
  assert_string_not_equal(hex, hex2);
  assert_int_equal(tg_sealed_open_mcp_headers_hex(b, 1, "alice", hex2, &got), 0);
  assert_string_equal(json_string_value(json_object_get(got, "Authorization")), "Bearer tok-123");
  json_decref(got);
  assert_int_equal(tg_sealed_open_mcp_headers_hex(a, 1, "alice", hex2, &got), TG_ENOTFOUND);
  assert_int_equal(tg_sealed_check_db(db, b, &count, err, sizeof err), 0);
  /* a second rotation has nothing to do */
  assert_int_equal(tg_sealed_rotate_db(db, ba, &rotated, err, sizeof err), 0);
  assert_int_equal(rotated, 0);
  /* clearing */
  assert_int_equal(tg_sealed_store_mcp_headers(db, NULL, 1, NULL), 0);
  free(hex2);
  assert_null(hex_of(db, 1));

  free(hex);
  json_decref(h);
  tg_crypto_free(a);
  tg_crypto_free(b);
  tg_crypto_free(ba);
}

/* workflow_runs.inputs_secret_enc: store, load, AD bound to run and user, check and rotation. */
static void test_run_secrets(void **state)
{
  char err[256];
  tg_db *db = temp.db;
  tg_crypto *a = ring(KEY_A, NULL), *b = ring(KEY_B, NULL), *ba = ring(KEY_B, KEY_A);
  json_t *sec = json_pack("{s:s}", "api_token", "s3cr3t-value-42"), *got = NULL, *bad;
  int count = -1, rotated = -1;
  (void)state;

  /* nothing to store is fine without a key; something to store is not */
  assert_int_equal(tg_sealed_store_run_secrets(db, NULL, "run_a", "alice", NULL), 0);
  assert_int_equal(tg_sealed_store_run_secrets(db, NULL, "run_a", "alice", sec), TG_ESTATE);
  bad = json_pack("{s:i}", "n", 1);
  assert_int_equal(tg_sealed_store_run_secrets(db, a, "run_a", "alice", bad), TG_EINVAL);
  json_decref(bad);
  assert_int_equal(tg_sealed_store_run_secrets(db, a, "run_a", "bob", sec), TG_ENOTFOUND);
  assert_int_equal(tg_sealed_store_run_secrets(db, a, "run_a", "alice", sec), 0);

  /* the column holds no plaintext */
  {
    json_t *row = tg_db_query_one(db, NULL,
                                  "SELECT instr(inputs_secret_enc, CAST('s3cr3t' AS BLOB)) AS i "
                                  "FROM workflow_runs WHERE id = 'run_a'",
                                  "");
    assert_int_equal(json_integer_value(json_object_get(row, "i")), 0);
    json_decref(row);
  }
  assert_int_equal(tg_sealed_load_run_secrets(db, a, "run_a", "alice", &got), 0);
  assert_string_equal(json_string_value(json_object_get(got, "api_token")), "s3cr3t-value-42");
  json_decref(got);
  assert_int_equal(tg_sealed_load_run_secrets(db, a, "run_b", "alice", &got), 0);
  assert_null(got); /* no secrets */
  assert_int_equal(tg_sealed_load_run_secrets(db, NULL, "run_a", "alice", &got), TG_ESTATE);
  assert_int_equal(tg_sealed_load_run_secrets(db, b, "run_a", "alice", &got), TG_ENOTFOUND);
  /* copied to another run: does not open */
  assert_int_equal(tg_db_exec(db, NULL,
                              "UPDATE workflow_runs SET inputs_secret_enc = (SELECT "
                              "inputs_secret_enc FROM workflow_runs WHERE id = 'run_a') WHERE id = "
                              "'run_b'",
                              ""),
                   0);
  assert_int_equal(tg_sealed_load_run_secrets(db, a, "run_b", "alice", &got), TG_EAUTH);
  assert_null(got);
  assert_int_equal(
      tg_db_exec(db, NULL, "UPDATE workflow_runs SET inputs_secret_enc = NULL WHERE id = 'run_b'",
                 ""),
      0);

  /* start-up check and rotation cover the column */
  assert_int_equal(tg_sealed_check_db(db, NULL, &count, err, sizeof err), TG_ESTATE);
  assert_non_null(strstr(err, "workflow_runs.inputs_secret_enc"));
  assert_int_equal(tg_sealed_check_db(db, a, &count, err, sizeof err), 0);
  assert_int_equal(count, 1);
  assert_int_equal(tg_sealed_rotate_db(db, ba, &rotated, err, sizeof err), 0);
  assert_int_equal(rotated, 1);
  assert_int_equal(tg_sealed_load_run_secrets(db, b, "run_a", "alice", &got), 0);
  assert_string_equal(json_string_value(json_object_get(got, "api_token")), "s3cr3t-value-42");
  json_decref(got);

  json_decref(sec);
  tg_crypto_free(a);
  tg_crypto_free(b);
  tg_crypto_free(ba);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_db_paths, setup, temp_db_teardown),
      cmocka_unit_test_setup_teardown(test_run_secrets, setup, temp_db_teardown),
  };
  if (sodium_init() < 0)
    return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
