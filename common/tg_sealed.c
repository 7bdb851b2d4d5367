/*
 * tg_sealed: the sealed columns and the operations over all of them (contract in tg_sealed.h).
 *
 * Every sealed column is listed in `columns` below with the SQL that reads (row id, blob, user id)
 * and writes a blob: the start-up check and the rotation walk that list, so a new sealed column is
 * one more entry. Sealing and opening are tg_crypto's; this module owns the SQL.
 */
#include "tg_sealed.h"

#include "tg_db_stmt.h"
#include "tg_err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct column {
  const char *name;   /* "table.column", for messages */
  const char *table;  /* the AD's table part */
  const char *select; /* rows: id (integer or text: the AD's row part), blob, user id; only
                         non-NULL blobs */
  const char *update; /* ?1 blob, ?2 id (bound as text) */
} column;

static const column columns[] = {
    {"mcp_connections.headers_enc", "mcp_connections",
     "SELECT m.id, m.headers_enc, c.user_id FROM mcp_connections m JOIN connected_accounts c ON "
     "c.id = m.connected_account_id WHERE m.headers_enc IS NOT NULL ORDER BY m.id",
     "UPDATE mcp_connections SET headers_enc = ?1 WHERE id = ?2"},
    {"workflow_runs.inputs_secret_enc", "workflow_runs",
     "SELECT id, inputs_secret_enc, user_id FROM workflow_runs WHERE inputs_secret_enc IS NOT "
     "NULL ORDER BY id",
     "UPDATE workflow_runs SET inputs_secret_enc = ?1 WHERE id = ?2"},
    {"credentials.secret_enc", "credentials",
     "SELECT id, secret_enc, user_id FROM credentials ORDER BY id",
     "UPDATE credentials SET secret_enc = ?1 WHERE id = ?2"},
    {"connectors.secret_enc", "connectors",
     "SELECT id, secret_enc, user_id FROM connectors WHERE secret_enc IS NOT NULL ORDER BY id",
     "UPDATE connectors SET secret_enc = ?1 WHERE id = ?2"},
    {"connector_tokens.token_enc", "connector_tokens",
     "SELECT connector_id, token_enc, user_id FROM connector_tokens WHERE token_enc IS NOT NULL "
     "ORDER BY connector_id",
     "UPDATE connector_tokens SET token_enc = ?1 WHERE connector_id = ?2"},
    {"connector_tokens.client_enc", "connector_tokens.client",
     "SELECT connector_id, client_enc, user_id FROM connector_tokens WHERE client_enc IS NOT NULL "
     "ORDER BY connector_id",
     "UPDATE connector_tokens SET client_enc = ?1 WHERE connector_id = ?2"},
    {"connector_oauth_states.verifier_enc", "connector_oauth_states",
     "SELECT state, verifier_enc, user_id FROM connector_oauth_states ORDER BY state",
     "UPDATE connector_oauth_states SET verifier_enc = ?1 WHERE state = ?2"},
};

/* Parses an opened plaintext (pt_len bytes, wiped and freed here) as JSON that ok accepts, into
 * *out (a new reference). TG_EINVAL when it is not JSON or ok refuses it. */
static int parse_opened(char *pt, size_t pt_len, int (*ok)(const json_t *), json_t **out)
{
  json_t *v = json_loadb(pt, pt_len, JSON_REJECT_DUPLICATES, NULL);
  tg_crypto_wipe_free(pt, pt_len);
  if (!v || !ok(v)) {
    json_decref(v);
    return TG_EINVAL;
  }
  *out = v;
  return 0;
}

/* ---------------------------------------------------------------- mcp_connections.headers_enc */

