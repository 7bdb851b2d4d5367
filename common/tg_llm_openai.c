/*
 * tg_llm_openai: the OpenAI Chat Completions wire format of tg_llm (providers openai and
 * openai_compatible).
 *
 * Request (POST <base>/chat/completions, Authorization: Bearer <key> when there is a key):
 * {model, messages, temperature?, max_tokens?, tools?, response_format?}. The system prompt is
 * the first message {role:"system"}; an assistant turn is {role, content (text or null),
 * tool_calls:[{id, type:"function", function:{name, arguments (JSON text)}}]}; a tool result is
 * {role:"tool", tool_call_id, content}, its text prefixed "Error: " when is_error (the format has
 * no such flag). max_tokens is sent only when the caller set it (the API's default otherwise).
 * Structured output is response_format {type:"json_schema", json_schema:{name:
 * "structured_output", schema, strict:false}}; the answer's content is the JSON text.
 *
 * Answer: {choices:[{message:{content, tool_calls, refusal?}, finish_reason}], usage:
 * {prompt_tokens, completion_tokens}}. finish_reason is mapped to Anthropic's words: stop ->
 * end_turn, tool_calls / function_call -> tool_use, length -> max_tokens, content_filter ->
 * refusal; a refusal (structured outputs) becomes the text with stop "refusal". Servers of the
 * openai_compatible kind differ in small ways, accepted here: a tool call without id gets
 * "call_<n>", arguments given as an object or as "" (no arguments) are taken as they are.
 * Arguments that are not a JSON object are invalid_model_output.
 *
 * Sources: platform.openai.com/docs/api-reference/chat/create (messages, tools, tool_calls,
 * finish_reason, usage), /docs/guides/function-calling (arguments are a JSON string the model
 * may get wrong), /docs/guides/structured-outputs (response_format json_schema, refusal),
 * /docs/guides/error-codes ({"error":{"message","type","param","code"}}).
 */
