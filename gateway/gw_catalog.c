/*
 * gw_catalog: the tool catalog's sync and its in-memory side (README "Tool catalog").
 *
 * Sync of one user (one at a time per user; a request for a user already syncing sets "again"
 * and the sync runs once more when it ends):
 *   1. LOAD job: the user's connectors (a read-only query of ours until tg_store_connectors
 *      offers one) and Composio connections. API connectors → one tool per operation, written at
 *      once (tg_store_tools_sync under "api:<connector id>:"); deleted connectors → their tools
 *      soft-deleted; Composio connections that are not ACTIVE → their tools soft-deleted. What
 *      needs tools/list becomes a target: each live MCP connector with static auth or with
 *      OAuth and ACTIVE (its stored access token; never refreshed here), and each
 *      ACTIVE Composio connection with an MCP URL whose version this process has not listed
 *      yet ("cached by the connection version"), or every one when the sync is forced.
 *   2. Per target, on the loop: a tg_mcp client (Composio: the gateway's client with x-api-key
 *      and the connection's sealed headers; connectors: our egress-policied client), tools/list
 *      (every page), then an APPLY job writes the listed tools under the target's prefix. An
 *      unreachable server leaves its tools as they are. The client is closed from a zero timer,
 *      never from inside its own callback.
 *   3. Listening: the client of a successful listing is kept open with its GET stream (MCP
 *      "Listening for Messages from the Server") as the source's listener, at most
 *      MAX_LISTENERS per gateway (LRU). notifications/tools/list_changed on it forgets that the
 *      source was listed and syncs the user again (at most once per LISTEN_DEBOUNCE_MS per
 *      source), so only that source is listed again and its new client replaces the listener.
 *      Every sync of the user closes the listeners of sources that are no longer targets or
 *      whose version moved (connector deleted or changed, Composio connection changed); stop
 *      closes them all. A server without a GET stream (404/405) sends nothing on it.
 * Every write goes through tg_store_tools, which writes nothing for an unchanged definition.
 * When the sync ends, the user's catalog generation moves, so the cached answer of
 * GET /api/agents/available-tools is rebuilt.
 *
 * Built-ins (user '__system__') are upserted at start-up by one job and kept in memory, so the
 * catalog route can answer them when the registry is empty or unreadable.
 *
 * Loop thread only, except the work functions (they touch only their run and their db).
 */
#include "gw.h"

#include "tg_clock.h"
#include "tg_connector.h"
#include "tg_map.h"
#include "tg_mcp.h"
#include "tg_store_connectors.h"
#include "tg_store_runs.h"
#include "tg_store_tools.h"
#include "tg_tool_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MCP_TIMEOUT_MS 15000
#define CACHE_MAX_BYTES (256u << 20) /* cached catalog answers, all users */
#define MAX_LISTENERS 256            /* open listening MCP sessions per gateway (LRU) */
#define LISTEN_DEBOUNCE_MS 1000      /* at most one list_changed re-sync per source per second */

/* One user's state (never evicted: a few dozen bytes per user who used the catalog). */
typedef struct user_state {
  uint64_t gen;   /* moves on every write of the user's tools by this process */
  int running;    /* a sync of the user is in flight */
  int again;      /* run once more when it ends */
  int force;      /* the next run lists every MCP source again */
  json_t *synced; /* source key ("con:<id>" or "composio:<provider>") -> version listed */
} user_state;

typedef struct cached {
  uint64_t gen;
  int64_t at_ms;      /* read from the database at */
  int64_t checked_ms; /* the sources' versions last checked at */
  char *body;
  size_t len;
  int refs; /* the cache's own, plus one per response being written from body (loop thread) */
} cached;

/* A background check of a user's source versions (a cache hit older than GW_CATALOG_CHECK_MS). */
typedef struct vcheck {
  gw_app *app;
  char user[GW_USER_MAX + 1];
  json_t *versions;
} vcheck;

typedef struct gw_catalog gw_catalog;
struct gw_catalog {
  gw_app *app;
  tg_map *users;     /* user id -> user_state */
  tg_map *cache;     /* user id -> cached */
  tg_map *listeners; /* "<user>\n<source key>" -> listener */
  json_t *builtins;  /* catalog entries of the built-ins */
  json_t *startup;   /* users still to sync at start-up */
  size_t startup_next;
  int stopped;
};

/* A source's open MCP session, listening for notifications/tools/list_changed (loop thread). */
typedef struct listener {
  gw_catalog *cat;
  tg_mcp_client *mcp; /* owned; NULL while the listing that opened it is in flight */
  uv_timer_t timer;   /* the debounced re-sync */
  int64_t resync_ms;  /* the last re-sync it started */
  json_t *version;    /* the source version it was opened at */
  char user[GW_USER_MAX + 1];
  char key[160]; /* source key */
} listener;

