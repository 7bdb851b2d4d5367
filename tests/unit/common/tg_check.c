/*
 * Unit tests for common/tg_check.c: the scope rules and the pure decision without a network,
 * the 409 body's exact shape, and tg_check_start over the real Composio client against a scripted
 * HTTP server on 127.0.0.1 (list, look-ups of missing accounts, fallback, unavailability).
 * Also tg_check_fetch on its own: what it delivers, stop_on_refusal, on_failure, cancel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "scripted_http.h"
#include "tg_check.h"
#include "tg_err.h"

#include <jansson.h>

#define PORT 19211

/* ---- helpers ---- */

static char *dump(const json_t *v)
{
  return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void assert_json(const json_t *v, const char *expected)
{
  char *s = dump(v);
  assert_non_null(s);
  assert_string_equal(s, expected);
  free(s);
}

static void assert_scope_used(const char *tc_text, const char *used_text, const tg_check_row *rows,
                              size_t n, const char *expected)
{
  json_t *tc = tc_text ? json_loads(tc_text, JSON_DECODE_ANY, NULL) : NULL;
  json_t *used = used_text ? json_loads(used_text, JSON_DECODE_ANY, NULL) : NULL;
  json_t *scope;
  if (tc_text)
    assert_non_null(tc);
  if (used_text)
    assert_non_null(used);
  scope = tg_check_scope(tc, used, rows, n);
  assert_non_null(scope);
  assert_json(scope, expected);
  json_decref(scope);
  json_decref(tc);
  json_decref(used);
}

static void assert_scope(const char *tc_text, const tg_check_row *rows, size_t n,
                         const char *expected)
{
  assert_scope_used(tc_text, NULL, rows, n, expected);
}

static const tg_check_row ROWS[] = {
    {"gmail", "ACTIVE", "ca_g", "gmail"},
    {"slack", "EXPIRED", "ca_s", "slack"},
    {"notion", "ACTIVE", "ca_n", "notion"},
    {"github", "DISCONNECTED", NULL, "github"},
};

/* ---- scope ---- */

static void test_scope_providers_only(void **state)
{
  assert_scope("{\"providers\":[\"slack\",\"gmail\",\"slack\"]}", ROWS, 4, "[\"gmail\",\"slack\"]");
}

static void test_scope_tools_only(void **state)
{
  assert_scope("{\"tools\":[\"gmail.send_email\"]}", ROWS, 4, "[\"gmail\"]");
}

static void test_scope_union_dedupe(void **state)
{
  assert_scope("{\"providers\":[\"slack\"],\"tools\":[\"gmail.send_email\",\"slack.post\","
               "\"gmail.read\",\"jira.issue.create\"]}",
               ROWS, 4, "[\"gmail\",\"jira\",\"slack\"]");
}

static void test_scope_without_constraints(void **state)
{
  /* Neither constraints nor workflow providers: every row but DISCONNECTED ones, whatever its
   * status, so an EXPIRED provider stays in scope (and blocks) after its status is written back. */
  assert_scope(NULL, ROWS, 4, "[\"gmail\",\"notion\",\"slack\"]");
  assert_scope("null", ROWS, 4, "[\"gmail\",\"notion\",\"slack\"]");
  assert_scope_used(NULL, "[]", ROWS, 4, "[\"gmail\",\"notion\",\"slack\"]");
  assert_scope(NULL, NULL, 0, "[]");
}

static void test_scope_workflow_providers(void **state)
{
  /* The workflow's own providers, whatever rows exist: missing (jira) and DISCONNECTED (github)
   * ones included, ACTIVE rows it does not use left out. */
  assert_scope_used(NULL, "[\"github\",\"jira\",\"github\"]", ROWS, 4, "[\"github\",\"jira\"]");
  assert_scope_used("null", "[\"slack\"]", ROWS, 4, "[\"slack\"]");
  /* tool_constraints win over the workflow's providers. */
  assert_scope_used("{\"providers\":[\"gmail\"]}", "[\"slack\"]", ROWS, 4, "[\"gmail\"]");
}

static void test_scope_constraints_replace_rows(void **state)
{
  /* With tool_constraints, ACTIVE rows outside them are not in scope. */
  assert_scope("{\"providers\":[\"slack\"]}", ROWS, 4, "[\"slack\"]");
  assert_scope("{}", ROWS, 4, "[]");
}

static void test_scope_tools_without_dot_ignored(void **state)
{
  assert_scope("{\"tools\":[\"gmail\",\"send_email\",\".x\",\"github.create_issue\"]}", ROWS, 4,
               "[\"github\"]");
}

static void test_scope_non_array_fields_ignored(void **state)
{
  assert_scope("{\"providers\":\"gmail\",\"tools\":{\"a\":\"b.c\"}}", ROWS, 4, "[]");
  assert_scope("{\"providers\":[1,null,\"notion\",\"\"],\"tools\":[2,\"slack.x\"]}", ROWS, 4,
               "[\"notion\",\"slack\"]");
}

/* ---- decision ---- */

static tg_composio_account acct(const char *id, const char *status)
{
  tg_composio_account a = {0};
  a.id = id;
  a.status = status;
  return a;
}

static tg_check_result *decide(const char *scope_text, const tg_check_row *rows, size_t n_rows,
                               const tg_composio_account *a, size_t n_a)
{
  json_t *scope = json_loads(scope_text, 0, NULL);
  tg_check_result *r = NULL;
  assert_non_null(scope);
  assert_int_equal(tg_check_decide(scope, rows, n_rows, a, n_a, &r), 0);
  assert_non_null(r);
  json_decref(scope);
  return r;
}

static void test_decide_active_ok(void **state)
{
  tg_composio_account a[] = {acct("ca_g", "ACTIVE"), acct("ca_other", "EXPIRED")};
  tg_check_result *r = decide("[\"gmail\"]", ROWS, 4, a, 2);
  assert_int_equal(r->outcome, TG_CHECK_OK);
  assert_json(r->providers, "[]");
  assert_json(r->reasons, "{}");
  assert_json(r->observed, "[{\"provider\":\"gmail\",\"composio_account_id\":\"ca_g\","
                           "\"status\":\"ACTIVE\",\"status_reason\":null}]");
  tg_check_result_free(r);
}

static void test_decide_expired_at_composio(void **state)
{
  tg_composio_account a[] = {acct("ca_g", "EXPIRED"), acct("ca_n", "ACTIVE")};
  tg_check_result *r;
  a[0].status_reason = "OAuth refresh token expired";
  r = decide("[\"gmail\",\"notion\"]", ROWS, 4, a, 2);
  assert_int_equal(r->outcome, TG_CHECK_BLOCKED);
  assert_json(r->providers, "[\"gmail\"]");
  assert_json(r->reasons, "{\"gmail\":\"connected_account_status=EXPIRED\"}");
  assert_int_equal(json_array_size(r->observed), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(r->observed, 0), "status_reason")),
      "OAuth refresh token expired");
  tg_check_result_free(r);
}

