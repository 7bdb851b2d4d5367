/*
 * tg_id: random identifiers from libsodium's randombytes (see tg_id.h).
 */
#include "tg_id.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void tg_random_id(char *buf, size_t bufsize, const char *prefix, size_t bytes)
{
  unsigned char raw[64];
  size_t plen = prefix ? strlen(prefix) : 0;
  if (bytes > sizeof raw)
    bytes = sizeof raw;
  if (bufsize < plen + 2 * bytes + 1) {
    if (bufsize)
      buf[0] = 0;
    return;
  }
  if (sodium_init() < 0)
    abort(); /* no usable randomness: never hand out guessable ids */
  randombytes_buf(raw, bytes);
  memcpy(buf, prefix ? prefix : "", plen);
  sodium_bin2hex(buf + plen, bufsize - plen, raw, bytes);
}
