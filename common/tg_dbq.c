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
 *
 * Checkpoints off the commit path: SQLite's automatic checkpoint runs inside the COMMIT that
 * crosses its threshold, so every caller waiting on that job (a group commit of admissions)
 * waits for a 32 MB copy and an fsync. Here each connection's WAL hook (sqlite3_wal_hook, which
 * replaces the automatic checkpoint: https://www.sqlite.org/c3ref/wal_hook.html) only notes
 * that the WAL has reached CHECKPOINT_PAGES; when that job's done callback runs on the loop, a
 * separate job checkpoints on another connection while commits go on: PASSIVE for the bulk
 * (it blocks nobody), then RESTART for the tail (writers wait only for that) so that the WAL
 * starts over. One checkpoint job at a time; a crossing during it waits for it to end.
 */
#include "tg_dbq.h"
#include "tg_db_stmt.h"
#include "tg_err.h"

#include "tg_log.h"

#include <stdlib.h>

#define MAX_CONNS 32
#define CHECKPOINT_PAGES 8000 /* WAL frames (4 KB pages: 32 MB) that start a checkpoint */

struct tg_dbq {
  uv_loop_t *loop;
  tg_db *conns[MAX_CONNS];
  int n;
  unsigned free_mask;
  int warm; /* the connection that wrote last (guarded by mu) */
  uv_mutex_t mu;
  uv_cond_t cv;
  size_t pending;
  int ckpt_pages;          /* WAL frames that ask for a checkpoint (guarded by mu); 0: never */
  int ckpt_wanted;         /* set by a WAL hook (guarded by mu), taken by the loop */
  unsigned long ckpt_done; /* checkpoint jobs completed (loop thread only) */
  int ckpt_running;        /* a checkpoint job is queued or running (loop thread only) */
};

typedef struct job {
  uv_work_t req;
  tg_dbq *q;
  tg_dbq_work_fn work;
  tg_dbq_done_fn done;
  void *arg;
  int status;
} job;

/* sqlite3_wal_hook callback, on the committing thread: notes that a checkpoint is due. */
static int on_wal(void *arg, sqlite3 *h, const char *name, int pages)
{
  tg_dbq *q = arg;
  (void)h;
  (void)name;
  uv_mutex_lock(&q->mu);
  if (q->ckpt_pages > 0 && pages >= q->ckpt_pages)
    q->ckpt_wanted = 1;
  uv_mutex_unlock(&q->mu);
  return SQLITE_OK;
}

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
  q->ckpt_pages = CHECKPOINT_PAGES;
  uv_mutex_init(&q->mu);
  uv_cond_init(&q->cv);
  for (int i = 0; i < n_conns; i++) {
    if ((rc = tg_db_open(&q->conns[i], path, 5000))) {
      tg_dbq_free(q);
      return rc;
    }
    sqlite3_wal_hook(tg_db_handle(q->conns[i]), on_wal, q);
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

static int checkpoint_work(tg_db *db, void *arg)
{
  sqlite3 *h = tg_db_handle(db);
  int log_frames = 0, done_frames = 0, rc;
  (void)arg;
  /* PASSIVE copies the bulk while commits go on; RESTART then copies the few frames added
   * meanwhile, holding writers back only for that, and makes the next writer start the WAL
   * over from its beginning, so the WAL stays near CHECKPOINT_PAGES under constant load
   * (PASSIVE alone never catches up with a busy writer and the WAL would keep growing). */
  rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done_frames);
  if (rc == SQLITE_OK)
    rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_RESTART, &log_frames, &done_frames);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) /* BUSY: another checkpoint, or readers stayed */
    return tg_db_err(db, rc, "wal checkpoint");
  tg_debug("db_checkpoint", "{s:i, s:i, s:b}", "wal_frames", log_frames, "checkpointed",
           done_frames, "busy", rc == SQLITE_BUSY);
  return 0;
}

static void checkpoint_done(void *arg, int status)
{
  tg_dbq *q = arg;
  (void)status; /* an error was logged by tg_db_err; the next crossing tries again */
  q->ckpt_running = 0;
  q->ckpt_done++;
  /* Commits during the checkpoint saw the WAL before its restart: their requests are served. */
  uv_mutex_lock(&q->mu);
  q->ckpt_wanted = 0;
  uv_mutex_unlock(&q->mu);
}

void tg_dbq_set_checkpoint_pages(tg_dbq *q, int pages)
{
  uv_mutex_lock(&q->mu);
  q->ckpt_pages = pages > 0 ? pages : 0;
  uv_mutex_unlock(&q->mu);
}

unsigned long tg_dbq_checkpoints(const tg_dbq *q)
{
  return q->ckpt_done;
}

/* Loop thread: starts the checkpoint job a WAL hook asked for, unless one is running. */
static void maybe_checkpoint(tg_dbq *q)
{
  int wanted;
  if (q->ckpt_running)
    return;
  uv_mutex_lock(&q->mu);
  wanted = q->ckpt_wanted;
  q->ckpt_wanted = 0;
  uv_mutex_unlock(&q->mu);
  if (wanted && tg_dbq_submit(q, checkpoint_work, checkpoint_done, q) == 0)
    q->ckpt_running = 1;
}

static void on_after_work(uv_work_t *req, int status)
{
  job *j = req->data;
  tg_dbq *q = j->q;
  q->pending--;
  j->done(j->arg, status == UV_ECANCELED ? TG_ECANCELED : j->status);
  free(j);
  if (status != UV_ECANCELED)
    maybe_checkpoint(q);
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