static void test_decide_auth_refresh_required(void **state)
{
  tg_composio_account a[] = {acct("ca_g", "ACTIVE"), acct("ca_n", "EXPIRED")};
  tg_check_result *r;
  a[0].auth_refresh_required = 1;
  a[0].is_disabled = 1;           /* refresh comes first */
  a[1].auth_refresh_required = 1; /* status comes first */
  r = decide("[\"gmail\",\"notion\"]", ROWS, 4, a, 2);
  assert_int_equal(r->outcome, TG_CHECK_BLOCKED);
  assert_json(r->reasons, "{\"gmail\":\"auth_refresh_required\","
                          "\"notion\":\"connected_account_status=EXPIRED\"}");
  tg_check_result_free(r);
}

static void test_decide_is_disabled(void **state)
{
  tg_composio_account a[] = {acct("ca_n", "ACTIVE")};
  tg_check_result *r;
  a[0].is_disabled = 1;
  r = decide("[\"notion\"]", ROWS, 4, a, 1);
  assert_int_equal(r->outcome, TG_CHECK_BLOCKED);
  assert_json(r->reasons, "{\"notion\":\"is_disabled\"}");
  tg_check_result_free(r);
}

static void test_decide_not_connected_and_row_not_active(void **state)
{
  /* Composio says ACTIVE for ca_s, but our row says EXPIRED: our row decides, no lookup. */
  tg_composio_account a[] = {acct("ca_s", "ACTIVE")};
  tg_check_result *r = decide("[\"zoom\",\"slack\",\"github\"]", ROWS, 4, a, 1);
  assert_int_equal(r->outcome, TG_CHECK_BLOCKED);
  assert_json(r->providers, "[\"github\",\"slack\",\"zoom\"]");
  assert_json(r->reasons, "{\"zoom\":\"not_connected\","
                          "\"slack\":\"connected_account_status=EXPIRED\","
                          "\"github\":\"connected_account_status=DISCONNECTED\"}");
  assert_json(r->observed, "[]");
  tg_check_result_free(r);
}

static void test_decide_account_missing(void **state)
{
  tg_check_result *r = decide("[\"gmail\"]", ROWS, 4, NULL, 0);
  assert_int_equal(r->outcome, TG_CHECK_BLOCKED);
  assert_json(r->reasons, "{\"gmail\":\"connected_account_not_found\"}");
  /* Recorded for write-back as the status route records a 404. */
  assert_json(r->observed, "[{\"provider\":\"gmail\",\"composio_account_id\":\"ca_g\","
                           "\"status\":\"REVOKED\",\"status_reason\":"
                           "\"connected_account_not_found\"}]");
  tg_check_result_free(r);
}

static void test_decide_prefers_active_row(void **state)
{
  const tg_check_row rows[] = {{"gmail", "EXPIRED", "ca_old", "gmail"},
                               {"gmail", "ACTIVE", "ca_g", "gmail"}};
  tg_composio_account a[] = {acct("ca_g", "ACTIVE")};
  tg_check_result *r = decide("[\"gmail\"]", rows, 2, a, 1);
  assert_int_equal(r->outcome, TG_CHECK_OK);
  tg_check_result_free(r);
}

static void test_409_body_shape(void **state)
{
  tg_composio_account a[] = {acct("ca_g", "EXPIRED"), acct("ca_n", "ACTIVE")};
  tg_check_result *r;
  json_t *body;
  const char *key, *keys[4];
  json_t *v;
  size_t i = 0;
  const char *msg;

  a[1].auth_refresh_required = 1;
  r = decide("[\"notion\",\"gmail\"]", ROWS, 4, a, 2);
  body = tg_check_409_body(r);
  assert_non_null(body);
  assert_int_equal(json_object_size(body), 4);
  json_object_foreach(body, key, v)
  {
    keys[i++] = key;
  }
  assert_string_equal(keys[0], "error");
  assert_string_equal(keys[1], "message");
  assert_string_equal(keys[2], "providers");
  assert_string_equal(keys[3], "reasons");
  assert_string_equal(json_string_value(json_object_get(body, "error")), "oauth_refresh_required");
  msg = json_string_value(json_object_get(body, "message"));
  assert_non_null(msg);
  assert_non_null(strstr(msg, "gmail"));
  assert_non_null(strstr(msg, "notion"));
  json_object_del(body, "message");
  assert_json(body, "{\"error\":\"oauth_refresh_required\",\"providers\":[\"gmail\",\"notion\"],"
                    "\"reasons\":{\"notion\":\"auth_refresh_required\","
                    "\"gmail\":\"connected_account_status=EXPIRED\"}}");
  json_decref(body);
  tg_check_result_free(r);
}

