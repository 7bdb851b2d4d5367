/*
 * libFuzzer target for the condition language (common/tg_expr.c): any bytes (up to the first
 * NUL) are parsed; an expression that parses is walked for its variables and evaluated against
 * a small fixed scope holding every JSON type, so both the parser and the strict evaluator see
 * hostile input. Neither may crash or leak; a parse error must come with a "column N: "
 * message, and an evaluation error with a message.
 */
#include "tg_err.h"
#include "tg_expr.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void count_var(void *arg, const char *path)
{
  if (!*path)
    abort(); /* paths are never empty */
  ++*(size_t *)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static json_t *scope;
  char *src = malloc(size + 1), err[256];
  tg_expr *e = NULL;
  size_t vars = 0;
  int rc, result;
  if (!src)
    return 0;
  if (!scope)
    scope = json_loads("{\"inputs\":{\"n\":1,\"s\":\"a\"},\"nodes\":{\"1\":{\"output\":"
                       "{\"x\":[1,\"b\",true,null,{}]}}},\"vars\":{\"a\":1,\"b\":\"x\",\"t\":true,"
                       "\"f\":false,\"z\":null,\"o\":{\"k\":2},\"l\":[3]}}",
                       0, NULL);
  memcpy(src, data, size);
  src[size] = '\0';
  rc = tg_expr_parse(&e, src, err, sizeof err);
  if (rc == 0) {
    tg_expr_each_var(e, count_var, &vars);
    rc = tg_expr_eval(e, scope, &result, err, sizeof err);
    if ((rc != 0 && rc != TG_EINVAL) || (rc == 0 && result != 0 && result != 1) ||
        (rc != 0 && !err[0]))
      abort();
  } else if (rc == TG_EINVAL && strncmp(err, "column ", 7) != 0) {
    abort();
  }
  tg_expr_free(e);
  free(src);
  return 0;
}
