/*
 * gw_batch: a queue of database work items served by one tg_dbq job at a time; the job takes
 * everything queued meanwhile (up to GW_BATCH_MAX items), so a burst of requests costs a few
 * jobs instead of one each. With group commit the whole batch runs in one transaction: one
 * COMMIT (and its share of WAL pages and checkpoint fsyncs) for many requests.
 *
 * Items are embedded in the caller's request contexts (container_of style) and linked through
 * the queue; the caller's per-item work, reset and done come as callbacks (gw_batch_ops). One
 * queue per step and per gw_app (two gateways in one process never share a queue).
 */
#ifndef GW_BATCH_H
#define GW_BATCH_H

#include "gw.h"

#define GW_BATCH_MAX 128 /* items per job */

/* A queued item, embedded in the caller's context. */
typedef struct gw_batch_item {
  struct gw_batch_item *next; /* owned by the queue while queued */
  int err;                    /* the work's result for this item (0 or TG_E*) */
} gw_batch_item;

typedef struct gw_batch_ops {
  /*
   * 0: each item's work runs on its own (it opens its own transactions if it needs any).
   * 1: group commit: the batch runs in ONE BEGIN IMMEDIATE transaction under gw_write_lock,
   *    without savepoints; items are answered only after COMMIT returned, and when COMMIT fails
   *    every item fails with its error and nothing of the batch exists. An item whose work
   *    returns an error is mixed with the others' writes, so the transaction is rolled back,
   *    every item reset, and the batch done again with a savepoint per item, where a failure
   *    undoes only its own writes (a batch of one needs no second pass).
   */
  int group_commit;
  /* Work side: the item's work on db; returns 0 or its error (stored in it->err). A decision
   * (an HTTP answer such as 402 or 409) is not an error: the item records it and returns 0. */
  int (*work)(tg_db *db, gw_batch_item *it);
  /* Work side, group commit only: forgets what work decided for it (its writes were rolled
   * back). */
  void (*reset)(gw_batch_item *it);
  /* Work side, group commit only (may be NULL): the batch of n items is done again item by item
   * because failed's work returned failed->err (for a log line). */
  void (*redo)(const gw_batch_item *failed, size_t n);
  /* Loop: the item's end with its result: the error that stopped the job (TG_EBUSY when the
   * pool refused it, TG_ECANCELED when the gateway is stopping), else it->err (0: its work ran,
   * and what it decided is in the caller's context). The item is out of the queue: done may free
   * its context or push it onto a queue. */
  void (*done)(gw_batch_item *it, int status);
} gw_batch_ops;

typedef struct gw_batch gw_batch;

/* A new empty queue submitting its jobs to app->dbq. ops must outlive the queue. Returns 0 or
 * TG_ENOMEM. */
int gw_batch_new(gw_batch **out, gw_app *app, const gw_batch_ops *ops);

/* Frees the queue; call when nothing is queued or running (after the loop ended). NULL-safe. */
void gw_batch_free(gw_batch *q);

/*
 * Queues it (loop thread). ops->done runs exactly once for it: from the loop after its job, or
 * before gw_batch_push returns when no job can start (the pool refused it, or app->stopping).
 */
void gw_batch_push(gw_batch *q, gw_batch_item *it);

#endif
