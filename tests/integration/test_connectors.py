#!/usr/bin/env python3
"""Connectors end to end (README "Connectors"): the routes, the managed workflow nodes that name a
connector, and the 409 of an MCP connector that requires OAuth and is not connected.

Covered: create / list / get / update / soft delete; another user's connector is 404; a secret
never comes back (answers, database clear columns, logs); test and invoke of an API connector
against a local HTTP server (bearer, api_key in the query), the example_payload default,
?validate=1 refusing a connector whose test fails; an MCP connector to server-everything (test
lists its tools, invoke calls echo); scenario A (a workflow's API node by connector_id succeeds
with the connector's answer), scenario B (a raw-URL API node, no connector), a managed MCP node
by connector_id, connector_not_found for a deleted connector and for another user's, and the
409 (and preflight) for an OAuth MCP connector that is not connected.
"""
import base64
import json
import os
import sys
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, main, serve_http  # noqa: E402

KEY1 = "key1:" + base64.b64encode(b"2" * 32).decode()
TOKEN = "conn-bearer-91f0c2a7e3"
APIKEY = "conn-apikey-4d7b0e19c6"
HEADER_SECRET = "conn-header-6a2e8f0d17"
SECRETS = (TOKEN, APIKEY, HEADER_SECRET)
ENV = {"TOOLGATE_SECRET_KEY": KEY1, "TOOLGATE_EGRESS_ALLOW": "127.0.0.1"}


class Target:
    """A local HTTP server: /bearer and /query check the auth, /echo returns what it got."""

    def __init__(self):
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _handle(self):
                u = urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization", "")
                q = parse_qs(u.query)
                if u.path == "/bearer":
                    ok = auth == "Bearer " + TOKEN
                elif u.path == "/query":
                    ok = q.get("api_key") == [APIKEY]
                else:
                    ok = u.path.startswith("/echo")
                body = {"ok": ok, "path": u.path, "method": self.command,
                        "query": {k: v[0] for k, v in q.items() if k != "api_key"},
                        "body": json.loads(raw) if raw else None,
                        "x_static": self.headers.get("X-Static") == HEADER_SECRET}
                data = json.dumps(body).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.srv = serve_http(H)
        self.url = self.srv.url

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def workflow(node_type, config, outputs):
    return {
        "title": "connector test",
        "nodes": [
            {"id": 1, "type": "Start", "name": "Start", "config": {"inputVariables": []}},
            {"id": 2, "type": node_type, "name": "Call", "config": config},
            {"id": 3, "type": "End", "name": "End", "config": {"outputVariables": outputs}},
        ],
        "connections": [{"id": "c1", "from": 1, "to": 2}, {"id": "c2", "from": 2, "to": 3}],
    }


def create_wf(s, definition, user="alice"):
    st, _, body = s.gw("POST", "/api/workflows", {"name": "conn", "definition": definition},
                       user=user)
    assert st == 201, (st, body)
    return body["id"]


def run(s, wf_id, user="alice"):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf_id, {"inputs": {}}, user=user)
    assert st == 202, (st, body)
    return s.wait_run(body["run_id"], user=user, timeout=60)


def no_secret(s, *what):
    text = json.dumps(what, default=str)
    text += json.dumps(s.query("SELECT id, kind, name, config, auth_status FROM connectors"))
    text += json.dumps(s.query("SELECT * FROM tool_executions"), default=str)
    text += "".join(p.text() for p in s.procs.values())
    for sec in SECRETS:
        assert sec not in text, "a secret leaked: " + sec[:6]


def api_connector(t, name="crm", auth=None, ops=None):
    return {"name": name, "description": "a test API", "base_url": t.url,
            "auth": auth or {"type": "bearer", "token": TOKEN},
            "headers": {"X-Static": HEADER_SECRET},
            "operations": ops or [
                {"name": "who", "method": "GET", "path": "/bearer"},
                {"name": "post", "method": "POST", "path": "/echo/{item}",
                 "example_payload": {"item": "a1", "qty": 2}},
                {"name": "find", "method": "GET", "path": "/echo/find",
                 "example_payload": {"q": "x"}}]}


