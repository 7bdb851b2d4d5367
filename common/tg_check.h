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
#include <stdint.h>

/* One connected_accounts row of the user, as stored by us. Strings are borrowed by the calls
 * below only for their duration (tg_check_start copies what it keeps). */
typedef struct tg_check_row {
  const char *provider;            /* "gmail" */
  const char *status;              /* our status: ACTIVE, EXPIRED, PENDING, DISCONNECTED, ... */
  const char *composio_account_id; /* "ca_..." or NULL */
  const char *toolkit_slug;        /* "gmail" */
} tg_check_row;

enum { TG_CHECK_OK = 0, TG_CHECK_BLOCKED = 1, TG_CHECK_UNAVAILABLE = 2 };

/* The reason (and recorded status_reason) of an account Composio does not have (404). */
#define TG_CHECK_NOT_FOUND "connected_account_not_found"
/* The reasons (and recorded status_reason) of an account Composio reports ACTIVE that may not
 * run tools. */
#define TG_CHECK_REFRESH "auth_refresh_required"
#define TG_CHECK_DISABLED "is_disabled"

typedef struct tg_check_result {
  int outcome;         /* TG_CHECK_* */
  json_t *providers;   /* array of blocked provider names, sorted (empty when ok) */
  json_t *reasons;     /* object provider -> reason, e.g. "connected_account_status=EXPIRED",
                          "auth_refresh_required", "is_disabled", "not_connected" */
  json_t *observed;    /* array of {"provider","composio_account_id","status",
                          "status_reason"} as Composio reported them, for write-back; an
                          account Composio does not have is REVOKED with status_reason
                          TG_CHECK_NOT_FOUND */
  long retry_after_ms; /* UNAVAILABLE: how long to wait (from Composio's Retry-After, else
                          a default of 5000) */
  const char *detail;  /* UNAVAILABLE: why, for logs (static or owned by the result) */
  int composio_calls;  /* HTTP calls made (list pages + gets), for metrics */
  /* UNAVAILABLE only: 1 when Composio rejected OUR API key (HTTP 401/403 on a call whose
     answer is missing), so waiting will not help (error_class broker_auth); else 0.
     Zero in every result built without a network (tg_check_decide, caller-made stubs). */
  int broker_auth;
  /* UNAVAILABLE only: the Composio failure that left an account unchecked, for the caller's
     answer (gateway/gw_composio_fault.h): TG_EAUTH when our key was rejected, else the
     failure of the last call that could have answered (a lookup's, else the list's), with
     its HTTP status (0: no answer). composio_err 0: no Composio call failed (shutdown, out of
     memory), and in every result built without a network. */
  int composio_err;
  long composio_status;
} tg_check_result;

/*
 * The scope of a run: the providers that must be ACTIVE before it is queued or executed.
 *   - tool_constraints (an object, may be NULL) given: tool_constraints.providers ∪ the
 *     "provider" prefix of each "provider.tool" string in tool_constraints.tools;
 *   - otherwise the providers the workflow itself uses (workflow_providers: an array of names,
 *     may be NULL; tg_workflow_providers gives it), when it names any;
 *   - otherwise every provider the user has a row for that is not DISCONNECTED, whatever its
 *     status (so an EXPIRED or FAILED row is in scope and blocks without a network call).
 * Returns a new sorted array of unique provider names (never NULL unless out of memory).
 */
json_t *tg_check_scope(const json_t *tool_constraints, const json_t *workflow_providers,
                       const tg_check_row *rows, size_t n_rows);

/*
 * Runs the check for user_id over scope (array of provider names, borrowed). Providers in scope
 * whose row is missing or not ACTIVE are blocked without a network call
 * ("not_connected" / "connected_account_status=<STATUS>"). If every provider is decided that
 * way, cb runs without any Composio call (still asynchronously, from the loop). cb receives a
 * result it must release with tg_check_result_free(). Returns 0, or TG_ENOMEM/TG_EINVAL (then
 * cb is never called). c may be NULL only when no provider needs Composio.
 *
 * Partial answers: when some ACTIVE accounts could not be checked (list and per-account GET
 * both failed, or the list was refused: after a 429 or a 401/403 no per-account GET is sent,
 * the result's composio_err says which and retry_after_ms carries Composio's Retry-After) but
 * another provider is already known to be blocked, the outcome is BLOCKED with the known providers
 * (the run cannot go ahead either way, and the 409 is actionable); otherwise UNAVAILABLE. A 404 on
 * a per-account GET is an answer: reason connected_account_not_found, observed as REVOKED with that
 * status_reason (what the status route records for a 404). *out (if out is not NULL) is valid until
 * cb runs or tg_check_cancel() is called; call tg_check_cancel for every check in flight before
 * tg_composio_free() (otherwise cb never runs and the check's memory is not reclaimed).
 */
