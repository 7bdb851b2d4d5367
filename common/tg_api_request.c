/*
 * tg_api_request: config + credentials -> request, answer -> output (contract in
 * tg_api_request.h).
 *
 * Every string that goes out passes through tg_api_subst_secrets(), which replaces
 * {{secrets.<name>}} with the credential's value; nothing else in this file sees a secret. Header
 * names are RFC 9110 tokens and no value carries CR or LF (a rendered template cannot inject a
 * header). The URL is assembled with curl's URL API (CURLU_URLENCODE for query parameters), so the
 * host and path the journal names are the ones curl will use.
 */
#include "tg_api_request.h"
#include "tg_json.h"

#include "tg_err.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REF_OPEN "{{"
#define SECRETS "secrets."

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
  snprintf(err, errlen, "%s", msg);
  return rc;
}

/* ---------------------------------------------------------------- {{secrets.<name>}} */

/* At p (after "{{"): optional spaces, "secrets.", a name, optional spaces, "}}". The name is
 * copied into name (size n); returns the length of the whole reference after "{{", or 0. */
static size_t secret_ref(const char *p, char *name, size_t n)
{
  const char *s = p, *b;
  size_t len;
  while (*s == ' ')
    s++;
  if (strncmp(s, SECRETS, strlen(SECRETS)) != 0)
    return 0;
  b = s += strlen(SECRETS);
  while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
         *s == '_' || *s == '-' || *s == '.')
    s++;
  len = (size_t)(s - b);
  while (*s == ' ')
    s++;
  if (len == 0 || len >= n || strncmp(s, "}}", 2) != 0)
    return 0;
  memcpy(name, b, len);
  name[len] = 0;
  return (size_t)(s + 2 - p);
}

/* Adds the secret names referenced in every string of v to names (unique). */
static void collect_refs(const json_t *v, json_t *names)
{
  if (json_is_string(v)) {
    const char *p = json_string_value(v);
    while ((p = strstr(p, REF_OPEN)) != NULL) {
      char name[128];
      size_t n = secret_ref(p + 2, name, sizeof name);
      size_t i;
      json_t *e;
      int seen = 0;
      p += 2;
      if (!n)
        continue;
      json_array_foreach(names, i, e) seen |= strcmp(json_string_value(e), name) == 0;
      if (!seen)
        json_array_append_new(names, json_string(name));
    }
  } else if (json_is_object(v)) {
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)v, k, m) collect_refs(m, names);
  } else if (json_is_array(v)) {
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m) collect_refs(m, names);
  }
}

