/*
 * gw_status: GET /api/mcp/auth/status[?force=1], the live state of each configured provider for
 * the caller (DESIGN.md section 3). What Composio says is written back with
 * tg_store_accounts_observe_row, which matches a row by id and version, so a row changed
 * meanwhile is not overwritten.
 *
 * Flow: (job) read the caller's connected_accounts rows → (loop) per configured provider: no
 * row → not_connected; a row never confirmed or given up (PENDING, DISCONNECTED, no ca id) →
 * answered from the row; otherwise a fresh cache entry (< GW_STATUS_FRESH_MS, unless force) or
 * GET /connected_accounts/{id}, all in parallel → (job) write back what Composio said
 * (status, status_reason, last_checked_at; version bumped when something changed) → (loop) 200.
 *
 * Composio unreachable (no answer, 5xx, 429, canceled) for a provider: the answer carries the
 * last known values (cache entry if any, else the row's status/status_reason/last_checked_at)
 * with "stale": true; never a 500. The cache (tg_accounts_cache, at most CACHE_MAX entries, fresh
 * for GW_STATUS_FRESH_MS of loop time) is app->status_cache, used on the loop only and made on
 * the first answer to store; routes that change a row drop its entry.
 */
#include "gw.h"
#include "tg_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAX 10000

/* ---------------------------------------------------------------- shared helpers */

int gw_account_authorized(const tg_composio_account *a)
{
  const char *status;
  char buf[64];
  const char *reason = a ? tg_check_record(a, &status, buf, sizeof buf) : NULL;
  return a && tg_check_authorized(status, reason);
}

/* Stores a live answer in the status cache, making the cache on first use (a cache that cannot
 * be made or filled only costs a Composio call later). */
static void cache_put(gw_app *app, const char *user, const char *provider, json_t *answer)
{
  if (!app->status_cache &&
      tg_accounts_cache_new(&app->status_cache, CACHE_MAX, GW_STATUS_FRESH_MS) != 0)
    return;
  tg_accounts_cache_put(app->status_cache, user, provider, answer, uv_now(app->loop));
}

/* ---------------------------------------------------------------- the route */

typedef struct status_ctx status_ctx;

typedef struct slot {
  status_ctx *c;
  const tg_provider *p;
  json_t *row;     /* borrowed from c->rows, NULL when the user has none for p */
  json_t *out;     /* the provider's answer (owned until moved into the body) */
  int pending;     /* a Composio call is in flight */
  int observed;    /* live answer to write back */
  char status[16]; /* ours, as observed */
  char *reason;    /* Composio's status_reason as observed (owned) */
} slot;

struct status_ctx {
  gw_job j;
  int force;
  int in_flight;
  int64_t now; /* wall clock of the live checks, ms */
  json_t *rows;
  slot *slots;
  size_t n;
};
GW_JOB_FIRST(status_ctx);

static void status_free(status_ctx *c)
{
  for (size_t i = 0; i < c->n; i++) {
    json_decref(c->slots[i].out);
    free(c->slots[i].reason);
  }
  free(c->slots);
  json_decref(c->rows);
  json_decref(c->j.body);
  free(c);
}

static const char *row_str(const json_t *row, const char *k)
{
  return json_string_value(json_object_get(row, k));
}

static int64_t row_int(const json_t *row, const char *k)
{
  return (int64_t)json_integer_value(json_object_get(row, k));
}

static int rows_work(tg_db *db, void *arg)
{
  status_ctx *c = arg;
  int rc;
  c->rows = tg_store_accounts_list(db, &rc, c->j.user);
  return c->rows ? 0 : rc;
}

static int writeback_work(tg_db *db, void *arg)
{
  status_ctx *c = arg;
  int rc;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  for (size_t i = 0; i < c->n; i++) {
    slot *s = &c->slots[i];
    if (!s->observed)
      continue;
    rc = tg_store_accounts_observe_row(db, row_int(s->row, "id"), row_int(s->row, "version"),
                                       s->status, s->reason, c->now, NULL);
    if (rc != 0) {
      tg_db_rollback(db);
      return rc;
    }
  }
  return tg_db_commit(db);
}

