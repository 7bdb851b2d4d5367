/*
 * tg_http: asynchronous HTTP client, libcurl's multi interface driven by a libuv loop.
 *
 * One tg_http_client per loop owns a CURLM, one uv_timer_t for curl's timeout and one uv_poll_t
 * per socket (created lazily, attached with curl_multi_assign). Connections are reused across
 * transfers (curl's connection cache). Nothing here blocks the loop.
 *
 * Callbacks (libuv's rule): when tg_http_send() returns an error, done_cb is never called;
 * when it returns 0, done_cb is called exactly once, later, from the loop, unless the transfer
 * is canceled with tg_http_cancel() first. An HTTP error status is not an error here: err is 0
 * and resp->status says what the peer answered; err != 0 means no complete response arrived
 * (TG_EIO connection failed or reset, TG_ETIMEDOUT, TG_ETOOBIG body cap, TG_ECANCELED client
 * closed, TG_EEGRESS the client's egress policy refused every address the host resolved to,
 * or the code an on_data callback returned).
 *
 * Egress (tg_http_client_set_egress): a client for user-supplied URLs checks the address of
 * every socket it is about to connect, in curl's open-socket callback, so a name that resolves
 * (or re-resolves) to a refused address, and a CONNECT_TO mapping, are both checked on the
 * address actually used. Such a client follows no redirects (none of tg_http's clients do) and
 * ignores proxy environment variables.
 *
 * Source of the pattern: curl docs/examples/multi-uv.c and STYLE.md "libcurl multi on libuv"
 * (poll errors become CURL_CSELECT_ERR; curl is never called from its own timer callback).
 */
#ifndef TG_HTTP_H
#define TG_HTTP_H

#include "tg_egress.h"

#include <stddef.h>
#include <uv.h>

typedef struct tg_http_client tg_http_client;
typedef struct tg_http_transfer tg_http_transfer;

/* A response, valid only for the duration of the callback it is passed to. */
typedef struct tg_http_response {
  long status;               /* HTTP status of the final response (0 if none) */
  const char *body;          /* NUL-terminated; "" when streamed to on_data or empty */
  size_t body_len;           /* bytes, without the NUL */
  double total_ms;           /* wall time of the transfer */
  const tg_http_transfer *t; /* for tg_http_header() */
  /* Addition (worker retry safety): when err != 0, 1 if the request certainly did not reach
     the peer: no connection was made (refused, unresolvable, connect timeout), or curl had not
     written the whole request body (CURLINFO_SIZE_UPLOAD_T < body_len) and no response status
     arrived; 0 when it may have (reset or closed after the request went out). 0 on success. */
  int not_sent;
} tg_http_response;

/* Called once per chunk of response body as it arrives (chunk boundaries are arbitrary).
 * Return 0 to go on, or a negative TG_E* code to abort the transfer: done_cb then gets that
 * code. Do not call tg_http_cancel() or tg_http_client_close() from inside it. */
typedef int (*tg_http_data_cb)(void *arg, tg_http_transfer *t, const char *buf, size_t len);

typedef void (*tg_http_done_cb)(void *arg, int err, const tg_http_response *resp);

typedef struct tg_http_request {
  const char *method;         /* "GET", "POST", "DELETE", ...; NULL = GET */
  const char *url;            /* absolute http(s) URL */
  const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL; copied */
  const char *body;           /* request body or NULL; copied */
  size_t body_len;            /* bytes */
  long timeout_ms;            /* whole transfer; 0 = no limit */
  long connect_timeout_ms;    /* 0 = 5000 */
  size_t max_body;            /* cap on the buffered body in bytes; 0 = 8 MiB */
  tg_http_data_cb on_data;    /* NULL: buffer the body into resp->body */
} tg_http_request;

/* Creates a client on loop. Returns 0, TG_ENOMEM, or TG_EIO when curl cannot be set up. */
int tg_http_client_init(tg_http_client **out, uv_loop_t *loop);

/*
 * Per-client settings for requests to user-supplied URLs; call before the first tg_http_send.
 * set_egress: every connection of the client's transfers must pass policy (borrowed: it must
 * outlive the client; NULL: no check), else the transfer fails with TG_EEGRESS.
 * set_connect_to: list is TOOLGATE_CONNECT_TO's syntax, comma-separated curl CONNECT_TO entries
 * "host:port:connect-host:connect-port" (copied; NULL or "" clears); TG_EINVAL for an entry
 * without three colons, TG_ENOMEM. set_ca_file: a PEM bundle path used instead of the system
 * store (copied; NULL clears); TG_ENOMEM.
 */
void tg_http_client_set_egress(tg_http_client *c, const tg_egress *policy);
int tg_http_client_set_connect_to(tg_http_client *c, const char *list);
int tg_http_client_set_ca_file(tg_http_client *c, const char *path);

/*
 * Starts a transfer. On success *out (if out is not NULL) is the transfer handle, valid until
 * done_cb returns or tg_http_cancel() is called. Errors: TG_EINVAL (no URL), TG_ENOMEM,
 * TG_ECANCELED (the client is closing).
 */
int tg_http_send(tg_http_client *c, const tg_http_request *req, tg_http_done_cb done_cb, void *arg,
                 tg_http_transfer **out);

/* Stops a transfer; its done_cb will never be called. Safe from any callback except on_data. */
void tg_http_cancel(tg_http_transfer *t);

/* HTTP status of t's current response as far as it has arrived (0 before the status line). */
long tg_http_status(const tg_http_transfer *t);

/* Value of response header name (case-insensitive) of t's final response so far, or NULL.
 * The pointer lives until the next callback of t. Works inside on_data and done_cb. */
const char *tg_http_header(const tg_http_transfer *t, const char *name);

/* The loop the client runs on (for modules layered on tg_http that need timers). */
uv_loop_t *tg_http_loop(const tg_http_client *c);

/* The response's Retry-After (RFC 9110 section 10.2.3: delay-seconds or an HTTP-date) in ms,
 * capped at one day; 0 for a date in the past; -1 when absent or unparseable. */
long tg_http_retry_after_ms(const tg_http_transfer *t);

/* Number of transfers in flight. */
size_t tg_http_active(const tg_http_client *c);

/*
 * Closes the client: transfers still in flight get done_cb(TG_ECANCELED), curl is cleaned up
 * while the loop is alive, then the uv handles are closed. on_closed(arg) (may be NULL) runs
 * from the loop once every handle is closed; the client is freed then. Run the loop until then.
 */
void tg_http_client_close(tg_http_client *c, void (*on_closed)(void *arg), void *arg);

#endif