/* The value {{secrets.name}} stands for, as a new malloc'd string; NULL with rc set. */
static char *cred_value(const json_t *creds, const char *name, int *rc)
{
  const json_t *c = json_object_get(creds, name), *sec = json_object_get(c, "secret");
  const char *type = json_string_value(json_object_get(c, "type")), *v = NULL;
  *rc = TG_ENOTFOUND;
  if (!type)
    return NULL;
  if (strcmp(type, "bearer") == 0)
    v = json_string_value(json_object_get(sec, "token"));
  else if (strcmp(type, "api_key") == 0)
    v = json_string_value(json_object_get(sec, "value"));
  else if (strcmp(type, "oauth2") == 0)
    v = json_string_value(json_object_get(c, "access_token"));
  else if (strcmp(type, "basic") == 0) {
    const char *u = json_string_value(json_object_get(sec, "username"));
    const char *pw = json_string_value(json_object_get(sec, "password"));
    size_t n, b64;
    char *plain, *out;
    if (!u || !pw)
      return NULL;
    n = strlen(u) + 1 + strlen(pw);
    b64 = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    plain = malloc(n + 1);
    out = malloc(b64);
    if (!plain || !out) {
      free(plain);
      free(out);
      *rc = TG_ENOMEM;
      return NULL;
    }
    snprintf(plain, n + 1, "%s:%s", u, pw);
    sodium_bin2base64(out, b64, (const unsigned char *)plain, n, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(plain, n);
    free(plain);
    *rc = 0;
    return out;
  }
  if (!v)
    return NULL;
  {
    char *d = strdup(v);
    *rc = d ? 0 : TG_ENOMEM;
    return d;
  }
}

/* s with every {{secrets.<name>}} replaced (a new malloc'd string), or NULL with rc and err. */
char *tg_api_subst_secrets(const char *s, const json_t *creds, int *rc, char *err, size_t errlen)
{
  size_t cap = strlen(s) + 1, len = 0;
  char *out = malloc(cap);
  const char *p = s;
  *rc = TG_ENOMEM;
  if (!out)
    return NULL;
  for (;;) {
    const char *q = strstr(p, REF_OPEN);
    char name[128], *v = NULL;
    size_t n = q ? secret_ref(q + 2, name, sizeof name) : 0, piece, vl = 0;
    if (q && !n) {
      q += 2; /* not a secrets reference: copy "{{" and go on */
      piece = (size_t)(q - p);
    } else {
      piece = q ? (size_t)(q - p) : strlen(p);
    }
    if (n) {
      if (!(v = cred_value(creds, name, rc))) {
        if (*rc == TG_ENOTFOUND)
          snprintf(err, errlen, "credential \"%s\" not found (referenced as {{secrets.%s}})", name,
                   name);
        sodium_memzero(out, len);
        free(out);
        return NULL;
      }
      vl = strlen(v);
    }
    if (len + piece + vl + 1 > cap) {
      char *nb;
      cap = (len + piece + vl + 1) * 2;
      if (!(nb = malloc(cap))) {
        sodium_memzero(out, len);
        free(out);
        if (v)
          sodium_memzero(v, vl);
        free(v);
        *rc = TG_ENOMEM;
        return NULL;
      }
      memcpy(nb, out, len);
      sodium_memzero(out, len);
      free(out);
      out = nb;
    }
    memcpy(out + len, p, piece);
    len += piece;
    if (v) {
      memcpy(out + len, v, vl);
      len += vl;
      sodium_memzero(v, vl);
      free(v);
    }
    if (!q)
      break;
    p = n ? q + 2 + n : q;
  }
  out[len] = 0;
  *rc = 0;
  return out;
}

/* ---------------------------------------------------------------- needs */

static const char *auth_form(const json_t *config)
{
  const json_t *a = json_object_get(config, "authentication");
  if (json_is_object(a))
    return json_string_value(json_object_get(a, "type"));
  return json_string_value(a);
}

static int short_form_ok(const char *f)
{
  return strcmp(f, "bearer") == 0 || strcmp(f, "api_key") == 0 || strcmp(f, "oauth2") == 0 ||
         strcmp(f, "basic") == 0 || strcmp(f, "custom_header") == 0;
}

int tg_api_needs_of(const json_t *config, tg_api_needs *n, char *err, size_t errlen)
{
  const json_t *a = json_object_get(config, "authentication");
  const char *url = json_string_value(json_object_get(config, "url"));
  const char *form = auth_form(config);
  const char *cred = json_string_value(json_object_get(config, "credential"));
  CURLU *u = NULL;
  char *host = NULL;
  int rc = 0;
  memset(n, 0, sizeof *n);
  if (!url || !*url)
    return fail(err, errlen, TG_EINVAL, "config.url is required");
  if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
    return fail(err, errlen, TG_EINVAL, "config.url must be an http or https URL");
  if (!(u = curl_url()) || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    curl_url_cleanup(u);
    return fail(err, errlen, TG_EINVAL, "config.url is not a valid URL");
  }
  {
    size_t hl = strlen(host);
    const char *h = host;
    if (hl >= 2 && host[0] == '[') {
      h++;
      hl -= 2;
    }
    if (hl >= sizeof n->host)
      hl = sizeof n->host - 1;
    for (size_t i = 0; i < hl; i++)
      n->host[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] + 32 : h[i]);
  }
  curl_free(host);
  curl_url_cleanup(u);
  if (!(n->names = json_array()))
    return TG_ENOMEM;
  if (json_is_object(a) && json_is_string(json_object_get(a, "credential")))
    cred = json_string_value(json_object_get(a, "credential"));
  if (form && *form && strcmp(form, "none") != 0) {
    if (json_is_string(a) && !short_form_ok(form)) {
      rc = fail(err, errlen, TG_EINVAL,
                "config.authentication must be bearer, api_key, basic, oauth2, custom_header "
                "or an object");
    } else if (json_is_object(a) && strcmp(form, "oauth2") == 0 && !cred) {
      rc = fail(err, errlen, TG_EINVAL, "config.authentication.credential is required for oauth2");
    } else if (json_is_string(a) || strcmp(form, "oauth2") == 0) {
      if (cred)
        n->auth = strdup(cred);
      else
        n->by_host = 1;
      if (cred && !n->auth)
        rc = TG_ENOMEM;
    }
  }
  if (rc == 0 && n->auth)
    json_array_append_new(n->names, json_string(n->auth));
  if (rc == 0) {
    static const char *const fields[] = {"url",          "endpoint", "headers",
                                         "query_params", "body",     "authentication"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
      collect_refs(json_object_get(config, fields[i]), n->names);
  }
  if (rc)
    tg_api_needs_free(n);
  return rc;
}

void tg_api_needs_free(tg_api_needs *n)
{
  if (!n)
    return;
  json_decref(n->names);
  free(n->auth);
  memset(n, 0, sizeof *n);
}

/* ---------------------------------------------------------------- building */

int tg_api_method_idempotent(const char *m)
{
  return m && (strcasecmp(m, "GET") == 0 || strcasecmp(m, "HEAD") == 0 ||
               strcasecmp(m, "PUT") == 0 || strcasecmp(m, "DELETE") == 0 ||
               strcasecmp(m, "OPTIONS") == 0 || strcasecmp(m, "TRACE") == 0);
}

int tg_api_config_idempotent(const json_t *config)
{
  const char *m = json_string_value(json_object_get(config, "method"));
  const char *k = json_string_value(json_object_get(config, "idempotency_key"));
  return tg_api_method_idempotent(m && *m ? m : "GET") || (k && *k);
}

static int token_ok(const char *s)
{
  if (!s || !*s)
    return 0;
  for (; *s; s++)
    if (!strchr("!#$%&'*+-.^_`|~", *s) &&
        !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
      return 0;
  return 1;
}

/* A value as text: strings as they are, others as compact JSON (new malloc'd string). */
static char *value_text(const json_t *v)
{
  if (json_is_string(v))
    return strdup(json_string_value(v));
  return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

typedef struct builder {
  tg_api_request *req;
  size_t n_headers;
  const json_t *creds;
  char *err;
  size_t errlen;
} builder;

/* name + sep + value with value substituted, as a new string; NULL with *rc set. */
static char *joined(builder *b, const char *name, const char *sep, const char *value, int *rc)
{
  char *v, *out;
  size_t n;
  if (!(v = tg_api_subst_secrets(value, b->creds, rc, b->err, b->errlen)))
    return NULL;
  n = strlen(name) + strlen(sep) + strlen(v) + 1;
  if ((out = malloc(n)) != NULL)
    snprintf(out, n, "%s%s%s", name, sep, v);
  else
    *rc = TG_ENOMEM;
  sodium_memzero(v, strlen(v));
  free(v);
  return out;
}

/* Appends "name: value" (value substituted) to the request's header lines. */
static int add_header(builder *b, const char *name, const char *value)
{
  char *line;
  int rc;
  if (!token_ok(name))
    return fail(b->err, b->errlen, TG_EINVAL, "a header name is not a valid HTTP token");
  if (b->n_headers == TG_API_HEADERS_MAX)
    return fail(b->err, b->errlen, TG_EINVAL, "too many headers (at most 64)");
  if (!(line = joined(b, name, ": ", value, &rc)))
    return rc;
  if (strpbrk(line, "\r\n")) {
    sodium_memzero(line, strlen(line));
    free(line);
    snprintf(b->err, b->errlen, "the value of header %s holds a line break", name);
    return TG_EINVAL;
  }
  b->req->headers[b->n_headers++] = line;
  return 0;
}

static int has_header(const builder *b, const char *name)
{
  size_t nl = strlen(name);
  for (size_t i = 0; i < b->n_headers; i++)
    if (strncasecmp(b->req->headers[i], name, nl) == 0 && b->req->headers[i][nl] == ':')
      return 1;
  return 0;
}

/* Calls fn(b, name, text) for each pair of an object or an array of {key|name, value}. */
static int each_pair(builder *b, const json_t *v, const char *field,
                     int (*fn)(builder *b, const char *name, const char *value, void *arg),
                     void *arg)
{
  int rc = 0;
  if (!v || json_is_null(v))
    return 0;
  if (json_is_object(v)) {
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)v, k, m)
    {
      char *t = value_text(m);
      rc = t ? fn(b, k, t, arg) : TG_ENOMEM;
      free(t);
      if (rc)
        return rc;
    }
    return 0;
  }
  if (json_is_array(v)) {
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m)
    {
      const char *k = json_string_value(json_object_get(m, "key"));
      char *t;
      if (!k)
        k = json_string_value(json_object_get(m, "name"));
      if (!k || !*k)
        continue; /* the builder's empty rows */
      t = value_text(json_object_get(m, "value"));
      rc = t ? fn(b, k, t, arg) : TG_ENOMEM;
      free(t);
      if (rc)
        return rc;
    }
    return 0;
  }
  snprintf(b->err, b->errlen, "config.%s must be an object or an array of {key, value}", field);
  return TG_EINVAL;
}

