/*
 * tg_log: one JSON object per line on stderr, one line per event.
 *
 * Every line has "ts" (RFC 3339 UTC with ms), "level", "svc" (the program) and "event" (a
 * snake_case name), then the caller's fields. Secrets never reach the output: before a line is
 * written, every object member whose key names a secret (see tg_log_is_secret_key) has its value
 * replaced by "[REDACTED]", at any depth. Thread-safe: a line is written with one call under
 * the stdio lock, so lines from threads never interleave.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <jansson.h>
#include <stdarg.h>

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

/* 1 if an object key names a secret: authorization, cookie, x-api-key, api_key, apikey, token
 * (and *_token, *token), secret, password, client_secret, headers_enc (case-insensitive). */
int tg_log_is_secret_key(const char *key);

/* Returns a deep copy of v with every secret-keyed value replaced by "[REDACTED]" (new
 * reference; NULL only when v is NULL or memory runs out). Used by the logger and by anything
 * that stores or returns caller-supplied JSON (tool arguments, headers). */
json_t *tg_redact(const json_t *v);

#define tg_debug(ev, ...) tg_log(TG_LOG_DEBUG, ev, __VA_ARGS__)
#define tg_info(ev, ...) tg_log(TG_LOG_INFO, ev, __VA_ARGS__)
#define tg_warn(ev, ...) tg_log(TG_LOG_WARN, ev, __VA_ARGS__)
#define tg_error(ev, ...) tg_log(TG_LOG_ERROR, ev, __VA_ARGS__)

#endif
