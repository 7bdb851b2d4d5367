/*
 * gw_metrics: GET /metrics in the Prometheus text exposition format (version 0.0.4), and the
 * counters behind it.
 *
 * Every counter lives in gw_app.metrics and is touched only on the loop thread (handlers'
 * done callbacks and the check pool), so plain integers suffice. The check latency is a
 * histogram: the time from a check's arrival at the pool to its answer, including any wait for
 * a shared Composio call. It is counted in milliseconds and exposed in seconds, as Prometheus'
 * naming conventions ask (base units; counters end in _total), so that `promtool check metrics`
 * finds nothing to report (tests/integration/test_metrics_lint.py).
 */
#include "gw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_ms[GW_LAT_BUCKETS - 1] = {1,   2.5, 5,    10,   25,  50,
                                                     100, 250, 1000, 2500, 5000};

static const char *const decision_names[GW_ADM_N] = {
    "queued",          "replayed",  "blocked",  "unavailable", "insufficient_credits",
    "invalid_request", "not_found", "conflict", "error"};

void gw_metrics_admission(gw_app *app, int decision)
{
  if (decision >= 0 && decision < GW_ADM_N)
    app->metrics.admissions[decision]++;
}

void gw_metrics_check_latency(gw_app *app, double ms)
{
  int i = 0;
  while (i < GW_LAT_BUCKETS - 1 && ms > bucket_ms[i])
    i++;
  app->metrics.check_ms_bucket[i]++;
  app->metrics.check_ms_sum += ms;
  app->metrics.checks++;
}

/* Appends to a fixed buffer; output that does not fit is cut (the buffer is sized for it). */
typedef struct out {
  char buf[8192];
  size_t len;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
  va_list ap;
  int n;
  if (o->len >= sizeof o->buf)
    return;
  va_start(ap, fmt);
  n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    o->len = o->len + (size_t)n < sizeof o->buf ? o->len + (size_t)n : sizeof o->buf;
}

static void counter(out *o, const char *name, const char *help, uint64_t v)
{
  put(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
      (unsigned long long)v);
}

void gw_metrics_get(gw_app *app, tg_httpd_req *req)
{
  static const char *const headers[] = {"Content-Type: text/plain; version=0.0.4; charset=utf-8",
                                        NULL};
  const gw_metrics *m = &app->metrics;
  out *o = malloc(sizeof *o);
  uint64_t cum = 0;

  if (!o) {
    tg_httpd_respond_error(req, 500, "internal", "Out of memory.");
    return;
  }
  o->len = 0;
  put(o, "# HELP toolgate_admissions_total Run admissions by decision.\n"
         "# TYPE toolgate_admissions_total counter\n");
  for (int i = 0; i < GW_ADM_N; i++)
    put(o, "toolgate_admissions_total{decision=\"%s\"} %llu\n", decision_names[i],
        (unsigned long long)m->admissions[i]);
  counter(o, "toolgate_preflights_total", "Preflight checks answered.", m->preflights);
  counter(o, "toolgate_composio_calls_total",
          "HTTP requests to Composio made by provider checks (list pages and GETs).",
          m->composio_calls);
  counter(o, "toolgate_composio_list_calls_total", "Composio list calls started by checks.",
          m->composio_list_calls);
  counter(o, "toolgate_composio_calls_saved_total",
          "Composio list calls not made because concurrent checks shared one (checks served by a "
          "list call minus list calls started; one call serves one user's waiters or several "
          "users').",
          m->composio_calls_saved);
  counter(o, "toolgate_composio_rate_limited_total",
          "Composio 429 answers seen by checks (each starts a back-off).",
          m->composio_rate_limited);
  put(o, "# HELP toolgate_check_duration_seconds Provider check latency, arrival to answer.\n"
         "# TYPE toolgate_check_duration_seconds histogram\n");
  for (int i = 0; i < GW_LAT_BUCKETS; i++) {
    cum += m->check_ms_bucket[i];
    if (i < GW_LAT_BUCKETS - 1)
      put(o, "toolgate_check_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_ms[i] / 1000,
          (unsigned long long)cum);
    else
      put(o, "toolgate_check_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
  }
  put(o, "toolgate_check_duration_seconds_sum %.6f\ntoolgate_check_duration_seconds_count %llu\n",
      m->check_ms_sum / 1000, (unsigned long long)m->checks);
  put(o,
      "# HELP toolgate_db_jobs Database jobs queued or running.\n# TYPE toolgate_db_jobs "
      "gauge\ntoolgate_db_jobs %zu\n",
      tg_dbq_pending(app->dbq));
  tg_httpd_respond(req, 200, headers, o->buf, o->len);
  free(o);
}
