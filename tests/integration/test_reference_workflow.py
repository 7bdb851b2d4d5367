"""The builder's reference workflow, verbatim, end to end (issue 15 "Must show"; README
"Reference workflow").

The definition is ../shared/examples/proposal-generation.json as the builder saves it; the
repository keeps a byte-for-byte copy as a fuzz seed (tests/fuzz/corpus/workflow/), which this
test reads, after checking it still equals the builder's file when that is next to the checkout.
Its three https://api... nodes reach one local TLS server through TOOLGATE_CONNECT_TO (its
certificate, for the three names, trusted through TOOLGATE_CA_FILE), authenticated by the user's
host-bound credentials: bearer (api.crm.com), api_key (api.projectdb.com) and oauth2
(api.proposalportal.com, client credentials from the same server's token endpoint). The models
are tests/llmsim scripted with one rule set per agent's system prompt; the catalog gets
"Document_Analysis" and "Document_Generation" from an API connector served by the test (the
builder's "Document Analysis" resolves to it: a space is an underscore), while "Code Execution"
is the built-in code_execution (the Code sandbox).

  - bid path (win probability 72): Agent -> Agent -> Conditional -> Agent -> API -> Code ->
    Agent -> Self-Review -> HITL (approved through the reviews API) -> API -> End, succeeded,
    final_price from the Code node, proposal_id and submission_timestamp from the portal's
    answer; the agents' tool calls are journaled; the decline API is skipped.
  - decline path (win probability 12, value 200,000): the decline API runs and the run ends;
    everything after the Conditional's else side is skipped.
"""
import base64
import json
import os
import sys

from harness import SRC, JsonServer, Stack, main, self_signed_cert, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llmsim"))
from llmsim_client import LlmSim  # noqa: E402

SECRET_KEY = "key1:" + base64.b64encode(b"5" * 32).decode()
HOSTS = ["api.crm.com", "api.projectdb.com", "api.proposalportal.com"]
COPY = os.path.join(SRC, "tests", "fuzz", "corpus", "workflow", "proposal-generation.json")
BUILDER = os.path.join(SRC, "..", "shared", "examples", "proposal-generation.json")

# cost 267,500 at a 25 % margin; no 10 % discount at a win probability of 50 or more
FINAL_PRICE = 267500 / 0.75


def reference_definition():
    with open(COPY, "rb") as f:
        data = f.read()
    if os.path.exists(BUILDER):
        with open(BUILDER, "rb") as f:
            assert f.read() == data, "the corpus copy differs from the builder's file"
    return json.loads(data)


def authorized(headers, want):
    return headers.get("Authorization") == want


def api_routes():
    def decline(method, headers, body):
        if not authorized(headers, "Bearer crm-token-1"):
            return 401, {"error": "unauthorized"}
        return 200, {"proposal_id": "declined", "final_price": 0,
                     "submission_timestamp": "2026-12-03T09:00:00Z"}

    def similar(method, headers, body):
        if headers.get("X-API-Key") != "pdb-key-2":
            return 401, {"error": "unauthorized"}
        return 200, {"projects": [{"name": "Apollo", "price": 410000}], "count": 1}

    def token(method, headers, body):
        form = body.decode()
        if "client_credentials" not in form or "portal-secret-3" not in form + \
                str(headers.get("Authorization")):
            return 401, {"error": "invalid_client"}
        return 200, {"access_token": "portal-access-4", "token_type": "Bearer",
                     "expires_in": 3600}

    def submit(method, headers, body):
        if not authorized(headers, "Bearer portal-access-4"):
            return 401, {"error": "unauthorized"}
        return 200, {"proposal_id": "PP-2026-001", "submission_timestamp": "2026-12-03T12:00:00Z"}

    return {"/v1/opportunities/decline": decline, "/v1/similar-projects": similar,
            "/oauth/token": token, "/v1/submit": submit}


def docs_routes():
    return {
        "/docs/analyze": lambda m, h, b: (200, {"requirements": ["SOC 2", "24/7 support"],
                                                "pages": 40}),
        "/docs/generate": lambda m, h, b: (200, {"document_id": "doc-77", "pages": 30}),
    }


