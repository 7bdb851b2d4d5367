/*
 * tg_llm: one call to a language model, retried, on tg_http (curl multi on the loop).
 *
 * The wire formats (tg_llm_anthropic.c, tg_llm_openai.c) build bodies and parse answers; this
 * file validates the request, owns the call's state machine and classifies every outcome:
 *
 *   send attempt ──2xx──> parse ──ok──> done(0)
 *        │                  └─bad──> done(invalid_model_output)          (never retried)
 *        ├─429/529/500-504, or a transport failure that certainly did not reach the model
 *        │      └─> retries left and the wait fits (≤ 60 s, before deadline_ms) ─> timer ─> send
 *        │                                    else done(rate_limited | model_overloaded | ...)
 *        ├─401/403 ─> done(model_auth)            ├─other status ─> done(model_error)
 *        └─transport failure after the request went out (timeout, reset) ─> done(timeout |
 *          model_error); a 2xx cut short (Content-Length not met) is invalid_model_output.
 *
 * The wait before a retry is the answer's retry-after-ms (Anthropic and OpenAI send it; their
 * SDKs honour it first), else Retry-After (seconds or an HTTP-date, tg_http_retry_after_ms),
 * else retry_base_ms * 2^n with half of it random (jitter), capped at 60 s. A server's wait is
 * taken as it is (no jitter: it asked for at least that).
 *
 * Invariants: the request body is built once and sent as is by every attempt; usage sums over
 * every attempt that answered with one; the API key lives only in the header lines and one copy
 * used to scrub error messages, all wiped when the call is freed. The call is freed right after
 * done returns (or in tg_llm_cancel), after its timer's close callback when it had one.
 */
#include "tg_llm.h"

#include "tg_err.h"
#include "tg_json.h"
#include "tg_llm_int.h"
#include "tg_log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WAIT_MS 60000L            /* the longest wait before a retry */
#define MAX_ANSWER (8u * 1024 * 1024) /* bytes of one answer body */
#define DEFAULT_TIMEOUT_MS 120000L
#define DEFAULT_RETRY_BASE_MS 500L
#define MAX_HEADERS 6

struct tg_llm_call {
  tg_http_client *http;
  const tg_llm_wire *wire;
  const char *provider_name;
  char *url, *body;
  size_t body_len;
  char *headers[MAX_HEADERS]; /* NULL-terminated */
  char *key;                  /* to scrub messages; NULL when none */
  int structured;
  long timeout_ms, retry_base_ms;
  int max_retries, retries;
  uint64_t deadline_ms;
  tg_http_transfer *t;
  uv_timer_t timer;
  int timer_init;
  tg_llm_reply *reply;
  tg_llm_done_cb done;
  void *arg;
};

/* ---------------------------------------------------------------- replies */

int tg_llm_provider_parse(const char *name, tg_llm_provider *out)
{
  static const char *const names[] = {"anthropic", "openai", "openai_compatible"};
  for (int i = 0; name && i < 3; i++)
    if (strcmp(name, names[i]) == 0) {
      *out = (tg_llm_provider)i;
      return 0;
    }
  return TG_EINVAL;
}

void tg_llm_reply_free(tg_llm_reply *r)
{
  if (!r)
    return;
  free(r->text);
  json_decref(r->tool_calls);
  json_decref(r->structured);
  free(r);
}

static tg_llm_reply *reply_new(void)
{
  tg_llm_reply *r = calloc(1, sizeof *r);
  if (r && tg_llm_reply_clear(r)) {
    tg_llm_reply_free(r);
    return NULL;
  }
  return r;
}

int tg_llm_reply_clear(tg_llm_reply *r)
{
  char *text = strdup("");
  json_t *calls = json_array();
  if (!text || !calls) {
    free(text);
    json_decref(calls);
    return TG_ENOMEM;
  }
  free(r->text);
  json_decref(r->tool_calls);
  json_decref(r->structured);
  r->text = text;
  r->tool_calls = calls;
  r->structured = NULL;
  r->stop[0] = 0;
  return 0;
}

static void add_tokens(int64_t *to, const json_t *n)
{
  json_int_t v = json_integer_value(n);
  if (v > 0 && v < INT64_MAX - *to)
    *to += v;
}

void tg_llm_reply_add_usage(tg_llm_reply *r, const json_t *in, const json_t *out)
{
  add_tokens(&r->input_tokens, in);
  add_tokens(&r->output_tokens, out);
}

