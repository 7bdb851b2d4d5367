"""The run engine (README "Workflow execution"): DAGs with a Conditional (the taken branch runs,
the other is skipped, the join waits for the taken side only), concurrent fan-out, expression
errors naming the variable, the node journal after kill -9 (completed nodes are not called
again; a non-idempotent call in flight goes to attention/outcome_unknown) and
POST /api/runs/{id}/resolve.

Real simulator, MCP reference server or mcp-peer, gateway and workers on 127.0.0.1; workflows
stored and runs admitted through the API.
"""
import json
import time

from harness import PROVIDER, Stack, main, wait_until
from test_worker_peer import calls, setup


def mcp(node_id, tool, args):
    return {"id": node_id, "type": "MCP", "name": tool,
            "config": {"provider": PROVIDER, "tool": tool, "arguments": args}}


def graph(nodes, edges, end_config=None):
    nodes = ([{"id": "start", "type": "Start", "name": "Start", "config": {}}] + nodes +
             [{"id": "end", "type": "End", "name": "End", "config": end_config or {}}])
    conns = [{"id": "c%d" % i, "from": a, "to": b} for i, (a, b) in enumerate(edges)]
    return {"title": "t", "nodes": nodes, "connections": conns}


def insert_run(s, definition, inputs=None, user="alice"):
    """Stores the workflow and admits a run of it, through the API."""
    wf = s.create_workflow(definition, user=user)
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": inputs or {}}, user=user)
    assert st == 202, (st, body)
    return body["run_id"]


def nodes(s, run_id):
    """node id -> the status of its last journal row."""
    rows = s.query("SELECT node_id, status FROM node_executions WHERE run_id=? ORDER BY id", run_id)
    return {r["node_id"]: r["status"] for r in rows}


def events(s, run_id):
    return [(e["type"], e["node_id"]) for e in
            s.query("SELECT type, node_id FROM run_events WHERE run_id=? ORDER BY seq", run_id)]


# Start -> weather -> cond -> {a | b1 -> b2} -> end (a join of both sides).
BRANCHY = graph(
    [mcp("weather", "get-structured-content", {"location": "{{inputs.city}}"}),
     {"id": "cond", "type": "Conditional", "name": "Warm?", "config": {"branches": [
         {"type": "if", "condition": "temperature < 35 AND humidity == 82", "targetNodeId": "a"},
         {"type": "else", "condition": "", "targetNodeId": "b1"}]}},
     mcp("a", "echo", {"message": "mild: {{nodes.weather.output.structuredContent.conditions}}"}),
     mcp("b1", "echo", {"message": "hot"}),
     mcp("b2", "get-sum", {"a": "{{nodes.weather.output.structuredContent.temperature}}",
                           "b": 1})],
    [("start", "weather"), ("weather", "cond"), ("cond", "a"), ("cond", "b1"), ("b1", "b2"),
     ("a", "end"), ("b2", "end")],
    {"outputVariables": [{"name": "temperature", "type": "number"},
                         {"name": "conditions", "type": "string"}]})


def test_both_branches_run_with_the_other_side_skipped():
    with Stack() as s:
        s.connect("alice")
        s.start_worker()
        mild = insert_run(s, BRANCHY, {"city": "New York"})  # 33 degrees
        hot = insert_run(s, BRANCHY, {"city": "Chicago"})    # 36 degrees
        for run_id, city_temp in ((mild, 33), (hot, 36)):
            run = s.wait_run(run_id)
            assert run["status"] == "succeeded", run
            assert run["output"]["temperature"] == city_temp, run
            assert isinstance(run["output"]["conditions"], str), run
            by_node = {n["id"]: n["status"] for n in run["nodes"]}  # GET /api/runs/{id}
            assert by_node == nodes(s, run_id), (by_node, nodes(s, run_id))
        assert nodes(s, mild) == {"start": "success", "weather": "success", "cond": "success",
                                  "a": "success", "b1": "skipped", "b2": "skipped",
                                  "end": "success"}, nodes(s, mild)
        assert nodes(s, hot) == {"start": "success", "weather": "success", "cond": "success",
                                 "a": "skipped", "b1": "success", "b2": "success",
                                 "end": "success"}, nodes(s, hot)
        ev = events(s, hot)
        assert ("node_skipped", "a") in ev and ev[-1] == ("run_finished", None), ev
        assert ("node_started", "b2") in ev and ("node_finished", "b2") in ev, ev
        assert ev.index(("node_finished", "b1")) < ev.index(("node_started", "b2")), ev
        assert ("node_started", "b1") not in events(s, mild), events(s, mild)
        tools = s.query("SELECT node_id FROM tool_executions WHERE run_id=? ORDER BY id", hot)
        assert [t["node_id"] for t in tools] == ["weather", "b1", "b2"], tools


def test_fan_out_runs_concurrently():
    with Stack(peer=True) as s:
        setup(s)
        fan = ["f%d" % i for i in range(4)]
        wf = graph([mcp(f, "sleep_ro", {"ms": 700}) for f in fan],
                   [("start", f) for f in fan] + [(f, "end") for f in fan],
                   {"outputVariables": {"n": 4}})
        s.start_worker()
        t0 = time.monotonic()
        run_id = insert_run(s, wf)
        run = s.wait_run(run_id)
        assert run["status"] == "succeeded" and run["output"] == {"n": 4}, run
        assert time.monotonic() - t0 < 4 * 0.7, "the four 700 ms calls ran one after another"
        t = sorted(c["t_ms"] for c in calls(s, "sleep_ro"))
        assert len(t) == 4 and t[-1] - t[0] < 500, t  # all out before the first answered


