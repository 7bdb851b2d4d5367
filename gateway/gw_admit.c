/*
 * gw_admit: admission with the pre-queue provider check (DESIGN.md section 4), for
 *   POST /api/workflows/{id}/run        (RUN)
 *   POST /api/workflows/{id}/preflight  (PREFLIGHT: the same check, nothing written; inputs
 *                                        are validated when the body has them)
 *   POST /api/runs/{id}/retry           (RETRY: a failed/attention run through admission again)
 *
 * State machine:
 *   (loop) parse {"inputs", "tool_constraints"?}; hash of workflow id + body (RETRY: of the run
 *          id) for the Idempotency-Key.
 *   LOAD   (job) first sight of the user (not for PREFLIGHT, which writes nothing); RETRY: the
 *          run (404; 409 run_not_retryable unless failed/attention and not retried yet), whose
 *          workflow, inputs and tool_constraints are used again; the caller's workflow (404
 *          otherwise); an earlier run with the same Idempotency-Key (same hash: answer it again,
 *          202, nothing debited; other hash: 422 idempotency_key_reused); the user's
 *          connected_accounts rows with the toolkit slug.
 *   (loop) inputs against the Start node (422 invalid_inputs with per-field errors); scope
 *          (tg_check_scope: tool_constraints.providers ∪ prefixes of tool_constraints.tools, or
 *          without tool_constraints every ACTIVE provider of the user); the check through the
 *          per-user pool (gw_checkpool.c: fresh, shared only with checks that arrived before
 *          the call started, never cached).
 * Database steps are batched: LOAD and ADMIT each have a queue served by one job at a time,
 * which takes everything queued meanwhile (up to BATCH_MAX); ADMIT commits its whole batch in
 * one transaction (group commit) without savepoints; only when an admission fails with an error
 * is the batch rolled back and done again with a savepoint per admission (admit_batch).
 *   ADMIT  (job, one BEGIN IMMEDIATE transaction under gw_write_lock) write the observed
 *          statuses back; when the check said ok: idempotency key again (a concurrent twin may
 *          have won), RETRY: claim the old run (metadata.retried_by, once), credits (402
 *          insufficient_credits, nothing admitted), debit, workflow_runs row 'queued' with the
 *          scope in metadata.tool_constraints, credit_ledger row 'run_admitted'.
 *   (loop) 202 {run_id, status:"queued"} | 409 oauth_refresh_required | 503 composio_unavailable
 *   | 502 composio_auth_failed (Composio refused our platform API key: not retryable)
 *          with Retry-After | 402 | 422.
 * One "admission" log line per decision (user_id, workflow_id, run_id, blocked_providers), and
 * a counter per decision in /metrics.
 */
#include "gw.h"
#include "gw_secrets.h"
#include "tg_workflow.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEM_MAX 200

enum { LOAD, ADMIT };
enum { RUN, PREFLIGHT, RETRY };

typedef struct admit_ctx {
  gw_job j;
  struct admit_ctx *next; /* in a batch queue */
  int err;                /* the work's result for this request (batch jobs) */
  int mode;               /* RUN, PREFLIGHT, RETRY */
  int step;
  char wf_id[GW_USER_MAX + 1];
  char retry_of[GW_USER_MAX + 1]; /* RETRY: the run retried */
  char run_id[64];
  char *idem_key;                              /* NULL without the header */
  char hash[crypto_generichash_BYTES * 2 + 1]; /* request_hash */
  json_t *inputs;                              /* object */
  json_t *tc;     /* tool_constraints given (NULL: none), then what the run stores */
  char *def_text; /* LOAD: the workflow's definition as stored (NULL: no such workflow) */
  size_t def_len;
  json_t *def;        /* parsed (shared with the definition cache; loop thread only) */
  tg_check_row *crow; /* LOAD: connected accounts (tg_store_runs_read_check_rows) */
  size_t n_rows;
  json_t *scope;
  tg_check_result *check;
  const char *decision; /* for the log line */
  int metric;           /* GW_ADM_* */
  int no_inputs;        /* PREFLIGHT without "inputs": the check only */
  json_t *secrets;      /* secret inputs, sealed into the run's row (gw_secrets.c) */
} admit_ctx;
GW_JOB_FIRST(admit_ctx);

