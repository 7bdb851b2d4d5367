/*
 * gw_composio_fault: the mapping of gw_composio_fault.h, and the reply every route gives with
 * it. The classification reads the TG_E* code first (tg_composio's own reading of the status,
 * tg_composio.h) and the HTTP status only to tell a 5xx from a 4xx inside TG_EHTTP.
 */
#include "gw_composio_fault.h"
#include "gw.h"

#include <stdio.h>

void gw_composio_fault_of(gw_composio_fault *f, int err, long http_status, long retry_after_ms)
{
  int refused = err == TG_ENOTFOUND || err == TG_EPROTO ||
                (err == TG_EHTTP && http_status >= 400 && http_status < 500 && http_status != 429);
  int auth = err == TG_EAUTH || (err == TG_EHTTP && (http_status == 401 || http_status == 403));

  f->header[0] = 0;
  f->headers[0] = f->headers[1] = NULL;
  f->retry_after_ms = f->retry_after_s = 0;
  if (auth) {
    f->status = 502;
    f->code = "composio_auth_failed";
    f->message = "Composio rejected the platform API key; an operator must fix COMPOSIO_API_KEY.";
    return;
  }
  if (refused) {
    f->status = 502;
    f->code = "composio_error";
    f->message = "Composio rejected the request.";
    return;
  }
  f->status = 503;
  f->code = "composio_unavailable";
  f->message = "Composio could not be reached or asked us to wait; try again later.";
  f->retry_after_ms = retry_after_ms > 0 ? retry_after_ms : GW_COMPOSIO_RETRY_S * 1000L;
  f->retry_after_s = (f->retry_after_ms + 999) / 1000;
  snprintf(f->header, sizeof f->header, "Retry-After: %ld", f->retry_after_s);
  f->headers[0] = f->header;
}

void gw_job_fail_composio(gw_job *j, const gw_composio_fault *f, json_t *details)
{
  gw_job_fail(j, f->status, f->code, f->message);
  json_decref(j->body);
  j->body = details;
  if (f->retry_after_ms > 0) {
    if (!j->body)
      j->body = json_object();
    json_object_set_new(j->body, "retry_after_ms", json_integer(f->retry_after_ms));
  }
}

void gw_composio_fail(gw_job *j, const tg_composio_result *res)
{
  gw_composio_fault f;
  gw_composio_fault_of(&f, res->err, res->http_status, res->retry_after_ms);
  gw_job_fail_composio(j, &f,
                       json_pack("{s:s, s:i}", "detail", tg_errname(res->err), "composio_status",
                                 (int)res->http_status));
  gw_job_reply(j, f.headers);
}
