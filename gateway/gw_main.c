/*
 * gw_main: the toolgate-gateway program: configuration, start-up, signals, shutdown.
 *
 * Start-up: config from the environment (--help lists it), logging, the database pool (its
 * first connection applies migrations), auth_configs upserted from the configured providers
 * (as a pool job: the loop thread never touches SQLite), then one uv loop with the HTTP
 * server, the HTTP client and the Composio client.
 *
 * Shutdown (SIGTERM/SIGINT): stop accepting (tg_httpd_close), wake requests sleeping on
 * timers, cancel Composio transfers (tg_http_client_close: their callbacks run with
 * TG_ECANCELED and answer 503), wait until both are closed and every database job has
 * finished, then free the pool and require uv_loop_close() == 0. Exit status 0.
 */
#include "gw.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_TICK_MS 20

typedef struct gw_main {
  gw_app app;
  uv_signal_t sigterm, sigint;
  uv_timer_t drain;
  int httpd_closed, http_closed;
  int sync_status; /* result of the start-up auth_configs job */
} gw_main;

/* ---------------------------------------------------------------- auth_configs at start-up */

static int sync_work(tg_db *db, void *arg)
{
  gw_main *m = arg;
  const tg_config *cfg = &m->app.cfg;
  int64_t now = tg_now_ms();
  int rc;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  for (size_t i = 0; i < cfg->n_providers; i++) {
    const tg_provider *p = &cfg->providers[i];
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO auth_configs (id, provider, toolkit_slug, display_name, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO "
                    "UPDATE SET provider = excluded.provider, toolkit_slug = "
                    "excluded.toolkit_slug, display_name = excluded.display_name, updated_at = "
                    "excluded.updated_at",
                    "ssssII", p->auth_config_id, p->provider, p->toolkit_slug, p->display_name,
                    (long long)now, (long long)now);
    if (rc != 0) {
      tg_error("auth_config_sync_failed", "{s:s, s:s, s:s, s:s}", "provider", p->provider,
               "auth_config_id", p->auth_config_id, "error", tg_errname(rc), "hint",
               rc == TG_ECONFLICT ? "another auth config id is stored for this provider"
                                  : "see the database error above");
      tg_db_rollback(db);
      return rc;
    }
  }
  return tg_db_commit(db);
}

static void sync_done(void *arg, int status)
{
  gw_main *m = arg;
  m->sync_status = status;
}

/* ---------------------------------------------------------------- shutdown */

static void on_httpd_closed(void *arg)
{
  gw_main *m = arg;
  m->httpd_closed = 1;
}

static void on_http_closed(void *arg)
{
  gw_main *m = arg;
  m->http_closed = 1;
}

static void on_drain(uv_timer_t *t)
{
  gw_main *m = t->data;
  if (m->httpd_closed && m->http_closed && tg_dbq_pending(m->app.dbq) == 0) {
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
  }
}

static void on_signal(uv_signal_t *s, int signum)
{
  gw_main *m = s->data;
  gw_app *app = &m->app;
  if (app->stopping)
    return;
  tg_info("shutdown", "{s:i, s:i}", "signal", signum, "db_jobs", (int)tg_dbq_pending(app->dbq));
  app->stopping = 1;
  uv_close((uv_handle_t *)&m->sigterm, NULL);
  uv_close((uv_handle_t *)&m->sigint, NULL);
  while (app->waiters) {
    gw_waiter *w = app->waiters;
    w->wake(w); /* removes itself */
    if (app->waiters == w)
      gw_waiter_remove(app, w);
  }
  gw_sync_stop(app);
  tg_httpd_close(app->httpd, on_httpd_closed, m);
  tg_http_client_close(app->http, on_http_closed, m);
  uv_timer_init(app->loop, &m->drain);
  m->drain.data = m;
  uv_timer_start(&m->drain, on_drain, 0, DRAIN_TICK_MS);
}

/* ---------------------------------------------------------------- main */

static const char usage[] =
    "usage: toolgate-gateway [--help]\n"
    "The toolgate HTTP gateway: OAuth connections through Composio, workflows, run admission.\n"
    "Configured by environment variables:";

