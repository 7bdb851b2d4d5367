/*
 * tg_redact: secrets taken out of caller-supplied JSON and text, by key and by value.
 *
 * By key: an object member whose key names a secret (tg_redact_is_secret_key) has its whole
 * value replaced by "[REDACTED]". By value: given secret strings are cut out of text, string
 * values and object keys. Every function returns a new copy and leaves its input alone; none
 * keeps state, so they are safe on any thread. The logger (tg_log) scrubs every line with these;
 * the worker uses them on what it stores (tool arguments and responses, run outputs).
 */
#ifndef TG_REDACT_H
#define TG_REDACT_H

#include <jansson.h>

/* 1 if an object key names a secret: authorization, cookie, x-api-key, api_key, apikey, token
 * (and *_token, *token), secret, password, client_secret, headers_enc (case-insensitive). */
int tg_redact_is_secret_key(const char *key);

/* Returns a deep copy of v with every secret-keyed value replaced by "[REDACTED]" (new
 * reference; NULL only when v is NULL or memory runs out). Used by the logger and by anything
 * that stores or returns caller-supplied JSON (tool arguments, headers). */
json_t *tg_redact(const json_t *v);

/*
 * Redaction by VALUE (tg_redact works by key). secrets is a NULL-terminated array of strings;
 * empty strings are ignored. At each position the longest secret that matches is replaced by
 * "[REDACTED]", so one secret that is a prefix of another leaves nothing behind.
 *
 * tg_redact_text returns a malloc'd copy of s with every occurrence replaced (NULL when s is
 * NULL or memory runs out). tg_redact_values returns a deep copy of v (new reference; NULL only
 * when v is NULL or memory runs out) with every occurrence replaced inside string values and
 * object keys, at any depth. Used for the values of secret run inputs (DESIGN.md section 8): the
 * worker passes each stored tool argument, tool response, run output and error through them.
 */
char *tg_redact_text(const char *s, const char *const *secrets);
json_t *tg_redact_values(const json_t *v, const char *const *secrets);

#endif