#include "tg_err.h"
#include "tg_llm_int.h"
#include "tg_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An assistant message (validated) with its tool calls' arguments as JSON text. */
static json_t *assistant(const json_t *m)
{
  json_t *calls = json_object_get(m, "tool_calls"), *c, *out, *arr;
  json_t *content = json_object_get(m, "content");
  size_t i;

  out = json_pack("{s:s, s:O}", "role", "assistant", "content",
                  json_is_string(content) ? content : json_null());
  if (!out || json_array_size(calls) == 0)
    return out;
  if (!(arr = json_array()) || json_object_set_new(out, "tool_calls", arr))
    goto fail;
  json_array_foreach(calls, i, c)
  {
    json_t *args = json_object_get(c, "arguments");
    char *text = args ? tg_json_dumps(args, NULL) : strdup("{}");
    json_t *call = text ? json_pack("{s:O, s:s, s:{s:O, s:s}}", "id", json_object_get(c, "id"),
                                    "type", "function", "function", "name",
                                    json_object_get(c, "name"), "arguments", text)
                        : NULL;
    free(text);
    if (json_array_append_new(arr, call))
      goto fail;
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}

/* A tool result; "Error: " before the text when is_error (the format has no such flag). */
static json_t *tool_message(const json_t *m)
{
  const char *content = json_string_value(json_object_get(m, "content"));
  int is_error = json_is_true(json_object_get(m, "is_error"));
  size_t n = strlen(content) + 8;
  char *p = malloc(n);
  json_t *o;
  if (!p)
    return NULL;
  snprintf(p, n, "%s%s", is_error ? "Error: " : "", content);
  o = json_pack("{s:s, s:O, s:s}", "role", "tool", "tool_call_id",
                json_object_get(m, "tool_call_id"), "content", p);
  free(p);
  return o;
}

/* The system prompt and the transcript (validated by tg_llm.c); NULL when out of memory. */
static json_t *messages(const tg_llm_request *req)
{
  json_t *out = json_array(), *m;
  size_t i;
  if (!out)
    return NULL;
  if (req->system &&
      json_array_append_new(out, json_pack("{s:s, s:s}", "role", "system", "content", req->system)))
    goto fail;
  json_array_foreach(req->messages, i, m)
  {
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *o = strcmp(role, "user") == 0 ? json_pack("{s:s, s:O}", "role", "user", "content",
                                                      json_object_get(m, "content"))
                : strcmp(role, "assistant") == 0 ? assistant(m)
                                                 : tool_message(m);
    if (json_array_append_new(out, o))
      goto fail;
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}

static json_t *build(const tg_llm_request *req)
{
  json_t *body = json_pack("{s:s, s:o}", "model", req->model, "messages", messages(req));
  if (!body)
    return NULL;
  if ((req->temperature >= 0 &&
       json_object_set_new(body, "temperature", json_real(req->temperature))) ||
      (req->max_tokens > 0 &&
       json_object_set_new(body, "max_tokens", json_integer(req->max_tokens))) ||
      (json_array_size(req->tools) &&
       json_object_set_new(body, "tools", tg_llm_tool_list(req->tools, "parameters", 1))) ||
      (req->output_schema &&
       json_object_set_new(body, "response_format",
                           json_pack("{s:s, s:{s:s, s:O, s:b}}", "type", "json_schema",
                                     "json_schema", "name", TG_LLM_STRUCTURED_NAME, "schema",
                                     req->output_schema, "strict", 0)))) {
    json_decref(body);
    return NULL;
  }
  return body;
}

static int headers(const char *key, char **lines, size_t n)
{
  size_t len;
  char *v;
  if (!key)
    return 0;
  if (n < 1)
    return TG_ENOMEM;
  len = strlen(key) + sizeof "Bearer ";
  if (!(v = malloc(len)))
    return TG_ENOMEM;
  snprintf(v, len, "Bearer %s", key);
  lines[0] = tg_llm_line("Authorization", v);
  memset(v, 0, len);
  free(v);
  return lines[0] ? 1 : TG_ENOMEM;
}

static const char *stop_word(const char *finish)
{
  static const char *const map[][2] = {{"stop", "end_turn"},
                                       {"tool_calls", "tool_use"},
                                       {"function_call", "tool_use"},
                                       {"length", "max_tokens"},
                                       {"content_filter", "refusal"}};
  if (!finish)
    return "";
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(finish, map[i][0]) == 0)
      return map[i][1];
  return finish;
}

/* A tool call's arguments: a JSON text of an object ("" = none), or an object. New reference,
 * or NULL when they are not an object. */
static json_t *arguments(const json_t *a)
{
  const char *s = json_string_value(a);
  json_t *v;
  if (json_is_object(a))
    return json_incref((json_t *)a);
  if (!s)
    return NULL;
  if (!*s)
    return json_object();
  v = json_loadb(s, json_string_length(a), 0, NULL);
  if (!json_is_object(v)) {
    json_decref(v);
    return NULL;
  }
  return v;
}

static int parse(const json_t *body, int structured, tg_llm_reply *r, char *msg, size_t msglen)
{
  json_t *usage = json_object_get(body, "usage");
  json_t *choice = json_array_get(json_object_get(body, "choices"), 0);
  json_t *m = json_object_get(choice, "message"), *content, *calls, *c;
  const char *refusal;
  size_t i;

  tg_llm_reply_add_usage(r, json_object_get(usage, "prompt_tokens"),
                         json_object_get(usage, "completion_tokens"));
  if (!json_is_object(m)) {
    snprintf(msg, msglen, "the answer has no choices[0].message");
    return TG_EPROTO;
  }
  snprintf(r->stop, sizeof r->stop, "%s",
           stop_word(json_string_value(json_object_get(choice, "finish_reason"))));
  content = json_object_get(m, "content");
  refusal = json_string_value(json_object_get(m, "refusal"));
  if (json_is_string(content)) {
    if (tg_llm_reply_add_text(r, json_string_value(content)))
      return TG_ENOMEM;
  } else if (content && !json_is_null(content)) {
    snprintf(msg, msglen, "the message's content is neither text nor null");
    return TG_EPROTO;
  } else if (refusal) {
    if (tg_llm_reply_add_text(r, refusal))
      return TG_ENOMEM;
    snprintf(r->stop, sizeof r->stop, "refusal");
  }
  calls = json_object_get(m, "tool_calls");
  if (calls && !json_is_array(calls) && !json_is_null(calls)) {
    snprintf(msg, msglen, "tool_calls is not an array");
    return TG_EPROTO;
  }
  json_array_foreach(calls, i, c)
  {
    json_t *fn = json_object_get(c, "function"), *args;
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *name = json_string_value(json_object_get(fn, "name"));
    char gen[32];
    if (!name || !*name) {
      snprintf(msg, msglen, "tool call %zu has no function name", i);
      return TG_EPROTO;
    }
    if (!(args = arguments(json_object_get(fn, "arguments")))) {
      snprintf(msg, msglen, "tool call %.64s: its arguments are not a JSON object", name);
      return TG_EPROTO;
    }
    if (!id || !*id) {
      snprintf(gen, sizeof gen, "call_%zu", i);
      id = gen;
    }
    if (tg_llm_reply_add_call(r, id, name, args))
      return TG_ENOMEM;
  }
  if (structured && json_is_string(content)) {
    json_t *v = json_loadb(json_string_value(content), json_string_length(content), 0, NULL);
    if (json_is_object(v))
      r->structured = v;
    else
      json_decref(v);
  }
  return 0;
}

const tg_llm_wire tg_llm_wire_openai = {
    .path = "/chat/completions",
    .build = build,
    .headers = headers,
    .parse = parse,
};
