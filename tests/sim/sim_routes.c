/*
 * composio-sim routes: the Composio REST subset under /api/v3/ and /api/v3.1/, the hosted link
 * page /link/{token} and /healthz.
 *
 * Every API call goes: count it (stats, rate window) → check x-api-key (401) → forced failure
 * from /_sim/fail → the route. The answer is built at once (state changes happen at request
 * time) and, when /_sim/latency is set, handed to a uv timer that sends it N ms later; the loop
 * never sleeps. Every API answer carries the rate-limit headers of section 6.2.
 */
#define _GNU_SOURCE /* asprintf */
#include "sim.h"

#include "tg_log.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HDRS 8

typedef struct reply {
  int status;
  char *hdrs[MAX_HDRS + 1]; /* owned, NULL-terminated */
  size_t n_hdrs;
  char *body; /* owned */
  size_t len;
} reply;

struct sim_delayed {
  uv_timer_t timer;
  tg_httpd_req *req;
  reply rep;
  sim *s;
  sim_delayed *prev, *next;
};

static void reply_free(reply *p)
{
  for (size_t i = 0; i < p->n_hdrs; i++)
    free(p->hdrs[i]);
  free(p->body);
  memset(p, 0, sizeof *p);
}

static void reply_header(reply *p, const char *fmt, const char *a, long b)
{
  char line[512];
  if (p->n_hdrs >= MAX_HDRS)
    return;
  if (a)
    snprintf(line, sizeof line, fmt, a);
  else
    snprintf(line, sizeof line, fmt, b);
  p->hdrs[p->n_hdrs++] = strdup(line);
}

/* Takes ownership of body. */
static void reply_json(reply *p, int status, json_t *body)
{
  p->status = status;
  free(p->body);
  p->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!p->body) {
    p->status = 500;
    p->body = strdup("{\"error\":{\"message\":\"out of memory\",\"code\":10500,\"status\":500}}");
  }
  p->len = p->body ? strlen(p->body) : 0;
}

/* The error envelope of 6.1; slug may be NULL. */
static void reply_error(reply *p, int status, int code, const char *slug, const char *message)
{
  json_t *e = json_pack("{s:s, s:i}", "message", message, "code", code);
  if (slug) /* key order of the captured bodies: message, code, slug, status */
    json_object_set_new(e, "slug", json_string(slug));
  json_object_set_new(e, "status", json_integer(status));
  reply_json(p, status, json_pack("{s:o}", "error", e));
}

static void reply_bad_request(reply *p, const char *detail)
{
  json_t *e = json_pack("{s:s, s:i, s:i, s:s, s:[s]}", "message",
                        "Validation error while processing request", "code", 10400, "status", 400,
                        "slug", "HTTP_BadRequest", "errors", detail);
  reply_json(p, 400, json_pack("{s:o}", "error", e));
}

static void send_now(tg_httpd_req *r, reply *p)
{
  static const char *const ct = "Content-Type: application/json; charset=utf-8";
  const char *h[MAX_HDRS + 2];
  size_t n = 0;
  int has_ct = 0;
  for (size_t i = 0; i < p->n_hdrs; i++) {
    has_ct |= strncasecmp(p->hdrs[i], "Content-Type:", 13) == 0;
    h[n++] = p->hdrs[i];
  }
  if (!has_ct)
    h[n++] = ct;
  h[n] = NULL;
  tg_httpd_respond(r, p->status, h, p->body, p->len);
  reply_free(p);
}

static void on_delayed_closed(uv_handle_t *h)
{
  free(h->data);
}

static void delayed_done(sim_delayed *d)
{
  sim *s = d->s;
  if (d->prev)
    d->prev->next = d->next;
  else
    s->delayed = d->next;
  if (d->next)
    d->next->prev = d->prev;
  send_now(d->req, &d->rep);
  uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
}

static void on_delay(uv_timer_t *t)
{
  delayed_done(t->data);
}

void sim_flush_delayed(sim *s)
{
  while (s->delayed) {
    uv_timer_stop(&s->delayed->timer);
    delayed_done(s->delayed);
  }
}

