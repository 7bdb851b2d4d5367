/*
 * Unit tests for common/tg_store_credits.c on a real SQLite file: first sight grants once; the
 * debit takes credits only when they cover the cost and never goes below zero; refunds; after
 * every step users.credits equals the sum of the user's ledger deltas.
 */
#include "tg_unit.h"

#include "tg_db.h"
#include "tg_err.h"
#include "tg_store_credits.h"
#include "temp_db.h"

#include <string.h>

static tg_db *db;

static int setup(void **state)
{
  (void)state;
  temp_db_open(&temp, "tg_store_credits", NULL);
  db = temp.db;
  return 0;
}

/* The sum of user's ledger deltas (through tg_store_credits_ledger); *rows gets their count. */
static long long ledger_sum(const char *user, size_t *rows)
{
  int err = 0;
  long long sum = 0;
  size_t i;
  json_t *v, *all = tg_store_credits_ledger(db, &err, user, 200);
  assert_non_null(all);
  json_array_foreach(all, i, v) sum += (long long)json_integer_value(json_object_get(v, "delta"));
  *rows = json_array_size(all);
  json_decref(all);
  return sum;
}

/* Asserts the user's balance is credits and equals the sum of the ledger. */
static void expect_balance(const char *user, long long credits)
{
  int64_t have = -1;
  size_t n;
  assert_int_equal(tg_store_credits_balance(db, user, &have), 0);
  assert_int_equal(have, credits);
  assert_int_equal(ledger_sum(user, &n), credits);
}

/* The ledger row of run_id with reason (asserted present) -> its delta. */
static long long delta_of(const char *user, const char *run_id, const char *reason)
{
  int err = 0;
  long long d = 0;
  int found = 0;
  size_t i;
  json_t *v, *all = tg_store_credits_ledger(db, &err, user, 200);
  json_array_foreach(all, i, v)
  {
    const char *r = json_string_value(json_object_get(v, "run_id"));
    if (r && strcmp(r, run_id) == 0 &&
        strcmp(json_string_value(json_object_get(v, "reason")), reason) == 0) {
      d = (long long)json_integer_value(json_object_get(v, "delta"));
      found++;
    }
  }
  json_decref(all);
  assert_int_equal(found, 1);
  return d;
}

static void test_ensure_user_grants_once(void **state)
{
  int64_t c = -1;
  size_t n;
  (void)state;
  assert_int_equal(tg_store_credits_balance(db, "u", &c), TG_ENOTFOUND);
  assert_int_equal(c, 0);
  assert_int_equal(tg_store_credits_ensure_user(db, "u", 10), 0);
  expect_balance("u", 10);
  assert_int_equal(tg_store_credits_ensure_user(db, "u", 99), 0); /* known: nothing */
  assert_int_equal(tg_db_begin(db, 1), 0);
  assert_int_equal(tg_store_credits_ensure_user_tx(db, "u", 99), 0);
  assert_int_equal(tg_store_credits_ensure_user_tx(db, "v", 0), 0);
  assert_int_equal(tg_db_commit(db), 0);
  expect_balance("u", 10);
  expect_balance("v", 0);
  assert_int_equal(ledger_sum("u", &n), 10);
  assert_int_equal(n, 1); /* one grant, however often the user was seen */
}

static void test_debit_and_refund_keep_the_ledger(void **state)
{
  int64_t c = -1;
  size_t n;
  (void)state;
  assert_int_equal(tg_store_credits_ensure_user(db, "u", 5), 0);
  assert_int_equal(tg_store_credits_debit(db, "u", "run_1", 2, 100, &c), 1);
  expect_balance("u", 3);
  assert_int_equal(tg_store_credits_debit(db, "u", "run_2", 3, 101, &c), 1);
  expect_balance("u", 0);
  /* Not covered: nothing written, the balance reported. */
  assert_int_equal(tg_store_credits_debit(db, "u", "run_3", 1, 102, &c), 0);
  assert_int_equal(c, 0);
  expect_balance("u", 0);
  assert_int_equal(ledger_sum("u", &n), 0);
  assert_int_equal(n, 3); /* grant and two debits: none for run_3 */
  /* A refund gives one run's cost back, with its row. */
  assert_int_equal(tg_store_credits_refund(db, "u", "run_2", 3, 103), 0);
  expect_balance("u", 3);
  assert_int_equal(tg_store_credits_debit(db, "u", "run_4", 4, 104, &c), 0);
  assert_int_equal(c, 3);
  assert_int_equal(delta_of("u", "run_1", "run_admitted"), -2);
  assert_int_equal(delta_of("u", "run_2", "run_refund"), 3);
  /* A missing user: no debit, balance 0; no refund row. */
  assert_int_equal(tg_store_credits_debit(db, "nobody", "run_5", 1, 105, &c), 0);
  assert_int_equal(c, 0);
  assert_int_equal(tg_store_credits_refund(db, "nobody", "run_5", 1, 105), 0);
  assert_int_equal(ledger_sum("nobody", &n), 0);
  assert_int_equal(n, 0);
}

static void test_ledger_newest_first(void **state)
{
  int err = 0;
  int64_t c;
  json_t *rows;
  (void)state;
  assert_int_equal(tg_store_credits_ensure_user(db, "u", 5), 0);
  assert_int_equal(tg_store_credits_debit(db, "u", "run_1", 1, 100, &c), 1);
  assert_int_equal(tg_store_credits_refund(db, "u", "run_1", 1, 101), 0);
  rows = tg_store_credits_ledger(db, &err, "u", 2);
  assert_non_null(rows);
  assert_int_equal(json_array_size(rows), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "reason")),
                      "run_refund");
  assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "reason")),
                      "run_admitted");
  json_decref(rows);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, temp_db_teardown)

TG_UNIT_MAIN(T(test_ensure_user_grants_once), T(test_debit_and_refund_keep_the_ledger),
             T(test_ledger_newest_first))
