/*
 * tg_log: one JSON object per line on stderr, one line per event.
 *
 * Every line has "ts" (RFC 3339 UTC with ms), "level", "svc" (the program) and "event" (a
 * snake_case name), then the caller's fields. Secrets never reach the output: before a line is
 * written, every object member whose key names a secret (see tg_redact_is_secret_key) has its
 * value replaced by "[REDACTED]", at any depth, and the held secret values (below) are cut out.
 * Thread-safe: a line is written with one call under the stdio lock, so lines from threads never
 * interleave.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>

#include "tg_config.h" /* tg_secret, for the guard below */

typedef enum { TG_LOG_DEBUG = 0, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR } tg_log_level;

/* Sets the program name written as "svc" and the lowest level written. Call once at start-up;
 * before it, svc is "toolgate" and the level is info. */
void tg_log_init(const char *service, tg_log_level min_level);

/* Parses "debug", "info", "warn" or "error"; anything else gives TG_LOG_INFO. */
tg_log_level tg_log_level_parse(const char *s);

/*
 * Writes one event. fmt is a jansson json_pack() format that builds an object (e.g.
 * "{s:s, s:i}"), or NULL for no fields. A pack error is itself logged as the field
 * "log_format_error" rather than dropped. Values are copied; nothing is retained.
 */
void tg_log(tg_log_level level, const char *event, const char *fmt, ...);

/* Like tg_log with a ready object; takes ownership of fields (which may be NULL). */
void tg_log_json(tg_log_level level, const char *event, json_t *fields);

/* One field of tg_log_kv: a string (s; NULL leaves the field out), an integer (i) or a JSON
 * value (j, borrowed; NULL leaves the field out). */
typedef enum { TG_KV_STR, TG_KV_INT, TG_KV_JSON } tg_log_kv_type;
typedef struct tg_log_field {
  const char *key;
  tg_log_kv_type type;
  const char *s;
  long long i;
  const json_t *j;
} tg_log_field;

/*
 * Writes one event from n typed fields (distinct keys), without building a JSON object: the
 * line is exactly the one tg_log_json writes for the object holding these members in this
 * order. For hot paths (one admission decision per request): the common line (plain event name,
 * no secret-named key, no held secret in a value, no repeated or reserved key) is generated
 * straight from the fields with yajl_gen; any other goes through tg_log_json with the object,
 * so redaction is the same. Nothing is retained.
 */
void tg_log_kv(tg_log_level level, const char *event, const tg_log_field *kv, size_t n);

/*
 * The secret guard, at compile time: every argument of tg_log / tg_debug / tg_info / tg_warn /
 * tg_error is checked with _Generic, and passing a tg_secret (or a pointer to one) is a
 * compile error ("a tg_secret must not be passed to a log function"). Revealed text
 * (tg_secret_reveal) is a plain char *, so the runtime guard below covers it: the values of the
 * configured secrets (tg_log_add_secret, called by tg_config_load) are scrubbed from every line.
 * tests/integration/test_security_logguard.py compiles a violation and expects the error.
 */
#define TG_LOG_NOT_SECRET_(x)                                                                      \
  _Static_assert(                                                                                  \
      !_Generic((x), tg_secret : 1, tg_secret * : 1, const tg_secret * : 1, default : 0),          \
      "a tg_secret must not be passed to a log function");
#define TG_LOG_NARG_(...)                                                                          \
  TG_LOG_NARG_N_(__VA_ARGS__, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32,  \
                 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12,   \
                 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
#define TG_LOG_NARG_N_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, \
                       _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32,  \
                       _33, _34, _35, _36, _37, _38, _39, _40, _41, _42, _43, _44, _45, _46, _47,  \
                       _48, n, ...)                                                                \
  n
#define TG_LOG_CAT_(a, b) a##b
#define TG_LOG_XCAT_(a, b) TG_LOG_CAT_(a, b)
#define TG_LOG_FOREACH_(m, ...)                                                                    \
  TG_LOG_XCAT_(TG_LOG_EACH_, TG_LOG_XCAT_(TG_LOG_NARG_(__VA_ARGS__), _))(m, __VA_ARGS__)
