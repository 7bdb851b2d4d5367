/*
 * tg_log: JSON lines with redaction by key. The level check happens before any formatting, so a
 * disabled debug line costs one comparison. Redaction works on a deep copy so the caller's JSON
 * is never modified.
 */
#include "tg_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *svc = "toolgate";
static tg_log_level min_level = TG_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void tg_log_init(const char *service, tg_log_level level)
{
  svc = service;
  min_level = level;
}

tg_log_level tg_log_level_parse(const char *s)
{
  for (int i = 0; s && i < 4; i++)
    if (strcasecmp(s, level_names[i]) == 0)
      return (tg_log_level)i;
  return TG_LOG_INFO;
}

static int ends_with(const char *s, const char *suffix)
{
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

int tg_log_is_secret_key(const char *key)
{
  static const char *exact[] = {"authorization",
                                "proxy-authorization",
                                "cookie",
                                "set-cookie",
                                "x-api-key",
                                "api_key",
                                "apikey",
                                "api-key",
                                "secret",
                                "password",
                                "client_secret",
                                "headers_enc",
                                "access_token",
                                "refresh_token",
                                "id_token",
                                "token",
                                "bearer_token",
                                "private_key",
                                NULL};
  if (!key)
    return 0;
  for (int i = 0; exact[i]; i++)
    if (strcasecmp(key, exact[i]) == 0)
      return 1;
  return ends_with(key, "_token") || ends_with(key, "-token") || ends_with(key, "_secret") ||
         ends_with(key, "password") ||
         (ends_with(key, "_key") && !ends_with(key, "idempotency_key"));
}

json_t *tg_redact(const json_t *v)
{
  if (!v)
    return NULL;
  if (json_is_object(v)) {
    json_t *out = json_object();
    const char *k;
    json_t *val;
    if (!out)
      return NULL;
    json_object_foreach((json_t *)v, k, val)
    {
      json_t *c = tg_log_is_secret_key(k) ? json_string("[REDACTED]") : tg_redact(val);
      if (!c || json_object_set_new(out, k, c) != 0) {
        json_decref(out);
        return NULL;
      }
    }
    return out;
  }
  if (json_is_array(v)) {
    json_t *out = json_array();
    size_t i;
    json_t *val;
    if (!out)
      return NULL;
    json_array_foreach(v, i, val)
    {
      json_t *c = tg_redact(val);
      if (!c || json_array_append_new(out, c) != 0) {
        json_decref(out);
        return NULL;
      }
    }
    return out;
  }
  return json_deep_copy(v);
}

/* Values registered by tg_log_add_secret (start-up only, then read-only). */
#define MAX_SECRETS 16
static char *secrets[MAX_SECRETS];
static int n_secrets;

void tg_log_add_secret(const char *value)
{
  if (!value || strlen(value) < 8 || n_secrets == MAX_SECRETS)
    return;
  for (int i = 0; i < n_secrets; i++)
    if (strcmp(secrets[i], value) == 0)
      return;
  if ((secrets[n_secrets] = strdup(value)))
    n_secrets++;
}

/* Replaces every occurrence of a registered secret in text (in place: the mark is shorter). */
static void scrub(char *text)
{
  static const char mark[] = "[REDACTED]";
  for (int i = 0; i < n_secrets; i++) {
    size_t n = strlen(secrets[i]);
    char *p = text;
    while ((p = strstr(p, secrets[i]))) {
      size_t m = n < sizeof mark - 1 ? n : sizeof mark - 1;
      memcpy(p, mark, m);
      memmove(p + m, p + n, strlen(p + n) + 1);
      p += m;
    }
  }
}

static void emit(tg_log_level level, const char *event, json_t *fields)
{
  struct timespec ts;
  struct tm tm;
  char when[96];
  json_t *line = json_object();
  json_t *safe = tg_redact(fields);
  char *text;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
  json_object_set_new(line, "ts", json_string(when));
  json_object_set_new(line, "level", json_string(level_names[level]));
  json_object_set_new(line, "svc", json_string(svc));
  json_object_set_new(line, "event", json_string(event));
  if (json_is_object(safe))
    json_object_update_missing(line, safe);
  json_decref(safe);
  text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(line);
  if (!text)
    return;
  scrub(text);
  flockfile(stderr);
  fputs(text, stderr);
  fputc('\n', stderr);
  fflush(stderr);
  funlockfile(stderr);
  free(text);
}

void tg_log_json(tg_log_level level, const char *event, json_t *fields)
{
  if (level >= min_level)
    emit(level, event, fields);
  json_decref(fields);
}

void(tg_log)(tg_log_level level, const char *event, const char *fmt, ...)
{
  json_t *fields = NULL;
  json_error_t jerr;
  va_list ap;

  if (level < min_level)
    return;
  if (fmt) {
    va_start(ap, fmt);
    fields = json_vpack_ex(&jerr, 0, fmt, ap);
    va_end(ap);
    if (!fields)
      fields = json_pack("{s:s}", "log_format_error", jerr.text);
  }
  emit(level, event, fields);
  json_decref(fields);
}
