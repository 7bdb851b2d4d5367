/*
 * tg_store_runs: the one owner of workflow_runs and tool_executions. Every statement that writes
 * a run or a tool execution is here, so the run's rules live in one place:
 *
 *   - Status transitions (the only ones there are):
 *       (new)     -> queued      admission (tg_store_runs_insert), with its debit;
 *       queued    -> running     claim, attempt + 1, a lease of lease_ms;
 *       running   -> running     claim of an expired lease (another worker), attempt + 1;
 *       queued    -> canceled    the user cancels, the cost refunded;
 *       running   -> queued      the worker releases it (shutdown, Composio unavailable);
 *       running   -> attention   the pre-execute guard found a provider blocked, cost refunded;
 *       running   -> succeeded | failed | canceled   the worker finishes it;
 *       running   -> waiting     the engine parks it at a HITL node (tg_store_runs_park);
 *       waiting   -> queued      a review decision (tg_store_runs_wake);
 *       waiting   -> failed      its review expired (tg_store_runs_fail_waiting);
 *       waiting   -> canceled    the user cancels, the cost refunded, its reviews canceled;
 *       running   -> attention   outcome_unknown (tg_store_runs_outcome_unknown), no refund;
 *       attention -> queued | failed   the user resolves it (tg_store_runs_resolve).
 *     Every transition that ends a run (to succeeded, failed, canceled) writes its run_finished
 *     event (tg_store_nodes_event) in the same transaction.
 *     A running run the user cancels only gets cancel_requested = 1; the worker finishes it as
 *     canceled. A failed or attention run may be retried once: metadata.retried_by names the new
 *     run (the old run's status does not change).
 *   - Fencing: every write after the claim names the lease (run id, worker id, attempt) and
 *     status 'running'; after another worker reclaimed the run, or the user canceled it, such a
 *     write matches no row (*changes = 0) and the caller stops without writing more. Tool
 *     execution rows are written under the same fence.
 *   - Fairness: user_queue (one row per user: runs running, earliest queued available_at, last
 *     served) is derived from workflow_runs by triggers (schema/005_fair_claim.sql), so every
 *     transition above keeps it exact without a statement of its own; the claim reads it.
 *   - Money: the writes that refund (cancel of a queued run, attention) do so through
 *     tg_store_credits in the same transaction, only when the run row changed.
 *
 * It also holds the reads of tables owned elsewhere that a run is admitted and executed with
 * (the workflow's definition, the user's connected accounts): see "Reads for admission and
 * execution" below.
 *
 * Every function runs on the caller's connection (one thread at a time, a tg_dbq job). Those
 * documented "own transaction" begin and commit (IMMEDIATE) themselves; the others run inside
 * whatever transaction the caller has open. Errors are the TG_E* codes of tg_db (TG_EDB,
 * TG_EBUSY, TG_ECONFLICT, TG_ENOMEM); times are ms since the epoch; strings and JSON arguments
 * are borrowed for the call. Rows come back as new JSON objects (tg_db_query shapes: the JSON
 * columns inputs, metadata, output, arguments, response as JSON values) the caller frees.
 */
#ifndef TG_STORE_RUNS_H
#define TG_STORE_RUNS_H

#include "tg_check.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_db tg_db;

/* The lease a worker holds on a run since its claim: every later write names it. */
typedef struct tg_run_lease {
  const char *run_id;
  const char *worker_id;
  int64_t attempt;
} tg_run_lease;

/* --- Admission (gateway). --- */

/* A run to admit as 'queued' (tg_store_runs_insert). */
typedef struct tg_run_new {
  const char *run_id, *workflow_id, *user_id;
  json_t *inputs;              /* object, stored as JSON text */
  json_t *metadata;            /* object: tool_constraints, retry_of */
  const char *idempotency_key; /* may be NULL */
  const char *request_hash;
  int64_t cost; /* credits debited (tg_store_credits_debit, same transaction) */
  int64_t now_ms;
} tg_run_new;

/* Inserts run as 'queued', attempt 0, available now. TG_ECONFLICT when its id or (user,
 * idempotency key) exists. */
