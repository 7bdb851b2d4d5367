/*
 * Unit tests of common/tg_workflow.c: definition validation (structure and graph), run input
 * checking, execution order, template rendering (with its output budget) and the End node's
 * output, providers.
 * Definitions are written as JSON text so each test reads like what the web UI sends.
 */
#include "tg_unit.h"

#include <stdlib.h>
#include <string.h>

#include "tg_err.h"
#include "tg_workflow.h"

static json_t *J(const char *text)
{
  json_error_t e;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
  if (!v)
    fail_msg("bad test JSON: %s: %s", e.text, text);
  return v;
}

/* Start(s) -> MCP(m1) -> MCP(m2) -> End(e). */
static const char *chain =
    "{\"title\":\"t\",\"nodes\":["
    "{\"id\":\"s\",\"type\":\"Start\",\"name\":\"Start\",\"config\":{\"inputVariables\":["
    "{\"name\":\"message\",\"type\":\"string\",\"required\":true},"
    "{\"name\":\"count\",\"type\":\"number\",\"required\":false}]}},"
    "{\"id\":\"m2\",\"type\":\"MCP\",\"name\":\"sum\",\"config\":{\"provider\":\"demo\","
    "\"tool\":\"get-sum\",\"arguments\":{\"a\":1,\"b\":\"{{inputs.count}}\"}}},"
    "{\"id\":\"m1\",\"type\":\"MCP\",\"name\":\"echo\",\"config\":{\"provider\":\"slack\","
    "\"tool\":\"echo\",\"arguments\":{\"message\":\"{{inputs.message}}\"}}},"
    "{\"id\":\"e\",\"type\":\"End\",\"name\":\"End\",\"config\":{\"outputVariables\":["
    "{\"name\":\"echoed\",\"value\":\"{{nodes.m1.output.content.0.text}}\"}]}}],"
    "\"connections\":[{\"id\":\"c1\",\"from\":\"s\",\"to\":\"m1\"},"
    "{\"id\":\"c2\",\"from\":\"m1\",\"to\":\"m2\"},{\"id\":\"c3\",\"from\":\"m2\",\"to\":\"e\"}]}";

/* 1 if some error in errs has this node (NULL: any) and a message containing needle. */
static int has_error(const json_t *errs, const char *node, const char *field, const char *needle)
{
  size_t i;
  const json_t *e;
  json_array_foreach(errs, i, e)
  {
    const char *n = json_string_value(json_object_get(e, "node"));
    const char *f = json_string_value(json_object_get(e, "field"));
    const char *m = json_string_value(json_object_get(e, "message"));
    if (node && (!n || strcmp(n, node) != 0))
      continue;
    if (field && (!f || strcmp(f, field) != 0))
      continue;
    if (m && strstr(m, needle))
      return 1;
  }
  return 0;
}

static void dump_on_fail(const json_t *errs)
{
  char *s = json_dumps(errs, JSON_COMPACT);
  print_message("errors: %s\n", s ? s : "(null)");
  free(s);
}

static void test_valid_chain(void **state)
{
  json_t *def = J(chain), *errs = tg_workflow_validate(def), *order;
  if (errs)
    dump_on_fail(errs);
  assert_null(errs);
  order = tg_workflow_order(def);
  assert_non_null(order);
  assert_int_equal(json_array_size(order), 4);
  assert_string_equal(json_string_value(json_object_get(json_array_get(order, 0), "id")), "s");
  assert_string_equal(json_string_value(json_object_get(json_array_get(order, 1), "id")), "m1");
  assert_string_equal(json_string_value(json_object_get(json_array_get(order, 2), "id")), "m2");
  assert_string_equal(json_string_value(json_object_get(json_array_get(order, 3), "id")), "e");
  json_decref(order);
  json_decref(def);
}

static void expect_invalid(const char *text, const char *node, const char *field,
                           const char *needle)
{
  json_t *def = J(text), *errs = tg_workflow_validate(def);
  assert_non_null(errs);
  if (!has_error(errs, node, field, needle)) {
    dump_on_fail(errs);
    fail_msg("expected an error with \"%s\"", needle);
  }
  assert_null(tg_workflow_order(def));
  json_decref(errs);
  json_decref(def);
}

static void test_missing_start(void **state)
{
  expect_invalid("{\"nodes\":[{\"id\":\"e\",\"type\":\"End\"}],\"connections\":[]}", NULL, "nodes",
                 "no Start");
}

static void test_missing_end(void **state)
{
  expect_invalid("{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"}],\"connections\":[]}", NULL,
                 "nodes", "no End");
}

static void test_duplicate_ids(void **state)
{
  expect_invalid("{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"},"
                 "{\"id\":\"x\",\"type\":\"MCP\",\"config\":{\"provider\":\"p\",\"tool\":\"t\"}},"
                 "{\"id\":\"x\",\"type\":\"End\"}],"
                 "\"connections\":[{\"from\":\"s\",\"to\":\"x\"}]}",
                 "x", "id", "duplicate");
}

