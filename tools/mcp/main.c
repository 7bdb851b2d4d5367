/*
 * toolgate-mcp: a small MCP client for operators and tests, built on tg_mcp.
 *
 *   toolgate-mcp [--header 'Name: value']... [--timeout MS] URL            lists tools
 *   toolgate-mcp [--header 'Name: value']... [--timeout MS] URL TOOL [JSON] calls a tool
 *
 * Listing prints "name<TAB>first line of description" per tool. A call prints the CallToolResult
 * JSON on stdout. Exit status: 0 success, 2 the tool reported isError:true, 1 any failure (the
 * reason on stderr). It runs its own uv loop, closes the MCP session (DELETE), the HTTP client
 * and the loop, and fails if the loop does not close clean. Header values are never printed.
 */
#include "tg_err.h"
#include "tg_http.h"
#include "tg_log.h"
#include "tg_mcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli {
  tg_http_client *http;
  tg_mcp_client *mcp;
  int exit_code;
} cli;

static void usage(FILE *f)
{
  fprintf(
      f, "usage: toolgate-mcp [--header 'Name: value']... [--timeout MS] URL [TOOL [JSON-ARGS]]\n"
         "  URL                 list the server's tools (name and first line of description)\n"
         "  URL TOOL [ARGS]     call TOOL with the JSON object ARGS (default {}) and print the\n"
         "                      CallToolResult; exit 2 when it has isError:true\n"
         "  --header 'N: v'     extra HTTP header on every request (repeatable; never printed)\n"
         "  --timeout MS        per-request timeout (default 30000)\n"
         "  TOOLGATE_LOG_LEVEL  debug|info|warn|error for the JSON log on stderr (default warn)\n");
}

static void on_http_closed(void *arg)
{
  (void)arg;
}

static void on_mcp_closed(void *arg)
{
  cli *c = arg;
  tg_http_client_close(c->http, on_http_closed, NULL);
}

static void finish(cli *c, int code)
{
  c->exit_code = code;
  tg_mcp_close(c->mcp, on_mcp_closed, c);
}

static void on_tools(void *arg, const tg_mcp_error *err, json_t *tools)
{
  cli *c = arg;
  size_t i;
  json_t *t;
  if (err) {
    fprintf(stderr, "toolgate-mcp: %s (%s)\n", err->message, tg_errname(err->err));
    finish(c, 1);
    return;
  }
  json_array_foreach(tools, i, t)
  {
    const char *name = json_string_value(json_object_get(t, "name"));
    const char *desc = json_string_value(json_object_get(t, "description"));
    size_t n = desc ? strcspn(desc, "\r\n") : 0;
    printf("%s\t%.*s\n", name ? name : "?", (int)n, desc ? desc : "");
  }
  finish(c, 0);
}

static void on_result(void *arg, const tg_mcp_error *err, json_t *result)
{
  cli *c = arg;
  char *text;
  if (err) {
    fprintf(stderr, "toolgate-mcp: %s (%s)\n", err->message, tg_errname(err->err));
    finish(c, 1);
    return;
  }
  text = json_dumps(result, JSON_INDENT(2));
  if (!text) {
    fprintf(stderr, "toolgate-mcp: out of memory\n");
    finish(c, 1);
    return;
  }
  printf("%s\n", text);
  free(text);
  finish(c, json_is_true(json_object_get(result, "isError")) ? 2 : 0);
}

int main(int argc, char **argv)
{
  const char **headers = calloc((size_t)argc + 1, sizeof *headers);
  size_t nh = 0;
  const char *url = NULL, *tool = NULL, *args_text = NULL, *lvl = getenv("TOOLGATE_LOG_LEVEL");
  long timeout_ms = 0;
  json_t *args = NULL;
  uv_loop_t loop;
  cli c = {.exit_code = 1};
  tg_mcp_options opt = {0};
  int rc, pos = 0;

  tg_log_init("toolgate-mcp", lvl ? tg_log_level_parse(lvl) : TG_LOG_WARN);
  if (!headers)
    return 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      free(headers);
      return 0;
    } else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc) {
      headers[nh++] = argv[++i];
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      timeout_ms = strtol(argv[++i], NULL, 10);
    } else if (argv[i][0] == '-' && argv[i][1] == '-') {
      usage(stderr);
      free(headers);
      return 1;
    } else if (pos == 0) {
      url = argv[i], pos++;
    } else if (pos == 1) {
      tool = argv[i], pos++;
    } else if (pos == 2) {
      args_text = argv[i], pos++;
    } else {
      usage(stderr);
      free(headers);
      return 1;
    }
  }
  if (!url) {
    usage(stderr);
    free(headers);
    return 1;
  }
  if (args_text) {
    json_error_t jerr;
    args = json_loads(args_text, 0, &jerr);
    if (!json_is_object(args)) {
      fprintf(stderr, "toolgate-mcp: JSON-ARGS must be an object: %s\n",
              args ? "not an object" : jerr.text);
      json_decref(args);
      free(headers);
      return 1;
    }
  }
  uv_loop_init(&loop);
  rc = tg_http_client_init(&c.http, &loop);
  if (rc) {
    fprintf(stderr, "toolgate-mcp: http client: %s\n", tg_strerror(rc));
    goto out;
  }
  opt.url = url;
  opt.headers = headers;
  opt.request_timeout_ms = timeout_ms;
  opt.client_name = "toolgate-mcp";
  rc = tg_mcp_client_new(&c.mcp, c.http, &opt);
  if (rc) {
    fprintf(stderr, "toolgate-mcp: %s\n",
            rc == TG_EINVAL ? "bad URL or --header" : tg_strerror(rc));
    tg_http_client_close(c.http, NULL, NULL);
    goto out;
  }
  rc = tool ? tg_mcp_call_tool(c.mcp, tool, args, on_result, &c)
            : tg_mcp_list_tools(c.mcp, on_tools, &c);
  if (rc) {
    fprintf(stderr, "toolgate-mcp: %s\n", tg_strerror(rc));
    finish(&c, 1);
  }
out:
  uv_run(&loop, UV_RUN_DEFAULT);
  json_decref(args);
  free(headers);
  if (uv_loop_close(&loop) != 0) {
    fprintf(stderr, "toolgate-mcp: event loop did not close clean\n");
    return 1;
  }
  return c.exit_code;
}
