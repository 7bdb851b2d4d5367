/* Unit tests for common/tg_log.c: the per-run values held for the log scrubber
 * (tg_log_hold_secret) and both ways of building a line, checked on real log lines captured from
 * stderr; rate-limited lines (tg_log_every). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tg_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs fn with stderr redirected to a temp file; returns what was written (malloc'd). */
static char *capture(void (*fn)(void))
{
  char path[64], *buf;
  FILE *f;
  long n;
  int saved;
  snprintf(path, sizeof path, "/tmp/tg_log_test_%ld.txt", (long)getpid());
  fflush(stderr);
  saved = dup(2);
  assert_true(saved >= 0);
  assert_non_null(f = fopen(path, "w+"));
  assert_true(dup2(fileno(f), 2) >= 0);
  fn();
  fflush(stderr);
  assert_true(dup2(saved, 2) >= 0);
  close(saved);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  rewind(f);
  buf = calloc(1, (size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  unlink(path);
  return buf;
}

static void log_lines(void)
{
  tg_info("probe", "{s:s, s:s}", "note", "value is pw-9 and pw-9-long", "other", "x");
}

static void test_held_secrets(void **state)
{
  char *out;
  (void)state;
  tg_log_init("test", TG_LOG_INFO);
  out = capture(log_lines);
  assert_non_null(strstr(out, "pw-9-long"));
  free(out);

  assert_int_equal(tg_log_hold_secret("pw-9"), 0);
  assert_int_equal(tg_log_hold_secret("pw-9-long"), 0);
  assert_int_equal(tg_log_hold_secret("pw-9"), 0); /* held twice */
  assert_int_equal(tg_log_hold_secret(""), 0);     /* ignored */
  out = capture(log_lines);
  assert_null(strstr(out, "pw-9"));
  assert_non_null(strstr(out, "value is [REDACTED] and [REDACTED]"));
  free(out);

  tg_log_release_secret("pw-9-long");
  tg_log_release_secret("pw-9"); /* still held once */
  out = capture(log_lines);
  assert_non_null(strstr(out, "value is [REDACTED] and [REDACTED]-long"));
  free(out);
  tg_log_release_secret("pw-9");
  tg_log_release_secret("never-held"); /* harmless */
  out = capture(log_lines);
  assert_non_null(strstr(out, "value is pw-9 and pw-9-long"));
  free(out);
}

static void log_escaped(void)
{
  tg_info("probe", "{s:s, s:{s:s}}", "msg", "say pa\"ss\\word here", "nested", "eek", "deep");
}

/* Held values are found before JSON escaping (a quote or backslash in the secret), and a
 * 1-byte secret cuts only field text: the line stays one valid JSON object. */
static void test_held_secrets_escaped_and_short(void **state)
{
  char *out;
  json_t *line;
  (void)state;
  tg_log_init("test", TG_LOG_INFO);
  assert_int_equal(tg_log_hold_secret("pa\"ss\\word"), 0);
  assert_int_equal(tg_log_hold_secret("e"), 0);
  out = capture(log_escaped);
  assert_null(strstr(out, "pa\\\"ss")); /* the escaped form is gone too */
  line = json_loads(out, 0, NULL);
  assert_non_null(line); /* one valid object despite the 1-byte secret */
  assert_string_equal(json_string_value(json_object_get(line, "event")), "probe");
  assert_string_equal(json_string_value(json_object_get(line, "level")), "info");
  assert_string_equal(json_string_value(json_object_get(line, "msg")),
                      "say [REDACTED] h[REDACTED]r[REDACTED]");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(line, "n[REDACTED]st[REDACTED]d"),
                                        "[REDACTED][REDACTED]k")),
      "d[REDACTED][REDACTED]p");
  json_decref(line);
  free(out);
  tg_log_release_secret("pa\"ss\\word");
  tg_log_release_secret("e");
}

static void log_paths(void)
{
  /* fast path: no secret-named key anywhere */
  tg_info("fast", "{s:s, s:i, s:[{s:s}], s:n}", "user_id", "u1", "n", 7, "list", "idempotency_key",
          "k1", "none");
  /* slow path: a secret-named key nested in an array of objects */
  tg_info("slow", "{s:s, s:[{s:s}]}", "user_id", "u2", "list", "Refresh_Token", "rt-value-1");
  /* slow path: a field named like the line's own keys (ours win) */
  tg_info("mine", "{s:s, s:s}", "event", "theirs", "x", "y");
  /* slow path: an event name that needs escaping */
  tg_info("quote\"d", "{s:s}", "x", "y");
  /* no fields at all */
  tg_info("bare", NULL);
}

