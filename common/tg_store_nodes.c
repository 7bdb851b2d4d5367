/*
 * tg_store_nodes: the statements over node_executions and run_events (see tg_store_nodes.h).
 *
 * Invariants of this file: the worker's writes go through tg_store_nodes_write, which checks the
 * lease (LEASE, the same condition as tg_store_runs' FENCE) once, under the IMMEDIATE
 * transaction's write lock (on PostgreSQL, the run row's lock), before any row is touched, so a
 * batch is written whole or not at all. A batch is the engine's unit of journaling: a 200-node run
 * of pure nodes costs a few transactions, not 600 autocommits. The loops bind cached statements
 * directly.
 */
#include "tg_store_nodes.h"

#include "tg_db_stmt.h"
#include "tg_err.h"
#include "tg_sql.h"

#include <string.h>

/* The lease: ?1 run id, ?2 worker id, ?3 attempt (tg_store_runs.c's FENCE), in dialect D
 * (tg_sql.h): on PostgreSQL the run's row stays locked until the journal's transaction ends, so
 * no claim takes the run over between this check and the writes it allows. */
#define LEASE(D)                                                                                   \
  "SELECT cancel_requested FROM workflow_runs WHERE id = ?1 AND claimed_by = ?2 AND "              \
  "attempt = ?3 AND status = 'running'" D##_FOR_UPDATE

static const char INSERT_ROW[] =
    "INSERT INTO node_executions (run_id, attempt, node_id, node_type, status, output, error, "
    "error_class, started_at, finished_at, input_tokens, output_tokens) VALUES (?1, ?2, ?3, ?4, "
    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id";
static const char UPDATE_ROW[] =
    "UPDATE node_executions SET status = ?2, output = ?3, error = ?4, error_class = ?5, "
    "finished_at = ?6, input_tokens = ?7, output_tokens = ?8 WHERE id = ?1";
static const char INSERT_EVENT[] =
    "INSERT INTO run_events (run_id, type, node_id, at, data) VALUES (?1, ?2, ?3, ?4, ?5)";

/* A time or a token count: 0 is NULL. */
static void bind_nonzero(tg_stmt *st, int i, int64_t t)
{
  if (t)
    tg_stmt_bind_int64(st, i, t);
  else
    tg_stmt_bind_null(st, i);
}

/* Steps st to its end and resets it. 0 or TG_E*. */
static int step_done(tg_stmt *st)
{
  int rc;
  while ((rc = tg_stmt_step(st)) == TG_STMT_ROW)
    ;
  tg_stmt_reset(st);
  return rc;
}

/* Binds a row's outcome (status, output, error, error_class) from parameter i on. */
static void bind_outcome(tg_stmt *st, int i, const tg_node_row *row)
{
  tg_stmt_bind_text(st, i, row->status);
  tg_stmt_bind_text(st, i + 1, row->output);
  tg_stmt_bind_text(st, i + 2, row->error);
  tg_stmt_bind_text(st, i + 3, row->error_class);
}

static int write_row(tg_db *db, const tg_run_lease *l, tg_node_row *row)
{
  tg_stmt *st = tg_stmt_prepare(db, row->row_id ? UPDATE_ROW : INSERT_ROW);
  int64_t id;
  int rc;
  if (!st)
    return TG_EDB;
  if (row->row_id) {
    tg_stmt_bind_int64(st, 1, row->row_id);
    bind_outcome(st, 2, row);
    bind_nonzero(st, 6, row->finished_at);
    bind_nonzero(st, 7, row->input_tokens);
    bind_nonzero(st, 8, row->output_tokens);
    return step_done(st);
  }
  tg_stmt_bind_text(st, 1, l->run_id);
  tg_stmt_bind_int64(st, 2, l->attempt);
  tg_stmt_bind_text(st, 3, row->node_id);
  tg_stmt_bind_text(st, 4, row->node_type);
  bind_outcome(st, 5, row);
  tg_stmt_bind_int64(st, 9, row->started_at);
  bind_nonzero(st, 10, row->finished_at);
  bind_nonzero(st, 11, row->input_tokens);
  bind_nonzero(st, 12, row->output_tokens);
  if ((rc = tg_stmt_step(st)) != TG_STMT_ROW) { /* RETURNING gives one row */
    tg_stmt_reset(st);
    return rc < 0 ? rc : TG_EDB;
  }
  id = tg_stmt_column_int64(st, 0);
  if ((rc = step_done(st)) == 0)
    row->row_id = id;
  return rc;
}

