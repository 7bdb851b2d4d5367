/*
 * gw_credentials: POST/GET/DELETE /api/credentials, a user's named secrets for API nodes
 * (README "Credentials").
 *
 * POST validates on the loop (tg_store_credentials_parse: 422 invalid_credential listing every
 * field at once), refuses with 503 secret_key_missing when no TOOLGATE_SECRET_KEY is configured
 * (secrets are never stored in clear), then creates (201) or replaces (200: the same name again
 * replaces the credential, keeping its id and created_at) in one job. Answers carry the public
 * view only, {name, type, hosts, meta, created_at, updated_at}: a secret value is never
 * returned or logged. Another user's credential is simply not found (404).
 */
#include "gw.h"

#include "tg_clock.h"
#include "tg_store_credentials.h"

#include <stdlib.h>
#include <string.h>

typedef struct cred_ctx {
  gw_job j;
  tg_credential_input in;                /* POST */
  char name[TG_CREDENTIAL_NAME_MAX + 1]; /* GET one, DELETE */
} cred_ctx;
GW_JOB_FIRST(cred_ctx);

static void cred_done(void *ctx, int status)
{
  cred_ctx *c = ctx;
  tg_credential_input_free(&c->in);
  if (status == 0 && c->j.status == 204) {
    tg_httpd_respond(c->j.req, 204, NULL, "", 0);
    c->j.req = NULL;
  }
  gw_job_done_free(c, status);
}

static int put_work(tg_db *db, void *arg)
{
  cred_ctx *c = arg;
  int created = 0;
  int rc = tg_store_credits_ensure_user(db, c->j.user, c->j.app->cfg.default_credits);
  if (rc == 0)
    rc = tg_store_credentials_put(db, c->j.app->crypto, c->j.user, &c->in, tg_now_ms(), &c->j.body,
                                  &created);
  if (rc == 0)
    c->j.status = created ? 201 : 200;
  return rc;
}

void gw_credential_put(gw_app *app, tg_httpd_req *req, const char *user)
{
  json_t *body = gw_parse_body(req), *errors;
  tg_credential_input in;
  cred_ctx *c;
  if (!body)
    return;
  errors = tg_store_credentials_parse(body, &in);
  json_decref(body);
  if (errors) {
    gw_respond_error(req, 422, "invalid_credential", "The credential is invalid.",
                     json_pack("{s:o}", "errors", errors), NULL);
    return;
  }
  if (!app->crypto) {
    tg_credential_input_free(&in);
    gw_respond_error(req, 503, "secret_key_missing",
                     "The server has no TOOLGATE_SECRET_KEY to store credentials encrypted; ask "
                     "the operator to configure one.",
                     NULL, NULL);
    return;
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c))) {
    tg_credential_input_free(&in);
    return;
  }
  c->in = in;
  if (gw_submit(&c->j, put_work, cred_done, c) != 0) {
    tg_credential_input_free(&c->in);
    free(c);
  }
}

static int list_work(tg_db *db, void *arg)
{
  cred_ctx *c = arg;
  int rc = 0;
  json_t *rows = tg_store_credentials_list(db, &rc, c->j.user);
  if (!rows)
    return rc;
  c->j.status = 200;
  c->j.body = json_pack("{s:o}", "credentials", rows);
  return c->j.body ? 0 : TG_ENOMEM;
}

void gw_credential_list(gw_app *app, tg_httpd_req *req, const char *user)
{
  gw_job_start(app, req, user, sizeof(cred_ctx), list_work, cred_done);
}

static int get_work(tg_db *db, void *arg)
{
  cred_ctx *c = arg;
  int rc = 0;
  if ((c->j.body = tg_store_credentials_get(db, &rc, c->j.user, c->name)) != NULL)
    c->j.status = 200;
  else if (rc == TG_ENOTFOUND)
    gw_job_fail(&c->j, 404, "not_found", "No credential of that name.");
  return c->j.status ? 0 : rc;
}

static int delete_work(tg_db *db, void *arg)
{
  cred_ctx *c = arg;
  int rc = tg_store_credentials_delete(db, c->j.user, c->name);
  if (rc == 0)
    c->j.status = 204;
  else if (rc == TG_ENOTFOUND)
    gw_job_fail(&c->j, 404, "not_found", "No credential of that name.");
  return c->j.status ? 0 : rc;
}

void gw_credential_by_name(gw_app *app, tg_httpd_req *req, const char *user, const char *name)
{
  int del = strcmp(tg_httpd_method(req), "DELETE") == 0;
  cred_ctx *c;
  if (!tg_credential_name_ok(name)) {
    gw_respond_error(req, 404, "not_found", "No credential of that name.", NULL, NULL);
    return;
  }
  if (!(c = gw_job_new(app, req, user, sizeof *c)))
    return;
  snprintf(c->name, sizeof c->name, "%s", name);
  if (gw_submit(&c->j, del ? delete_work : get_work, cred_done, c) != 0)
    free(c);
}
