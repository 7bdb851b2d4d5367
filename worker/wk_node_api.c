/*
 * wk_node_api: the API node's executor (wk_node.h; README "API node").
 *
 * One execution: open the user's credentials the config needs (a dbq job: named ones, every
 * {{secrets.x}}, or the one bound to the URL's host), fetch OAuth2 tokens (tg_oauth2_tokens:
 * cached, single-flight), build the request (tg_api_request, the pure part), then per HTTP
 * request: a 'pending' tool_executions row (provider "api", tool "<METHOD> <host><path>",
 * arguments the config with {{secrets.x}} unresolved and redacted), the request on the worker's
 * egress-checked client (w->http_egress), the row's completion. Retries on 429/502/503/504 and on
 * a failed connection honour Retry-After (else exponential backoff from
 * TOOLGATE_RETRY_BASE_MS, at most TOOLGATE_TOOL_RETRIES), only when the request is idempotent
 * (GET HEAD PUT DELETE OPTIONS, or config.idempotency_key, sent as Idempotency-Key) or certainly
 * never left. A 401 with an OAuth2 credential refreshes its token once.
 *
 * Outcome: any final HTTP answer is a SUCCESS whose output is {success, status_code, data,
 * error, elapsed_seconds} (success false for a non-2xx status, so a Conditional can branch on
 * status_code; the row is 'failed' with error_class http_error then); vars are the keys of data
 * when it is an object. FAILED with credential_missing (no credential named or bound to the
 * host, or a {{secrets.x}} naming none), egress_denied (the policy refused the address),
 * timeout, http_error (no answer after the retries) or provider_auth (the token endpoint refused
 * the grant). UNKNOWN when a non-idempotent request may have reached the peer without an answer
 * (connection lost, deadline), or when an earlier attempt left it in flight (prior_status).
 *
 * Secrets: the plaintexts live in c->creds and the built request only; both are wiped when the
 * execution ends. The output and the journaled response have every credential value cut out.
 *
 * Lifetime: an api_call counts in r->pending through its retry timer (closed when the call is
 * released) and each dbq job; it is freed when its last reference goes. x->done is called
 * exactly once; after it the call touches neither x nor its config.
 */
#include "wk.h"
#include "wk_node.h"

#include "tg_api_request.h"
#include "tg_clock.h"
#include "tg_connector.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_redact.h"
#include "tg_store_connectors.h"
#include "tg_store_credentials.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE (8u << 20)  /* bytes of an answer (data keeps at most TG_API_DATA_MAX) */
#define MAX_RETRY_DELAY_MS 60000 /* a longer Retry-After fails the node instead */
#define DEFAULT_TIMEOUT_MS 30000 /* config.timeout_ms absent */

typedef struct api_call {
  wk_node_exec *x; /* NULL once done was called */
  wk_run *r;
  int refs; /* the timer until closed + dbq jobs in flight */
  uv_timer_t timer;
  int timer_closing;
  tg_api_needs needs;
  json_t *config; /* managed form: the config built from the connector (plaintexts), or NULL:
                     x->config */
  json_t *creds;  /* name -> {type, meta, secret, access_token?}: plaintexts */
  char *auth;     /* the credential that authenticates, or NULL */
  char **secrets; /* credential values, NULL-terminated, for redaction */
  tg_oauth2_token_wait *tw;
  char *token_for; /* the credential whose token is being fetched */
  int refreshed;   /* a 401 already refreshed the token once */
  tg_api_request req;
  int built;
  tg_http_transfer *t;
  int64_t exec_id; /* the current request's tool_executions row */
  int tries;
  double elapsed_s;
  wk_node_result res; /* decided, reported once the row is written */
  int64_t retry_ms;   /* >= 0: retry after this delay once the row is written */
} api_call;

