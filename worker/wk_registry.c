/*
 * wk_registry: per-user MCP clients (DESIGN.md section 5, "Registry").
 *
 * One entry per (user_id, provider) holds one tg_mcp_client built from the user's
 * connected_accounts + mcp_connections rows (loaded at claim time into r->accounts). The entry
 * remembers the connected account's version: when a run sees another version (reconnect,
 * status change) the entry is retired and a new client is built. Entries are never shared
 * between users: the key includes the user id, and the URL is the user's own.
 *
 * The platform Composio API key is added as "x-api-key" when the client is built, from the
 * config; it lives only in the client's memory, never in the database or a log line.
 *
 * Live entries are in a tg_map keyed by "<user_id>\0<provider>" (acquire marks an entry most
 * recently used); a retired ("stale") entry leaves the map at once, so the next acquire builds a
 * new client, and waits on the stale list until its last run releases it. Dropping an entry from
 * the map retires it: closed now when no run holds it, else marked stale.
 *
 * Bounded: at most TOOLGATE_REGISTRY_MAX entries (live + stale) are kept. When a new entry makes
 * too many, the least recently used entries that no run holds are closed, which ends their
 * sessions with an HTTP DELETE (tg_mcp_close). Entries in use are never evicted, so the bound can
 * be exceeded by the runs in flight, never more.
 *
 * Each entry also caches the session's tool annotations (readOnlyHint / idempotentHint from
 * tools/list), filled lazily by the executor the first time a call times out.
 *
 * Closing: tg_mcp_close is never called from inside a tg_mcp callback. Clients to close are put
 * on a "doomed" list and closed from a zero-delay timer on the next loop iteration. An entry
 * with references is only marked stale; the last wk_registry_release closes it. Idle entries
 * (no references, unused for a while) are closed by wk_registry_sweep.
 */
#include "wk.h"

#include "tg_err.h"
#include "tg_log.h"
#include "tg_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wk_client {
  wk_registry *reg;
  wk_client *next_stale; /* on reg->stale while stale */
  char *user_id, *provider;
  int64_t version;
  tg_mcp_client *mcp;
  int refs;
  int stale; /* retired: close when refs reaches 0 */
  uint64_t last_used_ms;
  json_t *tools; /* tool name -> annotations, or NULL until listed */
};

typedef struct doomed {
  struct doomed *next;
  tg_mcp_client *mcp;
} doomed;

struct wk_registry {
  wk_worker *w;
  tg_map *clients;  /* "<user_id>\0<provider>" -> live wk_client (owned: see retire) */
  wk_client *stale; /* retired entries runs still hold */
  size_t n_stale;
  doomed *doomed;
  uv_timer_t defer;
  int closing;  /* tg_mcp_close calls whose on_closed has not run yet */
  int shutting; /* wk_registry_close was called */
  int defer_closed;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
};

static void maybe_finish_close(wk_registry *reg)
{
  if (reg->shutting && reg->closing == 0 && !reg->doomed && reg->defer_closed) {
    void (*cb)(void *) = reg->on_closed;
    void *arg = reg->on_closed_arg;
    free(reg);
    if (cb)
      cb(arg);
  }
}

static void on_mcp_closed(void *arg)
{
  wk_registry *reg = arg;
  reg->closing--;
  maybe_finish_close(reg);
}

static void flush_doomed(wk_registry *reg)
{
  while (reg->doomed) {
    doomed *d = reg->doomed;
    reg->doomed = d->next;
    reg->closing++;
    tg_mcp_close(d->mcp, on_mcp_closed, reg);
    free(d);
  }
}

static void on_defer(uv_timer_t *t)
{
  flush_doomed(t->data);
}

static void doom(wk_registry *reg, tg_mcp_client *m)
{
  doomed *d;
  if (!m)
    return;
  if (!(d = malloc(sizeof *d))) {
    /* Out of memory: close now rather than leak the session. Never from a tg_mcp callback
     * in practice, since doom() is reached from releases after a dbq job. */
    reg->closing++;
    tg_mcp_close(m, on_mcp_closed, reg);
    return;
  }
  d->mcp = m;
  d->next = reg->doomed;
  reg->doomed = d;
  if (!reg->shutting)
    uv_timer_start(&reg->defer, on_defer, 0, 0);
}