#define TG_LOG_EACH_1_(m, x) m(x)
#define TG_LOG_EACH_2_(m, x, ...) m(x) TG_LOG_EACH_1_(m, __VA_ARGS__)
#define TG_LOG_EACH_3_(m, x, ...) m(x) TG_LOG_EACH_2_(m, __VA_ARGS__)
#define TG_LOG_EACH_4_(m, x, ...) m(x) TG_LOG_EACH_3_(m, __VA_ARGS__)
#define TG_LOG_EACH_5_(m, x, ...) m(x) TG_LOG_EACH_4_(m, __VA_ARGS__)
#define TG_LOG_EACH_6_(m, x, ...) m(x) TG_LOG_EACH_5_(m, __VA_ARGS__)
#define TG_LOG_EACH_7_(m, x, ...) m(x) TG_LOG_EACH_6_(m, __VA_ARGS__)
#define TG_LOG_EACH_8_(m, x, ...) m(x) TG_LOG_EACH_7_(m, __VA_ARGS__)
#define TG_LOG_EACH_9_(m, x, ...) m(x) TG_LOG_EACH_8_(m, __VA_ARGS__)
#define TG_LOG_EACH_10_(m, x, ...) m(x) TG_LOG_EACH_9_(m, __VA_ARGS__)
#define TG_LOG_EACH_11_(m, x, ...) m(x) TG_LOG_EACH_10_(m, __VA_ARGS__)
#define TG_LOG_EACH_12_(m, x, ...) m(x) TG_LOG_EACH_11_(m, __VA_ARGS__)
#define TG_LOG_EACH_13_(m, x, ...) m(x) TG_LOG_EACH_12_(m, __VA_ARGS__)
#define TG_LOG_EACH_14_(m, x, ...) m(x) TG_LOG_EACH_13_(m, __VA_ARGS__)
#define TG_LOG_EACH_15_(m, x, ...) m(x) TG_LOG_EACH_14_(m, __VA_ARGS__)
#define TG_LOG_EACH_16_(m, x, ...) m(x) TG_LOG_EACH_15_(m, __VA_ARGS__)
#define TG_LOG_EACH_17_(m, x, ...) m(x) TG_LOG_EACH_16_(m, __VA_ARGS__)
#define TG_LOG_EACH_18_(m, x, ...) m(x) TG_LOG_EACH_17_(m, __VA_ARGS__)
#define TG_LOG_EACH_19_(m, x, ...) m(x) TG_LOG_EACH_18_(m, __VA_ARGS__)
#define TG_LOG_EACH_20_(m, x, ...) m(x) TG_LOG_EACH_19_(m, __VA_ARGS__)
#define TG_LOG_EACH_21_(m, x, ...) m(x) TG_LOG_EACH_20_(m, __VA_ARGS__)
#define TG_LOG_EACH_22_(m, x, ...) m(x) TG_LOG_EACH_21_(m, __VA_ARGS__)
#define TG_LOG_EACH_23_(m, x, ...) m(x) TG_LOG_EACH_22_(m, __VA_ARGS__)
#define TG_LOG_EACH_24_(m, x, ...) m(x) TG_LOG_EACH_23_(m, __VA_ARGS__)
#define TG_LOG_EACH_25_(m, x, ...) m(x) TG_LOG_EACH_24_(m, __VA_ARGS__)
#define TG_LOG_EACH_26_(m, x, ...) m(x) TG_LOG_EACH_25_(m, __VA_ARGS__)
#define TG_LOG_EACH_27_(m, x, ...) m(x) TG_LOG_EACH_26_(m, __VA_ARGS__)
#define TG_LOG_EACH_28_(m, x, ...) m(x) TG_LOG_EACH_27_(m, __VA_ARGS__)
#define TG_LOG_EACH_29_(m, x, ...) m(x) TG_LOG_EACH_28_(m, __VA_ARGS__)
#define TG_LOG_EACH_30_(m, x, ...) m(x) TG_LOG_EACH_29_(m, __VA_ARGS__)
#define TG_LOG_EACH_31_(m, x, ...) m(x) TG_LOG_EACH_30_(m, __VA_ARGS__)
#define TG_LOG_EACH_32_(m, x, ...) m(x) TG_LOG_EACH_31_(m, __VA_ARGS__)
#define TG_LOG_EACH_33_(m, x, ...) m(x) TG_LOG_EACH_32_(m, __VA_ARGS__)
#define TG_LOG_EACH_34_(m, x, ...) m(x) TG_LOG_EACH_33_(m, __VA_ARGS__)
#define TG_LOG_EACH_35_(m, x, ...) m(x) TG_LOG_EACH_34_(m, __VA_ARGS__)
#define TG_LOG_EACH_36_(m, x, ...) m(x) TG_LOG_EACH_35_(m, __VA_ARGS__)
#define TG_LOG_EACH_37_(m, x, ...) m(x) TG_LOG_EACH_36_(m, __VA_ARGS__)
#define TG_LOG_EACH_38_(m, x, ...) m(x) TG_LOG_EACH_37_(m, __VA_ARGS__)
#define TG_LOG_EACH_39_(m, x, ...) m(x) TG_LOG_EACH_38_(m, __VA_ARGS__)
#define TG_LOG_EACH_40_(m, x, ...) m(x) TG_LOG_EACH_39_(m, __VA_ARGS__)
#define TG_LOG_EACH_41_(m, x, ...) m(x) TG_LOG_EACH_40_(m, __VA_ARGS__)
#define TG_LOG_EACH_42_(m, x, ...) m(x) TG_LOG_EACH_41_(m, __VA_ARGS__)
#define TG_LOG_EACH_43_(m, x, ...) m(x) TG_LOG_EACH_42_(m, __VA_ARGS__)
#define TG_LOG_EACH_44_(m, x, ...) m(x) TG_LOG_EACH_43_(m, __VA_ARGS__)
#define TG_LOG_EACH_45_(m, x, ...) m(x) TG_LOG_EACH_44_(m, __VA_ARGS__)
#define TG_LOG_EACH_46_(m, x, ...) m(x) TG_LOG_EACH_45_(m, __VA_ARGS__)
#define TG_LOG_EACH_47_(m, x, ...) m(x) TG_LOG_EACH_46_(m, __VA_ARGS__)
#define TG_LOG_EACH_48_(m, x, ...) m(x) TG_LOG_EACH_47_(m, __VA_ARGS__)