int tg_store_runs_insert(tg_db *db, const tg_run_new *run);

/* The run of user_id with idempotency_key: a new object {id, status, request_hash}, or NULL with
 * *err = TG_ENOTFOUND or another code. */
json_t *tg_store_runs_find_idem(tg_db *db, int *err, const char *user_id,
                                const char *idempotency_key);

/* 1 when a run in status may be retried (failed, attention), else 0. The retry itself is
 * allowed once (tg_store_runs_mark_retried). */
int tg_store_runs_retryable(const char *status);

/* Marks user_id's run run_id as retried by new_run_id (metadata.retried_by) when it is retryable
 * and not retried yet; *changes (may be NULL) 0 when it was not (a concurrent retry won). */
int tg_store_runs_mark_retried(tg_db *db, const char *run_id, const char *user_id,
                               const char *new_run_id, int *changes);

/* --- The run API (gateway routes). --- */

/* user_id's run run_id: a new object {id, workflow_id, status, inputs, metadata, output, error,
 * error_class, attempt, cost, cancel_requested, created_at, started_at, finished_at}, or NULL
 * with *err = TG_ENOTFOUND (no such run of this user) or another code. */
json_t *tg_store_runs_get(tg_db *db, int *err, const char *run_id, const char *user_id);

/* A page of a user's runs, newest first by (created_at, id). */
typedef struct tg_run_filter {
  const char *user_id;
  const char *status;      /* or NULL */
  const char *workflow_id; /* or NULL */
  const char *after_id;    /* cursor: rows strictly after (after_at, after_id); NULL: first page */
  int64_t after_at;
  int limit;
} tg_run_filter;

/* The runs of f: a new array of {id, workflow_id, status, metadata, error, error_class, attempt,
 * cost, cancel_requested, created_at, started_at, finished_at}, or NULL with *err set. */
json_t *tg_store_runs_list(tg_db *db, int *err, const tg_run_filter *f);

/* The tool executions of run run_id in order: a new array of {id, attempt, node_id, provider,
 * tool_name, arguments, response, status, error, error_class, duration_ms, executed_at,
 * completed_at}, or NULL with *err set. The caller checked that the run is the user's. */
json_t *tg_store_runs_tool_executions(tg_db *db, int *err, const char *run_id);

/* What a cancel did (tg_store_runs_cancel). */
enum {
  TG_RUN_CANCELED,         /* queued or waiting -> canceled (refunded = the cost), or canceled
                              already (0) */
  TG_RUN_CANCEL_REQUESTED, /* running: cancel_requested = 1, the worker stops it */
  TG_RUN_NOT_CANCELABLE,   /* any other status (in status) */
};

typedef struct tg_run_cancel {
  int outcome; /* TG_RUN_* */
  int64_t refunded;
  char status[16]; /* the run's status when TG_RUN_NOT_CANCELABLE */
} tg_run_cancel;

/* Own transaction: the user cancels their run run_id (the transitions above; a queued run's cost
 * goes back with a 'run_refund' ledger row). 0 with *out filled, TG_ENOTFOUND, or another code
 * (nothing written). */
int tg_store_runs_cancel(tg_db *db, const char *run_id, const char *user_id, int64_t now_ms,
                         tg_run_cancel *out);

/* --- The worker: claim, lease, fenced writes. --- */

/*
 * Own transaction: claims a run for worker_id with a lease until now_ms + lease_ms (now_ms 0:
 * the clock read once the write lock is held, so the run's started_at never precedes the commit
 * that made it claimable, such as the finish that brought its user below the cap). An expired
 * lease first (it has waited longest); else a queued run available at now_ms, fairly across
 * users: the user with the fewest runs running, then the one served least recently
 * (round-robin), among those with fewer than user_cap runs running (0: no cap); then that
 * user's run available earliest. *run: a new object {id, workflow_id, user_id, inputs,
 * metadata, attempt, cost}, or NULL when nothing is claimable (returns 0 either way). The
 * per-user counts come from user_queue, which triggers on workflow_runs keep exact
 * (schema/005_fair_claim.sql); a run's user_id never changes.
 */