/* ---- tg_check_start over a scripted Composio ---- */

enum mode {
  M_LIST_OK,         /* list has ca_g and ca_n ACTIVE */
  M_LIST_MISSING,    /* list has ca_g only; GET ca_n -> 404 */
  M_LIST_500,        /* list 500; GET ca_g ACTIVE, GET ca_n EXPIRED */
  M_ALL_FAIL,        /* list 503 Retry-After 9; GETs 500 */
  M_ALL_401,         /* everything 401 */
  M_LIST_500_GET_OK, /* list 500; GET ca_g 500; GET ca_n ACTIVE */
  M_LIST_429,        /* list 429 Retry-After 7; GETs ACTIVE */
  M_LIST_USERS,      /* list: ca_g EXPIRED claimed by "u 2", ca_n ACTIVE and ca_x by u1 */
};

typedef struct env {
  uv_loop_t loop;
  sh_server srv;
  tg_http_client *http;
  tg_composio *c;
  uv_timer_t watchdog;
  int timed_out;
  enum mode mode;
  int done;
  tg_check_result *r;
} env;

static char *account(const char *id, const char *status)
{
  char buf[512];
  snprintf(buf, sizeof buf,
           "{\"id\":\"%s\",\"status\":\"%s\",\"status_reason\":null,\"is_disabled\":false,"
           "\"toolkit\":{\"slug\":\"x\"},\"auth_config\":{\"id\":\"ac_1\"}}",
           id, status);
  return strdup(buf);
}

static char *respond(sh_server *s, const char *method, const char *target, const char *head,
                     const char *body)
{
  env *e = s->ctx;
  int is_list = strncmp(target, "/api/v3/connected_accounts?", 27) == 0;
  const char *id = strncmp(target, "/api/v3/connected_accounts/", 27) == 0 ? target + 27 : "";
  char buf[2048], *a, *b, *out;

  switch (e->mode) {
  case M_LIST_OK:
  case M_LIST_MISSING:
    if (is_list) {
      a = account("ca_g", "ACTIVE");
      b = account(e->mode == M_LIST_OK ? "ca_n" : "ca_unrelated", "ACTIVE");
      snprintf(buf, sizeof buf, "{\"items\":[%s,%s],\"next_cursor\":null}", a, b);
      free(a);
      free(b);
      return sh_resp(200, NULL, buf);
    }
    return sh_resp(404, NULL, "{\"error\":{\"message\":\"gone\",\"code\":600,\"status\":404}}");
  case M_LIST_500:
    if (is_list)
      return sh_resp(500, NULL, "{}");
    a = account(id, strcmp(id, "ca_n") == 0 ? "EXPIRED" : "ACTIVE");
    out = sh_resp(200, NULL, a);
    free(a);
    return out;
  case M_ALL_FAIL:
    return is_list ? sh_resp(503, "Retry-After: 9\r\n", "") : sh_resp(500, NULL, "{}");
  case M_ALL_401:
    return sh_resp(401, NULL, "{\"error\":{\"message\":\"Invalid API key\",\"status\":401}}");
  case M_LIST_500_GET_OK:
    if (is_list || strcmp(id, "ca_g") == 0)
      return sh_resp(500, NULL, "{}");
    a = account(id, "ACTIVE");
    out = sh_resp(200, NULL, a);
    free(a);
    return out;
  case M_LIST_USERS:
    if (is_list) {
      /* user_id is deprecated (composio-api.md 2.3): whatever it says, ids decide */
      snprintf(buf, sizeof buf,
               "{\"items\":[{\"id\":\"ca_x\",\"status\":\"ACTIVE\",\"user_id\":\"u1\"},"
               "{\"id\":\"ca_g\",\"status\":\"EXPIRED\",\"user_id\":\"u 2\"},"
               "{\"id\":\"ca_n\",\"status\":\"ACTIVE\",\"user_id\":\"u1\"}],"
               "\"next_cursor\":null}");
      return sh_resp(200, NULL, buf);
    }
    return sh_resp(500, NULL, "{}");
  case M_LIST_429:
    if (is_list)
      return sh_resp(429, "Retry-After: 7\r\n", "{}");
    a = account(id, "ACTIVE");
    out = sh_resp(200, NULL, a);
    free(a);
    return out;
  }
  return NULL;
}

static void on_watchdog(uv_timer_t *t)
{
  ((env *)t->data)->timed_out = 1;
}

static void env_init(env *e, enum mode mode, const char *base)
{
  memset(e, 0, sizeof *e);
  e->mode = mode;
  assert_int_equal(uv_loop_init(&e->loop), 0);
  assert_int_equal(sh_start(&e->srv, &e->loop, PORT, respond, e), 0);
  assert_int_equal(tg_http_client_init(&e->http, &e->loop), 0);
  assert_int_equal(
      tg_composio_new(&e->c, e->http, base ? base : "http://127.0.0.1:19211", "ak_k", 5000), 0);
  uv_timer_init(&e->loop, &e->watchdog);
  e->watchdog.data = e;
  uv_timer_start(&e->watchdog, on_watchdog, 10000, 0);
}

static void on_checked(void *arg, tg_check_result *r)
{
  env *e = arg;
  e->done++;
  e->r = r;
}