/* An object of header name (RFC 9110 token) -> value without CR, LF or NUL. */
static int headers_ok(const json_t *h)
{
  const char *k;
  json_t *v;
  if (!json_is_object(h))
    return 0;
  json_object_foreach((json_t *)h, k, v)
  {
    const char *val = json_string_value(v);
    if (!val || !*k || strlen(val) != json_string_length(v) || strpbrk(val, "\r\n"))
      return 0;
    for (const char *p = k; *p; p++)
      if (!strchr("!#$%&'*+-.^_`|~", *p) &&
          !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
        return 0;
  }
  return 1;
}

int tg_sealed_store_mcp_headers(tg_db *db, const tg_crypto *c, int64_t mcp_id,
                                const json_t *headers)
{
  unsigned char *blob = NULL;
  size_t blob_len = 0;
  char *text = NULL;
  json_t *row;
  int rc;
  if (headers && !headers_ok(headers))
    return TG_EINVAL;
  row = tg_db_query_one(db, &rc,
                        "SELECT c.user_id FROM mcp_connections m JOIN connected_accounts c ON "
                        "c.id = m.connected_account_id WHERE m.id = ?",
                        "I", (long long)mcp_id);
  if (!row)
    return rc;
  if (headers && json_object_size(headers) > 0) {
    if (!c) {
      json_decref(row);
      return TG_ESTATE;
    }
    if (!(text = json_dumps(headers, JSON_COMPACT | JSON_SORT_KEYS))) {
      json_decref(row);
      return TG_ENOMEM;
    }
    rc = tg_crypto_seal(c, "mcp_connections", mcp_id,
                        json_string_value(json_object_get(row, "user_id")), text, strlen(text),
                        &blob, &blob_len);
    tg_crypto_wipe_free(text, strlen(text));
    if (rc) {
      json_decref(row);
      return rc;
    }
  }
  json_decref(row);
  rc = tg_db_exec(db, NULL, columns[0].update, "bI", blob, blob_len, (long long)mcp_id);
  free(blob);
  return rc;
}

int tg_sealed_open_hex(const tg_crypto *c, const char *table, const char *row, const char *user,
                       const char *hex, char **pt, size_t *pt_len)
{
  size_t hex_len = hex ? strlen(hex) : 0, bin_len = 0;
  unsigned char *bin;
  int rc;
  *pt = NULL;
  if (hex_len == 0 || hex_len % 2)
    return TG_EINVAL;
  if (!(bin = malloc(hex_len / 2)))
    return TG_ENOMEM;
  if (sodium_hex2bin(bin, hex_len / 2, hex, hex_len, NULL, &bin_len, NULL) != 0) {
    free(bin);
    return TG_EINVAL;
  }
  rc = tg_crypto_open_id(c, table, row, user, bin, bin_len, pt, pt_len);
  free(bin);
  return rc;
}

int tg_sealed_seal_object(const tg_crypto *c, const char *table, const char *row, const char *user,
                          const json_t *v, unsigned char **blob, size_t *blob_len)
{
  char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  int rc;
  if (!text)
    return TG_ENOMEM;
  rc = tg_crypto_seal_id(c, table, row, user, text, strlen(text), blob, blob_len);
  tg_crypto_wipe_free(text, strlen(text));
  return rc;
}

static int is_object(const json_t *v)
{
  return json_is_object(v);
}

int tg_sealed_open_hex_object(const tg_crypto *c, const char *table, const char *row,
                              const char *user, const char *hex, json_t **out)
{
  char *pt = NULL;
  size_t pt_len = 0;
  int rc;
  *out = NULL;
  if (!c)
    return TG_ESTATE;
  if ((rc = tg_sealed_open_hex(c, table, row, user, hex, &pt, &pt_len)) != 0)
    return rc;
  return parse_opened(pt, pt_len, is_object, out);
}

int tg_sealed_open_mcp_headers_hex(const tg_crypto *c, int64_t mcp_id, const char *user,
                                   const char *hex, json_t **headers)
{
  char row[32], *pt = NULL;
  size_t pt_len = 0;
  int rc;
  *headers = NULL;
  snprintf(row, sizeof row, "%lld", (long long)mcp_id); /* tg_crypto_open's row text */
  rc = tg_sealed_open_hex(c, "mcp_connections", row, user, hex, &pt, &pt_len);
  return rc ? rc : parse_opened(pt, pt_len, headers_ok, headers);
}

/* ---------------------------------------------------------------- workflow_runs secrets */

/* An object of string values (the secret run inputs). */
static int strings_ok(const json_t *o)
{
  const char *k;
  json_t *v;
  if (!json_is_object(o))
    return 0;
  json_object_foreach((json_t *)o, k, v) if (!json_is_string(v)) return 0;
  return 1;
}

int tg_sealed_store_run_secrets(tg_db *db, const tg_crypto *c, const char *run_id, const char *user,
                                const json_t *secrets)
{
  unsigned char *blob = NULL;
  size_t blob_len = 0;
  char *text;
  int rc, changes;
  if (!secrets || json_object_size(secrets) == 0)
    return 0;
  if (!run_id || !user || !strings_ok(secrets))
    return TG_EINVAL;
  if (!c)
    return TG_ESTATE;
  if (!(text = json_dumps(secrets, JSON_COMPACT | JSON_SORT_KEYS)))
    return TG_ENOMEM;
  rc = tg_crypto_seal_id(c, "workflow_runs", run_id, user, text, strlen(text), &blob, &blob_len);
  tg_crypto_wipe_free(text, strlen(text));
  if (rc)
    return rc;
  rc = tg_db_exec(db, &changes,
                  "UPDATE workflow_runs SET inputs_secret_enc = ?1 WHERE id = ?2 AND user_id = ?3",
                  "bss", blob, blob_len, run_id, user);
  free(blob);
  return rc ? rc : changes ? 0 : TG_ENOTFOUND;
}

int tg_sealed_load_run_secrets(tg_db *db, const tg_crypto *c, const char *run_id, const char *user,
                               json_t **secrets)
{
  tg_stmt *st;
  unsigned char *blob = NULL;
  size_t blob_len = 0, pt_len = 0;
  char *pt = NULL;
  int rc;
  *secrets = NULL;
  if (!run_id || !user)
    return TG_EINVAL;
  if (!(st = tg_stmt_prepare(db, "SELECT inputs_secret_enc FROM workflow_runs WHERE id = ?1 AND "
                                 "user_id = ?2")))
    return TG_EDB;
  tg_stmt_bind_text(st, 1, run_id);
  tg_stmt_bind_text(st, 2, user);
  rc = tg_stmt_step(st);
  if (rc == TG_STMT_ROW && tg_stmt_column_type(st, 0) != TG_COL_NULL) {
    const void *b = tg_stmt_column_blob(st, 0);
    blob_len = tg_stmt_column_bytes(st, 0);
    if (!(blob = malloc(blob_len ? blob_len : 1)))
      rc = TG_ENOMEM;
    else if (blob_len)
      memcpy(blob, b, blob_len);
  }
  if (rc == TG_STMT_ROW)
    rc = 0;
  tg_stmt_reset(st);
  if (rc || !blob) {
    free(blob);
    return rc;
  }
  if (!c) {
    free(blob);
    return TG_ESTATE;
  }
  rc = tg_crypto_open_id(c, "workflow_runs", run_id, user, blob, blob_len, &pt, &pt_len);
  free(blob);
  return rc ? rc : parse_opened(pt, pt_len, strings_ok, secrets);
}

/* ---------------------------------------------------------------- whole database */

typedef struct item {
  char *id; /* the row id as text */
  unsigned char *blob;
  size_t len;
  char *user;
} item;

static void items_free(item *it, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(it[i].id);
    free(it[i].blob);
    free(it[i].user);
  }
  free(it);
}

