/*
 * gw_job: the life of a request handled through the database pool: a zeroed context that starts
 * with a gw_job (gw_job_new), queued as a tg_dbq job (gw_submit, gw_job_start), its outcome set
 * by the work function (gw_job_fail, gw_job_fail_err) and answered once on the loop
 * (gw_job_reply, gw_job_done_free).
 *
 * Invariants: a request is answered exactly once (gw_job_reply clears j->req and takes j->body);
 * a job whose queue refused it is answered 503 at once and its done callback never runs; an
 * undecided outcome (status 0) is answered 500 rather than left hanging.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>

int gw_job_fail(gw_job *j, int status, const char *code, const char *message)
{
  j->status = status;
  j->code = code;
  j->message = message;
  return status;
}

void gw_job_fail_err(gw_job *j, int err)
{
  if (err == TG_EBUSY || err == TG_ETIMEDOUT) /* busy, or a statement timeout */
    gw_job_fail(j, 503, "database_busy", "The database is busy; try again.");
  else if (err == TG_EIO) /* the connection to PostgreSQL was lost (restart, network) */
    gw_job_fail(j, 503, "database_unavailable", "The database cannot be reached; try again.");
  else if (err == TG_ECANCELED)
    gw_job_fail(j, 503, "shutting_down", "The gateway is shutting down.");
  else
    gw_job_fail(j, 500, "internal", "An internal error occurred.");
}

static const char *const retry_soon[] = {"Retry-After: 1", NULL};

void gw_job_reply(gw_job *j, const char *const *headers)
{
  tg_httpd_req *r = j->req;
  json_t *body = j->body;
  j->req = NULL;
  j->body = NULL;
  if (!r) {
    json_decref(body);
    return;
  }
  if (j->status == 0)
    gw_job_fail(j, 500, "internal", "The request ended without an answer.");
  if (j->status == 503 && !headers)
    headers = retry_soon; /* every 503 says when to come back (RFC 9110 section 10.2.3) */
  if (j->status >= 400) {
    gw_respond_error(r, j->status, j->code ? j->code : "internal",
                     j->message ? j->message : "Error.", body, headers);
    return;
  }
  if (!body)
    body = json_object();
  tg_httpd_respond_json(r, j->status, headers, body);
}

int gw_submit(gw_job *j, tg_dbq_work_fn work, tg_dbq_done_fn done, void *arg)
{
  int rc = j->app->stopping ? TG_ECANCELED : tg_dbq_submit(j->app->dbq, work, done, arg);
  if (rc != 0) {
    gw_job_fail_err(j, rc == TG_ECANCELED ? TG_ECANCELED : TG_EBUSY);
    gw_job_reply(j, NULL);
  }
  return rc;
}

void *gw_job_new(gw_app *app, tg_httpd_req *req, const char *user, size_t ctx_size)
{
  gw_job *j = ctx_size >= sizeof *j ? calloc(1, ctx_size) : NULL;
  if (!j) {
    tg_httpd_respond_error(req, 500, "internal", "Out of memory.");
    return NULL;
  }
  j->app = app;
  j->req = req;
  if (user)
    snprintf(j->user, sizeof j->user, "%s", user);
  return j;
}

void gw_job_done_free(void *ctx, int status)
{
  gw_job *j = ctx;
  if (status != 0) {
    json_decref(j->body);
    j->body = NULL;
    gw_job_fail_err(j, status);
  }
  gw_job_reply(j, NULL);
  free(j);
}

int gw_job_start(gw_app *app, tg_httpd_req *req, const char *user, size_t ctx_size,
                 tg_dbq_work_fn work, tg_dbq_done_fn done)
{
  gw_job *j = gw_job_new(app, req, user, ctx_size);
  int rc;
  if (!j)
    return TG_ENOMEM;
  if ((rc = gw_submit(j, work, done, j)) != 0)
    free(j);
  return rc;
}