def test_connectors_routes_and_calls():
    t = Target()
    try:
        with Stack(mcp=True, extra_env=ENV) as s:
            answers = []
            st, _, c = s.gw("POST", "/api/connectors/api", api_connector(t))
            assert st == 201, (st, c)
            answers.append(c)
            cid = c["id"]
            assert c["kind"] == "api" and c["auth"] == {"type": "bearer"}, c
            assert c["header_names"] == ["X-Static"] and c["auth_status"] is None, c
            st, _, b = s.gw("POST", "/api/connectors/api", api_connector(t))
            assert st == 409 and b["error"] == "connector_name_taken", (st, b)
            st, _, b = s.gw("POST", "/api/connectors/api", {"name": "", "base_url": "ftp://x",
                                                             "auth": {"type": "bearer"}})
            assert st == 422 and b["error"] == "invalid_connector", (st, b)
            fields = {e["field"] for e in b["errors"]}
            assert {"name", "base_url", "auth.token"} <= fields, b

            st, _, lst = s.gw("GET", "/api/connectors")
            assert st == 200 and lst["success"] and lst["count"] == 1, lst
            answers.append(lst)
            st, _, b = s.gw("GET", "/api/connectors/" + cid, user="bob")
            assert st == 404, (st, b)
            st, _, b = s.gw("POST", "/api/connectors/%s/invoke" % cid, {}, user="bob")
            assert st == 404, (st, b)

            # invoke: the first operation; a named one with the example_payload; a payload
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % cid, {})
            assert st == 200 and r["success"] and r["status_code"] == 200, r
            assert r["data"]["x_static"] is True and "elapsed_seconds" in r, r
            answers.append(r)
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % cid, {"operation": "post"})
            assert r["success"] and r["data"]["path"] == "/echo/a1", r
            assert r["data"]["body"] == {"qty": 2}, r
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % cid,
                            {"operation": "find", "payload": {"q": "y"}})
            assert r["success"] and r["data"]["query"] == {"q": "y"}, r
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % cid, {"operation": "nope"})
            assert st == 404, (st, r)
            st, _, r = s.gw("POST", "/api/connectors/%s/test" % cid)
            assert st == 200 and r["success"], r

            # api_key in the query
            st, _, q = s.gw("POST", "/api/connectors/api", api_connector(
                t, "q", {"type": "api_key", "in": "query", "value": APIKEY},
                [{"name": "q", "method": "GET", "path": "/query"}]))
            assert st == 201 and q["auth"] == {"type": "api_key", "in": "query"}, q
            st, _, r = s.gw("POST", "/api/connectors/%s/test" % q["id"])
            assert r["success"] and r["status_code"] == 200, r

            # update keeps the sealed secrets when auth is not given
            st, _, u = s.gw("PUT", "/api/connectors/" + cid, {"description": "changed"})
            assert st == 200 and u["description"] == "changed" and u["version"] == 2, (st, u)
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % cid, {})
            assert r.get("success"), (st, r)

            # ?validate=1: a failing test refuses the connector
            bad = api_connector(t, "bad", {"type": "bearer", "token": "wrong"})
            st, _, b = s.gw("POST", "/api/connectors/api?validate=1", bad)
            assert st == 422 and b["error"] == "connector_test_failed", (st, b)
            assert b["test"]["status_code"] == 401, b
            st, _, b = s.gw("POST", "/api/connectors/api?validate=1", api_connector(t, "good"))
            assert st == 201, (st, b)

            # MCP connector to server-everything
            st, _, m = s.gw("POST", "/api/connectors/mcp", {
                "name": "everything", "url": s.mcp_url, "headers": {"X-Static": HEADER_SECRET},
                "example_payload": {"message": "from example"}})
            assert st == 201 and m["kind"] == "mcp" and m["auth_status"] is None, (st, m)
            st, _, r = s.gw("POST", "/api/connectors/%s/test" % m["id"])
            assert st == 200 and r["success"] and "echo" in r["data"]["tool_names"], r
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % m["id"], {"operation": "echo"})
            assert r["success"] and "from example" in json.dumps(r["data"]), r

            # soft delete
            st, _, b = s.gw("DELETE", "/api/connectors/" + q["id"])
            assert st == 200 and b["deleted"], (st, b)
            st, _, b = s.gw("GET", "/api/connectors/" + q["id"])
            assert st == 404, (st, b)
            assert s.query("SELECT deleted_at FROM connectors WHERE id = ?",
                           q["id"])[0]["deleted_at"], "soft delete keeps the row"
            no_secret(s, answers)
    finally:
        t.close()