/* Reads every (id, blob, user) of one encrypted column into a new array. */
static int load_items(tg_db *db, const column *col, item **out, size_t *n_out)
{
  tg_stmt *st = tg_stmt_prepare(db, col->select);
  item *it = NULL;
  size_t n = 0, cap = 0;
  int rc;
  *out = NULL;
  *n_out = 0;
  if (!st)
    return TG_EDB;
  while ((rc = tg_stmt_step(st)) == TG_STMT_ROW) {
    const void *b = tg_stmt_column_blob(st, 1);
    size_t len = tg_stmt_column_bytes(st, 1);
    const char *u = tg_stmt_column_text(st, 2);
    const char *id = tg_stmt_column_text(st, 0);
    if (n == cap) {
      item *ni = realloc(it, (cap = cap ? cap * 2 : 16) * sizeof *it);
      if (!ni) {
        rc = TG_ENOMEM;
        goto fail;
      }
      it = ni;
    }
    it[n].id = strdup(id ? id : "");
    it[n].len = len;
    it[n].blob = malloc(len > 0 ? len : 1);
    it[n].user = strdup(u ? u : "");
    n++;
    if (!it[n - 1].id || !it[n - 1].blob || !it[n - 1].user) {
      rc = TG_ENOMEM;
      goto fail;
    }
    if (len > 0)
      memcpy(it[n - 1].blob, b, len);
  }
  if (rc != TG_STMT_DONE)
    goto fail;
  tg_stmt_reset(st);
  *out = it;
  *n_out = n;
  return 0;
fail:
  tg_stmt_reset(st);
  items_free(it, n);
  return rc;
}

