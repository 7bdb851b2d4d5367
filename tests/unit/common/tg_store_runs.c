/*
 * Unit tests for common/tg_store_runs.c on a real SQLite file: admission and the idempotency
 * lookup; claim order, lease and reclaim of an expired lease; the fence (a write of an older
 * attempt or another worker matches nothing, a lost lease refunds nothing); release marks the
 * attempt's pending calls unknown; cancel and attention refund once, keeping users.credits equal
 * to the ledger sum; the retry mark is taken once; the reads admission uses; fair claiming
 * across users (fewest running, then least recently served; the per-user cap) with user_queue
 * equal to what workflow_runs says after every step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tg_db.h"
#include "tg_err.h"
#include "tg_store_credits.h"
#include "tg_store_runs.h"
#include "temp_db.h"

#include <stdlib.h>
#include <string.h>

static tg_db *db;

static int setup(void **state)
{
  (void)state;
  temp_db_open(&temp, "tg_store_runs",
               "INSERT INTO users (id, credits, created_at) VALUES ('u', 0, 0);"
               "INSERT INTO workflows (id, user_id, name, definition, created_at, updated_at) "
               "VALUES ('wf', 'u', 'w', '{\"nodes\": []}', 0, 0);"
               "INSERT INTO auth_configs (id, provider, toolkit_slug, display_name, created_at, "
               "updated_at) VALUES ('ac_g', 'gmail', 'gmail_kit', 'Gmail', 0, 0);"
               "INSERT INTO connected_accounts (user_id, provider, auth_config_id, status, "
               "composio_account_id, version, created_at, updated_at) VALUES ('u', 'gmail', "
               "'ac_g', 'ACTIVE', 'ca_1', 1, 0, 0);");
  db = temp.db;
  assert_int_equal(tg_db_exec(db, NULL, "UPDATE users SET credits = 10", ""), 0);
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO credit_ledger (user_id, delta, reason, created_at) "
                              "VALUES ('u', 10, 'grant', 0)",
                              ""),
                   0);
  return 0;
}

static long long scalar(const char *sql, const char *arg)
{
  int err;
  json_t *row = tg_db_query_one(db, &err, sql, "s", arg);
  long long v;
  assert_non_null(row);
  v = (long long)json_integer_value(json_object_get(row, "v"));
  json_decref(row);
  return v;
}

static const char *status_of(const char *run_id)
{
  static char buf[32];
  int err;
  json_t *row = tg_store_runs_get(db, &err, run_id, "u");
  assert_non_null(row);
  snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(row, "status")));
  json_decref(row);
  return buf;
}

/* users.credits of u, asserted equal to the sum of u's ledger. */
static long long credits(void)
{
  int64_t c = -1;
  assert_int_equal(tg_store_credits_balance(db, "u", &c), 0);
  assert_int_equal(scalar("SELECT sum(delta) AS v FROM credit_ledger WHERE user_id = ?", "u"), c);
  return c;
}

/* Admits run_id (cost 2) as admission does: debit and insert in one transaction. */
static void admit(const char *run_id, const char *idem, int64_t now)
{
  int64_t c;
  json_t *in = json_object(), *meta = json_object();
  assert_int_equal(tg_db_begin(db, 1), 0);
  assert_int_equal(tg_store_credits_debit(db, "u", run_id, 2, now, &c), 1);
  assert_int_equal(tg_store_runs_insert(db, &(tg_run_new){.run_id = run_id,
                                                          .workflow_id = "wf",
                                                          .user_id = "u",
                                                          .inputs = in,
                                                          .metadata = meta,
                                                          .idempotency_key = idem,
                                                          .request_hash = "h",
                                                          .cost = 2,
                                                          .now_ms = now}),
                   0);
  assert_int_equal(tg_db_commit(db), 0);
  json_decref(in);
  json_decref(meta);
}

/* Claims for worker at now (lease 1000 ms, per-user cap user_cap); returns the run id claimed
 * (static) or NULL. */
static const char *claim_capped(const char *worker, int64_t now, int64_t user_cap, int64_t *attempt)
{
  static char id[64];
  json_t *run = NULL;
  assert_int_equal(tg_store_runs_claim(db, worker, now, 1000, user_cap, &run), 0);
  if (!run)
    return NULL;
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(run, "id")));
  *attempt = json_integer_value(json_object_get(run, "attempt"));
  assert_int_equal(json_integer_value(json_object_get(run, "cost")), 2);
  assert_true(json_is_object(json_object_get(run, "inputs")));
  json_decref(run);
  return id;
}

