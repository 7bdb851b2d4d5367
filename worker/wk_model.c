/*
 * wk_model: the endpoint and key of a model node's requests (contract in wk_model.h). The keys
 * are only ever in the request headers tg_llm builds: never in an error, a log line or the
 * journal; a credential's key is wiped when the node is done with it.
 */
#include "wk_model.h"

#include "tg_api_request.h"
#include "tg_err.h"
#include "tg_store_credentials.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The members of a credential's secret that may be the API key, in order. */
static const char *const key_fields[] = {"token", "value", "api_key"};

int wk_model_credential_key(tg_db *db, const tg_crypto *c, const char *user, const char *name,
                            char **key)
{
  json_t *names = json_pack("[s]", name), *creds = NULL;
  const json_t *cred;
  const char *value = NULL;
  int rc;
  *key = NULL;
  if (!names)
    return TG_ENOMEM;
  rc = tg_store_credentials_open(db, c, user, names, &creds);
  json_decref(names);
  if (rc != 0)
    return rc;
  cred = json_object_get(json_object_get(creds, name), "secret");
  for (size_t i = 0; cred && !value && i < sizeof key_fields / sizeof key_fields[0]; i++)
    value = json_string_value(json_object_get(cred, key_fields[i]));
  if (!json_object_get(creds, name))
    rc = TG_ENOTFOUND;
  else if (!value)
    rc = TG_EINVAL;
  else if (!(*key = strdup(value)))
    rc = TG_ENOMEM;
  tg_api_wipe_json(creds);
  json_decref(creds);
  return rc;
}

void wk_model_key_free(char *key)
{
  if (!key)
    return;
  sodium_memzero(key, strlen(key));
  free(key);
}

int wk_model_endpoint(const wk_worker *w, const json_t *model, const char *key, tg_llm_request *req,
                      tg_http_client **http, char *why, size_t len)
{
  const char *user_url = json_string_value(json_object_get(model, "baseUrl"));
  const char *provider = json_string_value(json_object_get(model, "provider"));
  const char *name = json_string_value(json_object_get(model, "modelName"));
  const tg_config *cfg = &w->cfg;
  if (!provider || tg_llm_provider_parse(provider, &req->provider) != 0) {
    snprintf(why, len, "unknown model provider \"%.40s\"", provider ? provider : "");
    return TG_EINVAL;
  }
  if (!name || !*name) {
    snprintf(why, len, "the model has no modelName");
    return TG_EINVAL;
  }
  req->model = name;
  switch (req->provider) {
  case TG_LLM_ANTHROPIC:
    req->base_url = cfg->anthropic_base_url;
    req->api_key = key ? key : tg_secret_reveal(&cfg->anthropic_api_key);
    break;
  case TG_LLM_OPENAI:
    req->base_url = cfg->openai_base_url;
    req->api_key = key ? key : tg_secret_reveal(&cfg->openai_api_key);
    break;
  default: /* the configured key goes to the configured URL only, never to a user's baseUrl */
    req->base_url = user_url ? user_url : cfg->compatible_base_url;
    req->api_key = key || user_url ? key : tg_secret_reveal(&cfg->compatible_api_key);
    break;
  }
  *http = req->provider == TG_LLM_OPENAI_COMPATIBLE && user_url ? w->http_egress : w->http;
  if (!req->base_url || !*req->base_url) {
    snprintf(why, len, "no base URL is configured for provider %s", provider);
    return TG_EINVAL;
  }
  if (!req->api_key && req->provider != TG_LLM_OPENAI_COMPATIBLE) {
    snprintf(why, len,
             "no API key for provider %s: configure %s or name a credential in "
             "config.model.credential",
             provider, req->provider == TG_LLM_ANTHROPIC ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY");
    return TG_EINVAL;
  }
  req->timeout_ms = cfg->model_timeout_ms;
  req->max_retries = (int)cfg->model_retries;
  return 0;
}
