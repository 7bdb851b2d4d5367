/*
 * Unit tests for common/tg_pg_listen.c against a real PostgreSQL server (the ctest fixture's,
 * whose URI is in TOOLGATE_TEST_PG_URI; the test fails when it is missing rather than passing
 * without a server):
 * - ready, then NOTIFY from another connection reaches the callback with its payload, and a
 *   NOTIFY in a transaction that rolls back does not;
 * - the server ending the listening backend (pg_terminate_backend): the connection comes back by
 *   itself, the callback hears of it once (payload NULL), and notifications flow again;
 * - a server that is not there: no callback, no crash, retries, and close frees everything;
 * - a bad channel name is refused.
 * Every test ends with uv_loop_close() == 0. The notifying side uses blocking libpq (test code).
 */
#include "tg_unit.h"

#include "tg_err.h"
#include "tg_pg_listen.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

typedef struct env {
  uv_loop_t loop;
  uv_timer_t tick;
  tg_pg_listen *l;
  int readies;
  int notes;
  char last[64];
} env;

static const char *uri(void)
{
  const char *u = getenv("TOOLGATE_TEST_PG_URI");
  if (!u || !*u)
    fail_msg("TOOLGATE_TEST_PG_URI is not set (the ctest fixture pg/start provides it)");
  return u;
}

static void on_note(void *arg, const char *payload)
{
  env *e = arg;
  if (!payload) {
    e->readies++;
    return;
  }
  e->notes++;
  snprintf(e->last, sizeof e->last, "%s", payload);
}

static void on_tick(uv_timer_t *t)
{
  (void)t; /* wakes the loop so run_until can look at its condition */
}

/* Runs the loop until *counter reaches want or ms pass; returns 1 when reached. */
static int run_until(env *e, const int *counter, int want, int ms)
{
  uint64_t end = uv_now(&e->loop) + (uint64_t)ms;
  while (*counter < want && uv_now(&e->loop) < end)
    uv_run(&e->loop, UV_RUN_ONCE);
  return *counter >= want;
}

static void exec_sql(const char *sql)
{
  PGconn *c = PQconnectdb(uri());
  PGresult *r;
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  r = PQexec(c, sql);
  assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
  PQclear(r);
  PQfinish(c);
}

static void env_open(env *e, const char *u)
{
  memset(e, 0, sizeof *e);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  uv_timer_init(&e->loop, &e->tick);
  uv_timer_start(&e->tick, on_tick, 20, 20);
  assert_int_equal(tg_pg_listen_start(&e->l, &e->loop, u, "tg_unit_wake", on_note, e), 0);
}

static void env_close(env *e)
{
  tg_pg_listen_close(e->l);
  uv_close((uv_handle_t *)&e->tick, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void test_notify_reaches_the_callback(void **state)
{
  env e;
  (void)state;
  env_open(&e, uri());
  assert_true(run_until(&e, &e.readies, 1, 10000));
  assert_true(tg_pg_listen_ready(e.l));
  exec_sql("BEGIN; NOTIFY tg_unit_wake, 'never'; ROLLBACK");
  exec_sql("NOTIFY tg_unit_wake, 'run_1'");
  assert_true(run_until(&e, &e.notes, 1, 10000));
  assert_string_equal(e.last, "run_1"); /* the rolled-back one never came */
  exec_sql("SELECT pg_notify('tg_unit_wake', '')");
  assert_true(run_until(&e, &e.notes, 2, 10000));
  assert_string_equal(e.last, "");
  assert_int_equal(tg_pg_listen_count(e.l), 2);
  env_close(&e);
}

static void test_terminated_backend_comes_back(void **state)
{
  env e;
  (void)state;
  env_open(&e, uri());
  assert_true(run_until(&e, &e.readies, 1, 10000));
  exec_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
           "WHERE query LIKE 'LISTEN \"tg_unit_wake\"%' AND pid <> pg_backend_pid()");
  assert_true(run_until(&e, &e.readies, 2, 10000)); /* lost, reopened, told once */
  assert_int_equal(e.readies, 2);
  exec_sql("NOTIFY tg_unit_wake, 'after'");
  assert_true(run_until(&e, &e.notes, 1, 10000));
  assert_string_equal(e.last, "after");
  env_close(&e);
}

static void test_absent_server_retries_quietly(void **state)
{
  env e;
  int never = 0;
  (void)state;
  /* port 1 on loopback: refused at once, every attempt */
  env_open(&e, "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2");
  run_until(&e, &never, 1, 400); /* a few attempts at 100, 200 ms */
  assert_int_equal(e.readies + e.notes, 0);
  assert_false(tg_pg_listen_ready(e.l));
  env_close(&e);
}

static void test_bad_channel_is_refused(void **state)
{
  uv_loop_t loop;
  tg_pg_listen *l = (tg_pg_listen *)1;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(
      tg_pg_listen_start(&l, &loop, "postgresql://x@127.0.0.1/db", "runs; DROP", on_note, NULL),
      TG_EINVAL);
  assert_null(l);
  assert_int_equal(tg_pg_listen_start(&l, &loop, "postgresql://x@127.0.0.1/db", "", on_note, NULL),
                   TG_EINVAL);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_notify_reaches_the_callback),
      cmocka_unit_test(test_terminated_backend_comes_back),
      cmocka_unit_test(test_absent_server_retries_quietly),
      cmocka_unit_test(test_bad_channel_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
