/*
 * gw_defcache: workflow id -> {definition text, its parse}, a tg_map LRU (see gw_defcache.h).
 *
 * One budget bounds both memory and count: an entry costs its text bytes, but at least
 * ceil(max_bytes / max_entries), so a full cache holds at most max_entries entries and at most
 * max_bytes of text (the parsed JSON grows with the text). The text is kept to validate a hit;
 * it is the one admission read (moved in, not copied). Texts over GW_DEFCACHE_MAX_TEXT are never
 * cached: one of them would evict many small definitions for a rare workflow.
 *
 * Invariant: an entry's def is the parse of its text and uses is derived from def; none of them
 * changes while it is cached
 * (admission treats def as read-only). Loop thread only; no state outside the struct.
 */
#include "gw_defcache.h"

#include "tg_connector.h"
#include "tg_err.h"
#include "tg_map.h"
#include "tg_workflow.h"

#include <stdlib.h>
#include <string.h>

typedef struct def_entry {
  char *text;
  size_t len;
  json_t *def;
  json_t *uses; /* derived from def once: {"providers": [...], "connectors": [...]} */
} def_entry;

struct gw_defcache {
  tg_map *map;     /* wf_id (without NUL) -> def_entry */
  size_t min_cost; /* bytes charged for an entry whatever its length */
};

static void entry_free(void *value)
{
  def_entry *e = value;
  free(e->text);
  json_decref(e->def);
  json_decref(e->uses);
  free(e);
}

int gw_defcache_new(gw_defcache **out, size_t max_bytes, size_t max_entries)
{
  gw_defcache *dc = calloc(1, sizeof *dc);
  *out = NULL;
  if (!dc || !(dc->map = tg_map_new(max_bytes, entry_free))) {
    free(dc);
    return TG_ENOMEM;
  }
  dc->min_cost = max_entries ? max_bytes / max_entries + (max_bytes % max_entries != 0) : 0;
  if (dc->min_cost == 0)
    dc->min_cost = 1;
  *out = dc;
  return 0;
}

void gw_defcache_free(gw_defcache *dc)
{
  if (dc)
    tg_map_free(dc->map);
  free(dc);
}

static json_t *parse_definition(const char *text, size_t len)
{
  json_t *def = json_loadb(text, len, JSON_DECODE_ANY, NULL);
  return def ? def : json_stringn(text, len); /* as tg_db's _json columns: invalid stays text */
}

/* What admission derives from a definition, once per parse: the providers its managed MCP
 * nodes use (tg_workflow_providers) and the connectors its nodes name (tg_connector_ids_of). */
static json_t *uses_of(const json_t *def)
{
  return json_pack("{s:o?, s:o?}", "providers", tg_workflow_providers(def), "connectors",
                   tg_connector_ids_of(def));
}

json_t *gw_defcache_get(gw_defcache *dc, const char *wf_id, char **text, size_t len, json_t **uses)
{
  size_t klen = strlen(wf_id);
  def_entry *e = tg_map_get(dc->map, wf_id, klen);
  json_t *def;
  if (e && e->len == len && memcmp(e->text, *text, len) == 0) {
    *uses = json_incref(e->uses);
    return json_incref(e->def);
  }
  def = parse_definition(*text, len);
  if (!def)
    return NULL;
  if (!(*uses = uses_of(def))) {
    json_decref(def);
    return NULL;
  }
  if (len > GW_DEFCACHE_MAX_TEXT) {
    if (e) /* an older text of this workflow: it will not be asked for again */
      tg_map_del(dc->map, wf_id, klen);
    return def;
  }
  if (!(e = malloc(sizeof *e)))
    return def;
  e->text = *text;
  e->len = len;
  e->def = json_incref(def);
  e->uses = json_incref(*uses);
  if (tg_map_put(dc->map, wf_id, klen, e, len > dc->min_cost ? len : dc->min_cost) != 0) {
    json_decref(e->def);
    json_decref(e->uses);
    free(e);
    return def; /* the budget is smaller than this text, or no memory: served uncached */
  }
  *text = NULL; /* moved into the cache; replaced the older text of this id, if any */
  return def;
}

size_t gw_defcache_count(const gw_defcache *dc)
{
  return tg_map_count(dc->map);
}

size_t gw_defcache_bytes(const gw_defcache *dc)
{
  return tg_map_cost(dc->map);
}