static void test_dangling_connection(void **state)
{
  expect_invalid("{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"},{\"id\":\"e\",\"type\":\"End\"}],"
                 "\"connections\":[{\"from\":\"s\",\"to\":\"ghost\"}]}",
                 NULL, "connections[0].to", "ghost");
}

static void test_cycle(void **state)
{
  expect_invalid("{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"},"
                 "{\"id\":\"a\",\"type\":\"MCP\",\"config\":{\"provider\":\"p\",\"tool\":\"t\"}},"
                 "{\"id\":\"b\",\"type\":\"MCP\",\"config\":{\"provider\":\"p\",\"tool\":\"t\"}},"
                 "{\"id\":\"e\",\"type\":\"End\"}],"
                 "\"connections\":[{\"from\":\"s\",\"to\":\"a\"},{\"from\":\"a\",\"to\":\"b\"},"
                 "{\"from\":\"b\",\"to\":\"a\"}]}",
                 NULL, "connections", "cycle");
}

static void test_unreachable_node(void **state)
{
  expect_invalid("{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"},"
                 "{\"id\":\"a\",\"type\":\"MCP\",\"config\":{\"provider\":\"p\",\"tool\":\"t\"}},"
                 "{\"id\":\"e\",\"type\":\"End\"}],"
                 "\"connections\":[{\"from\":\"s\",\"to\":\"e\"}]}",
                 "a", "connections", "unreachable from Start");
}

/* Start -> node "n" (type and config given) -> End "e". */
static void expect_node_error(const char *type, const char *config, const char *field,
                              const char *needle)
{
  char buf[2048];
  snprintf(buf, sizeof buf,
           "{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"},"
           "{\"id\":\"n\",\"type\":\"%s\",\"config\":%s},{\"id\":\"e\",\"type\":\"End\"}],"
           "\"connections\":[{\"from\":\"s\",\"to\":\"n\"},{\"from\":\"n\",\"to\":\"e\"}]}",
           type, config);
  expect_invalid(buf, "n", field, needle);
}

#define MODEL "\"model\":{\"provider\":\"anthropic\",\"modelName\":\"m\"}"

static void test_agent_self_review_config(void **state)
{
  (void)state;
  expect_node_error("Agent", "{}", "config.prompt", "needs a string");
  expect_node_error("Agent", "{\"prompt\":\"p\"}", "config.model", "needs an object");
  expect_node_error("Agent", "{\"prompt\":\"p\",\"model\":{\"provider\":\"x\"}}",
                    "config.model.provider", "openai_compatible");
  expect_node_error("Agent", "{\"prompt\":\"p\",\"model\":{\"provider\":\"openai\"}}",
                    "config.model.modelName", "non-empty");
  expect_node_error("Agent", "{\"prompt\":\"p\"," MODEL ",\"tools\":[3]}", "config.tools",
                    "non-empty string");
  expect_node_error("Agent", "{\"prompt\":\"p\"," MODEL ",\"tools\":\"x\"}", "config.tools",
                    "array of names");
  expect_node_error("Agent", "{\"prompt\":\"p\"," MODEL ",\"maxIterations\":51}",
                    "config.maxIterations", "1 to 50");
  expect_node_error("Agent", "{\"prompt\":\"p\"," MODEL ",\"temperature\":2.5}",
                    "config.temperature", "0 to 2");
  expect_node_error("Agent", "{\"prompt\":\"p\"," MODEL ",\"outputSchema\":[]}",
                    "config.outputSchema", "schema object");
  expect_node_error("Agent", "{\"prompt\":\"{{vars.x}} {{nodes.e.output}}\"," MODEL "}",
                    "config.prompt", "node e does not run before this node");
  expect_node_error("Self-Review", "{\"minConfidence\":0.5}", "config.reviewPrompt", "non-empty");
  expect_node_error("Self-Review", "{\"reviewPrompt\":\"r\"}", "config.minConfidence", "0 to 1");
  expect_node_error("Self-Review", "{\"reviewPrompt\":\"r\",\"minConfidence\":1.5}",
                    "config.minConfidence", "0 to 1");
  expect_node_error("Self-Review",
                    "{\"reviewPrompt\":\"r\",\"minConfidence\":1,\"onFail\":\"ignore\"}",
                    "config.onFail", "continue");
  expect_node_error("Self-Review", "{\"reviewPrompt\":\"r\",\"minConfidence\":1,\"target\":\"e\"}",
                    "config.target", "node e does not run before this node");
  expect_node_error("Self-Review", "{\"reviewPrompt\":\"r\",\"minConfidence\":1,\"target\":7}",
                    "config.target", "there is no node 7");
  expect_node_error("Self-Review", "{\"reviewPrompt\":\"r\",\"minConfidence\":1,\"target\":[]}",
                    "config.target", "must be a node id");
  expect_node_error(
      "Self-Review",
      "{\"reviewPrompt\":\"r\",\"minConfidence\":1,\"model\":{\"provider\":\"openai\"}}",
      "config.model.modelName", "non-empty");
}

