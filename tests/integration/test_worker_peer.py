"""The worker against the scriptable MCP peer (tests/mcppeer): session loss, rate limits,
transient failures and backoff, timeouts vs tool annotations, cancel, reconnect, per-user
isolation, bounded registry, kill -9 recovery (DESIGN.md section 5).

Real simulator, mcp-peer, gateway and workers on 127.0.0.1, fresh SQLite file per test. The
peer's request log (/_peer/log) is the wire truth each test checks against the database.
"""
import json
import time

from harness import API_KEY, PROVIDER, Stack, main, wait_until


def flow(*calls, output=None):
    """Start -> MCP calls (tool, arguments) in order -> End."""
    nodes = [{"id": "start", "type": "Start", "name": "Start", "config": {}}]
    for i, (tool, args) in enumerate(calls):
        nodes.append({"id": "n%d" % i, "type": "MCP", "name": tool,
                      "config": {"provider": PROVIDER, "tool": tool, "arguments": args}})
    last = "n%d" % (len(calls) - 1)
    nodes.append({"id": "end", "type": "End", "name": "End", "config": {
        "outputVariables": output or {"said": "{{nodes.%s.output.content.0.text}}" % last}}})
    ids = [n["id"] for n in nodes]
    conns = [{"id": "c%d" % i, "from": a, "to": b} for i, (a, b) in enumerate(zip(ids, ids[1:]))]
    return {"title": "t", "nodes": nodes, "connections": conns}


def admit(s, wf, user="alice", inputs=None):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": inputs or {}}, user=user)
    assert st == 202, (st, body)
    return body["run_id"]


def run_row(s, run_id):
    return s.query("SELECT * FROM workflow_runs WHERE id=?", run_id)[0]


def executions(s, run_id):
    return s.query("SELECT attempt, status, error_class, tool_name FROM tool_executions "
                   "WHERE run_id=? ORDER BY id", run_id)


def calls(s, tool=None):
    log = s.peer("GET", "/_peer/log")["requests"]
    return [e for e in log if e["rpc_method"] == "tools/call" and (tool is None or e["tool"] == tool)]


def setup(s, users=("alice",)):
    """Connects each user through the OAuth flow and points them at their own peer URL."""
    for u in users:
        s.connect(u)
        s.set_mcp_url(u, "%s/mcp/%s" % (s.peer_url, u))


def test_session_404_reinitialises_once_and_succeeds():
    with Stack(peer=True) as s:
        setup(s)
        wf = s.create_workflow(flow(("echo", {"message": "hi"})))
        s.peer("POST", "/_peer/script", {"method": "tools/call", "count": 1, "status": 404})
        s.start_worker()
        run_id = admit(s, wf)
        run = s.wait_run(run_id)
        assert run["status"] == "succeeded", run
        log = [e for e in s.peer("GET", "/_peer/log")["requests"] if e["rpc_method"]]
        seq = [(e["rpc_method"], e["status"]) for e in log
               if e["rpc_method"] in ("initialize", "tools/call")]
        assert seq == [("initialize", 200), ("tools/call", 404), ("initialize", 200),
                       ("tools/call", 200)], seq
        c = calls(s)
        assert c[0]["session"] != c[1]["session"], c  # replayed on the new session
        assert executions(s, run_id) == [
            {"attempt": 1, "status": "success", "error_class": None, "tool_name": "echo"}]


def test_second_404_fails_with_mcp_session_lost():
    with Stack(peer=True) as s:
        setup(s)
        wf = s.create_workflow(flow(("echo", {"message": "hi"})))
        s.peer("POST", "/_peer/script", {"method": "tools/call", "count": 2, "status": 404})
        s.start_worker()
        run_id = admit(s, wf)
        run = s.wait_run(run_id)
        assert run["status"] == "failed", run
        assert run_row(s, run_id)["error_class"] == "mcp_session_lost", run_row(s, run_id)
        assert [e["status"] for e in calls(s)] == [404, 404]  # re-initialised once, not retried
        assert executions(s, run_id) == [{"attempt": 1, "status": "failed",
                                          "error_class": "mcp_session_lost", "tool_name": "echo"}]


