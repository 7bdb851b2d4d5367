/*
 * libFuzzer target for common/tg_llm.c's answer parsing: arbitrary bytes as the 2xx body of an
 * Anthropic and of an OpenAI answer, with and without structured output. A parsed reply must
 * hold what the Agent loop relies on: text set, tool_calls an array of {id, name, arguments}
 * with non-empty strings and object arguments, structured an object when set; a failure sets no
 * reply and says why.
 */
#include "tg_err.h"
#include "tg_llm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const tg_llm_reply *r, int structured)
{
  const json_t *c;
  size_t i;
  if (!r->text || !json_is_array(r->tool_calls) || r->input_tokens < 0 || r->output_tokens < 0 ||
      memchr(r->stop, 0, sizeof r->stop) == NULL)
    abort();
  if (r->structured && (!structured || !json_is_object(r->structured)))
    abort();
  if (structured && !r->structured && json_array_size(r->tool_calls) == 0)
    abort();
  json_array_foreach(r->tool_calls, i, c)
  {
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *name = json_string_value(json_object_get(c, "name"));
    if (!id || !*id || !name || !*name || !json_is_object(json_object_get(c, "arguments")))
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  for (int p = TG_LLM_ANTHROPIC; p <= TG_LLM_OPENAI; p++)
    for (int structured = 0; structured <= 1; structured++) {
      tg_llm_reply *r = (tg_llm_reply *)1;
      char msg[256] = "";
      int rc = tg_llm_parse_reply((tg_llm_provider)p, (const char *)data, size, structured, &r, msg,
                                  sizeof msg);
      if (rc == 0) {
        if (!r)
          abort();
        check(r, structured);
        tg_llm_reply_free(r);
      } else if (rc != TG_EPROTO || r != NULL || !msg[0])
        abort();
    }
  return 0;
}
