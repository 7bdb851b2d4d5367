/*
 * gw_credits: GET /api/credits (the caller's balance and recent credit_ledger rows).
 *
 * Credits move only through tg_store_credits, which writes the ledger row that explains each
 * move (admission debit, refund, first-sight grant) with it, so the balance always equals the
 * sum of the user's ledger deltas. GET ?limit=N (1..200, default 50) returns the newest rows
 * first.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>

#define LEDGER_DEFAULT 50
#define LEDGER_MAX 200

typedef struct credits_ctx {
  gw_job j;
  int limit;
} credits_ctx;
GW_JOB_FIRST(credits_ctx);

static int credits_work(tg_db *db, void *arg)
{
  credits_ctx *c = arg;
  json_t *ledger;
  int64_t credits;
  int rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  if (rc != 0 || (rc = tg_store_credits_balance(db, c->j.user, &credits)) != 0)
    return rc;
  if (!(ledger = tg_store_credits_ledger(db, &rc, c->j.user, c->limit)))
    return rc;
  c->j.status = 200;
  c->j.body = json_pack("{s:I, s:I, s:o}", "credits", (json_int_t)credits, "run_cost",
                        (json_int_t)c->j.app->cfg.run_cost, "ledger", ledger);
  return c->j.body ? 0 : TG_ENOMEM;
}

void gw_credits_get(gw_app *app, tg_httpd_req *req, const char *user)
{
  const char *lim = tg_httpd_query(req, "limit");
  credits_ctx *c;
  char *end = NULL;
  long limit = LEDGER_DEFAULT;
  if (lim) {
    limit = strtol(lim, &end, 10);
    if (!*lim || *end || limit < 1 || limit > LEDGER_MAX) {
      gw_respond_error(req, 400, "invalid_request", "limit must be an integer from 1 to 200.", NULL,
                       NULL);
      return;
    }
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c)))
    return;
  c->limit = (int)limit;
  if (gw_submit(&c->j, credits_work, gw_job_done_free, c) != 0)
    free(c);
}
