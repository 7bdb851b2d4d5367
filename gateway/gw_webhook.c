/*
 * gw_webhook: POST /api/webhooks/composio, Composio's event delivery (composio-api.md section 7;
 * Standard Webhooks, https://www.standardwebhooks.com/).
 *
 * Verification, on the loop, before anything is read or written: webhook-id, webhook-timestamp
 * (unix seconds, within WEBHOOK_TOLERANCE_S of our clock either way) and webhook-signature (one
 * or more space-separated "v1,<base64>" entries; one must equal base64(HMAC-SHA256(key,
 * "<id>.<timestamp>.<raw body>")), compared in constant time). The key is the base64 part of
 * TOOLGATE_WEBHOOK_SECRET after "whsec_", else the secret's raw bytes. Failure → 401
 * invalid_signature and nothing changes; no secret configured → 503 webhook_not_configured.
 *
 * Processing, one transaction: record the webhook-id (tg_store_oauth_webhook_record; a replayed
 * id → 200 {"duplicate": true}, nothing else); for composio.connected_account.expired the row
 * holding data.id becomes EXPIRED with data.status_reason (tg_store_accounts_expire: version + 1,
 * unless DISCONNECTED or already EXPIRED with that reason). Other event types are recorded and
 * ignored.
 */
#include "gw.h"
#include "tg_clock.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_TOLERANCE_S 300
#define WEBHOOK_KEY_MAX 256
#define EVENT_EXPIRED "composio.connected_account.expired"

typedef struct hook_ctx {
  gw_job j;
  char id[161];
  char type[96];
  char ca[161];
  char *reason;
  int duplicate;
  int updated;
  char user[GW_USER_MAX + 1]; /* the row's owner, for the status cache */
  char provider[96];
} hook_ctx;
GW_JOB_FIRST(hook_ctx);

static void hook_free(hook_ctx *c)
{
  json_decref(c->j.body);
  free(c->reason);
  free(c);
}

