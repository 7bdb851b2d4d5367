/*
 * gw_auth_callback: GET /api/composio-redirect, the end of an OAuth connection (DESIGN.md
 * section 3, composio-api.md 2.5 "Callback redirect" and 4.1 generate).
 *
 * State machine:
 *   CLAIM (job)   the state must exist, be unexpired and unused, and belong to the caller when
 *                 the request carries an identity (X-User-Id / Authorization: a browser of user
 *                 B cannot finish user A's state); it is marked used in the same statement
 *                 (UPDATE ... WHERE used_at IS NULL AND expires_at > now), so a replay or a
 *                 race finds nothing and writes nothing → 400 invalid_state with "reason":
 *                 unknown | expired | used | other_user.
 *   status=failed → FAIL (job): the row becomes FAILED unless it is ACTIVE (a failed reconnect
 *                 does not break a working connection).
 *   status=success → POLL (loop): GET /connected_accounts/{id} until ACTIVE, 250 ms doubling,
 *                 for GW_POLL_TOTAL_MS (the last delay cut to end at the deadline, so the
 *                 reason not_active_within_<GW_POLL_TOTAL_MS>ms is true); FAILED/EXPIRED/
 *                 INACTIVE/REVOKED are terminal (→ FAIL). The
 *                 account must carry the state's toolkit slug and auth config id (and the
 *                 state's user, when Composio names one), else 400 account_mismatch and nothing
 *                 is written.
 *   URL (loop)    generate the per-user MCP URL.
 *   CONNECT (job) one transaction: users, auth_configs, connected_accounts (updated in place:
 *                 UNIQUE(user_id, auth_config_id)), mcp_connections; the account the row held
 *                 before, when another (a reconnect), is recorded as retired and then deleted
 *                 at Composio in the background (gw_sync_retire; retried by the cleanup).
 * The answer is 302 to TOOLGATE_UI_URL?provider=..&status=connected|failed, or JSON when the
 * client sends Accept: application/json or ?format=json.
 */
#include "gw.h"
#include "tg_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 128
#define REASON_MAX 256

enum { CLAIM, FAIL, CONNECT };

typedef struct cb_ctx {
  gw_job j;
  gw_waiter w;
  uv_timer_t timer;
  int timer_on; /* timer initialised: free only from its close callback */
  int step;
  int want_json;
  int success;                  /* the query said status=success */
  char caller[GW_USER_MAX + 1]; /* identity on the request, "" when none */
  const char *why;              /* CLAIM refused: unknown, expired, used, other_user */
  char state[ID_MAX + 1];
  char ca_id[ID_MAX + 1];    /* from the query, else the state's link id */
  char link_ca[ID_MAX + 1];  /* oauth_states.composio_account_id */
  char provider[ID_MAX + 1]; /* from the state row */
  const tg_provider *p;
  char reason[REASON_MAX];  /* FAILED: status_reason */
  char retired[ID_MAX + 1]; /* CONNECT: the account the new one replaced, "" when none */
  char *mcp_url;
  uint64_t deadline; /* uv_now ms: stop polling */
  uint64_t delay;    /* next poll delay, ms */
} cb_ctx;
GW_JOB_FIRST(cb_ctx);

static void on_timer_closed(uv_handle_t *h)
{
  cb_ctx *c = h->data;
  free(c);
}

static void cb_free(cb_ctx *c)
{
  json_decref(c->j.body);
  free(c->mcp_url);
  if (c->w.next || c->w.prev || c->j.app->waiters == &c->w)
    gw_waiter_remove(c->j.app, &c->w);
  if (c->timer_on) {
    c->timer.data = c;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    return;
  }
  free(c);
}

