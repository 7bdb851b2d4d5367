"""Command lines and start-up refusal of the three programs, run as an operator would.

1. A configuration value outside its range stops start-up before anything is opened: exit 2 and
   a message naming the variable, the value and the range (the worker with
   TOOLGATE_WORKER_CONCURRENCY=0, the gateway with TOOLGATE_MAX_HEADERS=0); a variable only the
   other program reads is ignored.
2. An unknown option, a missing or bad option value exits 2 with a message naming the option and
   the usage (toolgate-gateway --no-such-option, toolgate-mcp --timeout abc, --concurrency 0).
3. --help lists every variable with its default; --version prints the program and version.
"""
import os
import subprocess
import tempfile

from harness import BUILD, main

GW = os.path.join(BUILD, "toolgate-gateway")
WK = os.path.join(BUILD, "toolgate-worker")
MCP = os.path.join(BUILD, "toolgate-mcp")


def run(argv, **env_extra):
    """Runs argv in an empty directory with no TOOLGATE_* or COMPOSIO_* variable of ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOOLGATE_", "COMPOSIO_")) or k == "TOOLGATE_BUILD_DIR"}
    env.update(env_extra)
    with tempfile.TemporaryDirectory() as tmp:
        env.setdefault("TOOLGATE_DB", os.path.join(tmp, "t.db"))
        p = subprocess.run(argv, env=env, cwd=tmp, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
        assert not os.path.exists(os.path.join(tmp, "t.db")), "opened the database: %r" % (p,)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_worker_refuses_out_of_range():
    rc, _, err = run([WK, "--once"], TOOLGATE_WORKER_CONCURRENCY="0")
    assert rc == 2, (rc, err)
    assert 'TOOLGATE_WORKER_CONCURRENCY: expected an integer from 1 to 1024, got "0"' in err, err
    rc, _, err = run([WK, "--once"], TOOLGATE_LEASE_MS="100")
    assert rc == 2 and "TOOLGATE_LEASE_MS" in err and "from 300" in err, (rc, err)
    rc, _, err = run([WK, "--once"], TOOLGATE_POLL_MS="5ms")
    assert rc == 2 and 'TOOLGATE_POLL_MS' in err and '"5ms"' in err, (rc, err)


def test_gateway_refuses_out_of_range():
    rc, _, err = run([GW], TOOLGATE_MAX_HEADERS="0", TOOLGATE_LISTEN="127.0.0.1:1")
    assert rc == 2, (rc, err)
    assert 'TOOLGATE_MAX_HEADERS: expected an integer from 1 to 10000, got "0"' in err, err
    # The worker's variable means nothing to the gateway: the configuration loads, and
    # --rotate-secrets goes on to ask for its key.
    rc, _, err = run([GW, "--rotate-secrets"], TOOLGATE_WORKER_CONCURRENCY="0")
    assert "TOOLGATE_SECRET_KEY is not set" in err and "CONCURRENCY" not in err, (rc, err)


def test_unknown_option_and_bad_values():
    rc, _, err = run([GW, "--no-such-option"])
    assert rc == 2 and "--no-such-option" in err and "usage: toolgate-gateway" in err, (rc, err)
    rc, _, err = run([GW, "--set-mcp-headers", "x1"])
    assert rc == 2 and "--set-mcp-headers" in err and '"x1"' in err, (rc, err)
    rc, _, err = run([WK, "--no-such-option"])
    assert rc == 2 and "--no-such-option" in err and "usage: toolgate-worker" in err, (rc, err)
    rc, _, err = run([MCP, "--timeout", "abc", "http://127.0.0.1:1/mcp"])
    assert rc == 2 and '--timeout: expected an integer' in err and '"abc"' in err, (rc, err)
    assert "usage: toolgate-mcp" in err, err
    rc, _, err = run([MCP, "--bench", "10", "--concurrency", "0", "http://127.0.0.1:1/mcp", "echo"])
    assert rc == 2 and "--concurrency" in err and '"0"' in err, (rc, err)
    rc, _, err = run([MCP, "http://127.0.0.1:1/mcp", "--timeout"])
    assert rc == 2 and "--timeout" in err, (rc, err)
    rc, _, err = run([MCP])
    assert rc == 2 and "missing URL" in err, (rc, err)


def test_help_and_version():
    for prog, names in ((GW, ["TOOLGATE_LISTEN", "TOOLGATE_MAX_HEADERS", "TOOLGATE_RUN_COST"]),
                        (WK, ["TOOLGATE_WORKER_CONCURRENCY", "TOOLGATE_POLL_MS",
                              "TOOLGATE_LEASE_MS"])):
        rc, out, err = run([prog, "--help"])
        assert rc == 0, (prog, rc, err)
        for name in names:
            line = next((l for l in out.splitlines() if l.strip().startswith(name + " ")), "")
            assert "[default: " in line, (prog, name, out)
        rc, out, _ = run([prog, "--version"])
        assert rc == 0 and out.startswith(os.path.basename(prog) + " "), (prog, out)
    rc, out, _ = run([MCP, "--help"])
    assert rc == 0 and "--concurrency" in out and "--timeout" in out, out


if __name__ == "__main__":
    main(dict(globals()))