void wk_registry_close_later(wk_registry *reg, tg_mcp_client *m)
{
  doom(reg, m);
}

static void retire(void *value);

int wk_registry_new(wk_registry **out, wk_worker *w)
{
  wk_registry *reg = calloc(1, sizeof *reg);
  *out = NULL;
  if (!reg || !(reg->clients = tg_map_new(0, retire))) {
    free(reg);
    return TG_ENOMEM;
  }
  reg->w = w;
  uv_timer_init(w->loop, &reg->defer);
  reg->defer.data = reg;
  *out = reg;
  return 0;
}

static void entry_free(wk_client *c)
{
  doom(c->reg, c->mcp);
  json_decref(c->tools);
  tg_debug("mcp_client_closed", "{s:s, s:s, s:I}", "user_id", c->user_id, "provider", c->provider,
           "version", (json_int_t)c->version);
  free(c->user_id);
  free(c->provider);
  free(c);
}

/* The map's free_value: c has left the map; closed now if no run holds it, else when the last
 * one releases it. */
static void retire(void *value)
{
  wk_client *c = value;
  if (c->refs == 0) {
    entry_free(c);
    return;
  }
  c->stale = 1;
  c->next_stale = c->reg->stale;
  c->reg->stale = c;
  c->reg->n_stale++;
}

/* The map key of (user_id, provider) in a new buffer (*len bytes), or NULL. */
static char *client_key(const char *user_id, const char *provider, size_t *len)
{
  size_t u = strlen(user_id), p = strlen(provider);
  char *k = malloc(u + 1 + p);
  if (k) {
    memcpy(k, user_id, u + 1);
    memcpy(k + u + 1, provider, p);
    *len = u + 1 + p;
  }
  return k;
}

typedef struct evict_ctx {
  size_t excess; /* entries still to close */
  uint64_t idle_ms, now;
} evict_ctx;

/* tg_map_sweep visitors (least recently used first). */
static int evict_one(void *arg, const void *key, size_t klen, void *value)
{
  evict_ctx *e = arg;
  wk_client *c = value;
  (void)key, (void)klen;
  if (!e->excess || c->refs)
    return 0;
  e->excess--;
  tg_debug("mcp_client_evicted", "{s:s, s:s}", "user_id", c->user_id, "provider", c->provider);
  return 1;
}

static int idle_one(void *arg, const void *key, size_t klen, void *value)
{
  evict_ctx *e = arg;
  wk_client *c = value;
  (void)key, (void)klen;
  return c->refs == 0 && e->now - c->last_used_ms >= e->idle_ms;
}

/* Closes least recently used idle entries while there are more than the configured maximum. */
static void evict(wk_registry *reg)
{
  size_t max = reg->w->cfg.registry_max > 0 ? (size_t)reg->w->cfg.registry_max : 1;
  evict_ctx e = {0};
  if (wk_registry_size(reg) <= max)
    return;
  e.excess = wk_registry_size(reg) - max;
  tg_map_sweep(reg->clients, evict_one, &e);
}

/* The account row of r's user for provider, or NULL. */
static const json_t *account_of(const wk_run *r, const char *provider)
{
  size_t i;
  const json_t *a;
  json_array_foreach(r->accounts, i, a)
  {
    const char *p = json_string_value(json_object_get(a, "provider"));
    if (p && strcmp(p, provider) == 0)
      return a;
  }
  return NULL;
}

/* "<name>: <value>" in a new string, or NULL. */
static char *header_line(const char *name, const char *value)
{
  size_t n = strlen(name) + 2 + strlen(value) + 1;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s: %s", name, value);
  return s;
}