def model_rules(win_probability):
    """One rule set per agent, matched by its system prompt (the builder's prompt text)."""
    def agent(prompt, calls, final):
        rules = []
        if calls:
            rules.append({"when": {"system_contains": prompt, "has_tool_results": False},
                          "step": {"tool_calls": calls}})
        rules.append({"when": {"system_contains": prompt, "structured": True},
                      "step": {"json": final if isinstance(final, dict) else {"text": final}}})
        rules.append({"when": {"system_contains": prompt},
                      "step": {"text": json.dumps(final) if isinstance(final, dict) else final}})
        return rules

    return (
        agent("Analyze RFP document comprehensively",
              [{"name": "Document_Analysis", "arguments": {"document": "RFP text"}}],
              "Requirement matrix: SOC 2 (mandatory), 24/7 support (mandatory).")
        + agent("Assess win probability",
                [{"name": "code_execution",
                  "arguments": {"language": "python", "code": "print(round(0.8 * 90))"}}],
                {"win_probability": win_probability, "strategy": "bid"})
        + agent("Design tailored solution", None, "Three phases, a team of six.")
        + agent("Generate compelling proposal document",
                [{"name": "Document_Generation", "arguments": {"outline": "exec summary"}}],
                "Proposal written: doc-77.")
        + [{"when": {"system_contains": "Verify proposal meets all RFP requirements",
                     "structured": True},
            "step": {"json": {"passed": True, "confidence": 0.96, "issues": []}}}]
    )


def setup(s, docs):
    for cred in ({"name": "crm", "type": "bearer", "token": "crm-token-1",
                  "hosts": ["api.crm.com"]},
                 {"name": "projectdb", "type": "api_key", "value": "pdb-key-2",
                  "hosts": ["api.projectdb.com"]},
                 {"name": "portal", "type": "oauth2",
                  "token_url": "https://api.proposalportal.com/oauth/token",
                  "client_id": "toolgate", "client_secret": "portal-secret-3",
                  "hosts": ["api.proposalportal.com"]}):
        st, _, body = s.gw("POST", "/api/credentials", cred)
        assert st in (200, 201), (st, body)
    st, _, con = s.gw("POST", "/api/connectors/api", {
        "name": "documents", "base_url": docs.url,
        "operations": [
            {"name": "Document_Analysis", "method": "POST", "path": "/docs/analyze",
             "example_payload": {"document": "text"}},
            {"name": "Document_Generation", "method": "POST", "path": "/docs/generate",
             "example_payload": {"outline": "text"}}]})
    assert st == 201, (st, con)
    for name, desc in (("Document_Analysis", "Extracts requirements from a document"),
                       ("Document_Generation", "Writes a document from an outline")):
        st, _, tool = s.gw("POST", "/api/agents/create-tool-from-connector",
                           {"connector_id": con["id"], "tool_name": name,
                            "tool_description": desc})
        assert st == 201, (st, tool)
    st, _, wf = s.gw("POST", "/api/workflows", reference_definition())
    assert st == 201, (st, wf)
    assert wf["warnings"] == [], wf  # every tool name resolves in the catalog
    assert wf["definition"] == reference_definition(), "stored as sent"
    return wf["id"]


def admit(s, wf, value):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {
        "rfp_document": "RFP: managed security services, SOC 2, 24/7 support.",
        "prospect_name": "Acme", "deadline": "2027-01-15", "opportunity_value": value}})
    assert st == 202, (st, body)
    return body["run_id"]


def pending(s, run_id):
    """The run's pending review, or None while there is none (the run must still be going)."""
    mine = [r for r in s.gw("GET", "/api/reviews?status=pending")[2]["reviews"]
            if r["run_id"] == run_id]
    if mine:
        return mine[0]
    st, _, run = s.gw("GET", "/api/runs/" + run_id)
    assert run.get("status") not in ("failed", "succeeded", "attention"), run
    return None


def statuses(s, run_id):
    return {r["node_id"]: r["status"] for r in s.query(
        "SELECT node_id, status FROM node_executions WHERE run_id=? ORDER BY id", run_id)}


