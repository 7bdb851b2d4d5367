/*
 * wk: the worker program's internal contracts (DESIGN.md section 5).
 *
 * One process, one uv loop. The loop thread owns every struct below; SQLite work runs only in
 * tg_dbq jobs whose work functions touch nothing but their job struct and the connection.
 *
 * A run's life: claim (wk_claim.c) -> pre-execute guard (wk_guard.c) -> the run's state machine
 * (wk_engine.c), which executes nodes through one executor per node type (wk_node.h,
 * wk_node_<type>.c; MCP clients from wk_registry.c) -> finish, park or attention. Every write after
 * the claim is fenced by (id, claimed_by, attempt, status='running'); a write that matches no row
 * means the lease was lost (or the run was canceled), and the run stops without writing more.
 * A wk_run is freed only when it has ended, its heartbeat and deadline timers are closed and
 * nothing it started is in flight.
 *
 * Cancellation: the gateway sets cancel_requested=1 on a running run; every journal write, the
 * guard's outcome and every heartbeat read that column into r->cancel, and the engine starts no
 * node after it and finishes the run as 'canceled' once its nodes in flight are done (a call in
 * flight is not interrupted by it). The run deadline and the shutdown grace do interrupt the
 * nodes in flight (wk_node_ops.cancel).
 */
#ifndef WK_H
#define WK_H

#include "tg_check.h"
#include "tg_composio.h"
#include "tg_config.h"
#include "tg_crypto.h"
#include "tg_db.h"
#include "tg_dbq.h"
#include "tg_egress.h"
#include "tg_graph.h"
#include "tg_http.h"
#include "tg_log.h"
#include "tg_mcp.h"
#include "tg_oauth2_tokens.h"
#include "tg_sealed.h"
#include "tg_store_runs.h"

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

typedef struct wk_worker wk_worker;
typedef struct wk_run wk_run;
typedef struct wk_registry wk_registry;
typedef struct wk_client wk_client;
typedef struct wk_sweep wk_sweep;
typedef struct wk_engine wk_engine;

/* Why the worker interrupts a node in flight (wk_node_ops.cancel). */
enum { WK_STOP_NONE = 0, WK_STOP_DEADLINE, WK_STOP_SHUTDOWN };

struct wk_run {
  wk_worker *w;
  wk_run *next; /* in w->runs */
  char *id, *workflow_id, *user_id;
  int64_t attempt, cost;
  json_t *inputs, *metadata, *definition; /* from the claim */
  json_t *accounts; /* the user's accounts and MCP endpoints (tg_store_runs_read_accounts) */
  tg_graph *graph;  /* built from definition at the claim (immutable; NULL when it is invalid) */
  json_t *journal;  /* the run's node_executions from earlier attempts, the last row of each
                       node (tg_store_nodes_journal), read at the claim */

  uv_timer_t hb;   /* heartbeat every lease/3 */
  uv_timer_t dl;   /* the run deadline: cancels the nodes in flight */
  int hb_job;      /* a heartbeat job is in flight */
  int timers_open; /* hb + dl until their close callbacks ran */
  int cancel;      /* cancel_requested was seen set */
  int pending;     /* async operations in flight on behalf of the run (nodes included) */
  int lost;        /* a fenced write matched nothing: stop, write nothing more */
  int aborted;     /* shutdown grace expired: the lease is being released */
  int ended;

  wk_engine *eng; /* the run's state machine (wk_engine.c), from the guard's go-ahead */
  uint64_t claimed_ms;
  int64_t lease_set_at; /* tg_now_ms() when the claim wrote the lease (pool thread) */
  uint64_t deadline_ms; /* loop time after which the run fails with 'timeout'; 0: none */
  tg_check *check;      /* the pre-execute check in flight, or NULL */
  char **secrets;       /* values of the secret inputs, NULL-terminated (wk_secrets.c); NULL:
                           none. Immutable after the claim: pool jobs may read it. */
};

struct wk_worker {
  uv_loop_t *loop;
  tg_config cfg;
  tg_dbq *dbq;
  tg_http_client *http;             /* Composio and managed MCP sessions */
  tg_http_client *http_egress;      /* user-supplied URLs (API nodes, ad-hoc MCP nodes) under the
                                       egress policy (wk_main.c) */
  tg_egress *egress;                /* TOOLGATE_EGRESS_ALLOW, for http_egress */
  tg_oauth2_tokens *api_tokens;     /* OAuth2 access tokens of API nodes (tg_oauth2_tokens.c) */
  struct wk_conn_auths *conn_auths; /* OAuth of MCP connectors (wk_connector_auth.c); NULL
                                       before the first */
  tg_composio *composio;
  wk_registry *reg;
  tg_crypto *crypto;               /* secrets at rest (per-user MCP headers); NULL without a key */
  struct tg_sandbox_pool *sandbox; /* Code nodes and code_execution (spares: tg_sandbox.h);
                                      NULL once closed */
  uv_timer_t poll;
  struct tg_pg_listen *wake;    /* PostgreSQL: LISTEN toolgate_runs (claims at once); else NULL */
  tg_log_rate log_claim_failed; /* one line a second while the database is away */
  tg_log_rate log_hb_failed;
  uv_timer_t grace;
  uv_signal_t sigterm, sigint;
  wk_run *runs;
  int in_flight;
  int claiming;    /* a claim job is in flight */
  int once;        /* --once: exit when the queue is empty */
  int queue_empty; /* the last claim found nothing */
  int stopping;
  int shut_down;                   /* final teardown started */
  uint64_t drain_until;            /* teardown: loop time until which HTTP POSTs may finish */
  uint64_t composio_backoff_until; /* tg_now_ms: no guard calls Composio before (429) */
  wk_sweep *sweep;                 /* wk_sweep.c: review expiry; NULL once stopped */
  int nodes_in_flight;             /* nodes executing, across runs (WORKER_NODE_CONCURRENCY) */
  int nodes_blocked;               /* runs with ready nodes held back by that cap */
};