/* The answer of a provider from its row: the last known values. */
static json_t *from_row(const json_t *row, int stale, const char *source)
{
  const char *st = row_str(row, "status");
  json_t *checked = json_object_get(row, "last_checked_at");
  char reason[64];
  int ok = tg_check_authorized(st, row_str(row, "status_reason"));
  if (st && strcmp(st, "ACTIVE") == 0) /* ACTIVE but not usable: the recorded reason says why */
    snprintf(reason, sizeof reason, "%s", row_str(row, "status_reason"));
  else
    snprintf(reason, sizeof reason, "connected_account_status=%s", st ? st : "UNKNOWN");
  return json_pack("{s:b, s:s?, s:s?, s:s?, s:O, s:b, s:s}", "authorized", ok, "status", st,
                   "reason", ok ? NULL : reason, "status_reason", row_str(row, "status_reason"),
                   "checked_at", checked ? checked : json_null(), "stale", stale, "source", source);
}

static void reply(status_ctx *c)
{
  json_t *providers = json_object();
  for (size_t i = 0; i < c->n; i++) {
    slot *s = &c->slots[i];
    if (s->out)
      json_object_set_new(providers, s->p->provider, s->out);
    s->out = NULL;
  }
  c->j.status = 200;
  c->j.body = json_pack("{s:o*, s:I}", "providers", providers, "now", (json_int_t)tg_now_ms());
  gw_job_reply(&c->j, NULL);
  status_free(c);
}

static void writeback_done(void *arg, int status)
{
  status_ctx *c = arg;
  if (status != 0) /* the answer is still true; only the write-back failed */
    tg_warn("status_writeback_failed", "{s:s, s:s}", "user_id", c->j.user, "error",
            tg_errname(status));
  reply(c);
}

static void all_answered(status_ctx *c)
{
  int any = 0;
  for (size_t i = 0; i < c->n; i++)
    any |= c->slots[i].observed;
  if (!any || c->j.app->stopping) {
    reply(c);
    return;
  }
  if (tg_dbq_submit(c->j.app->dbq, writeback_work, writeback_done, c) != 0)
    reply(c); /* the pool refused: answer anyway, the next check writes */
}

/* Composio gave no answer for s: the last known values, marked stale. */
static void unavailable(slot *s, const tg_composio_result *res)
{
  status_ctx *c = s->c;
  json_t *last = tg_accounts_cache_last(c->j.app->status_cache, c->j.user, s->p->provider);
  tg_warn("status_check_unavailable", "{s:s, s:s, s:s, s:i}", "user_id", c->j.user, "provider",
          s->p->provider, "error", tg_errname(res->err), "http_status", (int)res->http_status);
  if (last) {
    s->out = json_deep_copy(last);
    json_object_set_new(s->out, "stale", json_true());
    json_object_set_new(s->out, "source", json_string("cache"));
  } else {
    s->out = from_row(s->row, 1, "db");
  }
  if (s->out)
    json_object_set_new(s->out, "error", json_string(tg_errname(res->err)));
}

static void on_account(void *arg, const tg_composio_result *res, const tg_composio_account *a)
{
  slot *s = arg;
  status_ctx *c = s->c;
  gw_app *app = c->j.app;
  s->pending = 0;
  c->in_flight--;
  if (res->err == 0 && a) {
    const char *ours;
    char buf[64], reason[64];
    const char *rec = tg_check_record(a, &ours, buf, sizeof buf); /* what the row will say */
    int ok = tg_check_authorized(ours, rec);
    if (!ours) /* a status we do not know: keep ours, report theirs */
      ours = row_str(s->row, "status");
    if (ok)
      *reason = 0;
    else if (a->is_disabled)
      snprintf(reason, sizeof reason, "is_disabled");
    else if (a->auth_refresh_required)
      snprintf(reason, sizeof reason, "auth_refresh_required");
    else
      snprintf(reason, sizeof reason, "connected_account_status=%s",
               a->status ? a->status : "UNKNOWN");
    snprintf(s->status, sizeof s->status, "%s", ours ? ours : "FAILED");
    s->reason = rec ? strdup(rec) : NULL;
    s->observed = 1;
    s->out = json_pack("{s:b, s:s, s:s?, s:s?, s:s?, s:I, s:b, s:s}", "authorized", ok, "status",
                       s->status, "reason", *reason ? reason : NULL, "status_reason", rec,
                       "composio_status", a->status, "checked_at", (json_int_t)c->now, "stale", 0,
                       "source", "live");
  } else if (res->err == TG_ENOTFOUND) {
    snprintf(s->status, sizeof s->status, "REVOKED");
    s->reason = strdup(TG_CHECK_NOT_FOUND);
    s->observed = 1;
    s->out = json_pack("{s:b, s:s, s:s, s:s, s:I, s:b, s:s}", "authorized", 0, "status", "REVOKED",
                       "reason", TG_CHECK_NOT_FOUND, "status_reason", TG_CHECK_NOT_FOUND,
                       "checked_at", (json_int_t)c->now, "stale", 0, "source", "live");
  } else {
    unavailable(s, res);
  }
  if (s->observed && s->out)
    cache_put(app, c->j.user, s->p->provider, s->out);
  if (c->in_flight == 0)
    all_answered(c);
}

