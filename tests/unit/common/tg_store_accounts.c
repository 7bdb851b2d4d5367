/*
 * Unit tests for common/tg_store_accounts.c on a real SQLite file: every status change moves
 * version by exactly one and sets updated_at; writes that change neither status nor reason move
 * nothing; the transition rules (ACTIVE kept by start and by a failed callback, DISCONNECTED kept
 * by observations and webhooks); the MCP endpoint row written with connect and disconnect.
 */
#include "tg_unit.h"

#include "tg_db.h"
#include "tg_err.h"
#include "tg_store_accounts.h"
#include "temp_db.h"

#include <string.h>

static tg_db *db;

static int setup(void **state)
{
  (void)state;
  temp_db_open(&temp, "tg_store_accounts",
               "INSERT INTO users(id, credits, created_at) VALUES ('u', 0, 0), ('v', 0, 0);"
               "INSERT INTO auth_configs (id, provider, toolkit_slug, display_name, created_at, "
               "updated_at) VALUES ('ac_g', 'gmail', 'gmail', 'Gmail', 0, 0);");
  db = temp.db;
  return 0;
}

/* The row of user (there is at most one: one auth config), asserted present. */
static json_t *row(const char *user)
{
  int err;
  json_t *rows =
      tg_db_query(db, &err, "SELECT * FROM connected_accounts WHERE user_id = ?", "s", user);
  json_t *r = json_incref(json_array_get(rows, 0));
  assert_int_equal(json_array_size(rows), 1);
  json_decref(rows);
  return r;
}

static long long num(const char *user, const char *col)
{
  json_t *r = row(user);
  long long v = (long long)json_integer_value(json_object_get(r, col));
  json_decref(r);
  return v;
}

/* Asserts status, reason (NULL: null) and version of user's row. */
static void expect(const char *user, const char *status, const char *reason, long long version)
{
  json_t *r = row(user);
  const char *re = json_string_value(json_object_get(r, "status_reason"));
  assert_string_equal(json_string_value(json_object_get(r, "status")), status);
  if (reason)
    assert_string_equal(re, reason);
  else
    assert_null(re);
  assert_int_equal(json_integer_value(json_object_get(r, "version")), version);
  json_decref(r);
}

static json_t *endpoint(const char *user)
{
  int err;
  return tg_db_query_one(db, &err,
                         "SELECT m.url, m.headers_enc, m.last_error FROM mcp_connections m JOIN "
                         "connected_accounts c ON c.id = m.connected_account_id WHERE "
                         "c.user_id = ?",
                         "s", user);
}

/* tg_store_accounts_set_disconnect_reason on user's row; returns the rows written. */
static int set_reason(const char *user, const char *ca, const char *reason, int64_t now)
{
  int n = -1;
  assert_int_equal(
      tg_store_accounts_set_disconnect_reason(db, num(user, "id"), ca, reason, now, &n), 0);
  return n;
}

static void test_start_and_connect(void **state)
{
  int n = -1;
  json_t *m;
  (void)state;
  /* First start: a new PENDING row at version 1. */
  assert_int_equal(tg_store_accounts_start(db, "u", "gmail", "ac_g", "ca_1", 0, 100, &n), 0);
  assert_int_equal(n, 1);
  expect("u", "PENDING", NULL, 1);
  assert_int_equal(num("u", "updated_at"), 100);
  /* A second start on a PENDING row: the new account id, one bump. */
  assert_int_equal(tg_store_accounts_start(db, "u", "gmail", "ac_g", "ca_2", 0, 200, &n), 0);
  expect("u", "PENDING", NULL, 2);
  assert_int_equal(num("u", "updated_at"), 200);
  /* Connect: ACTIVE in place, one bump, the endpoint row written. */
  assert_int_equal(tg_store_accounts_connect(db, "u", "gmail", "ac_g", "ca_2", "https://m/1", 300),
                   0);
  expect("u", "ACTIVE", NULL, 3);
  assert_int_equal(num("u", "connected_at"), 300);
  assert_int_equal(num("u", "last_checked_at"), 300);
  assert_int_equal(num("u", "updated_at"), 300);
  m = endpoint("u");
  assert_string_equal(json_string_value(json_object_get(m, "url")), "https://m/1");
  json_decref(m);
  /* A start on an ACTIVE row keeps it (the new id waits in the OAuth state)... */
  assert_int_equal(tg_store_accounts_start(db, "u", "gmail", "ac_g", "ca_3", 0, 400, &n), 0);
  assert_int_equal(n, 0);
  expect("u", "ACTIVE", NULL, 3);
  assert_int_equal(num("u", "updated_at"), 300);
  /* ... unless Composio said it is not usable. */
  assert_int_equal(tg_store_accounts_start(db, "u", "gmail", "ac_g", "ca_3", 1, 500, &n), 0);
  assert_int_equal(n, 1);
  expect("u", "PENDING", NULL, 4);
  /* A reconnect replaces the endpoint in place: still one row each. */
  assert_int_equal(tg_store_accounts_connect(db, "u", "gmail", "ac_g", "ca_3", "https://m/2", 600),
                   0);
  expect("u", "ACTIVE", NULL, 5);
  m = endpoint("u");
  assert_string_equal(json_string_value(json_object_get(m, "url")), "https://m/2");
  json_decref(m);
  m = tg_db_query_one(db, &n, "SELECT count(*) AS n FROM mcp_connections", NULL);
  assert_int_equal(json_integer_value(json_object_get(m, "n")), 1);
  json_decref(m);
}

