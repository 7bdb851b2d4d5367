/*
 * tg_db_uri: the loggable form of a TOOLGATE_DB value (see tg_db_uri.h).
 */
#include "tg_db_uri.h"

#include "tg_db.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

void tg_db_describe(const char *path, char *out, size_t outlen)
{
  char *err = NULL;
  const char *host = "", *port = "", *db = "";
  PQconninfoOption *o, *opts;
  if (!outlen)
    return;
  if (!tg_db_is_pg_uri(path)) {
    snprintf(out, outlen, "%s", path ? path : "");
    return;
  }
  snprintf(out, outlen, "postgresql");
  if (!(opts = PQconninfoParse(path, &err))) {
    PQfreemem(err);
    return;
  }
  for (o = opts; o->keyword; o++) {
    if (!o->val)
      continue;
    if (!strcmp(o->keyword, "host"))
      host = o->val;
    else if (!strcmp(o->keyword, "port"))
      port = o->val;
    else if (!strcmp(o->keyword, "dbname"))
      db = o->val;
  }
  snprintf(out, outlen, "%s:%s/%s", host, port, db);
  PQconninfoFree(opts);
}
