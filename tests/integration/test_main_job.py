"""The main job, end to end: HTTP -> provider check -> queue -> worker -> real MCP server -> back.

Every test starts the real simulator, the MCP reference server, the gateway and workers on
127.0.0.1 with a fresh SQLite file, and drives them as a client would.
"""
import json
import time

from harness import PROVIDER, Stack, http, main

INPUTS = {"message": "hello from toolgate", "a": 2, "b": 40}


def test_happy_path_through_reference_server():
    with Stack() as s:
        s.connect("alice")
        conn = s.query("SELECT m.url FROM mcp_connections m JOIN connected_accounts c "
                       "ON c.id = m.connected_account_id WHERE c.user_id='alice'")
        assert conn and conn[0]["url"].startswith(s.mcp_url), conn
        wf = s.create_workflow()
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 202 and body["status"] == "queued", (st, body)
        run_id = body["run_id"]
        row = s.query("SELECT status, metadata FROM workflow_runs WHERE id=?", run_id)[0]
        assert row["status"] == "queued"
        assert json.loads(row["metadata"])["tool_constraints"]["providers"] == [PROVIDER]
        s.start_worker()
        run = s.wait_run(run_id)
        assert run["status"] == "succeeded", run
        # The output came from the reference server, not from us.
        assert run["output"] == {"echo": "Echo: hello from toolgate",
                                 "sum": "The sum of 2 and 40 is 42."}, run["output"]
        st, _, ex = s.gw("GET", "/api/runs/%s/tool-executions" % run_id)
        assert st == 200
        ex = ex["tool_executions"]
        assert [e["tool_name"] for e in ex] == ["echo", "get-sum"], ex
        assert all(e["status"] == "success" and e["duration_ms"] is not None for e in ex), ex
        assert ex[0]["response"]["content"][0]["text"] == "Echo: hello from toolgate"
        assert ex[1]["arguments"] == {"a": 2, "b": 40}
        # One debit for one run.
        ledger = s.query("SELECT delta, reason FROM credit_ledger WHERE run_id=?", run_id)
        assert ledger == [{"delta": -1, "reason": "run_admitted"}], ledger


def test_expired_account_gets_409():
    with Stack(mcp=False) as s:
        ca = s.connect("alice")
        wf = s.create_workflow()
        st, _, acct = s.sim("PATCH", "/_sim/accounts/" + ca,
                            {"status": "EXPIRED", "status_reason": "OAuth refresh token expired"})
        assert st == 200, (st, acct)
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 409, (st, body)
        assert body["error"] == "oauth_refresh_required"
        assert body["providers"] == [PROVIDER]
        assert body["reasons"] == {PROVIDER: "connected_account_status=EXPIRED"}
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == 0
        assert s.query("SELECT count(*) AS n FROM credit_ledger WHERE reason='run_admitted'")[0]["n"] == 0
        # The observed status was written back.
        row = s.query("SELECT status FROM connected_accounts WHERE user_id='alice'")[0]
        assert row["status"] == "EXPIRED", row


def test_refresh_required_gets_409():
    with Stack(mcp=False) as s:
        ca = s.connect("alice")
        wf = s.create_workflow()
        s.sim("PATCH", "/_sim/accounts/" + ca, {"auth_refresh_required": True})
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 409, (st, body)
        assert body["reasons"] == {PROVIDER: "auth_refresh_required"}, body


def test_expired_after_admission_gives_attention():
    with Stack(mcp=False) as s:
        ca = s.connect("alice")
        wf = s.create_workflow()
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 202, (st, body)
        credits_after_debit = s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"]
        s.sim("PATCH", "/_sim/accounts/" + ca, {"status": "EXPIRED"})
        s.start_worker()
        run = s.wait_run(body["run_id"])
        assert run["status"] == "attention", run
        assert run["metadata"]["error"] == "oauth_refresh_required"
        assert run["metadata"]["providers"] == [PROVIDER]
        assert run["metadata"]["reasons"] == {PROVIDER: "connected_account_status=EXPIRED"}
        # Refunded in the same transaction; no tool was called.
        credits = s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"]
        assert credits == credits_after_debit + 1, (credits, credits_after_debit)
        assert s.query("SELECT count(*) AS n FROM tool_executions")[0]["n"] == 0


def test_simulator_down_gives_503():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        s.procs.pop("composio-sim").stop()
        st, h, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 503, (st, body)
        assert int(h["retry-after"]) >= 1, h
        assert body["error"] == "composio_unavailable", body
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == 0


def test_tool_error_fails_run_with_error_recorded():
    with Stack() as s:
        s.connect("alice")
        wf_def = {
            "title": "bad echo",
            "nodes": [
                {"id": "start", "type": "Start", "name": "Start",
                 "config": {"inputVariables": [{"name": "n", "type": "number", "required": True}]}},
                # echo wants a string: the reference server answers isError: true.
                {"id": "echo", "type": "MCP", "name": "Echo",
                 "config": {"provider": PROVIDER, "tool": "echo",
                            "arguments": {"message": "{{inputs.n}}"}}},
                {"id": "end", "type": "End", "name": "End", "config": {"outputVariables": []}},
            ],
            "connections": [{"id": "c1", "from": "start", "to": "echo"},
                            {"id": "c2", "from": "echo", "to": "end"}],
        }
        wf = s.create_workflow(wf_def)
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {"n": 42}})
        assert st == 202, (st, body)
        s.start_worker()
        run = s.wait_run(body["run_id"])
        assert run["status"] == "failed", run
        assert run["error_class"] == "tool_error", run
        assert "expected string" in run["error"].lower() or "validation" in run["error"].lower(), run
        ex = s.query("SELECT status, error_class, response FROM tool_executions WHERE run_id=?",
                     body["run_id"])
        assert len(ex) == 1 and ex[0]["status"] == "failed", ex
        assert json.loads(ex[0]["response"])["isError"] is True, ex


if __name__ == "__main__":
    main(dict(globals()))