typedef struct run {
  gw_catalog *cat;
  char user[GW_USER_MAX + 1];
  int force;
  json_t *connectors; /* LOAD: rows */
  json_t *accounts;   /* LOAD: Composio connections */
  json_t *targets;    /* LOAD: what needs tools/list */
  json_t *seen;       /* LOAD: source key -> version of the sources it synced itself */
  size_t next;        /* next target */
  json_t *listed;     /* the current target's tools (NULL: listing failed) */
  tg_mcp_client *mcp;
  listener *lis; /* the current target's listener-to-be (its client is mcp) */
  uv_timer_t timer;
  int written;
} run;

static void run_next(run *r);

/* ---------------------------------------------------------------- built-ins */

static const char builtins_json[] =
    "["
    "{\"name\":\"calculator\",\"description\":\"Evaluates an arithmetic expression (+ - * / % ^, "
    "parentheses, decimals) and returns the number.\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{\"expression\":{\"type\":\"string\",\"description\":\"e.g. (2 + 3) * 4\"}},"
    "\"required\":[\"expression\"]}},"
    "{\"name\":\"http_request\",\"description\":\"Makes an HTTP request to a public URL; the "
    "egress policy refuses private, loopback and metadata addresses unless the operator allows "
    "them.\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"method\":{\"type\":"
    "\"string\",\"enum\":[\"GET\",\"POST\",\"PUT\",\"PATCH\",\"DELETE\",\"HEAD\"]},\"url\":{"
    "\"type\":\"string\",\"format\":\"uri\"},\"headers\":{\"type\":\"object\","
    "\"additionalProperties\":{\"type\":\"string\"}},\"body\":{}},\"required\":[\"url\"]}},"
    "{\"name\":\"code_execution\",\"description\":\"Runs a snippet of code in the Code sandbox "
    "and returns its stdout, stderr and exit code.\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{\"language\":{\"type\":\"string\",\"enum\":[\"python\",\"javascript\"]},"
    "\"code\":{\"type\":\"string\"},\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1}},"
    "\"required\":[\"language\",\"code\"]}}"
    "]";

/* The tool definitions of the built-ins; defs[i] borrows from specs. */
static void builtin_def(const json_t *spec, json_t *definition, char *string_id, size_t len,
                        tg_tool_def *d)
{
  const char *name = json_string_value(json_object_get(spec, "name"));
  snprintf(string_id, len, "builtin:%s", name);
  json_object_set(definition, "input_schema", json_object_get(spec, "input_schema"));
  json_object_set_new(definition, "source", json_string("builtin"));
  json_object_set_new(definition, "tool_name", json_string(name));
  *d = (tg_tool_def){.string_id = string_id,
                     .name = name,
                     .description = json_string_value(json_object_get(spec, "description")),
                     .tool_type = "local",
                     .source = "builtin",
                     .definition = definition};
}

typedef struct builtin_set {
  json_t *specs, *defs_json;
  tg_tool_def d[8];
  char ids[8][64];
  size_t n;
} builtin_set;

static int builtin_set_init(builtin_set *b)
{
  size_t i;
  json_t *spec;
  memset(b, 0, sizeof *b);
  if (!(b->specs = json_loads(builtins_json, 0, NULL)) || !(b->defs_json = json_array()))
    return TG_ENOMEM;
  json_array_foreach(b->specs, i, spec)
  {
    json_t *def = json_object();
    if (!def || json_array_append_new(b->defs_json, def) || i >= 8)
      return TG_ENOMEM;
    builtin_def(spec, def, b->ids[i], sizeof b->ids[i], &b->d[i]);
    b->n++;
  }
  return 0;
}

static void builtin_set_free(builtin_set *b)
{
  json_decref(b->specs);
  json_decref(b->defs_json);
}

static int builtins_work(tg_db *db, void *arg)
{
  builtin_set b;
  tg_tools_stats st = {0};
  int rc = builtin_set_init(&b);
  (void)arg;
  if (rc == 0)
    rc = tg_store_tools_sync(db, TG_TOOLS_SYSTEM_USER, "builtin:", b.d, b.n, tg_now_ms(), &st);
  if (rc == 0)
    tg_info("catalog_builtins", "{s:i, s:i, s:i}", "inserted", st.inserted, "updated", st.updated,
            "unchanged", st.unchanged);
  builtin_set_free(&b);
  return rc;
}

static void builtins_done(void *arg, int status)
{
  gw_catalog *cat = arg;
  if (status != 0)
    tg_warn("catalog_builtins_failed", "{s:s}", "error", tg_errname(status));
  (void)cat;
}

static json_t *builtin_entries(void)
{
  builtin_set b;
  json_t *out = json_array();
  if (out && builtin_set_init(&b) == 0) {
    for (size_t i = 0; i < b.n; i++) {
      char id[TG_TOOL_ID_LEN + 1];
      if (tg_tool_id(TG_TOOLS_SYSTEM_USER, b.d[i].string_id, id) != 0 ||
          json_array_append_new(out, tg_tool_def_entry(id, &b.d[i])) != 0)
        break;
    }
  }
  builtin_set_free(&b);
  return out;
}

