"""Security baseline end to end: bearer identity, per-user admission rate limit, secrets at rest
(write with --set-mcp-headers, read by the worker, bound to the row, start-up refusal, rotation),
the log guard, and a leak search over logs, API responses and database columns."""
import base64
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, SRC, API_KEY, PROVIDER, Stack, jwt, main, wait_until  # noqa: E402

JWT_SECRET = "jwt-secret-for-tests-0123456789abcdef"
KEY1 = "key1:" + base64.b64encode(b"1" * 32).decode()
KEY2 = "key2:" + base64.b64encode(b"2" * 32).decode()
HEADER_SECRET = "hdr-secret-7f3a9c2e51d04b6b"
INPUTS = {"message": "hello", "a": 2, "b": 3}
RUN_SECRET = "run-input-secret-3c9d21e07a"  # the value of a secret run input
SECRET_VAR = {"name": "api_token", "type": "string", "required": True, "secret": True}
GW = os.path.join(BUILD, "toolgate-gateway")
WK = os.path.join(BUILD, "toolgate-worker")


def bearer(sub, **kw):
    return {"Authorization": "Bearer " + jwt(sub, JWT_SECRET, **kw)}


def test_bearer_identity():
    env = {"TOOLGATE_JWT_SECRET": JWT_SECRET, "TOOLGATE_TRUST_USER_HEADER": "0"}
    with Stack(mcp=False, extra_env=env) as s:
        ok = bearer("alice")
        st, _, body = s.gw("GET", "/api/workflows", user=None, headers=ok)
        assert st == 200, (st, body)
        cases = {
            "none": {},
            "x-user-id ignored": {"X-User-Id": "alice"},
            "expired": bearer("alice", exp_in=-120),
            "no exp": bearer("alice", exp_in=None),
            "not yet": bearer("alice", nbf=int(__import__("time").time()) + 600),
            "alg none": {"Authorization": "Bearer " + jwt("alice", JWT_SECRET, alg="none",
                                                          sign=False)},
            "alg HS512 label": {"Authorization": "Bearer " + jwt("alice", JWT_SECRET,
                                                                 alg="HS512")},
            "wrong secret": {"Authorization": "Bearer " + jwt("alice", "x" * 40)},
            "basic": {"Authorization": "Basic YWxpY2U6cHc="},
            "garbage": {"Authorization": "Bearer a.b.c"},
            "no sub": bearer(None),
        }
        for name, h in cases.items():
            st, rh, body = s.gw("GET", "/api/workflows", user=None, headers=h)
            assert st == 401, (name, st, body)
            assert body["error"] == "unauthorized" and body["message"], (name, body)
        # the subject is the user: alice's workflow is invisible to bob's token
        st, _, wf = s.gw("POST", "/api/workflows", {"name": "w", "definition": json.load(
            open(os.path.join(SRC, "examples", "demo-workflow.json")))}, user=None, headers=ok)
        assert st == 201, (st, wf)
        st, _, _ = s.gw("GET", "/api/workflows/" + wf["id"], user=None, headers=ok)
        assert st == 200
        st, _, _ = s.gw("GET", "/api/workflows/" + wf["id"], user=None, headers=bearer("bob"))
        assert st == 404
        # the OAuth redirect and health need no identity
        st, _, _ = s.gw("GET", "/healthz", user=None)
        assert st == 200


def test_trust_header_warns_and_short_jwt_secret_refused():
    with Stack(mcp=False) as s:  # the harness sets TOOLGATE_TRUST_USER_HEADER=1
        assert '"event":"trust_user_header"' in s.procs["gateway"].text()
        env = dict(s.env, TOOLGATE_JWT_SECRET="short", TOOLGATE_LISTEN="127.0.0.1:0")
        p = subprocess.run([GW], env=env, capture_output=True, timeout=30)
        assert p.returncode != 0 and b"TOOLGATE_JWT_SECRET must be at least 32" in p.stderr, p


def test_run_rate_limit_per_user():
    with Stack(mcp=False, extra_env={"TOOLGATE_RUN_RATE_PER_MIN": "3"}) as s:
        wf = s.create_workflow()
        path = "/api/workflows/%s/run" % wf
        codes = [s.gw("POST", path, {"inputs": INPUTS})[0] for _ in range(3)]
        assert 429 not in codes, codes
        st, h, body = s.gw("POST", path, {"inputs": INPUTS})
        assert st == 429 and body["error"] == "rate_limited", (st, body)
        assert 1 <= int(h["retry-after"]) <= 21, h
        wf_b = s.create_workflow(user="bob")  # another user has their own bucket
        st, _, _ = s.gw("POST", "/api/workflows/%s/run" % wf_b, {"inputs": INPUTS}, user="bob")
        assert st != 429


