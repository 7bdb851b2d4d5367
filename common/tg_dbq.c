/*
 * tg_dbq: a connection pool served by libuv's thread pool.
 *
 * Invariants: conns[] holds n connections; free_mask has a bit per idle connection and is
 * guarded by mu; a job waits on cv until a connection is idle. When libuv's thread pool has more
 * threads than the pool has connections, the extra jobs park their threads on cv; every job
 * holding a connection finishes without waiting on another job, so the wait is bounded. The
 * loop thread only submits and receives done callbacks; it never calls SQLite.
 *
 * Warm connection: in WAL mode a connection drops its whole page cache when it starts a read
 * and finds that another connection has written since its last transaction. So a job takes
 * the connection that wrote last (warm) when it is idle, and another one only when it is
 * busy: consecutive jobs (the admission pipeline's reads and group commits) then share one
 * page cache instead of reloading every page they touch. Only the choice of connection
 * changes; isolation and the busy handling stay SQLite's.
 */
#include "tg_dbq.h"
#include "tg_err.h"

#include <stdlib.h>

#define MAX_CONNS 32

struct tg_dbq {
  uv_loop_t *loop;
  tg_db *conns[MAX_CONNS];
  int n;
  unsigned free_mask;
  int warm; /* the connection that wrote last (guarded by mu) */
  uv_mutex_t mu;
  uv_cond_t cv;
  size_t pending;
};

typedef struct job {
  uv_work_t req;
  tg_dbq *q;
  tg_dbq_work_fn work;
  tg_dbq_done_fn done;
  void *arg;
  int status;
} job;

int tg_dbq_new(tg_dbq **out, uv_loop_t *loop, const char *path, int n_conns)
{
  tg_dbq *q;
  int rc;

  *out = NULL;
  if (n_conns < 1)
    n_conns = 1;
  if (n_conns > MAX_CONNS)
    n_conns = MAX_CONNS;
  q = calloc(1, sizeof *q);
  if (!q)
    return TG_ENOMEM;
  q->loop = loop;
  uv_mutex_init(&q->mu);
  uv_cond_init(&q->cv);
  for (int i = 0; i < n_conns; i++) {
    if ((rc = tg_db_open(&q->conns[i], path, 5000))) {
      tg_dbq_free(q);
      return rc;
    }
    q->n++;
    q->free_mask |= 1u << i;
  }
  *out = q;
  return 0;
}

static void on_work(uv_work_t *req)
{
  job *j = req->data;
  tg_dbq *q = j->q;
  sqlite3_int64 changes;
  int i, wrote;

  uv_mutex_lock(&q->mu);
  while (!q->free_mask)
    uv_cond_wait(&q->cv, &q->mu);
  i = q->free_mask & (1u << q->warm) ? q->warm : __builtin_ctz(q->free_mask);
  q->free_mask &= ~(1u << i);
  uv_mutex_unlock(&q->mu);

  changes = sqlite3_total_changes64(tg_db_handle(q->conns[i]));
  j->status = j->work(q->conns[i], j->arg);
  tg_db_rollback(q->conns[i]); /* a job that forgot to end its transaction must not leak it */
  wrote = sqlite3_total_changes64(tg_db_handle(q->conns[i])) != changes;

  uv_mutex_lock(&q->mu);
  if (wrote)
    q->warm = i;
  q->free_mask |= 1u << i;
  uv_cond_signal(&q->cv);
  uv_mutex_unlock(&q->mu);
}

static void on_after_work(uv_work_t *req, int status)
{
  job *j = req->data;
  j->q->pending--;
  j->done(j->arg, status == UV_ECANCELED ? TG_ECANCELED : j->status);
  free(j);
}

int tg_dbq_submit(tg_dbq *q, tg_dbq_work_fn work, tg_dbq_done_fn done, void *arg)
{
  job *j = calloc(1, sizeof *j);
  if (!j)
    return TG_ENOMEM;
  j->q = q;
  j->work = work;
  j->done = done;
  j->arg = arg;
  j->req.data = j;
  if (uv_queue_work(q->loop, &j->req, on_work, on_after_work) != 0) {
    free(j);
    return TG_ECANCELED;
  }
  q->pending++;
  return 0;
}

size_t tg_dbq_pending(const tg_dbq *q)
{
  return q->pending;
}

void tg_dbq_free(tg_dbq *q)
{
  if (!q)
    return;
  for (int i = 0; i < q->n; i++)
    tg_db_close(q->conns[i]);
  uv_cond_destroy(&q->cv);
  uv_mutex_destroy(&q->mu);
  free(q);
}
