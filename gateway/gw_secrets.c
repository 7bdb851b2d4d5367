/*
 * gw_secrets: secret run inputs at admission (contract in gw_secrets.h).
 *
 * Invariant: a value of a secret input never reaches workflow_runs.inputs, an API response or a
 * log line of the gateway; it lives in the admission's memory until the run's row is written
 * with the value sealed (tg_crypto) and is then freed. The worker opens it (worker/wk_secrets.c).
 */
#include "gw_secrets.h"

#include "tg_workflow.h"

#include <string.h>

#define PLACEHOLDER "[REDACTED]"

int gw_secrets_split(gw_job *j, const json_t *definition, json_t *inputs, json_t **secrets)
{
  json_t *names = tg_workflow_secret_inputs(definition), *out = NULL, *name;
  size_t i;
  *secrets = NULL;
  if (!names)
    goto oom;
  if (json_array_size(names) == 0) {
    json_decref(names);
    return 0;
  }
  if (!j->app->crypto) {
    json_decref(names);
    gw_job_fail(j, 503, "secret_key_missing",
                "This workflow declares secret inputs and the server has no TOOLGATE_SECRET_KEY "
                "to store them encrypted; ask the operator to configure one.");
    return TG_ESTATE;
  }
  if (!(out = json_object()))
    goto oom;
  json_array_foreach(names, i, name)
  {
    const char *n = json_string_value(name);
    json_t *v = json_object_get(inputs, n);
    if (!json_is_string(v))
      continue; /* absent or null (optional): nothing to hide */
    if (json_object_set(out, n, v) != 0 || json_object_set_new(inputs, n, json_string(PLACEHOLDER)))
      goto oom;
  }
  json_decref(names);
  if (json_object_size(out) == 0) {
    json_decref(out);
    out = NULL;
  }
  *secrets = out;
  return 0;
oom:
  json_decref(names);
  json_decref(out);
  gw_job_fail_err(j, TG_ENOMEM);
  return TG_ENOMEM;
}

int gw_secrets_restore(tg_db *db, gw_app *app, const char *run_id, const char *user, json_t *inputs)
{
  json_t *secrets = NULL;
  int rc;
  if (!app->crypto)
    return 0;
  if ((rc = tg_sealed_load_run_secrets(db, app->crypto, run_id, user, &secrets)) || !secrets)
    return rc;
  rc = json_object_update_existing(inputs, secrets) == 0 ? 0 : TG_ENOMEM;
  json_decref(secrets);
  return rc;
}
