/*
 * tg_accounts_cache: the status cache of connected accounts, what Composio last said about each
 * (user, provider), so that a status page polled every few seconds does not call Composio each
 * time.
 *
 * An entry is a JSON answer (the status route's per-provider object) and the time it was
 * stored. It is fresh for fresh_ms after that; a stale entry is still the last known answer
 * (tg_accounts_cache_last) until it is replaced, dropped or evicted. At most max_entries are
 * kept; past that the least recently used entry goes (a tg_map with LRU eviction). Times are
 * milliseconds of any monotonic clock the caller chooses (the gateway passes uv_now), the same
 * for every call on one cache.
 *
 * One cache per owner (the gateway's app object), no shared or global state; not thread-safe
 * (the gateway uses it on its loop thread only). Every function accepts a NULL cache: lookups
 * find nothing, drops do nothing.
 */
#ifndef TG_ACCOUNTS_CACHE_H
#define TG_ACCOUNTS_CACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_accounts_cache tg_accounts_cache;

/* A new empty cache (max_entries >= 1, fresh_ms: how long an entry is fresh). TG_EINVAL,
 * TG_ENOMEM. */
int tg_accounts_cache_new(tg_accounts_cache **out, size_t max_entries, uint64_t fresh_ms);

/* Frees the cache and drops its references to the stored answers. NULL-safe. */
void tg_accounts_cache_free(tg_accounts_cache *c);

/* The answer for (user, provider) stored less than fresh_ms before now_ms (borrowed: valid until
 * the next put or drop on the cache; do not modify it), or NULL. */
json_t *tg_accounts_cache_fresh(tg_accounts_cache *c, const char *user, const char *provider,
                                uint64_t now_ms);

/* The last answer for (user, provider) however old (borrowed as above), or NULL. */
json_t *tg_accounts_cache_last(tg_accounts_cache *c, const char *user, const char *provider);

/*
 * Stores answer for (user, provider) at now_ms, replacing any entry; the cache takes its own
 * reference (the caller keeps its own and must not modify the object afterwards). Errors
 * (nothing stored): TG_EINVAL (c NULL or key longer than the cache takes), TG_ENOMEM.
 */
int tg_accounts_cache_put(tg_accounts_cache *c, const char *user, const char *provider,
                          json_t *answer, uint64_t now_ms);

/* Forgets the entry of (user, provider); provider NULL: every entry of user. */
void tg_accounts_cache_drop(tg_accounts_cache *c, const char *user, const char *provider);

/* Entries held. */
size_t tg_accounts_cache_count(const tg_accounts_cache *c);

#endif