int tg_store_runs_claim(tg_db *db, const char *worker_id, int64_t now_ms, int64_t lease_ms,
                        int64_t user_cap, json_t **run);

/* Fenced: extends the lease to lease_until_ms. *changes 0 when the lease is lost; *cancel (both
 * may be NULL) gets cancel_requested when it is held. */
int tg_store_runs_heartbeat(tg_db *db, const tg_run_lease *l, int64_t lease_until_ms, int *changes,
                            int *cancel);

/* Fenced: running -> status ("succeeded", "failed" or "canceled"; TG_EINVAL otherwise) with
 * output (may be NULL), error and error_class (may be NULL), finished_at, lease cleared. */
int tg_store_runs_finish(tg_db *db, const tg_run_lease *l, const char *status, json_t *output,
                         const char *error, const char *error_class, int64_t now_ms, int *changes);

/* Own transaction, fenced: running -> queued (claimed_by and lease cleared, available at
 * available_at_ms); this attempt's tool executions still 'pending' become 'unknown' (they were
 * sent and may have had effects). */
int tg_store_runs_release(tg_db *db, const tg_run_lease *l, int64_t available_at_ms, int64_t now_ms,
                          int *changes);

/* Own transaction, fenced: running -> attention with metadata error 'oauth_refresh_required',
 * providers and reasons (JSON arrays) merged in, error, finished_at, lease cleared; when the run
 * changed and cost > 0, the cost goes back to user_id ('run_refund'). */
int tg_store_runs_attention(tg_db *db, const tg_run_lease *l, const char *user_id, int64_t cost,
                            json_t *providers, json_t *reasons, const char *error, int64_t now_ms,
                            int *changes);

/* The run's cancel_requested: 1 or 0 (0 also when the run is missing or the read fails: the
 * next step, heartbeat or finish reads or fences again). */
int tg_store_runs_cancel_requested(tg_db *db, const char *run_id);

/* Fenced: a 'pending' tool execution of the lease's attempt, written BEFORE the call (arguments
 * already redacted). tool_call_id: the model's id of the call when an Agent node makes it, else
 * NULL. *exec_id gets its id; 0 returned with *inserted = 0 when the lease is lost. */
int tg_store_runs_tool_start(tg_db *db, const tg_run_lease *l, const char *node_id,
                             const char *provider, const char *tool_name, const char *tool_call_id,
                             json_t *arguments, int64_t now_ms, int64_t *exec_id, int *inserted);

/* How many tool executions of node_id in attempts of run_id before attempt were left 'pending'
 * or 'unknown', not counting those of provider 'builtin' tool skip_tool (a read-only built-in;
 * may be NULL), into *n. 0 or a database error. */
int tg_store_runs_tools_in_doubt(tg_db *db, const char *run_id, int64_t attempt,
                                 const char *node_id, const char *skip_tool, int *n);

/* The outcome of a tool call (tg_store_runs_tool_finish). */
typedef struct tg_tool_result {
  const char *status;              /* "success", "failed" or "unknown" */
  json_t *response;                /* redacted; may be NULL */
  const char *error, *error_class; /* may be NULL */
  int64_t duration_ms;
} tg_tool_result;

/* Fenced: completes tool execution exec_id with res, completed_at = now_ms. */
int tg_store_runs_tool_finish(tg_db *db, const tg_run_lease *l, int64_t exec_id,
                              const tg_tool_result *res, int64_t now_ms, int *changes);

/* --- Reads for admission and execution (tables owned elsewhere, read only). --- */

/*
 * user_id's workflow workflow_id's definition as stored, into *text (malloc'd, NUL-terminated,
 * *len bytes without the NUL; the caller frees it) or *text = NULL when there is no such
 * workflow of the user. Read without a JSON tree: admission parses it on the loop through its
 * cache. 0, TG_ENOMEM or a TG_E* code.
 */
int tg_store_runs_read_definition(tg_db *db, const char *workflow_id, const char *user_id,
                                  char **text, size_t *len);

/* Workflow workflow_id's definition as JSON (new reference), or NULL with *err = TG_ENOTFOUND
 * or another code. For the worker, whose claimed run names the workflow. */
