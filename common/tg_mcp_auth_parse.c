/*
 * tg_mcp_auth_parse: the pure parts of MCP authorization (tg_mcp_auth.h): WWW-Authenticate
 * parsing, the well-known discovery URLs, URL checks (scheme, loopback, resource and issuer
 * match), form encoding, query parameters and PKCE. No I/O and no state, so each is unit-tested
 * on its own; tg_mcp_auth.c drives the network flow with them.
 *
 * URLs are taken apart with curl's URL API (CURLU), which is the parser the transfers use, so a
 * URL judged here is the URL that is fetched.
 */
#include "tg_mcp_auth.h"

#include "tg_buf.h"
#include "tg_err.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_tchar(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* Reads a token or a quoted-string at *p into a malloc'd string (NULL on a syntax error). */
static char *read_value(const char **pp)
{
  const char *p = *pp;
  tg_buf b;
  tg_buf_init(&b, 8192);
  if (*p == '"') {
    for (p++; *p && *p != '"'; p++) {
      if (*p == '\\' && p[1])
        p++;
      if (tg_buf_add(&b, p, 1))
        goto fail;
    }
    if (*p != '"')
      goto fail;
    p++;
  } else {
    const char *s = p;
    while (is_tchar(*p) || *p == '/' || *p == ':' || *p == '=')
      p++;
    if (tg_buf_add(&b, s, (size_t)(p - s)))
      goto fail;
  }
  *pp = p;
  if (tg_buf_add(&b, "", 0) != 0)
    goto fail;
  return tg_buf_take(&b, NULL);
fail:
  tg_buf_free(&b);
  return NULL;
}

int tg_mcp_auth_parse_challenge(const char *header, tg_mcp_auth_challenge_params *out)
{
  const char *p = header;
  int in_bearer = 0;
  memset(out, 0, sizeof *out);
  if (!header)
    return TG_EINVAL;
  while (*p) {
    const char *name;
    size_t n;
    p = skip_ows(p);
    if (*p == ',') {
      p++;
      continue;
    }
    name = p;
    while (is_tchar(*p))
      p++;
    n = (size_t)(p - name);
    if (n == 0)
      return out->bearer ? 0 : TG_EINVAL; /* junk: keep what was read */
    p = skip_ows(p);
    if (*p == '=') { /* auth-param name=value */
      char *v;
      p = skip_ows(p + 1);
      if (!(v = read_value(&p)))
        return out->bearer ? 0 : TG_EINVAL;
      if (in_bearer && n == 17 && strncasecmp(name, "resource_metadata", n) == 0 &&
          !out->resource_metadata)
        out->resource_metadata = v;
      else if (in_bearer && n == 5 && strncasecmp(name, "scope", n) == 0 && !out->scope)
        out->scope = v;
      else if (in_bearer && n == 5 && strncasecmp(name, "error", n) == 0 && !out->error)
        out->error = v;
      else
        free(v);
    } else { /* a scheme name starts a new challenge (token68 forms are skipped) */
      in_bearer = n == 6 && strncasecmp(name, "bearer", 6) == 0;
      out->bearer |= in_bearer;
      while (*p && *p != ',' && !(is_tchar(*p) && strchr(p, '=')))
        p++;
    }
  }
  return out->bearer ? 0 : TG_ENOTFOUND;
}

void tg_mcp_auth_challenge_clear(tg_mcp_auth_challenge_params *c)
{
  free(c->resource_metadata);
  free(c->scope);
  free(c->error);
  memset(c, 0, sizeof *c);
}

/* Parts of url (each malloc'd, caller frees with curl_free); 0 or TG_EINVAL. */
typedef struct url_parts {
  char *scheme, *host, *port, *path, *user, *fragment;
} url_parts;

static void parts_free(url_parts *u)
{
  curl_free(u->scheme);
  curl_free(u->host);
  curl_free(u->port);
  curl_free(u->path);
  curl_free(u->user);
  curl_free(u->fragment);
  memset(u, 0, sizeof *u);
}

