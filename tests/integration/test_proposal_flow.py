"""The reference workflow's shape, end to end with this release's node types (issue 13 "Must
show"): Start -> MCP (the reference server's get-structured-content) -> Conditional ->
{API decline | API query -> HITL -> API submit} -> End, the API targets a local HTTP server that
counts its requests. Both branches run to 'succeeded' with the untaken side 'skipped'; the HITL
node's approve and request_revisions decisions both resume the run; the End outputs come from
{name, type} variables; kill -9 of the worker mid-run repeats no completed node, and an
in-flight POST without an idempotency key leaves the run in attention/outcome_unknown.

Real simulator, MCP reference server, gateway and worker on 127.0.0.1, fresh SQLite file.
"""
import base64
import json
import threading
import time

from harness import PROVIDER, JsonServer, Stack, main, self_signed_cert, wait_until

SECRET_KEY = "key1:" + base64.b64encode(b"7" * 32).decode()  # seals the credentials


class Target(JsonServer):
    """The CRM, project database and proposal portal in one local server; stall names a path
    whose requests hang until release is set."""

    def __init__(self, tls=None):
        self.stall = None
        self.release = threading.Event()

        def hold(path):
            if self.stall == path:
                self.release.wait(30)

        def submit(method, headers, body):
            sent = json.loads(body or b"{}")
            return 200, {"proposal_id": "P-%s" % sent.get("decision", "?"),
                         "final_price": 412500.5,
                         "submission_timestamp": "2026-12-03T12:00:00Z"}

        super().__init__({
            "/v1/opportunities/decline": lambda m, h, b: (200, {
                "proposal_id": "declined", "final_price": 0,
                "submission_timestamp": "2026-12-03T00:00:00Z"}),
            "/v1/similar-projects": lambda m, h, b: (200, {
                "projects": [{"name": "Apollo", "price": 410000}], "count": 1}),
            "/v1/submit": submit,
        }, tls=tls, hook=hold)

    def close(self):
        self.release.set()
        super().close()


def definition(target, base=None):
    base = base or target.url
    return {
        "title": "Proposal (this release's node types)",
        "description": "Same shape as the builder's proposal-generation example.",
        "nodes": [
            {"id": 1, "type": "Start", "name": "RFP Received", "icon": "play", "x": 0, "y": 0,
             "config": {"inputVariables": [
                 {"name": "prospect_name", "type": "string", "required": True},
                 {"name": "city", "type": "string", "required": True},
                 {"name": "opportunity_value", "type": "number", "required": True}]}},
            {"id": 2, "type": "MCP", "name": "Score", "color": "#123456",
             "config": {"provider": PROVIDER, "tool": "get-structured-content",
                        "arguments": {"location": "{{inputs.city}}"}}},
            {"id": 3, "type": "Conditional", "name": "Pursue?",
             "config": {"branches": [
                 {"type": "if", "condition": "temperature < 35 AND opportunity_value < 500000",
                  "targetNodeId": 4},
                 {"type": "else", "condition": "", "targetNodeId": 5}]}},
            {"id": 4, "type": "API", "name": "Decline & Notify",
             "config": {"method": "POST", "url": base + "/v1/opportunities/decline",
                        "authentication": "bearer", "credential": "crm",
                        "body": {"prospect": "{{inputs.prospect_name}}"}}},
            {"id": 5, "type": "API", "name": "Query Historical Projects",
             "config": {"method": "GET", "url": base + "/v1/similar-projects",
                        "authentication": {"type": "api_key", "in": "query", "name": "key",
                                           "value": "{{secrets.projectdb}}"},
                        "query_params": {"q": "{{inputs.prospect_name}}"}}},
            {"id": 6, "type": "HITL", "name": "Partner Final Review",
             "config": {"reviewTitle": "Proposal Final Approval", "priority": "high",
                        "message": "Review {{inputs.prospect_name}}: {{vars.count}} similar",
                        "allowedDecisions": ["approve", "request_revisions"]}},
            {"id": 7, "type": "API", "name": "Submit Proposal",
             "config": {"method": "POST", "url": base + "/v1/submit",
                        "authentication": "bearer", "credential": "crm",
                        "body": {"decision": "{{nodes.6.output.decision}}",
                                 "prospect": "{{inputs.prospect_name}}"}}},
            {"id": 8, "type": "End", "name": "Proposal Submitted",
             "config": {"outputVariables": [{"name": "proposal_id", "type": "string"},
                                            {"name": "final_price", "type": "number"},
                                            {"name": "submission_timestamp",
                                             "type": "string"}]}},
        ],
        "connections": [{"id": 10, "from": 1, "to": 2}, {"id": 11, "from": 2, "to": 3},
                        {"id": 12, "from": 3, "to": 4}, {"id": 13, "from": 3, "to": 5},
                        {"id": 14, "from": 4, "to": 8}, {"id": 15, "from": 5, "to": 6},
                        {"id": 16, "from": 6, "to": 7}, {"id": 17, "from": 7, "to": 8}],
    }