static void ctx_free(admit_ctx *c)
{
  json_decref(c->j.body);
  free(c->idem_key);
  json_decref(c->inputs);
  json_decref(c->tc);
  free(c->def_text);
  json_decref(c->def);
  tg_store_runs_check_rows_free(c->crow, c->n_rows);
  json_decref(c->scope);
  tg_check_result_free(c->check);
  json_decref(c->secrets);
  free(c);
}

static void decide(admit_ctx *c, const char *decision, int metric)
{
  c->decision = decision;
  c->metric = metric;
}

static void log_decision(admit_ctx *c)
{
  static json_t *none; /* [] when nothing is blocked (immutable, shared) */
  const json_t *blocked = c->check && c->check->outcome == TG_CHECK_BLOCKED && c->check->providers
                              ? c->check->providers
                              : (none ? none : (none = json_array()));
  const tg_log_field kv[] = {
      {.key = "user_id", .type = TG_KV_STR, .s = c->j.user},
      {.key = "workflow_id", .type = TG_KV_STR, .s = c->wf_id},
      {.key = "run_id", .type = TG_KV_STR, .s = *c->run_id ? c->run_id : NULL},
      {.key = "decision", .type = TG_KV_STR, .s = c->decision ? c->decision : "error"},
      {.key = "http_status", .type = TG_KV_INT, .i = c->j.status},
      {.key = "blocked_providers", .type = TG_KV_JSON, .j = blocked},
      {.key = "retry_of", .type = TG_KV_STR, .s = *c->retry_of ? c->retry_of : NULL},
  };
  tg_log_kv(c->j.status >= 500 ? TG_LOG_WARN : TG_LOG_INFO,
            c->mode == PREFLIGHT ? "preflight" : "admission", kv, sizeof kv / sizeof kv[0]);
}

/* Answers from the outcome, logs the decision, counts it, frees c. */
static void reply(admit_ctx *c, const char *const *headers)
{
  if (!c->decision) {
    if (c->j.status == 404)
      decide(c, "not_found", GW_ADM_NOT_FOUND);
    else if (c->j.status >= 400 && c->j.status < 500)
      decide(c, c->j.code ? c->j.code : "invalid_request", GW_ADM_INVALID);
    else
      decide(c, "error", GW_ADM_ERROR);
  }
  log_decision(c);
  if (c->mode == PREFLIGHT)
    c->j.app->metrics.preflights++;
  else
    gw_metrics_admission(c->j.app, c->metric);
  gw_job_reply(&c->j, headers);
  ctx_free(c);
}

/* Looks up an earlier run with the same key (work side). 1: answered (replay or conflict),
 * 0: no such run, < 0: error. */
static int idem_lookup(tg_db *db, admit_ctx *c)
{
  int rc;
  json_t *row;
  const char *hash;
  if (!c->idem_key)
    return 0;
  row = tg_store_runs_find_idem(db, &rc, c->j.user, c->idem_key);
  if (!row)
    return rc == TG_ENOTFOUND ? 0 : rc;
  hash = json_string_value(json_object_get(row, "request_hash"));
  if (hash && strcmp(hash, c->hash) == 0) {
    snprintf(c->run_id, sizeof c->run_id, "%s", json_string_value(json_object_get(row, "id")));
    c->j.status = 202;
    c->j.body = json_pack("{s:s, s:O, s:b}", "run_id", c->run_id, "status",
                          json_object_get(row, "status"), "idempotent_replay", 1);
    decide(c, "replayed", GW_ADM_REPLAYED);
  } else {
    gw_job_fail(&c->j, 422, "idempotency_key_reused",
                "This Idempotency-Key was used for a different request.");
    decide(c, "idempotency_key_reused", GW_ADM_CONFLICT);
  }
  json_decref(row);
  return 1;
}

