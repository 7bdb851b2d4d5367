/*
 * gw: the gateway's internal declarations, shared by the gateway sources only.
 *
 * One gw_app per process: the loop, the configuration, the database pool (tg_dbq), the HTTP
 * server and client, the Composio client. Every request handler is a small state machine over
 * its own context struct that starts with a gw_job; the context is freed right after the one
 * response is sent. The loop never touches SQLite: every query runs in a tg_dbq job whose done
 * callback continues the request.
 */
#ifndef GW_H
#define GW_H

#include "gw_composio_fault.h"
#include "tg_accounts_cache.h"
#include "tg_check.h"
#include "tg_composio.h"
#include "tg_config.h"
#include "tg_crypto.h"
#include "tg_db.h"
#include "tg_dbq.h"
#include "tg_egress.h"
#include "tg_err.h"
#include "tg_http.h"
#include "tg_httpd.h"
#include "tg_log.h"
#include "tg_oauth2_tokens.h"
#include "tg_sealed.h"
#include "tg_store_accounts.h"
#include "tg_store_auth_configs.h"
#include "tg_store_credits.h"
#include "tg_store_oauth.h"
#include "tg_store_runs.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#define GW_USER_MAX 128        /* bytes of a user id (X-User-Id) */
#define GW_STATE_TTL_MS 600000 /* oauth_states lifetime: 10 minutes (composio-api.md 2.5) */
#define GW_DB_CONNS 4          /* connections in the tg_dbq pool */
#define GW_POLL_FIRST_MS 250   /* callback: first delay between account polls */
#define GW_POLL_TOTAL_MS 10000 /* callback: give up polling for ACTIVE after this long */

typedef struct gw_waiter gw_waiter;
typedef struct gw_checkpool gw_checkpool;
typedef struct gw_defcache gw_defcache;
typedef struct gw_batch gw_batch;

/* Admission decisions counted by /metrics (gw_metrics.c). */
enum {
  GW_ADM_QUEUED,
  GW_ADM_REPLAYED,
  GW_ADM_BLOCKED,
  GW_ADM_UNAVAILABLE,
  GW_ADM_INSUFFICIENT_CREDITS,
  GW_ADM_INVALID,
  GW_ADM_NOT_FOUND,
  GW_ADM_CONFLICT,
  GW_ADM_ERROR,
  GW_ADM_N
};
#define GW_LAT_BUCKETS 12

/* Counters of the gateway, touched only on the loop thread (no atomics needed). */
typedef struct gw_metrics {
  uint64_t admissions[GW_ADM_N];
  uint64_t preflights;
  uint64_t composio_calls;       /* HTTP requests to Composio made by checks (pages + GETs) */
  uint64_t composio_list_calls;  /* fetches (one list call each, maybe paged) started by checks */
  uint64_t composio_calls_saved; /* checks served by a fetch - fetches started */
  uint64_t composio_rate_limited;
  uint64_t checks;                          /* checks answered (any outcome) */
  uint64_t check_ms_bucket[GW_LAT_BUCKETS]; /* cumulative at render time; raw counts here */
  double check_ms_sum;
} gw_metrics;
typedef struct gw_ratelimit gw_ratelimit;

