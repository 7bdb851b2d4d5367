/*
 * tg_config: configuration from environment variables (DESIGN.md section 9).
 *
 * One table (tg_config.c) names every variable, its default, which programs read it, a line of
 * help and, for numbers, the allowed range; tg_config_load() fills a tg_config from the
 * environment, refusing any value outside its range, and tg_config_help() prints the table for
 * --help. Strings in a tg_config are owned by it and freed by tg_config_free().
 * Secret values (API keys, secrets) are held as tg_secret so that no log call can format them
 * by accident: reach the text only through tg_secret_reveal() at the point of use.
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <stdint.h>
#include <stdio.h>

/* The version the programs report for --version. */
#define TG_VERSION "0.1.0"

/* Which program reads a variable (bit mask). */
enum { TG_PROG_GATEWAY = 1, TG_PROG_WORKER = 2, TG_PROG_SIM = 4, TG_PROG_ALL = 7 };

/* A secret string. Opaque on purpose: pass it around, reveal it only to send it. */
typedef struct tg_secret {
  char *value_; /* NULL when unset */
} tg_secret;

/* The secret's text, or NULL when unset. Never pass the result to a log function. */
const char *tg_secret_reveal(const tg_secret *s);

/* One provider from COMPOSIO_AUTH_CONFIG_<PROVIDER>=ac_...: provider is the lowercased suffix. */
typedef struct tg_provider {
  char *provider;       /* "gmail" */
  char *auth_config_id; /* "ac_..." */
  char *toolkit_slug;   /* COMPOSIO_TOOLKIT_<PROVIDER>, default: the provider name */
  char *display_name;   /* COMPOSIO_DISPLAY_NAME_<PROVIDER>, default: the provider name */
} tg_provider;