static void test_mcp_without_tool(void **state)
{
  expect_invalid("{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"},"
                 "{\"id\":\"m\",\"type\":\"MCP\",\"config\":{\"provider\":\"gmail\"}},"
                 "{\"id\":\"e\",\"type\":\"End\"}],"
                 "\"connections\":[{\"from\":\"s\",\"to\":\"m\"},{\"from\":\"m\",\"to\":\"e\"}]}",
                 "m", "config.tool", "tool");
}

static void test_mcp_adhoc_ok(void **state)
{
  json_t *def = J("{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"},"
                  "{\"id\":\"m\",\"type\":\"MCP\",\"config\":{\"url\":\"http://127.0.0.1:1/mcp\","
                  "\"headers\":{\"x-k\":\"v\"},\"tool\":\"echo\","
                  "\"arguments\":{\"m\":\"{{inputs.free}}\"}}},"
                  "{\"id\":\"e\",\"type\":\"End\"}],"
                  "\"connections\":[{\"from\":\"s\",\"to\":\"m\"},{\"from\":\"m\",\"to\":\"e\"}]}");
  json_t *errs = tg_workflow_validate(def), *prov;
  if (errs)
    dump_on_fail(errs);
  assert_null(errs);
  prov = tg_workflow_providers(def); /* ad-hoc nodes name no provider */
  assert_int_equal(json_array_size(prov), 0);
  json_decref(prov);
  json_decref(def);
}

static void test_inputs(void **state)
{
  json_t *def = J(chain), *errs, *in;

  in = J("{\"count\":3}");
  errs = tg_workflow_validate_inputs(def, in);
  assert_non_null(errs);
  assert_true(has_error(errs, NULL, "inputs.message", "required"));
  json_decref(errs);
  json_decref(in);

  errs = tg_workflow_validate_inputs(def, NULL);
  assert_non_null(errs);
  assert_true(has_error(errs, NULL, "inputs.message", "required"));
  json_decref(errs);

  in = J("{\"message\":\"hi\",\"count\":\"three\"}");
  errs = tg_workflow_validate_inputs(def, in);
  assert_non_null(errs);
  assert_true(has_error(errs, NULL, "inputs.count", "number"));
  assert_false(has_error(errs, NULL, "inputs.message", ""));
  json_decref(errs);
  json_decref(in);

  in = J("{\"message\":\"hi\",\"count\":2.5}");
  assert_null(tg_workflow_validate_inputs(def, in));
  json_decref(in);

  in = J("{\"message\":\"hi\"}"); /* count is optional */
  assert_null(tg_workflow_validate_inputs(def, in));
  json_decref(in);

  in = J("[1]");
  errs = tg_workflow_validate_inputs(def, in);
  assert_true(has_error(errs, NULL, "inputs", "object"));
  json_decref(errs);
  json_decref(in);
  json_decref(def);
}

static const char *ctx_text =
    "{\"inputs\":{\"message\":\"hello\",\"count\":7,\"flags\":{\"x\":true}},"
    "\"nodes\":{\"n1\":{\"output\":{\"content\":[{\"type\":\"text\",\"text\":\"Echo: hello\"}],"
    "\"isError\":false}}}}";

static void test_render_types(void **state)
{
  json_t *ctx = J(ctx_text), *args, *out;
  char err[128];

  args = J("{\"n\":\"{{inputs.count}}\",\"sp\":\"{{ inputs.count }}\",\"f\":\"{{inputs.flags}}\","
           "\"t\":\"count={{inputs.count}} msg={{inputs.message}}!\",\"lit\":5,"
           "\"arr\":[\"{{inputs.message}}\",null],\"plain\":\"no template {x}\"}");
  out = tg_workflow_render(args, ctx, err, sizeof err);
  assert_non_null(out);
  assert_true(json_is_integer(json_object_get(out, "n")));
  assert_int_equal(json_integer_value(json_object_get(out, "n")), 7);
  assert_int_equal(json_integer_value(json_object_get(out, "sp")), 7);
  assert_true(json_is_true(json_object_get(json_object_get(out, "f"), "x")));
  assert_string_equal(json_string_value(json_object_get(out, "t")), "count=7 msg=hello!");
  assert_int_equal(json_integer_value(json_object_get(out, "lit")), 5);
  assert_string_equal(json_string_value(json_array_get(json_object_get(out, "arr"), 0)), "hello");
  assert_true(json_is_null(json_array_get(json_object_get(out, "arr"), 1)));
  assert_string_equal(json_string_value(json_object_get(out, "plain")), "no template {x}");
  /* The input is untouched. */
  assert_string_equal(json_string_value(json_object_get(args, "n")), "{{inputs.count}}");
  json_decref(out);
  json_decref(args);

  args = J("\"flags: {{inputs.flags}}\"");
  out = tg_workflow_render(args, ctx, err, sizeof err);
  assert_string_equal(json_string_value(out), "flags: {\"x\":true}");
  json_decref(out);
  json_decref(args);
  json_decref(ctx);
}

