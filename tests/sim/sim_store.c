/*
 * composio-sim store: connected accounts in memory, their JSON shape and status transitions.
 *
 * Accounts are never removed until a reset; DELETE only flags them (soft delete, 2.6), so they
 * vanish from lists and GET but stay visible in /_sim/accounts. Expiry of unfinished
 * connections is evaluated lazily: every access calls sim_expire_sweep() first (2.7).
 */
#define _GNU_SOURCE /* asprintf */
#include "sim.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t sim_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sim_iso(uint64_t ms, char *out)
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

void sim_nanoid(char *out, size_t n)
{
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  for (size_t i = 0; i < n; i++)
    out[i] = abc[randombytes_uniform(64)];
  out[n] = '\0';
}

int sim_status_valid(const char *s)
{
  static const char *const all[] = {"INITIALIZING", "INITIATED", "ACTIVE",  "FAILED",
                                    "EXPIRED",      "INACTIVE",  "REVOKED", NULL};
  for (size_t i = 0; s && all[i]; i++)
    if (strcmp(s, all[i]) == 0)
      return 1;
  return 0;
}

const char *sim_ac_slug(const sim *s, const char *ac_id)
{
  for (size_t i = 0; ac_id && i < s->n_acs; i++)
    if (strcmp(s->acs[i].id, ac_id) == 0)
      return s->acs[i].slug;
  return NULL;
}

const char *sim_ac_id(const sim *s, const char *slug)
{
  for (size_t i = 0; slug && i < s->n_acs; i++)
    if (strcmp(s->acs[i].slug, slug) == 0)
      return s->acs[i].id;
  return NULL;
}

static void account_free(sim_account *a)
{
  if (!a)
    return;
  free(a->user_id);
  free(a->toolkit);
  free(a->auth_config_id);
  free(a->status_reason);
  free(a->link_token);
  free(a->redirect_url);
  free(a->callback_url);
  free(a);
}

sim_account *sim_account_add(sim *s, const char *user_id, const char *toolkit,
                             const char *auth_config_id, const char *status)
{
  if (s->n_accts == s->cap_accts) {
    size_t nc = s->cap_accts ? s->cap_accts * 2 : 16;
    sim_account **na = realloc(s->accts, nc * sizeof *na);
    if (!na)
      return NULL;
    s->accts = na;
    s->cap_accts = nc;
  }
  sim_account *a = calloc(1, sizeof *a);
  if (!a)
    return NULL;
  memcpy(a->id, "ca_", 3);
  sim_nanoid(a->id + 3, 12);
  a->user_id = strdup(user_id);
  a->toolkit = strdup(toolkit);
  a->auth_config_id = strdup(auth_config_id);
  if (!a->user_id || !a->toolkit || !a->auth_config_id) {
    account_free(a);
    return NULL;
  }
  a->refresh_required = -1;
  a->seq = s->next_seq++;
  a->created_at = a->updated_at = a->initiated_at = sim_now_ms();
  sim_account_set_status(a, status, NULL);
  s->accts[s->n_accts++] = a;
  return a;
}

void sim_account_set_status(sim_account *a, const char *status, const char *reason)
{
  snprintf(a->status, sizeof a->status, "%s", status);
  free(a->status_reason);
  a->status_reason = reason ? strdup(reason) : NULL;
  a->updated_at = a->changed_at = sim_now_ms();
  if (strcmp(status, "ACTIVE") == 0 || strcmp(status, "INACTIVE") == 0) {
    if (!a->access_token[0]) {
      memcpy(a->access_token, "tok_", 4);
      sim_nanoid(a->access_token + 4, 24);
    }
  } else {
    a->access_token[0] = '\0';
  }
  if (strcmp(status, "INITIATED") == 0 || strcmp(status, "INITIALIZING") == 0)
    a->initiated_at = a->changed_at;
  if (strcmp(status, "INITIATED") != 0 && strcmp(status, "INITIALIZING") != 0) {
    free(a->link_token); /* the hosted link page works only while the flow is open */
    a->link_token = NULL;
  }
}

