/*
 * gw_util: what every gateway handler shares: the job outcome and its reply, error bodies,
 * identity (HS256 bearer tokens via tg_jwt; X-User-Id only when configured), JSON request
 * bodies, queueing a database job, first sight of a user, and the waiter list that lets shutdown
 * wake requests sleeping on timers.
 *
 * Invariants: every error body is {"error": snake_case, "message": sentence, ...details}
 * (DESIGN.md section 3); a request is answered exactly once (gw_job_reply clears j->req).
 */
#include "gw.h"
#include "tg_db_stmt.h"

#include <pthread.h>

#include "tg_jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void gw_waiter_add(gw_app *app, gw_waiter *w)
{
  w->prev = NULL;
  w->next = app->waiters;
  if (app->waiters)
    app->waiters->prev = w;
  app->waiters = w;
}

void gw_waiter_remove(gw_app *app, gw_waiter *w)
{
  if (w->prev)
    w->prev->next = w->next;
  else if (app->waiters == w)
    app->waiters = w->next;
  if (w->next)
    w->next->prev = w->prev;
  w->next = w->prev = NULL;
}

int gw_job_fail(gw_job *j, int status, const char *code, const char *message)
{
  j->status = status;
  j->code = code;
  j->message = message;
  return status;
}

void gw_job_fail_err(gw_job *j, int err)
{
  if (err == TG_EBUSY)
    gw_job_fail(j, 503, "database_busy", "The database is busy; try again.");
  else if (err == TG_ECANCELED)
    gw_job_fail(j, 503, "shutting_down", "The gateway is shutting down.");
  else
    gw_job_fail(j, 500, "internal", "An internal error occurred.");
}

void gw_respond_error(tg_httpd_req *r, int status, const char *code, const char *message,
                      json_t *details, const char *const *headers)
{
  json_t *body = json_pack("{s:s, s:s}", "error", code, "message", message);
  if (body && details)
    json_object_update_missing(body, details); /* details never replace error/message */
  json_decref(details);
  if (!body) {
    tg_httpd_respond_error(r, 500, "internal", "Out of memory.");
    return;
  }
  tg_httpd_respond_json(r, status, headers, body);
}

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
  if (j->status >= 400) {
    gw_respond_error(r, j->status, j->code ? j->code : "internal",
                     j->message ? j->message : "Error.", body, headers);
    return;
  }
  if (!body)
    body = json_object();
  tg_httpd_respond_json(r, j->status, headers, body);
}

static int printable(const char *s, size_t *len)
{
  size_t n = 0;
  for (; s[n]; n++)
    if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
      return 0;
  *len = n;
  return 1;
}

/* 401 with the reason; WWW-Authenticate names the scheme (RFC 6750 section 3). */
static int unauthorized(tg_httpd_req *req, const char *msg)
{
  static const char *const hdrs[] = {"WWW-Authenticate: Bearer realm=\"toolgate\"", NULL};
  gw_respond_error(req, 401, "unauthorized", msg, NULL, hdrs);
  return TG_EAUTH;
}

