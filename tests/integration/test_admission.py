"""Admission: every status code of POST /api/workflows/{id}/run and preflight, the
Idempotency-Key, the check's rules (scope, no network for rows that are not ACTIVE, fallback to
per-account GETs, 429 back-off), coalescing of concurrent checks with fresh answers, /metrics.

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway, fresh SQLite file per test). The
simulator's /_sim/stats counts the Composio calls the gateway really made.
"""
import threading
import time

from harness import PROVIDER, Stack, main

INPUTS = {"message": "hi", "a": 1, "b": 2}


def sim_stats(s):
    st, _, body = s.sim("GET", "/_sim/stats")
    assert st == 200, body
    return body["by_route"]


def account_id(s, user="alice"):
    return s.query("SELECT composio_account_id FROM connected_accounts WHERE user_id=?",
                   user)[0]["composio_account_id"]




def concurrently(fns):
    out = [None] * len(fns)

    def run(i, fn):
        try:
            out[i] = fn()
        except Exception as e:  # reported by the caller's asserts
            out[i] = e
    ts = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return out


def first_admission_in_flight(s, path, before, latency_ms):
    """Slows the simulator by latency_ms and starts one admission on path in a thread; returns
    (thread, dict whose "r" is its answer) once that admission's list call is at the simulator
    (its answer is fixed then). before is sim_stats(s) from before."""
    s.sim("POST", "/_sim/latency", {"ms": latency_ms})
    first = {}
    t = threading.Thread(target=lambda: first.update(r=s.gw("POST", path, {"inputs": INPUTS})))
    t.start()
    deadline = time.monotonic() + 5
    while sim_stats(s)["list"] == before["list"] and time.monotonic() < deadline:
        time.sleep(0.01)
    return t, first


def test_status_codes_and_preflight():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "1"}) as s:
        s.connect("alice")
        wf = s.create_workflow()
        run = "/api/workflows/%s/run" % wf
        pre = "/api/workflows/%s/preflight" % wf
        # 404: unknown workflow, another user's workflow (for run and preflight alike)
        for path in ("/api/workflows/wf_nope/run", "/api/workflows/wf_nope/preflight"):
            st, _, body = s.gw("POST", path, {"inputs": INPUTS})
            assert st == 404 and body["error"] == "not_found", body
        st, _, body = s.gw("POST", run, {"inputs": INPUTS}, user="bob")
        assert st == 404, body
        # 400: not JSON; 422: per-field input errors
        st, _, body = s.gw("POST", run, b"{nope")
        assert st == 400 and body["error"] == "invalid_json", body
        st, _, body = s.gw("POST", run, {"inputs": {"message": 3}})
        assert st == 422 and body["error"] == "invalid_inputs", body
        fields = sorted(e["field"] for e in body["errors"])
        assert fields == ["inputs.a", "inputs.b", "inputs.message"], body
        # preflight: ok, writes nothing (no run, no debit, no status write-back)
        before = s.query("SELECT version, last_checked_at FROM connected_accounts")
        st, _, body = s.gw("POST", pre, {"inputs": INPUTS})
        assert st == 200 and body["ok"] is True and body["providers"] == [], body
        st, _, body = s.gw("POST", pre)  # no body at all is fine for a preflight
        assert st == 200 and body["ok"] is True, body
        assert s.query("SELECT version, last_checked_at FROM connected_accounts") == before
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == 0
        # 202, then 402 (one credit)
        st, _, body = s.gw("POST", run, {"inputs": INPUTS})
        assert st == 202 and body["status"] == "queued", body
        assert s.query("SELECT last_checked_at FROM connected_accounts")[0]["last_checked_at"]
        st, _, body = s.gw("POST", run, {"inputs": INPUTS})
        assert st == 402 and body["error"] == "insufficient_credits", body
        assert body["credits"] == 0 and body["cost"] == 1, body
        # 409 when Composio says EXPIRED; preflight says the same with 200; status written back
        st, _, _ = s.sim("PATCH", "/_sim/accounts/" + account_id(s), {"status": "EXPIRED"})
        assert st == 200
        st, _, body = s.gw("POST", pre, {"inputs": INPUTS})
        assert st == 200 and body["ok"] is False and body["providers"] == [PROVIDER], body
        assert body["reasons"] == {PROVIDER: "connected_account_status=EXPIRED"}, body
        assert s.query("SELECT status FROM connected_accounts")[0]["status"] == "ACTIVE"
        st, _, body = s.gw("POST", run, {"inputs": INPUTS})
        assert st == 409 and body["error"] == "oauth_refresh_required", body
        assert body["reasons"] == {PROVIDER: "connected_account_status=EXPIRED"}, body
        row = s.query("SELECT status, version FROM connected_accounts")[0]
        assert row["status"] == "EXPIRED" and row["version"] > before[0]["version"], row
        # now our row is EXPIRED: blocked without any Composio call
        calls = sim_stats(s)
        st, _, body = s.gw("POST", run, {"inputs": INPUTS,
                                         "tool_constraints": {"providers": [PROVIDER]}})
        assert st == 409 and body["providers"] == [PROVIDER], body
        assert sim_stats(s) == calls, "a non-ACTIVE row must not cost a network call"
        # 503 with Retry-After when Composio cannot answer at all (list and GET fail)
        s.query("UPDATE connected_accounts SET status='ACTIVE'")
        s.sim("PATCH", "/_sim/accounts/" + account_id(s), {"status": "ACTIVE"})
        s.sim("POST", "/_sim/fail", {"count": 2, "status": 500})
        st, h, body = s.gw("POST", run, {"inputs": INPUTS})
        assert st == 503 and body["error"] == "composio_unavailable", body
        assert int(h["retry-after"]) >= 1, h
        m = s.metrics()
        for d, n in (("queued", 1), ("insufficient_credits", 1), ("blocked", 2),
                     ("unavailable", 1), ("not_found", 2), ("invalid_request", 2)):
            assert m['toolgate_admissions_total{decision="%s"}' % d] == n, (d, m)
        assert m["toolgate_preflights_total"] == 4, m


