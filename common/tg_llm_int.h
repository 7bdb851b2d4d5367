/*
 * tg_llm_int.h: what tg_llm.c shares with its wire formats (tg_llm_anthropic.c,
 * tg_llm_openai.c). One small table of functions per format, as curl's connection filters: the
 * call's state machine (tg_llm.c) owns retries and callbacks; a format only turns the neutral
 * request into its body and headers, and its answers back into a tg_llm_reply.
 */
#ifndef TG_LLM_INT_H
#define TG_LLM_INT_H

#include "tg_llm.h"

#include <stddef.h>

/* The name of the forced tool (Anthropic) / response format (OpenAI) of structured output. */
#define TG_LLM_STRUCTURED_NAME "structured_output"

typedef struct tg_llm_wire {
  const char *path; /* appended to the base URL: "/v1/messages", "/chat/completions" */

  /* The request body for req, validated by tg_llm.c (model, tools' names, the transcript's
   * shape): a new object, or NULL when out of memory. */
  json_t *(*build)(const tg_llm_request *req);

  /* Writes the NULL-terminated header lines for key (may be NULL) into lines[0..n-1], each a
   * malloc'd "Name: value" (the caller frees and wipes them). Returns the count or TG_ENOMEM. */
  int (*headers)(const char *key, char **lines, size_t n);

  /* Parses a 2xx answer into r (emptied before; usage added): 0, TG_EPROTO with msg saying
   * what is wrong, or TG_ENOMEM. */
  int (*parse)(const json_t *body, int structured, tg_llm_reply *r, char *msg, size_t msglen);
} tg_llm_wire;

extern const tg_llm_wire tg_llm_wire_anthropic;
extern const tg_llm_wire tg_llm_wire_openai;

/* Empties r's answer (text "", tool_calls [], structured NULL, stop "") but keeps its usage and
 * attempts: the state before a body is parsed into it. 0 or TG_ENOMEM. */
int tg_llm_reply_clear(tg_llm_reply *r);

/* Adds usage numbers (missing or negative ones count 0) to r. */
void tg_llm_reply_add_usage(tg_llm_reply *r, const json_t *in, const json_t *out);

/* Appends a tool call {id, name, arguments} to r->tool_calls (arguments taken: a reference is
 * stolen). 0 or TG_ENOMEM. */
int tg_llm_reply_add_call(tg_llm_reply *r, const char *id, const char *name, json_t *arguments);

/* Appends text to r->text. 0 or TG_ENOMEM. */
int tg_llm_reply_add_text(tg_llm_reply *r, const char *text);

/* The tools of tg_llm_request.tools in a format's shape: each {name, description?,
 * <schema_key>: input_schema or an empty object schema}, wrapped in {type:"function", function}
 * when as_function. A new array, or NULL when out of memory. */
json_t *tg_llm_tool_list(const json_t *tools, const char *schema_key, int as_function);

/* A malloc'd header line "name: value", or NULL when out of memory. */
char *tg_llm_line(const char *name, const char *value);

/* 1 when name matches ^[a-zA-Z0-9_-]{1,64}$ (the tool names both APIs accept). */
int tg_llm_tool_name_ok(const char *name);

#endif
