"""The worker's pre-execute guard honours a Composio 429 like the gateway does (README "Worker").

Real simulator, fast MCP peer, gateway and one worker (one run in flight) on 127.0.0.1. Three
runs are admitted with the worker stopped; then the simulator answers the next connected-account
call with 429 and Retry-After: 5, and the worker starts:
- the first guard's list call gets the 429: no per-account GET follows, and the run goes back to
  'queued', available 5 s later;
- the next two guards, inside the back-off, call nobody and release their runs at once;
- once the back-off is over every run is checked again (the list answers) and succeeds.
Proof by the simulator's per-route counters, the worker's log and the runs' rows.
"""
import time

from harness import PROVIDER, Stack, main, wait_until

FLOW = {
    "title": "guard",
    "nodes": [
        {"id": "start", "type": "Start", "name": "Start", "config": {}},
        {"id": "echo", "type": "MCP", "name": "Echo",
         "config": {"provider": PROVIDER, "tool": "echo", "arguments": {"message": "hi"}}},
        {"id": "end", "type": "End", "name": "End", "config": {}},
    ],
    "connections": [{"id": "c1", "from": "start", "to": "echo"},
                    {"id": "c2", "from": "echo", "to": "end"}],
}


def sim_stats(s):
    st, _, body = s.sim("GET", "/_sim/stats")
    assert st == 200, body
    return body["by_route"]


def test_guard_429_backs_off_without_fallback_gets():
    env = {"TOOLGATE_WORKER_CONCURRENCY": "1", "TOOLGATE_POLL_MS": "20"}
    with Stack(peer=True, extra_env=env) as s:
        s.connect()
        s.set_mcp_url("alice", "%s/mcp/alice" % s.peer_url)
        wf = s.create_workflow(FLOW)
        runs = []
        for _ in range(3):
            st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {}})
            assert st == 202, (st, body)
            runs.append(body["run_id"])
        s.sim("POST", "/_sim/fail", {"count": 1, "status": 429, "retry_after": 5,
                                     "path_prefix": "/api/v3/connected_accounts"})
        before = sim_stats(s)
        t0 = time.monotonic()
        w = s.start_worker()
        # Every run was claimed once and released: one by the 429, two by the back-off.
        wait_until(lambda: w.text().count('"why":"composio_backoff"') >= 2, 10, "two releases")
        during = sim_stats(s)
        assert time.monotonic() - t0 < 5, "released inside the back-off"
        assert during["list"] - before["list"] == 1, (before, during)
        assert during["get"] == before["get"], "no per-account GET after a 429"
        log = w.text()
        assert log.count('"why":"composio_backoff"') == 2, log[-3000:]
        assert log.count('"event":"guard_unavailable"') == 1, log[-3000:]
        rows = s.query("SELECT id, status, attempt, available_at FROM workflow_runs "
                       "ORDER BY available_at")
        assert all(r["status"] == "queued" and r["attempt"] == 1 for r in rows), rows
        # After the back-off: checked again, executed, succeeded.
        for run_id in runs:
            assert s.wait_run(run_id, timeout=30)["status"] == "succeeded", run_id
        assert time.monotonic() - t0 >= 4, "nothing ran before the Retry-After"
        after = sim_stats(s)
        assert after["get"] == before["get"], (before, after)
        assert after["list"] - during["list"] == 3, (during, after)  # one check per run
        # Each run was claimed twice: released once, then run (no release at the back-off's end).
        assert [r["attempt"] for r in s.query("SELECT attempt FROM workflow_runs")] == [2] * 3
        first_exec = s.query("SELECT min(executed_at) AS t FROM tool_executions")[0]["t"]
        first_claim = s.query("SELECT min(started_at) AS t FROM workflow_runs")[0]["t"]
        assert first_exec - first_claim >= 4000, (first_claim, first_exec)


if __name__ == "__main__":
    main(dict(globals()))
