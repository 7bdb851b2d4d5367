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

#include "tg_jwt.h"
#include "tg_clock.h"
#include "tg_db.h"
#include "tg_db_uri.h"

#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define DRAIN_TICK_MS 20
#define FD_RESERVE 256           /* descriptors kept for the database, Composio calls and logs */
#define NOFILE_UNLIMITED 1048576 /* what an unlimited RLIMIT_NOFILE counts as */

typedef struct gw_main {
  gw_app app;
  uv_signal_t sigterm, sigint;
  uv_timer_t drain;
  int httpd_closed, http_closed, egress_closed;
  int sync_status; /* result of the start-up auth_configs job */
} gw_main;

/* ---------------------------------------------------------------- connection limit */

/* Raises the soft open-file limit to the hard limit and returns the descriptors allowed. */
static uint64_t raise_nofile(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 1024;
  if (rl.rlim_cur != rl.rlim_max) {
    struct rlimit want = rl;
    want.rlim_cur = rl.rlim_max == RLIM_INFINITY ? NOFILE_UNLIMITED : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
      rl.rlim_cur = want.rlim_cur;
  }
  return rl.rlim_cur == RLIM_INFINITY ? NOFILE_UNLIMITED : (uint64_t)rl.rlim_cur;
}

/* TOOLGATE_MAX_CONNECTIONS bounded by the open-file limit (raised first) less FD_RESERVE, so
 * that the cap, not EMFILE, is what a flood of connections meets; logged once. */
