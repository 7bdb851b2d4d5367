/*
 * tg_redact: secrets taken out of JSON and text before they are logged or stored (contract in
 * tg_redact.h). Both kinds of redaction are one deep copy (walk) with different callbacks; the
 * input is never modified. No state: the caller says which values are secret.
 */
#include "tg_redact.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 1 if the lower-cased key (n bytes) ends with suffix (a lower-case literal). */
static int ends_with(const char *lk, size_t n, const char *suffix, size_t sn)
{
  return n >= sn && memcmp(lk + n - sn, suffix, sn) == 0;
}
#define ENDS_WITH(lk, n, lit) ends_with(lk, n, lit, sizeof lit - 1)

int tg_redact_is_secret_key(const char *key)
{
  static const char *exact[] = {"authorization",
                                "proxy-authorization",
                                "cookie",
                                "set-cookie",
                                "x-api-key",
                                "api_key",
                                "apikey",
                                "api-key",
                                "secret",
                                "password",
                                "client_secret",
                                "headers_enc",
                                "access_token",
                                "refresh_token",
                                "id_token",
                                "token",
                                "bearer_token",
                                "private_key",
                                NULL};
  char lk[64]; /* the key lower-cased (keys this long or longer: compared in place, slower) */
  size_t n;
  if (!key)
    return 0;
  n = strlen(key);
  if (n >= sizeof lk) {
    for (int i = 0; exact[i]; i++)
      if (strcasecmp(key, exact[i]) == 0)
        return 1;
    /* every suffix below is shorter than 64 bytes: the key's tail lower-cased decides */
    key += n - (sizeof lk - 1);
    n = sizeof lk - 1;
  }
  for (size_t i = 0; i < n; i++)
    lk[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + ('a' - 'A') : key[i]);
  lk[n] = 0;
  for (int i = 0; exact[i]; i++)
    if (strcmp(lk, exact[i]) == 0)
      return 1;
  return ENDS_WITH(lk, n, "_token") || ENDS_WITH(lk, n, "-token") || ENDS_WITH(lk, n, "_secret") ||
         ENDS_WITH(lk, n, "password") ||
         (ENDS_WITH(lk, n, "_key") && !ENDS_WITH(lk, n, "idempotency_key"));
}

/*
 * One deep copy of v, shared by both kinds of redaction: for each object member, member() may
 * give its replacement value (then the member's value is not walked) and a new key (malloc'd);
 * for each string, string() (when set) gives the copy. Callbacks return -1 when out of memory.
 */
typedef struct walk_ops {
  int (*member)(const char *key, json_t **replacement, char **new_key, const void *ctx);
  json_t *(*string)(const json_t *v, const void *ctx);
  const void *ctx;
} walk_ops;

static json_t *walk(const json_t *v, const walk_ops *o)
{
  json_t *out, *val;
  const char *k;
  size_t i;

  if (json_is_string(v) && o->string)
    return o->string(v, o->ctx);
  if (json_is_array(v)) {
    if (!(out = json_array()))
      return NULL;
    json_array_foreach(v, i, val)
    {
      json_t *c = walk(val, o);
      if (!c || json_array_append_new(out, c) != 0) {
        json_decref(out);
        return NULL;
      }
    }
    return out;
  }
  if (!json_is_object(v))
    return json_deep_copy(v);
  if (!(out = json_object()))
    return NULL;
  json_object_foreach((json_t *)v, k, val)
  {
    json_t *c = NULL;
    char *nk = NULL;
    int rc = o->member(k, &c, &nk, o->ctx);
    if (rc == 0 && !c)
      c = walk(val, o);
    if (rc != 0 || !c || json_object_set_new(out, nk ? nk : k, c) != 0) {
      if (rc == 0 && c)
        json_decref(c);
      free(nk);
      json_decref(out);
      return NULL;
    }
    free(nk);
  }
  return out;
}

/* Redaction by key: a secret-named member's whole value becomes the mark. */
static int member_by_key(const char *key, json_t **replacement, char **new_key, const void *ctx)
{
  (void)new_key;
  (void)ctx;
  if (tg_redact_is_secret_key(key) && !(*replacement = json_string("[REDACTED]")))
    return -1;
  return 0;
}

json_t *tg_redact(const json_t *v)
{
  static const walk_ops by_key = {member_by_key, NULL, NULL};
  return v ? walk(v, &by_key) : NULL;
}

/* ---- redaction by value ---- */

static const char redact_mark[] = "[REDACTED]";

/* Length of the longest secret matching at p (0: none). */
static size_t longest_match(const char *p, const char *const *secrets)
{
  size_t best = 0;
  for (size_t i = 0; secrets && secrets[i]; i++) {
    size_t n = strlen(secrets[i]);
    if (n > best && strncmp(p, secrets[i], n) == 0)
      best = n;
  }
  return best;
}

char *tg_redact_text(const char *s, const char *const *secrets)
{
  size_t len, cap, o = 0;
  char *out;
  if (!s)
    return NULL;
  len = strlen(s);
  /* Worst case: every byte a 1-byte secret, each growing to the mark. */
  if (__builtin_mul_overflow(len, sizeof redact_mark - 1, &cap) ||
      __builtin_add_overflow(cap, 1, &cap) || !(out = malloc(cap)))
    return NULL;
  for (size_t i = 0; i < len;) {
    size_t m = longest_match(s + i, secrets);
    if (m) {
      memcpy(out + o, redact_mark, sizeof redact_mark - 1);
      o += sizeof redact_mark - 1;
      i += m;
    } else {
      out[o++] = s[i++];
    }
  }
  out[o] = 0;
  return out;
}

/* A string value (may hold NUL bytes: then only the part before the first NUL is searched, and
 * the value is replaced by its redacted text, which drops the rest). */
static json_t *redact_string(const json_t *v, const char *const *secrets)
{
  const char *s = json_string_value(v);
  char *r;
  json_t *out;
  if (strlen(s) == json_string_length(v)) {
    size_t i, hit = 0;
    for (i = 0; s[i] && !hit; i++)
      hit = longest_match(s + i, secrets);
    if (!hit)
      return json_deep_copy(v);
  }
  if (!(r = tg_redact_text(s, secrets)))
    return NULL;
  out = json_string(r);
  free(r);
  return out;
}

/* Redaction by value: keys and strings have the secrets cut out. */
static int member_by_value(const char *key, json_t **replacement, char **new_key, const void *ctx)
{
  (void)replacement;
  return (*new_key = tg_redact_text(key, ctx)) ? 0 : -1;
}

static json_t *string_by_value(const json_t *v, const void *ctx)
{
  return redact_string(v, ctx);
}

json_t *tg_redact_values(const json_t *v, const char *const *secrets)
{
  walk_ops by_value = {member_by_value, string_by_value, secrets};
  return v ? walk(v, &by_value) : NULL;
}