static void run_check(env *e, const char *scope_text, const tg_check_row *rows, size_t n)
{
  json_t *scope = json_loads(scope_text, 0, NULL);
  assert_non_null(scope);
  assert_int_equal(tg_check_start(e->c, &e->loop, "u1", scope, rows, n, on_checked, e, NULL), 0);
  json_decref(scope);           /* tg_check_start keeps its own copy */
  assert_int_equal(e->done, 0); /* never called back from inside tg_check_start */
  while (!e->done && !e->timed_out)
    uv_run(&e->loop, UV_RUN_ONCE);
  assert_false(e->timed_out);
  assert_non_null(e->r);
}

static void env_done(env *e)
{
  tg_check_result_free(e->r);
  tg_composio_free(e->c);
  tg_http_client_close(e->http, NULL, NULL);
  sh_stop(&e->srv);
  uv_close((uv_handle_t *)&e->watchdog, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  assert_int_equal(e->done, 1);
}

static void test_run_list_ok(void **state)
{
  env e;
  env_init(&e, M_LIST_OK, NULL);
  run_check(&e, "[\"gmail\",\"notion\"]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_OK);
  assert_int_equal(e.r->composio_calls, 1);
  assert_int_equal(e.srv.n_requests, 1);
  assert_non_null(strstr(e.srv.heads[0], "user_ids=u1&toolkit_slugs=gmail,notion&limit=100"));
  assert_int_equal(json_array_size(e.r->observed), 2);
  env_done(&e);
}

static void test_run_missing_account_looked_up(void **state)
{
  env e;
  env_init(&e, M_LIST_MISSING, NULL);
  run_check(&e, "[\"gmail\",\"notion\"]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_BLOCKED);
  assert_json(e.r->reasons, "{\"notion\":\"connected_account_not_found\"}");
  assert_int_equal(json_array_size(e.r->observed), 2); /* gmail ACTIVE, notion REVOKED */
  assert_int_equal(e.r->composio_calls, 2);
  assert_int_equal(e.srv.n_requests, 2);
  assert_non_null(strstr(e.srv.heads[1], "GET /api/v3/connected_accounts/ca_n HTTP/1.1"));
  env_done(&e);
}

static void test_run_list_fails_fallback_gets(void **state)
{
  env e;
  int got_g = 0, got_n = 0;
  env_init(&e, M_LIST_500, NULL);
  run_check(&e, "[\"gmail\",\"notion\"]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_BLOCKED);
  assert_json(e.r->providers, "[\"notion\"]");
  assert_json(e.r->reasons, "{\"notion\":\"connected_account_status=EXPIRED\"}");
  assert_int_equal(e.r->composio_calls, 3);
  assert_int_equal(e.srv.n_requests, 3);
  for (int i = 1; i < 3; i++) {
    got_g += strstr(e.srv.heads[i], "GET /api/v3/connected_accounts/ca_g ") != NULL;
    got_n += strstr(e.srv.heads[i], "GET /api/v3/connected_accounts/ca_n ") != NULL;
  }
  assert_int_equal(got_g, 1);
  assert_int_equal(got_n, 1);
  assert_int_equal(json_array_size(e.r->observed), 2);
  env_done(&e);
}

static void test_run_all_fail_unavailable(void **state)
{
  env e;
  env_init(&e, M_ALL_FAIL, NULL);
  run_check(&e, "[\"gmail\",\"notion\"]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_UNAVAILABLE);
  assert_int_equal(e.r->retry_after_ms, 9000);
  assert_non_null(e.r->detail);
  assert_int_equal(e.r->composio_calls, 3);
  assert_int_equal(e.r->broker_auth, 0); /* an outage is not a rejected key */
  assert_json(e.r->providers, "[]");
  env_done(&e);
}

static void test_run_unreachable_default_retry(void **state)
{
  env e;
  env_init(&e, M_ALL_FAIL, "http://127.0.0.1:19219");
  run_check(&e, "[\"gmail\"]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_UNAVAILABLE);
  assert_int_equal(e.r->retry_after_ms, 5000);
  assert_int_equal(e.srv.n_requests, 0);
  env_done(&e);
}

static void test_run_key_rejected(void **state)
{
  env e;
  env_init(&e, M_ALL_401, NULL);
  run_check(&e, "[\"gmail\"]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_UNAVAILABLE);
  assert_string_equal(e.r->detail, "composio rejected the API key");
  assert_int_equal(e.r->broker_auth, 1);
  assert_int_equal(e.r->retry_after_ms, 5000);
  env_done(&e);
}

/* A 429 on the list: no per-account GET follows; Composio's Retry-After is the wait. */
static void test_run_rate_limited_sends_no_gets(void **state)
{
  env e;
  env_init(&e, M_LIST_429, NULL);
  run_check(&e, "[\"gmail\",\"notion\"]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_UNAVAILABLE);
  assert_int_equal(e.r->composio_err, TG_ERATELIMIT);
  assert_int_equal(e.r->retry_after_ms, 7000);
  assert_int_equal(e.srv.n_requests, 1);
  env_done(&e);
}

static void test_run_partial_answer_unavailable(void **state)
{
  env e;
  env_init(&e, M_LIST_500_GET_OK, NULL);
  run_check(&e, "[\"gmail\",\"notion\"]", ROWS, 4);
  /* notion answered ACTIVE, gmail could not be checked: fail closed. */
  assert_int_equal(e.r->outcome, TG_CHECK_UNAVAILABLE);
  assert_int_equal(json_array_size(e.r->observed), 1);
  env_done(&e);
}

static void test_run_known_block_beats_outage(void **state)
{
  env e;
  env_init(&e, M_ALL_FAIL, NULL);
  run_check(&e, "[\"gmail\",\"zoom\"]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_BLOCKED);
  assert_json(e.r->reasons, "{\"zoom\":\"not_connected\"}");
  env_done(&e);
}

static void test_run_without_network(void **state)
{
  env e;
  env_init(&e, M_ALL_FAIL, NULL);
  run_check(&e, "[\"zoom\",\"slack\",\"github\"]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_BLOCKED);
  assert_json(e.r->providers, "[\"github\",\"slack\",\"zoom\"]");
  assert_int_equal(e.r->composio_calls, 0);
  assert_int_equal(e.srv.n_requests, 0);
  env_done(&e);
}

static void test_run_empty_scope(void **state)
{
  env e;
  env_init(&e, M_ALL_FAIL, NULL);
  run_check(&e, "[]", ROWS, 4);
  assert_int_equal(e.r->outcome, TG_CHECK_OK);
  assert_int_equal(e.srv.n_requests, 0);
  env_done(&e);
}

static void on_never(void *arg, tg_check_result *r)
{
  fail_msg("callback after tg_check_cancel");
}

/* Cancel while the list call (network path) or the zero timer (no-network path) is pending:
 * no callback, nothing leaks, the loop closes clean. */
static void test_cancel(void **state)
{
  env e;
  json_t *net = json_loads("[\"gmail\",\"notion\"]", 0, NULL);
  json_t *local = json_loads("[\"zoom\"]", 0, NULL);
  tg_check *k1 = NULL, *k2 = NULL;
  env_init(&e, M_LIST_500, NULL);
  assert_int_equal(tg_check_start(e.c, &e.loop, "u1", net, ROWS, 4, on_never, &e, &k1), 0);
  assert_int_equal(tg_check_start(e.c, &e.loop, "u1", local, ROWS, 4, on_never, &e, &k2), 0);
  assert_non_null(k1);
  assert_non_null(k2);
  assert_int_equal(tg_http_active(e.http), 1);
  tg_check_cancel(k1);
  tg_check_cancel(k2);
  assert_int_equal(tg_http_active(e.http), 0);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  json_decref(net);
  json_decref(local);
  e.done = 1; /* env_done expects one callback */
  env_done(&e);
}

static void test_run_bad_args(void **state)
{
  env e;
  json_t *obj = json_object();
  env_init(&e, M_ALL_FAIL, NULL);
  assert_int_equal(tg_check_start(e.c, &e.loop, "u1", obj, ROWS, 4, on_checked, &e, NULL),
                   TG_EINVAL);
  assert_int_equal(tg_check_start(e.c, &e.loop, NULL, obj, ROWS, 4, on_checked, &e, NULL),
                   TG_EINVAL);
  json_decref(obj);
  e.done = 1; /* nothing was started; env_done expects one callback */
  env_done(&e);
}

/* ---- tg_check_fetch: the network half on its own ---- */

/* What a fetch delivered, copied out of the borrowed tg_check_fetched. */
typedef struct fetch_seen {
  env *e;
  int done, failures, in_start;
  size_t n_ids, n_unknown, n_accts;
  int state[4];
  char acct_status[4][32];         /* status of the account reported for id i, "" if none */
  int calls, auth_rejected, first; /* first: 0 none, 1 list_err, 2 get_err */
  long retry_after_ms;
  tg_composio_result list_err, get_err;
} fetch_seen;

static void on_fetch_failure(void *arg, const tg_composio_result *res)
{
  fetch_seen *fs = arg;
  assert_int_not_equal(res->err, 0);
  assert_int_not_equal(res->err, TG_ENOTFOUND); /* a 404 is an answer */
  fs->failures++;
}

static void on_fetched(void *arg, const tg_check_fetched *is)
{
  fetch_seen *fs = arg;
  assert_false(fs->in_start);
  fs->done++;
  fs->e->done++;
  fs->n_ids = is->n_ids;
  fs->n_unknown = is->n_unknown;
  fs->n_accts = is->n_accts;
  for (size_t i = 0; i < is->n_ids && i < 4; i++) {
    fs->state[i] = is->state[i];
    fs->acct_status[i][0] = 0;
    for (size_t j = 0; j < is->n_accts; j++)
      if (strcmp(is->accts[j].id, is->ids[i]) == 0)
        snprintf(fs->acct_status[i], sizeof fs->acct_status[i], "%s", is->accts[j].status);
  }
  fs->calls = is->calls;
  fs->auth_rejected = is->auth_rejected;
  fs->retry_after_ms = is->retry_after_ms;
  fs->list_err = is->list_err;
  fs->get_err = is->get_err;
  fs->first = !is->first_err ? 0 : is->first_err == &is->list_err ? 1 : 2;
  if (fs->first == 1)
    assert_int_not_equal(is->list_err.err, 0);
  if (fs->first == 2)
    assert_int_equal(is->list_err.err, 0);
}

/* Runs one fetch for user u1 over ids (slugs gmail,notion) to its end. */
static void run_fetch(env *e, fetch_seen *fs, const char *const *ids, size_t n_ids, int stop)
{
  static const char *const slugs[] = {"gmail", "notion"};
  tg_check_fetch_req req = {.user_id = "u1",
                            .toolkit_slugs = slugs,
                            .n_slugs = 2,
                            .ids = ids,
                            .n_ids = n_ids,
                            .stop_on_refusal = stop,
                            .on_failure = on_fetch_failure};
  tg_check_fetch *f = NULL;
  memset(fs, 0, sizeof *fs);
  fs->e = e;
  fs->in_start = 1;
  assert_int_equal(tg_check_fetch_start(e->c, &e->loop, &req, on_fetched, fs, &f), 0);
  fs->in_start = 0;
  assert_non_null(f);
  assert_int_equal(fs->done, 0); /* never called back from inside tg_check_fetch_start */
  while (!fs->done && !e->timed_out)
    uv_run(&e->loop, UV_RUN_ONCE);
  assert_false(e->timed_out);
  assert_int_equal(fs->done, 1);
}

static const char *const IDS_GN[] = {"ca_g", "ca_n"};

static void test_fetch_list_answers_all(void **state)
{
  env e;
  fetch_seen fs;
  env_init(&e, M_LIST_OK, NULL);
  run_fetch(&e, &fs, IDS_GN, 2, 1);
  assert_int_equal(fs.n_ids, 2);
  assert_int_equal(fs.n_unknown, 0);
  assert_int_equal(fs.state[0], TG_CHECK_ID_ANSWERED);
  assert_int_equal(fs.state[1], TG_CHECK_ID_ANSWERED);
  assert_int_equal(fs.n_accts, 2); /* ca_unrelated is not kept: nobody asked for it */
  assert_string_equal(fs.acct_status[1], "ACTIVE");
  assert_int_equal(fs.calls, 1);
  assert_int_equal(e.srv.n_requests, 1);
  assert_non_null(strstr(e.srv.heads[0], "user_ids=u1&toolkit_slugs=gmail,notion&limit=100"));
  assert_int_equal(fs.first, 0);
  assert_int_equal(fs.failures, 0);
  assert_int_equal(fs.retry_after_ms, -1);
  env_done(&e);
}

static void test_fetch_missing_id_looked_up(void **state)
{
  env e;
  fetch_seen fs;
  env_init(&e, M_LIST_MISSING, NULL);
  run_fetch(&e, &fs, IDS_GN, 2, 1);
  assert_int_equal(fs.state[0], TG_CHECK_ID_ANSWERED);
  assert_int_equal(fs.state[1], TG_CHECK_ID_NOT_FOUND);
  assert_int_equal(fs.n_unknown, 0);
  assert_int_equal(fs.n_accts, 1);
  assert_int_equal(fs.calls, 2);
  assert_non_null(strstr(e.srv.heads[1], "GET /api/v3/connected_accounts/ca_n HTTP/1.1"));
  assert_int_equal(fs.first, 0); /* the 404 is an answer, not a failure */
  assert_int_equal(fs.failures, 0);
  env_done(&e);
}

static void test_fetch_list_fails_gets_answer(void **state)
{
  env e;
  fetch_seen fs;
  env_init(&e, M_LIST_500, NULL);
  run_fetch(&e, &fs, IDS_GN, 2, 1); /* a 500 is no refusal: the fallback runs */
  assert_int_equal(fs.n_unknown, 0);
  assert_string_equal(fs.acct_status[0], "ACTIVE");
  assert_string_equal(fs.acct_status[1], "EXPIRED");
  assert_int_equal(fs.calls, 3);
  assert_int_equal(e.srv.n_requests, 3);
  assert_int_equal(fs.first, 1);
  assert_int_equal(fs.list_err.err, TG_EHTTP);
  assert_int_equal(fs.list_err.http_status, 500);
  assert_int_equal(fs.get_err.err, 0);
  assert_int_equal(fs.failures, 1);
  env_done(&e);
}

static void test_fetch_all_fail(void **state)
{
  env e;
  fetch_seen fs;
  env_init(&e, M_ALL_FAIL, NULL);
  run_fetch(&e, &fs, IDS_GN, 2, 1);
  assert_int_equal(fs.n_unknown, 2);
  assert_int_equal(fs.state[0], TG_CHECK_ID_UNKNOWN);
  assert_int_equal(fs.n_accts, 0);
  assert_int_equal(fs.calls, 3);
  assert_int_equal(fs.failures, 3);
  assert_int_equal(fs.list_err.http_status, 503);
  assert_int_equal(fs.list_err.retry_after_ms, 9000);
  assert_int_equal(fs.get_err.err, TG_EHTTP);
  assert_int_equal(fs.get_err.http_status, 500);
  assert_int_equal(fs.retry_after_ms, 9000); /* the largest of all failures */
  assert_int_equal(fs.auth_rejected, 0);
  env_done(&e);
}

/* 429 on the list: with stop_on_refusal no GET follows; without, the GETs answer. */
static void test_fetch_rate_limit_stops_fallback(void **state)
{
  env e;
  fetch_seen fs;
  env_init(&e, M_LIST_429, NULL);
  run_fetch(&e, &fs, IDS_GN, 2, 1);
  assert_int_equal(e.srv.n_requests, 1);
  assert_int_equal(fs.calls, 1);
  assert_int_equal(fs.n_unknown, 2);
  assert_int_equal(fs.first, 1);
  assert_int_equal(fs.list_err.err, TG_ERATELIMIT);
  assert_int_equal(fs.retry_after_ms, 7000);
  assert_int_equal(fs.failures, 1);
  run_fetch(&e, &fs, IDS_GN, 2, 0);
  assert_int_equal(e.srv.n_requests, 4);
  assert_int_equal(fs.calls, 3);
  assert_int_equal(fs.n_unknown, 0);
  assert_int_equal(fs.list_err.err, TG_ERATELIMIT);
  e.done = 1; /* env_done expects one callback */
  env_done(&e);
}

/* 401: our key is rejected; stop_on_refusal saves the GETs. */
static void test_fetch_key_rejected(void **state)
{
  env e;
  fetch_seen fs;
  env_init(&e, M_ALL_401, NULL);
  run_fetch(&e, &fs, IDS_GN, 2, 1);
  assert_int_equal(e.srv.n_requests, 1);
  assert_int_equal(fs.auth_rejected, 1);
  assert_int_equal(fs.list_err.err, TG_EAUTH);
  assert_int_equal(fs.list_err.http_status, 401);
  assert_int_equal(fs.n_unknown, 2);
  run_fetch(&e, &fs, IDS_GN, 2, 0);
  assert_int_equal(e.srv.n_requests, 4);
  assert_int_equal(fs.auth_rejected, 1);
  assert_int_equal(fs.first, 1);
  assert_int_equal(fs.get_err.err, TG_EAUTH);
  assert_int_equal(fs.failures, 3);
  e.done = 1;
  env_done(&e);
}

/* One fetch for several users: one list call with user_ids=u1,u%202 (escaped, comma-joined),
 * items kept by account id only (ca_x is u1's too, but nobody asked for it). */
static void test_fetch_several_users(void **state)
{
  static const char *const users[] = {"u1", "u 2"};
  static const char *const ids[] = {"ca_n", "ca_g"};
  static const char *const slugs[] = {"gmail", "notion"};
  env e;
  fetch_seen fs = {0};
  tg_check_fetch_req req = {.user_ids = users,
                            .n_users = 2,
                            .toolkit_slugs = slugs,
                            .n_slugs = 2,
                            .ids = ids,
                            .n_ids = 2,
                            .on_failure = on_fetch_failure};
  env_init(&e, M_LIST_USERS, NULL);
  fs.e = &e;
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, &req, on_fetched, &fs, NULL), 0);
  while (!fs.done && !e.timed_out)
    uv_run(&e.loop, UV_RUN_ONCE);
  assert_int_equal(fs.done, 1);
  assert_int_equal(e.srv.n_requests, 1);
  assert_non_null(strstr(e.srv.heads[0], "GET /api/v3/connected_accounts?user_ids=u1,u%202"
                                         "&toolkit_slugs=gmail,notion&limit=100 "));
  assert_int_equal(fs.n_unknown, 0);
  assert_int_equal(fs.n_accts, 2);
  assert_string_equal(fs.acct_status[0], "ACTIVE");  /* ca_n */
  assert_string_equal(fs.acct_status[1], "EXPIRED"); /* ca_g */
  assert_int_equal(fs.failures, 0);
  env_done(&e);
}

/* An id given twice is asked twice (the caller dedupes if it wants to). */
static void test_fetch_ids_as_given(void **state)
{
  static const char *const ids[] = {"ca_g", "ca_g"};
  env e;
  fetch_seen fs;
  env_init(&e, M_LIST_500, NULL);
  run_fetch(&e, &fs, ids, 2, 0);
  assert_int_equal(e.srv.n_requests, 3);
  assert_int_equal(fs.state[0], TG_CHECK_ID_ANSWERED);
  assert_int_equal(fs.state[1], TG_CHECK_ID_ANSWERED);
  assert_int_equal(fs.n_accts, 2);
  env_done(&e);
}

/* No ids: no call, no client needed, the callback still comes later from the loop. */
static void test_fetch_no_ids(void **state)
{
  env e;
  fetch_seen fs = {0};
  tg_check_fetch_req req = {.user_id = "u1"};
  env_init(&e, M_ALL_FAIL, NULL);
  fs.e = &e;
  assert_int_equal(tg_check_fetch_start(NULL, &e.loop, &req, on_fetched, &fs, NULL), 0);
  assert_int_equal(fs.done, 0);
  while (!fs.done && !e.timed_out)
    uv_run(&e.loop, UV_RUN_ONCE);
  assert_int_equal(fs.done, 1);
  assert_int_equal(fs.n_ids, 0);
  assert_int_equal(fs.calls, 0);
  assert_int_equal(fs.first, 0);
  assert_int_equal(e.srv.n_requests, 0);
  env_done(&e);
}

/* No call can start (the HTTP client is closing): every id fails at once, the callback still
 * comes later, from the loop, with the start errors. */
static void test_fetch_nothing_starts(void **state)
{
  env e;
  fetch_seen fs;
  tg_http_client *http2 = NULL;
  tg_composio *c2 = NULL;
  tg_check_fetch_req req = {
      .user_id = "u1", .ids = IDS_GN, .n_ids = 2, .on_failure = on_fetch_failure};
  env_init(&e, M_LIST_OK, NULL);
  memset(&fs, 0, sizeof fs);
  fs.e = &e;
  assert_int_equal(tg_http_client_init(&http2, &e.loop), 0);
  assert_int_equal(tg_composio_new(&c2, http2, "http://127.0.0.1:19211", "ak_k", 5000), 0);
  tg_http_client_close(http2, NULL, NULL);
  assert_int_equal(tg_check_fetch_start(c2, &e.loop, &req, on_fetched, &fs, NULL), 0);
  assert_int_equal(fs.done, 0);
  assert_int_equal(fs.failures, 3); /* noted as they failed to start */
  while (!fs.done && !e.timed_out)
    uv_run(&e.loop, UV_RUN_ONCE);
  assert_int_equal(fs.done, 1);
  assert_int_equal(fs.n_unknown, 2);
  assert_int_equal(fs.calls, 0);
  assert_int_equal(fs.list_err.err, TG_ECANCELED);
  assert_int_equal(fs.list_err.http_status, 0);
  assert_int_equal(fs.get_err.err, TG_ECANCELED);
  assert_int_equal(e.srv.n_requests, 0);
  tg_composio_free(c2);
  env_done(&e);
}

static void on_fetch_never(void *arg, const tg_check_fetched *is)
{
  fail_msg("callback after tg_check_fetch_cancel");
}

/* Cancel with calls in flight, and on the timer path: no callback, nothing leaks. */
static void test_fetch_cancel(void **state)
{
  env e;
  tg_check_fetch_req net = {.user_id = "u1", .ids = IDS_GN, .n_ids = 2};
  tg_check_fetch_req local = {.user_id = "u1"};
  tg_check_fetch *f1 = NULL, *f2 = NULL;
  env_init(&e, M_LIST_500, NULL);
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, &net, on_fetch_never, &e, &f1), 0);
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, &local, on_fetch_never, &e, &f2), 0);
  assert_int_equal(tg_http_active(e.http), 1);
  tg_check_fetch_cancel(f1);
  tg_check_fetch_cancel(f2);
  tg_check_fetch_cancel(NULL);
  assert_int_equal(tg_http_active(e.http), 0);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  e.done = 1;
  env_done(&e);
}

static void test_fetch_bad_args(void **state)
{
  static const char *const empty[] = {""};
  static const char *const null_id[] = {NULL};
  env e;
  tg_check_fetch_req ok = {.user_id = "u1", .ids = IDS_GN, .n_ids = 2};
  tg_check_fetch_req r;
  env_init(&e, M_ALL_FAIL, NULL);
  assert_int_equal(tg_check_fetch_start(NULL, &e.loop, &ok, on_fetch_never, &e, NULL), TG_EINVAL);
  assert_int_equal(tg_check_fetch_start(e.c, NULL, &ok, on_fetch_never, &e, NULL), TG_EINVAL);
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, NULL, on_fetch_never, &e, NULL), TG_EINVAL);
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, &ok, NULL, &e, NULL), TG_EINVAL);
  r = ok;
  r.user_id = NULL;
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, &r, on_fetch_never, &e, NULL), TG_EINVAL);
  r = ok;
  r.user_ids = (const char *const[]){"u1", NULL};
  r.n_users = 2;
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, &r, on_fetch_never, &e, NULL), TG_EINVAL);
  r.user_ids = NULL;
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, &r, on_fetch_never, &e, NULL), TG_EINVAL);
  r = ok;
  r.ids = empty;
  r.n_ids = 1;
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, &r, on_fetch_never, &e, NULL), TG_EINVAL);
  r.ids = null_id;
  assert_int_equal(tg_check_fetch_start(e.c, &e.loop, &r, on_fetch_never, &e, NULL), TG_EINVAL);
  assert_int_equal(tg_http_active(e.http), 0);
  e.done = 1;
  env_done(&e);
}

