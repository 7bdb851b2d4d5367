/*
 * gw_checkpool: the gateway's provider checks (DESIGN.md section 4), coalesced per user.
 *
 * Per user there is at most one Composio list call in flight. A check that arrives while a
 * call is in flight joins the user's queue; when the call ends, every queued check shares the
 * NEXT call, which therefore started after each of them arrived: an answer is never older than
 * its question, and nothing is cached. N concurrent checks of one user cost about two list
 * calls instead of N; the difference is counted as composio_calls_saved.
 *
 * One batch = one tg_check_fetch (common/tg_check.h) over the union of the waiters' account
 * ids: one list call (user_ids=U, toolkit_slugs = union of the waiters' slugs, all pages),
 * then a GET by id, in parallel, for each account the list did not mention (all of them when
 * the list failed), none after a 429 or 401/403 (stop_on_refusal). A 429 anywhere starts a
 * pool-wide back-off until its Retry-After (Composio's limit is per organisation and shared by
 * every endpoint: composio-api.md 6.2): checks arriving during the back-off answer
 * UNAVAILABLE at once with the remaining time, without a call. Each waiter then decides its own
 * scope with tg_check_decide over the batch's accounts; accounts nobody could answer for make a
 * waiter UNAVAILABLE unless another of its providers is already known to be blocked (the same rule
 * as tg_check_run).
 *
 * Invariants: all of this runs on the loop thread. A waiter borrows its caller's scope and
 * rows until its callback runs (and only its own callback reads them); the batch's fetch owns
 * copies of the account ids it asked about and of the accounts Composio reported. A user
 * entry lives while it has a batch in flight or waiters queued.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RETRY_MS 5000

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

struct batch {
  user_entry *u;
  waiter *waiters;
  size_t n_waiters;
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

/* The row of provider p that needs Composio, or NULL. */
static const tg_check_row *net_row(const waiter *w, const char *p)
{
  return tg_check_net_row(w->rows, w->n_rows, p);
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

static int id_state(const tg_check_fetched *is, const char *id)
{
  for (size_t i = 0; is && i < is->n_ids; i++)
    if (strcmp(is->ids[i], id) == 0)
      return is->state[i];
  return TG_CHECK_ID_UNKNOWN;
}

/*
 * w's result over what a batch's fetch learnt (is NULL: nothing learnt). unavailable_ms is
 * the Retry-After to give when something is unknown; why the detail. NULL only when memory
 * runs out.
 */
static tg_check_result *conclude(const waiter *w, const tg_check_fetched *is, long unavailable_ms,
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
    if (row && id_state(is, row->composio_account_id) == TG_CHECK_ID_UNKNOWN) {
      unknown++;
      continue;
    }
    json_array_append(known, v);
  }
  if (tg_check_decide(known, w->rows, w->n_rows, is ? is->accts : NULL, is ? is->n_accts : 0, &r)) {
    json_decref(known);
    return NULL;
  }
  json_decref(known);
  if (unknown && r->outcome == TG_CHECK_OK) {
    r->outcome = TG_CHECK_UNAVAILABLE;
    r->retry_after_ms = unavailable_ms > 0 ? unavailable_ms : DEFAULT_RETRY_MS;
    r->detail = why; /* static or owned by the pool's lifetime strings below */
    r->broker_auth = is && is->auth_rejected;
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
static const char *why_text(const tg_check_fetched *is, int stopping)
{
  if (stopping)
    return "the gateway is shutting down";
  if (!is)
    return "composio asked us to back off (429 Retry-After)";
  if (is->first_err && is->first_err->err == TG_ERATELIMIT)
    return "composio rate limited the check (429)";
  if (is->auth_rejected)
    return "composio rejected the API key";
  return "composio could not answer for every account";
}

static void deliver(gw_checkpool *p, waiter *w, const tg_check_fetched *is, long retry_ms,
                    const char *why)
{
  tg_check_result *r = conclude(w, is, retry_ms, why);
  if (!r)
    r = stub();
  gw_metrics_check_latency(p->app, (double)(uv_hrtime() - w->t0) / 1e6);
  if (r)
    w->cb(w->arg, r);
  free(w);
}

/* ---- one batch: one fetch ---- */

static void entry_unlink(gw_checkpool *p, user_entry *u)
{
  for (user_entry **pp = &p->users; *pp; pp = &(*pp)->next)
    if (*pp == u) {
      *pp = u->next;
      break;
    }
  free(u);
}

/* A Composio call of b's fetch failed: a 429 starts the pool-wide back-off. */
static void on_fetch_failure(void *arg, const tg_composio_result *res)
{
  batch *b = arg;
  gw_checkpool *p = b->u->pool;
  long ms;
  uint64_t until;

  if (res->err != TG_ERATELIMIT)
    return;
  ms = res->retry_after_ms > 0 ? res->retry_after_ms : DEFAULT_RETRY_MS;
  until = uv_now(p->app->loop) + (uint64_t)ms;
  if (until > p->backoff_until)
    p->backoff_until = until;
  p->app->metrics.composio_rate_limited++;
  tg_warn("composio_rate_limited", "{s:s, s:I}", "user_id", b->u->user, "retry_after_ms",
          (json_int_t)ms);
}

static int start_batch(user_entry *u);

/* b's fetch ended: delivers every waiter of b, then starts the next batch for the user. */
static void on_fetched(void *arg, const tg_check_fetched *is)
{
  batch *b = arg;
  user_entry *u = b->u;
  gw_checkpool *p = u->pool;
  int stopping = p->app->stopping;
  const char *why = why_text(is, 0);
  waiter *w = b->waiters;

  p->app->metrics.composio_calls += (uint64_t)is->calls;
  while (w) {
    waiter *next = w->next;
    deliver(p, w, is, is->retry_after_ms, why);
    w = next;
  }
  free(b);
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

static int add_unique(const char **arr, size_t *n, const char *s)
{
  for (size_t i = 0; i < *n; i++)
    if (strcmp(arr[i], s) == 0)
      return 0;
  arr[(*n)++] = s;
  return 1;
}

/*
 * Takes u's queue as a new batch and starts its fetch. Returns 0 (u->inflight set; the batch
 * finishes later from the fetch's callback) or an error with the queue left as it was.
 */
static int start_batch(user_entry *u)
{
  gw_checkpool *p = u->pool;
  batch *b = calloc(1, sizeof *b);
  const char **ids = NULL, **slugs = NULL;
  size_t cap = 0, n_ids = 0, n_slugs = 0;
  tg_check_fetch_req req;
  int rc = TG_ENOMEM;

  if (!b)
    return TG_ENOMEM;
  for (waiter *w = u->queue; w; w = w->next)
    cap += json_array_size(w->scope);
  b->u = u;
  ids = calloc(cap ? cap : 1, sizeof *ids);
  slugs = calloc(cap ? cap : 1, sizeof *slugs);
  if (!ids || !slugs)
    goto fail;
  for (waiter *w = u->queue; w; w = w->next) {
    json_t *v;
    size_t i;
    json_array_foreach((json_t *)w->scope, i, v)
    {
      const tg_check_row *row = net_row(w, json_string_value(v));
      if (!row)
        continue;
      add_unique(ids, &n_ids, row->composio_account_id);
      if (row->toolkit_slug && *row->toolkit_slug)
        add_unique(slugs, &n_slugs, row->toolkit_slug);
    }
  }
  req = (tg_check_fetch_req){.user_id = u->user,
                             .toolkit_slugs = slugs,
                             .n_slugs = n_slugs,
                             .ids = ids,
                             .n_ids = n_ids,
                             .stop_on_refusal = 1,
                             .on_failure = on_fetch_failure};
  if ((rc = tg_check_fetch_start(p->app->composio, p->app->loop, &req, on_fetched, b, NULL)))
    goto fail;
  free(ids);
  free(slugs);
  p->app->metrics.composio_list_calls++;
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
  free(ids);
  free(slugs);
  free(b);
  return rc;
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