const json_t *gw_catalog_builtins(gw_app *app)
{
  return app->catalog ? app->catalog->builtins : NULL;
}

/* ---------------------------------------------------------------- users and cache */

static void user_state_free(void *p)
{
  user_state *u = p;
  if (u)
    json_decref(u->synced);
  free(u);
}

/* Drops a reference: the cache's (evicted, replaced) or a response's (written). */
static void cached_free(void *p)
{
  cached *c = p;
  if (!c || --c->refs > 0)
    return;
  free(c->body);
  free(c);
}

void gw_catalog_cached_release(void *ref)
{
  cached_free(ref);
}

static user_state *user_get(gw_catalog *cat, const char *user)
{
  user_state *u = tg_map_gets(cat->users, user);
  if (u)
    return u;
  if (!(u = calloc(1, sizeof *u)) || !(u->synced = json_object()) ||
      tg_map_puts(cat->users, user, u, 1) != 0) {
    user_state_free(u);
    return NULL;
  }
  return u;
}

uint64_t gw_catalog_gen(gw_app *app, const char *user)
{
  user_state *u = app->catalog ? user_get(app->catalog, user) : NULL;
  return u ? u->gen : 0;
}

void gw_catalog_touch(gw_app *app, const char *user)
{
  user_state *u = app->catalog ? user_get(app->catalog, user) : NULL;
  if (u)
    u->gen++;
  if (app->catalog)
    tg_map_dels(app->catalog->cache, user);
}

static int vcheck_work(tg_db *db, void *arg)
{
  vcheck *v = arg;
  int rc = 0;
  v->versions = gw_catalog_source_versions(db, &rc, v->user);
  return v->versions ? 0 : rc;
}

static void vcheck_done(void *arg, int status)
{
  vcheck *v = arg;
  if (status == 0 && v->app->catalog && !v->app->catalog->stopped)
    gw_catalog_check_versions(v->app, v->user, v->versions);
  json_decref(v->versions);
  free(v);
}

const char *gw_catalog_cached(gw_app *app, const char *user, size_t *len, void **ref)
{
  gw_catalog *cat = app->catalog;
  cached *c = cat ? tg_map_gets(cat->cache, user) : NULL;
  int64_t now = tg_now_ms();
  if (!c || c->gen != gw_catalog_gen(app, user) || now - c->at_ms > GW_CATALOG_TTL_MS)
    return NULL;
  if (now - c->checked_ms > GW_CATALOG_CHECK_MS && !cat->stopped) {
    /* sources changed by other writers (a connector row, a reconnect) are noticed this late */
    vcheck *v = calloc(1, sizeof *v);
    c->checked_ms = now;
    if (v) {
      v->app = app;
      snprintf(v->user, sizeof v->user, "%s", user);
      if (tg_dbq_submit(app->dbq, vcheck_work, vcheck_done, v) != 0)
        free(v);
    }
  }
  *len = c->len;
  c->refs++;
  *ref = c;
  return c->body;
}

void gw_catalog_cache_put(gw_app *app, const char *user, uint64_t gen, char *body, size_t len)
{
  gw_catalog *cat = app->catalog;
  cached *c = cat && gen == gw_catalog_gen(app, user) ? calloc(1, sizeof *c) : NULL;
  if (!c) {
    free(body);
    return;
  }
  *c = (cached){.gen = gen,
                .at_ms = tg_now_ms(),
                .checked_ms = tg_now_ms(),
                .body = body,
                .len = len,
                .refs = 1};
  if (tg_map_puts(cat->cache, user, c, len + 64) != 0)
    cached_free(c);
}

void gw_catalog_check_versions(gw_app *app, const char *user, const json_t *versions)
{
  user_state *u = app->catalog ? user_get(app->catalog, user) : NULL;
  const char *k;
  json_t *v;
  if (!u)
    return;
  json_object_foreach((json_t *)versions, k, v)
  {
    if (!json_equal(json_object_get(u->synced, k), v)) {
      gw_catalog_sync_user(app, user, 0);
      return;
    }
  }
}

/* ---------------------------------------------------------------- LOAD */

static const char *str(const json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

/* "Name: value" lines of a headers object (strings only) appended to lines. */
static void add_header_lines(json_t *lines, const json_t *headers)
{
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)headers, k, v)
  {
    size_t n;
    char *line;
    if (!json_is_string(v) || strpbrk(k, "\r\n:") || strpbrk(json_string_value(v), "\r\n"))
      continue;
    n = strlen(k) + json_string_length(v) + 3;
    if ((line = malloc(n)) != NULL) {
      snprintf(line, n, "%s: %s", k, json_string_value(v));
      json_array_append_new(lines, json_string(line));
      tg_crypto_wipe_free(line, n);
    }
  }
}

