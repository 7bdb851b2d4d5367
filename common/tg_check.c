/*
 * tg_check: the provider status check of DESIGN.md section 4.
 *
 * Three parts: tg_check_scope/tg_check_decide are pure (rows + what Composio said -> result)
 * and carry every blocking rule; tg_check_fetch only gathers Composio's answers about a set
 * of account ids: ONE list call (all pages) filtered by the user(s) and toolkit slugs, then a GET
 * by id, in parallel, for each id the list did not mention (all of them when the list call
 * fails); tg_check_start is a fetch over the ACTIVE rows in scope followed by the decision.
 * The gateway's coalescing pool (gateway/gw_checkpool.c) uses the same fetch for the union of
 * its waiters, across several users. Nothing is cached.
 *
 * List items are matched to the ids asked about by account id alone (never by an item's
 * deprecated user_id), so a fetch for several users answers each id with its own account.
 *
 * Invariants:
 * - A fetch owns copies of the ids it asks about and of the accounts Composio reported; a
 *   check owns copies of its scope and rows.
 * - Each id of a fetch ends in one state: answered (an account copy exists), not found (GET
 *   said 404) or unknown (nothing could answer). A check's unknown rows make its outcome
 *   UNAVAILABLE unless another provider is already known to be blocked.
 * - A fetch's callback runs once, from the loop: from a Composio callback, or from a zero timer
 *   when no Composio call is in flight; the fetch is freed after the callback returns (after the
 *   timer's close callback on the timer path). A check is freed right after its own callback,
 *   which runs from its fetch's callback.
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

/* Adds each non-empty string of names (an array; anything else adds nothing) to set. */
static int add_names(json_t *set, const json_t *names)
{
  size_t i;
  json_t *v;
  json_array_foreach((json_t *)names, i, v)
  {
    const char *p = json_string_value(v);
    if (p && *p && json_object_set_new(set, p, json_true()))
      return TG_ENOMEM;
  }
  return 0;
}

