/*
 * Unit tests for common/tg_composio.c: the real client, over tg_http, against a scripted HTTP
 * server on 127.0.0.1 (tests/unit/common/scripted_http.h). Every test closes its loop clean.
 */
#include "tg_unit.h"

#include "scripted_http.h"
#include "tg_composio.h"
#include "tg_err.h"
#include "tg_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <jansson.h>
#include <time.h>

#define PORT 19210
#define DEAD_PORT 19219 /* nothing listens here */

typedef struct env {
  uv_loop_t loop;
  sh_server srv;
  tg_http_client *http;
  tg_composio *c;
  uv_timer_t watchdog;
  int timed_out;
  int done; /* callbacks seen */
  /* what the last callback saw */
  int err;
  long status, retry_ms;
  int http_calls;
  char message[256];
  char s1[512], s2[256], s3[256];
  size_t n;
  char ids[8][32];
  int refresh_required, disabled;
} env;

static void on_watchdog(uv_timer_t *t)
{
  env *e = t->data;
  e->timed_out = 1;
}

static void env_init(env *e, sh_respond_fn respond, const char *base)
{
  memset(e, 0, sizeof *e);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  assert_int_equal(sh_start(&e->srv, &e->loop, PORT, respond, e), 0);
  assert_int_equal(tg_http_client_init(&e->http, &e->loop), 0);
  assert_int_equal(tg_composio_new(&e->c, e->http, base ? base : "http://127.0.0.1:19210/",
                                   "ak_secret_test_key", 5000),
                   0);
  uv_timer_init(&e->loop, &e->watchdog);
  e->watchdog.data = e;
  uv_timer_start(&e->watchdog, on_watchdog, 10000, 0);
}

static void env_wait(env *e, int callbacks)
{
  while (e->done < callbacks && !e->timed_out)
    uv_run(&e->loop, UV_RUN_ONCE);
  assert_false(e->timed_out);
}