static const char *claim(const char *worker, int64_t now, int64_t *attempt)
{
  return claim_capped(worker, now, 0, attempt);
}

static void test_admit_and_idempotency(void **state)
{
  int err = 0;
  json_t *row;
  (void)state;
  admit("run_1", "key", 100);
  assert_int_equal(credits(), 8);
  row = tg_store_runs_find_idem(db, &err, "u", "key");
  assert_non_null(row);
  assert_string_equal(json_string_value(json_object_get(row, "id")), "run_1");
  assert_string_equal(json_string_value(json_object_get(row, "status")), "queued");
  json_decref(row);
  assert_null(tg_store_runs_find_idem(db, &err, "u", "other"));
  assert_int_equal(err, TG_ENOTFOUND);
  assert_null(tg_store_runs_get(db, &err, "run_1", "someone else"));
  assert_int_equal(err, TG_ENOTFOUND);
}

static void test_claim_lease_and_fence(void **state)
{
  int64_t a1 = 0, a2 = 0, a;
  int changes = -1, cancel = -1;
  const char *id;
  (void)state;
  admit("run_1", NULL, 100);
  admit("run_2", NULL, 200);
  assert_null(claim("w1", 50, &a)); /* nothing available yet */
  id = claim("w1", 1000, &a1);
  assert_string_equal(id, "run_1"); /* available earliest first */
  assert_int_equal(a1, 1);
  assert_string_equal(claim("w1", 1000, &a), "run_2");
  assert_null(claim("w1", 1000, &a));
  /* Heartbeat under the lease: extended. */
  tg_run_lease l1 = {.run_id = "run_1", .worker_id = "w1", .attempt = a1};
  assert_int_equal(tg_store_runs_heartbeat(db, &l1, 2500, &changes, &cancel), 0);
  assert_int_equal(changes, 1);
  assert_int_equal(cancel, 0);
  /* The lease expires (2500 < 3000): another worker reclaims it, attempt 2, run_2 stays. */
  assert_string_equal(claim("w2", 3000, &a2), "run_2"); /* run_2's lease (2000) expired first */
  assert_string_equal(claim("w2", 3000, &a2), "run_1");
  assert_int_equal(a2, 2);
  /* w1's writes match nothing now: heartbeat, finish, tool start, attention, release. */
  assert_int_equal(tg_store_runs_heartbeat(db, &l1, 9000, &changes, &cancel), 0);
  assert_int_equal(changes, 0);
  assert_int_equal(tg_store_runs_finish(db, &l1, "succeeded", NULL, NULL, NULL, 3100, &changes), 0);
  assert_int_equal(changes, 0);
  int64_t exec_id = -1;
  int inserted = -1;
  assert_int_equal(tg_store_runs_tool_start(db, &l1, "n1", "gmail", "SEND", NULL, NULL, 3100,
                                            &exec_id, &inserted),
                   0);
  assert_int_equal(inserted, 0);
  assert_int_equal(tg_store_runs_attention(db, &l1, "u", 2, NULL, NULL, "x", 3100, &changes), 0);
  assert_int_equal(changes, 0);
  assert_int_equal(tg_store_runs_release(db, &l1, 3100, 3100, &changes), 0);
  assert_int_equal(changes, 0);
  assert_string_equal(status_of("run_1"), "running");
  assert_int_equal(credits(), 6); /* a lost lease refunds nothing */
  /* w2 holds it: finish writes, once; an unknown end status is refused. */
  tg_run_lease l2 = {.run_id = "run_1", .worker_id = "w2", .attempt = a2};
  assert_int_equal(tg_store_runs_finish(db, &l2, "queued", NULL, NULL, NULL, 3200, &changes),
                   TG_EINVAL);
  json_t *out = json_pack("{s:i}", "ok", 1);
  assert_int_equal(tg_store_runs_finish(db, &l2, "succeeded", out, NULL, NULL, 3200, &changes), 0);
  json_decref(out);
  assert_int_equal(changes, 1);
  assert_string_equal(status_of("run_1"), "succeeded");
  assert_int_equal(tg_store_runs_finish(db, &l2, "failed", NULL, "e", NULL, 3300, &changes), 0);
  assert_int_equal(changes, 0);
  assert_string_equal(status_of("run_1"), "succeeded");
}

