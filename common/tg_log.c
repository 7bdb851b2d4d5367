/*
 * tg_log: JSON lines, scrubbed with tg_redact. The level check happens before any formatting, so
 * a disabled debug line costs one comparison. The caller's JSON is never modified: fields with a
 * secret-named key at any depth are redacted on a deep copy (tg_redact); the usual fields (none)
 * are serialised as they are, after a scan (the text is the same either way). The values this
 * logger scrubs by value are its own state: the configured secrets (start-up, never released)
 * and the per-run values held with tg_log_hold_secret, in one mutex-protected, reference-counted
 * list whose values are cut out of the fields' keys and strings (tg_redact_values) before the
 * line is serialised.
 */
#include "tg_log.h"

#include "tg_err.h"
#include "tg_json.h"
#include "tg_redact.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yajl/yajl_gen.h>

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

/* Per-run values held for the log scrubber (tg_log_hold_secret). */
typedef struct held {
  char *value;
  int refs;
} held;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static held *held_v;
static size_t n_held, cap_held;
static const char **held_list; /* NULL-terminated view of held_v for tg_redact_text */

int tg_log_hold_secret(const char *value)
{
  int rc = 0;
  if (!value || !*value)
    return 0;
  pthread_mutex_lock(&held_mu);
  for (size_t i = 0; i < n_held; i++)
    if (strcmp(held_v[i].value, value) == 0) {
      held_v[i].refs++;
      goto out;
    }
  if (n_held == cap_held) {
    size_t nc = cap_held ? cap_held * 2 : 16;
    held *nv = realloc(held_v, nc * sizeof *nv);
    const char **nl;
    if (nv)
      held_v = nv;
    nl = nv ? realloc(held_list, (nc + 1) * sizeof *nl) : NULL;
    if (!nl) {
      rc = TG_ENOMEM;
      goto out;
    }
    held_list = nl;
    cap_held = nc;
  }
  if (!(held_v[n_held].value = strdup(value))) {
    rc = TG_ENOMEM;
    goto out;
  }
  held_v[n_held].refs = 1;
  held_list[n_held] = held_v[n_held].value;
  held_list[++n_held] = NULL;
out:
  pthread_mutex_unlock(&held_mu);
  return rc;
}

void tg_log_release_secret(const char *value)
{
  if (!value || !*value)
    return;
  pthread_mutex_lock(&held_mu);
  for (size_t i = 0; i < n_held; i++) {
    if (strcmp(held_v[i].value, value) != 0)
      continue;
    if (--held_v[i].refs == 0) {
      memset(held_v[i].value, 0, strlen(held_v[i].value));
      free(held_v[i].value);
      held_v[i] = held_v[n_held - 1];
      held_list[i] = held_v[i].value;
      held_list[--n_held] = NULL;
    }
    break;
  }
  if (n_held == 0) { /* the last one gone: give the memory back (no leak at exit) */
    free(held_v);
    free(held_list);
    held_v = NULL;
    held_list = NULL;
    cap_held = 0;
  }
  pthread_mutex_unlock(&held_mu);
}

void tg_log_add_secret(const char *value)
{
  /* Held for the life of the process (never released). Short values are skipped: a
   * configuration secret that short would redact ordinary text everywhere. */
  if (value && strlen(value) >= 8)
    (void)tg_log_hold_secret(value);
}

/* 1 if any string value or object key in v contains one of secrets (read-only scan). */
static int contains_secret(const json_t *v, const char *const *secrets)
{
  const char *k;
  json_t *val;
  size_t i;
  if (json_is_string(v)) {
    const char *t = json_string_value(v);
    /* A value with NUL bytes is scanned only before the first one; redacting it (which
     * truncates there) is the safe answer. */
    if (strlen(t) != json_string_length(v))
      return 1;
    for (i = 0; secrets[i]; i++)
      if (strstr(t, secrets[i]))
        return 1;
    return 0;
  }
  if (json_is_object(v)) {
    json_object_foreach((json_t *)v, k, val)
    {
      for (i = 0; secrets[i]; i++)
        if (strstr(k, secrets[i]))
          return 1;
      if (contains_secret(val, secrets))
        return 1;
    }
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, val)
    {
      if (contains_secret(val, secrets))
        return 1;
    }
  }
  return 0;
}

