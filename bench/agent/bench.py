"""Worker CPU per Agent loop iteration, the model's latency excluded (README "Agent nodes").

RUNS queued runs of Start -> Agent -> End are drained by one `toolgate-worker --once`, one run
at a time. The model simulator (tests/llmsim) answers at once: ITERATIONS-1 times with a
calculator tool call, then with a final text, so each run makes ITERATIONS model requests and
ITERATIONS-1 tool calls (each journaled: a pending row, then its completion). The same number of
runs of Start -> End is the baseline (claim, guard, finish), subtracted; a second Agent series
with one iteration (a text answer at once) separates the node's fixed cost (catalog resolution,
system prompt, journal row) from the marginal cost of one more iteration. CPU = user + system
time of the reaped worker (getrusage of the child: the utime + stime of /proc/<pid>/stat), so
the time the worker waits on the model or on SQLite's fsync is not counted, nor the simulator's.
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "llmsim"))
from harness import Stack  # noqa: E402
from llmsim_client import LlmSim  # noqa: E402

# The engine benchmark's drain: queue RUNS runs of a definition, drain them with one --once
# worker, return its CPU (user + system) and the wall time.
_spec = importlib.util.spec_from_file_location("engine_bench",
                                               os.path.join(HERE, "..", "engine", "bench.py"))
_engine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_engine)
drain = _engine.drain


def workflow(agent, iterations):
    nodes = [{"id": "1", "type": "Start", "name": "Start", "config": {}}]
    if agent:
        nodes.append({"id": "2", "type": "Agent", "name": "Loop", "config": {
            "prompt": "Add the numbers.", "model": {"provider": "anthropic",
                                                   "modelName": "sim-model"},
            "tools": ["calculator"], "maxIterations": iterations}})
    nodes.append({"id": "3", "type": "End", "name": "End", "config": {}})
    conns = [{"id": "c%d" % i, "from": nodes[i]["id"], "to": nodes[i + 1]["id"]}
             for i in range(len(nodes) - 1)]
    return {"title": "bench", "nodes": nodes, "connections": conns}


def script(sim, runs, iterations):
    """Each run takes its ITERATIONS steps in order: runs go one at a time."""
    call = {"tool_calls": [{"name": "calculator", "arguments": {"expression": "(2+3)*4^2"}}]}
    sim.reset()
    sim.queue(([call] * (iterations - 1) + [{"text": "The sum is 80."}]) * runs)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    assert runs > 0 and 2 <= k <= 50, "RUNS > 0, ITERATIONS 2..50"
    with LlmSim() as sim:
        env = sim.env()
        env.update({"TOOLGATE_LOG_LEVEL": "warn", "TOOLGATE_WORKER_CONCURRENCY": "1",
                    "TOOLGATE_POLL_MS": "20", "TOOLGATE_MODEL_RETRIES": "0"})
        with Stack(mcp=False, extra_env=env) as s:
            assert s.gw("GET", "/api/credits")[0] == 200  # creates the user
            base, base_wall = drain(s, workflow(False, k), runs)
            script(sim, runs, 1)
            one, one_wall = drain(s, workflow(True, 1), runs)
            script(sim, runs, k)
            cpu, wall = drain(s, workflow(True, k), runs)
            calls = s.query("SELECT count(*) AS n FROM tool_executions WHERE status='success'")
            assert calls[0]["n"] == runs * (k - 1), calls
    per_iter = (cpu - base) / (runs * k)
    marginal = (cpu - one) / (runs * (k - 1))
    print("runs=%d iterations=%d load=%.2f" % (runs, k, os.getloadavg()[0]))
    print("Start -> End:               cpu %.3f s (%.0f us/run), wall %.2f s"
          % (base, base / runs * 1e6, base_wall))
    print("Agent, 1 iteration:         cpu %.3f s (%.0f us/run over the baseline), wall %.2f s"
          % (one, (one - base) / runs * 1e6, one_wall))
    print("Agent, %2d iterations:       cpu %.3f s, wall %.2f s" % (k, cpu, wall))
    print("worker CPU per iteration: %.0f us (the Agent node's whole cost / iterations); "
          "%.0f us marginal (one more model request + calculator call)"
          % (per_iter * 1e6, marginal * 1e6))


if __name__ == "__main__":
    main()