typedef struct gw_app {
  uv_loop_t *loop;
  tg_config cfg;
  tg_dbq *dbq;
  tg_httpd *httpd;
  tg_http_client *http;
  tg_composio *composio;
  int stopping;         /* set by SIGTERM/SIGINT: no new work, wake waiters */
  gw_waiter *waiters;   /* requests sleeping on a timer (callback polling) */
  gw_checkpool *checks; /* coalescing provider checks (gw_checkpool.c) */
  gw_metrics metrics;
  gw_defcache *defcache;           /* gw_defcache.c: parsed workflow definitions of admissions */
  gw_batch *loadq;                 /* gw_batch.c: admission's LOAD step, one job at a time */
  gw_batch *admitq;                /* gw_batch.c: admission's ADMIT step, group commit */
  tg_crypto *crypto;               /* secrets at rest; NULL when TOOLGATE_SECRET_KEY is unset */
  gw_ratelimit *runlimit;          /* per-user admissions; NULL when TOOLGATE_RUN_RATE_PER_MIN=0 */
  tg_accounts_cache *status_cache; /* gw_status.c's answers per (user, provider); made on first
                                    * use, NULL before */
  struct gw_sync *sync;            /* gw_sync.c: start-up re-sync and the periodic cleanup */
  struct gw_streams *streams;      /* gw_run_events.c: open SSE streams per user; NULL before
                                    * the first */
  struct gw_catalog *catalog;      /* gw_catalog.c: the tool catalog's sync, built-ins, cache */
  tg_http_client *http_egress;     /* user-supplied URLs (connectors' test and invoke) under
                                    * TOOLGATE_EGRESS_ALLOW, CONNECT_TO and CA_FILE (gw_main.c) */
  tg_egress *egress;               /* the egress policy of http_egress */
  tg_oauth2_tokens *oauth2_tokens; /* oauth2 API connectors' access tokens, fetched on
                                    * http_egress (gw_main.c) */
  struct gw_static *ui;            /* gw_static.c: the web UI's files; NULL when none */
} gw_app;

/* --- Requests sleeping on a timer (gw_waiter.c). --- */

/*
 * A request sleeping on a uv timer. Registered in app->waiters so that shutdown can wake it
 * at once instead of waiting for the timer. wake is called on the loop (timer fired or
 * shutdown); the owner unlinks it with gw_waiter_remove.
 */
struct gw_waiter {
  gw_waiter *next, *prev;
  void (*wake)(gw_waiter *w);
};
void gw_waiter_add(gw_app *app, gw_waiter *w);
void gw_waiter_remove(gw_app *app, gw_waiter *w);

/* --- A request's job: context, outcome, database work, reply (gw_job.c). --- */

/*
 * The head of every per-request context. Work functions (pool threads) fill status, code,
 * message, body and details; gw_job_reply (loop) answers from them.
 */
typedef struct gw_job {
  gw_app *app;
  tg_httpd_req *req;
  char user[GW_USER_MAX + 1]; /* "" for routes without identity */
  int status;                 /* HTTP status to answer; 0 = not decided yet */
  const char *code;           /* error code (static string) when status >= 400 */
  const char *message;        /* error sentence (static string) */
  json_t *body;               /* success body (owned), or extra error members to merge */
} gw_job;

/* Sets an error outcome on a job (static strings). Returns status for convenience. */
int gw_job_fail(gw_job *j, int status, const char *code, const char *message);

/* Answers the request from j's outcome (error body merged with j->body when status >= 400)
 * and clears j->req and j->body. Extra headers as in tg_httpd_respond; a 503 without headers
 * gets "Retry-After: 1". */
void gw_job_reply(gw_job *j, const char *const *headers);

/* A job outcome from a TG_E* code a work function returned: busy or a statement timeout →
 * 503 database_busy, a lost database connection (TG_EIO) → 503 database_unavailable, a closing
 * queue → 503 shutting_down, others → 500. */
void gw_job_fail_err(gw_job *j, int err);

/* Queues a job; when the queue refuses, answers 503 and returns the error (done not called). */
int gw_submit(gw_job *j, tg_dbq_work_fn work, tg_dbq_done_fn done, void *arg);

/*
 * Handler helper: a new zeroed context of ctx_size bytes whose FIRST member is a gw_job
 * (check with GW_JOB_FIRST), with j.app, j.req and j.user set (user NULL: no identity, "").
 * Returns it (the caller frees it), or NULL after answering 500 internal "Out of memory."
 */
void *gw_job_new(gw_app *app, tg_httpd_req *req, const char *user, size_t ctx_size);

