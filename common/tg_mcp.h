/*
 * tg_mcp: MCP client over Streamable HTTP (protocol 2025-11-25, negotiating down to 2025-03-26).
 *
 * Facts: ../shared/reference/mcp-client.md (A.1-A.11, B.2, B.4). One tg_mcp_client is one MCP
 * session with one server URL. The first request initializes the session (initialize, then
 * notifications/initialized); later requests carry Mcp-Session-Id (when the server gave one)
 * and MCP-Protocol-Version. Every POST sends Accept: application/json, text/event-stream and
 * takes either answer; SSE bodies are parsed incrementally (tg_sse). tools/call keeps a
 * result with isError:true (a tool error) apart from a JSON-RPC error (a protocol error).
 * All network I/O goes through tg_http on the caller's loop.
 *
 * Callback rule: a call that returns an error never calls its callback; otherwise the callback
 * runs exactly once, from the loop. JSON handed to callbacks is borrowed (valid during the
 * callback; json_incref to keep it).
 */
#ifndef TG_MCP_H
#define TG_MCP_H

#include "tg_http.h"

#include <jansson.h>

typedef struct tg_mcp_client tg_mcp_client;

/* A server notification that is not the progress of a call made with on_progress:
 * notifications/tools/list_changed, notifications/message, other progress, ... method and params
 * (params may be NULL) are borrowed for the duration of the callback. Runs from the loop, never
 * from inside a transfer's data callback. */
typedef void (*tg_mcp_notify_cb)(void *arg, const char *method, json_t *params);

/* Bearer authorization for a server that answers 401/403 (tg_mcp_auth.h implements it). */
typedef void (*tg_mcp_auth_ready_cb)(void *arg, int err /* 0 or TG_E* */, const char *message);
typedef struct tg_mcp_auth_provider {
  /* "Authorization: Bearer ..." for every request, or NULL; borrowed until the next call. */
  const char *(*header)(void *self);
  /* A request got status 401/403 with this WWW-Authenticate (may be NULL): get a new token and
     call cb once from the loop (0: retry the request), or return an error and never call it. */
  int (*challenge)(void *self, long status, const char *www_authenticate, tg_mcp_auth_ready_cb cb,
                   void *arg);
  void (*cancel)(void *self); /* the client is closing: never call the pending cb */
  void *self;
} tg_mcp_auth_provider;

typedef struct tg_mcp_options {
  const char *url;            /* the MCP endpoint; copied */
  const char *const *headers; /* extra "Name: value" lines sent on every request (x-api-key,
                                 per-user secret headers), NULL-terminated or NULL; copied and
                                 never logged */
  long request_timeout_ms;    /* per JSON-RPC request; 0 = 30000 */
  const char *client_name;    /* clientInfo.name; NULL = "toolgate" */
  const char *client_version; /* clientInfo.version; NULL = the build's version */
  /* Additions (zero = the previous behaviour). */
  int listen;                 /* 1: once a session is ready, open the optional GET stream for
                                 server-initiated messages (404/405 = the server has none) */
  tg_mcp_notify_cb on_notify; /* server notifications (may be NULL: they are dropped) */
  void *notify_arg;
  size_t max_event_bytes;       /* cap on one SSE event; 0 = 4 MiB */
  size_t max_response_bytes;    /* cap on one response body (JSON, or a request's SSE stream);
                                   0 = 16 MiB */
  const char *protocol_version; /* the version offered in initialize: "2025-11-25" (NULL: the
                                   default), "2025-06-18" or "2025-03-26"; copied. An older one
                                   does without what it lacks, e.g. 2025-11-25's priming events
                                   (resumable POST streams), which cost server-everything ~1 ms
                                   per call (README, Benchmark: MCP client) */
  /* NULL: no Authorization from here (a header line may carry one); copied. On 401/403 a
     request is retried after the provider's challenge, at most twice (refresh or sign-in, then
     one scope step-up). */
  const tg_mcp_auth_provider *auth;
} tg_mcp_options;

