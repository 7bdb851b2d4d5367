/*
 * Unit tests of common/tg_graph_vars.c: the reference workflow (only the Win Probability Scorer
 * is asked, for win_probability: number), types from conditions and End's declarations, inputs
 * and upstream producers (Code assignments, outputSchema, MCP/API) that make a variable known,
 * the nearest Agent, a variable asked once, and a merged outputSchema.
 */
#include "tg_unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_graph.h"
#include "tg_graph_vars.h"

static json_t *J(const char *text)
{
  json_error_t e;
  json_t *v = json_loads(text, 0, &e);
  if (!v)
    fail_msg("bad test JSON: %s", e.text);
  return v;
}

static tg_graph *G(const char *text)
{
  json_t *def = J(text);
  tg_graph *g = NULL;
  assert_int_equal(tg_graph_build(&g, def), 0);
  json_decref(def);
  return g;
}

/* The schema asked of node id, as compact sorted JSON ("null" when none). */
static char *schema_of(const tg_graph *g, const char *id)
{
  int err = -1;
  json_t *s = tg_graph_agent_schema(g, tg_graph_find(g, id), &err);
  char *text;
  assert_int_equal(err, 0);
  text = s ? json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS) : strdup("null");
  json_decref(s);
  return text;
}

static void expect(const tg_graph *g, const char *id, const char *want)
{
  char *got = schema_of(g, id);
  if (strcmp(got, want) != 0)
    fail_msg("node %s: got %s, want %s", id, got, want);
  free(got);
}

static void test_reference_workflow(void **state)
{
  char path[1024];
  const char *slash = strrchr(__FILE__, '/');
  json_error_t e;
  json_t *def;
  tg_graph *g;
  (void)state;
  snprintf(path, sizeof path, "%.*s/../../fuzz/corpus/workflow/proposal-generation.json",
           (int)(slash - __FILE__), __FILE__);
  if (!(def = json_load_file(path, 0, &e)))
    fail_msg("%s: %s", path, e.text);
  assert_int_equal(tg_graph_build(&g, def), 0);
  json_decref(def);
  expect(g, "5002",
         "{\"properties\":{\"win_probability\":{\"type\":\"number\"}},"
         "\"required\":[\"win_probability\"],\"type\":\"object\"}");
  /* opportunity_value is an input; End's outputs come after API nodes (5004, 5011), which may
   * produce anything; final_price is the Code node's anyway */
  expect(g, "5001", "null");
  expect(g, "5005", "null");
  expect(g, "5008", "null");
  expect(g, "5003", "null"); /* not an Agent */
  tg_graph_free(g);
}

#define CHAIN(nodes, conns) "{\"nodes\":[" nodes "],\"connections\":[" conns "]}"
#define START "{\"id\":1,\"type\":\"Start\",\"config\":{\"inputVariables\":[{\"name\":\"v\"}]}}"
#define END "{\"id\":9,\"type\":\"End\"}"
#define AGENT(id) "{\"id\":" #id ",\"type\":\"Agent\",\"config\":{\"prompt\":\"p\"}}"
#define EDGE(a, b) "{\"from\":" #a ",\"to\":" #b "}"

static void test_types_and_nearest(void **state)
{
  /* Start -> A2 -> A3 -> C4 -> {End 9 | End 8}; C4 reads x (number), s (string), ok (boolean),
   * v (an input), z (compared with another variable: any), deep.m (member: any) */
  tg_graph *g = G(CHAIN(
      START "," AGENT(2) "," AGENT(
          3) ","
             "{\"id\":4,\"type\":\"Conditional\",\"config\":{\"branches\":["
             "{\"type\":\"if\",\"condition\":\"x > 3 AND s == 'a' AND ok AND v < 2 AND z == "
             "vars.x AND deep.m == 1\",\"targetNodeId\":9},{\"type\":\"else\",\"targetNodeId\":8}]"
             "}}," END ",{\"id\":8,\"type\":\"End\",\"config\":{\"outputVariables\":[{\"name\":"
             "\"x\",\"type\":\"number\"},{\"name\":\"when\",\"type\":\"string\"},{\"name\":\"lit\","
             "\"value\":\"{{vars.tpl}}\"}]}}",
      EDGE(1, 2) "," EDGE(2, 3) "," EDGE(3, 4) "," EDGE(4, 9) "," EDGE(4, 8)));
  (void)state;
  expect(g, "2", "null"); /* the nearest Agent is 3 */
  expect(g, "3",
         "{\"properties\":{\"deep\":{},\"ok\":{\"type\":\"boolean\"},\"s\":{\"type\":\"string\"},"
         "\"tpl\":{},\"when\":{\"type\":\"string\"},\"x\":{\"type\":\"number\"},\"z\":{}},"
         "\"required\":[\"x\",\"s\",\"ok\",\"z\",\"deep\",\"when\",\"tpl\"],\"type\":\"object\"}");
  tg_graph_free(g);
}

