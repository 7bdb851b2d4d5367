/*
 * toolgate-mcp: a small MCP client for operators and tests, built on tg_mcp.
 *
 *   toolgate-mcp [--header 'Name: value']... [--timeout MS] URL            lists tools
 *   toolgate-mcp [--header 'Name: value']... [--timeout MS] URL TOOL [JSON] calls a tool
 *   toolgate-mcp --bench N [--concurrency C] URL TOOL [JSON]           measures calls/s
 *   (any form) --protocol-version V: offer V (2025-11-25 default, 2025-06-18, 2025-03-26)
 *   (any form) --auth [--client-id ID] [--client-secret S] [--client-metadata-url URL]
 *              [--redirect-uri URL] [--grant client_credentials]: MCP authorization (tg_mcp_auth)
 *              on a 401/403; the browser leg is followed headlessly: a GET of the authorization
 *              URL whose redirect (Location, not followed) is taken as the user's return.
 *
 * Under the MCP conformance runner (env MCP_CONFORMANCE_SCENARIO, the server URL as the last
 * argument) it does what each client scenario expects: `initialize` connects only; `tools_call`,
 * `sse-retry` and `elicitation-sep1034-client-defaults` list the tools and call the scenario's
 * tool (add_numbers, test_reconnection, test_client_elicitation_defaults); the "auth/..."
 * scenarios turn --auth on, take credentials from MCP_CONFORMANCE_CONTEXT (client_id,
 * client_secret, idp_*), then list the tools and call test-tool; other scenarios list.
 *
 * Listing prints "name<TAB>first line of description" per tool. A call prints the CallToolResult
 * JSON on stdout. Exit status: 0 success, 2 the tool reported isError:true or the command line
 * is wrong (an unknown option, a missing or bad value: the reason and the usage on stderr), 1
 * any other failure (the reason on stderr). It opens the optional GET stream (server requests such
 * as elicitation are answered: ping {}, elicitation with the schema's defaults, others -32601). It
 * runs its own uv loop, closes the MCP session (DELETE), the HTTP client and the loop, and fails if
 * the loop does not close clean. Header values are never printed.
 */
#include "tg_config.h"
#include "tg_err.h"
#include "tg_http.h"
#include "tg_log.h"
#include "tg_mcp.h"
#include "tg_mcp_auth.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct cli {
  tg_http_client *http;
  tg_mcp_client *mcp;
  tg_mcp_auth *auth;        /* --auth: NULL otherwise */
  tg_http_transfer *browse; /* the headless authorization GET in flight */
  int exit_code;
  const char *then_tool; /* conformance: tool to call after listing */
  json_t *then_args;
  /* bench */
  const char *tool;
  json_t *args;
  long bench_n, warmup, concurrency;
  long started, done, errors;
  uint64_t t0_ns;
  double cpu0_ms, wait0_ms;
  double *lat_ms;
} cli;

#define MAX_CONCURRENCY 1024
#define MAX_TIMEOUT_MS (24 * 3600 * 1000L)
#define MAX_BENCH_CALLS 100000000L

enum {
  OPT_HEADER = 256,
  OPT_TIMEOUT,
  OPT_PROTOCOL_VERSION,
  OPT_BENCH,
  OPT_CONCURRENCY,
  OPT_VERSION,
  OPT_CLIENT_ID,
  OPT_CLIENT_SECRET,
  OPT_CLIENT_METADATA_URL,
  OPT_REDIRECT_URI,
  OPT_GRANT
};