static int write_event(tg_db *db, const char *run_id, const tg_run_event *e)
{
  tg_stmt *st = tg_stmt_prepare(db, INSERT_EVENT);
  if (!st)
    return TG_EDB;
  tg_stmt_bind_text(st, 1, run_id);
  tg_stmt_bind_text(st, 2, e->type);
  tg_stmt_bind_text(st, 3, e->node_id);
  tg_stmt_bind_int64(st, 4, e->at);
  tg_stmt_bind_text(st, 5, e->data);
  return step_done(st);
}

int tg_store_nodes_write(tg_db *db, const tg_run_lease *l, tg_node_row *rows, size_t nrows,
                         const tg_run_event *events, size_t nevents, int *fenced, int *cancel)
{
  tg_stmt *st;
  int rc, held;
  size_t i;
  *fenced = 0;
  if ((rc = tg_db_begin(db, 1)))
    return rc;
  if (!(st = tg_stmt_prepare(db, TG_SQL_OF(db, LEASE)))) {
    tg_db_rollback(db);
    return TG_EDB;
  }
  tg_stmt_bind_text(st, 1, l->run_id);
  tg_stmt_bind_text(st, 2, l->worker_id);
  tg_stmt_bind_int64(st, 3, l->attempt);
  rc = tg_stmt_step(st);
  held = rc == TG_STMT_ROW;
  if (held && cancel)
    *cancel = tg_stmt_column_int64(st, 0) != 0;
  rc = rc < 0 ? rc : 0;
  tg_stmt_reset(st);
  if (rc || !held) {
    tg_db_rollback(db);
    return rc;
  }
  for (i = 0; i < nrows && rc == 0; i++)
    rc = write_row(db, l, &rows[i]);
  for (i = 0; i < nevents && rc == 0; i++)
    rc = write_event(db, l->run_id, &events[i]);
  if ((rc = tg_db_end(db, rc)) == 0)
    *fenced = 1;
  return rc;
}

int tg_store_nodes_event(tg_db *db, const char *run_id, const char *type, const char *node_id,
                         const char *data, int64_t now_ms)
{
  tg_run_event e = {.type = type, .node_id = node_id, .data = data, .at = now_ms};
  return write_event(db, run_id, &e);
}

/* The last row of each node of a run (?1): the rows of the index's last entry per node. */
#define LAST_ROWS                                                                                  \
  "FROM node_executions WHERE id IN (SELECT max(id) FROM node_executions WHERE run_id = ?1 "       \
  "GROUP BY node_id) ORDER BY id"
/* The tokens of the node of the row in hand, summed over all its rows in the run. */
#define NODE_TOKENS(col)                                                                           \
  "(SELECT CAST(coalesce(sum(t." col "), 0) AS BIGINT) FROM node_executions t WHERE "              \
  "t.run_id = ?1 AND t.node_id = node_executions.node_id) AS " col
#define TOKENS_SQL NODE_TOKENS("input_tokens") ", " NODE_TOKENS("output_tokens")
static const char JOURNAL_SQL[] =
    "SELECT id, attempt, node_id, node_type, status, output AS output_json, error, error_class, "
    "resolution, " TOKENS_SQL " " LAST_ROWS;
static const char STATES_SQL[] = "SELECT node_id AS id, node_type AS type, status, attempt, "
                                 "output AS output_json, error_class, " TOKENS_SQL " " LAST_ROWS;

json_t *tg_store_nodes_journal(tg_db *db, int *err, const char *run_id)
{
  return tg_db_query(db, err, JOURNAL_SQL, "s", run_id);
}

json_t *tg_store_nodes_states(tg_db *db, int *err, const char *run_id)
{
  return tg_db_query(db, err, STATES_SQL, "s", run_id);
}

int tg_store_nodes_resolve(tg_db *db, const char *run_id, const char *node_id,
                           const char *resolution, int *changes)
{
  return tg_db_exec(db, changes,
                    "UPDATE node_executions SET resolution = ?3 WHERE id = (SELECT max(id) FROM "
                    "node_executions WHERE run_id = ?1 AND node_id = ?2) AND status IN "
                    "('pending', 'unknown') AND resolution IS NULL",
                    "sss", run_id, node_id, resolution);
}
