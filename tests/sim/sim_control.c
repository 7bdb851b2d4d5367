/*
 * composio-sim control API under /_sim/ (tests only; no API key; JSON in and out):
 *   POST  /_sim/accounts         {user_id, toolkit_slug, auth_config_id?, status?, status_reason?,
 *                                 is_disabled?, auth_refresh_required?}      -> 201 account
 *   PATCH /_sim/accounts/{id}    {status?, status_reason?, is_disabled?, auth_refresh_required?}
 *   GET   /_sim/accounts         every account, deleted ones flagged "deleted": true
 *   POST  /_sim/latency          {"ms": N}
 *   POST  /_sim/fail             {"count", "status", "retry_after"?, "path_prefix"?}
 *   POST  /_sim/link-outcome     {"outcome": "success" | "failed"}
 *   POST  /_sim/expire-initiated ages every INITIATED/INITIALIZING account past 10 minutes
 *   GET   /_sim/stats            {"calls", "by_route": {list, get, link, generate, delete, status}}
 *   POST  /_sim/reset
 * These calls are not API calls: no latency, no failures, not counted.
 */
#define _GNU_SOURCE /* asprintf */
#include "sim.h"

#include "tg_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sim_send_envelope(tg_httpd_req *r, int status, int code, const char *slug, const char *message)
{
  json_t *e = json_pack("{s:s, s:i}", "message", message, "code", code);
  if (slug) /* key order of the captured bodies: message, code, slug, status */
    json_object_set_new(e, "slug", json_string(slug));
  json_object_set_new(e, "status", json_integer(status));
  tg_httpd_respond_json(r, status, NULL, json_pack("{s:o}", "error", e));
}

static void bad(tg_httpd_req *r, const char *msg)
{
  sim_send_envelope(r, 400, 10400, "HTTP_BadRequest", msg);
}

static void ok(tg_httpd_req *r)
{
  tg_httpd_respond_json(r, 200, NULL, json_pack("{s:b}", "ok", 1));
}

/* Applies the optional fields shared by create and patch; returns an error text or NULL. */
static const char *apply_fields(sim_account *a, json_t *b, int creating)
{
  json_t *st = json_object_get(b, "status");
  json_t *reason = json_object_get(b, "status_reason");
  json_t *dis = json_object_get(b, "is_disabled");
  json_t *arr = json_object_get(b, "auth_refresh_required");
  if (st && !sim_status_valid(json_string_value(st)))
    return "status: invalid";
  if (reason && !json_is_null(reason) && !json_is_string(reason))
    return "status_reason: expected a string or null";
  if (dis && !json_is_boolean(dis))
    return "is_disabled: expected a boolean";
  if (arr && !json_is_null(arr) && !json_is_boolean(arr))
    return "auth_refresh_required: expected a boolean or null";
  if (st || creating) {
    /* set_status overwrites status and frees status_reason: pass copies. */
    char status[16];
    snprintf(status, sizeof status, "%s", st ? json_string_value(st) : a->status);
    char *keep = !reason && !creating && a->status_reason ? strdup(a->status_reason) : NULL;
    sim_account_set_status(a, status, reason ? json_string_value(reason) : keep);
    free(keep);
  } else if (reason) {
    free(a->status_reason);
    a->status_reason = json_is_string(reason) ? strdup(json_string_value(reason)) : NULL;
  }
  if (dis)
    a->is_disabled = json_is_true(dis);
  if (arr)
    a->refresh_required = json_is_null(arr) ? -1 : json_is_true(arr);
  a->updated_at = sim_now_ms();
  return NULL;
}

static void create_account(sim *s, tg_httpd_req *r, json_t *b)
{
  const char *uid = json_string_value(json_object_get(b, "user_id"));
  const char *slug = json_string_value(json_object_get(b, "toolkit_slug"));
  const char *ac = json_string_value(json_object_get(b, "auth_config_id"));
  char acbuf[128];
  if (!uid || !*uid)
    return bad(r, "user_id: Required");
  if (!slug && ac)
    slug = sim_ac_slug(s, ac);
  if (!slug || !*slug)
    return bad(r, "toolkit_slug: Required");
  if (!ac)
    ac = sim_ac_id(s, slug);
  if (!ac) {
    snprintf(acbuf, sizeof acbuf, "ac_%s", slug);
    ac = acbuf;
  }
  sim_account *a = sim_account_add(s, uid, slug, ac, "ACTIVE"); /* default status */
  if (!a)
    return sim_send_envelope(r, 500, 10500, NULL, "out of memory");
  const char *err = apply_fields(a, b, 1);
  if (err) {
    a->deleted = 1; /* never visible; dropped at the next reset */
    return bad(r, err);
  }
  if (strcmp(a->status, "INITIATED") == 0 && !a->redirect_url) {
    char tok[32];
    memcpy(tok, "lk_", 3);
    sim_nanoid(tok + 3, 16);
    a->link_token = strdup(tok);
    if (asprintf(&a->redirect_url, "%s/link/%s", s->public_url, tok) < 0)
      a->redirect_url = NULL;
  }
  tg_httpd_respond_json(r, 201, NULL, sim_account_json(a));
}