def run_ok(s, wf, user):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS}, user=user)
    assert st == 202, (st, body)
    return s.wait_run(body["run_id"], user=user)


def set_headers(s, mcp_id, headers, env=None):
    return subprocess.run([GW, "--set-mcp-headers", str(mcp_id)], env=env or s.env,
                          input=json.dumps(headers).encode(), capture_output=True, timeout=30)


def mcp_row(s, user):
    return s.query("SELECT m.id, hex(m.headers_enc) AS h FROM mcp_connections m JOIN "
                   "connected_accounts c ON c.id = m.connected_account_id WHERE c.user_id = ?",
                   user)[0]


def test_secrets_at_rest_end_to_end():
    with Stack(extra_env={"TOOLGATE_SECRET_KEY": KEY1}) as s:
        s.connect("alice")
        s.connect("bob")
        a, b = mcp_row(s, "alice"), mcp_row(s, "bob")
        # without a key the write path refuses (never stored in clear)
        p = set_headers(s, a["id"], {"X-Tenant-Token": HEADER_SECRET},
                        env=dict(s.env, TOOLGATE_SECRET_KEY=""))
        assert p.returncode != 0 and b"TOOLGATE_SECRET_KEY is not set" in p.stderr, p
        p = set_headers(s, a["id"], {"X-Tenant-Token": HEADER_SECRET})
        assert p.returncode == 0, p
        blob = bytes.fromhex(mcp_row(s, "alice")["h"])
        assert blob.startswith(b"v1:key1:") and HEADER_SECRET.encode() not in blob, blob[:20]
        wf_a, wf_b = s.create_workflow(user="alice"), s.create_workflow(user="bob")
        s.start_worker()
        run = run_ok(s, wf_a, "alice")  # the worker decrypted the headers and sent them
        assert run["status"] == "succeeded", run
        # alice's ciphertext copied into bob's row does not open there
        with s.db() as c:
            c.execute("UPDATE mcp_connections SET headers_enc = (SELECT headers_enc FROM "
                      "mcp_connections WHERE id = ?) WHERE id = ?", (a["id"], b["id"]))
        run = run_ok(s, wf_b, "bob")
        assert run["status"] in ("failed", "attention"), run
        assert "cannot be decrypted" in json.dumps(run), run
        with s.db() as c:
            c.execute("UPDATE mcp_connections SET headers_enc = NULL WHERE id = ?", (b["id"],))

        # without the key, both programs refuse to start, with a clear message
        env = dict(s.env, TOOLGATE_SECRET_KEY="", TOOLGATE_LISTEN="127.0.0.1:0")
        for prog in (GW, WK):
            p = subprocess.run([prog], env=env, capture_output=True, timeout=30)
            assert p.returncode != 0, (prog, p)
            assert b"refusing to start" in p.stderr and b"TOOLGATE_SECRET_KEY is not set" in \
                p.stderr, p.stderr
        # a new key alone does not know key1: refused, naming the key id
        p = subprocess.run([WK], env=dict(env, TOOLGATE_SECRET_KEY=KEY2), capture_output=True,
                           timeout=30)
        assert p.returncode != 0 and b"key id key1" in p.stderr, p.stderr

        # rotation: KEY2 current, KEY1 old → every blob re-sealed under key2
        p = subprocess.run([GW, "--rotate-secrets"], env=dict(
            s.env, TOOLGATE_SECRET_KEY=KEY2, TOOLGATE_SECRET_KEY_OLD=KEY1), capture_output=True,
            timeout=30)
        assert p.returncode == 0 and b"re-encrypted 1 secret(s) under key id key2" in p.stdout, p
        assert bytes.fromhex(mcp_row(s, "alice")["h"]).startswith(b"v1:key2:")
        s.workers[0].stop()
        s.start_worker(extra_env={"TOOLGATE_SECRET_KEY": KEY2})
        run = run_ok(s, wf_a, "alice")
        assert run["status"] == "succeeded", run


def test_log_guard_rejects_tg_secret_at_compile_time():
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as d:
        def compile_(body):
            src = os.path.join(d, "t.c")
            with open(src, "w") as f:
                f.write('#include "tg_log.h"\nvoid f(tg_secret *s);\nvoid f(tg_secret *s)\n{\n'
                        + body + "\n}\n")
            return subprocess.run([cc, "-std=c11", "-fsyntax-only", "-I", os.path.join(SRC, "common"),
                                   src], capture_output=True, timeout=60)
        ok = compile_('tg_info("x", "{s:s}", "v", tg_secret_reveal(s) ? "set" : "unset");')
        assert ok.returncode == 0, ok.stderr
        for bad in ('tg_info("x", "{s:s}", "v", s);', 'tg_warn("x", "{s:s}", "v", *s);',
                    'tg_log(TG_LOG_ERROR, "x", "{s:i, s:s}", "n", 1, "v", s);'):
            p = compile_(bad)
            assert p.returncode != 0 and b"must not be passed to a log function" in p.stderr, \
                (bad, p.stderr)