static void test_connect_inserts(void **state)
{
  json_t *m;
  (void)state;
  assert_int_equal(tg_store_accounts_connect(db, "v", "gmail", "ac_g", "ca_9", "https://m/v", 10),
                   0);
  expect("v", "ACTIVE", NULL, 1);
  m = endpoint("v");
  assert_non_null(m);
  assert_true(json_is_null(json_object_get(m, "headers_enc")));
  json_decref(m);
}

static void test_fail_keeps_active(void **state)
{
  int n = -1;
  (void)state;
  assert_int_equal(tg_store_accounts_start(db, "u", "gmail", "ac_g", "ca_1", 0, 100, NULL), 0);
  assert_int_equal(tg_store_accounts_fail(db, "u", "ac_g", "callback_status=failed", 200, &n), 0);
  assert_int_equal(n, 1);
  expect("u", "FAILED", "callback_status=failed", 2);
  assert_int_equal(num("u", "last_checked_at"), 200);
  assert_int_equal(tg_store_accounts_connect(db, "u", "gmail", "ac_g", "ca_1", "https://m", 300),
                   0);
  assert_int_equal(tg_store_accounts_fail(db, "u", "ac_g", "late", 400, &n), 0);
  assert_int_equal(n, 0);
  expect("u", "ACTIVE", NULL, 3);
}

static void test_disconnect_bumps_each_change_once(void **state)
{
  int n = -1;
  json_t *r, *m;
  (void)state;
  assert_int_equal(tg_store_accounts_connect(db, "u", "gmail", "ac_g", "ca_1", "https://m", 100),
                   0);
  r = tg_store_accounts_find(db, &n, "u", "ac_g");
  assert_non_null(r);
  assert_int_equal(tg_store_accounts_disconnect(db, json_integer_value(json_object_get(r, "id")),
                                                "pending", 200),
                   0);
  expect("u", "DISCONNECTED", "pending", 2);
  assert_int_equal(num("u", "updated_at"), 200);
  m = endpoint("u");
  assert_true(json_is_null(json_object_get(m, "url")));
  json_decref(m);
  /* The reason once Composio deleted the account: a change, so one bump. */
  assert_int_equal(set_reason("u", "ca_1", "deleted", 300), 1);
  expect("u", "DISCONNECTED", "deleted", 3);
  assert_int_equal(num("u", "updated_at"), 300);
  /* The same reason again changes nothing: no bump. */
  assert_int_equal(set_reason("u", "ca_1", "deleted", 400), 0);
  expect("u", "DISCONNECTED", "deleted", 3);
  assert_int_equal(num("u", "updated_at"), 300);
  /* Another account id (a reconnect meanwhile): not written. */
  assert_int_equal(set_reason("u", "ca_other", "x", 500), 0);
  json_decref(r);
}

