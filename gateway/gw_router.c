/*
 * gw_router: method + path → handler, and what the route asks of a request before its handler.
 *
 * Matching happens on path segments of the raw path (no percent-decoding: ids and provider
 * names are plain [A-Za-z0-9_-]). Order of answers: unknown path 404 not_found, known path with
 * another method 405 method_not_allowed (with Allow), then what the route's flags (GW_ROUTE_*)
 * ask for: identity (401), then the caller's admission rate (429), then the handler. Every /api
 * route needs a user except GET /api/composio-redirect and GET /api/connectors/oauth/callback,
 * where the OAuth state stands for the user, and POST /api/webhooks/composio, authenticated by
 * its signature.
 *
 * The table is also the API's list of routes: every route but those marked GW_ROUTE_STATIC (the
 * web UI's files) is described in docs/openapi.json, and test_openapi.py checks that the two
 * agree through gw_routes_write (toolgate-gateway --routes).
 */
#include "gw.h"

#include <string.h>

#define MAX_SEGS 8
#define MAX_SEG 128

/* Exactly one handler is set: plain (no identity), with the caller, or with the caller and the
 * "*" segment. A route with a user or wild handler has GW_ROUTE_USER; a plain one has no flags. */
typedef void (*plain_fn)(gw_app *app, tg_httpd_req *req);
typedef void (*user_fn)(gw_app *app, tg_httpd_req *req, const char *user);
typedef void (*wild_fn)(gw_app *app, tg_httpd_req *req, const char *user, const char *wild);

typedef struct route {
  const char *method;
  const char *pattern; /* segments; "*" matches one id-like segment */
  unsigned flags;      /* GW_ROUTE_* */
  plain_fn plain;
  user_fn user;
  wild_fn wild;
} route;

#define PUBLIC 0 /* no identity (the OAuth callback and the webhook authenticate themselves) */
#define USER GW_ROUTE_USER
#define ADMITS (GW_ROUTE_USER | GW_ROUTE_RATE_LIMITED)
#define STATIC GW_ROUTE_STATIC /* the web UI's files: public, not in docs/openapi.json */

