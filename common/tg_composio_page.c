/*
 * tg_composio_page: one page of the connected-accounts list, decoded with yajl's event parser
 * (see tg_composio_page.h for the rules and why).
 *
 * How it works: a small stack of frames says where the parser is (the top object, the items
 * array, an item, its toolkit / auth_config / state / state.val objects); everything else is
 * one SKIP frame with a nesting counter. A key sets what the next value is for and first
 * clears that field, so a repeated key keeps its last value, as a jansson tree would. Kept
 * strings are copied into one buffer of len + 1 bytes allocated up front: a decoded JSON
 * string is never longer than its source and each source string also spends two quote bytes,
 * so every copy (with its NUL) fits, and pointers into the buffer stay valid (no realloc).
 */
#include "tg_composio_page.h"
#include "tg_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

enum frame { F_TOP, F_ITEMS, F_ITEM, F_TOOLKIT, F_AUTHCFG, F_STATE, F_VAL, F_SKIP };

/* What the next value is for (set by the key before it). */
enum want {
  W_NONE,
  W_ITEMS,
  W_CURSOR,
  W_ID,
  W_STATUS,
  W_REASON,
  W_USER,
  W_DISABLED,
  W_REFRESH,
  W_TOOLKIT,
  W_AUTHCFG,
  W_STATE,
  W_SLUG,
  W_ACID,
  W_VAL,
  W_VAL_REFRESH
};

enum vtype { V_STR, V_BOOL, V_NULL, V_NUM, V_MAP, V_ARR };

#define MAX_FRAMES 8 /* TOP, ITEMS, ITEM, STATE, VAL and one SKIP at most */

typedef struct item {
  const char *id, *status, *reason, *user, *slug, *acid; /* into the string buffer */
  int disabled, refresh_top, refresh_val;
  int not_object; /* an element of items that is not an object */
} item;

typedef struct scan {
  enum frame stack[MAX_FRAMES];
  int depth;   /* frames in use */
  size_t skip; /* containers open inside the SKIP frame on top */
  enum want want;
  int started; /* the top-level value began */
  char *buf;   /* kept strings */
  size_t used, cap;
  item *items;
  size_t n_items, cap_items;
  int have_items; /* the last "items" key had an array */
  const char *cursor;
  const char *why; /* set when a callback stops the parse */
  int nomem;
} scan;

static const char not_object[] = "composio answered with a body that is not a JSON object";

static int key_is(const unsigned char *k, size_t n, const char *name)
{
  size_t len = strlen(name);
  return n == len && memcmp(k, name, n) == 0;
}

/* A copy of s (n bytes) in the string buffer, or NULL (s->why set). */
static const char *keep(scan *s, const unsigned char *v, size_t n)
{
  char *p;
  if (n + 1 > s->cap - s->used) { /* cannot happen (see the top comment); fail closed */
    s->why = not_object;
    return NULL;
  }
  p = s->buf + s->used;
  memcpy(p, v, n);
  p[n] = 0;
  s->used += n + 1;
  return p;
}

static item *cur_item(scan *s)
{
  return &s->items[s->n_items - 1];
}

static int add_item(scan *s, int is_object)
{
  if (s->n_items == s->cap_items) {
    size_t nc = s->cap_items ? s->cap_items * 2 : 8;
    item *grown = realloc(s->items, nc * sizeof *grown);
    if (!grown) {
      s->nomem = 1;
      return 0;
    }
    s->items = grown;
    s->cap_items = nc;
  }
  memset(&s->items[s->n_items], 0, sizeof s->items[0]);
  s->items[s->n_items++].not_object = !is_object;
  return 1;
}

static int push(scan *s, enum frame f)
{
  if (s->depth > 0 && s->stack[s->depth - 1] == F_SKIP && f == F_SKIP) {
    s->skip++;
    return 1;
  }
  if (s->depth == MAX_FRAMES) { /* cannot happen: only one SKIP frame is ever pushed */
    s->why = not_object;
    return 0;
  }
  s->stack[s->depth++] = f;
  return 1;
}

