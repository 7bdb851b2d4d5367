/*
 * gw_openapi: GET /openapi.json, the API's description (OpenAPI 3.1).
 *
 * The document is docs/openapi.json, compiled in at build time (cmake/embed_file.cmake writes
 * gw_openapi_doc.c), so the running gateway always serves the description of its own routes
 * and needs no file at run time. Public: it holds no user data. The document's paths are the
 * router's API routes (tests/integration/test_openapi.py compares them with --routes), and the
 * integration tests validate every JSON answer they receive against it (harness.py).
 */
#include "gw.h"

extern const char gw_openapi_doc[];
extern const size_t gw_openapi_doc_len;

void gw_openapi_get(gw_app *app, tg_httpd_req *req)
{
  static const char *const headers[] = {"Content-Type: application/json", "Cache-Control: no-cache",
                                        NULL};
  (void)app;
  tg_httpd_respond(req, 200, headers, gw_openapi_doc, gw_openapi_doc_len);
}
