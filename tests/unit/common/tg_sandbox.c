/*
 * Unit tests for common/tg_sandbox.c, against the real bubblewrap and /usr/bin/python3 (the
 * machine set-up installs both, and python3-numpy): the names the runner returns (inputs,
 * reassigned inputs, modules, functions, "_" names, config outputs), numpy conversion, stdout and
 * the traceback, each failure class (code_error, timeout, memory_exceeded, output_exceeded,
 * sandbox_unavailable), a fork bomb contained, what the child sees of the host, cancel, and the
 * probe of importable modules. Every test ends with uv_loop_close() == 0.
 *
 * `unit_common_tg_sandbox --bench N` instead times N executions of print(1) and as many plain
 * `python3 -c 'print(1)'` spawns, and prints p50 and p99 of each (bench/code/run.sh).
 */
#include "tg_unit.h"

#include "tg_err.h"
#include "tg_sandbox.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define PY "/usr/bin/python3"

typedef struct outcome {
  int calls;
  const char *error_class;
  char message[512];
  char *out, *err;
  json_t *result;
  double wall_ms;
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

static int bench(int n)
{
  tg_sandbox_limits lim = limits();
  double *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
  outcome o;
  if (!a || !b)
    return 1;
  for (int i = 0; i < n; i++) {
    uint64_t t0 = uv_hrtime();
    run(&lim, "print(1)\n", NULL, NULL, 0, 0, &o);
    a[i] = (double)(uv_hrtime() - t0) / 1e6;
    if (o.error_class) {
      fprintf(stderr, "%s: %s\n", o.error_class, o.message);
      return 1;
    }
    outcome_free(&o);
    b[i] = plain_python_ms();
  }
  qsort(a, (size_t)n, sizeof *a, cmp_double);
  qsort(b, (size_t)n, sizeof *b, cmp_double);
  printf("runs %d\nsandbox print(1): p50 %.1f ms p99 %.1f ms\n", n, a[n / 2], a[n * 99 / 100]);
  printf("plain python3 -c 'print(1)': p50 %.1f ms p99 %.1f ms\n", b[n / 2], b[n * 99 / 100]);
  printf("overhead: p50 %.1f ms p99 %.1f ms\n", a[n / 2] - b[n / 2],
         a[n * 99 / 100] - b[n * 99 / 100]);
  free(a);
  free(b);
  return 0;
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),       cmocka_unit_test(test_outputs_and_numpy),
      cmocka_unit_test(test_code_error),  cmocka_unit_test(test_limits),
      cmocka_unit_test(test_fork_bomb),   cmocka_unit_test(test_isolation),
      cmocka_unit_test(test_unavailable), cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_probe),
  };
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && strcmp(argv[1], "--bench") == 0)
    return bench(atoi(argv[2]) > 0 ? atoi(argv[2]) : 200);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