/*
 * The fields with every held secret value cut out (a new reference: fields itself, increfed,
 * when nothing matches; NULL when memory runs out). Values are redacted in the JSON before the
 * line is serialised, so a secret that needs escaping is still found and the line stays valid
 * JSON whatever the secret's length.
 */
static json_t *fields_without_held(json_t *fields, int *failed)
{
  json_t *out = json_incref(fields);
  *failed = 0;
  if (!fields)
    return NULL;
  pthread_mutex_lock(&held_mu);
  if (n_held && contains_secret(fields, held_list)) {
    json_decref(out);
    if (!(out = tg_redact_values(fields, held_list)))
      *failed = 1;
  }
  pthread_mutex_unlock(&held_mu);
  return out;
}

/* 1 if v holds a secret-named key at any depth (then the line is built from a redacted copy). */
static int has_secret_key(const json_t *v)
{
  const char *k;
  json_t *val;
  size_t i;
  if (json_is_object(v)) {
    json_object_foreach((json_t *)v, k, val)
    {
      if (tg_redact_is_secret_key(k) || has_secret_key(val))
        return 1;
    }
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, val)
    {
      if (has_secret_key(val))
        return 1;
    }
  }
  return 0;
}

/* 1 if s can be written between JSON quotes as it is (no escaping needed). */
static int plain_text(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || (unsigned char)*s >= 0x80)
      return 0;
  return 1;
}

/* The fast path's precondition on fields: an object (or nothing) without the line's own keys
 * (ts, level, svc, event: the slow path keeps ours and drops theirs). */
static int no_reserved_keys(const json_t *fields)
{
  return !fields || (json_is_object(fields) && !json_object_get(fields, "ts") &&
                     !json_object_get(fields, "level") && !json_object_get(fields, "svc") &&
                     !json_object_get(fields, "event"));
}

/* The line's text, or NULL when memory runs out. Fast path (the usual case: no secret-named
 * key anywhere, plain event and service names): the fields are serialised as they are and
 * spliced after the line's own keys, with no copy and no intermediate object. Otherwise the
 * line is built from tg_redact's copy. Both give the same text. */
static char *line_text(tg_log_level level, const char *event, json_t *fields, const char *when)
{
  json_t *line, *safe;
  char *text;
  if (plain_text(event) && plain_text(svc) && no_reserved_keys(fields) && !has_secret_key(fields)) {
    char *body = fields ? tg_json_dumps(fields, NULL) : NULL;
    size_t blen, hlen, cap;
    int n;
    if (fields && !body)
      return NULL;
    blen = body ? strlen(body) : 0; /* "{...}": the members are body[1 .. blen-2] */
    cap = strlen(when) + strlen(svc) + strlen(event) + blen + 64;
    if (!(text = malloc(cap))) {
      free(body);
      return NULL;
    }
    n = snprintf(text, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"svc\":\"%s\",\"event\":\"%s\"", when,
                 level_names[level], svc, event);
    hlen = (size_t)n;
    if (blen > 2) {
      text[hlen++] = ',';
      memcpy(text + hlen, body + 1, blen - 2);
      hlen += blen - 2;
    }
    text[hlen++] = '}';
    text[hlen] = 0;
    free(body);
    return text;
  }
  line = json_object();
  safe = tg_redact(fields);
  json_object_set_new(line, "ts", json_string(when));
  json_object_set_new(line, "level", json_string(level_names[level]));
  json_object_set_new(line, "svc", json_string(svc));
  json_object_set_new(line, "event", json_string(event));
  if (json_is_object(safe))
    json_object_update_missing(line, safe);
  json_decref(safe);
  text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(line);
  return text;
}