static void test_render_path_walk(void **state)
{
  json_t *ctx = J(ctx_text), *v, *out;
  char err[128];
  v = J("{\"m\":\"{{nodes.n1.output.content.0.text}}\",\"w\":\"got "
        "{{nodes.n1.output.content.0.text}}\"}");
  out = tg_workflow_render(v, ctx, err, sizeof err);
  assert_non_null(out);
  assert_string_equal(json_string_value(json_object_get(out, "m")), "Echo: hello");
  assert_string_equal(json_string_value(json_object_get(out, "w")), "got Echo: hello");
  json_decref(out);
  json_decref(v);
  json_decref(ctx);
}

static void expect_unresolved(const json_t *ctx, const char *text, const char *ref)
{
  json_t *v = J(text);
  char err[128] = "";
  assert_null(tg_workflow_render(v, ctx, err, sizeof err));
  assert_non_null(strstr(err, "unresolved reference"));
  assert_non_null(strstr(err, ref));
  json_decref(v);
}

static void test_render_unresolved(void **state)
{
  json_t *ctx = J(ctx_text);
  expect_unresolved(ctx, "{\"a\":\"{{inputs.nope}}\"}", "{{inputs.nope}}");
  expect_unresolved(ctx, "[\"x {{nodes.n1.output.content.5.text}} y\"]",
                    "{{nodes.n1.output.content.5.text}}");
  expect_unresolved(ctx, "\"{{nodes.n2.output}}\"", "{{nodes.n2.output}}");
  expect_unresolved(ctx, "\"{{other.key}}\"", "{{other.key}}");
  expect_unresolved(ctx, "\"{{inputs.message.length}}\"", "{{inputs.message.length}}");
  json_decref(ctx);
}

/* ctx with inputs.big = a string of n bytes, inputs.obj = {"big": that string}. */
static json_t *big_ctx(size_t n)
{
  char *text = malloc(n + 1);
  json_t *ctx;
  memset(text, 'x', n);
  text[n] = 0;
  ctx = json_pack("{s:{s:s, s:{s:s}}, s:{}}", "inputs", "big", text, "obj", "big", text, "nodes");
  free(text);
  return ctx;
}

static void test_render_budget(void **state)
{
  json_t *ctx = big_ctx(100000), *v, *out = NULL;
  char err[128];
  (void)state;

  /* Ten whole-value copies of a 100 kB string (100002 bytes as JSON each) fit in 1 MiB. */
  v = J("[\"{{inputs.big}}\",\"{{inputs.big}}\",\"{{inputs.big}}\",\"{{inputs.big}}\","
        "\"{{inputs.big}}\",\"{{inputs.big}}\",\"{{inputs.big}}\",\"{{inputs.big}}\","
        "\"{{inputs.big}}\",\"{{inputs.big}}\"]");
  assert_int_equal(tg_workflow_render_capped(&out, v, ctx, TG_WORKFLOW_RENDER_MAX, err, sizeof err),
                   0);
  assert_int_equal(json_array_size(out), 10);
  assert_int_equal(json_string_length(json_array_get(out, 9)), 100000);
  json_decref(out);
  /* An eleventh does not: whole values, strings with templates inside, objects as text. */
  json_array_append_new(v, json_string("{{inputs.big}}"));
  assert_int_equal(tg_workflow_render_capped(&out, v, ctx, TG_WORKFLOW_RENDER_MAX, err, sizeof err),
                   TG_ETOOBIG);
  assert_null(out);
  assert_non_null(strstr(err, "exceed"));
  json_array_set_new(v, 10, json_string("tail {{inputs.big}}"));
  assert_int_equal(tg_workflow_render_capped(&out, v, ctx, TG_WORKFLOW_RENDER_MAX, err, sizeof err),
                   TG_ETOOBIG);
  json_array_set_new(v, 10, json_string("tail {{inputs.obj}}"));
  assert_int_equal(tg_workflow_render_capped(&out, v, ctx, TG_WORKFLOW_RENDER_MAX, err, sizeof err),
                   TG_ETOOBIG);
  json_array_set_new(v, 10, json_string("{{inputs.obj}}"));
  assert_int_equal(tg_workflow_render_capped(&out, v, ctx, TG_WORKFLOW_RENDER_MAX, err, sizeof err),
                   TG_ETOOBIG);
  /* The default entry point uses the same budget; other errors keep their codes. */
  assert_null(tg_workflow_render(v, ctx, err, sizeof err));
  assert_non_null(strstr(err, "exceed"));
  json_decref(v);
  v = J("{\"a\":\"{{inputs.nope}}\"}");
  assert_int_equal(tg_workflow_render_capped(&out, v, ctx, 10, err, sizeof err), TG_ENOTFOUND);
  json_decref(v);
  /* Exactly at the cap is fine; literal values cost nothing. */
  v = J("{\"a\":\"<{{inputs.obj}}>\",\"lit\":\"a literal string\"}");
  assert_int_equal(tg_workflow_render_capped(&out, v, ctx, 100012, err, sizeof err), 0);
  json_decref(out);
  assert_int_equal(tg_workflow_render_capped(&out, v, ctx, 100011, err, sizeof err), TG_ETOOBIG);
  json_decref(v);
  json_decref(ctx);
}