/* The HMAC key from the configured secret into key; returns its length or -1. */
static long webhook_key(const char *secret, unsigned char *key)
{
  size_t n = 0;
  if (strncmp(secret, "whsec_", 6) == 0) {
    const char *b64 = secret + 6;
    if (sodium_base642bin(key, WEBHOOK_KEY_MAX, b64, strlen(b64), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
      return -1;
    return (long)n;
  }
  n = strlen(secret);
  if (n > WEBHOOK_KEY_MAX)
    return -1;
  memcpy(key, secret, n);
  return (long)n;
}

/* 1 when one of the signatures in header sig matches. */
static int signature_ok(const char *secret, const char *id, const char *ts, const char *body,
                        size_t body_len, const char *sig)
{
  unsigned char key[WEBHOOK_KEY_MAX], mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  long klen = webhook_key(secret, key);
  int ok = 0;
  if (klen <= 0)
    return 0;
  crypto_auth_hmacsha256_init(&st, key, (size_t)klen);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_memzero(key, sizeof key);
  while (*sig && !ok) {
    size_t len = strcspn(sig, " ");
    unsigned char got[crypto_auth_hmacsha256_BYTES + 8];
    size_t glen = 0;
    if (len > 3 && strncmp(sig, "v1,", 3) == 0 &&
        sodium_base642bin(got, sizeof got, sig + 3, len - 3, NULL, &glen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        glen == sizeof mac && sodium_memcmp(got, mac, sizeof mac) == 0)
      ok = 1;
    sig += len;
    while (*sig == ' ')
      sig++;
  }
  sodium_memzero(mac, sizeof mac);
  return ok;
}

static int timestamp_ok(const char *ts)
{
  char *end;
  long long t;
  int64_t now = tg_now_ms() / 1000;
  if (!*ts || strlen(ts) > 12)
    return 0;
  t = strtoll(ts, &end, 10);
  if (*end || t <= 0)
    return 0;
  return t >= now - WEBHOOK_TOLERANCE_S && t <= now + WEBHOOK_TOLERANCE_S;
}

static int hook_work(tg_db *db, void *arg)
{
  hook_ctx *c = arg;
  int64_t now = tg_now_ms();
  int rc, first = 0;
  json_t *row;
  if ((rc = tg_db_begin(db, 1)) != 0)
    return rc;
  if ((rc = tg_store_oauth_webhook_record(db, c->id, c->type, now, &first)) != 0)
    goto end;
  if (!first) {
    c->duplicate = 1;
    tg_db_rollback(db);
    return 0;
  }
  if (strcmp(c->type, EVENT_EXPIRED) == 0 && *c->ca) {
    row = tg_store_accounts_find_by_ca(db, &rc, c->ca);
    if (!row && rc != TG_ENOTFOUND)
      goto end;
    if (row) {
      snprintf(c->user, sizeof c->user, "%s", json_string_value(json_object_get(row, "user_id")));
      snprintf(c->provider, sizeof c->provider, "%s",
               json_string_value(json_object_get(row, "provider")));
      json_decref(row);
    }
    rc = tg_store_accounts_expire(db, c->ca, c->reason, now, &c->updated);
  }
end:
  return tg_db_end(db, rc);
}

static void hook_done(void *arg, int status)
{
  hook_ctx *c = arg;
  if (status != 0) {
    gw_job_fail_err(&c->j, status);
    gw_job_reply(&c->j, NULL);
    hook_free(c);
    return;
  }
  if (c->updated && *c->user)
    tg_accounts_cache_drop(c->j.app->status_cache, c->user, c->provider);
  tg_info("webhook_received", "{s:s, s:s, s:s?, s:b, s:i}", "webhook_id", c->id, "type", c->type,
          "composio_account_id", *c->ca ? c->ca : NULL, "duplicate", c->duplicate, "updated",
          c->updated);
  c->j.status = 200;
  c->j.body =
      json_pack("{s:b, s:b, s:i}", "received", 1, "duplicate", c->duplicate, "updated", c->updated);
  gw_job_reply(&c->j, NULL);
  hook_free(c);
}

static int token_ok(const char *s, size_t max)
{
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return 0;
  for (; *s; s++)
    if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
      return 0;
  return 1;
}

void gw_webhook_composio(gw_app *app, tg_httpd_req *req)
{
  const char *secret = tg_secret_reveal(&app->cfg.webhook_secret);
  const char *id = tg_httpd_header(req, "webhook-id");
  const char *ts = tg_httpd_header(req, "webhook-timestamp");
  const char *sig = tg_httpd_header(req, "webhook-signature");
  size_t len = 0;
  const char *body = tg_httpd_body(req, &len);
  json_t *ev, *data;
  const char *type, *ca, *reason;
  hook_ctx *c;
  if (!secret || !*secret) {
    gw_respond_error(req, 503, "webhook_not_configured",
                     "TOOLGATE_WEBHOOK_SECRET is not set on this gateway.", NULL, NULL);
    return;
  }
  if (!id || !ts || !sig || !token_ok(id, 160) || !timestamp_ok(ts) ||
      !signature_ok(secret, id, ts, body, len, sig)) {
    tg_warn("webhook_rejected", "{s:s?, s:s}", "webhook_id", id && token_ok(id, 160) ? id : NULL,
            "reason",
            !id || !ts || !sig  ? "missing_headers"
            : !timestamp_ok(ts) ? "timestamp_out_of_tolerance"
                                : "bad_signature");
    gw_respond_error(req, 401, "invalid_signature",
                     "The webhook signature, id or timestamp is missing, stale or wrong.", NULL,
                     NULL);
    return;
  }
  ev = json_loadb(body, len, 0, NULL);
  type = json_string_value(json_object_get(ev, "type"));
  data = json_object_get(ev, "data");
  if (!json_is_object(ev) || !type || strlen(type) >= sizeof c->type) {
    json_decref(ev);
    gw_respond_error(req, 400, "invalid_event", "The event must be a JSON object with a type.",
                     NULL, NULL);
    return;
  }
  ca = json_string_value(json_object_get(data, "id"));
  reason = json_string_value(json_object_get(data, "status_reason"));
  if (!(c = gw_job_new(app, req, NULL, sizeof *c))) {
    json_decref(ev);
    return;
  }
  snprintf(c->id, sizeof c->id, "%s", id);
  snprintf(c->type, sizeof c->type, "%s", type);
  snprintf(c->ca, sizeof c->ca, "%s", ca && strlen(ca) < sizeof c->ca ? ca : "");
  c->reason = strdup(reason ? reason : "composio.connected_account.expired");
  json_decref(ev);
  if (!c->reason) {
    hook_free(c);
    tg_httpd_respond_error(req, 500, "internal", "Out of memory.");
    return;
  }
  if (gw_submit(&c->j, hook_work, hook_done, c) != 0)
    hook_free(c);
}
