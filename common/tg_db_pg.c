/* placeholder, replaced by the libpq backend */
#include "tg_db_backend.h"
#include "tg_err.h"
#include "tg_log.h"

int tg_db_pg_open(tg_db **out, const char *uri, int max_version)
{
  (void)uri;
  (void)max_version;
  *out = NULL;
  tg_error("db_open_failed", "{s:s}", "message", "PostgreSQL support is not built in");
  return TG_EINVAL;
}
