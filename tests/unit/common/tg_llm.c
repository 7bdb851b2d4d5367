/*
 * Unit tests for common/tg_llm.c and its wire formats: request bodies of both formats, answer
 * parsing (text, tool calls, parallel calls, structured output, malformed and truncated
 * bodies), and the asynchronous call with its retries over the real tg_http client against a
 * scripted HTTP server on 127.0.0.1 (tests/unit/common/scripted_http.h). Every loop test ends
 * with uv_loop_close() == 0.
 */
#include "tg_unit.h"

#include "scripted_http.h"
#include "tg_err.h"
#include "tg_llm.h"

#include <jansson.h>

#define PORT 19240
#define SILENT_PORT 19248
#define KEY "sk-test-secret-key-123"

/* ---------------------------------------------------------------- bodies */

static json_t *transcript(void)
{
  return json_pack("[{s:s, s:s}, {s:s, s:s, s:[{s:s, s:s, s:{s:i}}, {s:s, s:s, s:{}}]},"
                   " {s:s, s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:s, s:b}]",
                   "role", "user", "content", "add 2 and 2", /* */
                   "role", "assistant", "content", "let me see", "tool_calls", "id", "c1", "name",
                   "calculator", "arguments", "a", 2, "id", "c2", "name", "clock", "arguments",
                   /* */
                   "role", "tool", "tool_call_id", "c1", "name", "calculator", "content", "4",
                   "is_error", 0, /* */
                   "role", "tool", "tool_call_id", "c2", "name", "clock", "content", "no clock",
                   "is_error", 1);
}

static json_t *tools(void)
{
  return json_pack("[{s:s, s:s, s:{s:s}}, {s:s}]", "name", "calculator", "description", "adds",
                   "input_schema", "type", "object", "name", "clock");
}

static tg_llm_request base_req(tg_llm_provider p, const json_t *msgs, const json_t *t)
{
  return (tg_llm_request){.provider = p,
                          .base_url = "http://127.0.0.1:19240",
                          .api_key = KEY,
                          .model = "m1",
                          .system = "be brief",
                          .messages = msgs,
                          .tools = t,
                          .temperature = 0.5};
}

static void test_body_anthropic(void **state)
{
  json_t *msgs = transcript(), *t = tools(), *schema = json_pack("{s:s}", "type", "object");
  tg_llm_request req = base_req(TG_LLM_ANTHROPIC, msgs, t);
  int err = 1;
  json_t *b = tg_llm_build_body(&req, &err), *m;

  assert_non_null(b);
  assert_int_equal(err, 0);
  assert_string_equal(json_string_value(json_object_get(b, "model")), "m1");
  assert_string_equal(json_string_value(json_object_get(b, "system")), "be brief");
  assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 4096);
  assert_true(json_real_value(json_object_get(b, "temperature")) == 0.5);
  m = json_object_get(b, "messages");
  assert_int_equal(json_array_size(m), 3); /* the two tool results are one user turn */
  assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "content")),
                      "add 2 and 2");
  {
    json_t *blocks = json_object_get(json_array_get(m, 1), "content");
    assert_int_equal(json_array_size(blocks), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(blocks, 0), "type")),
                        "text");
    assert_string_equal(json_string_value(json_object_get(json_array_get(blocks, 1), "type")),
                        "tool_use");
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(json_array_get(blocks, 1), "input"), "a")),
                     2);
  }
  {
    json_t *turn = json_array_get(m, 2), *blocks = json_object_get(turn, "content");
    assert_string_equal(json_string_value(json_object_get(turn, "role")), "user");
    assert_int_equal(json_array_size(blocks), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(blocks, 1), "type")),
                        "tool_result");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(blocks, 1), "tool_use_id")), "c2");
    assert_true(json_is_true(json_object_get(json_array_get(blocks, 1), "is_error")));
    assert_true(json_is_false(json_object_get(json_array_get(blocks, 0), "is_error")));
  }
  assert_int_equal(json_array_size(json_object_get(b, "tools")), 2);
  assert_non_null(json_object_get(json_array_get(json_object_get(b, "tools"), 1), "input_schema"));
  assert_null(json_object_get(b, "tool_choice"));
  json_decref(b);

  /* structured output: a forced tool; no temperature when < 0 */
  req.output_schema = schema;
  req.temperature = -1;
  req.max_tokens = 100;
  b = tg_llm_build_body(&req, &err);
  assert_non_null(b);
  assert_null(json_object_get(b, "temperature"));
  assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 100);
  assert_int_equal(json_array_size(json_object_get(b, "tools")), 3);
  assert_string_equal(json_string_value(json_object_get(json_object_get(b, "tool_choice"), "type")),
                      "tool");
  assert_string_equal(json_string_value(json_object_get(json_object_get(b, "tool_choice"), "name")),
                      "structured_output");
  json_decref(b);
  json_decref(schema);
  json_decref(msgs);
  json_decref(t);
}

