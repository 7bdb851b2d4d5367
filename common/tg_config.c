/*
 * tg_config: the variable table and the loader.
 *
 * Every integer variable has its allowed range in the table. A value is accepted only when the
 * whole of it is a decimal integer inside that range; anything else fails start-up with a
 * message naming the variable, the value and the range, rather than running with a silent
 * default or a clamped value. Each program reads only the variables the table assigns to it:
 * the others keep their defaults, so one environment can be shared by the gateway and workers.
 * The defaults are inside their ranges (tests/unit/common/tg_config.c checks it).
 */
#include "tg_config.h"
#include "tg_err.h"
#include "tg_log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The build tree's ui directory (CMakeLists.txt), so a gateway run from the build finds it. */
#ifndef TG_UI_DIR_DEFAULT
#define TG_UI_DIR_DEFAULT "ui"
#endif

extern char **environ;

#define MiB (1024 * 1024)
#define HOUR_MS (3600 * 1000)
#define DAY_MS (24 * (int64_t)HOUR_MS)
#define MAX_CREDITS 1000000000000   /* 10^12: sums of credits stay far from int64 overflow */
#define RANGE(lo, hi) 1, (lo), (hi) /* an integer variable */
#define STRING 0, 0, 0              /* any other */

typedef struct var {
  const char *name;
  const char *def;
  int progs;
  const char *help;
  int integer;      /* 1: an integer in [min, max] */
  int64_t min, max; /* inclusive */
} var;

