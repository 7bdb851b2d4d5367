/*
 * Differential libFuzzer target for common/tg_json.c: whatever jansson parses from the input
 * (any value, NUL in strings allowed) must be written by tg_json_dumps exactly as
 * json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes it, length included.
 */
#include "tg_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  char *ours, *ref;
  size_t n = 0;
  if (!v)
    return 0;
  ours = tg_json_dumps(v, &n);
  ref = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!ours || !ref || n != strlen(ref) || memcmp(ours, ref, n + 1) != 0)
    abort();
  free(ours);
  free(ref);
  json_decref(v);
  return 0;
}
