/*
 * Unit tests for common/tg_store_connector_tokens.c on a real SQLite file: a connector's OAuth
 * state is stored by its hash only, consumed at most once, only unexpired and by its owner (each
 * refusal named, nothing written), with its verifier sealed for the state and user; tokens and
 * the client registration are sealed per connector and user (a blob moved to another row, user
 * or column does not open), a refresh without a refresh token keeps the stored one, and the
 * connectors' fenced auth_status setter bumps the version and refuses a moved version.
 */
#include "tg_unit.h"

#include "tg_db.h"
#include "tg_err.h"
#include "tg_store_connector_tokens.h"
#include "tg_store_connectors.h"
#include "temp_db.h"
#include "test_keyring.h"

#include <string.h>

#define SEED                                                                                       \
  "INSERT INTO users (id, credits, created_at) VALUES ('alice', 1, 0), ('bob', 1, 0);"             \
  "INSERT INTO connectors (id, user_id, kind, name, config, auth_status, created_at, updated_at)"  \
  " VALUES ('con_a', 'alice', 'mcp', 'a', '{}', 'not_connected', 0, 0),"                           \
  " ('con_b', 'bob', 'mcp', 'b', '{}', 'not_connected', 0, 0),"                                    \
  " ('con_s', 'alice', 'mcp', 's', '{}', NULL, 0, 0);"

static tg_db *db;
static tg_crypto *keys;

static int setup(void **state)
{
  (void)state;
  temp_db_open(&temp, "tg_store_connector_tokens", SEED);
  db = temp.db;
  keys = ring(KEY_A, NULL);
  return 0;
}

static int teardown(void **state)
{
  tg_crypto_free(keys);
  keys = NULL;
  return temp_db_teardown(state);
}

static void refused(const char *st, const char *caller, int64_t now, const char *why)
{
  tg_connector_oauth_state out;
  const char *r = NULL;
  assert_int_equal(tg_store_connector_tokens_state_consume(db, keys, st, caller, now, &out, &r), 0);
  assert_null(out.user_id);
  assert_non_null(r);
  assert_string_equal(r, why);
}

static void test_state_once(void **state)
{
  tg_connector_oauth_state out;
  const char *why = "x";
  char key[44];
  int err;
  json_t *rows;
  (void)state;
  assert_int_equal(tg_store_connector_tokens_state_insert(db, NULL, "st1", "alice", "con_a", "v",
                                                          "http://cb", 100),
                   TG_ESTATE);
  assert_int_equal(tg_store_connector_tokens_state_insert(db, keys, "st1", "alice", "con_a",
                                                          "verifier-1", "http://cb", 100),
                   0);
  assert_int_equal(tg_store_connector_tokens_state_insert(db, keys, "st1", "alice", "con_a",
                                                          "verifier-1", "http://cb", 100),
                   TG_ECONFLICT);
  /* only the hash is stored */
  tg_store_connector_tokens_state_key("st1", key);
  rows = tg_db_query(db, &err, "SELECT state FROM connector_oauth_states", "");
  assert_int_equal(json_array_size(rows), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "state")), key);
  json_decref(rows);
  refused("nosuch", "", 200, "unknown");
  refused("st1", "bob", 200, "other_user");
  refused("st1", "alice", 100 + TG_CONNECTOR_STATE_TTL_MS, "expired");
  assert_int_equal(
      tg_store_connector_tokens_state_consume(db, keys, "st1", "alice", 200, &out, &why), 0);
  assert_null(why);
  assert_string_equal(out.user_id, "alice");
  assert_string_equal(out.connector_id, "con_a");
  assert_string_equal(out.verifier, "verifier-1");
  assert_string_equal(out.redirect_uri, "http://cb");
  tg_store_connector_tokens_state_clear(&out);
  refused("st1", "", 300, "used");
  assert_int_equal(
      tg_store_connector_tokens_states_cleanup(db, 100 + TG_CONNECTOR_STATE_TTL_MS + 1, &err), 0);
  assert_int_equal(err, 1);
}