static void rows_done(void *arg, int status)
{
  status_ctx *c = arg;
  gw_app *app = c->j.app;
  const tg_config *cfg = &app->cfg;
  if (status != 0) {
    gw_job_fail_err(&c->j, status);
    gw_job_reply(&c->j, NULL);
    status_free(c);
    return;
  }
  c->n = cfg->n_providers;
  c->now = tg_now_ms();
  if (c->n && !(c->slots = calloc(c->n, sizeof *c->slots))) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    gw_job_reply(&c->j, NULL);
    status_free(c);
    return;
  }
  /* Decide every provider first, then start the calls (their callbacks run later, from the
   * loop; a call that cannot start is answered stale here). */
  for (size_t i = 0; i < c->n; i++) {
    slot *s = &c->slots[i];
    size_t k;
    json_t *row;
    const char *st, *ca;
    json_t *cached;
    s->c = c;
    s->p = &cfg->providers[i];
    json_array_foreach(c->rows, k, row)
    {
      const char *ac = row_str(row, "auth_config_id");
      if (ac && strcmp(ac, s->p->auth_config_id) == 0)
        s->row = row;
    }
    if (!s->row) {
      s->out = json_pack("{s:b, s:n, s:s, s:n, s:b, s:s}", "authorized", 0, "status", "reason",
                         "not_connected", "checked_at", "stale", 0, "source", "db");
      continue;
    }
    st = row_str(s->row, "status");
    ca = row_str(s->row, "composio_account_id");
    if (!ca || !st || strcmp(st, "PENDING") == 0 || strcmp(st, "DISCONNECTED") == 0) {
      s->out = from_row(s->row, 0, "db");
      continue;
    }
    if (!c->force && (cached = tg_accounts_cache_fresh(app->status_cache, c->j.user, s->p->provider,
                                                       uv_now(app->loop)))) {
      s->out = json_deep_copy(cached);
      json_object_set_new(s->out, "source", json_string("cache"));
      continue;
    }
    s->pending = 1;
  }
  for (size_t i = 0; i < c->n; i++) {
    slot *s = &c->slots[i];
    int rc = TG_ECANCELED;
    if (!s->pending)
      continue;
    if (!app->stopping)
      rc = tg_composio_get_account(app->composio, row_str(s->row, "composio_account_id"),
                                   on_account, s);
    if (rc == 0) {
      c->in_flight++;
    } else {
      tg_composio_result r = {.err = rc, .retry_after_ms = -1};
      s->pending = 0;
      unavailable(s, &r);
    }
  }
  if (c->in_flight == 0)
    all_answered(c);
}

void gw_auth_status(gw_app *app, tg_httpd_req *req, const char *user)
{
  const char *force = tg_httpd_query(req, "force");
  status_ctx *c = gw_job_new(app, req, user, sizeof *c);
  if (!c)
    return;
  c->force = force && (strcmp(force, "1") == 0 || strcmp(force, "true") == 0);
  if (gw_submit(&c->j, rows_work, rows_done, c) != 0)
    status_free(c);
}
