/*
 * composio-sim: a local stand-in for Composio's REST API v3 / v3.1 (the subset toolgate uses),
 * built on tg_httpd, with a control API under /_sim/ for tests. Facts and choices follow
 * /work/shared/reference/composio-api.md (sections 1, 2, 4, 6 and 9); where that page marks a
 * behaviour [I] the simulator's choice is written next to the code.
 *
 * Everything runs on one libuv loop, single-threaded; the store is a plain array of accounts
 * (soft-deleted ones are kept, flagged).
 */
#ifndef SIM_H
#define SIM_H

#include "tg_httpd.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SIM_EXPIRE_MS (10 * 60 * 1000) /* INITIATED/INITIALIZING expire after 10 min (2.7) */
#define SIM_RATE_LIMIT 2000            /* Hobby plan, fixed 1-minute window (6.2) */

typedef struct sim_account {
  char id[16]; /* "ca_" + 12 nanoid characters */
  char *user_id;
  char *toolkit;        /* toolkit.slug */
  char *auth_config_id; /* "ac_..." */
  char status[16];
  char *status_reason; /* NULL = JSON null */
  int is_disabled;
  int refresh_required; /* -1: field absent; 0/1: auth_refresh_required false/true */
  int deleted;
  uint64_t seq; /* creation order, tie-break for equal timestamps */
  uint64_t created_at, updated_at, initiated_at, changed_at; /* ms since the epoch */
  char *link_token;   /* "lk_..." while the hosted link page is usable */
  char *redirect_url; /* state.val.redirectUrl while INITIATED */
  char *callback_url;
  char access_token[32];
} sim_account;

typedef struct sim_auth_config {
  char *slug, *id;
} sim_auth_config;

typedef struct sim_delayed sim_delayed;

/* The simulated Composio API routes (sim_routes.c classifies a request into one). */
enum route { R_UNKNOWN, R_LIST, R_GET, R_LINK, R_GENERATE, R_DELETE, R_STATUS, R_COUNT };

typedef struct sim {
  uv_loop_t *loop;
  tg_httpd *srv;
  char *api_key, *mcp_url, *public_url; /* mcp_url NULL: <public-url>/v3/mcp/<server id> */
  sim_auth_config *acs;
  size_t n_acs;
  sim_account **accts;
  size_t n_accts, cap_accts;
  uint64_t next_seq;
  /* control state */
  uint64_t latency_ms;
  long fail_count;
  int fail_status, fail_retry_after;
  char *fail_prefix;
  int next_link_failed;
  /* counters */
  long calls, by_route[R_COUNT]; /* by_route: per route of /_sim/stats */
  uint64_t window_start;
  long window_count;
  sim_delayed *delayed;
  int stopping;
} sim;

/* --- sim_store.c --- */
uint64_t sim_now_ms(void);
/* Writes ms as ISO 8601 UTC with milliseconds ("2026-01-02T03:04:05.678Z"); out >= 32 bytes. */
void sim_iso(uint64_t ms, char *out);
/* n random nanoid characters ([A-Za-z0-9_-]) and a NUL into out (n + 1 bytes). */
void sim_nanoid(char *out, size_t n);
/* 1 if s is a known ConnectedAccount status (2.3). */
int sim_status_valid(const char *s);
/* The toolkit slug of auth config id, or NULL. */
const char *sim_ac_slug(const sim *s, const char *ac_id);
/* The auth config id of toolkit slug, or NULL. */
const char *sim_ac_id(const sim *s, const char *slug);
/* Adds an account (status as given); NULL on allocation failure. */
sim_account *sim_account_add(sim *s, const char *user_id, const char *toolkit,
                             const char *auth_config_id, const char *status);
/* Moves a to status (reason may be NULL); fills the status's state fields. */
void sim_account_set_status(sim_account *a, const char *status, const char *reason);
/* The account with this id; deleted ones only when include_deleted. */
sim_account *sim_account_find(sim *s, const char *id, int include_deleted);
/* Expires INITIATED/INITIALIZING accounts older than 10 minutes (lazy, on every access). */
void sim_expire_sweep(sim *s);
/* The ConnectedAccount object (2.3); new reference. */
json_t *sim_account_json(const sim_account *a);
/* Drops all accounts, counters, latency, failures and the next link outcome. */
void sim_reset(sim *s);
/* Frees everything sim owns (not the struct). */
void sim_free(sim *s);

/* --- sim_routes.c --- */
/* The tg_httpd handler: /healthz, /link/{token}, /_sim/..., /api/v3[.1]/... */
void sim_handle(tg_httpd_req *r, void *arg);
/* Answers every delayed response at once (dropped, the server is closing) and frees them. */
void sim_flush_delayed(sim *s);
/* Appends value to out percent-encoded (RFC 3986 unreserved kept). */
int sim_urlencode_append(char **out, const char *value);

/* --- sim_control.c --- */
/* The control API under /_sim/ (no API key). */
void sim_control(sim *s, tg_httpd_req *r, const char *rest);
/* Sends a JSON error envelope {"error":{message, code, status[, slug]}} with no extra headers. */
void sim_send_envelope(tg_httpd_req *r, int status, int code, const char *slug,
                       const char *message);

#endif
