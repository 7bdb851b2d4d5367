/*
 * gw_secrets: secret run inputs at admission (DESIGN.md sections 6 and 8, README "Security").
 * A Start input variable declared {"type": "string", "secret": true} is moved out of the run's
 * inputs before they are stored: workflow_runs.inputs keeps "[REDACTED]" in its place, and the
 * values are sealed into workflow_runs.inputs_secret_enc (tg_sealed_store_run_secrets) in the
 * transaction that inserts the run.
 */
#ifndef GW_SECRETS_H
#define GW_SECRETS_H

#include "gw.h"

/*
 * Loop side, after the inputs were validated against definition: moves the string values of the
 * secret inputs present in inputs into a new object *secrets (NULL when the workflow declares
 * none) and puts "[REDACTED]" in their place. When the workflow declares secret inputs and the
 * gateway has no TOOLGATE_SECRET_KEY, sets j's outcome to 503 secret_key_missing and returns
 * TG_ESTATE (the caller replies): such values are never stored in clear. TG_ENOMEM (outcome
 * set: 500).
 */
int gw_secrets_split(gw_job *j, const json_t *definition, json_t *inputs, json_t **secrets);

/*
 * Work side (retry): puts the secret inputs of run run_id of user back into inputs (the
 * "[REDACTED]" placeholders loaded from workflow_runs.inputs), so the new run is admitted with
 * the original values and sealed again under its own id. 0 when the run has none. Without a key
 * returns 0 and leaves the placeholders: gw_secrets_split refuses the retry then. Other errors
 * as tg_sealed_load_run_secrets.
 */
int gw_secrets_restore(tg_db *db, gw_app *app, const char *run_id, const char *user,
                       json_t *inputs);

#endif