static int header_pair(builder *b, const char *name, const char *value, void *arg)
{
  (void)arg;
  return add_header(b, name, value);
}

static int query_pair(builder *b, const char *name, const char *value, void *arg)
{
  CURLU *u = arg;
  char *pair;
  int rc;
  if (!(pair = joined(b, name, "=", value, &rc)))
    return rc;
  rc = curl_url_set(u, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE) == CURLUE_OK
           ? 0
           : fail(b->err, b->errlen, TG_EINVAL, "a query parameter cannot be encoded");
  sodium_memzero(pair, strlen(pair));
  free(pair);
  return rc;
}

/* The string member field of credential c's secret or of c itself. */
static const char *cred_str(const json_t *c, const char *where, const char *field)
{
  return json_string_value(json_object_get(where ? json_object_get(c, where) : c, field));
}

/* Applies a short form (or {type:"oauth2", credential}) with credential auth. */
static int apply_credential(builder *b, CURLU *u, const char *form, const char *auth,
                            const json_t *config)
{
  const json_t *c = json_object_get(b->creds, auth);
  const char *type = cred_str(c, NULL, "type");
  char ref[160];
  if (!c || !type) {
    snprintf(b->err, b->errlen, "credential \"%s\" not found", auth);
    return TG_ENOTFOUND;
  }
  if (strcmp(type, "oauth2") == 0 && !cred_str(c, NULL, "access_token")) {
    snprintf(b->err, b->errlen, "credential \"%s\" has no access token", auth);
    return TG_ENOTFOUND;
  }
  if (strcmp(form, "oauth2") == 0 && strcmp(type, "oauth2") != 0) {
    snprintf(b->err, b->errlen, "credential \"%s\" is not an oauth2 credential", auth);
    return TG_EINVAL;
  }
  snprintf(ref, sizeof ref, "{{secrets.%s}}", auth);
  if (strcmp(form, "custom_header") == 0) {
    const char *h = json_string_value(json_object_get(config, "header_name"));
    return add_header(b, h ? h : "X-API-Key", ref);
  }
  if (strcmp(type, "api_key") == 0) {
    const char *where = cred_str(c, "meta", "in"), *param = cred_str(c, "meta", "param_name");
    if (where && strcmp(where, "query") == 0)
      return query_pair(b, param ? param : "api_key", ref, u);
    return add_header(b, param ? param : "X-API-Key", ref);
  }
  {
    char line[192];
    snprintf(line, sizeof line, "%s %s", strcmp(type, "basic") == 0 ? "Basic" : "Bearer", ref);
    return add_header(b, "Authorization", line);
  }
}

