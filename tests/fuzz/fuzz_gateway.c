/*
 * libFuzzer target for the gateway's request handling with the REAL router and handlers:
 * bytes -> tg_httpd (llhttp, caps, pipelining, chunked bodies) -> gw_route (404/405, identity
 * by bearer JWT or X-User-Id, rate limit) -> every handler with its JSON body, its database jobs
 * on a temp SQLite file (tg_dbq), workflow validation, admission with secret inputs sealed under
 * a test key, and Composio calls that fail fast (its base URL is a closed port on 127.0.0.1).
 * The gateway sources except gw_main.c are linked as the toolgate_gateway_core library.
 *
 * Transport: the real server runs in-process on 127.0.0.1 and each input is written on one
 * loopback connection, followed by a sentinel request (GET /__end, answered by a wrapper before
 * gw_route). Requests on a connection are answered strictly in order, so the sentinel's answer
 * means every request of the input was answered; the loop runs until then, until the server
 * closes the connection, or for at most INPUT_MS. Then the loop is drained until no database job
 * is pending, so no handler outlives its input. A connection-less hook in tg_httpd was
 * considered and not built: its write, pause and close paths are libuv stream calls, and a
 * second path through them only for tests would fork the code being tested.
 *
 * Findings: crashes, sanitizer reports, leaks, a hang (libFuzzer -timeout, or no answer within
 * INPUT_MS), a response that is not "HTTP/1.1 ddd" with a Content-Length, and any 500 (bad input
 * must get a 4xx; the unreachable Composio a 502/503).
 */
#define _GNU_SOURCE /* memmem */
#include "gw.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define INPUT_MS 5000 /* per input; libFuzzer's -timeout is 10 s in CMakeLists.txt */

static gw_app app;
static uv_loop_t loop;
static struct sockaddr_in addr;
static char db_path[64];

static void on_req(tg_httpd_req *r, void *arg)
{
  if (strcmp(tg_httpd_path(r), "/__end") == 0) {
    tg_httpd_respond(r, 200, NULL, "__END__", 7);
    return;
  }
  gw_route(r, arg);
}