def test_rejected_platform_key_is_502_not_retryable():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        s.restart_gateway({"COMPOSIO_API_KEY": "ak_wrong_key"})
        st, h, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 502 and body["error"] == "composio_auth_failed", (st, body)
        assert "retry-after" not in h, h  # waiting will not fix a bad key
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == 0
        assert "ak_wrong_key" not in s.procs["gateway"].text()


def test_scope_rules_without_network():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        pre = "/api/workflows/%s/preflight" % wf
        calls = sim_stats(s)
        # tool_constraints.providers ∪ provider prefixes of tool_constraints.tools
        st, _, body = s.gw("POST", pre, {"inputs": INPUTS, "tool_constraints": {
            "providers": ["slack"], "tools": ["gmail.send_email", "nodot"]}})
        assert st == 200 and body["ok"] is False, body
        assert body["scope"] == ["gmail", "slack"], body
        assert body["providers"] == ["gmail", "slack"], body
        assert body["reasons"] == {"gmail": "not_connected", "slack": "not_connected"}, body
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {
            "inputs": INPUTS, "tool_constraints": {"tools": ["gmail.send_email"]}})
        assert st == 409 and body["reasons"] == {"gmail": "not_connected"}, body
        assert sim_stats(s) == calls, "not-connected providers must not cost a network call"
        # without tool_constraints: the providers the workflow uses; stored on the run
        st, _, body = s.gw("POST", pre, {"inputs": INPUTS})
        assert body["scope"] == [PROVIDER] and body["ok"] is True, body
        s.query("UPDATE connected_accounts SET status='DISCONNECTED'")
        for tc in ({}, {"tool_constraints": {"providers": [PROVIDER]}}):
            st, _, body = s.gw("POST", pre, dict(tc, inputs=INPUTS))
            assert body["scope"] == [PROVIDER] and body["ok"] is False, body
            assert body["reasons"] == {PROVIDER: "connected_account_status=DISCONNECTED"}, body
        s.query("UPDATE connected_accounts SET status='ACTIVE'")
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 202, body
        st, _, run = s.gw("GET", "/api/runs/" + body["run_id"])
        assert run["metadata"]["tool_constraints"] == {"providers": [PROVIDER]}, run


def test_idempotent_retries():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "10"}) as s:
        s.connect("alice")
        wf = s.create_workflow()
        path = "/api/workflows/%s/run" % wf
        key = {"Idempotency-Key": "order-42"}
        # concurrent twins with one key: one run, one debit, every answer names it
        res = concurrently([lambda: s.gw("POST", path, {"inputs": INPUTS}, headers=key)] * 6)
        assert all(r[0] == 202 for r in res), res
        ids = {r[2]["run_id"] for r in res}
        assert len(ids) == 1, res
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == 1
        assert s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"] == 9
        assert len(s.query("SELECT * FROM credit_ledger WHERE reason='run_admitted'")) == 1
        st, _, body = s.gw("POST", path, {"inputs": dict(INPUTS, b=3)}, headers=key)
        assert st == 422 and body["error"] == "idempotency_key_reused", body
        # the same key for another user is another request
        s.connect("bob")
        wf_b = s.create_workflow(user="bob")
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf_b, {"inputs": INPUTS},
                           user="bob", headers=key)
        assert st == 202 and body["run_id"] not in ids, body
        st, _, body = s.gw("POST", path, {"inputs": INPUTS}, headers={"Idempotency-Key": ""})
        assert st == 400, body


