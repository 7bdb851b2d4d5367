/*
 * gw_page: cursor paging of the list routes (GET /api/runs, GET /api/reviews; README "Admission
 * and the run API"). Lists are newest first by (created_at, id); ?limit= is 1..GW_PAGE_MAX
 * (default GW_PAGE_DEFAULT) and ?cursor= is the "<created_at>:<id>" a previous page returned as
 * next_cursor: the next page continues strictly after that row. A list reads limit + 1 rows, so
 * the extra row tells whether another page follows without a count.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gw_page_parse(tg_httpd_req *req, gw_page *p)
{
  const char *lim = tg_httpd_query(req, "limit"), *cur = tg_httpd_query(req, "cursor");
  char *end = NULL;
  memset(p, 0, sizeof *p);
  p->limit = GW_PAGE_DEFAULT;
  if (lim) {
    long n = strtol(lim, &end, 10);
    if (!*lim || *end || n < 1 || n > GW_PAGE_MAX)
      return "limit must be an integer from 1 to 200.";
    p->limit = (int)n;
  }
  if (cur) {
    long long at = strtoll(cur, &end, 10);
    if (end == cur || *end != ':' || at < 0 || !end[1] || strlen(end + 1) > GW_USER_MAX)
      return "cursor is not one this API returned.";
    p->after_at = at;
    snprintf(p->after_id, sizeof p->after_id, "%s", end + 1);
  }
  return NULL;
}

json_t *gw_page_cursor(json_t *rows, int limit)
{
  json_t *last;
  char cur[GW_USER_MAX + 32];
  if (json_array_size(rows) <= (size_t)limit)
    return json_null();
  last = json_array_get(rows, (size_t)limit - 1);
  snprintf(cur, sizeof cur, "%lld:%s",
           (long long)json_integer_value(json_object_get(last, "created_at")),
           json_string_value(json_object_get(last, "id")));
  json_array_remove(rows, (size_t)limit);
  return json_string(cur);
}

int gw_page_answer(gw_job *j, const char *key, json_t *rows, int limit)
{
  json_t *next = gw_page_cursor(rows, limit);
  j->status = 200;
  j->body = json_pack("{s:o, s:o}", key, rows, "next_cursor", next);
  return j->body ? 0 : TG_ENOMEM;
}

const char *gw_name_in(const char *s, const char *const names[])
{
  for (size_t i = 0; s && names[i]; i++)
    if (strcmp(s, names[i]) == 0)
      return names[i];
  return NULL;
}
