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
  /* Addition: UNAVAILABLE only: 1 when Composio rejected OUR API key (HTTP 401/403 on a call
     whose answer is missing), so waiting will not help (error_class broker_auth); else 0.
     Zero in every result built without a network (tg_check_decide, caller-made stubs). */
  int broker_auth;
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
 * cb is never called). c may be NULL only when no provider needs Composio.
 *
 * Partial answers: when some ACTIVE accounts could not be checked (list and per-account GET
 * both failed) but another provider is already known to be blocked, the outcome is BLOCKED
 * with the known providers (the run cannot go ahead either way, and the 409 is actionable);
 * otherwise UNAVAILABLE. A 404 on a per-account GET is an answer (connected_account_not_found)
 * and appears in reasons, not in observed. If the tg_composio client is freed while a check
 * is in flight, cb is never called and the check's memory is not reclaimed: use
 * tg_check_start/tg_check_cancel when checks may be in flight at shutdown.
 */
typedef void (*tg_check_cb)(void *arg, tg_check_result *res);
int tg_check_run(tg_composio *c, uv_loop_t *loop, const char *user_id, const json_t *scope,
                 const tg_check_row *rows, size_t n_rows, tg_check_cb cb, void *arg);

/*
 * tg_check_run with a handle: *out (if out is not NULL) is valid until cb runs or
 * tg_check_cancel() is called. Same errors and callback rule as tg_check_run.
 */
typedef struct tg_check tg_check;
int tg_check_start(tg_composio *c, uv_loop_t *loop, const char *user_id, const json_t *scope,
                   const tg_check_row *rows, size_t n_rows, tg_check_cb cb, void *arg,
                   tg_check **out);

/* Stops a check: its Composio calls are canceled, cb never runs, its memory is released (at
 * once, or from the loop when a timer handle must close first). NULL-safe. Not from inside cb.
 * Call it for every check in flight before tg_composio_free(). */
void tg_check_cancel(tg_check *k);

/* Releases a result from tg_check_run's callback or tg_check_decide (NULL-safe). */
void tg_check_result_free(tg_check_result *res);

/*
 * The pure decision of section 4, without a network (tg_check_run calls it once Composio has
 * answered). For each provider in scope (array of names, borrowed; non-strings ignored), in
 * this order, the first rule that matches decides:
 *   no row                                   -> "not_connected"
 *   our row not ACTIVE                       -> "connected_account_status=<OUR STATUS>"
 *   ACTIVE row without composio_account_id,
 *   or its account absent from accts         -> "connected_account_not_found"
 *   Composio status != ACTIVE                -> "connected_account_status=<COMPOSIO STATUS>"
 *   auth_refresh_required                    -> "auth_refresh_required"
 *   is_disabled                              -> "is_disabled"
 * When a provider has several rows, an ACTIVE one is used. accts are matched to rows by id ==
 * composio_account_id; accounts that match no row in scope are ignored. *out (new, free with
 * tg_check_result_free) is TG_CHECK_OK or TG_CHECK_BLOCKED with providers sorted, reasons, and
 * observed = one entry per matched account; composio_calls is 0. Returns 0, TG_EINVAL (scope
 * not an array) or TG_ENOMEM.
 */
int tg_check_decide(const json_t *scope, const tg_check_row *rows, size_t n_rows,
                    const tg_composio_account *accts, size_t n_accts, tg_check_result **out);

/* The 409 body of DESIGN.md section 3: {"error":"oauth_refresh_required","message":...,
 * "providers":[...],"reasons":{...}}. New reference. */
json_t *tg_check_409_body(const tg_check_result *res);

#endif