static unsigned connection_cap(const tg_config *cfg)
{
  uint64_t nofile = raise_nofile();
  uint64_t avail = nofile > 2 * FD_RESERVE ? nofile - FD_RESERVE : nofile / 2;
  uint64_t cap = (uint64_t)cfg->max_connections < avail ? (uint64_t)cfg->max_connections : avail;
  if (cap < 1)
    cap = 1;
  tg_info("connection_limit", "{s:I, s:I, s:I, s:I}", "max_connections", (json_int_t)cap,
          "max_connections_per_peer", (json_int_t)cfg->max_per_peer, "open_files",
          (json_int_t)nofile, "configured", (json_int_t)cfg->max_connections);
  return (unsigned)cap;
}

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
    if ((rc = tg_store_auth_configs_upsert(db, p, now)) != 0) {
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

static void on_egress_closed(void *arg)
{
  gw_main *m = arg;
  m->egress_closed = 1;
}

static void on_drain(uv_timer_t *t)
{
  gw_main *m = t->data;
  if (m->httpd_closed && m->http_closed && m->egress_closed && tg_dbq_pending(m->app.dbq) == 0) {
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
  gw_catalog_stop(app);
  tg_httpd_close(app->httpd, on_httpd_closed, m);
  tg_http_client_close(app->http, on_http_closed, m);
  tg_http_client_close(app->http_egress, on_egress_closed, m);
  uv_timer_init(app->loop, &m->drain);
  m->drain.data = m;
  uv_timer_start(&m->drain, on_drain, 0, DRAIN_TICK_MS);
}

/* ---------------------------------------------------------------- main */

/* --rotate-secrets: re-seal every secret at rest under TOOLGATE_SECRET_KEY (reading old ones
 * with TOOLGATE_SECRET_KEY_OLD), in one transaction. Run it with the services stopped or
 * running with both keys set. */
static int rotate_secrets(tg_config *cfg)
{
  tg_crypto *c = NULL;
  tg_db *db = NULL;
  char err[256] = "";
  int rc, n = 0;
  if ((rc = tg_crypto_new(&c, &cfg->secret_key, &cfg->secret_key_old, err, sizeof err)) || !c) {
    fprintf(stderr, "toolgate-gateway: %s\n", c ? err : "TOOLGATE_SECRET_KEY is not set");
    return 2;
  }
  if ((rc = tg_db_open(&db, cfg->db_path, 5000)) == 0) {
    rc = tg_sealed_rotate_db(db, c, &n, err, sizeof err);
  } else {
    char where[200];
    tg_db_describe(cfg->db_path, where, sizeof where);
    snprintf(err, sizeof err, "cannot open the database %s", where);
  }
  if (rc == 0)
    printf("re-encrypted %d secret(s) under key id %s\n", n, tg_crypto_kid(c));
  else
    fprintf(stderr, "toolgate-gateway: rotation failed: %s\n", err);
  tg_db_close(db);
  tg_crypto_free(c);
  return rc ? 1 : 0;
}

/* --set-mcp-headers <mcp_connections id>: seals the JSON object on stdin ({"Header": "value"},
 * {} clears) as that connection's per-user secret headers (tg_sealed_store_mcp_headers). For
 * MCP servers that need a per-user header; Composio's per-user URLs need none. */
static int set_mcp_headers(tg_config *cfg, int64_t id)
{
  tg_crypto *c = NULL;
  tg_db *db = NULL;
  char err[256] = "";
  json_t *h = json_loadf(stdin, JSON_REJECT_DUPLICATES, NULL);
  int rc;
  if (!json_is_object(h)) {
    fprintf(stderr, "toolgate-gateway: usage: --set-mcp-headers <id> < headers.json\n");
    json_decref(h);
    return 2;
  }
  if ((rc = tg_crypto_new(&c, &cfg->secret_key, &cfg->secret_key_old, err, sizeof err)) == 0 &&
      (rc = tg_db_open(&db, cfg->db_path, 5000)) == 0)
    rc = tg_sealed_store_mcp_headers(db, c, id, h);
  if (rc)
    fprintf(stderr, "toolgate-gateway: cannot store the headers: %s\n",
            *err              ? err
            : rc == TG_ESTATE ? "TOOLGATE_SECRET_KEY is not set"
                              : tg_strerror(rc));
  tg_db_close(db);
  tg_crypto_free(c);
  json_decref(h);
  return rc ? 1 : 0;
}

/* --generate-secret-key: prints a new TOOLGATE_SECRET_KEY value, "<kid>:<base64 32 bytes>". */
static int generate_secret_key(void)
{
  unsigned char k[32], id[4];
  char b64[sodium_base64_ENCODED_LEN(sizeof k, sodium_base64_VARIANT_ORIGINAL)], kid[9];
  randombytes_buf(k, sizeof k);
  randombytes_buf(id, sizeof id);
  sodium_bin2hex(kid, sizeof kid, id, sizeof id);
  sodium_bin2base64(b64, sizeof b64, k, sizeof k, sodium_base64_VARIANT_ORIGINAL);
  printf("k%s:%s\n", kid, b64);
  sodium_memzero(k, sizeof k);
  sodium_memzero(b64, sizeof b64);
  return 0;
}

static const char usage[] =
    "usage: toolgate-gateway [--help | --version | --routes | --rotate-secrets |\n"
    "                         --generate-secret-key |\n"
    "                         --set-mcp-headers <mcp_connection id> < headers.json]\n"
    "The toolgate HTTP gateway: OAuth connections through Composio, workflows, run admission.\n"
    "  --rotate-secrets       re-seal every stored secret under TOOLGATE_SECRET_KEY (reads\n"
    "                         TOOLGATE_SECRET_KEY_OLD too), then exit\n"
    "  --generate-secret-key  print a new key for TOOLGATE_SECRET_KEY, then exit\n"
    "  --set-mcp-headers ID   store per-user MCP headers (JSON object on stdin) for\n"
    "                         mcp_connections row ID, encrypted, then exit\n"
    "  --routes               print the route table, one \"METHOD /path\" a line (\"{*}\" for\n"
    "                         an id segment; \" static\" after the web UI's files), then exit\n"
    "  --version              print the version, then exit";

/* The admin commands; at most one per invocation. */
enum { RUN_SERVER, ROTATE_SECRETS, GENERATE_SECRET_KEY, SET_MCP_HEADERS, HELP, VERSION, ROUTES };

/* Reads the command line into *command (RUN_SERVER when none) and *mcp_id. Returns 0, or 2
 * after printing what is wrong and the usage. */
static int parse_command_line(int argc, char **argv, int *command, int64_t *mcp_id)
{
  /* Each option stores its command through the flag pointer (getopt_long then returns 0). */
  const struct option options[] = {
      {"help", no_argument, command, HELP},
      {"version", no_argument, command, VERSION},
      {"routes", no_argument, command, ROUTES},
      {"rotate-secrets", no_argument, command, ROTATE_SECRETS},
      {"generate-secret-key", no_argument, command, GENERATE_SECRET_KEY},
      {"set-mcp-headers", required_argument, command, SET_MCP_HEADERS},
      {NULL, 0, NULL, 0}};
  int opt, given = 0;
  *command = RUN_SERVER;
  while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    if (opt == 'h')
      *command = HELP;
    else if (opt != 0) /* '?': getopt printed the option and what is wrong with it */
      goto usage;
    if (++given > 1) {
      fprintf(stderr, "toolgate-gateway: give at most one of the options\n");
      goto usage;
    }
    if (*command == SET_MCP_HEADERS && tg_config_parse_int(optarg, 1, INT64_MAX, mcp_id) != 0) {
      fprintf(stderr,
              "toolgate-gateway: --set-mcp-headers: expected an mcp_connections id "
              "(a positive integer), got \"%s\"\n",
              optarg);
      goto usage;
    }
  }
  if (optind == argc)
    return 0;
  fprintf(stderr, "toolgate-gateway: unexpected argument %s\n", argv[optind]);
usage:
  fprintf(stderr, "%s\n", usage);
  return 2;
}

int main(int argc, char **argv)
{
  static gw_main m; /* static: lives as long as the loop's handles */
  gw_app *app = &m.app;
  uv_loop_t loop;
  char err[256], where[256];
  int rc, exit_code = 1, loop_ok = 0, command;
  int64_t mcp_id = 0;

  if (parse_command_line(argc, argv, &command, &mcp_id) != 0)
    return 2;
  if (command == HELP) {
    tg_config_help(stdout, TG_PROG_GATEWAY, usage);
    return 0;
  }
  if (command == VERSION) {
    printf("toolgate-gateway %s\n", TG_VERSION);
    return 0;
  }
  if (command == ROUTES)
    return gw_routes_write(stdout) == 0 ? 0 : 1;
  if (command == GENERATE_SECRET_KEY)
    return sodium_init() < 0 ? 1 : generate_secret_key();
  if (tg_config_load(&app->cfg, TG_PROG_GATEWAY, err, sizeof err) != 0) {
    fprintf(stderr, "toolgate-gateway: %s\n", err);
    tg_config_free(&app->cfg);
    return 2;
  }
  tg_log_init("gateway", tg_log_level_parse(app->cfg.log_level));
  tg_db_set_statement_timeout_ms((int)app->cfg.db_statement_timeout_ms);
  if (sodium_init() < 0) {
    tg_error("startup_failed", "{s:s}", "reason", "sodium_init failed");
    goto out;
  }
  if (command != RUN_SERVER) {
    exit_code =
        command == SET_MCP_HEADERS ? set_mcp_headers(&app->cfg, mcp_id) : rotate_secrets(&app->cfg);
    tg_config_free(&app->cfg);
    return exit_code;
  }
  {
    const char *jwt = tg_secret_reveal(&app->cfg.jwt_secret);
    int n_secrets = 0;
    if (jwt && strlen(jwt) < TG_JWT_MIN_SECRET) {
      fprintf(stderr, "toolgate-gateway: TOOLGATE_JWT_SECRET must be at least %d bytes\n",
              TG_JWT_MIN_SECRET);
      tg_error("startup_failed", "{s:s}", "reason", "TOOLGATE_JWT_SECRET is too short");
      goto out;
    }
    if (!jwt && !app->cfg.trust_user_header)
      tg_warn("no_identity_configured", "{s:s}", "message",
              "neither TOOLGATE_JWT_SECRET nor TOOLGATE_TRUST_USER_HEADER is set: every /api "
              "request will get 401");
    if (tg_sealed_startup(&app->cfg, &app->crypto, &n_secrets, err, sizeof err) != 0) {
      fprintf(stderr, "toolgate-gateway: refusing to start: %s\n", err);
      tg_error("startup_failed", "{s:s, s:s}", "reason", "secrets at rest", "detail", err);
      goto out;
    }
    tg_info("secrets_at_rest", "{s:s?, s:i}", "key_id", tg_crypto_kid(app->crypto), "encrypted",
            n_secrets);
    if (gw_ratelimit_new(&app->runlimit, app->cfg.run_rate_per_min) != 0 || gw_admit_init(app) != 0)
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
    /* the second client, for connectors' user-supplied URLs: the egress policy, CONNECT_TO and
     * CA file of the configuration, as the worker's */
    *err = 0;
    if ((rc = tg_egress_new(&app->egress, app->cfg.egress_allow, err, sizeof err)) == 0 &&
        (rc = tg_http_client_init(&app->http_egress, &loop)) == 0) {
      tg_http_client_set_egress(app->http_egress, app->egress);
      if ((rc = tg_http_client_set_connect_to(app->http_egress, app->cfg.connect_to)))
        snprintf(err, sizeof err, "TOOLGATE_CONNECT_TO: expected host:port:addr:port entries");
      else if ((rc = tg_http_client_set_ca_file(app->http_egress, app->cfg.ca_file)))
        snprintf(err, sizeof err, "TOOLGATE_CA_FILE: %s", tg_strerror(rc));
      else if ((rc = tg_oauth2_tokens_new(&app->oauth2_tokens, app->http_egress)))
        snprintf(err, sizeof err, "the OAuth2 token cache: %s", tg_strerror(rc));
    }
    if (rc != 0) {
      tg_error("startup_failed", "{s:s, s:s}", "reason", "egress", "detail",
               *err ? err : tg_errname(rc));
      goto out;
    }
  }
  {
    const char *key = tg_secret_reveal(&app->cfg.composio_api_key);
    rc = tg_composio_new(&app->composio, app->http, app->cfg.composio_base_url, key ? key : "",
                         (long)app->cfg.composio_timeout_ms);
  }
  if (rc == 0)
    rc = gw_checkpool_new(&app->checks, app);
  if (rc != 0) {
    tg_error("startup_failed", "{s:s, s:s}", "reason", "composio client", "error", tg_errname(rc));
    goto out;
  }
  if ((rc = gw_static_load(&app->ui, app->cfg.ui_dir)) != 0) /* before the loop: read once */
    tg_warn("ui_not_loaded", "{s:s, s:s, s:s}", "dir", app->cfg.ui_dir, "error", tg_errname(rc),
            "hint", "GET / serves the OAuth landing page only; set TOOLGATE_UI_DIR");
  else
    tg_info("ui_loaded", "{s:s, s:i}", "dir", app->cfg.ui_dir, "files",
            (int)gw_static_count(app->ui));
  {
    tg_httpd_limits lim; /* TOOLGATE_MAX_* and *_TIMEOUT_MS (README "Security") */
    tg_httpd_limits_default(&lim);
    lim.max_url_bytes = (size_t)app->cfg.max_url_bytes;
    lim.max_header_bytes = (size_t)app->cfg.max_header_bytes;
    lim.max_headers = (size_t)app->cfg.max_headers;
    lim.max_body_bytes = (size_t)app->cfg.max_body_bytes;
    lim.header_timeout_ms = (uint64_t)app->cfg.header_timeout_ms;
    lim.body_timeout_ms = (uint64_t)app->cfg.body_timeout_ms;
    lim.idle_timeout_ms = (uint64_t)app->cfg.idle_timeout_ms;
    lim.max_connections = connection_cap(&app->cfg);
    lim.max_connections_per_peer = (unsigned)app->cfg.max_per_peer;
    lim.pressure_header_timeout_ms = (uint64_t)app->cfg.pressure_timeout_ms;
    rc = tg_httpd_start(&app->httpd, &loop, app->cfg.listen_host, app->cfg.listen_port, &lim,
                        gw_route, app);
  }
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
  tg_db_describe(app->cfg.db_path, where, sizeof where);
  tg_info("listening", "{s:s, s:i, s:s, s:i, s:b}", "host", app->cfg.listen_host, "port",
          tg_httpd_port(app->httpd), "db", where, "providers", (int)app->cfg.n_providers,
          "trust_user_header", app->cfg.trust_user_header);

  if (gw_sync_start(app) != 0) /* background: readiness does not wait for it */
    tg_warn("resync_failed", "{s:s}", "error", "out of memory");
  if ((rc = gw_catalog_start(app)) != 0) /* background, as the re-sync */
    tg_warn("catalog_start_failed", "{s:s}", "error", tg_errname(rc));
  gw_packages_start(app); /* background: workflow writes do not wait for it */

  uv_run(&loop, UV_RUN_DEFAULT);
  exit_code = 0;

out:
  if (app->httpd && !app->stopping) {
    /* start-up failed after listening: close what is open */
    tg_httpd_close(app->httpd, NULL, NULL);
  }
  if (app->http && !app->stopping)
    tg_http_client_close(app->http, NULL, NULL);
  gw_catalog_stop(app);
  if (app->http_egress && !app->stopping)
    tg_http_client_close(app->http_egress, NULL, NULL);
  if (loop_ok)
    uv_run(&loop, UV_RUN_DEFAULT);
  gw_checkpool_free(app->checks);
  gw_catalog_free(app);
  tg_oauth2_tokens_free(app->oauth2_tokens); /* http_egress closed: no fetch in flight */
  gw_admit_cleanup(app);
  tg_composio_free(app->composio);
  tg_accounts_cache_free(app->status_cache);
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
  tg_crypto_free(app->crypto);
  tg_egress_free(app->egress);
  gw_ratelimit_free(app->runlimit);
  gw_static_free(app->ui);
  tg_config_free(&app->cfg);
  return exit_code;
}
