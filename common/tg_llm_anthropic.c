/*
 * tg_llm_anthropic: the Anthropic Messages API wire format of tg_llm.
 *
 * Request (POST <base>/v1/messages, headers x-api-key and anthropic-version: 2023-06-01):
 * {model, max_tokens, system?, temperature?, messages, tools?, tool_choice?}. The neutral
 * transcript maps to content blocks: an assistant turn becomes [text?, tool_use{id, name,
 * input}...]; a run of "tool" messages becomes one user turn of tool_result{tool_use_id,
 * content (the result as a string), is_error} blocks. Structured output is a tool
 * "structured_output" whose input_schema is the schema, forced with tool_choice {type:"tool",
 * name}; its tool_use input is the answer.
 *
 * Answer: {id, type:"message", role, content:[{type:"text", text} | {type:"tool_use", id, name,
 * input (object)}], stop_reason, usage:{input_tokens, output_tokens, cache_*_input_tokens}}.
 * Input tokens are input_tokens plus the cache creation and cache read counts (all are input
 * the model processed).
 *
 * Sources: docs.anthropic.com/en/api/messages ("Create a Message": content blocks,
 * stop_reason values end_turn, max_tokens, stop_sequence, tool_use, refusal), /en/docs/
 * build-with-claude/tool-use (tool_use / tool_result blocks, is_error, tool_choice {type:"tool",
 * name}), /en/api/errors ({"type":"error","error":{"type","message"}}, 529 overloaded_error).
 */
#include "tg_err.h"
#include "tg_llm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANTHROPIC_VERSION "2023-06-01"

/* One assistant turn's content blocks from a neutral assistant message (validated). */
static json_t *assistant_blocks(const json_t *m)
{
  json_t *blocks = json_array(), *calls = json_object_get(m, "tool_calls"), *c;
  const char *text = json_string_value(json_object_get(m, "content"));
  size_t i;

  if (!blocks)
    return NULL;
  if (text && *text &&
      json_array_append_new(blocks, json_pack("{s:s, s:s}", "type", "text", "text", text)))
    goto nomem;
  json_array_foreach(calls, i, c)
  {
    json_t *args = json_object_get(c, "arguments");
    if (json_array_append_new(blocks, json_pack("{s:s, s:O, s:O, s:o}", "type", "tool_use", "id",
                                                json_object_get(c, "id"), "name",
                                                json_object_get(c, "name"), "input",
                                                args ? json_incref(args) : json_object())))
      goto nomem;
  }
  if (json_array_size(blocks) == 0) { /* an empty turn: the API wants some content */
    json_decref(blocks);
    return json_string("");
  }
  return blocks;
nomem:
  json_decref(blocks);
  return NULL;
}

/* The transcript (validated by tg_llm.c) as Messages turns; NULL when out of memory. */
static json_t *messages(const json_t *in)
{
  json_t *out = json_array(), *m, *results = NULL;
  size_t i;

  if (!out)
    return NULL;
  json_array_foreach(in, i, m)
  {
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *turn;
    if (strcmp(role, "tool") == 0) {
      if (!results) { /* the first of a run opens one user turn */
        if (!(results = json_array()) ||
            json_array_append_new(out, json_pack("{s:s, s:O}", "role", "user", "content", results)))
          goto fail;
      }
      if (json_array_append_new(results,
                                json_pack("{s:s, s:O, s:O, s:b}", "type", "tool_result",
                                          "tool_use_id", json_object_get(m, "tool_call_id"),
                                          "content", json_object_get(m, "content"), "is_error",
                                          json_is_true(json_object_get(m, "is_error")))))
        goto fail;
      continue;
    }
    json_decref(results);
    results = NULL;
    if (strcmp(role, "user") == 0)
      turn = json_pack("{s:s, s:O}", "role", "user", "content", json_object_get(m, "content"));
    else
      turn = json_pack("{s:s, s:o}", "role", "assistant", "content", assistant_blocks(m));
    if (json_array_append_new(out, turn))
      goto fail;
  }
  json_decref(results);
  return out;
fail:
  json_decref(results);
  json_decref(out);
  return NULL;
}

