/*
 * tg_connector: validation, the clear / sealed split and the requests of connectors (contract in
 * tg_connector.h).
 *
 * Invariants: config never holds a value of SECRET_KEYS nor a header value; the auth of an API
 * connector is validated by the credentials' own parser (tg_store_credentials_parse), so a
 * connector's auth accepts exactly what a credential does and is applied by tg_api_request the
 * same way; every plaintext copy made here is wiped before it is released.
 */
#include "tg_connector.h"

#include "tg_err.h"
#include "tg_store_credentials.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DESC_MAX 4096
#define URL_MAX 2048
#define HEADERS_MAX 64

static const char *const secret_keys[] = {"token",    "value",         "username",
                                          "password", "client_secret", "refresh_token"};
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void add_error(json_t *errors, const char *field, const char *message)
{
  json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* o[key] as a string, "" when it is not one. */
static const char *sval(const json_t *o, const char *key)
{
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

static int is_secret_key(const char *k)
{
  for (size_t i = 0; i < COUNT(secret_keys); i++)
    if (strcmp(k, secret_keys[i]) == 0)
      return 1;
  return 0;
}

static int http_url(const char *u)
{
  return u && strlen(u) <= URL_MAX && !strpbrk(u, " \r\n") &&
         (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
         u[strncmp(u, "https://", 8) == 0 ? 8 : 7] != 0;
}

/* The credential an auth object stands for, as tg_store_credentials_parse validates it:
 * custom_header is an api_key in a header named by name. NULL errors and *cred filled, or the
 * parser's errors with fields prefixed "auth.". */
static json_t *auth_credential(const json_t *auth, tg_credential_input *cred)
{
  json_t *body = json_deep_copy(auth), *errors;
  const char *type = json_string_value(json_object_get(auth, "type"));
  size_t i;
  json_t *e;
  if (!body)
    return json_pack("[{s:s, s:s}]", "field", "auth", "message", "out of memory");
  json_object_set_new(body, "name", json_string("connector"));
  json_object_del(body, "hosts");
  if (type && strcmp(type, "custom_header") == 0) {
    json_object_set_new(body, "type", json_string("api_key"));
    json_object_set_new(body, "in", json_string("header"));
    json_object_set(body, "param_name", json_object_get(auth, "name"));
  } else if (type && strcmp(type, "api_key") == 0 && !json_object_get(body, "param_name") &&
             json_object_get(body, "name")) {
    json_object_set(body, "param_name", json_object_get(auth, "name"));
  }
  errors = tg_store_credentials_parse(body, cred);
  tg_connector_drop(body);
  json_array_foreach(errors, i, e)
  {
    char field[96];
    const char *f = json_string_value(json_object_get(e, "field"));
    snprintf(field, sizeof field, "auth.%s", f ? f : "");
    json_object_set_new(e, "field", json_string(field));
  }
  return errors;
}

/* Splits an auth object into its clear part (into config.auth) and its secret fields. */
static void split_auth(const json_t *auth, json_t *config, json_t *secret_auth)
{
  json_t *clear = json_object(), *v;
  const char *k;
  json_object_foreach((json_t *)auth, k, v)
  {
    if (is_secret_key(k))
      json_object_set(secret_auth, k, v);
    else
      json_object_set(clear, k, v);
  }
  json_object_set_new(config, "auth", clear);
}

static void parse_auth(const char *kind, const json_t *body, tg_connector_input *in, json_t *errors)
{
  const json_t *auth = json_object_get(body, "auth");
  const char *type = json_string_value(json_object_get(auth, "type"));
  json_t *secret_auth = json_object_get(in->secret, "auth");
  if (strcmp(kind, "mcp") == 0) {
    const json_t *o = json_object_get(body, "oauth");
    if (o && !json_is_boolean(o) && !json_is_null(o))
      add_error(errors, "oauth", "must be a boolean");
    in->oauth = json_is_true(o);
    if (auth && !json_is_null(auth)) {
      if (!json_is_object(auth) || !type || strcasecmp(type, "oauth2") != 0) {
        add_error(errors, "auth", "an MCP connector's auth is {type: \"oauth2\", ...}");
        return;
      }
      in->oauth = 1;
      split_auth(auth, in->config, secret_auth);
    }
    json_object_set_new(in->config, "oauth", json_boolean(in->oauth));
    return;
  }
  if (!auth || json_is_null(auth) || (type && strcmp(type, "none") == 0)) {
    json_object_set_new(in->config, "auth", json_pack("{s:s}", "type", "none"));
    return;
  }
  if (!json_is_object(auth)) {
    add_error(errors, "auth", "must be an object {type, ...}");
    return;
  }
  {
    tg_credential_input cred;
    json_t *e = auth_credential(auth, &cred);
    if (e) {
      json_array_extend(errors, e);
      json_decref(e);
      return;
    }
    tg_credential_input_free(&cred);
  }
  split_auth(auth, in->config, secret_auth);
}

/* headers: an object of at most HEADERS_MAX token names -> one-line strings, sealed. */
static void parse_headers(const json_t *body, tg_connector_input *in, json_t *errors)
{
  const json_t *h = json_object_get(body, "headers");
  json_t *v;
  json_t *names = json_array(), *sealed = json_object_get(in->secret, "headers");
  const char *k;
  json_object_set_new(in->config, "header_names", names);
  if (!h || json_is_null(h))
    return;
  if (!json_is_object(h) || json_object_size(h) > HEADERS_MAX) {
    add_error(errors, "headers", "must be an object of at most 64 header name -> string");
    return;
  }
  json_object_foreach((json_t *)h, k, v)
  {
    const char *s = json_string_value(v);
    if (!*k || strpbrk(k, " \t\r\n:()<>@,;\\\"/[]?={}") || !s || strpbrk(s, "\r\n") ||
        json_string_length(v) != strlen(s)) {
      add_error(errors, "headers", "each header needs a token name and a one-line string value");
      return;
    }
    json_array_append_new(names, json_string(k));
    json_object_set(sealed, k, v);
  }
}

static void parse_operations(const json_t *body, tg_connector_input *in, json_t *errors)
{
  const json_t *ops = json_object_get(body, "operations"), *op;
  json_t *out = json_array();
  size_t i;
  json_object_set_new(in->config, "operations", out);
  if (!ops || json_is_null(ops))
    return;
  if (!json_is_array(ops) || json_array_size(ops) > TG_CONNECTOR_OPS_MAX) {
    add_error(errors, "operations", "must be an array of at most 256 operations");
    return;
  }
  json_array_foreach(ops, i, op)
  {
    char field[64];
    const char *name = json_string_value(json_object_get(op, "name"));
    const char *method = json_string_value(json_object_get(op, "method"));
    const char *path = json_string_value(json_object_get(op, "path"));
    const json_t *schema = json_object_get(op, "input_schema");
    char up[8] = "GET";
    int ok = 0;
    snprintf(field, sizeof field, "operations[%zu]", i);
    if (!json_is_object(op) || !name || !*name || strlen(name) > TG_CONNECTOR_NAME_MAX) {
      add_error(errors, field, "needs a name of 1 to 128 bytes");
      continue;
    }
    for (size_t k = 0; k < json_array_size(out); k++)
      if (strcmp(name, sval(json_array_get(out, k), "name")) == 0)
        add_error(errors, field, "operation names must be unique");
    if (method && strlen(method) < sizeof up)
      for (size_t k = 0; k <= strlen(method); k++)
        up[k] = (char)((method[k] >= 'a' && method[k] <= 'z') ? method[k] - 32 : method[k]);
    for (size_t k = 0; k < COUNT(methods); k++)
      ok |= strcmp(up, methods[k]) == 0;
    if (!ok)
      add_error(errors, field, "method must be GET, POST, PUT, PATCH, DELETE or HEAD");
    if (path && (strpbrk(path, " \r\n") || strlen(path) > URL_MAX))
      add_error(errors, field, "path must be a URL path without spaces");
    if (schema && !json_is_null(schema) && !json_is_object(schema))
      add_error(errors, field, "input_schema must be an object");
    json_array_append_new(out,
                          json_pack("{s:s, s:s, s:s, s:O?, s:O?}", "name", name, "method", up,
                                    "path", path ? path : "", "input_schema", schema,
                                    "example_payload", json_object_get(op, "example_payload")));
  }
}

json_t *tg_connector_parse(const char *kind, const json_t *body, tg_connector_input *in)
{
  json_t *errors = json_array();
  const char *name = json_string_value(json_object_get(body, "name"));
  const json_t *desc = json_object_get(body, "description");
  int api = strcmp(kind, "api") == 0;
  const char *url = json_string_value(json_object_get(body, api ? "base_url" : "url"));
  memset(in, 0, sizeof *in);
  if (!errors)
    return NULL;
  in->kind = api ? "api" : "mcp";
  in->config = json_object();
  in->secret = json_pack("{s:{}, s:{}}", "auth", "headers");
  if (!in->config || !in->secret) {
    add_error(errors, "body", "out of memory");
    goto fail;
  }
  if (!name || !*name || strlen(name) > TG_CONNECTOR_NAME_MAX || strpbrk(name, "\r\n"))
    add_error(errors, "name", "required: 1 to 128 bytes on one line");
  else
    in->name = strdup(name);
  if (desc && !json_is_null(desc) && (!json_is_string(desc) || json_string_length(desc) > DESC_MAX))
    add_error(errors, "description", "must be a string of at most 4096 bytes");
  in->description = strdup(json_is_string(desc) ? json_string_value(desc) : "");
  if (!http_url(url))
    add_error(errors, api ? "base_url" : "url", "required: an http or https URL");
  else
    json_object_set_new(in->config, api ? "base_url" : "url", json_string(url));
  parse_auth(in->kind, body, in, errors);
  parse_headers(body, in, errors);
  if (api)
    parse_operations(body, in, errors);
  else if (json_object_get(body, "example_payload"))
    json_object_set(in->config, "example_payload", json_object_get(body, "example_payload"));
  if (json_array_size(errors) == 0 && in->name && in->description) {
    json_decref(errors);
    return NULL;
  }
  if (json_array_size(errors) == 0)
    add_error(errors, "body", "out of memory");
fail:
  tg_connector_input_free(in);
  return errors;
}

void tg_connector_input_free(tg_connector_input *in)
{
  if (!in)
    return;
  free(in->name);
  free(in->description);
  json_decref(in->config);
  tg_connector_drop(in->secret); /* only ever held by in */
  memset(in, 0, sizeof *in);
}

json_t *tg_connector_update_body(const json_t *opened, const json_t *patch)
{
  const json_t *config = json_object_get(opened, "config");
  const json_t *secret = json_object_get(opened, "secret");
  json_t *body = json_deep_copy(config), *auth;
  const char *k;
  json_t *v;
  if (!body)
    return NULL;
  json_object_del(body, "header_names");
  /* deep copies only: the caller wipes opened while the body lives on */
  json_object_set_new(body, "name", json_deep_copy(json_object_get(opened, "name")));
  json_object_set_new(body, "description", json_deep_copy(json_object_get(opened, "description")));
  if ((auth = json_object_get(body, "auth")) && json_is_object(auth))
    json_object_update_new(auth, json_deep_copy(json_object_get(secret, "auth")));
  json_object_set_new(body, "headers", json_deep_copy(json_object_get(secret, "headers")));
  json_object_foreach((json_t *)patch, k, v) json_object_set_new(body, k, json_deep_copy(v));
  return body;
}

json_t *tg_connector_public(const json_t *row)
{
  json_t *out = json_copy((json_t *)row);
  if (!out)
    return NULL;
  json_object_del(out, "config");
  json_object_update_missing(out, json_object_get(row, "config"));
  return out;
}

/* ---------------------------------------------------------------- requests */

static const json_t *find_operation(const json_t *ops, const char *name)
{
  size_t i;
  const json_t *op;
  if (!name || !*name)
    return json_array_get(ops, 0);
  json_array_foreach(ops, i, op)
  {
    const char *n = json_string_value(json_object_get(op, "name"));
    if (n && strcmp(n, name) == 0)
      return op;
  }
  return NULL;
}

/* base_url + path with "{name}" replaced by the payload's scalars (their members are then not
 * sent again). New string, NULL when memory runs out. */
static char *join_url(const char *base, const char *path, json_t *payload)
{
  size_t bl = strlen(base), cap = bl + strlen(path) + 2 + 1024, n = 0;
  char *out = malloc(cap);
  if (!out)
    return NULL;
  memcpy(out, base, bl);
  n = bl;
  if (*path && n && out[n - 1] == '/' && *path == '/')
    n--;
  else if (*path && *path != '/' && *path != '?' && (!n || out[n - 1] != '/'))
    out[n++] = '/';
  for (const char *p = path; *p; p++) {
    const char *end = *p == '{' ? strchr(p, '}') : NULL;
    char key[128], val[256] = "";
    size_t vl;
    json_t *v;
    if (end && (size_t)(end - p - 1) < sizeof key) {
      memcpy(key, p + 1, (size_t)(end - p - 1));
      key[end - p - 1] = 0;
      v = json_object_get(payload, key);
      if (json_is_string(v))
        snprintf(val, sizeof val, "%s", json_string_value(v));
      else if (json_is_integer(v))
        snprintf(val, sizeof val, "%lld", (long long)json_integer_value(v));
      if (*val) {
        vl = strlen(val);
        if (n + vl + 1 >= cap)
          break;
        for (size_t i = 0; i < vl; i++) /* a path segment: no '/', '?' or '#' */
          out[n++] =
              (val[i] == '/' || val[i] == '?' || val[i] == '#' || val[i] == ' ') ? '_' : val[i];
        json_object_del(payload, key);
        p = end;
        continue;
      }
    }
    if (n + 2 >= cap)
      break;
    out[n++] = *p;
  }
  out[n] = 0;
  return out;
}

int tg_connector_api_config(const json_t *opened, const char *operation, const json_t *payload,
                            json_t **config, json_t **creds, const char **auth, char *err,
                            size_t errlen)
{
  const json_t *cfg = json_object_get(opened, "config");
  const json_t *secret = json_object_get(opened, "secret");
  const json_t *op, *a = json_object_get(cfg, "auth");
  const char *id = json_string_value(json_object_get(opened, "id"));
  const char *type = json_string_value(json_object_get(a, "type"));
  const char *method;
  json_t *body = NULL, *c = NULL, *cr = NULL, *auth_body = NULL;
  char *url = NULL;
  int rc = TG_ENOMEM;
  *config = *creds = NULL;
  *auth = NULL;
  if (!id || strcmp(sval(opened, "kind"), "api") != 0) {
    snprintf(err, errlen, "not an API connector");
    return TG_EINVAL;
  }
  if (!(op = find_operation(json_object_get(cfg, "operations"), operation))) {
    snprintf(err, errlen, "connector %s has no operation %s", id,
             operation && *operation ? operation : "(none defined)");
    return TG_ENOTFOUND;
  }
  method = json_string_value(json_object_get(op, "method"));
  if (!payload || json_is_null(payload))
    payload = json_object_get(op, "example_payload");
  body = payload && !json_is_null(payload) ? json_deep_copy(payload) : NULL;
  if (!(url = join_url(sval(cfg, "base_url"), sval(op, "path"), body)))
    goto out;
  c = json_pack("{s:s, s:s, s:o}", "method", method ? method : "GET", "url", url, "headers",
                json_deep_copy(json_object_get(secret, "headers")));
  cr = json_object();
  if (!c || !cr)
    goto out;
  if (body && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
               strcmp(method, "DELETE") == 0)) {
    if (json_is_object(body) && json_object_size(body))
      json_object_set(c, "query_params", body);
  } else if (body) {
    json_object_set(c, "body", body);
  }
  if (type && strcmp(type, "none") != 0) {
    tg_credential_input in;
    json_t *e, *hv;
    const char *k;
    auth_body = json_deep_copy(a);
    if (!auth_body)
      goto out;
    if (json_object_update_new(auth_body, json_deep_copy(json_object_get(secret, "auth"))))
      goto out;
    if ((e = auth_credential(auth_body, &in)) != NULL) {
      json_decref(e);
      snprintf(err, errlen, "connector %s: its stored auth is unusable", id);
      rc = TG_EINVAL;
      goto out;
    }
    json_object_foreach(json_object_get(secret, "headers"), k, hv)
    {
      char key[160];
      snprintf(key, sizeof key, "header:%s", k);
      /* a copy: redacted with the credential's values, wiped with it */
      json_object_set_new(in.secret, key, json_string(json_string_value(hv)));
    }
    rc = json_object_set_new(cr, id,
                             json_pack("{s:s, s:O, s:o}", "type", in.type, "meta", in.meta,
                                       "secret", json_deep_copy(in.secret)))
             ? TG_ENOMEM
             : 0;
    tg_credential_input_free(&in); /* cr holds a deep copy */
    if (rc)
      goto out;
    json_object_set_new(
        c, "authentication",
        json_string(json_string_value(json_object_get(json_object_get(cr, id), "type"))));
    json_object_set_new(c, "credential", json_string(id));
    *auth = id;
  }
  rc = 0;
out:
  tg_connector_drop(auth_body);
  json_decref(body);
  free(url);
  if (rc) {
    tg_connector_drop(c);
    tg_connector_drop(cr);
    *auth = NULL;
    if (!*err)
      snprintf(err, errlen, "out of memory");
    return rc;
  }
  *config = c;
  *creds = cr;
  return 0;
}

char **tg_connector_mcp_headers(const json_t *opened, const char *bearer)
{
  const json_t *h = json_object_get(json_object_get(opened, "secret"), "headers"), *v;
  size_t n = json_object_size(h) + 2, i = 0;
  char **lines = calloc(n, sizeof *lines);
  const char *k;
  if (!lines)
    return NULL;
  json_object_foreach((json_t *)h, k, v)
  {
    size_t len = strlen(k) + json_string_length(v) + 3;
    if (!json_is_string(v))
      continue;
    if (!(lines[i] = malloc(len)))
      goto oom;
    snprintf(lines[i++], len, "%s: %s", k, json_string_value(v));
  }
  if (bearer) {
    size_t len = strlen(bearer) + 32;
    if (!(lines[i] = malloc(len)))
      goto oom;
    snprintf(lines[i++], len, "Authorization: Bearer %s", bearer);
  }
  return lines;
oom:
  tg_connector_lines_free(lines);
  return NULL;
}

void tg_connector_lines_free(char **lines)
{
  for (size_t i = 0; lines && lines[i]; i++) {
    memset(lines[i], 0, strlen(lines[i]));
    free(lines[i]);
  }
  free(lines);
}

/* ---------------------------------------------------------------- admission scope */

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *tg_connector_ids_of(const json_t *definition)
{
  json_t *set = json_object(), *out = json_array(), *v;
  const json_t *n;
  const char **keys = NULL, *k;
  size_t i, count = 0;
  json_array_foreach(json_object_get(definition, "nodes"), i, n)
  {
    const char *id =
        json_string_value(json_object_get(json_object_get(n, "config"), "connector_id"));
    if (set && id && *id && !strstr(id, "{{")) /* a template is known only at run time */
      json_object_set_new(set, id, json_true());
  }
  if (set && out && (keys = calloc(json_object_size(set) + 1, sizeof *keys)) != NULL) {
    json_object_foreach(set, k, v) keys[count++] = k;
    qsort(keys, count, sizeof *keys, cmp_str);
    for (i = 0; i < count; i++)
      json_array_append_new(out, json_string(keys[i]));
  }
  if (!keys) {
    json_decref(out);
    out = NULL;
  }
  free(keys);
  json_decref(set);
  return out;
}

void tg_connector_drop(json_t *v)
{
  if (v)
    tg_api_wipe_json(v);
  json_decref(v);
}

int tg_connector_block(json_t *providers, json_t *reasons, const json_t *named,
                       const json_t *statuses)
{
  size_t i, j;
  const json_t *id;
  int added = 0;
  json_array_foreach(named, i, id)
  {
    const char *st = json_string_value(json_object_get(statuses, json_string_value(id)));
    char name[TG_CONNECTOR_NAME_MAX + 16];
    if (!st)
      continue;
    snprintf(name, sizeof name, "connector:%s", json_string_value(id));
    for (j = 0; j < json_array_size(providers); j++)
      if (strcmp(json_string_value(json_array_get(providers, j))
                     ? json_string_value(json_array_get(providers, j))
                     : "",
                 name) > 0)
        break;
    if (json_array_insert_new(providers, j, json_string(name)) ||
        json_object_set_new(reasons, name, json_string(st)))
      return TG_ENOMEM;
    added++;
  }
  return added;
}