/* Sends p now or after the configured latency; p is consumed either way. */
static void send_reply(sim *s, tg_httpd_req *r, reply *p, uint64_t delay_ms)
{
  if (delay_ms == 0 || s->stopping) {
    send_now(r, p);
    return;
  }
  sim_delayed *d = calloc(1, sizeof *d);
  if (!d) {
    send_now(r, p);
    return;
  }
  d->req = r;
  d->rep = *p;
  d->s = s;
  uv_timer_init(s->loop, &d->timer);
  d->timer.data = d;
  d->next = s->delayed;
  if (s->delayed)
    s->delayed->prev = d;
  s->delayed = d;
  uv_timer_start(&d->timer, on_delay, delay_ms, 0);
}

int sim_urlencode_append(char **out, const char *value)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t old = *out ? strlen(*out) : 0;
  char *n = realloc(*out, old + strlen(value) * 3 + 1);
  if (!n)
    return -1;
  char *w = n + old;
  for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '_' || *p == '.' || *p == '~') {
      *w++ = (char)*p;
    } else {
      *w++ = '%';
      *w++ = hex[*p >> 4];
      *w++ = hex[*p & 15];
    }
  }
  *w = '\0';
  *out = n;
  return 0;
}

static json_t *body_json(tg_httpd_req *r)
{
  size_t len;
  const char *b = tg_httpd_body(r, &len);
  return json_loadb(b, len, 0, NULL);
}

/* --- list --- */

/* Collects the values of name, name[] (repeated keys and comma-joined values, 1) into a JSON
 * array of strings; NULL when the parameter is absent. */
static json_t *multi_param(tg_httpd_req *r, const char *name)
{
  json_t *arr = NULL;
  const char *k, *v;
  size_t nl = strlen(name);
  for (size_t i = 0; tg_httpd_query_at(r, i, &k, &v); i++) {
    if (!(strcmp(k, name) == 0 || (strncmp(k, name, nl) == 0 && strcmp(k + nl, "[]") == 0)))
      continue;
    if (!arr)
      arr = json_array();
    char *copy = strdup(v);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
      if (*t)
        json_array_append_new(arr, json_string(t));
    free(copy);
  }
  return arr;
}

static int in_set(const json_t *set, const char *v)
{
  size_t i;
  json_t *e;
  if (!set)
    return 1;
  json_array_foreach(set, i, e) if (strcmp(json_string_value(e), v) == 0) return 1;
  return 0;
}

static int sort_by_updated, sort_asc;

static int cmp_accounts(const void *pa, const void *pb)
{
  const sim_account *a = *(sim_account *const *)pa, *b = *(sim_account *const *)pb;
  uint64_t ka = sort_by_updated ? a->updated_at : a->created_at;
  uint64_t kb = sort_by_updated ? b->updated_at : b->created_at;
  int c = ka < kb ? -1 : ka > kb ? 1 : (a->seq < b->seq ? -1 : a->seq > b->seq);
  return sort_asc ? c : -c;
}

