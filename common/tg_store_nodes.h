/*
 * tg_store_nodes: the one owner of node_executions (the node-by-node journal of a run) and
 * run_events (what happened, in order, for the events API). README "Workflow execution".
 *
 *   - node_executions: one row per execution of a node in an attempt. An effectful node (MCP,
 *     API, HITL) gets its row 'pending' BEFORE it starts and the row is completed in place
 *     (success | failed | waiting | unknown); a pure node (Start, Conditional, End) and a
 *     skipped node get one row written on completion. The engine rebuilds a re-claimed run from
 *     the last row of each node (tg_store_nodes_journal).
 *   - run_events: appended, never updated; seq only grows.
 *   - Fencing: the worker's writes name the lease (tg_run_lease, as tg_store_runs does) and run
 *     in one IMMEDIATE transaction that first checks the lease: when another worker holds the
 *     run, or it is no longer 'running', nothing is written and *fenced is 0.
 *   - Resolution: the user's answer to an outcome_unknown attention is recorded on the node's
 *     last row (tg_store_nodes_resolve, inside the gateway's transaction).
 *
 * Every function runs on the caller's connection (a tg_dbq job). Errors are tg_db's TG_E*
 * codes. Times are ms since the epoch. Strings are borrowed for the call.
 */
#ifndef TG_STORE_NODES_H
#define TG_STORE_NODES_H

#include "tg_store_runs.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* One journal write: an insert (row_id 0 on entry; the new row's id on return) or the
 * completion of row row_id. */
typedef struct tg_node_row {
  int64_t row_id;
  const char *node_id, *node_type;
  const char *status;              /* pending, success, failed, skipped, waiting, unknown */
  const char *output;              /* JSON text (secrets already redacted), or NULL */
  const char *error, *error_class; /* may be NULL */
  int64_t started_at, finished_at; /* finished_at 0: NULL */
  int64_t input_tokens;            /* model tokens of the execution (Agent, Self-Review); */
  int64_t output_tokens;           /* 0: NULL, as for nodes that call no model */
} tg_node_row;

/* One event: type node_started | node_finished | node_skipped | waiting | resumed |
 * run_finished; node_id and data (a small JSON object's text) may be NULL. */
typedef struct tg_run_event {
  const char *type, *node_id, *data;
  int64_t at;
} tg_run_event;

/*
 * Own transaction, fenced by l: writes rows (in order) then events. *fenced 1 when written, 0
 * when the lease is lost (nothing written). *cancel (may be NULL) gets the run's
 * cancel_requested when fenced. 0 or TG_E*.
 */
int tg_store_nodes_write(tg_db *db, const tg_run_lease *l, tg_node_row *rows, size_t nrows,
                         const tg_run_event *events, size_t nevents, int *fenced, int *cancel);

/* Appends one event to run_id without a fence, inside the caller's transaction (the worker's
 * final write of a run, the gateway's requeue). 0 or TG_E*. */
int tg_store_nodes_event(tg_db *db, const char *run_id, const char *type, const char *node_id,
                         const char *data, int64_t now_ms);

/*
 * The journal of run_id for the engine: the last row of each node, a new array of {id, attempt,
 * node_id, node_type, status, output (JSON or null), error, error_class, resolution,
 * input_tokens, output_tokens}, ordered by id, where the tokens are the sums over every row of
 * that node in the run (all attempts: what the run has spent on it); NULL with *err set on
 * failure.
 */
json_t *tg_store_nodes_journal(tg_db *db, int *err, const char *run_id);

/* Every node of run_id with its last row, for GET /api/runs/{id}: a new array of {id (the
 * node's), type, status, attempt, output (the journaled output, secrets redacted; JSON or null),
 * error_class, input_tokens, output_tokens (the node's sums over the run, 0 when it called no
 * model)}, ordered by the row id; NULL with *err set. */
json_t *tg_store_nodes_states(tg_db *db, int *err, const char *run_id);

/* Inside the caller's transaction: sets resolution ("retry", "skip" or "fail") on the last row
 * of node_id in run_id when that row is 'pending' or 'unknown' and unresolved. *changes 0 when
 * there is no such row. */
int tg_store_nodes_resolve(tg_db *db, const char *run_id, const char *node_id,
                           const char *resolution, int *changes);

#endif
