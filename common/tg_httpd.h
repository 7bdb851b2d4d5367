/*
 * tg_httpd: HTTP/1.1 server on libuv + llhttp, shared by the gateway and the Composio
 * simulator.
 *
 * One llhttp_t per connection, strict (no lenient flags). Caps on URL, header bytes, header
 * count and body (413 / 431 / 414, then close; after 413 the rest of the body is not read: the
 * connection closes once the response is written); 400 and close on a parse error; timers for slow
 * headers, slow bodies and idle keep-alive. A maximum number of connections never locks a new
 * client out: at the cap, a new connection closes the longest-idle keep-alive connection, else
 * the one that started sending its request head longest ago (connections with a request in
 * progress are never closed; when all have one, the new connection is accepted and closed at
 * once). One peer address holds at most max_connections_per_peer connections (more are accepted
 * and closed at once), and above 3/4 of the cap a request head must arrive within the shorter
 * pressure_header_timeout_ms. Refused and evicted connections, timeouts and parse errors are
 * logged at most once per interval with a count (tg_log_every), never once each. Requests on one
 * connection are served strictly in order: while a request awaits its response, reading from that
 * connection is paused, so pipelined requests queue in the socket. Expect: 100-continue is
 * answered.
 *
 * Handlers may respond at once or later from any callback on the same loop (asynchronous
 * handlers: a Composio call, a database job). A request object lives until tg_httpd_respond*()
 * is called on it, even if its client disconnected meanwhile (the response is then dropped and
 * the request freed); a handler must respond exactly once.
 */
#ifndef TG_HTTPD_H
#define TG_HTTPD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tg_httpd tg_httpd;
typedef struct tg_httpd_req tg_httpd_req;

typedef struct tg_httpd_limits {
  size_t max_url_bytes;              /* default 8 KiB (414 over it) */
  size_t max_header_bytes;           /* all header names + values, default 16 KiB (431) */
  size_t max_headers;                /* default 64 (431) */
  size_t max_body_bytes;             /* default 1 MiB (413) */
  uint64_t header_timeout_ms;        /* request line + headers must arrive within, default 10000 */
  uint64_t body_timeout_ms;          /* body must arrive within, default 30000 */
  uint64_t idle_timeout_ms;          /* keep-alive idle, default 60000 */
  unsigned max_connections;          /* open connections, default 1024 (eviction: see above) */
  unsigned max_connections_per_peer; /* open connections from one IP address, default 256 */
  uint64_t pressure_header_timeout_ms; /* header timeout above 3/4 of max_connections: 2000 */
  /* Listener option, default 0. 1: SO_REUSEPORT on the listening socket, so several processes
   * of one user that all set it listen on one address and the kernel spreads new connections
   * over them (Linux: by a hash of the connection's addresses); a listener that exits takes
   * only its own unaccepted connections with it. */
  int reuseport;
} tg_httpd_limits;

/* Fills l with the defaults above. */
void tg_httpd_limits_default(tg_httpd_limits *l);

/* Called on the loop once per complete request. */
typedef void (*tg_httpd_handler)(tg_httpd_req *req, void *arg);

/*
 * Binds host:port (port 0 picks a free port; see tg_httpd_port) and starts accepting.
 * limits may be NULL for the defaults. Errors: TG_ECONFLICT (the address is in use: another
 * process listens there, and not both with limits->reuseport), TG_EIO (bind/listen failed
 * otherwise); in both the uv error is logged and the listener handle is already closing, so run
 * the loop once before uv_loop_close. TG_EINVAL (bad host: an IPv4 or IPv6 literal is
 * required), TG_ENOMEM.
 */
int tg_httpd_start(tg_httpd **out, uv_loop_t *loop, const char *host, int port,
                   const tg_httpd_limits *limits, tg_httpd_handler handler, void *arg);

/* The bound TCP port. */
int tg_httpd_port(const tg_httpd *s);

/* Stops accepting, closes every connection (pending requests stay valid until answered; their
 * responses are dropped), and calls on_closed(arg) from the loop once all handles are closed. */
void tg_httpd_close(tg_httpd *s, void (*on_closed)(void *arg), void *arg);

