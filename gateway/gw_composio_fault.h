/*
 * gw_composio_fault: the one mapping from a failed Composio call to the gateway's HTTP answer,
 * used by every route that answers one (OAuth start and callback, run admission and preflight).
 *
 *   no answer (connection error, timeout, canceled), 5xx,
 *   or a local failure to make the call                  → 503 composio_unavailable + Retry-After
 *   429                                                  → 503 composio_unavailable + Retry-After
 *   401/403 (Composio rejected our platform API key)     → 502 composio_auth_failed, no Retry-After
 *   any other 4xx, or a 2xx we cannot decode             → 502 composio_error, no Retry-After
 *
 * Retry-After is Composio's own (rounded up to whole seconds) when it sent one, else
 * GW_COMPOSIO_RETRY_S. A rejected key is not retryable (an operator must fix COMPOSIO_API_KEY),
 * nor is a request Composio refused as such, so those carry no Retry-After.
 */
#ifndef GW_COMPOSIO_FAULT_H
#define GW_COMPOSIO_FAULT_H

#define GW_COMPOSIO_RETRY_S 5 /* Retry-After when Composio gave none, seconds */

typedef struct gw_composio_fault {
  int status;             /* 503 or 502 */
  const char *code;       /* "composio_unavailable", "composio_auth_failed" or "composio_error" */
  const char *message;    /* a sentence for the client (static) */
  long retry_after_ms;    /* > 0: how long to wait, ms (Composio's, else the default); 0: none */
  long retry_after_s;     /* the same rounded up to whole seconds, as Retry-After sends it */
  char header[40];        /* "Retry-After: <retry_after_s>", "" when none */
  const char *headers[2]; /* {header, NULL} or {NULL}: the headers argument of a reply; they
                             point into this struct, so do not copy it */
} gw_composio_fault;

/*
 * Fills *f with the answer to a Composio failure: err is the TG_E* code of the call
 * (tg_composio_result.err, or of a call that could not start; 0 is treated as unavailable),
 * http_status Composio's status (0 when no answer), retry_after_ms its Retry-After in ms (<= 0:
 * none). Pure: no allocation, no I/O.
 */
void gw_composio_fault_of(gw_composio_fault *f, int err, long http_status, long retry_after_ms);

#endif