/*
 * gw_job_new, then gw_submit(its job, work, done, ctx) for a context that needs nothing more
 * before work runs. Returns 0 (done will run and owns the context), or an error after the
 * request was answered (500, or 503 when the queue refused; the context was freed with free()).
 */
int gw_job_start(gw_app *app, tg_httpd_req *req, const char *user, size_t ctx_size,
                 tg_dbq_work_fn work, tg_dbq_done_fn done);

/*
 * A tg_dbq_done_fn for a context made by gw_job_new that owns nothing but j.body: when status
 * (the work's result) is not 0, drops j.body and sets the error outcome (gw_job_fail_err);
 * then answers from the job (gw_job_reply) and frees the context with free().
 */
void gw_job_done_free(void *ctx, int status);

/* Compile-time check that a context type starts with its gw_job j (for gw_job_new). */
#define GW_JOB_FIRST(type) _Static_assert(offsetof(type, j) == 0, #type ": gw_job j must be first")

/* --- JSON bodies: error bodies out, request objects in (gw_body.c). --- */

/* Sends {"error":code,"message":message} merged with the members of details (owned, may be
 * NULL). */
void gw_respond_error(tg_httpd_req *r, int status, const char *code, const char *message,
                      json_t *details, const char *const *headers);

/*
 * Parses the request body as JSON (must be an object). Returns a new object, or answers 400
 * invalid_json itself and returns NULL.
 */
json_t *gw_parse_body(tg_httpd_req *req);

/* --- The caller of an /api route (gw_identity.c). --- */

/*
 * Identifies the caller of an /api route into user (GW_USER_MAX + 1 bytes). Returns 0, or
 * answers 401 itself and returns TG_EAUTH (the request is then gone).
 */
int gw_identify(gw_app *app, tg_httpd_req *req, char *user);

/* --- The write lock; work side (gw_write_lock.c). --- */

/*
 * Process-wide lock around the gateway's hot write transactions (admission's group commit and
 * run cancel): their pool threads queue on a mutex instead of sleeping in SQLite's busy handler
 * (which backs off in steps of milliseconds). Other writes (users, workflows, OAuth, webhook,
 * status write-back, clean-up) are rare and rely on the busy timeout, as do other processes
 * (workers). Work side only.
 */
void gw_write_lock(void);
void gw_write_unlock(void);

/* --- Per-user admission rate limit (gw_ratelimit.c): token buckets, loop thread only. --- */

/* A limiter allowing per_min admissions per user per minute (burst per_min); *out NULL when
 * per_min is 0 (no limit). TG_ENOMEM. */
int gw_ratelimit_new(gw_ratelimit **out, int64_t per_min);
void gw_ratelimit_free(gw_ratelimit *rl); /* NULL-safe */

/* Takes one token of user's bucket at now_ms: 0, or TG_ERATELIMIT with *retry_after_s (>= 1)
 * the seconds until one is available. rl NULL always admits. */
int gw_ratelimit_take(gw_ratelimit *rl, const char *user, uint64_t now_ms, int64_t *retry_after_s);

/* Router helper: 0 to go on, or answers 429 rate_limited with Retry-After itself and returns
 * TG_ERATELIMIT (the request is then gone). */
int gw_ratelimit_admit(gw_app *app, tg_httpd_req *req, const char *user);

/* --- Routes (gw_router.c dispatches to these). --- */
void gw_route(tg_httpd_req *req, void *arg); /* the tg_httpd handler; arg is the gw_app */

/* What a route asks of a request before its handler runs, in this order (gw_router.c's table). */
enum {
  GW_ROUTE_USER = 1 << 0,         /* the caller's identity (gw_identify: 401 without one) */
  GW_ROUTE_RATE_LIMITED = 1 << 1, /* a token of the caller's admission bucket
                                     (gw_ratelimit_admit: 429); needs GW_ROUTE_USER */
  GW_ROUTE_STATIC = 1 << 2,       /* serves the web UI's static files, not an API route: left
                                     out of docs/openapi.json (test_openapi.py's route parity) */
};

