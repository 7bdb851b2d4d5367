/*
 * gw_sync: keeps stored connections true over time, in the background of a running gateway.
 *
 * Re-sync (once, at start-up, after the server listens so readiness never waits): load the
 * ACTIVE connected_accounts rows (at most RESYNC_MAX, least recently checked first), ask
 * Composio for each (GET /connected_accounts/{id}) with at most RESYNC_CONCURRENCY calls in
 * flight, and write back what it says through tg_store_accounts_observe_row (version-guarded: a
 * row changed meanwhile by a request is left alone). No answer → the row is left as it is (logged).
 *
 * Cleanup (a uv timer: at once, then every GW_CLEANUP_MS): delete oauth_states expired for
 * more than STATE_GRACE_MS; mark EXPIRED the PENDING rows untouched for longer than a state
 * lives plus the callback's polling, when the user has no open state for that provider
 * (Composio itself expires such accounts after 10 minutes, composio-api.md 2.7); forget
 * webhook_events older than WEBHOOK_KEEP_MS (the 5-minute signature tolerance refuses older
 * replays anyway); then delete at Composio up to RETIRE_BATCH retired accounts (replaced by a
 * reconnect, recorded in retired_accounts) whose delete has not happened yet.
 *
 * Retire (gw_sync_retire, also called by the OAuth callback right after a reconnect): DELETE
 * /connected_accounts/{id}; 2xx or 404 → the retired_accounts row goes; any other failure → its
 * attempt is noted there and the next cleanup tries again. Each retire owns its context and
 * frees it itself (a canceled call at shutdown included), so it does not hold the gw_sync.
 *
 * Lifetime: the gw_sync lives until its timer is closed (gw_sync_stop, at shutdown) and every
 * call and job it started has ended; "refs" counts those.
 */
#include "gw.h"
#include "tg_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESYNC_MAX 10000
#define RESYNC_CONCURRENCY 4
#define GW_CLEANUP_MS 60000
#define STATE_GRACE_MS 3600000LL             /* keep expired states one hour for triage */
#define WEBHOOK_KEEP_MS (7LL * 24 * 3600000) /* one week */
#define ABANDONED_REASON "oauth_abandoned: connection initiation did not complete in time"
#define RETIRE_BATCH 32 /* retired accounts a cleanup deletes at Composio at most */
#define CA_MAX 160

typedef struct gw_sync {
  gw_app *app;
  uv_timer_t timer;
  int refs;     /* timer open + calls + jobs in flight */
  int stopped;  /* gw_sync_stop was called */
  int cleaning; /* a cleanup job is in flight */
  json_t *rows; /* re-sync: the ACTIVE rows */
  size_t next;  /* re-sync: next row to check */
  int in_flight;
  int checked, changed, errors;
  int64_t t0;
  int cleaned_states, cleaned_pending;
  json_t *retired; /* cleanup: retired accounts to delete at Composio */
} gw_sync;

typedef struct item {
  gw_sync *s;
  json_t *row; /* borrowed from s->rows */
  char status[16];
  char *reason;
  int changed;
} item;

static void unref(gw_sync *s)
{
  if (--s->refs > 0)
    return;
  if (s->app->sync == s)
    s->app->sync = NULL;
  json_decref(s->rows);
  json_decref(s->retired);
  free(s);
}

static const char *row_str(const json_t *row, const char *k)
{
  return json_string_value(json_object_get(row, k));
}

/* ---------------------------------------------------------------- re-sync */

static void launch(gw_sync *s);

static int write_work(tg_db *db, void *arg)
{
  item *it = arg;
  return tg_store_accounts_observe_row(
      db, (int64_t)json_integer_value(json_object_get(it->row, "id")),
      (int64_t)json_integer_value(json_object_get(it->row, "version")), it->status, it->reason,
      tg_now_ms(), &it->changed);
}

static void item_end(item *it)
{
  gw_sync *s = it->s;
  free(it->reason);
  free(it);
  s->in_flight--;
  launch(s);
  unref(s);
}

