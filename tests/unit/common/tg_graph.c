/*
 * Unit tests of common/tg_graph.c: ids normalised to strings, successors and predecessors
 * without duplicates, Conditional branches with parsed conditions and target indexes, a
 * topological order with Start first, strict refusal of every broken rule, type names.
 */
#include "tg_unit.h"

#include <stdlib.h>
#include <string.h>

#include "tg_err.h"
#include "tg_graph.h"

/* The test's JSON text, parsed (it must parse). */
static json_t *J(const char *text)
{
  json_t *v = json_loads(text, 0, NULL);
  assert_non_null(v);
  return v;
}

/* Start(1) -> C("c") -> {A(7) | H(8)} -> End(-2), with a duplicate connection. */
static const char *diamond =
    "{\"nodes\":[{\"id\":-2,\"type\":\"End\"},{\"id\":1,\"type\":\"Start\",\"name\":\"go\"},"
    "{\"id\":\"c\",\"type\":\"Conditional\",\"config\":{\"branches\":["
    "{\"type\":\"if\",\"condition\":\"x > 1\",\"targetNodeId\":7},"
    "{\"type\":\"else\",\"targetNodeId\":\"8\"}]}},"
    "{\"id\":7,\"type\":\"API\",\"config\":{\"url\":\"https://a\"}},"
    "{\"id\":8,\"type\":\"HITL\"}],"
    "\"connections\":[{\"from\":1,\"to\":\"c\"},{\"from\":\"c\",\"to\":7},{\"from\":\"c\",\"to\":8}"
    ","
    "{\"from\":7,\"to\":-2},{\"from\":8,\"to\":\"-2\"},{\"from\":1,\"to\":\"c\"}]}";

static void test_build(void **state)
{
  json_t *def = J(diamond);
  tg_graph *g;
  const tg_graph_node *c, *start;
  const size_t *topo;
  size_t ic;
  (void)state;
  assert_int_equal(tg_graph_build(&g, def), 0);
  json_decref(def); /* the graph keeps its own reference */
  assert_int_equal(tg_graph_size(g), 5);
  start = tg_graph_node_at(g, tg_graph_start(g));
  assert_string_equal(start->id, "1");
  assert_string_equal(start->name, "go");
  assert_int_equal(start->type, TG_NODE_START);
  assert_int_equal(start->nsucc, 1); /* the duplicate connection counts once */
  assert_true(json_is_object(start->config));
  assert_int_equal(tg_graph_find(g, "-2"), 0);
  assert_int_equal(tg_graph_find(g, "nope"), (size_t)-1);
  ic = tg_graph_find(g, "c");
  c = tg_graph_node_at(g, ic);
  assert_int_equal(c->type, TG_NODE_CONDITIONAL);
  assert_int_equal(c->npred, 1);
  assert_int_equal(c->nsucc, 2);
  assert_int_equal(c->nbranches, 2);
  assert_string_equal(c->branches[0].condition, "x > 1");
  assert_non_null(c->branches[0].cond);
  assert_int_equal(c->branches[0].target, tg_graph_find(g, "7"));
  assert_string_equal(c->branches[1].condition, "");
  assert_null(c->branches[1].cond);
  assert_int_equal(c->branches[1].target, tg_graph_find(g, "8"));
  assert_int_equal(tg_graph_node_at(g, 0)->npred, 2);
  topo = tg_graph_topo(g);
  assert_int_equal(topo[0], tg_graph_start(g));
  assert_int_equal(topo[1], ic);
  assert_int_equal(topo[4], 0); /* End last */
  tg_graph_free(g);
  tg_graph_free(NULL);
}

static void expect_refused(const char *text)
{
  json_t *def = J(text);
  tg_graph *g = (tg_graph *)1;
  assert_int_equal(tg_graph_build(&g, def), TG_EINVAL);
  assert_null(g);
  json_decref(def);
}

static void test_refused(void **state)
{
  (void)state;
  expect_refused("[]");
  expect_refused("{\"nodes\":[]}");
  /* cycle */
  expect_refused("{\"nodes\":[{\"id\":1,\"type\":\"Start\"},{\"id\":2,\"type\":\"MCP\"},"
                 "{\"id\":3,\"type\":\"End\"}],\"connections\":[{\"from\":1,\"to\":2},"
                 "{\"from\":2,\"to\":2},{\"from\":2,\"to\":3}]}");
  /* unreachable node, no End reachable */
  expect_refused("{\"nodes\":[{\"id\":1,\"type\":\"Start\"},{\"id\":2,\"type\":\"MCP\"},"
                 "{\"id\":3,\"type\":\"End\"}],\"connections\":[{\"from\":1,\"to\":3}]}");
  expect_refused("{\"nodes\":[{\"id\":1,\"type\":\"Start\"},{\"id\":2,\"type\":\"MCP\"},"
                 "{\"id\":3,\"type\":\"End\"}],\"connections\":[{\"from\":1,\"to\":3},"
                 "{\"from\":1,\"to\":2}]}");
  /* a branch aimed at a node that is not a successor; an untargeted successor */
  expect_refused("{\"nodes\":[{\"id\":1,\"type\":\"Start\"},{\"id\":2,\"type\":\"Conditional\","
                 "\"config\":{\"branches\":[{\"type\":\"if\",\"condition\":\"a\","
                 "\"targetNodeId\":1}]}},{\"id\":3,\"type\":\"End\"}],"
                 "\"connections\":[{\"from\":1,\"to\":2},{\"from\":2,\"to\":3}]}");
  /* a condition that does not parse */
  expect_refused("{\"nodes\":[{\"id\":1,\"type\":\"Start\"},{\"id\":2,\"type\":\"Conditional\","
                 "\"config\":{\"branches\":[{\"type\":\"if\",\"condition\":\"a <\","
                 "\"targetNodeId\":3}]}},{\"id\":3,\"type\":\"End\"}],"
                 "\"connections\":[{\"from\":1,\"to\":2},{\"from\":2,\"to\":3}]}");
  /* unknown type, two Starts, a float id */
  expect_refused("{\"nodes\":[{\"id\":1,\"type\":\"Start\"},{\"id\":3,\"type\":\"Nope\"}],"
                 "\"connections\":[{\"from\":1,\"to\":3}]}");
  expect_refused("{\"nodes\":[{\"id\":1,\"type\":\"Start\"},{\"id\":2,\"type\":\"Start\"},"
                 "{\"id\":3,\"type\":\"End\"}],\"connections\":[{\"from\":1,\"to\":3},"
                 "{\"from\":2,\"to\":3}]}");
  expect_refused("{\"nodes\":[{\"id\":1.5,\"type\":\"Start\"},{\"id\":3,\"type\":\"End\"}],"
                 "\"connections\":[]}");
}

static void test_type_names(void **state)
{
  (void)state;
  for (int t = 0; t < TG_NODE_TYPE_COUNT; t++)
    assert_int_equal(tg_node_type_parse(tg_node_type_name((tg_node_type)t)), t);
  assert_string_equal(tg_node_type_name(TG_NODE_SELF_REVIEW), "Self-Review");
  assert_int_equal(tg_node_type_parse("start"), TG_NODE_TYPE_COUNT);
  assert_int_equal(tg_node_type_parse(NULL), TG_NODE_TYPE_COUNT);
}

TG_UNIT_MAIN(cmocka_unit_test(test_build), cmocka_unit_test(test_refused),
             cmocka_unit_test(test_type_names))