json_t *tg_store_runs_read_definition_json(tg_db *db, int *err, const char *workflow_id);

/*
 * user_id's connected accounts with their toolkit slug, ordered by provider, for tg_check:
 * *rows a malloc'd array of *n rows whose strings are malloc'd copies (free with
 * tg_store_runs_check_rows_free), NULL when none. On error nothing is returned.
 */
int tg_store_runs_read_check_rows(tg_db *db, const char *user_id, tg_check_row **rows, size_t *n);
void tg_store_runs_check_rows_free(tg_check_row *rows, size_t n); /* NULL-safe */

/*
 * user_id's connected accounts with their MCP endpoint, ordered by provider, for the worker's
 * guard and MCP clients: a new array of {account_id, provider, status, composio_account_id,
 * version, toolkit_slug, url, has_headers, mcp_id, headers_enc_hex}, or NULL with *err set.
 */
json_t *tg_store_runs_read_accounts(tg_db *db, int *err, const char *user_id);

/* --- Waiting runs (HITL): parked at a review, held by no worker. --- */

/*
 * Inside the caller's transaction (the review decision, tg_store_reviews_decide): waiting ->
 * queued, available now (*requeued 1). A run still 'running' (its HITL node reported, but the
 * engine parks it only once its other nodes in flight end) instead gets metadata.resume_pending
 * = true, which tg_store_runs_park reads: the decision is never lost to that race. Any other
 * status: nothing (*requeued 0). requeued may be NULL.
 */
int tg_store_runs_wake(tg_db *db, const char *run_id, int64_t now_ms, int *requeued);

/*
 * Fenced, one statement (the engine, when a run has a HITL node waiting and nothing else in
 * flight): running -> waiting, claimed_by and lease cleared; or running -> queued, available at
 * now_ms, when a decision arrived meanwhile (metadata.resume_pending, which it clears).
 * *changes 0 when the lease is lost; *requeued 1 when it went to 'queued' (both may be NULL).
 */
int tg_store_runs_park(tg_db *db, const tg_run_lease *l, int64_t now_ms, int *changes,
                       int *requeued);

/* Inside the caller's transaction (review expiry): waiting -> failed with error and error_class,
 * finished_at = now_ms, and its run_finished event. A failed run is not refunded (as
 * tg_store_runs_finish). *changes 0 when the run was not waiting. */
int tg_store_runs_fail_waiting(tg_db *db, const char *run_id, const char *error,
                               const char *error_class, int64_t now_ms, int *changes);

/* --- The workflow engine: park, outcome unknown, resolve. --- */

/* Fenced: running -> attention with metadata reason 'outcome_unknown' and node_id (the node that
 * was in flight when an earlier attempt ended and cannot safely run again), error, error_class
 * 'outcome_unknown', lease cleared. No refund and no finished_at: the run is not over, the user
 * resolves it (tg_store_runs_resolve). */
int tg_store_runs_outcome_unknown(tg_db *db, const tg_run_lease *l, const char *node_id,
                                  const char *error, int *changes);

/* What a resolve did (tg_store_runs_resolve). */
enum {
  TG_RESOLVE_DONE,       /* retry / skip: queued again; fail: failed */
  TG_RESOLVE_NOT_PENDING /* the run is not in attention with outcome_unknown naming that node */
};

/*
 * Own transaction: the user answers an outcome_unknown attention of their run run_id about
 * node_id: action "retry" (the node's last journal row gets resolution 'retry'; the run goes
 * back to 'queued' and the engine runs the node again), "skip" (resolution 'skip': the node
 * counts as succeeded with output null; queued) or "fail" (resolution 'fail'; the run ->
 * 'failed' with error_class outcome_unknown, finished_at; no refund, as for any failed run).
 * 0 with *outcome TG_RESOLVE_*, TG_ENOTFOUND (no such run of the user), TG_EINVAL (action), or
 * another code (nothing written).
 */
int tg_store_runs_resolve(tg_db *db, const char *run_id, const char *user_id, const char *node_id,
                          const char *action, int64_t now_ms, int *outcome);

#endif