/* RETRY: the run to retry, whose workflow, inputs and scope are used again. */
static int load_retry(tg_db *db, admit_ctx *c)
{
  int rc;
  const char *st;
  json_t *meta;
  json_t *run = tg_store_runs_get(db, &rc, c->retry_of, c->j.user);
  if (!run) {
    if (rc != TG_ENOTFOUND)
      return rc;
    gw_job_fail(&c->j, 404, "not_found", "No such run.");
    decide(c, "not_found", GW_ADM_NOT_FOUND);
    return 1;
  }
  snprintf(c->wf_id, sizeof c->wf_id, "%s", json_string_value(json_object_get(run, "workflow_id")));
  st = json_string_value(json_object_get(run, "status"));
  meta = json_object_get(run, "metadata");
  if (!tg_store_runs_retryable(st) || json_object_get(meta, "retried_by")) {
    gw_job_fail(&c->j, 409, "run_not_retryable",
                "Only a failed run or one waiting for re-authorisation can be retried, once.");
    c->j.body =
        json_pack("{s:s?, s:O?}", "status", st, "retried_by", json_object_get(meta, "retried_by"));
    decide(c, "run_not_retryable", GW_ADM_CONFLICT);
    json_decref(run);
    return 1;
  }
  c->inputs = json_incref(json_object_get(run, "inputs"));
  if (!json_is_object(c->inputs)) {
    json_decref(c->inputs);
    c->inputs = json_object();
  }
  if ((rc = gw_secrets_restore(db, c->j.app, c->retry_of, c->j.user, c->inputs)) != 0) {
    json_decref(run);
    return rc;
  }
  if (json_is_object(json_object_get(meta, "tool_constraints")))
    c->tc = json_incref(json_object_get(meta, "tool_constraints"));
  json_decref(run);
  return 0;
}

static int load(tg_db *db, admit_ctx *c)
{
  int rc;
  if (c->mode != PREFLIGHT &&
      (rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits)))
    return rc;
  if (c->mode == RETRY && (rc = load_retry(db, c)) != 0)
    return rc < 0 ? rc : 0;
  if ((rc = tg_store_runs_read_definition(db, c->wf_id, c->j.user, &c->def_text, &c->def_len)))
    return rc;
  if (!c->def_text) {
    gw_job_fail(&c->j, 404, "not_found", "No such workflow.");
    decide(c, "not_found", GW_ADM_NOT_FOUND);
    return 0;
  }
  if (c->mode != PREFLIGHT && (rc = idem_lookup(db, c)) != 0)
    return rc < 0 ? rc : 0;
  return tg_store_runs_read_check_rows(db, c->j.user, &c->crow, &c->n_rows);
}

/* ---- parsed definitions, cached on the loop thread ----
 * Keyed by workflow id and validated by the stored text itself: an entry is used only when the
 * text read in this admission's LOAD step is byte for byte the cached one, so an edited
 * workflow is never answered from an old parse (no reliance on updated_at resolution). Only the
 * parse is cached; every admission still reads the row (ownership, existence) and checks its
 * inputs. Set-associative (DEF_WAYS slots per set, least recently used replaced), so a few
 * thousand workflows share the slots without evicting each other by collision; bounded in slots
 * and in cached text bytes. */
#define DEF_SLOTS 4096
#define DEF_WAYS 8
#define DEF_SETS (DEF_SLOTS / DEF_WAYS)
#define DEF_MAX_TEXT (64u << 10) /* larger definitions are parsed every time */
#define DEF_MAX_TOTAL (8u << 20) /* cached text bytes, all slots */

static struct def_slot {
  char *wf_id;
  char *text;
  size_t len;
  json_t *def;
  uint64_t used; /* defcache_tick at the last hit or fill */
} defcache[DEF_SLOTS];
static size_t defcache_bytes;
static uint64_t defcache_tick;

static void def_slot_clear(struct def_slot *s)
{
  defcache_bytes -= s->wf_id ? s->len : 0;
  free(s->wf_id);
  free(s->text);
  json_decref(s->def);
  memset(s, 0, sizeof *s);
}

void gw_admit_cleanup(void)
{
  for (size_t i = 0; i < DEF_SLOTS; i++)
    def_slot_clear(&defcache[i]);
}

static json_t *parse_definition(const char *text, size_t len)
{
  json_t *def = json_loadb(text, len, JSON_DECODE_ANY, NULL);
  return def ? def : json_stringn(text, len); /* as tg_db's _json columns: invalid stays text */
}