static const route routes[] = {
    {"GET", "/", STATIC, .plain = gw_ui_index},
    /* The web UI (gw_static.c): its files, and the client routes of ui/src/app.js's page(), each
     * index.html for a browser so that a page can be reloaded or bookmarked. */
    {"GET", "/index.html", STATIC, .plain = gw_static_get},
    {"GET", "/style.css", STATIC, .plain = gw_static_get},
    {"GET", "/src/*", STATIC, .plain = gw_static_get},
    {"GET", "/vendor/*", STATIC, .plain = gw_static_get},
    {"GET", "/integrations", STATIC, .plain = gw_static_get},
    {"GET", "/workflows", STATIC, .plain = gw_static_get},
    {"GET", "/workflows/*", STATIC, .plain = gw_static_get},
    {"GET", "/runs", STATIC, .plain = gw_static_get},
    {"GET", "/runs/*", STATIC, .plain = gw_static_get},
    {"GET", "/reviews", STATIC, .plain = gw_static_get},
    {"GET", "/tools", STATIC, .plain = gw_static_get},
    {"GET", "/credentials", STATIC, .plain = gw_static_get},
    {"GET", "/openapi.json", PUBLIC, .plain = gw_openapi_get},
    {"GET", "/healthz", PUBLIC, .plain = gw_healthz},
    {"GET", "/readyz", PUBLIC, .plain = gw_readyz},
    {"GET", "/api/mcp/auth/providers", USER, .user = gw_auth_providers},
    {"POST", "/api/mcp/auth/*/start", USER, .wild = gw_auth_start},
    {"GET", "/api/mcp/auth/status", USER, .user = gw_auth_status},
    {"GET", "/api/mcp/auth/debug", USER, .user = gw_auth_debug},
    {"DELETE", "/api/mcp/auth/*", USER, .wild = gw_auth_disconnect},
    {"POST", "/api/webhooks/composio", PUBLIC, .plain = gw_webhook_composio},
    {"GET", "/api/composio-redirect", PUBLIC, .plain = gw_auth_callback},
    {"POST", "/api/workflows", USER, .user = gw_workflow_create},
    {"GET", "/api/workflows", USER, .user = gw_workflow_list},
    {"GET", "/api/workflows/*", USER, .wild = gw_workflow_get},
    {"PUT", "/api/workflows/*", USER, .wild = gw_workflow_update},
    {"DELETE", "/api/workflows/*", USER, .wild = gw_workflow_delete},
    {"POST", "/api/workflows/*/run", ADMITS, .wild = gw_run_admit},
    {"GET", "/api/runs/*", USER, .wild = gw_run_get},
    {"GET", "/api/runs/*/tool-executions", USER, .wild = gw_run_tool_executions},
    {"GET", "/metrics", PUBLIC, .plain = gw_metrics_get},
    {"POST", "/api/workflows/*/preflight", USER, .wild = gw_run_preflight},
    {"GET", "/api/runs", USER, .user = gw_run_list},
    {"POST", "/api/runs/*/cancel", USER, .wild = gw_run_cancel},
    {"POST", "/api/runs/*/retry", ADMITS, .wild = gw_run_retry},
    /* The workflow engine: the answer to an outcome_unknown attention. */
    {"POST", "/api/runs/*/resolve", USER, .wild = gw_run_resolve},
    {"GET", "/api/credits", USER, .user = gw_credits_get},
    /* Reviews (HITL) and run events. */
    {"GET", "/api/reviews", USER, .user = gw_review_list},
    {"GET", "/api/reviews/*", USER, .wild = gw_review_get},
    {"POST", "/api/reviews/*/decision", USER, .wild = gw_review_decide},
    {"GET", "/api/runs/*/events", USER, .wild = gw_run_events},
    /* credentials of API nodes (gw_credentials.c) */
    {"POST", "/api/credentials", USER, .user = gw_credential_put},
    {"GET", "/api/credentials", USER, .user = gw_credential_list},
    {"GET", "/api/credentials/*", USER, .wild = gw_credential_by_name},
    {"DELETE", "/api/credentials/*", USER, .wild = gw_credential_by_name},
    /* the tool catalog (gw_tools.c) */
    {"GET", "/api/agents/available-tools", USER, .user = gw_tools_available},
    {"POST", "/api/agents/create-tool-from-connector", USER, .user = gw_tools_from_connector},
    {"POST", "/api/tools/register", USER, .user = gw_tools_register},
    {"DELETE", "/api/tools/*", USER, .wild = gw_tools_delete},
    /* connectors (gw_connectors.c) */
    {"POST", "/api/connectors/api", USER, .user = gw_connector_create_api},
    {"POST", "/api/connectors/mcp", USER, .user = gw_connector_create_mcp},
    {"GET", "/api/connectors", USER, .user = gw_connector_list},
    {"GET", "/api/connectors/*", USER, .wild = gw_connector_by_id},
    {"PUT", "/api/connectors/*", USER, .wild = gw_connector_by_id},
    {"DELETE", "/api/connectors/*", USER, .wild = gw_connector_by_id},
    {"POST", "/api/connectors/*/test", USER, .wild = gw_connector_test},
    {"POST", "/api/connectors/*/invoke", USER, .wild = gw_connector_invoke},
    {"POST", "/api/connectors/*/oauth/start", USER, .wild = gw_connector_oauth_start},
    {"GET", "/api/connectors/oauth/callback", PUBLIC, .plain = gw_connector_oauth_callback},
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

int gw_routes_write(FILE *out)
{
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    const char *p = routes[i].pattern;
    if (fprintf(out, "%s ", routes[i].method) < 0)
      return -1;
    for (; *p; p++)
      if ((*p == '*' ? fputs("{*}", out) : fputc(*p, out)) == EOF)
        return -1;
    if (fputs(routes[i].flags & GW_ROUTE_STATIC ? " static\n" : "\n", out) == EOF)
      return -1;
  }
  return fflush(out) == 0 ? 0 : -1;
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
  if ((hit->flags & GW_ROUTE_USER) && gw_identify(app, req, user) != 0)
    return; /* 401 */
  if ((hit->flags & GW_ROUTE_RATE_LIMITED) && gw_ratelimit_admit(app, req, user) != 0)
    return; /* 429: per-user admission rate (gw_ratelimit.c) */
  if (hit->plain)
    hit->plain(app, req);
  else if (hit->user)
    hit->user(app, req, user);
  else
    hit->wild(app, req, user, wild);
}