def test_429_retry_after_then_success():
    with Stack(peer=True, extra_env={"TOOLGATE_RETRY_BASE_MS": "50"}) as s:
        setup(s)
        wf = s.create_workflow(flow(("echo", {"message": "hi"})))
        s.peer("POST", "/_peer/script",
               {"method": "tools/call", "count": 1, "status": 429, "retry_after": 1})
        s.start_worker()
        run_id = admit(s, wf)
        run = s.wait_run(run_id)
        assert run["status"] == "succeeded", run
        c = calls(s)
        assert [e["status"] for e in c] == [429, 200], c  # exactly one retry
        gap = c[1]["t_ms"] - c[0]["t_ms"]
        assert 1000 <= gap < 3000, gap  # Retry-After: 1 honoured, not the 50 ms backoff
        ex = executions(s, run_id)
        assert [(e["status"], e["error_class"]) for e in ex] == [
            ("failed", "rate_limited"), ("success", None)], ex


def test_5xx_backoff_then_success_and_exhaustion():
    env = {"TOOLGATE_RETRY_BASE_MS": "200", "TOOLGATE_TOOL_RETRIES": "2"}
    with Stack(peer=True, extra_env=env) as s:
        setup(s)
        wf = s.create_workflow(flow(("echo", {"message": "hi"})))
        s.peer("POST", "/_peer/script", {"method": "tools/call", "count": 2, "status": 503})
        s.start_worker()
        run_id = admit(s, wf)
        assert s.wait_run(run_id)["status"] == "succeeded"
        c = calls(s)
        assert [e["status"] for e in c] == [503, 503, 200], c
        g1, g2 = c[1]["t_ms"] - c[0]["t_ms"], c[2]["t_ms"] - c[1]["t_ms"]
        assert 100 <= g1 < 400 and 200 <= g2 < 600, (g1, g2)  # 200*2^n, half of it jitter
        # Three failures with two retries configured: the run fails, three rows, no fourth call.
        s.peer("POST", "/_peer/reset")
        s.peer("POST", "/_peer/script", {"method": "tools/call", "count": 5, "status": 503})
        run_id = admit(s, wf)
        run = s.wait_run(run_id)
        assert run["status"] == "failed" and run_row(s, run_id)["error_class"] == "internal", run
        assert len(calls(s)) == 3
        assert [e["status"] for e in executions(s, run_id)] == ["failed"] * 3


def test_timeout_retried_only_for_read_only_tools():
    env = {"TOOLGATE_MCP_TIMEOUT_MS": "300", "TOOLGATE_TOOL_RETRIES": "2",
           "TOOLGATE_RETRY_BASE_MS": "10"}
    with Stack(peer=True, extra_env=env) as s:
        setup(s)
        unsafe = s.create_workflow(flow(("sleep", {"ms": 1500})))
        safe = s.create_workflow(flow(("sleep_ro", {"ms": 1500})))
        s.start_worker()
        r1 = admit(s, unsafe)
        run = s.wait_run(r1)
        assert run["status"] == "failed" and run_row(s, r1)["error_class"] == "timeout", run
        assert [e["status"] for e in executions(s, r1)] == ["unknown"]  # sent: outcome unknown
        assert len(calls(s, "sleep")) == 1  # no annotation says it is safe: never repeated
        r2 = admit(s, safe)
        run = s.wait_run(r2)
        assert run["status"] == "failed" and run_row(s, r2)["error_class"] == "timeout", run
        assert [e["status"] for e in executions(s, r2)] == ["unknown"] * 3  # readOnlyHint: retried
        assert len(calls(s, "sleep_ro")) == 3
        lists = [e for e in s.peer("GET", "/_peer/log")["requests"]
                 if e["rpc_method"] == "tools/list"]
        assert len(lists) == 1, lists  # annotations listed once per session, then cached