/* The slot of c's workflow in its set (a hit when its text is c's), or the one to replace: the
 * slot holding the same id with other text, else an empty one, else the least recently used. */
static struct def_slot *def_lookup(const admit_ctx *c)
{
  uint32_t h = 2166136261u;
  struct def_slot *set, *victim = NULL;
  for (const char *p = c->wf_id; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  set = &defcache[(h % DEF_SETS) * DEF_WAYS];
  for (int i = 0; i < DEF_WAYS; i++) {
    struct def_slot *s = &set[i];
    if (s->wf_id && strcmp(s->wf_id, c->wf_id) == 0)
      return s;
    if (!victim || (victim->wf_id && (!s->wf_id || s->used < victim->used)))
      victim = s;
  }
  return victim;
}

/* c->def from c->def_text, through the cache. NULL only when memory runs out. */
static json_t *definition(admit_ctx *c)
{
  struct def_slot *s = def_lookup(c);
  json_t *def;
  if (s->wf_id && s->len == c->def_len && strcmp(s->wf_id, c->wf_id) == 0 &&
      memcmp(s->text, c->def_text, c->def_len) == 0) {
    s->used = ++defcache_tick;
    return json_incref(s->def);
  }
  def = parse_definition(c->def_text, c->def_len);
  if (!def || c->def_len > DEF_MAX_TEXT)
    return def;
  def_slot_clear(s);
  if (defcache_bytes + c->def_len > DEF_MAX_TOTAL)
    return def;
  s->wf_id = strdup(c->wf_id);
  if (!s->wf_id)
    return def;
  s->text = c->def_text; /* moved: c no longer needs it */
  c->def_text = NULL;
  s->len = c->def_len;
  s->def = json_incref(def);
  s->used = ++defcache_tick;
  defcache_bytes += s->len;
  return def;
}

/* Writes what Composio reported back onto the user's rows (inside the open transaction). */
static int write_back(tg_db *db, admit_ctx *c)
{
  return tg_check_write_back(db, c->j.user, c->check, tg_now_ms(), NULL);
}

/*
 * A new run id: "run_", the creation time in ms (12 hex digits), 12 random bytes (24 hex). The
 * time prefix makes consecutive ids neighbours in workflow_runs' primary-key index and in
 * credit_ledger_run, so a group commit appends to one page of each instead of dirtying a random
 * page per run (fewer WAL frames per admission); the random part keeps ids unguessable.
 */
static void new_run_id(char *buf, size_t size, int64_t now_ms)
{
  char rnd[32];
  tg_random_id(rnd, sizeof rnd, NULL, 12);
  snprintf(buf, size, "run_%012llx%s", (unsigned long long)now_ms & 0xffffffffffffULL, rnd);
}

/* One admission inside the batch's open transaction (with or without a savepoint: on an error
 * the caller rolls back what it wrote). */
static int admit_one(tg_db *db, admit_ctx *c)
{
  int64_t now = tg_now_ms(), cost = c->j.app->cfg.run_cost, credits = 0;
  json_t *meta;
  int rc, changes = 0;
  if ((rc = write_back(db, c)) != 0)
    return rc;
  if (c->check->outcome != TG_CHECK_OK)
    return 0;
  if ((rc = idem_lookup(db, c)) != 0)
    return rc < 0 ? rc : 0;
  new_run_id(c->run_id, sizeof c->run_id, now);
  if (c->mode == RETRY) {
    /* The credits first (a 402 must not claim the old run), then the claim. */
    if ((rc = tg_store_credits_balance(db, c->j.user, &credits)) != 0 && rc != TG_ENOTFOUND)
      return rc;
    if (credits >= cost) {
      /* 0 changes: a concurrent retry won. */
      if ((rc = tg_store_runs_mark_retried(db, c->retry_of, c->j.user, c->run_id, &changes)))
        return rc;
      if (changes == 0) {
        *c->run_id = 0;
        gw_job_fail(&c->j, 409, "run_not_retryable", "This run was retried already.");
        decide(c, "run_not_retryable", GW_ADM_CONFLICT);
        return 0;
      }
    }
  }
  /* The credits check, the debit and its ledger row (RETRY: already checked above, in the same
   * transaction, so it cannot fail after the claim). */
  if (c->mode == RETRY && credits < cost)
    rc = 0;
  else if ((rc = tg_store_credits_debit(db, c->j.user, c->run_id, cost, now, &credits)) < 0)
    return rc;
  if (rc == 0) {
    *c->run_id = 0;
    gw_job_fail(&c->j, 402, "insufficient_credits", "Not enough credits to run this workflow.");
    c->j.body = json_pack("{s:I, s:I}", "credits", (json_int_t)credits, "cost", (json_int_t)cost);
    decide(c, "insufficient_credits", GW_ADM_INSUFFICIENT_CREDITS);
    return 0; /* keeps the write-back, admits nothing */
  }
  meta = json_pack("{s:O}", "tool_constraints", c->tc);
  if (meta && *c->retry_of && json_object_set_new(meta, "retry_of", json_string(c->retry_of))) {
    json_decref(meta);
    meta = NULL;
  }
  if (!meta)
    return TG_ENOMEM;
  rc = tg_store_runs_insert(db, &(tg_run_new){.run_id = c->run_id,
                                              .workflow_id = c->wf_id,
                                              .user_id = c->j.user,
                                              .inputs = c->inputs,
                                              .metadata = meta,
                                              .idempotency_key = c->idem_key,
                                              .request_hash = c->hash,
                                              .cost = cost,
                                              .now_ms = now});
  json_decref(meta);
  if (rc == 0)
    rc = tg_crypto_store_run_secrets(db, c->j.app->crypto, c->run_id, c->j.user, c->secrets);
  if (rc != 0)
    return rc;
  c->j.status = 202;
  c->j.body = json_pack("{s:s, s:s}", "run_id", c->run_id, "status", "queued");
  if (c->j.body && *c->retry_of)
    json_object_set_new(c->j.body, "retry_of", json_string(c->retry_of));
  decide(c, "queued", GW_ADM_QUEUED);
  return 0;
}

/* Forgets what a work step decided for c (its writes were rolled back). */
static void outcome_reset(admit_ctx *c)
{
  json_decref(c->j.body);
  c->j.body = NULL;
  c->j.status = 0;
  c->decision = NULL;
  *c->run_id = 0;
}

/* The safe way: each admission under its own savepoint, so that one failure rolls back only its
 * own writes (every page first touched inside a savepoint is copied to the statement journal,
 * which is why this is not the usual path). Inside the open transaction; returns the error
 * that ends the transaction (then the caller rolls back), or 0. */
static int admit_each_savepoint(tg_db *db, admit_ctx *list)
{
  int rc = 0;
  for (admit_ctx *c = list; c && rc == 0; c = c->next) {
    if ((c->err = tg_db_exec(db, NULL, "SAVEPOINT admit", "")) != 0)
      continue;
    c->err = admit_one(db, c);
    if (c->err) {
      outcome_reset(c);
      tg_db_exec(db, NULL, "ROLLBACK TO admit", "");
    }
    rc = tg_db_exec(db, NULL, "RELEASE admit", "");
  }
  return rc;
}

/*
 * Group commit: every admission of the batch in ONE transaction. An answer (202 included) is
 * sent only after COMMIT returned; if COMMIT fails, every admission of the batch fails and
 * nothing of it exists. Sharing the transaction divides the WAL pages written (and the fsyncs
 * of checkpoints) by the batch size.
 * Fast path: no savepoints. A decision (402, 409, replay, 202) is not a failure; a failure is an
 * admission whose work returned an error (a real SQLite error, out of memory): its writes so far
 * are mixed with the others', so the whole transaction is rolled back, every outcome forgotten
 * (decide() only records; the log line and the counter happen at reply, once), and the batch is
 * done again the safe way (admit_each_savepoint), where the failure undoes only its own writes.
 * A batch of one needs no second pass: the rollback undid exactly its writes.
 */
static int admit_batch(tg_db *db, admit_ctx *list)
{
  admit_ctx *failed = NULL;
  size_t n = 0;
  int rc;
  gw_write_lock();
  rc = tg_db_begin(db, 1);
  for (admit_ctx *c = list; c && rc == 0 && !failed; c = c->next)
    if ((c->err = admit_one(db, c)) != 0)
      failed = c;
  if (failed && list->next) {
    tg_db_rollback(db);
    for (admit_ctx *c = list; c; c = c->next)
      n++;
    tg_warn("admission_batch_redo", "{s:i, s:s, s:i}", "batch", (int)n, "user_id", failed->j.user,
            "error", failed->err);
    for (admit_ctx *c = list; c; c = c->next) {
      outcome_reset(c);
      c->err = 0;
    }
    rc = tg_db_begin(db, 1);
    if (rc == 0)
      rc = admit_each_savepoint(db, list);
  } else if (failed) {
    tg_db_rollback(db);
    outcome_reset(failed);
    gw_write_unlock();
    return 0; /* its c->err answers it */
  }
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0) {
    tg_db_rollback(db);
    for (admit_ctx *c = list; c; c = c->next) {
      outcome_reset(c);
      c->err = rc;
    }
  }
  gw_write_unlock();
  return 0;
}