static void test_tool_executions_and_release(void **state)
{
  int64_t a = 0, exec_id = 0, exec2 = 0;
  int inserted = 0, changes = -1;
  int err = 0;
  json_t *rows, *args = json_pack("{s:s}", "to", "x");
  (void)state;
  admit("run_1", NULL, 100);
  assert_non_null(claim("w1", 1000, &a));
  tg_run_lease l = {.run_id = "run_1", .worker_id = "w1", .attempt = a};
  assert_int_equal(tg_store_runs_tool_start(db, &l, "n1", "gmail", "SEND", NULL, args, 1100,
                                            &exec_id, &inserted),
                   0);
  assert_int_equal(inserted, 1);
  assert_int_equal(tg_store_runs_tool_finish(
                       db, &l, exec_id, &(tg_tool_result){.status = "success", .duration_ms = 5},
                       1105, &changes),
                   0);
  assert_int_equal(changes, 1);
  assert_int_equal(
      tg_store_runs_tool_start(db, &l, "n2", NULL, "ECHO", NULL, NULL, 1200, &exec2, &inserted), 0);
  json_decref(args);
  args = NULL;
  /* Released with the second call in flight: it becomes unknown, the first stays. */
  assert_int_equal(tg_store_runs_release(db, &l, 5000, 1300, &changes), 0);
  assert_int_equal(changes, 1);
  assert_string_equal(status_of("run_1"), "queued");
  rows = tg_store_runs_tool_executions(db, &err, "run_1");
  assert_int_equal(json_array_size(rows), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "status")),
                      "success");
  assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "status")),
                      "unknown");
  args = json_object_get(json_array_get(rows, 0), "arguments");
  assert_string_equal(json_string_value(json_object_get(args, "to")), "x");
  json_decref(rows);
  /* The completion of the released attempt's call is fenced out. */
  assert_int_equal(tg_store_runs_tool_finish(db, &l, exec2, &(tg_tool_result){.status = "success"},
                                             1400, &changes),
                   0);
  assert_int_equal(changes, 0);
  /* Not claimable before available_at. */
  assert_null(claim("w1", 4999, &a));
  assert_non_null(claim("w1", 5000, &a));
  assert_int_equal(a, 2);
}

static void test_cancel_refunds_once(void **state)
{
  tg_run_cancel c;
  int64_t a = 0;
  int changes = -1, cancel = -1;
  (void)state;
  admit("run_1", NULL, 100);
  admit("run_2", NULL, 100);
  admit("run_3", NULL, 100);
  assert_int_equal(credits(), 4);
  /* queued -> canceled, refunded; again: canceled, nothing more. */
  assert_int_equal(tg_store_runs_cancel(db, "run_1", "u", 200, &c), 0);
  assert_int_equal(c.outcome, TG_RUN_CANCELED);
  assert_int_equal(c.refunded, 2);
  assert_int_equal(credits(), 6);
  assert_int_equal(tg_store_runs_cancel(db, "run_1", "u", 300, &c), 0);
  assert_int_equal(c.outcome, TG_RUN_CANCELED);
  assert_int_equal(c.refunded, 0);
  assert_int_equal(credits(), 6);
  assert_string_equal(status_of("run_1"), "canceled");
  /* running -> cancel requested, seen by the heartbeat; no refund. */
  assert_string_equal(claim("w", 1000, &a), "run_2");
  assert_int_equal(tg_store_runs_cancel(db, "run_2", "u", 1100, &c), 0);
  assert_int_equal(c.outcome, TG_RUN_CANCEL_REQUESTED);
  assert_int_equal(tg_store_runs_cancel_requested(db, "run_2"), 1);
  assert_int_equal(tg_store_runs_cancel_requested(db, "run_3"), 0);
  tg_run_lease l = {.run_id = "run_2", .worker_id = "w", .attempt = a};
  assert_int_equal(tg_store_runs_heartbeat(db, &l, 2000, &changes, &cancel), 0);
  assert_int_equal(cancel, 1);
  assert_int_equal(
      tg_store_runs_finish(db, &l, "canceled", NULL, "canceled on request", NULL, 1200, &changes),
      0);
  assert_int_equal(credits(), 6);
  /* Canceled by the worker: the same answer again, no refund; missing or another user's: not
   * found. */
  assert_int_equal(tg_store_runs_cancel(db, "run_2", "u", 1300, &c), 0);
  assert_int_equal(c.outcome, TG_RUN_CANCELED);
  assert_int_equal(c.refunded, 0);
  assert_int_equal(credits(), 6);
  assert_int_equal(tg_store_runs_cancel(db, "nope", "u", 1300, &c), TG_ENOTFOUND);
  assert_int_equal(tg_store_runs_cancel(db, "run_3", "v", 1300, &c), TG_ENOTFOUND);
}

