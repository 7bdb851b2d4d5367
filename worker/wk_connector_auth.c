/*
 * wk_connector_auth: the OAuth tokens of a user's MCP connectors in the worker (contract in
 * wk.h; README "Connectors", "MCP authorization").
 *
 * One state per (user, connector) lives in w->conn_auths: the current "Authorization: Bearer"
 * line, a tg_mcp_auth seeded from the stored session (tg_mcp_auth_restore: token endpoint,
 * resource, client) that only ever refreshes, and the links of the nodes that use it. A refresh
 * runs when a node starts with a token that expires within REFRESH_EARLY_MS, or once when a
 * request gets 401 (tg_mcp asks the link's provider); while it runs, every other link that needs
 * it waits for the same one, and a 401 to a request sent with a token older than the current one
 * is just retried (single-flight per connector in this worker). New tokens are written
 * back sealed (a dbq job, tg_store_connector_tokens_save); a failed refresh sets the connector's
 * auth_status to 'auth_refresh_required' (a dbq job, fenced by the connector version the node
 * read, so a reconnect that happened meanwhile is not undone) and every waiting link fails with
 * TG_EAUTH, which the MCP node reports as error_class auth_refresh_required.
 *
 * Lifetimes: a tg_mcp client copies its provider, whose self is the link, and may call it until
 * the client is closed, which the registry does some time after the node ended. So a link is
 * never freed when its node lets go: it is marked free (its callback cleared) and reused by a
 * later node of the same connector after LINK_REUSE_MS, and a state with no node for IDLE_MS is
 * dropped with its links. Everything is freed at exit (wk_conn_auths_free). Tokens are wiped when
 * dropped and never logged.
 */
#include "wk.h"

#include "tg_clock.h"
#include "tg_connector.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_map.h"
#include "tg_mcp_auth.h"
#include "tg_store_connector_tokens.h"
#include "tg_store_connectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFRESH_EARLY_MS 60000
#define LINK_REUSE_MS 60000 /* a released link's client has long been closed by then */
#define IDLE_MS 600000      /* a state no node used for this long is dropped */

typedef struct conn_state conn_state;

struct wk_conn_link {
  wk_conn_link *next;
  conn_state *s;
  int in_use;                     /* a node holds it */
  unsigned gen;                   /* s->gen when its client last took the header */
  uint64_t released_ms;           /* when the node let go */
  void (*cb)(void *arg, int err); /* wk_conn_auth_fresh's waiter */
  tg_mcp_auth_ready_cb mcp_cb;    /* the client's challenge waiter */
  void *arg, *mcp_arg;
  tg_mcp_auth_provider prov;
};

struct conn_state {
  wk_worker *w;
  char *user, *id;
  tg_mcp_auth *a;
  char *header; /* "Authorization: Bearer ..." or NULL */
  int has_refresh;
  int64_t expires_ms;    /* 0 unknown */
  unsigned gen;          /* grows with every new token */
  int64_t version;       /* the connector's version when the tokens were read */
  const json_t *loading; /* the row's tokens while its refresher is created */
  int refreshing, failed, users;
  int writing; /* token write-backs queued and not yet done: memory is newer than the row */
  uint64_t last_ms;
  wk_conn_link *links;
};

typedef struct wk_conn_auths {
  tg_map *states; /* "user\n id" -> conn_state */
} wk_conn_auths;

static void wipe(char *s)
{
  if (s)
    tg_crypto_wipe_free(s, strlen(s));
}

static void state_free(void *v)
{
  conn_state *s = v;
  wk_conn_link *l, *next;
  tg_mcp_auth_free(s->a);
  wipe(s->header);
  free(s->user);
  free(s->id);
  for (l = s->links; l; l = next) {
    next = l->next;
    free(l);
  }
  free(s);
}

/* ---------------------------------------------------------------- work side */

int wk_conn_auth_load(tg_db *db, const tg_crypto *c, const char *user, const char *id,
                      int64_t version, wk_conn_auth_row *row)
{
  int rc;
  memset(row, 0, sizeof *row);
  rc = tg_store_connector_tokens_load(db, c, user, id, &row->tokens, &row->client, &row->meta);
  if (rc == 0 && !json_string_value(json_object_get(row->tokens, "access_token")))
    rc = TG_ENOTFOUND;
  row->version = version;
  if (rc)
    wk_conn_auth_row_clear(row);
  return rc;
}