/* Why a call failed. */
typedef struct tg_mcp_error {
  int err;          /* TG_E*: TG_EIO (unreachable), TG_ETIMEDOUT, TG_EAUTH (401/403),
                       TG_ERATELIMIT (429), TG_ENOTFOUND (session lost and not replayed: the
                       replay rules are in tg_mcp_session.c),
                       TG_EHTTP (other HTTP status), TG_EPROTO (JSON-RPC error or malformed
                       response), TG_ETOOBIG */
  long http_status; /* last HTTP status seen, 0 if none */
  int rpc_code;     /* JSON-RPC error.code when err == TG_EPROTO from an error response, else 0 */
  long retry_after_ms; /* from Retry-After, else -1 */
  char message[512];   /* human-readable, no secrets */
  /* 1 when the request certainly never reached the server, so repeating it cannot
     run it twice: it was never handed to HTTP (the session could not start, canceled while
     waiting), or its POST failed before a connection was made or before the whole body was
     written (tg_http_response.not_sent). 0 = it may have reached the server (the default on
     every other failure: HTTP statuses, resets after the request went out, timeouts). */
  int not_delivered;
} tg_mcp_error;

/* Creates a client (no I/O yet). Errors: TG_EINVAL (no url, a header line with CR/LF or no
 * name, an unsupported protocol_version), TG_ENOMEM. */
int tg_mcp_client_new(tg_mcp_client **out, tg_http_client *http, const tg_mcp_options *opt);

/* Explicitly initializes the session (optional: list/call initialize on demand). */
typedef void (*tg_mcp_done_cb)(void *arg, const tg_mcp_error *err /* NULL on success */);
int tg_mcp_connect(tg_mcp_client *m, tg_mcp_done_cb cb, void *arg);

/* tools/list, following nextCursor; tools is the concatenated array of Tool objects. */
typedef void (*tg_mcp_tools_cb)(void *arg, const tg_mcp_error *err, json_t *tools);
int tg_mcp_list_tools(tg_mcp_client *m, tg_mcp_tools_cb cb, void *arg);

/* tools/call {name, arguments}. On success err is NULL and result is the CallToolResult object
 * ({content, structuredContent?, isError?}); isError:true is still a success at this layer.
 * arguments (object or NULL) is borrowed for the duration of the call to this function. */
typedef void (*tg_mcp_result_cb)(void *arg, const tg_mcp_error *err, json_t *result);
int tg_mcp_call_tool(tg_mcp_client *m, const char *name, const json_t *arguments,
                     tg_mcp_result_cb cb, void *arg);

/* A tools/call in flight, for tg_mcp_cancel(); valid until its result callback has run. */
typedef struct tg_mcp_call tg_mcp_call;

/* notifications/progress for a call: progress and total (total < 0 when the server gave none)
 * as the server sent them, message may be NULL. Runs from the loop, before the result callback. */
typedef void (*tg_mcp_progress_cb)(void *arg, double progress, double total, const char *message);

/* tg_mcp_call_tool plus: on_progress (may be NULL) asks for progress (params._meta.progressToken
 * is set) and receives it with the call's arg; *out (may be NULL) gets the handle for
 * tg_mcp_cancel. Same errors and callback rule as tg_mcp_call_tool. */
int tg_mcp_call_tool_ex(tg_mcp_client *m, const char *name, const json_t *arguments,
                        tg_mcp_progress_cb on_progress, tg_mcp_result_cb cb, void *arg,
                        tg_mcp_call **out);

/* Caller-initiated cancellation (MCP basic/utilities/cancellation): when the request was sent,
 * POSTs notifications/cancelled {requestId, reason:"canceled"} and closes the request's stream;
 * the call's callback runs before this returns with err TG_ECANCELED. A late response is
 * ignored. Do not call it from inside that call's own callbacks. */
void tg_mcp_cancel(tg_mcp_call *call);

/* 1 when a session is initialized. */
int tg_mcp_is_connected(const tg_mcp_client *m);

/* The protocol version negotiated for the current session ("2025-11-25", ...), or NULL when no
 * session is initialized. Borrowed: valid until the session changes or the client is closed. */
const char *tg_mcp_protocol_version(const tg_mcp_client *m);

/* Ends the session (DELETE with Mcp-Session-Id when there is one; 405 is fine), cancels calls in
 * flight (their callbacks get TG_ECANCELED), frees the client, then on_closed(arg) (may be
 * NULL) runs from the loop. */
void tg_mcp_close(tg_mcp_client *m, void (*on_closed)(void *arg), void *arg);

#endif