/* Answers with the outcome: connected (1) or failed (0), then frees c. */
static void finish(cb_ctx *c, int connected)
{
  const char *st = connected ? "connected" : "failed";
  tg_info("oauth_callback", "{s:s, s:s, s:s, s:s?, s:s?}", "user_id", c->j.user, "provider",
          c->provider, "outcome", st, "composio_account_id", *c->ca_id ? c->ca_id : NULL, "reason",
          connected ? NULL : c->reason);
  if (c->want_json) {
    c->j.status = 200;
    json_decref(c->j.body);
    c->j.body = json_pack("{s:s, s:s, s:s?}", "provider", c->provider, "status", st,
                          "connected_account_id", *c->ca_id ? c->ca_id : NULL);
    if (!connected && c->j.body)
      json_object_set_new(c->j.body, "reason", json_string(c->reason));
    gw_job_reply(&c->j, NULL);
  } else {
    const char *ui = c->j.app->cfg.ui_url;
    size_t n = strlen(ui) + strlen(c->provider) + 64;
    char *loc = malloc(n);
    if (!loc) {
      gw_job_fail_err(&c->j, TG_ENOMEM);
      gw_job_reply(&c->j, NULL);
    } else {
      const char *headers[] = {loc, NULL};
      snprintf(loc, n, "Location: %s%sprovider=%s&status=%s", ui, strchr(ui, '?') ? "&" : "?",
               c->provider, st);
      tg_httpd_respond(c->j.req, 302, headers, "", 0);
      c->j.req = NULL;
      free(loc);
    }
  }
  cb_free(c);
}

/* Answers an error (static strings) and frees c. */
static void fail_reply(cb_ctx *c, int status, const char *code, const char *message)
{
  tg_warn("oauth_callback_rejected", "{s:s, s:s, s:s}", "user_id", c->j.user, "provider",
          c->provider, "error", code);
  gw_job_fail(&c->j, status, code, message);
  gw_job_reply(&c->j, NULL);
  cb_free(c);
}

static int claim(tg_db *db, cb_ctx *c)
{
  int rc;
  json_t *row;
  const char *s;
  rc = tg_store_oauth_state_consume(db, c->state, c->caller, tg_now_ms(), &row, &c->why);
  if (rc != 0)
    return rc;
  if (!row) {
    gw_job_fail(&c->j, 400, "invalid_state",
                strcmp(c->why, "other_user") == 0
                    ? "The OAuth state was started by another user."
                    : "The OAuth state is unknown, expired or already used.");
    c->j.body = json_pack("{s:s}", "reason", c->why);
    return 0;
  }
  snprintf(c->j.user, sizeof c->j.user, "%s", json_string_value(json_object_get(row, "user_id")));
  snprintf(c->provider, sizeof c->provider, "%s",
           json_string_value(json_object_get(row, "provider")));
  s = json_string_value(json_object_get(row, "composio_account_id"));
  snprintf(c->link_ca, sizeof c->link_ca, "%s", s ? s : "");
  json_decref(row);
  c->j.status = 200;
  return 0;
}

static int mark_failed(tg_db *db, cb_ctx *c)
{
  return tg_store_accounts_fail(db, c->j.user, c->p->auth_config_id, c->reason, tg_now_ms(), NULL);
}

static int connect_tx(tg_db *db, cb_ctx *c)
{
  const tg_provider *p = c->p;
  int64_t now = tg_now_ms();
  int rc;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  if ((rc = tg_store_credits_ensure_user_tx(db, c->j.user, c->j.app->cfg.default_credits)) != 0)
    goto end;
  if ((rc = tg_store_auth_configs_upsert(db, p, now)) != 0)
    goto end;
  rc = tg_store_accounts_retire_previous(db, c->j.user, p->auth_config_id, c->ca_id, now,
                                         c->retired, sizeof c->retired);
  if (rc != 0)
    goto end;
  rc = tg_store_accounts_connect(db, c->j.user, p->provider, p->auth_config_id, c->ca_id,
                                 c->mcp_url, now);
  if (rc == 0)
    rc = tg_store_oauth_state_link(db, c->state, c->ca_id);
end:
  return tg_db_end(db, rc);
}

static int cb_work(tg_db *db, void *arg)
{
  cb_ctx *c = arg;
  switch (c->step) {
  case CLAIM:
    return claim(db, c);
  case FAIL:
    return mark_failed(db, c);
  default:
    return connect_tx(db, c);
  }
}

static void poll_account(cb_ctx *c);
static void submit_step(cb_ctx *c, int step);

static void on_wake(gw_waiter *w)
{
  cb_ctx *c = (cb_ctx *)((char *)w - offsetof(cb_ctx, w));
  gw_waiter_remove(c->j.app, &c->w);
  uv_timer_stop(&c->timer);
  poll_account(c); /* sees app->stopping and answers 503 */
}

static void on_timer(uv_timer_t *t)
{
  cb_ctx *c = t->data;
  gw_waiter_remove(c->j.app, &c->w);
  poll_account(c);
}

