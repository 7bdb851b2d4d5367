/*
 * tg_err: the one error table of toolgate.
 *
 * Every fallible function in common/, gateway/ and worker/ returns int: 0 on success, one of the
 * negative TG_E* codes below on failure, results through out parameters. Foreign codes
 * (CURLcode, SQLITE_*, UV_E*) are converted where they enter our code, and their original text is
 * logged there; callers above that boundary see only TG_E*.
 */
#ifndef TG_ERR_H
#define TG_ERR_H

enum {
  TG_OK = 0,
  TG_ENOMEM = -1,      /* allocation failed */
  TG_EINVAL = -2,      /* bad argument or malformed input (JSON, HTTP, SSE, config) */
  TG_EIO = -3,         /* network or file I/O failed (connection refused, reset, ...) */
  TG_ENOTFOUND = -4,   /* the thing asked for does not exist */
  TG_ETIMEDOUT = -5,   /* a deadline passed */
  TG_EPROTO = -6,      /* the peer broke its protocol (bad JSON-RPC, unexpected HTTP status) */
  TG_EDB = -7,         /* SQLite failed (other than busy) */
  TG_EBUSY = -8,       /* SQLite busy/locked beyond the busy timeout */
  TG_ETOOBIG = -9,     /* a size cap was hit (body, event, header) */
  TG_ECONFLICT = -10,  /* a uniqueness or state precondition failed */
  TG_EHTTP = -11,      /* the peer answered an HTTP error status (status kept by the caller) */
  TG_ECANCELED = -12,  /* the operation was canceled (shutdown, close) */
  TG_EAUTH = -13,      /* the peer rejected our credentials (401/403) */
  TG_ESTATE = -14,     /* the object is in the wrong state for this call */
  TG_ERATELIMIT = -15, /* the peer answered 429 */
  TG_EEGRESS = -16     /* the egress policy refused the destination address (tg_egress) */
};

/* Returns a static, human-readable description of a TG_E* code (never NULL). */
const char *tg_strerror(int err);

/* Returns the snake_case name of a TG_E* code, e.g. "timeout" (never NULL). */
const char *tg_errname(int err);

#endif