/* ---- batch queues: one job at a time per step, taking everything queued meanwhile ---- */

#define BATCH_MAX 128

typedef struct admit_queue {
  admit_ctx *head, **tail; /* waiting (loop side) */
  admit_ctx *batch;        /* owned by the running job */
  int running;
  int step; /* LOAD or ADMIT */
} admit_queue;

/* One gw_app per process (gw.h), so the queues are file-level. */
static admit_queue loadq = {NULL, &loadq.head, NULL, 0, LOAD};
static admit_queue admitq = {NULL, &admitq.head, NULL, 0, ADMIT};

static void admit_done(void *arg, int status);

static int batch_work(tg_db *db, void *arg)
{
  admit_queue *q = arg;
  if (q->step == ADMIT)
    return admit_batch(db, q->batch);
  for (admit_ctx *c = q->batch; c; c = c->next)
    c->err = load(db, c);
  return 0;
}

static void queue_kick(gw_app *app, admit_queue *q);

static void batch_done(void *arg, int status)
{
  admit_queue *q = arg;
  admit_ctx *c = q->batch, *next;
  gw_app *app = c ? c->j.app : NULL;
  q->batch = NULL;
  q->running = 0;
  for (; c; c = next) {
    next = c->next;
    c->next = NULL;
    admit_done(c, status ? status : c->err);
  }
  if (app && q->head)
    queue_kick(app, q);
}