/* Schedules the next poll, or gives up once the budget is spent. The last delay is cut to end
 * at the deadline, so the account is polled for the whole GW_POLL_TOTAL_MS the reason states. */
static void poll_later(cb_ctx *c, const char *last_status)
{
  uint64_t now = uv_now(c->j.app->loop), delay = c->delay;
  if (now >= c->deadline) {
    snprintf(c->reason, sizeof c->reason, "not_active_within_%dms (last status %s)",
             GW_POLL_TOTAL_MS, last_status);
    submit_step(c, FAIL);
    return;
  }
  if (delay > c->deadline - now)
    delay = c->deadline - now;
  if (!c->timer_on) {
    uv_timer_init(c->j.app->loop, &c->timer);
    c->timer.data = c;
    c->timer_on = 1;
  }
  c->w.wake = on_wake;
  gw_waiter_add(c->j.app, &c->w);
  uv_timer_start(&c->timer, on_timer, delay, 0);
  c->delay *= 2;
}

static void cb_done(void *arg, int status);

static void submit_step(cb_ctx *c, int step)
{
  c->step = step;
  if (gw_submit(&c->j, cb_work, cb_done, c) != 0)
    cb_free(c);
}

static void on_mcp_url(void *arg, const tg_composio_result *res, const char *url)
{
  cb_ctx *c = arg;
  if (res->err != 0 || !url || !*url) {
    tg_composio_result r = *res;
    if (r.err == 0)
      r.err = TG_EPROTO;
    tg_warn("mcp_url_failed", "{s:s, s:s, s:s, s:s?}", "user_id", c->j.user, "provider",
            c->provider, "error", tg_errname(r.err), "message", r.message);
    gw_composio_fail(&c->j, &r);
    cb_free(c);
    return;
  }
  if (!(c->mcp_url = strdup(url))) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    gw_job_reply(&c->j, NULL);
    cb_free(c);
    return;
  }
  submit_step(c, CONNECT);
}

static int same(const char *a, const char *b)
{
  return a && b && strcmp(a, b) == 0;
}

static void on_account(void *arg, const tg_composio_result *res, const tg_composio_account *a)
{
  cb_ctx *c = arg;
  const char *ours;
  int rc;
  if (res->err != 0 || !a) {
    int transient = res->err == TG_EIO || res->err == TG_ETIMEDOUT || res->err == TG_ERATELIMIT ||
                    (res->err == TG_EHTTP && res->http_status >= 500);
    if (transient && !c->j.app->stopping && uv_now(c->j.app->loop) < c->deadline) {
      poll_later(c, "unknown");
      return;
    }
    if (res->err == TG_ENOTFOUND) {
      fail_reply(c, 400, "account_mismatch", "Composio does not know this connected account.");
      return;
    }
    gw_composio_fail(&c->j, res);
    cb_free(c);
    return;
  }
  if (!same(a->toolkit_slug, c->p->toolkit_slug) ||
      !same(a->auth_config_id, c->p->auth_config_id) ||
      (a->user_id && strcmp(a->user_id, c->j.user) != 0)) {
    fail_reply(c, 400, "account_mismatch",
               "The connected account does not belong to this provider or user.");
    return;
  }
  ours = tg_check_status_from_composio(a->status);
  if (ours && strcmp(ours, "ACTIVE") == 0) {
    if (c->j.app->stopping) {
      gw_job_fail_err(&c->j, TG_ECANCELED);
      gw_job_reply(&c->j, NULL);
      cb_free(c);
      return;
    }
    rc = tg_composio_generate_mcp_url(c->j.app->composio, c->j.app->cfg.composio_mcp_server_id,
                                      c->j.user, c->ca_id, on_mcp_url, c);
    if (rc != 0) {
      gw_job_fail_err(&c->j, rc);
      gw_job_reply(&c->j, NULL);
      cb_free(c);
    }
    return;
  }
  if (ours && strcmp(ours, "PENDING") != 0) {
    snprintf(c->reason, sizeof c->reason, "composio_status=%s%s%s", a->status,
             a->status_reason ? ": " : "", a->status_reason ? a->status_reason : "");
    submit_step(c, FAIL);
    return;
  }
  poll_later(c, a->status ? a->status : "unknown");
}

