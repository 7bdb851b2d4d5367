/*
 * tg_store_auth_configs: the upsert of a configured provider's auth_configs row (see
 * tg_store_auth_configs.h). created_at is written once, by the insert; an update keeps it.
 */
#include "tg_store_auth_configs.h"

#include "tg_db.h"

int tg_store_auth_configs_upsert(tg_db *db, const tg_provider *p, int64_t now_ms)
{
  return tg_db_exec(db, NULL,
                    "INSERT INTO auth_configs (id, provider, toolkit_slug, display_name, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO "
                    "UPDATE SET provider = excluded.provider, toolkit_slug = "
                    "excluded.toolkit_slug, display_name = excluded.display_name, updated_at = "
                    "excluded.updated_at",
                    "ssssII", p->auth_config_id, p->provider, p->toolkit_slug, p->display_name,
                    (long long)now_ms, (long long)now_ms);
}
