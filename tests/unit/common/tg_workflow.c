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
                 "a", "connections", "not on the path");
}

static void test_unsupported_type(void **state)
{
  expect_invalid(
      "{\"nodes\":[{\"id\":\"s\",\"type\":\"Start\"},"
      "{\"id\":\"ag\",\"type\":\"Agent\",\"config\":{}},{\"id\":\"e\",\"type\":\"End\"}],"
      "\"connections\":[{\"from\":\"s\",\"to\":\"ag\"},{\"from\":\"ag\",\"to\":\"e\"}]}",
      "ag", "type", "Agent");
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
                  "\"headers\":{\"x-k\":\"v\"},\"tool\":\"echo\",\"arguments\":{}}},"
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
  expect_unresolved(ctx, "\"{{secrets.key}}\"", "{{secrets.key}}");
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

TG_UNIT_MAIN(cmocka_unit_test(test_valid_chain), cmocka_unit_test(test_missing_start),
             cmocka_unit_test(test_missing_end), cmocka_unit_test(test_duplicate_ids),
             cmocka_unit_test(test_dangling_connection), cmocka_unit_test(test_cycle),
             cmocka_unit_test(test_unreachable_node), cmocka_unit_test(test_unsupported_type),
             cmocka_unit_test(test_mcp_without_tool), cmocka_unit_test(test_mcp_adhoc_ok),
             cmocka_unit_test(test_inputs), cmocka_unit_test(test_render_types),
             cmocka_unit_test(test_render_path_walk), cmocka_unit_test(test_render_unresolved),
             cmocka_unit_test(test_end_output), cmocka_unit_test(test_render_budget),
             cmocka_unit_test(test_end_output_budget), cmocka_unit_test(test_providers),
             cmocka_unit_test(test_secret_inputs))