def test_known_secrets_never_leak():
    token = jwt("alice", JWT_SECRET)
    env = {"TOOLGATE_JWT_SECRET": JWT_SECRET, "TOOLGATE_SECRET_KEY": KEY1}
    secrets = {"api key": API_KEY, "jwt secret": JWT_SECRET, "bearer token": token,
               "secret key": KEY1.split(":", 1)[1], "header secret": HEADER_SECRET,
               "tool password": "pw-Secret-55aa77bb"}
    responses = []
    with Stack(extra_env=env) as s:
        s.connect("alice")
        set_headers(s, mcp_row(s, "alice")["id"], {"X-Tenant-Token": HEADER_SECRET})
        definition = json.load(open(os.path.join(SRC, "examples", "demo-workflow.json")))
        # a tool argument marked secret by its name: redacted wherever it is recorded
        definition["nodes"][1]["config"]["arguments"]["password"] = secrets["tool password"]
        # a secret run input, echoed by the reference server: it comes back in the tool's
        # response and in the End node's output, and must be redacted by value everywhere
        definition["nodes"][0]["config"]["inputVariables"].append(SECRET_VAR)
        definition["nodes"][1]["config"]["arguments"]["message"] = \
            "{{inputs.message}} with {{inputs.api_token}}"
        secrets["secret run input"] = RUN_SECRET
        h = {"Authorization": "Bearer " + token}
        st, _, wf = s.gw("POST", "/api/workflows", {"name": "w", "definition": definition},
                         user=None, headers=h)
        assert st == 201, (st, wf)
        s.start_worker()
        st, _, run = s.gw("POST", "/api/workflows/%s/run" % wf["id"],
                          {"inputs": dict(INPUTS, api_token=RUN_SECRET)}, user=None, headers=h)
        assert st == 202, (st, run)
        wait_until(lambda: s.gw("GET", "/api/runs/" + run["run_id"], user=None, headers=h)[2]
                   ["status"] in ("succeeded", "failed", "attention"), 30, "run")
        for path in ["/api/runs/" + run["run_id"], "/api/runs/%s/tool-executions" % run["run_id"],
                     "/api/mcp/auth/providers"]:  # (the workflow routes echo the definition)
            responses.append(json.dumps(s.gw("GET", path, user=None, headers=h)))
        responses.append(json.dumps(s.gw("GET", "/api/workflows", user=None,
                                         headers={"Authorization": "Bearer " + token + "x"})))
        tools = s.query("SELECT arguments, response, status FROM tool_executions ORDER BY id")
        assert tools and "[REDACTED]" in tools[0]["arguments"], tools
        # the echo went through (so the value was decrypted and sent) and came back redacted
        assert tools[0]["status"] == "success", tools
        assert "hello with [REDACTED]" in tools[0]["response"], tools[0]
        final = s.gw("GET", "/api/runs/" + run["run_id"], user=None, headers=h)[2]
        assert final["status"] == "succeeded", final
        assert final["inputs"]["api_token"] == "[REDACTED]", final
        assert "[REDACTED]" in final["output"]["echo"], final
        assert s.query("SELECT inputs_secret_enc IS NOT NULL AS enc FROM workflow_runs")[0]["enc"]
        logs = s.procs["gateway"].text() + s.workers[0].text()
        dump = []
        with s.db() as c:
            for (table,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                if table == "workflows":
                    continue  # the definition holds the literal the test put there on purpose
                for row in c.execute("SELECT * FROM %s" % table):
                    cols = [d[0] for d in c.execute("SELECT * FROM %s" % table).description]
                    for col, v in zip(cols, row):
                        if col not in ("headers_enc", "inputs_secret_enc"):  # encrypted
                            dump.append(str(v))
    hay = {"logs": logs, "responses": "\n".join(responses), "database": "\n".join(dump)}
    for where, text in hay.items():
        for name, value in secrets.items():
            assert value not in text, "%s found in %s" % (name, where)
    assert '"Authorization"' not in logs or '[REDACTED]' in logs


def secret_flow(tool="echo"):
    """Start (secret api_token) -> peer tool quoting it -> End quoting the tool's answer."""
    return {"title": "t", "nodes": [
        {"id": "start", "type": "Start", "config": {"inputVariables": [SECRET_VAR]}},
        {"id": "n0", "type": "MCP", "config": {"provider": PROVIDER, "tool": tool, "arguments": {
            "message": "token={{inputs.api_token}}", "token_copy": "{{inputs.api_token}}"}}},
        {"id": "end", "type": "End", "config": {"outputVariables": {
            "said": "{{nodes.n0.output.content.0.text}}", "raw": "{{inputs.api_token}}"}}}],
        "connections": [{"id": "c0", "from": "start", "to": "n0"},
                        {"id": "c1", "from": "n0", "to": "end"}]}


def test_secret_inputs_reach_the_tool_and_nothing_else():
    """The wire truth (mcp-peer's request log) has the real value; the database outside
    inputs_secret_enc, the API and the logs only [REDACTED]. A failed run's retry carries the
    secret (re-sealed under the new run id); without a key such a workflow is refused (503)."""
    with Stack(peer=True, extra_env={"TOOLGATE_SECRET_KEY": KEY1}) as s:
        s.connect("alice")
        s.set_mcp_url("alice", "%s/mcp/alice" % s.peer_url)
        ok_wf = s.create_workflow(secret_flow("echo"))
        fail_wf = s.create_workflow(secret_flow("fail"))
        s.start_worker()
        runs = []
        for wf in (ok_wf, fail_wf):
            st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf,
                               {"inputs": {"api_token": RUN_SECRET}})
            assert st == 202, (st, body)
            runs.append(body["run_id"])
        ok = s.wait_run(runs[0])
        failed = s.wait_run(runs[1])
        assert ok["status"] == "succeeded", ok
        assert ok["output"] == {"said": "Echo: token=[REDACTED]", "raw": "[REDACTED]"}, ok
        assert failed["status"] == "failed" and "[REDACTED]" in failed["error"], failed
        st, _, retry = s.gw("POST", "/api/runs/%s/retry" % runs[1])
        assert st == 202, (st, retry)
        runs.append(retry["run_id"])
        again = s.wait_run(retry["run_id"])
        assert again["status"] == "failed" and "[REDACTED]" in again["error"], again
        # what the tool received: the real value, three times (ok, failed, retried)
        sent = [e["arguments"] for e in s.peer("GET", "/_peer/log")["requests"]
                if e["rpc_method"] == "tools/call"]
        assert len(sent) == 3, sent
        for a in sent:
            assert a == {"message": "token=" + RUN_SECRET, "token_copy": RUN_SECRET}, a
        # every run keeps its own ciphertext; none opens under another run's id
        enc = s.query("SELECT id, hex(inputs_secret_enc) AS h FROM workflow_runs ORDER BY id")
        assert len(enc) == 3 and all(r["h"] for r in enc), enc
        assert len({r["h"] for r in enc}) == 3, enc
        responses = [json.dumps(s.gw("GET", "/api/runs/" + r)) for r in runs]
        responses += [json.dumps(s.gw("GET", "/api/runs/%s/tool-executions" % r)) for r in runs]
        responses.append(json.dumps(s.gw("GET", "/api/runs")))
        execs = s.query("SELECT arguments, response, error, status FROM tool_executions")
        assert len(execs) == 3, execs
        for e in execs:
            assert json.loads(e["arguments"]) == {"message": "token=[REDACTED]",
                                                  "token_copy": "[REDACTED]"}, e
            assert e["status"] == "success" or "[REDACTED]" in e["error"], e
        dump = []
        with s.db() as c:
            for (table,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                cur = c.execute("SELECT * FROM %s" % table)
                cols = [d[0] for d in cur.description]
                for row in cur.fetchall():
                    dump += [str(v) for col, v in zip(cols, row) if col != "inputs_secret_enc"]
        s.stop()
        logs = "".join(open(os.path.join(s.tmp, f), errors="replace").read()
                       for f in os.listdir(s.tmp) if f.endswith(".log") and "peer" not in f)
        for where, text in (("database", "\n".join(dump)), ("responses", "\n".join(responses)),
                            ("logs", logs)):
            assert RUN_SECRET not in text, "secret run input found in " + where
        assert "[REDACTED]" in logs

    # no key: refused at admission with a clear reason; a workflow without secrets still runs
    with Stack(mcp=False) as s:
        wf = s.create_workflow(secret_flow("echo"))
        st, h, body = s.gw("POST", "/api/workflows/%s/run" % wf,
                           {"inputs": {"api_token": RUN_SECRET}})
        assert st == 503 and body["error"] == "secret_key_missing", (st, body)
        assert "TOOLGATE_SECRET_KEY" in body["message"], body
        st, _, body = s.gw("POST", "/api/workflows/%s/preflight" % wf, {})
        assert st == 503 and body["error"] == "secret_key_missing", (st, body)
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == 0
        # a secret flag on a non-string input is refused when the workflow is created
        bad = secret_flow("echo")
        bad["nodes"][0]["config"]["inputVariables"][0]["type"] = "number"
        st, _, body = s.gw("POST", "/api/workflows", {"name": "bad", "definition": bad})
        assert st == 422 and "must have type string" in json.dumps(body), (st, body)
        logs = s.procs["gateway"].text()
    assert RUN_SECRET not in logs


if __name__ == "__main__":
    main(dict(globals()))
