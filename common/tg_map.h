/*
 * tg_map: the one hash map of toolgate, optionally a bounded LRU cache.
 *
 * Keys are byte strings (copied into the map); values are opaque pointers the map owns once put
 * (freed with the map's free_value, which may be NULL for values the caller owns). The table is
 * uthash (Debian uthash-dev) with its hash function replaced by SipHash-2-4 (libsodium
 * crypto_shorthash) under a random per-process key, so that a tenant who chooses keys (user ids,
 * workflow ids, host names) cannot aim them at one bucket.
 *
 * Every entry has a cost (1 for a plain map; bytes for a cache bounded by memory). When the sum
 * of costs passes max_cost (0: unbounded), the least recently used entries are evicted, oldest
 * first, until it fits; tg_map_get counts as a use, tg_map_peek does not.
 *
 * Not thread-safe: one owner at a time (each cache belongs to one loop or is guarded by its
 * owner's mutex). No global state besides the hash key, so two maps (two gateways in one
 * process) never share entries.
 */
#ifndef TG_MAP_H
#define TG_MAP_H

#include <stddef.h>
#include <string.h>

typedef struct tg_map tg_map;

/* Frees a value when the map drops it (delete, replace, evict, tg_map_free). */
typedef void (*tg_map_free_fn)(void *value);

/*
 * Visits one entry (see tg_map_sweep): return 1 to delete it (its value is freed with the map's
 * free_value), 0 to keep it. It must not change the map otherwise.
 */
typedef int (*tg_map_visit_fn)(void *ctx, const void *key, size_t klen, void *value);

/* A new empty map, or NULL when out of memory. max_cost 0: no bound. */
tg_map *tg_map_new(size_t max_cost, tg_map_free_fn free_value);

/* Frees every value (with free_value) and the map. NULL-safe. */
void tg_map_free(tg_map *m);

/* The value under key, or NULL; marks the entry most recently used. */
void *tg_map_get(tg_map *m, const void *key, size_t klen);

/* The value under key, or NULL, without touching the LRU order. */
void *tg_map_peek(const tg_map *m, const void *key, size_t klen);

/*
 * Stores value under key (the key is copied) with the given cost, replacing (and freeing) any
 * value already there, as the most recently used entry; then evicts the least recently used
 * other entries while the total cost exceeds max_cost. Errors: TG_ETOOBIG when cost alone
 * exceeds max_cost, TG_ENOMEM; on error the map is unchanged and the caller still owns value.
 */
int tg_map_put(tg_map *m, const void *key, size_t klen, void *value, size_t cost);

/* Removes the entry and frees its value. Returns 0, or TG_ENOTFOUND. */
int tg_map_del(tg_map *m, const void *key, size_t klen);

/* Visits every entry, least recently used first; fn may delete the entry it is given. */
void tg_map_sweep(tg_map *m, tg_map_visit_fn fn, void *ctx);

/* Entries held, and the sum of their costs. */
size_t tg_map_count(const tg_map *m);
size_t tg_map_cost(const tg_map *m);

/* String-keyed shorthands (the key is the string without its NUL). */
static inline void *tg_map_gets(tg_map *m, const char *key)
{
  return tg_map_get(m, key, strlen(key));
}
static inline int tg_map_puts(tg_map *m, const char *key, void *value, size_t cost)
{
  return tg_map_put(m, key, strlen(key), value, cost);
}
static inline int tg_map_dels(tg_map *m, const char *key)
{
  return tg_map_del(m, key, strlen(key));
}

#endif