static const var vars[] = {
    {"TOOLGATE_DB", "toolgate.db", TG_PROG_GATEWAY | TG_PROG_WORKER,
     "SQLite database file (created, WAL mode), or a PostgreSQL connection URI "
     "(postgresql://...; secret: only host:port/dbname is logged)",
     STRING},
    {"TOOLGATE_DB_STATEMENT_TIMEOUT_MS", "5000", TG_PROG_GATEWAY | TG_PROG_WORKER,
     "PostgreSQL: statement_timeout and idle_in_transaction_session_timeout of every connection, "
     "in ms (0: none)",
     RANGE(0, HOUR_MS)},
    {"TOOLGATE_LISTEN", "127.0.0.1:8080", TG_PROG_GATEWAY | TG_PROG_SIM, "host:port to listen on",
     STRING},
    {"COMPOSIO_BASE_URL", "https://backend.composio.dev", TG_PROG_GATEWAY | TG_PROG_WORKER,
     "Composio API base URL (no /api/v3)", STRING},
    {"COMPOSIO_API_KEY", NULL, TG_PROG_ALL,
     "Composio project API key, sent as x-api-key (secret; never logged or stored)", STRING},
    {"COMPOSIO_MCP_SERVER_ID", NULL, TG_PROG_GATEWAY,
     "Composio MCP server id used to generate per-user MCP URLs", STRING},
    {"COMPOSIO_AUTH_CONFIG_<PROVIDER>", NULL, TG_PROG_GATEWAY | TG_PROG_WORKER,
     "one per provider, e.g. COMPOSIO_AUTH_CONFIG_GMAIL=ac_...; the provider name is the "
     "lowercased suffix",
     STRING},
    {"COMPOSIO_TOOLKIT_<PROVIDER>", "<provider>", TG_PROG_GATEWAY | TG_PROG_WORKER,
     "Composio toolkit slug of a provider", STRING},
    {"COMPOSIO_DISPLAY_NAME_<PROVIDER>", "<provider>", TG_PROG_GATEWAY,
     "display name of a provider", STRING},
    {"TOOLGATE_REDIRECT_URL", "http://127.0.0.1:8080/api/composio-redirect", TG_PROG_GATEWAY,
     "our OAuth callback URL, given to Composio", STRING},
    {"TOOLGATE_UI_URL", "/", TG_PROG_GATEWAY,
     "web UI URL the OAuth callback redirects the browser to", STRING},
    {"TOOLGATE_UI_DIR", TG_UI_DIR_DEFAULT, TG_PROG_GATEWAY,
     "directory of the web UI's files, read once at start-up and served under /", STRING},
    {"TOOLGATE_TRUST_USER_HEADER", "0", TG_PROG_GATEWAY,
     "1: take the user id from X-User-Id (development, or behind an authenticating proxy)",
     RANGE(0, 1)},
    {"TOOLGATE_JWT_SECRET", NULL, TG_PROG_GATEWAY,
     "HS256 secret for Authorization: Bearer tokens (secret)", STRING},
    {"TOOLGATE_JWT_MAX_LIFETIME_S", "86400", TG_PROG_GATEWAY,
     "a bearer token whose exp is further ahead than this many seconds (plus 30 s of clock "
     "skew) is refused",
     RANGE(60, 365 * 24 * 3600)},
    {"TOOLGATE_WEBHOOK_SECRET", NULL, TG_PROG_GATEWAY,
     "Standard Webhooks secret of Composio's webhook subscription (whsec_<base64> or raw; "
     "secret); unset: POST /api/webhooks/composio answers 503",
     STRING},
    {"TOOLGATE_SECRET_KEY", NULL, TG_PROG_GATEWAY | TG_PROG_WORKER,
     "key for secrets at rest: [<kid>:]<base64 of 32 bytes> (secret; see README Security)", STRING},
    {"TOOLGATE_SECRET_KEY_OLD", NULL, TG_PROG_GATEWAY | TG_PROG_WORKER,
     "previous secrets-at-rest key, still accepted for reading during a rotation (secret)", STRING},
    {"TOOLGATE_MAX_URL_BYTES", "8192", TG_PROG_GATEWAY, "request target cap in bytes (414)",
     RANGE(1, MiB)},
    {"TOOLGATE_MAX_HEADER_BYTES", "16384", TG_PROG_GATEWAY,
     "cap on all header names + values in bytes (431)", RANGE(1, 16 * MiB)},
    {"TOOLGATE_MAX_HEADERS", "64", TG_PROG_GATEWAY, "cap on the number of headers (431)",
     RANGE(1, 10000)},
    {"TOOLGATE_MAX_BODY_BYTES", "1048576", TG_PROG_GATEWAY, "request body cap in bytes (413)",
     RANGE(1, 1024 * MiB)},
    {"TOOLGATE_HEADER_TIMEOUT_MS", "10000", TG_PROG_GATEWAY,
     "request line + headers must arrive within this many ms (408)", RANGE(1, DAY_MS)},
    {"TOOLGATE_BODY_TIMEOUT_MS", "30000", TG_PROG_GATEWAY,
     "a request body must arrive within this many ms (408)", RANGE(1, DAY_MS)},
    {"TOOLGATE_IDLE_TIMEOUT_MS", "60000", TG_PROG_GATEWAY, "keep-alive idle timeout in ms",
     RANGE(1, DAY_MS)},
    {"TOOLGATE_MAX_CONNECTIONS", "1000000", TG_PROG_GATEWAY,
     "open client connections at most; also at most the open-file limit (raised to its hard "
     "limit at start-up) less 256, which is what the default leaves in charge",
     RANGE(1, 1000000)},
    {"TOOLGATE_RUN_RATE_PER_MIN", "60", TG_PROG_GATEWAY,
     "run admissions per user per minute (token bucket, burst = the same number; 429 with "
     "Retry-After over it); 0 disables",
     RANGE(0, 1000000)},
    {"TOOLGATE_DEFAULT_CREDITS", "100", TG_PROG_GATEWAY, "credits a new user starts with",
     RANGE(0, MAX_CREDITS)},
    {"TOOLGATE_RUN_COST", "1", TG_PROG_GATEWAY, "credits debited per admitted run",
     RANGE(0, MAX_CREDITS)},
    {"TOOLGATE_WORKER_ID", "<hostname>-<pid>", TG_PROG_WORKER, "this worker's name in claimed_by",
     STRING},
    {"TOOLGATE_POLL_MS", "200", TG_PROG_WORKER, "ms between queue polls when idle",
     RANGE(1, HOUR_MS)},
    {"TOOLGATE_LEASE_MS", "30000", TG_PROG_WORKER, "lease length in ms (heartbeats extend it)",
     RANGE(300, DAY_MS)},
    {"TOOLGATE_WORKER_CONCURRENCY", "4", TG_PROG_WORKER, "runs in flight per worker process",
     RANGE(1, 1024)},
    {"TOOLGATE_MCP_TIMEOUT_MS", "30000", TG_PROG_WORKER, "timeout of one MCP request in ms",
     RANGE(1, DAY_MS)},
    {"TOOLGATE_TOOL_RETRIES", "3", TG_PROG_WORKER,
     "retries of a tool call after a transient failure (connection refused, 5xx, 429, or a "
     "timeout of a read-only/idempotent tool)",
     RANGE(0, 100)},
    {"TOOLGATE_RETRY_BASE_MS", "200", TG_PROG_WORKER,
     "first retry delay in ms; doubles per retry, with jitter (429 Retry-After wins)",
     RANGE(0, HOUR_MS)},
    {"TOOLGATE_RUN_DEADLINE_MS", "600000", TG_PROG_WORKER,
     "a run fails with error_class timeout once it has run this long (ms; 0: no deadline)",
     RANGE(0, 365 * DAY_MS)},
    {"TOOLGATE_REGISTRY_MAX", "256", TG_PROG_WORKER,
     "MCP sessions a worker keeps open for reuse (least recently used closed first)",
     RANGE(1, 65536)},
    {"TOOLGATE_SHUTDOWN_GRACE_MS", "10000", TG_PROG_WORKER,
     "ms runs in flight may take to finish after SIGTERM/SIGINT before their leases are "
     "released",
     RANGE(0, HOUR_MS)},
    {"TOOLGATE_COMPOSIO_TIMEOUT_MS", "10000", TG_PROG_GATEWAY | TG_PROG_WORKER,
     "timeout of one Composio call in ms", RANGE(1, DAY_MS)},
    {"TOOLGATE_LOG_LEVEL", "info", TG_PROG_ALL, "debug, info, warn or error", STRING},
    {"TOOLGATE_MAX_CONNECTIONS_PER_PEER", "256", TG_PROG_GATEWAY,
     "open client connections from one IP address at most (more are closed at once)",
     RANGE(1, 1000000)},
    {"TOOLGATE_PRESSURE_HEADER_TIMEOUT_MS", "2000", TG_PROG_GATEWAY,
     "the header timeout while more than 3/4 of the connection cap is open (ms)", RANGE(1, DAY_MS)},
    {"TOOLGATE_USER_CONCURRENCY", "0", TG_PROG_WORKER,
     "runs of one user in flight at once, across all workers (0: no cap)", RANGE(0, 1000000)},
    /* Reviews (HITL). */
    {"TOOLGATE_REVIEW_TIMEOUT_S", "604800", TG_PROG_WORKER,
     "seconds a HITL review waits for a decision when the node sets no timeout_s (then the run "
     "fails with review_expired)",
     RANGE(1, 3650 * 24 * 3600)},
    /* The workflow engine. */
    {"TOOLGATE_RUN_NODE_CONCURRENCY", "64", TG_PROG_WORKER,
     "nodes of one run executing at once (independent branches of the graph)", RANGE(1, 4096)},
    {"TOOLGATE_WORKER_NODE_CONCURRENCY", "256", TG_PROG_WORKER,
     "nodes executing at once in one worker process, across its runs", RANGE(1, 65536)},
    /* Egress of API and ad-hoc MCP nodes (README "Egress policy"). */
    {"TOOLGATE_EGRESS_ALLOW", NULL, TG_PROG_WORKER,
     "comma-separated CIDRs, addresses and host names (*.suffix) that API and ad-hoc MCP nodes "
     "may reach although they are loopback, private, link-local or metadata addresses",
     STRING},
    {"TOOLGATE_CONNECT_TO", NULL, TG_PROG_WORKER,
     "comma-separated host:port:addr:port: API and ad-hoc MCP requests to host:port connect to "
     "addr:port instead (curl CONNECT_TO; the egress policy checks addr)",
     STRING},
    {"TOOLGATE_CA_FILE", NULL, TG_PROG_WORKER,
     "PEM CA bundle that API and ad-hoc MCP nodes trust instead of the system store", STRING},
    /* Language models (Agent and Self-Review nodes); the official SDKs' variable names. */
    {"ANTHROPIC_API_KEY", NULL, TG_PROG_WORKER,
     "API key of provider anthropic (x-api-key; secret), unless the node names a credential",
     STRING},
    {"ANTHROPIC_BASE_URL", "https://api.anthropic.com", TG_PROG_WORKER,
     "base URL of the Anthropic Messages API (POST <base>/v1/messages)", STRING},
    {"OPENAI_API_KEY", NULL, TG_PROG_WORKER,
     "API key of provider openai (Authorization: Bearer; secret), unless the node names a "
     "credential",
     STRING},
    {"OPENAI_BASE_URL", "https://api.openai.com/v1", TG_PROG_WORKER,
     "base URL of the OpenAI API (POST <base>/chat/completions)", STRING},
    {"TOOLGATE_OPENAI_COMPATIBLE_BASE_URL", NULL, TG_PROG_WORKER,
     "base URL of provider openai_compatible (vLLM, llama.cpp, Ollama: <base>/chat/completions) "
     "when the node gives none",
     STRING},
    {"TOOLGATE_OPENAI_COMPATIBLE_API_KEY", NULL, TG_PROG_WORKER,
     "API key of provider openai_compatible, if it wants one (secret)", STRING},
    {"TOOLGATE_MODEL_TIMEOUT_MS", "120000", TG_PROG_WORKER, "timeout of one model request in ms",
     RANGE(1, DAY_MS)},
    {"TOOLGATE_MODEL_RETRIES", "3", TG_PROG_WORKER,
     "retries of a model request after 429, 529, 5xx or a connection failure (retry-after "
     "honoured)",
     RANGE(0, 20)},
    {"TOOLGATE_RUN_TOKEN_BUDGET", "0", TG_PROG_WORKER,
     "model tokens (input + output) one run may use; over it the run fails with "
     "budget_exceeded (0: no budget)",
     RANGE(0, INT64_C(1000000000000))},
    /* The Code sandbox. */
    {"TOOLGATE_SANDBOX_PYTHON", "/usr/bin/python3", TG_PROG_GATEWAY | TG_PROG_WORKER,
     "python interpreter run inside the Code sandbox (its packages are what Code nodes may "
     "import)",
     STRING},
    {"TOOLGATE_SANDBOX_NODE", NULL, TG_PROG_GATEWAY | TG_PROG_WORKER,
     "javascript interpreter run inside the Code sandbox; unset: javascript Code nodes are "
     "refused",
     STRING},
    {"TOOLGATE_CODE_TIMEOUT_S", "30", TG_PROG_WORKER,
     "wall-clock seconds a Code execution may take when the node sets no timeout_s",
     RANGE(1, 3600)},
    {"TOOLGATE_CODE_MEMORY_MB", "512", TG_PROG_WORKER,
     "address space of a Code execution in MiB when the node sets no memory_mb", RANGE(16, 65536)},
    {"TOOLGATE_CODE_MAX_OUTPUT_BYTES", "1048576", TG_PROG_WORKER,
     "stdout + stderr + result bytes a Code execution may write (more kills it)",
     RANGE(1024, 1024 * MiB)},
    {"TOOLGATE_CODE_MAX_PROCS", "16", TG_PROG_WORKER,
     "processes (and threads) one Code execution may have at once", RANGE(1, 4096)},
};