/* Applies an object form other than oauth2. */
static int apply_object(builder *b, CURLU *u, const json_t *a)
{
  const char *type = json_string_value(json_object_get(a, "type"));
  if (strcmp(type, "bearer") == 0) {
    const char *tok = json_string_value(json_object_get(a, "token"));
    char *line;
    size_t n;
    int rc;
    if (!tok)
      return fail(b->err, b->errlen, TG_EINVAL, "config.authentication.token is required");
    n = strlen(tok) + 8;
    if (!(line = malloc(n)))
      return TG_ENOMEM;
    snprintf(line, n, "Bearer %s", tok);
    rc = add_header(b, "Authorization", line);
    free(line);
    return rc;
  }
  if (strcmp(type, "api_key") == 0 || strcmp(type, "custom_header") == 0) {
    const char *name = json_string_value(json_object_get(a, "name"));
    const char *value = json_string_value(json_object_get(a, "value"));
    const char *where = json_string_value(json_object_get(a, "in"));
    if (!name || !value)
      return fail(b->err, b->errlen, TG_EINVAL,
                  "config.authentication needs name and value for this type");
    if (strcmp(type, "api_key") == 0 && where && strcmp(where, "query") == 0)
      return query_pair(b, name, value, u);
    return add_header(b, name, value);
  }
  if (strcmp(type, "basic") == 0) {
    const char *user = json_string_value(json_object_get(a, "username"));
    const char *pw = json_string_value(json_object_get(a, "password"));
    json_t *tmp;
    char *line;
    int rc;
    if (!user || !pw)
      return fail(b->err, b->errlen, TG_EINVAL,
                  "config.authentication needs username and password for basic");
    /* Substitute first, then encode: a pseudo-credential carries the pair through cred_value. */
    {
      char *su, *sp;
      if (!(su = tg_api_subst_secrets(user, b->creds, &rc, b->err, b->errlen)))
        return rc;
      if (!(sp = tg_api_subst_secrets(pw, b->creds, &rc, b->err, b->errlen))) {
        free(su);
        return rc;
      }
      tmp = json_pack("{s:{s:s, s:{s:s, s:s}}}", "p", "type", "basic", "secret", "username", su,
                      "password", sp);
      sodium_memzero(sp, strlen(sp));
      free(su);
      free(sp);
    }
    if (!tmp)
      return TG_ENOMEM;
    line = cred_value(tmp, "p", &rc);
    json_decref(tmp);
    if (!line)
      return rc;
    {
      size_t n = strlen(line) + 7;
      char *h = malloc(n);
      if (h)
        snprintf(h, n, "Basic %s", line);
      sodium_memzero(line, strlen(line));
      free(line);
      if (!h)
        return TG_ENOMEM;
      /* the encoded pair holds no reference: add_header's substitution leaves it as it is */
      rc = add_header(b, "Authorization", h);
      sodium_memzero(h, strlen(h));
      free(h);
      return rc;
    }
  }
  return fail(b->err, b->errlen, TG_EINVAL,
              "config.authentication.type must be bearer, api_key, custom_header, basic or oauth2");
}