static void test_attention_refunds_and_retry_once(void **state)
{
  int64_t a = 0;
  int changes = -1, err = 0;
  json_t *p = json_pack("[s]", "gmail"), *r = json_pack("{s:s}", "gmail", "EXPIRED"), *run;
  tg_run_cancel c;
  (void)state;
  admit("run_1", NULL, 100);
  assert_non_null(claim("w", 1000, &a));
  tg_run_lease l = {.run_id = "run_1", .worker_id = "w", .attempt = a};
  assert_int_equal(tg_store_runs_attention(db, &l, "u", 2, p, r, "reauth", 1100, &changes), 0);
  json_decref(p);
  json_decref(r);
  assert_int_equal(changes, 1);
  assert_int_equal(credits(), 10);
  run = tg_store_runs_get(db, &err, "run_1", "u");
  assert_string_equal(json_string_value(json_object_get(run, "status")), "attention");
  assert_string_equal(json_string_value(json_object_get(json_object_get(run, "metadata"), "error")),
                      "oauth_refresh_required");
  json_decref(run);
  /* attention is final for the worker and for cancel. */
  assert_int_equal(tg_store_runs_cancel(db, "run_1", "u", 1200, &c), 0);
  assert_int_equal(c.outcome, TG_RUN_NOT_CANCELABLE);
  assert_string_equal(c.status, "attention");
  assert_true(tg_store_runs_retryable("attention"));
  assert_true(tg_store_runs_retryable("failed"));
  assert_false(tg_store_runs_retryable("succeeded"));
  assert_false(tg_store_runs_retryable(NULL));
  assert_int_equal(tg_store_runs_mark_retried(db, "run_1", "u", "run_9", &changes), 0);
  assert_int_equal(changes, 1);
  assert_int_equal(tg_store_runs_mark_retried(db, "run_1", "u", "run_10", &changes), 0);
  assert_int_equal(changes, 0);
  run = tg_store_runs_get(db, &err, "run_1", "u");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(run, "metadata"), "retried_by")), "run_9");
  json_decref(run);
}

static void test_reads(void **state)
{
  char *text = NULL;
  size_t len = 0, n = 0;
  tg_check_row *rows = NULL;
  int err = 0;
  json_t *v;
  (void)state;
  assert_int_equal(tg_store_runs_read_definition(db, "wf", "u", &text, &len), 0);
  assert_string_equal(text, "{\"nodes\": []}");
  assert_int_equal(len, strlen(text));
  free(text);
  assert_int_equal(tg_store_runs_read_definition(db, "wf", "v", &text, &len), 0);
  assert_null(text);
  v = tg_store_runs_read_definition_json(db, &err, "wf");
  assert_true(json_is_array(json_object_get(v, "nodes")));
  json_decref(v);
  assert_null(tg_store_runs_read_definition_json(db, &err, "nope"));
  assert_int_equal(err, TG_ENOTFOUND);
  assert_int_equal(tg_store_runs_read_check_rows(db, "u", &rows, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(rows[0].provider, "gmail");
  assert_string_equal(rows[0].status, "ACTIVE");
  assert_string_equal(rows[0].composio_account_id, "ca_1");
  assert_string_equal(rows[0].toolkit_slug, "gmail_kit");
  tg_store_runs_check_rows_free(rows, n);
  assert_int_equal(tg_store_runs_read_check_rows(db, "v", &rows, &n), 0);
  assert_int_equal(n, 0);
  assert_null(rows);
  v = tg_store_runs_read_accounts(db, &err, "u");
  assert_int_equal(json_array_size(v), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "toolkit_slug")),
                      "gmail_kit");
  json_decref(v);
  admit("run_1", NULL, 100);
  admit("run_2", NULL, 200);
  v = tg_store_runs_list(db, &err, &(tg_run_filter){.user_id = "u", .limit = 10});
  assert_int_equal(json_array_size(v), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "id")), "run_2");
  json_decref(v);
  v = tg_store_runs_list(
      db, &err,
      &(tg_run_filter){.user_id = "u", .after_id = "run_2", .after_at = 200, .limit = 10});
  assert_int_equal(json_array_size(v), 1);
  json_decref(v);
}

