"""Gateway edges: routing and identity, the OAuth state rules, reconnects, workflows, admission
details (inputs, idempotency, credits), workflow update and delete and a clean SIGTERM with Composio work in flight.

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway, fresh SQLite file each test).
"""
import json
import signal
import threading
import time

from harness import PROVIDER, Stack, http, main, wait_until

INPUTS = {"message": "hi", "a": 1, "b": 2}


def test_routing_identity_and_bodies():
    with Stack(mcp=False) as s:
        st, _, body = s.gw("GET", "/healthz", user=None)
        assert st == 200 and body == {"status": "ok"}, body
        st, _, body = s.gw("GET", "/readyz", user=None)
        assert st == 200, body
        st, _, body = s.gw("GET", "/api/workflows", user=None)
        assert st == 401 and body["error"] == "unauthorized", body
        st, _, body = s.gw("GET", "/api/workflows", user="bad user")  # space: not printable
        assert st == 401, body
        st, _, body = s.gw("GET", "/api/workflows", user="u" * 129)
        assert st == 401, body
        st, _, body = s.gw("GET", "/api/nothing-here")
        assert st == 404 and body["error"] == "not_found", body
        st, h, body = s.gw("DELETE", "/api/workflows")
        assert st == 405 and "GET" in h["allow"] and "POST" in h["allow"], (st, h)
        st, _, body = s.gw("POST", "/api/workflows", "{nope")
        assert st == 400 and body["error"] == "invalid_json", body
        # No user rows for rejected requests; one user + one grant for the first accepted one.
        assert s.query("SELECT count(*) AS n FROM users")[0]["n"] == 0
        st, _, body = s.gw("GET", "/api/mcp/auth/providers")
        assert st == 200, body
        assert body["providers"] == [{"provider": PROVIDER, "display_name": "MCP reference server",
                                      "toolkit_slug": PROVIDER, "status": None,
                                      "connected": False}], body
        assert s.query("SELECT credits FROM users WHERE id='alice'") == [{"credits": 100}]
        assert s.query("SELECT delta, reason FROM credit_ledger WHERE user_id='alice'") == \
            [{"delta": 100, "reason": "grant"}]


def test_unknown_provider_and_state_rules():
    with Stack(mcp=False) as s:
        st, _, body = s.gw("POST", "/api/mcp/auth/nosuch/start", {})
        assert st == 404 and body["error"] == "unknown_provider" and body["known"] == [PROVIDER]
        st, _, start = s.gw("POST", "/api/mcp/auth/%s/start" % PROVIDER, {})
        assert st == 200 and start["expires_at"] > time.time() * 1000 + 9 * 60 * 1000, start
        assert len(start["state"]) >= 32, start
        rows = s.query("SELECT status, composio_account_id FROM connected_accounts")
        assert len(rows) == 1 and rows[0]["status"] == "PENDING", rows
        ca = rows[0]["composio_account_id"]
        cb = "/api/composio-redirect?status=success&connected_account_id=" + ca
        # Unknown state: 400, nothing written.
        st, _, body = s.gw("GET", cb + "&state=deadbeef", user=None)
        assert st == 400 and body["error"] == "invalid_state", body
        # Expired state: 400, nothing written, state not consumed.
        with s.db() as c:
            c.execute("UPDATE oauth_states SET expires_at = 1")
        st, _, body = s.gw("GET", cb + "&state=" + start["state"], user=None)
        assert st == 400 and body["error"] == "invalid_state", body
        assert s.query("SELECT used_at FROM oauth_states")[0]["used_at"] is None
        assert s.query("SELECT status FROM connected_accounts")[0]["status"] == "PENDING"
        # A fresh start; the Composio account id in the callback must be the link's.
        st, _, start = s.gw("POST", "/api/mcp/auth/%s/start" % PROVIDER, {})
        st, _, body = s.gw("GET", "/api/composio-redirect?status=success&connected_account_id="
                           "ca_other&state=" + start["state"], user=None)
        assert st == 400 and body["error"] == "account_mismatch", body
        assert s.query("SELECT status FROM connected_accounts")[0]["status"] == "PENDING"
        assert s.query("SELECT count(*) AS n FROM mcp_connections")[0]["n"] == 0
        # status=failed: the row becomes FAILED; the state is single use.
        st, _, start = s.gw("POST", "/api/mcp/auth/%s/start" % PROVIDER, {})
        url = "/api/composio-redirect?status=failed&state=" + start["state"]
        st, h, _ = s.gw("GET", url, user=None)
        assert st == 302 and h["location"].endswith("provider=%s&status=failed" % PROVIDER), h
        row = s.query("SELECT status, status_reason FROM connected_accounts")[0]
        assert row["status"] == "FAILED" and row["status_reason"], row
        st, _, body = s.gw("GET", url, user=None)
        assert st == 400 and body["error"] == "invalid_state", body


