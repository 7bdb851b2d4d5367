/*
 * tg_dbq: database work off the event loop.
 *
 * A pool of n tg_db connections to one database (a SQLite file or PostgreSQL); each job runs on
 * libuv's thread pool (uv_queue_work) with a connection borrowed for its duration, then its done
 * callback runs on the loop. The loop thread never touches the database. Jobs run concurrently
 * up to the pool size (SQLite serialises writers itself, the busy timeout absorbing short waits;
 * PostgreSQL locks rows).
 *
 * Ownership: the caller owns arg. work runs on a pool thread and must only touch arg and db;
 * done runs on the loop with the value work returned (0 or TG_E*), or TG_ECANCELED if the
 * queue was closed before the job started.
 */
#ifndef TG_DBQ_H
#define TG_DBQ_H

#include "tg_db.h"

#include <uv.h>

typedef struct tg_dbq tg_dbq;

typedef int (*tg_dbq_work_fn)(tg_db *db, void *arg);
typedef void (*tg_dbq_done_fn)(void *arg, int status);

/* Opens n_conns connections to path (migrations are applied by the first). Errors as
 * tg_db_open. */
int tg_dbq_new(tg_dbq **out, uv_loop_t *loop, const char *path, int n_conns);

/* Queues a job. Returns 0 (done will be called) or TG_ENOMEM / TG_ECANCELED (it won't). */
int tg_dbq_submit(tg_dbq *q, tg_dbq_work_fn work, tg_dbq_done_fn done, void *arg);

/* Jobs queued or running. */
size_t tg_dbq_pending(const tg_dbq *q);

/*
 * Checkpoints (SQLite only; see tg_dbq.c): a commit that leaves at least pages new frames in the
 * WAL since the last checkpoint asks for a checkpoint job, run after that job's done callback,
 * off the commit path: PASSIVE while the pool is busy, PASSIVE then RESTART when it is idle or
 * when the WAL has reached 8 x pages frames. Default 8,000 (32 MB of 4 KB pages); 0 turns the
 * checkpoint jobs off (then nothing checkpoints in this pool: for tests only). Loop thread;
 * applies to commits from now on.
 */
void tg_dbq_set_checkpoint_pages(tg_dbq *q, int pages);

/* Checkpoint jobs completed so far (successful or not; a failure is logged). Loop thread. */
unsigned long tg_dbq_checkpoints(const tg_dbq *q);

/* Frees the pool. Call only when tg_dbq_pending() is 0 (after the loop drained the jobs). */
void tg_dbq_free(tg_dbq *q);

#endif
