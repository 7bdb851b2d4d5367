/*
 * Unit tests for common/tg_store_oauth.c on a real SQLite file: an OAuth state is consumed at
 * most once and only while unexpired and by its owner (each refusal named, nothing written), the
 * link id, the open-state counts and the cleanup; a webhook id is recorded once and forgotten
 * after its time.
 */
#include "tg_unit.h"

#include "tg_db.h"
#include "tg_err.h"
#include "tg_store_oauth.h"
#include "temp_db.h"

#include <string.h>

static tg_db *db;

static int setup(void **state)
{
  (void)state;
  temp_db_open(&temp, "tg_store_oauth", NULL);
  db = temp.db;
  return 0;
}

static long long used_at(const char *st)
{
  int err;
  json_t *r =
      tg_db_query_one(db, &err, "SELECT used_at FROM oauth_states WHERE state = ?", "s", st);
  long long v;
  assert_non_null(r);
  v = json_is_null(json_object_get(r, "used_at"))
          ? -1
          : (long long)json_integer_value(json_object_get(r, "used_at"));
  json_decref(r);
  return v;
}

static void refused(const char *st, const char *caller, int64_t now, const char *why)
{
  json_t *out = (json_t *)1;
  const char *r = NULL;
  assert_int_equal(tg_store_oauth_state_consume(db, st, caller, now, &out, &r), 0);
  assert_null(out);
  assert_non_null(r);
  assert_string_equal(r, why);
}

static void test_consume_once(void **state)
{
  json_t *out = NULL;
  const char *why = "x";
  (void)state;
  assert_int_equal(tg_store_oauth_state_insert(db, "s1", "alice", "gmail", NULL, 100, 1000), 0);
  assert_int_equal(tg_store_oauth_state_insert(db, "s1", "alice", "gmail", NULL, 100, 1000),
                   TG_ECONFLICT);
  assert_int_equal(tg_store_oauth_state_link(db, "s1", "ca_1"), 0);
  assert_int_equal(tg_store_oauth_state_link(db, "nosuch", "ca_1"), 0);
  refused("nosuch", "", 200, "unknown");
  refused("s1", "bob", 200, "other_user");
  refused("s1", "", 1000, "expired");
  assert_int_equal(used_at("s1"), -1); /* refusals write nothing */
  assert_int_equal(tg_store_oauth_state_consume(db, "s1", "alice", 200, &out, &why), 0);
  assert_null(why);
  assert_non_null(out);
  assert_string_equal(json_string_value(json_object_get(out, "user_id")), "alice");
  assert_string_equal(json_string_value(json_object_get(out, "provider")), "gmail");
  assert_string_equal(json_string_value(json_object_get(out, "composio_account_id")), "ca_1");
  json_decref(out);
  assert_int_equal(used_at("s1"), 200);
  refused("s1", "", 300, "used");
  refused("s1", "alice", 300, "used");
  assert_int_equal(used_at("s1"), 200);
}

static void test_any_caller_and_no_link(void **state)
{
  json_t *out = NULL;
  const char *why = "x";
  (void)state;
  assert_int_equal(tg_store_oauth_state_insert(db, "s2", "alice", "gmail", "https://r", 0, 1000),
                   0);
  assert_int_equal(tg_store_oauth_state_consume(db, "s2", "", 999, &out, &why), 0);
  assert_non_null(out);
  assert_true(json_is_null(json_object_get(out, "composio_account_id")));
  json_decref(out);
}

static void test_open_states_and_cleanup(void **state)
{
  int err = 0, n = -1;
  json_t *a, *out;
  const char *why;
  (void)state;
  assert_int_equal(tg_store_oauth_state_insert(db, "a", "alice", "gmail", NULL, 0, 500), 0);
  assert_int_equal(tg_store_oauth_state_insert(db, "b", "alice", "gmail", NULL, 0, 900), 0);
  assert_int_equal(tg_store_oauth_state_insert(db, "c", "alice", "slack", NULL, 0, 900), 0);
  assert_int_equal(tg_store_oauth_state_insert(db, "d", "alice", "slack", NULL, 0, 100), 0);
  assert_int_equal(tg_store_oauth_state_insert(db, "e", "bob", "gmail", NULL, 0, 900), 0);
  assert_int_equal(tg_store_oauth_state_consume(db, "c", "alice", 200, &out, &why), 0);
  json_decref(out);
  a = tg_store_oauth_open_states(db, &err, "alice", 200);
  assert_non_null(a);
  assert_int_equal(json_array_size(a), 1); /* slack: c used, d expired */
  assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "provider")),
                      "gmail");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "open_states")), 2);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "latest_expires_at")),
                   900);
  assert_null(json_object_get(json_array_get(a, 0), "state"));
  json_decref(a);
  assert_int_equal(tg_store_oauth_states_cleanup(db, 500, &n), 0);
  assert_int_equal(n, 1); /* d only: a expires at 500, not before */
  assert_int_equal(tg_store_oauth_states_cleanup(db, 901, &n), 0);
  assert_int_equal(n, 4);
}

static int webhook_count(void)
{
  int err;
  json_t *r = tg_db_query_one(db, &err, "SELECT count(*) AS n FROM webhook_events", NULL);
  int n = (int)json_integer_value(json_object_get(r, "n"));
  json_decref(r);
  return n;
}

static void test_webhooks(void **state)
{
  int first = -1;
  (void)state;
  assert_int_equal(tg_store_oauth_webhook_record(db, "msg_1", "t", 100, &first), 0);
  assert_int_equal(first, 1);
  assert_int_equal(tg_store_oauth_webhook_record(db, "msg_1", "t2", 200, &first), 0);
  assert_int_equal(first, 0);
  assert_int_equal(tg_store_oauth_webhook_record(db, "msg_2", "t", 300, &first), 0);
  assert_int_equal(first, 1);
  assert_int_equal(webhook_count(), 2);
  assert_int_equal(tg_store_oauth_webhooks_cleanup(db, 100), 0);
  assert_int_equal(webhook_count(), 2);
  assert_int_equal(tg_store_oauth_webhooks_cleanup(db, 101), 0);
  assert_int_equal(webhook_count(), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, temp_db_teardown)

TG_UNIT_MAIN(T(test_consume_once), T(test_any_caller_and_no_link), T(test_open_states_and_cleanup),
             T(test_webhooks))
