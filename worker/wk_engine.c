/*
 * wk_engine: the run state machine (README "Workflow execution"). One place decides which nodes
 * run, in what order, what is journaled and how the run ends; one executor per node type
 * (wk_node.h) performs a node and reports back through x->done.
 *
 * The graph (tg_graph, built at the claim) is a DAG. Each node is WAIT (predecessors
 * unresolved), READY, RUNNING, DONE or SKIPPED. When a node resolves, each successor loses one
 * unresolved predecessor and, when the edge is taken (the node is DONE and is not a Conditional,
 * or is the Conditional's chosen target), gains a taken edge; a successor with no unresolved
 * predecessor is READY when a taken edge reaches it, else SKIPPED (and resolves in turn). So a
 * join after a Conditional waits for the taken side only, and the nodes reachable only through
 * untaken branches are skipped. READY nodes start in order, at most
 * TOOLGATE_RUN_NODE_CONCURRENCY of the run and TOOLGATE_WORKER_NODE_CONCURRENCY of the worker
 * at once.
 *
 * Run variables (the scope passed to executors and templates): {"inputs", "nodes": {id:
 * {"output"}}, "vars"}; vars starts as a copy of the inputs and takes each finished node's
 * contributed variables in completion order (wk_node_result.vars or wk_node_ops.vars).
 *
 * Journal (tg_store_nodes), one writer per run: every write goes into the run's batch and one
 * fenced transaction at a time carries it. An effectful node (ops->effectful) starts only once
 * its 'pending' row is written (the row's id is x->exec_id); its completion updates that row.
 * Pure nodes are journaled on completion, so a chain of Conditionals that completes
 * synchronously costs one transaction. Events: node_started, node_finished, node_skipped,
 * waiting, resumed here; run_finished with the run's final write (wk_claim.c).
 *
 * Durable node by node: at the claim the last journal row of each node from earlier attempts is
 * read; when such a node becomes READY: success -> its recorded output is reused (no execution,
 * no row); resolution 'skip' -> success with output null; resolution 'retry' -> a fresh
 * execution; failed -> the run fails with the recorded error; pending / unknown / waiting -> the
 * executor runs with prior_status and decides (re-execute when safe, else UNKNOWN).
 *
 * Outcomes (after the nodes in flight have finished and the batch is written): FAILED -> run
 * failed with the node's class; cancel_requested -> canceled; UNKNOWN -> attention with reason
 * outcome_unknown naming the node; WAITING -> parked ('waiting', no lease); an End node -> run
 * succeeded with the End's output; LOST -> stop, write nothing. The deadline and the shutdown
 * grace interrupt nodes in flight through ops->cancel.
 *
 * Model tokens: an execution's wk_node_result tokens go on its journal row and into the run's
 * total (started from the journal's per-node sums at the claim); when TOOLGATE_RUN_TOKEN_BUDGET
 * is set and the total passes it after a node, the run fails with budget_exceeded.
 */
#include "wk_node.h"

#include "tg_clock.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_store_nodes.h"
#include "tg_workflow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NS_WAIT = 0, NS_READY, NS_RUNNING, NS_DONE, NS_SKIPPED };

typedef struct node_st {
  uint8_t state;
  uint8_t taken;       /* a taken edge reaches it */
  size_t unresolved;   /* predecessors neither DONE nor SKIPPED */
  size_t target;       /* DONE Conditional: the chosen successor */
  const json_t *prior; /* its last journal row from an earlier attempt (in r->journal), or NULL */
} node_st;

typedef struct exec_t {
  wk_node_exec x; /* first: the executor's view */
  size_t idx;
  int started; /* ops->start was called */
  int64_t started_at;
  struct exec_t *prev, *next; /* e->flight */
} exec_t;

