/*
 * tg_mcp_int.h: what the three files of the MCP client share; nothing outside them includes it.
 *
 * tg_mcp.c is the public API of tg_mcp.h and the caller's operations (`op`: connect, tools/list
 * across pages, tools/call), the kick timer's deferred work and closing. tg_mcp_rpc.c holds the
 * POST layer: fire-and-forget `post`s and JSON-RPC requests (`rpc`), reading their JSON or SSE
 * answers and routing every message on a stream. tg_mcp_session.c holds the session and its
 * streams: initialize, the session id, resumption with Last-Event-ID, replay on a lost session,
 * the optional GET stream and the timer for resumes and lingering streams.
 *
 * Non-static internals are named tg_mcp__* (libuv's uv__ convention); each is documented where it
 * is defined. The structs below are the client's whole state; the invariants are in tg_mcp.c.
 */
#ifndef TG_MCP_INT_H
#define TG_MCP_INT_H

#include "tg_buf.h"
#include "tg_mcp.h"
#include "tg_sse.h"

#include <stdint.h>

#define SEEN_IDS 64    /* event ids remembered to drop replayed duplicates */
#define SEEN_ID_LEN 72 /* longer ids are not remembered */
#define START_BURST 20 /* session starts allowed per START_WINDOW_MS; later ones wait */
#define START_WINDOW_MS 1000u

typedef struct rpc rpc;
typedef struct op op;
typedef struct post post;
typedef struct note note;

/* ST_WAIT: a session start is due at start_at (the start budget is spent); requests wait. */
enum { ST_IDLE, ST_WAIT, ST_INIT, ST_READY };
enum { MODE_NONE, MODE_JSON, MODE_SSE, MODE_ERRBODY };
enum { OP_CONNECT, OP_LIST, OP_CALL };
enum { POST_INITIALIZED, POST_ANSWER, POST_CANCELLED, POST_DELETE };

struct tg_mcp_client {
  tg_http_client *http;
  uv_timer_t kick; /* deferred work: queued posts, connect ops that are already satisfied */
  char *url;
  char **extra; /* "Name: value" lines from the options; never logged */
  size_t n_extra;
  long timeout_ms;
  size_t max_event, max_response; /* bytes */
  char *client_name, *client_version;
  int state;
  unsigned gen;                 /* bumped each time a session becomes ready */
  unsigned sent_in_session;     /* requests POSTed on session `gen` (not initialize) */
  uint64_t starts[START_BURST]; /* times of the latest session starts (ms), a ring */
  unsigned starts_next;
  uint64_t start_at; /* in ST_WAIT: when the deferred session start is due */
  char *session_id;
  char version[16];       /* negotiated; "" without a session */
  char offer_version[16]; /* offered in initialize */
  long long next_id;
  rpc *rpcs;
  op *ops;
  post *posts;
  uv_timer_t timer; /* resume waits (retry) and early closes of answered streams */
  int listen;       /* open the optional GET stream */
  rpc *listener;    /* that stream while it runs */
  tg_mcp_notify_cb on_notify;
  void *notify_arg;
  note *notes, **notes_tail; /* notifications waiting for the kick timer */
  size_t n_notes;
  char seen[SEEN_IDS][SEEN_ID_LEN]; /* ring of recent event ids */
  unsigned seen_next;
  /* the auth provider copied from the options (challenge NULL = none); auth_busy: a challenge
     is running and rpcs with auth_wait wait for it; auth_serial: bumped per new token */
  tg_mcp_auth_provider auth;
  int auth_busy;
  unsigned auth_serial;
  int closing;
  void (*on_closed)(void *);
  void *closed_arg;
};

struct rpc {
  tg_mcp_client *m;
  rpc *prev, *next;
  int in_batch; /* taken by tg_mcp__session_ready/tg_mcp__session_failed, not yet handled */
  op *op;
  long long id;
  char *method;
  char *body;
  int is_init, waiting, sent_with_session;
  int replays;       /* sends after a lost session */
  unsigned lost_gen; /* the newest session this request was lost with, 0 = none */
  int is_listen;     /* the optional GET stream, not a request */
  int sent;          /* the POST went out at least once (cancellation must be announced) */
  int undelivered;   /* set just before an error completion: tg_mcp_error.not_delivered */
  int completing;    /* inside tg_mcp__rpc_complete */
  int get_attempt;   /* the current transfer is a GET (resume or listen) */
  int auth_tries;    /* 401/403 answered by the auth provider (at most 2) */
  int auth_wait;     /* waiting for the provider's challenge to finish */
  /* m->auth_serial when last sent */
  unsigned auth_serial_sent;
  unsigned sent_gen;
  uint64_t deadline_ms;       /* 0 = none (listen) */
  uint64_t wake_at, grace_at; /* resume time; forced-completion time once answered */
  char *last_event_id;        /* last id seen on this request's streams */
  long retry_ms;              /* last `retry` seen, -1 if none */
  int idle_resumes;           /* resumes in a row without a new event id */
  tg_http_transfer *t;
  /* the current attempt */
  int mode;
  tg_sse_parser sse;
  tg_buf buf;   /* a JSON answer, or the start of an error body; capped by the mode */
  size_t total; /* bytes received on this attempt */
  char *session_seen;
  int got_response, is_rpc_error, rpc_code;
  json_t *result;
  char rpc_message[256];
  int fail_err;
  char fail_msg[256];
  void (*done)(rpc *r, const tg_mcp_error *err, json_t *result);
};

