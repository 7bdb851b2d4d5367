/*
 * tg_composio: the Composio v3 REST calls toolgate needs, on tg_http (curl multi on libuv).
 *
 * Facts: ../shared/reference/composio-api.md sections 1 (x-api-key, JSON), 2.2 (list with
 * cursor paging), 2.3 (ConnectedAccount), 2.5 (link, 201), 2.6 (get/delete), 4.1 (generate),
 * 6 (error envelope, Retry-After, 429 body with a top-level message).
 *
 * Invariants:
 * - Every call in flight is a `call` linked in c->calls and owns at most one tg_http transfer.
 *   A call is unlinked before its user callback runs, so the callback may free the client.
 * - The user callback runs exactly once per accepted call, never after tg_composio_free().
 * - The API key lives only in the x-api-key header line; it is never logged or put in a message.
 * - A list follows next_cursor at most MAX_PAGES times and fails with TG_EPROTO on a repeated
 *   cursor, so a misbehaving server cannot keep a call alive forever.
 */
#include "tg_composio.h"
#include "tg_buf.h"
#include "tg_composio_page.h"
#include "tg_err.h"
#include "tg_log.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PAGES 100
#define PAGE_LIMIT 100
#define MAX_BODY (4u << 20)
#define MAX_QUERY (1u << 20) /* a list query string: far beyond any URL a server takes */

enum kind { K_LIST, K_GET, K_LINK, K_GENERATE, K_DELETE };

typedef void (*any_cb)(void); /* a callback of any kind, cast back by kind */

struct tg_composio {
  tg_http_client *http;
  char *base_url;
  char *key_header; /* "x-api-key: <key>" */
  long timeout_ms;
  struct call *calls; /* doubly linked, in flight */
};

typedef struct call {
  tg_composio *c;
  struct call *prev, *next;
  tg_http_transfer *t;
  enum kind kind;
  const char *method;
  char *path;     /* for logs: no query string */
  char *list_url; /* K_LIST: URL of page 1, cursor appended for later pages */
  union {
    tg_composio_list_cb list;
    tg_composio_account_cb get;
    tg_composio_link_cb link;
    tg_composio_url_cb url;
    tg_composio_done_cb done;
  } cb;
  void *arg;
  int want_ca_url;           /* K_GENERATE: a connected account id was given */
  tg_composio_page *decoded; /* K_LIST: every page so far (tg_composio_page.h) */
  size_t n_decoded;
  json_t *cursors; /* K_LIST: cursors already followed */
  int pages;
  char msg[160];
} call;

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
  va_list ap;
  int n;
  char *p;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  p = malloc((size_t)n + 1);
  if (!p)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

/* URL-encodes s; the result is freed with curl_free(). */
static char *esc(const char *s)
{
  return curl_easy_escape(NULL, s, 0);
}

int tg_composio_new(tg_composio **out, tg_http_client *http, const char *base_url,
                    const char *api_key, long timeout_ms)
{
  tg_composio *c;
  size_t n;

  *out = NULL;
  if (!http || !base_url || !*base_url || !api_key)
    return TG_EINVAL;
  /* A header line must not be split by the key itself. */
  if (strpbrk(api_key, "\r\n"))
    return TG_EINVAL;
  c = calloc(1, sizeof *c);
  if (!c)
    return TG_ENOMEM;
  c->http = http;
  c->timeout_ms = timeout_ms;
  c->base_url = strdup(base_url);
  c->key_header = str_printf("x-api-key: %s", api_key);
  if (!c->base_url || !c->key_header) {
    tg_composio_free(c);
    return TG_ENOMEM;
  }
  n = strlen(c->base_url);
  while (n > 0 && c->base_url[n - 1] == '/')
    c->base_url[--n] = 0;
  *out = c;
  return 0;
}

static void call_free(call *k)
{
  if (!k)
    return;
  free(k->path);
  free(k->list_url);
  for (size_t i = 0; i < k->n_decoded; i++)
    tg_composio_page_clear(&k->decoded[i]);
  free(k->decoded);
  json_decref(k->cursors);
  free(k);
}

static void unlink_call(call *k)
{
  tg_composio *c = k->c;
  if (k->prev)
    k->prev->next = k->next;
  else if (c->calls == k)
    c->calls = k->next;
  if (k->next)
    k->next->prev = k->prev;
  k->prev = k->next = NULL;
}