json_t *tg_check_scope(const json_t *tool_constraints, const json_t *workflow_providers,
                       const tg_check_row *rows, size_t n_rows)
{
  json_t *set = json_object(), *out = NULL, *v;
  size_t i;

  if (!set)
    return NULL;
  if (json_is_object(tool_constraints)) {
    const json_t *providers = json_object_get(tool_constraints, "providers");
    const json_t *tools = json_object_get(tool_constraints, "tools");
    if (add_names(set, providers))
      goto done;
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
  } else if (json_array_size(workflow_providers) > 0) {
    if (add_names(set, workflow_providers))
      goto done;
  } else {
    for (i = 0; i < n_rows; i++)
      if (rows[i].provider && !(rows[i].status && strcmp(rows[i].status, "DISCONNECTED") == 0) &&
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

const tg_check_row *tg_check_net_row(const tg_check_row *rows, size_t n_rows, const char *provider)
{
  const tg_check_row *row = provider ? pick_row(rows, n_rows, provider) : NULL;
  return row && is_active(row->status) && row->composio_account_id ? row : NULL;
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
    } else if (!row->composio_account_id) {
      err = block(r->reasons, p, "%s", TG_CHECK_NOT_FOUND);
    } else if (!(a = find_acct(accts, n_accts, row->composio_account_id))) {
      /* Composio does not have it (deleted there): recorded as the status route records a 404. */
      json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "provider", p, "composio_account_id",
                            row->composio_account_id, "status", "REVOKED", "status_reason",
                            TG_CHECK_NOT_FOUND);
      if (!o || json_array_append_new(r->observed, o))
        goto fail;
      err = block(r->reasons, p, "%s", TG_CHECK_NOT_FOUND);
    } else {
      json_t *o = json_pack("{s:s, s:s, s:s, s:s?}", "provider", p, "composio_account_id", a->id,
                            "status", a->status, "status_reason", a->status_reason);
      if (!o || json_array_append_new(r->observed, o))
        goto fail;
      if (!is_active(a->status))
        err = block(r->reasons, p, "connected_account_status=%s", a->status);
      else if (a->auth_refresh_required)
        err = block(r->reasons, p, "%s", TG_CHECK_REFRESH);
      else if (a->is_disabled)
        err = block(r->reasons, p, "%s", TG_CHECK_DISABLED);
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

/* ---- tg_check_fetch: asking Composio ---- */

typedef struct fetch_get {
  tg_check_fetch *f;
  size_t i; /* index into f->ids */
} fetch_get;

struct tg_check_fetch {
  tg_composio *c;
  uv_timer_t timer;
  int timer_used; /* cb comes from the timer: no Composio call is in flight */
  int canceled;
  int stop_on_refusal;
  int stopped; /* a refusal was seen: start no further GET */
  void (*on_failure)(void *arg, const tg_composio_result *res);
  tg_check_fetch_cb cb;
  void *arg;
  char **ids; /* owned copies */
  int *state; /* TG_CHECK_ID_* per id */
  fetch_get *gets;
  size_t n_ids;
  tg_composio_account *accts; /* owned copies */
  size_t n_accts;
  int pending;         /* Composio calls awaited */
  tg_check_fetched is; /* calls, list_err, get_err, retry_after_ms, auth_rejected so far */
};

static void acct_clear(tg_composio_account *a)
{
  free((char *)a->id);
  free((char *)a->status);
  free((char *)a->status_reason);
  free((char *)a->toolkit_slug);
  free((char *)a->auth_config_id);
  free((char *)a->user_id);
}

static int acct_keep(tg_check_fetch *f, const tg_composio_account *src)
{
  tg_composio_account *a, *grown;

  grown = realloc(f->accts, (f->n_accts + 1) * sizeof *grown);
  if (!grown)
    return TG_ENOMEM;
  f->accts = grown;
  a = &f->accts[f->n_accts];
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
  f->n_accts++;
  return 0;
}

static void fetch_free(tg_check_fetch *f)
{
  if (!f)
    return;
  for (size_t i = 0; i < f->n_accts; i++)
    acct_clear(&f->accts[i]);
  free(f->accts);
  for (size_t i = 0; i < f->n_ids; i++)
    free(f->ids[i]);
  free(f->ids);
  free(f->state);
  free(f->gets);
  free(f);
}

/* Notes a failure that left something unanswered; first is list_err or get_err. */
static void note_failure(tg_check_fetch *f, tg_composio_result *first,
                         const tg_composio_result *res)
{
  if (res->err == TG_EAUTH)
    f->is.auth_rejected = 1;
  if (f->stop_on_refusal && (res->err == TG_ERATELIMIT || res->err == TG_EAUTH))
    f->stopped = 1;
  if (res->retry_after_ms > f->is.retry_after_ms)
    f->is.retry_after_ms = res->retry_after_ms;
  if (!first->err) {
    first->err = res->err;
    first->http_status = res->http_status;
    first->retry_after_ms = res->retry_after_ms;
  }
  if (f->on_failure)
    f->on_failure(f->arg, res);
}

/* Runs f's callback with what it learnt, then frees f. */
static void fetch_deliver(tg_check_fetch *f)
{
  tg_check_fetched *is = &f->is;

  is->ids = (const char *const *)f->ids;
  is->state = f->state;
  is->n_ids = f->n_ids;
  is->n_unknown = 0;
  for (size_t i = 0; i < f->n_ids; i++)
    is->n_unknown += f->state[i] == TG_CHECK_ID_UNKNOWN;
  is->accts = f->accts;
  is->n_accts = f->n_accts;
  is->first_err = is->list_err.err ? &is->list_err : is->get_err.err ? &is->get_err : NULL;
  f->cb(f->arg, is);
  fetch_free(f);
}

static void on_timer_closed(uv_handle_t *h)
{
  tg_check_fetch *f = h->data;
  if (f->canceled)
    fetch_free(f);
  else
    fetch_deliver(f);
}

static void on_timer(uv_timer_t *t)
{
  uv_close((uv_handle_t *)t, on_timer_closed);
}

/* Delivers from a zero timer, so cb never runs inside tg_check_fetch_start. */
static int deliver_later(tg_check_fetch *f, uv_loop_t *loop)
{
  if (uv_timer_init(loop, &f->timer))
    return TG_EIO;
  f->timer.data = f;
  f->timer_used = 1;
  uv_timer_start(&f->timer, on_timer, 0, 0);
  return 0;
}

static void on_get(void *arg, const tg_composio_result *res, const tg_composio_account *acct)
{
  fetch_get *g = arg;
  tg_check_fetch *f = g->f;

  f->is.calls += res->http_calls;
  f->pending--;
  if (!res->err) {
    if (acct_keep(f, acct) == 0)
      f->state[g->i] = TG_CHECK_ID_ANSWERED;
  } else if (res->err == TG_ENOTFOUND) {
    f->state[g->i] = TG_CHECK_ID_NOT_FOUND;
  } else {
    note_failure(f, &f->is.get_err, res);
  }
  if (f->pending == 0)
    fetch_deliver(f);
}

/* Starts a GET for every id still unknown (none after a refusal, with stop_on_refusal).
 * Returns how many started. */
static int start_gets(tg_check_fetch *f)
{
  int started = 0;
  for (size_t i = 0; i < f->n_ids && !f->stopped; i++) {
    int rc;
    if (f->state[i] != TG_CHECK_ID_UNKNOWN)
      continue;
    f->gets[i].f = f;
    f->gets[i].i = i;
    rc = tg_composio_get_account(f->c, f->ids[i], on_get, &f->gets[i]);
    if (rc) {
      tg_composio_result res = {.err = rc, .retry_after_ms = -1};
      note_failure(f, &f->is.get_err, &res);
      continue;
    }
    f->pending++;
    started++;
  }
  return started;
}

static void on_list(void *arg, const tg_composio_result *res, const tg_composio_account *items,
                    size_t n)
{
  tg_check_fetch *f = arg;

  f->is.calls += res->http_calls;
  f->pending--;
  if (res->err) {
    note_failure(f, &f->is.list_err, res);
  } else {
    for (size_t i = 0; i < f->n_ids; i++) {
      const tg_composio_account *a = find_acct(items, n, f->ids[i]);
      if (a && acct_keep(f, a) == 0)
        f->state[i] = TG_CHECK_ID_ANSWERED;
    }
  }
  if (start_gets(f) == 0)
    fetch_deliver(f);
}

int tg_check_fetch_start(tg_composio *c, uv_loop_t *loop, const tg_check_fetch_req *req,
                         tg_check_fetch_cb cb, void *arg, tg_check_fetch **out)
{
  tg_check_fetch *f;
  size_t n;
  int rc = TG_ENOMEM;

  if (out)
    *out = NULL;
  if (!loop || !req || !cb || (req->n_ids && (!req->ids || !c)) ||
      (req->n_slugs && !req->toolkit_slugs) || (req->n_users ? !req->user_ids : !req->user_id))
    return TG_EINVAL;
  for (size_t i = 0; i < req->n_users; i++)
    if (!req->user_ids[i])
      return TG_EINVAL;
  n = req->n_ids;
  for (size_t i = 0; i < n; i++)
    if (!req->ids[i] || !*req->ids[i])
      return TG_EINVAL;
  if (!(f = calloc(1, sizeof *f)))
    return TG_ENOMEM;
  f->c = c;
  f->cb = cb;
  f->arg = arg;
  f->stop_on_refusal = req->stop_on_refusal;
  f->on_failure = req->on_failure;
  f->is.retry_after_ms = -1;
  if (n && (!(f->ids = calloc(n, sizeof *f->ids)) || !(f->state = calloc(n, sizeof *f->state)) ||
            !(f->gets = calloc(n, sizeof *f->gets))))
    goto fail;
  for (; f->n_ids < n; f->n_ids++)
    if (!(f->ids[f->n_ids] = dupnull(req->ids[f->n_ids])))
      goto fail;
  if (n == 0) {
    if ((rc = deliver_later(f, loop)))
      goto fail;
    goto started;
  }
  rc = tg_composio_list_accounts_users(c, req->n_users ? req->user_ids : &req->user_id,
                                       req->n_users ? req->n_users : 1, req->toolkit_slugs,
                                       req->n_slugs, on_list, f);
  if (rc == TG_ENOMEM || rc == TG_EINVAL)
    goto fail;
  if (rc) {
    /* The list could not even start (client closing): fall back like any list failure. */
    tg_composio_result res = {.err = rc, .retry_after_ms = -1};
    note_failure(f, &f->is.list_err, &res);
    if (start_gets(f) == 0 && (rc = deliver_later(f, loop)))
      goto fail;
    goto started;
  }
  f->pending = 1;
started:
  if (out)
    *out = f;
  return 0;
fail:
  fetch_free(f);
  return rc;
}

void tg_check_fetch_cancel(tg_check_fetch *f)
{
  if (!f)
    return;
  if (f->timer_used) {
    f->canceled = 1;
    if (!uv_is_closing((uv_handle_t *)&f->timer))
      uv_close((uv_handle_t *)&f->timer, on_timer_closed);
    return;
  }
  tg_composio_cancel(f->c, f);
  for (size_t i = 0; i < f->n_ids; i++)
    tg_composio_cancel(f->c, &f->gets[i]);
  fetch_free(f);
}

/* ---- tg_check_start: a fetch over the ACTIVE rows in scope, then the decision ---- */

struct tg_check {
  tg_check_fetch *fetch;
  tg_check_cb cb;
  void *arg;
  json_t *scope;
  tg_check_row *rows;
  size_t n_rows;
  size_t *net; /* net[i]: the row whose account is the fetch's id i */
  size_t n_net;
};

typedef struct tg_check check;

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
  free(k->rows);
  free(k->net);
  json_decref(k->scope);
  free(k);
}

/* "TG_EHTTP (HTTP 503)", "TG_EIO" or dflt when e is not a failure. */
static void failure_text(char *buf, size_t len, const tg_composio_result *e, const char *dflt)
{
  if (!e->err)
    snprintf(buf, len, "%s", dflt);
  else if (e->http_status)
    snprintf(buf, len, "%s (HTTP %ld)", tg_errname(e->err), e->http_status);
  else
    snprintf(buf, len, "%s", tg_errname(e->err));
}

void tg_check_note_failure(tg_check_result *r, const tg_check_fetched *is)
{
  const tg_composio_result *e;
  if (!is)
    return;
  e = is->get_err.err ? &is->get_err : &is->list_err;
  r->broker_auth = is->auth_rejected;
  r->composio_err = is->auth_rejected ? TG_EAUTH : e->err;
  r->composio_status = is->auth_rejected ? 0 : e->http_status;
}

/* Builds the final result of k from what the fetch learnt. NULL only when memory runs out. */
static tg_check_result *conclude(check *k, const tg_check_fetched *is)
{
  tg_check_result *r = NULL;
  json_t *known = NULL;
  result_box *b;
  char list_why[64], get_why[64];

  if (!is->n_unknown) {
    if (tg_check_decide(k->scope, k->rows, k->n_rows, is->accts, is->n_accts, &r))
      return NULL;
    r->composio_calls = is->calls;
    return r;
  }
  /* Decide over what is known; an unknown provider must not count as "not found". */
  if (!(known = json_deep_copy(k->scope)))
    return NULL;
  for (size_t i = 0; i < k->n_net; i++) {
    const char *p = k->rows[k->net[i]].provider;
    json_t *v;
    size_t j;
    if (is->state[i] != TG_CHECK_ID_UNKNOWN)
      continue;
    json_array_foreach(known, j, v)
    {
      if (json_string_value(v) && strcmp(json_string_value(v), p) == 0) {
        json_array_remove(known, j);
        j--;
      }
    }
  }
  if (tg_check_decide(known, k->rows, k->n_rows, is->accts, is->n_accts, &r)) {
    json_decref(known);
    return NULL;
  }
  json_decref(known);
  r->composio_calls = is->calls;
  if (r->outcome == TG_CHECK_BLOCKED)
    return r;
  b = (result_box *)r;
  r->outcome = TG_CHECK_UNAVAILABLE;
  r->retry_after_ms = is->retry_after_ms > 0 ? is->retry_after_ms : DEFAULT_RETRY_MS;
  tg_check_note_failure(r, is); /* callers decide on these fields, not on the text below */
  if (is->auth_rejected) {
    snprintf(b->detail, sizeof b->detail, "composio rejected the API key");
  } else {
    failure_text(list_why, sizeof list_why, &is->list_err, "ok");
    failure_text(get_why, sizeof get_why, &is->get_err, "not tried");
    snprintf(b->detail, sizeof b->detail,
             "composio could not answer for %zu account(s): list %s, lookup %s", is->n_unknown,
             list_why, get_why);
  }
  r->detail = b->detail;
  return r;
}

/* The fetch ended: runs k's callback with its result (or an UNAVAILABLE stub when memory ran
 * out), frees k. */
static void on_fetched(void *arg, const tg_check_fetched *is)
{
  check *k = arg;
  tg_check_result *r = conclude(k, is);
  if (!r) {
    result_box *b = calloc(1, sizeof *b);
    /* Out of memory: fail closed with what we can; the callback still runs exactly once. */
    if (b) {
      r = &b->pub;
      r->outcome = TG_CHECK_UNAVAILABLE;
      r->retry_after_ms = DEFAULT_RETRY_MS;
      r->detail = "out of memory";
      r->composio_calls = is->calls;
    }
  }
  if (r)
    k->cb(k->arg, r);
  check_free(k);
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
  tg_check_fetch_cancel(k->fetch);
  check_free(k);
}

int tg_check_start(tg_composio *c, uv_loop_t *loop, const char *user_id, const json_t *scope,
                   const tg_check_row *rows, size_t n_rows, tg_check_cb cb, void *arg,
                   tg_check **out)
{
  check *k;
  const char **ids = NULL, **slugs = NULL;
  size_t n_slugs = 0, n_scope;
  tg_check_fetch_req req;
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
  k->cb = cb;
  k->arg = arg;
  n_scope = json_array_size(scope);
  if (!(k->scope = json_deep_copy(scope)) || copy_rows(k, rows, n_rows))
    goto fail;
  if (n_scope &&
      (!(k->net = calloc(n_scope, sizeof *k->net)) || !(ids = calloc(n_scope, sizeof *ids)) ||
       !(slugs = calloc(n_scope, sizeof *slugs))))
    goto fail;
  /* The ACTIVE rows in scope with an account id are the only ones Composio must see. */
  json_array_foreach(k->scope, i, v)
  {
    const tg_check_row *row = tg_check_net_row(k->rows, k->n_rows, json_string_value(v));
    const char *s;
    int dup = 0;
    if (!row)
      continue;
    for (size_t j = 0; j < k->n_net; j++)
      dup |= k->net[j] == (size_t)(row - k->rows);
    if (dup)
      continue;
    k->net[k->n_net] = (size_t)(row - k->rows);
    ids[k->n_net++] = row->composio_account_id;
    /* Every net row needs its slug in the filter, or the list could not show its account; a
     * row without a slug is simply looked up by id when the list does not mention it. */
    if (!(s = row->toolkit_slug) || !*s)
      continue;
    for (size_t j = 0; j < n_slugs; j++)
      dup |= strcmp(slugs[j], s) == 0;
    if (!dup)
      slugs[n_slugs++] = s;
  }
  req = (tg_check_fetch_req){.user_id = user_id,
                             .toolkit_slugs = slugs,
                             .n_slugs = n_slugs,
                             .ids = ids,
                             .n_ids = k->n_net,
                             .stop_on_refusal = 1};
  rc = tg_check_fetch_start(c, loop, &req, on_fetched, k, &k->fetch);
  if (rc)
    goto fail;
  free(ids);
  free(slugs);
  if (out)
    *out = k;
  return 0;
fail:
  free(ids);
  free(slugs);
  check_free(k);
  return rc;
}
