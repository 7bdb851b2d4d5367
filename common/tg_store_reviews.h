/*
 * tg_store_reviews: the one owner of reviews, a HITL node's request for a human decision
 * (schema/006_engine.sql; README "Reviews (HITL)").
 *
 *   - Review statuses: (new) -> pending (tg_store_reviews_create, fenced by the run's lease);
 *     pending -> decided (the user, tg_store_reviews_decide); pending -> expired (past
 *     expires_at, tg_store_reviews_expire); pending -> canceled (the run was canceled, or ended
 *     otherwise while the review was pending). Only pending moves.
 *   - A decision requeues the run in the same transaction (tg_store_runs_wake): waiting ->
 *     queued, or, when the engine has not parked the run yet, a resume_pending flag that its
 *     park write (tg_store_runs_park) turns into 'queued'.
 *   - Expiry fails a waiting run (review_expired) in the same transaction as the review write.
 *
 * Every function runs on the caller's connection (a tg_dbq job). "Own transaction" ones begin
 * and commit (IMMEDIATE) themselves; the others run in the caller's. Errors: the TG_E* codes of
 * tg_db. Times are ms since the epoch. Rows come back as new JSON objects of the API shape
 * {id, run_id, node_id, title, priority, message, allowed_decisions (array), status, decision,
 * comment, created_at, decided_at, expires_at}.
 */
#ifndef TG_STORE_REVIEWS_H
#define TG_STORE_REVIEWS_H

#include "tg_store_runs.h"

#include <jansson.h>
#include <stdint.h>

/* A review to create (tg_store_reviews_create); strings borrowed. */
typedef struct tg_review_new {
  const char *id; /* "rev_" + random */
  const char *node_id, *user_id;
  const char *title, *priority, *message; /* may be NULL */
  json_t *allowed_decisions;              /* array of strings, non-empty */
  int64_t now_ms;
  int64_t expires_at; /* ms since the epoch; 0: never */
} tg_review_new;

/* Fenced by l (the run is running with that claim): inserts rv as pending for run l->run_id.
 * *inserted 0 when the lease is lost, or when the run already has a review for the node (read
 * it with tg_store_reviews_for_node). */
int tg_store_reviews_create(tg_db *db, const tg_run_lease *l, const tg_review_new *rv,
                            int *inserted);

/* Run run_id's review of node node_id (the worker), or NULL with *err = TG_ENOTFOUND. */
json_t *tg_store_reviews_for_node(tg_db *db, int *err, const char *run_id, const char *node_id);

/* user_id's review id, or NULL with *err = TG_ENOTFOUND (missing, or another user's). */
json_t *tg_store_reviews_get(tg_db *db, int *err, const char *id, const char *user_id);

/* A page of a user's reviews, newest first by (created_at, id). */
typedef struct tg_review_filter {
  const char *user_id;
  const char *status;   /* or NULL: every status */
  const char *after_id; /* cursor: rows strictly after (after_at, after_id); NULL: first page */
  int64_t after_at;
  int limit;
} tg_review_filter;

/* The reviews of f: a new array, or NULL with *err set. */
json_t *tg_store_reviews_list(tg_db *db, int *err, const tg_review_filter *f);

/* What a decision did (tg_store_reviews_decide). */
enum {
  TG_REVIEW_DECIDED,     /* pending -> decided; the run requeued (or flagged, see above) */
  TG_REVIEW_NOT_ALLOWED, /* decision is not one of allowed_decisions: nothing written (422) */
  TG_REVIEW_CLOSED,      /* the review is not pending (decided, expired, canceled) (409) */
};

/*
 * Own transaction: user_id decides review id with decision (and comment, may be NULL) at
 * now_ms. 0 with *outcome and *review (a new object: the review after the call; the caller
 * frees it), TG_ENOTFOUND (missing or another user's), or another code (nothing written).
 * *requeued (may be NULL) 1 when the run went waiting -> queued.
 */
int tg_store_reviews_decide(tg_db *db, const char *id, const char *user_id, const char *decision,
                            const char *comment, int64_t now_ms, int *outcome, json_t **review,
                            int *requeued);

/*
 * Own transaction: up to limit pending reviews past their expires_at (<= now_ms) whose run is
 * parked ('waiting') become 'expired', and each run fails with error_class review_expired and
 * an error naming the node; pending reviews of runs that ended otherwise (succeeded, failed,
 * canceled, attention) become 'canceled'. *expired: a new array of {id, run_id, node_id,
 * user_id} of the reviews that expired (for the log). A review of a run still 'running' waits
 * for the engine to park it.
 */
int tg_store_reviews_expire(tg_db *db, int64_t now_ms, int limit, json_t **expired);

/* Inside the caller's transaction (tg_store_runs_cancel of a waiting run): the run's pending
 * reviews become 'canceled'. */
int tg_store_reviews_cancel_run(tg_db *db, const char *run_id, int64_t now_ms);

#endif