/*
 * Registers a secret value (e.g. the Composio API key) that must never appear in a log line:
 * like tg_log_hold_secret, held for the life of the process. Values shorter than 8 bytes are
 * ignored (too likely to match ordinary text). The text is copied.
 */
void tg_log_add_secret(const char *value);

/*
 * A per-run secret value for the log scrubber: while held, every occurrence in the fields of any
 * log line of this process (string values and keys, at any depth, found before JSON escaping) is
 * replaced by "[REDACTED]" (any length >= 1 byte); the line stays valid JSON. Event and service
 * names are the program's own and are not searched. Reference-counted: a value
 * held twice stays until released twice. Thread-safe (a mutex; pool threads may log). Returns 0,
 * or TG_ENOMEM when the value cannot be recorded: the caller must
 * then not let the value reach a log line. Release a value only as often as it was held.
 */
int tg_log_hold_secret(const char *value);
void tg_log_release_secret(const char *value);

/*
 * Rate-limited lines for events a client can repeat at will (refused or evicted connections,
 * timeouts): one tg_log_rate per kind of event writes at most one line per interval_ms, with the
 * added field "count", the number of events that line stands for (itself and those counted
 * silently since the previous line). The first event writes at once; events within the interval
 * are only counted; the first event after it writes the next line with the whole count, and
 * tg_log_rate_flush writes what is still counted (at shutdown, or from a timer). So a flood of N
 * events in T ms costs about T / interval_ms lines, never N.
 *
 * A tg_log_rate is plain state the caller embeds (e.g. in its server struct); it is not
 * thread-safe: one per thread or event loop. event must outlive it (a string literal).
 */
typedef struct tg_log_rate {
  uint64_t interval_ms; /* at most one line per this many ms */
  uint64_t last_ms;     /* when the last line was written (the caller's clock) */
  uint64_t counted;     /* events since the last line, not yet written */
  int wrote;            /* a line was written at last_ms */
  tg_log_level level;   /* of the last event counted, for tg_log_rate_flush */
  const char *event;
} tg_log_rate;

/* A rate writing at most one line per interval_ms (> 0); nothing counted yet. */
void tg_log_rate_init(tg_log_rate *r, uint64_t interval_ms);

/*
 * Counts one event at now_ms (a monotonic clock in ms, e.g. uv_now) and writes it as tg_log would
 * (fmt and arguments the same), plus "count", when no line of r was written in the last
 * interval_ms; otherwise only counts it (the arguments are not formatted). Checked front end
 * below, as for tg_log.
 */
void tg_log_every(tg_log_rate *r, uint64_t now_ms, tg_log_level level, const char *event,
                  const char *fmt, ...);

/* Writes the events still counted, if any, as one line {"count": n} under the last event's name
 * and level, and resets the count. */
void tg_log_rate_flush(tg_log_rate *r);

/* Checked front end of tg_log (the function is called as (tg_log)(...)). */
#define tg_log(level, ev, ...)                                                                     \
  do {                                                                                             \
    TG_LOG_FOREACH_(TG_LOG_NOT_SECRET_, __VA_ARGS__)(tg_log)(level, ev, __VA_ARGS__);              \
  } while (0)

#define tg_log_every(r, now_ms, level, ev, ...)                                                    \
  do {                                                                                             \
    TG_LOG_FOREACH_(TG_LOG_NOT_SECRET_, __VA_ARGS__)                                               \
    (tg_log_every)(r, now_ms, level, ev, __VA_ARGS__);                                             \
  } while (0)

#define tg_debug(ev, ...) tg_log(TG_LOG_DEBUG, ev, __VA_ARGS__)
#define tg_info(ev, ...) tg_log(TG_LOG_INFO, ev, __VA_ARGS__)
#define tg_warn(ev, ...) tg_log(TG_LOG_WARN, ev, __VA_ARGS__)
#define tg_error(ev, ...) tg_log(TG_LOG_ERROR, ev, __VA_ARGS__)

#endif
