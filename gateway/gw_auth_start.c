/*
 * gw_auth_start: the provider list and the start of an OAuth connection (DESIGN.md section 3,
 * composio-api.md 2.5).
 *
 * Start is a state machine: (loop) pick the provider and a fresh state → (job) first sight of
 * the user, read the user's row for the provider → (loop) when the row is ACTIVE and the
 * request did not ask for force (body {"force": true} or ?force=1): GET /connected_accounts/{ca};
 * ACTIVE there (same toolkit, auth config and user) → 200 {connected: true, ...}, nothing
 * written → (job) insert the oauth_states row (10 minutes) → (loop) Composio link with our
 * callback URL + "?state=" → (job) remember the link's ca id in the state row and
 * store/refresh the connected_accounts row → (loop) 200 {redirect_url, state, expires_at}. A
 * failed link call → (job) delete the unused state row → (loop) the Composio failure's answer
 * (gw_composio_fault.h).
 *
 * Invariants: an ACTIVE connected_accounts row keeps its status and ca id during a reconnect
 * (the new ca id waits in oauth_states.composio_account_id until the callback succeeds) unless
 * Composio just said it is not ACTIVE; a non-ACTIVE row becomes PENDING with the new ca id and
 * version + 1; there is never more than one row per (user, auth config). expires_at in the
 * answer is integer ms since the epoch.
 */
#include "gw.h"
#include "tg_clock.h"
#include "tg_id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_BYTES 24 /* 192 bits of randomness, hex: 48 characters */
#define URL_MAX 2048

/* ---------------------------------------------------------------- providers */

typedef struct prov_ctx {
  gw_job j;
  json_t *rows; /* this user's connected_accounts rows */
} prov_ctx;
GW_JOB_FIRST(prov_ctx);

static int prov_work(tg_db *db, void *arg)
{
  prov_ctx *c = arg;
  int rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  if (rc != 0)
    return rc;
  c->rows = tg_store_accounts_list(db, &rc, c->j.user);
  return c->rows ? 0 : rc;
}

static void prov_done(void *arg, int status)
{
  prov_ctx *c = arg;
  const tg_config *cfg = &c->j.app->cfg;
  json_t *list;
  if (status != 0) {
    gw_job_fail_err(&c->j, status);
    goto reply;
  }
  list = json_array();
  for (size_t i = 0; list && i < cfg->n_providers; i++) {
    const tg_provider *p = &cfg->providers[i];
    const char *st = NULL, *reason = NULL;
    size_t k;
    json_t *row;
    json_array_foreach(c->rows, k, row)
    {
      const char *ac = json_string_value(json_object_get(row, "auth_config_id"));
      if (ac && strcmp(ac, p->auth_config_id) == 0) {
        st = json_string_value(json_object_get(row, "status"));
        reason = json_string_value(json_object_get(row, "status_reason"));
      }
    }
    /* connected is the status route's "authorized" over the same row (tg_check_authorized). */
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s?, s:b}", "provider", p->provider,
                                          "display_name", p->display_name, "toolkit_slug",
                                          p->toolkit_slug, "status", st, "connected",
                                          tg_check_authorized(st, reason)));
  }
  c->j.status = 200;
  c->j.body = json_pack("{s:o*}", "providers", list);
reply:
  gw_job_reply(&c->j, NULL);
  json_decref(c->rows);
  free(c);
}

void gw_auth_providers(gw_app *app, tg_httpd_req *req, const char *user)
{
  gw_job_start(app, req, user, sizeof(prov_ctx), prov_work, prov_done);
}

void *gw_provider_job_new(gw_app *app, tg_httpd_req *req, const char *user, const char *provider,
                          size_t ctx_size, const tg_provider **p)
{
  const tg_config *cfg = &app->cfg;
  json_t *known;
  if ((*p = tg_config_provider(cfg, provider)))
    return gw_job_new(app, req, user, ctx_size);
  known = json_array();
  for (size_t i = 0; i < cfg->n_providers; i++)
    json_array_append_new(known, json_string(cfg->providers[i].provider));
  gw_respond_error(req, 404, "unknown_provider", "No such provider is configured.",
                   json_pack("{s:o*}", "known", known), NULL);
  return NULL;
}

/* ---------------------------------------------------------------- start */