/* url (+ endpoint) substituted into u. */
static int set_url(builder *b, CURLU *u, const json_t *config)
{
  const char *url = json_string_value(json_object_get(config, "url"));
  const char *ep = json_string_value(json_object_get(config, "endpoint"));
  char *su, *full;
  size_t n;
  int rc;
  if (!url)
    return fail(b->err, b->errlen, TG_EINVAL, "config.url is required");
  if (!(su = tg_api_subst_secrets(url, b->creds, &rc, b->err, b->errlen)))
    return rc;
  n = strlen(su) + (ep ? strlen(ep) : 0) + 2;
  if (!(full = malloc(n))) {
    free(su);
    return TG_ENOMEM;
  }
  if (ep && *ep) {
    size_t ul = strlen(su);
    int slash_u = ul > 0 && su[ul - 1] == '/', slash_e = ep[0] == '/';
    snprintf(full, n, "%.*s%s%s", (int)(ul - (slash_u && slash_e)), su,
             !slash_u && !slash_e ? "/" : "", ep);
  } else {
    snprintf(full, n, "%s", su);
  }
  sodium_memzero(su, strlen(su));
  free(su);
  if (ep && *ep && strstr(ep, REF_OPEN)) { /* the endpoint may hold references too */
    char *s2 = tg_api_subst_secrets(full, b->creds, &rc, b->err, b->errlen);
    free(full);
    if (!(full = s2))
      return rc;
  }
  rc = curl_url_set(u, CURLUPART_URL, full, 0) == CURLUE_OK
           ? 0
           : fail(b->err, b->errlen, TG_EINVAL, "config.url (with endpoint) is not a valid URL");
  sodium_memzero(full, strlen(full));
  free(full);
  return rc;
}