static void test_expire_webhook(void **state)
{
  int n = -1;
  json_t *o;
  (void)state;
  assert_int_equal(tg_store_accounts_connect(db, "u", "gmail", "ac_g", "ca_1", "https://m", 100),
                   0);
  o = tg_store_accounts_find_by_ca(db, &n, "ca_1");
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "user_id")), "u");
  assert_string_equal(json_string_value(json_object_get(o, "provider")), "gmail");
  json_decref(o);
  assert_null(tg_store_accounts_find_by_ca(db, &n, "ca_none"));
  assert_int_equal(n, TG_ENOTFOUND);
  assert_int_equal(tg_store_accounts_expire(db, "ca_1", "token expired", 200, &n), 0);
  assert_int_equal(n, 1);
  expect("u", "EXPIRED", "token expired", 2);
  /* Already EXPIRED with that reason: nothing written. */
  assert_int_equal(tg_store_accounts_expire(db, "ca_1", "token expired", 300, &n), 0);
  assert_int_equal(n, 0);
  expect("u", "EXPIRED", "token expired", 2);
  assert_int_equal(num("u", "updated_at"), 200);
  /* DISCONNECTED stays. */
  assert_int_equal(tg_store_accounts_disconnect(db, num("u", "id"), "bye", 400), 0);
  assert_int_equal(tg_store_accounts_expire(db, "ca_1", "other", 500, &n), 0);
  assert_int_equal(n, 0);
  expect("u", "DISCONNECTED", "bye", 3);
}

static void test_expire_abandoned(void **state)
{
  int n = -1;
  (void)state;
  assert_int_equal(tg_store_accounts_start(db, "u", "gmail", "ac_g", "ca_u", 0, 100, NULL), 0);
  assert_int_equal(tg_store_accounts_start(db, "v", "gmail", "ac_g", "ca_v", 0, 100, NULL), 0);
  /* v still has an open state for the provider. */
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO oauth_states (state, user_id, provider, created_at, "
                              "expires_at) VALUES ('s', 'v', 'gmail', 100, 5000)",
                              NULL),
                   0);
  /* Not untouched long enough yet. */
  assert_int_equal(tg_store_accounts_expire_abandoned(db, "abandoned", 100, 1000, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(tg_store_accounts_expire_abandoned(db, "abandoned", 101, 1000, &n), 0);
  assert_int_equal(n, 1);
  expect("u", "EXPIRED", "abandoned", 2);
  assert_int_equal(num("u", "updated_at"), 1000);
  expect("v", "PENDING", NULL, 1);
}

static void test_observe_row(void **state)
{
  int changed = -2;
  long long id;
  (void)state;
  assert_int_equal(tg_store_accounts_connect(db, "u", "gmail", "ac_g", "ca_1", "https://m", 100),
                   0);
  id = num("u", "id");
  /* Same status and reason: only last_checked_at. */
  assert_int_equal(tg_store_accounts_observe_row(db, id, 1, "ACTIVE", NULL, 200, &changed), 0);
  assert_int_equal(changed, 0);
  expect("u", "ACTIVE", NULL, 1);
  assert_int_equal(num("u", "last_checked_at"), 200);
  assert_int_equal(num("u", "updated_at"), 100);
  /* A new status: one bump. */
  assert_int_equal(tg_store_accounts_observe_row(db, id, 1, "EXPIRED", "gone", 300, &changed), 0);
  assert_int_equal(changed, 1);
  expect("u", "EXPIRED", "gone", 2);
  assert_int_equal(num("u", "updated_at"), 300);
  /* Read at an older version: nothing written. */
  assert_int_equal(tg_store_accounts_observe_row(db, id, 1, "ACTIVE", NULL, 400, &changed), 0);
  assert_int_equal(changed, -1);
  expect("u", "EXPIRED", "gone", 2);
  assert_int_equal(num("u", "last_checked_at"), 300);
  /* Only the reason differs: a change. */
  assert_int_equal(tg_store_accounts_observe_row(db, id, 2, "EXPIRED", NULL, 500, &changed), 0);
  assert_int_equal(changed, 1);
  expect("u", "EXPIRED", NULL, 3);
}

static void test_observe(void **state)
{
  int n = -1;
  (void)state;
  assert_int_equal(tg_store_accounts_connect(db, "u", "gmail", "ac_g", "ca_1", "https://m", 100),
                   0);
  /* Unchanged: written (check time), version kept. */
  assert_int_equal(tg_store_accounts_observe(db, "u", "gmail", "ca_1", "ACTIVE", NULL, 200, &n), 0);
  assert_int_equal(n, 1);
  expect("u", "ACTIVE", NULL, 1);
  assert_int_equal(num("u", "last_checked_at"), 200);
  /* NULL status keeps ours; a new reason is a change. */
  assert_int_equal(tg_store_accounts_observe(db, "u", "gmail", "ca_1", NULL, "x", 300, &n), 0);
  expect("u", "ACTIVE", "x", 2);
  assert_int_equal(tg_store_accounts_observe(db, "u", "gmail", "ca_1", "EXPIRED", "x", 400, &n), 0);
  expect("u", "EXPIRED", "x", 3);
  /* Another account id or user: not this row. */
  assert_int_equal(tg_store_accounts_observe(db, "u", "gmail", "ca_2", "ACTIVE", NULL, 500, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(tg_store_accounts_observe(db, "v", "gmail", "ca_1", "ACTIVE", NULL, 500, &n), 0);
  assert_int_equal(n, 0);
  /* DISCONNECTED is never brought back. */
  assert_int_equal(tg_store_accounts_disconnect(db, num("u", "id"), "bye", 600), 0);
  assert_int_equal(tg_store_accounts_observe(db, "u", "gmail", "ca_1", "ACTIVE", NULL, 700, &n), 0);
  assert_int_equal(n, 0);
  expect("u", "DISCONNECTED", "bye", 4);
}

static void test_reads(void **state)
{
  int err = 0;
  json_t *a;
  (void)state;
  a = tg_store_accounts_list(db, &err, "u");
  assert_non_null(a);
  assert_int_equal(json_array_size(a), 0);
  json_decref(a);
  assert_null(tg_store_accounts_find(db, &err, "u", "ac_g"));
  assert_int_equal(err, TG_ENOTFOUND);
  assert_int_equal(tg_store_accounts_connect(db, "u", "gmail", "ac_g", "ca_1", "https://m", 100),
                   0);
  assert_int_equal(tg_store_accounts_start(db, "v", "gmail", "ac_g", "ca_2", 0, 100, NULL), 0);
  a = tg_store_accounts_list(db, &err, "u");
  assert_int_equal(json_array_size(a), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "auth_config_id")),
                      "ac_g");
  json_decref(a);
  a = tg_store_accounts_list_active(db, &err, 10);
  assert_int_equal(json_array_size(a), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "user_id")), "u");
  json_decref(a);
  a = tg_store_accounts_list_endpoints(db, &err, "u");
  assert_int_equal(json_array_size(a), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "mcp_url")),
                      "https://m");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "has_headers")), 0);
  json_decref(a);
}