static void list_all(sim *s, tg_httpd_req *r)
{
  json_t *items = json_array();
  for (size_t i = 0; i < s->n_accts; i++) {
    json_t *o = sim_account_json(s->accts[i]);
    json_object_set_new(o, "deleted", json_boolean(s->accts[i]->deleted));
    if (s->accts[i]->link_token)
      json_object_set_new(o, "link_token", json_string(s->accts[i]->link_token));
    json_array_append_new(items, o);
  }
  tg_httpd_respond_json(r, 200, NULL, json_pack("{s:o}", "items", items));
}

void sim_control(sim *s, tg_httpd_req *r, const char *rest)
{
  const char *m = tg_httpd_method(r);
  int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0, patch = strcmp(m, "PATCH") == 0;
  size_t len;
  const char *text = tg_httpd_body(r, &len);
  json_t *b = len ? json_loadb(text, len, 0, NULL) : json_object();
  if (!json_is_object(b) && (post || patch)) {
    json_decref(b);
    return bad(r, "body: expected a JSON object");
  }
  sim_expire_sweep(s);
  if (strcmp(rest, "/accounts") == 0 && post) {
    create_account(s, r, b);
  } else if (strcmp(rest, "/accounts") == 0 && get) {
    list_all(s, r);
  } else if (strncmp(rest, "/accounts/", 10) == 0 && patch) {
    sim_account *a = sim_account_find(s, rest + 10, 1);
    const char *err = a ? apply_fields(a, b, 0) : NULL;
    if (!a)
      sim_send_envelope(r, 404, 601, "ConnectedAccount_NotFound", "no such account");
    else if (err)
      bad(r, err);
    else
      tg_httpd_respond_json(r, 200, NULL, sim_account_json(a));
  } else if (strcmp(rest, "/latency") == 0 && post) {
    json_t *ms = json_object_get(b, "ms");
    if (!json_is_integer(ms) || json_integer_value(ms) < 0)
      bad(r, "ms: expected a non-negative integer");
    else {
      s->latency_ms = (uint64_t)json_integer_value(ms);
      ok(r);
    }
  } else if (strcmp(rest, "/fail") == 0 && post) {
    json_t *count = json_object_get(b, "count"), *st = json_object_get(b, "status");
    json_t *ra = json_object_get(b, "retry_after"), *pp = json_object_get(b, "path_prefix");
    if (!json_is_integer(count) || json_integer_value(count) < 0 || !json_is_integer(st) ||
        json_integer_value(st) < 400 || json_integer_value(st) > 599 ||
        (ra && !json_is_integer(ra)) || (pp && !json_is_null(pp) && !json_is_string(pp)))
      bad(r, "expected {count: N, status: 4xx|5xx, retry_after?: s, path_prefix?: string}");
    else {
      s->fail_count = (long)json_integer_value(count);
      s->fail_status = (int)json_integer_value(st);
      s->fail_retry_after = ra ? (int)json_integer_value(ra) : 0;
      free(s->fail_prefix);
      s->fail_prefix = json_is_string(pp) ? strdup(json_string_value(pp)) : NULL;
      ok(r);
    }
  } else if (strcmp(rest, "/link-outcome") == 0 && post) {
    const char *o = json_string_value(json_object_get(b, "outcome"));
    if (!o || (strcmp(o, "success") != 0 && strcmp(o, "failed") != 0))
      bad(r, "outcome: expected success or failed");
    else {
      s->next_link_failed = strcmp(o, "failed") == 0;
      ok(r);
    }
  } else if (strcmp(rest, "/expire-initiated") == 0 && post) {
    long n = 0;
    for (size_t i = 0; i < s->n_accts; i++) {
      sim_account *a = s->accts[i];
      if (strcmp(a->status, "INITIATED") == 0 || strcmp(a->status, "INITIALIZING") == 0) {
        a->initiated_at = sim_now_ms() - SIM_EXPIRE_MS - 1000;
        n++;
      }
    }
    sim_expire_sweep(s);
    tg_httpd_respond_json(r, 200, NULL, json_pack("{s:b, s:i}", "ok", 1, "expired", (int)n));
  } else if (strcmp(rest, "/stats") == 0 && get) {
    tg_httpd_respond_json(
        r, 200, NULL,
        json_pack("{s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "calls", (json_int_t)s->calls,
                  "by_route", "list", (json_int_t)s->by_route[R_LIST], "get",
                  (json_int_t)s->by_route[R_GET], "link", (json_int_t)s->by_route[R_LINK],
                  "generate", (json_int_t)s->by_route[R_GENERATE], "delete",
                  (json_int_t)s->by_route[R_DELETE], "status", (json_int_t)s->by_route[R_STATUS]));
  } else if (strcmp(rest, "/reset") == 0 && post) {
    sim_reset(s);
    tg_info("sim_reset", NULL);
    ok(r);
  } else {
    sim_send_envelope(r, 404, 10404, "HTTP_URLNotFound", "Unknown control route");
  }
  json_decref(b);
}