static void test_producers(void **state)
{
  /* Start -> A2 -> Code 3 (assigns price, a/b, typed t) -> A4 (prompt reads {{vars.price}},
   * {{vars.b}}, {{vars.t}}, {{vars.w}}, {{vars.text}}) -> End */
  tg_graph *g = G(CHAIN(
      START "," AGENT(
          2) ","
             "{\"id\":3,\"type\":\"Code\",\"config\":{\"language\":\"python\",\"code\":"
             "\"import numpy as np\\nprice = 3\\na, b = 1, 2\\nt: int = 4\\nif price == 3:\\n"
             "  inner = 1\\nq == 2\\n\",\"outputs\":[\"named\"]}},"
             "{\"id\":4,\"type\":\"Agent\",\"config\":{\"prompt\":\"{{vars.price}} {{vars.b}} "
             "{{vars.t}} {{vars.w}} {{ vars.text }} {{vars.named}} {{vars.inner}} {{vars.q}} "
             "{{inputs.v}} {{nodes.3.output.stdout}}\"}},"
             "{\"id\":5,\"type\":\"End\",\"config\":{\"outputVariables\":[{\"name\":\"w\",\"type\":"
             "\"number\"}]}}",
      EDGE(1, 2) "," EDGE(2, 3) "," EDGE(3, 4) "," EDGE(4, 5)));
  (void)state;
  /* w is asked of 2 first (by 4's prompt), so End's read of w finds it produced */
  expect(g, "2",
         "{\"properties\":{\"inner\":{},\"q\":{},\"w\":{}},\"required\":[\"w\",\"inner\",\"q\"],"
         "\"type\":\"object\"}");
  expect(g, "4", "null");
  tg_graph_free(g);
}

static void test_opaque_and_schema_merge(void **state)
{
  /* Start -> A2 (own outputSchema {score}) -> API 3 -> C4 reads y -> End; A2 -> C5? no: a
   * second reader C6 before the API reads score and k */
  tg_graph *g = G(CHAIN(
      START ",{\"id\":2,\"type\":\"Agent\",\"config\":{\"prompt\":\"p\",\"outputSchema\":{"
            "\"type\":\"object\",\"properties\":{\"score\":{\"type\":\"integer\"}},\"required\":"
            "[\"score\"]}}},"
            "{\"id\":6,\"type\":\"Conditional\",\"config\":{\"branches\":[{\"type\":\"if\","
            "\"condition\":\"score > 1 OR k == 'x'\",\"targetNodeId\":3},{\"type\":\"else\","
            "\"targetNodeId\":7}]}},"
            "{\"id\":3,\"type\":\"API\",\"config\":{\"url\":\"https://a\"}},"
            "{\"id\":4,\"type\":\"Conditional\",\"config\":{\"branches\":[{\"type\":\"if\","
            "\"condition\":\"y > 1\",\"targetNodeId\":9},{\"type\":\"else\",\"targetNodeId\":7}]}},"
            "{\"id\":7,\"type\":\"End\"}," END,
      EDGE(1, 2) "," EDGE(2, 6) "," EDGE(6, 3) "," EDGE(6, 7) "," EDGE(3, 4) "," EDGE(
          4, 9) "," EDGE(4, 7)));
  (void)state;
  expect(g, "2",
         "{\"properties\":{\"k\":{\"type\":\"string\"},\"score\":{\"type\":\"integer\"}},"
         "\"required\":[\"score\",\"k\"],\"type\":\"object\"}");
  tg_graph_free(g);
}

/* A large definition (a long Code source, thousands of reads) is one scan of the source and one
 * lookup per read: this took minutes on the loop when each read rescanned the source and the
 * required list. */
static void test_large_definition(void **state)
{
  enum { LINES = 30000, READS = 3000 };
  size_t cap = LINES * 8 + READS * 24 + 1024, n = 0;
  char *def = malloc(cap);
  json_t *s;
  tg_graph *g;
  int err = -1;
  (void)state;
  assert_non_null(def);
  n += (size_t)snprintf(def + n, cap - n,
                        "{\"nodes\":[" START
                        "," AGENT(2) ","
                                     "{\"id\":3,\"type\":\"Code\",\"config\":{\"code\":\"");
  for (int i = 0; i < LINES; i++)
    n += (size_t)snprintf(def + n, cap - n, "a%d=1\\n", i % 10);
  n += (size_t)snprintf(def + n, cap - n, "\"}},{\"id\":4,\"type\":\"End\",\"config\":{\"m\":\"");
  for (int i = 0; i < READS; i++)
    n += (size_t)snprintf(def + n, cap - n, "{{vars.z%d}}{{vars.a3}}", i);
  snprintf(def + n, cap - n,
           "\"}}],\"connections\":[" EDGE(1, 2) "," EDGE(2, 3) "," EDGE(3, 4) "]}");
  g = G(def);
  free(def);
  s = tg_graph_agent_schema(g, tg_graph_find(g, "2"), &err);
  assert_int_equal(err, 0);
  assert_int_equal(json_object_size(json_object_get(s, "properties")), READS);
  assert_int_equal(json_array_size(json_object_get(s, "required")), READS);
  assert_null(json_object_get(json_object_get(s, "properties"), "a3")); /* the Code node's */
  json_decref(s);
  tg_graph_free(g);
}

static void test_no_agent(void **state)
{
  tg_graph *g =
      G(CHAIN(START ",{\"id\":4,\"type\":\"Conditional\",\"config\":{\"branches\":[{"
                    "\"type\":\"if\",\"condition\":\"y > 1\",\"targetNodeId\":9},{"
                    "\"type\":\"else\",\"targetNodeId\":8}]}}," END ",{\"id\":8,\"type\":\"End\"}",
              EDGE(1, 4) "," EDGE(4, 9) "," EDGE(4, 8)));
  int err = -1;
  (void)state;
  assert_null(tg_graph_agent_schema(g, tg_graph_find(g, "4"), &err));
  assert_int_equal(err, 0);
  assert_null(tg_graph_agent_schema(g, 99, NULL));
  tg_graph_free(g);
}

TG_UNIT_MAIN(cmocka_unit_test(test_reference_workflow), cmocka_unit_test(test_types_and_nearest),
             cmocka_unit_test(test_producers), cmocka_unit_test(test_opaque_and_schema_merge),
             cmocka_unit_test(test_no_agent), cmocka_unit_test(test_large_definition))
