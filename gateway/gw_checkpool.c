/*
 * gw_checkpool: the gateway's provider checks (DESIGN.md section 4), coalesced per user.
 *
 * Per user there is at most one Composio list call in flight. A check that arrives while a
 * call is in flight joins the user's queue; when the call ends, every queued check shares the
 * NEXT call, which therefore started after each of them arrived: an answer is never older than
 * its question, and nothing is cached. N concurrent checks of one user cost about two list
 * calls instead of N; the difference is counted as composio_calls_saved.
 *
 * One batch = one list call (user_ids=U, toolkit_slugs = union of the waiters' slugs, all
 * pages), then a GET by id, in parallel, for each account the list did not mention (all of
 * them when the list failed). A 429 anywhere starts a pool-wide back-off until its
 * Retry-After (Composio's limit is per organisation and shared by every endpoint: composio-
 * api.md 6.2): no fallback GETs, and checks arriving during the back-off answer UNAVAILABLE at
 * once with the remaining time, without a call. Each waiter then decides its own scope with
 * tg_check_decide over the batch's accounts; accounts nobody could answer for make a waiter
 * UNAVAILABLE unless another of its providers is already known to be blocked (the same rule
 * as tg_check_run).
 *
 * Invariants: all of this runs on the loop thread. A waiter borrows its caller's scope and
 * rows until its callback runs (and only its own callback reads them); a batch owns copies of
 * the account ids it asked about and of the accounts Composio reported. A
 * user entry lives while it has a batch in flight or waiters queued.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RETRY_MS 5000

enum { ID_UNKNOWN = 0, ID_ANSWERED, ID_NOT_FOUND };

typedef struct user_entry user_entry;
typedef struct batch batch;

typedef struct waiter {
  struct waiter *next;
  const json_t *scope;
  const tg_check_row *rows;
  size_t n_rows;
  tg_check_cb cb;
  void *arg;
  uint64_t t0; /* uv_hrtime at submit */
} waiter;

typedef struct get_arg {
  batch *b;
  size_t i; /* index into b->ids */
} get_arg;

struct batch {
  user_entry *u;
  waiter *waiters;
  size_t n_waiters;
  char **ids; /* union of the waiters' account ids (owned copies: a waiter answered
                 first may free its rows while the others are still concluding) */
  int *state; /* ID_* per id */
  get_arg *gets;
  size_t n_ids;
  tg_composio_account *accts; /* owned copies */
  size_t n_accts;
  int pending;
  int calls;
  long retry_after_ms;
  int stop_fallback; /* 429 or 401/403: per-account GETs would not help */
  char why[96];
  int auth_rejected; /* Composio answered our API key with 401/403 */
};

struct user_entry {
  user_entry *next;
  gw_checkpool *pool;
  char user[GW_USER_MAX + 1];
  batch *inflight;
  waiter *queue, **tail;
  size_t n_queue;
};

struct gw_checkpool {
  gw_app *app;
  user_entry *users;
  uint64_t backoff_until; /* uv_now: no Composio call before this (429 Retry-After) */
};

static int is_active(const char *s)
{
  return s && strcmp(s, "ACTIVE") == 0;
}

/* The row that speaks for provider (as tg_check: an ACTIVE one if any). */
static const tg_check_row *pick_row(const tg_check_row *rows, size_t n, const char *provider)
{
  const tg_check_row *first = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!rows[i].provider || strcmp(rows[i].provider, provider) != 0)
      continue;
    if (is_active(rows[i].status))
      return &rows[i];
    if (!first)
      first = &rows[i];
  }
  return first;
}

/* The row of provider p that needs Composio, or NULL. */
static const tg_check_row *net_row(const waiter *w, const char *p)
{
  const tg_check_row *r = p ? pick_row(w->rows, w->n_rows, p) : NULL;
  return r && is_active(r->status) && r->composio_account_id ? r : NULL;
}

int gw_checkpool_new(gw_checkpool **out, gw_app *app)
{
  gw_checkpool *p = calloc(1, sizeof *p);
  *out = p;
  if (!p)
    return TG_ENOMEM;
  p->app = app;
  return 0;
}

void gw_checkpool_free(gw_checkpool *p)
{
  if (!p)
    return;
  if (p->users)
    tg_warn("checkpool_not_empty", "{s:s}", "user_id", p->users->user);
  free(p);
}

/* ---- deciding ---- */

static const tg_composio_account *find_acct(const tg_composio_account *a, size_t n, const char *id)
{
  for (size_t i = 0; i < n; i++)
    if (a[i].id && strcmp(a[i].id, id) == 0)
      return &a[i];
  return NULL;
}