static void write_done(void *arg, int status)
{
  item *it = arg;
  gw_sync *s = it->s;
  if (status != 0) {
    s->errors++;
    tg_warn("resync_write_failed", "{s:s, s:s}", "provider", row_str(it->row, "provider"), "error",
            tg_errname(status));
  } else if (it->changed == 1) {
    s->changed++;
    tg_accounts_cache_drop(s->app->status_cache, row_str(it->row, "user_id"),
                           row_str(it->row, "provider"));
    tg_info("resync_changed", "{s:s, s:s, s:s, s:s}", "user_id", row_str(it->row, "user_id"),
            "provider", row_str(it->row, "provider"), "composio_account_id",
            row_str(it->row, "composio_account_id"), "status", it->status);
  }
  item_end(it);
}

static void on_account(void *arg, const tg_composio_result *res, const tg_composio_account *a)
{
  item *it = arg;
  gw_sync *s = it->s;
  const char *ours = NULL;
  if (res->err == 0 && a) {
    char buf[64];
    const char *rec = tg_check_record(a, &ours, buf, sizeof buf);
    if (rec && !(it->reason = strdup(rec)))
      ours = NULL;
  } else if (res->err == TG_ENOTFOUND) {
    ours = "REVOKED";
    it->reason = strdup(TG_CHECK_NOT_FOUND);
  } else {
    s->errors++;
    if (res->err != TG_ECANCELED)
      tg_warn("resync_unavailable", "{s:s, s:s, s:s, s:i}", "provider",
              row_str(it->row, "provider"), "composio_account_id",
              row_str(it->row, "composio_account_id"), "error", tg_errname(res->err), "http_status",
              (int)res->http_status);
  }
  s->checked += ours != NULL;
  if (!ours || s->app->stopping) {
    item_end(it);
    return;
  }
  snprintf(it->status, sizeof it->status, "%s", ours);
  if (tg_dbq_submit(s->app->dbq, write_work, write_done, it) != 0)
    item_end(it);
}

/* Starts calls until RESYNC_CONCURRENCY are in flight or the rows are done. */
static void launch(gw_sync *s)
{
  size_t n = json_array_size(s->rows);
  while (!s->app->stopping && s->in_flight < RESYNC_CONCURRENCY && s->next < n) {
    json_t *row = json_array_get(s->rows, s->next++);
    item *it = calloc(1, sizeof *it);
    if (!it)
      break;
    it->s = s;
    it->row = row;
    if (tg_composio_get_account(s->app->composio, row_str(row, "composio_account_id"), on_account,
                                it) != 0) {
      free(it);
      s->errors++;
      continue;
    }
    s->in_flight++;
    s->refs++;
  }
  if (s->in_flight == 0 && s->rows && (s->next >= n || s->app->stopping)) {
    tg_info("resync_done", "{s:i, s:i, s:i, s:i, s:I}", "rows", (int)n, "checked", s->checked,
            "changed", s->changed, "errors", s->errors, "ms", (json_int_t)(tg_now_ms() - s->t0));
    json_decref(s->rows);
    s->rows = NULL;
  }
}

static int load_work(tg_db *db, void *arg)
{
  gw_sync *s = arg;
  int rc;
  s->rows = tg_store_accounts_list_active(db, &rc, RESYNC_MAX);
  return s->rows ? 0 : rc;
}

static void load_done(void *arg, int status)
{
  gw_sync *s = arg;
  if (status != 0) {
    tg_warn("resync_failed", "{s:s}", "error", tg_errname(status));
  } else {
    tg_info("resync_started", "{s:i, s:i}", "rows", (int)json_array_size(s->rows), "concurrency",
            RESYNC_CONCURRENCY);
    launch(s);
  }
  unref(s);
}

/* ---------------------------------------------------------------- retire */

typedef struct retire {
  gw_app *app;
  int done;          /* Composio has it gone */
  const char *error; /* the failure's name (static) */
  char ca[CA_MAX + 1];
} retire;

static int retire_work(tg_db *db, void *arg)
{
  retire *r = arg;
  return r->done ? tg_store_accounts_retired_done(db, r->ca)
                 : tg_store_accounts_retired_failed(db, r->ca, r->error, tg_now_ms());
}

static void retire_done(void *arg, int status)
{
  retire *r = arg;
  if (status != 0)
    tg_warn("retire_write_failed", "{s:s, s:s}", "composio_account_id", r->ca, "error",
            tg_errname(status));
  free(r);
}