const char *tg_secret_reveal(const tg_secret *s)
{
  return s ? s->value_ : NULL;
}

static const var *find(const char *name)
{
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (strcmp(vars[i].name, name) == 0)
      return &vars[i];
  return NULL;
}

/* Trailing slashes would double up when paths are appended. */
static void trim_slashes(char *url)
{
  for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
    url[n - 1] = 0;
}

static char *get_str(const char *name)
{
  const char *v = getenv(name);
  if (!v || !*v)
    v = find(name)->def;
  return v ? strdup(v) : NULL;
}

int tg_config_parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
  char *end;
  long long n;
  if (!text || !isdigit((unsigned char)*text)) /* no sign, no leading space */
    return TG_EINVAL;
  errno = 0;
  n = strtoll(text, &end, 10);
  if (errno || *end || n < min || n > max)
    return TG_EINVAL;
  *out = n;
  return 0;
}

/* The variable name from the environment when prog reads it (its default when unset, empty or
 * read only by other programs), checked against the table's range. */
static int get_int(const char *name, int prog, int64_t *out, char *err, size_t errlen)
{
  const var *v = find(name);
  const char *text = v->progs & prog ? getenv(name) : NULL;
  if (!text || !*text)
    text = v->def;
  if (tg_config_parse_int(text, v->min, v->max, out) != 0) {
    snprintf(err, errlen, "%s: expected an integer from %" PRId64 " to %" PRId64 ", got \"%s\"",
             name, v->min, v->max, text);
    return TG_EINVAL;
  }
  return 0;
}