struct wk_engine {
  wk_run *r;
  const tg_graph *g;
  size_t n;
  node_st *ns;
  size_t *ready, rhead, rtail; /* each node enters once */
  size_t *stack;               /* resolve() work list */
  json_t *scope, *nodes, *vars;
  exec_t *flight;
  int in_flight;
  /* the batch */
  tg_node_row *rows;
  exec_t **starts; /* per row: the effectful node to start once it is written, or NULL */
  size_t nrows, caprows, capstarts;
  tg_run_event *evs;
  size_t nevs, capevs;
  int writing; /* a journal job is in flight */
  /* the outcome */
  int failed, canceled, park, unknown, end_done, final_sent, blocked, pumping, repump;
  const char *fail_class;
  char msg[600];
  size_t unknown_node;
  json_t *output;
  int64_t tokens; /* model tokens (input + output) the run has used, all attempts */
};

typedef struct journal_job {
  wk_run *r;
  tg_node_row *rows;
  exec_t **starts;
  size_t nrows;
  tg_run_event *evs;
  size_t nevs;
  int fenced, cancel;
} journal_job;

typedef struct end_job {
  wk_run *r;
  int park; /* else outcome unknown */
  const char *node_id;
  char error[600];
  int changes;
  int requeued; /* park: a review decision arrived first, so the run went back to 'queued' */
} end_job;

static void pump(wk_engine *e);
static void on_node_done(wk_node_exec *x, wk_node_result *res);

static const wk_node_ops *ops_for(tg_node_type t)
{
  switch (t) {
  case TG_NODE_START:
    return &wk_node_start_ops;
  case TG_NODE_END:
    return &wk_node_end_ops;
  case TG_NODE_MCP:
    return &wk_node_mcp_ops;
  case TG_NODE_API:
    return &wk_node_api_ops;
  case TG_NODE_CONDITIONAL:
    return &wk_node_conditional_ops;
  case TG_NODE_HITL:
    return &wk_node_hitl_ops;
  case TG_NODE_SELF_REVIEW:
    return &wk_node_self_review_ops;
  case TG_NODE_CODE:
    return &wk_node_code_ops;
  case TG_NODE_AGENT:
    return &wk_node_agent_ops;
  default:
    return NULL;
  }
}

static int64_t now_ms(void)
{
  return tg_now_ms();
}

static int halted(const wk_engine *e)
{
  return e->failed || e->canceled || e->park || e->unknown || e->end_done;
}

/* The first failure wins; the run fails with it once nothing is in flight. */
static void set_fail(wk_engine *e, const char *error_class, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_fail(wk_engine *e, const char *error_class, const char *fmt, ...)
{
  va_list ap;
  if (e->failed)
    return;
  e->failed = 1;
  e->fail_class = error_class ? error_class : "internal";
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
}

/* ---- the batch ---- */

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
  void *g;
  size_t nc;
  if (n < *cap)
    return 0;
  nc = *cap ? *cap * 2 : 16;
  if (!(g = realloc(*p, nc * size)))
    return TG_ENOMEM;
  *p = g;
  *cap = nc;
  return 0;
}

/* Queues an event; data (malloc'd or NULL) is taken. */
static void add_event(wk_engine *e, const char *type, const char *node_id, char *data)
{
  if (grow((void **)&e->evs, &e->capevs, e->nevs, sizeof *e->evs)) {
    free(data);
    set_fail(e, "internal", "out of memory");
    return;
  }
  e->evs[e->nevs++] =
      (tg_run_event){.type = type, .node_id = node_id, .data = data, .at = now_ms()};
}

/* Queues a journal row; output and error (malloc'd or NULL) are taken. start: the effectful
 * node to start once the row is written. */
static void add_row(wk_engine *e, const tg_graph_node *gn, int64_t row_id, const char *status,
                    char *output, char *error, const char *error_class, int64_t started_at,
                    exec_t *start)
{
  if (grow((void **)&e->rows, &e->caprows, e->nrows, sizeof *e->rows) ||
      grow((void **)&e->starts, &e->capstarts, e->nrows, sizeof *e->starts)) {
    free(output);
    free(error);
    set_fail(e, "internal", "out of memory");
    return;
  }
  e->rows[e->nrows] = (tg_node_row){.row_id = row_id,
                                    .node_id = gn->id,
                                    .node_type = tg_node_type_name(gn->type),
                                    .status = status,
                                    .output = output,
                                    .error = error,
                                    .error_class = error_class,
                                    .started_at = started_at,
                                    .finished_at = start ? 0 : now_ms()};
  e->starts[e->nrows++] = start;
}

