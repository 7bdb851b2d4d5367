/*
 * tg_json: json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) on yajl_gen (see tg_json.h).
 *
 * The walk is recursive and bounded by yajl_gen's own depth limit (128): past it yajl_gen
 * reports an error and the whole value goes to json_dumps instead. Reals are formatted here
 * with jansson's rules (jansson 2.14 src/strconv.c jsonp_dtostr) and passed to yajl_gen_number
 * as text, so they come out as jansson writes them.
 */
#include "tg_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

/* jansson's real format: "%.17g", ".0" when it would read back as an integer, and the exponent
 * without '+' or leading zeros. Returns the length, or -1. */
static int real_text(char *buf, size_t size, double d)
{
  int n = snprintf(buf, size, "%.17g", d);
  size_t len;
  char *start, *end;
  if (n < 0 || (size_t)n >= size)
    return -1;
  len = (size_t)n;
  if (!strchr(buf, '.') && !strchr(buf, 'e')) {
    if (len + 3 >= size)
      return -1;
    memcpy(buf + len, ".0", 3);
    len += 2;
  }
  if ((start = strchr(buf, 'e')) != NULL) {
    start++;
    end = start + 1;
    if (*start == '-')
      start++;
    while (*end == '0')
      end++;
    if (end != start) {
      memmove(start, end, len - (size_t)(end - buf) + 1);
      len -= (size_t)(end - start);
    }
  }
  return (int)len;
}

static int gen(yajl_gen g, const json_t *v)
{
  const char *k;
  json_t *m;
  size_t i;
  char num[64];
  int n;

  switch (json_typeof(v)) {
  case JSON_OBJECT:
    if (yajl_gen_map_open(g) != yajl_gen_status_ok)
      return -1;
    json_object_foreach((json_t *)v, k, m)
    {
      if (yajl_gen_string(g, (const unsigned char *)k, strlen(k)) != yajl_gen_status_ok ||
          gen(g, m) != 0)
        return -1;
    }
    return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
  case JSON_ARRAY:
    if (yajl_gen_array_open(g) != yajl_gen_status_ok)
      return -1;
    json_array_foreach(v, i, m)
    {
      if (gen(g, m) != 0)
        return -1;
    }
    return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;
  case JSON_STRING:
    return yajl_gen_string(g, (const unsigned char *)json_string_value(v), json_string_length(v)) ==
                   yajl_gen_status_ok
               ? 0
               : -1;
  case JSON_INTEGER:
    return yajl_gen_integer(g, (long long)json_integer_value(v)) == yajl_gen_status_ok ? 0 : -1;
  case JSON_REAL:
    if ((n = real_text(num, sizeof num, json_real_value(v))) < 0)
      return -1;
    return yajl_gen_number(g, num, (size_t)n) == yajl_gen_status_ok ? 0 : -1;
  case JSON_TRUE:
  case JSON_FALSE:
    return yajl_gen_bool(g, json_is_true(v)) == yajl_gen_status_ok ? 0 : -1;
  case JSON_NULL:
    return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
  }
  return -1;
}

char *tg_json_dumps(const json_t *v, size_t *len)
{
  yajl_gen g;
  const unsigned char *buf;
  size_t n = 0;
  char *out = NULL;
  int ok = 0;

  if (len)
    *len = 0;
  if (!v)
    return NULL;
  if ((g = yajl_gen_alloc(NULL)) != NULL) {
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    if (gen(g, v) == 0 && yajl_gen_get_buf(g, &buf, &n) == yajl_gen_status_ok &&
        (out = malloc(n + 1)) != NULL) {
      memcpy(out, buf, n);
      out[n] = 0;
      ok = 1;
    }
    yajl_gen_free(g);
  }
  if (!ok) { /* too deep, not UTF-8, or no memory: jansson decides */
    free(out);
    if (!(out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
      return NULL;
    n = strlen(out);
  }
  if (len)
    *len = n;
  return out;
}

size_t tg_json_utf8_cut(const char *s, size_t n)
{
  size_t i = n, want;
  unsigned char lead;
  while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
    i--; /* back over at most 3 continuation bytes */
  if (i == 0)
    return 0; /* nothing but continuation bytes: no whole character */
  lead = (unsigned char)s[i - 1];
  want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return n - (i - 1) < want ? i - 1 : n;
}