static char *lower_dup(const char *s, size_t n)
{
  char *r = malloc(n + 1);
  if (!r)
    return NULL;
  for (size_t i = 0; i < n; i++)
    r[i] = (char)tolower((unsigned char)s[i]);
  r[n] = 0;
  return r;
}

static char *provider_env(const char *prefix, const char *provider)
{
  char name[256];
  size_t n = (size_t)snprintf(name, sizeof name, "%s", prefix);
  for (const char *p = provider; *p && n + 1 < sizeof name; p++)
    name[n++] = (char)toupper((unsigned char)*p);
  name[n] = 0;
  const char *v = getenv(name);
  return strdup(v && *v ? v : provider);
}

static int cmp_provider(const void *a, const void *b)
{
  return strcmp(((const tg_provider *)a)->provider, ((const tg_provider *)b)->provider);
}

static int load_providers(tg_config *c, char *err, size_t errlen)
{
  static const char prefix[] = "COMPOSIO_AUTH_CONFIG_";
  size_t cap = 0;
  for (char **e = environ; *e; e++)
    if (strncmp(*e, prefix, sizeof prefix - 1) == 0)
      cap++;
  if (!cap)
    return 0;
  c->providers = calloc(cap, sizeof *c->providers);
  if (!c->providers)
    return TG_ENOMEM;
  for (char **e = environ; *e; e++) {
    const char *name, *eq;
    tg_provider *p;
    if (strncmp(*e, prefix, sizeof prefix - 1) != 0)
      continue;
    name = *e + sizeof prefix - 1;
    eq = strchr(name, '=');
    if (!eq || eq == name || !eq[1]) {
      snprintf(err, errlen, "%.*s: expected COMPOSIO_AUTH_CONFIG_<PROVIDER>=ac_...",
               (int)(eq ? eq - *e : (long)strlen(*e)), *e);
      return TG_EINVAL;
    }
    p = &c->providers[c->n_providers++];
    p->provider = lower_dup(name, (size_t)(eq - name));
    p->auth_config_id = strdup(eq + 1);
    if (!p->provider || !p->auth_config_id)
      return TG_ENOMEM;
    p->toolkit_slug = provider_env("COMPOSIO_TOOLKIT_", p->provider);
    p->display_name = provider_env("COMPOSIO_DISPLAY_NAME_", p->provider);
    if (!p->toolkit_slug || !p->display_name)
      return TG_ENOMEM;
  }
  qsort(c->providers, c->n_providers, sizeof *c->providers, cmp_provider);
  return 0;
}

