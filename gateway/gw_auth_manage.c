/*
 * gw_auth_manage: DELETE /api/mcp/auth/{provider} (disconnect) and GET /api/mcp/auth/debug (a
 * redacted triage view of the caller's own connections), DESIGN.md section 3.
 *
 * Disconnect: (job, one transaction) the caller's row for the provider becomes DISCONNECTED
 * with status_reason DELETE_PENDING and its MCP URL and headers are cleared
 * (tg_store_accounts_disconnect) → (loop) DELETE /connected_accounts/{ca} at Composio; 2xx or 404
 * (already gone) count as done → (job) status_reason becomes DELETED → 200. Each of the two
 * writes is a change of the row and moves its version by one; the answer carries the version
 * after the last. Idempotent: a second call on a DISCONNECTED row changes nothing and only
 * retries the Composio delete when it is still pending. When Composio cannot be reached the
 * local disconnect stands and the answer says composio_deleted: false.
 *
 * Debug: never shows a secret: MCP URLs lose userinfo, query values and fragment; headers
 * appear only as has_headers; OAuth state values are not shown (counts only).
 */
#include "gw.h"
#include "tg_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON_DELETE_PENDING "disconnected_by_user (composio delete pending)"
#define REASON_DELETED "disconnected_by_user"

/* ---------------------------------------------------------------- disconnect */

typedef struct disc_ctx {
  gw_job j;
  const tg_provider *p;
  int step;        /* 0: disconnect; 1: record the Composio delete */
  int found;       /* the user has a row for p */
  int changed;     /* this call disconnected it */
  int need_delete; /* Composio delete still to do */
  int64_t row_id, version;
  char ca[160];
  int deleted; /* -1 not attempted, 0 failed, 1 done */
  const char *composio_error;
} disc_ctx;
GW_JOB_FIRST(disc_ctx);

static int disc_step0(tg_db *db, disc_ctx *c)
{
  json_t *row;
  const char *st, *reason, *ca;
  int rc;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  row = tg_store_accounts_find(db, &rc, c->j.user, c->p->auth_config_id);
  if (!row) {
    tg_db_rollback(db);
    return rc == TG_ENOTFOUND ? 0 : rc;
  }
  c->found = 1;
  c->row_id = (int64_t)json_integer_value(json_object_get(row, "id"));
  c->version = (int64_t)json_integer_value(json_object_get(row, "version"));
  st = json_string_value(json_object_get(row, "status"));
  reason = json_string_value(json_object_get(row, "status_reason"));
  ca = json_string_value(json_object_get(row, "composio_account_id"));
  snprintf(c->ca, sizeof c->ca, "%s", ca ? ca : "");
  if (st && strcmp(st, "DISCONNECTED") == 0) {
    c->need_delete = *c->ca && reason && strcmp(reason, REASON_DELETE_PENDING) == 0;
    json_decref(row);
    tg_db_rollback(db);
    return 0;
  }
  json_decref(row);
  rc = tg_store_accounts_disconnect(db, c->row_id, *c->ca ? REASON_DELETE_PENDING : REASON_DELETED,
                                    tg_now_ms());
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0) {
    tg_db_rollback(db);
    return rc;
  }
  c->changed = 1;
  c->version++;
  c->need_delete = *c->ca != 0;
  return 0;
}

static int disc_work(tg_db *db, void *arg)
{
  disc_ctx *c = arg;
  int rc, n = 0;
  if (c->step == 0)
    return disc_step0(db, c);
  rc = tg_store_accounts_set_disconnect_reason(db, c->row_id, c->ca, REASON_DELETED, tg_now_ms(),
                                               &n);
  c->version += rc == 0 && n == 1;
  return rc;
}

static void disc_reply(disc_ctx *c)
{
  tg_info("oauth_disconnected", "{s:s, s:s, s:b, s:i, s:s?}", "user_id", c->j.user, "provider",
          c->p->provider, "changed", c->changed, "composio_deleted", c->deleted, "composio_error",
          c->composio_error);
  c->j.status = 200;
  c->j.body = json_pack("{s:s, s:s, s:b}", "provider", c->p->provider, "status", "DISCONNECTED",
                        "changed", c->changed);
  if (c->j.body) {
    if (c->found)
      json_object_set_new(c->j.body, "version", json_integer(c->version));
    json_object_set_new(c->j.body, "composio_deleted",
                        c->deleted < 0 ? json_null() : json_boolean(c->deleted));
    if (c->composio_error)
      json_object_set_new(c->j.body, "composio_error", json_string(c->composio_error));
  }
  gw_job_reply(&c->j, NULL);
  free(c);
}

static void disc_done(void *arg, int status);

static void on_deleted(void *arg, const tg_composio_result *res)
{
  disc_ctx *c = arg;
  if (res->err == 0 || res->err == TG_ENOTFOUND) {
    c->deleted = 1;
    c->step = 1;
    if (gw_submit(&c->j, disc_work, disc_done, c) != 0)
      free(c);
    return;
  }
  c->deleted = 0;
  c->composio_error = tg_errname(res->err);
  tg_warn("composio_delete_failed", "{s:s, s:s, s:s, s:i}", "user_id", c->j.user, "provider",
          c->p->provider, "error", c->composio_error, "http_status", (int)res->http_status);
  disc_reply(c);
}

