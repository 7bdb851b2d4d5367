/*
 * tg_check: the provider status check of DESIGN.md section 4, shared by the gateway
 * (pre-queue) and the worker (pre-execute).
 *
 *   check(user, scope) -> ok | blocked{providers, reasons} | unavailable
 *
 * The caller reads the user's connected_accounts rows from SQLite (off the loop) and passes
 * them in; tg_check never touches the database, so it is the same on both sides and unit
 * testable. It makes ONE Composio list call per check (all pages), looks up by id any ACTIVE
 * account missing from the list, and falls back to per-account GETs in parallel when the list
 * call fails. Nothing is cached. The result lists what was observed, so the caller can write
 * statuses back (status, reason, version, last_checked_at).
 */
#ifndef TG_CHECK_H
#define TG_CHECK_H

#include "tg_composio.h"

#include <jansson.h>

/* One connected_accounts row of the user, as stored by us. Strings are borrowed by the calls
 * below only for their duration (tg_check_run copies what it keeps). */
typedef struct tg_check_row {
  const char *provider;            /* "gmail" */
  const char *status;              /* our status: ACTIVE, EXPIRED, PENDING, DISCONNECTED, ... */
  const char *composio_account_id; /* "ca_..." or NULL */
  const char *toolkit_slug;        /* "gmail" */
} tg_check_row;

enum { TG_CHECK_OK = 0, TG_CHECK_BLOCKED = 1, TG_CHECK_UNAVAILABLE = 2 };

typedef struct tg_check_result {
  int outcome;         /* TG_CHECK_* */
  json_t *providers;   /* array of blocked provider names, sorted (empty when ok) */
  json_t *reasons;     /* object provider -> reason, e.g. "connected_account_status=EXPIRED",
                          "auth_refresh_required", "is_disabled", "not_connected" */
  json_t *observed;    /* array of {"provider","composio_account_id","status",
                          "status_reason"} as Composio reported them, for write-back */
  long retry_after_ms; /* UNAVAILABLE: how long to wait (from Composio's Retry-After, else
                          a default of 5000) */
  const char *detail;  /* UNAVAILABLE: why, for logs (static or owned by the result) */
  int composio_calls;  /* HTTP calls made (list pages + gets), for metrics */
} tg_check_result;

/*
 * The scope of a run (seed rules): if tool_constraints (an object, may be NULL) is present:
 * tool_constraints.providers ∪ the "provider" prefix of each "provider.tool" string in
 * tool_constraints.tools. Without tool_constraints: every provider whose row is ACTIVE.
 * Returns a new sorted array of unique provider names (never NULL unless out of memory).
 */
json_t *tg_check_scope(const json_t *tool_constraints, const tg_check_row *rows, size_t n_rows);

/*
 * Runs the check for user_id over scope (array of provider names, borrowed). Providers in scope
 * whose row is missing or not ACTIVE are blocked without a network call
 * ("not_connected" / "connected_account_status=<STATUS>"). If every provider is decided that
 * way, cb runs without any Composio call (still asynchronously, from the loop). cb receives a
 * result it must release with tg_check_result_free(). Returns 0, or TG_ENOMEM/TG_EINVAL (then
 * cb is never called).
 */
typedef void (*tg_check_cb)(void *arg, tg_check_result *res);
int tg_check_run(tg_composio *c, uv_loop_t *loop, const char *user_id, const json_t *scope,
                 const tg_check_row *rows, size_t n_rows, tg_check_cb cb, void *arg);

void tg_check_result_free(tg_check_result *res);

/* The 409 body of DESIGN.md section 3: {"error":"oauth_refresh_required","message":...,
 * "providers":[...],"reasons":{...}}. New reference. */
json_t *tg_check_409_body(const tg_check_result *res);

#endif