static void poll_account(cb_ctx *c)
{
  int rc;
  if (c->j.app->stopping) {
    gw_job_fail_err(&c->j, TG_ECANCELED);
    gw_job_reply(&c->j, NULL);
    cb_free(c);
    return;
  }
  rc = tg_composio_get_account(c->j.app->composio, c->ca_id, on_account, c);
  if (rc != 0) {
    gw_job_fail_err(&c->j, rc);
    gw_job_reply(&c->j, NULL);
    cb_free(c);
  }
}

static void cb_done(void *arg, int status)
{
  cb_ctx *c = arg;
  if (status != 0) {
    gw_job_fail_err(&c->j, status);
    gw_job_reply(&c->j, NULL);
    cb_free(c);
    return;
  }
  switch (c->step) {
  case CLAIM:
    if (c->j.status >= 400) {
      tg_warn("oauth_callback_rejected", "{s:s, s:s, s:s?}", "error", "invalid_state", "reason",
              c->why, "caller", *c->caller ? c->caller : NULL);
      gw_job_reply(&c->j, NULL);
      cb_free(c);
      return;
    }
    c->j.status = 0;
    if (!(c->p = tg_config_provider(&c->j.app->cfg, c->provider))) {
      fail_reply(c, 400, "invalid_state", "The OAuth state names a provider no longer configured.");
      return;
    }
    if (!*c->ca_id)
      snprintf(c->ca_id, sizeof c->ca_id, "%s", c->link_ca);
    else if (*c->link_ca && strcmp(c->ca_id, c->link_ca) != 0) {
      fail_reply(c, 400, "account_mismatch",
                 "The connected account is not the one this OAuth state started.");
      return;
    }
    if (!c->success) {
      snprintf(c->reason, sizeof c->reason, "callback_status=failed");
      submit_step(c, FAIL);
      return;
    }
    if (!*c->ca_id) {
      fail_reply(c, 400, "invalid_request", "connected_account_id is missing.");
      return;
    }
    c->deadline = uv_now(c->j.app->loop) + GW_POLL_TOTAL_MS;
    c->delay = GW_POLL_FIRST_MS;
    poll_account(c);
    return;
  case FAIL:
    tg_accounts_cache_drop(c->j.app->status_cache, c->j.user, c->provider);
    finish(c, 0);
    return;
  default:
    tg_accounts_cache_drop(c->j.app->status_cache, c->j.user, c->provider);
    if (*c->retired) /* a reconnect: the replaced account goes at Composio, best effort */
      gw_sync_retire(c->j.app, c->retired);
    finish(c, 1);
  }
}

static int id_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > ID_MAX)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-'))
      return 0;
  return 1;
}

void gw_auth_callback(gw_app *app, tg_httpd_req *req)
{
  const char *state = tg_httpd_query(req, "state");
  const char *status = tg_httpd_query(req, "status");
  const char *ca = tg_httpd_query(req, "connected_account_id");
  const char *accept = tg_httpd_header(req, "Accept");
  const char *format = tg_httpd_query(req, "format");
  char caller[GW_USER_MAX + 1] = "";
  cb_ctx *c;
  if (!ca)
    ca = tg_httpd_query(req, "connectedAccountId");
  if (!state || !id_ok(state)) {
    gw_respond_error(req, 400, "invalid_state", "The OAuth state is missing or malformed.", NULL,
                     NULL);
    return;
  }
  if (!status || (strcmp(status, "success") != 0 && strcmp(status, "failed") != 0)) {
    gw_respond_error(req, 400, "invalid_request", "status must be success or failed.", NULL, NULL);
    return;
  }
  if (ca && *ca && !id_ok(ca)) {
    gw_respond_error(req, 400, "invalid_request", "connected_account_id is malformed.", NULL, NULL);
    return;
  }
  if (tg_httpd_header(req, "X-User-Id") || tg_httpd_header(req, "Authorization")) {
    if (gw_identify(app, req, caller) != 0)
      return; /* answered 401 */
  }
  if (!(c = gw_job_new(app, req, NULL, sizeof *c)))
    return;
  memcpy(c->caller, caller, sizeof c->caller);
  c->success = strcmp(status, "success") == 0;
  c->want_json =
      (accept && strstr(accept, "application/json")) || (format && strcmp(format, "json") == 0);
  snprintf(c->state, sizeof c->state, "%s", state);
  snprintf(c->ca_id, sizeof c->ca_id, "%s", ca ? ca : "");
  submit_step(c, CLAIM);
}