def test_reconnect_updates_the_row_in_place():
    with Stack(mcp=False) as s:
        ca1 = s.connect("alice")
        v1 = s.query("SELECT version FROM connected_accounts")[0]["version"]
        # A reconnect of an ACTIVE row keeps it ACTIVE until the callback succeeds (force: a new
        # link even though Composio confirms the account; without it the answer is connected).
        st, _, start = s.gw("POST", "/api/mcp/auth/%s/start" % PROVIDER, {"force": True})
        row = s.query("SELECT status, composio_account_id FROM connected_accounts")[0]
        assert row == {"status": "ACTIVE", "composio_account_id": ca1}, row
        st, h, _ = http("GET", start["redirect_url"])
        st, _, body = http("GET", h["location"] + "&format=json")
        assert st == 200 and body["status"] == "connected", body
        rows = s.query("SELECT status, composio_account_id, version FROM connected_accounts")
        assert len(rows) == 1 and rows[0]["status"] == "ACTIVE", rows
        assert rows[0]["composio_account_id"] == body["connected_account_id"] != ca1, rows
        assert rows[0]["version"] > v1, rows
        m = s.query("SELECT url FROM mcp_connections")
        assert len(m) == 1 and body["connected_account_id"] in m[0]["url"], m
        st, _, prov = s.gw("GET", "/api/mcp/auth/providers")
        assert prov["providers"][0]["connected"] is True, prov


def test_workflows_are_per_user():
    with Stack(mcp=False) as s:
        wf = s.create_workflow()
        st, _, body = s.gw("GET", "/api/workflows/" + wf)
        assert st == 200 and body["definition"]["nodes"][0]["id"] == "start", body
        st, _, body = s.gw("GET", "/api/workflows/" + wf, user="bob")
        assert st == 404, body
        st, _, body = s.gw("GET", "/api/workflows", user="bob")
        assert st == 200 and body["workflows"] == [], body
        st, _, body = s.gw("POST", "/api/workflows",
                           {"title": "t", "nodes": [{"id": "x", "type": "Agent", "name": "x",
                                                     "config": {}}], "connections": []})
        assert st == 422 and body["error"] == "invalid_workflow" and body["errors"], body
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS}, user="bob")
        assert st == 404, body


def test_admission_inputs_idempotency_credits():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "2"}) as s:
        s.connect("alice")
        wf = s.create_workflow()
        path = "/api/workflows/%s/run" % wf
        st, _, body = s.gw("POST", path, {"inputs": {"message": 3}})
        assert st == 422 and body["error"] == "invalid_inputs" and body["errors"], body
        key = {"Idempotency-Key": "k-1"}
        st, _, first = s.gw("POST", path, {"inputs": INPUTS}, headers=key)
        assert st == 202, first
        st, _, again = s.gw("POST", path, {"inputs": INPUTS}, headers=key)
        assert st == 202 and again["run_id"] == first["run_id"], again
        st, _, body = s.gw("POST", path, {"inputs": dict(INPUTS, a=5)}, headers=key)
        assert st == 422 and body["error"] == "idempotency_key_reused", body
        assert s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"] == 1
        st, _, body = s.gw("POST", path, {"inputs": INPUTS})
        assert st == 202, body
        st, _, body = s.gw("POST", path, {"inputs": INPUTS})
        assert st == 402 and body["error"] == "insufficient_credits", body
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == 2
        ledger = s.query("SELECT delta FROM credit_ledger WHERE reason='run_admitted'")
        assert ledger == [{"delta": -1}, {"delta": -1}], ledger
        st, _, run = s.gw("GET", "/api/runs/" + first["run_id"])
        assert st == 200 and run["inputs"] == INPUTS and run["status"] == "queued", run
        assert run["metadata"]["tool_constraints"] == {"providers": [PROVIDER]}, run
        st, _, body = s.gw("GET", "/api/runs/" + first["run_id"], user="bob")
        assert st == 404, body
        st, _, body = s.gw("GET", "/api/runs/%s/tool-executions" % first["run_id"])
        assert st == 200 and body == {"tool_executions": []}, body


