/*
 * toolgate-worker: claims queued runs from SQLite and executes them (DESIGN.md section 5).
 *
 * One uv loop drives everything: a poll timer claims while fewer than
 * TOOLGATE_WORKER_CONCURRENCY runs are in flight (and again as soon as one ends), tg_http +
 * tg_composio + tg_mcp do the network on the loop, and every SQLite statement runs in a tg_dbq
 * job. Shutdown (SIGTERM/SIGINT, or --once with an empty queue): stop claiming, let runs in
 * flight finish within the grace period, then release the leases of the rest (fenced), close
 * the MCP sessions, the Composio and HTTP clients, the spare Code sandboxes, the database, and
 * check that the loop closes clean.
 */
#include "wk.h"

#include "tg_db.h"
#include "tg_db_uri.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_pg_listen.h"
#include "tg_sandbox.h"

#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_CONNECTIONS 3
#define IDLE_CLIENT_MS (5 * 60 * 1000)
#define DRAIN_MS                                                                                   \
  500 /* teardown: longest wait for fire-and-forget POSTs (notifications/cancelled) */
#define DRAIN_POLL_MS 10
#define SANDBOX_SPARES 1 /* pre-started Code sandboxes (tg_sandbox.h "Spares") */

static const char USAGE[] = "usage: toolgate-worker [--once] [--help] [--version]\n"
                            "  --once     process queued runs until the queue is empty, then exit\n"
                            "  --help     this text, then exit\n"
                            "  --version  print the version, then exit";
static const struct option OPTIONS[] = {{"help", no_argument, NULL, 'h'},
                                        {"once", no_argument, NULL, 'o'},
                                        {"version", no_argument, NULL, 'V'},
                                        {NULL, 0, NULL, 0}};

static void teardown(wk_worker *w);

static void on_poll(uv_timer_t *t)
{
  wk_worker *w = t->data;
  wk_registry_sweep(w->reg, IDLE_CLIENT_MS);
  wk_claim_maybe(w);
}

/* PostgreSQL: admission's NOTIFY (payload NULL: the LISTEN connection came back, and what was
 * sent meanwhile was lost): claim now rather than at the next poll. */
static void on_wake(void *arg, const char *payload)
{
  wk_worker *w = arg;
  (void)payload;
  if (!w->stopping)
    wk_claim_maybe(w);
}

/* 1 while HTTP transfers are in flight and w->drain_until has not passed: then w->grace is
 * re-armed to call cb again in DRAIN_POLL_MS. */
static int draining(wk_worker *w, uv_timer_cb cb)
{
  uv_update_time(w->loop);
  if (tg_http_active(w->http) > 0 && uv_now(w->loop) < w->drain_until) {
    uv_timer_start(&w->grace, cb, DRAIN_POLL_MS, 0);
    return 1;
  }
  return 0;
}

/* After the grace: once the notifications/cancelled POSTs went out (or DRAIN_MS passed), close
 * every session, so what is still in flight for a released run (a tools/list) ends now. */
static void on_grace_drained(uv_timer_t *t)
{
  wk_worker *w = t->data;
  if (!draining(w, on_grace_drained))
    wk_registry_abort(w->reg);
}

static void on_grace(uv_timer_t *t)
{
  wk_worker *w = t->data;
  wk_run *r;
  tg_warn("shutdown_grace_expired", "{s:i}", "runs_in_flight", w->in_flight);
  for (r = w->runs; r; r = r->next) {
    if (r->ended || r->aborted)
      continue;
    r->aborted = 1;
    wk_run_release(r, 0, "shutdown"); /* also marks the attempt's 'pending' rows 'unknown' */
    wk_guard_cancel(r);
    wk_engine_cancel(r, WK_STOP_SHUTDOWN); /* notifications/cancelled, then the release */
  }
  /* Closing a session cancels its POSTs: let the notifications/cancelled go out first. */
  w->drain_until = uv_now(w->loop) + DRAIN_MS;
  uv_timer_start(&w->grace, on_grace_drained, DRAIN_POLL_MS, 0);
}

static void stop(wk_worker *w, const char *why)
{
  if (w->stopping)
    return;
  w->stopping = 1;
  tg_info("worker_stopping", "{s:s, s:i}", "why", why, "runs_in_flight", w->in_flight);
  uv_timer_stop(&w->poll);
  tg_pg_listen_close(w->wake);
  w->wake = NULL;
  if (w->in_flight == 0 && !w->claiming)
    teardown(w);
  else
    uv_timer_start(&w->grace, on_grace, (uint64_t)w->cfg.shutdown_grace_ms, 0);
}