void wk_conn_auth_row_clear(wk_conn_auth_row *row)
{
  tg_connector_drop(row->tokens);
  tg_connector_drop(row->client);
  json_decref(row->meta);
  memset(row, 0, sizeof *row);
}

/* ---------------------------------------------------------------- write-back jobs */

typedef struct save_job {
  conn_state *s; /* a tokens write: s->writing counts it until done */
  const tg_crypto *crypto;
  char *user, *id;
  json_t *tokens; /* NULL: set auth_refresh_required instead */
  int64_t version;
} save_job;

static int save_work(tg_db *db, void *arg)
{
  save_job *j = arg;
  int64_t now = tg_now_ms();
  int rc = j->tokens ? tg_store_connector_tokens_save(db, j->crypto, j->user, j->id, j->tokens, now)
                     : tg_store_connectors_set_auth_status(db, j->user, j->id, j->version,
                                                           "auth_refresh_required", now);
  if (rc)
    tg_warn("connector_auth_write_failed", "{s:s, s:s, s:s, s:s}", "user_id", j->user,
            "connector_id", j->id, "what", j->tokens ? "tokens" : "auth_status", "error",
            tg_errname(rc));
  return 0;
}

static void save_done(void *arg, int status)
{
  save_job *j = arg;
  (void)status;
  if (j->s)
    j->s->writing--;
  tg_connector_drop(j->tokens);
  free(j->user);
  free(j->id);
  free(j);
}

/* Queues a write of tokens (taken; NULL: the failed-refresh status) for s. Best effort. */
static void queue_save(conn_state *s, json_t *tokens)
{
  save_job *j = calloc(1, sizeof *j);
  if (j && (j->user = strdup(s->user)) && (j->id = strdup(s->id))) {
    j->crypto = s->w->crypto;
    j->tokens = tokens;
    j->version = s->version;
    if (tg_dbq_submit(s->w->dbq, save_work, save_done, j) == 0) {
      if (tokens) {
        j->s = s;
        s->writing++;
      }
      return;
    }
    j->tokens = NULL;
  }
  tg_warn("connector_auth_write_failed", "{s:s, s:s}", "connector_id", s->id, "error",
          "cannot queue");
  if (j)
    save_done(j, 0);
  tg_connector_drop(tokens);
}

/* ---------------------------------------------------------------- tokens in memory */

static void set_header(conn_state *s, const char *access_token)
{
  size_t n = strlen(access_token) + 32;
  wipe(s->header);
  if ((s->header = malloc(n)))
    snprintf(s->header, n, "Authorization: Bearer %s", access_token);
}

static int store_load_tokens(void *arg, tg_mcp_auth_tokens *out)
{
  const json_t *t = ((conn_state *)arg)->loading;
  out->access_token = json_string_value(json_object_get(t, "access_token"));
  out->refresh_token = json_string_value(json_object_get(t, "refresh_token"));
  out->scope = json_string_value(json_object_get(t, "scope"));
  out->expires_at = (int64_t)json_integer_value(json_object_get(t, "expires_at")) / 1000;
  return out->access_token ? 0 : 1;
}

static void store_save_tokens(void *arg, const tg_mcp_auth_tokens *t)
{
  conn_state *s = arg;
  if (s->loading)
    return; /* tg_mcp_auth_new hands back what it loaded: nothing new */
  s->gen++;
  set_header(s, t->access_token);
  s->has_refresh = t->refresh_token != NULL;
  s->expires_ms = t->expires_at * 1000;
  queue_save(s, json_pack("{s:s, s:s?, s:s?, s:I}", "access_token", t->access_token,
                          "refresh_token", t->refresh_token, "scope", t->scope, "expires_at",
                          (json_int_t)s->expires_ms));
}