static void test_body_openai(void **state)
{
  json_t *msgs = transcript(), *t = tools(), *schema = json_pack("{s:s}", "type", "object"), *m;
  tg_llm_request req = base_req(TG_LLM_OPENAI, msgs, t);
  int err = 1;
  json_t *b = tg_llm_build_body(&req, &err), *calls;

  assert_non_null(b);
  m = json_object_get(b, "messages");
  assert_int_equal(json_array_size(m), 5); /* system + 4 */
  assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system");
  calls = json_object_get(json_array_get(m, 2), "tool_calls");
  assert_int_equal(json_array_size(calls), 2);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(json_array_get(calls, 0), "function"), "arguments")),
                      "{\"a\":2}");
  assert_string_equal(json_string_value(json_object_get(json_array_get(m, 3), "role")), "tool");
  assert_string_equal(json_string_value(json_object_get(json_array_get(m, 4), "content")),
                      "Error: no clock");
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_array_get(json_object_get(b, "tools"), 0), "function"), "name")),
      "calculator");
  assert_null(json_object_get(b, "max_tokens"));
  assert_null(json_object_get(b, "response_format"));
  json_decref(b);

  req.output_schema = schema;
  b = tg_llm_build_body(&req, &err);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(b, "response_format"), "type")),
      "json_schema");
  assert_true(json_equal(
      json_object_get(json_object_get(json_object_get(b, "response_format"), "json_schema"),
                      "schema"),
      schema));
  json_decref(b);
  json_decref(schema);
  json_decref(msgs);
  json_decref(t);
}

static void refused(const tg_llm_request *req)
{
  int err = 0;
  assert_null(tg_llm_build_body(req, &err));
  assert_int_equal(err, TG_EINVAL);
}

static void test_body_invalid(void **state)
{
  json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "hi");
  json_t *bad_tools = json_pack("[{s:s}]", "name", "has space");
  json_t *reserved = json_pack("[{s:s}]", "name", "structured_output");
  json_t *schema = json_object(), *bad_msgs = json_pack("[{s:s}]", "role", "wizard");
  tg_llm_request req = base_req(TG_LLM_ANTHROPIC, msgs, NULL);
  int err = 0;

  req.tools = bad_tools;
  refused(&req);
  req.tools = reserved;
  req.output_schema = schema;
  refused(&req);
  req.tools = NULL;
  req.output_schema = NULL;
  req.api_key = NULL;
  refused(&req);
  req.api_key = "abc\r\nX-Evil: 1";
  refused(&req);
  req.api_key = KEY;
  req.messages = bad_msgs;
  refused(&req);
  req.provider = TG_LLM_OPENAI_COMPATIBLE;
  req.messages = msgs;
  req.api_key = NULL; /* optional for a compatible server */
  json_t *b = tg_llm_build_body(&req, &err);
  assert_non_null(b);
  json_decref(b);
  {
    tg_llm_provider p;
    assert_int_equal(tg_llm_provider_parse("openai_compatible", &p), 0);
    assert_int_equal(p, TG_LLM_OPENAI_COMPATIBLE);
    assert_int_equal(tg_llm_provider_parse("Anthropic", &p), TG_EINVAL);
  }
  json_decref(msgs);
  json_decref(bad_tools);
  json_decref(reserved);
  json_decref(schema);
  json_decref(bad_msgs);
}

/* ---------------------------------------------------------------- answers */