/* The body: a string as is, any other JSON compact (with a JSON content type). */
static int set_body(builder *b, const json_t *config)
{
  const json_t *body = json_object_get(config, "body");
  char *text;
  int rc = 0;
  if (!body || json_is_null(body) || (json_is_string(body) && !*json_string_value(body)))
    return 0;
  if (json_is_string(body)) {
    if (!(b->req->body =
              tg_api_subst_secrets(json_string_value(body), b->creds, &rc, b->err, b->errlen)))
      return rc;
  } else {
    if (!(text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY)))
      return TG_ENOMEM;
    b->req->body = tg_api_subst_secrets(text, b->creds, &rc, b->err, b->errlen);
    free(text);
    if (!b->req->body)
      return rc;
    if (!has_header(b, "Content-Type"))
      rc = add_header(b, "Content-Type", "application/json");
  }
  b->req->body_len = strlen(b->req->body);
  return rc;
}

int tg_api_request_build(const json_t *config, const json_t *creds, const char *auth,
                         tg_api_request *req, char *err, size_t errlen)
{
  builder b = {req, 0, creds, err, errlen};
  const char *method = json_string_value(json_object_get(config, "method"));
  const json_t *a = json_object_get(config, "authentication");
  const char *form = auth_form(config), *idem;
  CURLU *u = curl_url();
  char *host = NULL, *path = NULL, *url = NULL;
  int rc;
  memset(req, 0, sizeof *req);
  if (!u)
    return TG_ENOMEM;
  if (!method || !*method)
    method = "GET";
  if (strlen(method) >= sizeof req->method || !token_ok(method)) {
    rc = fail(err, errlen, TG_EINVAL, "config.method is not an HTTP method");
    goto fail;
  }
  for (size_t i = 0; method[i]; i++)
    req->method[i] = (char)((method[i] >= 'a' && method[i] <= 'z') ? method[i] - 32 : method[i]);
  if ((rc = set_url(&b, u, config)) != 0 ||
      (rc = each_pair(&b, json_object_get(config, "query_params"), "query_params", query_pair,
                      u)) != 0 ||
      (rc = each_pair(&b, json_object_get(config, "headers"), "headers", header_pair, NULL)) != 0)
    goto fail;
  if (form && *form && strcmp(form, "none") != 0) {
    if (json_is_string(a) || strcmp(form, "oauth2") == 0) {
      if (!auth) {
        rc = fail(err, errlen, TG_ENOTFOUND, "no credential is named or bound to the URL's host");
        goto fail;
      }
      rc = apply_credential(&b, u, form, auth, config);
    } else {
      rc = apply_object(&b, u, a);
    }
    if (rc)
      goto fail;
  }
  idem = json_string_value(json_object_get(config, "idempotency_key"));
  if (idem && *idem && (rc = add_header(&b, "Idempotency-Key", idem)) != 0)
    goto fail;
  req->idempotent = tg_api_config_idempotent(config);
  if ((rc = set_body(&b, config)) != 0)
    goto fail;
  req->timeout_ms = (long)json_integer_value(json_object_get(config, "timeout_ms"));
  if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
    rc = fail(err, errlen, TG_EINVAL, "config.url is not a valid URL");
    goto fail;
  }
  {
    size_t n = strlen(req->method) + strlen(host) + strlen(path) + 2;
    req->url = strdup(url);
    if ((req->tool_name = malloc(n)) != NULL)
      snprintf(req->tool_name, n, "%s %s%s", req->method, host, path);
    rc = req->url && req->tool_name ? 0 : TG_ENOMEM;
  }