void tg_composio_free(tg_composio *c)
{
  if (!c)
    return;
  while (c->calls) {
    call *k = c->calls;
    unlink_call(k);
    tg_http_cancel(k->t);
    call_free(k);
  }
  if (c->key_header) {
    /* Do not leave the key lying around in freed memory. */
    memset(c->key_header, 0, strlen(c->key_header));
    free(c->key_header);
  }
  free(c->base_url);
  free(c);
}

void tg_composio_cancel(tg_composio *c, void *arg)
{
  call *k, *next;
  if (!c)
    return;
  for (k = c->calls; k; k = next) {
    next = k->next;
    if (k->arg != arg)
      continue;
    unlink_call(k);
    tg_http_cancel(k->t);
    call_free(k);
  }
}

static void on_http_done(void *arg, int err, const tg_http_response *resp);

/* Starts (or continues, for list pages) k's HTTP request. Returns 0 or a TG_E* code. */
static int send_call(call *k, const char *url, const char *body)
{
  tg_composio *c = k->c;
  const char *headers[4] = {c->key_header, "Accept: application/json", NULL, NULL};
  tg_http_request req = {0};

  if (body)
    headers[2] = "Content-Type: application/json";
  req.method = k->method;
  req.url = url;
  req.headers = headers;
  req.body = body;
  req.body_len = body ? strlen(body) : 0;
  req.timeout_ms = k->c->timeout_ms;
  req.max_body = MAX_BODY;
  return tg_http_send(c->http, &req, on_http_done, k, &k->t);
}

/* Creates a call, sends it, and links it on success. Takes nothing; copies path. */
static int start_call(tg_composio *c, enum kind kind, const char *method, const char *path,
                      const char *query, const json_t *body, any_cb cb, void *arg, call **out)
{
  call *k = calloc(1, sizeof *k);
  char *url = NULL, *text = NULL;
  int rc = TG_ENOMEM;

  if (out)
    *out = NULL;
  if (!k)
    return TG_ENOMEM;
  k->c = c;
  k->kind = kind;
  k->method = method;
  k->arg = arg;
  switch (kind) {
  case K_LIST:
    k->cb.list = (tg_composio_list_cb)cb;
    break;
  case K_GET:
    k->cb.get = (tg_composio_account_cb)cb;
    break;
  case K_LINK:
    k->cb.link = (tg_composio_link_cb)cb;
    break;
  case K_GENERATE:
    k->cb.url = (tg_composio_url_cb)cb;
    break;
  case K_DELETE:
    k->cb.done = (tg_composio_done_cb)cb;
    break;
  }
  k->path = strdup(path);
  url = str_printf("%s%s%s%s", c->base_url, path, query ? "?" : "", query ? query : "");
  if (!k->path || !url)
    goto fail;
  if (body && !(text = json_dumps(body, JSON_COMPACT)))
    goto fail;
  if (kind == K_LIST) {
    k->cursors = json_array();
    k->list_url = strdup(url);
    if (!k->cursors || !k->list_url)
      goto fail;
  }
  rc = send_call(k, url, text);
  if (rc)
    goto fail;
  free(url);
  free(text);
  k->next = c->calls;
  if (c->calls)
    c->calls->prev = k;
  c->calls = k;
  if (out)
    *out = k;
  return 0;
fail:
  free(url);
  free(text);
  call_free(k);
  return rc;
}

static int map_status(long status)
{
  if (status >= 200 && status < 300)
    return 0;
  if (status == 401 || status == 403)
    return TG_EAUTH;
  if (status == 404)
    return TG_ENOTFOUND;
  if (status == 429)
    return TG_ERATELIMIT;
  return TG_EHTTP;
}

/* Composio's error.message, or a top-level message (the 429 body), or NULL. */
static const char *body_message(const json_t *body)
{
  const char *m = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
  if (!m)
    m = json_string_value(json_object_get(body, "message"));
  return m;
}