static void expect_answer(const tg_llm_reply *r, const char *text, const char *stop, int64_t in,
                          int64_t out);

/* Parses body, which must succeed with that text, stop and usage. */
static tg_llm_reply *parse_ok(tg_llm_provider p, const char *body, int structured, const char *text,
                              const char *stop, int64_t in, int64_t out)
{
  tg_llm_reply *r = NULL;
  char msg[256] = "";
  int rc = tg_llm_parse_reply(p, body, strlen(body), structured, &r, msg, sizeof msg);
  if (rc)
    fail_msg("parse failed: %s", msg);
  assert_non_null(r);
  expect_answer(r, text, stop, in, out);
  return r;
}

static void expect_answer(const tg_llm_reply *r, const char *text, const char *stop, int64_t in,
                          int64_t out)
{
  assert_string_equal(r->text, text);
  assert_string_equal(r->stop, stop);
  assert_int_equal(r->input_tokens, in);
  assert_int_equal(r->output_tokens, out);
}

/* r's structured answer is {"win_probability": n} and it has no tool call; frees r. */
static void expect_win(tg_llm_reply *r, int n)
{
  assert_int_equal(json_integer_value(json_object_get(r->structured, "win_probability")), n);
  assert_int_equal(json_array_size(r->tool_calls), 0);
  tg_llm_reply_free(r);
}

static void parse_bad(tg_llm_provider p, const char *body, int structured, const char *want)
{
  tg_llm_reply *r = (tg_llm_reply *)1;
  char msg[256] = "";
  assert_int_equal(tg_llm_parse_reply(p, body, strlen(body), structured, &r, msg, sizeof msg),
                   TG_EPROTO);
  assert_null(r);
  if (!strstr(msg, want))
    fail_msg("message \"%s\" does not say \"%s\"", msg, want);
}

static void test_parse_anthropic(void **state)
{
  tg_llm_reply *r = parse_ok(
      TG_LLM_ANTHROPIC,
      "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
      "\"text\",\"text\":\"Hello \"},{\"type\":\"thinking\",\"thinking\":\"x\"},{\"type\":"
      "\"text\",\"text\":\"there\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":"
      "12,\"output_tokens\":3,\"cache_read_input_tokens\":5}}",
      0, "Hello there", "end_turn", 17, 3);
  assert_int_equal(json_array_size(r->tool_calls), 0);
  assert_null(r->structured);
  tg_llm_reply_free(r);

  r = parse_ok(TG_LLM_ANTHROPIC,
               "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"calc\",\"input\":{"
               "\"x\":1}},{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"clock\",\"input\":{}}],"
               "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}",
               0, "", "tool_use", 1, 2);
  assert_int_equal(json_array_size(r->tool_calls), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(r->tool_calls, 1), "id")),
                      "t2");
  assert_true(json_is_object(json_object_get(json_array_get(r->tool_calls, 0), "arguments")));
  tg_llm_reply_free(r);

  r = parse_ok(TG_LLM_ANTHROPIC,
               "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"structured_output\","
               "\"input\":{\"win_probability\":72}}],\"stop_reason\":\"tool_use\"}",
               1, "", "tool_use", 0, 0);
  expect_win(r, 72); /* the forced tool is the answer, not a tool call */

  /* counts whose sum overflows int64 (a hostile server): each is added on its own, and one that
   * would overflow the total is not counted */
  r = parse_ok(TG_LLM_ANTHROPIC,
               "{\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":2,"
               "\"cache_creation_input_tokens\":9223372036854775807,\"cache_read_input_tokens\":"
               "9223372036854775807}}",
               0, "", "", 1, 2);
  tg_llm_reply_free(r);

  parse_bad(TG_LLM_ANTHROPIC, "{\"content\":[{\"type\":\"text\",\"text\":\"prose\"}]}", 1,
            "structured answer is missing");
  parse_bad(TG_LLM_ANTHROPIC,
            "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"c\",\"input\":\"not an "
            "object\"}]}",
            0, "not a JSON object");
  parse_bad(TG_LLM_ANTHROPIC, "{\"content\":[{\"type\":\"tool_use\",\"name\":\"c\",\"input\":{}}]}",
            0, "without id");
  parse_bad(TG_LLM_ANTHROPIC, "{\"type\":\"message\"}", 0, "no content");
  parse_bad(TG_LLM_ANTHROPIC, "{\"content\":[{\"type\":\"text\",\"te", 0, "not a JSON object");
  parse_bad(TG_LLM_ANTHROPIC, "<html>502</html>", 0, "not a JSON object");
  parse_bad(TG_LLM_ANTHROPIC, "[1,2]", 0, "not a JSON object");
}

