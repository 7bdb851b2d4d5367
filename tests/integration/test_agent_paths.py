#!/usr/bin/env python3
"""The Agent node's harder paths (README "Agent nodes") against the model simulator.

Covered: structured output the graph asks for (a Conditional reads win_probability, which no
node produces): a wrong answer then a right one succeeds after one retry whose request carries
the validation error, a wrong answer twice fails with invalid_model_output, and with tools the
free final answer that misses the schema is followed by a forced structured request; the run
deadline during a slow model answer fails the run with timeout promptly; kill -9 of the worker
while an http_request tool call is in flight leaves the re-claimed run in attention
(outcome_unknown) without calling the tool a second time; the code_execution built-in runs in the
Code sandbox, its result goes back to the model and the call is journaled.
"""
import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "llmsim"))
from harness import Stack, main, serve_http  # noqa: E402
from llmsim_client import LlmSim  # noqa: E402
from test_agent_node import agent_workflow  # noqa: E402


def workflow(tools=(), max_iter=5):
    """Start -> Agent -> Conditional on win_probability (which nothing else produces) -> End."""
    return agent_workflow("anthropic", tools, max_iter)


def stack(sim, extra=None):
    env = sim.env()
    env.update({"TOOLGATE_MODEL_RETRIES": "0", "TOOLGATE_RETRY_BASE_MS": "50",
                "TOOLGATE_SECRET_KEY": "key1:" + base64.b64encode(b"7" * 32).decode()})
    env.update(extra or {})
    return Stack(mcp=False, extra_env=env)


def admit(s, definition):
    st, _, wf = s.gw("POST", "/api/workflows", {"name": "agent", "definition": definition})
    assert st == 201, (st, wf)
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf["id"], {"inputs": {"deal": "acme"}})
    assert st in (200, 201, 202), (st, body)
    return body.get("run_id") or body.get("id")


def messages_text(req):
    return json.dumps(req["body"].get("messages"))


def test_structured_retry_then_success():
    with LlmSim() as sim, stack(sim) as s:
        s.start_worker()
        sim.queue([{"json": {"win_probability": "high"}}, {"json": {"win_probability": 72}}])
        r = s.wait_run(admit(s, workflow()))
        assert r["status"] == "succeeded" and r["output"] == {"p": 72}, r
        reqs = sim.requests()
        assert len(reqs) == 2, reqs
        for q in reqs:  # asked as structured output: the forced tool of the Anthropic format
            assert q["body"]["tool_choice"]["name"] == "structured_output", q["body"]
            schema = json.dumps(q["body"]["tools"])
            assert "win_probability" in schema, schema
        first, second = messages_text(reqs[0]), messages_text(reqs[1])
        assert "win_probability: expected type number" not in first, first
        assert "win_probability: expected type number" in second, second
        assert "does not meet the output schema" in second, second


def test_structured_wrong_twice():
    with LlmSim() as sim, stack(sim) as s:
        s.start_worker()
        sim.queue([{"json": {"score": 72}}, {"json": {"score": 73}}])
        r = s.wait_run(admit(s, workflow()))
        assert r["status"] == "failed" and r["error_class"] == "invalid_model_output", r
        assert "win_probability" in r["error"], r
        reqs = sim.requests()
        assert len(reqs) == 2, reqs
        assert "win_probability: required and missing" in messages_text(reqs[1]), reqs[1]


def test_structured_after_tools():
    """With tools the free answer is taken only when it meets the schema; else one forced
    structured request follows (no tools offered in it)."""
    with LlmSim() as sim, stack(sim) as s:
        s.start_worker()
        sim.queue([
            {"tool_calls": [{"name": "calculator", "arguments": {"expression": "60+12"},
                             "id": "c1"}]},
            {"text": "About seventy-two percent."},
            {"json": {"win_probability": 72}},
        ])
        r = s.wait_run(admit(s, workflow(tools=("calculator",))))
        assert r["status"] == "succeeded" and r["output"] == {"p": 72}, r
        reqs = sim.requests()
        assert len(reqs) == 3, reqs
        assert "tool_choice" not in reqs[1]["body"], reqs[1]["body"]
        assert reqs[2]["body"]["tool_choice"]["name"] == "structured_output", reqs[2]["body"]
        assert [t["name"] for t in reqs[2]["body"]["tools"]] == ["structured_output"], reqs[2]
        assert "72" in messages_text(reqs[1]), reqs[1]  # the calculator's result went back


