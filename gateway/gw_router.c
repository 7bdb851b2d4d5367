/*
 * gw_router: method + path → handler, and identity for /api routes.
 *
 * Matching happens on path segments of the raw path (no percent-decoding: ids and provider
 * names are plain [A-Za-z0-9_-]). Order of answers: unknown path 404 not_found, known path with
 * another method 405 method_not_allowed (with Allow), then identity (401), then the handler.
 * Every /api route needs a user except GET /api/composio-redirect, where the OAuth state
 * stands for the user, and POST /api/webhooks/composio, authenticated by its signature.
 */
#include "gw.h"

#include <string.h>

#define MAX_SEGS 8
#define MAX_SEG 128

typedef struct route {
  const char *method;
  const char *pattern; /* segments; "*" matches one id-like segment */
  int needs_user;
  int id;
} route;

enum {
  R_UI,
  R_HEALTHZ,
  R_READYZ,
  R_PROVIDERS,
  R_AUTH_START,
  R_AUTH_STATUS,
  R_AUTH_DEBUG,
  R_AUTH_DISCONNECT,
  R_WEBHOOK,
  R_CALLBACK,
  R_WF_CREATE,
  R_WF_LIST,
  R_WF_GET,
  R_WF_UPDATE,
  R_WF_DELETE,
  R_WF_RUN,
  R_RUN_GET,
  R_RUN_TOOLS,
  R_METRICS,
  R_WF_PREFLIGHT,
  R_RUN_LIST,
  R_RUN_CANCEL,
  R_RUN_RETRY,
  R_CREDITS
};

static const route routes[] = {
    {"GET", "/", 0, R_UI},
    {"GET", "/healthz", 0, R_HEALTHZ},
    {"GET", "/readyz", 0, R_READYZ},
    {"GET", "/api/mcp/auth/providers", 1, R_PROVIDERS},
    {"POST", "/api/mcp/auth/*/start", 1, R_AUTH_START},
    {"GET", "/api/mcp/auth/status", 1, R_AUTH_STATUS},
    {"GET", "/api/mcp/auth/debug", 1, R_AUTH_DEBUG},
    {"DELETE", "/api/mcp/auth/*", 1, R_AUTH_DISCONNECT},
    {"POST", "/api/webhooks/composio", 0, R_WEBHOOK},
    {"GET", "/api/composio-redirect", 0, R_CALLBACK},
    {"POST", "/api/workflows", 1, R_WF_CREATE},
    {"GET", "/api/workflows", 1, R_WF_LIST},
    {"GET", "/api/workflows/*", 1, R_WF_GET},
    {"PUT", "/api/workflows/*", 1, R_WF_UPDATE},
    {"DELETE", "/api/workflows/*", 1, R_WF_DELETE},
    {"POST", "/api/workflows/*/run", 1, R_WF_RUN},
    {"GET", "/api/runs/*", 1, R_RUN_GET},
    {"GET", "/api/runs/*/tool-executions", 1, R_RUN_TOOLS},
    {"GET", "/metrics", 0, R_METRICS},
    {"POST", "/api/workflows/*/preflight", 1, R_WF_PREFLIGHT},
    {"GET", "/api/runs", 1, R_RUN_LIST},
    {"POST", "/api/runs/*/cancel", 1, R_RUN_CANCEL},
    {"POST", "/api/runs/*/retry", 1, R_RUN_RETRY},
    {"GET", "/api/credits", 1, R_CREDITS},
};

typedef struct segs {
  char buf[MAX_SEGS][MAX_SEG + 1];
  int n;
} segs;

/* Splits "/a/b/c" into segments; 0 on success, -1 when too many, too long or empty. */
static int split(const char *path, segs *s)
{
  s->n = 0;
  if (*path != '/')
    return -1;
  if (strcmp(path, "/") == 0)
    return 0;
  while (*path == '/') {
    const char *start = ++path;
    size_t n = strcspn(start, "/");
    if (n == 0 || n > MAX_SEG || s->n == MAX_SEGS)
      return -1;
    memcpy(s->buf[s->n], start, n);
    s->buf[s->n][n] = 0;
    s->n++;
    path = start + n;
  }
  return 0;
}