int tg_config_load(tg_config *c, int prog, char *err, size_t errlen)
{
  char *listen, *colon, *end;
  long port;
  int rc;

  memset(c, 0, sizeof *c);
  snprintf(err, errlen, "out of memory");
  c->db_path = get_str("TOOLGATE_DB");
  listen = get_str("TOOLGATE_LISTEN");
  c->composio_base_url = get_str("COMPOSIO_BASE_URL");
  c->composio_api_key.value_ = get_str("COMPOSIO_API_KEY");
  c->composio_mcp_server_id = get_str("COMPOSIO_MCP_SERVER_ID");
  c->redirect_url = get_str("TOOLGATE_REDIRECT_URL");
  c->ui_url = get_str("TOOLGATE_UI_URL");
  c->ui_dir = get_str("TOOLGATE_UI_DIR");
  c->jwt_secret.value_ = get_str("TOOLGATE_JWT_SECRET");
  c->secret_key.value_ = get_str("TOOLGATE_SECRET_KEY");
  c->secret_key_old.value_ = get_str("TOOLGATE_SECRET_KEY_OLD");
  c->webhook_secret.value_ = get_str("TOOLGATE_WEBHOOK_SECRET");
  c->log_level = get_str("TOOLGATE_LOG_LEVEL");
  c->worker_id = getenv("TOOLGATE_WORKER_ID") && *getenv("TOOLGATE_WORKER_ID")
                     ? strdup(getenv("TOOLGATE_WORKER_ID"))
                     : NULL;
  if (!c->worker_id) {
    char host[128] = "worker", buf[160];
    gethostname(host, sizeof host - 1);
    snprintf(buf, sizeof buf, "%s-%ld", host, (long)getpid());
    c->worker_id = strdup(buf);
  }
  if (!c->db_path || !listen || !c->composio_base_url || !c->redirect_url || !c->ui_url ||
      !c->log_level || !c->worker_id) {
    free(listen);
    return TG_ENOMEM;
  }
  trim_slashes(c->composio_base_url);

  colon = strrchr(listen, ':');
  port = colon ? strtol(colon + 1, &end, 10) : -1;
  if (!colon || colon == listen || *end || port < 0 || port > 65535) {
    snprintf(err, errlen, "TOOLGATE_LISTEN: expected host:port, got \"%s\"", listen);
    free(listen);
    return TG_EINVAL;
  }
  *colon = 0;
  c->listen_host = listen;
  c->listen_port = (int)port;

  {
    int64_t trust = 0;
    if ((rc = get_int("TOOLGATE_TRUST_USER_HEADER", prog, &trust, err, errlen)) ||
        (rc = get_int("TOOLGATE_JWT_MAX_LIFETIME_S", prog, &c->jwt_max_lifetime_s, err, errlen)) ||
        (rc = get_int("TOOLGATE_DEFAULT_CREDITS", prog, &c->default_credits, err, errlen)) ||
        (rc = get_int("TOOLGATE_RUN_COST", prog, &c->run_cost, err, errlen)) ||
        (rc = get_int("TOOLGATE_POLL_MS", prog, &c->poll_ms, err, errlen)) ||
        (rc = get_int("TOOLGATE_LEASE_MS", prog, &c->lease_ms, err, errlen)) ||
        (rc = get_int("TOOLGATE_WORKER_CONCURRENCY", prog, &c->concurrency, err, errlen)) ||
        (rc = get_int("TOOLGATE_MCP_TIMEOUT_MS", prog, &c->mcp_timeout_ms, err, errlen)) ||
        (rc =
             get_int("TOOLGATE_COMPOSIO_TIMEOUT_MS", prog, &c->composio_timeout_ms, err, errlen)) ||
        (rc = get_int("TOOLGATE_MAX_URL_BYTES", prog, &c->max_url_bytes, err, errlen)) ||
        (rc = get_int("TOOLGATE_MAX_HEADER_BYTES", prog, &c->max_header_bytes, err, errlen)) ||
        (rc = get_int("TOOLGATE_MAX_HEADERS", prog, &c->max_headers, err, errlen)) ||
        (rc = get_int("TOOLGATE_MAX_BODY_BYTES", prog, &c->max_body_bytes, err, errlen)) ||
        (rc = get_int("TOOLGATE_HEADER_TIMEOUT_MS", prog, &c->header_timeout_ms, err, errlen)) ||
        (rc = get_int("TOOLGATE_BODY_TIMEOUT_MS", prog, &c->body_timeout_ms, err, errlen)) ||
        (rc = get_int("TOOLGATE_IDLE_TIMEOUT_MS", prog, &c->idle_timeout_ms, err, errlen)) ||
        (rc = get_int("TOOLGATE_MAX_CONNECTIONS", prog, &c->max_connections, err, errlen)) ||
        (rc = get_int("TOOLGATE_RUN_RATE_PER_MIN", prog, &c->run_rate_per_min, err, errlen)) ||
        (rc = get_int("TOOLGATE_TOOL_RETRIES", prog, &c->tool_retries, err, errlen)) ||
        (rc = get_int("TOOLGATE_RETRY_BASE_MS", prog, &c->retry_base_ms, err, errlen)) ||
        (rc = get_int("TOOLGATE_RUN_DEADLINE_MS", prog, &c->run_deadline_ms, err, errlen)) ||
        (rc = get_int("TOOLGATE_REGISTRY_MAX", prog, &c->registry_max, err, errlen)) ||
        (rc = get_int("TOOLGATE_SHUTDOWN_GRACE_MS", prog, &c->shutdown_grace_ms, err, errlen)) ||
        (rc = get_int("TOOLGATE_USER_CONCURRENCY", prog, &c->user_concurrency, err, errlen)) ||
        (rc = get_int("TOOLGATE_DB_STATEMENT_TIMEOUT_MS", prog, &c->db_statement_timeout_ms, err,
                      errlen)) ||
        (rc = get_int("TOOLGATE_REVIEW_TIMEOUT_S", prog, &c->review_timeout_s, err, errlen)))
      return rc;
    c->trust_user_header = trust != 0;
  }
  if ((rc = get_int("TOOLGATE_MAX_CONNECTIONS_PER_PEER", prog, &c->max_per_peer, err, errlen)) ||
      (rc = get_int("TOOLGATE_PRESSURE_HEADER_TIMEOUT_MS", prog, &c->pressure_timeout_ms, err,
                    errlen)))
    return rc;
  if ((rc =
           get_int("TOOLGATE_RUN_NODE_CONCURRENCY", prog, &c->run_node_concurrency, err, errlen)) ||
      (rc = get_int("TOOLGATE_WORKER_NODE_CONCURRENCY", prog, &c->worker_node_concurrency, err,
                    errlen)))
    return rc;
  tg_log_add_secret(c->composio_api_key.value_); /* scrubbed from every log line */
  tg_log_add_secret(c->jwt_secret.value_);
  tg_log_add_secret(c->secret_key.value_);
  tg_log_add_secret(c->secret_key_old.value_);
  tg_log_add_secret(c->webhook_secret.value_);
  if ((prog & (TG_PROG_GATEWAY | TG_PROG_WORKER)) && (rc = load_providers(c, err, errlen)))
    return rc;
  c->egress_allow = get_str("TOOLGATE_EGRESS_ALLOW");
  c->connect_to = get_str("TOOLGATE_CONNECT_TO");
  c->ca_file = get_str("TOOLGATE_CA_FILE");
  c->anthropic_api_key.value_ = get_str("ANTHROPIC_API_KEY");
  c->openai_api_key.value_ = get_str("OPENAI_API_KEY");
  c->compatible_api_key.value_ = get_str("TOOLGATE_OPENAI_COMPATIBLE_API_KEY");
  tg_log_add_secret(c->anthropic_api_key.value_);
  tg_log_add_secret(c->openai_api_key.value_);
  tg_log_add_secret(c->compatible_api_key.value_);
  c->anthropic_base_url = get_str("ANTHROPIC_BASE_URL");
  c->openai_base_url = get_str("OPENAI_BASE_URL");
  c->compatible_base_url = get_str("TOOLGATE_OPENAI_COMPATIBLE_BASE_URL");
  c->sandbox_python = get_str("TOOLGATE_SANDBOX_PYTHON");
  c->sandbox_node = get_str("TOOLGATE_SANDBOX_NODE");
  if (!c->anthropic_base_url || !c->openai_base_url || !c->sandbox_python)
    return TG_ENOMEM;
  trim_slashes(c->anthropic_base_url);
  trim_slashes(c->openai_base_url);
  if (c->compatible_base_url)
    trim_slashes(c->compatible_base_url);
  if ((rc = get_int("TOOLGATE_MODEL_TIMEOUT_MS", prog, &c->model_timeout_ms, err, errlen)) ||
      (rc = get_int("TOOLGATE_MODEL_RETRIES", prog, &c->model_retries, err, errlen)) ||
      (rc = get_int("TOOLGATE_RUN_TOKEN_BUDGET", prog, &c->run_token_budget, err, errlen)) ||
      (rc = get_int("TOOLGATE_CODE_TIMEOUT_S", prog, &c->code_timeout_s, err, errlen)) ||
      (rc = get_int("TOOLGATE_CODE_MEMORY_MB", prog, &c->code_memory_mb, err, errlen)) ||
      (rc = get_int("TOOLGATE_CODE_MAX_OUTPUT_BYTES", prog, &c->code_max_output_bytes, err,
                    errlen)) ||
      (rc = get_int("TOOLGATE_CODE_MAX_PROCS", prog, &c->code_max_procs, err, errlen)))
    return rc;
  return 0;
}

