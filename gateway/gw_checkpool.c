/*
 * gw_checkpool: the gateway's provider checks (DESIGN.md section 4), coalesced per user and
 * batched across users.
 *
 * Per user there is at most one Composio fetch in flight. A check that arrives while its user's
 * fetch is in flight joins the user's queue and shares the user's NEXT fetch, which therefore
 * starts after it arrived: an answer is never older than its question, and nothing is cached.
 * A user with queued checks and no fetch in flight is not started at once: it goes on the pool's
 * ready list, flushed once per loop iteration, so checks of DIFFERENT users that become ready in
 * the same iteration share ONE fetch (still started after each of them arrived). The flush runs
 * from a uv_check handle (checks submitted from poll-phase callbacks: HTTP reads, tg_dbq
 * completions, Composio answers) and from a uv_prepare handle (checks submitted from timers,
 * pending or closing callbacks); both are active only while the ready list is non-empty, so no
 * check waits for a blocking poll and an idle pool costs nothing.
 *
 * One batch = one tg_check_fetch (common/tg_check.h) for up to MAX_USERS users (and about
 * QUERY_BUDGET bytes of escaped user ids, so the URL stays short): one list call
 * (user_ids=u1,u2,..., toolkit_slugs = union of the waiters' slugs, all pages: composio-api.md
 * 2.2, OR within a parameter), then a GET by id, in parallel, for each account the list did not
 * mention (all of them, for every user of the batch, when the list failed), none after a 429 or
 * 401/403 (stop_on_refusal). A user id containing ',' is batched alone (Composio splits values
 * on commas). A 429 anywhere starts a pool-wide back-off until its Retry-After (Composio's limit
 * is per organisation and shared by every endpoint: composio-api.md 6.2): checks arriving during
 * the back-off answer UNAVAILABLE at once with the remaining time, without a call. When a fetch
 * ends, every waiter of every user in it decides its own scope with tg_check_decide over the
 * batch's accounts, which matches accounts to the waiter's OWN rows by account id: another
 * user's account in the shared answer never decides for it. Accounts nobody could answer for
 * make a waiter UNAVAILABLE unless another of its providers is already known to be blocked (the
 * same rule as tg_check_start). Then users with queued checks go back on the ready list.
 *
 * Metrics: composio_list_calls counts fetches started; composio_calls_saved = checks served by
 * a fetch - fetches started.
 *
 * Invariants: all of this runs on the loop thread. A waiter borrows its caller's scope and
 * rows until its callback runs (and only its own callback reads them); the batch's fetch owns
 * copies of the user ids and account ids it asked about and of the accounts Composio reported.
 * A user entry (in the pool's user map) lives while it has a fetch in flight, waiters queued,
 * or a place on the ready list; it is on the ready list iff it has waiters queued and no fetch
 * in flight (except during a flush, which empties the list it took).
 */
#include "gw.h"

#include "tg_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RETRY_MS 5000
#define MAX_USERS 32      /* users per fetch */
#define QUERY_BUDGET 3072 /* bytes of URL-escaped user ids per list call (3 per byte, worst) */

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
  gw_checkpool *pool;
  size_t n_users;
  user_entry *users[MAX_USERS];
};

struct user_entry {
  user_entry *ready_next; /* ready list */
  int ready;              /* on the ready list */
  batch *inflight;        /* the fetch answering `taken` */
  waiter *taken;          /* the checks the fetch in flight answers */
  waiter *queue, **tail;
  char user[]; /* the user id, NUL-terminated */
};

struct gw_checkpool {
  gw_app *app;
  tg_map *users;                   /* user id -> user_entry (owned) */
  user_entry *ready, **ready_tail; /* FIFO */
  uv_check_t check;                /* flushes after the poll phase */
  uv_prepare_t prepare;            /* flushes before the poll phase */
  int open_handles;
  uint64_t backoff_until; /* uv_now: no Composio call before this (429 Retry-After) */
};