/* The operation's name: name, id or operation_id, else "<method>_<path>" in [a-z0-9_]. */
static void op_name(const json_t *op, size_t i, char *out, size_t len)
{
  const char *n = str(op, "name") ? str(op, "name")
                  : str(op, "id") ? str(op, "id")
                                  : str(op, "operation_id");
  size_t o = 0;
  if (n) {
    snprintf(out, len, "%s", n);
    return;
  }
  snprintf(out, len, "%s_%s", str(op, "method") ? str(op, "method") : "op",
           str(op, "path") ? str(op, "path") : "");
  for (char *p = out; *p; p++) {
    char c = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      out[o++] = c;
    else if (o && out[o - 1] != '_')
      out[o++] = '_';
  }
  while (o && out[o - 1] == '_')
    o--;
  out[o] = 0;
  if (!*out)
    snprintf(out, len, "op_%zu", i);
}

/* Writes an API connector's tools: one per operation of config.operations. */
static int sync_api_connector(tg_db *db, const char *user, const json_t *c, int64_t now,
                              tg_tools_stats *st)
{
  const char *id = str(c, "id");
  const json_t *ops = json_object_get(json_object_get(c, "config"), "operations"), *op;
  size_t n = json_array_size(ops), i;
  tg_tool_def *defs = calloc(n ? n : 1, sizeof *defs);
  json_t *keep = json_array();
  char prefix[160];
  int rc = TG_ENOMEM;
  snprintf(prefix, sizeof prefix, "api:%s:", id);
  if (!defs || !keep)
    goto out;
  json_array_foreach(ops, i, op)
  {
    char name[TG_TOOL_NAME_MAX + 1], sid[320];
    const json_t *schema = json_object_get(op, "input_schema");
    json_t *def, *s, *holder;
    op_name(op, i, name, sizeof name);
    snprintf(sid, sizeof sid, "%s%s", prefix, name);
    s = json_is_object(schema) ? json_incref((json_t *)schema)
                               : tg_tool_schema_infer(json_object_get(op, "example_payload"));
    def = json_pack("{s:o?, s:s, s:s, s:s, s:s?, s:s?}", "input_schema", s, "source", "api",
                    "connector_id", id, "operation", name, "method", str(op, "method"), "path",
                    str(op, "path"));
    holder = json_pack("{s:s, s:s, s:s?, s:o?}", "sid", sid, "name", name, "description",
                       str(op, "description"), "def", def);
    if (!holder || json_array_append_new(keep, holder))
      goto out;
    defs[i] = (tg_tool_def){.string_id = str(holder, "sid"),
                            .name = str(holder, "name"),
                            .description = str(holder, "description") ? str(holder, "description")
                                                                      : str(c, "description"),
                            .tool_type = "api",
                            .source = "connector",
                            .connector_id = id,
                            .definition = json_object_get(holder, "def"),
                            .tags = NULL};
  }
  {
    json_t *tags = json_pack("[s]", "synced");
    for (i = 0; i < n; i++)
      defs[i].tags = tags;
    rc = tg_store_tools_sync(db, user, prefix, defs, n, now, st);
    json_decref(tags);
  }
out:
  free(defs);
  json_decref(keep);
  return rc;
}

/* A tools/list target for MCP connector c, or NULL when it cannot be listed now (work side). An
 * OAuth connector is listed only when ACTIVE, with its access token as it is stored (read-only:
 * refreshing is the worker's; a 401 just leaves its tools as they are until a later sync). */
static json_t *mcp_connector_target(tg_db *db, const gw_app *app, const char *user, const json_t *c)
{
  const json_t *cfg = json_object_get(c, "config");
  const char *auth = str(c, "auth_status"), *url = str(cfg, "url");
  json_t *lines, *t, *opened = NULL;
  char prefix[160], *token = NULL, **hl = NULL;
  if (!url || (auth && (strcmp(auth, "ACTIVE") != 0 || !app->crypto ||
                        tg_store_connectors_access_token(db, app->crypto, user, str(c, "id"),
                                                         &token) != 0)))
    return NULL;
  /* the connector's headers (its sealed ones opened) and the bearer, as tg_connector builds them
   * for test and invoke; a connector that cannot be opened is not listed now */
  if (tg_store_connectors_open(db, app->crypto, user, str(c, "id"), &opened) == 0)
    hl = tg_connector_mcp_headers(opened, token);
  tg_connector_drop(opened);
  tg_crypto_wipe_free(token, token ? strlen(token) : 0);
  if (!hl || !(lines = json_array())) {
    tg_connector_lines_free(hl);
    return NULL;
  }
  for (size_t i = 0; hl[i]; i++)
    json_array_append_new(lines, json_string(hl[i]));
  tg_connector_lines_free(hl);
  snprintf(prefix, sizeof prefix, "mcp:%s:", str(c, "id"));
  t = json_pack("{s:s, s:s, s:o, s:s, s:s, s:O, s:s, s:b}", "prefix", prefix, "url", url, "headers",
                lines, "source", "connector", "connector_id", str(c, "id"), "version",
                json_object_get(c, "version"), "key", "", "egress", 1);
  if (t) {
    char key[160];
    snprintf(key, sizeof key, "con:%s", str(c, "id"));
    json_object_set_new(t, "key", json_string(key));
  }
  return t;
}