void tg_config_free(tg_config *c)
{
  if (!c)
    return;
  free(c->db_path);
  free(c->listen_host);
  free(c->composio_base_url);
  free(c->composio_api_key.value_);
  free(c->composio_mcp_server_id);
  free(c->redirect_url);
  free(c->ui_url);
  free(c->ui_dir);
  free(c->jwt_secret.value_);
  free(c->secret_key.value_);
  free(c->secret_key_old.value_);
  free(c->webhook_secret.value_);
  free(c->worker_id);
  free(c->log_level);
  for (size_t i = 0; i < c->n_providers; i++) {
    free(c->providers[i].provider);
    free(c->providers[i].auth_config_id);
    free(c->providers[i].toolkit_slug);
    free(c->providers[i].display_name);
  }
  free(c->providers);
  free(c->egress_allow);
  free(c->connect_to);
  free(c->ca_file);
  free(c->anthropic_api_key.value_);
  free(c->anthropic_base_url);
  free(c->openai_api_key.value_);
  free(c->openai_base_url);
  free(c->compatible_base_url);
  free(c->compatible_api_key.value_);
  free(c->sandbox_python);
  free(c->sandbox_node);
  memset(c, 0, sizeof *c);
}

const tg_provider *tg_config_provider(const tg_config *c, const char *provider)
{
  for (size_t i = 0; provider && i < c->n_providers; i++)
    if (strcmp(c->providers[i].provider, provider) == 0)
      return &c->providers[i];
  return NULL;
}

void tg_config_help(FILE *out, int prog, const char *usage)
{
  fprintf(out, "%s\n\nEnvironment variables:\n", usage);
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    if (!(vars[i].progs & prog))
      continue;
    fprintf(out, "  %-34s %s", vars[i].name, vars[i].help);
    if (vars[i].def && vars[i].integer)
      fprintf(out, " [default: %s; %" PRId64 " to %" PRId64 "]", vars[i].def, vars[i].min,
              vars[i].max);
    else if (vars[i].def)
      fprintf(out, " [default: %s]", vars[i].def);
    fputc('\n', out);
  }
}