/* tg_check_net_row: which row Composio must answer for. */
static void test_net_row(void **state)
{
  static const tg_check_row rows[] = {
      {"gmail", "EXPIRED", "ca_old", "gmail"},
      {"gmail", "ACTIVE", "ca_g", "gmail"},
      {"slack", "EXPIRED", "ca_s", "slack"},
      {"notion", "ACTIVE", NULL, "notion"},
  };
  assert_ptr_equal(tg_check_net_row(rows, 4, "gmail"), &rows[1]); /* the ACTIVE one */
  assert_null(tg_check_net_row(rows, 4, "slack"));                /* not ACTIVE */
  assert_null(tg_check_net_row(rows, 4, "notion"));               /* no account id */
  assert_null(tg_check_net_row(rows, 4, "zoom"));                 /* no row */
  assert_null(tg_check_net_row(rows, 4, NULL));
  assert_null(tg_check_net_row(rows, 1, "gmail")); /* only the EXPIRED row */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scope_providers_only),
      cmocka_unit_test(test_scope_tools_only),
      cmocka_unit_test(test_scope_union_dedupe),
      cmocka_unit_test(test_scope_without_constraints),
      cmocka_unit_test(test_scope_workflow_providers),
      cmocka_unit_test(test_scope_constraints_replace_rows),
      cmocka_unit_test(test_scope_tools_without_dot_ignored),
      cmocka_unit_test(test_scope_non_array_fields_ignored),
      cmocka_unit_test(test_decide_active_ok),
      cmocka_unit_test(test_decide_expired_at_composio),
      cmocka_unit_test(test_decide_auth_refresh_required),
      cmocka_unit_test(test_decide_is_disabled),
      cmocka_unit_test(test_decide_not_connected_and_row_not_active),
      cmocka_unit_test(test_decide_account_missing),
      cmocka_unit_test(test_decide_prefers_active_row),
      cmocka_unit_test(test_409_body_shape),
      cmocka_unit_test(test_run_list_ok),
      cmocka_unit_test(test_run_missing_account_looked_up),
      cmocka_unit_test(test_run_list_fails_fallback_gets),
      cmocka_unit_test(test_run_all_fail_unavailable),
      cmocka_unit_test(test_run_unreachable_default_retry),
      cmocka_unit_test(test_run_key_rejected),
      cmocka_unit_test(test_run_rate_limited_sends_no_gets),
      cmocka_unit_test(test_run_partial_answer_unavailable),
      cmocka_unit_test(test_run_known_block_beats_outage),
      cmocka_unit_test(test_run_without_network),
      cmocka_unit_test(test_run_empty_scope),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_run_bad_args),
      cmocka_unit_test(test_fetch_list_answers_all),
      cmocka_unit_test(test_fetch_missing_id_looked_up),
      cmocka_unit_test(test_fetch_list_fails_gets_answer),
      cmocka_unit_test(test_fetch_all_fail),
      cmocka_unit_test(test_fetch_rate_limit_stops_fallback),
      cmocka_unit_test(test_fetch_key_rejected),
      cmocka_unit_test(test_fetch_several_users),
      cmocka_unit_test(test_fetch_ids_as_given),
      cmocka_unit_test(test_fetch_no_ids),
      cmocka_unit_test(test_fetch_nothing_starts),
      cmocka_unit_test(test_fetch_cancel),
      cmocka_unit_test(test_fetch_bad_args),
      cmocka_unit_test(test_net_row),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
