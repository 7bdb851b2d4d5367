"""Worker throughput: runs/s from queued to succeeded with 1, 2 and 4 worker processes, for a
one-tool workflow (Start -> MCP echo -> End) against (a) the MCP reference server
(server-everything) and (b) the fast local peer (tests/mcppeer); plus the claim overhead alone.

Each scenario: a fresh Stack (simulator, MCP server, gateway, SQLite file in /tmp), 4 users
connected through the OAuth flow, N runs inserted as queued (what admission writes), then W
workers started with TOOLGATE_WORKER_CONCURRENCY=8; the clock runs from the workers' start to
the last run finished. "Where the time goes" comes from the rows themselves (per run: claim +
guard = first tool row's executed_at - started_at; the MCP call = duration_ms; recording and
finishing = the rest) and from each process's CPU time (/proc/PID/stat) divided by N.

Claim overhead alone: (1) the worker on Start -> End runs of a user with no providers (claim,
an empty guard without network, finish: database work only); (2) the claim statement by itself
in a loop from Python's sqlite3 on a queue of N rows; (3) claim latency p50/p99 with 1M queued
runs across 10,000 users (fair claiming, schema/005_fair_claim.sql), the statement driven
directly on a database file this bench builds with the programs' own migrations.
"""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "integration"))
from harness import PROVIDER, SRC, Stack, c_string, wait_until  # noqa: E402

USERS = ("u0", "u1", "u2", "u3")
TICK = os.sysconf("SC_CLK_TCK")


def flow(with_tool=True):
    nodes = [{"id": "start", "type": "Start", "name": "Start", "config": {}}]
    conns = []
    if with_tool:
        nodes.append({"id": "echo", "type": "MCP", "name": "Echo",
                      "config": {"provider": PROVIDER, "tool": "echo",
                                 "arguments": {"message": "{{inputs.n}}"}}})
        conns.append({"id": "c1", "from": "start", "to": "echo"})
    nodes.append({"id": "end", "type": "End", "name": "End", "config": {}})
    conns.append({"id": "c2", "from": nodes[-2]["id"], "to": "end"})
    return {"title": "bench", "nodes": nodes, "connections": conns}


