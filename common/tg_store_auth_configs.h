/*
 * tg_store_auth_configs: the one owner of the auth_configs table, whose rows mirror the
 * configured providers (COMPOSIO_AUTH_CONFIG_<PROVIDER>, tg_config.h). The gateway writes them at
 * start-up and again inside an OAuth callback's transaction (a row must exist before the
 * connected account that references it).
 */
#ifndef TG_STORE_AUTH_CONFIGS_H
#define TG_STORE_AUTH_CONFIGS_H

#include "tg_config.h"

#include <stdint.h>

typedef struct tg_db tg_db;

/*
 * Inside the caller's transaction (never begins or commits): inserts the row of p (id, provider,
 * toolkit_slug, display_name; created_at = updated_at = now_ms) or, when its id exists, updates
 * those columns and updated_at. Returns 0 or a TG_E* code of tg_db (TG_ECONFLICT when another
 * auth config id is stored for the provider). p's strings are borrowed for the call.
 */
int tg_store_auth_configs_upsert(tg_db *db, const tg_provider *p, int64_t now_ms);

#endif
