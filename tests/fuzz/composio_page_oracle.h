/*
 * The reference for tg_composio_page (used by tests/fuzz/fuzz_composio_page.c and
 * tests/unit/common/tg_composio_page.c): the same page decoded from a jansson tree (json_loadb,
 * flags 0) with tg_composio_decode_account, the decoder of a single account's GET answer, so
 * the check is that tg_composio's two decoders agree. Returns 0 and fills the arrays (strings
 * borrowed from *tree, which the caller json_decref()s), 1 when the page is not acceptable (the
 * decoder must fail too), or -1 when jansson itself refused the body (the decoder may be more
 * lenient: see the header).
 */
#ifndef COMPOSIO_PAGE_ORACLE_H
#define COMPOSIO_PAGE_ORACLE_H

#include "tg_composio.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* *accts: calloc'd (free it), *n items, *cursor borrowed from *tree. */
static int oracle_page(const char *body, size_t len, json_t **tree, tg_composio_account **accts,
                       size_t *n, const char **cursor)
{
  const json_t *items;
  *accts = NULL;
  *n = 0;
  *cursor = NULL;
  if (!(*tree = json_loadb(body, len, 0, NULL)))
    return -1;
  if (!json_is_object(*tree))
    return 1;
  items = json_object_get(*tree, "items");
  if (!json_is_array(items))
    return 1;
  *cursor = json_string_value(json_object_get(*tree, "next_cursor"));
  *n = json_array_size(items);
  if (*n && !(*accts = calloc(*n, sizeof **accts)))
    abort();
  for (size_t i = 0; i < *n; i++)
    if (tg_composio_decode_account(json_array_get(items, i), &(*accts)[i]))
      return 1;
  return 0;
}

static int same_str(const char *a, const char *b)
{
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_account(const tg_composio_account *a, const tg_composio_account *b)
{
  return same_str(a->id, b->id) && same_str(a->status, b->status) &&
         same_str(a->status_reason, b->status_reason) && a->is_disabled == b->is_disabled &&
         a->auth_refresh_required == b->auth_refresh_required &&
         same_str(a->toolkit_slug, b->toolkit_slug) &&
         same_str(a->auth_config_id, b->auth_config_id) && same_str(a->user_id, b->user_id);
}

#endif