typedef struct start_ctx {
  gw_job j;
  const tg_provider *p; /* lives as long as the config */
  char state[2 * STATE_BYTES + 1];
  char callback[URL_MAX];
  int64_t expires_at;      /* ms */
  char *redirect_url;      /* from Composio */
  char *ca_id;             /* from Composio, may be NULL */
  int step;                /* 0: read the row; 1: insert state; 2: store account; 3: drop state */
  tg_composio_result fail; /* step 3: the link call's failure, answered after the state is gone
                              (message NULL: not kept) */
  int force;               /* always make a new link */
  char row_status[16];     /* the user's row for the provider ("" when none) */
  char row_ca[160];        /* its composio_account_id */
  int stale_active;        /* the row says ACTIVE but Composio does not */
} start_ctx;
GW_JOB_FIRST(start_ctx);

static void start_free(start_ctx *c)
{
  json_decref(c->j.body);
  free(c->redirect_url);
  free(c->ca_id);
  free(c);
}

static int store_account(tg_db *db, start_ctx *c)
{
  int rc;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  rc = tg_store_oauth_state_link(db, c->state, c->ca_id);
  if (rc == 0)
    rc = tg_store_accounts_start(db, c->j.user, c->p->provider, c->p->auth_config_id, c->ca_id,
                                 c->stale_active, tg_now_ms(), NULL);
  return tg_db_end(db, rc);
}

static int start_work(tg_db *db, void *arg)
{
  start_ctx *c = arg;
  int rc;
  json_t *row;
  if (c->step == 2)
    return store_account(db, c);
  if (c->step == 3)
    return tg_store_oauth_state_delete(db, c->state, NULL);
  if (c->step == 0) {
    if ((rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits)) != 0)
      return rc;
    row = tg_store_accounts_find(db, &rc, c->j.user, c->p->auth_config_id);
    if (!row)
      return rc == TG_ENOTFOUND ? 0 : rc;
    snprintf(c->row_status, sizeof c->row_status, "%s",
             json_string_value(json_object_get(row, "status")));
    snprintf(c->row_ca, sizeof c->row_ca, "%s",
             json_string_value(json_object_get(row, "composio_account_id"))
                 ? json_string_value(json_object_get(row, "composio_account_id"))
                 : "");
    json_decref(row);
    return 0;
  }
  return tg_store_oauth_state_insert(db, c->state, c->j.user, c->p->provider,
                                     c->j.app->cfg.redirect_url, c->expires_at - GW_STATE_TTL_MS,
                                     c->expires_at);
}

static void start_done(void *arg, int status);

/* The link call failed (res): the state row can never be used, so it goes before the answer. */
static void drop_state(start_ctx *c, const tg_composio_result *res)
{
  c->fail = *res;
  c->fail.message = NULL;
  c->step = 3;
  if (gw_submit(&c->j, start_work, start_done, c) != 0)
    start_free(c);
}

static void on_link(void *arg, const tg_composio_result *res, const char *redirect_url,
                    const char *connected_account_id, const char *expires_at)
{
  start_ctx *c = arg;
  (void)expires_at;
  if (res->err != 0 || !redirect_url) {
    tg_warn("oauth_start_failed", "{s:s, s:s, s:s, s:i, s:s?}", "user_id", c->j.user, "provider",
            c->p->provider, "error", tg_errname(res->err ? res->err : TG_EPROTO), "http_status",
            (int)res->http_status, "message", res->message);
    if (res->err == 0) {
      tg_composio_result r = *res;
      r.err = TG_EPROTO;
      drop_state(c, &r);
    } else {
      drop_state(c, res);
    }
    return;
  }
  c->redirect_url = strdup(redirect_url);
  c->ca_id = connected_account_id ? strdup(connected_account_id) : NULL;
  if (!c->redirect_url || (connected_account_id && !c->ca_id)) {
    gw_job_fail_err(&c->j, TG_ENOMEM);
    gw_job_reply(&c->j, NULL);
    start_free(c);
    return;
  }
  c->step = 2;
  if (gw_submit(&c->j, start_work, start_done, c) != 0)
    start_free(c);
}

