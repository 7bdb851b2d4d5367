#!/usr/bin/env python3
"""API node end to end (README "API node", "Credentials", "Egress policy"): workflows
Start -> API -> End against a local HTTP server that counts its requests.

Covered: bearer auth through a credential bound to the host; api_key in the query through a
named credential; OAuth2 client credentials against a local token endpoint that counts token
requests (one token for two runs: cached); a GET answered 503 + Retry-After is retried once,
a POST answered 503 is not retried (success:false, status_code 503, the run goes on); the egress
policy refuses 169.254.169.254, 10.0.0.1, localhost and 127.0.0.1 without the allowlist
(egress_denied); a secret never appears in the run, its tool executions or the logs; kill -9 of
the worker with a request in flight: a POST is not sent again (attention, outcome_unknown), a
PUT is.
"""
import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, free_port, main, wait_until  # noqa: E402

KEY1 = "key1:" + base64.b64encode(b"1" * 32).decode()
TOKEN = "api-bearer-5e0c1d77aa"
APIKEY = "api-key-0b9d6f3e21"
CLIENT_SECRET = "client-secret-7a3c99e1f0"
ACCESS = "access-token-c4e8a1b2d9"
SECRETS = (TOKEN, APIKEY, CLIENT_SECRET, ACCESS)


class Target:
    """A local HTTP server: counts requests per path, answers by path."""

    def __init__(self):
        self.counts = {}
        self.lock = threading.Lock()
        target = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, status, body, extra=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker was killed while this request was in flight

            def _handle(self):
                u = urlparse(self.path)
                n = len(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with target.lock:
                    target.counts[u.path] = c = target.counts.get(u.path, 0) + 1
                auth = self.headers.get("Authorization", "")
                if u.path == "/bearer":
                    ok = auth == "Bearer " + TOKEN
                    return self._answer(200 if ok else 401, {"who": "bearer", "ok": ok})
                if u.path == "/query":
                    ok = parse_qs(u.query).get("api_key") == [APIKEY]
                    return self._answer(200 if ok else 401, {"ok": ok})
                if u.path == "/token":
                    return self._answer(200, {"access_token": ACCESS, "expires_in": 3600,
                                              "token_type": "Bearer"})
                if u.path == "/oauth":
                    ok = auth == "Bearer " + ACCESS
                    return self._answer(200 if ok else 401, {"ok": ok})
                if u.path.startswith("/slow"):
                    time.sleep(3)
                    return self._answer(200, {"slow": True})
                if u.path in ("/flaky-get", "/flaky-post"):
                    if c == 1 or u.path == "/flaky-post":
                        return self._answer(503, {"busy": True}, {"Retry-After": "1"})
                    return self._answer(200, {"win_probability": 42, "bytes": n})
                return self._answer(404, {"error": "no such path"})

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.port = free_port()
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def workflow(api_config, outputs=None):
    return {
        "title": "api test",
        "nodes": [
            {"id": 1, "type": "Start", "name": "Start", "config": {"inputVariables": []}},
            {"id": 2, "type": "API", "name": "Call", "config": api_config},
            {"id": 3, "type": "End", "name": "End", "config": {"outputVariables": outputs or [
                {"name": "status", "value": "{{nodes.2.output.status_code}}"},
                {"name": "success", "value": "{{nodes.2.output.success}}"}]}},
        ],
        "connections": [{"id": "c1", "from": 1, "to": 2}, {"id": "c2", "from": 2, "to": 3}],
    }


def create(s, definition):
    st, _, body = s.gw("POST", "/api/workflows", {"name": "api", "definition": definition})
    assert st == 201, (st, body)
    return body["id"]


def run(s, wf_id, timeout=60):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf_id, {"inputs": {}})
    assert st in (200, 201, 202), (st, body)
    return s.wait_run(body.get("run_id") or body.get("id"), timeout=timeout)


def no_secret(s, what):
    text = json.dumps(what) + json.dumps(s.query("SELECT * FROM tool_executions"),
                                         default=str)
    text += "".join(p.text() for p in s.procs.values())
    for sec in SECRETS:
        assert sec not in text, "a secret leaked"


ENV = {"TOOLGATE_SECRET_KEY": KEY1, "TOOLGATE_EGRESS_ALLOW": "127.0.0.1",
       "TOOLGATE_RETRY_BASE_MS": "50"}