/* Both ways of building a line (no secret-named key: serialised as is; otherwise from a
 * redacted copy) give one parseable JSON line per event with the same layout. */
static void test_line_paths(void **state)
{
  char *out, *line, *save = NULL;
  const char *events[] = {"fast", "slow", "mine", "quote\"d", "bare"};
  int i = 0;
  (void)state;
  tg_log_init("svc-a", TG_LOG_INFO);
  out = capture(log_paths);
  assert_null(strstr(out, "rt-value-1"));
  for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
    json_t *j = json_loads(line, 0, NULL);
    const char *k;
    json_t *v;
    int pos = 0;
    assert_non_null(j);
    assert_true(i < 5);
    /* ts, level, svc, event first, in that order, then the fields */
    json_object_foreach(j, k, v)
    {
      const char *want[] = {"ts", "level", "svc", "event"};
      if (pos < 4)
        assert_string_equal(k, want[pos]);
      pos++;
    }
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "svc")), "svc-a");
    assert_string_equal(json_string_value(json_object_get(j, "event")), events[i]);
    if (i == 0) {
      json_t *want = json_pack("{s:s, s:i, s:[{s:s}], s:n}", "user_id", "u1", "n", 7, "list",
                               "idempotency_key", "k1", "none");
      const char *wk;
      json_t *wv;
      assert_int_equal(json_object_size(j), 4 + json_object_size(want));
      json_object_foreach(want, wk, wv) assert_true(json_equal(json_object_get(j, wk), wv));
      json_decref(want);
    } else if (i == 1) {
      json_t *item = json_array_get(json_object_get(j, "list"), 0);
      assert_string_equal(json_string_value(json_object_get(item, "Refresh_Token")), "[REDACTED]");
      assert_string_equal(json_string_value(json_object_get(j, "user_id")), "u2");
    } else if (i == 2) {
      assert_string_equal(json_string_value(json_object_get(j, "x")), "y");
      assert_int_equal(json_object_size(j), 5);
    } else if (i == 4) {
      assert_int_equal(json_object_size(j), 4);
    }
    json_decref(j);
  }
  assert_int_equal(i, 5);
  free(out);
  tg_log_init("test", TG_LOG_INFO);
}

/* Each case logged twice: with tg_log_kv and with tg_log_json of the same object. */
static json_t *kv_blocked, *kv_nested;
static void log_kv_pairs(void)
{
  const tg_log_field plain[] = {
      {.key = "user_id", .type = TG_KV_STR, .s = "u1\"\n\xc3\xa9"},
      {.key = "run_id", .type = TG_KV_STR, .s = NULL}, /* left out */
      {.key = "http_status", .type = TG_KV_INT, .i = 202},
      {.key = "blocked_providers", .type = TG_KV_JSON, .j = kv_blocked},
      {.key = "none", .type = TG_KV_JSON, .j = NULL}, /* left out */
  };
  const tg_log_field secret_key[] = {{.key = "user_id", .type = TG_KV_STR, .s = "u2"},
                                     {.key = "access_token", .type = TG_KV_STR, .s = "tok-1"}};
  const tg_log_field held[] = {{.key = "note", .type = TG_KV_STR, .s = "has kv-held-99 in it"}};
  const tg_log_field repeated[] = {{.key = "a", .type = TG_KV_INT, .i = 1},
                                   {.key = "a", .type = TG_KV_INT, .i = 2}};
  const tg_log_field reserved[] = {{.key = "event", .type = TG_KV_STR, .s = "theirs"}};
  tg_log_kv(TG_LOG_INFO, "admission", plain, 5);
  tg_info("admission", "{s:s, s:i, s:O}", "user_id", "u1\"\n\xc3\xa9", "http_status", 202,
          "blocked_providers", kv_blocked);
  tg_log_kv(TG_LOG_WARN, "k2", secret_key, 2);
  tg_warn("k2", "{s:s, s:s}", "user_id", "u2", "access_token", "tok-1");
  tg_log_kv(TG_LOG_INFO, "k3", held, 1);
  tg_info("k3", "{s:s}", "note", "has kv-held-99 in it");
  tg_log_kv(TG_LOG_INFO, "k4", repeated, 2);
  tg_info("k4", "{s:i}", "a", 2);
  tg_log_kv(TG_LOG_INFO, "k5", reserved, 1);
  tg_info("k5", "{s:s}", "event", "theirs");
  const tg_log_field nested[] = {{.key = "list", .type = TG_KV_JSON, .j = kv_nested}};
  tg_log_kv(TG_LOG_INFO, "k6", nested, 1);
  tg_info("k6", "{s:O}", "list", kv_nested);
  tg_log_kv(TG_LOG_DEBUG, "below-level", plain, 5); /* not written */
}

