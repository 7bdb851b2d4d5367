#!/usr/bin/env python3
"""MCP connectors that require OAuth, end to end (README "Connectors", "MCP authorization"),
against tests/oauthmcp/server.py: an OAuth-protected MCP server with its own authorization
server, run by the test on loopback.

Covered: an OAuth MCP connector starts not_connected (admission 409, preflight agrees); the
browser leg (POST /api/connectors/{id}/oauth/start -> the authorization server -> GET
/api/connectors/oauth/callback -> the UI) makes it ACTIVE with tokens sealed in
connector_tokens, and the catalog lists its tools; a workflow's MCP node {connector_id, tool: echo} succeeds with the bearer; an
access token the server no longer accepts is refreshed once on the 401 and the run succeeds; a
token close to expiry is refreshed before the call; runs that meet a rejected token at once
share one refresh; a failed refresh fails the run with
auth_refresh_required and admission then answers 409 auth_refresh_required; forged, replayed,
expired and another user's states are refused, and an authorization server's error comes back
to the UI with the state consumed; a gateway restart between start and callback does not
matter; no token, code or verifier appears in answers, logs or clear columns.
"""
import base64
import json
import os
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "oauthmcp"))
from harness import BUILD, Stack, http, main, wait_until  # noqa: E402
from server import OAuthMCP  # noqa: E402

KEY1 = "key1:" + base64.b64encode(b"5" * 32).decode()
KEY2 = "key2:" + base64.b64encode(b"6" * 32).decode()
ENV = {"TOOLGATE_SECRET_KEY": KEY1, "TOOLGATE_EGRESS_ALLOW": "127.0.0.1"}


def workflow(connector_id):
    return {
        "title": "oauth connector",
        "nodes": [
            {"id": 1, "type": "Start", "name": "Start", "config": {"inputVariables": []}},
            {"id": 2, "type": "MCP", "name": "Echo",
             "config": {"connector_id": connector_id, "tool": "echo",
                        "arguments": {"message": "hello oauth"}}},
            {"id": 3, "type": "End", "name": "End",
             "config": {"outputVariables": [{"name": "r", "value": "{{nodes.2.output}}"}]}},
        ],
        "connections": [{"id": "c1", "from": 1, "to": 2}, {"id": "c2", "from": 2, "to": 3}],
    }


def admit(s, wf, user="alice"):
    return s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {}}, user=user)


def run(s, wf, user="alice"):
    st, _, body = admit(s, wf, user)
    assert st == 202, (st, body)
    return s.wait_run(body["run_id"], user=user, timeout=60)


def start(s, cid, user="alice"):
    st, _, body = s.gw("POST", "/api/connectors/%s/oauth/start" % cid, {}, user=user)
    assert st == 200, (st, body)
    assert body["redirect_url"].startswith("http://127.0.0.1"), body
    return body


def browse(start_body):
    """The browser at the authorization server: the callback URL it is sent back to."""
    st, h, _ = http("GET", start_body["redirect_url"])
    assert st == 302, (st, h)
    return h["location"]


def callback(s, url, headers=None):
    u = urlparse(url)
    assert u.path == "/api/connectors/oauth/callback", url
    return http("GET", s.gw_url + u.path + "?" + u.query, headers=headers)


def connect(s, cid, user="alice"):
    cb = browse(start(s, cid, user))
    st, h, body = callback(s, cb)
    assert st == 302, (st, h, body)
    q = parse_qs(urlparse(h["location"]).query)
    assert q == {"connector": [cid], "status": ["connected"]}, h["location"]
    return cb


def status_of(s, cid, user="alice"):
    st, _, c = s.gw("GET", "/api/connectors/" + cid, user=user)
    assert st == 200, (st, c)
    return c["auth_status"]


def no_secret(s, srv, answers):
    text = json.dumps(answers, default=str)
    text += json.dumps(s.query("SELECT id, config, auth_status FROM connectors"))
    text += json.dumps(s.query("SELECT connector_id, meta, expires_at FROM connector_tokens"))
    text += json.dumps(s.query("SELECT state, redirect_uri FROM connector_oauth_states"))
    text += json.dumps(s.query("SELECT * FROM tool_executions"), default=str)
    text += json.dumps(s.query("SELECT * FROM workflow_runs"), default=str)
    text += "".join(p.text() for p in s.procs.values())
    assert srv.issued, "the server issued nothing"
    for sec in srv.issued:
        assert sec not in text, "a secret leaked: " + sec[:6]