def test_sigterm_with_a_check_in_flight_exits_clean():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        s.sim("POST", "/_sim/latency", {"ms": 8000})
        out = {}

        def run():
            try:
                out["r"] = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
            except Exception as e:  # the connection is closed by the shutdown
                out["r"] = e
        lists = s.sim("GET", "/_sim/stats")[2]["by_route"]["list"]
        t = threading.Thread(target=run)
        t.start()
        # The check's list call has reached the (slow) simulator: it is in flight now.
        wait_until(lambda: s.sim("GET", "/_sim/stats")[2]["by_route"]["list"] > lists, 10,
                   "the check's Composio call")
        t0 = time.monotonic()
        rc = s.procs.pop("gateway").stop(signal.SIGTERM)
        assert rc == 0, rc
        assert time.monotonic() - t0 < 5, "shutdown waited for Composio"
        t.join(10)
        assert not t.is_alive()
        # The caller got a 503 (shutting down / unavailable) or a closed connection, never a 2xx.
        r = out["r"]
        assert isinstance(r, Exception) or (r[0] == 503 and "retry-after" in r[1]), r
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == 0


def test_workflow_update_and_delete():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        st, _, got = s.gw("GET", "/api/workflows/" + wf)
        definition = got["definition"]
        # An invalid replacement is refused and changes nothing.
        st, _, body = s.gw("PUT", "/api/workflows/" + wf, {"definition": {"nodes": []}})
        assert st == 422 and body["error"] == "invalid_workflow", (st, body)
        # A valid one replaces name and definition; admission sees it at once.
        definition["nodes"][0]["config"]["inputVariables"].append(
            {"name": "extra", "type": "string", "required": True})
        st, _, body = s.gw("PUT", "/api/workflows/" + wf, {"name": "renamed", "definition": definition})
        assert st == 200 and body["name"] == "renamed", (st, body)
        assert body["updated_at"] >= body["created_at"]
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 422 and "inputs.extra" in json.dumps(body), (st, body)
        # Another user's PUT/DELETE is a 404 and changes nothing.
        assert s.gw("PUT", "/api/workflows/" + wf, {"name": "x", "definition": definition},
                    user="bob")[0] == 404
        assert s.gw("DELETE", "/api/workflows/" + wf, user="bob")[0] == 404
        assert s.query("SELECT name FROM workflows WHERE id=?", wf)[0]["name"] == "renamed"
        # With a run referring to it, DELETE is refused; without, it deletes.
        st, _, _ = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": dict(INPUTS, extra="e")})
        assert st == 202
        st, _, body = s.gw("DELETE", "/api/workflows/" + wf)
        assert st == 409 and body["error"] == "workflow_has_runs" and body["runs"] == 1, (st, body)
        other = s.create_workflow()
        st, _, body = s.gw("DELETE", "/api/workflows/" + other)
        assert st == 200 and body == {"id": other, "deleted": True}, (st, body)
        assert s.gw("GET", "/api/workflows/" + other)[0] == 404
        assert s.gw("DELETE", "/api/workflows/" + other)[0] == 404


if __name__ == "__main__":
    main(dict(globals()))