def test_reference_workflow_both_paths():
    crt, key = self_signed_cert(HOSTS)
    api = JsonServer(api_routes(), tls=(crt, key))
    docs = JsonServer(docs_routes())
    try:
        with LlmSim() as sim:
            env = dict(sim.env(), TOOLGATE_SECRET_KEY=SECRET_KEY, TOOLGATE_CA_FILE=crt,
                       TOOLGATE_CONNECT_TO=",".join("%s:443:127.0.0.1:%d" % (h, api.port)
                                                    for h in HOSTS))
            with Stack(mcp=False, extra_env=env) as s:
                wf = setup(s, docs)
                s.start_worker()

                # ---- bid path
                sim.reset()
                sim.rules(model_rules(72))
                run_id = admit(s, wf, 800000)
                review = wait_until(lambda: pending(s, run_id), 120, "the partner review")
                assert review["title"] == "Proposal Final Approval", review
                st, _, body = s.gw("POST", "/api/reviews/%s/decision" % review["id"],
                                   {"decision": "approve", "comment": "ship it"})
                assert st == 200, (st, body)
                run = s.wait_run(run_id, timeout=120)
                assert run["status"] == "succeeded", run
                out = run["output"]
                assert out["proposal_id"] == "PP-2026-001", out
                assert out["submission_timestamp"] == "2026-12-03T12:00:00Z", out
                assert abs(out["final_price"] - FINAL_PRICE) < 0.01, out
                n = statuses(s, run_id)
                assert n == {"5000": "success", "5001": "success", "5002": "success",
                             "5003": "success", "5004": "skipped", "5005": "success",
                             "5006": "success", "5007": "success", "5008": "success",
                             "5009": "success", "5010": "success", "5011": "success",
                             "5012": "success"}, n
                code = s.query("SELECT output FROM node_executions WHERE run_id=? AND "
                               "node_id='5007' AND status='success'", run_id)[0]
                assert abs(json.loads(code["output"])["final_price"] - FINAL_PRICE) < 0.01
                verdict = s.query("SELECT output FROM node_executions WHERE run_id=? AND "
                                  "node_id='5009' AND status='success'", run_id)[0]
                assert json.loads(verdict["output"])["passed"] is True, verdict
                tools = s.query("SELECT node_id, tool_name, status, tool_call_id FROM "
                                "tool_executions WHERE run_id=? ORDER BY id", run_id)
                agents = [t for t in tools if t["node_id"] in ("5001", "5002", "5008")]
                assert [t["node_id"] for t in agents] == ["5001", "5002", "5008"], tools
                assert agents[1]["tool_name"] == "code_execution", tools
                assert all(t["status"] == "success" and t["tool_call_id"] for t in agents), tools
                assert len(docs.requests("/docs/analyze")) == 1
                assert len(docs.requests("/docs/generate")) == 1
                assert len(api.requests("/v1/similar-projects")) == 1
                assert len(api.requests("/v1/submit")) == 1
                assert api.requests("/v1/submit")[0][2].get("Host") == "api.proposalportal.com"
                assert not api.requests("/v1/opportunities/decline")
                # the scorer was asked for win_probability; the Conditional read it
                assert run["usage"]["input_tokens"] > 0 and run["usage"]["output_tokens"] > 0
                assert sum(x["input_tokens"] for x in run["nodes"]) == \
                    run["usage"]["input_tokens"], run

                # ---- decline path
                sim.reset()
                sim.rules(model_rules(12))
                run = s.wait_run(admit(s, wf, 200000), timeout=120)
                assert run["status"] == "succeeded", run
                assert run["output"]["proposal_id"] == "declined", run
                n = statuses(s, run["id"])
                assert n == {"5000": "success", "5001": "success", "5002": "success",
                             "5003": "success", "5004": "success", "5005": "skipped",
                             "5006": "skipped", "5007": "skipped", "5008": "skipped",
                             "5009": "skipped", "5010": "skipped", "5011": "skipped",
                             "5012": "success"}, n
                assert len(api.requests("/v1/opportunities/decline")) == 1
                assert len(api.requests("/v1/submit")) == 1  # not again
    finally:
        api.close()
        docs.close()


if __name__ == "__main__":
    main(dict(globals()))
