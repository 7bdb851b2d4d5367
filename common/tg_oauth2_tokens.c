/*
 * tg_oauth2_tokens: OAuth2 access tokens, cached until shortly before they expire and fetched
 * single-flight (contract in tg_oauth2_tokens.h).
 *
 * The cache is a tg_map keyed by "<user>\n<name>\n<digest>", the digest a BLAKE2b of the
 * credential's meta and secret (so a replaced credential never reuses the old token). An entry
 * is either a token (token set) or a fetch in flight (a transfer and its waiters); a fetch that
 * ends turns its entry into a token, or removes it on failure. Token strings are wiped before
 * they are freed. Invariant: a waiter is on exactly one fetch's list until its cb ran or it was
 * canceled.
 */
#include "tg_oauth2_tokens.h"

#include "tg_clock.h"
#include "tg_err.h"
#include "tg_log.h"
#include "tg_map.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARGIN_MS 30000            /* a token is not used in its last 30 s */
#define DEFAULT_LIFETIME_S 3600    /* when the answer has no expires_in */
#define TOKEN_TIMEOUT_MS 30000     /* the token request */
#define TOKEN_BODY_MAX (64u << 10) /* the token endpoint's answer */
#define MAX_ENTRIES 4096           /* above this many entries, expired tokens are swept on a get */

typedef struct entry entry;

struct tg_oauth2_token_wait {
  entry *e;
  tg_oauth2_token_cb cb;
  void *arg;
  tg_oauth2_token_wait *next;
};

struct entry {
  tg_oauth2_tokens *owner;
  char *key;
  char *token;      /* a cached token, or NULL while fetching */
  int64_t until_ms; /* wall-clock ms after which the token is not used */
  tg_http_transfer *t;
  tg_oauth2_token_wait *waiters;
};

struct tg_oauth2_tokens {
  tg_http_client *http;
  tg_map *map; /* key -> entry */
};

static void entry_free(void *v)
{
  entry *e = v;
  if (!e)
    return;
  if (e->t)
    tg_http_cancel(e->t);
  while (e->waiters) { /* only at tg_oauth2_tokens_free, after every fetch ended: none expected */
    tg_oauth2_token_wait *w = e->waiters;
    e->waiters = w->next;
    free(w);
  }
  if (e->token) {
    sodium_memzero(e->token, strlen(e->token));
    free(e->token);
  }
  free(e->key);
  free(e);
}

int tg_oauth2_tokens_new(tg_oauth2_tokens **out, tg_http_client *http)
{
  tg_oauth2_tokens *t = calloc(1, sizeof *t);
  *out = NULL;
  if (!t || !(t->map = tg_map_new(0, entry_free))) { /* fetches in flight are never evicted */
    free(t);
    return TG_ENOMEM;
  }
  t->http = http;
  *out = t;
  return 0;
}

void tg_oauth2_tokens_free(tg_oauth2_tokens *t)
{
  if (!t)
    return;
  tg_map_free(t->map);
  free(t);
}