typedef void (*tg_check_cb)(void *arg, tg_check_result *res);
typedef struct tg_check tg_check;
int tg_check_start(tg_composio *c, uv_loop_t *loop, const char *user_id, const json_t *scope,
                   const tg_check_row *rows, size_t n_rows, tg_check_cb cb, void *arg,
                   tg_check **out);

/* Stops a check: its Composio calls are canceled, cb never runs, its memory is released (at
 * once, or from the loop when a timer handle must close first). NULL-safe. Not from inside cb.
 * Call it for every check in flight before tg_composio_free(). */
void tg_check_cancel(tg_check *k);

/*
 * The row of provider (a pointer into rows) that Composio must answer for: the row that speaks
 * for the provider (an ACTIVE one if any, as in tg_check_decide) when it is ACTIVE and has a
 * composio_account_id. NULL otherwise (the provider is decided from our rows alone) and when
 * provider is NULL.
 */
const tg_check_row *tg_check_net_row(const tg_check_row *rows, size_t n_rows, const char *provider);

/*
 * tg_check_fetch: the network half of the check, shared by tg_check_start and the gateway's
 * coalescing pool (gateway/gw_checkpool.c). It asks Composio about a set of connected account
 * ids (DESIGN.md section 4; composio-api.md 2.2 and 2.6), possibly for several users at once:
 *   1. ONE list call GET /api/v3/connected_accounts?user_ids=<u1,u2,...>&toolkit_slugs=<slugs>,
 *      all pages; an id the list mentions is answered (items are matched to ids by account id
 *      only, never by their deprecated user_id, so several users can share one call without
 *      one user's answer reaching another);
 *   2. a GET /api/v3/connected_accounts/{id}, all in parallel, for every id still unanswered
 *      (all of them when the list call failed or could not start). A 404 answers "not found".
 * With stop_on_refusal, a failure with TG_ERATELIMIT (429) or TG_EAUTH (401/403) starts no
 * further GET (calls already in flight run to their end): Composio's limit is per organisation
 * and a rejected key stays rejected, so more calls would not help.
 * Deciding what the answers mean (tg_check_decide) is left to the caller.
 */
typedef struct tg_check_fetch tg_check_fetch;

/* What became of one id. */
enum { TG_CHECK_ID_UNKNOWN = 0, TG_CHECK_ID_ANSWERED = 1, TG_CHECK_ID_NOT_FOUND = 2 };

typedef struct tg_check_fetch_req {
  const char *user_id;         /* the list call's user_ids filter when n_users is 0 (one user) */
  const char *const *user_ids; /* or several users (n_users >= 1): user_ids=u1,u2,... (each
                                  URL-escaped, comma-joined: tg_composio_list_accounts_users) */
  size_t n_users;
  const char *const *toolkit_slugs; /* the list call's toolkit_slugs filter (n_slugs may be 0) */
  size_t n_slugs;
  const char *const *ids; /* the account ids to answer, asked as given (the caller removes
                             duplicates if it wants to); n_ids 0: no call at all */
  size_t n_ids;
  int stop_on_refusal; /* 1: a 429 or 401/403 starts no further GET */
  /* Optional: runs for each Composio call that failed and left its id(s) unanswered (a 404
     on a GET is an answer and does not count), as it happens, with the call's result
     (borrowed); also for a call that could not start (http_status 0), possibly from inside
     tg_check_fetch_start. It must not cancel the fetch. */
  void (*on_failure)(void *arg, const tg_composio_result *res);
} tg_check_fetch_req;

/* What a fetch learnt. Everything is owned by the fetch and valid until the callback returns. */
typedef struct tg_check_fetched {
  const char *const *ids; /* copies of req.ids, same order */
  const int *state;       /* per id: TG_CHECK_ID_* */
  size_t n_ids;
  size_t n_unknown;                 /* ids left TG_CHECK_ID_UNKNOWN */
  const tg_composio_account *accts; /* one per answered id (an id asked twice: twice), as
                                       Composio reported it (every field copied) */
  size_t n_accts;
  int calls;                   /* HTTP requests made: list pages + GETs (for metrics) */
  tg_composio_result list_err; /* the list call's failure; err 0 when it answered. message is
                                  NULL and http_calls 0 in both of these */
  tg_composio_result get_err;  /* the first GET failure that left an id unanswered; err 0: none */
  const tg_composio_result *first_err; /* &list_err if it failed, else &get_err if a GET
                                          failed, else NULL: the first failure of the fetch */
  long retry_after_ms;                 /* the largest Retry-After (ms) of all failures, or -1 */
  int auth_rejected; /* 1 when any call failed with TG_EAUTH: Composio rejected our key */
} tg_check_fetched;

