"""Tenancy: user B tries to read, run, change, retry, cancel or disconnect user A's workflows, runs
and connections, by id and by guessing. Every attempt must answer exactly what a non-existent id
answers (404, same body: no leak of existence), and A's rows must be byte-for-byte unchanged.

Every route tried is implemented; bodies are valid, so each attempt reaches the ownership check
rather than stopping at validation.
"""
import json
import os
import secrets
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import SRC, PROVIDER, Stack, main  # noqa: E402

INPUTS = {"message": "hello", "a": 2, "b": 3}
TABLES = ["workflows", "workflow_runs", "connected_accounts", "mcp_connections", "users",
          "credit_ledger", "tool_executions"]


with open(os.path.join(SRC, "examples", "demo-workflow.json")) as _f:
    VALID_DEF = json.load(_f)  # a valid body, so PUT reaches the ownership check

def snapshot(s, user):
    snap = {}
    for t in TABLES:
        cols = [r["name"] for r in s.query("PRAGMA table_info(%s)" % t)]
        if "user_id" in cols:
            rows = s.query("SELECT * FROM %s WHERE user_id = ? ORDER BY 1" % t, user)
        elif t == "users":
            rows = s.query("SELECT * FROM users WHERE id = ?", user)
        elif t == "mcp_connections":
            rows = s.query("SELECT m.* FROM mcp_connections m JOIN connected_accounts c ON "
                           "c.id = m.connected_account_id WHERE c.user_id = ?", user)
        else:
            rows = s.query("SELECT * FROM %s ORDER BY 1" % t)
        snap[t] = json.dumps(rows, sort_keys=True, default=str)
    return snap


def shape(resp):
    st, _, body = resp
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "request_id"}
    return st, json.dumps(body, sort_keys=True)


def test_user_b_cannot_touch_user_a():
    with Stack(mcp=False) as s:
        s.connect("alice")
        s.connect("bob")
        wf = s.create_workflow(user="alice")
        st, _, run = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS}, user="alice")
        assert st == 202, (st, run)
        run_id = run["run_id"]
        s.create_workflow(user="bob")
        before = snapshot(s, "alice")

        def attempts(wf_id, run_id_):
            body = {"inputs": INPUTS}
            return [
                ("GET", "/api/workflows/" + wf_id, None),
                ("PUT", "/api/workflows/" + wf_id, {"name": "pwned", "definition": VALID_DEF}),
                ("DELETE", "/api/workflows/" + wf_id, None),
                ("POST", "/api/workflows/%s/run" % wf_id, body),
                ("POST", "/api/workflows/%s/preflight" % wf_id, {}),
                ("GET", "/api/runs/" + run_id_, None),
                ("GET", "/api/runs/%s/tool-executions" % run_id_, None),
                ("POST", "/api/runs/%s/cancel" % run_id_, {}),
                ("POST", "/api/runs/%s/retry" % run_id_, {}),
            ]
        fake_wf, fake_run = "wf_" + secrets.token_hex(8), "run_" + secrets.token_hex(8)
        real = attempts(wf, run_id)
        fake = attempts(fake_wf, fake_run)
        for (m, p, b), (fm, fp, fb) in zip(real, fake):
            got = shape(s.gw(m, p, b, user="bob"))
            ref = shape(s.gw(fm, fp, fb, user="bob"))
            assert got[0] in (404, 405), (m, p, got)
            assert got == ref, ("existence leaks", m, p, got, ref)
        # guessing: plausible ids near alice's, and listing, show nothing of hers
        for guess in [wf[:-1] + ("0" if wf[-1] != "0" else "1"), run_id.upper(), "1", "../" + wf]:
            for path in ["/api/workflows/" + guess, "/api/runs/" + guess]:
                st, _, _ = s.gw("GET", path, user="bob")
                assert st == 404, (path, st)
        st, _, lst = s.gw("GET", "/api/workflows", user="bob")
        assert st == 200 and wf not in json.dumps(lst), lst
        st, _, lst = s.gw("GET", "/api/runs", user="bob")
        assert run_id not in json.dumps(lst), lst
        # bob disconnecting "everything" only concerns bob's own connection
        s.gw("DELETE", "/api/mcp/auth/" + PROVIDER, user="bob")
        st, _, prov = s.gw("GET", "/api/mcp/auth/providers", user="bob")
        assert st == 200 and "alice" not in json.dumps(prov), prov
        assert snapshot(s, "alice") == before, "alice's rows changed"
        # alice still sees everything of hers
        assert s.gw("GET", "/api/workflows/" + wf, user="alice")[0] == 200
        assert s.gw("GET", "/api/runs/" + run_id, user="alice")[0] == 200


if __name__ == "__main__":
    main(dict(globals()))