int tg_composio_decode_account(const json_t *o, tg_composio_account *a)
{
  const json_t *val;

  memset(a, 0, sizeof *a);
  if (!json_is_object(o))
    return TG_EPROTO;
  a->id = json_string_value(json_object_get(o, "id"));
  a->status = json_string_value(json_object_get(o, "status"));
  if (!a->id || !*a->id || !a->status || !*a->status)
    return TG_EPROTO;
  a->status_reason = json_string_value(json_object_get(o, "status_reason"));
  a->is_disabled = json_is_true(json_object_get(o, "is_disabled"));
  val = json_object_get(json_object_get(o, "state"), "val");
  a->auth_refresh_required = json_is_true(json_object_get(o, "auth_refresh_required")) ||
                             json_is_true(json_object_get(val, "auth_refresh_required"));
  a->toolkit_slug = json_string_value(json_object_get(json_object_get(o, "toolkit"), "slug"));
  a->auth_config_id = json_string_value(json_object_get(json_object_get(o, "auth_config"), "id"));
  a->user_id = json_string_value(json_object_get(o, "user_id"));
  return 0;
}

/* Delivers the final result of k to its callback and frees k. Never touches k->c after the
 * callback, which may free the client. */
static void finish(call *k, tg_composio_result *res, const json_t *body)
{
  tg_composio_account *accts = NULL, one;
  size_t n = 0;
  const char *s1 = NULL, *s2 = NULL, *s3 = NULL;

  unlink_call(k);
  res->http_calls = k->pages;
  if (!res->err) {
    switch (k->kind) {
    case K_LIST: /* every page was checked when it arrived (list_page) */
      for (size_t i = 0; i < k->n_decoded; i++)
        n += k->decoded[i].n_items;
      if (n && !(accts = calloc(n, sizeof *accts))) {
        res->err = TG_ENOMEM;
        res->message = tg_strerror(TG_ENOMEM);
        n = 0;
        break;
      }
      n = 0;
      for (size_t i = 0; accts && i < k->n_decoded; i++) {
        if (k->decoded[i].n_items)
          memcpy(accts + n, k->decoded[i].items, k->decoded[i].n_items * sizeof *accts);
        n += k->decoded[i].n_items;
      }
      break;
    case K_GET:
      if (tg_composio_decode_account(body, &one)) {
        res->err = TG_EPROTO;
        res->message = "composio returned a connected account without id or status";
      }
      break;
    case K_LINK:
      s1 = json_string_value(json_object_get(body, "redirect_url"));
      s2 = json_string_value(json_object_get(body, "connected_account_id"));
      s3 = json_string_value(json_object_get(body, "expires_at"));
      if (!s1 || !*s1) {
        res->err = TG_EPROTO;
        res->message = "composio link response has no redirect_url";
      }
      break;
    case K_GENERATE:
      if (k->want_ca_url)
        s1 = json_string_value(json_array_get(json_object_get(body, "connected_account_urls"), 0));
      if (!s1 || !*s1)
        s1 = json_string_value(json_array_get(json_object_get(body, "user_ids_url"), 0));
      if (!s1 || !*s1) {
        s1 = NULL;
        res->err = TG_EPROTO;
        res->message = "composio generate response has no MCP URL";
      }
      break;
    case K_DELETE:
      break;
    }
  }
  switch (k->kind) {
  case K_LIST:
    k->cb.list(k->arg, res, res->err ? NULL : accts, res->err ? 0 : n);
    break;
  case K_GET:
    k->cb.get(k->arg, res, res->err ? NULL : &one);
    break;
  case K_LINK:
    if (res->err)
      s1 = s2 = s3 = NULL;
    k->cb.link(k->arg, res, s1, s2, s3);
    break;
  case K_GENERATE:
    k->cb.url(k->arg, res, res->err ? NULL : s1);
    break;
  case K_DELETE:
    k->cb.done(k->arg, res);
    break;
  }
  free(accts);
  call_free(k);
}

/* K_LIST after a 2xx page: decodes it (tg_composio_page: no JSON tree), keeps it, then either
 * asks for the next page (returns 1) or reports that the list is complete (0) or broken (< 0,
 * res filled). */