/* A 127.0.0.1 port nothing listens on: bound, read, closed. */
static int closed_port(void)
{
  struct sockaddr_in a = {0};
  socklen_t n = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &n) != 0)
    abort();
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static void remove_db(void)
{
  char p[80];
  unlink(db_path);
  snprintf(p, sizeof p, "%s-wal", db_path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", db_path);
  unlink(p);
}

static void die(const char *what, const char *detail)
{
  fprintf(stderr, "fuzz_gateway: %s: %s\n", what, detail);
  abort();
}

#define SEED_DEFINITION                                                                            \
  "{\"title\":\"t\",\"nodes\":[{\"id\":\"s\",\"type\":\"Start\",\"config\":{"                      \
  "\"inputVariables\":[{\"name\":\"message\",\"type\":\"string\",\"required\":true},"              \
  "{\"name\":\"api_token\",\"type\":\"string\",\"secret\":true}]}},{\"id\":\"m\",\"type\":"        \
  "\"MCP\",\"config\":{\"provider\":\"everything\",\"tool\":\"echo\",\"arguments\":{"              \
  "\"message\":\"{{inputs.message}} {{inputs.api_token}}\"}}},{\"id\":\"e\",\"type\":\"End\","     \
  "\"config\":{}}],\"connections\":[{\"id\":\"c1\",\"from\":\"s\",\"to\":\"m\"},{\"id\":"          \
  "\"c2\",\"from\":\"m\",\"to\":\"e\"}]}"

/* auth_configs rows for the configured providers (what gw_main's start-up job does). */
static void seed_db(void)
{
  tg_db *db;
  if (tg_db_open(&db, app.cfg.db_path, 5000) != 0)
    die("open", app.cfg.db_path);
  for (size_t i = 0; i < app.cfg.n_providers; i++) {
    const tg_provider *p = &app.cfg.providers[i];
    if (tg_db_exec(db, NULL,
                   "INSERT OR IGNORE INTO auth_configs (id, provider, toolkit_slug, display_name, "
                   "created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0)",
                   "ssss", p->auth_config_id, p->provider, p->toolkit_slug, p->display_name))
      die("seed", "auth_configs");
  }
  /* Known ids for the seeds (tests/fuzz/corpus/gateway): alice has a workflow with a secret
   * input and a failed run (retry), no connections (admission without a Composio call); bob has
   * an ACTIVE connection (admission calls the unreachable Composio: 503). */
  if (tg_db_exec(db, NULL,
                 "INSERT OR IGNORE INTO users (id, credits, created_at) VALUES ('alice', "
                 "1000000000, 0), ('bob', 1000000000, 0)",
                 "") ||
      tg_db_exec(db, NULL,
                 "INSERT OR IGNORE INTO workflows (id, user_id, name, definition, created_at, "
                 "updated_at) VALUES ('wf_fuzz', 'alice', 'f', ?1, 0, 0), ('wf_bob', 'bob', 'f', "
                 "?1, 0, 0)",
                 "s", SEED_DEFINITION) ||
      tg_db_exec(db, NULL,
                 "INSERT OR IGNORE INTO workflow_runs (id, workflow_id, user_id, status, inputs, "
                 "available_at, created_at) VALUES ('run_fuzz', 'wf_fuzz', 'alice', 'failed', "
                 "'{\"api_token\":\"[REDACTED]\",\"message\":\"m\"}', 0, 0)",
                 "") ||
      tg_db_exec(db, NULL,
                 "INSERT OR IGNORE INTO connected_accounts (id, user_id, provider, auth_config_id, "
                 "composio_account_id, status, created_at, updated_at) VALUES (1, 'bob', "
                 "'everything', 'ac_fuzz_everything', 'ca_fuzz', 'ACTIVE', 0, 0)",
                 ""))
    die("seed", "rows");
  tg_db_close(db);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  char url[64], err[256];
  tg_httpd_limits lim;
  int n = 0;
  (void)argc, (void)argv;
  snprintf(db_path, sizeof db_path, "/tmp/toolgate-fuzz-gw-%ld.db", (long)getpid());
  remove_db();
  atexit(remove_db);
  snprintf(url, sizeof url, "http://127.0.0.1:%d", closed_port());
  setenv("TOOLGATE_DB", db_path, 1);
  setenv("COMPOSIO_BASE_URL", url, 1);
  setenv("COMPOSIO_API_KEY", "fuzz-composio-key-0123456789", 1);
  setenv("COMPOSIO_MCP_SERVER_ID", "mcp_fuzz", 1);
  setenv("COMPOSIO_AUTH_CONFIG_GMAIL", "ac_fuzz_gmail", 1);
  setenv("COMPOSIO_AUTH_CONFIG_EVERYTHING", "ac_fuzz_everything", 1);
  setenv("TOOLGATE_REDIRECT_URL", "http://127.0.0.1:1/api/composio-redirect", 1);
  setenv("TOOLGATE_UI_URL", "http://127.0.0.1:1/", 1);
  setenv("TOOLGATE_TRUST_USER_HEADER", "1", 1);
  setenv("TOOLGATE_JWT_SECRET", "fuzz-secret-0123456789abcdef0123", 1);
  setenv("TOOLGATE_WEBHOOK_SECRET", "whsec_ZnV6ei13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5", 1);
  setenv("TOOLGATE_SECRET_KEY", "fuzz:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", 1);
  setenv("TOOLGATE_RUN_RATE_PER_MIN", "0", 1);
  setenv("TOOLGATE_COMPOSIO_TIMEOUT_MS", "2000", 1);
  setenv("TOOLGATE_MAX_BODY_BYTES", "65536", 1);
  if (!getenv("TOOLGATE_LOG_LEVEL"))
    setenv("TOOLGATE_LOG_LEVEL", "error", 1);
  if (tg_config_load(&app.cfg, TG_PROG_GATEWAY, err, sizeof err) != 0)
    die("config", err);
  tg_log_init("gateway", tg_log_level_parse(app.cfg.log_level));
  if (tg_sealed_startup(&app.cfg, &app.crypto, &n, err, sizeof err) != 0)
    die("crypto", err);
  seed_db();
  if (gw_ratelimit_new(&app.runlimit, app.cfg.run_rate_per_min) != 0 || gw_admit_init(&app) != 0 ||
      uv_loop_init(&loop))
    die("init", "ratelimit/loop");
  app.loop = &loop;
  if (tg_dbq_new(&app.dbq, &loop, app.cfg.db_path, GW_DB_CONNS) != 0 ||
      tg_http_client_init(&app.http, &loop) != 0 ||
      tg_composio_new(&app.composio, app.http, app.cfg.composio_base_url,
                      tg_secret_reveal(&app.cfg.composio_api_key),
                      (long)app.cfg.composio_timeout_ms) != 0 ||
      gw_checkpool_new(&app.checks, &app) != 0)
    die("init", "dbq/http/composio");
  tg_httpd_limits_default(&lim);
  lim.max_body_bytes = (size_t)app.cfg.max_body_bytes;
  lim.header_timeout_ms = lim.body_timeout_ms = lim.idle_timeout_ms = 2000;
  if (tg_httpd_start(&app.httpd, &loop, "127.0.0.1", 0, &lim, on_req, &app))
    die("init", "listen");
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)tg_httpd_port(app.httpd));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return 0;
}