def test_cancel_between_steps_refunds_nothing():
    with Stack(peer=True) as s:
        setup(s)
        wf = s.create_workflow(flow(("sleep", {"ms": 1200}), ("echo", {"message": "never"})))
        s.start_worker()
        credits = s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"]
        run_id = admit(s, wf)
        wait_until(lambda: calls(s, "sleep"), 15, "the first call")
        with s.db() as c:  # what POST /api/runs/{id}/cancel does to a running run
            c.execute("UPDATE workflow_runs SET cancel_requested=1 WHERE id=?", (run_id,))
        run = s.wait_run(run_id)
        assert run["status"] == "canceled", run
        assert [e["tool_name"] for e in executions(s, run_id)] == ["sleep"]  # step 2 never ran
        assert not calls(s, "echo")
        assert s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"] == credits - 1
        assert not s.query("SELECT 1 FROM credit_ledger WHERE run_id=? AND delta>0", run_id)


def test_reconnect_between_runs_uses_a_new_session_and_url():
    with Stack(peer=True) as s:
        setup(s)
        wf = s.create_workflow(flow(("echo", {"message": "hi"})))
        s.start_worker()
        assert s.wait_run(admit(s, wf))["status"] == "succeeded"
        s.set_mcp_url("alice", s.peer_url + "/mcp/alice-v2")  # reconnect: new URL, version + 1
        assert s.wait_run(admit(s, wf))["status"] == "succeeded"
        c = calls(s)
        assert [e["path"] for e in c] == ["/mcp/alice", "/mcp/alice-v2"], c
        assert c[0]["session"] != c[1]["session"]
        assert c[1]["session_path"] == "/mcp/alice-v2"
        old = c[0]["session"]
        wait_until(lambda: [e for e in s.peer("GET", "/_peer/log")["requests"]
                            if e["http_method"] == "DELETE" and e["session"] == old], 5,
                   "the old session to be closed with DELETE")


def test_two_users_interleaved_never_cross():
    users = ("alice", "bob", "carol")
    with Stack(peer=True, extra_env={"TOOLGATE_WORKER_CONCURRENCY": "8"}) as s:
        setup(s, users)
        wfs = {u: s.create_workflow(flow(("echo", {"message": "from {{inputs.who}}"}),
                                         ("add", {"a": 1, "b": 2})), user=u) for u in users}
        runs = [(u, admit(s, wfs[u], u, {"who": u})) for _ in range(10) for u in users]
        s.start_worker()
        for u, r in runs:
            assert s.wait_run(r, user=u)["status"] == "succeeded"
        log = s.peer("GET", "/_peer/log")["requests"]
        assert len([e for e in log if e["rpc_method"] == "tools/call"]) == 2 * len(runs)
        sessions = {}
        for e in log:
            if e["http_method"] != "POST" or e["rpc_method"] == "initialize":
                continue
            user = e["path"].rsplit("/", 1)[1]
            assert e["session_path"] == e["path"], e  # the session was made on this user's URL
            assert e["headers"].get("x-api-key") == API_KEY, e  # platform key from the config
            assert sessions.setdefault(e["session"], user) == user, e  # one user per session
            if e["tool"] == "echo":
                assert e["arguments"] == {"message": "from " + user}, e
        inits = [e for e in log if e["rpc_method"] == "initialize"]
        assert len(inits) < len(runs), len(inits)  # sessions are reused across runs
        for u, r in runs:  # and each run's output came from its own user's call
            assert json.loads(run_row(s, r)["output"]) == {"said": "3"}