/* Starts a job over what q holds (up to BATCH_MAX); when the pool refuses, answers them all. */
static void queue_kick(gw_app *app, admit_queue *q)
{
  admit_ctx **pp = &q->head;
  int n = 0, rc;
  if (q->running || !q->head)
    return;
  while (*pp && n < BATCH_MAX) {
    pp = &(*pp)->next;
    n++;
  }
  q->batch = q->head;
  q->head = *pp;
  *pp = NULL;
  if (!q->head)
    q->tail = &q->head;
  q->running = 1;
  rc = app->stopping ? TG_ECANCELED : tg_dbq_submit(app->dbq, batch_work, batch_done, q);
  if (rc != 0) {
    q->running = 0;
    while (q->batch) {
      admit_ctx *c = q->batch;
      q->batch = c->next;
      c->next = NULL;
      outcome_reset(c);
      gw_job_fail_err(&c->j, rc == TG_ECANCELED ? rc : TG_EBUSY);
      reply(c, NULL);
    }
  }
}

/* Queues c for its next database step. */
static void enqueue(admit_ctx *c, int step)
{
  admit_queue *q = step == LOAD ? &loadq : &admitq;
  c->step = step;
  c->next = NULL;
  *q->tail = c;
  q->tail = &c->next;
  queue_kick(c->j.app, q);
}