static void test_end_output_budget(void **state)
{
  json_t *ctx = big_ctx(600000), *end, *out;
  char err[128] = "";
  (void)state;
  /* Each output alone is under 1 MiB; together they are not. */
  end = J("{\"id\":\"e\",\"type\":\"End\",\"config\":{\"outputVariables\":"
          "{\"a\":\"{{inputs.big}}\",\"b\":\"{{inputs.big}}\"}}}");
  assert_null(tg_workflow_end_output(end, ctx, err, sizeof err));
  assert_non_null(strstr(err, "exceed"));
  json_decref(end);
  end = J("{\"id\":\"e\",\"type\":\"End\",\"config\":{\"outputVariables\":"
          "{\"a\":\"{{inputs.big}}\"}}}");
  out = tg_workflow_end_output(end, ctx, err, sizeof err);
  assert_non_null(out);
  json_decref(out);
  json_decref(end);
  json_decref(ctx);
}

static void test_end_output(void **state)
{
  json_t *ctx = J("{\"inputs\":{\"count\":7},\"nodes\":{\"m1\":{\"output\":{\"content\":["
                  "{\"type\":\"text\",\"text\":\"Echo: hello\"}]}}}}");
  json_t *def = J(chain), *order, *out;
  json_t *obj_end = J("{\"id\":\"e\",\"type\":\"End\",\"config\":{\"outputVariables\":"
                      "{\"n\":\"{{inputs.count}}\",\"k\":[1,2]}}}");
  char err[128];
  order = tg_workflow_order(def);
  out = tg_workflow_end_output(json_array_get(order, 3), ctx, err, sizeof err);
  assert_non_null(out);
  assert_string_equal(json_string_value(json_object_get(out, "echoed")), "Echo: hello");
  json_decref(out);
  out = tg_workflow_end_output(obj_end, ctx, err, sizeof err);
  assert_non_null(out);
  assert_int_equal(json_integer_value(json_object_get(out, "n")), 7);
  assert_int_equal(json_array_size(json_object_get(out, "k")), 2);
  json_decref(out);
  json_decref(obj_end);
  json_decref(order);
  json_decref(def);
  json_decref(ctx);
}

/* Start with the given inputVariables text, one echo node, End. */
static json_t *with_vars(const char *vars)
{
  char buf[2048];
  snprintf(
      buf, sizeof buf,
      "{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\",\"config\":{\"inputVariables\":%s}},"
      "{\"id\":\"m\",\"type\":\"MCP\",\"config\":{\"provider\":\"p\",\"tool\":\"echo\"}},"
      "{\"id\":\"e\",\"type\":\"End\",\"config\":{}}],\"connections\":["
      "{\"id\":\"c1\",\"from\":\"s\",\"to\":\"m\"},{\"id\":\"c2\",\"from\":\"m\",\"to\":\"e\"}]}",
      vars);
  return J(buf);
}

/* A definition whose Start node has these inputVariables (JSON text) is refused with an error
 * containing message. */
static void assert_vars_refused(const char *vars, const char *message)
{
  json_t *d = with_vars(vars), *errs = tg_workflow_validate(d);
  assert_true(has_error(errs, "s", NULL, message));
  json_decref(errs);
  json_decref(d);
}

static void test_secret_inputs(void **state)
{
  json_t *d, *names;
  (void)state;
  d = with_vars("[{\"name\":\"key\",\"type\":\"string\",\"required\":true,\"secret\":true},"
                "{\"name\":\"msg\",\"type\":\"string\",\"secret\":false},{\"name\":\"n\"}]");
  assert_null(tg_workflow_validate(d));
  names = tg_workflow_secret_inputs(d);
  assert_int_equal(json_array_size(names), 1);
  assert_string_equal(json_string_value(json_array_get(names, 0)), "key");
  json_decref(names);
  json_decref(d);

  assert_vars_refused("[{\"name\":\"key\",\"type\":\"number\",\"secret\":true}]",
                      "must have type string");
  /* type is required with secret */
  assert_vars_refused("[{\"name\":\"key\",\"secret\":true}]", "must have type string");
  assert_vars_refused("[{\"name\":\"key\",\"type\":\"string\",\"secret\":\"yes\"}]",
                      "secret of key must be a boolean");

  d = with_vars("[]");
  names = tg_workflow_secret_inputs(d);
  assert_int_equal(json_array_size(names), 0);
  json_decref(names);
  json_decref(d);
}

static void test_providers(void **state)
{
  json_t *def = J(chain), *p = tg_workflow_providers(def);
  assert_int_equal(json_array_size(p), 2);
  assert_string_equal(json_string_value(json_array_get(p, 0)), "demo");
  assert_string_equal(json_string_value(json_array_get(p, 1)), "slack");
  json_decref(p);
  json_decref(def);
}