/* Replaces s's tokens and refresher with row's (taken). */
static int load_row(conn_state *s, const char *server_url, wk_conn_auth_row *row)
{
  const json_t *m = row->meta, *t = row->tokens;
  tg_mcp_auth_options opt = {
      .server_url = server_url,
      .redirect_uri = json_string_value(json_object_get(m, "redirect_uri")),
      .store = {.load_tokens = store_load_tokens, .save_tokens = store_save_tokens, .arg = s}};
  tg_mcp_auth_session ses = tg_store_connector_tokens_session(m, row->client);
  tg_mcp_auth *a = NULL;
  int rc;
  s->loading = t;
  rc = tg_mcp_auth_new(&a, s->w->http_egress ? s->w->http_egress : s->w->http, &opt);
  s->loading = NULL;
  if (rc == 0 && ses.token_endpoint && ses.client.client_id &&
      (rc = tg_mcp_auth_restore(a, &ses)) != 0) {
    tg_mcp_auth_free(a);
    a = NULL;
  }
  if (rc == 0) {
    tg_mcp_auth_free(s->a);
    s->a = a;
    /* from here on the refresher's tokens are saved through s */
    set_header(s, json_string_value(json_object_get(t, "access_token")));
    s->has_refresh = json_string_value(json_object_get(t, "refresh_token")) != NULL;
    s->expires_ms = (int64_t)json_integer_value(json_object_get(t, "expires_at"));
    s->version = row->version;
    s->failed = 0;
    s->gen++;
  }
  wk_conn_auth_row_clear(row);
  return rc ? rc : s->header ? 0 : TG_ENOMEM;
}

/* ---------------------------------------------------------------- refresh */

static void on_refreshed(void *arg, int err, const char *message)
{
  conn_state *s = arg;
  wk_conn_link *l;
  s->refreshing = 0;
  if (err) {
    s->failed = 1;
    tg_warn("connector_refresh_failed", "{s:s, s:s, s:s}", "user_id", s->user, "connector_id",
            s->id, "message", message ? message : tg_strerror(err));
    queue_save(s, NULL);
  } else {
    tg_info("connector_token_refreshed", "{s:s, s:s}", "user_id", s->user, "connector_id", s->id);
  }
  for (l = s->links; l; l = l->next) {
    void (*cb)(void *, int) = l->cb;
    tg_mcp_auth_ready_cb mcb = l->mcp_cb;
    l->cb = NULL;
    l->mcp_cb = NULL;
    if (cb)
      cb(l->arg, err ? TG_EAUTH : 0);
    if (mcb)
      mcb(l->mcp_arg, err ? TG_EAUTH : 0, err ? "the connector's token refresh failed" : NULL);
  }
}

/* Starts a refresh of s unless one runs: 0, or TG_EAUTH (none possible: marked failed). */
static int start_refresh(conn_state *s)
{
  int rc;
  if (s->refreshing)
    return 0;
  if (s->failed)
    return TG_EAUTH;
  rc = s->a && s->has_refresh ? 0 : TG_ENOTFOUND;
  if (rc == 0)
    rc = tg_mcp_auth_refresh(s->a, on_refreshed, s);
  if (rc) {
    s->failed = 1;
    tg_warn("connector_refresh_failed", "{s:s, s:s, s:s}", "user_id", s->user, "connector_id",
            s->id, "message", rc == TG_ENOTFOUND ? "no refresh token" : tg_strerror(rc));
    queue_save(s, NULL);
    return TG_EAUTH;
  }
  s->refreshing = 1;
  return 0;
}

/* ---------------------------------------------------------------- the provider */

static const char *prov_header(void *self)
{
  wk_conn_link *l = self;
  l->gen = l->s->gen;
  return l->s->header;
}

static int prov_challenge(void *self, long status, const char *www, tg_mcp_auth_ready_cb cb,
                          void *arg)
{
  wk_conn_link *l = self;
  int rc;
  (void)www;
  if (status != 401 || !l->in_use)
    return TG_EAUTH; /* 403: a scope this connection was not granted; sign in again */
  if (l->gen != l->s->gen && !l->s->failed) {
    cb(arg, 0, NULL); /* refreshed since this request took its token: just retry */
    return 0;
  }
  if ((rc = start_refresh(l->s)) != 0)
    return rc;
  l->mcp_cb = cb;
  l->mcp_arg = arg;
  return 0;
}

static void prov_cancel(void *self)
{
  wk_conn_link *l = self;
  l->mcp_cb = NULL;
}