void wk_on_run_freed(wk_worker *w)
{
  if (w->shut_down)
    return;
  if (w->stopping) {
    if (w->in_flight == 0 && !w->claiming)
      teardown(w);
    return;
  }
  if (w->once && w->queue_empty && w->in_flight == 0 && !w->claiming) {
    stop(w, "queue_empty");
    return;
  }
  wk_claim_maybe(w);
}

static void on_signal(uv_signal_t *s, int signum)
{
  stop(s->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_http_closed(void *arg)
{
  (void)arg;
}

static void on_sandbox_closed(void *arg)
{
  (void)arg;
}

static void on_registry_closed(void *arg)
{
  wk_worker *w = arg;
  w->reg = NULL;
  tg_composio_free(w->composio);
  w->composio = NULL;
  tg_http_client_close(w->http, on_http_closed, w);
  w->http = NULL;
  tg_http_client_close(w->http_egress, on_http_closed, w);
  w->http_egress = NULL;
}

/* The second HTTP client, for user-supplied URLs: the egress policy, CONNECT_TO and CA file of
 * the configuration. 0, or an error with a one-line reason in err. */
static int egress_init(wk_worker *w, char *err, size_t errlen)
{
  int rc;
  if ((rc = tg_egress_new(&w->egress, w->cfg.egress_allow, err, errlen)))
    return rc;
  if ((rc = tg_http_client_init(&w->http_egress, w->loop))) {
    snprintf(err, errlen, "cannot set up the HTTP client: %s", tg_strerror(rc));
    return rc;
  }
  tg_http_client_set_egress(w->http_egress, w->egress);
  if ((rc = tg_oauth2_tokens_new(&w->api_tokens, w->http_egress))) {
    snprintf(err, errlen, "cannot set up the token cache: %s", tg_strerror(rc));
    return rc;
  }
  if ((rc = tg_http_client_set_connect_to(w->http_egress, w->cfg.connect_to)))
    snprintf(err, errlen, "TOOLGATE_CONNECT_TO: expected host:port:addr:port entries");
  else if ((rc = tg_http_client_set_ca_file(w->http_egress, w->cfg.ca_file)))
    snprintf(err, errlen, "TOOLGATE_CA_FILE: %s", tg_strerror(rc));
  return rc;
}

/* Teardown waits (at most DRAIN_MS) for HTTP transfers still in flight: with every run gone
 * these are fire-and-forget POSTs such as notifications/cancelled, which closing the sessions
 * would cancel. Then the registry, Composio and HTTP clients are closed. */
static void on_drain(uv_timer_t *t)
{
  wk_worker *w = t->data;
  if (draining(w, on_drain))
    return;
  uv_close((uv_handle_t *)&w->grace, NULL);
  wk_registry_close(w->reg, on_registry_closed, w);
}

static void teardown(wk_worker *w)
{
  if (w->shut_down)
    return;
  w->shut_down = 1;
  tg_log_rate_flush(&w->log_claim_failed);
  tg_log_rate_flush(&w->log_hb_failed);
  uv_timer_stop(&w->grace);
  uv_close((uv_handle_t *)&w->poll, NULL);
  wk_sweep_stop(w);
  uv_close((uv_handle_t *)&w->sigterm, NULL);
  uv_close((uv_handle_t *)&w->sigint, NULL);
  tg_sandbox_pool_close(w->sandbox, on_sandbox_closed, w); /* the loop runs until reaped */
  w->sandbox = NULL;
  w->drain_until = uv_now(w->loop) + DRAIN_MS;
  on_drain(&w->grace);
}

int main(int argc, char **argv)
{
  static wk_worker w; /* static: handles must outlive every callback */
  uv_loop_t loop;
  tg_sandbox_limits sandbox_lim;
  char err[256] = "", where[256];
  int rc, code = 1, opt;
  const char *key;

  while ((opt = getopt_long(argc, argv, "h", OPTIONS, NULL)) != -1) {
    if (opt == 'h') {
      tg_config_help(stdout, TG_PROG_WORKER, USAGE);
      return 0;
    } else if (opt == 'V') {
      printf("toolgate-worker %s\n", TG_VERSION);
      return 0;
    } else if (opt == 'o') {
      w.once = 1;
    } else {
      fprintf(stderr, "%s\n", USAGE); /* after getopt's message naming the option */
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "toolgate-worker: unexpected argument %s\n%s\n", argv[optind], USAGE);
    return 2;
  }
  if (tg_config_load(&w.cfg, TG_PROG_WORKER, err, sizeof err)) {
    fprintf(stderr, "toolgate-worker: %s\n", err);
    tg_config_free(&w.cfg);
    return 2;
  }
  tg_log_init("worker", tg_log_level_parse(w.cfg.log_level));
  tg_db_set_statement_timeout_ms((int)w.cfg.db_statement_timeout_ms);
  if (sodium_init() < 0) { /* backoff jitter */
    tg_config_free(&w.cfg);
    return 1;
  }
  if (tg_sealed_startup(&w.cfg, &w.crypto, NULL, err, sizeof err) != 0) {
    fprintf(stderr, "toolgate-worker: refusing to start: %s\n", err);
    tg_error("startup_failed", "{s:s, s:s}", "reason", "secrets at rest", "detail", err);
    tg_config_free(&w.cfg);
    return 2;
  }

  if (uv_loop_init(&loop) != 0) {
    tg_config_free(&w.cfg);
    return 1;
  }
  w.loop = &loop;
  if ((rc = tg_dbq_new(&w.dbq, &loop, w.cfg.db_path, DB_CONNECTIONS))) {
    tg_error("db_open_failed", "{s:s, s:s}", "path", w.cfg.db_path, "error", tg_errname(rc));
    goto fail_loop;
  }
  if ((rc = tg_http_client_init(&w.http, &loop))) {
    tg_error("http_init_failed", "{s:s}", "error", tg_errname(rc));
    goto fail_db;
  }
  if ((rc = egress_init(&w, err, sizeof err))) {
    fprintf(stderr, "toolgate-worker: %s\n", err);
    tg_error("startup_failed", "{s:s, s:s}", "reason", "egress", "detail", err);
    tg_http_client_close(w.http_egress, NULL, NULL);
    tg_http_client_close(w.http, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    code = 2;
    goto fail_db;
  }
  key = tg_secret_reveal(&w.cfg.composio_api_key);
  sandbox_lim = tg_sandbox_limits_of(&w.cfg);
  if ((rc = tg_composio_new(&w.composio, w.http, w.cfg.composio_base_url, key ? key : "",
                            (long)w.cfg.composio_timeout_ms)) ||
      (rc = tg_sandbox_pool_new(&w.sandbox, &loop, &sandbox_lim, SANDBOX_SPARES)) ||
      (rc = wk_registry_new(&w.reg, &w))) {
    tg_error("init_failed", "{s:s}", "error", tg_errname(rc));
    tg_sandbox_pool_close(w.sandbox, NULL, NULL);
    tg_composio_free(w.composio);
    tg_http_client_close(w.http, NULL, NULL);
    tg_http_client_close(w.http_egress, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    goto fail_db;
  }
  if (!key || !*key)
    tg_warn("composio_api_key_missing", NULL);

  tg_log_rate_init(&w.log_claim_failed, 1000);
  tg_log_rate_init(&w.log_hb_failed, 1000);
  uv_timer_init(&loop, &w.poll);
  uv_timer_init(&loop, &w.grace);
  w.poll.data = w.grace.data = &w;
  uv_signal_init(&loop, &w.sigterm);
  uv_signal_init(&loop, &w.sigint);
  w.sigterm.data = w.sigint.data = &w;
  uv_signal_start(&w.sigterm, on_signal, SIGTERM);
  uv_signal_start(&w.sigint, on_signal, SIGINT);
  uv_timer_start(&w.poll, on_poll, 0, (uint64_t)w.cfg.poll_ms);
  if (tg_db_is_pg_uri(w.cfg.db_path) &&
      tg_pg_listen_start(&w.wake, &loop, w.cfg.db_path, "toolgate_runs", on_wake, &w) != 0)
    tg_warn("run_wakeup_not_started", "{s:s}", "fallback", "poll"); /* the poll still claims */
  tg_db_describe(w.cfg.db_path, where, sizeof where);
  if (wk_sweep_start(&w) != 0)
    tg_warn("review_sweep_not_started", NULL);
  signal(SIGPIPE, SIG_IGN);

  tg_info("worker_started", "{s:s, s:s, s:I, s:I, s:I, s:b}", "worker_id", w.cfg.worker_id, "db",
          where, "concurrency", (json_int_t)w.cfg.concurrency, "lease_ms",
          (json_int_t)w.cfg.lease_ms, "poll_ms", (json_int_t)w.cfg.poll_ms, "once", w.once);
  uv_run(&loop, UV_RUN_DEFAULT);

  code = 0;
  if (tg_dbq_pending(w.dbq) != 0) {
    tg_error("shutdown_jobs_pending", "{s:i}", "jobs", (int)tg_dbq_pending(w.dbq));
    code = 1;
  }
fail_db:
  tg_dbq_free(w.dbq);
fail_loop:
  rc = uv_loop_close(&loop);
  if (rc != 0) {
    tg_error("loop_not_closed", "{s:s}", "error", uv_err_name(rc));
    code = 1;
  }
  if (code == 0)
    tg_info("worker_stopped", NULL);
  tg_crypto_free(w.crypto);
  tg_oauth2_tokens_free(w.api_tokens);
  wk_conn_auths_free(&w);
  tg_egress_free(w.egress);
  tg_config_free(&w.cfg);
  return code;
}