/* The builder's format: integer ids, UI fields, a Conditional with both branches, API and HITL
 * nodes, {name, type} outputs. */
static const char *builder =
    "{\"title\":\"b\",\"nodes\":["
    "{\"id\":1,\"type\":\"Start\",\"x\":1,\"icon\":\"s\",\"config\":{\"inputVariables\":["
    "{\"name\":\"opportunity_value\",\"type\":\"number\",\"required\":true}]}},"
    "{\"id\":2,\"type\":\"MCP\",\"config\":{\"provider\":\"p\",\"tool\":\"score\","
    "\"arguments\":{\"v\":\"{{inputs.opportunity_value}}\"}}},"
    "{\"id\":3,\"type\":\"Conditional\",\"config\":{\"branches\":["
    "{\"type\":\"if\",\"condition\":\"win_probability < 30 AND opportunity_value < 500000\","
    "\"targetNodeId\":4},{\"type\":\"else\",\"condition\":\"\",\"targetNodeId\":\"5\"}]}},"
    "{\"id\":4,\"type\":\"API\",\"config\":{\"method\":\"POST\",\"url\":\"https://api.crm.com/d\","
    "\"authentication\":\"bearer\",\"headers\":{\"Authorization\":\"Bearer {{secrets.crm}}\"},"
    "\"body\":{\"score\":\"{{nodes.2.output.win_probability}}\"}}},"
    "{\"id\":5,\"type\":\"HITL\",\"config\":{\"reviewTitle\":\"t\",\"message\":\"m\","
    "\"priority\":\"high\",\"allowedDecisions\":[\"approve\",\"reject\"],\"timeout_s\":60}},"
    "{\"id\":6,\"type\":\"End\",\"config\":{\"outputVariables\":["
    "{\"name\":\"decision\",\"type\":\"string\"}]}}],"
    "\"connections\":[{\"id\":10,\"from\":1,\"to\":2},{\"id\":11,\"from\":2,\"to\":3},"
    "{\"id\":12,\"from\":3,\"to\":4},{\"id\":13,\"from\":3,\"to\":5},{\"id\":14,\"from\":4,\"to\":"
    "6},"
    "{\"id\":15,\"from\":5,\"to\":6}]}";

static void test_builder_format(void **state)
{
  json_t *def = J(builder), *errs = tg_workflow_validate(def), *order;
  (void)state;
  if (errs)
    dump_on_fail(errs);
  assert_null(errs);
  order = tg_workflow_order(def);
  assert_int_equal(json_array_size(order), 6);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(order, 0), "id")), 1);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(order, 5), "id")), 6);
  json_decref(order);
  json_decref(def);
}

/* builder with the text `from` replaced by `to` is refused with an error on node/field whose
 * message contains needle. */
static void expect_builder_error(const char *from, const char *to, const char *node,
                                 const char *field, const char *needle)
{
  char buf[4096];
  const char *at = strstr(builder, from);
  if (!at)
    fail_msg("not in the builder definition: %s", from);
  snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - builder), builder, to, at + strlen(from));
  expect_invalid(buf, node, field, needle);
}

