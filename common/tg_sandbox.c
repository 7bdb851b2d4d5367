/*
 * tg_sandbox: one child process per execution, under bubblewrap, driven by libuv (tg_sandbox.h;
 * README "Code nodes").
 *
 * The command line, outside in:
 *
 *   bwrap <namespaces, mounts> -- /usr/bin/prlimit --as --cpu --fsize --nproc --core=0 --
 *         <python> -I -c <tg_sandbox_runner.py>
 *
 * bwrap is spawned detached (its own session and process group, so one kill(-pid) reaches it)
 * with a four-entry environment and cwd "/". When the caller is root (the worker in CI), bwrap
 * itself is spawned as uid/gid 65534 (UV_PROCESS_SETUID/SETGID, supplementary groups dropped):
 * the kernel exempts only real root from RLIMIT_NPROC, and bwrap builds its namespaces as an
 * unprivileged user with a user namespace, so nothing inside runs as root of the host. The
 * limits are set by util-linux's prlimit inside the sandbox, just before it execs the
 * interpreter (uv_spawn has no rlimit option; prlimit needs no shell and execs in place), so
 * bwrap's own processes keep the caller's limits. RLIMIT_NPROC counts per (user namespace,
 * uid) and every execution gets a user namespace of its own, so max_procs is per execution and
 * concurrent executions do not share it; bwrap's init inside the PID namespace is one of the
 * processes, hence max_procs + 1. A fork bomb thus stops at max_procs processes, which RLIMIT_CPU
 * (timeout_s + 1 s each) and the wall-clock timer end: the timer SIGKILLs bwrap's group,
 * --die-with-parent takes bwrap's init with it, and the end of a PID namespace's init kills
 * every process left in it.
 *
 * Descriptors: 0 the job as JSON (written once, then closed), 1 and 2 captured, 3 the result
 * (the runner's JSON object). Every byte read from 1, 2 and 3 counts against max_output; past it
 * the group is killed (output_exceeded). An execution is done when the child has exited and the
 * three pipes reached EOF (or 1 s after the exit, for a descendant that kept a pipe open).
 *
 * Outcome mapping (error_class): spawn failure, or a non-zero exit without a result whose stderr
 * starts with "bwrap:" or "prlimit:" -> sandbox_unavailable; our timer or SIGXCPU -> timeout;
 * our output cap -> output_exceeded; runner exit 3 (MemoryError), or a death by SIGSEGV, SIGBUS,
 * SIGABRT or SIGKILL that we did not send -> memory_exceeded (under RLIMIT_AS a failed
 * allocation in C code is the usual cause of such a crash; the message names the signal);
 * runner exit 1 -> code_error with its message; any other non-zero exit -> code_error; exit 0
 * with a result that is not a JSON object -> invalid_code_output. bwrap reports a child killed
 * by signal N as exit status 128 + N.
 *
 * The probe of importable modules runs the same way (python -I -c <probe>, stdout a JSON array)
 * and fills a process-wide sorted array of names; loop thread only.
 */
#include "tg_sandbox.h"

#include "tg_buf.h"
#include "tg_config.h"
#include "tg_err.h"
#include "tg_log.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NOBODY 65534
#define DRAIN_MS 1000
#define TMPFS_BYTES "67108864" /* the private /tmp: 64 MiB of the host's memory at most */
#define TMPFS_BYTES_N 67108864 /* and the largest file in it (RLIMIT_FSIZE) */
#define RUNNER_EXIT_MEMORY 3
#define PROBE_MAX_OUTPUT (4 << 20)

extern const char tg_sandbox_runner_py[]; /* tg_sandbox_runner.py (cmake/embed_file.cmake) */

static const char probe_py[] =
    "import json, pkgutil, sys\n"
    "names = {m.name for m in pkgutil.iter_modules()} | set(sys.builtin_module_names)\n"
    "print(json.dumps(sorted(names)))\n";

/* bwrap's options: what the child sees (tg_sandbox.h), then the command. */
static const char *const sandbox_args[] = {
    "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
    "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv",
    "LANG", "C.UTF-8", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink",
    "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
    /* the dynamic loader's cache, numpy's BLAS (alternatives), the time zone */
    "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--ro-bind-try", "/etc/alternatives",
    "/etc/alternatives", "--ro-bind-try", "/etc/localtime", "/etc/localtime", "--proc", "/proc",
    "--dev", "/dev", "--size", TMPFS_BYTES, "--tmpfs", "/tmp", "--chdir", "/tmp", "--", NULL};

enum { S_OUT, S_ERR, S_RES, S_COUNT };

