/*
 * Unit tests for common/tg_sandbox.c, against the real bubblewrap and /usr/bin/python3 (the
 * machine set-up installs both, and python3-numpy): the names the runner returns (inputs,
 * reassigned inputs, modules, functions, "_" names, config outputs), numpy conversion, stdout and
 * the traceback, each failure class (code_error, timeout, memory_exceeded, output_exceeded,
 * sandbox_unavailable), a fork bomb contained, what the child sees of the host, cancel, and the
 * probe of importable modules; the pool of spares: a job served by a spare, the spare replaced
 * after use (nothing of the first job seen by the second), a job with other limits spawned
 * fresh, a spare that died replaced, close with a spare waiting. Every test ends with
 * uv_loop_close() == 0.
 *
 * `unit_common_tg_sandbox --bench N` instead times N executions of print(1) on a fresh sandbox,
 * N on a pool's spare and N plain `python3 -c 'print(1)'` spawns, and prints p50 and p99 of each
 * (bench/code/run.sh).
 */
#include "tg_unit.h"

#include "tg_err.h"
#include "tg_sandbox.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define PY "/usr/bin/python3"

typedef struct outcome {
  int calls;
  const char *error_class;
  char message[512];
  char *out, *err;
  json_t *result;
  double wall_ms;
  int from_spare;
} outcome;

static void on_done(void *arg, tg_sandbox_result *res)
{
  outcome *o = arg;
  o->calls++;
  o->error_class = res->error_class;
  snprintf(o->message, sizeof o->message, "%s", res->message);
  o->out = res->stdout_text;
  o->err = res->stderr_text;
  o->result = res->result;
  o->wall_ms = res->wall_ms;
  o->from_spare = res->from_spare;
  res->stdout_text = res->stderr_text = NULL;
  res->result = NULL;
}

static void outcome_free(outcome *o)
{
  free(o->out);
  free(o->err);
  json_decref(o->result);
}

static tg_sandbox_limits limits(void)
{
  tg_sandbox_limits lim = {
      .python = PY, .timeout_s = 20, .memory_mb = 512, .max_output = 1 << 20, .max_procs = 16};
  return lim;
}

/* Runs code with inputs / outputs (JSON texts or NULL) to its end on a loop of its own. */
static void run(const tg_sandbox_limits *lim, const char *code, const char *inputs,
                const char *outputs, int64_t timeout_s, int64_t memory_mb, outcome *o)
{
  uv_loop_t loop;
  json_t *in = inputs ? json_loads(inputs, 0, NULL) : NULL;
  json_t *outs = outputs ? json_loads(outputs, 0, NULL) : NULL;
  tg_sandbox_job job = {.language = "python",
                        .code = code,
                        .inputs = in,
                        .outputs = outs,
                        .timeout_s = timeout_s,
                        .memory_mb = memory_mb};
  memset(o, 0, sizeof *o);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tg_sandbox_run(&loop, lim, &job, on_done, o, NULL), 0);
  json_decref(in);
  json_decref(outs);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(o->calls, 1);
}

/* Runs code and expects it to fail with cls and a message containing part (or NULL). */
static void expect_error(const tg_sandbox_limits *lim, const char *code, const char *outputs,
                         int64_t timeout_s, int64_t memory_mb, const char *cls, const char *part)
{
  outcome o;
  run(lim, code, NULL, outputs, timeout_s, memory_mb, &o);
  if (!o.error_class || strcmp(o.error_class, cls) != 0 || (part && !strstr(o.message, part)))
    fail_msg("expected %s (%s), got %s: %s", cls, part ? part : "", o.error_class ?: "success",
             o.message);
  assert_null(o.result);
  outcome_free(&o);
}

static void expect_ok(const outcome *o)
{
  if (o->error_class)
    fail_msg("%s: %s\nstderr: %s", o->error_class, o->message, o->err ? o->err : "");
}

