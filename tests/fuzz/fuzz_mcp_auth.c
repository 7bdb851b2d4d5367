/*
 * libFuzzer target for common/tg_mcp_auth_parse.c: arbitrary bytes as a WWW-Authenticate value,
 * as a redirect URL's query and as a metadata URL. Parsing must not crash or leak, a parsed
 * resource_metadata is a string, and a URL judged allowed also parses for discovery.
 */
#include "tg_mcp_auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *s = malloc(size + 1), *v;
  tg_mcp_auth_challenge_params p;
  if (!s)
    return 0;
  memcpy(s, data, size);
  s[size] = 0;
  if (tg_mcp_auth_parse_challenge(s, &p) == 0 && !p.bearer)
    abort();
  tg_mcp_auth_challenge_clear(&p);
  free(tg_mcp_auth_query_param(s, "code"));
  if ((v = tg_mcp_auth_query_param(s, "state")) && strlen(v) > size)
    abort();
  free(v);
  if (tg_mcp_auth_url_allowed(s)) {
    char *u[3];
    size_t n;
    if (tg_mcp_auth_as_urls(s, u, &n) != 0)
      abort();
    while (n)
      free(u[--n]);
  }
  free(s);
  return 0;
}
