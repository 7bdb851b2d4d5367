/*
 * gw_ui: GET /, where the OAuth callback sends the browser (TOOLGATE_UI_URL defaults to "/"):
 * the web UI's index.html when one is installed (gw_static, which shows the outcome), else this
 * landing page (TOOLGATE_UI_DIR missing). A static page: the outcome is read from the query string
 * by the browser and written with textContent, so nothing from the request is ever interpolated
 * into HTML by the server. A real product points TOOLGATE_UI_URL at its own web UI instead.
 */
#include "gw.h"

#include <string.h>

static const char page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width\">\n<title>toolgate</title>\n"
    "<style>body{font:16px system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em}"
    "code{background:#eee;padding:0 .3em}</style></head>\n<body>\n<h1>toolgate</h1>\n"
    "<p id=\"outcome\">No connection in progress.</p>\n"
    "<p>API: <code>/api/mcp/auth/providers</code>, <code>/api/workflows</code>, "
    "<code>/api/runs/{id}</code>.</p>\n<script>\n"
    "const q = new URLSearchParams(location.search);\n"
    "if (q.get('provider')) document.getElementById('outcome').textContent =\n"
    "  'Provider ' + q.get('provider') + ': ' + (q.get('status') || 'unknown') +\n"
    "  (q.get('reason') ? ' (' + q.get('reason') + ')' : '') + '. You can close this window.';\n"
    "</script>\n</body></html>\n";

void gw_ui_index(gw_app *app, tg_httpd_req *req)
{
  static const char *const headers[] = {
      "Content-Type: text/html; charset=utf-8",
      "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
      "style-src 'unsafe-inline'",
      "X-Content-Type-Options: nosniff", NULL};
  if (app->ui && gw_static_serve(app, req))
    return;
  tg_httpd_respond(req, 200, headers, page, strlen(page));
}