static tg_mcp_client *build(wk_registry *reg, const char *url, const json_t *secret_headers,
                            char *err, size_t errlen)
{
  wk_worker *w = reg->w;
  const char *key = tg_secret_reveal(&w->cfg.composio_api_key);
  size_t n_hdr = 0, cap = json_object_size(secret_headers) + 2;
  char **lines = calloc(cap, sizeof *lines);
  tg_mcp_options opt = {0};
  tg_mcp_client *m = NULL;
  const char *k;
  json_t *v;
  int rc = TG_ENOMEM;

  if (!lines)
    goto done;
  if (key && *key && !(lines[n_hdr++] = header_line("x-api-key", key)))
    goto done;
  /* Per-user headers decrypted from mcp_connections.headers_enc (tg_crypto). */
  json_object_foreach((json_t *)secret_headers, k, v)
  {
    if (!(lines[n_hdr++] = header_line(k, json_string_value(v))))
      goto done;
  }
  opt.url = url;
  opt.headers = (const char *const *)lines;
  opt.request_timeout_ms = (long)w->cfg.mcp_timeout_ms;
  rc = tg_mcp_client_new(&m, w->http, &opt);
done:
  for (size_t i = 0; lines && i < n_hdr; i++)
    if (lines[i])
      tg_crypto_wipe_free(lines[i], strlen(lines[i])); /* the client keeps its own copy */
  free(lines);
  if (rc) {
    snprintf(err, errlen, "cannot create the MCP client: %s", tg_strerror(rc));
    return NULL;
  }
  return m;
}

/* A new entry for (r's user, provider) under key, built from the account row a, in the map; NULL
 * with err filled on failure. */
static wk_client *client_new(wk_registry *reg, const wk_run *r, const json_t *a,
                             const char *provider, const void *key, size_t klen, char *err,
                             size_t errlen)
{
  json_t *secret_headers = NULL; /* decrypted, only while the client is built */
  const char *url = json_string_value(json_object_get(a, "url"));
  wk_client *c = NULL;

  /* Per-user secret headers: decrypted (tg_crypto) only to build the client. */
  if (json_integer_value(json_object_get(a, "has_headers"))) {
    int drc = tg_sealed_open_mcp_headers_hex(
        reg->w->crypto, json_integer_value(json_object_get(a, "mcp_id")), r->user_id,
        json_string_value(json_object_get(a, "headers_enc_hex")), &secret_headers);
    if (drc) {
      tg_warn("mcp_headers_undecryptable", "{s:s, s:s, s:s}", "user_id", r->user_id, "provider",
              provider, "error", tg_errname(drc));
      snprintf(err, errlen, "provider %s: the stored MCP headers cannot be decrypted (%s)",
               provider, tg_errname(drc));
      return NULL;
    }
  }
  if (!(c = calloc(1, sizeof *c)) || !(c->user_id = strdup(r->user_id)) ||
      !(c->provider = strdup(provider))) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  c->reg = reg;
  c->version = json_integer_value(json_object_get(a, "version"));
  if (!(c->mcp = build(reg, url, secret_headers, err, errlen)))
    goto fail;
  if (tg_map_put(reg->clients, key, klen, c, 1)) {
    snprintf(err, errlen, "out of memory");
    doom(reg, c->mcp);
    goto fail;
  }
  json_decref(secret_headers);
  tg_debug("mcp_client_built", "{s:s, s:s, s:I}", "user_id", r->user_id, "provider", provider,
           "version", (json_int_t)c->version);
  return c;
fail:
  json_decref(secret_headers);
  if (c) {
    free(c->user_id);
    free(c->provider);
    free(c);
  }
  return NULL;
}