static void env_done(env *e)
{
  tg_composio_free(e->c);
  tg_http_client_close(e->http, NULL, NULL);
  sh_stop(&e->srv);
  uv_close((uv_handle_t *)&e->watchdog, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void keep_result(env *e, const tg_composio_result *r)
{
  e->done++;
  e->err = r->err;
  e->status = r->http_status;
  e->retry_ms = r->retry_after_ms;
  e->http_calls = r->http_calls;
  snprintf(e->message, sizeof e->message, "%s", r->message ? r->message : "");
}

static void on_list(void *arg, const tg_composio_result *r, const tg_composio_account *a, size_t n)
{
  env *e = arg;
  keep_result(e, r);
  e->n = n;
  for (size_t i = 0; i < n && i < 8; i++)
    snprintf(e->ids[i], sizeof e->ids[i], "%s", a[i].id);
}

static void on_get(void *arg, const tg_composio_result *r, const tg_composio_account *a)
{
  env *e = arg;
  keep_result(e, r);
  e->n = a != NULL;
  if (a) {
    snprintf(e->s1, sizeof e->s1, "%s|%s|%s|%s|%s", a->id, a->status,
             a->status_reason ? a->status_reason : "-", a->toolkit_slug ? a->toolkit_slug : "-",
             a->auth_config_id ? a->auth_config_id : "-");
    e->refresh_required = a->auth_refresh_required;
    e->disabled = a->is_disabled;
  }
}

static void on_link(void *arg, const tg_composio_result *r, const char *redirect_url,
                    const char *ca_id, const char *expires_at)
{
  env *e = arg;
  keep_result(e, r);
  snprintf(e->s1, sizeof e->s1, "%s", redirect_url ? redirect_url : "(null)");
  snprintf(e->s2, sizeof e->s2, "%s", ca_id ? ca_id : "(null)");
  snprintf(e->s3, sizeof e->s3, "%s", expires_at ? expires_at : "(null)");
}

static void on_url(void *arg, const tg_composio_result *r, const char *url)
{
  env *e = arg;
  keep_result(e, r);
  snprintf(e->s1, sizeof e->s1, "%s", url ? url : "(null)");
}

static void on_deleted(void *arg, const tg_composio_result *r)
{
  keep_result(arg, r);
}

static void on_never(void *arg, const tg_composio_result *r, const tg_composio_account *a)
{
  fail_msg("callback after tg_composio_free");
}

static char *account_json(const char *id, const char *status)
{
  char buf[512];
  snprintf(buf, sizeof buf,
           "{\"id\":\"%s\",\"status\":\"%s\",\"status_reason\":null,\"is_disabled\":false,"
           "\"toolkit\":{\"slug\":\"gmail\"},\"auth_config\":{\"id\":\"ac_1\"},"
           "\"user_id\":\"u1\",\"state\":{\"authScheme\":\"OAUTH2\",\"val\":{\"status\":\"%s\"}}}",
           id, status, status);
  return strdup(buf);
}

/* ---- paging ---- */

static char *respond_pages(sh_server *s, const char *m, const char *target, const char *h,
                           const char *b)
{
  char *a1, *a2, *out, body[2048];
  const char *cursor = strstr(target, "cursor=");
  if (!cursor) {
    a1 = account_json("ca_1", "ACTIVE");
    a2 = account_json("ca_2", "EXPIRED");
    snprintf(body, sizeof body, "{\"items\":[%s,%s],\"next_cursor\":\"c/1\",\"total_pages\":3}", a1,
             a2);
  } else if (strncmp(cursor, "cursor=c%2F1", 12) == 0) {
    a1 = account_json("ca_3", "ACTIVE");
    a2 = account_json("ca_4", "ACTIVE");
    snprintf(body, sizeof body, "{\"items\":[%s,%s],\"next_cursor\":\"c2\",\"total_pages\":3}", a1,
             a2);
  } else {
    a1 = account_json("ca_5", "INACTIVE");
    a2 = NULL;
    snprintf(body, sizeof body, "{\"items\":[%s],\"next_cursor\":null,\"total_pages\":3}", a1);
  }
  free(a1);
  free(a2);
  out = sh_resp(200, NULL, body);
  return out;
}

static void test_list_pages(void **state)
{
  env e;
  const char *slugs[] = {"gmail", "slack"};
  env_init(&e, respond_pages, NULL);
  assert_int_equal(tg_composio_list_accounts(e.c, "user 1&x", slugs, 2, on_list, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, 0);
  assert_int_equal(e.n, 5);
  assert_string_equal(e.ids[0], "ca_1");
  assert_string_equal(e.ids[2], "ca_3");
  assert_string_equal(e.ids[4], "ca_5");
  assert_int_equal(e.http_calls, 3);
  assert_int_equal(e.srv.n_requests, 3);
  for (int i = 0; i < 3; i++) {
    assert_string_equal(sh_header(&e.srv, i, "x-api-key"), "ak_secret_test_key");
    assert_string_equal(sh_header(&e.srv, i, "Accept"), "application/json");
    assert_non_null(strstr(e.srv.heads[i],
                           "GET /api/v3/connected_accounts?user_ids=user%201%26x&toolkit_slugs="
                           "gmail,slack&limit=100"));
  }
  assert_null(strstr(e.srv.heads[0], "cursor="));
  assert_non_null(strstr(e.srv.heads[1], "&cursor=c%2F1 "));
  assert_non_null(strstr(e.srv.heads[2], "&cursor=c2 "));
  env_done(&e);
}

static char *respond_loop_cursor(sh_server *s, const char *m, const char *t, const char *h,
                                 const char *b)
{
  return sh_resp(200, NULL, "{\"items\":[],\"next_cursor\":\"same\"}");
}

static void test_list_repeated_cursor(void **state)
{
  env e;
  env_init(&e, respond_loop_cursor, NULL);
  assert_int_equal(tg_composio_list_accounts(e.c, "u1", NULL, 0, on_list, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_EPROTO);
  assert_int_equal(e.n, 0);
  /* page 1 gives "same", page 2 repeats it: stop there. */
  assert_int_equal(e.srv.n_requests, 2);
  env_done(&e);
}

static int endless_pages;

static char *respond_endless(sh_server *s, const char *m, const char *t, const char *h,
                             const char *b)
{
  char body[128];
  snprintf(body, sizeof body, "{\"items\":[],\"next_cursor\":\"p%d\"}", ++endless_pages);
  return sh_resp(200, NULL, body);
}

/* A server whose cursors never repeat and never end: the client stops at 100 pages. */
static void test_list_page_cap(void **state)
{
  env e;
  endless_pages = 0;
  env_init(&e, respond_endless, NULL);
  assert_int_equal(tg_composio_list_accounts(e.c, "u1", NULL, 0, on_list, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_EPROTO);
  assert_int_equal(endless_pages, 100);
  assert_int_equal(e.http_calls, 100);
  env_done(&e);
}

static char *respond_bad_item(sh_server *s, const char *m, const char *t, const char *h,
                              const char *b)
{
  return sh_resp(200, NULL, "{\"items\":[{\"status\":\"ACTIVE\"}],\"next_cursor\":null}");
}

static void test_list_item_without_id(void **state)
{
  env e;
  env_init(&e, respond_bad_item, NULL);
  assert_int_equal(tg_composio_list_accounts(e.c, "u1", NULL, 0, on_list, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_EPROTO);
  env_done(&e);
}

/* ---- error mapping ---- */

static char *respond_401(sh_server *s, const char *m, const char *t, const char *h, const char *b)
{
  return sh_resp(401, NULL,
                 "{\"error\":{\"message\":\"Invalid API key: ak_****\",\"code\":10401,"
                 "\"slug\":\"HTTP_Unauthorized\",\"status\":401}}");
}

static void test_401(void **state)
{
  env e;
  env_init(&e, respond_401, NULL);
  assert_int_equal(tg_composio_list_accounts(e.c, "u1", NULL, 0, on_list, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_EAUTH);
  assert_int_equal(e.status, 401);
  assert_int_equal(e.retry_ms, -1);
  assert_string_equal(e.message, "Invalid API key: ak_****");
  assert_null(strstr(e.message, "ak_secret_test_key"));
  env_done(&e);
}

static char *respond_429(sh_server *s, const char *m, const char *t, const char *h, const char *b)
{
  return sh_resp(429, "Retry-After: 7\r\n",
                 "{\"message\":\"Rate limit exceeded. Limit: 10000 requests per 1 minutes\"}");
}

static void test_429(void **state)
{
  env e;
  env_init(&e, respond_429, NULL);
  assert_int_equal(tg_composio_get_account(e.c, "ca_1", on_get, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_ERATELIMIT);
  assert_int_equal(e.status, 429);
  assert_int_equal(e.retry_ms, 7000);
  assert_int_equal(e.n, 0);
  assert_string_equal(e.message, "Rate limit exceeded. Limit: 10000 requests per 1 minutes");
  env_done(&e);
}

static char *respond_503_date(sh_server *s, const char *m, const char *t, const char *h,
                              const char *b)
{
  char hdr[128], date[64];
  time_t when = time(NULL) + 60;
  struct tm tm;
  gmtime_r(&when, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  snprintf(hdr, sizeof hdr, "Retry-After: %s\r\n", date);
  return sh_resp(503, hdr, "");
}

static void test_503_retry_after_date(void **state)
{
  env e;
  env_init(&e, respond_503_date, NULL);
  assert_int_equal(tg_composio_get_account(e.c, "ca_1", on_get, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_EHTTP);
  assert_int_equal(e.status, 503);
  assert_in_range(e.retry_ms, 55000, 60000);
  assert_non_null(strstr(e.message, "503"));
  env_done(&e);
}

static char *respond_404(sh_server *s, const char *m, const char *t, const char *h, const char *b)
{
  return sh_resp(404, NULL, "{\"error\":{\"message\":\"not found\",\"code\":600,\"status\":404}}");
}

static void test_get_404(void **state)
{
  env e;
  env_init(&e, respond_404, NULL);
  assert_int_equal(tg_composio_get_account(e.c, "ca_gone", on_get, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_ENOTFOUND);
  assert_non_null(strstr(e.srv.heads[0], "GET /api/v3/connected_accounts/ca_gone HTTP/1.1"));
  env_done(&e);
}

static char *respond_garbage(sh_server *s, const char *m, const char *t, const char *h,
                             const char *b)
{
  return sh_resp(200, NULL, "{\"id\": \"ca_1\", status");
}

static void test_garbage_json(void **state)
{
  env e;
  env_init(&e, respond_garbage, NULL);
  assert_int_equal(tg_composio_get_account(e.c, "ca_1", on_get, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_EPROTO);
  assert_int_equal(e.status, 200);
  assert_int_equal(e.n, 0);
  env_done(&e);
}

static char *respond_account(sh_server *s, const char *m, const char *t, const char *h,
                             const char *b)
{
  return sh_resp(200, NULL,
                 "{\"id\":\"ca_9\",\"status\":\"ACTIVE\",\"status_reason\":\"fine\","
                 "\"is_disabled\":true,\"toolkit\":{\"slug\":\"slack\"},"
                 "\"auth_config\":{\"id\":\"ac_7\"},\"state\":{\"authScheme\":\"OAUTH2\","
                 "\"val\":{\"status\":\"ACTIVE\",\"auth_refresh_required\":true}}}");
}

static void test_get_decodes(void **state)
{
  env e;
  env_init(&e, respond_account, NULL);
  assert_int_equal(tg_composio_get_account(e.c, "ca_9", on_get, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, 0);
  assert_string_equal(e.s1, "ca_9|ACTIVE|fine|slack|ac_7");
  assert_int_equal(e.refresh_required, 1);
  assert_int_equal(e.disabled, 1);
  env_done(&e);
}

/* ---- link, generate, delete ---- */

static char *respond_link(sh_server *s, const char *m, const char *t, const char *h, const char *b)
{
  return sh_resp(201, NULL,
                 "{\"link_token\":\"lk_1\",\"redirect_url\":\"https://connect.composio.dev/link/"
                 "lk_1\",\"expires_at\":\"2026-01-01T00:10:00Z\",\"connected_account_id\":"
                 "\"ca_new\"}");
}

static void test_link(void **state)
{
  env e;
  json_t *body;
  env_init(&e, respond_link, NULL);
  assert_int_equal(
      tg_composio_create_link(e.c, "ac_1", "u1", "http://127.0.0.1/cb?x=1", on_link, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, 0);
  assert_int_equal(e.status, 201);
  assert_string_equal(e.s1, "https://connect.composio.dev/link/lk_1");
  assert_string_equal(e.s2, "ca_new");
  assert_string_equal(e.s3, "2026-01-01T00:10:00Z");
  assert_non_null(strstr(e.srv.heads[0], "POST /api/v3/connected_accounts/link HTTP/1.1"));
  assert_string_equal(sh_header(&e.srv, 0, "Content-Type"), "application/json");
  assert_string_equal(sh_header(&e.srv, 0, "x-api-key"), "ak_secret_test_key");
  body = json_loads(e.srv.bodies[0], 0, NULL);
  assert_non_null(body);
  assert_string_equal(json_string_value(json_object_get(body, "auth_config_id")), "ac_1");
  assert_string_equal(json_string_value(json_object_get(body, "user_id")), "u1");
  assert_string_equal(json_string_value(json_object_get(body, "callback_url")),
                      "http://127.0.0.1/cb?x=1");
  json_decref(body);
  env_done(&e);
}

static char *respond_generate(sh_server *s, const char *m, const char *t, const char *h,
                              const char *b)
{
  return sh_resp(200, NULL,
                 "{\"mcp_url\":\"https://mcp/x\",\"user_ids_url\":[\"https://mcp/x?user_id=u1\"],"
                 "\"connected_account_urls\":[\"https://mcp/x?connected_account_id=ca_1\"]}");
}

static void test_generate(void **state)
{
  env e;
  json_t *body;
  env_init(&e, respond_generate, NULL);
  assert_int_equal(tg_composio_generate_mcp_url(e.c, "srv_1", "u1", "ca_1", on_url, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, 0);
  assert_string_equal(e.s1, "https://mcp/x?connected_account_id=ca_1");
  assert_int_equal(tg_composio_generate_mcp_url(e.c, "srv_1", "u1", NULL, on_url, &e), 0);
  env_wait(&e, 2);
  assert_int_equal(e.err, 0);
  assert_string_equal(e.s1, "https://mcp/x?user_id=u1");
  assert_non_null(strstr(e.srv.heads[0], "POST /api/v3/mcp/servers/generate HTTP/1.1"));
  body = json_loads(e.srv.bodies[0], 0, NULL);
  assert_non_null(body);
  assert_string_equal(json_string_value(json_object_get(body, "mcp_server_id")), "srv_1");
  assert_string_equal(json_string_value(json_array_get(json_object_get(body, "user_ids"), 0)),
                      "u1");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(body, "connected_account_ids"), 0)), "ca_1");
  assert_true(json_is_true(json_object_get(body, "managed_auth_by_composio")));
  json_decref(body);
  body = json_loads(e.srv.bodies[1], 0, NULL);
  assert_null(json_object_get(body, "connected_account_ids"));
  json_decref(body);
  env_done(&e);
}

static char *respond_generate_empty(sh_server *s, const char *m, const char *t, const char *h,
                                    const char *b)
{
  return sh_resp(200, NULL, "{\"mcp_url\":\"https://mcp/x\",\"user_ids_url\":[]}");
}

static void test_generate_without_url(void **state)
{
  env e;
  env_init(&e, respond_generate_empty, NULL);
  assert_int_equal(tg_composio_generate_mcp_url(e.c, "srv_1", "u1", NULL, on_url, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_EPROTO);
  assert_string_equal(e.s1, "(null)");
  env_done(&e);
}

static char *respond_delete(sh_server *s, const char *m, const char *t, const char *h,
                            const char *b)
{
  return strcmp(m, "DELETE") == 0 ? sh_resp(200, NULL, "{\"success\":true}")
                                  : sh_resp(405, NULL, "{}");
}

static void test_delete(void **state)
{
  env e;
  env_init(&e, respond_delete, NULL);
  assert_int_equal(tg_composio_delete_account(e.c, "ca_1", on_deleted, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, 0);
  assert_non_null(strstr(e.srv.heads[0], "DELETE /api/v3/connected_accounts/ca_1 HTTP/1.1"));
  env_done(&e);
}

/* ---- transport and lifetime ---- */

static void test_connection_refused(void **state)
{
  env e;
  env_init(&e, respond_404, "http://127.0.0.1:19219");
  assert_int_equal(tg_composio_get_account(e.c, "ca_1", on_get, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, TG_EIO);
  assert_int_equal(e.status, 0);
  assert_int_equal(e.retry_ms, -1);
  env_done(&e);
}

static void test_free_cancels_silently(void **state)
{
  env e;
  env_init(&e, respond_account, NULL);
  assert_int_equal(tg_composio_get_account(e.c, "ca_1", on_never, &e), 0);
  assert_int_equal(tg_composio_get_account(e.c, "ca_2", on_never, &e), 0);
  tg_composio_free(e.c);
  e.c = NULL;
  assert_int_equal(tg_http_active(e.http), 0);
  env_done(&e);
}

/* One debug line per call, and the API key appears nowhere in the log output. */
static void test_key_never_logged(void **state)
{
  env e;
  char path[] = "/tmp/tg_composio_logXXXXXX", buf[8192];
  int fd = mkstemp(path), saved = dup(2);
  ssize_t n;
  assert_true(fd >= 0 && saved >= 0);
  tg_log_init("test", TG_LOG_DEBUG);
  fflush(stderr);
  dup2(fd, 2);
  env_init(&e, respond_401, NULL);
  assert_int_equal(tg_composio_list_accounts(e.c, "u1", NULL, 0, on_list, &e), 0);
  env_wait(&e, 1);
  env_done(&e);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  tg_log_init("test", TG_LOG_INFO);
  n = pread(fd, buf, sizeof buf - 1, 0);
  close(fd);
  unlink(path);
  assert_true(n > 0);
  buf[n] = 0;
  assert_non_null(strstr(buf, "\"composio_call\""));
  assert_non_null(strstr(buf, "\"status\":401"));
  assert_null(strstr(buf, "ak_secret_test_key"));
}

/* Several users in one list call: comma-joined, each value escaped (a comma inside an id
 * included), the same paging. */
static void test_list_users(void **state)
{
  env e;
  const char *users[] = {"alice", "bob smith", "c,d", "\xc3\xa9"};
  const char *slugs[] = {"gmail", "slack"};
  env_init(&e, respond_pages, NULL);
  assert_int_equal(tg_composio_list_accounts_users(e.c, users, 4, slugs, 2, on_list, &e), 0);
  env_wait(&e, 1);
  assert_int_equal(e.err, 0);
  assert_int_equal(e.n, 5);
  assert_int_equal(e.srv.n_requests, 3);
  for (int i = 0; i < 3; i++)
    assert_non_null(strstr(e.srv.heads[i], "GET /api/v3/connected_accounts?user_ids=alice,"
                                           "bob%20smith,c%2Cd,%C3%A9&toolkit_slugs=gmail,slack"
                                           "&limit=100"));
  assert_non_null(strstr(e.srv.heads[2], "&cursor=c2 "));
  env_done(&e);
}

static void test_list_query(void **state)
{
  const char *users[] = {"u1", "x&y=z", NULL};
  const char *slugs[] = {"a b"};
  char *q = (char *)"untouched";
  assert_int_equal(tg_composio_list_query(users, 2, slugs, 1, &q), 0);
  assert_string_equal(q, "user_ids=u1,x%26y%3Dz&toolkit_slugs=a%20b&limit=100");
  free(q);
  assert_int_equal(tg_composio_list_query(users, 1, NULL, 0, &q), 0);
  assert_string_equal(q, "user_ids=u1&limit=100");
  free(q);
  /* no user at all would list the whole project: refused */
  assert_int_equal(tg_composio_list_query(users, 0, NULL, 0, &q), TG_EINVAL);
  assert_null(q);
  assert_int_equal(tg_composio_list_query(NULL, 1, NULL, 0, &q), TG_EINVAL);
  assert_int_equal(tg_composio_list_query(users, 3, NULL, 0, &q), TG_EINVAL); /* a NULL id */
  assert_int_equal(tg_composio_list_query(users, 1, NULL, 1, &q), TG_EINVAL);
  assert_null(q);
}

static void test_bad_args(void **state)
{
  env e;
  tg_composio *c2 = NULL;
  env_init(&e, respond_404, NULL);
  assert_int_equal(tg_composio_new(&c2, e.http, "http://x", "bad\r\nkey", 1000), TG_EINVAL);
  assert_null(c2);
  assert_int_equal(tg_composio_get_account(e.c, "", on_get, &e), TG_EINVAL);
  assert_int_equal(tg_composio_list_accounts(e.c, NULL, NULL, 0, on_list, &e), TG_EINVAL);
  assert_int_equal(tg_composio_list_accounts_users(e.c, NULL, 0, NULL, 0, on_list, &e), TG_EINVAL);
  assert_int_equal(
      tg_composio_list_accounts_users(NULL, (const char *[]){"u"}, 1, NULL, 0, on_list, &e),
      TG_EINVAL);
  assert_int_equal(tg_http_active(e.http), 0);
  env_done(&e);
  assert_int_equal(e.done, 0);
}

TG_UNIT_MAIN(cmocka_unit_test(test_list_pages), cmocka_unit_test(test_list_users),
             cmocka_unit_test(test_list_query), cmocka_unit_test(test_list_repeated_cursor),
             cmocka_unit_test(test_list_page_cap), cmocka_unit_test(test_list_item_without_id),
             cmocka_unit_test(test_401), cmocka_unit_test(test_429),
             cmocka_unit_test(test_503_retry_after_date), cmocka_unit_test(test_get_404),
             cmocka_unit_test(test_garbage_json), cmocka_unit_test(test_get_decodes),
             cmocka_unit_test(test_link), cmocka_unit_test(test_generate),
             cmocka_unit_test(test_generate_without_url), cmocka_unit_test(test_delete),
             cmocka_unit_test(test_connection_refused),
             cmocka_unit_test(test_free_cancels_silently), cmocka_unit_test(test_key_never_logged),
             cmocka_unit_test(test_bad_args))
