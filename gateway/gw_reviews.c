/*
 * gw_reviews: the reviews API (README "Reviews (HITL)"): the caller's reviews
 * (GET /api/reviews?status=&limit=&cursor=), one review (GET /api/reviews/{id}) and the decision
 * (POST /api/reviews/{id}/decision {decision, comment?}).
 *
 * One job per request, the statements in tg_store_reviews. Another user's review is
 * indistinguishable from a missing one (404). The decision is one transaction
 * (tg_store_reviews_decide): the review pending -> decided and its run waiting -> queued, so a
 * worker continues the run after the HITL node; a decision not in allowed_decisions is 422, a
 * second decision (or one on an expired or canceled review) 409 review_closed. Listing pages as
 * GET /api/runs does: newest first by (created_at, id), next_cursor "<created_at>:<id>".
 */
#include "gw.h"
#include "tg_clock.h"
#include "tg_store_reviews.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECISION_MAX 128  /* bytes of a decision */
#define COMMENT_MAX 16384 /* bytes of a comment */

enum { GET, LIST, DECIDE };

typedef struct review_ctx {
  gw_job j;
  int op;
  char id[GW_USER_MAX + 1];
  /* LIST */
  const char *status; /* static, or NULL */
  gw_page page;
  /* DECIDE */
  char decision[DECISION_MAX + 1];
  char *comment; /* owned, or NULL */
} review_ctx;
GW_JOB_FIRST(review_ctx);

static int list_work(tg_db *db, review_ctx *c)
{
  int rc;
  json_t *rows = tg_store_reviews_list(db, &rc,
                                       &(tg_review_filter){
                                           .user_id = c->j.user,
                                           .status = c->status,
                                           .after_id = *c->page.after_id ? c->page.after_id : NULL,
                                           .after_at = c->page.after_at,
                                           .limit = c->page.limit + 1,
                                       });
  if (!rows)
    return rc;
  return gw_page_answer(&c->j, "reviews", rows, c->page.limit);
}

static int decide_work(tg_db *db, review_ctx *c)
{
  int outcome = 0, requeued = 0, rc;
  json_t *rv = NULL;
  rc = tg_store_reviews_decide(db, c->id, c->j.user, c->decision, c->comment, tg_now_ms(), &outcome,
                               &rv, &requeued);
  if (rc == TG_ENOTFOUND) {
    gw_job_fail(&c->j, 404, "not_found", "No such review.");
    return 0;
  }
  if (rc != 0)
    return rc;
  if (outcome == TG_REVIEW_NOT_ALLOWED) {
    gw_job_fail(&c->j, 422, "decision_not_allowed",
                "decision must be one of the review's allowed_decisions.");
    c->j.body = json_pack("{s:O}", "allowed_decisions", json_object_get(rv, "allowed_decisions"));
    json_decref(rv);
    return 0;
  }
  if (outcome == TG_REVIEW_CLOSED) {
    gw_job_fail(&c->j, 409, "review_closed", "This review is no longer pending.");
    c->j.body = json_pack("{s:O}", "status", json_object_get(rv, "status"));
    json_decref(rv);
    return 0;
  }
  tg_info("review_decided", "{s:s, s:s, s:O, s:s, s:b}", "user_id", c->j.user, "review_id", c->id,
          "run_id", json_object_get(rv, "run_id"), "decision", c->decision, "requeued", requeued);
  c->j.status = 200;
  c->j.body = rv;
  return 0;
}

static int review_work(tg_db *db, void *arg)
{
  review_ctx *c = arg;
  int rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  json_t *rv;
  if (rc != 0)
    return rc;
  if (c->op == LIST)
    return list_work(db, c);
  if (c->op == DECIDE)
    return decide_work(db, c);
  if (!(rv = tg_store_reviews_get(db, &rc, c->id, c->j.user))) {
    if (rc != TG_ENOTFOUND)
      return rc;
    gw_job_fail(&c->j, 404, "not_found", "No such review.");
    return 0;
  }
  c->j.status = 200;
  c->j.body = rv;
  return 0;
}

static void on_done(void *arg, int status)
{
  review_ctx *c = arg;
  free(c->comment);
  gw_job_done_free(c, status);
}

static review_ctx *ctx_new(gw_app *app, tg_httpd_req *req, const char *user, const char *id, int op)
{
  review_ctx *c = gw_job_new(app, req, user, sizeof *c);
  if (!c)
    return NULL;
  snprintf(c->id, sizeof c->id, "%s", id ? id : "");
  c->op = op;
  return c;
}

static void submit(review_ctx *c)
{
  if (gw_submit(&c->j, review_work, on_done, c) != 0) {
    free(c->comment);
    free(c);
  }
}

static const char *status_name(const char *s)
{
  static const char *const names[] = {"pending", "decided", "expired", "canceled", NULL};
  return gw_name_in(s, names);
}

void gw_review_list(gw_app *app, tg_httpd_req *req, const char *user)
{
  const char *status = tg_httpd_query(req, "status");
  gw_page page;
  const char *bad = gw_page_parse(req, &page);
  review_ctx *c;

  if (status && !status_name(status))
    bad = "status must be one of pending, decided, expired, canceled.";
  if (bad) {
    gw_respond_error(req, 400, "invalid_request", bad, NULL, NULL);
    return;
  }
  if (!(c = ctx_new(app, req, user, NULL, LIST)))
    return;
  c->status = status ? status_name(status) : NULL;
  c->page = page;
  submit(c);
}

void gw_review_get(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  review_ctx *c = ctx_new(app, req, user, id, GET);
  if (c)
    submit(c);
}

void gw_review_decide(gw_app *app, tg_httpd_req *req, const char *user, const char *id)
{
  json_t *body = gw_parse_body(req);
  const char *decision, *bad = NULL;
  json_t *comment;
  review_ctx *c;
  if (!body)
    return; /* 400 */
  decision = json_string_value(json_object_get(body, "decision"));
  comment = json_object_get(body, "comment");
  if (!decision || !*decision || strlen(decision) > DECISION_MAX)
    bad = "decision must be a non-empty string.";
  else if (comment && !json_is_null(comment) &&
           (!json_is_string(comment) || json_string_length(comment) > COMMENT_MAX))
    bad = "comment must be a string of at most 16384 bytes.";
  if (bad) {
    json_decref(body);
    gw_respond_error(req, 400, "invalid_request", bad, NULL, NULL);
    return;
  }
  if (!(c = ctx_new(app, req, user, id, DECIDE))) {
    json_decref(body);
    return;
  }
  snprintf(c->decision, sizeof c->decision, "%s", decision);
  if (json_is_string(comment) && !(c->comment = strdup(json_string_value(comment)))) {
    json_decref(body);
    free(c);
    tg_httpd_respond_error(req, 500, "internal", "Out of memory.");
    return;
  }
  json_decref(body);
  submit(c);
}