static void on_retired(void *arg, const tg_composio_result *res)
{
  retire *r = arg;
  r->done = res->err == 0 || res->err == TG_ENOTFOUND;
  r->error = tg_errname(res->err);
  if (r->done)
    tg_info("composio_account_retired", "{s:s}", "composio_account_id", r->ca);
  else if (res->err != TG_ECANCELED)
    tg_warn("composio_retire_failed", "{s:s, s:s, s:i}", "composio_account_id", r->ca, "error",
            r->error, "http_status", (int)res->http_status);
  if (res->err == TG_ECANCELED || r->app->stopping ||
      tg_dbq_submit(r->app->dbq, retire_work, retire_done, r) != 0)
    free(r); /* still recorded: the next cleanup tries again */
}

void gw_sync_retire(gw_app *app, const char *ca_id)
{
  retire *r;
  if (app->stopping || !ca_id || strlen(ca_id) > CA_MAX || !(r = calloc(1, sizeof *r)))
    return;
  r->app = app;
  memcpy(r->ca, ca_id, strlen(ca_id) + 1);
  if (tg_composio_delete_account(app->composio, r->ca, on_retired, r) != 0)
    free(r);
}

/* ---------------------------------------------------------------- cleanup */

static int cleanup_work(tg_db *db, void *arg)
{
  gw_sync *s = arg;
  int64_t now = tg_now_ms();
  int rc;
  s->cleaned_states = s->cleaned_pending = 0;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  rc = tg_store_oauth_states_cleanup(db, now - STATE_GRACE_MS, &s->cleaned_states);
  if (rc == 0)
    rc = tg_store_accounts_expire_abandoned(
        db, ABANDONED_REASON, now - GW_STATE_TTL_MS - GW_POLL_TOTAL_MS, now, &s->cleaned_pending);
  if (rc == 0)
    rc = tg_store_oauth_webhooks_cleanup(db, now - WEBHOOK_KEEP_MS);
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0) {
    tg_db_rollback(db);
    return rc;
  }
  json_decref(s->retired);
  s->retired = tg_store_accounts_list_retired(db, &rc, RETIRE_BATCH);
  return s->retired ? 0 : rc;
}

static void cleanup_done(void *arg, int status)
{
  gw_sync *s = arg;
  s->cleaning = 0;
  if (status != 0)
    tg_warn("cleanup_failed", "{s:s}", "error", tg_errname(status));
  else if (s->cleaned_states || s->cleaned_pending)
    tg_info("cleanup", "{s:i, s:i}", "oauth_states_deleted", s->cleaned_states, "pending_expired",
            s->cleaned_pending);
  if (status == 0) {
    size_t i;
    json_t *r;
    json_array_foreach(s->retired, i, r)
    {
      gw_sync_retire(s->app, json_string_value(json_object_get(r, "composio_account_id")));
    }
  }
  json_decref(s->retired);
  s->retired = NULL;
  unref(s);
}

static void on_cleanup_timer(uv_timer_t *t)
{
  gw_sync *s = t->data;
  if (s->cleaning || s->app->stopping)
    return;
  if (tg_dbq_submit(s->app->dbq, cleanup_work, cleanup_done, s) == 0) {
    s->cleaning = 1;
    s->refs++;
  }
}

static void on_timer_closed(uv_handle_t *h)
{
  unref(h->data);
}

int gw_sync_start(gw_app *app)
{
  gw_sync *s = calloc(1, sizeof *s);
  if (!s)
    return TG_ENOMEM;
  s->app = app;
  s->t0 = tg_now_ms();
  app->sync = s;
  uv_timer_init(app->loop, &s->timer);
  s->timer.data = s;
  s->refs = 1;
  uv_timer_start(&s->timer, on_cleanup_timer, 0, GW_CLEANUP_MS);
  if (tg_dbq_submit(app->dbq, load_work, load_done, s) == 0)
    s->refs++;
  else
    tg_warn("resync_failed", "{s:s}", "error", "queue refused the job");
  return 0;
}

void gw_sync_stop(gw_app *app)
{
  gw_sync *s = app->sync;
  if (!s || s->stopped)
    return;
  s->stopped = 1;
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