sim_account *sim_account_find(sim *s, const char *id, int include_deleted)
{
  for (size_t i = 0; id && i < s->n_accts; i++)
    if (strcmp(s->accts[i]->id, id) == 0 && (include_deleted || !s->accts[i]->deleted))
      return s->accts[i];
  return NULL;
}

void sim_expire_sweep(sim *s)
{
  uint64_t now = sim_now_ms();
  for (size_t i = 0; i < s->n_accts; i++) {
    sim_account *a = s->accts[i];
    if ((strcmp(a->status, "INITIATED") == 0 || strcmp(a->status, "INITIALIZING") == 0) &&
        now - a->initiated_at >= SIM_EXPIRE_MS)
      sim_account_set_status(a, "EXPIRED",
                             "Connection initiation did not complete within 10 minutes");
  }
}

/* state.val for OAUTH2 by status (2.3). */
static json_t *state_val(const sim_account *a)
{
  char iso[32];
  json_t *v = json_pack("{s:s}", "status", a->status);
  if (strcmp(a->status, "INITIATED") == 0) {
    json_object_set_new(v, "redirectUrl", json_string(a->redirect_url ? a->redirect_url : ""));
    if (a->callback_url)
      json_object_set_new(v, "callback_url", json_string(a->callback_url));
  } else if (a->access_token[0]) {
    json_object_set_new(v, "access_token", json_string(a->access_token));
    json_object_set_new(v, "token_type", json_string("Bearer"));
    json_object_set_new(v, "expires_in", json_integer(3600));
  } else if (strcmp(a->status, "EXPIRED") == 0) {
    sim_iso(a->changed_at, iso);
    json_object_set_new(v, "expired_at", json_string(iso));
  } else if (strcmp(a->status, "FAILED") == 0) {
    json_object_set_new(v, "error", json_string("access_denied"));
    json_object_set_new(v, "error_description",
                        json_string(a->status_reason ? a->status_reason : "authorization failed"));
  } else if (strcmp(a->status, "REVOKED") == 0) {
    sim_iso(a->changed_at, iso);
    json_object_set_new(v, "revoked_at", json_string(iso));
  }
  return v;
}

json_t *sim_account_json(const sim_account *a)
{
  char created[32], updated[32];
  sim_iso(a->created_at, created);
  sim_iso(a->updated_at, updated);
  json_t *o = json_pack(
      "{s:s, s:s, s:o, s:b, s:{s:s}, s:{s:s, s:s, s:b, s:b}, s:s, s:s, s:s, s:{s:s, s:o}, s:{}}",
      "id", a->id, "status", a->status, "status_reason",
      a->status_reason ? json_string(a->status_reason) : json_null(), "is_disabled", a->is_disabled,
      "toolkit", "slug", a->toolkit, "auth_config", "id", a->auth_config_id, "auth_scheme",
      "OAUTH2", "is_composio_managed", 1, "is_disabled", 0, "user_id", a->user_id, "created_at",
      created, "updated_at", updated, "state", "authScheme", "OAUTH2", "val", state_val(a), "data");
  if (o && a->refresh_required >= 0)
    json_object_set_new(o, "auth_refresh_required", json_boolean(a->refresh_required));
  return o;
}

void sim_reset(sim *s)
{
  for (size_t i = 0; i < s->n_accts; i++)
    account_free(s->accts[i]);
  s->n_accts = 0;
  s->calls = 0;
  memset(s->by_route, 0, sizeof s->by_route);
  s->window_start = 0;
  s->window_count = 0;
  s->latency_ms = 0;
  s->fail_count = 0;
  s->fail_status = 0;
  s->fail_retry_after = 0;
  free(s->fail_prefix);
  s->fail_prefix = NULL;
  s->next_link_failed = 0;
}

void sim_free(sim *s)
{
  sim_reset(s);
  free(s->accts);
  for (size_t i = 0; i < s->n_acs; i++) {
    free(s->acs[i].slug);
    free(s->acs[i].id);
  }
  free(s->acs);
  free(s->api_key);
  free(s->mcp_url);
  free(s->public_url);
}