int gw_identify(gw_app *app, tg_httpd_req *req, char *user)
{
  const char *auth = tg_httpd_header(req, "Authorization");
  const char *secret = tg_secret_reveal(&app->cfg.jwt_secret);
  const char *h;
  size_t n = 0;

  /* A bearer token, when present, decides: a bad token is never rescued by X-User-Id. */
  if (auth) {
    const char *why = NULL;
    char msg[160];
    int rc;
    if (strncasecmp(auth, "Bearer ", 7) != 0)
      return unauthorized(req, "Authorization must be \"Bearer <token>\".");
    if (!secret)
      return unauthorized(req, "Bearer tokens are not accepted: TOOLGATE_JWT_SECRET is not set.");
    auth += 7;
    while (*auth == ' ')
      auth++;
    rc = tg_jwt_verify_hs256(auth, strlen(auth), (const unsigned char *)secret, strlen(secret),
                             tg_now_ms() / 1000, user, GW_USER_MAX + 1, &why);
    if (rc == 0)
      return 0;
    snprintf(msg, sizeof msg, "Invalid bearer token: %s.", why ? why : "rejected");
    tg_debug("auth_rejected", "{s:s}", "reason", why ? why : "rejected");
    return unauthorized(req, msg);
  }
  if (!app->cfg.trust_user_header)
    return unauthorized(req, secret ? "Missing Authorization: Bearer <token>."
                                    : "No accepted identity: set TOOLGATE_JWT_SECRET (bearer "
                                      "tokens) or TOOLGATE_TRUST_USER_HEADER=1.");
  h = tg_httpd_header(req, "X-User-Id");
  if (!h)
    return unauthorized(req, "Missing Authorization: Bearer <token> or X-User-Id header.");
  if (!printable(h, &n) || n == 0 || n > GW_USER_MAX)
    return unauthorized(req, "X-User-Id must be 1 to 128 printable ASCII characters.");
  memcpy(user, h, n + 1);
  return 0;
}

json_t *gw_parse_body(tg_httpd_req *req)
{
  size_t len = 0;
  const char *b = tg_httpd_body(req, &len);
  json_error_t e;
  json_t *v = json_loadb(b, len, JSON_REJECT_DUPLICATES, &e);
  if (!v || !json_is_object(v)) {
    char msg[200];
    snprintf(msg, sizeof msg, "The body must be a JSON object%s%s.", v ? "" : ": ",
             v ? "" : e.text);
    json_decref(v);
    /* msg lives on the stack: build the body here rather than through static strings. */
    gw_respond_error(req, 400, "invalid_json", msg, NULL, NULL);
    return NULL;
  }
  return v;
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

int gw_auth_config_upsert_tx(tg_db *db, const tg_provider *p, int64_t now)
{
  return tg_db_exec(db, NULL,
                    "INSERT INTO auth_configs (id, provider, toolkit_slug, display_name, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO "
                    "UPDATE SET provider = excluded.provider, toolkit_slug = "
                    "excluded.toolkit_slug, display_name = excluded.display_name, updated_at = "
                    "excluded.updated_at",
                    "ssssII", p->auth_config_id, p->provider, p->toolkit_slug, p->display_name,
                    (long long)now, (long long)now);
}

int gw_ensure_user_tx(tg_db *db, const char *user, int64_t default_credits)
{
  int rc, changes = 0;
  int64_t now = tg_now_ms();
  rc = tg_db_exec(db, &changes,
                  "INSERT OR IGNORE INTO users (id, credits, created_at) VALUES (?, ?, ?)", "sII",
                  user, (long long)default_credits, (long long)now);
  if (rc == 0 && changes == 1) {
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO credit_ledger (user_id, run_id, delta, reason, created_at) "
                    "VALUES (?, NULL, ?, 'grant', ?)",
                    "sII", user, (long long)default_credits, (long long)now);
    if (rc == 0)
      tg_info("user_created", "{s:s, s:I}", "user_id", user, "credits",
              (json_int_t)default_credits);
  }
  return rc;
}

int gw_ensure_user(tg_db *db, const char *user, int64_t default_credits)
{
  /* Most requests come from known users: a read avoids taking the write lock (one step on a
   * cached statement, no row object). */
  sqlite3_stmt *st = tg_db_prepare(db, "SELECT 1 FROM users WHERE id = ?1");
  int rc;
  if (!st)
    return TG_EDB;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    rc = tg_db_err(db, rc, "ensure user");
  sqlite3_reset(st);
  if (rc == SQLITE_ROW)
    return 0;
  if (rc != SQLITE_DONE)
    return rc;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  rc = gw_ensure_user_tx(db, user, default_credits);
  if (rc == 0)
    rc = tg_db_commit(db);
  if (rc != 0)
    tg_db_rollback(db);
  return rc;
}

static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

void gw_write_lock(void)
{
  pthread_mutex_lock(&write_mu);
}

void gw_write_unlock(void)
{
  pthread_mutex_unlock(&write_mu);
}
