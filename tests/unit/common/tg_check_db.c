/*
 * Unit tests for common/tg_check_db.c on a real SQLite file: the write-back rules shared by the
 * gateway and the worker.
 */
#include "tg_unit.h"

#include "tg_check.h"
#include "tg_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char path[64];
static tg_db *db;

static int setup(void **state)
{
  snprintf(path, sizeof path, "/tmp/tg_check_db_%ld.db", (long)getpid());
  unlink(path);
  assert_int_equal(tg_db_open(&db, path, 1000), 0);
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO users(id, credits, created_at) VALUES ('u', 0, 0), "
                              "('v', 0, 0)",
                              NULL),
                   0);
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO auth_configs (id, provider, toolkit_slug, display_name, "
                              "created_at, updated_at) VALUES ('ac_g', 'gmail', 'gmail', 'Gmail', "
                              "0, 0)",
                              NULL),
                   0);
  return 0;
}

static int teardown(void **state)
{
  char wal[80], shm[80];
  tg_db_close(db);
  snprintf(wal, sizeof wal, "%s-wal", path);
  snprintf(shm, sizeof shm, "%s-shm", path);
  unlink(path);
  unlink(wal);
  unlink(shm);
  return 0;
}

static void add_row(const char *user, const char *status, const char *ca)
{
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO connected_accounts (user_id, provider, auth_config_id, "
                              "composio_account_id, status, version, created_at, updated_at) "
                              "VALUES (?, 'gmail', 'ac_g', ?, ?, 1, 0, 0)",
                              "sss", user, ca, status),
                   0);
}

static json_t *row(const char *user)
{
  int err;
  json_t *r = tg_db_query_one(db, &err,
                              "SELECT status, status_reason, version, last_checked_at FROM "
                              "connected_accounts WHERE user_id = ?",
                              "s", user);
  assert_non_null(r);
  return r;
}

static void observe(const char *user, const char *status, const char *reason, int64_t now,
                    int expect_rows)
{
  tg_check_result res = {0};
  int rows = -1;
  res.observed = json_pack("[{s:s, s:s, s:s, s:s*}]", "provider", "gmail", "composio_account_id",
                           "ca_1", "status", status, "status_reason", reason);
  res.reasons = json_object();
  assert_int_equal(tg_check_write_back(db, user, &res, now, &rows), 0);
  assert_int_equal(rows, expect_rows);
  json_decref(res.observed);
  json_decref(res.reasons);
}

static void test_rules(void **state)
{
  json_t *r;
  add_row("u", "ACTIVE", "ca_1");
  /* A new status: written, Composio's reason verbatim, version bumped. */
  observe("u", "EXPIRED", "OAuth refresh token expired", 100, 1);
  r = row("u");
  assert_string_equal(json_string_value(json_object_get(r, "status")), "EXPIRED");
  assert_string_equal(json_string_value(json_object_get(r, "status_reason")),
                      "OAuth refresh token expired");
  assert_int_equal(json_integer_value(json_object_get(r, "version")), 2);
  json_decref(r);
  /* The same again: only the check time moves. */
  observe("u", "EXPIRED", "OAuth refresh token expired", 200, 1);
  r = row("u");
  assert_int_equal(json_integer_value(json_object_get(r, "version")), 2);
  assert_int_equal(json_integer_value(json_object_get(r, "last_checked_at")), 200);
  json_decref(r);
  /* No reason from Composio: ours names the status. */
  observe("u", "INACTIVE", NULL, 300, 1);
  r = row("u");
  assert_string_equal(json_string_value(json_object_get(r, "status_reason")),
                      "connected_account_status=INACTIVE");
  json_decref(r);
  /* A status we do not know keeps ours and is recorded. */
  observe("u", "SOMETHING_NEW", NULL, 400, 1);
  r = row("u");
  assert_string_equal(json_string_value(json_object_get(r, "status")), "INACTIVE");
  assert_string_equal(json_string_value(json_object_get(r, "status_reason")),
                      "composio_status=SOMETHING_NEW");
  json_decref(r);
}

static void test_disconnected_and_other_users_untouched(void **state)
{
  json_t *r;
  add_row("u", "DISCONNECTED", "ca_1");
  add_row("v", "EXPIRED", "ca_1"); /* same account id under another user: not u's row */
  observe("u", "ACTIVE", NULL, 100, 0);
  r = row("u");
  assert_string_equal(json_string_value(json_object_get(r, "status")), "DISCONNECTED");
  assert_int_equal(json_integer_value(json_object_get(r, "version")), 1);
  json_decref(r);
  r = row("v");
  assert_string_equal(json_string_value(json_object_get(r, "status")), "EXPIRED");
  json_decref(r);
}

/* One truth for "may run tools": what is recorded of an account answers the same as the
 * account itself, and a stored row answers through the same function. */
static void test_record_and_authorized(void **state)
{
  struct {
    const char *status, *reason;
    int disabled, refresh;
    const char *want_status, *want_reason;
    int ok;
  } cases[] = {
      {"ACTIVE", NULL, 0, 0, "ACTIVE", NULL, 1},
      {"ACTIVE", "fine", 0, 0, "ACTIVE", "fine", 1},
      {"ACTIVE", NULL, 1, 0, "ACTIVE", TG_CHECK_DISABLED, 0},
      {"ACTIVE", "x", 0, 1, "ACTIVE", TG_CHECK_REFRESH, 0},
      {"ACTIVE", NULL, 1, 1, "ACTIVE", TG_CHECK_REFRESH, 0},
      {"EXPIRED", "gone", 0, 0, "EXPIRED", "gone", 0},
      {"INITIATED", NULL, 0, 0, "PENDING", NULL, 0},
      {"WEIRD", "r", 0, 0, NULL, "composio_status=WEIRD", 0},
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tg_composio_account a = {.id = "ca",
                             .status = cases[i].status,
                             .status_reason = cases[i].reason,
                             .is_disabled = cases[i].disabled,
                             .auth_refresh_required = cases[i].refresh};
    const char *st = "unset", *rec;
    char buf[64];
    rec = tg_check_record(&a, &st, buf, sizeof buf);
    if (cases[i].want_status)
      assert_string_equal(st, cases[i].want_status);
    else
      assert_null(st);
    if (cases[i].want_reason)
      assert_string_equal(rec, cases[i].want_reason);
    else
      assert_null(rec);
    assert_int_equal(tg_check_authorized(st, rec), cases[i].ok);
    /* the row later read back (an unknown status keeps the row's, here ACTIVE) */
    assert_int_equal(tg_check_authorized(st ? st : "ACTIVE", rec), cases[i].ok);
  }
  assert_int_equal(tg_check_authorized(NULL, NULL), 0);
  assert_int_equal(tg_check_authorized("DISCONNECTED", NULL), 0);
}

TG_UNIT_MAIN(cmocka_unit_test(test_record_and_authorized),
             cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
             cmocka_unit_test_setup_teardown(test_disconnected_and_other_users_untouched, setup,
                                             teardown))
