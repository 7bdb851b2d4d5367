/*
 * Unit tests for tg_mcp_error.not_delivered (and tg_http_response.not_sent beneath it): a
 * tools/call that certainly never reached the server (connection refused, on a fresh client
 * or on a ready session; canceled while the session was starting) says so, while a request
 * that went out and whose connection then closed without an answer does not. The worker
 * retries a non-idempotent tool only in the first case. Server: scripted_http.h on 127.0.0.1.
 */
#include "tg_unit.h"

#include "scripted_http.h"
#include "tg_err.h"
#include "tg_http.h"
#include "tg_mcp.h"

#include <jansson.h>

typedef struct env {
  uv_loop_t loop;
  sh_server srv;
  int srv_on;
  int port;
  tg_http_client *http;
  tg_mcp_client *m;
  int calls_seen; /* tools/call requests the server read */
  int done;
  int err;
  int not_delivered;
} env;

static char *respond(sh_server *s, const char *method, const char *target, const char *head,
                     const char *body)
{
  env *e = s->ctx;
  json_t *msg = json_loads(body, 0, NULL);
  const char *rpc = json_string_value(json_object_get(msg, "method"));
  json_int_t id = json_integer_value(json_object_get(msg, "id"));
  char buf[512];
  (void)method;
  (void)target;
  (void)head;
  if (rpc && strcmp(rpc, "initialize") == 0) {
    snprintf(buf, sizeof buf,
             "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"protocolVersion\":\"2025-11-25\","
             "\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"s\",\"version\":\"1\"}}}",
             (long long)id);
    json_decref(msg);
    return sh_resp(200, "Mcp-Session-Id: sess-1\r\n", buf);
  }
  if (!json_object_get(msg, "id")) { /* notifications */
    json_decref(msg);
    return sh_resp(202, NULL, "");
  }
  e->calls_seen++;
  json_decref(msg);
  if (e->calls_seen == 1 && strstr(body, "\"ok\"")) {
    snprintf(buf, sizeof buf,
             "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"content\":[{\"type\":\"text\","
             "\"text\":\"ok\"}]}}",
             (long long)id);
    return sh_resp(200, NULL, buf);
  }
  return NULL; /* read the whole request, then close without an answer */
}

static int free_port(uv_loop_t *loop)
{
  uv_tcp_t t;
  struct sockaddr_in addr;
  struct sockaddr_storage got;
  int len = sizeof got;
  uv_tcp_init(loop, &t);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len), 0);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void env_init(env *e, int with_server)
{
  char url[64];
  tg_mcp_options opt = {0};
  memset(e, 0, sizeof *e);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  e->port = free_port(&e->loop); /* nothing listens there unless with_server */
  if (with_server) {
    assert_int_equal(sh_start(&e->srv, &e->loop, e->port, respond, e), 0);
    e->srv_on = 1;
  }
  assert_int_equal(tg_http_client_init(&e->http, &e->loop), 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/mcp", e->port);
  opt.url = url;
  opt.request_timeout_ms = 5000;
  assert_int_equal(tg_mcp_client_new(&e->m, e->http, &opt), 0);
}

static void stop_server(env *e)
{
  if (e->srv_on) {
    sh_stop(&e->srv);
    e->srv_on = 0;
  }
}

static void env_done(env *e)
{
  tg_mcp_close(e->m, NULL, NULL);
  tg_http_client_close(e->http, NULL, NULL);
  stop_server(e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void on_result(void *arg, const tg_mcp_error *err, json_t *result)
{
  env *e = arg;
  (void)result;
  e->done++;
  e->err = err ? err->err : 0;
  e->not_delivered = err ? err->not_delivered : -1;
}

static void call_and_wait(env *e, const char *message)
{
  json_t *args = json_pack("{s:s}", "message", message);
  e->done = 0;
  assert_int_equal(tg_mcp_call_tool(e->m, "echo", args, on_result, e), 0);
  json_decref(args);
  while (!e->done)
    assert_true(uv_run(&e->loop, UV_RUN_ONCE) || e->done);
}

static void test_refused_fresh_client_not_delivered(void **state)
{
  env e;
  (void)state;
  env_init(&e, 0);
  call_and_wait(&e, "x");
  assert_int_equal(e.err, TG_EIO);
  assert_int_equal(e.not_delivered, 1); /* initialize was refused: the call never left */
  env_done(&e);
}

static void test_closed_after_request_may_be_delivered(void **state)
{
  env e;
  (void)state;
  env_init(&e, 1);
  call_and_wait(&e, "x");
  assert_int_equal(e.calls_seen, 1); /* the server read the whole call ... */
  assert_int_equal(e.err, TG_EIO);
  assert_int_equal(e.not_delivered, 0); /* ... so it may have run */
  env_done(&e);
}

static void test_refused_on_ready_session_not_delivered(void **state)
{
  env e;
  (void)state;
  env_init(&e, 1);
  call_and_wait(&e, "ok");
  assert_int_equal(e.err, 0);
  assert_true(tg_mcp_is_connected(e.m));
  stop_server(&e); /* the session stays "ready" on our side; the next POST is refused */
  uv_run(&e.loop, UV_RUN_NOWAIT);
  call_and_wait(&e, "ok");
  assert_int_equal(e.err, TG_EIO);
  assert_int_equal(e.not_delivered, 1);
  assert_int_equal(e.calls_seen, 1);
  env_done(&e);
}

static void test_cancel_while_session_starts_not_delivered(void **state)
{
  env e;
  tg_mcp_call *call = NULL;
  (void)state;
  env_init(&e, 1);
  assert_int_equal(tg_mcp_call_tool_ex(e.m, "echo", NULL, NULL, on_result, &e, &call), 0);
  assert_non_null(call);
  tg_mcp_cancel(call); /* initialize is in flight; the call waits for it */
  assert_int_equal(e.done, 1);
  assert_int_equal(e.err, TG_ECANCELED);
  assert_int_equal(e.not_delivered, 1);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  env_done(&e);
  assert_int_equal(e.calls_seen, 0);
}

TG_UNIT_MAIN(cmocka_unit_test(test_refused_fresh_client_not_delivered),
             cmocka_unit_test(test_closed_after_request_may_be_delivered),
             cmocka_unit_test(test_refused_on_ready_session_not_delivered),
             cmocka_unit_test(test_cancel_while_session_starts_not_delivered))