static int list_page(call *k, const tg_http_response *resp, tg_composio_result *res)
{
  tg_composio_page *grown, *page;
  const char *cursor, *why = NULL;
  size_t i;
  json_t *v;
  char *e, *url;
  int rc;

  if (!(grown = realloc(k->decoded, (k->n_decoded + 1) * sizeof *grown)))
    goto nomem;
  k->decoded = grown;
  page = &k->decoded[k->n_decoded];
  if ((rc = tg_composio_page_decode(resp->body, resp->body_len, page, &why)) != 0) {
    if (rc == TG_ENOMEM)
      goto nomem;
    res->err = TG_EPROTO;
    res->message = why;
    return -1;
  }
  k->n_decoded++;
  cursor = page->next_cursor;
  if (!cursor || !*cursor)
    return 0;
  json_array_foreach(k->cursors, i, v)
  {
    if (strcmp(json_string_value(v), cursor) == 0) {
      res->err = TG_EPROTO;
      res->message = "composio repeated a list cursor";
      return -1;
    }
  }
  if (k->pages >= MAX_PAGES) {
    res->err = TG_EPROTO;
    res->message = "composio list did not end within the page limit";
    return -1;
  }
  if (json_array_append_new(k->cursors, json_string(cursor)))
    goto nomem;
  if (!(e = esc(cursor)))
    goto nomem;
  url = str_printf("%s&cursor=%s", k->list_url, e);
  curl_free(e);
  if (!url)
    goto nomem;
  rc = send_call(k, url, NULL);
  free(url);
  if (rc) {
    res->err = rc;
    res->message = tg_strerror(rc);
    return -1;
  }
  return 1;
nomem:
  res->err = TG_ENOMEM;
  res->message = tg_strerror(TG_ENOMEM);
  return -1;
}

static void on_http_done(void *arg, int err, const tg_http_response *resp)
{
  call *k = arg;
  tg_composio_result res = {.retry_after_ms = -1};
  json_t *body = NULL;

  k->t = NULL; /* the transfer is freed by tg_http once we return */
  k->pages++;
  res.http_status = err ? 0 : resp->status;
  tg_debug("composio_call", "{s:s, s:s, s:I, s:I, s:s*}", "method", k->method, "path", k->path,
           "status", (json_int_t)res.http_status, "ms", (json_int_t)resp->total_ms, "error",
           err ? tg_errname(err) : NULL);
  if (err) {
    res.err = err;
    res.message = tg_strerror(err);
    finish(k, &res, NULL);
    return;
  }
  res.retry_after_ms = tg_http_retry_after_ms(resp->t);
  res.err = map_status(resp->status);
  if (!res.err && k->kind == K_LIST) {
    if (list_page(k, resp, &res) > 0)
      return; /* the next page is on its way */
    finish(k, &res, NULL);
    return;
  }
  if (resp->body_len)
    body = json_loadb(resp->body, resp->body_len, 0, NULL);
  if (res.err) {
    res.message = body_message(body);
    if (!res.message) {
      snprintf(k->msg, sizeof k->msg, "composio answered HTTP %ld to %s %s", resp->status,
               k->method, k->path);
      res.message = k->msg;
    }
  } else if (k->kind != K_DELETE && !json_is_object(body)) {
    res.err = TG_EPROTO;
    res.message = "composio answered with a body that is not a JSON object";
  }
  finish(k, &res, body);
  json_decref(body);
}

/* Appends name and the URL-escaped values, comma-joined, to b. */
static int append_joined(tg_buf *b, const char *name, const char *const *vals, size_t n)
{
  int rc = tg_buf_addstr(b, name);
  for (size_t i = 0; i < n && !rc; i++) {
    char *e = esc(vals[i]);
    if (!e)
      return TG_ENOMEM;
    if (i)
      rc = tg_buf_add(b, ",", 1);
    if (!rc)
      rc = tg_buf_addstr(b, e);
    curl_free(e);
  }
  return rc;
}

int tg_composio_list_query(const char *const *user_ids, size_t n_users,
                           const char *const *toolkit_slugs, size_t n_slugs, char **out)
{
  tg_buf q;
  int rc;

  *out = NULL;
  if (!n_users || !user_ids || (n_slugs && !toolkit_slugs))
    return TG_EINVAL;
  for (size_t i = 0; i < n_users; i++)
    if (!user_ids[i])
      return TG_EINVAL;
  for (size_t i = 0; i < n_slugs; i++)
    if (!toolkit_slugs[i])
      return TG_EINVAL;
  tg_buf_init(&q, MAX_QUERY);
  rc = append_joined(&q, "user_ids=", user_ids, n_users);
  if (!rc && n_slugs)
    rc = append_joined(&q, "&toolkit_slugs=", toolkit_slugs, n_slugs);
  if (!rc)
    rc = tg_buf_printf(&q, "&limit=%d", PAGE_LIMIT);
  if (!rc && !(*out = tg_buf_take(&q, NULL)))
    rc = TG_ENOMEM;
  tg_buf_free(&q);
  return rc;
}

