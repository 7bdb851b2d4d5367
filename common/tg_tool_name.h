/*
 * tg_tool_name: how a name in an Agent's config.tools finds its tool in the user's catalog
 * (README "Agent nodes"), the one rule the gateway (write-time warnings) and the worker
 * (resolution, tool_not_found) share: the catalog's tool_id exactly, else the catalog's name
 * case-insensitively (ASCII), where a space and an underscore are the same character, so the
 * builder's "Code Execution" is the built-in code_execution. Pure.
 */
#ifndef TG_TOOL_NAME_H
#define TG_TOOL_NAME_H

#include <jansson.h>

/* 1 when a and b are the same tool name by the rule above (neither may be NULL). */
int tg_tool_name_eq(const char *a, const char *b);

/* The first entry of rows (an array of objects with string members tool_id and name, such as
 * tg_store_tools_catalog returns) that name designates: by tool_id first, then by name. Borrowed
 * from rows; NULL when none. */
const json_t *tg_tool_lookup(const json_t *rows, const char *name);

#endif