static json_t *composio_target(const gw_app *app, const char *user, const json_t *a)
{
  const char *api_key = tg_secret_reveal(&app->cfg.composio_api_key);
  json_t *lines = json_array(), *t;
  char prefix[160], key[160];
  if (!lines)
    return NULL;
  if (api_key && *api_key) {
    json_t *h = json_pack("{s:s}", "x-api-key", api_key);
    add_header_lines(lines, h);
    json_decref(h);
  }
  if (json_integer_value(json_object_get(a, "has_headers")) && app->crypto) {
    json_t *h = NULL;
    if (tg_sealed_open_mcp_headers_hex(app->crypto,
                                       json_integer_value(json_object_get(a, "mcp_id")), user,
                                       str(a, "headers_enc_hex"), &h) == 0)
      add_header_lines(lines, h);
    json_decref(h);
  }
  snprintf(prefix, sizeof prefix, "composio:%s:", str(a, "provider"));
  snprintf(key, sizeof key, "composio:%s", str(a, "provider"));
  t = json_pack("{s:s, s:s, s:o, s:s, s:s, s:O, s:s, s:b}", "prefix", prefix, "url", str(a, "url"),
                "headers", lines, "source", "composio", "provider", str(a, "provider"), "version",
                json_object_get(a, "version"), "key", key, "egress", 0);
  return t;
}

json_t *gw_catalog_read_connectors(tg_db *db, int *err, const char *user)
{
  return tg_db_query(db, err,
                     "SELECT id, kind, name, description, config AS config_json, "
                     "auth_status, version, deleted_at "
                     "FROM connectors WHERE user_id = ? ORDER BY created_at, id",
                     "s", user);
}

json_t *gw_catalog_source_versions(tg_db *db, int *err, const char *user)
{
  json_t *out = json_object(), *rows, *r;
  size_t i;
  if (!out)
    return NULL;
  rows = tg_db_query(db, err, "SELECT id, version, deleted_at FROM connectors WHERE user_id = ?",
                     "s", user);
  json_array_foreach(rows, i, r)
  {
    char key[160];
    snprintf(key, sizeof key, "con:%s", str(r, "id"));
    json_object_set_new(out, key,
                        json_is_null(json_object_get(r, "deleted_at"))
                            ? json_incref(json_object_get(r, "version"))
                            : json_integer(-1));
  }
  json_decref(rows);
  rows = tg_store_runs_read_accounts(db, err, user);
  json_array_foreach(rows, i, r)
  {
    char key[160];
    int active = str(r, "status") && strcmp(str(r, "status"), "ACTIVE") == 0 && str(r, "url");
    snprintf(key, sizeof key, "composio:%s", str(r, "provider"));
    json_object_set_new(out, key,
                        active ? json_incref(json_object_get(r, "version")) : json_integer(-1));
  }
  json_decref(rows);
  return out;
}

static int load_work(tg_db *db, void *arg)
{
  run *r = arg;
  const gw_app *app = r->cat->app;
  int64_t now = tg_now_ms();
  tg_tools_stats st = {0};
  json_t *c;
  size_t i;
  int rc = 0;
  if (!(r->connectors = gw_catalog_read_connectors(db, &rc, r->user)) ||
      !(r->accounts = tg_store_runs_read_accounts(db, &rc, r->user)) ||
      !(r->targets = json_array()) || !(r->seen = gw_catalog_source_versions(db, &rc, r->user)))
    return rc ? rc : TG_ENOMEM;
  json_array_foreach(r->connectors, i, c)
  {
    const char *kind = str(c, "kind");
    json_t *t = NULL;
    if (!json_is_null(json_object_get(c, "deleted_at"))) {
      int n = 0;
      rc = tg_store_tools_delete_connector(db, r->user, str(c, "id"), now, &n);
      st.deleted += n;
    } else if (kind && strcmp(kind, "api") == 0) {
      rc = sync_api_connector(db, r->user, c, now, &st);
    } else if ((t = mcp_connector_target(db, app, r->user, c))) {
      json_array_append_new(r->targets, t);
    }
    if (rc)
      return rc;
    if (t) /* listed later: marked when its listing is written */
      json_object_set_new(r->seen, json_string_value(json_object_get(t, "key")), json_null());
  }
  json_array_foreach(r->accounts, i, c)
  {
    const char *status = str(c, "status");
    if (status && strcmp(status, "ACTIVE") == 0 && str(c, "url")) {
      json_t *t = composio_target(app, r->user, c);
      if (t) {
        json_object_set_new(r->seen, json_string_value(json_object_get(t, "key")), json_null());
        json_array_append_new(r->targets, t);
      }
    } else {
      char prefix[160];
      snprintf(prefix, sizeof prefix, "composio:%s:", str(c, "provider"));
      if ((rc = tg_store_tools_sync(db, r->user, prefix, NULL, 0, now, &st)) != 0)
        return rc;
    }
  }
  r->written += st.inserted + st.updated + st.deleted;
  return 0;
}