int tg_composio_list_accounts_users(tg_composio *c, const char *const *user_ids, size_t n_users,
                                    const char *const *toolkit_slugs, size_t n_slugs,
                                    tg_composio_list_cb cb, void *arg)
{
  char *q = NULL;
  int rc;

  if (!c || !cb)
    return TG_EINVAL;
  if ((rc = tg_composio_list_query(user_ids, n_users, toolkit_slugs, n_slugs, &q)))
    return rc;
  rc = start_call(c, K_LIST, "GET", "/api/v3/connected_accounts", q, NULL, (any_cb)cb, arg, NULL);
  free(q);
  return rc;
}

int tg_composio_list_accounts(tg_composio *c, const char *user_id, const char *const *toolkit_slugs,
                              size_t n_slugs, tg_composio_list_cb cb, void *arg)
{
  return tg_composio_list_accounts_users(c, &user_id, user_id ? 1 : 0, toolkit_slugs, n_slugs, cb,
                                         arg);
}

/* "/api/v3/connected_accounts/<escaped id>" or NULL. */
static char *account_path(const char *id)
{
  char *e = esc(id), *p;
  if (!e)
    return NULL;
  p = str_printf("/api/v3/connected_accounts/%s", e);
  curl_free(e);
  return p;
}

/* GET or DELETE /api/v3/connected_accounts/{id}: the shared argument checks and path. */
static int account_call(tg_composio *c, enum kind kind, const char *method, const char *id,
                        any_cb cb, void *arg)
{
  char *path;
  int rc;

  if (!c || !id || !*id || !cb)
    return TG_EINVAL;
  if (!(path = account_path(id)))
    return TG_ENOMEM;
  rc = start_call(c, kind, method, path, NULL, NULL, cb, arg, NULL);
  free(path);
  return rc;
}

int tg_composio_get_account(tg_composio *c, const char *id, tg_composio_account_cb cb, void *arg)
{
  return account_call(c, K_GET, "GET", id, (any_cb)cb, arg);
}

int tg_composio_delete_account(tg_composio *c, const char *id, tg_composio_done_cb cb, void *arg)
{
  return account_call(c, K_DELETE, "DELETE", id, (any_cb)cb, arg);
}

int tg_composio_create_link(tg_composio *c, const char *auth_config_id, const char *user_id,
                            const char *callback_url, tg_composio_link_cb cb, void *arg)
{
  json_t *body;
  int rc;

  if (!c || !auth_config_id || !user_id || !cb)
    return TG_EINVAL;
  body = json_pack("{s:s, s:s}", "auth_config_id", auth_config_id, "user_id", user_id);
  if (!body ||
      (callback_url && json_object_set_new(body, "callback_url", json_string(callback_url)))) {
    json_decref(body);
    return TG_ENOMEM;
  }
  rc = start_call(c, K_LINK, "POST", "/api/v3/connected_accounts/link", NULL, body, (any_cb)cb, arg,
                  NULL);
  json_decref(body);
  return rc;
}

int tg_composio_generate_mcp_url(tg_composio *c, const char *mcp_server_id, const char *user_id,
                                 const char *connected_account_id, tg_composio_url_cb cb, void *arg)
{
  json_t *body;
  call *k;
  int rc;

  if (!c || !mcp_server_id || !user_id || !cb)
    return TG_EINVAL;
  body = json_pack("{s:s, s:[s], s:b}", "mcp_server_id", mcp_server_id, "user_ids", user_id,
                   "managed_auth_by_composio", 1);
  if (!body ||
      (connected_account_id && json_object_set_new(body, "connected_account_ids",
                                                   json_pack("[s]", connected_account_id)))) {
    json_decref(body);
    return TG_ENOMEM;
  }
  rc = start_call(c, K_GENERATE, "POST", "/api/v3/mcp/servers/generate", NULL, body, (any_cb)cb,
                  arg, &k);
  if (!rc)
    k->want_ca_url = connected_account_id != NULL;
  json_decref(body);
  return rc;
}