def test_missing_variable_fails_with_expression_error():
    with Stack(peer=True) as s:
        setup(s)
        wf = graph([mcp("e", "echo", {"message": "x"}),
                    {"id": "cond", "type": "Conditional", "name": "c", "config": {"branches": [
                        {"type": "if", "condition": "score < 3", "targetNodeId": "end"}]}}],
                   [("start", "e"), ("e", "cond"), ("cond", "end")])
        s.start_worker()
        run_id = insert_run(s, wf)
        run = s.wait_run(run_id)
        assert run["status"] == "failed" and run["error_class"] == "expression_error", run
        assert "cond" in run["error"] and "'score'" in run["error"], run
        assert nodes(s, run_id)["cond"] == "failed", nodes(s, run_id)


CHAIN = graph([mcp("e", "echo", {"message": "once"}), mcp("s", "add", {"a": 1, "b": 2}),
               mcp("slow", "sleep_ro", {"ms": 2500})],
              [("start", "e"), ("e", "s"), ("s", "slow"), ("slow", "end")],
              {"outputVariables": {"said": "{{nodes.e.output.content.0.text}}"}})


def test_kill9_does_not_call_completed_nodes_again():
    with Stack(peer=True, extra_env={"TOOLGATE_LEASE_MS": "1500"}) as s:
        setup(s)
        run_id = insert_run(s, CHAIN)
        w = s.start_worker()
        wait_until(lambda: calls(s, "sleep_ro"), 15, "the slow call to go out")
        w.kill9()
        s.start_worker()
        run = s.wait_run(run_id, timeout=30)
        assert run["status"] == "succeeded" and run["attempt"] == 2, run
        assert run["output"]["said"].endswith("once"), run  # the recorded output, reused
        assert len(calls(s, "echo")) == 1 and len(calls(s, "add")) == 1  # not called again
        assert len(calls(s, "sleep_ro")) == 2  # in flight at the kill, readOnlyHint: again
        attempts = s.query("SELECT node_id, attempt, status FROM node_executions WHERE run_id=? "
                           "AND node_id IN ('e', 's', 'slow') ORDER BY id", run_id)
        assert [(a["node_id"], a["attempt"], a["status"]) for a in attempts] == [
            ("e", 1, "success"), ("s", 1, "success"), ("slow", 1, "pending"),
            ("slow", 2, "success")], attempts


UNSAFE = graph([mcp("e", "echo", {"message": "once"}), mcp("w", "sleep", {"ms": 2500})],
               [("start", "e"), ("e", "w"), ("w", "end")],
               {"outputVariables": {"said": "{{nodes.e.output.content.0.text}}"}})


def resolve(s, run_id, body, user="alice"):
    return s.gw("POST", "/api/runs/%s/resolve" % run_id, body, user=user)


def test_kill9_in_flight_unsafe_call_needs_resolve():
    env = {"TOOLGATE_LEASE_MS": "1500", "TOOLGATE_WORKER_CONCURRENCY": "3"}
    with Stack(peer=True, extra_env=env) as s:
        setup(s)
        runs = [insert_run(s, UNSAFE) for _ in range(3)]
        w = s.start_worker()
        wait_until(lambda: len(calls(s, "sleep")) == 3, 15, "the three unsafe calls to go out")
        w.kill9()
        s.start_worker()
        for run_id in runs:
            run = s.wait_run(run_id, timeout=30)
            assert run["status"] == "attention", run
            assert run["metadata"]["reason"] == "outcome_unknown", run
            assert run["metadata"]["node_id"] == "w" and run["error_class"] == "outcome_unknown"
            assert nodes(s, run_id)["w"] == "unknown", nodes(s, run_id)
        assert len(calls(s, "sleep")) == 3 and len(calls(s, "echo")) == 3  # nothing repeated
        retry, skip, fail = runs
        # The API's refusals.
        assert resolve(s, retry, {"node_id": "w", "action": "redo"})[0] == 422
        assert resolve(s, retry, {"action": "retry"})[0] == 422
        assert resolve(s, retry, {"node_id": "e", "action": "retry"})[0] == 409
        assert resolve(s, retry, {"node_id": "w", "action": "retry"}, user="bob")[0] == 404
        st, _, body = resolve(s, retry, {"node_id": "w", "action": "retry"})
        assert st == 200 and body["status"] == "queued", (st, body)
        assert resolve(s, retry, {"node_id": "w", "action": "retry"})[0] == 409  # answered
        st, _, body = resolve(s, skip, {"node_id": "w", "action": "skip"})
        assert st == 200 and body["status"] == "queued", (st, body)
        st, _, body = resolve(s, fail, {"node_id": "w", "action": "fail"})
        assert st == 200 and body["status"] == "failed", (st, body)
        run = s.wait_run(retry, timeout=30)
        assert run["status"] == "succeeded" and run["output"]["said"].endswith("once"), run
        run = s.wait_run(skip, timeout=30)
        assert run["status"] == "succeeded", run
        assert s.gw("GET", "/api/runs/" + fail)[2]["error_class"] == "outcome_unknown"
        assert len(calls(s, "sleep")) == 4 and len(calls(s, "echo")) == 3  # only retry re-ran
        res = s.query("SELECT run_id, resolution FROM node_executions WHERE node_id='w' AND "
                      "resolution IS NOT NULL")
        assert sorted(r["resolution"] for r in res) == ["fail", "retry", "skip"], res


if __name__ == "__main__":
    main(dict(globals()))
