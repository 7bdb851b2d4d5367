/*
 * libFuzzer target for common/tg_sse.c. The input's first byte picks a chunk size; the rest is
 * fed once in chunks of that size and once in one piece. Findings: crashes, leaks, UB, and any
 * difference between the two event sequences (events split across reads and chunk boundaries
 * must not change what is dispatched), plus the WHATWG invariants of each event: data is
 * NUL-terminated at data_len; type and id are set (a NUL byte sent inside a type is kept).
 */
#include "tg_err.h"
#include "tg_sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 64

typedef struct seen {
  size_t n;
  unsigned long long hash[MAX_EVENTS]; /* of type, id and data */
} seen;

static unsigned long long mix(unsigned long long h, const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return (h ^ 0xff) * 1099511628211ull; /* field separator */
}

static int on_event(void *arg, const tg_sse_event *ev)
{
  seen *s = arg;
  unsigned long long h = 1469598103934665603ull;
  if (!ev->data || ev->data[ev->data_len] != '\0' || !ev->type || !ev->id)
    abort();
  h = mix(h, ev->type, strlen(ev->type));
  h = mix(h, ev->id, strlen(ev->id));
  h = mix(h, ev->data, ev->data_len);
  if (s->n < MAX_EVENTS)
    s->hash[s->n] = h;
  s->n++;
  return 0;
}

/* Feeds data in chunks of chunk bytes; returns the feed's final code. */
static int feed(const uint8_t *data, size_t size, size_t chunk, seen *s)
{
  tg_sse_parser p;
  int rc = 0;
  memset(s, 0, sizeof *s);
  tg_sse_init(&p, 4096, on_event, s);
  for (size_t off = 0; off < size && rc == 0; off += chunk)
    rc = tg_sse_feed(&p, (const char *)data + off, size - off < chunk ? size - off : chunk);
  if (rc != 0 && rc != TG_ETOOBIG)
    abort();
  tg_sse_free(&p);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  seen a, b;
  int ra, rb;
  size_t chunk;
  if (size == 0)
    return 0;
  chunk = (size_t)(data[0] % 17) + 1;
  data++, size--;
  ra = feed(data, size, chunk, &a);
  rb = feed(data, size, size ? size : 1, &b);
  /* The cap is on one event's bytes, so both ways hit it at the same event, or neither does. */
  if (ra != rb || a.n != b.n)
    abort();
  for (size_t i = 0; i < a.n && i < MAX_EVENTS; i++)
    if (a.hash[i] != b.hash[i])
      abort();
  return 0;
}