def test_fallback_to_per_account_gets():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        before = sim_stats(s)
        s.sim("POST", "/_sim/fail", {"count": 1, "status": 500})  # the list call
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 202, body
        after = sim_stats(s)
        assert after["list"] - before["list"] == 1 and after["get"] - before["get"] == 1, after
        # the list answers without our account (filtered by another toolkit slug): the account
        # is looked up by id, and what the GET says decides
        s.query("UPDATE auth_configs SET toolkit_slug='elsewhere'")
        s.sim("PATCH", "/_sim/accounts/" + account_id(s), {"status": "REVOKED"})
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 409 and body["reasons"] == {
            PROVIDER: "connected_account_status=REVOKED"}, body
        last = sim_stats(s)
        assert last["list"] - after["list"] == 1 and last["get"] - after["get"] == 1, last


def test_429_honours_retry_after():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        path = "/api/workflows/%s/run" % wf
        s.sim("POST", "/_sim/fail", {"count": 1, "status": 429, "retry_after": 2})
        before = sim_stats(s)
        st, h, body = s.gw("POST", path, {"inputs": INPUTS})
        assert st == 503 and body["error"] == "composio_unavailable", body
        assert h["retry-after"] == "2", h
        after = sim_stats(s)
        assert after["list"] - before["list"] == 1 and after["get"] == before["get"], \
            "no per-account GETs while Composio rate-limits us"
        # during the back-off: 503 at once, no call at all, Retry-After counts down
        st, h, body = s.gw("POST", path, {"inputs": INPUTS})
        assert st == 503 and 1 <= int(h["retry-after"]) <= 2, (st, h, body)
        assert sim_stats(s) == after
        assert s.metrics()["toolgate_composio_rate_limited_total"] == 1
        time.sleep(2.1)
        st, _, body = s.gw("POST", path, {"inputs": INPUTS})
        assert st == 202, body


def test_coalescing_shares_only_fresh_calls():
    n = 8
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100"}) as s:
        s.connect("alice")
        wf = s.create_workflow()
        path = "/api/workflows/%s/run" % wf
        m0 = s.metrics()
        before = sim_stats(s)
        t, first = first_admission_in_flight(s, path, before, 600)
        # the account expires while that call is in flight; then n-1 more admissions arrive
        s.sim("PATCH", "/_sim/accounts/" + account_id(s), {"status": "EXPIRED"})
        rest = concurrently([lambda: s.gw("POST", path, {"inputs": INPUTS})] * (n - 1))
        t.join(10)
        s.sim("POST", "/_sim/latency", {"ms": 0})
        # the first answer predates the change; every later one was asked after it and says so
        assert first["r"][0] == 202, first
        assert all(r[0] == 409 for r in rest), [r[:1] + (r[2],) for r in rest]
        after = sim_stats(s)
        lists = after["list"] - before["list"]
        assert lists == 2, "n concurrent checks should share the next call: %d lists" % lists
        m = s.metrics()
        saved = m["toolgate_composio_calls_saved_total"] - m0["toolgate_composio_calls_saved_total"]
        assert saved == n - 2, (saved, m)
        assert m["toolgate_check_duration_seconds_count"] - m0["toolgate_check_duration_seconds_count"] == n


def test_shared_call_rate_limited_answers_every_waiter():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        path = "/api/workflows/%s/run" % wf
        before = sim_stats(s)
        t, first = first_admission_in_flight(s, path, before, 400)
        # the next (shared) call is rate limited: every waiter sharing it gets the 503
        s.sim("POST", "/_sim/fail", {"count": 1, "status": 429, "retry_after": 1})
        rest = concurrently([lambda: s.gw("POST", path, {"inputs": INPUTS})] * 4)
        t.join(10)
        s.sim("POST", "/_sim/latency", {"ms": 0})
        assert first["r"][0] == 202, first
        assert all(r[0] == 503 and r[1]["retry-after"] == "1" for r in rest), rest
        after = sim_stats(s)
        assert after["list"] - before["list"] == 2 and after["get"] == before["get"], after


if __name__ == "__main__":
    main(dict(globals()))