static void test_parse_openai(void **state)
{
  tg_llm_reply *r = parse_ok(
      TG_LLM_OPENAI,
      "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
      "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}",
      0, "hi", "max_tokens", 9, 4);
  tg_llm_reply_free(r);

  r = parse_ok(
      TG_LLM_OPENAI,
      "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"a\",\"type\":"
      "\"function\",\"function\":{\"name\":\"calc\",\"arguments\":\"{\\\"x\\\":2}\"}},{"
      "\"type\":\"function\",\"function\":{\"name\":\"clock\",\"arguments\":\"\"}}]},"
      "\"finish_reason\":\"tool_calls\"}]}",
      0, "", "tool_use", 0, 0);
  assert_int_equal(json_array_size(r->tool_calls), 2);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(json_array_get(r->tool_calls, 0), "arguments"), "x")),
                   2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(r->tool_calls, 1), "id")),
                      "call_1");
  assert_int_equal(json_object_size(json_object_get(json_array_get(r->tool_calls, 1), "arguments")),
                   0);
  tg_llm_reply_free(r);

  r = parse_ok(TG_LLM_OPENAI,
               "{\"choices\":[{\"message\":{\"content\":\"{\\\"win_probability\\\":12}\"},"
               "\"finish_reason\":\"stop\"}]}",
               1, "{\"win_probability\":12}", "end_turn", 0, 0);
  expect_win(r, 12);

  r = parse_ok(TG_LLM_OPENAI,
               "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"I cannot\"},"
               "\"finish_reason\":\"content_filter\"}]}",
               0, "I cannot", "refusal", 0, 0);
  assert_int_equal(json_array_size(r->tool_calls), 0);
  assert_null(r->structured);
  tg_llm_reply_free(r);

  parse_bad(TG_LLM_OPENAI,
            "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":"
            "\"calc\",\"arguments\":\"{not json\"}}]}}]}",
            0, "calc: its arguments are not a JSON object");
  parse_bad(TG_LLM_OPENAI,
            "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":"
            "\"calc\",\"arguments\":\"[1]\"}}]}}]}",
            0, "not a JSON object");
  parse_bad(TG_LLM_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"sure, 72%\"}}]}", 1,
            "structured answer is missing");
  parse_bad(TG_LLM_OPENAI, "{\"choices\":[]}", 0, "no choices[0].message");
  parse_bad(TG_LLM_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"hal", 0, "not a JSON");
}

/* ---------------------------------------------------------------- the call */

typedef struct env {
  uv_loop_t loop;
  sh_server srv;
  tg_http_client *http;
  uv_timer_t watchdog;
  int timed_out;
  char *script[8]; /* raw responses (owned), one per request; the last repeats */
  int n_script;
  json_t *msgs;
  tg_llm_request req;
  int done;
  int err;
  char cls[32], msg[512];
  tg_llm_reply *reply;
  uint64_t t0, t_done;
} env;

static char *respond(sh_server *s, const char *method, const char *target, const char *head,
                     const char *body)
{
  env *e = s->ctx;
  int i = s->n_requests - 1;
  const char *r = e->script[i < e->n_script ? i : e->n_script - 1];
  return r ? strdup(r) : NULL;
}

static void on_watchdog(uv_timer_t *t)
{
  ((env *)t->data)->timed_out = 1;
}

/* A loop, the scripted server, a client and a one-message request of provider p. */
static void env_init(env *e, tg_llm_provider p)
{
  memset(e, 0, sizeof *e);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  assert_int_equal(sh_start(&e->srv, &e->loop, PORT, respond, e), 0);
  assert_int_equal(tg_http_client_init(&e->http, &e->loop), 0);
  uv_timer_init(&e->loop, &e->watchdog);
  e->watchdog.data = e;
  uv_timer_start(&e->watchdog, on_watchdog, 15000, 0);
  e->t0 = uv_now(&e->loop);
  e->msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "hi");
  e->req = base_req(p, e->msgs, NULL);
}