fail:
  if (url)
    sodium_memzero(url, strlen(url));
  curl_free(url);
  curl_free(host);
  curl_free(path);
  curl_url_cleanup(u);
  if (rc)
    tg_api_request_free(req);
  return rc;
}

void tg_api_request_free(tg_api_request *req)
{
  if (!req)
    return;
  for (size_t i = 0; i < TG_API_HEADERS_MAX && req->headers[i]; i++) {
    sodium_memzero(req->headers[i], strlen(req->headers[i]));
    free(req->headers[i]);
  }
  if (req->body)
    sodium_memzero(req->body, req->body_len);
  free(req->body);
  if (req->url)
    sodium_memzero(req->url, strlen(req->url));
  free(req->url);
  free(req->tool_name);
  memset(req, 0, sizeof *req);
}

/* ---------------------------------------------------------------- output */

static int is_json_type(const char *ct)
{
  const char *semi;
  size_t n;
  if (!ct)
    return 0;
  semi = strchr(ct, ';');
  n = semi ? (size_t)(semi - ct) : strlen(ct);
  while (n > 0 && ct[n - 1] == ' ')
    n--;
  return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
         (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

json_t *tg_api_output(long status, const char *content_type, const char *body, size_t len,
                      double elapsed_s, const char *error)
{
  int ok = status >= 200 && status < 300;
  json_t *data = NULL, *out;
  char msg[64];
  if (len > 0 && len <= TG_API_DATA_MAX && is_json_type(content_type))
    data = json_loadb(body, len, JSON_DECODE_ANY, NULL);
  if (!data && len > 0) {
    size_t n = len > TG_API_DATA_MAX ? tg_json_utf8_cut(body, TG_API_DATA_MAX) : len;
    data = json_stringn(body, n); /* NULL for bytes that are not UTF-8: data is null */
  }
  if (!ok && !error) {
    snprintf(msg, sizeof msg, "HTTP %ld", status);
    error = msg;
  }
  out = json_pack("{s:b, s:I, s:o, s:s?, s:f}", "success", ok && !error, "status_code",
                  (json_int_t)status, "data", data ? data : json_null(), "error", error,
                  "elapsed_seconds", elapsed_s);
  if (out && !json_object_get(out, "error"))
    json_object_set_new(out, "error", json_null());
  return out;
}

json_t *tg_api_secret_refs(const json_t *v)
{
  json_t *names = json_array();
  if (names)
    collect_refs(v, names);
  return names;
}

void tg_api_wipe_json(json_t *v)
{
  const char *k;
  json_t *m;
  size_t i;
  if (json_is_string(v))
    sodium_memzero((char *)json_string_value(v), json_string_length(v));
  else if (json_is_object(v))
    json_object_foreach(v, k, m) tg_api_wipe_json(m);
  else if (json_is_array(v))
    json_array_foreach(v, i, m) tg_api_wipe_json(m);
}
