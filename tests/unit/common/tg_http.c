/*
 * Unit tests for common/tg_http.c against scripted_http.h on 127.0.0.1: a buffered GET with
 * headers and Retry-After; tg_http_cancel called from a transfer's own done callback (allowed by
 * the header: the transfer is freed exactly once); closing the client with a transfer in flight
 * (its callback gets TG_ECANCELED once); the egress policy refusing 169.254.169.254, 10.0.0.1 and
 * localhost (TG_EEGRESS, nothing sent) and, with 127.0.0.1 allowlisted, letting a request through
 * whether it names 127.0.0.1 or reaches it through CONNECT_TO. Every test ends with
 * uv_loop_close() == 0.
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

/* on_done, then stops the loop: a refused transfer completes in the timer phase, after which
 * a UV_RUN_ONCE would block in poll (the server's handle keeps the loop alive). */
static void on_done_stop(void *arg, int err, const tg_http_response *resp)
{
  on_done(arg, err, resp);
  uv_stop(&((env *)arg)->loop);
}

/* Sends GET url on e's client and runs the loop until it is done. */
static void get(env *e, const char *url)
{
  tg_http_request req = {.url = url, .timeout_ms = 5000};
  e->done = 0;
  e->err = 0;
  e->status = 0;
  assert_int_equal(tg_http_send(e->http, &req, on_done_stop, e, NULL), 0);
  while (!e->done)
    uv_run(&e->loop, UV_RUN_DEFAULT);
}

static void test_egress_policy(void **state)
{
  env e;
  tg_egress *deny, *allow;
  char err[128], port_url[96], mapped[96], map[96];
  const char *refused[] = {"http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
                           "http://localhost:1/", "http://[::ffff:127.0.0.1]:1/", NULL};
  int port;
  env_init(&e, "/x");
  port = atoi(strrchr(e.url, ':') + 1);
  assert_int_equal(tg_egress_new(&deny, NULL, err, sizeof err), 0);
  assert_int_equal(tg_egress_new(&allow, "127.0.0.1", err, sizeof err), 0);
  tg_http_client_set_egress(e.http, deny);
  for (const char **u = refused; *u; u++) {
    get(&e, *u);
    assert_int_equal(e.err, TG_EEGRESS);
    assert_int_equal(e.status, 0);
  }
  snprintf(port_url, sizeof port_url, "http://localhost:%d/x", port);
  get(&e, port_url);
  assert_int_equal(e.err, TG_EEGRESS);
  assert_int_equal(e.srv.n_requests, 0); /* nothing reached the server */

  /* CONNECT_TO: a public-looking name mapped to 127.0.0.1 is checked on 127.0.0.1. */
  snprintf(map, sizeof map, "api.crm.example:80:127.0.0.1:%d", port);
  assert_int_equal(tg_http_client_set_connect_to(e.http, map), 0);
  snprintf(mapped, sizeof mapped, "http://api.crm.example/x");
  get(&e, mapped);
  assert_int_equal(e.err, TG_EEGRESS);

  tg_http_client_set_egress(e.http, allow);
  get(&e, e.url);
  assert_int_equal(e.err, 0);
  assert_int_equal(e.status, 429);
  get(&e, mapped);
  assert_int_equal(e.err, 0);
  assert_int_equal(e.status, 429);
  get(&e, "http://10.0.0.1/");
  assert_int_equal(e.err, TG_EEGRESS);
  assert_int_equal(e.srv.n_requests, 2);
  assert_int_equal(tg_http_client_set_connect_to(e.http, "nocolons"), TG_EINVAL);
  assert_int_equal(tg_http_client_set_ca_file(e.http, "/nonexistent/ca.pem"), 0);
  env_done(&e);
  tg_egress_free(deny);
  tg_egress_free(allow);
}

TG_UNIT_MAIN(cmocka_unit_test(test_buffered_get_headers_retry_after),
             cmocka_unit_test(test_egress_policy),
             cmocka_unit_test(test_cancel_from_own_done_callback),
             cmocka_unit_test(test_close_with_transfer_in_flight))