static int id_state(const batch *b, const char *id)
{
  for (size_t i = 0; b && i < b->n_ids; i++)
    if (strcmp(b->ids[i], id) == 0)
      return b->state[i];
  return ID_UNKNOWN;
}

/*
 * w's result over what b learnt (b NULL: nothing learnt). unavailable_ms is the Retry-After
 * to give when something is unknown; why the detail. NULL only when memory runs out.
 */
static tg_check_result *conclude(const waiter *w, const batch *b, long unavailable_ms,
                                 const char *why)
{
  tg_check_result *r = NULL;
  json_t *known = json_array(), *v;
  size_t i, unknown = 0;

  if (!known)
    return NULL;
  json_array_foreach((json_t *)w->scope, i, v)
  {
    const tg_check_row *row = net_row(w, json_string_value(v));
    if (row && id_state(b, row->composio_account_id) == ID_UNKNOWN) {
      unknown++;
      continue;
    }
    json_array_append(known, v);
  }
  if (tg_check_decide(known, w->rows, w->n_rows, b ? b->accts : NULL, b ? b->n_accts : 0, &r)) {
    json_decref(known);
    return NULL;
  }
  json_decref(known);
  if (unknown && r->outcome == TG_CHECK_OK) {
    r->outcome = TG_CHECK_UNAVAILABLE;
    r->retry_after_ms = unavailable_ms > 0 ? unavailable_ms : DEFAULT_RETRY_MS;
    r->detail = why; /* static or owned by the pool's lifetime strings below */
    r->broker_auth = b && b->auth_rejected;
  }
  return r;
}

/* An UNAVAILABLE stub when even concluding ran out of memory: the callback still runs. */
static tg_check_result *stub(void)
{
  tg_check_result *r = calloc(1, sizeof *r);
  if (r) {
    r->outcome = TG_CHECK_UNAVAILABLE;
    r->retry_after_ms = DEFAULT_RETRY_MS;
    r->detail = "out of memory";
  }
  return r;
}

/* Static detail texts (results outlive batches). */
static const char *why_text(const batch *b, int stopping)
{
  if (stopping)
    return "the gateway is shutting down";
  if (!b)
    return "composio asked us to back off (429 Retry-After)";
  if (strstr(b->why, "TG_ERATELIMIT"))
    return "composio rate limited the check (429)";
  if (b->auth_rejected)
    return "composio rejected the API key";
  return "composio could not answer for every account";
}

static void deliver(gw_checkpool *p, waiter *w, const batch *b, long retry_ms, const char *why)
{
  tg_check_result *r = conclude(w, b, retry_ms, why);
  if (!r)
    r = stub();
  gw_metrics_check_latency(p->app, (double)(uv_hrtime() - w->t0) / 1e6);
  if (r)
    w->cb(w->arg, r);
  free(w);
}

/* ---- one batch: one list call, then GETs ---- */

static void acct_clear(tg_composio_account *a)
{
  free((char *)a->id);
  free((char *)a->status);
  free((char *)a->status_reason);
}

static char *dupnull(const char *s)
{
  return s ? strdup(s) : NULL;
}

static int acct_keep(batch *b, const tg_composio_account *src)
{
  tg_composio_account *a, *grown = realloc(b->accts, (b->n_accts + 1) * sizeof *grown);
  if (!grown)
    return TG_ENOMEM;
  b->accts = grown;
  a = &b->accts[b->n_accts];
  memset(a, 0, sizeof *a);
  a->is_disabled = src->is_disabled;
  a->auth_refresh_required = src->auth_refresh_required;
  a->id = dupnull(src->id);
  a->status = dupnull(src->status);
  a->status_reason = dupnull(src->status_reason);
  if (!a->id || !a->status || (src->status_reason && !a->status_reason)) {
    acct_clear(a);
    return TG_ENOMEM;
  }
  b->n_accts++;
  return 0;
}

static void batch_free(batch *b)
{
  if (!b)
    return;
  for (size_t i = 0; i < b->n_accts; i++)
    acct_clear(&b->accts[i]);
  free(b->accts);
  for (size_t i = 0; i < b->n_ids; i++)
    free(b->ids[i]);
  free(b->ids);
  free(b->state);
  free(b->gets);
  free(b);
}

static void entry_unlink(gw_checkpool *p, user_entry *u)
{
  for (user_entry **pp = &p->users; *pp; pp = &(*pp)->next)
    if (*pp == u) {
      *pp = u->next;
      break;
    }
  free(u);
}

