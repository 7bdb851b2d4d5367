/*
 * libFuzzer target for common/tg_sse.c: the input's first byte picks a chunk size, the rest is
 * fed in chunks of that size (so every split point gets exercised), with a small event cap so
 * the TG_ETOOBIG path is reached. Every dispatched event must have data of the stated length
 * and, per WHATWG, no NUL-free-violating id. Crashes, leaks and UB are the findings.
 */
#include "tg_err.h"
#include "tg_sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int on_event(void *arg, const tg_sse_event *ev)
{
  size_t *n = arg;
  if (ev->data && strlen(ev->data) > ev->data_len)
    abort(); /* data_len must cover the whole NUL-terminated text */
  (*n)++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  tg_sse_parser p;
  size_t events = 0, chunk;
  if (size == 0)
    return 0;
  chunk = (size_t)(data[0] % 17) + 1;
  data++, size--;
  tg_sse_init(&p, 4096, on_event, &events);
  for (size_t off = 0; off < size; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    int rc = tg_sse_feed(&p, (const char *)data + off, n);
    if (rc != 0 && rc != TG_ETOOBIG)
      abort();
    if (rc)
      break;
  }
  tg_sse_free(&p);
  return 0;
}
