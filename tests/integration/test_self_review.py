"""Self-Review nodes against the model simulator (README "Self-Review nodes"): a verdict that
passes; one below minConfidence fails the run with review_failed naming the issues, or continues
with onFail "continue"; a malformed verdict is asked again once, then invalid_model_output; the
tokens are on the node's journal row and in GET /api/runs/{id} usage; a small
TOOLGATE_RUN_TOKEN_BUDGET fails the run with budget_exceeded. Also the write-time warning for an
Agent tool the catalog cannot resolve.

Real gateway and worker on 127.0.0.1, tests/llmsim as Anthropic's API, fresh SQLite file.
"""
import json
import os
import sys

from harness import Stack, main

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llmsim"))
from llmsim_client import LlmSim  # noqa: E402

REVIEW_PROMPT = "Verify the draft states a price and a deadline."


def definition(min_confidence=0.9, on_fail=None):
    review = {"reviewPrompt": REVIEW_PROMPT, "minConfidence": min_confidence}
    if on_fail:
        review["onFail"] = on_fail
    return {
        "title": "Review a draft",
        "nodes": [
            {"id": 1, "type": "Start", "name": "Draft",
             "config": {"inputVariables": [{"name": "draft", "type": "string",
                                            "required": True}]}},
            {"id": 2, "type": "Self-Review", "name": "Compliance Check", "config": review},
            {"id": 3, "type": "End", "name": "Done",
             "config": {"outputVariables": [{"name": "passed", "type": "boolean"},
                                            {"name": "confidence", "type": "number"}]}},
        ],
        "connections": [{"id": 10, "from": 1, "to": 2}, {"id": 11, "from": 2, "to": 3}],
    }


def run(s, sim, steps, defn=None):
    sim.reset()
    sim.queue(steps)
    wf = s.create_workflow(defn or definition())
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf,
                       {"inputs": {"draft": "Price: 10 EUR. Deadline: Friday."}})
    assert st == 202, (st, body)
    return s.wait_run(body["run_id"])


def review_row(s, run_id):
    rows = s.query("SELECT * FROM node_executions WHERE run_id=? AND node_id='2' ORDER BY id",
                   run_id)
    assert len(rows) == 1, rows
    return rows[0]


def stack(sim, **env):
    s = Stack(mcp=False, extra_env=dict(sim.env(), **env))
    return s


def test_pass_fail_continue_malformed():
    with LlmSim() as sim, stack(sim) as s:
        s.start_worker()
        # passes: the verdict is the output, the tokens are journaled and summed
        run_ = run(s, sim, [{"json": {"passed": True, "confidence": 0.95, "issues": []},
                             "usage": {"input_tokens": 120, "output_tokens": 30}}])
        assert run_["status"] == "succeeded", run_
        assert run_["output"] == {"passed": True, "confidence": 0.95}, run_
        row = review_row(s, run_["id"])
        assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("success", 120, 30)
        assert run_["usage"] == {"input_tokens": 120, "output_tokens": 30}, run_
        node = [n for n in run_["nodes"] if n["id"] == "2"][0]
        assert (node["input_tokens"], node["output_tokens"]) == (120, 30), node
        reqs = sim.requests()
        assert len(reqs) == 1 and reqs[0]["path"] == "/v1/messages", reqs
        body = reqs[0]["body"]
        system = body["system"] if isinstance(body["system"], str) else \
            " ".join(b.get("text", "") for b in body["system"])
        assert REVIEW_PROMPT in system, body
        assert body["tool_choice"] == {"type": "tool", "name": "structured_output"}, body
        assert "Deadline: Friday" in str(body["messages"]), body
        assert body["model"] == "claude-sonnet-4-5", body  # no Agent before it: the default

        # below minConfidence: review_failed with the issues
        run_ = run(s, sim, [{"json": {"passed": True, "confidence": 0.5,
                                      "issues": ["no pricing table", "deadline unclear"]}}])
        assert run_["status"] == "failed" and run_["error_class"] == "review_failed", run_
        assert "no pricing table; deadline unclear" in run_["error"], run_
        assert review_row(s, run_["id"])["status"] == "failed"
        # passed false fails whatever the confidence
        run_ = run(s, sim, [{"json": {"passed": False, "confidence": 1, "issues": ["x"]}}])
        assert run_["error_class"] == "review_failed", run_

        # onFail continue: success with the verdict
        run_ = run(s, sim, [{"json": {"passed": False, "confidence": 0.2, "issues": ["x"]}}],
                   definition(on_fail="continue"))
        assert run_["status"] == "succeeded", run_
        assert run_["output"] == {"passed": False, "confidence": 0.2}, run_

        # malformed: asked again once with the reason, then invalid_model_output
        run_ = run(s, sim, [{"json": {"passed": "yes", "confidence": 0.9, "issues": []}},
                            {"json": {"passed": True, "confidence": 7, "issues": []}}])
        assert run_["status"] == "failed", run_
        assert run_["error_class"] == "invalid_model_output", run_
        reqs = sim.requests()
        assert len(reqs) == 2, reqs
        assert "\"passed\" must be a boolean" in str(reqs[1]["body"]["messages"]), reqs[1]
        # a malformed answer then a good one: the retry succeeds
        run_ = run(s, sim, [{"raw": "{not json"},
                            {"json": {"passed": True, "confidence": 1, "issues": []}}])
        assert run_["status"] == "succeeded", run_