/* The row of provider p that needs Composio, or NULL. */
static const tg_check_row *net_row(const waiter *w, const char *p)
{
  return tg_check_net_row(w->rows, w->n_rows, p);
}

/* ---- the user table ---- */

static user_entry *user_add(gw_checkpool *p, const char *user)
{
  size_t len = strlen(user);
  user_entry *u = calloc(1, sizeof *u + len + 1);
  if (!u)
    return NULL;
  memcpy(u->user, user, len + 1);
  u->tail = &u->queue;
  if (tg_map_put(p->users, user, len, u, 1)) {
    free(u);
    return NULL;
  }
  return u;
}

/* Frees u if nothing refers to it any more. */
static void user_release(gw_checkpool *p, user_entry *u)
{
  if (u->inflight || u->queue || u->ready)
    return;
  tg_map_dels(p->users, u->user);
}

/* ---- the ready list ---- */

static void on_check(uv_check_t *h);
static void on_prepare(uv_prepare_t *h);

/* Puts u (waiters queued, no fetch in flight) on the ready list, flushed in this iteration. */
static void make_ready(gw_checkpool *p, user_entry *u)
{
  if (u->ready)
    return;
  u->ready = 1;
  u->ready_next = NULL;
  *p->ready_tail = u;
  p->ready_tail = &u->ready_next;
  if (!uv_is_active((uv_handle_t *)&p->check)) {
    uv_check_start(&p->check, on_check);
    uv_prepare_start(&p->prepare, on_prepare);
  }
}

int gw_checkpool_new(gw_checkpool **out, gw_app *app)
{
  gw_checkpool *p = calloc(1, sizeof *p);
  *out = NULL;
  if (!p)
    return TG_ENOMEM;
  p->app = app;
  p->ready_tail = &p->ready;
  if (!(p->users = tg_map_new(0, free))) {
    free(p);
    return TG_ENOMEM;
  }
  /* Neither can fail on an initialised loop (libuv: they only link the handle). */
  uv_check_init(app->loop, &p->check);
  uv_prepare_init(app->loop, &p->prepare);
  p->check.data = p->prepare.data = p;
  p->open_handles = 2;
  *out = p;
  return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
  gw_checkpool *p = h->data;
  if (--p->open_handles == 0) {
    tg_map_free(p->users);
    free(p);
  }
}