static void usage(FILE *f)
{
  fprintf(
      f,
      "usage: toolgate-mcp [--header 'Name: value']... [--timeout MS] URL [TOOL [JSON-ARGS]]\n"
      "  URL                 list the server's tools (name and first line of description)\n"
      "  URL TOOL [ARGS]     call TOOL with the JSON object ARGS (default {}) and print the\n"
      "                      CallToolResult; exit 2 when it has isError:true\n"
      "  --header 'N: v'     extra HTTP header on every request (repeatable; never printed)\n"
      "  --timeout MS        per-request timeout (default 30000)\n"
      "  --protocol-version V  MCP version offered in initialize: 2025-11-25 (default),\n"
      "                      2025-06-18 or 2025-03-26\n"
      "  --notifications     ask for progress of the call; print it and server notifications\n"
      "                      (list_changed, logging) on stderr\n"
      "  --bench N           call TOOL N times (after 50 warm-up calls) in one session and print\n"
      "                      one JSON line: calls/s, latency p50/p99, CPU ms per call and ms\n"
      "                      per call spent waiting for a CPU (run queue)\n"
      "  --concurrency C     calls in flight during --bench (1 to %d, default 1)\n"
      "  --auth              answer 401/403 with MCP authorization (OAuth 2.1: discovery,\n"
      "                      registration, PKCE); the sign-in page is fetched headlessly and\n"
      "                      its redirect taken as the user's answer (test servers only)\n"
      "  --client-id ID      pre-registered OAuth client (with --client-secret S)\n"
      "  --client-secret S   its secret (never printed)\n"
      "  --client-metadata-url URL  Client ID Metadata Document URL, used as client_id where\n"
      "                      the authorization server supports it\n"
      "  --redirect-uri URL  redirect URI to register and send (default\n"
      "                      http://127.0.0.1/callback)\n"
      "  --grant client_credentials  use the client credentials grant (default: chosen from\n"
      "                      the authorization server's metadata)\n"
      "  --version           print the version, then exit\n"
      "  TOOLGATE_LOG_LEVEL  debug|info|warn|error for the JSON log on stderr (default warn)\n"
      "Exit status: 0 success, 1 failure, 2 isError:true or a wrong command line.\n",
      MAX_CONCURRENCY);
}

static void on_http_closed(void *arg)
{
  (void)arg;
}

static void on_mcp_closed(void *arg)
{
  cli *c = arg;
  if (c->browse)
    tg_http_cancel(c->browse);
  c->browse = NULL;
  tg_mcp_auth_free(c->auth);
  c->auth = NULL;
  tg_http_client_close(c->http, on_http_closed, NULL);
}

/* The headless browser leg: the authorization endpoint answered; its Location is where the
 * browser would go next (the redirect URI with code and state). */
static void on_authorize_page(void *arg, int err, const tg_http_response *resp)
{
  cli *c = arg;
  const char *loc = !err && resp->t && resp->status >= 300 && resp->status < 400
                        ? tg_http_header(resp->t, "Location")
                        : NULL;
  c->browse = NULL;
  if (!loc)
    fprintf(stderr, "toolgate-mcp: the authorization endpoint did not redirect (HTTP %ld)\n",
            resp->status);
  tg_mcp_auth_redirected(c->auth, loc);
}

static int on_browse(void *arg, tg_mcp_auth *a, const char *authorization_url)
{
  cli *c = arg;
  tg_http_request req = {.url = authorization_url, .timeout_ms = 10000, .max_body = 64 << 10};
  (void)a;
  return tg_http_send(c->http, &req, on_authorize_page, c, &c->browse);
}

static void finish(cli *c, int code)
{
  c->exit_code = code;
  tg_mcp_close(c->mcp, on_mcp_closed, c);
}

static void on_result(void *arg, const tg_mcp_error *err, json_t *result);

static void on_connected(void *arg, const tg_mcp_error *err)
{
  cli *c = arg;
  if (err)
    fprintf(stderr, "toolgate-mcp: %s (%s)\n", err->message, tg_errname(err->err));
  finish(c, err ? 1 : 0);
}

static void on_notify(void *arg, const char *method, json_t *params)
{
  char *text = params ? json_dumps(params, JSON_COMPACT) : NULL;
  (void)arg;
  fprintf(stderr, "notification: %s %s\n", method, text ? text : "");
  free(text);
}

static void on_progress(void *arg, double progress, double total, const char *message)
{
  (void)arg;
  if (total >= 0)
    fprintf(stderr, "progress: %g/%g%s%s\n", progress, total, message ? " " : "",
            message ? message : "");
  else
    fprintf(stderr, "progress: %g%s%s\n", progress, message ? " " : "", message ? message : "");
}