/* ---------------------------------------------------------------- links */

static int sweep_idle(void *ctx, const void *key, size_t klen, void *value)
{
  conn_state *s = value;
  uint64_t now = *(uint64_t *)ctx;
  (void)key;
  (void)klen;
  return !s->users && !s->refreshing && !s->writing && now - s->last_ms > IDLE_MS;
}

/* 1 when row holds the access token s already has. */
static int same_token(const conn_state *s, const wk_conn_auth_row *row)
{
  const char *at = json_string_value(json_object_get(row->tokens, "access_token"));
  static const char prefix[] = "Authorization: Bearer ";
  return s->a && s->header && at && strcmp(s->header + sizeof prefix - 1, at) == 0;
}

int wk_conn_auth_link(wk_worker *w, const char *user, const char *id, const char *server_url,
                      wk_conn_auth_row *row, wk_conn_link **out)
{
  wk_conn_auths *all = w->conn_auths;
  conn_state *s;
  wk_conn_link *l;
  char key[512];
  uint64_t now = uv_now(w->loop);
  int rc = 0;
  *out = NULL;
  if (!all) {
    if (!(all = calloc(1, sizeof *all)) || !(all->states = tg_map_new(0, state_free))) {
      free(all);
      wk_conn_auth_row_clear(row);
      return TG_ENOMEM;
    }
    w->conn_auths = all;
  }
  tg_map_sweep(all->states, sweep_idle, &now);
  snprintf(key, sizeof key, "%s\n%s", user, id);
  if (!(s = tg_map_gets(all->states, key))) {
    if (!(s = calloc(1, sizeof *s)) || !(s->user = strdup(user)) || !(s->id = strdup(id)) ||
        (rc = tg_map_puts(all->states, key, s, 1)) != 0) {
      if (s)
        state_free(s);
      wk_conn_auth_row_clear(row);
      return rc ? rc : TG_ENOMEM;
    }
    s->w = w;
  }
  s->last_ms = now;
  /* a refresh in flight or a write-back not yet done means memory has the newest tokens;
   * otherwise the row read just now has (another worker may have refreshed) */
  if (s->refreshing || s->writing || same_token(s, row))
    wk_conn_auth_row_clear(row); /* nothing newer: requests in flight keep their token's age */
  else if ((rc = load_row(s, server_url, row)) != 0)
    return rc;
  for (l = s->links; l; l = l->next)
    if (!l->in_use && !l->cb && !l->mcp_cb && now - l->released_ms > LINK_REUSE_MS)
      break;
  if (!l) {
    if (!(l = calloc(1, sizeof *l)))
      return TG_ENOMEM;
    l->s = s;
    l->next = s->links;
    s->links = l;
    l->prov = (tg_mcp_auth_provider){prov_header, prov_challenge, prov_cancel, l};
  }
  l->in_use = 1;
  s->users++;
  *out = l;
  return 0;
}

void wk_conn_auth_unlink(wk_conn_link *l)
{
  if (!l || !l->in_use)
    return;
  l->in_use = 0;
  l->cb = NULL;
  l->released_ms = uv_now(l->s->w->loop);
  l->s->last_ms = l->released_ms;
  l->s->users--;
}

const tg_mcp_auth_provider *wk_conn_auth_provider(wk_conn_link *l)
{
  return &l->prov;
}

int wk_conn_auth_fresh(wk_conn_link *l, void (*cb)(void *arg, int err), void *arg)
{
  conn_state *s = l->s;
  int rc;
  if (s->failed)
    return TG_EAUTH;
  if (!s->refreshing &&
      (!s->expires_ms || !s->has_refresh || tg_now_ms() + REFRESH_EARLY_MS < s->expires_ms))
    return 0;
  if ((rc = start_refresh(s)) != 0)
    return rc;
  l->cb = cb;
  l->arg = arg;
  return 1;
}

int wk_conn_auth_failed(const wk_conn_link *l)
{
  return l && l->s->failed;
}

void wk_conn_auths_free(wk_worker *w)
{
  if (!w->conn_auths)
    return;
  tg_map_free(w->conn_auths->states);
  free(w->conn_auths);
  w->conn_auths = NULL;
}