/*
 * Writes the route table to out, one route a line in table order: "METHOD /path", each "*"
 * segment written "{*}", followed by " static" for GW_ROUTE_STATIC routes
 * (toolgate-gateway --routes). Returns 0, or -1 when a write failed.
 */
int gw_routes_write(FILE *out);

/* GET /openapi.json: docs/openapi.json as compiled in (gw_openapi.c). */
void gw_openapi_get(gw_app *app, tg_httpd_req *req);

/* GET / (a GW_ROUTE_STATIC route): the web UI's index.html when one is installed (gw_static),
 * else the landing page the OAuth callback redirects the browser to (gw_ui.c). */
void gw_ui_index(gw_app *app, tg_httpd_req *req);

/* --- The web UI's files (gw_static.c; README "Web UI"). --- */

typedef struct gw_static gw_static;

/*
 * Reads every file under dir (TOOLGATE_UI_DIR) into memory, once, at start-up (blocking: call it
 * before the loop runs). Returns 0 with *out set (free with gw_static_free), TG_ENOTFOUND when
 * dir or its index.html is missing, TG_ETOOBIG past the file count or size caps, TG_EIO,
 * TG_ENOMEM; *out is NULL on failure.
 */
int gw_static_load(gw_static **out, const char *dir);
void gw_static_free(gw_static *s);          /* NULL is fine */
size_t gw_static_count(const gw_static *s); /* files loaded */

/*
 * Answers a GET of the web UI: a UI file (200, or 304 on a matching If-None-Match), index.html
 * for a client route asked for as text/html, or 404 (a missing file, a client route asked for as
 * something else), and returns 1; returns 0 without answering when no UI is installed.
 */
int gw_static_serve(gw_app *app, tg_httpd_req *req);
/* The GW_ROUTE_STATIC routes' handler: gw_static_serve, or 404 when no UI is installed. */
void gw_static_get(gw_app *app, tg_httpd_req *req);
void gw_healthz(gw_app *app, tg_httpd_req *req);
void gw_readyz(gw_app *app, tg_httpd_req *req);
void gw_auth_providers(gw_app *app, tg_httpd_req *req, const char *user);
void gw_auth_start(gw_app *app, tg_httpd_req *req, const char *user, const char *provider);
void gw_auth_callback(gw_app *app, tg_httpd_req *req);
void gw_workflow_create(gw_app *app, tg_httpd_req *req, const char *user);
void gw_workflow_list(gw_app *app, tg_httpd_req *req, const char *user);
void gw_workflow_get(gw_app *app, tg_httpd_req *req, const char *user, const char *id);
/* PUT /api/workflows/{id}: validated replacement of name and definition (200, 404, 422). */
void gw_workflow_update(gw_app *app, tg_httpd_req *req, const char *user, const char *id);
/* DELETE /api/workflows/{id}: 200 {id, deleted}; 409 workflow_has_runs while runs refer to it. */
void gw_workflow_delete(gw_app *app, tg_httpd_req *req, const char *user, const char *id);
void gw_run_admit(gw_app *app, tg_httpd_req *req, const char *user, const char *workflow_id);
void gw_run_get(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id);
void gw_run_tool_executions(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id);

void gw_run_preflight(gw_app *app, tg_httpd_req *req, const char *user, const char *workflow_id);
void gw_run_list(gw_app *app, tg_httpd_req *req, const char *user);
void gw_run_cancel(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id);
void gw_run_retry(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id);
/* POST /api/runs/{id}/resolve (gw_run_resolve.c): the workflow engine's outcome_unknown. */
void gw_run_resolve(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id);

/* Creates admission's definition cache and batch queues in app (app->dbq is used only when a
 * request arrives). Returns 0 or TG_ENOMEM (then call gw_admit_cleanup). */