static char *status_data(const char *status, const char *error_class)
{
  json_t *d = json_pack("{s:s, s:s?}", "status", status, "error_class", error_class);
  char *s = d ? json_dumps(d, JSON_COMPACT) : NULL;
  json_decref(d);
  return s;
}

static char *type_data(const tg_graph_node *gn)
{
  json_t *d = json_pack("{s:s}", "type", tg_node_type_name(gn->type));
  char *s = d ? json_dumps(d, JSON_COMPACT) : NULL;
  json_decref(d);
  return s;
}

/* An output as journaled: redacted by value, compact JSON text (NULL for none). */
static char *journal_text(const wk_run *r, const json_t *output)
{
  json_t *red;
  char *s;
  if (!output)
    return NULL;
  if (!(red = wk_secrets_redact(r, output)))
    return NULL;
  s = json_dumps(red, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(red);
  return s;
}

static void job_free_rows(tg_node_row *rows, size_t n, tg_run_event *evs, size_t nevs)
{
  for (size_t i = 0; i < n; i++) {
    free((char *)rows[i].output);
    free((char *)rows[i].error);
  }
  for (size_t i = 0; i < nevs; i++)
    free((char *)evs[i].data);
  free(rows);
  free(evs);
}

/* ---- executions in flight ---- */

static void unlink_exec(wk_engine *e, exec_t *ex)
{
  if (ex->prev)
    ex->prev->next = ex->next;
  else
    e->flight = ex->next;
  if (ex->next)
    ex->next->prev = ex->prev;
  ex->prev = ex->next = NULL;
  e->in_flight--;
  e->r->w->nodes_in_flight--;
}

static void exec_free(exec_t *ex)
{
  json_decref(ex->x.config);
  free(ex);
}

/* An effectful node whose pending row was queued but that will not start: uncounted, freed (the
 * run is not freed here: the caller's job is still counted, or the run has not ended). */
static void abandon(wk_engine *e, exec_t *ex)
{
  wk_run *r = e->r;
  unlink_exec(e, ex);
  exec_free(ex);
  wk_run_op_done(r);
}

/* ---- the journal job ---- */

static int journal_work(tg_db *db, void *arg)
{
  journal_job *j = arg;
  tg_run_lease l = wk_run_lease(j->r);
  return tg_store_nodes_write(db, &l, j->rows, j->nrows, j->evs, j->nevs, &j->fenced, &j->cancel);
}

static void journal_done(void *arg, int status)
{
  journal_job *j = arg;
  wk_run *r = j->r;
  wk_engine *e = r->eng;
  size_t i;

  e->writing = 0;
  if (j->cancel)
    r->cancel = 1;
  if (!r->ended && status != 0)
    set_fail(e, "internal", "cannot write the run's journal: %s", tg_strerror(status));
  else if (!r->ended && !j->fenced)
    r->lost = 1;
  e->pumping = 1; /* the nodes below may finish synchronously: pump once, after */
  for (i = 0; i < j->nrows; i++) {
    exec_t *ex = j->starts[i];
    if (!ex)
      continue;
    if (r->ended || wk_run_stopping(r) || status != 0 || !j->fenced || e->failed || e->canceled) {
      abandon(e, ex); /* never started: its row stays 'pending' in a run that is over */
      continue;
    }
    ex->x.exec_id = j->rows[i].row_id;
    ex->started = 1;
    ops_for(tg_graph_node_at(e->g, ex->idx)->type)->start(&ex->x);
  }
  e->pumping = 0;
  job_free_rows(j->rows, j->nrows, j->evs, j->nevs);
  free(j->starts);
  free(j);
  if (wk_run_op_done(r))
    return;
  pump(e);
}

/* Sends the batch when no journal job is in flight. */
static void flush(wk_engine *e)
{
  wk_run *r = e->r;
  journal_job *j;
  if (e->writing || (!e->nrows && !e->nevs) || r->ended)
    return;
  if (!(j = calloc(1, sizeof *j))) {
    set_fail(e, "internal", "out of memory");
    return;
  }
  j->r = r;
  j->rows = e->rows;
  j->starts = e->starts;
  j->nrows = e->nrows;
  j->evs = e->evs;
  j->nevs = e->nevs;
  e->rows = NULL;
  e->starts = NULL;
  e->evs = NULL;
  e->nrows = e->caprows = e->capstarts = e->nevs = e->capevs = 0;
  if (wk_run_submit(r, journal_work, journal_done, j) != 0) {
    for (size_t i = 0; i < j->nrows; i++)
      if (j->starts[i])
        abandon(e, j->starts[i]);
    job_free_rows(j->rows, j->nrows, j->evs, j->nevs);
    free(j->starts);
    free(j);
    set_fail(e, "internal", "cannot queue the run's journal");
    return;
  }
  e->writing = 1;
}

/* ---- resolution and propagation ---- */

static void push_ready(wk_engine *e, size_t i)
{
  e->ns[i].state = NS_READY;
  e->ready[e->rtail++] = i;
}

/* Node i is DONE or SKIPPED: its successors lose an unresolved predecessor; those left with
 * none become READY (a taken edge reaches them) or SKIPPED, iteratively. */
static void resolve(wk_engine *e, size_t i)
{
  size_t top = 0;
  e->stack[top++] = i;
  while (top) {
    size_t k = e->stack[--top], s;
    const tg_graph_node *gn = tg_graph_node_at(e->g, k);
    for (s = 0; s < gn->nsucc; s++) {
      size_t t = gn->succ[s];
      node_st *ts = &e->ns[t];
      if (e->ns[k].state == NS_DONE && (gn->type != TG_NODE_CONDITIONAL || e->ns[k].target == t))
        ts->taken = 1;
      if (--ts->unresolved > 0)
        continue;
      if (ts->taken) {
        push_ready(e, t);
        continue;
      }
      ts->state = NS_SKIPPED;
      {
        const tg_graph_node *tn = tg_graph_node_at(e->g, t);
        const char *ps = json_string_value(json_object_get(ts->prior, "status"));
        if (!ps || strcmp(ps, "skipped") != 0) { /* not journaled as skipped already */
          add_row(e, tn, 0, "skipped", NULL, NULL, NULL, now_ms(), NULL);
          add_event(e, "node_skipped", tn->id, NULL);
        }
      }
      e->stack[top++] = t;
    }
  }
}

/* The variables a node's output contributes: a new object or NULL. */
static json_t *vars_of(const tg_graph_node *gn, const json_t *output)
{
  const wk_node_ops *ops = ops_for(gn->type);
  if (ops && ops->vars)
    return ops->vars(output);
  return json_is_object(output) ? json_copy((json_t *)output) : NULL;
}

/* Node i finished with output (taken): into the scope, then its successors. */
static void complete(wk_engine *e, size_t i, json_t *output, json_t *vars)
{
  const tg_graph_node *gn = tg_graph_node_at(e->g, i);
  json_t *entry;
  if (!output)
    output = json_null();
  if (!vars)
    vars = vars_of(gn, output);
  if (vars && json_object_update(e->vars, vars))
    set_fail(e, "internal", "out of memory");
  json_decref(vars);
  if (gn->type == TG_NODE_CONDITIONAL) {
    json_int_t b = json_integer_value(json_object_get(output, "branch"));
    if (b < 0 || (size_t)b >= gn->nbranches) {
      set_fail(e, "internal", "node %s: recorded branch %lld does not exist", gn->id, (long long)b);
      json_decref(output);
      return;
    }
    e->ns[i].target = gn->branches[b].target;
  }
  if (gn->type == TG_NODE_END && !e->end_done) {
    e->end_done = 1;
    e->output = json_incref(output);
  }
  entry = json_pack("{s:o}", "output", output);
  if (!entry || json_object_set_new(e->nodes, gn->id, entry))
    set_fail(e, "internal", "out of memory");
  e->ns[i].state = NS_DONE;
  resolve(e, i);
}

/* ---- starting a node ---- */

static void render_failed(wk_engine *e, size_t i, const char *err)
{
  const tg_graph_node *gn = tg_graph_node_at(e->g, i);
  int expr = strstr(err, "unresolved") != NULL;
  char msg[600];
  snprintf(msg, sizeof msg, "node %s: %s", gn->id, *err ? err : "out of memory");
  add_row(e, gn, 0, "failed", NULL, wk_secrets_redact_text(e->r, msg),
          expr ? "expression_error" : "internal", now_ms(), NULL);
  add_event(e, "node_finished", gn->id,
            status_data("failed", expr ? "expression_error" : "internal"));
  set_fail(e, expr ? "expression_error" : "internal", "%s", msg);
}

static void launch(wk_engine *e, size_t i)
{
  wk_run *r = e->r;
  const tg_graph_node *gn = tg_graph_node_at(e->g, i);
  const wk_node_ops *ops = ops_for(gn->type);
  const json_t *prior = e->ns[i].prior;
  const char *ps = json_string_value(json_object_get(prior, "status"));
  const char *res = json_string_value(json_object_get(prior, "resolution"));
  const char *prior_status = NULL;
  char err[512] = "";
  exec_t *ex;

  if (res && strcmp(res, "skip") == 0) {
    complete(e, i, NULL, NULL);
    return;
  }
  if (ps && !(res && strcmp(res, "retry") == 0)) {
    if (strcmp(ps, "success") == 0) { /* reused: not executed again */
      complete(e, i, json_incref(json_object_get(prior, "output")), NULL);
      return;
    }
    if (strcmp(ps, "failed") == 0) {
      const char *cls = json_string_value(json_object_get(prior, "error_class"));
      const char *msg = json_string_value(json_object_get(prior, "error"));
      set_fail(e, cls, "%s", msg ? msg : "node failed");
      return;
    }
    if (strcmp(ps, "pending") == 0)
      prior_status = "pending";
    else if (strcmp(ps, "unknown") == 0)
      prior_status = "unknown";
    else if (strcmp(ps, "waiting") == 0)
      prior_status = "waiting";
  }
  if (!ops) {
    set_fail(e, "internal", "node %s: type %s is not executable", gn->id,
             tg_node_type_name(gn->type));
    return;
  }
  if (!(ex = calloc(1, sizeof *ex))) {
    set_fail(e, "internal", "out of memory");
    return;
  }
  if (!(ex->x.config = tg_workflow_render(gn->config, e->scope, err, sizeof err))) {
    free(ex);
    render_failed(e, i, err);
    return;
  }
  ex->idx = i;
  ex->started_at = now_ms();
  ex->x.r = r;
  ex->x.gn = gn;
  ex->x.scope = e->scope;
  ex->x.prior_status = prior_status;
  ex->x.done = on_node_done;
  ex->x.engine = ex;
  ex->next = e->flight;
  if (e->flight)
    e->flight->prev = ex;
  e->flight = ex;
  e->in_flight++;
  r->w->nodes_in_flight++;
  r->pending++;
  e->ns[i].state = NS_RUNNING;
  add_event(e, "node_started", gn->id, type_data(gn));
  if (ops->effectful) {
    add_row(e, gn, 0, "pending", NULL, NULL, NULL, ex->started_at, ex);
    return; /* started once the row is written (journal_done) */
  }
  ex->started = 1;
  ops->start(&ex->x);
}

/* ---- a node reports ---- */

/* The model tokens of an execution: on its journal row (the first one queued since the batch
 * had queued rows, when queuing it worked; skipped successors may follow it), into the run's
 * total, against the budget. */
static void count_tokens(wk_engine *e, const tg_graph_node *gn, const wk_node_result *res,
                         size_t queued)
{
  int64_t budget = e->r->w->cfg.run_token_budget;
  if (res->input_tokens <= 0 && res->output_tokens <= 0)
    return;
  if (e->nrows > queued && e->rows[queued].node_id == gn->id) {
    e->rows[queued].input_tokens = res->input_tokens;
    e->rows[queued].output_tokens = res->output_tokens;
  }
  e->tokens += res->input_tokens + res->output_tokens;
  if (budget > 0 && e->tokens > budget)
    set_fail(e, "budget_exceeded",
             "node %s: the run has used %lld model tokens, over its budget of %lld "
             "(TOOLGATE_RUN_TOKEN_BUDGET)",
             gn->id, (long long)e->tokens, (long long)budget);
}

static void on_node_done(wk_node_exec *x, wk_node_result *res)
{
  exec_t *ex = (exec_t *)x->engine;
  wk_run *r = x->r;
  wk_engine *e = r->eng;
  const tg_graph_node *gn = x->gn;
  const wk_node_ops *ops = ops_for(gn->type);
  int64_t row = ops->effectful ? x->exec_id : 0;
  const char *cls = res->error_class;
  int resumed = x->prior_status && strcmp(x->prior_status, "waiting") == 0;
  int64_t started_at = ex->started_at;
  size_t i = ex->idx, queued;

  unlink_exec(e, ex);
  exec_free(ex);
  if (r->ended) {
    json_decref(res->output);
    json_decref(res->vars);
    wk_run_op_done(r);
    return;
  }
  r->pending--;
  queued = e->nrows;
  switch (res->status) {
  case WK_NODE_SUCCESS:
    add_row(e, gn, row, "success", journal_text(r, res->output), NULL, NULL, started_at, NULL);
    if (resumed)
      add_event(e, "resumed", gn->id, NULL);
    add_event(e, "node_finished", gn->id, status_data("success", NULL));
    if (gn->type == TG_NODE_CONDITIONAL && !res->output)
      res->output = json_pack("{s:I}", "branch", (json_int_t)res->branch);
    complete(e, i, res->output, res->vars);
    break;
  case WK_NODE_FAILED:
    cls = cls ? cls : "internal";
    add_row(e, gn, row, "failed", NULL, strdup(res->error), cls, started_at, NULL);
    add_event(e, "node_finished", gn->id, status_data("failed", cls));
    set_fail(e, cls, "%s", res->error);
    break;
  case WK_NODE_WAITING:
    add_row(e, gn, row, "waiting", journal_text(r, res->output), NULL, NULL, started_at, NULL);
    add_event(e, "waiting", gn->id, type_data(gn));
    json_decref(res->output);
    json_decref(res->vars);
    e->park = 1;
    break;
  case WK_NODE_UNKNOWN:
    add_row(e, gn, row, "unknown", NULL, strdup(res->error), "outcome_unknown", started_at, NULL);
    add_event(e, "node_finished", gn->id, status_data("unknown", "outcome_unknown"));
    if (!e->unknown) {
      e->unknown = 1;
      e->unknown_node = i;
      snprintf(e->msg, sizeof e->msg, "%s", res->error);
    }
    break;
  case WK_NODE_LOST:
  default:
    r->lost = 1;
    break;
  }
  if (res->status != WK_NODE_LOST)
    count_tokens(e, gn, res, queued);
  pump(e);
  if (r->w->nodes_blocked) { /* a worker-wide slot freed: other runs may go on */
    for (wk_run *o = r->w->runs; o; o = o->next)
      if (o != r && o->eng && o->eng->blocked)
        pump(o->eng);
  }
}

/* ---- the end of the run ---- */

static int end_work(tg_db *db, void *arg)
{
  end_job *j = arg;
  tg_run_lease l = wk_run_lease(j->r);
  if (j->park)
    return tg_store_runs_park(db, &l, tg_now_ms(), &j->changes, &j->requeued);
  return tg_store_runs_outcome_unknown(db, &l, j->node_id, j->error, &j->changes);
}

static void end_done(void *arg, int status)
{
  end_job *j = arg;
  wk_run *r = j->r;
  if (!wk_run_op_done(r)) {
    tg_log(status == 0 && j->changes ? TG_LOG_INFO : TG_LOG_WARN,
           j->park ? "run_parked" : "run_outcome_unknown", "{s:s, s:I, s:s?, s:s, s:b, s:b}",
           "run_id", r->id, "attempt", (json_int_t)r->attempt, "node", j->node_id, "error",
           status ? tg_errname(status) : "", "written", j->changes > 0, "requeued", j->requeued);
    wk_run_end(r);
  }
  free(j);
}

static void submit_end(wk_engine *e, int park)
{
  wk_run *r = e->r;
  end_job *j = calloc(1, sizeof *j);
  if (!j) {
    wk_run_end(r); /* the lease expires; the next claim decides again */
    return;
  }
  j->r = r;
  j->park = park;
  if (!park) {
    j->node_id = tg_graph_node_at(e->g, e->unknown_node)->id;
    snprintf(j->error, sizeof j->error, "%s", e->msg);
  }
  if (wk_run_submit(r, end_work, end_done, j) != 0) {
    free(j);
    wk_run_end(r);
  }
}

/* Ends the run once nothing is in flight and the journal is written. */
static void conclude(wk_engine *e)
{
  wk_run *r = e->r;
  if (e->final_sent || e->in_flight || e->writing || e->nrows || e->nevs || r->ended)
    return;
  if (!halted(e) && e->rhead < e->rtail)
    return; /* ready nodes held back by a cap */
  if (!halted(e))
    set_fail(e, "internal", "no End node was reached");
  e->final_sent = 1;
  if (e->failed) {
    wk_run_fail(r, e->fail_class, "%s", e->msg);
  } else if (e->canceled) {
    wk_run_finish(r, "canceled", NULL, "canceled on request", NULL);
  } else if (e->unknown) {
    submit_end(e, 0);
  } else if (e->park) {
    submit_end(e, 1);
  } else {
    json_t *out = e->output;
    e->output = NULL;
    wk_run_finish(r, "succeeded", out, NULL, NULL);
  }
}

static void set_blocked(wk_engine *e, int blocked)
{
  if (e->blocked == blocked)
    return;
  e->blocked = blocked;
  e->r->w->nodes_blocked += blocked ? 1 : -1;
}

static void pump(wk_engine *e)
{
  wk_run *r = e->r;
  wk_worker *w = r->w;
  if (e->pumping) {
    e->repump = 1;
    return;
  }
  e->pumping = 1;
  do {
    e->repump = 0;
    if (wk_run_should_stop(r))
      break;
    if (!halted(e) && r->cancel) {
      tg_info("run_cancel_honoured", "{s:s, s:I}", "run_id", r->id, "attempt",
              (json_int_t)r->attempt);
      e->canceled = 1;
    }
    if (!halted(e) && r->deadline_ms) {
      uv_update_time(w->loop);
      if (uv_now(w->loop) >= r->deadline_ms)
        set_fail(e, "timeout", "run deadline of %lld ms passed", (long long)w->cfg.run_deadline_ms);
    }
    set_blocked(e, 0);
    while (!halted(e) && e->rhead < e->rtail && !r->ended) {
      if (e->in_flight >= w->cfg.run_node_concurrency)
        break;
      if (w->nodes_in_flight >= w->cfg.worker_node_concurrency) {
        set_blocked(e, 1);
        break;
      }
      launch(e, e->ready[e->rhead++]);
    }
  } while (e->repump && !r->ended);
  e->pumping = 0;
  if (r->ended) {
    set_blocked(e, 0);
    return;
  }
  flush(e);
  conclude(e);
}

/* ---- public ---- */

static void on_deadline(uv_timer_t *t)
{
  wk_run *r = t->data;
  if (r->ended || !r->eng)
    return;
  tg_warn("run_deadline", "{s:s, s:I, s:i, s:I}", "run_id", r->id, "attempt",
          (json_int_t)r->attempt, "nodes_in_flight", r->eng->in_flight, "deadline_ms",
          (json_int_t)r->w->cfg.run_deadline_ms);
  wk_engine_cancel(r, WK_STOP_DEADLINE);
}

void wk_engine_cancel(wk_run *r, int why)
{
  wk_engine *e = r->eng;
  exec_t *ex, *next;
  int was;
  if (!e)
    return;
  was = e->pumping;
  e->pumping = 1; /* a node may report synchronously: no new node starts meanwhile */
  for (ex = e->flight; ex; ex = next) {
    const wk_node_ops *ops = ops_for(ex->x.gn->type);
    next = ex->next;
    if (ex->started && ops->cancel)
      ops->cancel(&ex->x, why);
  }
  e->pumping = was;
  if (!was)
    pump(e);
}

void wk_engine_free(wk_run *r)
{
  wk_engine *e = r->eng;
  if (!e)
    return;
  set_blocked(e, 0);
  job_free_rows(e->rows, e->nrows, e->evs, e->nevs);
  free(e->starts);
  free(e->ns);
  free(e->ready);
  free(e->stack);
  json_decref(e->scope);
  json_decref(e->output);
  free(e);
  r->eng = NULL;
}

void wk_engine_start(wk_run *r)
{
  wk_engine *e;
  json_t *inputs, *row;
  size_t i;

  if (!r->graph) {
    json_t *errs = tg_workflow_validate(r->definition);
    const char *msg = json_string_value(json_object_get(json_array_get(errs, 0), "message"));
    wk_run_fail(r, "internal", "invalid workflow definition: %s", msg ? msg : "unknown");
    json_decref(errs);
    return;
  }
  if (!(e = calloc(1, sizeof *e))) {
    wk_run_fail(r, "internal", "out of memory");
    return;
  }
  r->eng = e;
  e->r = r;
  e->g = r->graph;
  e->n = tg_graph_size(e->g);
  e->ns = calloc(e->n, sizeof *e->ns);
  e->ready = calloc(e->n, sizeof *e->ready);
  e->stack = calloc(e->n, sizeof *e->stack);
  inputs = json_is_object(r->inputs) ? json_incref(r->inputs) : json_object();
  e->scope = json_pack("{s:o, s:{}, s:o}", "inputs", inputs, "nodes", "vars", json_copy(inputs));
  if (!e->ns || !e->ready || !e->stack || !e->scope) {
    wk_run_fail(r, "internal", "out of memory");
    return;
  }
  e->nodes = json_object_get(e->scope, "nodes");
  e->vars = json_object_get(e->scope, "vars");
  for (i = 0; i < e->n; i++)
    e->ns[i].unresolved = tg_graph_node_at(e->g, i)->npred;
  json_array_foreach(r->journal, i, row)
  {
    size_t k = tg_graph_find(e->g, json_string_value(json_object_get(row, "node_id")));
    if (k < e->n)
      e->ns[k].prior = row;
    e->tokens += json_integer_value(json_object_get(row, "input_tokens")) +
                 json_integer_value(json_object_get(row, "output_tokens"));
  }
  if (json_array_size(r->journal))
    tg_info("run_journal_loaded", "{s:s, s:I, s:I}", "run_id", r->id, "attempt",
            (json_int_t)r->attempt, "nodes", (json_int_t)json_array_size(r->journal));
  push_ready(e, tg_graph_start(e->g));
  if (r->deadline_ms) {
    uv_update_time(r->w->loop);
    uv_timer_start(&r->dl, on_deadline,
                   r->deadline_ms > uv_now(r->w->loop) ? r->deadline_ms - uv_now(r->w->loop) : 0,
                   0);
  }
  pump(e);
}