static void test_builder_errors(void **state)
{
  (void)state;
  expect_builder_error("\"targetNodeId\":4}", "\"targetNodeId\":6}", "3",
                       "config.branches[0].targetNodeId", "not a successor");
  expect_builder_error("\"targetNodeId\":4}", "\"targetNodeId\":5}", "3", "config.branches",
                       "successor 4 is not the target");
  expect_builder_error("win_probability < 30 AND", "win_probability < < 30 AND", "3",
                       "config.branches[0].condition", "column 19");
  expect_builder_error("{\"type\":\"else\",\"condition\":\"\",\"targetNodeId\":\"5\"}]",
                       "{\"type\":\"else\",\"targetNodeId\":\"5\"},"
                       "{\"type\":\"if\",\"condition\":\"true\",\"targetNodeId\":4}]",
                       "3", "config.branches[1].type", "must come last");
  expect_builder_error("Bearer {{secrets.crm}}", "Bearer abc", "4", "config.headers.Authorization",
                       "literal secret in config.headers.Authorization: store it as a credential");
  expect_builder_error("\"authentication\":\"bearer\"",
                       "\"authentication\":{\"type\":\"bearer\",\"token\":\"t0k\"}", "4",
                       "config.authentication.token", "literal secret");
  expect_builder_error("\"authentication\":\"bearer\"", "\"authentication\":\"basic\"", "4",
                       "config.authentication", "must be");
  expect_builder_error("\"method\":\"POST\"", "\"method\":\"FETCH\"", "4", "config.method",
                       "GET, POST");
  expect_builder_error("\"url\":\"https://api.crm.com/d\"", "\"timeout_ms\":0", "4", "config.url",
                       "needs a url");
  expect_builder_error("\"url\":\"https://api.crm.com/d\"",
                       "\"url\":\"https://x\",\"timeout_ms\":300001", "4", "config.timeout_ms",
                       "1 to 300000");
  expect_builder_error("{{nodes.2.output", "{{nodes.5.output", "4", "config.body.score",
                       "node 5 does not run before this node");
  expect_builder_error("{{nodes.2.output", "{{nodes.99.output", "4", "config.body.score",
                       "no node 99");
  expect_builder_error("{{inputs.opportunity_value}}", "{{inputs.nope}}", "2", "config.arguments.v",
                       "input nope is not declared");
  expect_builder_error("{{inputs.opportunity_value}}", "{{env.HOME}}", "2", "config.arguments.v",
                       "unknown template reference {{env.HOME}}");
  expect_builder_error("opportunity_value < 500000", "inputs.budget < 500000", "3",
                       "config.branches[0].condition", "unknown variable inputs.budget");
  expect_builder_error("[\"approve\",\"reject\"]", "[\"approve\",\"approve\"]", "5",
                       "config.allowedDecisions", "listed twice");
  expect_builder_error("[\"approve\",\"reject\"]", "[]", "5", "config.allowedDecisions",
                       "non-empty");
  expect_builder_error("\"reviewTitle\":\"t\",", "", "5", "config.reviewTitle", "non-empty");
  expect_builder_error("\"timeout_s\":60", "\"timeout_s\":0", "5", "config.timeout_s", "1 to");
  expect_builder_error("\"type\":\"HITL\"", "\"type\":\"Magic\"", "5", "type",
                       "unknown node type Magic");
  expect_builder_error("{\"id\":15,\"from\":5,\"to\":6}", "{\"id\":15,\"from\":5,\"to\":3}", NULL,
                       "connections", "cycle through node");
  expect_builder_error("{\"id\":15,\"from\":5,\"to\":6}", "{\"id\":15,\"from\":5,\"to\":77}", NULL,
                       "connections[5].to", "unknown node 77");
  expect_builder_error("{\"id\":2,", "{\"id\":1,", "1", "id", "duplicate node id 1");
  expect_builder_error("{\"id\":2,", "{\"id\":true,", NULL, "nodes[1]", "needs an id");
}

/* A sensitive header of an ad-hoc MCP node; names matched case-insensitively and by word. */
static void test_literal_secret_headers(void **state)
{
  static const char *const cases[][3] = {{"authorization", "Bearer x", "1"},
                                         {"X-Api-Key", "k", "1"},
                                         {"Cookie", "a=b", "1"},
                                         {"X-Auth-Token", "t", "1"},
                                         {"my_secret", "s", "1"},
                                         {"Authorization", "{{secrets.a}}", "0"},
                                         {"X-Trace", "abc", "0"},
                                         {"Proxy-Authorization", "Basic {{ secrets.p }}", "0"},
                                         {"Proxy-Authorization", "{{secrets.}}", "1"}};
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[1024];
    json_t *def, *errs;
    snprintf(buf, sizeof buf,
             "{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"},{\"id\":\"m\",\"type\":\"MCP\","
             "\"config\":{\"url\":\"https://mcp.example/\",\"tool\":\"t\",\"headers\":"
             "{\"%s\":\"%s\"}}},{\"id\":\"e\",\"type\":\"End\"}],\"connections\":["
             "{\"from\":\"s\",\"to\":\"m\"},{\"from\":\"m\",\"to\":\"e\"}]}",
             cases[i][0], cases[i][1]);
    def = J(buf);
    errs = tg_workflow_validate(def);
    if ((errs != NULL) != (cases[i][2][0] == '1')) {
      dump_on_fail(errs);
      fail_msg("case %zu: %s: %s", i, cases[i][0], cases[i][1]);
    }
    if (errs && !has_error(errs, "m", NULL, "literal secret")) {
      dump_on_fail(errs);
      fail_msg("case %zu", i);
    }
    json_decref(errs);
    json_decref(def);
  }
}

/* The reference workflow, as the builder saves it: valid, every node type of it. */
static void test_reference_workflow(void **state)
{
  char path[1024];
  const char *slash = strrchr(__FILE__, '/');
  json_error_t e;
  json_t *def, *errs;
  (void)state;
  snprintf(path, sizeof path, "%.*s/../../fuzz/corpus/workflow/proposal-generation.json",
           (int)(slash - __FILE__), __FILE__);
  def = json_load_file(path, 0, &e);
  if (!def)
    fail_msg("%s: %s", path, e.text);
  errs = tg_workflow_validate(def);
  if (errs)
    dump_on_fail(errs);
  assert_null(errs);
  json_decref(def);
}