static void on_tools(void *arg, const tg_mcp_error *err, json_t *tools)
{
  cli *c = arg;
  size_t i;
  json_t *t;
  if (err) {
    fprintf(stderr, "toolgate-mcp: %s (%s)\n", err->message, tg_errname(err->err));
    finish(c, 1);
    return;
  }
  if (c->then_tool) {
    int rc = tg_mcp_call_tool(c->mcp, c->then_tool, c->then_args, on_result, c);
    if (rc) {
      fprintf(stderr, "toolgate-mcp: %s\n", tg_strerror(rc));
      finish(c, 1);
    }
    return;
  }
  json_array_foreach(tools, i, t)
  {
    const char *name = json_string_value(json_object_get(t, "name"));
    const char *desc = json_string_value(json_object_get(t, "description"));
    size_t n = desc ? strcspn(desc, "\r\n") : 0;
    printf("%s\t%.*s\n", name ? name : "?", (int)n, desc ? desc : "");
  }
  finish(c, 0);
}

static void on_result(void *arg, const tg_mcp_error *err, json_t *result)
{
  cli *c = arg;
  char *text;
  if (err) {
    fprintf(stderr, "toolgate-mcp: %s (%s)\n", err->message, tg_errname(err->err));
    finish(c, 1);
    return;
  }
  text = json_dumps(result, JSON_INDENT(2));
  if (!text) {
    fprintf(stderr, "toolgate-mcp: out of memory\n");
    finish(c, 1);
    return;
  }
  printf("%s\n", text);
  free(text);
  finish(c, json_is_true(json_object_get(result, "isError")) ? 2 : 0);
}

/* ---- --bench ----------------------------------------------------------------------------- */