int gw_admit_init(gw_app *app);
/* Frees them (loop thread; at shutdown, after the loop ended). Safe on a partial or no init. */
void gw_admit_cleanup(gw_app *app);

void gw_credits_get(gw_app *app, tg_httpd_req *req, const char *user);

/* Reviews (HITL) and run events (gw_reviews.c, gw_run_events.c; README "Reviews (HITL)", "Run
 * events"). */
/* Cursor paging of the list routes (gw_page.c). */
#define GW_PAGE_DEFAULT 50
#define GW_PAGE_MAX 200
typedef struct gw_page {
  int limit;                      /* rows of one page, 1..GW_PAGE_MAX */
  int64_t after_at;               /* the cursor's created_at, valid when *after_id */
  char after_id[GW_USER_MAX + 1]; /* the cursor's id, "" for the first page */
} gw_page;
/* Reads ?limit= and ?cursor= into p: NULL, or the message of a 400 invalid_request. */
const char *gw_page_parse(tg_httpd_req *req, gw_page *p);
/* For a list read with p.limit + 1 rows, newest first by (created_at, id): when rows has more
 * than limit, drops the extra row and returns the next cursor "<created_at>:<id>" of the last
 * row kept (a new string), else JSON null. */
json_t *gw_page_cursor(json_t *rows, int limit);
/* Answers a list job with that page: status 200 and {key: rows, next_cursor} (rows, read with
 * limit + 1 rows, stolen). 0, or TG_ENOMEM. */
int gw_page_answer(gw_job *j, const char *key, json_t *rows, int limit);
/* The entry of names (NULL-terminated, static strings) equal to s, or NULL (also for s NULL):
 * the closed sets of names a request may give, such as a list route's ?status=. */
const char *gw_name_in(const char *s, const char *const names[]);
void gw_review_list(gw_app *app, tg_httpd_req *req, const char *user);
void gw_review_get(gw_app *app, tg_httpd_req *req, const char *user, const char *id);
void gw_review_decide(gw_app *app, tg_httpd_req *req, const char *user, const char *id);
/* GET /api/runs/{id}/events: JSON pages, or an SSE stream when the client accepts
 * text/event-stream. */
void gw_run_events(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id);
/* Credentials of API nodes (gw_credentials.c): POST /api/credentials (201 created, 200
 * replaced, 422, 503 secret_key_missing), GET /api/credentials, GET and DELETE
 * /api/credentials/{name} (204; 404). */
void gw_credential_put(gw_app *app, tg_httpd_req *req, const char *user);
void gw_credential_list(gw_app *app, tg_httpd_req *req, const char *user);
/* GET or DELETE /api/credentials/{name}, by the request's method. */
void gw_credential_by_name(gw_app *app, tg_httpd_req *req, const char *user, const char *name);
void gw_metrics_get(gw_app *app, tg_httpd_req *req);

/* Connectors (gw_connectors.c, gw_connectors_call.c; README "Connectors"): POST
 * /api/connectors/api and /api/connectors/mcp (201; 409 name taken; 422; 503
 * secret_key_missing; ?validate=1 refuses 422 connector_test_failed), GET /api/connectors, GET,
 * PUT and DELETE /api/connectors/{id} (by the request's method; 404 for another user's or a
 * deleted one), POST /api/connectors/{id}/test and /invoke. */
void gw_connector_create_api(gw_app *app, tg_httpd_req *req, const char *user);
void gw_connector_create_mcp(gw_app *app, tg_httpd_req *req, const char *user);
void gw_connector_list(gw_app *app, tg_httpd_req *req, const char *user);
void gw_connector_by_id(gw_app *app, tg_httpd_req *req, const char *user, const char *id);
void gw_connector_test(gw_app *app, tg_httpd_req *req, const char *user, const char *id);
void gw_connector_invoke(gw_app *app, tg_httpd_req *req, const char *user, const char *id);
/* MCP authorization of an OAuth MCP connector (gw_connector_oauth.c): POST
 * /api/connectors/{id}/oauth/start → 200 {redirect_url, connector_id, expires_at} (404, 422
 * not_oauth, 502 authorization_discovery_failed, 503 secret_key_missing); GET
 * /api/connectors/oauth/callback?code&state (public: the state stands for the user) → 302 to
 * TOOLGATE_UI_URL?connector=<id>&status=connected|failed[&error=...], 400 invalid_state. */
