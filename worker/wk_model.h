/*
 * wk_model: where the model requests of Agent and Self-Review nodes go (README "Language
 * models", "Self-Review nodes"). One rule for both node types:
 *
 *   config.model {provider, modelName, credential?, baseUrl?}: provider "anthropic" | "openai" |
 *   "openai_compatible" (tg_llm_provider_parse), modelName passed through. The base URL is the
 *   configured one of the provider (ANTHROPIC_BASE_URL, OPENAI_BASE_URL,
 *   TOOLGATE_OPENAI_COMPATIBLE_BASE_URL), sent on the worker's trusted client; only
 *   openai_compatible takes a user's baseUrl (no trailing slash), sent on the egress-policied
 *   client like any user-supplied URL. The API key is the user's credential
 *   config.model.credential when named (its secret's token, else value, else api_key), else the
 *   configured key of the provider (ANTHROPIC_API_KEY, OPENAI_API_KEY,
 *   TOOLGATE_OPENAI_COMPATIBLE_API_KEY; optional for openai_compatible only). A user's baseUrl
 *   gets the user's credential or no key: the operator's key never leaves for a URL that a
 *   workflow's author chose. Timeout and
 *   retries: TOOLGATE_MODEL_TIMEOUT_MS, TOOLGATE_MODEL_RETRIES. The Agent node (wk_node_agent.c)
 *   applies the same rule.
 */
#ifndef WK_MODEL_H
#define WK_MODEL_H

#include "tg_llm.h"
#include "wk.h"

#include <jansson.h>

/*
 * Work side (a dbq job): the key of user's credential name into *key (a new string: wipe it
 * with wk_model_key_free). TG_ENOTFOUND when the user has no credential of that name, TG_EINVAL
 * when its secret has no token, value or api_key; tg_store_credentials_open's errors
 * (TG_ESTATE: no secret key configured).
 */
int wk_model_credential_key(tg_db *db, const tg_crypto *c, const char *user, const char *name,
                            char **key);

void wk_model_key_free(char *key); /* wipes, then frees; NULL-safe */

/*
 * Loop side: fills req's provider, model, base_url and api_key, plus timeout_ms and
 * max_retries, for model (config.model, borrowed) from w's configuration, and *http with the
 * client to send it on; key (may be NULL) is the opened credential's and wins over the
 * configured one. req's strings borrow from model, key and w: keep them until tg_llm_send
 * returns. 0, or TG_EINVAL with why (size len): an unknown provider, no modelName, no base URL,
 * no key.
 */
int wk_model_endpoint(const wk_worker *w, const json_t *model, const char *key, tg_llm_request *req,
                      tg_http_client **http, char *why, size_t len);

#endif