int tg_llm_reply_add_call(tg_llm_reply *r, const char *id, const char *name, json_t *arguments)
{
  json_t *c = json_pack("{s:s, s:s, s:o}", "id", id, "name", name, "arguments", arguments);
  return c && !json_array_append_new(r->tool_calls, c) ? 0 : TG_ENOMEM;
}

int tg_llm_reply_add_text(tg_llm_reply *r, const char *text)
{
  size_t a = strlen(r->text), b = strlen(text);
  char *p = realloc(r->text, a + b + 1);
  if (!p)
    return TG_ENOMEM;
  memcpy(p + a, text, b + 1);
  r->text = p;
  return 0;
}

json_t *tg_llm_tool_list(const json_t *tools, const char *schema_key, int as_function)
{
  json_t *out = json_array(), *t;
  size_t i;
  if (!out)
    return NULL;
  json_array_foreach(tools, i, t)
  {
    json_t *schema = json_object_get(t, "input_schema"), *d = json_object_get(t, "description");
    json_t *o = json_pack("{s:O, s:o}", "name", json_object_get(t, "name"), schema_key,
                          json_is_object(schema)
                              ? json_incref(schema)
                              : json_pack("{s:s, s:{}}", "type", "object", "properties"));
    if (o && json_is_string(d) && json_object_set(o, "description", d)) {
      json_decref(o);
      o = NULL;
    }
    if (o && as_function)
      o = json_pack("{s:s, s:o}", "type", "function", "function", o);
    if (json_array_append_new(out, o)) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}

char *tg_llm_line(const char *name, const char *value)
{
  size_t n = strlen(name) + strlen(value) + 3;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s: %s", name, value);
  return p;
}

int tg_llm_tool_name_ok(const char *name)
{
  size_t n = name ? strlen(name) : 0;
  if (n < 1 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = name[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

/* ---------------------------------------------------------------- bodies and answers */

static const tg_llm_wire *wire_of(tg_llm_provider p)
{
  return p == TG_LLM_ANTHROPIC ? &tg_llm_wire_anthropic : &tg_llm_wire_openai;
}

static const char *provider_name(tg_llm_provider p)
{
  return p == TG_LLM_ANTHROPIC ? "anthropic" : p == TG_LLM_OPENAI ? "openai" : "openai_compatible";
}

/* 1 when s may go into a header value (no control characters, so no header injection). */
static int header_safe(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return 0;
  return 1;
}

/* 1 when m is a message of the neutral transcript (tg_llm.h): what the formats rely on. */
static int message_ok(const json_t *m)
{
  const char *role = json_string_value(json_object_get(m, "role"));
  const json_t *content = json_object_get(m, "content"), *calls = json_object_get(m, "tool_calls");
  const json_t *c;
  size_t i;
  if (!role)
    return 0;
  if (strcmp(role, "user") == 0)
    return json_is_string(content);
  if (strcmp(role, "tool") == 0)
    return json_is_string(json_object_get(m, "tool_call_id")) && json_is_string(content);
  if (strcmp(role, "assistant") != 0 ||
      (content && !json_is_string(content) && !json_is_null(content)) ||
      (calls && !json_is_array(calls)))
    return 0;
  json_array_foreach(calls, i, c)
  {
    const json_t *args = json_object_get(c, "arguments");
    if (!json_is_string(json_object_get(c, "id")) || !json_is_string(json_object_get(c, "name")) ||
        (args && !json_is_object(args)))
      return 0;
  }
  return 1;
}

static int validate(const tg_llm_request *req)
{
  const json_t *t;
  size_t i;
  if (!req || req->provider > TG_LLM_OPENAI_COMPATIBLE || !req->model || !*req->model ||
      !req->base_url || !*req->base_url || !json_is_array(req->messages))
    return TG_EINVAL;
  if (req->api_key ? !*req->api_key || !header_safe(req->api_key)
                   : req->provider != TG_LLM_OPENAI_COMPATIBLE)
    return TG_EINVAL;
  if (req->output_schema && !json_is_object(req->output_schema))
    return TG_EINVAL;
  json_array_foreach(req->messages, i, t)
  {
    if (!message_ok(t))
      return TG_EINVAL;
  }
  if (req->tools && !json_is_array(req->tools))
    return TG_EINVAL;
  json_array_foreach(req->tools, i, t)
  {
    const char *name = json_string_value(json_object_get(t, "name"));
    if (!tg_llm_tool_name_ok(name) ||
        (req->output_schema && strcmp(name, TG_LLM_STRUCTURED_NAME) == 0))
      return TG_EINVAL;
  }
  return 0;
}

json_t *tg_llm_build_body(const tg_llm_request *req, int *err)
{
  int rc = validate(req);
  json_t *body = NULL;
  if (!rc && !(body = wire_of(req->provider)->build(req)))
    rc = TG_ENOMEM;
  if (err)
    *err = rc;
  return body;
}

/* Parses body into r (answer replaced, usage added). On failure r holds no answer. */
static int parse_into(const tg_llm_wire *w, const char *body, size_t len, int structured,
                      tg_llm_reply *r, char *msg, size_t msglen)
{
  json_error_t jerr;
  json_t *v;
  int rc;

  if (tg_llm_reply_clear(r)) {
    snprintf(msg, msglen, "out of memory");
    return TG_EPROTO;
  }
  if (!(v = json_loadb(body, len, 0, &jerr)) || !json_is_object(v)) {
    snprintf(msg, msglen, "the answer is not a JSON object%s%.200s", v ? "" : ": ",
             v ? "" : jerr.text);
    json_decref(v);
    return TG_EPROTO;
  }
  if ((rc = w->parse(v, structured, r, msg, msglen)) == TG_ENOMEM) {
    snprintf(msg, msglen, "out of memory");
    rc = TG_EPROTO;
  }
  if (!rc && structured && !r->structured && json_array_size(r->tool_calls) == 0) {
    snprintf(msg, msglen, "the structured answer is missing (no JSON object as asked)");
    rc = TG_EPROTO;
  }
  json_decref(v);
  if (rc) {
    int64_t in = r->input_tokens, out = r->output_tokens;
    tg_llm_reply_clear(r); /* on failure the text stays "" or what it was; usage kept */
    r->input_tokens = in;
    r->output_tokens = out;
  }
  return rc;
}

int tg_llm_parse_reply(tg_llm_provider provider, const char *body, size_t len, int structured,
                       tg_llm_reply **reply, char *message, size_t msglen)
{
  tg_llm_reply *r = reply_new();
  int rc;
  *reply = NULL;
  if (!r) {
    snprintf(message, msglen, "out of memory");
    return TG_EPROTO;
  }
  rc = parse_into(wire_of(provider), body, len, structured, r, message, msglen);
  if (rc) {
    tg_llm_reply_free(r);
    return rc;
  }
  *reply = r;
  return 0;
}

/* ---------------------------------------------------------------- the call */

static void on_timer_closed(uv_handle_t *h)
{
  free(h->data);
}

static void call_free(tg_llm_call *c)
{
  for (int i = 0; i < MAX_HEADERS && c->headers[i]; i++) {
    sodium_memzero(c->headers[i], strlen(c->headers[i]));
    free(c->headers[i]);
  }
  if (c->key) {
    sodium_memzero(c->key, strlen(c->key));
    free(c->key);
  }
  free(c->url);
  free(c->body);
  tg_llm_reply_free(c->reply);
  c->reply = NULL;
  if (c->timer_init) {
    c->timer.data = c;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  } else
    free(c);
}

/* Replaces every occurrence of the key in msg (in place) so no message carries it. The search
 * resumes after each mask: a key that is itself (a prefix of) the mask must not loop forever. */
static void scrub(const tg_llm_call *c, char *msg)
{
  static const char mask[] = "[redacted]";
  size_t k = c->key ? strlen(c->key) : 0;
  char *p = msg;
  if (k < 4)
    return;
  while ((p = strstr(p, c->key)) != NULL) {
    size_t rest = strlen(p + k) + 1, m = k < sizeof mask - 1 ? k : sizeof mask - 1;
    memcpy(p, mask, m);
    memmove(p + m, p + k, rest);
    p += m;
  }
}

static void finish(tg_llm_call *c, int err, const char *cls, char *msg)
{
  if (msg)
    scrub(c, msg);
  c->done(c->arg, err, err ? cls : NULL, err ? msg : NULL, &c->reply);
  call_free(c);
}

static void on_http_done(void *arg, int err, const tg_http_response *resp);

/* Sends one attempt: 0, or the tg_http_send error. */
static int attempt(tg_llm_call *c)
{
  tg_http_request hr = {.method = "POST",
                        .url = c->url,
                        .headers = (const char *const *)c->headers,
                        .body = c->body,
                        .body_len = c->body_len,
                        .timeout_ms = c->timeout_ms,
                        .max_body = MAX_ANSWER};
  int rc = tg_http_send(c->http, &hr, on_http_done, c, &c->t);
  if (!rc)
    c->reply->attempts++;
  return rc;
}

static void on_timer(uv_timer_t *h)
{
  tg_llm_call *c = h->data;
  char msg[512];
  int rc = attempt(c);
  if (rc) {
    snprintf(msg, sizeof msg, "%s: cannot send the request: %s", c->provider_name, tg_strerror(rc));
    finish(c, rc, "model_error", msg);
  }
}

/* The wait before the next retry in ms, or -1 when none is taken (no retry left, the wait is
 * over 60 s or ends after the deadline). t: the answer (NULL after a transport failure). */
static long retry_wait(tg_llm_call *c, const tg_http_transfer *t)
{
  const char *ms = t ? tg_http_header(t, "retry-after-ms") : NULL;
  long d = -1;
  if (c->retries >= c->max_retries)
    return -1;
  if (ms) {
    char *end;
    double v = strtod(ms, &end);
    if (end != ms && !*end && v >= 0 && v < 1e9)
      d = (long)v;
  }
  if (d < 0 && t)
    d = tg_http_retry_after_ms(t);
  if (d < 0) {
    long b = c->retry_base_ms; /* doubled per retry, stopping at the cap: no overflow */
    for (int i = 0; i < c->retries && b < MAX_WAIT_MS; i++)
      b *= 2;
    if (b > MAX_WAIT_MS)
      b = MAX_WAIT_MS;
    d = b / 2 + (long)randombytes_uniform((uint32_t)(b / 2 + 1));
  }
  if (d > MAX_WAIT_MS)
    return -1;
  if (c->deadline_ms && uv_now(tg_http_loop(c->http)) + (uint64_t)d >= c->deadline_ms)
    return -1;
  return d;
}

/* 1 when the wait was scheduled (the call goes on), 0 when no retry is taken. */
static int retry_later(tg_llm_call *c, const tg_http_transfer *t, const char *why)
{
  long d = retry_wait(c, t);
  if (d < 0)
    return 0;
  if (!c->timer_init) {
    if (uv_timer_init(tg_http_loop(c->http), &c->timer))
      return 0;
    c->timer_init = 1;
    c->timer.data = c;
  }
  c->retries++;
  tg_info("llm_retry", "{s:s, s:s, s:i, s:I}", "provider", c->provider_name, "after", why, "retry",
          c->retries, "wait_ms", (json_int_t)d);
  uv_timer_start(&c->timer, on_timer, (uint64_t)d, 0);
  return 1;
}

/* "<error.type>: <error.message>" of an error answer (both formats nest them under "error"), or
 * the start of the body when it is not JSON, into out. */
static void error_text(const tg_http_response *resp, char *out, size_t n)
{
  json_t *v = json_loadb(resp->body, resp->body_len, 0, NULL), *e = json_object_get(v, "error");
  const char *type = json_string_value(json_object_get(e, "type"));
  const char *m = json_string_value(json_object_get(e, "message"));
  if (!m)
    m = json_string_value(e);
  if (m || type)
    snprintf(out, n, "%s%s%.300s", type ? type : "", type && m ? ": " : "", m ? m : "");
  else {
    size_t i, len = resp->body_len < 160 ? resp->body_len : 160;
    for (i = 0; i < len && i + 1 < n; i++)
      out[i] = resp->body[i] >= 0x20 && resp->body[i] < 0x7f ? resp->body[i] : ' ';
    out[i] = 0;
  }
  json_decref(v);
}

static void on_http_done(void *arg, int err, const tg_http_response *resp)
{
  tg_llm_call *c = arg;
  long s = resp->status;
  char msg[512], detail[400] = "", attempts[48];
  int rc;

  c->t = NULL;
  snprintf(attempts, sizeof attempts, " (%d attempt%s)", c->reply->attempts,
           c->reply->attempts == 1 ? "" : "s");
  if (err == TG_EIO && s >= 200 && s < 300) {
    snprintf(msg, sizeof msg, "%s: the answer was cut short (%s)", c->provider_name,
             tg_strerror(err));
    finish(c, TG_EPROTO, "invalid_model_output", msg);
    return;
  }
  if (err) {
    if (resp->not_sent && err != TG_EEGRESS && err != TG_ECANCELED &&
        retry_later(c, NULL, tg_errname(err)))
      return;
    snprintf(msg, sizeof msg, "%s: %s%s", c->provider_name,
             err == TG_ETOOBIG   ? "the answer is larger than 8 MiB"
             : err == TG_EEGRESS ? "the egress policy refuses the model's address"
                                 : tg_strerror(err),
             attempts);
    finish(c, err, err == TG_ETIMEDOUT ? "timeout" : "model_error", msg);
    return;
  }
  if (s >= 200 && s < 300) {
    rc = parse_into(c->wire, resp->body, resp->body_len, c->structured, c->reply, detail,
                    sizeof detail);
    if (!rc) {
      finish(c, 0, NULL, NULL);
      return;
    }
    snprintf(msg, sizeof msg, "%s: %s", c->provider_name, detail);
    finish(c, rc, "invalid_model_output", msg);
    return;
  }
  if ((s == 429 || s == 529 || (s >= 500 && s <= 504))) {
    char why[16];
    snprintf(why, sizeof why, "HTTP %ld", s);
    if (retry_later(c, resp->t, why))
      return;
  }
  error_text(resp, detail, sizeof detail);
  snprintf(msg, sizeof msg, "%s: HTTP %ld%s%s%s", c->provider_name, s, *detail ? " " : "", detail,
           attempts);
  if (s == 429)
    finish(c, TG_ERATELIMIT, "rate_limited", msg);
  else if (s == 529)
    finish(c, TG_EHTTP, "model_overloaded", msg);
  else if (s == 401 || s == 403)
    finish(c, TG_EAUTH, "model_auth", msg);
  else
    finish(c, TG_EHTTP, "model_error", msg);
}

int tg_llm_send(tg_http_client *http, const tg_llm_request *req, tg_llm_done_cb done, void *arg,
                tg_llm_call **out)
{
  tg_llm_call *c;
  json_t *body;
  size_t n, base_len;
  int rc, k;

  if (out)
    *out = NULL;
  if (!http || !done)
    return TG_EINVAL;
  if (!(body = tg_llm_build_body(req, &rc)))
    return rc;
  if (!(c = calloc(1, sizeof *c))) {
    json_decref(body);
    return TG_ENOMEM;
  }
  c->http = http;
  c->wire = wire_of(req->provider);
  c->provider_name = provider_name(req->provider);
  c->structured = req->output_schema != NULL;
  c->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
  c->retry_base_ms = req->retry_base_ms > 0 ? req->retry_base_ms : DEFAULT_RETRY_BASE_MS;
  c->max_retries = req->max_retries > 0 ? req->max_retries : 0;
  c->deadline_ms = req->deadline_ms;
  c->done = done;
  c->arg = arg;
  c->body = tg_json_dumps(body, &c->body_len);
  json_decref(body);
  for (base_len = strlen(req->base_url); base_len > 1 && req->base_url[base_len - 1] == '/';)
    base_len--; /* a user's "http://host/v1/" must not become ".../v1//chat/completions" */
  n = base_len + strlen(c->wire->path) + 1;
  rc = TG_ENOMEM;
  if (!c->body || !(c->reply = reply_new()) || !(c->url = malloc(n)) ||
      (req->api_key && !(c->key = strdup(req->api_key))))
    goto fail;
  snprintf(c->url, n, "%.*s%s", (int)base_len, req->base_url, c->wire->path);
  if ((k = c->wire->headers(req->api_key, c->headers, MAX_HEADERS - 2)) < 0 ||
      !(c->headers[k] = strdup("Content-Type: application/json")))
    goto fail;
  if ((rc = attempt(c)))
    goto fail;
  if (out)
    *out = c;
  return 0;
fail:
  call_free(c);
  return rc;
}

void tg_llm_cancel(tg_llm_call *c)
{
  if (!c)
    return;
  if (c->t)
    tg_http_cancel(c->t);
  c->t = NULL;
  if (c->timer_init)
    uv_timer_stop(&c->timer);
  call_free(c);
}