static int id_like(const char *s)
{
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

/* 1 if the segments match pattern; *wild gets the "*" segment. The pattern is walked in
 * place (no copy): this runs for every route on every request. */
static int match(const char *pattern, const segs *s, const char **wild)
{
  int i = 0;
  if (strcmp(pattern, "/") == 0)
    return s->n == 0;
  while (*pattern == '/') {
    const char *seg = ++pattern;
    size_t n = strcspn(seg, "/");
    if (i == s->n)
      return 0;
    if (n == 1 && *seg == '*') {
      if (!id_like(s->buf[i]))
        return 0;
      *wild = s->buf[i];
    } else if (strncmp(seg, s->buf[i], n) != 0 || s->buf[i][n] != 0) {
      return 0;
    }
    i++;
    pattern = seg + n;
  }
  return i == s->n;
}

void gw_route(tg_httpd_req *req, void *arg)
{
  gw_app *app = arg;
  const char *method = tg_httpd_method(req);
  const route *hit = NULL;
  const char *wild = NULL;
  char allow[64] = "";
  char user[GW_USER_MAX + 1] = "";
  segs s;

  if (split(tg_httpd_path(req), &s) == 0) {
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
      const char *w = NULL;
      if (!match(routes[i].pattern, &s, &w))
        continue;
      if (strcmp(routes[i].method, method) == 0) {
        hit = &routes[i];
        wild = w;
        break;
      }
      if (strlen(allow) + strlen(routes[i].method) + 3 < sizeof allow) {
        if (*allow)
          strcat(allow, ", ");
        strcat(allow, routes[i].method);
      }
    }
  }
  if (!hit && *allow) {
    char hdr[96];
    const char *headers[] = {hdr, NULL};
    snprintf(hdr, sizeof hdr, "Allow: %s", allow);
    gw_respond_error(req, 405, "method_not_allowed", "This method is not allowed on this path.",
                     NULL, headers);
    return;
  }
  if (!hit) {
    gw_respond_error(req, 404, "not_found", "No such route.", NULL, NULL);
    return;
  }
  if (hit->needs_user && gw_identify(app, req, user) != 0)
    return;
  if ((hit->id == R_WF_RUN || hit->id == R_RUN_RETRY) && gw_ratelimit_admit(app, req, user) != 0)
    return; /* 429: per-user admission rate (gw_ratelimit.c) */

  switch (hit->id) {
  case R_UI:
    gw_ui_index(app, req);
    break;
  case R_HEALTHZ:
    gw_healthz(app, req);
    break;
  case R_READYZ:
    gw_readyz(app, req);
    break;
  case R_PROVIDERS:
    gw_auth_providers(app, req, user);
    break;
  case R_AUTH_START:
    gw_auth_start(app, req, user, wild);
    break;
  case R_AUTH_STATUS:
    gw_auth_status(app, req, user);
    break;
  case R_AUTH_DEBUG:
    gw_auth_debug(app, req, user);
    break;
  case R_AUTH_DISCONNECT:
    gw_auth_disconnect(app, req, user, wild);
    break;
  case R_WEBHOOK:
    gw_webhook_composio(app, req);
    break;
  case R_CALLBACK:
    gw_auth_callback(app, req);
    break;
  case R_WF_CREATE:
    gw_workflow_create(app, req, user);
    break;
  case R_WF_LIST:
    gw_workflow_list(app, req, user);
    break;
  case R_WF_GET:
    gw_workflow_get(app, req, user, wild);
    break;
  case R_WF_UPDATE:
    gw_workflow_update(app, req, user, wild);
    break;
  case R_WF_DELETE:
    gw_workflow_delete(app, req, user, wild);
    break;
  case R_WF_RUN:
    gw_run_admit(app, req, user, wild);
    break;
  case R_RUN_GET:
    gw_run_get(app, req, user, wild);
    break;
  case R_RUN_TOOLS:
    gw_run_tool_executions(app, req, user, wild);
    break;
  case R_METRICS:
    gw_metrics_get(app, req);
    break;
  case R_WF_PREFLIGHT:
    gw_run_preflight(app, req, user, wild);
    break;
  case R_RUN_LIST:
    gw_run_list(app, req, user);
    break;
  case R_RUN_CANCEL:
    gw_run_cancel(app, req, user, wild);
    break;
  case R_RUN_RETRY:
    gw_run_retry(app, req, user, wild);
    break;
  case R_CREDITS:
    gw_credits_get(app, req, user);
    break;
  default:
    gw_respond_error(req, 404, "not_found", "No such route.", NULL, NULL);
  }
}