/* A dbq job of a call: load credentials, start a row or finish it. */
typedef struct api_job {
  api_call *c;
  const char *user;        /* r->user_id (immutable) */
  const tg_crypto *crypto; /* w->crypto */
  json_t *names;           /* load: borrowed from c->needs */
  const char *host;        /* load: by host, or NULL */
  json_t *creds;           /* load: result */
  char *host_cred;         /* load: the name bound to host */
  json_t *arguments;       /* start: redacted config */
  const char *tool;        /* start */
  const char *node_id;     /* start */
  const char *call_id;     /* start: x->tool_call_id (an Agent's call), or NULL */
  int64_t exec_id;         /* start: result; finish: the row */
  int inserted;            /* start: result */
  tg_tool_result tr;       /* finish */
  char *error;             /* finish: owned copy of tr.error */
  json_t *response;        /* finish: owned */
  int changes;             /* finish: result */
  const char *connector;   /* connector: the id (borrowed from the config) */
  const char *operation;   /* connector: borrowed, may be NULL */
  const json_t *payload;   /* connector: borrowed, may be NULL */
  json_t *config;          /* connector: result */
  char auth_name[80];      /* connector: the credential that authenticates, "" for none */
  char err[256];           /* connector: why it failed */
} api_job;

static void send_request(api_call *c);
static void next_token(api_call *c);

/* ---------------------------------------------------------------- lifetime */

static void wipe_str(char *s)
{
  if (s)
    sodium_memzero(s, strlen(s));
  free(s);
}

static void maybe_free(api_call *c)
{
  if (c->refs > 0)
    return;
  if (c->creds)
    tg_api_wipe_json(c->creds);
  json_decref(c->creds);
  tg_connector_drop(c->config);
  for (size_t i = 0; c->secrets && c->secrets[i]; i++)
    wipe_str(c->secrets[i]);
  free(c->secrets);
  tg_api_request_free(&c->req);
  tg_api_needs_free(&c->needs);
  free(c->auth);
  free(c->token_for);
  json_decref(c->res.output);
  json_decref(c->res.vars);
  free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
  api_call *c = h->data;
  wk_run *r = c->r;
  c->refs--;
  maybe_free(c);
  wk_run_op_done(r); /* may free r: last */
}

/* Stops everything in flight and closes the timer; the call is freed when its jobs end. */
static void release(api_call *c)
{
  if (c->t) {
    tg_http_cancel(c->t);
    c->t = NULL;
  }
  tg_oauth2_token_cancel(c->tw);
  c->tw = NULL;
  if (!c->timer_closing) {
    c->timer_closing = 1;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  }
}

/* Reports res (its output and vars move to the engine) and releases the call. */
static void report(api_call *c, wk_node_result *res)
{
  wk_node_exec *x = c->x;
  c->x = NULL;
  if (x) {
    x->priv = NULL;
    x->done(x, res);
  } else {
    json_decref(res->output);
    json_decref(res->vars);
  }
  res->output = res->vars = NULL;
  release(c);
}

