/*
 * gw_ratelimit: per-user token buckets for run admissions (TOOLGATE_RUN_RATE_PER_MIN).
 *
 * Each user has a bucket of `rate` tokens that refills continuously at rate per minute; an
 * admission takes one token, and an empty bucket answers 429 with Retry-After (seconds until
 * the next token, rounded up). Loop thread only (no locks). Memory is bounded: at most
 * GW_RL_MAX_USERS buckets, in a tg_map keyed by user id; a full bucket is the same as no bucket,
 * so when the map is full, buckets that have refilled completely are dropped first, and if none
 * has, the request is refused (fail closed) rather than growing without bound. Buckets are never
 * evicted while they hold a debt: that would hand a busy user a fresh burst.
 */
#include "gw.h"

#include "tg_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_RL_MAX_USERS 12288 /* buckets held at most */

typedef struct bucket {
  double tokens;
  uint64_t at_ms; /* when tokens was computed */
} bucket;

struct gw_ratelimit {
  double rate_per_ms, burst;
  tg_map *buckets; /* user id -> bucket (owned) */
};

int gw_ratelimit_new(gw_ratelimit **out, int64_t per_min)
{
  gw_ratelimit *rl;
  *out = NULL;
  if (per_min <= 0)
    return 0;
  if (!(rl = calloc(1, sizeof *rl)) || !(rl->buckets = tg_map_new(0, free))) {
    free(rl);
    return TG_ENOMEM;
  }
  rl->burst = (double)per_min;
  rl->rate_per_ms = (double)per_min / 60000.0;
  *out = rl;
  return 0;
}

void gw_ratelimit_free(gw_ratelimit *rl)
{
  if (rl)
    tg_map_free(rl->buckets);
  free(rl);
}

static void refill(gw_ratelimit *rl, bucket *b, uint64_t now)
{
  if (now > b->at_ms) {
    b->tokens += (double)(now - b->at_ms) * rl->rate_per_ms;
    if (b->tokens > rl->burst)
      b->tokens = rl->burst;
  }
  b->at_ms = now;
}

typedef struct compact_ctx {
  gw_ratelimit *rl;
  uint64_t now;
} compact_ctx;

/* tg_map_sweep visitor: drops buckets that have refilled completely (they carry no information). */
static int drop_if_full(void *arg, const void *key, size_t klen, void *value)
{
  compact_ctx *c = arg;
  (void)key, (void)klen;
  refill(c->rl, value, c->now);
  return ((bucket *)value)->tokens >= c->rl->burst;
}

/* user's bucket, created full when absent; NULL when the map is full of buckets in debt (or out
 * of memory). */
static bucket *bucket_of(gw_ratelimit *rl, const char *user, uint64_t now)
{
  bucket *b = tg_map_gets(rl->buckets, user);
  if (b)
    return b;
  if (tg_map_count(rl->buckets) >= GW_RL_MAX_USERS) {
    compact_ctx c = {rl, now};
    tg_map_sweep(rl->buckets, drop_if_full, &c);
    if (tg_map_count(rl->buckets) >= GW_RL_MAX_USERS)
      return NULL;
  }
  if (!(b = malloc(sizeof *b)))
    return NULL;
  b->tokens = rl->burst;
  b->at_ms = now;
  if (tg_map_puts(rl->buckets, user, b, 1)) {
    free(b);
    return NULL;
  }
  return b;
}

int gw_ratelimit_take(gw_ratelimit *rl, const char *user, uint64_t now_ms, int64_t *retry_after_s)
{
  bucket *b;
  *retry_after_s = 0;
  if (!rl)
    return 0;
  if (!(b = bucket_of(rl, user, now_ms))) {
    *retry_after_s = 1;
    return TG_ERATELIMIT;
  }
  refill(rl, b, now_ms);
  if (b->tokens >= 1.0) {
    b->tokens -= 1.0;
    return 0;
  }
  *retry_after_s = (int64_t)((1.0 - b->tokens) / rl->rate_per_ms / 1000.0) + 1;
  return TG_ERATELIMIT;
}

int gw_ratelimit_admit(gw_app *app, tg_httpd_req *req, const char *user)
{
  int64_t retry = 0;
  char hdr[48];
  const char *headers[] = {hdr, NULL};
  if (gw_ratelimit_take(app->runlimit, user, uv_now(app->loop), &retry) == 0)
    return 0;
  snprintf(hdr, sizeof hdr, "Retry-After: %lld", (long long)retry);
  tg_info("run_rate_limited", "{s:s, s:I}", "user_id", user, "retry_after_s", (json_int_t)retry);
  gw_respond_error(req, 429, "rate_limited", "Too many runs started; try again later.",
                   json_pack("{s:I, s:I}", "retry_after_s", (json_int_t)retry, "limit_per_min",
                             (json_int_t)app->cfg.run_rate_per_min),
                   headers);
  return TG_ERATELIMIT;
}
