/*
 * tg_store_tools: tool ids and the statements over tools (contract in tg_store_tools.h).
 *
 * Invariants: every write of a row goes through upsert_row (insert, or update guarded by "some
 * column differs": an equal definition leaves the row and sqlite3_changes() at 0) or
 * soft_delete (live rows only); both move version by one and set updated_at. The definition is
 * stored canonical (compact, sorted keys), so equal JSON compares equal as text. SHA-1 for
 * UUIDv5 comes from OpenSSL's libcrypto (EVP), the one Debian library here that has it.
 */
#include "tg_store_tools.h"

#include "tg_db.h"
#include "tg_err.h"
#include "tg_map.h"
#include "tg_sql.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRING_ID_MAX 512

/* The columns of a catalog entry in dialect D (tg_sql.h). */
/* clang-format off */
#define CATALOG_COLS(D)                                                                            \
  "tool_id, name, description, tool_type AS type, "                                                \
  "CASE source WHEN 'builtin' THEN 'builtin' ELSE 'connector' END AS source, source AS origin, "   \
  D##_JSON_TEXT("definition", "input_schema")                                                      \
  " AS input_schema_json, connector_id, version, tags AS tags_json FROM tools "
/* clang-format on */

/* ---------------------------------------------------------------- tool ids */

static int hexval(char c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int tg_tool_id(const char *user_id, const char *string_id, char *out)
{
  static const char ns_text[] = TG_TOOLS_NAMESPACE;
  unsigned char ns[16], md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_MD_CTX *ctx;
  int ok, k = 0;
  if (!user_id || !string_id)
    return TG_EINVAL;
  for (size_t i = 0; ns_text[i]; i++) {
    if (ns_text[i] == '-')
      continue;
    ns[k / 2] = (unsigned char)(k % 2 ? ns[k / 2] | hexval(ns_text[i]) : hexval(ns_text[i]) << 4);
    k++;
  }
  if (!(ctx = EVP_MD_CTX_new()))
    return TG_ENOMEM;
  ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, ns, sizeof ns) &&
       EVP_DigestUpdate(ctx, user_id, strlen(user_id)) && EVP_DigestUpdate(ctx, "\n", 1) &&
       EVP_DigestUpdate(ctx, string_id, strlen(string_id)) &&
       EVP_DigestFinal_ex(ctx, md, &md_len) && md_len >= 16;
  EVP_MD_CTX_free(ctx);
  if (!ok)
    return TG_ENOMEM;
  md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
  md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* variant 10 */
  for (int i = 0, o = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    o += snprintf(out + o, 3, "%02x", md[i]);
  }
  out[TG_TOOL_ID_LEN] = 0;
  return 0;
}

/* ---------------------------------------------------------------- writes */

static int def_ok(const tg_tool_def *d)
{
  return d && d->string_id && *d->string_id && strlen(d->string_id) <= STRING_ID_MAX && d->name &&
         *d->name && d->tool_type && d->source && json_is_object(d->definition) &&
         (!d->tags || json_is_array(d->tags));
}

/* Inserts or updates one row; *what gets 0 unchanged, 1 inserted, 2 updated. */
static int upsert_row(tg_db *db, const char *user_id, const tg_tool_def *d, int64_t now_ms,
                      int *what)
{
  char id[TG_TOOL_ID_LEN + 1], *def = NULL, *tags = NULL;
  json_t *old = NULL;
  int rc, changes = 0;
  *what = 0;
  if (!def_ok(d))
    return TG_EINVAL;
  if ((rc = tg_tool_id(user_id, d->string_id, id)) != 0)
    return rc;
  def = json_dumps(d->definition, JSON_COMPACT | JSON_SORT_KEYS);
  tags = d->tags ? json_dumps(d->tags, JSON_COMPACT) : strdup("[]");
  if (!def || !tags) {
    rc = TG_ENOMEM;
    goto out;
  }
  old = tg_db_query_one(db, &rc, "SELECT version FROM tools WHERE tool_id = ?", "s", id);
  if (!old && rc != TG_ENOTFOUND)
    goto out;
  rc = tg_db_exec(
      db, &changes,
      "INSERT INTO tools (tool_id, string_id, user_id, name, description, tool_type, source, "
      "connector_id, definition, status, version, tags, created_at, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'active', 1, ?10, ?11, ?11) "
      "ON CONFLICT(tool_id) DO UPDATE SET name = excluded.name, description = "
      "excluded.description, tool_type = excluded.tool_type, source = excluded.source, "
      "connector_id = excluded.connector_id, definition = excluded.definition, tags = "
      "excluded.tags, status = 'active', version = tools.version + 1, updated_at = "
      "excluded.updated_at, deleted_at = NULL "
      "WHERE tools.name IS DISTINCT FROM excluded.name OR tools.description IS DISTINCT FROM "
      "excluded.description OR tools.tool_type IS DISTINCT FROM excluded.tool_type OR "
      "tools.source IS DISTINCT FROM excluded.source OR tools.connector_id IS DISTINCT FROM "
      "excluded.connector_id OR tools.definition IS DISTINCT FROM excluded.definition OR "
      "tools.tags IS DISTINCT FROM excluded.tags OR tools.deleted_at IS NOT NULL OR "
      "tools.status IS DISTINCT FROM 'active'",
      "ssssssssssI", id, d->string_id, user_id, d->name, d->description ? d->description : "",
      d->tool_type, d->source, d->connector_id, def, tags, (long long)now_ms);
  if (rc == 0 && changes)
    *what = old ? 2 : 1;
out:
  free(def);
  free(tags);
  json_decref(old);
  return rc;
}

