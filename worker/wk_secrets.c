/*
 * wk_secrets: the worker's side of secret run inputs (README "Security"; the gateway seals them
 * at admission, gateway/gw_secrets.c).
 *
 * The claim job opens workflow_runs.inputs_secret_enc (only when the workflow declares secret
 * inputs: no extra query otherwise), puts the values into the run's inputs so templates render
 * them, and keeps them in r->secrets: from then on every log line of the process has them
 * replaced (tg_log_hold_secret), and everything the run records (tool arguments, responses,
 * errors, the run's output and error) goes through tg_redact_values / tg_redact_text first.
 * r->secrets is written once in the claim job and only read afterwards (pool jobs included);
 * run_free releases and wipes it.
 */
#include "wk.h"

#include "tg_err.h"
#include "tg_log.h"
#include "tg_redact.h"
#include "tg_workflow.h"

#include <stdlib.h>
#include <string.h>

int wk_secrets_load(tg_db *db, wk_run *r)
{
  json_t *names = tg_workflow_secret_inputs(r->definition), *secrets = NULL, *v;
  const char *k;
  size_t n = 0;
  int rc;
  if (!names)
    return TG_ENOMEM;
  if (json_array_size(names) == 0) {
    json_decref(names);
    return 0;
  }
  json_decref(names);
  rc = tg_sealed_load_run_secrets(db, r->w->crypto, r->id, r->user_id, &secrets);
  if (rc || !secrets)
    return rc;
  if (!json_is_object(r->inputs)) {
    json_decref(r->inputs);
    r->inputs = json_object();
  }
  if (!r->inputs || !(r->secrets = calloc(json_object_size(secrets) + 1, sizeof *r->secrets))) {
    rc = TG_ENOMEM;
    goto out;
  }
  json_object_foreach(secrets, k, v)
  {
    const char *val = json_string_value(v);
    if (!*val)
      continue;
    if (!(r->secrets[n] = strdup(val))) {
      rc = TG_ENOMEM;
      goto out;
    }
    if ((rc = tg_log_hold_secret(val))) {
      free(r->secrets[n]);
      r->secrets[n] = NULL;
      goto out;
    }
    n++;
  }
  rc = json_object_update(r->inputs, secrets) == 0 ? 0 : TG_ENOMEM;
out:
  json_decref(secrets);
  return rc; /* on error the run fails at once; run_free releases what was held */
}

void wk_secrets_free(wk_run *r)
{
  for (size_t i = 0; r->secrets && r->secrets[i]; i++) {
    tg_log_release_secret(r->secrets[i]);
    tg_crypto_wipe_free(r->secrets[i], strlen(r->secrets[i]));
  }
  free(r->secrets);
  r->secrets = NULL;
}

json_t *wk_secrets_redact(const wk_run *r, const json_t *v)
{
  if (!v)
    return NULL;
  if (!r->secrets || !r->secrets[0])
    return json_incref((json_t *)v);
  return tg_redact_values(v, (const char *const *)r->secrets);
}

json_t *wk_secrets_redact_args(const wk_run *r, const json_t *args)
{
  json_t *by_key = tg_redact(args), *out;
  if (!by_key)
    return NULL;
  out = wk_secrets_redact(r, by_key);
  json_decref(by_key);
  return out;
}

char *wk_secrets_redact_text(const wk_run *r, const char *s)
{
  if (!s)
    return NULL;
  if (!r->secrets || !r->secrets[0])
    return strdup(s);
  return tg_redact_text(s, (const char *const *)r->secrets);
}