/* Appends a raw response "HTTP/1.1 <status>" with extra header lines and body to the script. */
static void env_answer(env *e, int status, const char *extra, const char *body)
{
  e->script[e->n_script++] = sh_resp(status, extra, body);
}

static void env_done(env *e)
{
  tg_llm_reply_free(e->reply);
  tg_http_client_close(e->http, NULL, NULL);
  sh_stop(&e->srv);
  uv_close((uv_handle_t *)&e->watchdog, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  for (int i = 0; i < e->n_script; i++)
    free(e->script[i]);
  json_decref(e->msgs);
}

static void on_done(void *arg, int err, const char *cls, const char *msg, tg_llm_reply **reply)
{
  env *e = arg;
  e->done++;
  e->err = err;
  e->t_done = uv_now(&e->loop);
  snprintf(e->cls, sizeof e->cls, "%s", cls ? cls : "");
  snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "");
  tg_llm_reply_free(e->reply);
  e->reply = *reply;
  *reply = NULL;
}

/* Sends e->req and runs the loop until done. */
static void env_call(env *e)
{
  e->done = 0;
  assert_int_equal(tg_llm_send(e->http, &e->req, on_done, e, NULL), 0);
  while (!e->done && !e->timed_out)
    uv_run(&e->loop, UV_RUN_ONCE);
  assert_false(e->timed_out);
  assert_non_null(e->reply);
}

#define ANTHROPIC_OK                                                                               \
  "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\"," \
  "\"text\":\"done\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":20,"               \
  "\"output_tokens\":4}}"

static void test_call_429_then_success(void **state)
{
  env e;
  env_init(&e, TG_LLM_ANTHROPIC);
  env_answer(&e, 429, "retry-after: 1\r\n",
             "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow "
             "down\"}}");
  env_answer(&e, 200, NULL, ANTHROPIC_OK);
  e.req.max_retries = 3;
  e.req.retry_base_ms = 10;
  env_call(&e);
  assert_int_equal(e.err, 0);
  assert_string_equal(e.reply->text, "done");
  assert_int_equal(e.reply->attempts, 2);
  assert_int_equal(e.reply->input_tokens, 20);
  assert_true(e.t_done - e.t0 >= 1000); /* retry-after honoured */
  assert_int_equal(e.srv.n_requests, 2);
  assert_non_null(strstr(e.srv.heads[0], "POST /v1/messages "));
  assert_string_equal(sh_header(&e.srv, 0, "x-api-key"), KEY);
  assert_string_equal(sh_header(&e.srv, 0, "anthropic-version"), "2023-06-01");
  assert_string_equal(sh_header(&e.srv, 0, "content-type"), "application/json");
  assert_string_equal(e.srv.bodies[0], e.srv.bodies[1]); /* the same body every attempt */
  env_done(&e);
}

static void test_call_529_exhausted(void **state)
{
  env e;
  env_init(&e, TG_LLM_ANTHROPIC);
  env_answer(&e, 529, NULL,
             "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
             "\"Overloaded\"}}");
  e.req.max_retries = 2;
  e.req.retry_base_ms = 10;
  env_call(&e);
  assert_int_equal(e.err, TG_EHTTP);
  assert_string_equal(e.cls, "model_overloaded");
  assert_non_null(strstr(e.msg, "overloaded_error: Overloaded"));
  assert_int_equal(e.reply->attempts, 3);
  assert_int_equal(e.srv.n_requests, 3);
  env_done(&e);
}