/*
 * Walks the responses in out (each "HTTP/1.1 ddd ...", headers, Content-Length bytes of body:
 * tg_httpd always sends Content-Length, except on an interim 100 Continue). Aborts on anything else
 * and on a 500: every handler must turn bad input into a 4xx (and the unreachable Composio into a
 * 502/503). A response cut short (the connection closed) ends the walk. Returns 1 when the last
 * complete response is the sentinel's.
 */
static int check_out(const char *out, size_t n)
{
  size_t at = 0;
  int sentinel = 0;
  while (at < n) {
    const char *r = out + at, *hend, *cl;
    size_t left = n - at, hlen, blen;
    int status;
    if (left < 13)
      break;
    if (memcmp(r, "HTTP/1.1 ", 9) != 0 || r[12] != ' ' || r[9] < '1' || r[9] > '5' || r[10] < '0' ||
        r[10] > '9' || r[11] < '0' || r[11] > '9') {
      fprintf(stderr, "fuzz_gateway: not a status line at byte %zu\n", at);
      abort();
    }
    status = (r[9] - '0') * 100 + (r[10] - '0') * 10 + (r[11] - '0');
    if (!(hend = memmem(r, left, "\r\n\r\n", 4)))
      break;
    hlen = (size_t)(hend - r) + 4;
    cl = memmem(r, hlen, "\r\nContent-Length: ", 18);
    if (status < 200) { /* 100 Continue: no body */
      at += hlen;
      continue;
    }
    if (!cl) {
      fprintf(stderr, "fuzz_gateway: a response without Content-Length\n");
      abort();
    }
    blen = strtoul(cl + 18, NULL, 10);
    if (status == 500) {
      fprintf(stderr, "fuzz_gateway: a 500 answer:\n%.*s\n", (int)(left > 800 ? 800 : left), r);
      abort();
    }
    if (hlen + blen > left)
      break;
    sentinel = blen == 7 && memcmp(r + hlen, "__END__", 7) == 0;
    at += hlen + blen;
  }
  return sentinel;
}

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const char end[] = "\r\n\r\nGET /__end HTTP/1.1\r\nHost: x\r\n\r\n";
  static char out[1 << 17];
  size_t n_out = 0, off = 0, total = size + sizeof end - 1;
  int fd = socket(AF_INET, SOCK_STREAM, 0), eof = 0;
  struct linger lg = {1, 0};
  uint64_t deadline = now_ms() + INPUT_MS;
  if (fd < 0)
    abort();
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
    abort();
  fcntl(fd, F_SETFL, O_NONBLOCK);
  while (!eof && now_ms() < deadline) {
    struct pollfd p = {fd, POLLIN | (off < total ? POLLOUT : 0), 0};
    uv_run(&loop, UV_RUN_NOWAIT);
    if (poll(&p, 1, 1) < 0) {
      if (errno != EINTR) /* libFuzzer's timeout alarm interrupts polls */
        abort();
      continue;
    }
    if ((p.revents & POLLOUT) && off < total) {
      const char *src = off < size ? (const char *)data + off : end + (off - size);
      size_t len = off < size ? size - off : total - off;
      ssize_t w = send(fd, src, len, MSG_NOSIGNAL);
      if (w > 0)
        off += (size_t)w;
      else if (w < 0 && errno != EAGAIN)
        off = total; /* the server closed: stop writing */
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, out + n_out, sizeof out - 1 - n_out, 0);
      if (r > 0) {
        n_out += (size_t)r;
        out[n_out] = 0;
        if (n_out + 1 >= sizeof out ||
            (n_out >= 7 && memcmp(out + n_out - 7, "__END__", 7) == 0 && check_out(out, n_out)))
          eof = 1;
      } else if (r == 0 || errno != EAGAIN) {
        eof = 1;
      }
    }
  }
  if (!eof) {
    fprintf(stderr, "fuzz_gateway: no answer to the sentinel within %d ms\n", INPUT_MS);
    abort();
  }
  (void)check_out(out, n_out);
  close(fd); /* RST */
  /* The server sees the reset; handlers of requests whose connection closed early finish. */
  deadline = now_ms() + INPUT_MS;
  do
    uv_run(&loop, UV_RUN_NOWAIT);
  while (tg_dbq_pending(app.dbq) > 0 && now_ms() < deadline && (usleep(200), 1));
  for (int i = 0; i < 4; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  return 0;
}