def test_connectors_in_workflows():
    t = Target()
    try:
        with Stack(mcp=True, extra_env=ENV) as s:
            st, _, c = s.gw("POST", "/api/connectors/api", api_connector(t))
            assert st == 201, (st, c)
            st, _, m = s.gw("POST", "/api/connectors/mcp", {"name": "everything",
                                                            "url": s.mcp_url})
            assert st == 201, (st, m)
            st, _, o = s.gw("POST", "/api/connectors/mcp", {"name": "oauth", "oauth": True,
                                                            "url": s.mcp_url})
            assert st == 201 and o["auth_status"] == "not_connected", (st, o)
            out_api = [{"name": "ok", "value": "{{nodes.2.output.data.ok}}"},
                       {"name": "path", "value": "{{nodes.2.output.data.path}}"}]
            wf_a = create_wf(s, workflow("API", {"connector_id": c["id"], "operation": "post",
                                                 "payload": {"item": "z9"}}, out_api))
            wf_b = create_wf(s, workflow("API", {"method": "GET", "url": t.url + "/echo/raw"},
                                         out_api))
            wf_m = create_wf(s, workflow("MCP", {"connector_id": m["id"], "tool": "echo",
                                                 "arguments": {"message": "hi conn"}},
                                         [{"name": "r", "value": "{{nodes.2.output}}"}]))
            wf_o = create_wf(s, workflow("MCP", {"connector_id": o["id"], "tool": "echo"},
                                         [{"name": "r", "value": "{{nodes.2.output}}"}]))
            wf_gone = create_wf(s, workflow("API", {"connector_id": "con_nosuch"}, out_api))
            wf_bob = create_wf(s, workflow("API", {"connector_id": c["id"]}, out_api), user="bob")

            # the 409 contract for an OAuth MCP connector that is not connected (no worker
            # needed), and preflight agrees
            st, _, b = s.gw("POST", "/api/workflows/%s/run" % wf_o, {"inputs": {}})
            assert st == 409 and b["providers"] == ["connector:" + o["id"]], (st, b)
            assert b["reasons"]["connector:" + o["id"]] == "not_connected", b
            st, _, p = s.gw("POST", "/api/workflows/%s/preflight" % wf_o)
            assert st == 200 and p["ok"] is False, (st, p)
            assert p["providers"] == ["connector:" + o["id"]], p

            s.start_worker()
            r = run(s, wf_a)  # scenario A
            assert r["status"] == "succeeded", r
            assert r["output"] == {"ok": True, "path": "/echo/z9"}, r
            r = run(s, wf_b)  # scenario B
            assert r["status"] == "succeeded" and r["output"]["path"] == "/echo/raw", r
            r = run(s, wf_m)
            assert r["status"] == "succeeded" and "hi conn" in json.dumps(r["output"]), r
            r = run(s, wf_gone)
            assert r["status"] == "failed" and r["error_class"] == "connector_not_found", r
            assert "connector con_nosuch not found" in r["error"], r
            r = run(s, wf_bob, user="bob")
            assert r["status"] == "failed" and r["error_class"] == "connector_not_found", r
            st, _, _ = s.gw("DELETE", "/api/connectors/" + c["id"])
            assert st == 200
            r = run(s, wf_a)
            assert r["status"] == "failed" and r["error_class"] == "connector_not_found", r
            no_secret(s)
    finally:
        t.close()


if __name__ == "__main__":
    main(globals())