def test_deadline_during_slow_model():
    with LlmSim() as sim, stack(sim, {"TOOLGATE_RUN_DEADLINE_MS": "1500"}) as s:
        s.start_worker()
        sim.queue([{"json": {"win_probability": 72}, "delay_ms": 30000}])
        t0 = time.monotonic()
        run_id = admit(s, workflow())
        r = s.wait_run(run_id, timeout=20)
        took = time.monotonic() - t0
        assert r["status"] == "failed" and r["error_class"] == "timeout", r
        assert took < 8, "the deadline took %.1f s to end the run" % took
        node = [n for n in r["nodes"] if n["id"] == "2"][0]
        assert node["status"] == "failed", node
        assert len(sim.requests()) == 1


class Slow(BaseHTTPRequestHandler):
    """A target that holds every POST until released (or 60 s), counting them."""
    posts = 0
    arrived = threading.Event()
    release = threading.Event()

    def do_POST(self):
        type(self).posts += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).arrived.set()
        type(self).release.wait(60)
        try:
            body = b'{"ok":true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_kill_9_during_tool_call():
    srv = serve_http(Slow)
    try:
        with LlmSim() as sim, stack(sim) as s:
            w = s.start_worker()
            sim.rules([{"when": {"has_tool_results": False}, "step": {"tool_calls": [
                {"name": "http_request", "id": "call_post",
                 "arguments": {"method": "POST", "url": srv.url + "/orders",
                               "body": {"item": "widget"}}}]}},
                       {"when": {"has_tool_results": True},
                        "step": {"text": json.dumps({"win_probability": 50})}}])
            run_id = admit(s, workflow(tools=("http_request",)))
            assert Slow.arrived.wait(30), "the tool call never reached the target"
            w.kill9()
            s.start_worker()  # re-claims once the lease expires
            r = s.wait_run(run_id, timeout=40)
            assert r["status"] == "attention" and r["error_class"] == "outcome_unknown", r
            meta = r.get("metadata") or {}
            assert meta.get("node_id") == "2", meta
            assert Slow.posts == 1, "the tool was called %d times" % Slow.posts
            rows = s.query("SELECT tool_name, tool_call_id, status FROM tool_executions "
                           "WHERE run_id=?", run_id)
            assert len(rows) == 1 and rows[0]["tool_call_id"] == "call_post", rows
            assert rows[0]["status"] in ("pending", "unknown"), rows
            # The second worker asked the model nothing: the node stopped before its loop.
            assert len(sim.requests()) == 1, sim.requests()
    finally:
        Slow.release.set()
        srv.shutdown()
        srv.server_close()


def test_code_execution_tool():
    with LlmSim() as sim, stack(sim) as s:
        s.start_worker()
        sim.queue([
            {"tool_calls": [{"name": "code_execution", "id": "call_code",
                             "arguments": {"language": "python",
                                           "code": "print(sum(range(10)) * 2)"}}]},
            {"text": json.dumps({"win_probability": 90})},
        ])
        r = s.wait_run(admit(s, workflow(tools=("Code Execution",))))
        assert r["status"] == "succeeded" and r["output"] == {"p": 90}, r
        reqs = sim.requests()
        assert len(reqs) == 2, reqs
        back = messages_text(reqs[1])
        assert "tool_result" in back and "call_code" in back and "90" in back, back
        rows = s.query("SELECT tool_name, tool_call_id, status, response, provider FROM "
                       "tool_executions WHERE run_id=?", r["id"])
        assert len(rows) == 1, rows
        row = rows[0]
        assert row["tool_name"] == "code_execution" and row["tool_call_id"] == "call_code", row
        assert row["status"] == "success" and row["provider"] == "builtin", row
        assert "90" in row["response"], row


if __name__ == "__main__":
    main(globals())
