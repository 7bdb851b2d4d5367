/*
 * wk_node: the node-executor interface between the run engine (wk_engine.c) and one file per
 * node type (wk_node_<type>.c). Issue 13; README "Workflows".
 *
 * The engine owns the run's state machine: which nodes are ready, the node_executions journal
 * and run_events (tg_store_nodes), run variables, templates, concurrency caps, the deadline,
 * cancellation, lease loss and the run's final write. An executor only performs one node:
 *
 *   engine                                   executor
 *   ------                                   --------
 *   journal row 'pending' (effectful nodes)
 *   x = {run, node, rendered config, ...} -> ops->start(x)
 *                                            ... async work (curl multi, MCP, dbq jobs) ...
 *   on_done(x, result)                    <- x->done(x, &res)   exactly once, possibly from
 *   journal row success/failed/...                                inside start()
 *
 * Executors never call back into wk_engine.c except through x->done, and never finish, release
 * or park the run themselves: they report, the engine decides. Results travel by the callback
 * passed down.
 */
#ifndef WK_NODE_H
#define WK_NODE_H

#include "tg_graph.h"
#include "wk.h"

#include <jansson.h>

typedef enum {
  WK_NODE_SUCCESS = 0, /* output (and vars) set */
  WK_NODE_FAILED,      /* error_class + error: the run fails with them */
  WK_NODE_WAITING,     /* parked for a human (HITL): the run goes to 'waiting' */
  WK_NODE_UNKNOWN,     /* it may have had effects and cannot safely run again: the run goes to
                          'attention' with reason outcome_unknown naming the node */
  WK_NODE_LOST         /* a fenced write matched nothing: stop, write nothing more */
} wk_node_status;

typedef struct wk_node_result {
  wk_node_status status;
  json_t *output;          /* SUCCESS: the node's output; the engine takes the reference */
  json_t *vars;            /* SUCCESS, optional: the bare variables this node contributes (an
                              object; the engine takes it). NULL: ops->vars(output), or the
                              top-level keys of output when it is an object. */
  size_t branch;           /* Conditional: index of the chosen target node */
  const char *error_class; /* FAILED / UNKNOWN: static snake_case class */
  char error[512];         /* FAILED / UNKNOWN: human-readable, secrets already redacted */
  int64_t input_tokens;    /* model tokens the execution used (Agent, Self-Review; any status):
                              written on its journal row and counted against the run's budget */
  int64_t output_tokens;
} wk_node_result;

typedef struct wk_node_exec wk_node_exec;

struct wk_node_exec {
  wk_run *r;                /* the run (loop thread only) */
  const tg_graph_node *gn;  /* the node */
  json_t *config;           /* gn->config rendered against the run variables, except that
                               {{secrets.<name>}} references are left as they are (the executor
                               resolves them into the outgoing request only). Owned by x. */
  const json_t *scope;      /* run variables {"inputs","nodes","vars"} (tg_expr.h); borrowed,
                               read-only, valid until done is called */
  const char *prior_status; /* NULL for a first execution; else the status ('pending',
                               'unknown', 'waiting') of this node's last journal row from an
                               earlier attempt: it was in flight when that attempt ended. The
                               executor re-executes only when that is safe, else reports
                               WK_NODE_UNKNOWN (a 'waiting' HITL node reads its review). */
  int64_t exec_id;          /* this execution's node_executions row, or 0 for nodes journaled
                               only on completion */
  const char *tool_call_id; /* NULL for a node of the graph; set when an Agent's tool call runs
                               through this executor (wk_tool.c): the model's id of the call,
                               journaled on its tool_executions rows; borrowed until done */
  void (*done)(wk_node_exec *x, wk_node_result *res); /* set by the engine */
  void *engine;                                       /* the engine's per-execution state */
  void *priv;                                         /* the executor's per-execution state */
};

typedef struct wk_node_ops {
  tg_node_type type;
  /* 1: the engine writes a 'pending' journal row before start (the node may have effects
   * outside the worker); 0: journaled on completion only (pure: Start, Conditional, End). */
  int effectful;
  /* Begins the node. Must eventually call x->done exactly once. */
  void (*start)(wk_node_exec *x);
  /* The run deadline or the shutdown grace (why: WK_STOP_*) interrupts the node: done must be
   * called promptly (FAILED 'timeout', or UNKNOWN when a request may have left). NULL for
   * executors that finish synchronously. Never called after done. */
  void (*cancel)(wk_node_exec *x, int why);
  /* The bare variables an output contributes (a new object, or NULL for none), used when a
   * recorded output is reused after a crash as well as after an execution whose result left
   * vars NULL, so both give the same run variables. NULL hook: the top-level keys of an object
   * output. */
  json_t *(*vars)(const json_t *output);
} wk_node_ops;

/* A vars hook for nodes that contribute no run variables (Start, Conditional, End): NULL. */
json_t *wk_node_no_vars(const json_t *output);

/* One per file. */
extern const wk_node_ops wk_node_start_ops, wk_node_end_ops, wk_node_mcp_ops, wk_node_api_ops,
    wk_node_conditional_ops, wk_node_hitl_ops;
extern const wk_node_ops wk_node_self_review_ops;
extern const wk_node_ops wk_node_code_ops;
extern const wk_node_ops wk_node_agent_ops;

#endif
