"""Code nodes (README "Code nodes") through the real gateway and worker: Start -> Code -> End.

The builder's pricing code (../shared/examples/proposal-generation.json, node 5007, verbatim)
yields final_price from the run variable win_probability; escapes from the sandbox are each
contained with a clear node error (network, the database file, /proc/<worker>/environ, writes
outside /tmp, a fork bomb, an endless loop, a memory hog, 100 MB of output) and the worker runs
the next run fine; a package that is not installed is a 422 when the workflow is written.

Needs bubblewrap and Debian's /usr/bin/python3 with python3-numpy (scripts/setup.sh).
"""
import json
import os

from harness import SRC, Stack, main, wait_until

REFERENCE = os.path.join(SRC, "..", "shared", "examples", "proposal-generation.json")
if not os.path.exists(REFERENCE):
    REFERENCE = os.path.join(SRC, "tests", "fuzz", "corpus", "workflow", "proposal-generation.json")


def pricing_config():
    with open(REFERENCE) as f:
        ref = json.load(f)
    return next(n for n in ref["nodes"] if n["id"] == 5007)["config"]


def code_workflow(config, outputs=None):
    return {"title": "code", "nodes": [
        {"id": 1, "type": "Start", "name": "Start", "config": {"inputVariables": [
            {"name": "win_probability", "type": "number", "required": False}]}},
        {"id": 2, "type": "Code", "name": "Code", "config": config},
        {"id": 3, "type": "End", "name": "End",
         "config": {"outputVariables": outputs or []}}],
        "connections": [{"id": 10, "from": 1, "to": 2}, {"id": 11, "from": 2, "to": 3}]}


def run(s, definition, inputs=None, timeout=60):
    st, _, wf = s.gw("POST", "/api/workflows", definition)
    assert st == 201, (st, wf)
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf["id"], {"inputs": inputs or {}})
    assert st == 202, (st, body)
    r = s.wait_run(body["run_id"], timeout=timeout)
    rows = s.query("SELECT status, output, error_class, error FROM node_executions "
                   "WHERE run_id=? AND node_id='2'", body["run_id"])
    return r, rows[-1] if rows else None


def output(row):
    return json.loads(row["output"]) if row and row["output"] else None


def check_pricing(s):
    r, row = run(s, code_workflow(pricing_config(), [{"name": "final_price", "type": "number"}]),
                 {"win_probability": 41})
    assert r["status"] == "succeeded", (r, row)
    out = output(row)
    # cost 267,500 / (1 - 0.25) * 0.9 (win probability below 50)
    assert abs(out["final_price"] - 321000.0) < 1e-6, out
    assert out["stdout"] == "Recommended price: $321,000\n", out
    assert "np" not in out and "hours_by_role" in out and "win_probability" not in out, out
    assert abs(r["output"]["final_price"] - 321000.0) < 1e-6, r


def test_pricing_code_yields_final_price():
    with Stack(mcp=False) as s:
        s.start_worker()
        check_pricing(s)


def failing(s, code, error_class, contains, **config):
    cfg = {"language": "python", "code": code, "packages": []}
    cfg.update(config)
    r, row = run(s, code_workflow(cfg))
    assert r["status"] == "failed" and r["error_class"] == error_class, (r, row)
    assert row["status"] == "failed" and row["error_class"] == error_class, row
    for c in contains:
        assert c in row["error"], (c, row)
    return row


def test_escapes_are_contained():
    with Stack(mcp=False) as s:
        worker = s.start_worker()
        wpid = worker.p.pid
        port = s.gw_port
        cases = [
            # network: only a loopback nobody listens on, and no route out
            ("import socket\nsocket.create_connection(('127.0.0.1', %d), timeout=3)\n" % port,
             "code_error", ["ConnectionRefusedError"], {}),
            ("import socket\nsocket.create_connection(('1.1.1.1', 443), timeout=3)\n",
             "code_error", ["OSError", "unreachable"], {}),
            # the database file and the worker's environment are not there
            ("open(%r, 'rb').read()\n" % s.db_path, "code_error", ["FileNotFoundError"], {}),
            ("open('/proc/%d/environ', 'rb').read()\n" % wpid, "code_error",
             ["FileNotFoundError"], {}),
            # writes outside /tmp
            ("open('/usr/x', 'w').write('x')\n", "code_error", ["Read-only file system"], {}),
            ("open(%r, 'w').write('x')\n" % os.path.join(os.path.dirname(s.db_path), "x"),
             "code_error", ["FileNotFoundError"], {}),
            # resources
            ("import os\nwhile True:\n  try:\n    os.fork()\n  except OSError:\n    pass\n",
             "timeout", ["time limit"], {"timeout_s": 3}),
            ("while True:\n  pass\n", "timeout", ["time limit"], {"timeout_s": 2}),
            ("hog = []\nwhile True:\n  hog.append(' ' * 10000000)\n", "memory_exceeded",
             ["memory", "128 MiB"], {"memory_mb": 128}),
            ("import sys\nchunk = 'x' * (1 << 20)\nfor i in range(100):\n"
             "  sys.stdout.write(chunk)\n", "output_exceeded", ["bytes"], {}),
        ]
        for code, cls, contains, config in cases:
            failing(s, code, cls, contains, **config)
            assert worker.p.poll() is None, "the worker died"
        # What the fork bomb and the hog left behind is gone, and the worker runs the next run.
        check_pricing(s)
        assert not os.path.exists(os.path.join(os.path.dirname(s.db_path), "x"))


def test_unknown_package_is_refused_at_write():
    with Stack(mcp=False) as s:
        cfg = {"language": "python", "code": "import foo_not_here\n",
               "packages": ["numpy", "foo_not_here"]}

        def refused():
            st, _, body = s.gw("POST", "/api/workflows", code_workflow(cfg))
            if st == 201:
                return None  # the gateway's probe has not answered yet: accepted and logged
            return st, body
        st, body = wait_until(refused, 20, "the package probe")
        assert st == 422 and body["error"] == "invalid_workflow", (st, body)
        assert body["errors"] == [{"node": "2", "field": "config.packages",
                                   "message": "package 'foo_not_here' is not installed"}], body
        st, _, body = s.gw("POST", "/api/workflows", code_workflow(pricing_config()))
        assert st == 201, (st, body)
        # The pure checks of the config.
        bad = {"language": "cobol", "code": "", "timeout_s": 0, "memory_mb": 1,
               "packages": "numpy"}
        st, _, body = s.gw("POST", "/api/workflows", code_workflow(bad))
        assert st == 422, (st, body)
        fields = sorted(e["field"] for e in body["errors"])
        assert fields == ["config.code", "config.language", "config.memory_mb",
                          "config.packages", "config.timeout_s"], body
        # javascript needs an interpreter (TOOLGATE_SANDBOX_NODE), which this stack lacks.
        st, _, body = s.gw("POST", "/api/workflows",
                           code_workflow({"language": "javascript", "code": "let a = 1;"}))
        assert st == 422 and body["errors"][0]["field"] == "config.language", (st, body)


if __name__ == "__main__":
    main(globals())
