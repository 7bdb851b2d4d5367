/*
 * tg_check_db: the write-back of a provider check's observations, shared by the gateway
 * (admission) and the worker (pre-execute guard). Kept apart from tg_check.c, which never
 * touches the database; this file decides what both programs record of what Composio said.
 *
 * Rules (DESIGN.md sections 2 and 4): Composio's status maps to ours (INITIATED and
 * INITIALIZING → PENDING; an unknown status keeps ours and is recorded in status_reason as
 * composio_status=<X>); a non-ACTIVE status keeps Composio's own status_reason verbatim, else
 * the check's reason. The row is written by tg_store_accounts_observe, which keeps the rest:
 * version moves only when status or reason changed; a row the user DISCONNECTED is never touched
 * (a check in flight must not bring it back). One UPDATE per observation, changed or not (the
 * status CHECK is a chain of equalities since schema 003, cheap to evaluate, so the unchanged case
 * needs no statement of its own).
 */
#include "tg_check.h"
#include "tg_store_accounts.h"

#include <stdio.h>
#include <string.h>

const char *tg_check_status_from_composio(const char *s)
{
  static const char *const same[] = {"ACTIVE", "EXPIRED", "INACTIVE", "FAILED", "REVOKED"};
  if (!s)
    return NULL;
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
    if (strcmp(s, same[i]) == 0)
      return same[i];
  if (strcmp(s, "INITIATED") == 0 || strcmp(s, "INITIALIZING") == 0)
    return "PENDING";
  return NULL;
}

const char *tg_check_record(const tg_composio_account *a, const char **status, char *buf,
                            size_t len)
{
  const char *ours = tg_check_status_from_composio(a->status);
  *status = ours;
  if (!ours) {
    snprintf(buf, len, "composio_status=%s", a->status ? a->status : "UNKNOWN");
    return buf;
  }
  if (strcmp(ours, "ACTIVE") != 0)
    return a->status_reason;
  if (a->auth_refresh_required)
    return TG_CHECK_REFRESH;
  if (a->is_disabled)
    return TG_CHECK_DISABLED;
  return a->status_reason;
}

int tg_check_authorized(const char *status, const char *status_reason)
{
  if (!status || strcmp(status, "ACTIVE") != 0)
    return 0;
  return !status_reason || (strcmp(status_reason, TG_CHECK_REFRESH) != 0 &&
                            strcmp(status_reason, TG_CHECK_DISABLED) != 0 &&
                            strncmp(status_reason, "composio_status=", 16) != 0);
}

int tg_check_write_back(tg_db *db, const char *user_id, const tg_check_result *res, int64_t now_ms,
                        int *rows)
{
  json_t *o;
  size_t i;
  if (rows)
    *rows = 0;
  if (!res || !res->observed)
    return 0;
  json_array_foreach(res->observed, i, o)
  {
    const char *prov = json_string_value(json_object_get(o, "provider"));
    const char *ca = json_string_value(json_object_get(o, "composio_account_id"));
    const char *cst = json_string_value(json_object_get(o, "status"));
    const char *ours = tg_check_status_from_composio(cst);
    const char *reason = json_string_value(json_object_get(res->reasons, prov ? prov : ""));
    char buf[256];
    int rc, changes = 0;
    if (!prov || !ca)
      continue;
    if (ours && strcmp(ours, "ACTIVE") != 0) {
      const char *sr = json_string_value(json_object_get(o, "status_reason"));
      if (sr && *sr)
        reason = sr;
      else if (!reason) {
        snprintf(buf, sizeof buf, "connected_account_status=%s", cst);
        reason = buf;
      }
    } else if (!ours && cst) {
      snprintf(buf, sizeof buf, "composio_status=%s", cst);
      reason = buf;
    }
    rc = tg_store_accounts_observe(db, user_id, prov, ca, ours, reason, now_ms, &changes);
    if (rc != 0)
      return rc;
    if (rows)
      *rows += changes;
  }
  return 0;
}