def test_cuts_keep_utf8():
    """Texts cut to a byte count stay valid UTF-8: a judged output past 256 KiB cut inside a
    character still reaches the model, and a review_failed error whose issues are cut inside a
    character is still the run's error."""
    with LlmSim() as sim, stack(sim) as s:
        s.start_worker()
        sim.reset()
        sim.queue([{"json": {"passed": True, "confidence": 1, "issues": []}}])
        wf = s.create_workflow(definition())
        # {\n "draft": "  is 13 bytes: each 2-byte character then starts at an odd offset, so
        # the cut at 256 KiB (even) falls inside one
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {"draft": "\u00e9" * 140000}})
        assert st == 202, (st, body)
        run_ = s.wait_run(body["run_id"])
        assert run_["status"] == "succeeded", (run_["status"], run_.get("error"))
        assert "cut short" in str(sim.requests()[0]["body"]["messages"]), "no cut"

        run_ = run(s, sim, [{"json": {"passed": False, "confidence": 0.1,
                                      "issues": ["x" + "\u00e9" * 300]}}])
        assert run_["error_class"] == "review_failed", (run_["status"], run_.get("error"))
        assert "issues: x\u00e9\u00e9" in run_.get("error", ""), run_.get("error")


def test_token_budget():
    with LlmSim() as sim, stack(sim, TOOLGATE_RUN_TOKEN_BUDGET="100") as s:
        s.start_worker()
        run_ = run(s, sim, [{"json": {"passed": True, "confidence": 1, "issues": []},
                             "usage": {"input_tokens": 90, "output_tokens": 20}}])
        assert run_["status"] == "failed", run_
        assert run_["error_class"] == "budget_exceeded", run_
        assert "110 model tokens" in run_["error"] and "budget of 100" in run_["error"], run_
        assert run_["usage"] == {"input_tokens": 90, "output_tokens": 20}, run_
        run_ = run(s, sim, [{"json": {"passed": True, "confidence": 1, "issues": []},
                             "usage": {"input_tokens": 50, "output_tokens": 20}}])
        assert run_["status"] == "succeeded", run_


def test_compatible_base_url_gets_no_configured_key():
    """openai_compatible: TOOLGATE_OPENAI_COMPATIBLE_API_KEY goes to the configured base URL,
    never to a model.baseUrl the workflow names (that URL is the author's, not the operator's)."""
    operator_key = "operator-compatible-key"
    verdict = {"json": {"passed": True, "confidence": 1, "issues": []}}
    with LlmSim(openai_key="") as sim, stack(
            sim, TOOLGATE_OPENAI_COMPATIBLE_API_KEY=operator_key,
            TOOLGATE_OPENAI_COMPATIBLE_BASE_URL=sim.openai_base) as s:
        s.start_worker()
        defn = definition()
        model = {"provider": "openai_compatible", "modelName": "local"}
        defn["nodes"][1]["config"]["model"] = model
        run_ = run(s, sim, [verdict], defn)  # the configured URL: the configured key
        assert run_["status"] == "succeeded", run_
        reqs = sim.requests()
        assert reqs[0]["headers"].get("authorization") == "Bearer " + operator_key, reqs
        model["baseUrl"] = sim.url + "/v1"  # the same server, named by the workflow
        run_ = run(s, sim, [verdict], defn)
        assert run_["status"] == "succeeded", run_
        reqs = sim.requests()
        assert len(reqs) == 1 and reqs[0]["path"] == "/v1/chat/completions", reqs
        assert operator_key not in str(reqs[0]["headers"]), reqs[0]["headers"]


def test_unknown_agent_tool_warns():
    with LlmSim() as sim, stack(sim) as s:
        defn = definition()
        defn["nodes"].insert(1, {"id": 5, "type": "Agent", "name": "Writer", "config": {
            "prompt": "Write.", "model": {"provider": "anthropic", "modelName": "m"},
            "tools": ["Code Execution", "calculator", "Crystal Ball"]}})
        defn["connections"] = [{"id": 10, "from": 1, "to": 5}, {"id": 12, "from": 5, "to": 2},
                               {"id": 11, "from": 2, "to": 3}]
        st, _, body = s.gw("POST", "/api/workflows", defn)
        assert st == 201, (st, body)
        assert body["warnings"] == [{"node_id": "5", "message": body["warnings"][0]["message"]}]
        assert "Crystal Ball" in body["warnings"][0]["message"], body
        # names and ids at their longest, not ASCII: the warning is whole
        long_id, long_tool = "n" + "\u00e9" * 63, "x" + "\u00e9" * 63  # 127 bytes each
        defn2 = json.loads(json.dumps(defn))
        defn2["nodes"][1]["id"] = long_id
        defn2["nodes"][1]["config"]["tools"] = [long_tool]
        defn2["connections"] = [{"id": 10, "from": 1, "to": long_id},
                                {"id": 12, "from": long_id, "to": 2},
                                {"id": 11, "from": 2, "to": 3}]
        st, _, body2 = s.gw("POST", "/api/workflows", defn2)
        assert st == 201, (st, body2)
        assert [w["node_id"] for w in body2["warnings"]] == [long_id], body2["warnings"]
        assert long_tool in body2["warnings"][0]["message"], body2["warnings"]
        defn["nodes"][1]["config"]["tools"] = ["code_execution"]
        st, _, body = s.gw("PUT", "/api/workflows/" + body["id"], defn)
        assert st == 200 and body["warnings"] == [], (st, body)


if __name__ == "__main__":
    main(dict(globals()))