/* A reconnect retires the account the row held; the list, a failed attempt and done. */
static void test_retire_previous(void **state)
{
  char out[32];
  int err;
  json_t *a;
  (void)state;
  assert_int_equal(tg_store_accounts_retire_previous(db, "u", "ac_g", "ca_1", 5, out, sizeof out),
                   0);
  assert_string_equal(out, ""); /* no row yet */
  assert_int_equal(tg_store_accounts_connect(db, "u", "gmail", "ac_g", "ca_1", "https://m/1", 10),
                   0);
  assert_int_equal(tg_store_accounts_retire_previous(db, "u", "ac_g", "ca_1", 11, out, sizeof out),
                   0);
  assert_string_equal(out, ""); /* the same account: nothing to retire */
  assert_int_equal(tg_store_accounts_retire_previous(db, "u", "ac_g", "ca_2", 12, out, sizeof out),
                   0);
  assert_string_equal(out, "ca_1");
  assert_int_equal(tg_store_accounts_retire_previous(db, "u", "ac_g", "ca_2", 13, out, sizeof out),
                   0); /* recorded once */
  a = tg_store_accounts_list_retired(db, &err, 10);
  assert_int_equal(json_array_size(a), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "provider")),
                      "gmail");
  json_decref(a);
  assert_int_equal(tg_store_accounts_retired_failed(db, "ca_1", "http_error", 20), 0);
  a = tg_store_accounts_list_retired(db, &err, 10);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "attempts")), 1);
  json_decref(a);
  assert_int_equal(tg_store_accounts_retired_done(db, "ca_1"), 0);
  a = tg_store_accounts_list_retired(db, &err, 10);
  assert_int_equal(json_array_size(a), 0);
  json_decref(a);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, temp_db_teardown)

TG_UNIT_MAIN(T(test_start_and_connect), T(test_connect_inserts), T(test_fail_keeps_active),
             T(test_disconnect_bumps_each_change_once), T(test_expire_webhook),
             T(test_expire_abandoned), T(test_observe_row), T(test_observe), T(test_reads),
             T(test_retire_previous))
