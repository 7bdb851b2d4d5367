/*
 * tg_store_tools: the one owner of the tools table (schema/007_connectors_tools.sql), the tool
 * catalog (README "Tool catalog").
 *
 * A tool is identified by its string id (what it is: "builtin:calculator",
 * "api:<connector id>:<operation>", "mcp:<connector id>:<tool name>",
 * "composio:<provider>:<tool name>", "custom:<name>") and by the user it belongs to
 * ('__system__' for built-ins). Its tool_id is the UUIDv5 (RFC 9562 section 5.5) of the name
 * "<user id>\n<string id>" in the toolgate tools namespace TG_TOOLS_NAMESPACE, so two users who
 * sync the same source get their own rows and a re-sync finds the same row again.
 *
 * Rules kept here once:
 *   - An upsert of a definition equal to the stored live row (name, description, type, source,
 *     connector id, canonical definition JSON, tags) writes nothing: no version, no updated_at.
 *     A changed one updates the row with version + 1 (a soft-deleted row comes back the same
 *     way); a new one is inserted with version 1.
 *   - Deleting is soft: deleted_at and status 'deleted', version + 1.
 *   - The canonical definition is the compact JSON with sorted keys.
 *
 * Every function runs on the caller's connection (a tg_dbq job) and opens no transaction unless
 * it says so. Strings are borrowed for the call; times are ms since the epoch; errors are TG_E*.
 */
#ifndef TG_STORE_TOOLS_H
#define TG_STORE_TOOLS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_db tg_db;

#define TG_TOOLS_SYSTEM_USER "__system__"
/* The namespace of tool ids: UUIDv5(NameSpace_URL, "urn:toolgate:tools"). */
#define TG_TOOLS_NAMESPACE "44c7e648-48f0-525d-8909-33bd00dfba0d"
#define TG_TOOL_ID_LEN 36 /* "xxxxxxxx-xxxx-5xxx-yxxx-xxxxxxxxxxxx" */
#define TG_TOOL_NAME_MAX 128

/* A tool to write (every member borrowed). */
typedef struct tg_tool_def {
  const char *string_id;    /* see above; at most 512 bytes */
  const char *name;         /* the tool's name as an agent calls it */
  const char *description;  /* NULL = "" */
  const char *tool_type;    /* "local" | "mcp" | "api" | "crewai" | "custom" */
  const char *source;       /* "builtin" | "connector" | "composio" | "user" */
  const char *connector_id; /* the connector it came from, or NULL */
  const json_t *definition; /* object: input_schema and whatever runs the tool */
  const json_t *tags;       /* array of strings, or NULL = [] */
} tg_tool_def;

/* What an upsert or a sync did. */
typedef struct tg_tools_stats {
  int inserted, updated, unchanged, deleted;
} tg_tools_stats;

/*
 * The UUIDv5 of "<user_id>\n<string_id>" in TG_TOOLS_NAMESPACE, lowercase with hyphens, into
 * out (TG_TOOL_ID_LEN + 1 bytes). Pure. Returns 0, or TG_EINVAL (a NULL string), TG_ENOMEM.
 */
int tg_tool_id(const char *user_id, const char *string_id, char *out);

/*
 * Upserts def for user_id as the rules above say; st (may be NULL) counts what happened.
 * Errors: TG_EINVAL (a missing member, a definition that is not an object), TG_EDB, TG_EBUSY,
 * TG_ENOMEM.
 */
int tg_store_tools_upsert(tg_db *db, const char *user_id, const tg_tool_def *def, int64_t now_ms,
                          tg_tools_stats *st);

/*
 * Makes the user's live tools whose string id starts with prefix exactly defs[0..n): each is
 * upserted, and the live ones under prefix that defs does not name are soft-deleted (n == 0
 * deletes them all). One IMMEDIATE transaction. Errors as tg_store_tools_upsert.
 */
int tg_store_tools_sync(tg_db *db, const char *user_id, const char *prefix, const tg_tool_def *defs,
                        size_t n, int64_t now_ms, tg_tools_stats *st);

/* Soft-deletes the user's live tools that came from connector_id (synced or created from it).
 * *n (may be NULL) gets how many. */
int tg_store_tools_delete_connector(tg_db *db, const char *user_id, const char *connector_id,
                                    int64_t now_ms, int *n);

/* Soft-deletes the user's live tool tool_id: 0, TG_ENOTFOUND (none of the user's), or a
 * database error. Built-ins belong to '__system__' and are never the caller's. */
int tg_store_tools_delete(tg_db *db, const char *user_id, const char *tool_id, int64_t now_ms);

/*
 * The catalog of user_id: the live built-ins then the user's live tools, by name: a new array
 * of {tool_id, name, description, type, source ("builtin" | "connector"), origin (the stored
 * source), input_schema, connector_id?, version, tags}, or NULL with *err set.
 */
json_t *tg_store_tools_catalog(tg_db *db, int *err, const char *user_id);

/* One live tool of user_id in the catalog shape: a new object, or NULL with *err
 * (TG_ENOTFOUND when the user has no live tool tool_id). */
json_t *tg_store_tools_get(tg_db *db, int *err, const char *user_id, const char *tool_id);

/*
 * What an Agent can run for user_id: the live built-ins, then the user's live tools by name: a
 * new array of {tool_id, name, description, tool_type, source (as stored), connector_id (or
 * null), definition (object)}, or NULL with *err set.
 */
json_t *tg_store_tools_runnable(tg_db *db, int *err, const char *user_id);

/* The catalog entry of def as tg_store_tools_catalog shapes it, from the definition alone (for
 * the built-ins answered from memory): a new object, or NULL when out of memory. */
json_t *tg_tool_def_entry(const char *tool_id, const tg_tool_def *def);

#endif
