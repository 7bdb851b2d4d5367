/*
 * tg_accounts_cache: a tg_map (cost 1 per entry, max_entries as its budget, LRU eviction) from
 * the key "<user>\x1f<provider>" to an entry holding one JSON reference and its store time.
 *
 * Invariant: an entry holds exactly one reference to its answer, released when the map frees
 * the entry (replace, drop, evict, free). Provider names (configuration) never hold 0x1f, so two
 * (user, provider) pairs never share a key; dropping every entry of a user is a prefix match on
 * "<user>\x1f", which a user id holding 0x1f itself could only make drop more, never less.
 */
#include "tg_accounts_cache.h"

#include "tg_err.h"
#include "tg_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 512

struct tg_accounts_cache {
  tg_map *map;
  uint64_t fresh_ms;
};

typedef struct entry {
  json_t *answer;
  uint64_t at; /* now_ms of the put */
} entry;

static void entry_free(void *v)
{
  entry *e = v;
  json_decref(e->answer);
  free(e);
}

/* The key of (user, provider) into key[KEY_MAX]: its length, or 0 when it does not fit. */
static size_t make_key(char *key, const char *user, const char *provider)
{
  int n = snprintf(key, KEY_MAX, "%s\x1f%s", user, provider ? provider : "");
  return n > 0 && n < KEY_MAX ? (size_t)n : 0;
}

int tg_accounts_cache_new(tg_accounts_cache **out, size_t max_entries, uint64_t fresh_ms)
{
  tg_accounts_cache *c;
  *out = NULL;
  if (max_entries == 0)
    return TG_EINVAL;
  if (!(c = calloc(1, sizeof *c)))
    return TG_ENOMEM;
  if (!(c->map = tg_map_new(max_entries, entry_free))) {
    free(c);
    return TG_ENOMEM;
  }
  c->fresh_ms = fresh_ms;
  *out = c;
  return 0;
}

void tg_accounts_cache_free(tg_accounts_cache *c)
{
  if (c)
    tg_map_free(c->map);
  free(c);
}

static entry *lookup(tg_accounts_cache *c, const char *user, const char *provider)
{
  char key[KEY_MAX];
  size_t n;
  if (!c || !(n = make_key(key, user, provider)))
    return NULL;
  return tg_map_get(c->map, key, n);
}

json_t *tg_accounts_cache_fresh(tg_accounts_cache *c, const char *user, const char *provider,
                                uint64_t now_ms)
{
  entry *e = lookup(c, user, provider);
  if (!e || now_ms - e->at >= c->fresh_ms)
    return NULL;
  return e->answer;
}

json_t *tg_accounts_cache_last(tg_accounts_cache *c, const char *user, const char *provider)
{
  entry *e = lookup(c, user, provider);
  return e ? e->answer : NULL;
}

int tg_accounts_cache_put(tg_accounts_cache *c, const char *user, const char *provider,
                          json_t *answer, uint64_t now_ms)
{
  char key[KEY_MAX];
  size_t n;
  entry *e;
  int rc;
  if (!c || !answer || !(n = make_key(key, user, provider)))
    return TG_EINVAL;
  if (!(e = malloc(sizeof *e)))
    return TG_ENOMEM;
  e->answer = json_incref(answer);
  e->at = now_ms;
  if ((rc = tg_map_put(c->map, key, n, e, 1)) != 0)
    entry_free(e);
  return rc;
}

typedef struct prefix {
  const char *key;
  size_t len;
} prefix;

static int drop_prefixed(void *ctx, const void *key, size_t klen, void *value)
{
  const prefix *p = ctx;
  (void)value;
  return klen >= p->len && memcmp(key, p->key, p->len) == 0;
}

void tg_accounts_cache_drop(tg_accounts_cache *c, const char *user, const char *provider)
{
  char key[KEY_MAX];
  size_t n;
  prefix p;
  if (!c || !(n = make_key(key, user, provider)))
    return;
  if (provider) {
    tg_map_del(c->map, key, n);
    return;
  }
  p.key = key;
  p.len = n; /* "<user>\x1f" */
  tg_map_sweep(c->map, drop_prefixed, &p);
}

size_t tg_accounts_cache_count(const tg_accounts_cache *c)
{
  return c ? tg_map_count(c->map) : 0;
}
