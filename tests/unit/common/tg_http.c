/*
 * Unit tests for common/tg_http.c against scripted_http.h on 127.0.0.1: a buffered GET with
 * headers and Retry-After; tg_http_cancel called from a transfer's own done callback (allowed by
 * the header: the transfer is freed exactly once); closing the client with a transfer in flight
 * (its callback gets TG_ECANCELED once). Every test ends with uv_loop_close() == 0.
 */
#include "tg_unit.h"

#include "scripted_http.h"
#include "tg_err.h"
#include "tg_http.h"

typedef struct env {
  uv_loop_t loop;
  sh_server srv;
  tg_http_client *http;
  tg_http_transfer *t;
  char url[64];
  int done, err, closed;
  long status, retry_ms;
  char body[64];
} env;

static char *respond(sh_server *s, const char *method, const char *target, const char *head,
                     const char *body)
{
  if (strcmp(target, "/hang") == 0)
    return NULL; /* closes without answering: only used where the client closes first */
  return sh_resp(429, "Retry-After: 7\r\nX-Thing: yes\r\n", "slow down");
}

static int free_port(uv_loop_t *loop)
{
  uv_tcp_t t;
  struct sockaddr_in a;
  struct sockaddr_storage got;
  int len = sizeof got;
  uv_tcp_init(loop, &t);
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
  uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void env_init(env *e, const char *path)
{
  int port;
  memset(e, 0, sizeof *e);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  port = free_port(&e->loop);
  assert_int_equal(sh_start(&e->srv, &e->loop, port, respond, e), 0);
  assert_int_equal(tg_http_client_init(&e->http, &e->loop), 0);
  snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d%s", port, path);
}

static void on_closed(void *arg)
{
  ((env *)arg)->closed = 1;
}

static void env_done(env *e)
{
  if (e->http)
    tg_http_client_close(e->http, on_closed, e);
  sh_stop(&e->srv);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_true(e->closed);
  assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void on_done(void *arg, int err, const tg_http_response *resp)
{
  env *e = arg;
  e->done++;
  e->err = err;
  e->status = resp->status;
  snprintf(e->body, sizeof e->body, "%s", resp->body);
  if (resp->t) {
    const char *x = tg_http_header(resp->t, "x-thing");
    e->retry_ms = tg_http_retry_after_ms(resp->t);
    if (x)
      assert_string_equal(x, "yes");
  }
}

static void test_buffered_get_headers_retry_after(void **state)
{
  env e;
  tg_http_request req = {.url = NULL, .timeout_ms = 5000};
  env_init(&e, "/x");
  req.url = e.url;
  assert_int_equal(tg_http_send(e.http, &req, on_done, &e, NULL), 0);
  while (!e.done)
    uv_run(&e.loop, UV_RUN_ONCE);
  assert_int_equal(e.err, 0); /* an HTTP error status is not an error at this layer */
  assert_int_equal(e.status, 429);
  assert_string_equal(e.body, "slow down");
  assert_int_equal(e.retry_ms, 7000);
  env_done(&e);
}

static void on_done_cancel_self(void *arg, int err, const tg_http_response *resp)
{
  env *e = arg;
  e->done++;
  tg_http_cancel(e->t); /* the header allows it in done_cb: must not free t twice */
}

static void test_cancel_from_own_done_callback(void **state)
{
  env e;
  tg_http_request req = {.timeout_ms = 5000};
  env_init(&e, "/x");
  req.url = e.url;
  assert_int_equal(tg_http_send(e.http, &req, on_done_cancel_self, &e, &e.t), 0);
  while (!e.done)
    uv_run(&e.loop, UV_RUN_ONCE);
  /* The client stays usable (a double free would also have put the easy handle in the spare
   * pool twice). */
  e.done = 0;
  assert_int_equal(tg_http_send(e.http, &req, on_done, &e, NULL), 0);
  while (!e.done)
    uv_run(&e.loop, UV_RUN_ONCE);
  assert_int_equal(e.status, 429);
  env_done(&e);
}

static void test_close_with_transfer_in_flight(void **state)
{
  env e;
  tg_http_request req = {.timeout_ms = 5000};
  env_init(&e, "/hang");
  req.url = e.url;
  assert_int_equal(tg_http_send(e.http, &req, on_done, &e, NULL), 0);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  tg_http_client_close(e.http, on_closed, &e);
  e.http = NULL;
  assert_int_equal(e.done, 1);
  assert_int_equal(e.err, TG_ECANCELED);
  env_done(&e);
  assert_int_equal(e.done, 1); /* never called again */
}

TG_UNIT_MAIN(cmocka_unit_test(test_buffered_get_headers_retry_after),
             cmocka_unit_test(test_cancel_from_own_done_callback),
             cmocka_unit_test(test_close_with_transfer_in_flight))
