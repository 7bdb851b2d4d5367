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
 * Checkpoints off the commit path and without stalling writers: SQLite's automatic checkpoint
 * runs inside the COMMIT that crosses its threshold, so every caller waiting on that job (a
 * group commit of admissions) waits for a 32 MB copy and an fsync. Here each connection's WAL
 * hook (sqlite3_wal_hook, which replaces the automatic checkpoint:
 * https://www.sqlite.org/c3ref/wal_hook.html) only notes that the WAL grew by CHECKPOINT_PAGES
 * frames since the last checkpoint; when that job's done callback runs on the loop, a separate
 * job checkpoints on another connection while commits go on. Its mode is chosen there:
 *   - PASSIVE while other jobs are queued or running: it copies what is in the WAL and blocks
 *     nobody. It cannot start the WAL over (new frames keep coming), so the WAL grows past
 *     CHECKPOINT_PAGES while the load lasts.
 *   - PASSIVE then RESTART when the pool is idle (no other job queued or running), and once
 *     more as soon as it goes idle after PASSIVE rounds: the next writer then starts the WAL from
 *     its beginning. The RESTART step runs with no busy wait (it gives up at once on a writer or
 *     reader), so a request arriving meanwhile waits at most for the copy of a short tail.
 *   - PASSIVE then RESTART with the usual busy timeout when the WAL has reached RESTART_PAGES
 *     even so (a load that never pauses): the writers then wait for the tail's copy and two
 *     fsyncs (15-100 ms measured at 512 MB), about once per RESTART_PAGES frames (every ~5 s at
 *     7,000 admissions/s) instead of once per CHECKPOINT_PAGES, and the WAL stays bounded. The
 *     bound trades disk and wal-index search for fewer stalls: at 128 MB the stalls came every
 *     ~1.5 s and p99 was 4.9x p50 over 60 s, at 512 MB 2.6-2.85x (bench/README.md).
 * RESTART (a writer lock held while the tail is copied and both files are synced) is what made
 * the admission latency tail: one stall of 8-30 ms every ~0.6 s at 10,000 admissions/s. The
 * WAL file keeps its largest size on disk (up to ~512 MB; tg_db.c). One checkpoint job at a time; a
 * crossing during it waits for it to end.
 *
 * PostgreSQL (tg_db_dialect): the warm connection and the checkpoints are SQLite's matters. A
 * PostgreSQL pool sets no WAL hook, so it never queues a checkpoint job, and takes the lowest
 * idle connection (the server's shared buffers are one cache for all of them).
 */
#include "tg_dbq.h"
#include "tg_db_sqlite.h"
#include "tg_err.h"

#include "tg_log.h"

#include <stdlib.h>

#define MAX_CONNS 32
#define CHECKPOINT_PAGES 8000 /* new WAL frames (4 KB pages: 32 MB) that start a checkpoint */
#define BUSY_MS 5000          /* busy timeout of the pool's connections */
#define IDLE_RETRY_MS 100     /* an idle RESTART is tried at most this often */
#define RESTART_FACTOR 16     /* RESTART_PAGES = 16 x CHECKPOINT_PAGES (512 MB): restart anyway */

enum ckpt_mode { CKPT_PASSIVE, CKPT_IDLE_RESTART, CKPT_RESTART };

struct tg_dbq {
  uv_loop_t *loop;
  tg_db *conns[MAX_CONNS];
  int n;
  unsigned free_mask;
  int warm; /* the connection that wrote last (guarded by mu) */
  uv_mutex_t mu;
  uv_cond_t cv;
  size_t pending;
  int ckpt_pages;           /* new WAL frames that ask for a checkpoint (guarded by mu); 0: never */
  int ckpt_base;            /* WAL frames at the last checkpoint, 0 after a restart (mu) */
  int wal_frames;           /* WAL frames at the last commit (guarded by mu) */
  int ckpt_wanted;          /* set by a WAL hook (guarded by mu), taken by the loop */
  unsigned long ckpt_done;  /* checkpoint jobs completed (loop thread only) */
  int ckpt_running;         /* a checkpoint job is queued or running (loop thread only) */
  int ckpt_dirty;           /* checkpoint jobs since the WAL last restarted (loop thread only) */
  enum ckpt_mode ckpt_mode; /* of the job queued or running (loop thread only) */
  int ckpt_restarted;       /* that job restarted the WAL (set by the job, read in its done) */
  unsigned long submitted;  /* jobs submitted so far (guarded by mu) */
  unsigned long ckpt_seq;   /* submitted when the idle RESTART was chosen (guarded by mu) */
  uint64_t ckpt_idle_at;    /* uv_now when an idle RESTART was last tried (loop thread) */
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
  if (pages < q->ckpt_base) /* a writer started the WAL over */
    q->ckpt_base = 0;
  q->wal_frames = pages;
  if (q->ckpt_pages > 0 && pages - q->ckpt_base >= q->ckpt_pages)
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
    if ((rc = tg_db_open(&q->conns[i], path, BUSY_MS))) {
      tg_dbq_free(q);
      return rc;
    }
    if (tg_db_dialect(q->conns[i]) == TG_DB_SQLITE)
      sqlite3_wal_hook(tg_db_sqlite_handle(q->conns[i]), on_wal, q);
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
  sqlite3 *h;
  sqlite3_int64 changes = 0;
  int i, wrote;

  uv_mutex_lock(&q->mu);
  while (!q->free_mask)
    uv_cond_wait(&q->cv, &q->mu);
  i = q->free_mask & (1u << q->warm) ? q->warm : __builtin_ctz(q->free_mask);
  q->free_mask &= ~(1u << i);
  uv_mutex_unlock(&q->mu);

  h = tg_db_sqlite_handle(q->conns[i]); /* NULL on PostgreSQL */
  if (h)
    changes = sqlite3_total_changes64(h);
  j->status = j->work(q->conns[i], j->arg);
  tg_db_rollback(q->conns[i]); /* a job that forgot to end its transaction must not leak it */
  wrote = h && sqlite3_total_changes64(h) != changes;

  uv_mutex_lock(&q->mu);
  if (wrote)
    q->warm = i;
  q->free_mask |= 1u << i;
  uv_cond_signal(&q->cv);
  uv_mutex_unlock(&q->mu);
}

/* Pool thread: no job was submitted since the idle RESTART job (the pool is still idle). */
static int still_idle(tg_dbq *q)
{
  int idle;
  uv_mutex_lock(&q->mu);
  idle = q->submitted == q->ckpt_seq + 1;
  uv_mutex_unlock(&q->mu);
  return idle;
}

static int checkpoint_work(tg_db *db, void *arg)
{
  tg_dbq *q = arg;
  sqlite3 *h = tg_db_sqlite_handle(db);
  int log_frames = 0, done_frames = 0, rc, restart;
  uint64_t t0;
  /* PASSIVE copies the bulk while commits go on; RESTART then copies the few frames added
   * meanwhile and makes the next writer start the WAL over from its beginning. */
  if (q->ckpt_mode == CKPT_IDLE_RESTART && !still_idle(q))
    return 0; /* the load did not pause after all */
  rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done_frames);
  restart = q->ckpt_mode == CKPT_RESTART || (q->ckpt_mode == CKPT_IDLE_RESTART && still_idle(q));
  if (rc == SQLITE_OK && restart) {
    t0 = uv_hrtime();
    if (q->ckpt_mode == CKPT_IDLE_RESTART)
      sqlite3_busy_timeout(h, 0);
    rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_RESTART, &log_frames, &done_frames);
    sqlite3_busy_timeout(h, BUSY_MS);
    q->ckpt_restarted = rc == SQLITE_OK;
    /* the writers' stall: one line each, rare (a pause in the load, or RESTART_PAGES) */
    tg_info("db_checkpoint_restart", "{s:b, s:i, s:i, s:b}", "idle",
            q->ckpt_mode == CKPT_IDLE_RESTART, "wal_frames", log_frames, "blocked_us",
            (int)((uv_hrtime() - t0) / 1000), "busy", rc == SQLITE_BUSY);
  }
  uv_mutex_lock(&q->mu);
  q->ckpt_base = q->ckpt_restarted ? 0 : done_frames;
  if (q->ckpt_restarted) /* writers waited for it: no commit since */
    q->wal_frames = 0;
  uv_mutex_unlock(&q->mu);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) /* BUSY: another checkpoint, or readers stayed */
    return tg_db_sqlite_err(db, rc, "wal checkpoint");
  tg_debug("db_checkpoint", "{s:i, s:i, s:b}", "wal_frames", log_frames, "checkpointed",
           done_frames, "busy", rc == SQLITE_BUSY);
  return 0;
}