static double cpu_ms(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Time this process was ready to run but waited for a CPU (ms; /proc/self/schedstat, field 2, in
 * ns), or -1 where that file is missing. On a shared machine this shows how much of a call's
 * latency is waiting for a core rather than work. */
static double runq_wait_ms(void)
{
  unsigned long long run_ns, wait_ns;
  FILE *f = fopen("/proc/self/schedstat", "r");
  int n = f ? fscanf(f, "%llu %llu", &run_ns, &wait_ns) : 0;
  if (f)
    fclose(f);
  return n == 2 ? (double)wait_ns / 1e6 : -1.0;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void bench_next(cli *c);

typedef struct slot {
  cli *c;
  long index; /* call number; < warmup means warm-up */
  uint64_t t0;
} slot;

static void on_bench_result(void *arg, const tg_mcp_error *err, json_t *result)
{
  slot *s = arg;
  cli *c = s->c;
  (void)result;
  if (err) {
    c->errors++;
    if (c->errors == 1)
      fprintf(stderr, "toolgate-mcp: bench call failed: %s\n", err->message);
  }
  if (s->index >= c->warmup)
    c->lat_ms[s->index - c->warmup] = (double)(uv_hrtime() - s->t0) / 1e6;
  c->done++;
  free(s);
  if (c->done == c->warmup) { /* warm-up over: start the clock */
    c->t0_ns = uv_hrtime();
    c->cpu0_ms = cpu_ms();
    c->wait0_ms = runq_wait_ms();
  }
  bench_next(c);
}

static void bench_report(cli *c)
{
  double secs = (double)(uv_hrtime() - c->t0_ns) / 1e9, cpu = cpu_ms() - c->cpu0_ms;
  double wait = runq_wait_ms();
  long n = c->bench_n;
  qsort(c->lat_ms, (size_t)n, sizeof *c->lat_ms, cmp_double);
  const char *version = tg_mcp_protocol_version(c->mcp);
  printf("{\"client\":\"toolgate-mcp\",\"protocol_version\":\"%s\",\"calls\":%ld,"
         "\"concurrency\":%ld,\"errors\":%ld,"
         "\"seconds\":%.3f,\"calls_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
         "\"cpu_ms_per_call\":%.4f,\"runq_wait_ms_per_call\":%.4f}\n",
         version ? version : "", n, c->concurrency, c->errors, secs, (double)n / secs,
         c->lat_ms[n / 2],
         c->lat_ms[(long)floor((double)n * 0.99) < n ? (long)floor((double)n * 0.99) : n - 1],
         cpu / (double)n, wait >= 0 && c->wait0_ms >= 0 ? (wait - c->wait0_ms) / (double)n : -1.0);
  fflush(stdout);
}

static void bench_next(cli *c)
{
  long total = c->warmup + c->bench_n;
  if (c->done == total) {
    bench_report(c);
    finish(c, c->errors ? 1 : 0);
    return;
  }
  /* During warm-up one call at a time; then keep `concurrency` in flight. */
  while (c->started < total &&
         c->started - c->done < (c->started < c->warmup ? 1 : c->concurrency)) {
    slot *s;
    int rc;
    if (c->started >= c->warmup && c->done < c->warmup)
      break;
    if (!(s = calloc(1, sizeof *s))) {
      finish(c, 1);
      return;
    }
    s->c = c;
    s->index = c->started++;
    s->t0 = uv_hrtime();
    rc = tg_mcp_call_tool(c->mcp, c->tool, c->args, on_bench_result, s);
    if (rc) {
      free(s);
      fprintf(stderr, "toolgate-mcp: %s\n", tg_strerror(rc));
      finish(c, 1);
      return;
    }
  }
}

/* The command line, read by parse_command_line. headers (NULL-terminated) is owned. */
typedef struct cmdline {
  const char **headers;
  size_t n_headers;
  const char *url, *tool;
  json_t *args; /* JSON-ARGS, owned; NULL when not given */
  long timeout_ms, bench_n, concurrency;
  int notifications;
  const char *protocol_version;
  int auth;
  tg_mcp_auth_options auth_opt; /* strings borrowed from argv or from ctx */
  json_t *ctx;                  /* MCP_CONFORMANCE_CONTEXT, owned */
} cmdline;

/* Parses the value of --name strictly into *out. 0, or 2 after printing the reason. */
static int option_number(const char *name, const char *text, long min, long max, long *out)
{
  int64_t v;
  if (tg_config_parse_int(text, min, max, &v) != 0) {
    fprintf(stderr, "toolgate-mcp: --%s: expected an integer from %ld to %ld, got \"%s\"\n", name,
            min, max, text);
    return 2;
  }
  *out = (long)v;
  return 0;
}

/* Fills *cl from argv. Returns -1 to go on, or the exit status: 0 after --help or --version,
 * 2 after printing what is wrong and the usage. */
static int parse_command_line(int argc, char **argv, cmdline *cl)
{
  const struct option options[] = {
      {"help", no_argument, NULL, 'h'},
      {"header", required_argument, NULL, OPT_HEADER},
      {"timeout", required_argument, NULL, OPT_TIMEOUT},
      {"protocol-version", required_argument, NULL, OPT_PROTOCOL_VERSION},
      {"notifications", no_argument, &cl->notifications, 1}, /* getopt_long sets it, returns 0 */
      {"bench", required_argument, NULL, OPT_BENCH},
      {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
      {"version", no_argument, NULL, OPT_VERSION},
      {"auth", no_argument, &cl->auth, 1},
      {"client-id", required_argument, NULL, OPT_CLIENT_ID},
      {"client-secret", required_argument, NULL, OPT_CLIENT_SECRET},
      {"client-metadata-url", required_argument, NULL, OPT_CLIENT_METADATA_URL},
      {"redirect-uri", required_argument, NULL, OPT_REDIRECT_URI},
      {"grant", required_argument, NULL, OPT_GRANT},
      {NULL, 0, NULL, 0}};
  int opt, rc = 0;
  cl->concurrency = 1;
  cl->headers = calloc((size_t)argc + 1, sizeof *cl->headers);
  if (!cl->headers) {
    fprintf(stderr, "toolgate-mcp: out of memory\n");
    return 1;
  }
  while (rc == 0 && (opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (opt) {
    case 'h':
      usage(stdout);
      return 0;
    case OPT_VERSION:
      printf("toolgate-mcp %s\n", TG_VERSION);
      return 0;
    case OPT_HEADER:
      cl->headers[cl->n_headers++] = optarg;
      break;
    case OPT_TIMEOUT:
      rc = option_number("timeout", optarg, 1, MAX_TIMEOUT_MS, &cl->timeout_ms);
      break;
    case OPT_PROTOCOL_VERSION:
      cl->protocol_version = optarg;
      break;
    case 0: /* a flag getopt_long has set */
      break;
    case OPT_BENCH:
      rc = option_number("bench", optarg, 1, MAX_BENCH_CALLS, &cl->bench_n);
      break;
    case OPT_CONCURRENCY:
      rc = option_number("concurrency", optarg, 1, MAX_CONCURRENCY, &cl->concurrency);
      break;
    case OPT_CLIENT_ID:
      cl->auth_opt.client_id = optarg;
      break;
    case OPT_CLIENT_SECRET:
      cl->auth_opt.client_secret = optarg;
      break;
    case OPT_CLIENT_METADATA_URL:
      cl->auth_opt.client_metadata_url = optarg;
      break;
    case OPT_REDIRECT_URI:
      cl->auth_opt.redirect_uri = optarg;
      break;
    case OPT_GRANT:
      if (strcmp(optarg, "client_credentials") == 0) {
        cl->auth_opt.grant = TG_MCP_GRANT_CLIENT_CREDENTIALS;
      } else if (strcmp(optarg, "authorization_code") == 0) {
        cl->auth_opt.grant = TG_MCP_GRANT_CODE;
      } else {
        fprintf(stderr, "toolgate-mcp: --grant: client_credentials or authorization_code\n");
        rc = 2;
      }
      break;
    default: /* getopt printed the option and what is wrong with it */
      rc = 2;
    }
  }
  if (rc == 0 && optind == argc) {
    fprintf(stderr, "toolgate-mcp: missing URL\n");
    rc = 2;
  }
  if (rc == 0) {
    cl->url = argv[optind++];
    cl->tool = optind < argc ? argv[optind++] : NULL;
    if (optind < argc) {
      json_error_t jerr;
      cl->args = json_loads(argv[optind++], 0, &jerr);
      if (!json_is_object(cl->args)) {
        fprintf(stderr, "toolgate-mcp: JSON-ARGS must be an object: %s\n",
                cl->args ? "not an object" : jerr.text);
        rc = 2;
      }
    }
  }
  if (rc == 0 && optind < argc) {
    fprintf(stderr, "toolgate-mcp: unexpected argument %s\n", argv[optind]);
    rc = 2;
  }
  if (rc == 0 && cl->bench_n && !cl->tool) {
    fprintf(stderr, "toolgate-mcp: --bench needs a TOOL to call\n");
    rc = 2;
  }
  if (rc == 0)
    return -1;
  usage(stderr);
  return rc;
}

/* Under the conformance runner: "auth/..." scenarios turn --auth on; MCP_CONFORMANCE_CONTEXT (JSON)
 * carries their credentials. A key the command line already set keeps the command line's value. */
static void conformance_auth(cmdline *cl, const char *scenario)
{
  const char *ctx = getenv("MCP_CONFORMANCE_CONTEXT");
  tg_mcp_auth_options *o = &cl->auth_opt;
  if (strncmp(scenario, "auth/", 5) != 0)
    return;
  cl->auth = 1;
  if (!ctx || !(cl->ctx = json_loads(ctx, 0, NULL)))
    return;
#define FROM_CTX(field, key)                                                                       \
  if (!o->field)                                                                                   \
  o->field = json_string_value(json_object_get(cl->ctx, key))
  FROM_CTX(client_id, "client_id");
  FROM_CTX(client_secret, "client_secret");
  FROM_CTX(idp_id_token, "idp_id_token");
  FROM_CTX(idp_token_endpoint, "idp_token_endpoint");
  FROM_CTX(idp_client_id, "idp_client_id");
  FROM_CTX(private_key_pem, "private_key_pem"); /* with signing_algorithm ES256 */
#undef FROM_CTX
}

int main(int argc, char **argv)
{
  const char *lvl = getenv("TOOLGATE_LOG_LEVEL");
  const char *scenario = getenv("MCP_CONFORMANCE_SCENARIO");
  cmdline cl = {0};
  uv_loop_t loop;
  cli c = {.exit_code = 1};
  tg_mcp_options opt = {0};
  tg_mcp_auth_provider provider;
  int rc;

  tg_log_init("toolgate-mcp", lvl ? tg_log_level_parse(lvl) : TG_LOG_WARN);
  if ((rc = parse_command_line(argc, argv, &cl)) >= 0) {
    json_decref(cl.args);
    free(cl.headers);
    return rc;
  }
  if (scenario)
    conformance_auth(&cl, scenario);
  uv_loop_init(&loop);
  rc = tg_http_client_init(&c.http, &loop);
  if (rc) {
    fprintf(stderr, "toolgate-mcp: http client: %s\n", tg_strerror(rc));
    goto out;
  }
  opt.url = cl.url;
  opt.headers = cl.headers;
  opt.request_timeout_ms = cl.timeout_ms;
  opt.protocol_version = cl.protocol_version;
  opt.client_name = "toolgate-mcp";
  /* Like the SDK client, open the GET stream: SDK servers send requests made outside a
   * request handler (e.g. elicitation) there. Not in --bench, which measures calls only. */
  opt.listen = !cl.bench_n;
  opt.on_notify = cl.notifications ? on_notify : NULL;
  if (cl.auth) {
    cl.auth_opt.server_url = cl.url;
    cl.auth_opt.client_name = "toolgate-mcp";
    cl.auth_opt.browse = on_browse;
    cl.auth_opt.browse_arg = &c;
    rc = tg_mcp_auth_new(&c.auth, c.http, &cl.auth_opt);
    if (rc) {
      fprintf(stderr, "toolgate-mcp: --auth: %s\n",
              rc == TG_EINVAL ? "the URL must be https or loopback http" : tg_strerror(rc));
      tg_http_client_close(c.http, NULL, NULL);
      goto out;
    }
    provider = tg_mcp_auth_provider_of(c.auth);
    opt.auth = &provider;
  }
  rc = tg_mcp_client_new(&c.mcp, c.http, &opt);
  if (rc) {
    fprintf(stderr, "toolgate-mcp: %s\n",
            rc == TG_EINVAL ? "bad URL, --header or --protocol-version" : tg_strerror(rc));
    tg_mcp_auth_free(c.auth);
    tg_http_client_close(c.http, NULL, NULL);
    goto out;
  }
  if (scenario && !cl.tool) {
    if (strncmp(scenario, "auth/", 5) == 0) {
      c.then_tool = "test-tool";
    } else if (strcmp(scenario, "tools_call") == 0) {
      c.then_tool = "add_numbers";
      c.then_args = json_pack("{s:i, s:i}", "a", 5, "b", 3);
    } else if (strcmp(scenario, "sse-retry") == 0) {
      c.then_tool = "test_reconnection";
    } else if (strcmp(scenario, "elicitation-sep1034-client-defaults") == 0) {
      c.then_tool = "test_client_elicitation_defaults";
    }
  }
  if (cl.bench_n) {
    c.tool = cl.tool;
    c.args = cl.args;
    c.bench_n = cl.bench_n;
    c.warmup = 50;
    c.concurrency = cl.concurrency;
    c.lat_ms = calloc((size_t)cl.bench_n, sizeof *c.lat_ms);
    if (!c.lat_ms) {
      finish(&c, 1);
      goto out;
    }
    bench_next(&c);
    rc = 0;
  } else if (scenario && strcmp(scenario, "initialize") == 0 && !cl.tool) {
    rc = tg_mcp_connect(c.mcp, on_connected, &c);
  } else {
    rc = cl.tool ? tg_mcp_call_tool_ex(c.mcp, cl.tool, cl.args,
                                       cl.notifications ? on_progress : NULL, on_result, &c, NULL)
                 : tg_mcp_list_tools(c.mcp, on_tools, &c);
  }
  if (rc) {
    fprintf(stderr, "toolgate-mcp: %s\n", tg_strerror(rc));
    finish(&c, 1);
  }
out:
  uv_run(&loop, UV_RUN_DEFAULT);
  json_decref(cl.args);
  json_decref(cl.ctx);
  json_decref(c.then_args);
  free(c.lat_ms);
  free(cl.headers);
  if (uv_loop_close(&loop) != 0) {
    fprintf(stderr, "toolgate-mcp: event loop did not close clean\n");
    return 1;
  }
  return c.exit_code;
}