def cpu(proc):
    with open("/proc/%d/stat" % proc.p.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def enqueue(s, wfs, n, metadata):
    now = int(time.time() * 1000)
    rows = [("run_b_%06d" % i, wfs[USERS[i % len(USERS)]], USERS[i % len(USERS)], "queued",
             json.dumps({"n": "m%06d" % i}), json.dumps(metadata), now, now + i) for i in range(n)]
    with s.db() as c:
        c.executemany("INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, "
                      "metadata, available_at, created_at) VALUES (?,?,?,?,?,?,?,?)", rows)


def scenario(peer, n_workers, n_runs, with_tool=True):
    env = {"TOOLGATE_POLL_MS": "20", "TOOLGATE_WORKER_CONCURRENCY": "8",
           "TOOLGATE_LOG_LEVEL": "warn", "TOOLGATE_LEASE_MS": "30000"}
    with Stack(peer=(peer == "fast"), mcp=(peer == "reference"), extra_env=env) as s:
        wfs = {}
        for u in USERS:
            if with_tool:
                s.connect(u)
                if peer == "fast":
                    s.set_mcp_url(u, "%s/mcp/%s" % (s.peer_url, u))
            wfs[u] = s.create_workflow(flow(with_tool), user=u)
        meta = {"tool_constraints": {"providers": [PROVIDER] if with_tool else []}}
        enqueue(s, wfs, n_runs, meta)
        others = {n: p for n, p in s.procs.items() if n in ("composio-sim", "mcp-peer",
                                                               "server-everything")}
        c0 = {n: cpu(p) for n, p in others.items()}
        t0 = time.monotonic()
        workers = [s.start_worker() for _ in range(n_workers)]
        wait_until(lambda: s.query("SELECT count(*) AS n FROM workflow_runs WHERE status IN "
                                   "('queued','running')")[0]["n"] == 0, 900, "drain", 0.1)
        wall = time.monotonic() - t0
        wcpu = sum(cpu(w) for w in workers)
        ocpu = {n: cpu(p) - c0[n] for n, p in others.items()}
        ok = s.query("SELECT count(*) AS n FROM workflow_runs WHERE status='succeeded'")[0]["n"]
        assert ok == n_runs, s.query("SELECT status, error, count(*) FROM workflow_runs GROUP BY 1,2")
        phases = {}
        if with_tool:
            phases = s.query(
                "SELECT avg(t.executed_at - r.started_at) AS claim_guard_ms, "
                "avg(t.duration_ms) AS call_ms, "
                "avg(r.finished_at - t.executed_at - t.duration_ms) AS record_finish_ms, "
                "avg(r.finished_at - r.started_at) AS run_ms "
                "FROM workflow_runs r JOIN tool_executions t ON t.run_id = r.id")[0]
        else:
            phases = s.query("SELECT avg(finished_at - started_at) AS run_ms "
                             "FROM workflow_runs")[0]
        res = {"peer": peer if with_tool else "none (Start->End)", "workers": n_workers,
               "runs": n_runs, "wall_s": round(wall, 2), "runs_per_s": round(n_runs / wall, 1),
               "worker_cpu_ms_per_run": round(1000 * wcpu / n_runs, 3)}
        for n, v in ocpu.items():
            res[n + "_cpu_ms_per_run"] = round(1000 * v / n_runs, 3)
        res.update({k: round(v, 2) for k, v in phases.items() if v is not None})
        return res


with open(os.path.join(SRC, "common", "tg_store_runs.c")) as f:
    CLAIM_SQL = c_string(f.read(), "CLAIM_SQL")  # the worker's own statement


NO_CAP = 2 ** 63 - 1  # what tg_store_runs_claim binds for TOOLGATE_USER_CONCURRENCY=0


def claim_many_users(n_runs=1000000, n_users=10000, claims=20000, cap=0):
    """Claim latency (BEGIN IMMEDIATE; the claim; COMMIT, each timed) on n_runs queued runs of
    n_users users, as one worker finishing every run it claims would see it: each claimed run
    is finished right after (outside the timed part), so users' running counts stay small."""
    with Stack(mcp=False, extra_env={"TOOLGATE_LOG_LEVEL": "warn"}) as s:
        wf = s.create_workflow(flow(False), user="u0")
        with s.db() as c:  # the gateway made users/workflows; add the others as admission would
            c.executemany("INSERT OR IGNORE INTO users (id, credits, created_at) VALUES (?,0,0)",
                          [("bu%05d" % u,) for u in range(n_users)])
        now = int(time.time() * 1000)
        t0 = time.perf_counter()
        c = sqlite3.connect(s.db_path, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA foreign_keys=OFF")  # the bench's rows name one workflow of u0
        c.execute("BEGIN")
        c.executemany("INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, "
                      "metadata, available_at, created_at) VALUES (?,?,?,'queued','{}','{}',?,?)",
                      (("run_m_%07d" % i, wf, "bu%05d" % (i % n_users), now - n_runs + i,
                        now - n_runs + i) for i in range(n_runs)))
        c.execute("COMMIT")
        build_s = time.perf_counter() - t0
        lat = []
        for i in range(claims):
            t = time.perf_counter()
            c.execute("BEGIN IMMEDIATE")
            row = c.execute(CLAIM_SQL, ("bench", now, 30000, cap or NO_CAP)).fetchall()
            c.execute("COMMIT")
            lat.append(time.perf_counter() - t)
            assert row, i
            c.execute("UPDATE workflow_runs SET status='succeeded', finished_at=? WHERE id=?",
                      (now, row[0][0]))
        c.close()
        lat.sort()
        pct = lambda q: round(1e6 * lat[min(len(lat) - 1, int(q * len(lat)))], 1)  # noqa: E731
        return {"claim_many_users": True, "queued": n_runs, "users": n_users, "claims": claims,
                "user_cap": cap, "build_s": round(build_s, 1), "p50_us": pct(0.50),
                "p99_us": pct(0.99), "max_us": round(1e6 * lat[-1], 1)}


def claim_alone(n_runs):
    """The claim transaction by itself (BEGIN IMMEDIATE; UPDATE ... RETURNING; COMMIT)."""
    with Stack(mcp=False, extra_env={"TOOLGATE_LOG_LEVEL": "warn"}) as s:
        wf = s.create_workflow(flow(False), user="u0")
        enqueue(s, {u: wf for u in USERS}, n_runs, {})
        c = sqlite3.connect(s.db_path, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        now = int(time.time() * 1000) + 10 ** 6
        t0 = time.perf_counter()
        for _ in range(n_runs):
            c.execute("BEGIN IMMEDIATE")
            assert c.execute(CLAIM_SQL, ("bench", now, 30000, NO_CAP)).fetchall()
            c.execute("COMMIT")
        dt = time.perf_counter() - t0
        c.close()
        return {"claim_alone_us_per_run": round(1e6 * dt / n_runs, 1), "runs": n_runs}


def main():
    if sys.argv[1:] == ["claim"]:  # the claim figures alone
        print(json.dumps(claim_many_users()), flush=True)
        print(json.dumps(claim_many_users(cap=2)), flush=True)
        return
    fast = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    ref = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
    out = []
    for peer, n in (("fast", fast), ("reference", ref)):
        for w in (1, 2, 4):
            r = scenario(peer, w, n)
            print(json.dumps(r), flush=True)
            out.append(r)
    for w in (1, 4):
        r = scenario("fast", w, fast, with_tool=False)
        print(json.dumps(r), flush=True)
    print(json.dumps(claim_alone(fast)), flush=True)
    print(json.dumps(claim_many_users()), flush=True)
    print(json.dumps(claim_many_users(cap=2)), flush=True)


if __name__ == "__main__":
    main()