static void note_failure(batch *b, const tg_composio_result *res)
{
  gw_checkpool *p = b->u->pool;
  if (res->err == TG_ERATELIMIT || res->err == TG_EAUTH)
    b->stop_fallback = 1;
  if (res->err == TG_EAUTH)
    b->auth_rejected = 1;
  if (res->err == TG_ERATELIMIT) {
    long ms = res->retry_after_ms > 0 ? res->retry_after_ms : DEFAULT_RETRY_MS;
    uint64_t until = uv_now(p->app->loop) + (uint64_t)ms;
    if (until > p->backoff_until)
      p->backoff_until = until;
    p->app->metrics.composio_rate_limited++;
    tg_warn("composio_rate_limited", "{s:s, s:I}", "user_id", b->u->user, "retry_after_ms",
            (json_int_t)ms);
  }
  if (res->retry_after_ms > b->retry_after_ms)
    b->retry_after_ms = res->retry_after_ms;
  if (!b->why[0])
    snprintf(b->why, sizeof b->why, "%s (HTTP %ld)", tg_errname(res->err), res->http_status);
}

static int start_batch(user_entry *u);

/* Delivers every waiter of the finished batch, then starts the next one for the user. */
static void finish(batch *b)
{
  user_entry *u = b->u;
  gw_checkpool *p = u->pool;
  int stopping = p->app->stopping;
  const char *why = why_text(b, 0);
  waiter *w = b->waiters;

  p->app->metrics.composio_calls += (uint64_t)b->calls;
  while (w) {
    waiter *next = w->next;
    deliver(p, w, b, b->retry_after_ms, why);
    w = next;
  }
  batch_free(b);
  u->inflight = NULL;
  /* Checks that arrived meanwhile (also those queued by the callbacks above). */
  while (u->queue && !u->inflight) {
    if (!stopping && uv_now(p->app->loop) >= p->backoff_until && start_batch(u) == 0)
      break;
    /* Cannot call Composio now: answer the queue without a call. */
    w = u->queue;
    u->queue = NULL;
    u->tail = &u->queue;
    u->n_queue = 0;
    while (w) {
      waiter *next = w->next;
      long ms =
          (long)(p->backoff_until > uv_now(p->app->loop) ? p->backoff_until - uv_now(p->app->loop)
                                                         : DEFAULT_RETRY_MS);
      deliver(p, w, NULL, ms, why_text(NULL, stopping));
      w = next;
    }
  }
  if (!u->inflight && !u->queue)
    entry_unlink(p, u);
}

static void on_get(void *arg, const tg_composio_result *res, const tg_composio_account *acct)
{
  get_arg *g = arg;
  batch *b = g->b;
  b->calls += res->http_calls;
  b->pending--;
  if (!res->err) {
    if (acct_keep(b, acct) == 0)
      b->state[g->i] = ID_ANSWERED;
  } else if (res->err == TG_ENOTFOUND) {
    b->state[g->i] = ID_NOT_FOUND;
  } else {
    note_failure(b, res);
  }
  if (b->pending == 0)
    finish(b);
}

/* Starts a GET for every id still unknown. Returns how many started. */
static int start_gets(batch *b)
{
  int started = 0;
  for (size_t i = 0; i < b->n_ids && !b->stop_fallback; i++) {
    int rc;
    if (b->state[i] != ID_UNKNOWN)
      continue;
    b->gets[i].b = b;
    b->gets[i].i = i;
    rc = tg_composio_get_account(b->u->pool->app->composio, b->ids[i], on_get, &b->gets[i]);
    if (rc) {
      tg_composio_result res = {.err = rc, .retry_after_ms = -1};
      note_failure(b, &res);
      continue;
    }
    b->pending++;
    started++;
  }
  return started;
}

static void on_list(void *arg, const tg_composio_result *res, const tg_composio_account *items,
                    size_t n)
{
  batch *b = arg;
  b->calls += res->http_calls;
  b->pending--;
  if (res->err) {
    note_failure(b, res);
  } else {
    for (size_t i = 0; i < b->n_ids; i++) {
      const tg_composio_account *a = find_acct(items, n, b->ids[i]);
      if (a && acct_keep(b, a) == 0)
        b->state[i] = ID_ANSWERED;
    }
  }
  if (start_gets(b) == 0)
    finish(b);
}

static int has(char *const *arr, size_t n, const char *s)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(arr[i], s) == 0)
      return 1;
  return 0;
}

static int add_unique(const char **arr, size_t *n, const char *s)
{
  for (size_t i = 0; i < *n; i++)
    if (strcmp(arr[i], s) == 0)
      return 0;
  arr[(*n)++] = s;
  return 1;
}

/*
 * Takes u's queue as a new batch and starts its list call. Returns 0 (u->inflight set; the
 * batch finishes later from a Composio callback) or an error with the queue left as it was.
 */
