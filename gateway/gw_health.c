/*
 * gw_health: liveness and readiness.
 *
 * /healthz answers from the loop without touching anything. /readyz runs a trivial job on
 * the database pool: it is ready when a connection answers and the schema version is at least
 * 1 (migrations applied); anything else, including a saturated or closing pool, is 503.
 */
#include "gw.h"

#include <stdlib.h>

typedef struct ready_ctx {
  gw_job j;
  int version;
} ready_ctx;

void gw_healthz(gw_app *app, tg_httpd_req *req)
{
  (void)app;
  tg_httpd_respond_json(req, 200, NULL, json_pack("{s:s}", "status", "ok"));
}

static int ready_work(tg_db *db, void *arg)
{
  ready_ctx *c = arg;
  int rc;
  json_t *row = tg_db_query_one(db, &rc, "SELECT 1 AS one", "");
  if (!row)
    return rc;
  json_decref(row);
  c->version = tg_db_schema_version(db);
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
  ready_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    tg_httpd_respond_error(req, 503, "not_ready", "Out of memory.");
    return;
  }
  c->j.app = app;
  c->j.req = req;
  c->version = -1;
  if (gw_submit(&c->j, ready_work, ready_done, c) != 0) {
    free(c);
  }
}