static void disc_done(void *arg, int status)
{
  disc_ctx *c = arg;
  int rc;
  if (status != 0) {
    gw_job_fail_err(&c->j, status);
    gw_job_reply(&c->j, NULL);
    free(c);
    return;
  }
  if (c->step == 1 || !c->need_delete) {
    if (c->step == 0 && c->changed)
      tg_accounts_cache_drop(c->j.app->status_cache, c->j.user, c->p->provider);
    disc_reply(c);
    return;
  }
  tg_accounts_cache_drop(c->j.app->status_cache, c->j.user, c->p->provider);
  rc = c->j.app->stopping ? TG_ECANCELED
                          : tg_composio_delete_account(c->j.app->composio, c->ca, on_deleted, c);
  if (rc != 0) {
    tg_composio_result r = {.err = rc, .retry_after_ms = -1};
    on_deleted(c, &r);
  }
}

void gw_auth_disconnect(gw_app *app, tg_httpd_req *req, const char *user, const char *provider)
{
  const tg_provider *p;
  disc_ctx *c = gw_provider_job_new(app, req, user, provider, sizeof *c, &p);
  if (!c)
    return;
  c->p = p;
  c->deleted = -1;
  if (gw_submit(&c->j, disc_work, disc_done, c) != 0)
    free(c);
}

/* ---------------------------------------------------------------- debug */

/* A copy of url without userinfo, query values and fragment ("k=REDACTED"); new string. */
static char *redact_url(const char *url)
{
  size_t n = strlen(url);
  /* Worst case: every query byte is an empty parameter ("&") → "=REDACTED&": 10 bytes. */
  char *out = malloc(10 * n + 16), *o = out;
  const char *p = url, *scheme = strstr(url, "://"), *q;
  if (!out)
    return NULL;
  if (scheme) {
    const char *host = scheme + 3, *end = host + strcspn(host, "/?#"), *at = NULL;
    for (const char *x = host; x < end; x++)
      if (*x == '@')
        at = x;
    memcpy(o, url, (size_t)(host - url));
    o += host - url;
    p = at ? at + 1 : host;
  }
  q = p + strcspn(p, "?#");
  memcpy(o, p, (size_t)(q - p));
  o += q - p;
  if (*q == '?') {
    const char *s = q + 1, *end = s + strcspn(s, "#");
    *o++ = '?';
    while (s < end) {
      const char *amp = memchr(s, '&', (size_t)(end - s)), *stop = amp ? amp : end;
      const char *eq = memchr(s, '=', (size_t)(stop - s));
      size_t kl = (size_t)((eq ? eq : stop) - s);
      memcpy(o, s, kl);
      o += kl;
      memcpy(o, "=REDACTED", 9);
      o += 9;
      if (amp)
        *o++ = '&';
      s = amp ? amp + 1 : end;
    }
  }
  *o = 0;
  return out;
}

typedef struct debug_ctx {
  gw_job j;
  json_t *rows, *states;
} debug_ctx;
GW_JOB_FIRST(debug_ctx);

static int debug_work(tg_db *db, void *arg)
{
  debug_ctx *c = arg;
  int rc;
  c->rows = tg_store_accounts_list_endpoints(db, &rc, c->j.user);
  if (!c->rows)
    return rc;
  c->states = tg_store_oauth_open_states(db, &rc, c->j.user, tg_now_ms());
  return c->states ? 0 : rc;
}

static void debug_done(void *arg, int status)
{
  debug_ctx *c = arg;
  size_t i;
  json_t *row, *conns;
  if (status != 0) {
    gw_job_fail_err(&c->j, status);
    goto reply;
  }
  conns = json_array();
  json_array_foreach(c->rows, i, row)
  {
    const char *url = json_string_value(json_object_get(row, "mcp_url"));
    char *red = url ? redact_url(url) : NULL;
    json_t *e = json_deep_copy(row);
    json_object_del(e, "mcp_url");
    json_object_set_new(e, "mcp_url_redacted", red ? json_string(red) : json_null());
    json_object_set_new(e, "has_mcp_url", json_boolean(url != NULL));
    json_object_set_new(e, "has_headers",
                        json_boolean(json_integer_value(json_object_get(row, "has_headers"))));
    free(red);
    json_array_append_new(conns, e);
  }
  c->j.status = 200;
  c->j.body = json_pack("{s:s, s:o, s:O}", "user_id", c->j.user, "connections", conns,
                        "open_oauth_states", c->states);
reply:
  gw_job_reply(&c->j, NULL);
  json_decref(c->rows);
  json_decref(c->states);
  free(c);
}

void gw_auth_debug(gw_app *app, tg_httpd_req *req, const char *user)
{
  gw_job_start(app, req, user, sizeof(debug_ctx), debug_work, debug_done);
}
