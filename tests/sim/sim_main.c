/*
 * composio-sim: entry point. Reads flags and environment, starts tg_httpd, runs the loop until
 * SIGINT or SIGTERM, then closes the server (delayed answers are flushed), closes the loop and
 * exits 0. Flags win over environment variables.
 */
#define _GNU_SOURCE /* asprintf */
#include "sim.h"

#include "tg_log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: composio-sim [options]\n"
    "  --listen HOST:PORT       listen address (default 127.0.0.1:9900)\n"
    "  --api-key KEY            the only accepted x-api-key (env COMPOSIO_API_KEY; default "
    "ak_test_key)\n"
    "  --mcp-url URL            MCP server URL returned by /mcp/servers/generate (env "
    "SIM_MCP_URL;\n"
    "                           default <public-url>/v3/mcp/<mcp_server_id>)\n"
    "  --public-url URL         own base URL for link redirect_url (default http://<listen>)\n"
    "  --auth-config SLUG=AC    auth config id of a toolkit, repeatable (env SIM_AUTH_CONFIGS=\n"
    "                           \"gmail=ac_gmail,slack=ac_slack\"; default gmail, slack, github,\n"
    "                           notion as ac_<slug>)\n"
    "  --log-level LEVEL        debug|info|warn|error (env TOOLGATE_LOG_LEVEL; default info)\n"
    "  --help                   this text\n"
    "Control API (no API key): POST /_sim/accounts, PATCH /_sim/accounts/{id}, GET "
    "/_sim/accounts,\n"
    "POST /_sim/latency {ms}, POST /_sim/fail {count,status,retry_after,path_prefix},\n"
    "POST /_sim/link-outcome {outcome}, POST /_sim/expire-initiated, GET /_sim/stats,\n"
    "POST /_sim/reset. GET /healthz.\n";

static uv_signal_t sig_int, sig_term;

static int add_auth_config(sim *s, const char *spec)
{
  const char *eq = strchr(spec, '=');
  if (!eq || eq == spec || !eq[1])
    return -1;
  sim_auth_config *n = realloc(s->acs, (s->n_acs + 1) * sizeof *n);
  if (!n)
    return -1;
  s->acs = n;
  n[s->n_acs].slug = strndup(spec, (size_t)(eq - spec));
  n[s->n_acs].id = strdup(eq + 1);
  s->n_acs++;
  return 0;
}

static int add_auth_config_list(sim *s, const char *list)
{
  char *copy = strdup(list), *save = NULL;
  int rc = 0;
  for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save))
    if (*t)
      rc = add_auth_config(s, t);
  free(copy);
  return rc;
}

static void on_server_closed(void *arg)
{
  (void)arg;
  tg_info("sim_stopped", NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
  sim *s = h->data;
  if (s->stopping)
    return;
  s->stopping = 1;
  tg_info("sim_stopping", "{s:i}", "signal", signum);
  tg_httpd_close(s->srv, on_server_closed, s);
  sim_flush_delayed(s);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
}

/* Splits "host:port" or "[v6]:port". */
static int parse_listen(const char *v, char *host, size_t cap, int *port)
{
  const char *colon = strrchr(v, ':');
  if (!colon || colon == v)
    return -1;
  const char *h = v;
  size_t hl = (size_t)(colon - v);
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  if (hl >= cap)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end || p < 0 || p > 65535)
    return -1;
  *port = (int)p;
  return 0;
}

int main(int argc, char **argv)
{
  sim s = {0};
  const char *listen = "127.0.0.1:9900", *key = getenv("COMPOSIO_API_KEY");
  const char *mcp = getenv("SIM_MCP_URL"), *pub = NULL, *level = getenv("TOOLGATE_LOG_LEVEL");
  int rc = 1;
  char host[256];
  int port;
  uv_loop_t loop;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    char name[64];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      sim_free(&s);
      return 0;
    }
    if (eq) {
      snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
      v = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", a);
      v = i + 1 < argc ? argv[++i] : NULL;
    }
    if (!v) {
      fprintf(stderr, "composio-sim: %s needs a value\n%s", name, usage);
      goto out;
    }
    if (strcmp(name, "--listen") == 0)
      listen = v;
    else if (strcmp(name, "--api-key") == 0)
      key = v;
    else if (strcmp(name, "--mcp-url") == 0)
      mcp = v;
    else if (strcmp(name, "--public-url") == 0)
      pub = v;
    else if (strcmp(name, "--log-level") == 0)
      level = v;
    else if (strcmp(name, "--auth-config") == 0) {
      if (add_auth_config(&s, v) != 0) {
        fprintf(stderr, "composio-sim: bad --auth-config %s (want SLUG=ac_...)\n", v);
        goto out;
      }
    } else {
      fprintf(stderr, "composio-sim: unknown option %s\n%s", name, usage);
      goto out;
    }
  }
  tg_log_init("composio-sim", tg_log_level_parse(level));
  if (sodium_init() < 0)
    goto out;
  if (s.n_acs == 0 && getenv("SIM_AUTH_CONFIGS") &&
      add_auth_config_list(&s, getenv("SIM_AUTH_CONFIGS")) != 0) {
    fprintf(stderr, "composio-sim: bad SIM_AUTH_CONFIGS\n");
    goto out;
  }
  if (s.n_acs == 0)
    add_auth_config_list(&s, "gmail=ac_gmail,slack=ac_slack,github=ac_github,notion=ac_notion");
  if (parse_listen(listen, host, sizeof host, &port) != 0) {
    fprintf(stderr, "composio-sim: bad --listen %s (want HOST:PORT)\n", listen);
    goto out;
  }
  s.api_key = strdup(key && *key ? key : "ak_test_key");
  s.mcp_url = mcp && *mcp ? strdup(mcp) : NULL;

  uv_loop_init(&loop);
  s.loop = &loop;
  if (tg_httpd_start(&s.srv, &loop, host, port, NULL, sim_handle, &s) != 0) {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    goto out;
  }
  if (pub && *pub) {
    s.public_url = strdup(pub);
    size_t n = strlen(s.public_url);
    while (n > 0 && s.public_url[n - 1] == '/')
      s.public_url[--n] = '\0';
  } else if (asprintf(&s.public_url, strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host,
                      tg_httpd_port(s.srv)) < 0) {
    s.public_url = NULL;
  }
  uv_signal_init(&loop, &sig_int);
  uv_signal_init(&loop, &sig_term);
  sig_int.data = sig_term.data = &s;
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  tg_info("sim_listening", "{s:s, s:i, s:s, s:b, s:i}", "host", host, "port", tg_httpd_port(s.srv),
          "public_url", s.public_url ? s.public_url : "", "mcp_url_set", s.mcp_url != NULL,
          "auth_configs", (int)s.n_acs);
  uv_run(&loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&loop) == 0 ? 0 : 1;
out:
  sim_free(&s);
  return rc;
}
