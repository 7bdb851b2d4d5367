/*
 * tg_run_events: the reads of run_events for GET /api/runs/{id}/events (README "Run events").
 * Read only: the engine's tg_store_nodes writes the table. seq only grows, so "the events after
 * seq" is a stable cursor (the SSE id, Last-Event-ID, ?after=).
 *
 * Run on the caller's connection (a tg_dbq job). Errors: the TG_E* codes of tg_db.
 */
#ifndef TG_RUN_EVENTS_H
#define TG_RUN_EVENTS_H

#include "tg_db.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Run run_id's events with seq > after, in seq order, at most limit: a new array of {seq, type,
 * node_id, at, data} (data: the stored JSON object, or null), or NULL with *err set. */
json_t *tg_run_events_list(tg_db *db, int *err, const char *run_id, int64_t after, int limit);

/* The status of user_id's run run_id into status (size n, truncated): 0, TG_ENOTFOUND (no such
 * run of this user) or another code. */
int tg_run_events_run_status(tg_db *db, const char *run_id, const char *user_id, char *status,
                             size_t n);

/* 1 when a run in status will write no more events (succeeded, failed, canceled, attention). */
int tg_run_events_final(const char *status);

#endif
