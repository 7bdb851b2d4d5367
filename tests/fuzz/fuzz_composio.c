/*
 * libFuzzer target for the decoding of Composio responses (common/tg_composio.c) through its
 * public API: an in-process tg_httpd on 127.0.0.1 answers the call with the fuzz input as the
 * body. Input: byte 0 picks the call (list, get, link, MCP URL, delete), byte 1 the HTTP status
 * (200, 201, 400, 401, 404, 429, 500) and whether a Retry-After header is sent; the rest is the
 * body. Later requests of the same call (list pagination) get an empty last page. curl keeps
 * one connection alive across inputs, so no socket is opened per input. Every call must end
 * with exactly one callback; a 2xx result with err == 0 must carry the promised fields.
 */
#include "tg_composio.h"
#include "tg_err.h"
#include "tg_http.h"
#include "tg_httpd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t loop;
static tg_httpd *srv;
static tg_http_client *http;
static tg_composio *comp;
static const uint8_t *body;
static size_t body_len;
static int status, retry_hdr, requests, done;

static void on_req(tg_httpd_req *r, void *arg)
{
  static const char *const ra[] = {"Retry-After: 3", "Content-Type: application/json", NULL};
  static const char *const ct[] = {"Content-Type: application/json", NULL};
  (void)arg;
  if (requests++ == 0) {
    tg_httpd_respond(r, status, retry_hdr ? ra : ct, (const char *)body, body_len);
    return;
  }
  static const char last[] = "{\"items\":[],\"next_cursor\":null}";
  tg_httpd_respond(r, 200, ct, last, sizeof last - 1);
}

static void check_res(const tg_composio_result *res)
{
  if (!res || (res->err != 0 && !res->message))
    abort(); /* a failure always says why */
  if (res->err == 0 && (res->http_status < 200 || res->http_status > 299))
    abort();
  done++;
}

static void on_list(void *arg, const tg_composio_result *res, const tg_composio_account *items,
                    size_t n)
{
  (void)arg;
  check_res(res);
  for (size_t i = 0; i < n; i++)
    if (!items[i].id || !items[i].status)
      abort();
}

static void on_acct(void *arg, const tg_composio_result *res, const tg_composio_account *a)
{
  (void)arg;
  check_res(res);
  if (res->err == 0 && (!a || !a->id || !a->status))
    abort();
}

static void on_link(void *arg, const tg_composio_result *res, const char *url, const char *ca,
                    const char *exp)
{
  (void)arg, (void)ca, (void)exp;
  check_res(res);
  if (res->err == 0 && !url)
    abort();
}

static void on_url(void *arg, const tg_composio_result *res, const char *url)
{
  (void)arg;
  check_res(res);
  if (res->err == 0 && !url)
    abort();
}

static void on_done(void *arg, const tg_composio_result *res)
{
  (void)arg;
  check_res(res);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  char base[64];
  (void)argc, (void)argv;
  uv_loop_init(&loop);
  if (tg_httpd_start(&srv, &loop, "127.0.0.1", 0, NULL, on_req, NULL) ||
      tg_http_client_init(&http, &loop))
    abort();
  snprintf(base, sizeof base, "http://127.0.0.1:%d", tg_httpd_port(srv));
  if (tg_composio_new(&comp, http, base, "ak_fuzz_key_0123", 5000))
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const int statuses[] = {200, 201, 400, 401, 404, 429, 500};
  static const char *const slugs[] = {"gmail", "slack"};
  int rc = 0;
  if (size < 2)
    return 0;
  status = statuses[(data[1] & 0x7f) % 7];
  retry_hdr = data[1] >> 7;
  body = data + 2;
  body_len = size - 2;
  if (done > 1) /* a callback after the previous input's check: called twice */
    abort();
  requests = done = 0;
  switch (data[0] % 5) {
  case 0:
    rc = tg_composio_list_accounts(comp, "alice", slugs, 2, on_list, NULL);
    break;
  case 1:
    rc = tg_composio_get_account(comp, "ca_1", on_acct, NULL);
    break;
  case 2:
    rc = tg_composio_create_link(comp, "ac_1", "alice", "http://x/cb", on_link, NULL);
    break;
  case 3:
    rc = tg_composio_generate_mcp_url(comp, "srv", "alice", (data[0] & 8) ? "ca_1" : NULL, on_url,
                                      NULL);
    break;
  default:
    rc = tg_composio_delete_account(comp, "ca_1", on_done, NULL);
  }
  if (rc)
    abort();
  while (!done)
    uv_run(&loop, UV_RUN_ONCE);
  /* Let anything still queued run (a second callback would come from a later loop turn). */
  for (int i = 0; i < 4; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  if (done != 1)
    abort();
  return 0;
}
