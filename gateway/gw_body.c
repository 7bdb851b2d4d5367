/*
 * gw_body: the gateway's JSON bodies at the HTTP edge: error bodies out (gw_respond_error) and
 * request objects in (gw_parse_body).
 *
 * Invariant: every error body is {"error": snake_case, "message": sentence, ...details}
 * (DESIGN.md section 3); details never replace error or message.
 */
#include "gw.h"

#include <stdio.h>

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