void gw_connector_oauth_start(gw_app *app, tg_httpd_req *req, const char *user, const char *id);
void gw_connector_oauth_callback(gw_app *app, tg_httpd_req *req);

/*
 * One call through an opened connector (tg_store_connectors_open's object, stolen: wiped and
 * released here), on app->http_egress: test (an API connector's first operation with its
 * example_payload, or GET base_url without operations; an MCP connector's initialize and
 * tools/list) or invoke (operation with payload, NULL: the stored example_payload; MCP: tools/call
 * {name: operation, arguments: payload}). bearer (copied; may be NULL) is an MCP connector's
 * OAuth access token. An oauth2 API connector's access token comes from app->oauth2_tokens,
 * cached for user (copied) and the connector, renewed once when the API answers 401 to a cached
 * one; a failed token request is an output with success false and the token endpoint's status
 * (0 when it did not answer). cb runs once, from the loop (possibly before this returns), with
 * 200 and the output {success, status_code, data, error, elapsed_seconds} (secrets cut out),
 * or with an HTTP error status and an error body {error, message}; cb owns the body. Returns 0,
 * or TG_ENOMEM (cb not called).
 */
typedef void (*gw_connector_call_cb)(void *arg, int status, json_t *body);
int gw_connector_call(gw_app *app, const char *user, json_t *opened, const char *bearer, int test,
                      const char *operation, const json_t *payload, gw_connector_call_cb cb,
                      void *arg);

/* --- Provider checks shared per user, batched across users (gw_checkpool.c). --- */

/*
 * The pool: per user at most one Composio fetch in flight. A check that arrives while its
 * user's fetch is in flight waits for the user's NEXT fetch, which starts when the current one
 * ends (so its answer was produced after the check arrived: never stale); every check waiting
 * then shares that one fetch, and each decides its own scope with tg_check_decide over the
 * shared accounts (matched to its own rows by account id). Users ready in the same loop
 * iteration share one list call (user_ids=u1,u2,...; at most 32 users). The pool owns a
 * uv_check and a uv_prepare handle on app->loop (initialised here, active only while checks
 * wait to start). Returns 0 or TG_ENOMEM.
 */
int gw_checkpool_new(gw_checkpool **out, gw_app *app);
/* NULL-safe; call when no check is in flight, after the loop has returned, never from a loop
 * callback: it closes the pool's handles and runs the loop once (UV_RUN_NOWAIT) so their close
 * callbacks free the pool before uv_loop_close. */
void gw_checkpool_free(gw_checkpool *p);

/*
 * Runs the DESIGN.md section 4 check for user over scope (array of provider names) and the
 * user's rows. scope and rows (and their strings) are borrowed until cb runs: the caller keeps
 * them alive. When no Composio call is needed (every provider decided by our rows, or Composio
 * asked us to back off and its Retry-After has not passed) *now gets the result at once and cb
 * is never called. Otherwise cb runs exactly once, later, from the loop (at the earliest in this
 * iteration's check or prepare phase), with a result the callee must free with
 * tg_check_result_free; when no call can start (out of memory, shutdown or a back-off that
 * began meanwhile) that result is UNAVAILABLE. Errors (cb never called): TG_ENOMEM, TG_EINVAL,
 * TG_ECANCELED (shutting down).
 */
int gw_check(gw_app *app, const char *user, const json_t *scope, const tg_check_row *rows,
             size_t n_rows, tg_check_cb cb, void *arg, tg_check_result **now);