typedef struct tg_config {
  char *db_path;                /* TOOLGATE_DB: a SQLite path or a PostgreSQL URI (secret) */
  char *listen_host;            /* from TOOLGATE_LISTEN host:port */
  int listen_port;              /*   "  */
  char *composio_base_url;      /* COMPOSIO_BASE_URL, no trailing slash */
  tg_secret composio_api_key;   /* COMPOSIO_API_KEY */
  char *composio_mcp_server_id; /* COMPOSIO_MCP_SERVER_ID */
  char *redirect_url;           /* TOOLGATE_REDIRECT_URL: our callback, given to Composio */
  char *ui_url;                 /* TOOLGATE_UI_URL: where the callback sends the browser */
  char *ui_dir;                 /* TOOLGATE_UI_DIR: the web UI's files (gw_static) */
  int trust_user_header;        /* TOOLGATE_TRUST_USER_HEADER */
  tg_secret jwt_secret;         /* TOOLGATE_JWT_SECRET */
  int64_t jwt_max_lifetime_s;   /* TOOLGATE_JWT_MAX_LIFETIME_S: exp at most this far ahead */
  tg_secret secret_key;         /* TOOLGATE_SECRET_KEY */
  tg_secret secret_key_old;     /* TOOLGATE_SECRET_KEY_OLD (during a rotation) */
  int64_t max_url_bytes;        /* TOOLGATE_MAX_URL_BYTES (gateway HTTP limits, tg_httpd) */
  int64_t max_header_bytes;     /* TOOLGATE_MAX_HEADER_BYTES */
  int64_t max_headers;          /* TOOLGATE_MAX_HEADERS */
  int64_t max_body_bytes;       /* TOOLGATE_MAX_BODY_BYTES */
  int64_t header_timeout_ms;    /* TOOLGATE_HEADER_TIMEOUT_MS */
  int64_t body_timeout_ms;      /* TOOLGATE_BODY_TIMEOUT_MS */
  int64_t idle_timeout_ms;      /* TOOLGATE_IDLE_TIMEOUT_MS */
  int64_t max_connections;      /* TOOLGATE_MAX_CONNECTIONS */
  int64_t run_rate_per_min;     /* TOOLGATE_RUN_RATE_PER_MIN: admissions per user; 0 = off */
  tg_secret webhook_secret;     /* TOOLGATE_WEBHOOK_SECRET */
  int64_t default_credits;      /* TOOLGATE_DEFAULT_CREDITS */
  int64_t run_cost;             /* TOOLGATE_RUN_COST */
  char *worker_id;              /* TOOLGATE_WORKER_ID, default "<hostname>-<pid>" */
  int64_t poll_ms;              /* TOOLGATE_POLL_MS */
  int64_t lease_ms;             /* TOOLGATE_LEASE_MS */
  int64_t mcp_timeout_ms;       /* TOOLGATE_MCP_TIMEOUT_MS */
  int64_t composio_timeout_ms;  /* TOOLGATE_COMPOSIO_TIMEOUT_MS */
  int64_t concurrency;          /* TOOLGATE_WORKER_CONCURRENCY */
  int64_t user_concurrency;     /* TOOLGATE_USER_CONCURRENCY: runs running per user; 0 = no cap */
  int64_t tool_retries;         /* TOOLGATE_TOOL_RETRIES: retries of a transient tool failure */
  int64_t retry_base_ms;        /* TOOLGATE_RETRY_BASE_MS: first backoff delay */
  int64_t run_deadline_ms;      /* TOOLGATE_RUN_DEADLINE_MS: 0 = none */
  int64_t registry_max;         /* TOOLGATE_REGISTRY_MAX: MCP sessions kept per worker */
  int64_t shutdown_grace_ms;    /* TOOLGATE_SHUTDOWN_GRACE_MS */
  char *log_level;              /* TOOLGATE_LOG_LEVEL */
  int64_t max_per_peer;         /* TOOLGATE_MAX_CONNECTIONS_PER_PEER */
  int64_t pressure_timeout_ms;  /* TOOLGATE_PRESSURE_HEADER_TIMEOUT_MS */
  /* Reviews (HITL): TOOLGATE_REVIEW_TIMEOUT_S, seconds a review waits for a decision when its
   * HITL node has no timeout_s. */
  int64_t review_timeout_s;
  tg_provider *providers; /* sorted by provider name */
  size_t n_providers;
  /* The workflow engine (README "Workflow execution"). */
  int64_t run_node_concurrency;    /* TOOLGATE_RUN_NODE_CONCURRENCY: nodes of one run at once */
  int64_t worker_node_concurrency; /* TOOLGATE_WORKER_NODE_CONCURRENCY: nodes per worker */
  /* Egress of API and ad-hoc MCP nodes (tg_egress, tg_http; README "Egress policy"): */
  char *egress_allow; /* TOOLGATE_EGRESS_ALLOW: CIDRs and host names; NULL = none */
  char *connect_to;   /* TOOLGATE_CONNECT_TO: "host:port:addr:port,..."; NULL = none */
  char *ca_file;      /* TOOLGATE_CA_FILE: PEM bundle for their TLS; NULL = system store */
  /* Language models of Agent and Self-Review nodes (tg_llm.h; README "Agent nodes"). The
   * variables the official SDKs read, so the tests point them at a local simulator. */
  tg_secret anthropic_api_key;  /* ANTHROPIC_API_KEY */
  char *anthropic_base_url;     /* ANTHROPIC_BASE_URL, no trailing slash */
  tg_secret openai_api_key;     /* OPENAI_API_KEY */
  char *openai_base_url;        /* OPENAI_BASE_URL (with /v1), no trailing slash */
  char *compatible_base_url;    /* TOOLGATE_OPENAI_COMPATIBLE_BASE_URL; NULL = none */
  tg_secret compatible_api_key; /* TOOLGATE_OPENAI_COMPATIBLE_API_KEY; may be unset */
  int64_t model_timeout_ms;     /* TOOLGATE_MODEL_TIMEOUT_MS: one model request */
  int64_t model_retries;        /* TOOLGATE_MODEL_RETRIES: after 429/529/5xx/transport */
  int64_t run_token_budget;     /* TOOLGATE_RUN_TOKEN_BUDGET: input+output tokens per run;
                                   0 = none */
  /* The Code sandbox (tg_sandbox.h; README "Code nodes"). */
  char *sandbox_python;          /* TOOLGATE_SANDBOX_PYTHON: interpreter inside the sandbox */
  char *sandbox_node;            /* TOOLGATE_SANDBOX_NODE: javascript interpreter; NULL = none */
  int64_t code_timeout_s;        /* TOOLGATE_CODE_TIMEOUT_S: default wall clock per execution */
  int64_t code_memory_mb;        /* TOOLGATE_CODE_MEMORY_MB: default address-space cap */
  int64_t code_max_output_bytes; /* TOOLGATE_CODE_MAX_OUTPUT_BYTES: stdout+stderr+result cap */
  int64_t code_max_procs;        /* TOOLGATE_CODE_MAX_PROCS: processes per execution */

  /* TOOLGATE_DB_STATEMENT_TIMEOUT_MS: PostgreSQL's statement and idle-in-transaction timeouts */
  int64_t db_statement_timeout_ms;
} tg_config;

/*
 * Fills *c from the environment for program prog (TG_PROG_*). Integer variables prog does not
 * read keep their defaults. On failure returns TG_EINVAL (or TG_ENOMEM) and writes a one-line
 * reason into err (size errlen) naming the variable, e.g. "TOOLGATE_WORKER_CONCURRENCY: expected
 * an integer from 1 to 1024, got "0"". *c must be freed with tg_config_free() either way.
 */
int tg_config_load(tg_config *c, int prog, char *err, size_t errlen);

void tg_config_free(tg_config *c);

/* Finds a configured provider by name; NULL when unknown. The pointer lives as long as c. */
const tg_provider *tg_config_provider(const tg_config *c, const char *provider);

/*
 * Parses text as a whole decimal integer in [min, max] into *out: digits only (no sign, space or
 * suffix), no overflow. Returns 0, or TG_EINVAL with *out untouched. The rule of every number
 * in the environment, shared by the programs' command lines.
 */
int tg_config_parse_int(const char *text, int64_t min, int64_t max, int64_t *out);

/* Prints usage: the summary line, then every variable prog reads with help, default and
 * range. */
void tg_config_help(FILE *out, int prog, const char *usage);

#endif
