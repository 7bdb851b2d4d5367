#!/usr/bin/env python3
"""Agent node end to end (README "Agent nodes") against the model simulator (tests/llmsim).

Covered: an Agent with the calculator and a tool created from an MCP connector (the reference
server's echo) asks for two tool calls at once; both run and are journaled in tool_executions
with their tool_call_id; their results go back in the next request (tool_result blocks /
tool messages); the final answer is a JSON object whose keys become run variables that the next
Conditional branches on; the Anthropic, OpenAI and openai_compatible formats; 429 then success;
529 exhausted (model_overloaded); malformed tool-call JSON (invalid_model_output); maxIterations
reached (max_iterations); a tool that is not in the catalog (tool_not_found naming it); the API
key never appears in the run, the journal or the logs.
"""
import base64
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "llmsim"))
from harness import Stack, main  # noqa: E402

from llmsim_client import LlmSim  # noqa: E402

KEYS = ("sim-anthropic-key", "sim-openai-key", "sim-compatible-key")


def agent_workflow(provider="anthropic", tools=("calculator",), max_iter=5):
    return {
        "title": "agent test",
        "nodes": [
            {"id": 1, "type": "Start", "name": "Start",
             "config": {"inputVariables": [{"name": "deal", "type": "string"}]}},
            {"id": 2, "type": "Agent", "name": "Scorer",
             "config": {"prompt": "Score the deal.", "model": {"provider": provider,
                                                                 "modelName": "sim-model"},
                        "tools": list(tools), "maxIterations": max_iter, "temperature": 0.2}},
            {"id": 3, "type": "Conditional", "name": "Gate", "config": {"branches": [
                {"type": "if", "condition": "win_probability >= 30", "targetNodeId": 4},
                {"type": "else", "targetNodeId": 5}]}},
            {"id": 4, "type": "End", "name": "Bid", "config": {"outputVariables": [
                {"name": "p", "value": "{{vars.win_probability}}"}]}},
            {"id": 5, "type": "End", "name": "Decline", "config": {"outputVariables": [
                {"name": "declined", "value": "yes"}]}},
        ],
        "connections": [{"id": "a", "from": 1, "to": 2}, {"id": "b", "from": 2, "to": 3},
                        {"id": "c", "from": 3, "to": 4}, {"id": "d", "from": 3, "to": 5}],
    }


def stack(sim, extra=None):
    env = sim.env()
    env.update({"TOOLGATE_OPENAI_COMPATIBLE_BASE_URL": sim.openai_base,
                "TOOLGATE_OPENAI_COMPATIBLE_API_KEY": sim.openai_key,
                "TOOLGATE_MODEL_RETRIES": "2", "TOOLGATE_RETRY_BASE_MS": "50",
                "TOOLGATE_SECRET_KEY": "key1:" + base64.b64encode(b"7" * 32).decode()})
    env.update(extra or {})
    return Stack(mcp=True, extra_env=env)


def run(s, definition, timeout=60):
    st, _, wf = s.gw("POST", "/api/workflows", {"name": "agent", "definition": definition})
    assert st == 201, (st, wf)
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf["id"], {"inputs": {"deal": "acme"}})
    assert st in (200, 201, 202), (st, body)
    return s.wait_run(body.get("run_id") or body.get("id"), timeout=timeout)


def no_key(s, run_body):
    text = json.dumps(run_body) + json.dumps(s.query("SELECT * FROM tool_executions"), default=str)
    text += json.dumps(s.query("SELECT * FROM node_executions"), default=str)
    text += "".join(p.text() for p in s.procs.values() if not p.name.startswith("llmsim"))
    for k in KEYS:
        assert k not in text, "an API key leaked"


def echo_tool(s):
    """A catalog tool made from an MCP connector to the reference server's echo."""
    st, _, c = s.gw("POST", "/api/connectors/mcp", {"name": "ref", "url": s.mcp_url})
    assert st == 201, (st, c)
    st, _, t = s.gw("POST", "/api/agents/create-tool-from-connector",
                    {"connector_id": c["id"], "tool_name": "echo",
                     "tool_description": "Echoes its message"})
    assert st == 201, (st, t)
    return t


def parallel_case(provider):
    with LlmSim() as sim, stack(sim) as s:
        echo_tool(s)
        s.start_worker()
        sim.queue([
            {"tool_calls": [{"name": "calculator", "arguments": {"expression": "(2+3)*4"},
                             "id": "call_calc"},
                            {"name": "echo", "arguments": {"message": "hi"}, "id": "call_echo"}]},
            {"text": json.dumps({"win_probability": 72, "reason": "good"})},
        ])
        r = run(s, agent_workflow(provider, tools=("Calculator", "echo")))
        assert r["status"] == "succeeded", r
        assert r["output"] == {"p": 72}, r
        rows = s.query("SELECT tool_name, tool_call_id, status, node_id FROM tool_executions "
                       "ORDER BY id")
        ids = {x["tool_call_id"]: x for x in rows}
        assert ids["call_calc"]["status"] == "success" and ids["call_echo"]["status"] == \
            "success", rows
        assert all(x["node_id"] == "2" for x in rows), rows
        reqs = sim.requests()
        assert len(reqs) == 2, reqs
        body = json.dumps(reqs[1]["body"])
        assert "call_calc" in body and "call_echo" in body and "20" in body, body
        if provider == "anthropic":
            assert "tool_result" in body, body
        else:
            assert '"role": "tool"' in body, body
        assert "Run variables (JSON)" in json.dumps(reqs[0]["body"]), reqs[0]
        no_key(s, r)


def test_agent_parallel_tools_anthropic():
    parallel_case("anthropic")


def test_agent_parallel_tools_openai():
    parallel_case("openai")


def test_agent_openai_compatible():
    parallel_case("openai_compatible")


def test_agent_model_failures():
    with LlmSim() as sim, stack(sim) as s:
        s.start_worker()
        sim.queue([{"status": 429, "retry_after": 0}, {"text": '{"win_probability": 10}'}])
        r = run(s, agent_workflow())
        assert r["status"] == "succeeded" and r["output"] == {"declined": "yes"}, r
        sim.queue([{"status": 529}] * 3)
        r = run(s, agent_workflow())
        assert r["status"] == "failed" and r["error_class"] == "model_overloaded", r
        sim.queue([{"bad_tool_json": True}])
        r = run(s, agent_workflow())
        assert r["status"] == "failed" and r["error_class"] == "invalid_model_output", r
        sim.reset()
        sim.rules([{"when": {}, "step": {"tool_calls": [
            {"name": "calculator", "arguments": {"expression": "1+1"}}]}}])
        r = run(s, agent_workflow(max_iter=2))
        assert r["status"] == "failed" and r["error_class"] == "max_iterations", r
        sim.reset()
        r = run(s, agent_workflow(tools=("calculator", "no_such_tool")))
        assert r["status"] == "failed" and r["error_class"] == "tool_not_found", r
        assert "no_such_tool" in r["error"], r
        no_key(s, r)


if __name__ == "__main__":
    main(globals())