/* Metrics helpers (loop thread only). */
void gw_metrics_admission(gw_app *app, int decision);
void gw_metrics_check_latency(gw_app *app, double ms);

/* --- OAuth connection lifecycle (gw_auth_*.c, gw_status.c, gw_webhook.c, gw_sync.c). --- */
#define GW_STATUS_FRESH_MS 30000 /* GET /api/mcp/auth/status: cache freshness per user+provider */

/*
 * Handler helper for a route on one provider: the configured provider named provider in *p, then
 * gw_job_new(app, req, user, ctx_size). Returns the context, or NULL after answering: 404
 * unknown_provider with "known" (the configured provider names), or gw_job_new's 500.
 */
void *gw_provider_job_new(gw_app *app, tg_httpd_req *req, const char *user, const char *provider,
                          size_t ctx_size, const tg_provider **p);

/* Answers a failed Composio call on j (gw_composio_fault.c) with the one mapping of
 * gw_composio_fault.h: status, error code, Retry-After; the body adds "detail" (the TG_E* name),
 * "composio_status" (0 when no answer) and, when retryable, "retry_after_ms". */
void gw_composio_fail(gw_job *j, const tg_composio_result *res);

/* Sets j's outcome to f (status, code, message) with body details (stolen, may be NULL) plus
 * "retry_after_ms" when f is retryable; the caller replies with f->headers. */
void gw_job_fail_composio(gw_job *j, const gw_composio_fault *f, json_t *details);

/* DELETE /api/mcp/auth/{provider} (gw_auth_manage.c). */
void gw_auth_disconnect(gw_app *app, tg_httpd_req *req, const char *user, const char *provider);
/* GET /api/mcp/auth/debug: the caller's connections and MCP endpoints, redacted. */
void gw_auth_debug(gw_app *app, tg_httpd_req *req, const char *user);
/* GET /api/mcp/auth/status[?force=1] (gw_status.c). */
void gw_auth_status(gw_app *app, tg_httpd_req *req, const char *user);
/* POST /api/webhooks/composio (gw_webhook.c): Standard Webhooks signature, once per id. */
void gw_webhook_composio(gw_app *app, tg_httpd_req *req);

/* Our status for a Composio account (unknown statuses: NULL), and whether it may run tools. A
 * 404 from Composio is REVOKED / "connected_account_not_found". */
int gw_account_authorized(const tg_composio_account *a);

/* Starts the background work of gw_sync.c after the server listens: re-sync of ACTIVE
 * connections with Composio (bounded concurrency; readiness does not wait) and the periodic
 * cleanup of expired oauth_states, abandoned PENDING accounts and retired accounts still to
 * delete at Composio (first run at once). Returns 0 or TG_ENOMEM. gw_sync_stop closes its timer
 * (shutdown); in-flight work ends by itself. */
int gw_sync_start(gw_app *app);
void gw_sync_stop(gw_app *app);

/* Deletes retired Composio account ca_id (recorded in retired_accounts) at Composio, in the
 * background: done (2xx or 404) → forgotten; failed → the attempt is noted and the periodic
 * cleanup tries again. Best effort: nothing is reported to the caller; out of memory or
 * shutting down leaves it to the cleanup. ca_id is copied. Loop thread only. */
void gw_sync_retire(gw_app *app, const char *ca_id);

/* --- The tool catalog (gw_catalog.c: sync, built-ins, cache; gw_tools.c: routes; README
 * "Tool catalog"). Loop thread only. --- */
#define GW_CATALOG_TTL_MS 60000  /* a cached catalog answer lives at most this long */
#define GW_CATALOG_CHECK_MS 1000 /* a cache hit re-checks the sources' versions this often */

/* Starts the catalog after the server listens: the built-ins job, then a sync of every user
 * with connectors or Composio connections, one user at a time (readiness does not wait).
 * MCP sources are listed through app->http (Composio's servers) and app->http_egress (connectors:
 * user-supplied URLs, under the egress policy). Returns 0, or a TG_E* code; the caller then
 * still calls gw_catalog_stop and gw_catalog_free. */