static void test_names(void **state)
{
  tg_sandbox_limits lim = limits();
  outcome o;
  (void)state;
  run(&lim,
      "import json\n"
      "a = 1\nb = 'two'\nc = [1, {'x': None}]\n_hidden = 3\n"
      "def f():\n  return 1\n"
      "class K:\n  pass\n"
      "k = K()\n"
      "win_probability = win_probability + 1\n"
      "s = {3, 1}\n"
      "print('hello', a)\n",
      "{\"win_probability\": 41, \"untouched\": [1, 2], \"_x\": 1}", NULL, 0, 0, &o);
  expect_ok(&o);
  assert_string_equal(o.out, "hello 1\n");
  assert_int_equal(json_integer_value(json_object_get(o.result, "a")), 1);
  assert_string_equal(json_string_value(json_object_get(o.result, "b")), "two");
  assert_true(json_is_array(json_object_get(o.result, "c")));
  assert_int_equal(json_integer_value(json_object_get(o.result, "win_probability")), 42);
  assert_true(json_is_array(json_object_get(o.result, "s"))); /* a set becomes a sorted list */
  assert_null(json_object_get(o.result, "untouched"));        /* an input, not rebound */
  assert_null(json_object_get(o.result, "_hidden"));
  assert_null(json_object_get(o.result, "f"));
  assert_null(json_object_get(o.result, "K"));
  assert_null(json_object_get(o.result, "k")); /* not serialisable */
  assert_null(json_object_get(o.result, "json"));
  assert_null(json_object_get(o.result, "_x"));
  outcome_free(&o);
}

static void test_outputs_and_numpy(void **state)
{
  tg_sandbox_limits lim = limits();
  outcome o;
  (void)state;
  run(&lim,
      "import numpy as np\n"
      "arr = np.arange(3) * 2\nm = np.float64(2.5)\nn = np.int64(7)\nnested = {'v': np.ones(2)}\n"
      "nan = float('nan')\n",
      NULL, NULL, 0, 0, &o);
  expect_ok(&o);
  assert_int_equal(json_array_size(json_object_get(o.result, "arr")), 3);
  assert_int_equal(json_integer_value(json_array_get(json_object_get(o.result, "arr"), 2)), 4);
  assert_true(json_real_value(json_object_get(o.result, "m")) == 2.5);
  assert_int_equal(json_integer_value(json_object_get(o.result, "n")), 7);
  assert_true(json_is_array(json_object_get(json_object_get(o.result, "nested"), "v")));
  assert_null(json_object_get(o.result, "nan"));
  assert_null(json_object_get(o.result, "np"));
  outcome_free(&o);

  run(&lim, "a = 1\nb = 2\n", NULL, "[\"b\"]", 0, 0, &o);
  expect_ok(&o);
  assert_int_equal(json_object_size(o.result), 1);
  assert_int_equal(json_integer_value(json_object_get(o.result, "b")), 2);
  outcome_free(&o);

  expect_error(&lim, "a = 1\n", "[\"zz\"]", 0, 0, "code_error", "zz");
}

static void test_code_error(void **state)
{
  tg_sandbox_limits lim = limits();
  outcome o;
  (void)state;
  run(&lim, "print('before')\nx = 1 / 0\n", NULL, NULL, 0, 0, &o);
  assert_string_equal(o.error_class, "code_error");
  assert_string_equal(o.message, "ZeroDivisionError: division by zero");
  assert_string_equal(o.out, "before\n");
  assert_non_null(strstr(o.err, "File \"<code>\", line 2"));
  assert_null(strstr(o.err, "_main")); /* the runner's own frame is not shown */
  assert_null(o.result);
  outcome_free(&o);

  expect_error(&lim, "import sys\nsys.exit(4)\n", NULL, 0, 0, "code_error", "4");
  expect_error(&lim, "import nosuchmodule_xyz\n", NULL, 0, 0, "code_error", "nosuchmodule_xyz");
}

