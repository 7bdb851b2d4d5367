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

/* Exactly one handler is set: plain (no identity), with the caller, or with the caller and the
 * "*" segment. Every route with a user handler needs the caller's identity. */
typedef void (*plain_fn)(gw_app *app, tg_httpd_req *req);
typedef void (*user_fn)(gw_app *app, tg_httpd_req *req, const char *user);
typedef void (*wild_fn)(gw_app *app, tg_httpd_req *req, const char *user, const char *wild);

typedef struct route {
  const char *method;
  const char *pattern; /* segments; "*" matches one id-like segment */
  plain_fn plain;
  user_fn user;
  wild_fn wild;
} route;

static const route routes[] = {
    {"GET", "/", gw_ui_index, NULL, NULL},
    {"GET", "/healthz", gw_healthz, NULL, NULL},
    {"GET", "/readyz", gw_readyz, NULL, NULL},
    {"GET", "/api/mcp/auth/providers", NULL, gw_auth_providers, NULL},
    {"POST", "/api/mcp/auth/*/start", NULL, NULL, gw_auth_start},
    {"GET", "/api/mcp/auth/status", NULL, gw_auth_status, NULL},
    {"GET", "/api/mcp/auth/debug", NULL, gw_auth_debug, NULL},
    {"DELETE", "/api/mcp/auth/*", NULL, NULL, gw_auth_disconnect},
    {"POST", "/api/webhooks/composio", gw_webhook_composio, NULL, NULL},
    {"GET", "/api/composio-redirect", gw_auth_callback, NULL, NULL},
    {"POST", "/api/workflows", NULL, gw_workflow_create, NULL},
    {"GET", "/api/workflows", NULL, gw_workflow_list, NULL},
    {"GET", "/api/workflows/*", NULL, NULL, gw_workflow_get},
    {"PUT", "/api/workflows/*", NULL, NULL, gw_workflow_update},
    {"DELETE", "/api/workflows/*", NULL, NULL, gw_workflow_delete},
    {"POST", "/api/workflows/*/run", NULL, NULL, gw_run_admit},
    {"GET", "/api/runs/*", NULL, NULL, gw_run_get},
    {"GET", "/api/runs/*/tool-executions", NULL, NULL, gw_run_tool_executions},
    {"GET", "/metrics", gw_metrics_get, NULL, NULL},
    {"POST", "/api/workflows/*/preflight", NULL, NULL, gw_run_preflight},
    {"GET", "/api/runs", NULL, gw_run_list, NULL},
    {"POST", "/api/runs/*/cancel", NULL, NULL, gw_run_cancel},
    {"POST", "/api/runs/*/retry", NULL, NULL, gw_run_retry},
    {"GET", "/api/credits", NULL, gw_credits_get, NULL},
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
  if (hit->plain) {
    hit->plain(app, req);
    return;
  }
  if (gw_identify(app, req, user) != 0)
    return;
  if ((hit->wild == gw_run_admit || hit->wild == gw_run_retry) &&
      gw_ratelimit_admit(app, req, user) != 0)
    return; /* 429: per-user admission rate (gw_ratelimit.c) */
  if (hit->user)
    hit->user(app, req, user);
  else
    hit->wild(app, req, user, wild);
}