def test_registry_bound_evicts_least_recently_used_with_delete():
    with Stack(peer=True, extra_env={"TOOLGATE_REGISTRY_MAX": "1"}) as s:
        setup(s, ("alice", "bob"))
        wfa = s.create_workflow(flow(("echo", {"message": "a"})), user="alice")
        wfb = s.create_workflow(flow(("echo", {"message": "b"})), user="bob")
        s.start_worker()
        assert s.wait_run(admit(s, wfa, "alice"), user="alice")["status"] == "succeeded"
        assert s.wait_run(admit(s, wfb, "bob"), user="bob")["status"] == "succeeded"
        alice_session = calls(s)[0]["session"]
        wait_until(lambda: [e for e in s.peer("GET", "/_peer/log")["requests"]
                            if e["http_method"] == "DELETE" and e["session"] == alice_session],
                   5, "alice's session to be evicted with DELETE")
        assert s.peer("GET", "/_peer/stats")["sessions"] == 1


def test_kill9_mid_run_another_worker_finishes_after_the_lease():
    with Stack(peer=True, extra_env={"TOOLGATE_LEASE_MS": "1500"}) as s:
        setup(s)
        # readOnlyHint: safe to call again after the crash (a tool without hints goes to
        # attention/outcome_unknown instead, see test_engine.py).
        wf = s.create_workflow(flow(("sleep_ro", {"ms": 800})))
        run_id = admit(s, wf)
        w = s.start_worker()
        wait_until(lambda: calls(s, "sleep_ro"), 15, "the call to go out")
        lease = run_row(s, run_id)["lease_expires_at"]
        w.kill9()
        s.start_worker()
        run = s.wait_run(run_id, timeout=30)
        assert run["status"] == "succeeded", run
        row = run_row(s, run_id)
        assert row["attempt"] == 2 and row["claimed_by"] == "worker-1", row
        ex = executions(s, run_id)
        assert [(e["attempt"], e["status"]) for e in ex] == [(1, "pending"), (2, "success")], ex
        second = s.query("SELECT executed_at FROM tool_executions WHERE run_id=? AND attempt=2",
                         run_id)[0]["executed_at"]
        assert second >= lease, (second, lease)  # taken over only once the lease had expired


def test_locked_database_does_not_stall_calls_in_flight():
    with Stack(peer=True, extra_env={"TOOLGATE_WORKER_CONCURRENCY": "2"}) as s:
        setup(s)
        wf = s.create_workflow(flow(("sleep", {"ms": 300})))
        s.start_worker()
        run_id = admit(s, wf)
        wait_until(lambda: calls(s, "sleep"), 15, "the call to go out")
        lock = s.db()
        lock.isolation_level = None
        lock.execute("BEGIN EXCLUSIVE")  # every write of the worker now waits (busy timeout)
        time.sleep(3)
        lock.execute("COMMIT")
        lock.close()
        assert s.wait_run(run_id)["status"] == "succeeded"
        d = s.query("SELECT t.duration_ms, r.finished_at - t.executed_at AS finished_after "
                    "FROM tool_executions t JOIN workflow_runs r ON r.id = t.run_id "
                    "WHERE t.run_id=?", run_id)[0]
        assert d["finished_after"] >= 1000, d  # the writes did wait for the lock ...
        # ... but the answer was taken off the socket on time meanwhile.
        assert 300 <= d["duration_ms"] < 2000, d


def test_sigterm_finishes_in_flight_within_grace_and_claims_nothing_more():
    env = {"TOOLGATE_SHUTDOWN_GRACE_MS": "5000", "TOOLGATE_WORKER_CONCURRENCY": "1"}
    with Stack(peer=True, extra_env=env) as s:
        setup(s)
        wf = s.create_workflow(flow(("sleep", {"ms": 700})))
        w = s.start_worker()
        first = admit(s, wf)
        wait_until(lambda: calls(s, "sleep"), 15, "the call to go out")
        second = admit(s, wf)
        assert w.stop() == 0, w.text()[-2000:]
        assert run_row(s, first)["status"] == "succeeded"  # finished within the grace period
        row = run_row(s, second)
        assert row["status"] == "queued" and row["attempt"] == 0, row  # never claimed


if __name__ == "__main__":
    main(dict(globals()))
