"""Many workers, many runs, nothing lost and nothing done twice (DESIGN.md section 5).

4 worker processes (each with several runs in flight) drain 2,000 queued runs of 4 users
against the fast MCP peer (tests/mcppeer). The runs are inserted straight into SQLite to keep
the test about the worker; the pre-execute guard still asks the Composio simulator once per run.
Proof by SQL and by the peer's wire log: every run succeeded with attempt 1, has exactly one
tool execution (a success, of its own attempt), its output is its own input echoed back, and
the peer received exactly one tools/call per run. Bounded: 2,000 runs, a 150 s deadline.
"""
import json
import os
import time

from harness import PROVIDER, Stack, main, wait_until

N_RUNS = int(os.environ.get("WORKER_SCALE_RUNS", "2000"))
N_WORKERS = 4
USERS = ("u0", "u1", "u2", "u3")

FLOW = {
    "title": "scale",
    "nodes": [
        {"id": "start", "type": "Start", "name": "Start", "config": {}},
        {"id": "echo", "type": "MCP", "name": "Echo",
         "config": {"provider": PROVIDER, "tool": "echo",
                    "arguments": {"message": "{{inputs.n}}"}}},
        {"id": "end", "type": "End", "name": "End",
         "config": {"outputVariables": {"said": "{{nodes.echo.output.content.0.text}}"}}},
    ],
    "connections": [{"id": "c1", "from": "start", "to": "echo"},
                    {"id": "c2", "from": "echo", "to": "end"}],
}


def enqueue(s, wfs, n):
    """n queued runs, round-robin over the users, as admission would write them (cost 0)."""
    now = int(time.time() * 1000)
    rows = []
    for i in range(n):
        u = USERS[i % len(USERS)]
        rows.append(("run_scale_%05d" % i, wfs[u], u, "queued", json.dumps({"n": "m%05d" % i}),
                     json.dumps({"tool_constraints": {"providers": [PROVIDER]}}), now, now + i))
    with s.db() as c:
        c.executemany("INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, "
                      "metadata, available_at, created_at) VALUES (?,?,?,?,?,?,?,?)", rows)


def test_four_workers_drain_2000_runs_exactly_once():
    env = {"TOOLGATE_POLL_MS": "20", "TOOLGATE_WORKER_CONCURRENCY": "8",
           "TOOLGATE_LOG_LEVEL": "warn", "TOOLGATE_LEASE_MS": "10000"}
    with Stack(peer=True, extra_env=env) as s:
        wfs = {}
        for u in USERS:
            s.connect(u)
            s.set_mcp_url(u, "%s/mcp/%s" % (s.peer_url, u))
            wfs[u] = s.create_workflow(FLOW, user=u)
        enqueue(s, wfs, N_RUNS)
        t0 = time.monotonic()
        for _ in range(N_WORKERS):
            s.start_worker()

        def drained():
            left = s.query("SELECT count(*) AS n FROM workflow_runs "
                           "WHERE status IN ('queued','running')")[0]["n"]
            return left == 0
        wait_until(drained, 150, "the queue to drain", 0.25)
        elapsed = time.monotonic() - t0
        print("drained %d runs with %d workers in %.1fs (%.0f runs/s)"
              % (N_RUNS, N_WORKERS, elapsed, N_RUNS / elapsed), flush=True)

        status = s.query("SELECT status, count(*) AS n FROM workflow_runs GROUP BY status")
        assert status == [{"status": "succeeded", "n": N_RUNS}], status
        bad = s.query("SELECT id, attempt FROM workflow_runs WHERE attempt != 1")
        assert not bad, bad[:5]
        ex = s.query("SELECT count(*) AS n, sum(status='success') AS ok, "
                     "count(DISTINCT run_id) AS runs FROM tool_executions")[0]
        assert ex == {"n": N_RUNS, "ok": N_RUNS, "runs": N_RUNS}, ex
        mism = s.query("SELECT r.id FROM workflow_runs r JOIN tool_executions t ON t.run_id = r.id "
                       "WHERE t.attempt != r.attempt OR json_extract(r.output, '$.said') != "
                       "'Echo: ' || json_extract(r.inputs, '$.n')")
        assert not mism, mism[:5]
        by = s.query("SELECT claimed_by, count(*) AS n FROM workflow_runs GROUP BY claimed_by")
        print("runs per worker:", {r["claimed_by"]: r["n"] for r in by}, flush=True)
        assert len(by) == N_WORKERS, by  # every worker process took part
        st = s.peer("GET", "/_peer/stats")
        assert st["calls"] == N_RUNS, st  # no call went out twice
        log = s.peer("GET", "/_peer/log")["requests"]
        for e in log:
            if e["rpc_method"] == "tools/call":
                user = e["path"].rsplit("/", 1)[1]
                n = int(e["arguments"]["message"][1:])
                assert USERS[n % len(USERS)] == user, e  # each call on its own user's URL
        print("peer:", st, flush=True)


if __name__ == "__main__":
    main(dict(globals()))