typedef void (*tg_check_fetch_cb)(void *arg, const tg_check_fetched *res);

/*
 * Starts a fetch; req and everything it points to are borrowed for the call only (ids are
 * copied). cb runs exactly once, later, from the loop, when every call has ended: from a
 * Composio callback, or from a zero timer on loop when no call is in flight (n_ids 0, or no
 * call could start: the start errors are in list_err/get_err). The fetch frees itself after
 * cb returns; cb may start other fetches but must not cancel this one. c may be NULL only
 * when n_ids is 0. *out (if out is not NULL) is valid until cb runs or the fetch is canceled.
 * Returns 0, or TG_EINVAL (no loop, req or cb; no user: user_id NULL with n_users 0, or a NULL
 * in user_ids; an id NULL or empty; c NULL with ids),
 * TG_ENOMEM or TG_EIO (the loop refused a timer); then cb never runs.
 */
int tg_check_fetch_start(tg_composio *c, uv_loop_t *loop, const tg_check_fetch_req *req,
                         tg_check_fetch_cb cb, void *arg, tg_check_fetch **out);

/* Stops a fetch: its Composio calls are canceled, cb never runs, its memory is released (at
 * once, or from the loop when its timer must close first). NULL-safe. Not from inside cb or
 * on_failure. Call it for every fetch in flight before tg_composio_free(). */
void tg_check_fetch_cancel(tg_check_fetch *f);

/* Marks r (an UNAVAILABLE result) with the failure a fetch met: broker_auth, composio_err and
 * composio_status as their comments above say. is NULL (no fetch) leaves them 0. */
void tg_check_note_failure(tg_check_result *r, const tg_check_fetched *is);

/* Releases a result from tg_check_start's callback or tg_check_decide (NULL-safe). */
void tg_check_result_free(tg_check_result *res);

/*
 * The pure decision of section 4, without a network (tg_check_start calls it once Composio has
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
 * observed = one entry per matched account, plus one REVOKED / TG_CHECK_NOT_FOUND entry per
 * ACTIVE row whose account is absent from accts (the caller passes only answered accounts, so
 * absent means Composio said 404); composio_calls is 0. Returns 0, TG_EINVAL (scope
 * not an array) or TG_ENOMEM.
 */
int tg_check_decide(const json_t *scope, const tg_check_row *rows, size_t n_rows,
                    const tg_composio_account *accts, size_t n_accts, tg_check_result **out);

/* The 409 body of DESIGN.md section 3: {"error":"oauth_refresh_required","message":...,
 * "providers":[...],"reasons":{...}}. New reference. */
json_t *tg_check_409_body(const tg_check_result *res);

/* --- Recording observations (common/tg_check_db.c; the only part that uses the database) --- */

typedef struct tg_db tg_db;

/* Composio's account status -> ours (schema CHECK list): INITIATED/INITIALIZING → "PENDING",
 * ACTIVE, EXPIRED, INACTIVE, FAILED, REVOKED as they are; anything else (or NULL) → NULL. */
const char *tg_check_status_from_composio(const char *composio_status);

/*
 * What we record of Composio account a (DESIGN.md section 4, the same rules as
 * tg_check_write_back): *status gets our status (tg_check_status_from_composio; NULL for a
 * status we do not know: the caller keeps the row's); the result is the status_reason to store:
 * for an ACTIVE account that may not run tools TG_CHECK_REFRESH or TG_CHECK_DISABLED (in the
 * order tg_check_decide checks them), for a status we do not know "composio_status=<X>" (written
 * into buf, len >= 64), else Composio's own status_reason (borrowed from a; may be NULL).
 */
const char *tg_check_record(const tg_composio_account *a, const char **status, char *buf,
                            size_t len);

/*
 * The one answer to "may this connection run tools?" for a stored row or a recorded
 * observation: status is ACTIVE and status_reason is none of the reasons recorded for an ACTIVE
 * account that may not (TG_CHECK_REFRESH, TG_CHECK_DISABLED, "composio_status=<X>"). The
 * provider list's "connected" and the status route's "authorized" are both this.
 */
int tg_check_authorized(const char *status, const char *status_reason);

/*
 * Writes res->observed back to user_id's connected_accounts rows (status, status_reason,
 * version when either changed, last_checked_at = now_ms), matching user, provider and Composio
 * account id; rows the user DISCONNECTED are left alone. Runs on the caller's connection and
 * transaction (a tg_dbq job). *rows (may be NULL) gets the rows written. Returns 0 or the
 * tg_db error.
 */
int tg_check_write_back(tg_db *db, const char *user_id, const tg_check_result *res, int64_t now_ms,
                        int *rows);

#endif