static json_t *tools(const tg_llm_request *req)
{
  json_t *out = tg_llm_tool_list(req->tools, "input_schema", 0);
  if (out && req->output_schema &&
      json_array_append_new(out,
                            json_pack("{s:s, s:s, s:O}", "name", TG_LLM_STRUCTURED_NAME,
                                      "description", "Give the final answer as this JSON object.",
                                      "input_schema", req->output_schema))) {
    json_decref(out);
    return NULL;
  }
  return out;
}

static json_t *build(const tg_llm_request *req)
{
  json_t *body =
      json_pack("{s:s, s:i, s:o}", "model", req->model, "max_tokens",
                req->max_tokens > 0 ? req->max_tokens : 4096, "messages", messages(req->messages));
  if (!body)
    return NULL;
  if ((req->system && json_object_set_new(body, "system", json_string(req->system))) ||
      (req->temperature >= 0 &&
       json_object_set_new(body, "temperature", json_real(req->temperature))) ||
      ((json_array_size(req->tools) || req->output_schema) &&
       json_object_set_new(body, "tools", tools(req))) ||
      (req->output_schema && json_object_set_new(body, "tool_choice",
                                                 json_pack("{s:s, s:s}", "type", "tool", "name",
                                                           TG_LLM_STRUCTURED_NAME)))) {
    json_decref(body);
    return NULL;
  }
  return body;
}

static int headers(const char *key, char **lines, size_t n)
{
  int k = 0;
  if (n < 2)
    return TG_ENOMEM;
  if (key && !(lines[k++] = tg_llm_line("x-api-key", key)))
    return TG_ENOMEM;
  if (!(lines[k++] = tg_llm_line("anthropic-version", ANTHROPIC_VERSION)))
    return TG_ENOMEM;
  return k;
}

static int parse(const json_t *body, int structured, tg_llm_reply *r, char *msg, size_t msglen)
{
  json_t *usage = json_object_get(body, "usage"), *content = json_object_get(body, "content"), *b;
  const char *stop = json_string_value(json_object_get(body, "stop_reason"));
  size_t i;

  /* each count added on its own: their sum may overflow (the server's numbers are untrusted) */
  tg_llm_reply_add_usage(r, json_object_get(usage, "input_tokens"),
                         json_object_get(usage, "output_tokens"));
  tg_llm_reply_add_usage(r, json_object_get(usage, "cache_creation_input_tokens"), NULL);
  tg_llm_reply_add_usage(r, json_object_get(usage, "cache_read_input_tokens"), NULL);
  if (!json_is_array(content)) {
    snprintf(msg, msglen, "the answer has no content array");
    return TG_EPROTO;
  }
  snprintf(r->stop, sizeof r->stop, "%s", stop ? stop : "");
  json_array_foreach(content, i, b)
  {
    const char *type = json_string_value(json_object_get(b, "type"));
    if (type && strcmp(type, "text") == 0) {
      const char *text = json_string_value(json_object_get(b, "text"));
      if (!text) {
        snprintf(msg, msglen, "content block %zu: a text block without text", i);
        return TG_EPROTO;
      }
      if (tg_llm_reply_add_text(r, text))
        return TG_ENOMEM;
    } else if (type && strcmp(type, "tool_use") == 0) {
      const char *id = json_string_value(json_object_get(b, "id"));
      const char *name = json_string_value(json_object_get(b, "name"));
      json_t *input = json_object_get(b, "input");
      if (!id || !*id || !name || !*name) {
        snprintf(msg, msglen, "content block %zu: a tool_use block without id or name", i);
        return TG_EPROTO;
      }
      if (!json_is_object(input)) {
        snprintf(msg, msglen, "tool call %.64s: its input is not a JSON object", name);
        return TG_EPROTO;
      }
      if (structured && strcmp(name, TG_LLM_STRUCTURED_NAME) == 0) {
        json_decref(r->structured);
        r->structured = json_incref(input);
      } else if (tg_llm_reply_add_call(r, id, name, json_incref(input)))
        return TG_ENOMEM;
    } /* other blocks (thinking, server tools) carry nothing the caller uses */
  }
  return 0;
}

const tg_llm_wire tg_llm_wire_anthropic = {
    .path = "/v1/messages",
    .build = build,
    .headers = headers,
    .parse = parse,
};
