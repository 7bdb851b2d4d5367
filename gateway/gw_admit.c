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
 * Database steps are batched: LOAD and ADMIT each have a queue (gw_batch.c, in the gw_app)
 * served by one job at a time, which takes everything queued meanwhile; ADMIT commits its whole
 * batch in one transaction (group commit) without savepoints; only when an admission fails with
 * an error is the batch rolled back and done again with a savepoint per admission. The parse of
 * each workflow's definition is cached per gw_app (gw_defcache.c); nothing here is file-static.
 *   ADMIT  (job, one BEGIN IMMEDIATE transaction under gw_write_lock) write the observed
 *          statuses back; when the check said ok: idempotency key again (a concurrent twin may
 *          have won), RETRY: claim the old run (metadata.retried_by, once), credits (402
 *          insufficient_credits, nothing admitted), debit, workflow_runs row 'queued' with the
 *          scope in metadata.tool_constraints, credit_ledger row 'run_admitted'.
 *   (loop) 202 {run_id, status:"queued"} | 409 oauth_refresh_required | a Composio failure as
 *   gw_composio_fault.h maps it (503 composio_unavailable with Retry-After, 502
 *   composio_auth_failed, 502 composio_error) | 402 | 422.
 * One "admission" log line per decision (user_id, workflow_id, run_id, blocked_providers), and
 * a counter per decision in /metrics.
 */
#include "gw.h"
#include "gw_batch.h"
#include "gw_defcache.h"
#include "gw_secrets.h"
#include "tg_connector.h"
#include "tg_store_connectors.h"
#include "tg_workflow.h"
#include "tg_clock.h"
#include "tg_id.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEM_MAX 200

enum { RUN, PREFLIGHT, RETRY };

typedef struct admit_ctx {
  gw_job j;
  gw_batch_item bi; /* in app->loadq or app->admitq */
  int mode;         /* RUN, PREFLIGHT, RETRY */
  char wf_id[GW_USER_MAX + 1];
  char retry_of[GW_USER_MAX + 1]; /* RETRY: the run retried */
  char run_id[64];
  char *idem_key; /* NULL without the header */
  int idem_again; /* the insert met a twin's key (another gateway's commit): looked up again */
  char hash[crypto_generichash_BYTES * 2 + 1]; /* request_hash */
  json_t *inputs;                              /* object */
  json_t *tc;     /* tool_constraints given (NULL: none), then what the run stores */
  char *def_text; /* LOAD: the workflow's definition as stored (NULL: no such workflow) */
  size_t def_len;
  json_t *def;        /* parsed (shared with the definition cache; loop thread only) */
  json_t *uses;       /* derived from def once per parse: providers, connectors (gw_defcache) */
  tg_check_row *crow; /* LOAD: connected accounts (tg_store_runs_read_check_rows) */
  size_t n_rows;
  json_t *scope;
  tg_check_result *check;
  const char *decision; /* for the log line */
  int metric;           /* GW_ADM_* */
  int no_inputs;        /* PREFLIGHT without "inputs": the check only */
  json_t *secrets;      /* secret inputs, sealed into the run's row (gw_secrets.c) */
  json_t *blocked;      /* LOAD: the user's connectors that cannot run, id -> auth_status */
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
  json_decref(c->uses);
  tg_store_runs_check_rows_free(c->crow, c->n_rows);
  json_decref(c->scope);
  tg_check_result_free(c->check);
  json_decref(c->secrets);
  json_decref(c->blocked);
  free(c);
}

static void decide(admit_ctx *c, const char *decision, int metric)
{
  c->decision = decision;
  c->metric = metric;
}

static void log_decision(admit_ctx *c)
{
  json_t *none = NULL; /* [] when nothing is blocked */
  const json_t *blocked = c->check && c->check->outcome == TG_CHECK_BLOCKED && c->check->providers
                              ? c->check->providers
                              : (none = json_array());
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
  json_decref(none);
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
  if ((rc = tg_store_runs_read_check_rows(db, c->j.user, &c->crow, &c->n_rows)) != 0)
    return rc;
  /* MCP connectors whose authorization is missing or failed (one indexed read, usually none) */
  return (c->blocked = tg_store_connectors_blocked(db, &rc, c->j.user)) ? 0 : rc;
}

/* Adds the workflow's connectors that cannot run to the check's blocked providers
 * ("connector:<id>", reason not_connected or auth_refresh_required): the same 409. The
 * connectors the workflow names were derived once per parse (gw_defcache). */
