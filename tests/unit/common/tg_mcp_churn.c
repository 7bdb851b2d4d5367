/*
 * Unit tests for session churn in the MCP client (tg_mcp_session.c, "Lost sessions"): a server
 * that drops each session after N requests, with 4 tools/calls in flight. Every call succeeds and
 * runs exactly once, each lost session costs exactly one initialize, no call is sent twice on one
 * session; a server that drops every session at once ends each call with TG_ENOTFOUND after its
 * replay budget; session starts are capped per second. Server: scripted_http.h on 127.0.0.1,
 * which keeps its own log of every tools/call (request id, session, status).
 */
#include "tg_unit.h"

#include "scripted_http.h"
#include "tg_err.h"
#include "tg_http.h"
#include "tg_mcp.h"

#include <jansson.h>

#define MAX_SESSIONS 128
#define MAX_SENDS 512
#define IN_FLIGHT 4

typedef struct send_rec {
  long long id;
  int session; /* 1-based session number */
  int status;
} send_rec;

typedef struct env {
  uv_loop_t loop;
  sh_server srv;
  tg_http_client *http;
  tg_mcp_client *m;
  int drop_after;                     /* requests a session serves; the next gets 404; 0 = none */
  int served[MAX_SESSIONS + 1];       /* tools/calls answered per session */
  int dead[MAX_SESSIONS + 1];         /* the server dropped it */
  uint64_t init_at[MAX_SESSIONS + 1]; /* when each initialize arrived (ms) */
  int inits;
  send_rec sends[MAX_SENDS];
  int n_sends;
  int total, issued, done, ok, lost, other_err;
} env;

/* The session number in a request head ("Mcp-Session-Id: s-<n>"), 0 if none. sh_header reads
 * the recorded heads, which stop at SH_MAX_REQ: this reads the head at hand. */
static int session_of(const char *head)
{
  for (const char *p = head; (p = strstr(p, "\r\n")) != NULL;) {
    p += 2;
    if (strncasecmp(p, "Mcp-Session-Id: s-", 18) == 0)
      return atoi(p + 18);
  }
  return 0;
}

static char *respond(sh_server *s, const char *method, const char *target, const char *head,
                     const char *body)
{
  env *e = s->ctx;
  json_t *msg = json_loads(body, 0, NULL);
  const char *rpc = json_string_value(json_object_get(msg, "method"));
  long long id = (long long)json_integer_value(json_object_get(msg, "id"));
  char buf[512], hdr[64];
  int n;
  (void)target;
  if (strcmp(method, "DELETE") == 0) {
    json_decref(msg);
    return sh_resp(200, NULL, "");
  }
  if (rpc && strcmp(rpc, "initialize") == 0) {
    assert_true(e->inits < MAX_SESSIONS);
    assert_int_equal(session_of(head), 0); /* a new session is started without an id */
    e->init_at[++e->inits] = uv_hrtime() / 1000000u;
    snprintf(buf, sizeof buf,
             "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"protocolVersion\":\"2025-11-25\","
             "\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"s\",\"version\":\"1\"}}}",
             id);
    snprintf(hdr, sizeof hdr, "Mcp-Session-Id: s-%d\r\n", e->inits);
    json_decref(msg);
    return sh_resp(200, hdr, buf);
  }
  if (!json_object_get(msg, "id")) { /* notifications */
    json_decref(msg);
    return sh_resp(202, NULL, "");
  }
  json_decref(msg);
  n = session_of(head);
  assert_true(n >= 1 && n <= e->inits);
  assert_true(e->n_sends < MAX_SENDS);
  e->sends[e->n_sends].id = id;
  e->sends[e->n_sends].session = n;
  if (!e->dead[n] && e->drop_after > 0 && e->served[n] < e->drop_after) {
    e->served[n]++;
    e->sends[e->n_sends++].status = 200;
    snprintf(buf, sizeof buf,
             "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"content\":[{\"type\":\"text\","
             "\"text\":\"ok\"}]}}",
             id);
    return sh_resp(200, NULL, buf);
  }
  e->dead[n] = 1;
  e->sends[e->n_sends++].status = 404;
  return sh_resp(404, NULL,
                 "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32001,\"message\":\"Session not "
                 "found\"},\"id\":null}");
}

static void on_http_closed(void *arg)
{
  env *e = arg;
  sh_stop(&e->srv);
}

static void on_mcp_closed(void *arg)
{
  env *e = arg;
  tg_http_client_close(e->http, on_http_closed, e);
}

static void issue(env *e);