static void test_call_401_no_retry(void **state)
{
  env e;
  env_init(&e, TG_LLM_OPENAI);
  env_answer(&e, 401, NULL,
             "{\"error\":{\"message\":\"Incorrect API key provided: " KEY "\",\"type\":"
             "\"invalid_request_error\",\"param\":null,\"code\":\"invalid_api_key\"}}");
  e.req.max_retries = 3;
  env_call(&e);
  assert_int_equal(e.err, TG_EAUTH);
  assert_string_equal(e.cls, "model_auth");
  assert_int_equal(e.reply->attempts, 1);
  assert_null(strstr(e.msg, KEY)); /* the key never reaches a message */
  assert_non_null(strstr(e.msg, "Incorrect API key"));
  assert_non_null(strstr(e.srv.heads[0], "POST /chat/completions "));
  assert_string_equal(sh_header(&e.srv, 0, "authorization"), "Bearer " KEY);
  env_done(&e);
}

/* A key that is the mask itself (a user's credential may hold anything) is scrubbed from an
 * echoing error once per occurrence, and the call ends. */
static void test_call_key_like_mask(void **state)
{
  env e;
  env_init(&e, TG_LLM_OPENAI);
  env_answer(&e, 400, NULL,
             "{\"error\":{\"message\":\"bad key [redacted] and [redacted]\",\"type\":\"x\"}}");
  e.req.api_key = "[redacted]";
  env_call(&e);
  assert_string_equal(e.cls, "model_error");
  assert_non_null(strstr(e.msg, "bad key [redacted] and [redacted]"));
  env_answer(&e, 400, NULL, "{\"error\":{\"message\":\"[red[red\",\"type\":\"x\"}}");
  e.req.api_key = "[red";
  env_call(&e);
  assert_non_null(strstr(e.msg, "x: [red[red"));
  env_done(&e);
}

/* One server, three answers: parallel tool calls (from a compatible server without a key),
 * arguments that are not JSON, an answer cut short. */
static void test_call_openai_answers(void **state)
{
  env e;
  char url[128];
  env_init(&e, TG_LLM_OPENAI_COMPATIBLE);
  env_answer(
      &e, 200, NULL,
      "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"a\",\"type\":"
      "\"function\",\"function\":{\"name\":\"calc\",\"arguments\":\"{}\"}},{\"id\":\"b\",\"type\":"
      "\"function\",\"function\":{\"name\":\"calc\",\"arguments\":\"{\\\"n\\\":1}\"}}]},"
      "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}"
      "}");
  env_answer(
      &e, 200, NULL,
      "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"calc\","
      "\"arguments\":\"{not json\"}}]}}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}");
  /* Content-Length promises more than arrives before the server closes */
  e.script[e.n_script++] = strdup("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 500\r\n\r\n{\"choices\":[{\"mess");
  e.req.api_key = NULL;
  e.req.max_retries = 2;
  snprintf(url, sizeof url, "%s//", e.req.base_url); /* a user's base URL may end in '/' */
  e.req.base_url = url;
  env_call(&e);
  assert_int_equal(e.err, 0);
  assert_non_null(strstr(e.srv.heads[0], "POST /chat/completions "));
  assert_int_equal(json_array_size(e.reply->tool_calls), 2);
  assert_int_equal(e.reply->output_tokens, 2);
  assert_null(sh_header(&e.srv, 0, "authorization"));

  env_call(&e);
  assert_int_equal(e.err, TG_EPROTO);
  assert_string_equal(e.cls, "invalid_model_output");
  assert_int_equal(e.reply->attempts, 1);     /* not retried */
  assert_int_equal(e.reply->input_tokens, 7); /* usage counts on failure */

  env_call(&e);
  assert_string_equal(e.cls, "invalid_model_output");
  assert_non_null(strstr(e.msg, "cut short"));
  env_done(&e);
}

static void test_call_not_sent_retried(void **state)
{
  env e;
  env_init(&e, TG_LLM_ANTHROPIC);
  e.req.base_url = "http://127.0.0.1:19249"; /* nothing listens here */
  e.req.max_retries = 2;
  e.req.retry_base_ms = 5;
  env_call(&e);
  assert_string_equal(e.cls, "model_error");
  assert_int_equal(e.err, TG_EIO);
  assert_int_equal(e.reply->attempts, 3);
  env_done(&e);
}