/* tg_log_kv writes the very line tg_log_json writes for the same members (ts aside), on its
 * direct path and on every fallback (secret-named key, held secret, repeated key, reserved key). */
static void test_kv_lines(void **state)
{
  char *out, *line, *save = NULL;
  char *prev = NULL;
  int i = 0;
  (void)state;
  tg_log_init("svc-kv", TG_LOG_INFO);
  kv_blocked = json_pack("[s, {s:s}]", "gmail", "note", "x");
  kv_nested = json_pack("[s, {s:s}]", "gmail", "refresh_token", "rt-9");
  assert_int_equal(tg_log_hold_secret("kv-held-99"), 0);
  out = capture(log_kv_pairs);
  tg_log_release_secret("kv-held-99");
  assert_null(strstr(out, "tok-1"));
  assert_null(strstr(out, "rt-9"));
  assert_null(strstr(out, "kv-held-99"));
  assert_null(strstr(out, "below-level"));
  for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
    json_t *j = json_loads(line, 0, NULL);
    char *text;
    assert_non_null(j);
    assert_int_equal(json_object_del(j, "ts"), 0);
    text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (i % 2 == 1) {
      assert_string_equal(text, prev);
      free(prev);
      free(text);
      prev = NULL;
    } else {
      prev = text;
    }
  }
  assert_int_equal(i, 12);
  assert_null(prev);
  free(out);
  json_decref(kv_blocked);
  json_decref(kv_nested);
  tg_log_init("test", TG_LOG_INFO);
}

static void log_rated(void)
{
  tg_log_rate r;
  tg_log_rate_init(&r, 1000);
  for (uint64_t t = 0; t < 1000; t++) /* a flood: one line for the first event */
    tg_log_every(&r, 5000 + t, TG_LOG_WARN, "refused", "{s:s}", "peer", "10.0.0.1");
  tg_log_every(&r, 6000, TG_LOG_WARN, "refused", "{s:s}", "peer", "10.0.0.2"); /* the rest */
  tg_log_rate_flush(&r);                                                       /* none held */
  for (int i = 0; i < 5; i++)
    tg_log_every(&r, 6500, TG_LOG_WARN, "refused", NULL);
  tg_log_rate_flush(&r);
  tg_log_every(&r, 6600, TG_LOG_DEBUG, "quiet", NULL); /* below the level: counted, not written */
}

static void test_rate_limited_lines(void **state)
{
  (void)state;
  char *out = capture(log_rated);
  const char *l1 = strstr(out, "\"event\":\"refused\",\"peer\":\"10.0.0.1\",\"count\":1}\n");
  const char *l2 = strstr(out, "\"event\":\"refused\",\"peer\":\"10.0.0.2\",\"count\":1000}\n");
  const char *l3 = strstr(out, "\"event\":\"refused\",\"count\":5}\n");
  assert_non_null(l1);
  assert_non_null(l2);
  assert_non_null(l3);
  assert_true(l1 < l2 && l2 < l3);
  int lines = 0;
  for (const char *p = out; *p; p++)
    lines += *p == '\n';
  assert_int_equal(lines, 3);
  free(out);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_held_secrets), cmocka_unit_test(test_held_secrets_escaped_and_short),
      cmocka_unit_test(test_line_paths), cmocka_unit_test(test_kv_lines),
      cmocka_unit_test(test_rate_limited_lines)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