int main(int argc, char **argv)
{
  static gw_main m; /* static: lives as long as the loop's handles */
  gw_app *app = &m.app;
  uv_loop_t loop;
  char err[256];
  int rc, exit_code = 1, loop_ok = 0;

  if (argc > 1) {
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
      tg_config_help(stdout, TG_PROG_GATEWAY, usage);
      return 0;
    }
    fprintf(stderr, "toolgate-gateway: unknown argument %s (try --help)\n", argv[1]);
    return 2;
  }
  if (tg_config_load(&app->cfg, TG_PROG_GATEWAY, err, sizeof err) != 0) {
    fprintf(stderr, "toolgate-gateway: %s\n", err);
    tg_config_free(&app->cfg);
    return 2;
  }
  tg_log_init("gateway", tg_log_level_parse(app->cfg.log_level));
  if (sodium_init() < 0) {
    tg_error("startup_failed", "{s:s}", "reason", "sodium_init failed");
    goto out;
  }
  if (app->cfg.trust_user_header)
    tg_warn("trust_user_header", "{s:s}", "message",
            "TOOLGATE_TRUST_USER_HEADER=1: X-User-Id is trusted as the caller's identity; "
            "only safe behind an authenticating proxy or in development");
  if (!tg_secret_reveal(&app->cfg.composio_api_key))
    tg_warn("config_missing", "{s:s}", "variable", "COMPOSIO_API_KEY");
  if (!app->cfg.composio_mcp_server_id)
    tg_warn("config_missing", "{s:s}", "variable", "COMPOSIO_MCP_SERVER_ID");
  if (app->cfg.n_providers == 0)
    tg_warn("config_missing", "{s:s}", "variable", "COMPOSIO_AUTH_CONFIG_<PROVIDER>");

  if (uv_loop_init(&loop) != 0) {
    tg_error("startup_failed", "{s:s}", "reason", "uv_loop_init failed");
    goto out;
  }
  loop_ok = 1;
  app->loop = &loop;

  if ((rc = tg_dbq_new(&app->dbq, &loop, app->cfg.db_path, GW_DB_CONNS)) != 0) {
    tg_error("startup_failed", "{s:s, s:s}", "reason", "cannot open the database", "error",
             tg_errname(rc));
    goto out;
  }
  m.sync_status = TG_ECANCELED;
  if ((rc = tg_dbq_submit(app->dbq, sync_work, sync_done, &m)) != 0) {
    tg_error("startup_failed", "{s:s, s:s}", "reason", "auth_configs sync", "error",
             tg_errname(rc));
    goto out;
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* only the sync job is active */
  if (m.sync_status != 0) {
    tg_error("startup_failed", "{s:s, s:s}", "reason", "auth_configs sync", "error",
             tg_errname(m.sync_status));
    goto out;
  }

  if ((rc = tg_http_client_init(&app->http, &loop)) != 0) {
    tg_error("startup_failed", "{s:s, s:s}", "reason", "http client", "error", tg_errname(rc));
    goto out;
  }
  {
    const char *key = tg_secret_reveal(&app->cfg.composio_api_key);
    rc = tg_composio_new(&app->composio, app->http, app->cfg.composio_base_url, key ? key : "",
                         (long)app->cfg.composio_timeout_ms);
  }
  if (rc != 0) {
    tg_error("startup_failed", "{s:s, s:s}", "reason", "composio client", "error", tg_errname(rc));
    goto out;
  }
  rc = tg_httpd_start(&app->httpd, &loop, app->cfg.listen_host, app->cfg.listen_port, NULL,
                      gw_route, app);
  if (rc != 0) {
    tg_error("startup_failed", "{s:s, s:s, s:s, s:i}", "reason", "listen", "error", tg_errname(rc),
             "host", app->cfg.listen_host, "port", app->cfg.listen_port);
    goto out;
  }
  uv_signal_init(&loop, &m.sigterm);
  uv_signal_init(&loop, &m.sigint);
  m.sigterm.data = m.sigint.data = &m;
  uv_signal_start(&m.sigterm, on_signal, SIGTERM);
  uv_signal_start(&m.sigint, on_signal, SIGINT);
  tg_info("listening", "{s:s, s:i, s:s, s:i, s:b}", "host", app->cfg.listen_host, "port",
          tg_httpd_port(app->httpd), "db", app->cfg.db_path, "providers", (int)app->cfg.n_providers,
          "trust_user_header", app->cfg.trust_user_header);

  if (gw_sync_start(app) != 0) /* background: readiness does not wait for it */
    tg_warn("resync_failed", "{s:s}", "error", "out of memory");

  uv_run(&loop, UV_RUN_DEFAULT);
  exit_code = 0;

out:
  if (app->httpd && !app->stopping) {
    /* start-up failed after listening: close what is open */
    tg_httpd_close(app->httpd, NULL, NULL);
  }
  if (app->http && !app->stopping)
    tg_http_client_close(app->http, NULL, NULL);
  if (loop_ok)
    uv_run(&loop, UV_RUN_DEFAULT);
  tg_composio_free(app->composio);
  json_decref(app->status_cache);
  if (app->dbq) {
    if (tg_dbq_pending(app->dbq) == 0)
      tg_dbq_free(app->dbq);
    else
      exit_code = 1;
  }
  if (loop_ok && uv_loop_close(&loop) != 0) {
    tg_error("shutdown_unclean", "{s:s}", "reason", "uv_loop_close: handles still open");
    exit_code = 1;
  }
  if (exit_code == 0)
    tg_info("stopped", NULL);
  tg_config_free(&app->cfg);
  return exit_code;
}