def test_api_node_auth_forms():
    t = Target()
    try:
        with Stack(mcp=False, extra_env=ENV) as s:
            for body in ({"name": "crm", "type": "bearer", "token": TOKEN, "hosts": ["127.0.0.1"]},
                         {"name": "q", "type": "api_key", "value": APIKEY, "in": "query"},
                         {"name": "oa", "type": "oauth2", "token_url": t.url + "/token",
                          "client_id": "cid", "client_secret": CLIENT_SECRET}):
                st, _, b = s.gw("POST", "/api/credentials", body)
                assert st == 201, (st, b)
            wf_bearer = create(s, workflow({"method": "GET", "url": t.url + "/bearer",
                                            "authentication": "bearer"}))
            s.start_worker()
            r = run(s, wf_bearer)
            assert r["status"] == "succeeded", r
            assert r["output"] == {"status": 200, "success": True}, r
            wf_q = create(s, workflow({"method": "GET", "url": t.url, "endpoint": "/query",
                                       "authentication": "api_key", "credential": "q"}))
            r = run(s, wf_q)
            assert r["status"] == "succeeded" and r["output"]["status"] == 200, r
            wf_oa = create(s, workflow({"method": "GET", "url": t.url + "/oauth",
                                        "authentication": {"type": "oauth2",
                                                           "credential": "oa"}}))
            for _ in range(2):
                r = run(s, wf_oa)
                assert r["status"] == "succeeded" and r["output"]["status"] == 200, r
            assert t.counts["/token"] == 1, t.counts  # cached across runs
            assert t.counts["/oauth"] == 2, t.counts
            rows = s.query("SELECT provider, tool_name FROM tool_executions")
            assert ("api", "GET 127.0.0.1/bearer") in [(x["provider"], x["tool_name"])
                                                      for x in rows], rows
            no_secret(s, r)
    finally:
        t.close()


def test_api_node_retries_and_errors():
    t = Target()
    try:
        with Stack(mcp=False, extra_env=ENV) as s:
            wf_get = create(s, workflow({"method": "GET", "url": t.url + "/flaky-get"},
                                        [{"name": "p", "value": "{{vars.win_probability}}"}]))
            wf_post = create(s, workflow({"method": "POST", "url": t.url + "/flaky-post",
                                          "body": {"a": 1}}))
            s.start_worker()
            r = run(s, wf_get)
            assert r["status"] == "succeeded" and r["output"] == {"p": 42}, r
            assert t.counts["/flaky-get"] == 2, t.counts      # retried after Retry-After
            r = run(s, wf_post)
            assert r["status"] == "succeeded", r              # an HTTP error is an output
            assert r["output"] == {"status": 503, "success": False}, r
            assert t.counts["/flaky-post"] == 1, t.counts     # POST: never retried
            wf_missing = create(s, workflow({"method": "GET", "url": t.url + "/bearer",
                                             "authentication": "bearer"}))
            r = run(s, wf_missing)
            assert r["status"] == "failed" and r["error_class"] == "credential_missing", r
    finally:
        t.close()


def test_api_node_egress_policy():
    t = Target()
    try:
        env = dict(ENV, TOOLGATE_EGRESS_ALLOW="")  # the harness allowlists 127.0.0.1
        with Stack(mcp=False, extra_env=env) as s:
            wfs = [create(s, workflow({"method": "GET", "url": u}))
                   for u in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
                             "http://localhost:%d/bearer" % t.port, t.url + "/bearer")]
            # an ad-hoc MCP node goes through the same policy
            mcp = create(s, dict(workflow({}), nodes=[
                {"id": 1, "type": "Start", "name": "Start", "config": {"inputVariables": []}},
                {"id": 2, "type": "MCP", "name": "Adhoc",
                 "config": {"url": "http://169.254.169.254/mcp", "tool": "echo",
                            "arguments": {}}},
                {"id": 3, "type": "End", "name": "End", "config": {"outputVariables": []}}]))
            s.start_worker()
            for wf in wfs + [mcp]:
                r = run(s, wf)
                assert r["status"] == "failed" and r["error_class"] == "egress_denied", r
            assert t.counts == {}, t.counts
    finally:
        t.close()


def test_api_node_kill9_in_flight():
    t = Target()
    try:
        with Stack(mcp=False, extra_env=dict(ENV, TOOLGATE_LEASE_MS="1500")) as s:
            wf_post = create(s, workflow({"method": "POST", "url": t.url + "/slow-post",
                                          "body": {"a": 1}}))
            wf_put = create(s, workflow({"method": "PUT", "url": t.url + "/slow-put",
                                         "body": {"a": 1}}))
            w = s.start_worker()
            runs = []
            for wf in (wf_post, wf_put):
                st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {}})
                assert st in (200, 201, 202), (st, body)
                runs.append(body.get("run_id") or body.get("id"))
            wait_until(lambda: t.counts.get("/slow-post") and t.counts.get("/slow-put"), 15,
                       "both requests to go out")
            w.kill9()
            s.start_worker()
            post = s.wait_run(runs[0], timeout=30)
            assert post["status"] == "attention" and post["error_class"] == "outcome_unknown", post
            assert post["metadata"]["node_id"] == "2", post
            put = s.wait_run(runs[1], timeout=30)
            assert put["status"] == "succeeded" and put["output"]["status"] == 200, put
            assert t.counts["/slow-post"] == 1 and t.counts["/slow-put"] == 2, t.counts
    finally:
        t.close()


if __name__ == "__main__":
    main(globals())