static void block_connectors(admit_ctx *c, tg_check_result *res)
{
  json_t *named = json_object_get(c->uses, "connectors");
  if (!json_object_size(c->blocked) || !json_array_size(named))
    return;
  if (!res->providers)
    res->providers = json_array();
  if (!res->reasons)
    res->reasons = json_object();
  if (tg_connector_block(res->providers, res->reasons, named, c->blocked) > 0)
    res->outcome = TG_CHECK_BLOCKED;
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
    rc = tg_sealed_store_run_secrets(db, c->j.app->crypto, c->run_id, c->j.user, c->secrets);
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

static admit_ctx *ctx_of(gw_batch_item *it)
{
  return (admit_ctx *)((char *)it - offsetof(admit_ctx, bi));
}

/* ---- the two database steps, each a gw_batch queue ---- */

static int load_item(tg_db *db, gw_batch_item *it)
{
  return load(db, ctx_of(it));
}

static int admit_item(tg_db *db, gw_batch_item *it)
{
  return admit_one(db, ctx_of(it));
}

static void reset_item(gw_batch_item *it)
{
  outcome_reset(ctx_of(it));
}

static void redo_item(const gw_batch_item *failed, size_t n)
{
  tg_warn("admission_batch_redo", "{s:i, s:s, s:i}", "batch", (int)n, "user_id",
          ctx_of((gw_batch_item *)failed)->j.user, "error", failed->err);
}

static void on_loaded(gw_batch_item *it, int status);
static void on_admitted(gw_batch_item *it, int status);

static const gw_batch_ops load_ops = {.group_commit = 0, .work = load_item, .done = on_loaded};
static const gw_batch_ops admit_ops = {.group_commit = 1,
                                       .work = admit_item,
                                       .reset = reset_item,
                                       .redo = redo_item,
                                       .done = on_admitted};

int gw_admit_init(gw_app *app)
{
  int rc = gw_defcache_new(&app->defcache, GW_DEFCACHE_BYTES, GW_DEFCACHE_ENTRIES);
  if (rc == 0)
    rc = gw_batch_new(&app->loadq, app, &load_ops);
  if (rc == 0)
    rc = gw_batch_new(&app->admitq, app, &admit_ops);
  return rc;
}

void gw_admit_cleanup(gw_app *app)
{
  gw_defcache_free(app->defcache);
  gw_batch_free(app->loadq);
  gw_batch_free(app->admitq);
  app->defcache = NULL;
  app->loadq = app->admitq = NULL;
}

/* Answers a check that did not say ok: 409 with the providers, or Composio's failure as every
 * route answers it (gw_composio_fault.h). */
static void answer_not_ok(admit_ctx *c)
{
  gw_composio_fault f;
  if (c->check->outcome == TG_CHECK_BLOCKED) {
    c->j.status = 409;
    decide(c, "blocked", GW_ADM_BLOCKED);
    tg_httpd_respond_json(c->j.req, 409, NULL, tg_check_409_body(c->check));
    c->j.req = NULL;
    reply(c, NULL);
    return;
  }
  gw_composio_fault_of(&f, c->check->composio_err, c->check->composio_status,
                       c->check->retry_after_ms);
  gw_job_fail_composio(&c->j, &f, json_pack("{s:s?}", "detail", c->check->detail));
  decide(c, "unavailable", GW_ADM_UNAVAILABLE);
  reply(c, f.headers);
}

/* The check's answer: PREFLIGHT answers now; the others write back what Composio reported and,
 * when ok, admit, in one transaction. */
static void on_check(void *arg, tg_check_result *res)
{
  admit_ctx *c = arg;
  c->check = res;
  block_connectors(c, res);
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
  gw_batch_push(c->j.app->admitq, &c->bi);
}

/* After LOAD: inputs, scope, check. */
static void check(admit_ctx *c)
{
  json_t *errors, *used;
  tg_check_result *now = NULL;
  int rc;
  c->def = gw_defcache_get(c->j.app->defcache, c->wf_id, &c->def_text, c->def_len, &c->uses);
  if (!c->def) {
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
  /* tool_constraints, else the providers the workflow uses, else every provider the user has
   * not disconnected (tg_check_scope). The run stores the scope it was admitted with, so the
   * worker's guard checks the same providers. */
  used = c->tc ? NULL : json_object_get(c->uses, "providers");
  c->scope = tg_check_scope(c->tc, used, c->crow, c->n_rows);
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

/* Answers c with the error that ended its database step. */
static void step_failed(admit_ctx *c, int status)
{
  json_decref(c->j.body);
  c->j.body = NULL;
  c->decision = NULL;
  gw_job_fail_err(&c->j, status);
  reply(c, NULL);
}

static void on_loaded(gw_batch_item *it, int status)
{
  admit_ctx *c = ctx_of(it);
  if (status != 0) {
    step_failed(c, status);
    return;
  }
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
}

static void on_admitted(gw_batch_item *it, int status)
{
  admit_ctx *c = ctx_of(it);
  if (status == TG_ECONFLICT && c->idem_key && !c->idem_again) {
    /* The key's unique index refused the run: a twin with the same key committed after this
     * transaction's lookup (on PostgreSQL, another gateway; its snapshot did not see it). Its
     * writes were undone; once more, and the lookup replays the twin's answer. */
    c->idem_again = 1;
    outcome_reset(c);
    gw_batch_push(c->j.app->admitq, it);
    return;
  }
  if (status != 0) {
    step_failed(c, status);
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
  gw_batch_push(c->j.app->loadq, &c->bi);
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
