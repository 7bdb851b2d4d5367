/*
 * tg_sandbox: runs untrusted code (Code nodes, the code_execution built-in tool) in a child
 * process under bubblewrap, through libuv (uv_spawn, pipes, a timer), never in the calling
 * process. README "Code nodes".
 *
 * The child sees: a read-only /usr (and the /etc files the interpreter needs to start), a
 * private empty /tmp (tmpfs), its own /proc and a minimal /dev; new user, PID, network, IPC and
 * UTS namespaces (no network at all: only a loopback interface nobody listens on), a new session,
 * an empty environment but for PATH/HOME/LANG; no view of the database, the configuration, the
 * worker's files or /proc/<worker>. Limits: address space (memory_mb), CPU time (timeout_s + 1),
 * processes (max_procs), file size; the output (stdout + stderr + the result) is capped at
 * max_output bytes, beyond which the child is killed; a wall-clock timer kills the whole process
 * group (SIGKILL), and bubblewrap's PID namespace takes every descendant with it.
 *
 * The program: language "python" runs a runner inside the sandbox that reads {code, inputs}
 * from stdin, makes each input a global (JSON-decoded), executes the code, and writes on a
 * separate descriptor the JSON object of every top-level name the code defined whose value is
 * JSON-serialisable (numpy scalars and arrays converted; not the inputs, modules, functions or
 * classes), or only the names in outputs when given. "javascript" does the same under node when
 * configured.
 *
 * If bubblewrap is missing or cannot create its namespaces, executions end through done with
 * error_class "sandbox_unavailable": code never runs unsandboxed. The interpreters must live
 * under /usr (the only host directory the sandbox sees). The stdin of the child is a pipe: the
 * calling process must ignore SIGPIPE (the worker does) in case the child dies before reading.
 *
 * Callbacks (libuv's rule): when tg_sandbox_run returns an error, done is never called; when it
 * returns 0, done is called exactly once, later, from the loop, unless tg_sandbox_cancel comes
 * first (the child is killed then). The handles stay open until the killed child is reaped,
 * so a loop that runs until it has no more handles also waits for canceled executions.
 *
 * Names returned (python): with outputs, exactly those names (one that is missing or not
 * JSON-serialisable is a code_error). Without: every top-level name that does not start with
 * "_", is not a module, function, class or other callable, is not an input still bound to the
 * object it came in as (an input the code rebinds is returned), and whose value is
 * JSON-serialisable (numpy scalars and arrays converted; NaN and infinities are not JSON, so
 * such names are left out). Inputs whose name starts with "_" are not passed.
 */
#ifndef TG_SANDBOX_H
#define TG_SANDBOX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tg_sandbox_limits {
  const char *python; /* interpreter path inside the sandbox (TOOLGATE_SANDBOX_PYTHON) */
  const char *node;   /* javascript interpreter, or NULL: javascript refused */
  int64_t timeout_s;  /* wall clock */
  int64_t memory_mb;  /* RLIMIT_AS */
  int64_t max_output; /* bytes of stdout + stderr + result */
  int64_t max_procs;  /* processes and threads at once (per execution) */
} tg_sandbox_limits;

/* The limits of the configuration's TOOLGATE_SANDBOX_* and TOOLGATE_CODE_* (pointers into cfg,
 * which must outlive the limits' use). */
struct tg_config;
tg_sandbox_limits tg_sandbox_limits_of(const struct tg_config *cfg);

typedef struct tg_sandbox_job {
  const char *language;  /* "python" | "javascript" */
  const char *code;      /* source text */
  const json_t *inputs;  /* object: name -> JSON value, made globals; NULL: none */
  const json_t *outputs; /* array of names to return, or NULL: every serialisable name */
  int64_t timeout_s;     /* 0: limits' */
  int64_t memory_mb;     /* 0: limits' */
} tg_sandbox_job;

/*
 * The outcome. error_class NULL: the code ran to its end (exit 0) and result holds its names.
 * Else one of:
 *   "code_error"          the code raised (message: the exception's last line; stderr has the
 *                         traceback) or exited non-zero
 *   "timeout"             the wall clock ran out (the group was killed), or the CPU limit
 *                         (timeout_s + 1 s) did (SIGXCPU)
 *   "memory_exceeded"     the address-space cap was hit: MemoryError, or the child died of
 *                         SIGSEGV/SIGBUS/SIGABRT/SIGKILL we did not send (under the cap, a
 *                         failed allocation in C code is the usual cause; the message says so)
 *   "output_exceeded"     more than max_output bytes were written
 *   "sandbox_unavailable" bubblewrap is missing or failed to set up (never run unsandboxed)
 *   "invalid_code_output" the result is not a JSON object (e.g. the runner was subverted)
 */
typedef struct tg_sandbox_result {
  const char *error_class;
  char message[512];
  char *stdout_text; /* what the code printed (capped), "" when nothing */
  char *stderr_text; /* idem */
  json_t *result;    /* object of names (NULL on error) */
  int exit_status;   /* the child's exit status, or -signal */
  double wall_ms;    /* spawn to exit */
} tg_sandbox_result;

typedef void (*tg_sandbox_done_cb)(void *arg, tg_sandbox_result *res);

typedef struct tg_sandbox_exec tg_sandbox_exec;

/*
 * Starts job on loop within lim (both copied). *out (may be NULL) is the handle, valid until
 * done returns. The result passed to done is the callee's: it is freed after done returns, so
 * steal members (set them NULL) to keep them. Errors: TG_EINVAL (unknown language, no code),
 * TG_ENOMEM; a spawn failure is reported through done as sandbox_unavailable.
 */
int tg_sandbox_run(uv_loop_t *loop, const tg_sandbox_limits *lim, const tg_sandbox_job *job,
                   tg_sandbox_done_cb done, void *arg, tg_sandbox_exec **out);

/* Kills the child and its group; done is never called. Safe from any callback but done. */
void tg_sandbox_cancel(tg_sandbox_exec *e);

/*
 * 1 when every name in packages (a JSON array of strings) can be imported by python inside
 * the sandbox, else 0 with the first missing one copied into missing (size len). The set of
 * importable top-level modules is probed once per process (a child python listing
 * pkgutil.iter_modules() and the built-in modules) and cached; the probe runs off the loop
 * (tg_sandbox_probe_packages) before the first call, or this answers -1 (unknown yet).
 */
int tg_sandbox_packages_available(const json_t *packages, char *missing, size_t len);

/* Starts the probe of importable modules with python on loop; cb(arg, err) when done. */
int tg_sandbox_probe_packages(uv_loop_t *loop, const char *python, void (*cb)(void *arg, int err),
                              void *arg);

#endif