static void test_render_vars_secrets(void **state)
{
  json_t *ctx = J("{\"inputs\":{},\"vars\":{\"x\":5,\"name\":\"ann\"}}"), *v, *out;
  json_t *sctx = J("{\"secrets\":{\"crm\":\"s3cr3t\"}}");
  char err[128];
  (void)state;
  v = J("{\"a\":\"{{vars.x}}\",\"h\":\"Bearer {{secrets.crm}} for {{vars.name}}\","
        "\"w\":\"{{secrets.crm}}\"}");
  out = tg_workflow_render(v, ctx, err, sizeof err);
  assert_non_null(out);
  assert_int_equal(json_integer_value(json_object_get(out, "a")), 5);
  assert_string_equal(json_string_value(json_object_get(out, "h")),
                      "Bearer {{secrets.crm}} for ann");
  assert_string_equal(json_string_value(json_object_get(out, "w")), "{{secrets.crm}}");
  json_decref(v);
  v = out;
  out = tg_workflow_render(v, sctx, err, sizeof err);
  assert_non_null(out);
  assert_string_equal(json_string_value(json_object_get(out, "h")), "Bearer s3cr3t for ann");
  assert_string_equal(json_string_value(json_object_get(out, "w")), "s3cr3t");
  json_decref(out);
  json_decref(v);
  expect_unresolved(sctx, "\"{{secrets.other}}\"", "{{secrets.other}}");
  json_decref(sctx);
  json_decref(ctx);
}

/* A value from the run that brings its own {{secrets.*}} reference is refused while secrets stay
 * verbatim: an executor would substitute it (a tool answer could have a secret sent on). */
static void test_render_refuses_smuggled_secret_refs(void **state)
{
  json_t *ctx = J("{\"inputs\":{\"note\":\"x {{ secrets.crm }} y\"},\"nodes\":{\"t\":{"
                  "\"output\":{\"deep\":[{\"k\":\"{{secrets.crm}}\"}]}}},"
                  "\"vars\":{\"ok\":\"{ {secrets.x}\"}}");
  const char *bad[] = {"{\"b\":\"{{inputs.note}}\"}", "{\"b\":\"say {{inputs.note}}\"}",
                       "{\"b\":\"{{nodes.t.output}}\"}", "{\"b\":\"to: {{nodes.t.output}}\"}"};
  char err[256];
  json_t *v, *out;
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    v = J(bad[i]);
    assert_int_equal(tg_workflow_render_capped(&out, v, ctx, 1 << 20, err, sizeof err), TG_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err, "holds a {{secrets.<name>}} reference"));
    json_decref(v);
  }
  v = J("{\"b\":\"{{vars.ok}} and {{secrets.crm}}\"}"); /* no reference in the value: fine */
  out = tg_workflow_render(v, ctx, err, sizeof err);
  assert_non_null(out);
  assert_string_equal(json_string_value(json_object_get(out, "b")),
                      "{ {secrets.x} and {{secrets.crm}}");
  json_decref(out);
  json_decref(v);
  json_decref(ctx);
}

static void test_end_output_vars(void **state)
{
  json_t *ctx = J("{\"inputs\":{},\"vars\":{\"decision\":\"approve\",\"n\":3}}");
  json_t *end =
      J("{\"id\":6,\"type\":\"End\",\"config\":{\"outputVariables\":["
        "{\"name\":\"decision\",\"type\":\"string\"},{\"name\":\"n\",\"type\":\"number\"},"
        "{\"name\":\"lit\",\"value\":\"{{vars.n}}!\"}]}}");
  json_t *out;
  char err[128] = "";
  (void)state;
  out = tg_workflow_end_output(end, ctx, err, sizeof err);
  assert_non_null(out);
  assert_string_equal(json_string_value(json_object_get(out, "decision")), "approve");
  assert_int_equal(json_integer_value(json_object_get(out, "n")), 3);
  assert_string_equal(json_string_value(json_object_get(out, "lit")), "3!");
  json_decref(out);
  json_object_del(json_object_get(ctx, "vars"), "n");
  assert_null(tg_workflow_end_output(end, ctx, err, sizeof err));
  assert_non_null(strstr(err, "output n is not set"));
  json_decref(end);
  json_decref(ctx);
}

TG_UNIT_MAIN(cmocka_unit_test(test_valid_chain), cmocka_unit_test(test_missing_start),
             cmocka_unit_test(test_missing_end), cmocka_unit_test(test_duplicate_ids),
             cmocka_unit_test(test_dangling_connection), cmocka_unit_test(test_cycle),
             cmocka_unit_test(test_unreachable_node),
             cmocka_unit_test(test_agent_self_review_config),
             cmocka_unit_test(test_mcp_without_tool), cmocka_unit_test(test_mcp_adhoc_ok),
             cmocka_unit_test(test_inputs), cmocka_unit_test(test_render_types),
             cmocka_unit_test(test_render_path_walk), cmocka_unit_test(test_render_unresolved),
             cmocka_unit_test(test_end_output), cmocka_unit_test(test_render_budget),
             cmocka_unit_test(test_end_output_budget), cmocka_unit_test(test_providers),
             cmocka_unit_test(test_secret_inputs), cmocka_unit_test(test_builder_format),
             cmocka_unit_test(test_builder_errors), cmocka_unit_test(test_literal_secret_headers),
             cmocka_unit_test(test_reference_workflow), cmocka_unit_test(test_render_vars_secrets),
             cmocka_unit_test(test_render_refuses_smuggled_secret_refs),
             cmocka_unit_test(test_end_output_vars))
