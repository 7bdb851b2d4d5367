"""Worker CPU per node for workflows of pure nodes (no network): a chain of NODES nodes,
Start -> Conditionals -> End, where every other Conditional tests a run input
(`x < 1000000 AND y == "go"`, taking its if branch) and the rest are pass-through (an else
branch only). RUNS queued runs of it are drained by one `toolgate-worker --once`; the same number
of runs of a two-node Start -> End workflow measures the per-run cost (claim, guard, finish),
which is subtracted to get the cost per node. CPU = user + system time of the worker process
(getrusage of the reaped child), so waiting on SQLite's fsync is not counted.
"""
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "integration"))
from harness import Stack  # noqa: E402


def chain(n):
    nodes = [{"id": "n0", "type": "Start", "name": "Start", "config": {}}]
    for i in range(1, n - 1):
        nxt = "n%d" % (i + 1)
        branches = [{"type": "else", "condition": "", "targetNodeId": nxt}]
        if i % 2:
            branches.insert(0, {"type": "if", "condition": 'x < 1000000 AND y == "go"',
                                "targetNodeId": nxt})
        nodes.append({"id": "n%d" % i, "type": "Conditional", "name": "c%d" % i,
                      "config": {"branches": branches}})
    nodes.append({"id": "n%d" % (n - 1), "type": "End", "name": "End",
                  "config": {"outputVariables": {"x": "{{inputs.x}}"}}})
    conns = [{"id": "c%d" % i, "from": "n%d" % i, "to": "n%d" % (i + 1)} for i in range(n - 1)]
    return {"title": "bench", "nodes": nodes, "connections": conns}


def drain(s, definition, runs):
    now = int(time.time() * 1000)
    wf = "wf_" + os.urandom(8).hex()
    with s.db() as c:
        c.execute("INSERT INTO workflows (id, user_id, name, definition, created_at, updated_at) "
                  "VALUES (?,?,?,?,?,?)", (wf, "alice", "bench", json.dumps(definition), now, now))
        c.executemany("INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, "
                      "metadata, available_at, created_at) VALUES (?,?,?,'queued',?,'{}',?,?)",
                      [("run_%s" % os.urandom(12).hex(), wf, "alice",
                        json.dumps({"x": i, "y": "go"}), now, now) for i in range(runs)])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    w = s.start_worker(args=["--once"])
    assert w.p.wait(600) == 0, w.text()[-2000:]
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ok = s.query("SELECT count(*) AS n FROM workflow_runs WHERE workflow_id=? AND "
                 "status='succeeded'", wf)[0]["n"]
    assert ok == runs, (ok, runs, w.text()[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    env = {"TOOLGATE_LOG_LEVEL": "warn", "TOOLGATE_WORKER_CONCURRENCY": "4",
           "TOOLGATE_POLL_MS": "20"}
    with Stack(mcp=False, extra_env=env) as s:
        assert s.gw("GET", "/api/credits")[0] == 200  # creates the user
        base_cpu, base_wall = drain(s, chain(2), runs)
        cpu, wall = drain(s, chain(n), runs)
    per_run = base_cpu / runs
    per_node = (cpu - base_cpu) / (runs * (n - 2))
    print("runs=%d nodes=%d load=%.2f" % (runs, n, os.getloadavg()[0]))
    print("two-node runs:  cpu %.3f s (%.0f us/run), wall %.2f s" % (base_cpu, per_run * 1e6,
                                                                     base_wall))
    print("%d-node runs: cpu %.3f s, wall %.2f s" % (n, cpu, wall))
    print("worker CPU per node: %.1f us (marginal); %.1f us with the per-run cost spread over "
          "the nodes" % (per_node * 1e6, cpu / (runs * n) * 1e6))


if __name__ == "__main__":
    main()