static int start_batch(user_entry *u)
{
  gw_checkpool *p = u->pool;
  batch *b = calloc(1, sizeof *b);
  const char **slugs = NULL;
  size_t cap = 0, n_slugs = 0;
  int rc = TG_ENOMEM;

  if (!b)
    return TG_ENOMEM;
  for (waiter *w = u->queue; w; w = w->next)
    cap += json_array_size(w->scope);
  b->u = u;
  b->retry_after_ms = -1;
  b->ids = calloc(cap ? cap : 1, sizeof *b->ids);
  b->state = calloc(cap ? cap : 1, sizeof *b->state);
  b->gets = calloc(cap ? cap : 1, sizeof *b->gets);
  slugs = calloc(cap ? cap : 1, sizeof *slugs);
  if (!b->ids || !b->state || !b->gets || !slugs)
    goto fail;
  for (waiter *w = u->queue; w; w = w->next) {
    json_t *v;
    size_t i;
    json_array_foreach((json_t *)w->scope, i, v)
    {
      const tg_check_row *row = net_row(w, json_string_value(v));
      if (!row)
        continue;
      if (!has(b->ids, b->n_ids, row->composio_account_id)) {
        if (!(b->ids[b->n_ids] = strdup(row->composio_account_id)))
          goto fail;
        b->n_ids++;
      }
      if (row->toolkit_slug && *row->toolkit_slug)
        add_unique(slugs, &n_slugs, row->toolkit_slug);
    }
  }
  rc = tg_composio_list_accounts(p->app->composio, u->user, slugs, n_slugs, on_list, b);
  free(slugs);
  slugs = NULL;
  if (rc) {
    /* The list cannot start: fall back to GETs at once, as for any list failure. */
    tg_composio_result res = {.err = rc, .retry_after_ms = -1};
    if (rc == TG_ENOMEM || rc == TG_EINVAL)
      goto fail;
    note_failure(b, &res);
    if (start_gets(b) == 0)
      goto fail;
  } else {
    b->pending = 1;
    p->app->metrics.composio_list_calls++;
  }
  /* The batch owns the queue from here on. */
  b->waiters = u->queue;
  b->n_waiters = u->n_queue;
  p->app->metrics.composio_calls_saved += b->n_waiters - 1;
  u->queue = NULL;
  u->tail = &u->queue;
  u->n_queue = 0;
  u->inflight = b;
  return 0;
fail:
  free(slugs);
  batch_free(b);
  return rc ? rc : TG_EIO;
}

int gw_check(gw_app *app, const char *user, const json_t *scope, const tg_check_row *rows,
             size_t n_rows, tg_check_cb cb, void *arg, tg_check_result **now)
{
  gw_checkpool *p = app->checks;
  user_entry *u;
  waiter *w;
  json_t *v;
  size_t i;
  int needs_net = 0, rc;

  *now = NULL;
  if (!json_is_array(scope) || !cb || (n_rows && !rows))
    return TG_EINVAL;
  if (app->stopping)
    return TG_ECANCELED;
  if (!(w = calloc(1, sizeof *w)))
    return TG_ENOMEM;
  w->scope = scope;
  w->rows = rows;
  w->n_rows = n_rows;
  w->cb = cb;
  w->arg = arg;
  w->t0 = uv_hrtime();
  json_array_foreach((json_t *)scope, i, v) needs_net |= net_row(w, json_string_value(v)) != NULL;
  if (!needs_net || uv_now(app->loop) < p->backoff_until) {
    long ms = (long)(p->backoff_until > uv_now(app->loop) ? p->backoff_until - uv_now(app->loop)
                                                          : DEFAULT_RETRY_MS);
    *now = conclude(w, NULL, ms, why_text(NULL, 0));
    free(w);
    if (!*now)
      return TG_ENOMEM;
    gw_metrics_check_latency(app, 0);
    return 0;
  }
  for (u = p->users; u && strcmp(u->user, user) != 0; u = u->next)
    ;
  if (!u) {
    if (!(u = calloc(1, sizeof *u))) {
      free(w);
      return TG_ENOMEM;
    }
    u->pool = p;
    snprintf(u->user, sizeof u->user, "%s", user);
    u->tail = &u->queue;
    u->next = p->users;
    p->users = u;
  }
  *u->tail = w;
  u->tail = &w->next;
  u->n_queue++;
  if (u->inflight)
    return 0; /* shares the next call, started when the current one ends */
  if ((rc = start_batch(u)) != 0) {
    /* w is the only waiter (nothing in flight means nothing was queued). */
    u->queue = NULL;
    u->tail = &u->queue;
    u->n_queue = 0;
    free(w);
    entry_unlink(p, u);
    return rc;
  }
  return 0;
}
