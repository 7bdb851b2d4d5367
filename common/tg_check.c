/*
 * tg_check: the provider status check of DESIGN.md section 4.
 *
 * Split in two: tg_check_scope/tg_check_decide are pure (rows + what Composio said -> result)
 * and carry every blocking rule; tg_check_run only gathers Composio's answers: ONE list call
 * (all pages) filtered by the user and the toolkit slugs of the ACTIVE rows in scope, then a
 * GET by id, in parallel, for each ACTIVE account the list did not mention; if the list call
 * fails, a GET for every ACTIVE account. Nothing is cached.
 *
 * Invariants:
 * - A check owns copies of everything it keeps (scope, rows, accounts Composio reported).
 * - Each ACTIVE row in scope ("net row") ends in one state: answered (an account copy exists),
 *   not found (GET said 404) or unknown (nothing could answer). Unknown rows make the outcome
 *   UNAVAILABLE unless another provider is already known to be blocked.
 * - The callback runs once, from the loop: from a Composio callback, or from a zero timer when
 *   no Composio answer is pending; the check is freed after the callback returns (after the
 *   timer's close callback on the timer path).
 */
#include "tg_check.h"
#include "tg_err.h"
#include "tg_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RETRY_MS 5000

/* The result handed out: the public struct first, so free(res) frees the box. */
typedef struct result_box {
  tg_check_result pub;
  char detail[256];
} result_box;

enum { NET_UNKNOWN = 0, NET_ANSWERED, NET_NOT_FOUND };

typedef struct tg_check check;

typedef struct net_row {
  check *k;
  size_t row; /* index into k->rows */
  int state;  /* NET_* */
} net_row;

struct tg_check {
  tg_composio *c;
  uv_timer_t timer;
  int timer_used; /* the callback comes from the timer; no Composio call is in flight */
  int canceled;
  tg_check_cb cb;
  void *arg;
  json_t *scope;
  tg_check_row *rows;
  size_t n_rows;
  net_row *net;
  size_t n_net;
  tg_composio_account *accts; /* owned copies */
  size_t n_accts;
  int pending; /* Composio calls awaited */
  int calls;
  int auth_rejected;
  long retry_after_ms; /* largest Retry-After seen, or -1 */
  char list_why[64], get_why[64];
};