def test_connector_oauth_end_to_end():
    srv = OAuthMCP()
    answers = []
    try:
        with Stack(mcp=False, extra_env=ENV) as s:
            st, _, c = s.gw("POST", "/api/connectors/mcp", {"name": "secure", "oauth": True,
                                                            "url": srv.mcp_url})
            assert st == 201 and c["auth_status"] == "not_connected", (st, c)
            cid = c["id"]
            wf = s.create_workflow(workflow(cid))

            # not connected: 409, and preflight agrees
            st, _, b = admit(s, wf)
            assert st == 409 and b["providers"] == ["connector:" + cid], (st, b)
            assert b["reasons"]["connector:" + cid] == "not_connected", b
            st, _, p = s.gw("POST", "/api/workflows/%s/preflight" % wf)
            assert st == 200 and p["ok"] is False and p["providers"] == ["connector:" + cid], p

            # refused states: forged, another user's, expired, replayed
            st, _, b = http("GET", s.gw_url + "/api/connectors/oauth/callback?code=x&state=forged")
            assert st == 400 and b["error"] == "invalid_state" and b["reason"] == "unknown", b
            st, _, b = s.gw("POST", "/api/connectors/%s/oauth/start" % cid, {}, user="bob")
            assert st == 404, (st, b)
            cb = browse(start(s, cid))
            st, _, b = callback(s, cb, {"X-User-Id": "bob"})
            assert st == 400 and b["reason"] == "other_user", (st, b)
            with s.db() as d:
                d.execute("UPDATE connector_oauth_states SET expires_at = 1 WHERE used_at IS NULL")
            st, _, b = callback(s, cb)
            assert st == 400 and b["reason"] == "expired", (st, b)
            assert status_of(s, cid) == "not_connected"

            # the authorization server says no: back to the UI with its error, state consumed
            srv.deny = True
            cb = browse(start(s, cid))
            srv.deny = False
            st, h, _ = callback(s, cb)
            assert st == 302, (st, h)
            q = parse_qs(urlparse(h["location"]).query)
            assert q == {"connector": [cid], "status": ["failed"], "error": ["access_denied"]}, q
            st, _, b = callback(s, cb)
            assert st == 400 and b["reason"] == "used", (st, b)

            # connect, with a gateway restart between start and callback
            body = start(s, cid)
            answers.append(body)
            s.restart_gateway()
            cb = browse(body)
            st, h, b = callback(s, cb)
            assert st == 302 and "status=connected" in h["location"], (st, h, b)
            st, _, b = callback(s, cb)
            assert st == 400 and b["reason"] == "used", (st, b)  # replayed
            assert status_of(s, cid) == "ACTIVE"
            rows = s.query("SELECT token_enc, client_enc, meta, expires_at FROM connector_tokens")
            assert len(rows) == 1 and rows[0]["token_enc"] and rows[0]["client_enc"], rows
            meta = json.loads(rows[0]["meta"])
            assert meta["resource"] == srv.mcp_url and meta["registration"] == "registered", meta
            assert srv.stats().get("register") == 1, srv.stats()  # the registration is reused
            st, _, lst = s.gw("GET", "/api/connectors")
            answers.append(lst)

            # the catalog lists the connector's tools with its token once it is ACTIVE
            def catalog():
                st, _, b = s.gw("GET", "/api/agents/available-tools")
                assert st == 200, (st, b)
                mine = [t for t in b["tools"] if t["source"] == "connector"]
                return b if [t["name"] for t in mine] == ["echo"] else None
            answers.append(wait_until(catalog, 20, "the OAuth connector's tools in the catalog"))

            # a run with the bearer
            s.start_worker()
            r = run(s, wf)
            assert r["status"] == "succeeded", r
            assert "Echo: hello oauth" in json.dumps(r["output"]), r
            assert srv.stats().get("token:refresh_token", 0) == 0, srv.stats()
            answers.append(r)

            # the server stops accepting the token: refreshed once on the 401, the run succeeds
            srv.access_lifetime = 30  # the next token is close to expiry (< 60 s)
            srv.expire_all()
            r = run(s, wf)
            assert r["status"] == "succeeded", r
            assert srv.stats()["token:refresh_token"] == 1, srv.stats()
            answers.append(r)

            # a token that expires within a minute is refreshed before the call
            n401 = srv.stats().get("mcp:401", 0)
            r = run(s, wf)
            assert r["status"] == "succeeded", r
            assert srv.stats()["token:refresh_token"] == 2, srv.stats()
            assert srv.stats().get("mcp:401", 0) == n401, srv.stats()

            # a failed refresh: the run fails auth_refresh_required, then admission 409
            srv.fail_refresh = True
            srv.expire_all()
            r = run(s, wf)
            assert r["status"] == "failed" and r["error_class"] == "auth_refresh_required", r
            assert status_of(s, cid) == "auth_refresh_required"
            st, _, b = admit(s, wf)
            assert st == 409 and b["reasons"]["connector:" + cid] == "auth_refresh_required", b
            answers.append(b)

            # connecting again makes it ACTIVE again
            srv.fail_refresh = False
            srv.access_lifetime = 3600
            connect(s, cid)
            assert status_of(s, cid) == "ACTIVE"
            r = run(s, wf)
            assert r["status"] == "succeeded", r

            # single-flight: three runs meet a rejected token at once, one refresh serves all
            refreshes = srv.stats()["token:refresh_token"]
            srv.expire_all()
            ids = []
            for _ in range(3):
                st, _, b = admit(s, wf)
                assert st == 202, (st, b)
                ids.append(b["run_id"])
            for rid in ids:
                r = s.wait_run(rid, timeout=60)
                assert r["status"] == "succeeded", r
            assert srv.stats()["token:refresh_token"] == refreshes + 1, srv.stats()
            no_secret(s, srv, answers)

            # the start-up key check and --rotate-secrets cover the three new sealed columns
            gw = os.path.join(BUILD, "toolgate-gateway")
            env = dict(s.env, TOOLGATE_LISTEN="127.0.0.1:0")
            p = subprocess.run([gw], env=dict(env, TOOLGATE_SECRET_KEY=""), capture_output=True,
                               timeout=30)
            assert p.returncode != 0 and b"secret" in p.stderr.lower(), p.stderr
            p = subprocess.run([gw, "--rotate-secrets"], env=dict(
                env, TOOLGATE_SECRET_KEY=KEY2, TOOLGATE_SECRET_KEY_OLD=KEY1),
                capture_output=True, timeout=30)
            assert p.returncode == 0, p
            for col, table in (("token_enc", "connector_tokens"),
                               ("client_enc", "connector_tokens"),
                               ("verifier_enc", "connector_oauth_states")):
                blobs = [bytes(r["b"]) for r in s.query("SELECT %s AS b FROM %s" % (col, table))]
                assert blobs and all(b.startswith(b"v1:key2:") for b in blobs), (col, blobs[:1])
    finally:
        srv.close()


if __name__ == "__main__":
    main(globals())