int gw_catalog_start(gw_app *app);
/* Shutdown: no new syncs; closes the listening sessions (listings in flight end canceled when
 * gw_main closes the HTTP clients).
 * NULL-safe and idempotent. */
void gw_catalog_stop(gw_app *app);
/* Frees the catalog after the loop has run dry. NULL-safe. */
void gw_catalog_free(gw_app *app);

/* --- Code nodes' packages (gw_packages.c) --- */
/* Starts the background probe of the modules the sandbox's python can import; never fails (a
 * failure is logged and packages then go unchecked). */
void gw_packages_start(gw_app *app);
/* The write-time refusals of definition's Code nodes (tg_workflow_check_code: a package that is
 * not installed, javascript without an interpreter): NULL, or a new array of errors for the 422.
 * Call on a definition that passed tg_workflow_validate. */
json_t *gw_packages_check(gw_app *app, const json_t *definition);

/* Re-syncs user_id's catalog after connector_id was created, updated or deleted (connector
 * routes call it after their write committed). Runs in the background; never fails. */
void gw_catalog_connector_changed(gw_app *app, const char *user_id, const char *connector_id);
/* Syncs user (force: list every MCP source again, whatever its version). Background. */
void gw_catalog_sync_user(gw_app *app, const char *user, int force);
/* Runs the next start-up sync when none is running (called when a sync ends). */
void gw_catalog_startup_next(gw_app *app);

/* The built-ins' catalog entries, from memory (borrowed), or NULL before start. */
const json_t *gw_catalog_builtins(gw_app *app);
/* The user's catalog generation: moves with every write of the user's tools by this process. */
uint64_t gw_catalog_gen(gw_app *app, const char *user);
/* A write of the user's tools: moves the generation and drops the cached answer. */
void gw_catalog_touch(gw_app *app, const char *user);
/* The cached available-tools body of user, when it is of the current generation and younger
 * than GW_CATALOG_TTL_MS; else NULL. A hit holds a reference in *ref that keeps the body valid
 * (evicted or not) until gw_catalog_cached_release(*ref), the release of
 * tg_httpd_respond_shared. A hit whose sources were last checked more than GW_CATALOG_CHECK_MS
 * ago starts a background check of their versions. Loop thread only. */
const char *gw_catalog_cached(gw_app *app, const char *user, size_t *len, void **ref);
void gw_catalog_cached_release(void *ref);
/* Caches body (malloc'd, taken) as user's answer read at generation gen (dropped when the
 * generation moved meanwhile). */
void gw_catalog_cache_put(gw_app *app, const char *user, uint64_t gen, char *body, size_t len);
/* Starts a sync when versions (source key -> version, from gw_catalog_source_versions) differ
 * from what the user's last sync listed. */
void gw_catalog_check_versions(gw_app *app, const char *user, const json_t *versions);
/* Work side: the user's connectors (read-only; every row, deleted ones too): a new array of
 * {id, kind, name, description, config, secret_hex, auth_status, version, deleted_at}, or NULL
 * with *err. */
json_t *gw_catalog_read_connectors(tg_db *db, int *err, const char *user);
/* Work side: the version of each of the user's tool sources: a new object {"con:<id>": version
 * (-1 deleted), "composio:<provider>": version (-1 not ACTIVE)}, or NULL with *err. */
json_t *gw_catalog_source_versions(tg_db *db, int *err, const char *user);

/* Routes (gw_tools.c). */
void gw_tools_available(gw_app *app, tg_httpd_req *req, const char *user);
void gw_tools_from_connector(gw_app *app, tg_httpd_req *req, const char *user);
void gw_tools_register(gw_app *app, tg_httpd_req *req, const char *user);
void gw_tools_delete(gw_app *app, tg_httpd_req *req, const char *user, const char *id);

#endif