static char *dupnull(const char *s)
{
  size_t n;
  char *p;
  if (!s)
    return NULL;
  n = strlen(s) + 1;
  p = malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A new array of the keys of set, sorted. */
static json_t *sorted_keys(const json_t *set)
{
  size_t n = json_object_size(set), i = 0;
  const char **keys = NULL, *key;
  json_t *v, *arr = json_array();

  if (!arr || n == 0)
    return arr;
  keys = malloc(n * sizeof *keys);
  if (!keys)
    goto fail;
  json_object_foreach((json_t *)set, key, v) keys[i++] = key;
  qsort(keys, n, sizeof *keys, cmp_str);
  for (i = 0; i < n; i++)
    if (json_array_append_new(arr, json_string(keys[i])))
      goto fail;
  free(keys);
  return arr;
fail:
  free(keys);
  json_decref(arr);
  return NULL;
}

static int is_active(const char *status)
{
  return status && strcmp(status, "ACTIVE") == 0;
}

json_t *tg_check_scope(const json_t *tool_constraints, const tg_check_row *rows, size_t n_rows)
{
  json_t *set = json_object(), *out = NULL, *v;
  size_t i;

  if (!set)
    return NULL;
  if (json_is_object(tool_constraints)) {
    const json_t *providers = json_object_get(tool_constraints, "providers");
    const json_t *tools = json_object_get(tool_constraints, "tools");
    json_array_foreach((json_t *)providers, i, v)
    {
      const char *p = json_string_value(v);
      if (p && *p && json_object_set_new(set, p, json_true()))
        goto done;
    }
    json_array_foreach((json_t *)tools, i, v)
    {
      const char *t = json_string_value(v), *dot;
      char name[128];
      if (!t || !(dot = strchr(t, '.')) || dot == t || (size_t)(dot - t) >= sizeof name)
        continue;
      memcpy(name, t, (size_t)(dot - t));
      name[dot - t] = 0;
      if (json_object_set_new(set, name, json_true()))
        goto done;
    }
  } else {
    for (i = 0; i < n_rows; i++)
      if (rows[i].provider && is_active(rows[i].status) &&
          json_object_set_new(set, rows[i].provider, json_true()))
        goto done;
  }
  out = sorted_keys(set);
done:
  json_decref(set);
  return out;
}

/* The row that speaks for provider: an ACTIVE one if any, else the first, else NULL. */
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

static const tg_composio_account *find_acct(const tg_composio_account *a, size_t n, const char *id)
{
  for (size_t i = 0; i < n; i++)
    if (a[i].id && strcmp(a[i].id, id) == 0)
      return &a[i];
  return NULL;
}

void tg_check_result_free(tg_check_result *res)
{
  if (!res)
    return;
  json_decref(res->providers);
  json_decref(res->reasons);
  json_decref(res->observed);
  free(res); /* the result_box, whose first member is res */
}

static result_box *result_new(void)
{
  result_box *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->pub.reasons = json_object();
  b->pub.observed = json_array();
  if (!b->pub.reasons || !b->pub.observed) {
    tg_check_result_free(&b->pub);
    return NULL;
  }
  return b;
}

static int block(json_t *reasons, const char *provider, const char *fmt, const char *arg)
{
  char reason[160];
  snprintf(reason, sizeof reason, fmt, arg ? arg : "UNKNOWN");
  return json_object_set_new(reasons, provider, json_string(reason)) ? TG_ENOMEM : 0;
}

int tg_check_decide(const json_t *scope, const tg_check_row *rows, size_t n_rows,
                    const tg_composio_account *accts, size_t n_accts, tg_check_result **out)
{
  result_box *b;
  tg_check_result *r;
  json_t *v;
  size_t i;
  int rc = TG_ENOMEM;

  *out = NULL;
  if (!json_is_array(scope))
    return TG_EINVAL;
  if (!(b = result_new()))
    return TG_ENOMEM;
  r = &b->pub;
  json_array_foreach((json_t *)scope, i, v)
  {
    const char *p = json_string_value(v);
    const tg_check_row *row;
    const tg_composio_account *a;
    int err = 0;

    if (!p || json_object_get(r->reasons, p))
      continue;
    row = pick_row(rows, n_rows, p);
    if (!row) {
      err = block(r->reasons, p, "not_connected%s", "");
    } else if (!is_active(row->status)) {
      err = block(r->reasons, p, "connected_account_status=%s", row->status);
    } else if (!row->composio_account_id ||
               !(a = find_acct(accts, n_accts, row->composio_account_id))) {
      err = block(r->reasons, p, "connected_account_not_found%s", "");
    } else {
      json_t *o = json_pack("{s:s, s:s, s:s, s:s?}", "provider", p, "composio_account_id", a->id,
                            "status", a->status, "status_reason", a->status_reason);
      if (!o || json_array_append_new(r->observed, o))
        goto fail;
      if (!is_active(a->status))
        err = block(r->reasons, p, "connected_account_status=%s", a->status);
      else if (a->auth_refresh_required)
        err = block(r->reasons, p, "auth_refresh_required%s", "");
      else if (a->is_disabled)
        err = block(r->reasons, p, "is_disabled%s", "");
    }
    if (err)
      goto fail;
  }
  if (!(r->providers = sorted_keys(r->reasons)))
    goto fail;
  r->outcome = json_array_size(r->providers) ? TG_CHECK_BLOCKED : TG_CHECK_OK;
  *out = r;
  return 0;
fail:
  tg_check_result_free(r);
  return rc;
}

json_t *tg_check_409_body(const tg_check_result *res)
{
  json_t *body = NULL, *v;
  size_t i, n = json_array_size(res->providers);
  char msg[512];
  size_t len;

  len = (size_t)snprintf(msg, sizeof msg, "%s ",
                         n == 1 ? "This provider needs to be re-authorised:"
                                : "These providers need to be re-authorised:");
  json_array_foreach(res->providers, i, v)
  {
    const char *sep = i == 0 ? "" : (i + 1 == n ? " and " : ", ");
    if (len < sizeof msg)
      len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", sep, json_string_value(v));
  }
  if (len < sizeof msg)
    snprintf(msg + len, sizeof msg - len, ".");
  /* "o" steals; the members are shared with res (new references). */
  body = json_pack("{s:s, s:s, s:o, s:o}", "error", "oauth_refresh_required", "message", msg,
                   "providers", res->providers ? json_incref(res->providers) : json_array(),
                   "reasons", res->reasons ? json_incref(res->reasons) : json_object());
  return body;
}

/* ---- tg_check_run: gathering Composio's answers ---- */

static void acct_clear(tg_composio_account *a)
{
  free((char *)a->id);
  free((char *)a->status);
  free((char *)a->status_reason);
  free((char *)a->toolkit_slug);
  free((char *)a->auth_config_id);
  free((char *)a->user_id);
}

static int acct_keep(check *k, const tg_composio_account *src)
{
  tg_composio_account *a, *grown;

  grown = realloc(k->accts, (k->n_accts + 1) * sizeof *grown);
  if (!grown)
    return TG_ENOMEM;
  k->accts = grown;
  a = &k->accts[k->n_accts];
  memset(a, 0, sizeof *a);
  a->is_disabled = src->is_disabled;
  a->auth_refresh_required = src->auth_refresh_required;
  a->id = dupnull(src->id);
  a->status = dupnull(src->status);
  a->status_reason = dupnull(src->status_reason);
  a->toolkit_slug = dupnull(src->toolkit_slug);
  a->auth_config_id = dupnull(src->auth_config_id);
  a->user_id = dupnull(src->user_id);
  if (!a->id || !a->status || (src->status_reason && !a->status_reason) ||
      (src->toolkit_slug && !a->toolkit_slug) || (src->auth_config_id && !a->auth_config_id) ||
      (src->user_id && !a->user_id)) {
    acct_clear(a);
    return TG_ENOMEM;
  }
  k->n_accts++;
  return 0;
}

static void check_free(check *k)
{
  if (!k)
    return;
  for (size_t i = 0; i < k->n_rows; i++) {
    free((char *)k->rows[i].provider);
    free((char *)k->rows[i].status);
    free((char *)k->rows[i].composio_account_id);
    free((char *)k->rows[i].toolkit_slug);
  }
  for (size_t i = 0; i < k->n_accts; i++)
    acct_clear(&k->accts[i]);
  free(k->accts);
  free(k->rows);
  free(k->net);
  json_decref(k->scope);
  free(k);
}

/* Notes a Composio failure that left something unanswered. */
static void note_failure(check *k, char *why, size_t why_len, const tg_composio_result *res)
{
  if (res->err == TG_EAUTH)
    k->auth_rejected = 1;
  if (res->retry_after_ms > k->retry_after_ms)
    k->retry_after_ms = res->retry_after_ms;
  if (!why[0]) {
    if (res->http_status)
      snprintf(why, why_len, "%s (HTTP %ld)", tg_errname(res->err), res->http_status);
    else
      snprintf(why, why_len, "%s", tg_errname(res->err));
  }
}

/* Builds the final result of k. NULL only when memory runs out. */
static tg_check_result *conclude(check *k)
{
  tg_check_result *r = NULL;
  json_t *known = NULL;
  size_t unknown = 0;
  result_box *b;

  for (size_t i = 0; i < k->n_net; i++)
    unknown += k->net[i].state == NET_UNKNOWN;
  if (!unknown) {
    if (tg_check_decide(k->scope, k->rows, k->n_rows, k->accts, k->n_accts, &r))
      return NULL;
    r->composio_calls = k->calls;
    return r;
  }
  /* Decide over what is known; an unknown provider must not count as "not found". */
  if (!(known = json_deep_copy(k->scope)))
    return NULL;
  for (size_t i = 0; i < k->n_net; i++) {
    const char *p = k->rows[k->net[i].row].provider;
    json_t *v;
    size_t j;
    if (k->net[i].state != NET_UNKNOWN)
      continue;
    json_array_foreach(known, j, v)
    {
      if (json_string_value(v) && strcmp(json_string_value(v), p) == 0) {
        json_array_remove(known, j);
        j--;
      }
    }
  }
  if (tg_check_decide(known, k->rows, k->n_rows, k->accts, k->n_accts, &r)) {
    json_decref(known);
    return NULL;
  }
  json_decref(known);
  r->composio_calls = k->calls;
  if (r->outcome == TG_CHECK_BLOCKED)
    return r;
  b = (result_box *)r;
  r->outcome = TG_CHECK_UNAVAILABLE;
  r->retry_after_ms = k->retry_after_ms > 0 ? k->retry_after_ms : DEFAULT_RETRY_MS;
  if (k->auth_rejected) {
    r->broker_auth = 1; /* callers decide on this flag, not on the text below */
    snprintf(b->detail, sizeof b->detail, "composio rejected the API key");
  } else {
    snprintf(b->detail, sizeof b->detail,
             "composio could not answer for %zu account(s): list %s, lookup %s", unknown,
             k->list_why[0] ? k->list_why : "ok", k->get_why[0] ? k->get_why : "not tried");
  }
  r->detail = b->detail;
  return r;
}

/* Runs k's callback with its result (or an UNAVAILABLE stub when memory ran out), frees k. */
static void deliver(check *k)
{
  tg_check_result *r = conclude(k);
  if (!r) {
    result_box *b = calloc(1, sizeof *b);
    /* Out of memory: fail closed with what we can; the callback still runs exactly once. */
    if (b) {
      r = &b->pub;
      r->outcome = TG_CHECK_UNAVAILABLE;
      r->retry_after_ms = DEFAULT_RETRY_MS;
      r->detail = "out of memory";
      r->composio_calls = k->calls;
    }
  }
  if (r)
    k->cb(k->arg, r);
  check_free(k);
}

static void on_timer_closed(uv_handle_t *h)
{
  check *k = h->data;
  if (k->canceled)
    check_free(k);
  else
    deliver(k);
}

static void on_timer(uv_timer_t *t)
{
  uv_close((uv_handle_t *)t, on_timer_closed);
}

/* Delivers from a zero timer, so a callback never runs inside tg_check_run. */
static int deliver_later(check *k, uv_loop_t *loop)
{
  int rc = uv_timer_init(loop, &k->timer);
  if (rc)
    return TG_EIO;
  k->timer.data = k;
  k->timer_used = 1;
  uv_timer_start(&k->timer, on_timer, 0, 0);
  return 0;
}

static void on_get(void *arg, const tg_composio_result *res, const tg_composio_account *acct)
{
  net_row *nr = arg;
  check *k = nr->k;

  k->calls += res->http_calls;
  k->pending--;
  if (!res->err) {
    if (acct_keep(k, acct) == 0)
      nr->state = NET_ANSWERED;
  } else if (res->err == TG_ENOTFOUND) {
    nr->state = NET_NOT_FOUND;
  } else {
    note_failure(k, k->get_why, sizeof k->get_why, res);
  }
  if (k->pending == 0)
    deliver(k);
}

/* Starts a GET for every net row still unknown. Returns how many started. */
static int start_gets(check *k)
{
  int started = 0;
  for (size_t i = 0; i < k->n_net; i++) {
    net_row *nr = &k->net[i];
    int rc;
    if (nr->state != NET_UNKNOWN)
      continue;
    rc = tg_composio_get_account(k->c, k->rows[nr->row].composio_account_id, on_get, nr);
    if (rc) {
      tg_composio_result res = {.err = rc, .retry_after_ms = -1};
      note_failure(k, k->get_why, sizeof k->get_why, &res);
      continue;
    }
    k->pending++;
    started++;
  }
  return started;
}

static void on_list(void *arg, const tg_composio_result *res, const tg_composio_account *items,
                    size_t n)
{
  check *k = arg;

  k->calls += res->http_calls;
  k->pending--;
  if (res->err) {
    note_failure(k, k->list_why, sizeof k->list_why, res);
  } else {
    for (size_t i = 0; i < k->n_net; i++) {
      const tg_composio_account *a =
          find_acct(items, n, k->rows[k->net[i].row].composio_account_id);
      if (a && acct_keep(k, a) == 0)
        k->net[i].state = NET_ANSWERED;
    }
  }
  if (start_gets(k) == 0)
    deliver(k);
}

/* Deep-copies rows into k. */
static int copy_rows(check *k, const tg_check_row *rows, size_t n)
{
  if (n == 0)
    return 0;
  k->rows = calloc(n, sizeof *k->rows);
  if (!k->rows)
    return TG_ENOMEM;
  k->n_rows = n;
  for (size_t i = 0; i < n; i++) {
    tg_check_row *d = &k->rows[i];
    d->provider = dupnull(rows[i].provider);
    d->status = dupnull(rows[i].status);
    d->composio_account_id = dupnull(rows[i].composio_account_id);
    d->toolkit_slug = dupnull(rows[i].toolkit_slug);
    if ((rows[i].provider && !d->provider) || (rows[i].status && !d->status) ||
        (rows[i].composio_account_id && !d->composio_account_id) ||
        (rows[i].toolkit_slug && !d->toolkit_slug))
      return TG_ENOMEM;
  }
  return 0;
}

void tg_check_cancel(tg_check *k)
{
  if (!k)
    return;
  if (k->timer_used) {
    k->canceled = 1;
    if (!uv_is_closing((uv_handle_t *)&k->timer))
      uv_close((uv_handle_t *)&k->timer, on_timer_closed);
    return;
  }
  tg_composio_cancel(k->c, k);
  for (size_t i = 0; i < k->n_net; i++)
    tg_composio_cancel(k->c, &k->net[i]);
  check_free(k);
}

int tg_check_run(tg_composio *c, uv_loop_t *loop, const char *user_id, const json_t *scope,
                 const tg_check_row *rows, size_t n_rows, tg_check_cb cb, void *arg)
{
  return tg_check_start(c, loop, user_id, scope, rows, n_rows, cb, arg, NULL);
}

int tg_check_start(tg_composio *c, uv_loop_t *loop, const char *user_id, const json_t *scope,
                   const tg_check_row *rows, size_t n_rows, tg_check_cb cb, void *arg,
                   tg_check **out)
{
  check *k;
  const char **slugs = NULL;
  size_t n_slugs = 0;
  json_t *v;
  size_t i;
  int rc = TG_ENOMEM;

  if (out)
    *out = NULL;
  if (!loop || !user_id || !json_is_array(scope) || !cb || (n_rows && !rows))
    return TG_EINVAL;
  k = calloc(1, sizeof *k);
  if (!k)
    return TG_ENOMEM;
  k->c = c;
  k->cb = cb;
  k->arg = arg;
  k->retry_after_ms = -1;
  if (!(k->scope = json_deep_copy(scope)) || copy_rows(k, rows, n_rows))
    goto fail;
  if (json_array_size(scope) && !(k->net = calloc(json_array_size(scope), sizeof *k->net)))
    goto fail;
  /* The ACTIVE rows in scope with an account id are the only ones Composio must see. */
  json_array_foreach(k->scope, i, v)
  {
    const char *p = json_string_value(v);
    const tg_check_row *row = p ? pick_row(k->rows, k->n_rows, p) : NULL;
    int dup = 0;
    if (!row || !is_active(row->status) || !row->composio_account_id)
      continue;
    for (size_t j = 0; j < k->n_net; j++)
      dup |= k->net[j].row == (size_t)(row - k->rows);
    if (dup)
      continue;
    k->net[k->n_net].k = k;
    k->net[k->n_net].row = (size_t)(row - k->rows);
    k->n_net++;
  }
  if (k->n_net == 0) {
    if ((rc = deliver_later(k, loop)))
      goto fail;
    goto started;
  }
  if (!c) {
    rc = TG_EINVAL;
    goto fail;
  }
  if (!(slugs = calloc(k->n_net, sizeof *slugs)))
    goto fail;
  for (i = 0; i < k->n_net; i++) {
    const char *s = k->rows[k->net[i].row].toolkit_slug;
    int dup = 0;
    if (!s || !*s)
      continue;
    for (size_t j = 0; j < n_slugs; j++)
      dup |= strcmp(slugs[j], s) == 0;
    if (!dup)
      slugs[n_slugs++] = s;
  }
  /* Every net row needs its slug in the filter, or the list could not show its account; a
   * row without a slug is simply looked up by id when the list does not mention it. */
  rc = tg_composio_list_accounts(c, user_id, slugs, n_slugs, on_list, k);
  free(slugs);
  slugs = NULL;
  if (rc == TG_ENOMEM || rc == TG_EINVAL)
    goto fail;
  if (rc) {
    /* The list could not even start (client closing): fall back like any list failure. */
    tg_composio_result res = {.err = rc, .retry_after_ms = -1};
    note_failure(k, k->list_why, sizeof k->list_why, &res);
    if (start_gets(k) == 0 && (rc = deliver_later(k, loop)))
      goto fail;
    goto started;
  }
  k->pending = 1;
started:
  if (out)
    *out = k;
  return 0;
fail:
  free(slugs);
  check_free(k);
  return rc;
}