/* user_queue as workflow_runs derives it: no row differs (running, head_at). */
static void assert_user_queue_exact(void)
{
  assert_int_equal(
      scalar("SELECT count(*) AS v FROM (SELECT user_id, running, head_at FROM user_queue "
             "WHERE running > 0 OR head_at IS NOT NULL EXCEPT SELECT user_id, "
             "sum(status = 'running'), min(CASE WHEN status = 'queued' THEN available_at END) "
             "FROM workflow_runs WHERE status = 'queued' OR status = 'running' GROUP BY user_id) "
             "WHERE ?1 IS NOT NULL",
             "x"),
      0);
  assert_int_equal(scalar("SELECT count(*) AS v FROM (SELECT DISTINCT user_id FROM workflow_runs "
                          "WHERE status = 'queued' OR status = 'running' EXCEPT SELECT user_id "
                          "FROM user_queue) WHERE ?1 IS NOT NULL",
                          "x"),
                   0);
}

static void test_claim_fair_across_users(void **state)
{
  int64_t a;
  int changes = -1;
  tg_run_cancel cx;
  json_t *none = json_object();
  (void)state;
  assert_int_equal(
      tg_db_exec(db, NULL, "INSERT INTO users (id, credits, created_at) VALUES ('v', 10, 0)", ""),
      0);
  assert_int_equal(tg_db_exec(db, NULL,
                              "INSERT INTO workflows (id, user_id, name, definition, created_at, "
                              "updated_at) VALUES ('wf_v', 'v', 'w', '{}', 0, 0)",
                              ""),
                   0);
  admit("run_u1", NULL, 100);
  admit("run_u2", NULL, 110);
  admit("run_u3", NULL, 120);
  admit("run_u4", NULL, 130);
  assert_int_equal(tg_store_runs_insert(db, &(tg_run_new){.run_id = "run_v1",
                                                          .workflow_id = "wf_v",
                                                          .user_id = "v",
                                                          .inputs = none,
                                                          .metadata = none,
                                                          .request_hash = "h",
                                                          .cost = 2,
                                                          .now_ms = 500}),
                   0);
  assert_user_queue_exact();
  /* u has waited longest; then v, which has fewer running than u, although u's runs are older. */
  assert_string_equal(claim("w", 1000, &a), "run_u1");
  assert_string_equal(claim("w", 1000, &a), "run_v1");
  assert_string_equal(claim("w", 1000, &a), "run_u2");
  assert_user_queue_exact();
  /* A cap of 2 running per user: u is at it, v has nothing queued. */
  assert_null(claim_capped("w", 1000, 2, &a));
  /* u's first run ends: u is below the cap again. */
  tg_run_lease l = {.run_id = "run_u1", .worker_id = "w", .attempt = 1};
  assert_int_equal(tg_store_runs_finish(db, &l, "succeeded", NULL, NULL, NULL, 1100, &changes), 0);
  assert_int_equal(changes, 1);
  assert_user_queue_exact();
  assert_string_equal(claim_capped("w", 1100, 2, &a), "run_u3");
  assert_null(claim_capped("w", 1100, 2, &a));
  /* A released run waits until its available_at; a canceled one leaves the queue. */
  l = (tg_run_lease){.run_id = "run_u3", .worker_id = "w", .attempt = 1};
  assert_int_equal(tg_store_runs_release(db, &l, 5000, 1200, &changes), 0);
  assert_int_equal(tg_store_runs_cancel(db, "run_u4", "u", 1200, &cx), 0);
  l = (tg_run_lease){.run_id = "run_u2", .worker_id = "w", .attempt = 1};
  assert_int_equal(tg_store_runs_finish(db, &l, "failed", NULL, "e", NULL, 1200, &changes), 0);
  l = (tg_run_lease){.run_id = "run_v1", .worker_id = "w", .attempt = 1};
  assert_int_equal(tg_store_runs_finish(db, &l, "succeeded", NULL, NULL, NULL, 1200, &changes), 0);
  assert_user_queue_exact();
  assert_null(claim("w", 1300, &a));
  assert_string_equal(claim("w", 5000, &a), "run_u3");
  assert_null(claim("w", 5000, &a));
  assert_user_queue_exact();
  json_decref(none);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, temp_db_teardown)

int main(void)
{
  const struct CMUnitTest tests[] = {T(test_admit_and_idempotency),
                                     T(test_claim_lease_and_fence),
                                     T(test_tool_executions_and_release),
                                     T(test_cancel_refunds_once),
                                     T(test_attention_refunds_and_retry_once),
                                     T(test_reads),
                                     T(test_claim_fair_across_users)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