/* The cursor is opaque to clients: base64url of "o:<offset>" [I]. */
static void make_cursor(size_t offset, char *out, size_t cap)
{
  char raw[32];
  int n = snprintf(raw, sizeof raw, "o:%zu", offset);
  sodium_bin2base64(out, cap, (const unsigned char *)raw, (size_t)n,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static int parse_cursor(const char *c, size_t *offset)
{
  unsigned char raw[32];
  size_t n;
  if (sodium_base642bin(raw, sizeof raw - 1, c, strlen(c), NULL, &n, NULL,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return -1;
  raw[n] = '\0';
  char *end;
  if (n < 3 || memcmp(raw, "o:", 2) != 0)
    return -1;
  errno = 0;
  unsigned long long v = strtoull((char *)raw + 2, &end, 10);
  if (errno || *end)
    return -1;
  *offset = (size_t)v;
  return 0;
}

static void api_list(sim *s, tg_httpd_req *r, reply *p)
{
  static const char *const names[] = {"user_ids", "toolkit_slugs", "statuses", "auth_config_ids",
                                      "connected_account_ids"};
  json_t *f[5] = {0};
  sim_account **match = NULL;
  size_t limit = 20, offset = 0;
  const char *lim = tg_httpd_query(r, "limit");
  const char *cur = tg_httpd_query(r, "cursor");
  const char *ob = tg_httpd_query(r, "order_by");
  const char *od = tg_httpd_query(r, "order_direction");
  for (int i = 0; i < 5; i++)
    f[i] = multi_param(r, names[i]);
  size_t i;
  json_t *e;
  json_array_foreach(f[2], i, e) if (!sim_status_valid(json_string_value(e)))
  {
    reply_bad_request(p, "statuses: invalid enum value");
    goto done;
  }
  if (lim && *lim) {
    char *end;
    long v = strtol(lim, &end, 10);
    if (*end || v < 1) {
      reply_bad_request(p, "limit: expected a positive number");
      goto done;
    }
    limit = v > 100 ? 100 : (size_t)v; /* max 100 (TS SDK MAX_LIMIT_ALLOWED_BY_API); clamp [I] */
  }
  if (cur && *cur && parse_cursor(cur, &offset) != 0) {
    reply_bad_request(p, "cursor: invalid cursor");
    goto done;
  }
  if (ob && *ob && strcmp(ob, "created_at") != 0 && strcmp(ob, "updated_at") != 0) {
    reply_bad_request(p, "order_by: expected created_at or updated_at");
    goto done;
  }
  if (od && *od && strcmp(od, "asc") != 0 && strcmp(od, "desc") != 0) {
    reply_bad_request(p, "order_direction: expected asc or desc");
    goto done;
  }
  sort_by_updated = ob && strcmp(ob, "updated_at") == 0;
  sort_asc = od && strcmp(od, "asc") == 0;

  match = calloc(s->n_accts + 1, sizeof *match);
  size_t n = 0;
  for (size_t k = 0; k < s->n_accts; k++) {
    sim_account *a = s->accts[k];
    if (!a->deleted && in_set(f[0], a->user_id) && in_set(f[1], a->toolkit) &&
        in_set(f[2], a->status) && in_set(f[3], a->auth_config_id) && in_set(f[4], a->id))
      match[n++] = a;
  }
  qsort(match, n, sizeof *match, cmp_accounts);
  json_t *items = json_array();
  for (size_t k = offset; k < n && k < offset + limit; k++)
    json_array_append_new(items, sim_account_json(match[k]));
  json_t *next = json_null();
  if (offset + limit < n) {
    char c[64];
    make_cursor(offset + limit, c, sizeof c);
    next = json_string(c);
  }
  reply_json(p, 200,
             json_pack("{s:o, s:o, s:I, s:I, s:I}", "items", items, "next_cursor", next,
                       "total_pages", (json_int_t)((n + limit - 1) / limit), "current_page",
                       (json_int_t)(offset / limit + 1), "total_items", (json_int_t)n));
done:
  free(match);
  for (int k = 0; k < 5; k++)
    json_decref(f[k]);
}

/* --- one account --- */

static void not_found_account(reply *p, const char *id)
{
  char msg[256];
  snprintf(msg, sizeof msg, "Connected account %s does not exist or was deleted", id);
  /* 600-699 is the ConnectedAccount code range (6.1); the exact code is [I]. */
  reply_error(p, 404, 601, "ConnectedAccount_NotFound", msg);
}

static void api_get(sim *s, const char *id, reply *p)
{
  sim_account *a = sim_account_find(s, id, 0);
  if (!a)
    not_found_account(p, id);
  else
    reply_json(p, 200, sim_account_json(a));
}

static void api_delete(sim *s, const char *id, reply *p)
{
  sim_account *a = sim_account_find(s, id, 0);
  if (!a) {
    not_found_account(p, id);
    return;
  }
  a->deleted = 1;
  a->updated_at = sim_now_ms();
  free(a->link_token);
  a->link_token = NULL;
  reply_json(p, 200, json_pack("{s:b}", "success", 1));
}

static void api_status(sim *s, tg_httpd_req *r, const char *id, reply *p)
{
  json_t *b = body_json(r);
  json_t *en = json_object_get(b, "enabled");
  sim_account *a = sim_account_find(s, id, 0);
  if (!json_is_boolean(en))
    reply_bad_request(p, "enabled: required boolean");
  else if (!a)
    not_found_account(p, id);
  else {
    int on = json_is_true(en);
    a->is_disabled = !on;
    /* Only ACTIVE <-> INACTIVE move; other statuses keep theirs [I]. */
    if (on && strcmp(a->status, "INACTIVE") == 0)
      sim_account_set_status(a, "ACTIVE", NULL);
    else if (!on && strcmp(a->status, "ACTIVE") == 0)
      sim_account_set_status(a, "INACTIVE", "Connection status updated by user");
    a->updated_at = sim_now_ms();
    reply_json(p, 200, json_pack("{s:b}", "success", 1));
  }
  json_decref(b);
}

/* --- link --- */

static void api_link(sim *s, tg_httpd_req *r, reply *p)
{
  json_t *b = body_json(r);
  const char *ac = json_string_value(json_object_get(b, "auth_config_id"));
  const char *uid = json_string_value(json_object_get(b, "user_id"));
  json_t *cbj = json_object_get(b, "callback_url");
  const char *cb = json_string_value(cbj);
  if (!json_is_object(b))
    reply_bad_request(p, "body: expected a JSON object");
  else if (!ac || !*ac)
    reply_bad_request(p, "auth_config_id: Required");
  else if (!uid || !*uid)
    reply_bad_request(p, "user_id: Required");
  else if (cbj && !json_is_null(cbj) && !cb)
    reply_bad_request(p, "callback_url: expected a string");
  else if (!sim_ac_slug(s, ac)) {
    char msg[256];
    snprintf(msg, sizeof msg, "Auth config %s not found", ac);
    reply_error(p, 404, 10404, "AuthConfig_NotFound", msg); /* code and slug [I] */
  } else {
    sim_account *a = sim_account_add(s, uid, sim_ac_slug(s, ac), ac, "INITIATED");
    char tok[32], exp[32];
    memcpy(tok, "lk_", 3);
    sim_nanoid(tok + 3, 16);
    char *url = NULL;
    if (a && asprintf(&url, "%s/link/%s", s->public_url, tok) > 0) {
      a->link_token = strdup(tok);
      a->redirect_url = url;
      a->callback_url = cb && *cb ? strdup(cb) : NULL;
      sim_iso(a->initiated_at + SIM_EXPIRE_MS, exp);
      reply_json(p, 201,
                 json_pack("{s:s, s:s, s:s, s:s}", "link_token", tok, "redirect_url", url,
                           "expires_at", exp, "connected_account_id", a->id));
    } else {
      reply_error(p, 500, 10500, NULL, "out of memory");
    }
  }
  json_decref(b);
}

/* --- MCP generate (4.1) --- */

static json_t *url_list(const char *base, const char *key, json_t *vals)
{
  json_t *out = json_array();
  size_t i;
  json_t *e;
  json_array_foreach(vals, i, e)
  {
    char *u = NULL;
    if (asprintf(&u, "%s%c%s=", base, strchr(base, '?') ? '&' : '?', key) < 0)
      continue;
    sim_urlencode_append(&u, json_string_value(e));
    json_array_append_new(out, json_string(u));
    free(u);
  }
  return out;
}

static int string_array_or_absent(json_t *v)
{
  size_t i;
  json_t *e;
  if (!v || json_is_null(v))
    return 1;
  if (!json_is_array(v))
    return 0;
  json_array_foreach(v, i, e) if (!json_is_string(e)) return 0;
  return 1;
}

static void api_generate(sim *s, tg_httpd_req *r, reply *p)
{
  json_t *b = body_json(r);
  const char *sid = json_string_value(json_object_get(b, "mcp_server_id"));
  json_t *uids = json_object_get(b, "user_ids");
  json_t *cids = json_object_get(b, "connected_account_ids");
  json_t *managed = json_object_get(b, "managed_auth_by_composio");
  if (!sid || !*sid)
    reply_bad_request(p, "mcp_server_id: Required");
  else if (!string_array_or_absent(uids) || !string_array_or_absent(cids))
    reply_bad_request(p, "user_ids / connected_account_ids: expected arrays of strings");
  else if (managed && !json_is_boolean(managed))
    reply_bad_request(p, "managed_auth_by_composio: expected a boolean");
  else {
    char *base = NULL;
    if (s->mcp_url)
      base = strdup(s->mcp_url);
    else if (asprintf(&base, "%s/v3/mcp/", s->public_url) > 0)
      sim_urlencode_append(&base, sid);
    json_t *empty = json_array();
    reply_json(
        p, 200,
        json_pack("{s:s, s:o, s:o}", "mcp_url", base, "user_ids_url",
                  url_list(base, "user_id", json_is_array(uids) ? uids : empty),
                  "connected_account_urls",
                  url_list(base, "connected_account_id", json_is_array(cids) ? cids : empty)));
    json_decref(empty);
    free(base);
  }
  json_decref(b);
}

/* --- API dispatch --- */

/* Classifies rest (the path after the version prefix); *id points into rest for routes with
 * an id (copied into idbuf). */
static enum route classify(const char *method, const char *rest, char *idbuf, size_t cap)
{
  static const char ca[] = "/connected_accounts";
  idbuf[0] = '\0';
  if (strcmp(rest, "/mcp/servers/generate") == 0)
    return strcmp(method, "POST") == 0 ? R_GENERATE : R_UNKNOWN;
  if (strncmp(rest, ca, sizeof ca - 1) != 0)
    return R_UNKNOWN;
  const char *t = rest + sizeof ca - 1;
  if (*t == '\0' || strcmp(t, "/") == 0)
    return strcmp(method, "GET") == 0 ? R_LIST : R_UNKNOWN;
  if (strcmp(t, "/link") == 0)
    return strcmp(method, "POST") == 0 ? R_LINK : R_UNKNOWN;
  t++;
  const char *slash = strchr(t, '/');
  size_t idlen = slash ? (size_t)(slash - t) : strlen(t);
  if (idlen == 0 || idlen >= cap)
    return R_UNKNOWN;
  memcpy(idbuf, t, idlen);
  idbuf[idlen] = '\0';
  if (!slash)
    return strcmp(method, "GET") == 0      ? R_GET
           : strcmp(method, "DELETE") == 0 ? R_DELETE
                                           : R_UNKNOWN;
  if (strcmp(slash, "/status") == 0 && strcmp(method, "PATCH") == 0)
    return R_STATUS;
  return R_UNKNOWN;
}

static void mask_key(const char *key, char *out, size_t cap)
{
  /* "ak_****" as in the captured body (1): the first three characters, then stars. A missing
   * key reads as the literal "ak_****" [I]. */
  if (!key || strlen(key) < 3)
    snprintf(out, cap, "ak_****");
  else
    snprintf(out, cap, "%.3s****", key);
}

static void handle_api(sim *s, tg_httpd_req *r, const char *rest)
{
  reply p = {0};
  char id[128];
  enum route rt = classify(tg_httpd_method(r), rest, id, sizeof id);
  uint64_t now = sim_now_ms();
  s->calls++;
  s->by_route[rt]++;
  if (now - s->window_start >= 60000) {
    s->window_start = now;
    s->window_count = 0;
  }
  s->window_count++;
  long remaining = SIM_RATE_LIMIT - s->window_count;
  long reset_s = (long)((s->window_start + 60000 - now + 999) / 1000);

  const char *key = tg_httpd_header(r, "x-api-key");
  int forced = 0;
  if (s->fail_count > 0 && s->fail_status)
    forced = !s->fail_prefix ||
             strncmp(tg_httpd_path(r), s->fail_prefix, strlen(s->fail_prefix)) == 0 ||
             strncmp(rest, s->fail_prefix, strlen(s->fail_prefix)) == 0;

  if (!key || strcmp(key, s->api_key) != 0) {
    char masked[32], msg[64];
    mask_key(key, masked, sizeof masked);
    snprintf(msg, sizeof msg, "Invalid API key: %s", masked);
    reply_error(&p, 401, 10401, "HTTP_Unauthorized", msg);
  } else if (forced) {
    s->fail_count--;
    if (s->fail_status == 429) {
      reply_json(
          &p, 429,
          json_pack("{s:s}", "message", "Rate limit exceeded. Limit: 2000 requests per 1 minutes"));
      reply_header(&p, "Retry-After: %ld", NULL,
                   s->fail_retry_after > 0 ? s->fail_retry_after : reset_s);
      remaining = 0;
    } else {
      reply_error(&p, s->fail_status, s->fail_status == 401 ? 10401 : 10000 + s->fail_status, NULL,
                  "Injected failure (composio-sim)");
      if (s->fail_retry_after > 0)
        reply_header(&p, "Retry-After: %ld", NULL, s->fail_retry_after);
    }
  } else {
    sim_expire_sweep(s);
    switch (rt) {
    case R_LIST:
      api_list(s, r, &p);
      break;
    case R_GET:
      api_get(s, id, &p);
      break;
    case R_LINK:
      api_link(s, r, &p);
      break;
    case R_GENERATE:
      api_generate(s, r, &p);
      break;
    case R_DELETE:
      api_delete(s, id, &p);
      break;
    case R_STATUS:
      api_status(s, r, id, &p);
      break;
    default:
      reply_error(&p, 404, 10404, "HTTP_URLNotFound", "Route not found");
      break;
    }
  }
  reply_header(&p, "X-RateLimit: %ld", NULL, SIM_RATE_LIMIT);
  reply_header(&p, "X-RateLimit-Remaining: %ld", NULL, remaining < 0 ? 0 : remaining);
  reply_header(&p, "X-RateLimit-Window-Size: %s", "60s", 0);
  tg_info("sim_api", "{s:s, s:s, s:i}", "method", tg_httpd_method(r), "path", tg_httpd_path(r),
          "status", p.status);
  send_reply(s, r, &p, s->latency_ms);
}

/* --- hosted link page (2.5): the browser's side, no API key --- */

static void handle_link_page(sim *s, tg_httpd_req *r, const char *token)
{
  reply p = {0};
  sim_account *a = NULL;
  sim_expire_sweep(s);
  for (size_t i = 0; i < s->n_accts && strcmp(tg_httpd_method(r), "GET") == 0; i++)
    if (!s->accts[i]->deleted && s->accts[i]->link_token &&
        strcmp(s->accts[i]->link_token, token) == 0)
      a = s->accts[i];
  if (!a) {
    p.status = 404;
    p.body = strdup("<!doctype html><title>Link expired</title><p>This link is invalid or has "
                    "expired.</p>\n");
    p.len = strlen(p.body);
    reply_header(&p, "Content-Type: %s", "text/html; charset=utf-8", 0);
    send_now(r, &p);
    return;
  }
  int failed = s->next_link_failed;
  s->next_link_failed = 0;
  if (failed)
    sim_account_set_status(a, "FAILED", "OAuth callback failed during token exchange");
  else
    sim_account_set_status(a, "ACTIVE", NULL);
  free(a->redirect_url);
  a->redirect_url = NULL;
  tg_info("sim_link_completed", "{s:s, s:s}", "connected_account_id", a->id, "status", a->status);
  if (a->callback_url) {
    /* Append status and connected_account_id, keeping existing parameters and any fragment. */
    const char *cb = a->callback_url;
    const char *hash = strchr(cb, '#');
    size_t head = hash ? (size_t)(hash - cb) : strlen(cb);
    const char *q = memchr(cb, '?', head);
    char sep = q ? (head > 0 && (cb[head - 1] == '?' || cb[head - 1] == '&') ? 0 : '&') : '?';
    char *loc = NULL;
    if (asprintf(&loc, "Location: %.*s%s%sstatus=%s&connected_account_id=%s%s", (int)head, cb,
                 sep ? (char[2]){sep, 0} : "", "", failed ? "failed" : "success", a->id,
                 hash ? hash : "") > 0) {
      p.hdrs[p.n_hdrs++] = loc;
    }
    p.status = 302;
    p.body = strdup("");
    p.len = 0;
    reply_header(&p, "Content-Type: %s", "text/plain", 0);
  } else {
    p.status = 200;
    p.body = strdup(failed ? "<!doctype html><p>Connection failed.</p>\n"
                           : "<!doctype html><p>Connection successful. You can close this "
                             "window.</p>\n");
    p.len = strlen(p.body);
    reply_header(&p, "Content-Type: %s", "text/html; charset=utf-8", 0);
  }
  send_now(r, &p);
}

void sim_handle(tg_httpd_req *r, void *arg)
{
  sim *s = arg;
  const char *path = tg_httpd_path(r);
  if (strcmp(path, "/healthz") == 0) {
    tg_httpd_respond_json(r, 200, NULL, json_pack("{s:b}", "ok", 1));
    return;
  }
  if (strncmp(path, "/link/", 6) == 0) {
    handle_link_page(s, r, path + 6);
    return;
  }
  if (strncmp(path, "/_sim/", 6) == 0) {
    sim_control(s, r, path + 5);
    return;
  }
  if (strncmp(path, "/api/v3.1/", 10) == 0) {
    handle_api(s, r, path + 9);
    return;
  }
  if (strncmp(path, "/api/v3/", 8) == 0) {
    handle_api(s, r, path + 7);
    return;
  }
  if (strncmp(path, "/api/", 5) == 0) {
    handle_api(s, r, path + 4); /* unknown version: 401 or 404 like any unknown route */
    return;
  }
  sim_send_envelope(r, 404, 10404, "HTTP_URLNotFound", "Route not found");
}
