/*
 * gw_batch: one tg_dbq job at a time per queue, over everything queued meanwhile, optionally
 * in one transaction (group commit) with a savepoint-per-item redo when an item fails (see
 * gw_batch.h for the contract).
 *
 * Invariants: head..tail are waiting (loop side; tail is meaningful only when head is set);
 * batch is owned by the job in flight, and running is 1 exactly while one is; the items of a
 * batch are handed to ops->done one by one, after the batch left the queue, so done may push
 * onto any queue (this one included: the next job starts from done's push or right after).
 */
#include "gw_batch.h"

#include <stdlib.h>

struct gw_batch {
  gw_app *app;
  const gw_batch_ops *ops;
  gw_batch_item *head, *tail; /* waiting (loop side) */
  gw_batch_item *batch;       /* owned by the running job */
  int running;
};

int gw_batch_new(gw_batch **out, gw_app *app, const gw_batch_ops *ops)
{
  gw_batch *q = calloc(1, sizeof *q);
  *out = q;
  if (!q)
    return TG_ENOMEM;
  q->app = app;
  q->ops = ops;
  return 0;
}

void gw_batch_free(gw_batch *q)
{
  free(q);
}

/* The safe way: each item under its own savepoint, so that one failure rolls back only its own
 * writes (every page first touched inside a savepoint is copied to the statement journal,
 * which is why this is not the usual path). Inside the open transaction; returns the error
 * that ends the transaction (then the caller rolls back), or 0. */
static int each_savepoint(const gw_batch_ops *ops, tg_db *db, gw_batch_item *list)
{
  int rc = 0;
  for (gw_batch_item *it = list; it && rc == 0; it = it->next) {
    if ((it->err = tg_db_exec(db, NULL, "SAVEPOINT gw_batch", "")) != 0)
      continue;
    it->err = ops->work(db, it);
    if (it->err) {
      ops->reset(it);
      tg_db_exec(db, NULL, "ROLLBACK TO gw_batch", "");
    }
    rc = tg_db_exec(db, NULL, "RELEASE gw_batch", "");
  }
  return rc;
}

/*
 * Group commit: every item of the batch in ONE transaction, fast path without savepoints. A
 * failed item's writes so far are mixed with the others', so the whole transaction is rolled
 * back, every outcome forgotten (ops->reset; the caller's answer, log line and counters happen
 * in done, once), and the batch is done again the safe way (each_savepoint). A batch of one
 * needs no second pass: the rollback undid exactly its writes.
 */
static int group_commit(const gw_batch_ops *ops, tg_db *db, gw_batch_item *list)
{
  gw_batch_item *failed = NULL;
  size_t n = 0;
  int rc;
  gw_write_lock();
  rc = tg_db_begin(db, 1);
  for (gw_batch_item *it = list; it && rc == 0 && !failed; it = it->next)
    if ((it->err = ops->work(db, it)) != 0)
      failed = it;
  if (failed && list->next) {
    tg_db_rollback(db);
    for (gw_batch_item *it = list; it; it = it->next)
      n++;
    if (ops->redo)
      ops->redo(failed, n);
    for (gw_batch_item *it = list; it; it = it->next) {
      ops->reset(it);
      it->err = 0;
    }
    rc = tg_db_begin(db, 1);
    if (rc == 0)
      rc = each_savepoint(ops, db, list);
  } else if (failed) {
    tg_db_rollback(db);
    ops->reset(failed);
    gw_write_unlock();
    return 0; /* its err answers it */
  }
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0) {
    tg_db_rollback(db);
    for (gw_batch_item *it = list; it; it = it->next) {
      ops->reset(it);
      it->err = rc;
    }
  }
  gw_write_unlock();
  return 0;
}

static int batch_work(tg_db *db, void *arg)
{
  gw_batch *q = arg;
  if (q->ops->group_commit)
    return group_commit(q->ops, db, q->batch);
  for (gw_batch_item *it = q->batch; it; it = it->next)
    it->err = q->ops->work(db, it);
  return 0;
}

static void kick(gw_batch *q);

/* Hands the batch's items to done (status: the job's error, or 0 for each item's own err). */
static void end_batch(gw_batch *q, int status)
{
  gw_batch_item *it = q->batch, *next;
  q->batch = NULL;
  q->running = 0;
  for (; it; it = next) {
    next = it->next;
    it->next = NULL;
    q->ops->done(it, status ? status : it->err);
  }
}

static void batch_done(void *arg, int status)
{
  gw_batch *q = arg;
  end_batch(q, status);
  if (q->head)
    kick(q);
}

/* Starts a job over what q holds (up to GW_BATCH_MAX); when none can start, ends them all (and
 * the batches waiting behind them, the same way). */
static void kick(gw_batch *q)
{
  gw_batch_item **pp = &q->head;
  int n = 0, rc;
  if (q->running || !q->head)
    return;
  while (*pp && n < GW_BATCH_MAX) {
    pp = &(*pp)->next;
    n++;
  }
  q->batch = q->head;
  q->head = *pp;
  *pp = NULL;
  q->running = 1;
  rc = q->app->stopping ? TG_ECANCELED : tg_dbq_submit(q->app->dbq, batch_work, batch_done, q);
  if (rc != 0) {
    end_batch(q, rc == TG_ECANCELED ? rc : TG_EBUSY);
    if (q->head)
      kick(q);
  }
}

void gw_batch_push(gw_batch *q, gw_batch_item *it)
{
  it->next = NULL;
  if (q->head)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
  kick(q);
}
