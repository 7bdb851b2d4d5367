/*
 * wk_node_hitl: the HITL node (README "Reviews (HITL)"): asks a human for a decision and reports
 * it.
 *
 * Config (rendered by the engine): {reviewTitle, priority, message, allowedDecisions (array of
 * strings; default ["approve", "reject"]), timeout_s (default TOOLGATE_REVIEW_TIMEOUT_S)}.
 *
 * Every execution is one tg_dbq job that first reads the run's review of this node: none yet
 * (a first execution) -> it inserts one, pending, expiring now + timeout_s, fenced by the run's
 * lease, and reports WK_NODE_WAITING (the engine parks the run); pending -> WAITING again;
 * decided -> SUCCESS with output {decision, comment, decided_at} and vars {decision, comment};
 * expired -> FAILED review_expired; canceled -> FAILED (the run was canceled). Reading first
 * makes a re-execution after a crash between the insert and the engine's journal write safe:
 * the review is never inserted twice (reviews are UNIQUE (run_id, node_id) as well).
 *
 * The executor writes only reviews (tg_store_reviews); it never parks or finishes the run.
 */
#include "wk_node.h"

#include "tg_clock.h"
#include "tg_err.h"
#include "tg_id.h"
#include "tg_log.h"
#include "tg_store_reviews.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_BYTES 16

typedef struct hitl_job {
  wk_node_exec *x;
  tg_run_lease lease;
  char review_id[4 + 2 * ID_BYTES + 1];
  char *title, *priority, *message; /* or NULL */
  json_t *allowed;                  /* array of strings (owned) */
  int64_t timeout_ms;
  /* result (pool thread -> loop) */
  json_t *review; /* the run's review of the node, or NULL when the lease was lost */
} hitl_job;

static char *config_str(const json_t *config, const char *key)
{
  const char *v = json_string_value(json_object_get(config, key));
  return v ? strdup(v) : NULL;
}

static int hitl_work(tg_db *db, void *arg)
{
  hitl_job *j = arg;
  wk_node_exec *x = j->x;
  int rc = 0, inserted = 0;
  int64_t now = tg_now_ms();
  j->review = tg_store_reviews_for_node(db, &rc, j->lease.run_id, x->gn->id);
  if (j->review || rc != TG_ENOTFOUND)
    return j->review ? 0 : rc;
  rc = tg_store_reviews_create(db, &j->lease,
                               &(tg_review_new){
                                   .id = j->review_id,
                                   .node_id = x->gn->id,
                                   .user_id = x->r->user_id,
                                   .title = j->title,
                                   .priority = j->priority,
                                   .message = j->message,
                                   .allowed_decisions = j->allowed,
                                   .now_ms = now,
                                   .expires_at = now + j->timeout_ms,
                               },
                               &inserted);
  if (rc != 0)
    return rc;
  j->review = tg_store_reviews_for_node(db, &rc, j->lease.run_id, x->gn->id);
  if (!j->review && rc == TG_ENOTFOUND)
    return 0; /* not inserted and none there: the lease is lost */
  return j->review ? 0 : rc;
}

static void job_free(hitl_job *j)
{
  free(j->title);
  free(j->priority);
  free(j->message);
  json_decref(j->allowed);
  json_decref(j->review);
  free(j);
}

static void report_failed(wk_node_exec *x, const char *error_class, const char *msg)
{
  wk_node_result res = {.status = WK_NODE_FAILED, .error_class = error_class};
  snprintf(res.error, sizeof res.error, "HITL node %s: %s", x->gn->id, msg);
  x->done(x, &res);
}

static void hitl_done(void *arg, int status)
{
  hitl_job *j = arg;
  wk_node_exec *x = j->x;
  wk_node_result res = {0};
  const char *st = json_string_value(json_object_get(j->review, "status"));
  if (status != 0) {
    report_failed(x, "internal", tg_errname(status));
  } else if (!j->review) {
    res.status = WK_NODE_LOST;
    x->done(x, &res);
  } else if (strcmp(st, "pending") == 0) {
    res.status = WK_NODE_WAITING;
    x->done(x, &res);
  } else if (strcmp(st, "decided") == 0) {
    json_t *decision = json_object_get(j->review, "decision");
    json_t *comment = json_object_get(j->review, "comment");
    res.status = WK_NODE_SUCCESS;
    res.output = json_pack("{s:O, s:O, s:O}", "decision", decision, "comment", comment,
                           "decided_at", json_object_get(j->review, "decided_at"));
    /* vars: the output's keys (decision, comment, decided_at), by the engine's default, the
     * same for this output as for one reused after a crash. */
    if (!res.output) {
      report_failed(x, "internal", "out of memory");
    } else {
      tg_info("review_resumed", "{s:s, s:s, s:O}", "run_id", j->lease.run_id, "node_id", x->gn->id,
              "decision", decision);
      x->done(x, &res);
    }
  } else if (strcmp(st, "expired") == 0) {
    report_failed(x, "review_expired", "the review expired before a decision");
  } else {
    report_failed(x, "canceled", "the review was canceled");
  }
  job_free(j);
}

/* allowedDecisions: a non-empty array of non-empty strings, else the default pair. */
static json_t *allowed_decisions(const json_t *config)
{
  json_t *a = json_object_get(config, "allowedDecisions"), *v;
  size_t i;
  int ok = json_is_array(a) && json_array_size(a) > 0;
  json_array_foreach(a, i, v)
  {
    if (!json_is_string(v) || json_string_length(v) == 0)
      ok = 0;
  }
  return ok ? json_deep_copy(a) : json_pack("[s, s]", "approve", "reject");
}

static void hitl_start(wk_node_exec *x)
{
  hitl_job *j = calloc(1, sizeof *j);
  json_t *t = json_object_get(x->config, "timeout_s");
  int64_t timeout_s = x->r->w->cfg.review_timeout_s;
  if (json_is_integer(t) && json_integer_value(t) > 0 && json_integer_value(t) <= INT32_MAX)
    timeout_s = json_integer_value(t);
  if (!j) {
    report_failed(x, "internal", "out of memory");
    return;
  }
  j->x = x;
  j->lease = wk_run_lease(x->r);
  j->timeout_ms = timeout_s * 1000;
  tg_random_id(j->review_id, sizeof j->review_id, "rev_", ID_BYTES);
  j->title = config_str(x->config, "reviewTitle");
  j->priority = config_str(x->config, "priority");
  j->message = config_str(x->config, "message");
  j->allowed = allowed_decisions(x->config);
  if (!j->allowed || tg_dbq_submit(x->r->w->dbq, hitl_work, hitl_done, j) != 0) {
    job_free(j);
    report_failed(x, "internal", "could not queue the review job");
  }
}

const wk_node_ops wk_node_hitl_ops = {
    .type = TG_NODE_HITL,
    .effectful = 1,
    .start = hitl_start,
    .cancel = NULL, /* one short database job: done follows promptly */
};