int tg_sealed_check_db(tg_db *db, const tg_crypto *c, int *count, char *err, size_t errlen)
{
  int total = 0;
  for (size_t ci = 0; ci < sizeof columns / sizeof columns[0]; ci++) {
    item *it;
    size_t n;
    int rc = load_items(db, &columns[ci], &it, &n);
    if (rc) {
      snprintf(err, errlen, "cannot read %s: %s", columns[ci].name, tg_strerror(rc));
      return rc;
    }
    total += (int)n;
    for (size_t i = 0; i < n && rc == 0; i++) {
      char kid[TG_CRYPTO_KID_MAX + 1];
      if (!c) {
        snprintf(err, errlen,
                 "the database holds encrypted secrets (%s) but TOOLGATE_SECRET_KEY is not set; "
                 "set it to the key they were written with",
                 columns[ci].name);
        rc = TG_ESTATE;
      } else if (tg_crypto_blob_kid(it[i].blob, it[i].len, kid) != 0) {
        snprintf(err, errlen, "%s row %s is not a v1 ciphertext", columns[ci].name, it[i].id);
        rc = TG_ESTATE;
      } else if (!tg_crypto_has_kid(c, kid)) {
        snprintf(err, errlen,
                 "%s row %s was encrypted with key id %s, which is neither "
                 "TOOLGATE_SECRET_KEY (%s) nor TOOLGATE_SECRET_KEY_OLD",
                 columns[ci].name, it[i].id, kid, tg_crypto_kid(c));
        rc = TG_ESTATE;
      }
    }
    items_free(it, n);
    if (rc)
      return rc;
  }
  if (count)
    *count = total;
  return 0;
}

int tg_sealed_rotate_db(tg_db *db, const tg_crypto *c, int *rotated, char *err, size_t errlen)
{
  int rc, done = 0;
  *rotated = 0;
  if (!c) {
    snprintf(err, errlen, "TOOLGATE_SECRET_KEY is not set");
    return TG_EINVAL;
  }
  if ((rc = tg_db_begin(db, 1)) != 0) {
    snprintf(err, errlen, "cannot begin a transaction: %s", tg_strerror(rc));
    return rc;
  }
  for (size_t ci = 0; ci < sizeof columns / sizeof columns[0] && rc == 0; ci++) {
    const column *col = &columns[ci];
    item *it;
    size_t n;
    if ((rc = load_items(db, col, &it, &n))) {
      snprintf(err, errlen, "cannot read %s: %s", col->name, tg_strerror(rc));
      break;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
      char kid[TG_CRYPTO_KID_MAX + 1], *pt = NULL;
      size_t pt_len = 0, nb_len = 0;
      unsigned char *nb = NULL;
      if (tg_crypto_blob_kid(it[i].blob, it[i].len, kid) == 0 && strcmp(kid, tg_crypto_kid(c)) == 0)
        continue;
      rc = tg_crypto_open_id(c, col->table, it[i].id, it[i].user, it[i].blob, it[i].len, &pt,
                             &pt_len);
      if (rc) {
        snprintf(err, errlen, "%s row %s does not open (%s); nothing was changed", col->name,
                 it[i].id, tg_errname(rc));
        break;
      }
      rc = tg_crypto_seal_id(c, col->table, it[i].id, it[i].user, pt, pt_len, &nb, &nb_len);
      tg_crypto_wipe_free(pt, pt_len);
      if (rc) {
        snprintf(err, errlen, "cannot seal: %s", tg_strerror(rc));
        break;
      }
      rc = tg_db_exec(db, NULL, col->update, "bs", nb, nb_len, it[i].id);
      free(nb);
      if (rc)
        snprintf(err, errlen, "cannot update %s: %s", col->name, tg_strerror(rc));
      else
        done++;
    }
    items_free(it, n);
  }
  if (rc == 0 && (rc = tg_db_commit(db)) != 0)
    snprintf(err, errlen, "commit failed: %s", tg_strerror(rc));
  if (rc) {
    tg_db_rollback(db);
    return rc;
  }
  *rotated = done;
  return 0;
}

int tg_sealed_startup(const tg_config *cfg, tg_crypto **out, int *count, char *err, size_t errlen)
{
  tg_db *db = NULL;
  int rc;
  *out = NULL;
  if ((rc = tg_crypto_new(out, &cfg->secret_key, &cfg->secret_key_old, err, errlen)))
    return rc;
  if ((rc = tg_db_open(&db, cfg->db_path, 5000))) {
    snprintf(err, errlen, "cannot open the database %s: %s", cfg->db_path, tg_strerror(rc));
    goto fail;
  }
  rc = tg_sealed_check_db(db, *out, count, err, errlen);
  tg_db_close(db);
  if (rc == 0)
    return 0;
fail:
  tg_crypto_free(*out);
  *out = NULL;
  return rc;
}