/* The "ts" text of now: RFC 3339 UTC with milliseconds (24 bytes + NUL for 4-digit years). */
static void now_text(char when[64])
{
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(when, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

static void emit(tg_log_level level, const char *event, json_t *fields)
{
  char when[64];
  char *text;
  json_t *safe;
  int failed;

  now_text(when);
  safe = fields_without_held(fields, &failed);
  if (failed)
    return; /* out of memory: no line rather than a line with a secret */
  text = line_text(level, event, safe, when);
  json_decref(safe);
  if (!text)
    return;
  /* One write per line: stderr is unbuffered, so the newline goes in the same fwrite (two
   * calls would be two write(2)s, and another thread's line could land between them). */
  {
    size_t n = strlen(text);
    char *grown = realloc(text, n + 2);
    if (!grown) {
      free(text);
      return;
    }
    text = grown;
    text[n] = '\n';
    text[n + 1] = 0;
    fwrite(text, 1, n + 1, stderr);
    fflush(stderr);
  }
  free(text);
}

void tg_log_json(tg_log_level level, const char *event, json_t *fields)
{
  if (level >= min_level)
    emit(level, event, fields);
  json_decref(fields);
}

static int kv_present(const tg_log_field *f)
{
  return f->key && (f->type == TG_KV_INT || (f->type == TG_KV_STR ? f->s != NULL : f->j != NULL));
}

/* 1 when kv can be written directly: plain names, no reserved, repeated or secret-named key at
 * any depth, and (checked under held_mu by the caller) no held secret in a value. */
static int kv_plain(const char *event, const tg_log_field *kv, size_t n)
{
  if (!plain_text(event) || !plain_text(svc))
    return 0;
  for (size_t a = 0; a < n; a++) {
    const char *k = kv[a].key;
    if (!kv_present(&kv[a]))
      continue;
    if (!strcmp(k, "ts") || !strcmp(k, "level") || !strcmp(k, "svc") || !strcmp(k, "event") ||
        tg_redact_is_secret_key(k) || (kv[a].type == TG_KV_JSON && has_secret_key(kv[a].j)))
      return 0;
    for (size_t b = 0; b < a; b++)
      if (kv_present(&kv[b]) && !strcmp(kv[b].key, k))
        return 0;
  }
  return 1;
}

/* 1 if a value of kv holds one of secrets (held_mu held). */
static int kv_holds_secret(const tg_log_field *kv, size_t n, const char *const *secrets)
{
  for (size_t a = 0; a < n; a++) {
    if (!kv_present(&kv[a]))
      continue;
    for (size_t i = 0; secrets[i]; i++)
      if (strstr(kv[a].key, secrets[i]) || (kv[a].type == TG_KV_STR && strstr(kv[a].s, secrets[i])))
        return 1;
    if (kv[a].type == TG_KV_JSON && contains_secret(kv[a].j, secrets))
      return 1;
  }
  return 0;
}

#define GEN_STR(g, str) yajl_gen_string(g, (const unsigned char *)(str), strlen(str))

/* The line of kv written with yajl_gen (newline included), or NULL (then the object path). */
static char *kv_line(tg_log_level level, const char *event, const tg_log_field *kv, size_t n,
                     size_t *len)
{
  char when[64], *out = NULL;
  const unsigned char *buf;
  size_t blen;
  int ok;
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g)
    return NULL;
  yajl_gen_config(g, yajl_gen_validate_utf8, 1);
  now_text(when);
  ok = yajl_gen_map_open(g) == yajl_gen_status_ok && GEN_STR(g, "ts") == yajl_gen_status_ok &&
       GEN_STR(g, when) == yajl_gen_status_ok && GEN_STR(g, "level") == yajl_gen_status_ok &&
       GEN_STR(g, level_names[level]) == yajl_gen_status_ok &&
       GEN_STR(g, "svc") == yajl_gen_status_ok && GEN_STR(g, svc) == yajl_gen_status_ok &&
       GEN_STR(g, "event") == yajl_gen_status_ok && GEN_STR(g, event) == yajl_gen_status_ok;
  for (size_t a = 0; ok && a < n; a++) {
    char *text;
    size_t tl;
    if (!kv_present(&kv[a]))
      continue;
    ok = GEN_STR(g, kv[a].key) == yajl_gen_status_ok;
    if (!ok)
      break;
    switch (kv[a].type) {
    case TG_KV_STR:
      ok = GEN_STR(g, kv[a].s) == yajl_gen_status_ok;
      break;
    case TG_KV_INT:
      ok = yajl_gen_integer(g, kv[a].i) == yajl_gen_status_ok;
      break;
    case TG_KV_JSON: /* small values (a list of providers): their text spliced in */
      ok = (text = tg_json_dumps(kv[a].j, &tl)) != NULL &&
           yajl_gen_number(g, text, tl) == yajl_gen_status_ok;
      free(text);
      break;
    }
  }
  if (ok && yajl_gen_map_close(g) == yajl_gen_status_ok &&
      yajl_gen_get_buf(g, &buf, &blen) == yajl_gen_status_ok && (out = malloc(blen + 2))) {
    memcpy(out, buf, blen);
    out[blen] = '\n';
    out[blen + 1] = 0;
    *len = blen + 1;
  }
  yajl_gen_free(g);
  return out;
}

void tg_log_kv(tg_log_level level, const char *event, const tg_log_field *kv, size_t n)
{
  char *line = NULL;
  size_t len = 0;
  json_t *o;
  if (level < min_level)
    return;
  if (kv_plain(event, kv, n)) {
    int has_held;
    pthread_mutex_lock(&held_mu);
    has_held = n_held && kv_holds_secret(kv, n, held_list);
    pthread_mutex_unlock(&held_mu);
    if (!has_held && (line = kv_line(level, event, kv, n, &len)) != NULL) {
      fwrite(line, 1, len, stderr);
      fflush(stderr);
      free(line);
      return;
    }
  }
  /* Everything else: the object, through the redacting path. */
  if (!(o = json_object()))
    return;
  for (size_t a = 0; a < n; a++) {
    json_t *v = NULL;
    if (!kv_present(&kv[a]))
      continue;
    switch (kv[a].type) {
    case TG_KV_STR:
      if (!(v = json_string(kv[a].s)))
        v = json_string("[not UTF-8]");
      break;
    case TG_KV_INT:
      v = json_integer(kv[a].i);
      break;
    case TG_KV_JSON:
      v = json_deep_copy(kv[a].j);
      break;
    }
    json_object_set_new(o, kv[a].key, v);
  }
  tg_log_json(level, event, o);
}

/* The fields of fmt and ap (NULL when fmt is NULL); a pack error becomes "log_format_error". */
static json_t *pack_fields(const char *fmt, va_list ap)
{
  json_error_t jerr;
  json_t *fields;
  if (!fmt)
    return NULL;
  fields = json_vpack_ex(&jerr, 0, fmt, ap);
  return fields ? fields : json_pack("{s:s}", "log_format_error", jerr.text);
}

void(tg_log)(tg_log_level level, const char *event, const char *fmt, ...)
{
  json_t *fields;
  va_list ap;

  if (level < min_level)
    return;
  va_start(ap, fmt);
  fields = pack_fields(fmt, ap);
  va_end(ap);
  emit(level, event, fields);
  json_decref(fields);
}

void tg_log_rate_init(tg_log_rate *r, uint64_t interval_ms)
{
  memset(r, 0, sizeof *r);
  r->interval_ms = interval_ms;
}

void(tg_log_every)(tg_log_rate *r, uint64_t now_ms, tg_log_level level, const char *event,
                   const char *fmt, ...)
{
  json_t *fields;
  va_list ap;

  r->counted++;
  r->level = level;
  r->event = event;
  if (r->wrote && now_ms - r->last_ms < r->interval_ms)
    return;
  r->wrote = 1;
  r->last_ms = now_ms;
  if (level >= min_level) {
    va_start(ap, fmt);
    fields = pack_fields(fmt, ap);
    va_end(ap);
    if (!fields)
      fields = json_object();
    json_object_set_new(fields, "count", json_integer((json_int_t)r->counted));
    emit(level, event, fields);
    json_decref(fields);
  }
  r->counted = 0;
}

void tg_log_rate_flush(tg_log_rate *r)
{
  if (!r->counted)
    return;
  tg_log(r->level, r->event, "{s:I}", "count", (json_int_t)r->counted);
  r->counted = 0;
}