/* "<user>\n<name>\n<hex digest of meta and secret>", malloc'd. */
static char *cache_key(const char *user, const char *name, const json_t *cred)
{
  unsigned char d[16];
  char hex[33], *text, *key;
  json_t *both = json_pack("{s:O?, s:O?}", "meta", json_object_get(cred, "meta"), "secret",
                           json_object_get(cred, "secret"));
  size_t n;
  text = both ? json_dumps(both, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(both);
  if (!text)
    return NULL;
  crypto_generichash(d, sizeof d, (const unsigned char *)text, strlen(text), NULL, 0);
  sodium_memzero(text, strlen(text));
  free(text);
  sodium_bin2hex(hex, sizeof hex, d, sizeof d);
  n = strlen(user) + strlen(name) + sizeof hex + 3;
  if ((key = malloc(n)) != NULL)
    snprintf(key, n, "%s\n%s\n%s", user, name, hex);
  return key;
}

/* Appends "&name=<urlencoded value>" (or without '&' first) to a form body. */
static int form_add(char **body, const char *name, const char *value)
{
  char *enc, *nb;
  size_t old = *body ? strlen(*body) : 0, n;
  if (!value)
    return 0;
  if (!(enc = curl_easy_escape(NULL, value, 0)))
    return TG_ENOMEM;
  n = old + strlen(name) + strlen(enc) + 3;
  if (!(nb = malloc(n))) {
    curl_free(enc);
    return TG_ENOMEM;
  }
  snprintf(nb, n, "%s%s%s=%s", old ? *body : "", old ? "&" : "", name, enc);
  sodium_memzero(enc, strlen(enc));
  curl_free(enc);
  if (*body) {
    sodium_memzero(*body, old);
    free(*body);
  }
  *body = nb;
  return 0;
}

/* Ends a fetch: every waiter's cb with (err, token, why), then the entry becomes the token or
 * goes away. */
static void finish(entry *e, int err, long status, const char *token, const char *why,
                   int64_t until_ms)
{
  tg_oauth2_token_wait *w = e->waiters;
  tg_oauth2_tokens *t = e->owner;
  char *copy = NULL;
  e->waiters = NULL;
  e->t = NULL;
  if (!err && !(copy = strdup(token)))
    err = TG_ENOMEM, why = "out of memory";
  if (!err) {
    e->token = copy;
    e->until_ms = until_ms;
  } else {
    char *key = e->key;
    e->key = NULL; /* the map frees e; the key is still read while it does */
    tg_map_dels(t->map, key);
    free(key);
  }
  while (w) {
    tg_oauth2_token_wait *next = w->next;
    w->cb(w->arg, err, status, err ? NULL : token, why);
    free(w);
    w = next;
  }
}

static void on_token(void *arg, int err, const tg_http_response *resp)
{
  entry *e = arg;
  json_t *ans = NULL;
  const char *tok;
  json_int_t expires;
  char why[160];
  if (err) {
    snprintf(why, sizeof why, "token request failed: %s", tg_strerror(err));
    finish(e, err, resp->status, NULL, why, 0);
    return;
  }
  ans = json_loadb(resp->body, resp->body_len, 0, NULL);
  tok = json_string_value(json_object_get(ans, "access_token"));
  if (resp->status < 200 || resp->status >= 300 || !tok || !*tok) {
    const char *oerr = json_string_value(json_object_get(ans, "error")); /* RFC 6749 5.2 */
    snprintf(why, sizeof why, "token endpoint answered HTTP %ld%s%.60s", resp->status,
             oerr ? ": " : "", oerr ? oerr : "");
    finish(e, resp->status >= 400 && resp->status < 500 ? TG_EAUTH : TG_EPROTO, resp->status, NULL,
           why, 0);
    json_decref(ans);
    return;
  }
  expires = json_integer_value(json_object_get(ans, "expires_in"));
  if (expires <= 0)
    expires = DEFAULT_LIFETIME_S;
  finish(e, 0, resp->status, tok, NULL, tg_now_ms() + (int64_t)expires * 1000 - MARGIN_MS);
  if (json_is_string(json_object_get(ans, "access_token")))
    sodium_memzero((char *)tok, strlen(tok));
  json_decref(ans);
}

/* Starts the token request of entry e for cred. */
static int start_fetch(tg_oauth2_tokens *t, entry *e, const json_t *cred)
{
  const json_t *meta = json_object_get(cred, "meta"), *sec = json_object_get(cred, "secret");
  const char *url = json_string_value(json_object_get(meta, "token_url"));
  const char *refresh = json_string_value(json_object_get(sec, "refresh_token"));
  const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                           "Accept: application/json", NULL};
  char *body = NULL;
  int rc;
  if (!url)
    return TG_EINVAL;
  if ((rc = form_add(&body, "grant_type", refresh ? "refresh_token" : "client_credentials")) ||
      (refresh && (rc = form_add(&body, "refresh_token", refresh))) ||
      (rc = form_add(&body, "client_id", json_string_value(json_object_get(meta, "client_id")))) ||
      (rc = form_add(&body, "client_secret",
                     json_string_value(json_object_get(sec, "client_secret")))) ||
      (rc = form_add(&body, "scope", json_string_value(json_object_get(meta, "scope")))))
    goto out;
  rc = tg_http_send(t->http,
                    &(tg_http_request){.method = "POST",
                                       .url = url,
                                       .headers = headers,
                                       .body = body,
                                       .body_len = strlen(body),
                                       .timeout_ms = TOKEN_TIMEOUT_MS,
                                       .max_body = TOKEN_BODY_MAX},
                    on_token, e, &e->t);
out:
  if (body) {
    sodium_memzero(body, strlen(body));
    free(body);
  }
  return rc;
}

/* tg_map_sweep visitor: drops expired tokens (never a fetch in flight). */
static int expired(void *ctx, const void *key, size_t klen, void *value)
{
  entry *e = value;
  (void)key;
  (void)klen;
  return e->token && *(const int64_t *)ctx >= e->until_ms;
}

int tg_oauth2_token_get(tg_oauth2_tokens *t, const char *user, const char *name, const json_t *cred,
                        int fresh, char **now, tg_oauth2_token_cb cb, void *arg,
                        tg_oauth2_token_wait **w)
{
  const char *type = json_string_value(json_object_get(cred, "type"));
  char *key;
  entry *e;
  tg_oauth2_token_wait *nw;
  int rc;
  *now = NULL;
  *w = NULL;
  if (!type || strcmp(type, "oauth2") != 0)
    return TG_EINVAL;
  if (tg_map_count(t->map) > MAX_ENTRIES) {
    int64_t now_ms = tg_now_ms();
    tg_map_sweep(t->map, expired, &now_ms);
  }
  if (!(key = cache_key(user, name, cred)))
    return TG_ENOMEM;
  e = tg_map_gets(t->map, key);
  if (e && e->token && (fresh || tg_now_ms() >= e->until_ms)) {
    tg_map_dels(t->map, key);
    e = NULL;
  }
  if (e && e->token) {
    free(key);
    return (*now = strdup(e->token)) ? 0 : TG_ENOMEM;
  }
  if (!(nw = calloc(1, sizeof *nw))) {
    free(key);
    return TG_ENOMEM;
  }
  if (!e) {
    if (!(e = calloc(1, sizeof *e)) || !(e->key = strdup(key))) {
      free(e);
      free(nw);
      free(key);
      return TG_ENOMEM;
    }
    e->owner = t;
    if ((rc = tg_map_puts(t->map, key, e, 1)) != 0) {
      entry_free(e);
      free(nw);
      free(key);
      return rc;
    }
    if ((rc = start_fetch(t, e, cred)) != 0) {
      tg_map_dels(t->map, key);
      free(nw);
      free(key);
      return rc;
    }
  }
  free(key);
  nw->e = e;
  nw->cb = cb;
  nw->arg = arg;
  nw->next = e->waiters;
  e->waiters = nw;
  *w = nw;
  return 0;
}

void tg_oauth2_token_cancel(tg_oauth2_token_wait *w)
{
  tg_oauth2_token_wait **p;
  if (!w)
    return;
  for (p = &w->e->waiters; *p; p = &(*p)->next)
    if (*p == w) {
      *p = w->next;
      break;
    }
  free(w);
}
