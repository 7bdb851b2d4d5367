/*
 * tg_tool_name: the catalog lookup of an Agent's tool names (contract in tg_tool_name.h). A
 * tool_id match anywhere in the list wins over a name match earlier in it, so a tool stays
 * reachable by its id whatever other tools are called.
 */
#include "tg_tool_name.h"

#include <ctype.h>
#include <string.h>

static int fold(unsigned char c)
{
  return c == ' ' ? '_' : tolower(c);
}

int tg_tool_name_eq(const char *a, const char *b)
{
  for (; *a && *b; a++, b++)
    if (fold((unsigned char)*a) != fold((unsigned char)*b))
      return 0;
  return *a == *b;
}

const json_t *tg_tool_lookup(const json_t *rows, const char *name)
{
  size_t i;
  const json_t *row;
  if (!name)
    return NULL;
  json_array_foreach(rows, i, row)
  {
    const char *id = json_string_value(json_object_get(row, "tool_id"));
    if (id && strcmp(id, name) == 0)
      return row;
  }
  json_array_foreach(rows, i, row)
  {
    const char *n = json_string_value(json_object_get(row, "name"));
    if (n && tg_tool_name_eq(n, name))
      return row;
  }
  return NULL;
}