static void test_call_wait_past_deadline(void **state)
{
  env e;
  env_init(&e, TG_LLM_OPENAI);
  env_answer(&e, 503, "retry-after-ms: 5000\r\n", "{\"error\":{\"message\":\"busy\"}}");
  e.req.max_retries = 3;
  e.req.deadline_ms = uv_now(&e.loop) + 2000;
  env_call(&e);
  assert_string_equal(e.cls, "model_error");
  assert_int_equal(e.reply->attempts, 1); /* the 5 s wait does not fit */
  assert_true(e.t_done - e.t0 < 1000);
  assert_non_null(strstr(e.msg, "HTTP 503 busy"));
  env_done(&e);
}

/* A huge retry_base_ms is capped at 60 s, not shifted into an overflow on the second retry. */
static void test_call_huge_retry_base(void **state)
{
  env e;
  env_init(&e, TG_LLM_OPENAI);
  env_answer(&e, 503, "retry-after-ms: 1\r\n", "{\"error\":{\"message\":\"busy\"}}");
  env_answer(&e, 503, NULL, "{\"error\":{\"message\":\"busy\"}}");
  e.req.max_retries = 3;
  e.req.retry_base_ms = 1L << 62;
  e.req.deadline_ms = uv_now(&e.loop) + 5000; /* the capped wait (30-60 s) does not fit */
  env_call(&e);
  assert_string_equal(e.cls, "model_error");
  assert_int_equal(e.reply->attempts, 2);
  env_done(&e);
}

static void on_silent_conn(uv_stream_t *server, int status)
{
  /* never accepted: the kernel completes the handshake and the request waits forever */
}

static void test_call_timeout(void **state)
{
  env e;
  uv_tcp_t silent;
  struct sockaddr_in addr;
  env_init(&e, TG_LLM_ANTHROPIC);
  uv_tcp_init(&e.loop, &silent);
  uv_ip4_addr("127.0.0.1", SILENT_PORT, &addr);
  assert_int_equal(uv_tcp_bind(&silent, (const struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&silent, 8, on_silent_conn), 0);
  e.req.base_url = "http://127.0.0.1:19248"; /* SILENT_PORT */
  e.req.timeout_ms = 300;
  e.req.max_retries = 2;
  env_call(&e);
  assert_string_equal(e.cls, "timeout");
  assert_int_equal(e.err, TG_ETIMEDOUT);
  assert_int_equal(e.reply->attempts, 1); /* it may have reached the model: not retried */
  assert_true(e.t_done - e.t0 >= 300);
  uv_close((uv_handle_t *)&silent, NULL);
  env_done(&e);
}

static void test_call_cancel(void **state)
{
  env e;
  tg_llm_call *c = NULL, *c2 = NULL;
  env_init(&e, TG_LLM_ANTHROPIC);
  env_answer(&e, 429, "retry-after: 1\r\n", "{}");
  e.req.max_retries = 3;
  assert_int_equal(tg_llm_send(e.http, &e.req, on_done, &e, &c), 0);
  assert_non_null(c);
  while (e.srv.n_requests < 1 && !e.timed_out) /* soon waiting on its retry timer */
    uv_run(&e.loop, UV_RUN_ONCE);
  for (int i = 0; i < 20; i++)
    uv_run(&e.loop, UV_RUN_NOWAIT);
  tg_llm_cancel(c);
  assert_int_equal(tg_llm_send(e.http, &e.req, on_done, &e, &c2), 0);
  tg_llm_cancel(c2); /* and one while its transfer is in flight */
  env_done(&e);
  assert_int_equal(e.done, 0);
}

TG_UNIT_MAIN(cmocka_unit_test(test_body_anthropic), cmocka_unit_test(test_body_openai),
             cmocka_unit_test(test_body_invalid), cmocka_unit_test(test_parse_anthropic),
             cmocka_unit_test(test_parse_openai), cmocka_unit_test(test_call_429_then_success),
             cmocka_unit_test(test_call_529_exhausted), cmocka_unit_test(test_call_401_no_retry),
             cmocka_unit_test(test_call_key_like_mask), cmocka_unit_test(test_call_openai_answers),
             cmocka_unit_test(test_call_not_sent_retried),
             cmocka_unit_test(test_call_wait_past_deadline),
             cmocka_unit_test(test_call_huge_retry_base), cmocka_unit_test(test_call_timeout),
             cmocka_unit_test(test_call_cancel))