static void count(tg_tools_stats *st, int what)
{
  if (!st)
    return;
  if (what == 1)
    st->inserted++;
  else if (what == 2)
    st->updated++;
  else
    st->unchanged++;
}

int tg_store_tools_upsert(tg_db *db, const char *user_id, const tg_tool_def *def, int64_t now_ms,
                          tg_tools_stats *st)
{
  int what = 0;
  int rc = upsert_row(db, user_id, def, now_ms, &what);
  if (rc == 0)
    count(st, what);
  return rc;
}

static int soft_delete(tg_db *db, const char *user_id, const char *tool_id, int64_t now_ms,
                       int *changes)
{
  return tg_db_exec(db, changes,
                    "UPDATE tools SET deleted_at = ?1, updated_at = ?1, status = 'deleted', "
                    "version = version + 1 WHERE tool_id = ?2 AND user_id = ?3 AND deleted_at IS "
                    "NULL",
                    "Iss", (long long)now_ms, tool_id, user_id);
}

int tg_store_tools_sync(tg_db *db, const char *user_id, const char *prefix, const tg_tool_def *defs,
                        size_t n, int64_t now_ms, tg_tools_stats *st)
{
  tg_map *named = tg_map_new(0, NULL);
  json_t *live = NULL, *r;
  size_t i;
  int rc;
  if (!named)
    return TG_ENOMEM;
  if ((rc = tg_db_begin(db, 1)) != 0)
    goto out;
  for (i = 0; i < n && rc == 0; i++) {
    int what = 0;
    if ((rc = upsert_row(db, user_id, &defs[i], now_ms, &what)) == 0) {
      count(st, what);
      rc = tg_map_puts(named, defs[i].string_id, (void *)&defs[i], 1);
    }
  }
  if (rc == 0)
    live = tg_db_query(db, &rc,
                       "SELECT tool_id, string_id FROM tools WHERE user_id = ?1 AND deleted_at IS "
                       "NULL AND substr(string_id, 1, ?2) = ?3",
                       "sIs", user_id, (long long)strlen(prefix), prefix);
  json_array_foreach(live, i, r)
  {
    int changes = 0;
    if (rc != 0)
      break;
    if (tg_map_gets(named, json_string_value(json_object_get(r, "string_id"))))
      continue;
    rc = soft_delete(db, user_id, json_string_value(json_object_get(r, "tool_id")), now_ms,
                     &changes);
    if (st)
      st->deleted += changes;
  }
  rc = tg_db_end(db, rc);
out:
  json_decref(live);
  tg_map_free(named);
  return rc;
}

int tg_store_tools_delete_connector(tg_db *db, const char *user_id, const char *connector_id,
                                    int64_t now_ms, int *n)
{
  return tg_db_exec(db, n,
                    "UPDATE tools SET deleted_at = ?1, updated_at = ?1, status = 'deleted', "
                    "version = version + 1 WHERE user_id = ?2 AND connector_id = ?3 AND "
                    "deleted_at IS NULL",
                    "Iss", (long long)now_ms, user_id, connector_id);
}

int tg_store_tools_delete(tg_db *db, const char *user_id, const char *tool_id, int64_t now_ms)
{
  int changes = 0;
  int rc = soft_delete(db, user_id, tool_id, now_ms, &changes);
  return rc ? rc : changes ? 0 : TG_ENOTFOUND;
}

/* ---------------------------------------------------------------- reads */

/* clang-format off */
#define CATALOG_SQL(D)                                                                             \
  "SELECT " CATALOG_COLS(D)                                                                        \
  "WHERE user_id = ?1 AND deleted_at IS NULL "                                                     \
  "UNION ALL SELECT " CATALOG_COLS(D)                                                              \
  "WHERE user_id = ?2 AND ?2 <> ?1 AND deleted_at IS NULL ORDER BY source, name"
/* clang-format on */

json_t *tg_store_tools_catalog(tg_db *db, int *err, const char *user_id)
{
  return tg_db_query(db, err, TG_SQL_OF(db, CATALOG_SQL), "ss", TG_TOOLS_SYSTEM_USER, user_id);
}

/* clang-format off */
#define GET_SQL(D)                                                                                 \
  "SELECT " CATALOG_COLS(D)                                                                        \
  "WHERE tool_id = ? AND user_id = ? AND deleted_at IS NULL"
/* clang-format on */

json_t *tg_store_tools_get(tg_db *db, int *err, const char *user_id, const char *tool_id)
{
  return tg_db_query_one(db, err, TG_SQL_OF(db, GET_SQL), "ss", tool_id, user_id);
}

json_t *tg_store_tools_runnable(tg_db *db, int *err, const char *user_id)
{
  return tg_db_query(db, err,
                     "SELECT tool_id, name, description, tool_type, source, connector_id, "
                     "definition AS definition_json FROM tools WHERE (user_id = ?1 OR "
                     "user_id = ?2) AND deleted_at IS NULL ORDER BY user_id = ?1 DESC, name",
                     "ss", TG_TOOLS_SYSTEM_USER, user_id);
}

json_t *tg_tool_def_entry(const char *tool_id, const tg_tool_def *d)
{
  const json_t *schema = json_object_get(d->definition, "input_schema");
  json_t *tags = d->tags ? json_deep_copy(d->tags) : json_array();
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:s?, s:i, s:o}", "tool_id", tool_id,
                   "name", d->name, "description", d->description ? d->description : "", "type",
                   d->tool_type, "source",
                   strcmp(d->source, "builtin") == 0 ? "builtin" : "connector", "origin", d->source,
                   "input_schema", schema ? schema : json_null(), "connector_id", d->connector_id,
                   "version", 1, "tags", tags);
}