/* Answers a check that did not say ok: 409 with the providers, or 503 with Retry-After. */
static void answer_not_ok(admit_ctx *c)
{
  char hdr[64];
  const char *headers[] = {hdr, NULL};
  if (c->check->outcome == TG_CHECK_BLOCKED) {
    c->j.status = 409;
    decide(c, "blocked", GW_ADM_BLOCKED);
    tg_httpd_respond_json(c->j.req, 409, NULL, tg_check_409_body(c->check));
    c->j.req = NULL;
    reply(c, NULL);
    return;
  }
  if (c->check->broker_auth) {
    /* Our platform key was refused: waiting will not fix it, so no Retry-After. */
    gw_job_fail(&c->j, 502, "composio_auth_failed",
                "Composio rejected the platform API key; an operator must fix COMPOSIO_API_KEY.");
    decide(c, "unavailable", GW_ADM_UNAVAILABLE);
    reply(c, NULL);
    return;
  }
  long ms = c->check->retry_after_ms > 0 ? c->check->retry_after_ms : 5000;
  snprintf(hdr, sizeof hdr, "Retry-After: %ld", (ms + 999) / 1000);
  gw_job_fail(&c->j, 503, "composio_unavailable",
              "Composio could not confirm the connections; try again later.");
  c->j.body =
      json_pack("{s:s?, s:I}", "detail", c->check->detail, "retry_after_ms", (json_int_t)ms);
  decide(c, "unavailable", GW_ADM_UNAVAILABLE);
  reply(c, headers);
}

/* The check's answer: PREFLIGHT answers now; the others write back what Composio reported and,
 * when ok, admit, in one transaction. */
static void on_check(void *arg, tg_check_result *res)
{
  admit_ctx *c = arg;
  c->check = res;
  if (c->mode == PREFLIGHT && res->outcome != TG_CHECK_UNAVAILABLE) {
    c->j.status = 200;
    c->j.body = json_pack("{s:b, s:O, s:O, s:O}", "ok", res->outcome == TG_CHECK_OK, "providers",
                          res->providers, "reasons", res->reasons, "scope", c->scope);
    decide(c, res->outcome == TG_CHECK_OK ? "ok" : "blocked",
           res->outcome == TG_CHECK_OK ? GW_ADM_QUEUED : GW_ADM_BLOCKED);
    reply(c, NULL);
    return;
  }
  if (c->mode == PREFLIGHT || (res->outcome != TG_CHECK_OK && !json_array_size(res->observed))) {
    answer_not_ok(c); /* nothing to write */
    return;
  }
  enqueue(c, ADMIT);
}

/* After LOAD: inputs, scope, check. */
static void check(admit_ctx *c)
{
  json_t *errors;
  tg_check_result *now = NULL;
  int rc;
  if (!(c->def = definition(c))) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    reply(c, NULL);
    return;
  }
  errors = c->no_inputs ? NULL : tg_workflow_validate_inputs(c->def, c->inputs);
  if (errors) {
    gw_job_fail(&c->j, 422, "invalid_inputs", "The run inputs do not match the workflow.");
    c->j.body = json_pack("{s:o}", "errors", errors);
    decide(c, "invalid_inputs", GW_ADM_INVALID);
    reply(c, NULL);
    return;
  }
  if (gw_secrets_split(&c->j, c->def, c->inputs, &c->secrets) != 0) {
    reply(c, NULL); /* 503 secret_key_missing: never stored in clear */
    return;
  }
  /* DESIGN.md section 4: tool_constraints, or else every ACTIVE provider of the user. The run
   * stores the scope it was admitted with, so the worker's guard checks the same providers. */
  c->scope = tg_check_scope(c->tc, c->crow, c->n_rows);
  if (c->scope && !c->tc)
    c->tc = json_pack("{s:O}", "providers", c->scope);
  if (!c->scope || !c->tc) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    reply(c, NULL);
    return;
  }
  rc = gw_check(c->j.app, c->j.user, c->scope, c->crow, c->n_rows, on_check, c, &now);
  if (rc != 0) {
    gw_job_fail_err(&c->j, rc);
    reply(c, NULL);
    return;
  }
  if (now)
    on_check(c, now);
}

static void admit_done(void *arg, int status)
{
  admit_ctx *c = arg;
  if (status != 0) {
    json_decref(c->j.body);
    c->j.body = NULL;
    c->decision = NULL;
    gw_job_fail_err(&c->j, status);
    reply(c, NULL);
    return;
  }
  if (c->step == LOAD) {
    if (c->j.status != 0) {
      reply(c, NULL);
      return;
    }
    if (c->j.app->stopping) {
      gw_job_fail_err(&c->j, TG_ECANCELED);
      reply(c, NULL);
      return;
    }
    check(c);
    return;
  }
  if (c->check->outcome != TG_CHECK_OK) {
    answer_not_ok(c);
    return;
  }
  reply(c, NULL); /* queued, replayed, 402, 409 or 422 from the transaction */
}

