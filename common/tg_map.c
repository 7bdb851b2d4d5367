/*
 * tg_map: uthash keyed with SipHash, plus an LRU list and a cost budget (see tg_map.h).
 *
 * Invariants: every entry is both in the uthash table and on the LRU list (utlist, oldest first);
 * cost == the sum of the entries' costs <= max_cost when max_cost != 0 (after every put).
 * uthash runs in its non-fatal out-of-memory mode: a failed bucket allocation makes the add
 * fail (the entry is not in the table) instead of exiting, and put reports TG_ENOMEM.
 */
#include "tg_map.h"

#include "tg_err.h"

#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>

static unsigned char hash_key[crypto_shorthash_KEYBYTES];
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_init(void)
{
  if (sodium_init() < 0)
    abort(); /* libsodium cannot work at all: nothing here could be trusted */
  randombytes_buf(hash_key, sizeof hash_key);
}

static unsigned sip(const void *key, size_t klen)
{
  unsigned char out[crypto_shorthash_BYTES];
  uint64_t h;
  crypto_shorthash(out, key, klen, hash_key);
  memcpy(&h, out, sizeof h);
  return (unsigned)(h ^ (h >> 32));
}

static _Thread_local int add_failed; /* set by uthash_nonfatal_oom, read right after the add */

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (add_failed = 1)
#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = sip((keyptr), (keylen)))
#include <uthash.h>
#include <utlist.h>

typedef struct entry {
  UT_hash_handle hh;
  struct entry *older, *newer; /* LRU list (utlist DL: the head's older is the tail) */
  void *value;
  size_t cost;
  size_t klen;
  unsigned char key[];
} entry;

struct tg_map {
  entry *table; /* uthash head */
  entry *lru;   /* oldest first; lru->older is the newest */
  size_t cost, max_cost;
  tg_map_free_fn free_value;
};

tg_map *tg_map_new(size_t max_cost, tg_map_free_fn free_value)
{
  tg_map *m;
  pthread_once(&hash_once, hash_init);
  m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->max_cost = max_cost;
  m->free_value = free_value;
  return m;
}

/* Unlinks e from the table and the list, frees it and its value. */
static void drop_entry(tg_map *m, entry *e)
{
  void *v = e->value;
  HASH_DELETE(hh, m->table, e);
  DL_DELETE2(m->lru, e, older, newer);
  m->cost -= e->cost;
  free(e);
  if (m->free_value)
    m->free_value(v);
}

void tg_map_free(tg_map *m)
{
  if (!m)
    return;
  while (m->lru)
    drop_entry(m, m->lru);
  HASH_CLEAR(hh, m->table);
  free(m);
}

static entry *find(const tg_map *m, const void *key, size_t klen)
{
  entry *e = NULL;
  HASH_FIND(hh, m->table, key, klen, e);
  return e;
}

void *tg_map_get(tg_map *m, const void *key, size_t klen)
{
  entry *e = find(m, key, klen);
  if (!e)
    return NULL;
  if (e != m->lru->older) { /* not already the newest */
    DL_DELETE2(m->lru, e, older, newer);
    DL_APPEND2(m->lru, e, older, newer);
  }
  return e->value;
}

void *tg_map_peek(const tg_map *m, const void *key, size_t klen)
{
  entry *e = find(m, key, klen);
  return e ? e->value : NULL;
}

int tg_map_put(tg_map *m, const void *key, size_t klen, void *value, size_t cost)
{
  entry *e;
  if (m->max_cost && cost > m->max_cost)
    return TG_ETOOBIG;
  if ((e = find(m, key, klen)) != NULL) { /* replace in place: nothing to allocate */
    if (m->free_value && e->value != value)
      m->free_value(e->value);
    e->value = value;
    m->cost = m->cost - e->cost + cost;
    e->cost = cost;
    DL_DELETE2(m->lru, e, older, newer);
  } else {
    if (klen > SIZE_MAX - sizeof *e || !(e = malloc(sizeof *e + klen)))
      return TG_ENOMEM;
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->value = value;
    e->cost = cost;
    add_failed = 0;
    HASH_ADD_KEYPTR(hh, m->table, e->key, klen, e);
    if (add_failed) { /* uthash could not grow its buckets; the table is as it was */
      free(e);
      return TG_ENOMEM;
    }
    m->cost += cost;
  }
  DL_APPEND2(m->lru, e, older, newer);
  while (m->max_cost && m->cost > m->max_cost && m->lru != e)
    drop_entry(m, m->lru);
  return 0;
}

int tg_map_del(tg_map *m, const void *key, size_t klen)
{
  entry *e = find(m, key, klen);
  if (!e)
    return TG_ENOTFOUND;
  drop_entry(m, e);
  return 0;
}

void tg_map_sweep(tg_map *m, tg_map_visit_fn fn, void *ctx)
{
  entry *e, *next;
  DL_FOREACH_SAFE2(m->lru, e, next, newer)
  {
    if (fn(ctx, e->key, e->klen, e->value))
      drop_entry(m, e);
  }
}

size_t tg_map_count(const tg_map *m)
{
  return HASH_COUNT(m->table);
}

size_t tg_map_cost(const tg_map *m)
{
  return m->cost;
}