/* --- Request accessors: pointers live until the request is answered. --- */
const char *tg_httpd_method(const tg_httpd_req *r); /* "GET", "POST", ... */
const char *
tg_httpd_path(const tg_httpd_req *r); /* raw path without the query, e.g. "/api/runs/7" */
/* First value of query parameter name, percent-decoded ('+' is a space), or NULL. */
const char *tg_httpd_query(const tg_httpd_req *r, const char *name);
/* The i-th query parameter (0-based, in order of appearance), percent-decoded: sets *name and
 * *value and returns 1, or returns 0 when there are fewer than i+1. For repeated keys and
 * "key[]=" forms. Pointers live until the request is answered. */
int tg_httpd_query_at(const tg_httpd_req *r, size_t i, const char **name, const char **value);
/* Value of header name (case-insensitive), or NULL; repeated headers: the first. */
const char *tg_httpd_header(const tg_httpd_req *r, const char *name);
/* The body (NUL-terminated; "" when empty), its length in bytes through len (may be NULL). */
const char *tg_httpd_body(const tg_httpd_req *r, size_t *len);
/* The listener's loop, for handlers that start async work. */
uv_loop_t *tg_httpd_loop(const tg_httpd_req *r);

/*
 * Sends the response and releases the request. headers: NULL-terminated "Name: value" lines
 * or NULL (Content-Length, Date and Connection are added). status e.g. 200. Returns 0, or
 * TG_ECANCELED when the client is gone (the request is released all the same).
 */
int tg_httpd_respond(tg_httpd_req *r, int status, const char *const *headers, const char *body,
                     size_t len);

/*
 * tg_httpd_respond, except that a long body (64 KiB or more) is written from the caller's memory
 * instead of being copied: body must stay valid and unchanged until release(arg) is called, which
 * happens exactly once in every case (written, failed, connection gone, or at once when the body
 * was copied after all). release may be NULL (then this is tg_httpd_respond). A cached answer of
 * megabytes (GET /api/agents/available-tools) is sent to many clients this way without a copy
 * per request.
 */
int tg_httpd_respond_shared(tg_httpd_req *r, int status, const char *const *headers,
                            const char *body, size_t len, void (*release)(void *arg), void *arg);

/* Responds with body serialised as compact JSON and Content-Type: application/json;
 * charset=utf-8. Takes ownership of body. Extra headers as in tg_httpd_respond, at most 32 (more:
 * 500 and TG_EINVAL). */
int tg_httpd_respond_json(tg_httpd_req *r, int status, const char *const *headers, json_t *body);

/* Responds with the error shape of DESIGN.md section 3: {"error": code, "message": message}. */
int tg_httpd_respond_error(tg_httpd_req *r, int status, const char *code, const char *message);

/* --- Streaming responses (server-sent events and other long answers). --- */

/* Why a stream's callback runs (tg_httpd_stream_cb). */
enum {
  TG_HTTPD_STREAM_DRAINED = 1, /* the queued bytes fell below the low-water mark after a write
                                  answered TG_EBUSY: write again */
  TG_HTTPD_STREAM_CLOSED       /* the client went away or the server is closing: write nothing
                                  more; call tg_httpd_stream_end to release the request */
};
typedef void (*tg_httpd_stream_cb)(tg_httpd_req *r, int event, void *arg);

/*
 * Answers r with a body of unknown length: the head (status, headers as in tg_httpd_respond;
 * Date and Connection: close are added, no Content-Length) now, the body by
 * tg_httpd_stream_write, the end by tg_httpd_stream_end (the connection then closes: the body
 * is delimited by the close). cb(r, event, arg) runs on the loop for the events above, never from
 * inside a tg_httpd_stream_* call. Returns 0, or TG_ECANCELED when the client is gone (cb is
 * never called; call tg_httpd_stream_end all the same), TG_ENOMEM / TG_ETOOBIG.
 */
int tg_httpd_stream_begin(tg_httpd_req *r, int status, const char *const *headers,
                          tg_httpd_stream_cb cb, void *arg);

/*
 * Queues len bytes of data (copied). Returns 0; TG_EBUSY when queued but the connection holds
 * more than 1 MiB unsent (back-pressure: write no more until TG_HTTPD_STREAM_DRAINED);
 * TG_ECANCELED when the client is gone (nothing queued); TG_ENOMEM.
 */
int tg_httpd_stream_write(tg_httpd_req *r, const char *data, size_t len);

/* Ends the stream: what was queued is sent, then the connection closes; releases r (after this
 * cb is never called). Exactly once per tg_httpd_stream_begin, also after CLOSED. */
void tg_httpd_stream_end(tg_httpd_req *r);

#endif
