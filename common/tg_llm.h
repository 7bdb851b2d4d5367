/*
 * tg_llm: one asynchronous request to a language model, on tg_http (curl multi on the loop).
 * README "Language models". Formats: tg_llm_anthropic.c, tg_llm_openai.c (tg_llm_int.h).
 *
 * Three wire formats behind one neutral shape:
 *   - TG_LLM_ANTHROPIC: the Messages API, POST <base>/v1/messages with x-api-key and
 *     anthropic-version: 2023-06-01; tools as {name, description, input_schema}; the answer's
 *     content blocks text / tool_use {id, name, input}; stop_reason; usage.input_tokens /
 *     output_tokens. Tool results go back as a user message of tool_result blocks
 *     {tool_use_id, content, is_error}. (docs.anthropic.com, "Messages" and "Tool use".)
 *   - TG_LLM_OPENAI: Chat Completions, POST <base>/chat/completions with Authorization: Bearer;
 *     tools as {type:"function", function:{name, description, parameters}}; the answer's
 *     choices[0].message {content, tool_calls[{id, type:"function", function:{name,
 *     arguments (a JSON text)}}]}, finish_reason; usage.prompt_tokens / completion_tokens. Tool
 *     results go back as {role:"tool", tool_call_id, content}. (platform.openai.com, "Chat
 *     Completions" and "Function calling".)
 *   - TG_LLM_OPENAI_COMPATIBLE: the OpenAI format at another base URL (vLLM, llama.cpp server,
 *     Ollama); the key is optional.
 *
 * The neutral transcript (tg_llm_request.messages) is an array of:
 *   {"role":"user", "content":"text"}
 *   {"role":"assistant", "content":"text or null", "tool_calls":[{"id","name","arguments":{}}]}
 *   {"role":"tool", "tool_call_id":"...", "name":"...", "content":"text", "is_error":false}
 * Consecutive "tool" messages become one Anthropic user message of tool_result blocks.
 *
 * Structured output: when output_schema is set, the model is made to answer with a JSON object
 * meeting it: for Anthropic a tool "structured_output" whose input_schema is the schema, forced
 * with tool_choice {type:"tool", name:"structured_output"}; for OpenAI response_format
 * {type:"json_schema", json_schema:{name:"structured_output", schema, strict:false}}. The
 * object arrives in tg_llm_reply.structured (validation against the schema is the caller's).
 * An answer with neither that object nor any tool call is invalid_model_output; one with tool
 * calls (OpenAI lets the model call the offered tools first) has structured NULL.
 *
 * Retries: 429, 529, 500-504 and connection failures that certainly did not reach the model are
 * retried up to max_retries times, waiting retry-after-ms or retry-after (seconds or an
 * HTTP-date) when the answer carries it, else retry_base_ms doubled per retry with jitter,
 * capped at 60 s; a wait over 60 s, or longer than what is left of deadline_ms, is not taken
 * (the call fails with the class of the last answer). Each attempt has timeout_ms. Tool names
 * must match ^[a-zA-Z0-9_-]{1,64}$ (both APIs' rule; callers sanitise) and "structured_output"
 * is reserved when output_schema is set: else TG_EINVAL.
 *
 * Callbacks (libuv's rule): when tg_llm_send returns an error, done is never called; when it
 * returns 0, done is called exactly once, later, from the loop, unless tg_llm_cancel comes
 * first. API keys are used only in the request headers: never logged, never in errors.
 */
#ifndef TG_LLM_H
#define TG_LLM_H

#include "tg_http.h"

#include <jansson.h>
#include <stdint.h>

typedef enum { TG_LLM_ANTHROPIC = 0, TG_LLM_OPENAI, TG_LLM_OPENAI_COMPATIBLE } tg_llm_provider;

/* "anthropic" | "openai" | "openai_compatible" (the builder's config.model.provider) into *out:
 * 0, or TG_EINVAL for another name. */
int tg_llm_provider_parse(const char *name, tg_llm_provider *out);