def stack(extra_env=None):
    return Stack(extra_env=dict({"TOOLGATE_SECRET_KEY": SECRET_KEY,
                                 "TOOLGATE_EGRESS_ALLOW": "127.0.0.1"}, **(extra_env or {})))


def setup(s, target, base=None):
    s.connect()
    for cred in ({"name": "crm", "type": "bearer", "token": "crm-token-5f1"},
                 {"name": "projectdb", "type": "api_key", "value": "pdb-key-9a2"}):
        st, _, body = s.gw("POST", "/api/credentials", cred)
        assert st in (200, 201), (st, body)
    return s.create_workflow(definition(target, base))


def admit(s, wf, city, value=100000):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf,
                       {"inputs": {"prospect_name": "Acme", "city": city,
                                   "opportunity_value": value}})
    assert st == 202, (st, body)
    return body["run_id"]


def nodes(s, run_id):
    """node id -> status of its last journal row."""
    out = {}
    for r in s.query("SELECT node_id, status FROM node_executions WHERE run_id=? ORDER BY id",
                     run_id):
        out[r["node_id"]] = r["status"]
    return out


def pending_review(s, run_id):
    def find():
        st, _, body = s.gw("GET", "/api/reviews?status=pending")
        assert st == 200, (st, body)
        mine = [r for r in body["reviews"] if r["run_id"] == run_id]
        return mine[0] if mine else None
    return wait_until(find, 30, "the review of " + run_id, 0.1)


def test_decline_branch():
    target = Target()
    try:
        with stack() as s:
            wf = setup(s, target)
            s.start_worker()
            run_id = admit(s, wf, "New York")  # 33 degrees: the "if" holds
            run = s.wait_run(run_id)
            assert run["status"] == "succeeded", run
            assert run["output"] == {"proposal_id": "declined", "final_price": 0,
                                     "submission_timestamp": "2026-12-03T00:00:00Z"}, run
            n = nodes(s, run_id)
            assert n == {"1": "success", "2": "success", "3": "success", "4": "success",
                         "5": "skipped", "6": "skipped", "7": "skipped", "8": "success"}, n
            assert target.count("/v1/opportunities/decline") == 1
            assert target.count("/v1/similar-projects") == 0
            method, _, headers, body = target.seen[0]
            assert method == "POST" and headers.get("Authorization") == "Bearer crm-token-5f1"
            assert json.loads(body) == {"prospect": "Acme"}, body
            # The credential reached the target, and nothing the product stores or shows.
            dump = json.dumps(s.query("SELECT * FROM node_executions")) + \
                json.dumps(s.query("SELECT * FROM tool_executions")) + json.dumps(run)
            assert "crm-token-5f1" not in dump and "pdb-key-9a2" not in dump
            for p in s.procs.values():
                assert "crm-token-5f1" not in p.text()
            types = [e["type"] for e in
                     s.gw("GET", "/api/runs/%s/events" % run_id)[2]["events"]]
            assert types.count("node_skipped") == 3 and types[-1] == "run_finished", types
    finally:
        target.close()


def test_named_https_host_reaches_a_local_tls_server():
    """The workflow names https://api.crm.com/... verbatim; TOOLGATE_CONNECT_TO maps it to a local
    TLS server whose certificate (for api.crm.com) TOOLGATE_CA_FILE trusts."""
    crt, key = self_signed_cert(["api.crm.com"])
    target = Target(tls=(crt, key))
    try:
        env = {"TOOLGATE_CONNECT_TO": "api.crm.com:443:127.0.0.1:%d" % target.port,
               "TOOLGATE_CA_FILE": crt}
        with stack(env) as s:
            wf = setup(s, target, "https://api.crm.com")
            st, _, stored = s.gw("GET", "/api/workflows/" + wf)
            assert "https://api.crm.com/v1/opportunities/decline" in json.dumps(stored), stored
            s.start_worker()
            run = s.wait_run(admit(s, wf, "New York"))
            assert run["status"] == "succeeded", run
            assert run["output"]["proposal_id"] == "declined", run
            assert target.count("/v1/opportunities/decline") == 1
            assert target.seen[0][2].get("Host") == "api.crm.com", target.seen[0]
        with stack({"TOOLGATE_CONNECT_TO": env["TOOLGATE_CONNECT_TO"]}) as s:  # no CA file
            wf = setup(s, target, "https://api.crm.com")
            s.start_worker()
            run = s.wait_run(admit(s, wf, "New York"))
            assert run["status"] == "failed", run  # the certificate is not trusted
            assert target.count("/v1/opportunities/decline") == 1
    finally:
        target.close()