static admit_ctx *ctx_new(gw_app *app, tg_httpd_req *req, const char *user, int mode)
{
  admit_ctx *c = gw_job_new(app, req, user, sizeof *c);
  if (c)
    c->mode = mode;
  return c;
}

/* Idempotency-Key header and the request hash over the given parts (NUL-separated). Returns 0,
 * or answers (400) and frees c. */
static int idem_setup(admit_ctx *c, const char *a, const char *b, size_t b_len)
{
  const char *idem = tg_httpd_header(c->j.req, "Idempotency-Key");
  unsigned char h[crypto_generichash_BYTES];
  crypto_generichash_state st;
  if (idem && (strlen(idem) == 0 || strlen(idem) > IDEM_MAX)) {
    gw_job_fail(&c->j, 400, "invalid_request", "Idempotency-Key must be 1 to 200 bytes.");
    reply(c, NULL);
    return -1;
  }
  if (idem && !(c->idem_key = strdup(idem))) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    reply(c, NULL);
    return -1;
  }
  crypto_generichash_init(&st, NULL, 0, sizeof h);
  crypto_generichash_update(&st, (const unsigned char *)a, strlen(a) + 1);
  crypto_generichash_update(&st, (const unsigned char *)b, b_len);
  crypto_generichash_final(&st, h, sizeof h);
  sodium_bin2hex(c->hash, sizeof c->hash, h, sizeof h);
  return 0;
}

static void submit_load(admit_ctx *c)
{
  enqueue(c, LOAD);
}

/* RUN and PREFLIGHT: the body {"inputs"?, "tool_constraints"?}; PREFLIGHT accepts no body. */
static void start_workflow(gw_app *app, tg_httpd_req *req, const char *user,
                           const char *workflow_id, int mode)
{
  size_t len = 0;
  const char *raw = tg_httpd_body(req, &len);
  json_t *body, *tc;
  admit_ctx *c;
  if (mode == PREFLIGHT && len == 0)
    body = json_object();
  else if (!(body = gw_parse_body(req))) {
    if (mode == RUN) /* answered 400 invalid_json; still a decision */
      gw_metrics_admission(app, GW_ADM_INVALID);
    return;
  }
  if (!(c = ctx_new(app, req, user, mode))) {
    json_decref(body);
    return;
  }
  snprintf(c->wf_id, sizeof c->wf_id, "%s", workflow_id);
  c->inputs = json_object_get(body, "inputs");
  tc = json_object_get(body, "tool_constraints");
  if ((c->inputs && !json_is_object(c->inputs)) ||
      (tc && !json_is_object(tc) && !json_is_null(tc))) {
    gw_job_fail(&c->j, 400, "invalid_json", "inputs and tool_constraints must be JSON objects.");
    json_decref(body);
    c->inputs = NULL;
    reply(c, NULL);
    return;
  }
  c->no_inputs = mode == PREFLIGHT && !c->inputs;
  c->inputs = c->inputs ? json_incref(c->inputs) : json_object();
  c->tc = json_is_object(tc) ? json_incref(tc) : NULL;
  json_decref(body);
  if (mode == RUN && idem_setup(c, c->wf_id, raw ? raw : "", len) != 0)
    return;
  submit_load(c);
}

void gw_run_admit(gw_app *app, tg_httpd_req *req, const char *user, const char *workflow_id)
{
  start_workflow(app, req, user, workflow_id, RUN);
}

void gw_run_preflight(gw_app *app, tg_httpd_req *req, const char *user, const char *workflow_id)
{
  start_workflow(app, req, user, workflow_id, PREFLIGHT);
}

void gw_run_retry(gw_app *app, tg_httpd_req *req, const char *user, const char *run_id)
{
  admit_ctx *c = ctx_new(app, req, user, RETRY);
  if (!c)
    return;
  snprintf(c->retry_of, sizeof c->retry_of, "%s", run_id);
  if (idem_setup(c, "retry", run_id, strlen(run_id)) != 0)
    return;
  submit_load(c);
}