/* ---------------------------------------------------------------- listeners */

static void listener_closed(uv_handle_t *h)
{
  free(h->data);
}

/* The map's free function; also frees a listener that never got into the map. Never called
 * from inside its client's callbacks. */
static void listener_free(void *p)
{
  listener *l = p;
  if (!l)
    return;
  if (l->mcp)
    tg_mcp_close(l->mcp, NULL, NULL);
  json_decref(l->version);
  uv_close((uv_handle_t *)&l->timer, listener_closed);
}

static size_t listener_key(char *buf, size_t len, const char *user, const char *key)
{
  int n = snprintf(buf, len, "%s\n%s", user, key);
  return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* The debounce timer: forget that the source was listed and sync its user again. */
static void on_listen_timer(uv_timer_t *h)
{
  listener *l = h->data;
  user_state *u = user_get(l->cat, l->user);
  if (!u || l->cat->stopped)
    return;
  l->resync_ms = tg_now_ms();
  tg_info("catalog_list_changed", "{s:s, s:s}", "user_id", l->user, "source", l->key);
  json_object_del(u->synced, l->key);
  gw_catalog_sync_user(l->cat->app, l->user, 0);
}

static void on_listen_notify(void *arg, const char *method, json_t *params)
{
  listener *l = arg;
  int64_t wait = l->resync_ms + LISTEN_DEBOUNCE_MS - tg_now_ms();
  (void)params;
  if (!method || strcmp(method, "notifications/tools/list_changed") != 0 ||
      uv_is_active((uv_handle_t *)&l->timer))
    return;
  uv_timer_start(&l->timer, on_listen_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

static listener *listener_new(gw_catalog *cat, const char *user, const json_t *t)
{
  listener *l = calloc(1, sizeof *l);
  if (!l)
    return NULL;
  l->cat = cat;
  l->version = json_incref(json_object_get(t, "version"));
  snprintf(l->user, sizeof l->user, "%s", user);
  snprintf(l->key, sizeof l->key, "%s", str(t, "key"));
  uv_timer_init(cat->app->loop, &l->timer);
  l->timer.data = l;
  return l;
}

/* Makes l (its client listed the source) the source's listener, replacing the previous one. */
static void listener_install(gw_catalog *cat, listener *l)
{
  char k[GW_USER_MAX + 200];
  size_t n = listener_key(k, sizeof k, l->user, l->key);
  const listener *old = tg_map_peek(cat->listeners, k, n);
  if (old)
    l->resync_ms = old->resync_ms;
  if (tg_map_put(cat->listeners, k, n, l, 1) != 0)
    listener_free(l);
}

typedef struct sweep_ctx {
  const char *user;
  const json_t *targets;
} sweep_ctx;

/* Deletes a user's listener whose source is no longer a target at the version it listened to. */
static int sweep_listener(void *ctx, const void *key, size_t klen, void *value)
{
  const sweep_ctx *c = ctx;
  const listener *l = value;
  const json_t *t;
  size_t i;
  (void)key, (void)klen;
  if (strcmp(l->user, c->user) != 0)
    return 0;
  json_array_foreach(c->targets, i, t)
  {
    const char *tk = str(t, "key");
    if (tk && strcmp(tk, l->key) == 0)
      return !json_equal(json_object_get(t, "version"), l->version);
  }
  return 1;
}

/* ---------------------------------------------------------------- listing, APPLY */

static void run_free(uv_handle_t *h)
{
  run *r = h->data;
  json_decref(r->connectors);
  json_decref(r->accounts);
  json_decref(r->targets);
  json_decref(r->seen);
  json_decref(r->listed);
  listener_free(r->lis);
  free(r);
}

static void run_end(run *r, int status)
{
  gw_catalog *cat = r->cat;
  user_state *u = user_get(cat, r->user);
  if (status != 0 && status != TG_ECANCELED)
    tg_warn("catalog_sync_failed", "{s:s, s:s}", "user_id", r->user, "error", tg_errname(status));
  tg_info("catalog_synced", "{s:s, s:i, s:i}", "user_id", r->user, "written", r->written,
          "mcp_sources", (int)json_array_size(r->targets));
  if (u) {
    u->running = 0;
    if (r->written)
      gw_catalog_touch(cat->app, r->user);
    if (u->again && !cat->stopped) {
      u->again = 0;
      gw_catalog_sync_user(cat->app, r->user, u->force);
    }
  }
  if (!u || !u->running)
    gw_catalog_startup_next(cat->app);
  uv_close((uv_handle_t *)&r->timer, run_free);
}

/* Records a source as synced at its version (loop). */
static void mark_synced(run *r, const json_t *t)
{
  user_state *u = user_get(r->cat, r->user);
  if (u && str(t, "key"))
    json_object_set(u->synced, str(t, "key"), json_object_get(t, "version"));
}

static int apply_work(tg_db *db, void *arg)
{
  run *r = arg;
  const json_t *t = json_array_get(r->targets, r->next - 1), *tool;
  size_t n = json_array_size(r->listed), i, k = 0;
  tg_tool_def *defs = calloc(n ? n : 1, sizeof *defs);
  json_t *keep = json_array(), *tags = json_pack("[s]", "synced");
  tg_tools_stats st = {0};
  int composio = strcmp(str(t, "source"), "composio") == 0, rc = TG_ENOMEM;
  if (!defs || !keep || !tags)
    goto out;
  json_array_foreach(r->listed, i, tool)
  {
    const char *name = str(tool, "name");
    char sid[640];
    json_t *h, *schema = json_object_get(tool, "inputSchema");
    if (!name || !*name || strlen(name) > TG_TOOL_NAME_MAX)
      continue;
    snprintf(sid, sizeof sid, "%s%s", str(t, "prefix"), name);
    h = json_pack("{s:s, s:{s:O?, s:s, s:s?, s:s?, s:s, s:O?}}", "sid", sid, "def", "input_schema",
                  json_is_object(schema) ? schema : NULL, "source", "mcp", "connector_id",
                  str(t, "connector_id"), "provider", str(t, "provider"), "tool_name", name,
                  "annotations", json_object_get(tool, "annotations"));
    if (!h || json_array_append_new(keep, h))
      goto out;
    defs[k++] = (tg_tool_def){.string_id = str(h, "sid"),
                              .name = name,
                              .description = str(tool, "description"),
                              .tool_type = "mcp",
                              .source = composio ? "composio" : "connector",
                              .connector_id = str(t, "connector_id"),
                              .definition = json_object_get(h, "def"),
                              .tags = tags};
  }
  rc = tg_store_tools_sync(db, r->user, str(t, "prefix"), defs, k, tg_now_ms(), &st);
  r->written += st.inserted + st.updated + st.deleted;
out:
  free(defs);
  json_decref(keep);
  json_decref(tags);
  return rc;
}

static void apply_done(void *arg, int status)
{
  run *r = arg;
  if (status == 0)
    mark_synced(r, json_array_get(r->targets, r->next - 1));
  else
    tg_warn("catalog_apply_failed", "{s:s, s:s}", "user_id", r->user, "error", tg_errname(status));
  run_next(r);
}

/* Zero timer after tools/list: closes the client outside its callback, then writes. */
static void on_listed_later(uv_timer_t *h)
{
  run *r = h->data;
  if (r->listed && r->lis && !r->cat->stopped) {
    r->lis->mcp = r->mcp; /* keeps listening */
    listener_install(r->cat, r->lis);
  } else {
    tg_mcp_close(r->mcp, NULL, NULL);
    listener_free(r->lis);
  }
  r->lis = NULL;
  r->mcp = NULL;
  if (r->listed && !r->cat->stopped &&
      tg_dbq_submit(r->cat->app->dbq, apply_work, apply_done, r) == 0)
    return;
  run_next(r);
}

static void on_tools(void *arg, const tg_mcp_error *err, json_t *tools)
{
  run *r = arg;
  const json_t *t = json_array_get(r->targets, r->next - 1);
  if (err)
    tg_warn("catalog_list_failed", "{s:s, s:s, s:s, s:s}", "user_id", r->user, "source",
            str(t, "key"), "error", tg_errname(err->err), "message", err->message);
  else
    r->listed = json_incref(tools);
  uv_timer_start(&r->timer, on_listed_later, 0, 0);
}

static void run_next(run *r)
{
  gw_catalog *cat = r->cat;
  while (!cat->stopped && r->next < json_array_size(r->targets)) {
    const json_t *t = json_array_get(r->targets, r->next++), *lines = json_object_get(t, "headers");
    user_state *u = user_get(cat, r->user);
    size_t n = json_array_size(lines);
    const char **h;
    tg_mcp_options opt = {0};
    int rc;
    if (!r->force && u && str(t, "key") &&
        json_equal(json_object_get(u->synced, str(t, "key")), json_object_get(t, "version")))
      continue; /* listed at this version already */
    json_decref(r->listed);
    r->listed = NULL;
    if (!(h = calloc(n + 1, sizeof *h)))
      break;
    for (size_t i = 0; i < n; i++)
      h[i] = json_string_value(json_array_get(lines, i));
    opt.url = str(t, "url");
    opt.headers = h;
    opt.request_timeout_ms = MCP_TIMEOUT_MS;
    if ((r->lis = listener_new(cat, r->user, t))) {
      opt.listen = 1;
      opt.on_notify = on_listen_notify;
      opt.notify_arg = r->lis;
    }
    rc = tg_mcp_client_new(
        &r->mcp,
        json_is_true(json_object_get(t, "egress")) ? cat->app->http_egress : cat->app->http, &opt);
    free(h);
    if (rc == 0 && (rc = tg_mcp_list_tools(r->mcp, on_tools, r)) == 0)
      return;
    tg_mcp_close(r->mcp, NULL, NULL);
    r->mcp = NULL;
    listener_free(r->lis);
    r->lis = NULL;
    tg_warn("catalog_list_failed", "{s:s, s:s}", "user_id", r->user, "error", tg_errname(rc));
  }
  run_end(r, cat->stopped ? TG_ECANCELED : 0);
}

static void load_done(void *arg, int status)
{
  run *r = arg;
  user_state *u = user_get(r->cat, r->user);
  const char *k;
  json_t *v;
  if (status != 0) {
    run_end(r, status);
    return;
  }
  json_object_foreach(r->seen, k, v)
  {
    if (u && !json_is_null(v)) /* synced by LOAD itself; MCP sources wait for their listing */
      json_object_set(u->synced, k, v);
  }
  if (r->cat->listeners)
    tg_map_sweep(r->cat->listeners, sweep_listener, &(sweep_ctx){r->user, r->targets});
  run_next(r);
}

void gw_catalog_sync_user(gw_app *app, const char *user, int force)
{
  gw_catalog *cat = app->catalog;
  user_state *u = cat && !cat->stopped ? user_get(cat, user) : NULL;
  run *r;
  if (!u)
    return;
  u->force |= force;
  if (u->running) {
    u->again = 1;
    return;
  }
  if (!(r = calloc(1, sizeof *r)))
    return;
  r->cat = cat;
  r->force = u->force;
  u->force = 0;
  snprintf(r->user, sizeof r->user, "%s", user);
  uv_timer_init(app->loop, &r->timer);
  r->timer.data = r;
  u->running = 1;
  if (tg_dbq_submit(app->dbq, load_work, load_done, r) != 0) {
    u->running = 0;
    uv_close((uv_handle_t *)&r->timer, run_free);
  }
}

void gw_catalog_connector_changed(gw_app *app, const char *user_id, const char *connector_id)
{
  (void)connector_id; /* the user's sync covers every connector; versions skip the others */
  gw_catalog_sync_user(app, user_id, 0);
}

/* ---------------------------------------------------------------- start-up, stop */

static int users_work(tg_db *db, void *arg)
{
  gw_catalog *cat = arg;
  int rc = 0;
  cat->startup = tg_db_query(db, &rc,
                             "SELECT user_id FROM connectors UNION SELECT user_id FROM "
                             "connected_accounts ORDER BY 1",
                             "");
  return cat->startup ? 0 : rc;
}

static void users_done(void *arg, int status)
{
  gw_catalog *cat = arg;
  if (status != 0)
    tg_warn("catalog_startup_failed", "{s:s}", "error", tg_errname(status));
  gw_catalog_startup_next(cat->app);
}

void gw_catalog_startup_next(gw_app *app)
{
  gw_catalog *cat = app->catalog;
  while (cat && !cat->stopped && cat->startup_next < json_array_size(cat->startup)) {
    const char *user = str(json_array_get(cat->startup, cat->startup_next++), "user_id");
    user_state *u = user ? user_get(cat, user) : NULL;
    if (!u || u->running)
      continue;
    gw_catalog_sync_user(app, user, 1);
    return; /* one start-up sync at a time; run_end calls this again */
  }
}

int gw_catalog_start(gw_app *app)
{
  gw_catalog *cat = calloc(1, sizeof *cat);
  int rc = TG_ENOMEM;
  if (!cat)
    return TG_ENOMEM;
  cat->app = app;
  app->catalog = cat;
  if (!(cat->users = tg_map_new(0, user_state_free)) ||
      !(cat->cache = tg_map_new(CACHE_MAX_BYTES, cached_free)) ||
      !(cat->listeners = tg_map_new(MAX_LISTENERS, listener_free)) ||
      !(cat->builtins = builtin_entries()))
    return TG_ENOMEM;
  if ((rc = tg_dbq_submit(app->dbq, builtins_work, builtins_done, cat)) != 0 ||
      (rc = tg_dbq_submit(app->dbq, users_work, users_done, cat)) != 0)
    return rc;
  return 0;
}

void gw_catalog_stop(gw_app *app)
{
  gw_catalog *cat = app->catalog;
  if (!cat || cat->stopped)
    return;
  cat->stopped = 1;
  tg_map_free(cat->listeners); /* before the clients they use (app->http, app->http_egress) close */
  cat->listeners = NULL;
}

void gw_catalog_free(gw_app *app)
{
  gw_catalog *cat = app->catalog;
  if (!cat)
    return;
  tg_map_free(cat->listeners); /* empty unless start-up failed before stop */
  tg_map_free(cat->users);
  tg_map_free(cat->cache);
  json_decref(cat->builtins);
  json_decref(cat->startup);
  free(cat);
  app->catalog = NULL;
}