static void checkpoint_done(void *arg, int status)
{
  tg_dbq *q = arg;
  (void)status; /* an error was logged by tg_db_sqlite_err; the next crossing tries again */
  q->ckpt_running = 0;
  q->ckpt_done++;
  q->ckpt_dirty = q->ckpt_restarted ? 0 : q->ckpt_dirty + 1;
  q->ckpt_restarted = 0;
  /* Commits during the checkpoint were counted against the base it leaves behind. */
  uv_mutex_lock(&q->mu);
  q->ckpt_wanted = q->ckpt_pages > 0 && q->wal_frames - q->ckpt_base >= q->ckpt_pages;
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

/* Loop thread: starts the checkpoint job a WAL hook asked for, or the RESTART that PASSIVE
 * rounds left due once the pool is idle, unless a checkpoint job is running. */
static void maybe_checkpoint(tg_dbq *q)
{
  int wanted, frames, restart_pages, idle;
  if (q->ckpt_running)
    return;
  uv_mutex_lock(&q->mu);
  wanted = q->ckpt_wanted;
  q->ckpt_wanted = 0;
  frames = q->wal_frames;
  restart_pages = q->ckpt_pages * RESTART_FACTOR;
  q->ckpt_seq = q->submitted;
  uv_mutex_unlock(&q->mu);
  idle = q->pending == 0 && uv_now(q->loop) >= q->ckpt_idle_at + IDLE_RETRY_MS;
  if (!wanted && !(q->ckpt_dirty && idle))
    return;
  if (idle) {
    q->ckpt_mode = CKPT_IDLE_RESTART;
    q->ckpt_idle_at = uv_now(q->loop);
  } else if (frames >= restart_pages)
    q->ckpt_mode = CKPT_RESTART;
  else
    q->ckpt_mode = CKPT_PASSIVE;
  if (tg_dbq_submit(q, checkpoint_work, checkpoint_done, q) == 0)
    q->ckpt_running = 1;
}

static void on_after_work(uv_work_t *req, int status)
{
  job *j = req->data;
  tg_dbq *q = j->q;
  q->pending--;
  j->done(j->arg, status == UV_ECANCELED ? TG_ECANCELED : j->status);
  /* Not after a checkpoint job: an idle RESTART that gave up waits for other work to end
   * before it is tried again, instead of spinning against another process's transaction. */
  if (status != UV_ECANCELED && j->work != checkpoint_work)
    maybe_checkpoint(q);
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
  uv_mutex_lock(&q->mu);
  q->submitted++;
  uv_mutex_unlock(&q->mu);
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
