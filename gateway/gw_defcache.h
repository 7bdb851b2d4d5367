/*
 * gw_defcache: parsed workflow definitions, cached for admission on the loop thread.
 *
 * Admission reads a workflow's definition text from the database on every request (ownership
 * and existence are checked there); only the JSON parse is cached. An entry is keyed by the
 * workflow id and used only when the text read in this admission is byte for byte the cached
 * text, so an edited workflow is never answered from an old parse (no reliance on updated_at).
 * One cache per gw_app: two gateways in one process never share entries.
 */
#ifndef GW_DEFCACHE_H
#define GW_DEFCACHE_H

#include <jansson.h>
#include <stddef.h>

#define GW_DEFCACHE_BYTES (8u << 20) /* the gateway's budget: cached definition text, in bytes */
#define GW_DEFCACHE_ENTRIES 4096     /* the gateway's bound on cached definitions */
#define GW_DEFCACHE_MAX_TEXT (64u << 10) /* bytes; larger definitions are parsed every time */

typedef struct gw_defcache gw_defcache;

/*
 * A new empty cache holding at most max_entries definitions whose texts add up to at most
 * max_bytes (least recently used evicted first). Returns 0 or TG_ENOMEM. The gateway uses
 * GW_DEFCACHE_BYTES and GW_DEFCACHE_ENTRIES.
 */
int gw_defcache_new(gw_defcache **out, size_t max_bytes, size_t max_entries);

/* Frees every entry and the cache. NULL-safe. */
void gw_defcache_free(gw_defcache *dc);

/*
 * The parsed definition of workflow wf_id (a NUL-terminated id) whose stored text is *text
 * (len bytes, malloc'd, NUL at text[len]): a new reference the caller must json_decref. Text
 * that is not JSON parses to a JSON string of it (as tg_db's _json columns). *uses gets a new
 * reference to what admission derives from it, computed once per parse: {"providers": the
 * managed MCP providers (tg_workflow_providers), "connectors": the connector ids its nodes name
 * (tg_connector_ids_of)}. Both values may be shared with the cache and later callers: never
 * modify them. On a miss the text may move into the cache (*text is then NULL; otherwise the
 * caller still owns it). Returns NULL only when memory runs out (*text unchanged, *uses unset).
 */
json_t *gw_defcache_get(gw_defcache *dc, const char *wf_id, char **text, size_t len, json_t **uses);

/* Definitions held, and the sum of their costs in bytes (for tests). */
size_t gw_defcache_count(const gw_defcache *dc);
size_t gw_defcache_bytes(const gw_defcache *dc);

#endif