typedef struct tg_llm_request {
  tg_llm_provider provider;
  const char *base_url;        /* required; trailing slashes are ignored */
  const char *api_key;         /* NULL: none sent (openai_compatible only; else TG_EINVAL) */
  const char *model;           /* modelName, passed through */
  const char *system;          /* system prompt, or NULL */
  const json_t *messages;      /* the neutral transcript above (borrowed) */
  const json_t *tools;         /* array of {name, description, input_schema}, or NULL */
  const json_t *output_schema; /* a JSON schema object to force structured output, or NULL */
  double temperature;          /* < 0: not sent */
  int max_tokens;              /* 0: 4096 (Anthropic requires it) */
  long timeout_ms;             /* per attempt; 0: 120000 */
  int max_retries;             /* see above */
  long retry_base_ms;          /* 0: 500 */
  uint64_t deadline_ms;        /* uv_now() value after which no retry starts; 0: none */
} tg_llm_request;

/* What the model answered (after the retries). Owned by the callback's caller: free with
 * tg_llm_reply_free. */
typedef struct tg_llm_reply {
  char *text;            /* the text blocks / content joined, "" when none */
  json_t *tool_calls;    /* array of {id, name, arguments (object)}; [] when none */
  json_t *structured;    /* the structured answer (object) when output_schema was set, else NULL */
  char stop[32];         /* "end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", ...
                            OpenAI's finish_reason mapped: stop -> end_turn, tool_calls ->
                            tool_use, length -> max_tokens */
  int64_t input_tokens;  /* summed over every attempt that answered with usage */
  int64_t output_tokens; /* idem */
  int attempts;          /* requests sent */
} tg_llm_reply;

void tg_llm_reply_free(tg_llm_reply *r); /* NULL-safe */

/*
 * done: err 0 and reply set, or err != 0 with error_class and a human-readable message (no
 * secret, at most 511 bytes) and reply possibly set (its usage counts even on failure):
 *   "rate_limited"         429 after the retries
 *   "model_overloaded"     529 after the retries
 *   "model_error"          another 4xx/5xx (the API's error.message quoted), or a transport
 *                          failure after the retries
 *   "model_auth"           401 / 403
 *   "invalid_model_output" a 2xx body that is not the API's shape: not JSON, truncated, a tool
 *                          call whose arguments are not a JSON object, structured output
 *                          missing
 *   "timeout"              the last attempt timed out
 * err is the TG_E* code (TG_EIO, TG_ETIMEDOUT, TG_EAUTH, TG_EPROTO, TG_ECANCELED...).
 * The reply and message are valid during the callback; take the reply by setting *reply NULL.
 */
typedef void (*tg_llm_done_cb)(void *arg, int err, const char *error_class, const char *message,
                               tg_llm_reply **reply);

typedef struct tg_llm_call tg_llm_call;

/*
 * Starts req on http (the trusted client for configured base URLs; an egress-checked one for a
 * base URL a user gave). Everything in req is copied: it may go after the call. *out (may be
 * NULL) is the call handle, valid until done returns. Errors: TG_EINVAL (no model, no base URL,
 * missing key), TG_ENOMEM.
 */
int tg_llm_send(tg_http_client *http, const tg_llm_request *req, tg_llm_done_cb done, void *arg,
                tg_llm_call **out);

/* Stops a call; done is never called. Safe from any callback except done itself. */
void tg_llm_cancel(tg_llm_call *c);

/* The request body tg_llm_send would POST for req (for tests and the fuzzer): a new object, or
 * NULL with TG_EINVAL/TG_ENOMEM in *err. */
json_t *tg_llm_build_body(const tg_llm_request *req, int *err);

/*
 * Parses one 2xx response body of provider into *reply (a new reply; usage added). 0, or
 * TG_EPROTO with message (size msglen) saying what is wrong (invalid_model_output) and *reply
 * NULL. structured: 1 when the request forced structured output. A parsed reply's tool_calls
 * always have object arguments (checked by tests/fuzz/fuzz_llm_reply.c).
 */
int tg_llm_parse_reply(tg_llm_provider provider, const char *body, size_t len, int structured,
                       tg_llm_reply **reply, char *message, size_t msglen);

#endif
