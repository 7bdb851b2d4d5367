/*
 * tg_run_events: read-only queries of run_events and of a run's owner and status (contract in
 * tg_run_events.h). Each list is one range scan of run_events_run (run_id, seq).
 */
#include "tg_run_events.h"

#include "tg_err.h"

#include <stdio.h>
#include <string.h>

json_t *tg_run_events_list(tg_db *db, int *err, const char *run_id, int64_t after, int limit)
{
  return tg_db_query(db, err,
                     "SELECT seq, type, node_id, at, data AS data_json FROM run_events "
                     "WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                     "sIi", run_id, (long long)after, limit);
}

int tg_run_events_run_status(tg_db *db, const char *run_id, const char *user_id, char *status,
                             size_t n)
{
  int rc = 0;
  json_t *row =
      tg_db_query_one(db, &rc, "SELECT status FROM workflow_runs WHERE id = ?1 AND user_id = ?2",
                      "ss", run_id, user_id);
  if (!row)
    return rc ? rc : TG_ENOTFOUND;
  snprintf(status, n, "%s", json_string_value(json_object_get(row, "status")));
  json_decref(row);
  return 0;
}

int tg_run_events_final(const char *status)
{
  static const char *const finals[] = {"succeeded", "failed", "canceled", "attention"};
  for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++)
    if (strcmp(status, finals[i]) == 0)
      return 1;
  return 0;
}