void gw_checkpool_free(gw_checkpool *p)
{
  uv_loop_t *loop;
  if (!p)
    return;
  if (tg_map_count(p->users))
    tg_warn("checkpool_not_empty", "{s:I}", "users", (json_int_t)tg_map_count(p->users));
  loop = p->app->loop;
  uv_close((uv_handle_t *)&p->check, on_handle_closed);
  uv_close((uv_handle_t *)&p->prepare, on_handle_closed);
  uv_run(loop, UV_RUN_NOWAIT); /* runs the close callbacks, which free p */
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
  /* Accounts are matched to w's own rows by id: other users' accounts in is are ignored. */
  if (tg_check_decide(known, w->rows, w->n_rows, is ? is->accts : NULL, is ? is->n_accts : 0, &r)) {
    json_decref(known);
    return NULL;
  }
  json_decref(known);
  if (unknown && r->outcome == TG_CHECK_OK) {
    r->outcome = TG_CHECK_UNAVAILABLE;
    r->retry_after_ms = unavailable_ms > 0 ? unavailable_ms : DEFAULT_RETRY_MS;
    r->detail = why;              /* static: results outlive batches */
    tg_check_note_failure(r, is); /* is NULL (no call: back-off, shutdown): unavailable */
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

/* Answers every waiter of list without a call (UNAVAILABLE unless our rows decide). */
static void deliver_without_call(gw_checkpool *p, waiter *w, const char *why)
{
  while (w) {
    waiter *next = w->next;
    uint64_t now = uv_now(p->app->loop);
    long ms = (long)(p->backoff_until > now ? p->backoff_until - now : DEFAULT_RETRY_MS);
    deliver(p, w, NULL, ms, why);
    w = next;
  }
}

/* ---- one batch: one fetch for up to MAX_USERS users ---- */

/* A Composio call of b's fetch failed: a 429 starts the pool-wide back-off. */
static void on_fetch_failure(void *arg, const tg_composio_result *res)
{
  batch *b = arg;
  gw_checkpool *p = b->pool;
  long ms;
  uint64_t until;

  if (res->err != TG_ERATELIMIT)
    return;
  ms = res->retry_after_ms > 0 ? res->retry_after_ms : DEFAULT_RETRY_MS;
  until = uv_now(p->app->loop) + (uint64_t)ms;
  if (until > p->backoff_until)
    p->backoff_until = until;
  p->app->metrics.composio_rate_limited++;
  tg_warn("composio_rate_limited", "{s:s, s:I, s:I}", "user_id", b->users[0]->user, "users",
          (json_int_t)b->n_users, "retry_after_ms", (json_int_t)ms);
}

/* b's fetch ended: delivers every waiter of every user of b, then puts the users with checks
 * queued meanwhile (also by the callbacks below) back on the ready list. */
static void on_fetched(void *arg, const tg_check_fetched *is)
{
  batch *b = arg;
  gw_checkpool *p = b->pool;
  const char *why = why_text(is, 0);

  p->app->metrics.composio_calls += (uint64_t)is->calls;
  for (size_t i = 0; i < b->n_users; i++) {
    waiter *w = b->users[i]->taken;
    b->users[i]->taken = NULL;
    while (w) {
      waiter *next = w->next;
      deliver(p, w, is, is->retry_after_ms, why);
      w = next;
    }
  }
  for (size_t i = 0; i < b->n_users; i++) {
    user_entry *u = b->users[i];
    u->inflight = NULL;
    if (u->queue)
      make_ready(p, u);
    else
      user_release(p, u);
  }
  free(b);
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
 * Starts b's fetch over the queues of its users. Returns 0 (each user's queue moved to its
 * `taken`, inflight = b; the batch finishes later from the fetch's callback) or an error with
 * every queue left as it was.
 */
static int start_batch(gw_checkpool *p, batch *b)
{
  const char **ids = NULL, **slugs = NULL, *users[MAX_USERS];
  size_t cap = 0, n_ids = 0, n_slugs = 0, n_waiters = 0;
  tg_check_fetch_req req;
  int rc = TG_ENOMEM;

  for (size_t k = 0; k < b->n_users; k++)
    for (waiter *w = b->users[k]->queue; w; w = w->next)
      cap += json_array_size(w->scope);
  ids = calloc(cap ? cap : 1, sizeof *ids);
  slugs = calloc(cap ? cap : 1, sizeof *slugs);
  if (!ids || !slugs)
    goto done;
  for (size_t k = 0; k < b->n_users; k++) {
    users[k] = b->users[k]->user;
    for (waiter *w = b->users[k]->queue; w; w = w->next) {
      json_t *v;
      size_t i;
      n_waiters++;
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
  }
  req = (tg_check_fetch_req){.user_ids = users,
                             .n_users = b->n_users,
                             .toolkit_slugs = slugs,
                             .n_slugs = n_slugs,
                             .ids = ids,
                             .n_ids = n_ids,
                             .stop_on_refusal = 1,
                             .on_failure = on_fetch_failure};
  if ((rc = tg_check_fetch_start(p->app->composio, p->app->loop, &req, on_fetched, b, NULL)))
    goto done;
  p->app->metrics.composio_list_calls++;
  p->app->metrics.composio_calls_saved += n_waiters - 1;
  for (size_t k = 0; k < b->n_users; k++) {
    user_entry *u = b->users[k];
    u->taken = u->queue;
    u->queue = NULL;
    u->tail = &u->queue;
    u->inflight = b;
  }
done:
  free(ids);
  free(slugs);
  return rc;
}

/* Bytes user adds to a list URL at most (escaped, plus a comma). */
static size_t query_cost(const char *user)
{
  return 3 * strlen(user) + 1;
}

/* Answers the queues of b's users without a call, then releases the users left idle. */
static void fail_batch(gw_checkpool *p, batch *b, const char *why)
{
  for (size_t k = 0; k < b->n_users; k++) {
    user_entry *u = b->users[k];
    waiter *w = u->queue;
    u->queue = NULL;
    u->tail = &u->queue;
    u->inflight = b; /* a check submitted while answering waits for the next flush */
    deliver_without_call(p, w, why);
  }
  for (size_t k = 0; k < b->n_users; k++) {
    user_entry *u = b->users[k];
    u->inflight = NULL;
    if (u->queue)
      make_ready(p, u);
    else
      user_release(p, u);
  }
}

/*
 * Takes the ready list (users added while it runs wait for the next round) and starts one fetch per
 * group of up to MAX_USERS users. When no call may start (shutting down, back-off, out of memory),
 * the checks are answered without one.
 */
static void flush_once(gw_checkpool *p)
{
  user_entry *list = p->ready;
  batch one; /* for failures without a heap batch */

  p->ready = NULL;
  p->ready_tail = &p->ready;
  while (list) {
    batch *b = calloc(1, sizeof *b), *g = b ? b : &one;
    size_t budget = 0;
    int rc = TG_ENOMEM;

    memset(&one, 0, sizeof one);
    g->pool = p;
    while (list && g->n_users < MAX_USERS) {
      user_entry *u = list;
      int alone = strchr(u->user, ',') != NULL;
      if (g->n_users && (alone || budget + query_cost(u->user) > QUERY_BUDGET))
        break;
      list = u->ready_next;
      u->ready = 0;
      u->ready_next = NULL;
      g->users[g->n_users++] = u;
      budget += query_cost(u->user);
      if (alone || !b)
        break;
    }
    if (p->app->stopping) {
      fail_batch(p, g, why_text(NULL, 1));
    } else if (uv_now(p->app->loop) < p->backoff_until) {
      fail_batch(p, g, why_text(NULL, 0));
    } else if (!b || (rc = start_batch(p, b)) != 0) {
      tg_warn("check_not_started", "{s:s, s:I}", "error", tg_errname(rc), "users",
              (json_int_t)g->n_users);
      fail_batch(p, g, "the gateway could not start a Composio call");
    } else {
      continue; /* b is in flight */
    }
    free(b);
  }
}

/* Flushes until the list is empty: checks submitted by the callbacks a flush runs (answers
 * without a call) start now rather than after the next poll. Bounded, in case a callback keeps
 * resubmitting: what is left is flushed at the next check or prepare phase. */
static void flush(gw_checkpool *p)
{
  for (int round = 0; round < 4 && p->ready; round++)
    flush_once(p);
  if (!p->ready) {
    uv_check_stop(&p->check);
    uv_prepare_stop(&p->prepare);
  }
}

static void on_check(uv_check_t *h)
{
  flush(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
  flush(h->data);
}

int gw_check(gw_app *app, const char *user, const json_t *scope, const tg_check_row *rows,
             size_t n_rows, tg_check_cb cb, void *arg, tg_check_result **now)
{
  gw_checkpool *p = app->checks;
  user_entry *u;
  waiter *w;
  json_t *v;
  size_t i;
  int needs_net = 0;

  *now = NULL;
  if (!json_is_array(scope) || !cb || (n_rows && !rows) || !user)
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
  if (!(u = tg_map_gets(p->users, user)) && !(u = user_add(p, user))) {
    free(w);
    return TG_ENOMEM;
  }
  *u->tail = w;
  u->tail = &w->next;
  if (!u->inflight)
    make_ready(p, u); /* starts with this iteration's flush, possibly shared with other users */
  return 0;           /* else it shares the user's next fetch, once the current one ends */
}
