/*
 * gw_ratelimit: per-user token buckets for run admissions (TOOLGATE_RUN_RATE_PER_MIN).
 *
 * Each user has a bucket of `rate` tokens that refills continuously at rate per minute; an
 * admission takes one token, and an empty bucket answers 429 with Retry-After (seconds until
 * the next token, rounded up). Loop thread only (no locks). Memory is bounded: at most
 * GW_RL_MAX_USERS buckets in an open-addressing table; a full bucket is the same as no bucket,
 * so when the table fills, buckets that have refilled completely are dropped first, and if none
 * has, the request is refused (fail closed) rather than growing without bound.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_RL_MAX_USERS 16384 /* table slots: a power of two */

typedef struct bucket {
  char user[GW_USER_MAX + 1]; /* "" = empty slot */
  double tokens;
  uint64_t at_ms; /* when tokens was computed */
} bucket;

struct gw_ratelimit {
  double rate_per_ms, burst;
  size_t used;
  bucket slots[GW_RL_MAX_USERS];
};

int gw_ratelimit_new(gw_ratelimit **out, int64_t per_min)
{
  gw_ratelimit *rl;
  *out = NULL;
  if (per_min <= 0)
    return 0;
  if (!(rl = calloc(1, sizeof *rl)))
    return TG_ENOMEM;
  rl->burst = (double)per_min;
  rl->rate_per_ms = (double)per_min / 60000.0;
  *out = rl;
  return 0;
}

void gw_ratelimit_free(gw_ratelimit *rl)
{
  free(rl);
}

static uint64_t hash(const char *s)
{
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
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

/* Empties the table of full buckets (they carry no information); rehashes the rest. */
static void compact(gw_ratelimit *rl, uint64_t now)
{
  bucket *old = malloc(sizeof rl->slots);
  if (!old)
    return;
  memcpy(old, rl->slots, sizeof rl->slots);
  memset(rl->slots, 0, sizeof rl->slots);
  rl->used = 0;
  for (size_t i = 0; i < GW_RL_MAX_USERS; i++) {
    size_t j;
    if (!old[i].user[0])
      continue;
    refill(rl, &old[i], now);
    if (old[i].tokens >= rl->burst)
      continue;
    for (j = hash(old[i].user) & (GW_RL_MAX_USERS - 1); rl->slots[j].user[0];
         j = (j + 1) & (GW_RL_MAX_USERS - 1))
      ;
    rl->slots[j] = old[i];
    rl->used++;
  }
  free(old);
}

int gw_ratelimit_take(gw_ratelimit *rl, const char *user, uint64_t now_ms, int64_t *retry_after_s)
{
  size_t i;
  bucket *b = NULL;
  *retry_after_s = 0;
  if (!rl)
    return 0;
  for (int pass = 0; pass < 2 && !b; pass++) {
    for (i = hash(user) & (GW_RL_MAX_USERS - 1);; i = (i + 1) & (GW_RL_MAX_USERS - 1)) {
      if (strcmp(rl->slots[i].user, user) == 0) {
        b = &rl->slots[i];
        break;
      }
      if (!rl->slots[i].user[0]) {
        /* keep a quarter free so probes stay short */
        if (rl->used + 1 > GW_RL_MAX_USERS / 4 * 3)
          break;
        b = &rl->slots[i];
        snprintf(b->user, sizeof b->user, "%s", user);
        b->tokens = rl->burst;
        b->at_ms = now_ms;
        rl->used++;
        break;
      }
    }
    if (!b && pass == 0)
      compact(rl, now_ms);
  }
  if (!b) {
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
