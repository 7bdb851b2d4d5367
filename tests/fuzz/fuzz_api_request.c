/*
 * libFuzzer target for the API node's pure part and the egress allowlist: the input's first
 * line is parsed as TOOLGATE_EGRESS_ALLOW (tg_egress_new) and checked against a few addresses;
 * the rest as a JSON node config, which goes through tg_api_needs_of and tg_api_request_build
 * with a fixed set of credentials (every type), and as a response body through tg_api_output.
 * None may crash or leak; a built request's header lines never hold CR or LF, and an error
 * always comes with a message.
 */
#include "tg_api_request.h"
#include "tg_egress.h"
#include "tg_err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void egress(const char *allow)
{
  static const char *ips[] = {"127.0.0.1",       "10.1.2.3",      "169.254.169.254",
                              "::ffff:10.0.0.1", "fd00:ec2::254", "8.8.8.8"};
  tg_egress *p = NULL;
  char err[256] = "";
  if (tg_egress_new(&p, allow, err, sizeof err) != 0) {
    if (p || !*err)
      abort();
    return;
  }
  for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, ips[i], &((struct sockaddr_in *)&ss)->sin_addr) == 1)
      ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, ips[i], &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
      ss.ss_family = AF_INET6;
    (void)tg_egress_allows(p, (struct sockaddr *)&ss, "api.example.com");
  }
  tg_egress_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static json_t *creds;
  char *text = malloc(size + 1), *nl, err[256];
  json_t *config, *out;
  tg_api_needs n;
  tg_api_request r;
  if (!text)
    return 0;
  if (!creds)
    creds = json_loads("{\"crm\":{\"type\":\"bearer\",\"meta\":{},\"secret\":{\"token\":\"t\"}},"
                       "\"q\":{\"type\":\"api_key\",\"meta\":{\"in\":\"query\",\"param_name\":"
                       "\"k\"},\"secret\":{\"value\":\"v\"}},\"b\":{\"type\":\"basic\",\"meta\":"
                       "{},\"secret\":{\"username\":\"u\",\"password\":\"p\"}},\"oa\":{\"type\":"
                       "\"oauth2\",\"meta\":{},\"secret\":{},\"access_token\":\"a\"}}",
                       0, NULL);
  memcpy(text, data, size);
  text[size] = 0;
  nl = strchr(text, '\n');
  if (nl) {
    *nl = 0;
    egress(text);
  }
  config = json_loads(nl ? nl + 1 : text, JSON_DECODE_ANY, NULL);
  if (json_is_object(config)) {
    err[0] = 0;
    if (tg_api_needs_of(config, &n, err, sizeof err) == 0) {
      const char *auth = n.auth ? n.auth : n.by_host ? "crm" : NULL;
      int rc = tg_api_request_build(config, creds, auth, &r, err, sizeof err);
      if (rc == 0) {
        for (size_t i = 0; r.headers[i]; i++)
          if (strpbrk(r.headers[i], "\r\n"))
            abort();
        tg_api_request_free(&r);
      } else if (rc != TG_ENOMEM && !*err) {
        abort();
      }
      tg_api_needs_free(&n);
    } else if (!*err) {
      abort();
    }
  }
  json_decref(config);
  out = tg_api_output(200, "application/json", (const char *)data, size, 0, NULL);
  json_decref(out);
  free(text);
  return 0;
}