/* ---- wk_connector_auth.c: the OAuth tokens of MCP connectors (README "Connectors") ---- */

/*
 * One auth state per (user, connector) in the worker, shared by every node that uses the
 * connector, so that a refresh is single-flight per connector. A node takes a link (its own
 * tg_mcp auth provider) with wk_conn_auth_link, gives it to its client, and drops it with
 * wk_conn_auth_unlink; links and states are freed by wk_conn_auths_free at exit or when idle for
 * minutes (never while a client that may still hold the provider is open). Loop thread only,
 * except wk_conn_auth_load (work side).
 */
typedef struct wk_conn_link wk_conn_link;

/* What a node's job reads (work side): the tokens row (tg_store_connector_tokens_load; plaintexts
 * until wk_conn_auth_row_clear) and the connector's version and url. */
typedef struct wk_conn_auth_row {
  json_t *tokens, *client, *meta;
  int64_t version;
} wk_conn_auth_row;
/* Work side: loads user's row of connector id; version is the connector's, from the row the
 * caller opened in the same job (tg_store_connectors_open). Errors as
 * tg_store_connector_tokens_load (TG_ENOTFOUND: no token yet). */
int wk_conn_auth_load(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                      int64_t version, wk_conn_auth_row *row);
void wk_conn_auth_row_clear(wk_conn_auth_row *row); /* wipes; NULL-safe members */

/* A link to the shared state of (user, id) for server_url, refreshed from row (taken: cleared)
 * unless a refresh is in flight. TG_ENOMEM, TG_EINVAL (URL tg_mcp_auth refuses). */
int wk_conn_auth_link(wk_worker *w, const char *user, const char *id, const char *server_url,
                      wk_conn_auth_row *row, wk_conn_link **out);
/* The node is done with link (NULL-safe): its callback, if pending, never runs. */
void wk_conn_auth_unlink(wk_conn_link *l);
/* The provider for tg_mcp_options.auth (lives as long as the worker keeps l). */
const tg_mcp_auth_provider *wk_conn_auth_provider(wk_conn_link *l);
/*
 * Before a call: when the access token expires within 60 s and a refresh token exists, refreshes
 * (joining one in flight) and returns 1: cb(arg, 0 or TG_EAUTH) runs later from the loop. 0: go
 * now (cb never called). TG_EAUTH: a refresh of this connector failed (cb never called).
 */
int wk_conn_auth_fresh(wk_conn_link *l, void (*cb)(void *arg, int err), void *arg);
/* 1 when the last refresh of l's connector failed (auth_status is then auth_refresh_required). */
int wk_conn_auth_failed(const wk_conn_link *l);
/* Frees every state (exit, after the loop ran dry). */
void wk_conn_auths_free(wk_worker *w);

/* ---- wk_sweep.c: review expiry (HITL) ---- */

/* Starts the periodic expiry of reviews (a timer on w->loop; w->sweep). 0 or TG_ENOMEM. */
int wk_sweep_start(wk_worker *w);
/* Stops it (teardown): the timer closes; a job in flight finishes, then the sweep is freed. */
void wk_sweep_stop(wk_worker *w);

/* ---- wk_claim.c: claim, heartbeat, fenced finish / release / attention ---- */

/* Starts a claim job when below concurrency and not stopping. */
void wk_claim_maybe(wk_worker *w);

/* The lease r holds since its claim, for the fenced writes of tg_store_runs (the fields are
 * immutable after the claim, so pool jobs may call this; the strings are r's). */
tg_run_lease wk_run_lease(const wk_run *r);

/* Fenced final write: status "succeeded" (output) or "failed" (error, error_class); then the
 * run ends. Takes ownership of output (may be NULL). */
void wk_run_finish(wk_run *r, const char *status, json_t *output, const char *error,
                   const char *error_class);