static void test_limits(void **state)
{
  tg_sandbox_limits lim = limits();
  outcome o;
  (void)state;
  run(&lim, "while True:\n  pass\n", NULL, NULL, 1, 0, &o);
  assert_string_equal(o.error_class, "timeout");
  assert_true(o.wall_ms < 5000);
  outcome_free(&o);

  expect_error(&lim, "x = bytearray(1 << 30)\n", NULL, 0, 128, "memory_exceeded", "128 MiB");
  expect_error(&lim, "l = []\nwhile True:\n  l.append(' ' * 1000000)\n", NULL, 0, 128,
               "memory_exceeded", NULL);

  lim.max_output = 65536;
  run(&lim, "import sys\nwhile True:\n  sys.stdout.write('x' * 4096)\n", NULL, NULL, 0, 0, &o);
  assert_string_equal(o.error_class, "output_exceeded");
  assert_true(strlen(o.out) <= 65536);
  outcome_free(&o);

  /* Past the cap through the result descriptor. */
  expect_error(&lim, "big = 'y' * 200000\n", NULL, 0, 0, "output_exceeded", NULL);
}

static void test_fork_bomb(void **state)
{
  tg_sandbox_limits lim = limits();
  outcome o;
  (void)state;
  lim.max_procs = 8;
  run(&lim,
      "import os\nfails = 0\n"
      "while True:\n"
      "  try:\n"
      "    os.fork()\n"
      "  except OSError:\n"
      "    fails += 1\n",
      NULL, NULL, 2, 0, &o);
  assert_string_equal(o.error_class, "timeout");
  assert_true(o.wall_ms < 6000);
  outcome_free(&o);

  /* The limit is per execution: a second one right after forks as many. */
  run(&lim,
      "import os, time\nn = 0\n"
      "try:\n"
      "  for i in range(20):\n"
      "    if os.fork() == 0:\n"
      "      time.sleep(5)\n"
      "      os._exit(0)\n"
      "    n += 1\n"
      "except OSError:\n"
      "  pass\n",
      NULL, "[\"n\"]", 0, 0, &o);
  expect_ok(&o);
  assert_int_equal(json_integer_value(json_object_get(o.result, "n")), 7); /* 8 - the runner */
  assert_true(o.wall_ms < 4000); /* the children died with the PID namespace */
  outcome_free(&o);
}

static void expect_json(const json_t *v, const char *text)
{
  char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  assert_non_null(got);
  if (strcmp(got, text) != 0)
    fail_msg("%s != %s", got, text);
  free(got);
}

static void test_isolation(void **state)
{
  tg_sandbox_limits lim = limits();
  outcome o;
  (void)state;
  run(&lim,
      "import os, socket\n"
      "root = sorted(os.listdir('/'))\n"
      "uid = os.getuid()\n"
      "env = sorted(os.environ)\n"
      "procs = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
      "try:\n"
      "  socket.create_connection(('1.1.1.1', 80), timeout=2)\n"
      "  net = 'open'\n"
      "except OSError as e:\n"
      "  net = type(e).__name__\n"
      "try:\n"
      "  open('/usr/x', 'w')\n"
      "  usr = 'written'\n"
      "except OSError as e:\n"
      "  usr = type(e).__name__\n"
      "open('/tmp/ok', 'w').write('fine')\n",
      NULL, NULL, 0, 0, &o);
  expect_ok(&o);
  expect_json(json_object_get(o.result, "root"),
              "[\"bin\",\"dev\",\"etc\",\"lib\",\"lib64\",\"proc\",\"sbin\",\"tmp\",\"usr\"]");
  expect_json(json_object_get(o.result, "env"), "[\"HOME\",\"LANG\",\"PATH\",\"PWD\"]");
  assert_int_not_equal(json_integer_value(json_object_get(o.result, "uid")), 0);
  assert_true(json_array_size(json_object_get(o.result, "procs")) <= 3);
  assert_string_not_equal(json_string_value(json_object_get(o.result, "net")), "open");
  assert_string_not_equal(json_string_value(json_object_get(o.result, "usr")), "written");
  outcome_free(&o);
}