def test_review_branch_approve_and_request_revisions():
    target = Target()
    try:
        with stack() as s:
            wf = setup(s, target)
            s.start_worker()
            for decision in ("approve", "request_revisions"):
                run_id = admit(s, wf, "Chicago")  # 36 degrees: the else branch
                review = pending_review(s, run_id)
                assert review["allowed_decisions"] == ["approve", "request_revisions"], review
                assert review["message"] == "Review Acme: 1 similar", review
                row = s.query("SELECT status, claimed_by FROM workflow_runs WHERE id=?",
                              run_id)[0]
                assert row == {"status": "waiting", "claimed_by": None}, row
                st, _, body = s.gw("POST", "/api/reviews/%s/decision" % review["id"],
                                   {"decision": "maybe"})
                assert st == 422, (st, body)
                st, _, body = s.gw("POST", "/api/reviews/%s/decision" % review["id"],
                                   {"decision": decision, "comment": "ok"})
                assert st == 200, (st, body)
                st, _, body = s.gw("POST", "/api/reviews/%s/decision" % review["id"],
                                   {"decision": decision})
                assert st == 409, (st, body)
                run = s.wait_run(run_id)
                assert run["status"] == "succeeded", run
                assert run["output"]["proposal_id"] == "P-" + decision, run
                assert run["output"]["final_price"] == 412500.5, run
                n = nodes(s, run_id)
                assert n == {"1": "success", "2": "success", "3": "success", "4": "skipped",
                             "5": "success", "6": "success", "7": "success", "8": "success"}, n
            # Each API node ran once per run: nothing was repeated across the park and resume.
            assert target.count("/v1/similar-projects") == 2
            assert target.count("/v1/submit") == 2
            assert target.count("/v1/opportunities/decline") == 0
            q = [x for x in target.seen if x[1].startswith("/v1/similar-projects")][0]
            assert "key=pdb-key-9a2" in q[1] and "q=Acme" in q[1], q
    finally:
        target.close()


def test_kill_9_repeats_nothing_and_unsafe_post_needs_a_decision():
    target = Target()
    target.stall = "/v1/submit"
    try:
        with stack() as s:
            wf = setup(s, target)
            w = s.start_worker()
            run_id = admit(s, wf, "Chicago")
            review = pending_review(s, run_id)
            st, _, body = s.gw("POST", "/api/reviews/%s/decision" % review["id"],
                               {"decision": "approve"})
            assert st == 200, (st, body)
            wait_until(lambda: target.count("/v1/submit") == 1, 30, "the submit POST to start")
            w.kill9()
            mcp_calls = len(s.query("SELECT id FROM tool_executions WHERE run_id=? AND "
                                    "provider=?", run_id, PROVIDER))
            s.start_worker()  # re-claims after the lease expires
            run = s.wait_run(run_id, timeout=40)
            assert run["status"] == "attention", run
            meta = run.get("metadata") or {}
            assert run["error_class"] == "outcome_unknown", run
            assert meta.get("reason") == "outcome_unknown" and meta.get("node_id") == "7", meta
            by_node = {n["id"]: n["status"] for n in run["nodes"]}
            assert by_node["7"] in ("pending", "unknown") and by_node["6"] == "success", by_node
            # Completed nodes were not executed again: one query, one MCP call, one review.
            assert target.count("/v1/similar-projects") == 1
            assert len(s.query("SELECT id FROM tool_executions WHERE run_id=? AND provider=?",
                               run_id, PROVIDER)) == mcp_calls == 1
            assert len(s.query("SELECT id FROM reviews WHERE run_id=?", run_id)) == 1
            assert target.count("/v1/submit") == 1
            # The user says it did not go through: retry it, and the run finishes.
            target.stall = None
            target.release.set()
            st, _, body = s.gw("POST", "/api/runs/%s/resolve" % run_id,
                               {"node_id": "7", "action": "retry"})
            assert st == 200, (st, body)
            run = s.wait_run(run_id, timeout=30)
            assert run["status"] == "succeeded", run
            assert target.count("/v1/submit") == 2
            assert target.count("/v1/similar-projects") == 1
    finally:
        target.close()


if __name__ == "__main__":
    main(dict(globals()))