/* Shorthand: finish as failed with a formatted error. */
void wk_run_fail(wk_run *r, const char *error_class, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends the run without writing more (lease lost, guard outcome written, aborted). */
void wk_run_end(wk_run *r);

/* Releases the run back to 'queued' (fenced): available_at = now + delay_ms, claimed_by NULL,
 * lease cleared. Used by the guard (Composio unavailable) and on shutdown. The run ends when
 * the write is done. */
void wk_run_release(wk_run *r, int64_t delay_ms, const char *why);

/* Submits a dbq job on behalf of r (counted in r->pending). Returns tg_dbq_submit's code. */
int wk_run_submit(wk_run *r, tg_dbq_work_fn work, tg_dbq_done_fn done, void *job);

/* Every completion of an operation counted in r->pending calls this first: it uncounts the
 * operation and returns 1 when the run has ended meanwhile (then the caller must only clean up
 * its own state and return: r may be freed). */
int wk_run_op_done(wk_run *r);

/* True when the run must stop now (lost or aborted); ends it if so. Call at every step. */
int wk_run_should_stop(wk_run *r);

/* Called when a run has been freed; kicks the claim loop or the shutdown. */
void wk_on_run_freed(wk_worker *w);

/* ---- wk_guard.c ---- */

/* Loop-side: runs the pre-execute check; then executes, marks attention or releases. */
void wk_guard_start(wk_run *r);

/* Shutdown: cancels the run's check in flight, if any (its callback never runs). */
void wk_guard_cancel(wk_run *r);

/* ---- wk_registry.c ---- */

int wk_registry_new(wk_registry **out, wk_worker *w);

/* The managed client for (r->user_id, provider), built from r->accounts; new or reused when the
 * account's version is unchanged. On failure returns NULL and writes why into err. The caller
 * holds a reference until wk_registry_release(). */
wk_client *wk_registry_acquire(wk_registry *reg, wk_run *r, const char *provider, char *err,
                               size_t errlen);
tg_mcp_client *wk_client_mcp(wk_client *c);
void wk_registry_release(wk_registry *reg, wk_client *c);

/* The session's tool annotations learned from tools/list: an object tool name -> annotations
 * object ({} when the tool has none), or NULL when not listed yet. Borrowed. */
json_t *wk_client_tools(wk_client *c);

/* Stores what tools/list answered (array of Tool objects, borrowed) on the client. */
void wk_client_set_tools(wk_client *c, const json_t *tools);

/* Builds the annotations object of wk_client_tools from a tools/list answer. New reference. */
json_t *wk_tools_annotations(const json_t *tools);

/* Sessions open in the registry (for logs and tests). */
size_t wk_registry_size(const wk_registry *reg);

/* Closes m (any client, e.g. an ad-hoc one) on the next loop iteration; safe from inside a
 * tg_mcp callback. */
void wk_registry_close_later(wk_registry *reg, tg_mcp_client *m);

/* Shutdown grace expired: closes every session now; calls in flight get TG_ECANCELED. */
void wk_registry_abort(wk_registry *reg);

/* Closes clients idle for longer than idle_ms (0: every unreferenced client). */
void wk_registry_sweep(wk_registry *reg, uint64_t idle_ms);

/* Closes every client (calls in flight get TG_ECANCELED) and frees the registry once their
 * close callbacks ran; then on_closed(arg). */
void wk_registry_close(wk_registry *reg, void (*on_closed)(void *arg), void *arg);

/* ---- wk_secrets.c: secret run inputs (README "Security") ---- */

/* Work-side (the claim job): when the workflow declares secret inputs, opens the run's
 * inputs_secret_enc, puts the values into r->inputs and r->secrets and holds them for the log
 * scrubber (tg_log_hold_secret). 0, or TG_ESTATE (secrets but no key) / tg_crypto errors. */
int wk_secrets_load(tg_db *db, wk_run *r);

/* Releases r->secrets (log scrubber included) and wipes them; run_free calls it. */
void wk_secrets_free(wk_run *r);

/* Redaction by value for everything recorded: a new reference (incref of v when the run has no
 * secrets), NULL only when v is NULL or memory runs out. wk_secrets_redact_args also redacts
 * by key (tg_redact). Safe on pool threads. */
json_t *wk_secrets_redact(const wk_run *r, const json_t *v);
json_t *wk_secrets_redact_args(const wk_run *r, const json_t *args);

/* A malloc'd copy of s with the run's secret values replaced; NULL when s is NULL or on OOM. */
char *wk_secrets_redact_text(const wk_run *r, const char *s);

/* ---- wk_engine.c: the run state machine (README "Workflow execution") ---- */

/* Executes the run's graph (guard passed): rebuilds what earlier attempts journaled, then runs
 * the ready nodes until the run finishes, parks, needs attention or stops. */
void wk_engine_start(wk_run *r);

/* Interrupts the run's nodes in flight (why: WK_STOP_*): the deadline or the shutdown grace. */
void wk_engine_cancel(wk_run *r, int why);

/* Frees the engine state once the run is over and nothing is in flight (run_free). */
void wk_engine_free(wk_run *r);

/* 1 when executors must stop and write nothing more: the lease is lost, the shutdown grace
 * expired or the run ended. */
static inline int wk_run_stopping(const wk_run *r)
{
  return r->lost || r->aborted || r->ended;
}

#endif