struct tg_sandbox_exec {
  uv_loop_t *loop;
  uv_process_t proc;
  uv_pipe_t in;
  uv_pipe_t pipes[S_COUNT];
  uv_timer_t timer;
  uv_write_t wreq;
  char *job_text; /* stdin, freed when written */
  tg_buf bufs[S_COUNT];
  size_t cap, total;
  int handles; /* open handles; the struct is freed when it reaches 0 */
  int eofs;    /* pipes at EOF */
  int exited, finished, canceled;
  int64_t exit_status;   /* as bwrap reports it */
  int term_signal;       /* bwrap's own death by signal */
  const char *killed_as; /* "timeout" | "output_exceeded": we killed the group */
  int64_t memory_mb;
  uint64_t started_ns, exited_ns;
  tg_sandbox_done_cb done;
  void *arg;
  char rd[65536];
};

/* ---- process-wide state: bwrap's path, the probed modules ---- */

static char bwrap_path[256];
static char **modules; /* sorted; NULL until a probe succeeded */
static size_t nmodules;

static const char *find_bwrap(void)
{
  const char *path = getenv("PATH");
  if (bwrap_path[0])
    return bwrap_path;
  while (path && *path) {
    const char *colon = strchr(path, ':');
    size_t n = colon ? (size_t)(colon - path) : strlen(path);
    if (n > 0 && n < sizeof bwrap_path - 7) {
      snprintf(bwrap_path, sizeof bwrap_path, "%.*s/bwrap", (int)n, path);
      if (access(bwrap_path, X_OK) == 0)
        return bwrap_path;
    }
    path = colon ? colon + 1 : NULL;
  }
  snprintf(bwrap_path, sizeof bwrap_path, "/usr/bin/bwrap");
  return bwrap_path;
}

/* ---- teardown ---- */

static void on_close(uv_handle_t *h)
{
  tg_sandbox_exec *e = h->data;
  if (--e->handles > 0)
    return;
  for (int i = 0; i < S_COUNT; i++)
    tg_buf_free(&e->bufs[i]);
  free(e->job_text);
  free(e);
}

static void close_handle(tg_sandbox_exec *e, uv_handle_t *h)
{
  if (h->loop && !uv_is_closing(h))
    uv_close(h, on_close);
  (void)e;
}

static void kill_group(tg_sandbox_exec *e, const char *why)
{
  if (why && !e->killed_as)
    e->killed_as = why;
  if (e->exited)
    return; /* the pid may belong to another process by now */
  kill(-e->proc.pid, SIGKILL);
  kill(e->proc.pid, SIGKILL);
}

/* ---- the outcome ---- */