static void test_tokens_sealed(void **state)
{
  json_t *client = json_pack("{s:s, s:s}", "client_id", "cid", "client_secret", "csecret");
  json_t *meta = json_pack("{s:s}", "token_endpoint", "http://127.0.0.1/token");
  json_t *t1 = json_pack("{s:s, s:s, s:I}", "access_token", "at1", "refresh_token", "rt1",
                         "expires_at", (json_int_t)5000);
  json_t *t2 = json_pack("{s:s, s:I}", "access_token", "at2", "expires_at", (json_int_t)0);
  json_t *tok = NULL, *cli = NULL, *m = NULL;
  char *bearer = NULL;
  int err;
  json_t *r;
  (void)state;
  assert_int_equal(tg_store_connector_tokens_save(db, keys, "alice", "con_a", t1, 10),
                   TG_ENOTFOUND);
  assert_int_equal(
      tg_store_connector_tokens_save_client(db, keys, "alice", "con_a", client, meta, 10), 0);
  assert_int_equal(tg_store_connector_tokens_load(db, keys, "alice", "con_a", &tok, &cli, &m), 0);
  assert_null(tok);
  assert_string_equal(json_string_value(json_object_get(cli, "client_secret")), "csecret");
  assert_string_equal(json_string_value(json_object_get(m, "token_endpoint")),
                      "http://127.0.0.1/token");
  json_decref(cli);
  json_decref(m);
  assert_int_equal(tg_store_connector_tokens_save(db, keys, "alice", "con_a", t1, 20), 0);
  r = tg_db_query_one(db, &err, "SELECT expires_at FROM connector_tokens", "");
  assert_int_equal(json_integer_value(json_object_get(r, "expires_at")), 5000);
  json_decref(r);
  /* the access token the worker and the catalog read */
  assert_int_equal(tg_store_connectors_access_token(db, keys, "alice", "con_a", &bearer), 0);
  assert_string_equal(bearer, "at1");
  tg_crypto_wipe_free(bearer, strlen(bearer));
  /* a refresh without a refresh token keeps the stored one; expiry unknown: NULL */
  assert_int_equal(tg_store_connector_tokens_save(db, keys, "alice", "con_a", t2, 30), 0);
  assert_int_equal(tg_store_connector_tokens_load(db, keys, "alice", "con_a", &tok, NULL, NULL), 0);
  assert_string_equal(json_string_value(json_object_get(tok, "access_token")), "at2");
  assert_string_equal(json_string_value(json_object_get(tok, "refresh_token")), "rt1");
  json_decref(tok);
  r = tg_db_query_one(db, &err, "SELECT expires_at FROM connector_tokens", "");
  assert_true(json_is_null(json_object_get(r, "expires_at")));
  json_decref(r);
  /* another user, or the other column's blob, does not open */
  assert_int_equal(tg_store_connector_tokens_load(db, keys, "bob", "con_a", &tok, NULL, NULL),
                   TG_ENOTFOUND);
  assert_int_equal(tg_db_exec(db, NULL, "UPDATE connector_tokens SET client_enc = token_enc", ""),
                   0);
  assert_int_equal(tg_store_connector_tokens_load(db, keys, "alice", "con_a", NULL, &cli, NULL),
                   TG_EAUTH);
  assert_int_equal(
      tg_store_connector_tokens_save_client(db, NULL, "alice", "con_a", client, meta, 10),
      TG_ESTATE);
  json_decref(client);
  json_decref(meta);
  json_decref(t1);
  json_decref(t2);
}

static void test_auth_status_fenced(void **state)
{
  int64_t v = 0;
  (void)state;
  assert_int_equal(tg_store_connectors_set_auth_status(db, "alice", "con_a", 1, "ACTIVE", 5), 0);
  assert_int_equal(tg_store_connectors_version(db, "alice", "con_a", &v), 0);
  assert_int_equal(v, 2);
  assert_int_equal(
      tg_store_connectors_set_auth_status(db, "alice", "con_a", 1, "auth_refresh_required", 6),
      TG_ECONFLICT);
  assert_int_equal(
      tg_store_connectors_set_auth_status(db, "alice", "con_a", 2, "auth_refresh_required", 6), 0);
  assert_int_equal(tg_store_connectors_set_auth_status(db, "alice", "con_a", -1, "bogus", 6),
                   TG_EINVAL);
  assert_int_equal(tg_store_connectors_set_auth_status(db, "bob", "con_a", -1, "ACTIVE", 6),
                   TG_ENOTFOUND);
  assert_int_equal(tg_store_connectors_set_auth_status(db, "alice", "con_s", -1, "ACTIVE", 6),
                   TG_ECONFLICT); /* static auth: nothing to set */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

TG_UNIT_MAIN(T(test_state_once), T(test_tokens_sealed), T(test_auth_status_fenced))