static int parts_of(const char *url, url_parts *u)
{
  CURLU *h = curl_url();
  int rc = TG_EINVAL;
  memset(u, 0, sizeof *u);
  if (!h)
    return TG_ENOMEM;
  if (!url || curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
    goto out;
  if (curl_url_get(h, CURLUPART_SCHEME, &u->scheme, 0) != CURLUE_OK ||
      curl_url_get(h, CURLUPART_HOST, &u->host, 0) != CURLUE_OK ||
      curl_url_get(h, CURLUPART_PORT, &u->port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
      curl_url_get(h, CURLUPART_PATH, &u->path, 0) != CURLUE_OK)
    goto out;
  curl_url_get(h, CURLUPART_USER, &u->user, 0);
  curl_url_get(h, CURLUPART_FRAGMENT, &u->fragment, 0);
  rc = 0;
out:
  if (rc)
    parts_free(u);
  curl_url_cleanup(h);
  return rc;
}

static int is_loopback(const char *host)
{
  if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
    return 1;
  return strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == strlen(host);
}

int tg_mcp_auth_url_allowed(const char *url)
{
  url_parts u;
  int ok;
  if (parts_of(url, &u))
    return 0;
  ok = !u.user && !u.fragment &&
       (strcasecmp(u.scheme, "https") == 0 ||
        (strcasecmp(u.scheme, "http") == 0 && is_loopback(u.host)));
  parts_free(&u);
  return ok;
}

/* "scheme://host[:port]" of u into a malloc'd string (port only when not the default). */
static char *origin_of(const char *url)
{
  CURLU *h = curl_url();
  char *o = NULL, *s = NULL;
  if (h && curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_set(h, CURLUPART_PATH, "/", 0) == CURLUE_OK &&
      curl_url_set(h, CURLUPART_QUERY, NULL, 0) == CURLUE_OK &&
      curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK &&
      curl_url_set(h, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
      curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
      curl_url_get(h, CURLUPART_URL, &s, 0) == CURLUE_OK) {
    size_t n = strlen(s);
    if (n && s[n - 1] == '/')
      s[n - 1] = 0;
    o = strdup(s);
  }
  curl_free(s);
  curl_url_cleanup(h);
  return o;
}

static char *join3(const char *a, const char *b, const char *c)
{
  size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s%s%s", a, b, c);
  return s;
}

/* The path of url without a trailing '/', "" for the root; malloc'd. */
static char *path_of(const char *url)
{
  url_parts u;
  char *p;
  size_t n;
  if (parts_of(url, &u))
    return NULL;
  p = strdup(u.path);
  parts_free(&u);
  if (p && (n = strlen(p)) && p[n - 1] == '/')
    p[n - 1] = 0;
  return p;
}

static int urls_from(const char *base, const char *const *fmt, size_t count, char **out, size_t *n)
{
  char *origin = origin_of(base), *path = path_of(base);
  int rc = origin && path ? 0 : TG_EINVAL;
  *n = 0;
  for (size_t i = 0; rc == 0 && i < count; i++) {
    /* fmt: "W" = origin + well-known + path, "P" = origin + path + well-known, "R" = origin +
       well-known; P and R only when there is a path (else they repeat W) */
    const char *wk = fmt[i] + 1;
    if (!*path && fmt[i][0] != 'W')
      continue;
    out[*n] = fmt[i][0] == 'W'   ? join3(origin, wk, path)
              : fmt[i][0] == 'P' ? join3(origin, path, wk)
                                 : join3(origin, wk, "");
    if (!out[*n])
      rc = TG_ENOMEM;
    else
      ++*n;
  }
  if (rc)
    while (*n)
      free(out[--*n]);
  free(origin);
  free(path);
  return rc;
}

int tg_mcp_auth_prm_urls(const char *server_url, char *out[2], size_t *n)
{
  static const char *const f[] = {"W/.well-known/oauth-protected-resource",
                                  "R/.well-known/oauth-protected-resource"};
  return urls_from(server_url, f, 2, out, n);
}

int tg_mcp_auth_as_urls(const char *issuer, char *out[3], size_t *n)
{
  static const char *const f[] = {"W/.well-known/oauth-authorization-server",
                                  "W/.well-known/openid-configuration",
                                  "P/.well-known/openid-configuration"};
  return urls_from(issuer, f, 3, out, n);
}

int tg_mcp_auth_resource_matches(const char *server_url, const char *resource)
{
  url_parts s, r;
  int ok = 0;
  if (parts_of(server_url, &s))
    return 0;
  if (parts_of(resource, &r) == 0) {
    size_t n = strlen(r.path);
    while (n && r.path[n - 1] == '/')
      n--;
    ok = strcasecmp(s.scheme, r.scheme) == 0 && strcasecmp(s.host, r.host) == 0 &&
         strcmp(s.port, r.port) == 0 && !r.fragment && strncmp(s.path, r.path, n) == 0 &&
         (s.path[n] == 0 || s.path[n] == '/');
    parts_free(&r);
  }
  parts_free(&s);
  return ok;
}

int tg_mcp_auth_issuer_matches(const char *expected, const char *issuer)
{
  size_t a, b;
  if (!expected || !issuer)
    return 0;
  a = strlen(expected);
  b = strlen(issuer);
  if (a && expected[a - 1] == '/')
    a--;
  if (b && issuer[b - 1] == '/')
    b--;
  return a == b && a > 0 && memcmp(expected, issuer, a) == 0;
}

int tg_mcp_auth_form_add(tg_buf *b, const char *name, const char *value)
{
  static const char hex[] = "0123456789ABCDEF";
  const char *parts[2] = {name, value};
  if (tg_buf_len(b) && tg_buf_add(b, "&", 1))
    return TG_ENOMEM;
  for (int i = 0; i < 2; i++) {
    if (i && tg_buf_add(b, "=", 1))
      return TG_ENOMEM;
    for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
      char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || strchr("-._~", *p);
      if (plain ? tg_buf_add(b, p, 1) : tg_buf_add(b, e, 3))
        return TG_ENOMEM;
    }
  }
  return 0;
}

static int hexval(char c)
{
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

char *tg_mcp_auth_query_param(const char *url, const char *name)
{
  const char *q = url ? strchr(url, '?') : NULL;
  size_t n = strlen(name);
  while (q) {
    const char *k = q + 1, *end = k + strcspn(k, "&#");
    if ((size_t)(end - k) > n && strncmp(k, name, n) == 0 && k[n] == '=') {
      char *v = malloc((size_t)(end - k)), *o = v;
      if (!v)
        return NULL;
      for (const char *p = k + n + 1; p < end; p++) {
        if (*p == '%' && p + 2 < end && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
          *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
          p += 2;
        } else {
          *o++ = *p == '+' ? ' ' : *p;
        }
      }
      *o = 0;
      return v;
    }
    q = *end == '&' ? end : NULL;
  }
  return NULL;
}

void tg_mcp_auth_s256(const char *verifier, char challenge[44])
{
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
  sodium_bin2base64(challenge, 44, h, sizeof h, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void tg_mcp_auth_pkce(char verifier[44], char challenge[44])
{
  unsigned char r[32];
  randombytes_buf(r, sizeof r);
  sodium_bin2base64(verifier, 44, r, sizeof r, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(r, sizeof r);
  tg_mcp_auth_s256(verifier, challenge);
}
