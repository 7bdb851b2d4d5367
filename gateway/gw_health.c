/*
 * gw_health: liveness and readiness.
 *
 * /healthz answers from the loop without touching anything. /readyz runs a trivial job on
 * the database pool: it is ready when a connection reads the schema version (PRAGMA
 * user_version) and it is at least 1 (migrations applied); anything else, including a saturated
 * or closing pool, is 503 (out of memory for the request context: 500, as on every route).
 */
#include "gw.h"

#include <stdlib.h>

typedef struct ready_ctx {
  gw_job j;
  int version;
} ready_ctx;
GW_JOB_FIRST(ready_ctx);

void gw_healthz(gw_app *app, tg_httpd_req *req)
{
  (void)app;
  tg_httpd_respond_json(req, 200, NULL, json_pack("{s:s}", "status", "ok"));
}

static int ready_work(tg_db *db, void *arg)
{
  ready_ctx *c = arg;
  c->version = tg_db_schema_version(db); /* reads the database header: -1 when it cannot */
  return 0;
}

static void ready_done(void *arg, int status)
{
  ready_ctx *c = arg;
  if (status == 0 && c->version >= 1) {
    c->j.status = 200;
    c->j.body = json_pack("{s:s, s:i}", "status", "ready", "schema_version", c->version);
  } else {
    gw_job_fail(&c->j, 503, "not_ready", "The database is not ready.");
    c->j.body = json_pack("{s:i}", "schema_version", c->version);
  }
  gw_job_reply(&c->j, NULL);
  free(c);
}

void gw_readyz(gw_app *app, tg_httpd_req *req)
{
  ready_ctx *c = gw_job_new(app, req, NULL, sizeof *c);
  if (!c)
    return; /* answered 500 */
  c->version = -1;
  if (gw_submit(&c->j, ready_work, ready_done, c) != 0)
    free(c);
}