static void on_confirm(void *arg, const tg_composio_result *res, const tg_composio_account *a)
{
  start_ctx *c = arg;
  if (res->err == 0 && a && gw_account_authorized(a) && a->toolkit_slug &&
      strcmp(a->toolkit_slug, c->p->toolkit_slug) == 0 && a->auth_config_id &&
      strcmp(a->auth_config_id, c->p->auth_config_id) == 0 &&
      (!a->user_id || strcmp(a->user_id, c->j.user) == 0)) {
    tg_info("oauth_already_connected", "{s:s, s:s, s:s}", "user_id", c->j.user, "provider",
            c->p->provider, "composio_account_id", c->row_ca);
    c->j.status = 200;
    c->j.body = json_pack("{s:b, s:s, s:s, s:s}", "connected", 1, "provider", c->p->provider,
                          "status", "ACTIVE", "connected_account_id", c->row_ca);
    gw_job_reply(&c->j, NULL);
    start_free(c);
    return;
  }
  /* Not usable at Composio (an answer, not an outage): the new link replaces it. When Composio
   * gave no answer, keep the row ACTIVE; the link call will tell whether Composio is up. */
  c->stale_active = res->err == 0 || res->err == TG_ENOTFOUND;
  tg_info("oauth_reconnect", "{s:s, s:s, s:s, s:s?}", "user_id", c->j.user, "provider",
          c->p->provider, "composio_account_id", c->row_ca, "composio_status",
          a ? a->status : tg_errname(res->err));
  c->step = 1;
  if (gw_submit(&c->j, start_work, start_done, c) != 0)
    start_free(c);
}

static void start_done(void *arg, int status)
{
  start_ctx *c = arg;
  int rc;
  if (c->step == 3) {
    if (status != 0) /* the state expires unused; the cleanup deletes it later */
      tg_warn("oauth_state_not_dropped", "{s:s, s:s}", "user_id", c->j.user, "error",
              tg_errname(status));
    gw_composio_fail(&c->j, &c->fail);
    start_free(c);
    return;
  }
  if (status != 0) {
    gw_job_fail_err(&c->j, status);
    goto reply;
  }
  if (c->step == 0) {
    if (!c->force && strcmp(c->row_status, "ACTIVE") == 0 && *c->row_ca && !c->j.app->stopping &&
        tg_composio_get_account(c->j.app->composio, c->row_ca, on_confirm, c) == 0)
      return;
    c->step = 1;
    if (gw_submit(&c->j, start_work, start_done, c) != 0)
      start_free(c);
    return;
  }
  if (c->step == 2) {
    if (c->stale_active)
      tg_accounts_cache_drop(c->j.app->status_cache, c->j.user, c->p->provider);
    tg_info("oauth_started", "{s:s, s:s, s:s?}", "user_id", c->j.user, "provider", c->p->provider,
            "composio_account_id", c->ca_id);
    c->j.status = 200;
    c->j.body = json_pack("{s:s, s:s, s:I}", "redirect_url", c->redirect_url, "state", c->state,
                          "expires_at", (json_int_t)c->expires_at);
    goto reply;
  }
  if (c->j.app->stopping) {
    gw_job_fail_err(&c->j, TG_ECANCELED);
    goto reply;
  }
  rc = tg_composio_create_link(c->j.app->composio, c->p->auth_config_id, c->j.user, c->callback,
                               on_link, c);
  if (rc != 0) {
    tg_composio_result r = {.err = rc, .retry_after_ms = -1};
    drop_state(c, &r);
  }
  return;
reply:
  gw_job_reply(&c->j, NULL);
  start_free(c);
}

void gw_auth_start(gw_app *app, tg_httpd_req *req, const char *user, const char *provider)
{
  const tg_config *cfg = &app->cfg;
  const tg_provider *p;
  start_ctx *c = gw_provider_job_new(app, req, user, provider, sizeof *c, &p);
  int n;
  if (!c)
    return;
  c->p = p;
  {
    const char *f = tg_httpd_query(req, "force");
    size_t len = 0;
    tg_httpd_body(req, &len);
    c->force = f && (strcmp(f, "1") == 0 || strcmp(f, "true") == 0);
    if (len > 0) {
      json_t *body = gw_parse_body(req); /* answers 400 itself */
      if (!body) {
        free(c);
        return;
      }
      c->force |= json_is_true(json_object_get(body, "force"));
      json_decref(body);
    }
  }
  tg_random_id(c->state, sizeof c->state, "", STATE_BYTES);
  n = snprintf(c->callback, sizeof c->callback, "%s%sstate=%s", cfg->redirect_url,
               strchr(cfg->redirect_url, '?') ? "&" : "?", c->state);
  if (n < 0 || (size_t)n >= sizeof c->callback) {
    gw_job_fail(&c->j, 500, "internal", "TOOLGATE_REDIRECT_URL is too long.");
    gw_job_reply(&c->j, NULL);
    start_free(c);
    return;
  }
  c->expires_at = tg_now_ms() + GW_STATE_TTL_MS;
  if (gw_submit(&c->j, start_work, start_done, c) != 0)
    start_free(c);
}
