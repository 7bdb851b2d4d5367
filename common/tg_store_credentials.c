/*
 * tg_store_credentials: validation, sealing and the statements over credentials (contract in
 * tg_store_credentials.h).
 *
 * Invariants: secret_enc always holds the sealed compact JSON (sorted keys) of the secret
 * fields, sealed for the row's own id and user, so a blob copied to another row or user does not
 * open; the public view (PUBLIC_COLS) never selects secret_enc; plaintext copies are wiped
 * before they are freed. Reads that open secrets select hex(secret_enc) (tg_db_query omits
 * BLOBs) and decode it here.
 */
#include "tg_store_credentials.h"

#include "tg_db.h"
#include "tg_err.h"
#include "tg_id.h"
#include "tg_sealed.h"
#include "tg_sql.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TABLE "credentials"
#define SECRET_MAX 16384 /* bytes of one secret field */
#define META_MAX 2048    /* bytes of one non-secret field */
#define PUBLIC_COLS                                                                                \
  "name, type, hosts AS hosts_json, meta AS meta_json, created_at, updated_at FROM credentials "

int tg_credential_name_ok(const char *name)
{
  size_t n = 0;
  if (!name)
    return 0;
  for (const char *p = name; *p; p++, n++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_' || *p == '.' || *p == '-'))
      return 0;
  return n >= 1 && n <= TG_CREDENTIAL_NAME_MAX;
}

static void add_error(json_t *errors, const char *field, const char *message)
{
  json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* body[field] as a string within max bytes without NUL, CR or LF; NULL (with an error when
 * required) otherwise. */
static const char *str_field(const json_t *body, const char *field, int required, size_t max,
                             json_t *errors)
{
  const json_t *v = json_object_get(body, field);
  const char *s = json_string_value(v);
  if (!v || json_is_null(v)) {
    if (required)
      add_error(errors, field, "required");
    return NULL;
  }
  if (!s || !*s || json_string_length(v) != strlen(s) || json_string_length(v) > max ||
      strpbrk(s, "\r\n")) {
    add_error(errors, field, "must be a non-empty string on one line, at most 16 KiB");
    return NULL;
  }
  return s;
}

/* A host pattern: a host name, or "*." and a host name; labels of [a-z0-9-_]. */
static int host_pattern_ok(const char *h)
{
  if (strncmp(h, "*.", 2) == 0)
    h += 2;
  if (!*h || strlen(h) > 253 || *h == '.' || h[strlen(h) - 1] == '.')
    return 0;
  for (; *h; h++)
    if (!((*h >= 'a' && *h <= 'z') || (*h >= '0' && *h <= '9') || *h == '-' || *h == '_' ||
          (*h == '.' && h[1] != '.')))
      return 0;
  return 1;
}

static json_t *parse_hosts(const json_t *body, json_t *errors)
{
  const json_t *v = json_object_get(body, "hosts"), *h;
  json_t *out = json_array();
  size_t i;
  if (!out || !v || json_is_null(v))
    return out;
  if (!json_is_array(v) || json_array_size(v) > TG_CREDENTIAL_HOSTS_MAX) {
    add_error(errors, "hosts", "must be an array of at most 32 host names");
    return out;
  }
  json_array_foreach(v, i, h)
  {
    char low[256];
    const char *s = json_string_value(h);
    size_t n = s ? strlen(s) : 0;
    if (!s || n == 0 || n >= sizeof low) {
      add_error(errors, "hosts", "each entry must be a host name such as api.example.com");
      break;
    }
    for (size_t k = 0; k <= n; k++)
      low[k] = (char)((s[k] >= 'A' && s[k] <= 'Z') ? s[k] + 32 : s[k]);
    if (!host_pattern_ok(low)) {
      add_error(errors, "hosts",
                "each entry must be a host name (no scheme, port or path), or *.suffix");
      break;
    }
    json_array_append_new(out, json_string(low));
  }
  return out;
}

/* Copies body[field] (when present and valid) into obj. */
static void copy_field(json_t *obj, const json_t *body, const char *field, int required, size_t max,
                       json_t *errors)
{
  const char *s = str_field(body, field, required, max, errors);
  if (s)
    json_object_set_new(obj, field, json_string(s));
}

json_t *tg_store_credentials_parse(const json_t *body, tg_credential_input *in)
{
  json_t *errors = json_array();
  const char *name, *type;
  memset(in, 0, sizeof *in);
  if (!errors)
    return NULL;
  in->meta = json_object();
  in->secret = json_object();
  name = json_string_value(json_object_get(body, "name"));
  if (!tg_credential_name_ok(name))
    add_error(errors, "name", "required: 1 to 64 of A-Z a-z 0-9 _ . -");
  else
    in->name = strdup(name);
  in->hosts = parse_hosts(body, errors);
  type = json_string_value(json_object_get(body, "type"));
  if (!type) {
    add_error(errors, "type", "required: bearer, api_key, basic or oauth2");
  } else if (strcmp(type, "bearer") == 0) {
    in->type = "bearer";
    copy_field(in->secret, body, "token", 1, SECRET_MAX, errors);
  } else if (strcmp(type, "api_key") == 0) {
    const char *where = str_field(body, "in", 0, META_MAX, errors);
    const char *param = str_field(body, "param_name", 0, META_MAX, errors);
    in->type = "api_key";
    copy_field(in->secret, body, "value", 1, SECRET_MAX, errors);
    if (where && strcmp(where, "header") != 0 && strcmp(where, "query") != 0)
      add_error(errors, "in", "must be header or query");
    json_object_set_new(in->meta, "in", json_string(where ? where : "header"));
    json_object_set_new(in->meta, "param_name",
                        json_string(param                                  ? param
                                    : where && strcmp(where, "query") == 0 ? "api_key"
                                                                           : "X-API-Key"));
  } else if (strcmp(type, "basic") == 0) {
    const char *u;
    in->type = "basic";
    copy_field(in->secret, body, "password", 1, SECRET_MAX, errors);
    if ((u = str_field(body, "username", 1, SECRET_MAX, errors)) && strchr(u, ':'))
      add_error(errors, "username", "must not contain ':'");
    else if (u)
      json_object_set_new(in->secret, "username", json_string(u));
  } else if (strcmp(type, "oauth2") == 0) {
    const char *url = str_field(body, "token_url", 1, META_MAX, errors);
    in->type = "oauth2";
    if (url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
      add_error(errors, "token_url", "must be an http or https URL");
    else if (url)
      json_object_set_new(in->meta, "token_url", json_string(url));
    copy_field(in->meta, body, "client_id", 1, META_MAX, errors);
    copy_field(in->meta, body, "scope", 0, META_MAX, errors);
    copy_field(in->secret, body, "client_secret", 0, SECRET_MAX, errors);
    copy_field(in->secret, body, "refresh_token", 0, SECRET_MAX, errors);
    json_object_set_new(in->meta, "grant",
                        json_string(json_object_get(in->secret, "refresh_token")
                                        ? "refresh_token"
                                        : "client_credentials"));
  } else {
    add_error(errors, "type", "must be bearer, api_key, basic or oauth2");
  }
  if (json_array_size(errors) == 0 && in->name && in->hosts && in->meta && in->secret) {
    json_decref(errors);
    return NULL;
  }
  if (json_array_size(errors) == 0)
    add_error(errors, "body", "out of memory");
  tg_credential_input_free(in);
  return errors;
}

/* Overwrites the string values of a secret object in place before it is released. */
static void wipe_secret(json_t *secret)
{
  const char *k;
  json_t *v;
  json_object_foreach(secret, k, v)
  {
    if (json_is_string(v))
      sodium_memzero((char *)json_string_value(v), json_string_length(v));
  }
}

void tg_credential_input_free(tg_credential_input *in)
{
  if (!in)
    return;
  free(in->name);
  json_decref(in->hosts);
  if (in->secret)
    wipe_secret(in->secret); /* the object is only ever held by in */
  json_decref(in->secret);
  json_decref(in->meta);
  memset(in, 0, sizeof *in);
}

/* Seals secret for (id, user) into a malloc'd blob. */
static int seal(const tg_crypto *c, const char *id, const char *user, const json_t *secret,
                unsigned char **blob, size_t *blob_len)
{
  return tg_sealed_seal_object(c, TABLE, id, user, secret, blob, blob_len);
}

int tg_store_credentials_put(tg_db *db, const tg_crypto *c, const char *user,
                             const tg_credential_input *in, int64_t now_ms, json_t **row,
                             int *created)
{
  unsigned char *blob = NULL;
  size_t blob_len = 0;
  char id[64], *hosts = NULL, *meta = NULL;
  json_t *old = NULL;
  int rc;
  *row = NULL;
  *created = 0;
  if (!c)
    return TG_ESTATE;
  hosts = json_dumps(in->hosts, JSON_COMPACT);
  meta = json_dumps(in->meta, JSON_COMPACT | JSON_SORT_KEYS);
  if (!hosts || !meta) {
    rc = TG_ENOMEM;
    goto out;
  }
  if ((rc = tg_db_begin(db, 1)) != 0)
    goto out;
  old = tg_db_query_one(db, &rc, "SELECT id FROM credentials WHERE user_id = ? AND name = ?", "ss",
                        user, in->name);
  if (old) {
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(old, "id")));
  } else if (rc == TG_ENOTFOUND) {
    tg_random_id(id, sizeof id, "cred_", 12);
    *created = 1;
  } else {
    goto rollback;
  }
  if ((rc = seal(c, id, user, in->secret, &blob, &blob_len)) != 0)
    goto rollback;
  if (*created)
    rc = tg_db_exec(db, NULL,
                    "INSERT INTO credentials (id, user_id, name, type, hosts, meta, secret_enc, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    "ssssssbII", id, user, in->name, in->type, hosts, meta, blob, blob_len,
                    (long long)now_ms, (long long)now_ms);
  else
    rc = tg_db_exec(db, NULL,
                    "UPDATE credentials SET type = ?, hosts = ?, meta = ?, secret_enc = ?, "
                    "updated_at = ? WHERE id = ?",
                    "sssbIs", in->type, hosts, meta, blob, blob_len, (long long)now_ms, id);
  if (rc != 0)
    goto rollback;
  if ((rc = tg_db_commit(db)) != 0)
    goto rollback;
  *row = tg_store_credentials_get(db, &rc, user, in->name);
  goto out;
rollback:
  tg_db_rollback(db);
out:
  free(blob);
  free(hosts);
  free(meta);
  json_decref(old);
  return *row ? 0 : rc ? rc : TG_ENOMEM;
}

json_t *tg_store_credentials_list(tg_db *db, int *err, const char *user)
{
  return tg_db_query(db, err, "SELECT " PUBLIC_COLS "WHERE user_id = ? ORDER BY name", "s", user);
}

json_t *tg_store_credentials_get(tg_db *db, int *err, const char *user, const char *name)
{
  return tg_db_query_one(db, err, "SELECT " PUBLIC_COLS "WHERE user_id = ? AND name = ?", "ss",
                         user, name);
}

int tg_store_credentials_delete(tg_db *db, const char *user, const char *name)
{
  int changes = 0;
  int rc = tg_db_exec(db, &changes, "DELETE FROM credentials WHERE user_id = ? AND name = ?", "ss",
                      user, name);
  return rc ? rc : changes ? 0 : TG_ENOTFOUND;
}

int tg_credential_host_match(const json_t *hosts, const char *host)
{
  size_t i, hl = host ? strlen(host) : 0;
  const json_t *h;
  if (hl == 0)
    return 0;
  json_array_foreach(hosts, i, h)
  {
    const char *p = json_string_value(h);
    if (!p)
      continue;
    if (p[0] == '*' && p[1] == '.') {
      size_t sl = strlen(p + 1);
      if (hl > sl && strcasecmp(host + hl - sl, p + 1) == 0)
        return 1;
    } else if (strcasecmp(host, p) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Opens one row {id, name, type, hosts, meta, secret_hex} into out[name]. */
static int open_row(const tg_crypto *c, const char *user, const json_t *r, json_t *out)
{
  const char *hex = json_string_value(json_object_get(r, "secret_hex"));
  const char *id = json_string_value(json_object_get(r, "id"));
  size_t pt_len = 0;
  char *pt = NULL;
  json_t *secret;
  int rc;
  if (!c)
    return TG_ESTATE;
  if (!id)
    return TG_EINVAL;
  if ((rc = tg_sealed_open_hex(c, TABLE, id, user, hex, &pt, &pt_len)) != 0)
    return rc;
  secret = json_loadb(pt, pt_len, JSON_REJECT_DUPLICATES, NULL);
  tg_crypto_wipe_free(pt, pt_len);
  if (!json_is_object(secret)) {
    json_decref(secret);
    return TG_EINVAL;
  }
  return json_object_set_new(out, json_string_value(json_object_get(r, "name")),
                             json_pack("{s:O, s:O, s:o}", "type", json_object_get(r, "type"),
                                       "meta", json_object_get(r, "meta"), "secret", secret))
             ? TG_ENOMEM
             : 0;
}

/* The user's rows with their sealed secrets as hex, by name, in dialect D (tg_sql.h). */
/* clang-format off */
#define SEALED_ROWS_SQL(D)                                                                         \
  "SELECT id, name, type, hosts AS hosts_json, meta AS meta_json, "                                \
  D##_HEX("secret_enc")                                                                            \
  " AS secret_hex FROM credentials WHERE user_id = ? ORDER BY name"
/* clang-format on */

static json_t *sealed_rows(tg_db *db, int *err, const char *user)
{
  return tg_db_query(db, err, TG_SQL_OF(db, SEALED_ROWS_SQL), "s", user);
}

/* 1 when names (an array of strings) holds name. */
static int named(const json_t *names, const char *name)
{
  size_t i;
  const json_t *n;
  json_array_foreach(names, i,
                     n) if (json_is_string(n) && strcmp(json_string_value(n), name) == 0) return 1;
  return 0;
}

/* Opens the rows that names holds (names NULL: the first row bound to host). */
static int open_rows(tg_db *db, const tg_crypto *c, const char *user, const json_t *names,
                     const char *host, json_t **out)
{
  json_t *rows, *r, *o;
  size_t i;
  int rc = 0, found = 0;
  *out = NULL;
  if (!(rows = sealed_rows(db, &rc, user)))
    return rc;
  if (!(o = json_object())) {
    json_decref(rows);
    return TG_ENOMEM;
  }
  json_array_foreach(rows, i, r)
  {
    const char *name = json_string_value(json_object_get(r, "name"));
    if (!name || (names ? !named(names, name)
                        : !tg_credential_host_match(json_object_get(r, "hosts"), host)))
      continue;
    if ((rc = open_row(c, user, r, o)) != 0)
      break;
    found++;
    if (!names)
      break;
  }
  json_decref(rows);
  if (rc == 0 && !names && !found)
    rc = TG_ENOTFOUND;
  if (rc) {
    json_decref(o);
    return rc;
  }
  *out = o;
  return 0;
}

int tg_store_credentials_open(tg_db *db, const tg_crypto *c, const char *user, const json_t *names,
                              json_t **out)
{
  if (!json_is_array(names)) {
    *out = NULL;
    return TG_EINVAL;
  }
  return open_rows(db, c, user, names, NULL, out);
}

int tg_store_credentials_open_for_host(tg_db *db, const tg_crypto *c, const char *user,
                                       const char *host, json_t **out)
{
  if (!host || !*host) {
    *out = NULL;
    return TG_ENOTFOUND;
  }
  return open_rows(db, c, user, NULL, host, out);
}