/* One value (scalar or the start of a container) where s->want and the top frame say. */
static int value(scan *s, enum vtype t, const unsigned char *str, size_t n, int b)
{
  enum frame top;
  enum want w = s->want;
  enum frame next = F_SKIP;
  int container = t == V_MAP || t == V_ARR;

  s->want = W_NONE;
  if (t == V_STR && memchr(str, 0, n)) { /* jansson refuses \u0000 without JSON_ALLOW_NUL */
    s->why = not_object;
    return 0;
  }
  if (!s->started) {
    s->started = 1;
    if (t != V_MAP) {
      s->why = not_object;
      return 0;
    }
    return push(s, F_TOP);
  }
  top = s->stack[s->depth - 1];
  if (top == F_SKIP)
    return container ? push(s, F_SKIP) : 1;
  if (top == F_ITEMS) {
    if (!add_item(s, t == V_MAP))
      return 0;
    return container ? push(s, t == V_MAP ? F_ITEM : F_SKIP) : 1;
  }
  switch (w) {
  case W_ITEMS:
    s->have_items = t == V_ARR;
    next = F_ITEMS;
    break;
  case W_CURSOR:
    if (t == V_STR && !(s->cursor = keep(s, str, n)))
      return 0;
    break;
  case W_ID:
  case W_STATUS:
  case W_REASON:
  case W_USER:
  case W_SLUG:
  case W_ACID:
    if (t == V_STR) {
      const char *v = keep(s, str, n);
      item *it = cur_item(s);
      if (!v)
        return 0;
      if (w == W_ID)
        it->id = v;
      else if (w == W_STATUS)
        it->status = v;
      else if (w == W_REASON)
        it->reason = v;
      else if (w == W_USER)
        it->user = v;
      else if (w == W_SLUG)
        it->slug = v;
      else
        it->acid = v;
    }
    break;
  case W_DISABLED:
    cur_item(s)->disabled = t == V_BOOL && b;
    break;
  case W_REFRESH:
    cur_item(s)->refresh_top = t == V_BOOL && b;
    break;
  case W_VAL_REFRESH:
    cur_item(s)->refresh_val = t == V_BOOL && b;
    break;
  case W_TOOLKIT:
    next = F_TOOLKIT;
    break;
  case W_AUTHCFG:
    next = F_AUTHCFG;
    break;
  case W_STATE:
    next = F_STATE;
    break;
  case W_VAL:
    next = F_VAL;
    break;
  case W_NONE:
    break;
  }
  if (!container)
    return 1;
  /* ITEMS wants an array, the others an object; anything else is skipped. */
  if (next != F_SKIP && (next == F_ITEMS) != (t == V_ARR))
    next = F_SKIP;
  return push(s, next);
}

static int on_key(void *ctx, const unsigned char *k, size_t n)
{
  scan *s = ctx;
  item *it = NULL;
  if (memchr(k, 0, n)) {
    s->why = not_object;
    return 0;
  }
  s->want = W_NONE;
  switch (s->stack[s->depth - 1]) {
  case F_TOP:
    if (key_is(k, n, "items")) {
      s->want = W_ITEMS;
      s->have_items = 0;
      s->n_items = 0; /* a repeated "items": the last one counts */
    } else if (key_is(k, n, "next_cursor")) {
      s->want = W_CURSOR;
      s->cursor = NULL;
    }
    return 1;
  case F_ITEM:
    it = cur_item(s);
    if (key_is(k, n, "id"))
      s->want = W_ID, it->id = NULL;
    else if (key_is(k, n, "status"))
      s->want = W_STATUS, it->status = NULL;
    else if (key_is(k, n, "status_reason"))
      s->want = W_REASON, it->reason = NULL;
    else if (key_is(k, n, "user_id"))
      s->want = W_USER, it->user = NULL;
    else if (key_is(k, n, "is_disabled"))
      s->want = W_DISABLED, it->disabled = 0;
    else if (key_is(k, n, "auth_refresh_required"))
      s->want = W_REFRESH, it->refresh_top = 0;
    else if (key_is(k, n, "toolkit"))
      s->want = W_TOOLKIT, it->slug = NULL;
    else if (key_is(k, n, "auth_config"))
      s->want = W_AUTHCFG, it->acid = NULL;
    else if (key_is(k, n, "state"))
      s->want = W_STATE, it->refresh_val = 0;
    return 1;
  case F_TOOLKIT:
    if (key_is(k, n, "slug"))
      s->want = W_SLUG, cur_item(s)->slug = NULL;
    return 1;
  case F_AUTHCFG:
    if (key_is(k, n, "id"))
      s->want = W_ACID, cur_item(s)->acid = NULL;
    return 1;
  case F_STATE:
    if (key_is(k, n, "val"))
      s->want = W_VAL, cur_item(s)->refresh_val = 0;
    return 1;
  case F_VAL:
    if (key_is(k, n, "auth_refresh_required"))
      s->want = W_VAL_REFRESH, cur_item(s)->refresh_val = 0;
    return 1;
  case F_ITEMS:
  case F_SKIP:
    return 1;
  }
  return 1;
}