static void on_result(void *arg, const tg_mcp_error *err, json_t *result)
{
  env *e = arg;
  (void)result;
  e->done++;
  if (!err)
    e->ok++;
  else if (err->err == TG_ENOTFOUND && strcmp(err->message, "mcp session lost") == 0)
    e->lost++;
  else
    e->other_err++;
  if (e->issued < e->total)
    issue(e);
  else if (e->done == e->total)
    tg_mcp_close(e->m, on_mcp_closed, e);
}

static void issue(env *e)
{
  json_t *args = json_pack("{s:i}", "n", e->issued++);
  assert_int_equal(tg_mcp_call_tool(e->m, "echo", args, on_result, e), 0);
  json_decref(args);
}

/* Runs `total` calls, IN_FLIGHT at a time, against a server whose sessions serve drop_after
 * tools/calls each. */
static void run(env *e, int drop_after, int total)
{
  char url[64];
  tg_mcp_options opt = {0};
  memset(e, 0, sizeof *e);
  e->drop_after = drop_after;
  e->total = total;
  assert_int_equal(uv_loop_init(&e->loop), 0);
  assert_int_equal(sh_start(&e->srv, &e->loop, 0, respond, e), 0);
  {
    struct sockaddr_storage a;
    int len = sizeof a;
    uv_tcp_getsockname(&e->srv.tcp, (struct sockaddr *)&a, &len);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/mcp",
             ntohs(((struct sockaddr_in *)&a)->sin_port));
  }
  opt.url = url;
  assert_int_equal(tg_http_client_init(&e->http, &e->loop), 0);
  assert_int_equal(tg_mcp_client_new(&e->m, e->http, &opt), 0);
  for (int i = 0; i < IN_FLIGHT && e->issued < e->total; i++)
    issue(e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  assert_int_equal(e->done, total);
}

/* No request id is sent twice on one session. */
static void check_one_send_per_session(const env *e)
{
  for (int i = 0; i < e->n_sends; i++)
    for (int j = i + 1; j < e->n_sends; j++)
      assert_false(e->sends[i].id == e->sends[j].id && e->sends[i].session == e->sends[j].session);
}

static int dead_sessions(const env *e)
{
  int n = 0;
  for (int i = 1; i <= e->inits; i++)
    n += e->dead[i];
  return n;
}

/* Drops every 3 requests, 4 in flight: all succeed, each runs once, one initialize per loss. */
static void test_churn_every_3_all_succeed(void **state)
{
  env e;
  (void)state;
  run(&e, 3, 24);
  assert_int_equal(e.ok, 24);
  assert_int_equal(e.lost + e.other_err, 0);
  check_one_send_per_session(&e);
  assert_true(dead_sessions(&e) >= 1);
  assert_int_equal(e.inits, 1 + dead_sessions(&e));
  for (long long id = 1; id <= 64; id++) { /* every call id answered 200 at most once */
    int n200 = 0;
    for (int i = 0; i < e.n_sends; i++)
      n200 += e.sends[i].id == id && e.sends[i].status == 200;
    assert_true(n200 <= 1);
  }
  {
    int n200 = 0;
    for (int i = 0; i < e.n_sends; i++)
      n200 += e.sends[i].status == 200;
    assert_int_equal(n200, 24); /* and each of the 24 calls exactly once */
  }
}

/* A server that drops every session at its first request: each of the 4 calls is sent on 6
 * sessions (1 + MAX_REPLAYS) and ends with mcp session lost; one initialize per lost session. */
static void test_drop_every_session_spends_the_budget(void **state)
{
  env e;
  (void)state;
  run(&e, 0, IN_FLIGHT);
  assert_int_equal(e.lost, IN_FLIGHT);
  assert_int_equal(e.ok + e.other_err, 0);
  check_one_send_per_session(&e);
  assert_int_equal(e.n_sends, IN_FLIGHT * 6);
  assert_int_equal(e.inits, 6);
  assert_int_equal(dead_sessions(&e), 6);
}

/* Two calls per session: more than 20 session starts a second are spread out by the client-wide
 * budget, and still every call succeeds. */
static void test_session_starts_are_rate_limited(void **state)
{
  env e;
  (void)state;
  run(&e, 2, 48);
  assert_int_equal(e.ok, 48);
  check_one_send_per_session(&e);
  assert_int_equal(e.inits, 1 + dead_sessions(&e));
  assert_true(e.inits > 20);
  for (int i = 21; i <= e.inits; i++) /* the 21st start waits for the 1st to leave the window */
    assert_true(e.init_at[i] - e.init_at[i - 20] >= 900);
}

TG_UNIT_MAIN(cmocka_unit_test(test_churn_every_3_all_succeed),
             cmocka_unit_test(test_drop_every_session_spends_the_budget),
             cmocka_unit_test(test_session_starts_are_rate_limited))