static void test_unavailable(void **state)
{
  tg_sandbox_limits lim = limits();
  outcome o;
  uv_loop_t loop;
  tg_sandbox_job job = {.language = "cobol", .code = "x"};
  (void)state;
  lim.python = "/nonexistent/python3";
  expect_error(&lim, "a = 1\n", NULL, 0, 0, "sandbox_unavailable", NULL);

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tg_sandbox_run(&loop, &lim, &job, on_done, &o, NULL), TG_EINVAL);
  job.language = "python";
  job.code = NULL;
  assert_int_equal(tg_sandbox_run(&loop, &lim, &job, on_done, &o, NULL), TG_EINVAL);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_cancel_timer(uv_timer_t *t)
{
  tg_sandbox_cancel(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void **state)
{
  tg_sandbox_limits lim = limits();
  outcome o = {0};
  uv_loop_t loop;
  uv_timer_t t;
  tg_sandbox_exec *e = NULL;
  tg_sandbox_job job = {.language = "python", .code = "while True:\n  pass\n"};
  uint64_t t0;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tg_sandbox_run(&loop, &lim, &job, on_done, &o, &e), 0);
  assert_non_null(e);
  uv_timer_init(&loop, &t);
  t.data = e;
  uv_timer_start(&t, on_cancel_timer, 300, 0);
  t0 = uv_hrtime();
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(o.calls, 0);
  assert_true((uv_hrtime() - t0) / 1000000 < 3000);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static int probe_err = 1;

static void on_probe(void *arg, int err)
{
  probe_err = err;
}

static void test_probe(void **state)
{
  uv_loop_t loop;
  char missing[64] = "";
  json_t *ok = json_pack("[s, s, s]", "numpy", "json", "os.path");
  json_t *bad = json_pack("[s, s]", "numpy", "surely_not_installed_pkg");
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tg_sandbox_packages_available(ok, missing, sizeof missing), -1);
  assert_int_equal(tg_sandbox_probe_packages(&loop, PY, on_probe, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(probe_err, 0);
  assert_int_equal(tg_sandbox_packages_available(ok, missing, sizeof missing), 1);
  assert_int_equal(tg_sandbox_packages_available(bad, missing, sizeof missing), 0);
  assert_string_equal(missing, "surely_not_installed_pkg");
  assert_int_equal(uv_loop_close(&loop), 0);
  json_decref(ok);
  json_decref(bad);
}

/* ---- the pool of spares ---- */

static void on_tick(uv_timer_t *t)
{
  *(int *)t->data = 1;
  uv_stop(t->loop);
}

/* Runs loop for ms milliseconds (the pool's spares keep it alive, so UV_RUN_DEFAULT alone would
 * not return; UV_RUN_ONCE runs due timers before it polls, so a loop of it can block for good
 * once the last timer fired). */
static void spin(uv_loop_t *loop, uint64_t ms)
{
  uv_timer_t t;
  int fired = 0;
  uv_timer_init(loop, &t);
  t.data = &fired;
  uv_timer_start(&t, on_tick, ms, 0);
  while (!fired)
    uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

/* Waits (at most 30 s) until the pool has spawned `spawned` spares and one is ready. */
static void wait_ready(uv_loop_t *loop, tg_sandbox_pool *p, uint64_t spawned)
{
  tg_sandbox_pool_stats st;
  for (int i = 0; i < 3000; i++) {
    tg_sandbox_pool_stats_get(p, &st);
    if (st.ready == 1 && st.spawned == spawned)
      return;
    spin(loop, 10);
  }
  fail_msg("no spare: ready %d, spawned %llu", st.ready, (unsigned long long)st.spawned);
}

/* Runs a job through the pool to its done. */
static void pool_job(uv_loop_t *loop, tg_sandbox_pool *p, const char *code, int64_t timeout_s,
                     int64_t memory_mb, outcome *o)
{
  tg_sandbox_job job = {
      .language = "python", .code = code, .timeout_s = timeout_s, .memory_mb = memory_mb};
  memset(o, 0, sizeof *o);
  assert_int_equal(tg_sandbox_pool_run(p, &job, on_done, o, NULL), 0);
  while (o->calls == 0)
    spin(loop, 5);
  assert_int_equal(o->calls, 1);
}

/* Runs a job through the pool that must succeed, from a spare or not as from_spare says. */
static void pool_ok(uv_loop_t *loop, tg_sandbox_pool *p, const char *code, int64_t timeout_s,
                    int64_t memory_mb, int from_spare)
{
  outcome o;
  pool_job(loop, p, code, timeout_s, memory_mb, &o);
  expect_ok(&o);
  assert_int_equal(o.from_spare, from_spare);
  outcome_free(&o);
}

/* Initialises loop and opens a pool on it keeping spares. */
static tg_sandbox_pool *open_pool(uv_loop_t *loop, const tg_sandbox_limits *lim, int spares)
{
  tg_sandbox_pool *p = NULL;
  assert_int_equal(uv_loop_init(loop), 0);
  assert_int_equal(tg_sandbox_pool_new(&p, loop, lim, spares), 0);
  return p;
}

static void on_pool_closed(void *arg)
{
  (*(int *)arg)++;
}

static void close_pool(uv_loop_t *loop, tg_sandbox_pool *p)
{
  int closed = 0;
  tg_sandbox_pool_close(p, on_pool_closed, &closed);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
  assert_int_equal(uv_loop_close(loop), 0);
}

/* The pids of this process's children (bwrap of each spare), at most n. */
static int children(int *pids, int n)
{
  DIR *d = opendir("/proc");
  struct dirent *de;
  int k = 0;
  assert_non_null(d);
  while ((de = readdir(d)) && k < n) {
    char path[300], buf[512], *rp;
    FILE *f;
    int ppid;
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
    if (!(f = fopen(path, "r")))
      continue;
    buf[0] = 0;
    if (!fgets(buf, sizeof buf, f))
      buf[0] = 0;
    fclose(f);
    /* pid (comm) state ppid: comm may hold spaces and parentheses, so from the last ')' */
    if ((rp = strrchr(buf, ')')) && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == getpid())
      pids[k++] = atoi(de->d_name);
  }
  closedir(d);
  return k;
}

static void test_pool_spare(void **state)
{
  tg_sandbox_limits lim = limits();
  tg_sandbox_pool *p;
  tg_sandbox_pool_stats st;
  uv_loop_t loop;
  outcome o;
  (void)state;
  p = open_pool(&loop, &lim, 1);
  tg_sandbox_pool_stats_get(p, &st);
  assert_int_equal(st.ready, 1);
  assert_int_equal(st.spawned, 1);

  pool_job(&loop, p, "leak = 1\nopen('/tmp/marker', 'w').write('x')\nprint('one')\n", 0, 0, &o);
  expect_ok(&o);
  assert_int_equal(o.from_spare, 1);
  assert_string_equal(o.out, "one\n");
  assert_int_equal(json_integer_value(json_object_get(o.result, "leak")), 1);
  outcome_free(&o);

  /* Replaced after use: a new process, which sees nothing of the first job. */
  wait_ready(&loop, p, 2);
  pool_job(&loop, p,
           "import os\nseen = 'leak' in globals()\nmarker = os.path.exists('/tmp/marker')\n", 0, 0,
           &o);
  expect_ok(&o);
  assert_int_equal(o.from_spare, 1);
  assert_true(json_is_false(json_object_get(o.result, "seen")));
  assert_true(json_is_false(json_object_get(o.result, "marker")));
  outcome_free(&o);
  wait_ready(&loop, p, 3);
  tg_sandbox_pool_stats_get(p, &st);
  assert_int_equal(st.served, 2);
  assert_int_equal(st.died, 0);

  /* The job's own (shorter) time limit holds on a spare, from when the job was written. */
  pool_job(&loop, p, "while True:\n  pass\n", 1, 0, &o);
  assert_int_equal(o.from_spare, 1);
  assert_string_equal(o.error_class, "timeout");
  assert_true(o.wall_ms >= 900 && o.wall_ms < 5000);
  outcome_free(&o);
  close_pool(&loop, p);
}

static void test_pool_fresh(void **state)
{
  tg_sandbox_limits lim = limits();
  tg_sandbox_pool *p;
  tg_sandbox_pool_stats st;
  uv_loop_t loop;
  outcome o;
  (void)state;
  p = open_pool(&loop, &lim, 1);

  /* Another memory limit, or a longer time limit than the spare's CPU limit: spawned fresh,
   * and the spare stays. */
  pool_ok(&loop, p, "a = 1\n", 0, 256, 0);
  pool_job(&loop, p, "x = bytearray(300 << 20)\n", 0, 256, &o);
  assert_int_equal(o.from_spare, 0);
  assert_string_equal(o.error_class, "memory_exceeded");
  assert_non_null(strstr(o.message, "256 MiB"));
  outcome_free(&o);
  pool_ok(&loop, p, "a = 1\n", lim.timeout_s + 10, 0, 0);
  tg_sandbox_pool_stats_get(p, &st);
  assert_int_equal(st.ready, 1);
  assert_int_equal(st.served, 0);
  assert_int_equal(st.spawned, 1);
  close_pool(&loop, p);

  /* No spare kept: every job fresh. */
  p = open_pool(&loop, &lim, 0);
  pool_ok(&loop, p, "a = 1\n", 0, 0, 0);
  close_pool(&loop, p);

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tg_sandbox_pool_new(&p, &loop, &lim, 9), TG_EINVAL);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_pool_dead_spare(void **state)
{
  tg_sandbox_limits lim = limits();
  tg_sandbox_pool *p;
  tg_sandbox_pool_stats st;
  uv_loop_t loop;
  outcome o;
  int pids[4];
  (void)state;
  p = open_pool(&loop, &lim, 1);
  spin(&loop, 200);
  assert_int_equal(children(pids, 4), 1);
  assert_int_equal(kill(pids[0], SIGKILL), 0);
  for (int i = 0; i < 500; i++) {
    tg_sandbox_pool_stats_get(p, &st);
    if (st.died == 1)
      break;
    spin(&loop, 10);
  }
  assert_int_equal(st.died, 1);
  assert_int_equal(st.ready, 0);
  assert_true(st.next_ms > 0 && st.next_ms <= 100); /* backed off, not respawned at once */
  wait_ready(&loop, p, 2);

  pool_ok(&loop, p, "a = 1\n", 0, 0, 1);

  /* A spare that cannot start (no such interpreter) dies, and the retries back off. */
  close_pool(&loop, p);
  lim.python = "/nonexistent/python3";
  p = open_pool(&loop, &lim, 1);
  spin(&loop, 1000);
  tg_sandbox_pool_stats_get(p, &st);
  assert_true(st.died >= 1 && st.died <= 4); /* 100 + 200 + 400 ms of back-off: no spin */
  assert_int_equal(st.served, 0);
  pool_job(&loop, p, "a = 1\n", 0, 0, &o);
  assert_string_equal(o.error_class, "sandbox_unavailable");
  outcome_free(&o);
  close_pool(&loop, p);
}

static void test_pool_close(void **state)
{
  tg_sandbox_limits lim = limits();
  tg_sandbox_pool *p;
  uv_loop_t loop;
  int pids[4];
  uint64_t t0;
  (void)state;
  /* A spare blocked on its stdin: killed and reaped before the close callback. */
  p = open_pool(&loop, &lim, 1);
  spin(&loop, 300);
  assert_int_equal(children(pids, 4), 1);
  t0 = uv_hrtime();
  close_pool(&loop, p);
  assert_true((uv_hrtime() - t0) / 1000000 < 2000);
  assert_int_equal(children(pids, 4), 0);

  /* Closed right after it was spawned, and closed NULL. */
  p = open_pool(&loop, &lim, 2);
  close_pool(&loop, p);
  assert_int_equal(children(pids, 4), 0);
  tg_sandbox_pool_close(NULL, NULL, NULL);
}

/* ---- bench mode ---- */

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void on_plain_exit(uv_process_t *p, int64_t status, int sig)
{
  uv_close((uv_handle_t *)p, NULL);
}

static double plain_python_ms(void)
{
  uv_loop_t loop;
  uv_process_t p;
  char *args[] = {PY, "-c", "print(1)", NULL};
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
  uv_process_options_t o = {
      .file = PY, .args = args, .exit_cb = on_plain_exit, .stdio = stdio, .stdio_count = 3};
  uint64_t t0 = uv_hrtime();
  uv_loop_init(&loop);
  if (uv_spawn(&loop, &p, &o) != 0)
    uv_close((uv_handle_t *)&p, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return (double)(uv_hrtime() - t0) / 1e6;
}

static void report(const char *what, double *v, const double *base, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  printf("%-30s p50 %6.1f ms  p99 %6.1f ms", what, v[n / 2], v[n * 99 / 100]);
  if (base)
    printf("  overhead p50 %6.1f ms  p99 %6.1f ms", v[n / 2] - base[n / 2],
           v[n * 99 / 100] - base[n * 99 / 100]);
  printf("\n");
}

/* Interleaved, so that load on the machine hits every column alike: a fresh sandbox, plain
 * python, then a spare of a pool that had SPARE_SETTLE_MS to start since its last job. */
#define SPARE_SETTLE_MS 200
static int bench(int n)
{
  tg_sandbox_limits lim = limits();
  double *fresh = calloc((size_t)n, sizeof *fresh), *spare = calloc((size_t)n, sizeof *spare);
  double *plain = calloc((size_t)n, sizeof *plain);
  tg_sandbox_pool *p = NULL;
  uv_loop_t loop;
  outcome o;
  int rc = 1;
  if (!fresh || !spare || !plain || uv_loop_init(&loop) != 0)
    goto done;
  if (tg_sandbox_pool_new(&p, &loop, &lim, 1) != 0)
    goto done;
  for (int i = 0; i < n; i++) {
    uint64_t t0 = uv_hrtime();
    run(&lim, "print(1)\n", NULL, NULL, 0, 0, &o);
    fresh[i] = (double)(uv_hrtime() - t0) / 1e6;
    outcome_free(&o);
    if (o.error_class)
      break;
    plain[i] = plain_python_ms();
    spin(&loop, SPARE_SETTLE_MS);
    t0 = uv_hrtime();
    pool_job(&loop, p, "print(1)\n", 0, 0, &o);
    spare[i] = (double)(uv_hrtime() - t0) / 1e6;
    outcome_free(&o);
    if (o.error_class || !o.from_spare)
      break;
  }
  if (o.error_class || !o.from_spare) {
    fprintf(stderr, "%s: %s\n", o.error_class ? o.error_class : "no spare", o.message);
    goto done;
  }
  report("plain python3 -c 'print(1)':", plain, NULL, n);
  report("sandbox, fresh:", fresh, plain, n);
  report("sandbox, spare:", spare, plain, n);
  printf("runs %d (each path)\n", n);
  rc = 0;
done:
  if (p) {
    tg_sandbox_pool_close(p, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  free(fresh);
  free(spare);
  free(plain);
  return rc;
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),       cmocka_unit_test(test_outputs_and_numpy),
      cmocka_unit_test(test_code_error),  cmocka_unit_test(test_limits),
      cmocka_unit_test(test_fork_bomb),   cmocka_unit_test(test_isolation),
      cmocka_unit_test(test_unavailable), cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_probe),       cmocka_unit_test(test_pool_spare),
      cmocka_unit_test(test_pool_fresh),  cmocka_unit_test(test_pool_dead_spare),
      cmocka_unit_test(test_pool_close),
  };
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && strcmp(argv[1], "--bench") == 0)
    return bench(atoi(argv[2]) > 0 ? atoi(argv[2]) : 200);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