wk_client *wk_registry_acquire(wk_registry *reg, wk_run *r, const char *provider, char *err,
                               size_t errlen)
{
  const json_t *a = account_of(r, provider);
  const char *status, *url;
  int64_t version;
  wk_client *c;
  char *key;
  size_t klen = 0;

  if (!a) {
    snprintf(err, errlen, "provider %s is not connected", provider);
    return NULL;
  }
  status = json_string_value(json_object_get(a, "status"));
  url = json_string_value(json_object_get(a, "url"));
  version = json_integer_value(json_object_get(a, "version"));
  if (!status || strcmp(status, "ACTIVE") != 0) {
    snprintf(err, errlen, "provider %s connection is %s", provider, status ? status : "unknown");
    return NULL;
  }
  if (!url || !*url) {
    snprintf(err, errlen, "provider %s has no MCP URL", provider);
    return NULL;
  }
  if (!(key = client_key(r->user_id, provider, &klen))) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  /* Same user AND same provider: an entry is never handed to another user's run. */
  if ((c = tg_map_get(reg->clients, key, klen)) != NULL && c->version != version) {
    /* The connection changed since this client was built: retire it. */
    tg_info("mcp_client_rebuilt", "{s:s, s:s, s:I, s:I}", "user_id", r->user_id, "provider",
            provider, "old_version", (json_int_t)c->version, "version", (json_int_t)version);
    tg_map_del(reg->clients, key, klen);
    c = NULL;
  }
  if (!c)
    c = client_new(reg, r, a, provider, key, klen, err, errlen);
  free(key);
  if (!c)
    return NULL;
  c->refs++;
  c->last_used_ms = uv_now(reg->w->loop);
  evict(reg);
  return c;
}

tg_mcp_client *wk_client_mcp(wk_client *c)
{
  return c ? c->mcp : NULL;
}

json_t *wk_client_tools(wk_client *c)
{
  return c ? c->tools : NULL;
}

json_t *wk_tools_annotations(const json_t *tools)
{
  json_t *out = json_object(), *t;
  size_t i;
  if (!out)
    return NULL;
  json_array_foreach(tools, i, t)
  {
    const char *name = json_string_value(json_object_get(t, "name"));
    json_t *a = json_object_get(t, "annotations");
    if (name)
      json_object_set_new(out, name, json_is_object(a) ? json_deep_copy(a) : json_object());
  }
  return out;
}

void wk_client_set_tools(wk_client *c, const json_t *tools)
{
  if (!c)
    return;
  json_decref(c->tools);
  c->tools = wk_tools_annotations(tools);
}

size_t wk_registry_size(const wk_registry *reg)
{
  return tg_map_count(reg->clients) + reg->n_stale;
}

void wk_registry_release(wk_registry *reg, wk_client *c)
{
  if (!c)
    return;
  c->refs--;
  c->last_used_ms = uv_now(reg->w->loop);
  if (c->stale && c->refs == 0) {
    for (wk_client **pp = &reg->stale; *pp; pp = &(*pp)->next_stale)
      if (*pp == c) {
        *pp = c->next_stale;
        reg->n_stale--;
        break;
      }
    entry_free(c);
  }
}

void wk_registry_sweep(wk_registry *reg, uint64_t idle_ms)
{
  evict_ctx e = {.idle_ms = idle_ms, .now = uv_now(reg->w->loop)};
  tg_map_sweep(reg->clients, idle_one, &e);
}

/* Runs still use c: close the session now (their calls get TG_ECANCELED); the last release
 * frees the entry. */
static void cancel(wk_client *c)
{
  doom(c->reg, c->mcp);
  c->mcp = NULL;
}

static int abort_one(void *arg, const void *key, size_t klen, void *value)
{
  (void)arg, (void)key, (void)klen;
  if (((wk_client *)value)->refs)
    cancel(value);
  return 1; /* retire: idle ones close now, held ones go stale */
}

void wk_registry_abort(wk_registry *reg)
{
  for (wk_client *c = reg->stale; c; c = c->next_stale)
    cancel(c);
  tg_map_sweep(reg->clients, abort_one, NULL);
}

static void on_defer_closed(uv_handle_t *h)
{
  wk_registry *reg = h->data;
  reg->defer_closed = 1;
  maybe_finish_close(reg);
}

void wk_registry_close(wk_registry *reg, void (*on_closed)(void *arg), void *arg)
{
  reg->on_closed = on_closed;
  reg->on_closed_arg = arg;
  reg->shutting = 1;
  /* No run is left, so nothing references an entry. */
  tg_map_free(reg->clients);
  reg->clients = NULL;
  while (reg->stale) {
    wk_client *c = reg->stale;
    reg->stale = c->next_stale;
    entry_free(c);
  }
  reg->n_stale = 0;
  uv_timer_stop(&reg->defer);
  flush_doomed(reg);
  uv_close((uv_handle_t *)&reg->defer, on_defer_closed);
}