static void set_error(tg_sandbox_result *r, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(tg_sandbox_result *r, const char *cls, const char *fmt, ...)
{
  va_list ap;
  r->error_class = cls;
  va_start(ap, fmt);
  vsnprintf(r->message, sizeof r->message, fmt, ap);
  va_end(ap);
}

/* The last non-empty line of text, into out. */
static void last_line(const char *text, char *out, size_t len)
{
  size_t n = strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
    n--;
  size_t a = n;
  while (a > 0 && text[a - 1] != '\n')
    a--;
  snprintf(out, len, "%.*s", (int)(n - a), text + a);
}

static void classify(tg_sandbox_exec *e, tg_sandbox_result *r)
{
  const char *err = tg_buf_str(&e->bufs[S_ERR]);
  json_t *res = NULL;
  int sig = e->exit_status > 128 && e->exit_status < 160 ? (int)e->exit_status - 128 : 0;
  char line[400];

  if (tg_buf_len(&e->bufs[S_RES]) > 0)
    res = json_loadb(tg_buf_str(&e->bufs[S_RES]), tg_buf_len(&e->bufs[S_RES]), 0, NULL);
  last_line(err, line, sizeof line);

  if (e->killed_as && strcmp(e->killed_as, "timeout") == 0) {
    set_error(r, "timeout", "the code ran longer than its time limit and was killed");
  } else if (e->killed_as) {
    set_error(r, "output_exceeded", "the code wrote more than %zu bytes and was killed", e->cap);
  } else if (e->term_signal) {
    set_error(r, "sandbox_unavailable", "bubblewrap died of signal %d", e->term_signal);
  } else if (e->exit_status == 0) {
    if (!json_is_object(res) || json_object_get(res, "__error__"))
      set_error(r, "invalid_code_output", "the code's result is not a JSON object of names");
    else
      r->result = json_incref(res);
  } else if (!res && (strncmp(err, "bwrap:", 6) == 0 || strncmp(err, "prlimit:", 8) == 0)) {
    set_error(r, "sandbox_unavailable", "the sandbox could not be set up: %s", line);
  } else if (e->exit_status == RUNNER_EXIT_MEMORY ||
             (!res && strncmp(line, "MemoryError", 11) == 0)) {
    set_error(r, "memory_exceeded", "the code ran out of memory (limit %lld MiB)",
              (long long)e->memory_mb);
  } else if (sig == SIGXCPU) {
    set_error(r, "timeout", "the code used more CPU time than its time limit");
  } else if (sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGKILL) {
    set_error(r, "memory_exceeded",
              "the code was killed by signal %d, most likely an allocation failing under the "
              "memory limit of %lld MiB",
              sig, (long long)e->memory_mb);
  } else if (json_is_string(json_object_get(res, "__error__"))) {
    set_error(r, "code_error", "%s", json_string_value(json_object_get(res, "__error__")));
  } else if (sig) {
    set_error(r, "code_error", "the code was killed by signal %d", sig);
  } else {
    set_error(r, "code_error", "the code exited with status %lld%s%s", (long long)e->exit_status,
              line[0] ? ": " : "", line);
  }
  json_decref(res);
}

static void finish(tg_sandbox_exec *e)
{
  tg_sandbox_result r;
  if (e->finished)
    return;
  e->finished = 1;
  memset(&r, 0, sizeof r);
  if (!e->canceled) {
    r.exit_status = e->term_signal ? -e->term_signal : e->exit_status;
    r.wall_ms = (double)(e->exited_ns - e->started_ns) / 1e6;
    classify(e, &r);
    r.stdout_text = tg_buf_take(&e->bufs[S_OUT], NULL);
    r.stderr_text = tg_buf_take(&e->bufs[S_ERR], NULL);
    e->done(e->arg, &r);
    free(r.stdout_text);
    free(r.stderr_text);
    json_decref(r.result);
  }
  close_handle(e, (uv_handle_t *)&e->proc);
  close_handle(e, (uv_handle_t *)&e->in);
  for (int i = 0; i < S_COUNT; i++)
    close_handle(e, (uv_handle_t *)&e->pipes[i]);
  close_handle(e, (uv_handle_t *)&e->timer);
}

static void maybe_finish(tg_sandbox_exec *e)
{
  if (e->exited && e->eofs == S_COUNT)
    finish(e);
}

/* ---- callbacks ---- */

static void on_timer(uv_timer_t *t)
{
  tg_sandbox_exec *e = t->data;
  if (e->exited)
    finish(e); /* the drain after exit ran out: a descendant kept a pipe open */
  else
    kill_group(e, "timeout");
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
  tg_sandbox_exec *e = p->data;
  e->exited = 1;
  e->exit_status = status;
  e->term_signal = sig;
  e->exited_ns = uv_hrtime();
  if (e->eofs < S_COUNT)
    uv_timer_start(&e->timer, on_timer, DRAIN_MS, 0);
  maybe_finish(e);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  tg_sandbox_exec *e = h->data;
  buf->base = e->rd;
  buf->len = sizeof e->rd;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  tg_sandbox_exec *e = s->data;
  tg_buf *b = &e->bufs[(uv_pipe_t *)s - e->pipes];
  if (n > 0) {
    size_t room = b->cap - tg_buf_len(b);
    e->total += (size_t)n;
    tg_buf_add(b, buf->base, (size_t)n < room ? (size_t)n : room);
    if (e->total > e->cap)
      kill_group(e, "output_exceeded");
    return;
  }
  if (n < 0) {
    uv_read_stop(s);
    e->eofs++;
    maybe_finish(e);
  }
}

static void on_written(uv_write_t *w, int status)
{
  tg_sandbox_exec *e = w->data;
  free(e->job_text);
  e->job_text = NULL;
  close_handle(e, (uv_handle_t *)&e->in); /* EOF for the runner */
}

/* ---- start ---- */

static void fmt_i64(char *buf, size_t len, const char *opt, int64_t v)
{
  snprintf(buf, len, "%s=%lld", opt, (long long)v);
}

/*
 * Spawns program (python -c text, or node for javascript) under bwrap with stdin (may be NULL:
 * no input). Returns 0 (done will be called) or a TG_E* error; a failed spawn is reported as
 * sandbox_unavailable through done, from the loop.
 */
static int spawn(uv_loop_t *loop, const tg_sandbox_limits *lim, const char *interp,
                 const char *flag, const char *program, char *stdin_text, int64_t timeout_s,
                 int64_t memory_mb, size_t cap, tg_sandbox_done_cb done, void *arg,
                 tg_sandbox_exec **out)
{
  tg_sandbox_exec *e = calloc(1, sizeof *e);
  char as[48], cpu[48], fsize[48], nproc[48];
  uv_process_options_t o;
  uv_stdio_container_t stdio[4];
  char *env[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/", NULL};
  int rc;

  if (!e) {
    free(stdin_text);
    return TG_ENOMEM;
  }
  fmt_i64(as, sizeof as, "--as", memory_mb * 1024 * 1024);
  fmt_i64(cpu, sizeof cpu, "--cpu", timeout_s + 1);
  fmt_i64(fsize, sizeof fsize, "--fsize", TMPFS_BYTES_N);
  fmt_i64(nproc, sizeof nproc, "--nproc", lim->max_procs + 1);
  const char *argv[sizeof sandbox_args / sizeof *sandbox_args + 16];
  size_t n = 0;

  argv[n++] = find_bwrap();
  for (size_t i = 0; sandbox_args[i]; i++)
    argv[n++] = sandbox_args[i];
  argv[n++] = "/usr/bin/prlimit";
  argv[n++] = as;
  argv[n++] = cpu;
  argv[n++] = fsize;
  argv[n++] = nproc;
  argv[n++] = "--core=0";
  argv[n++] = "--";
  argv[n++] = interp;
  argv[n++] = flag;
  argv[n++] = "-c";
  argv[n++] = program;
  argv[n] = NULL;

  e->loop = loop;
  e->cap = cap;
  e->memory_mb = memory_mb;
  e->done = done;
  e->arg = arg;
  e->job_text = stdin_text;
  for (int i = 0; i < S_COUNT; i++)
    tg_buf_init(&e->bufs[i], cap);
  e->proc.data = e->in.data = e->timer.data = e->wreq.data = e;
  uv_pipe_init(loop, &e->in, 0);
  e->handles++;
  for (int i = 0; i < S_COUNT; i++) {
    uv_pipe_init(loop, &e->pipes[i], 0);
    e->pipes[i].data = e;
    e->handles++;
  }
  uv_timer_init(loop, &e->timer);
  e->handles++;

  memset(&o, 0, sizeof o);
  stdio[0].flags = stdin_text ? UV_CREATE_PIPE | UV_READABLE_PIPE : UV_IGNORE;
  stdio[0].data.stream = (uv_stream_t *)&e->in;
  for (int i = 0; i < S_COUNT; i++) {
    stdio[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[i + 1].data.stream = (uv_stream_t *)&e->pipes[i];
  }
  o.file = argv[0];
  o.args = (char **)argv;
  o.env = env;
  o.cwd = "/";
  o.exit_cb = on_exit_cb;
  o.stdio = stdio;
  o.stdio_count = 4;
  o.flags = UV_PROCESS_DETACHED;
  if (geteuid() == 0) {
    o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    o.uid = NOBODY;
    o.gid = NOBODY;
  }
  e->started_ns = uv_hrtime();
  rc = uv_spawn(loop, &e->proc, &o);
  e->handles++; /* initialised by uv_spawn, and to be closed, even when it failed */
  if (rc != 0) {
    tg_warn("sandbox_spawn_failed", "{s:s, s:s}", "bwrap", argv[0], "error", uv_strerror(rc));
    /* Reported through done like any outcome: no process, every pipe "at EOF". */
    e->exited = 1;
    e->term_signal = 0;
    e->exit_status = 1;
    e->eofs = S_COUNT;
    e->exited_ns = e->started_ns;
    tg_buf_printf(&e->bufs[S_ERR], "bwrap: cannot start %s: %s", argv[0], uv_strerror(rc));
    uv_timer_start(&e->timer, on_timer, 0, 0);
    if (out)
      *out = e;
    return 0;
  }
  for (int i = 0; i < S_COUNT; i++)
    uv_read_start((uv_stream_t *)&e->pipes[i], on_alloc, on_read);
  if (stdin_text) {
    uv_buf_t b = uv_buf_init(stdin_text, (unsigned)strlen(stdin_text));
    if (uv_write(&e->wreq, (uv_stream_t *)&e->in, &b, 1, on_written) != 0)
      close_handle(e, (uv_handle_t *)&e->in);
  } else {
    close_handle(e, (uv_handle_t *)&e->in);
  }
  uv_timer_start(&e->timer, on_timer, (uint64_t)timeout_s * 1000, 0);
  if (out)
    *out = e;
  return 0;
}

int tg_sandbox_run(uv_loop_t *loop, const tg_sandbox_limits *lim, const tg_sandbox_job *job,
                   tg_sandbox_done_cb done, void *arg, tg_sandbox_exec **out)
{
  json_t *in;
  char *text;
  int64_t timeout_s = job->timeout_s > 0 ? job->timeout_s : lim->timeout_s;
  int64_t memory_mb = job->memory_mb > 0 ? job->memory_mb : lim->memory_mb;

  if (out)
    *out = NULL;
  if (!job->code || !job->language || strcmp(job->language, "python") != 0 || !lim->python ||
      timeout_s <= 0 || memory_mb <= 0 || lim->max_output <= 0 || lim->max_procs <= 0)
    return TG_EINVAL;
  in = json_pack("{s:s, s:O?, s:O?}", "code", job->code, "inputs", job->inputs, "outputs",
                 job->outputs);
  if (!in)
    return TG_ENOMEM;
  text = json_dumps(in, JSON_COMPACT);
  json_decref(in);
  if (!text)
    return TG_ENOMEM;
  return spawn(loop, lim, lim->python, "-I", tg_sandbox_runner_py, text, timeout_s, memory_mb,
               (size_t)lim->max_output, done, arg, out);
}

tg_sandbox_limits tg_sandbox_limits_of(const tg_config *cfg)
{
  tg_sandbox_limits lim = {.python = cfg->sandbox_python,
                           .node = cfg->sandbox_node,
                           .timeout_s = cfg->code_timeout_s,
                           .memory_mb = cfg->code_memory_mb,
                           .max_output = cfg->code_max_output_bytes,
                           .max_procs = cfg->code_max_procs};
  return lim;
}

void tg_sandbox_cancel(tg_sandbox_exec *e)
{
  if (!e || e->finished)
    return;
  e->canceled = 1;
  kill_group(e, NULL);
  /* finish() runs when the exit and the EOFs arrive, and calls nothing. */
}

/* ---- the probe of importable modules ---- */

typedef struct probe {
  void (*cb)(void *arg, int err);
  void *arg;
} probe;

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int store_modules(const json_t *names)
{
  size_t i, n = json_array_size(names);
  char **v = calloc(n ? n : 1, sizeof *v);
  const json_t *s;
  if (!v)
    return TG_ENOMEM;
  json_array_foreach(names, i, s)
  {
    if (!(v[i] = strdup(json_string_value(s) ? json_string_value(s) : ""))) {
      while (i-- > 0)
        free(v[i]);
      free(v);
      return TG_ENOMEM;
    }
  }
  qsort(v, n, sizeof *v, cmp_str);
  for (i = 0; i < nmodules; i++)
    free(modules[i]);
  free(modules);
  modules = v;
  nmodules = n;
  return 0;
}

static void on_probe_done(void *arg, tg_sandbox_result *res)
{
  probe *p = arg;
  json_t *names = NULL;
  int err = TG_EIO;
  if (res->exit_status == 0 && res->stdout_text)
    names = json_loads(res->stdout_text, 0, NULL);
  if (json_is_array(names))
    err = store_modules(names);
  if (err == 0)
    tg_info("sandbox_probe_done", "{s:i, s:f}", "modules", (int)nmodules, "ms", res->wall_ms);
  else
    tg_warn("sandbox_probe_failed", "{s:s?, s:s}", "error_class", res->error_class, "message",
            res->error_class ? res->message : "the module list is not a JSON array");
  json_decref(names);
  p->cb(p->arg, err);
  free(p);
}

int tg_sandbox_probe_packages(uv_loop_t *loop, const char *python, void (*cb)(void *arg, int err),
                              void *arg)
{
  tg_sandbox_limits lim = {.python = python, .max_procs = 16};
  probe *p;
  int rc;
  if (!python || !cb)
    return TG_EINVAL;
  if (!(p = malloc(sizeof *p)))
    return TG_ENOMEM;
  p->cb = cb;
  p->arg = arg;
  rc = spawn(loop, &lim, python, "-I", probe_py, NULL, 30, 1024, PROBE_MAX_OUTPUT, on_probe_done, p,
             NULL);
  if (rc != 0)
    free(p);
  return rc;
}

int tg_sandbox_packages_available(const json_t *packages, char *missing, size_t len)
{
  size_t i;
  const json_t *v;
  if (!modules)
    return -1;
  json_array_foreach(packages, i, v)
  {
    const char *name = json_string_value(v);
    char top[128];
    const char *key = top;
    if (!name)
      continue;
    snprintf(top, sizeof top, "%.*s", (int)strcspn(name, "."), name);
    if (!bsearch(&key, modules, nmodules, sizeof *modules, cmp_str)) {
      if (missing && len)
        snprintf(missing, len, "%s", name);
      return 0;
    }
  }
  return 1;
}