static void report_fail(api_call *c, wk_node_status st, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reports st with cls and a formatted error instead of any result decided before. */
static void report_fail(api_call *c, wk_node_status st, const char *cls, const char *fmt, ...)
{
  va_list ap;
  json_decref(c->res.output);
  json_decref(c->res.vars);
  c->res = (wk_node_result){.status = st, .error_class = cls};
  va_start(ap, fmt);
  vsnprintf(c->res.error, sizeof c->res.error, fmt, ap);
  va_end(ap);
  report(c, &c->res);
}

static api_job *job_new(api_call *c)
{
  api_job *j = calloc(1, sizeof *j);
  if (j) {
    j->c = c;
    j->user = c->r->user_id;
    j->crypto = c->r->w->crypto;
  }
  return j;
}

static void job_free(api_job *j)
{
  if (!j)
    return;
  if (j->creds)
    tg_api_wipe_json(j->creds);
  json_decref(j->creds);
  tg_connector_drop(j->config);
  free(j->host_cred);
  json_decref(j->arguments);
  json_decref(j->response);
  free(j->error);
  free(j);
}

static int submit(api_call *c, api_job *j, tg_dbq_work_fn work, tg_dbq_done_fn done)
{
  int rc = wk_run_submit(c->r, work, done, j);
  if (rc == 0)
    c->refs++;
  return rc;
}

/* Every job's done starts here: 1 when the call is over (the job is freed and so, maybe, is the
 * call: return at once). */
static int job_over(api_job *j)
{
  api_call *c = j->c;
  int ended = wk_run_op_done(c->r);
  c->refs--;
  if (c->x && !ended)
    return 0;
  job_free(j);
  if (c->x) { /* the run ended without canceling the node: nothing more to report to */
    c->x->priv = NULL;
    c->x = NULL;
    release(c);
  }
  maybe_free(c);
  return 1;
}

/* ---------------------------------------------------------------- credentials */

static int load_work(tg_db *db, void *arg)
{
  api_job *j = arg;
  json_t *bound = NULL;
  int rc;
  if ((rc = tg_store_credentials_open(db, j->crypto, j->user, j->names, &j->creds)) != 0)
    return rc;
  if (!j->host)
    return 0;
  rc = tg_store_credentials_open_for_host(db, j->crypto, j->user, j->host, &bound);
  if (rc == TG_ENOTFOUND)
    return 0;
  if (rc == 0) {
    const char *name = json_object_iter_key(json_object_iter(bound));
    /* the values move to j->creds (shared, wiped with it): bound itself is not wiped */
    if (!(j->host_cred = strdup(name)) || json_object_update(j->creds, bound)) {
      tg_api_wipe_json(bound);
      rc = TG_ENOMEM;
    }
  }
  json_decref(bound);
  return rc;
}

/* c->secrets from the credentials' secret strings and access tokens. */
static int collect_secrets(api_call *c)
{
  const char *name, *k;
  json_t *cred, *v;
  size_t n = 0, cap = 8;
  char **s = calloc(cap + 1, sizeof *s);
  if (!s)
    return TG_ENOMEM;
  json_object_foreach(c->creds, name, cred)
  {
    json_t *vals = json_copy(json_object_get(cred, "secret"));
    if (!vals)
      continue;
    json_object_del(vals, "username"); /* not a secret */
    if (json_is_string(json_object_get(cred, "access_token")))
      json_object_set(vals, "access_token", json_object_get(cred, "access_token"));
    json_object_foreach(vals, k, v)
    {
      if (!json_is_string(v) || json_string_length(v) == 0)
        continue;
      if (n == cap) {
        char **ns = realloc(s, ((cap *= 2) + 1) * sizeof *s);
        if (!ns)
          break;
        s = ns;
      }
      if ((s[n] = strdup(json_string_value(v))) != NULL)
        s[++n] = NULL;
    }
    json_decref(vals);
  }
  for (size_t i = 0; c->secrets && c->secrets[i]; i++)
    wipe_str(c->secrets[i]);
  free(c->secrets);
  c->secrets = s;
  return 0;
}

static void load_done(void *arg, int status)
{
  api_job *j = arg;
  api_call *c = j->c;
  if (job_over(j))
    return;
  if (status == TG_ESTATE) {
    report_fail(c, WK_NODE_FAILED, "credential_missing",
                "node %s: the credentials cannot be opened: the worker has no "
                "TOOLGATE_SECRET_KEY",
                c->x->gn->id);
    goto out;
  }
  if (status != 0) {
    report_fail(c, WK_NODE_FAILED, "internal", "node %s: cannot open the credentials: %s",
                c->x->gn->id, tg_strerror(status));
    goto out;
  }
  c->creds = j->creds;
  j->creds = NULL;
  if (c->needs.auth && !json_object_get(c->creds, c->needs.auth)) {
    report_fail(c, WK_NODE_FAILED, "credential_missing", "node %s: no credential named \"%s\"",
                c->x->gn->id, c->needs.auth);
    goto out;
  }
  if (c->needs.by_host && !j->host_cred) {
    report_fail(c, WK_NODE_FAILED, "credential_missing",
                "node %s: no credential is named (config.credential) or bound to host %s",
                c->x->gn->id, c->needs.host);
    goto out;
  }
  c->auth = strdup(c->needs.auth ? c->needs.auth : j->host_cred ? j->host_cred : "");
  if (!c->auth || collect_secrets(c) != 0) {
    report_fail(c, WK_NODE_FAILED, "internal", "out of memory");
    goto out;
  }
  next_token(c);
out:
  job_free(j);
}

/* ---------------------------------------------------------------- connectors */

/* The managed form: opens the user's connector and builds the config and credential of its
 * operation (tg_connector_api_config). */
static int conn_work(tg_db *db, void *arg)
{
  api_job *j = arg;
  json_t *opened = NULL;
  const char *auth = NULL;
  int rc = tg_store_connectors_open(db, j->crypto, j->user, j->connector, &opened);
  if (rc == 0 && strcmp(json_string_value(json_object_get(opened, "kind")), "api") != 0)
    rc = TG_ENOTFOUND; /* an MCP connector is not an API node's */
  if (rc == TG_ENOTFOUND)
    snprintf(j->err, sizeof j->err, "connector %s not found", j->connector);
  if (rc)
    goto out;
  rc = tg_connector_api_config(opened, j->operation, j->payload, &j->config, &j->creds, &auth,
                               j->err, sizeof j->err);
  if (rc == TG_ENOTFOUND)
    rc = TG_EINVAL; /* the connector exists: its operation does not */
  snprintf(j->auth_name, sizeof j->auth_name, "%s", auth ? auth : "");
out:
  tg_connector_drop(opened);
  return rc;
}

static void conn_done(void *arg, int status)
{
  api_job *j = arg;
  api_call *c = j->c;
  if (job_over(j))
    return;
  if (status) {
    report_fail(c, WK_NODE_FAILED,
                status == TG_ENOTFOUND ? "connector_not_found"
                : status == TG_ESTATE  ? "credential_missing"
                : status == TG_EINVAL  ? "tool_error"
                                       : "internal",
                "node %s: %s", c->x->gn->id,
                *j->err               ? j->err
                : status == TG_ESTATE ? "the worker has no TOOLGATE_SECRET_KEY"
                                      : tg_strerror(status));
    goto out;
  }
  c->config = j->config;
  c->creds = j->creds;
  j->config = j->creds = NULL;
  if (c->x->prior_status && strcmp(c->x->prior_status, "waiting") != 0 &&
      !tg_api_config_idempotent(c->config) &&
      !tg_api_config_idempotent(c->x->config)) { /* idempotency_key of the node */
    report_fail(c, WK_NODE_UNKNOWN, "outcome_unknown",
                "node %s: its API request may have been sent by an earlier attempt and is not "
                "idempotent (no idempotency_key)",
                c->x->gn->id);
    goto out;
  }
  if (!(c->auth = strdup(j->auth_name)) || collect_secrets(c) != 0) {
    report_fail(c, WK_NODE_FAILED, "internal", "out of memory");
    goto out;
  }
  next_token(c);
out:
  job_free(j);
}

/* Starts the managed form's load: 0, or -1 after failing the node. */
static int load_connector(api_call *c)
{
  wk_node_exec *x = c->x;
  api_job *j = job_new(c);
  if (!j) {
    report_fail(c, WK_NODE_FAILED, "internal", "out of memory");
    return -1;
  }
  j->connector = json_string_value(json_object_get(x->config, "connector_id"));
  j->operation = json_string_value(json_object_get(x->config, "operation"));
  j->payload = json_object_get(x->config, "payload");
  if (submit(c, j, conn_work, conn_done) != 0) {
    job_free(j);
    report_fail(c, WK_NODE_FAILED, "internal", "cannot queue the connector's load");
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- OAuth2 tokens */

static int set_token(api_call *c, const char *name, const char *token)
{
  json_t *cred = json_object_get(c->creds, name);
  if (!cred || json_object_set_new(cred, "access_token", json_string(token)))
    return TG_ENOMEM;
  return collect_secrets(c);
}

static void on_token(void *arg, int err, long status, const char *token, const char *why)
{
  api_call *c = arg;
  (void)status; /* why names it */
  c->tw = NULL;
  if (err) {
    report_fail(c, WK_NODE_FAILED,
                err == TG_EEGRESS ? "egress_denied"
                : err == TG_EAUTH ? "provider_auth"
                                  : "http_error",
                "node %s: credential \"%s\": %s", c->x->gn->id, c->token_for, why);
    return;
  }
  if (set_token(c, c->token_for, token) != 0) {
    report_fail(c, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  next_token(c);
}

/* Fetches the next missing access token, or sends the request when none is missing. */
static void next_token(api_call *c)
{
  const char *name;
  json_t *cred;
  json_object_foreach(c->creds, name, cred)
  {
    const char *type = json_string_value(json_object_get(cred, "type"));
    char *now = NULL;
    int rc, fresh = c->refreshed == 1 && strcmp(name, c->auth) == 0;
    if (!type || strcmp(type, "oauth2") != 0 || json_object_get(cred, "access_token"))
      continue;
    free(c->token_for);
    if (!(c->token_for = strdup(name))) {
      report_fail(c, WK_NODE_FAILED, "internal", "out of memory");
      return;
    }
    if (fresh)
      c->refreshed = 2;
    rc = tg_oauth2_token_get(c->r->w->api_tokens, c->r->user_id, name, cred, fresh, &now, on_token,
                             c, &c->tw);
    if (rc) {
      report_fail(c, WK_NODE_FAILED, "internal", "node %s: cannot request a token: %s",
                  c->x->gn->id, tg_strerror(rc));
      return;
    }
    if (!now)
      return; /* on_token continues */
    rc = set_token(c, name, now);
    wipe_str(now);
    if (rc) {
      report_fail(c, WK_NODE_FAILED, "internal", "out of memory");
      return;
    }
  }
  send_request(c);
}

/* ---------------------------------------------------------------- journal */

static int start_work(tg_db *db, void *arg)
{
  api_job *j = arg;
  tg_run_lease l = wk_run_lease(j->c->r);
  return tg_store_runs_tool_start(db, &l, j->node_id, "api", j->tool, j->call_id, j->arguments,
                                  tg_now_ms(), &j->exec_id, &j->inserted);
}

static int finish_work(tg_db *db, void *arg)
{
  api_job *j = arg;
  tg_run_lease l = wk_run_lease(j->c->r);
  return tg_store_runs_tool_finish(db, &l, j->exec_id, &j->tr, tg_now_ms(), &j->changes);
}

static void on_http_done(void *arg, int err, const tg_http_response *resp);

static void start_done(void *arg, int status)
{
  api_job *j = arg;
  api_call *c = j->c;
  wk_worker *w = c->r->w;
  const char *headers[TG_API_HEADERS_MAX + 1];
  int rc;
  if (job_over(j))
    return;
  if (status != 0 || !j->inserted) {
    if (status)
      report_fail(c, WK_NODE_FAILED, "internal", "cannot record the API request: %s",
                  tg_strerror(status));
    else
      report(c, &(wk_node_result){.status = WK_NODE_LOST});
    job_free(j);
    return;
  }
  c->exec_id = j->exec_id;
  job_free(j);
  for (size_t i = 0; i <= TG_API_HEADERS_MAX; i++)
    headers[i] = c->req.headers[i];
  c->tries++;
  rc = tg_http_send(w->http_egress,
                    &(tg_http_request){.method = c->req.method,
                                       .url = c->req.url,
                                       .headers = headers,
                                       .body = c->req.body,
                                       .body_len = c->req.body_len,
                                       .timeout_ms = c->req.timeout_ms > 0 ? c->req.timeout_ms
                                                                           : DEFAULT_TIMEOUT_MS,
                                       .max_body = MAX_RESPONSE},
                    on_http_done, c, &c->t);
  if (rc)
    on_http_done(c, rc, &(tg_http_response){.body = "", .not_sent = 1});
}

/* Builds the request (again after a token refresh) and journals it; the send follows. */
static void send_request(api_call *c)
{
  char err[256] = "";
  api_job *j;
  int rc;
  if (!c->built) {
    rc = tg_api_request_build(c->config ? c->config : c->x->config, c->creds,
                              *c->auth ? c->auth : NULL, &c->req, err, sizeof err);
    if (rc) {
      report_fail(c, WK_NODE_FAILED, rc == TG_ENOTFOUND ? "credential_missing" : "tool_error",
                  "node %s: %s", c->x->gn->id, *err ? err : tg_strerror(rc));
      return;
    }
    c->built = 1;
  }
  if (!(j = job_new(c)) || !(j->arguments = wk_secrets_redact_args(c->r, c->x->config))) {
    job_free(j);
    report_fail(c, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  j->tool = c->req.tool_name;
  j->node_id = c->x->gn->id;
  j->call_id = c->x->tool_call_id;
  if (submit(c, j, start_work, start_done) != 0) {
    job_free(j);
    report_fail(c, WK_NODE_FAILED, "internal", "cannot queue the API request's journal row");
  }
}

static void on_retry(uv_timer_t *h)
{
  send_request(h->data);
}

static void finish_done(void *arg, int status)
{
  api_job *j = arg;
  api_call *c = j->c;
  int lost = status == 0 && j->changes == 0;
  if (job_over(j))
    return;
  job_free(j);
  if (status != 0 || lost) {
    report_fail(c, lost ? WK_NODE_LOST : WK_NODE_FAILED, lost ? NULL : "internal",
                "cannot record the API request: %s", lost ? "lease lost" : tg_strerror(status));
    return;
  }
  if (c->retry_ms >= 0) {
    if (c->refreshed == 1) { /* a 401 with an OAuth2 token: fetch a new one, rebuild */
      json_object_del(json_object_get(c->creds, c->auth), "access_token");
      tg_api_request_free(&c->req);
      c->built = 0;
      next_token(c);
      return;
    }
    uv_timer_start(&c->timer, on_retry, (uint64_t)c->retry_ms, 0);
    return;
  }
  report(c, &c->res);
}

/* Writes the current row's outcome (status "success", "failed" or "unknown"); then the call
 * retries (c->retry_ms >= 0) or reports c->res. response is stolen. */
static void journal(api_call *c, const char *status, json_t *response, const char *error,
                    const char *error_class)
{
  api_job *j = job_new(c);
  if (!j) {
    json_decref(response);
    report_fail(c, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  j->exec_id = c->exec_id;
  j->response = response;
  j->error = error ? strdup(error) : NULL;
  j->tr = (tg_tool_result){.status = status,
                           .response = response,
                           .error = j->error,
                           .error_class = error_class,
                           .duration_ms = (int64_t)(c->elapsed_s * 1000)};
  if (submit(c, j, finish_work, finish_done) != 0) {
    job_free(j);
    report_fail(c, WK_NODE_FAILED, "internal", "cannot queue the API request's completion");
  }
}

/* ---------------------------------------------------------------- the answer */

/* A copy of v with the run's secrets and the credentials' values cut out. */
static json_t *redacted(api_call *c, const json_t *v)
{
  json_t *a = wk_secrets_redact(c->r, v), *b;
  if (!a || !c->secrets || !c->secrets[0])
    return a;
  b = tg_redact_values(a, (const char *const *)c->secrets);
  json_decref(a);
  return b;
}

static int retry_status(long s)
{
  return s == 429 || s == 502 || s == 503 || s == 504;
}

/* The delay before retry n (1-based): Retry-After when given, else base * 2^(n-1) with jitter;
 * -1 when no retry is left or the delay is too long. */
static int64_t retry_delay(api_call *c, long retry_after_ms)
{
  wk_worker *w = c->r->w;
  int64_t base = w->cfg.retry_base_ms, d;
  if (c->tries > w->cfg.tool_retries)
    return -1;
  if (retry_after_ms >= 0)
    d = retry_after_ms;
  else
    d = (base << (c->tries - 1 < 16 ? c->tries - 1 : 16)) +
        (base > 0 ? (int64_t)randombytes_uniform((uint32_t)base) : 0);
  return d > MAX_RETRY_DELAY_MS ? -1 : d;
}

/* 1 when the credential that authenticates is an OAuth2 one (its token may be refreshed). */
static int auth_is_oauth2(const api_call *c)
{
  const char *type;
  if (!c->auth || !*c->auth)
    return 0;
  type = json_string_value(json_object_get(json_object_get(c->creds, c->auth), "type"));
  return type && strcmp(type, "oauth2") == 0;
}

static void on_http_done(void *arg, int err, const tg_http_response *resp)
{
  api_call *c = arg;
  const char *id = c->x->gn->id;
  char msg[256];
  json_t *out;
  c->t = NULL;
  c->elapsed_s = resp->total_ms / 1000.0;
  c->retry_ms = -1;
  if (err == TG_EEGRESS) {
    snprintf(msg, sizeof msg, "node %s: the egress policy refuses %s", id, c->req.tool_name);
    c->res = (wk_node_result){.status = WK_NODE_FAILED, .error_class = "egress_denied"};
    snprintf(c->res.error, sizeof c->res.error, "%s", msg);
    journal(c, "failed", NULL, msg, "egress_denied");
    return;
  }
  if (err) {
    int safe = c->req.idempotent || resp->not_sent;
    snprintf(msg, sizeof msg, "node %s: %s: %s", id, c->req.tool_name, tg_strerror(err));
    if (safe && err != TG_ETOOBIG && (c->retry_ms = retry_delay(c, -1)) >= 0) {
      journal(c, "failed", NULL, msg, err == TG_ETIMEDOUT ? "timeout" : "http_error");
      return;
    }
    if (!safe) {
      c->res = (wk_node_result){.status = WK_NODE_UNKNOWN, .error_class = "outcome_unknown"};
      snprintf(c->res.error, sizeof c->res.error,
               "%s; the request may have reached the server and is not idempotent", msg);
      journal(c, "unknown", NULL, c->res.error, "outcome_unknown");
      return;
    }
    c->res = (wk_node_result){.status = WK_NODE_FAILED,
                              .error_class = err == TG_ETIMEDOUT ? "timeout" : "http_error"};
    snprintf(c->res.error, sizeof c->res.error, "%s", msg);
    journal(c, "failed", NULL, msg, c->res.error_class);
    return;
  }
  if (retry_status(resp->status) && c->req.idempotent &&
      (c->retry_ms = retry_delay(c, tg_http_retry_after_ms(resp->t))) >= 0) {
    snprintf(msg, sizeof msg, "HTTP %ld", resp->status);
    journal(c, "failed", NULL, msg, resp->status == 429 ? "rate_limited" : "http_error");
    return;
  }
  if (resp->status == 401 && !c->refreshed && auth_is_oauth2(c)) {
    c->refreshed = 1;
    c->retry_ms = 0;
    journal(c, "failed", NULL, "HTTP 401", "http_error");
    return;
  }
  out = tg_api_output(resp->status, tg_http_header(resp->t, "Content-Type"), resp->body,
                      resp->body_len, c->elapsed_s, NULL);
  if (!out || !(c->res.output = redacted(c, out))) {
    json_decref(out);
    c->res = (wk_node_result){.status = WK_NODE_FAILED, .error_class = "internal"};
    snprintf(c->res.error, sizeof c->res.error, "out of memory");
    journal(c, "failed", NULL, "out of memory", "internal");
    return;
  }
  json_decref(out);
  c->res.status = WK_NODE_SUCCESS;
  c->res.vars = NULL; /* api_vars, for a fresh output as for one reused after a crash */
  snprintf(msg, sizeof msg, "HTTP %ld", resp->status);
  journal(c, resp->status >= 200 && resp->status < 300 ? "success" : "failed",
          json_incref(c->res.output), resp->status >= 200 && resp->status < 300 ? NULL : msg,
          resp->status >= 200 && resp->status < 300 ? NULL : "http_error");
}

/* ---------------------------------------------------------------- the executor */

static void api_start(wk_node_exec *x)
{
  api_call *c = calloc(1, sizeof *c);
  char err[256] = "";
  api_job *j;
  int rc;
  if (!c) {
    x->done(x, &(wk_node_result){
                   .status = WK_NODE_FAILED, .error_class = "internal", .error = "out of memory"});
    return;
  }
  c->x = x;
  c->r = x->r;
  c->retry_ms = -1;
  x->priv = c;
  uv_timer_init(x->r->w->loop, &c->timer);
  c->timer.data = c;
  c->refs = 1;
  x->r->pending++; /* the timer, until on_timer_closed */
  if (json_is_string(json_object_get(x->config, "connector_id"))) {
    load_connector(c); /* the managed form: the prior_status rule once its method is known */
    return;
  }
  if (x->prior_status && strcmp(x->prior_status, "waiting") != 0 &&
      !tg_api_config_idempotent(x->config)) {
    report_fail(c, WK_NODE_UNKNOWN, "outcome_unknown",
                "node %s: its API request may have been sent by an earlier attempt and is not "
                "idempotent (no idempotency_key)",
                x->gn->id);
    return;
  }
  if ((rc = tg_api_needs_of(x->config, &c->needs, err, sizeof err)) != 0) {
    report_fail(c, WK_NODE_FAILED, rc == TG_ENOMEM ? "internal" : "tool_error", "node %s: %s",
                x->gn->id, *err ? err : tg_strerror(rc));
    return;
  }
  if (!(j = job_new(c))) {
    report_fail(c, WK_NODE_FAILED, "internal", "out of memory");
    return;
  }
  j->names = c->needs.names;
  j->host = c->needs.by_host ? c->needs.host : NULL;
  if (submit(c, j, load_work, load_done) != 0) {
    job_free(j);
    report_fail(c, WK_NODE_FAILED, "internal", "cannot queue the credentials' load");
  }
}

static void api_cancel(wk_node_exec *x, int why)
{
  api_call *c = x->priv;
  const char *what = why == WK_STOP_SHUTDOWN ? "the worker is shutting down" : "run deadline";
  if (!c)
    return;
  if (c->t && !c->req.idempotent) {
    tg_http_cancel(c->t);
    c->t = NULL;
    report_fail(c, WK_NODE_UNKNOWN, "outcome_unknown",
                "node %s: %s interrupted %s, which may have reached the server", x->gn->id, what,
                c->req.tool_name);
    return;
  }
  report_fail(c, WK_NODE_FAILED, "timeout", "node %s: %s interrupted the API request", x->gn->id,
              what);
}

/* The run variables of an API node's output: the keys of its response data when that is an
 * object (README "API node"). */
static json_t *api_vars(const json_t *output)
{
  const json_t *data = json_object_get(output, "data");
  return json_is_object(data) ? json_copy((json_t *)data) : NULL;
}

const wk_node_ops wk_node_api_ops = {
    .type = TG_NODE_API,
    .effectful = 1,
    .start = api_start,
    .cancel = api_cancel,
    .vars = api_vars,
};