static int on_end(void *ctx)
{
  scan *s = ctx;
  if (s->depth > 0 && s->stack[s->depth - 1] == F_SKIP && s->skip > 0)
    s->skip--;
  else if (s->depth > 0)
    s->depth--;
  return 1;
}

static int on_null(void *ctx)
{
  return value(ctx, V_NULL, NULL, 0, 0);
}

static int on_bool(void *ctx, int b)
{
  return value(ctx, V_BOOL, NULL, 0, b);
}

static int on_number(void *ctx, const char *v, size_t n)
{
  (void)v;
  (void)n;
  return value(ctx, V_NUM, NULL, 0, 0);
}

static int on_string(void *ctx, const unsigned char *v, size_t n)
{
  return value(ctx, V_STR, v, n, 0);
}

static int on_start_map(void *ctx)
{
  return value(ctx, V_MAP, NULL, 0, 0);
}

static int on_start_array(void *ctx)
{
  return value(ctx, V_ARR, NULL, 0, 0);
}

static const yajl_callbacks callbacks = {on_null,   on_bool,        NULL,         NULL,
                                         on_number, on_string,      on_start_map, on_key,
                                         on_end,    on_start_array, on_end};

void tg_composio_page_clear(tg_composio_page *p)
{
  if (!p)
    return;
  free(p->items);
  free(p->strings);
  memset(p, 0, sizeof *p);
}

int tg_composio_page_decode(const char *body, size_t len, tg_composio_page *out, const char **why)
{
  scan s;
  yajl_handle h;
  yajl_status st;
  int rc = 0;

  memset(out, 0, sizeof *out);
  *why = NULL;
  memset(&s, 0, sizeof s);
  if (len > SIZE_MAX - 1 || !(s.buf = malloc(len + 1)))
    return TG_ENOMEM;
  s.cap = len + 1;
  if (!(h = yajl_alloc(&callbacks, NULL, &s))) {
    free(s.buf);
    return TG_ENOMEM;
  }
  st = yajl_parse(h, (const unsigned char *)body, len);
  if (st == yajl_status_ok)
    st = yajl_complete_parse(h);
  yajl_free(h);
  if (s.nomem) {
    rc = TG_ENOMEM;
  } else if (st != yajl_status_ok || !s.started) {
    rc = TG_EPROTO;
    *why = not_object; /* invalid JSON, empty, or stopped by a callback (s.why) */
  } else if (!s.have_items) {
    rc = TG_EPROTO;
    *why = "composio list response has no items array";
  } else if (s.n_items && !(out->items = calloc(s.n_items, sizeof *out->items))) {
    rc = TG_ENOMEM;
  }
  for (size_t i = 0; rc == 0 && i < s.n_items; i++) {
    const item *it = &s.items[i];
    tg_composio_account *a = &out->items[i];
    if (it->not_object || !it->id || !*it->id || !it->status || !*it->status) {
      rc = TG_EPROTO;
      *why = "composio listed a connected account without id or status";
      break;
    }
    a->id = it->id;
    a->status = it->status;
    a->status_reason = it->reason;
    a->is_disabled = it->disabled;
    a->auth_refresh_required = it->refresh_top || it->refresh_val;
    a->toolkit_slug = it->slug;
    a->auth_config_id = it->acid;
    a->user_id = it->user;
  }
  free(s.items);
  if (rc != 0) {
    free(out->items);
    free(s.buf);
    memset(out, 0, sizeof *out);
    return rc;
  }
  out->n_items = s.n_items;
  out->next_cursor = s.cursor;
  out->strings = s.buf;
  return 0;
}
