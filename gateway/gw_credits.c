/*
 * gw_credits: GET /api/credits (the caller's balance and recent credit_ledger rows), and the
 * process-wide lock the gateway takes around its own write transactions.
 *
 * Credits move only inside transactions that also write the ledger row that explains the move
 * (admission debit, cancel refund, first-sight grant), so the balance always equals the sum of
 * the user's ledger deltas. GET ?limit=N (1..200, default 50) returns the newest rows first.
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
  json_t *user, *ledger;
  int rc = gw_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  if (rc != 0)
    return rc;
  user = tg_db_query_one(db, &rc, "SELECT credits FROM users WHERE id = ?", "s", c->j.user);
  if (!user)
    return rc;
  ledger = tg_db_query(db, &rc,
                       "SELECT id, run_id, delta, reason, created_at FROM credit_ledger "
                       "WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                       "si", c->j.user, c->limit);
  if (!ledger) {
    json_decref(user);
    return rc;
  }
  c->j.status = 200;
  c->j.body = json_pack("{s:O, s:I, s:o}", "credits", json_object_get(user, "credits"), "run_cost",
                        (json_int_t)c->j.app->cfg.run_cost, "ledger", ledger);
  json_decref(user);
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