struct op {
  tg_mcp_client *m;
  op *prev, *next;
  int in_batch; /* as rpc.in_batch */
  int kind;
  int waiting_session, ready_now;
  union {
    tg_mcp_done_cb done;
    tg_mcp_tools_cb tools;
    tg_mcp_result_cb result;
  } cb;
  tg_mcp_progress_cb on_progress;
  void *arg;
  json_t *tools;
  int pages;
};

/* A notification to deliver from the kick timer: progress of request rpc_id, or (rpc_id 0) a
 * general one for on_notify. */
struct note {
  note *next;
  long long rpc_id;
  char *method;
  json_t *params;
};

struct post {
  tg_mcp_client *m;
  post *prev, *next;
  int kind;
  char *body; /* NULL for DELETE */
  tg_http_transfer *t;
  int queued; /* waiting for the kick timer */
};

static inline uint64_t now_ms(void)
{
  return uv_hrtime() / 1000000u;
}

#define LINK(head, x)                                                                              \
  do {                                                                                             \
    (x)->prev = NULL;                                                                              \
    (x)->next = (head);                                                                            \
    if (head)                                                                                      \
      (head)->prev = (x);                                                                          \
    (head) = (x);                                                                                  \
  } while (0)

#define UNLINK(head, x)                                                                            \
  do {                                                                                             \
    if ((x)->prev)                                                                                 \
      (x)->prev->next = (x)->next;                                                                 \
    else if ((head) == (x))                                                                        \
      (head) = (x)->next;                                                                          \
    if ((x)->next)                                                                                 \
      (x)->next->prev = (x)->prev;                                                                 \
    (x)->prev = (x)->next = NULL;                                                                  \
  } while (0)

/* tg_mcp_rpc.c: posts, JSON-RPC requests, their answers and the notifications they carry. */
int tg_mcp__build_headers(tg_mcp_client *m, int with_session, int with_body, int sse_get,
                          const char *last_event_id, char ***out);
void tg_mcp__free_headers(char **h);
void tg_mcp__post_free(post *p);
int tg_mcp__post_send(post *p);
int tg_mcp__post_new(tg_mcp_client *m, int kind, char *body, int queued);
void tg_mcp__rpc_reset_attempt(rpc *r);
void tg_mcp__rpc_reset_resume(rpc *r);
void tg_mcp__rpc_free(rpc *r);
rpc *tg_mcp__rpc_new(tg_mcp_client *m, const char *method, json_t *params, int is_init,
                     void (*done)(rpc *, const tg_mcp_error *, json_t *), op *o);
void tg_mcp__note_free(note *n);
void tg_mcp__note_deliver(tg_mcp_client *m, note *n);
void tg_mcp__rpc_complete(rpc *r, const tg_mcp_error *err, json_t *result);
void tg_mcp__rpc_fail(rpc *r, int err, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tg_mcp__rpc_finish_response(rpc *r, long status);
void tg_mcp__send_cancelled(tg_mcp_client *m, long long id, const char *reason);
void tg_mcp__rpc_timed_out(rpc *r, long status);
int tg_mcp__rpc_send(rpc *r, int get);

/* tg_mcp_session.c: the session, resumable streams, the optional GET stream, the timer. */
int tg_mcp__version_supported(const char *v);
int tg_mcp__seen_before(tg_mcp_client *m, const char *id);
void tg_mcp__note_cursor(rpc *r);
void tg_mcp__session_lost(rpc *r, long status);
int tg_mcp__session_begin(tg_mcp_client *m);
int tg_mcp__schedule_resume(rpc *r);
void tg_mcp__schedule(tg_mcp_client *m);
void tg_mcp__session_ready(tg_mcp_client *m);
void tg_mcp__session_failed(tg_mcp_client *m, const tg_mcp_error *err);
int tg_mcp__rpc_start(rpc *r);

/* tg_mcp.c: errors, the caller's operations, deferred work (the kick timer), closing. */
void tg_mcp__set_err(tg_mcp_error *e, int err, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tg_mcp__op_finish(op *o, const tg_mcp_error *err, json_t *result);
void tg_mcp__kick(tg_mcp_client *m);
void tg_mcp__close_finish(tg_mcp_client *m);

#endif
