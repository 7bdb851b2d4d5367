#!/usr/bin/env python3
"""OAuth2 API connectors called from the gateway (README "Connectors"): test and invoke get an
access token from the connector's token_url and send it as a bearer.

Covered against a local HTTP server that counts its requests: test and invoke succeed with the
token; the second call reuses the cached token (one token request); another user's connector
gets its own token; a cached token the API refuses (401) is replaced once; a token endpoint that refuses the client answers success:false with its
status and the OAuth error, one that does not answer with status_code 0, and ?validate=1
refuses such a connector; no secret (client secret, access token) appears in the answers, the
database's clear columns or the logs.
"""
import base64
import json
import os
import sys
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, free_port, main, serve_http  # noqa: E402

KEY1 = "key1:" + base64.b64encode(b"3" * 32).decode()
CLIENT_SECRET = "conn-client-secret-5b1e7c30d2"
ACCESS = "conn-access-token-e92d4a61bf"
SECRETS = (CLIENT_SECRET, ACCESS)
ENV = {"TOOLGATE_SECRET_KEY": KEY1, "TOOLGATE_EGRESS_ALLOW": "127.0.0.1"}


class Target:
    """/token grants a new token (ACCESS-<n>) to client credentials, /refuse answers 401
    invalid_client, /api accepts the bearer of a valid token; counts requests per path.
    revoke() makes every token granted so far invalid."""

    def __init__(self):
        target = self
        self.counts = {}
        self.valid = set()

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                u = urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                n = target.counts[u.path] = target.counts.get(u.path, 0) + 1
                if u.path == "/refuse":
                    return self._answer(401, {"error": "invalid_client"})
                form = parse_qs(raw.decode())
                if (form.get("grant_type") != ["client_credentials"] or
                        form.get("client_secret") != [CLIENT_SECRET]):
                    return self._answer(400, {"error": "invalid_request"})
                token = "%s-%d" % (ACCESS, n)
                target.valid.add(token)
                return self._answer(200, {"access_token": token, "expires_in": 3600,
                                          "token_type": "Bearer"})

            def do_GET(self):
                target.counts["/api"] = target.counts.get("/api", 0) + 1
                auth = self.headers.get("Authorization", "")
                ok = auth.startswith("Bearer ") and auth[7:] in target.valid
                return self._answer(200 if ok else 401, {"ok": ok, "path": self.path})

        self.srv = serve_http(H)
        self.url = self.srv.url

    def revoke(self):
        self.valid.clear()


def connector(t, name, token_url):
    return {"name": name, "base_url": t.url,
            "auth": {"type": "oauth2", "token_url": token_url, "client_id": "cid",
                     "client_secret": CLIENT_SECRET},
            "operations": [{"name": "who", "method": "GET", "path": "/api"}]}


def create(s, body, user="alice"):
    st, _, c = s.gw("POST", "/api/connectors/api", body, user=user)
    assert st == 201, (st, c)
    return c["id"]


def no_secret(s, answers):
    text = json.dumps(answers)
    text += json.dumps(s.query("SELECT id, kind, name, config, auth_status FROM connectors"))
    text += "".join(p.text() for p in s.procs.values())
    for sec in SECRETS:
        assert sec not in text, "a secret leaked: " + sec[:10]


def test_oauth2_connector_calls():
    t = Target()
    try:
        with Stack(mcp=False, extra_env=ENV) as s:
            answers = []
            cid = create(s, connector(t, "oa", t.url + "/token"))
            st, _, r = s.gw("POST", "/api/connectors/%s/test" % cid)
            answers.append(r)
            assert st == 200 and r["success"] and r["status_code"] == 200, (st, r)
            assert r["data"] == {"ok": True, "path": "/api"}, r
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % cid, {"operation": "who"})
            answers.append(r)
            assert st == 200 and r["success"] and r["data"]["ok"], (st, r)
            assert t.counts.get("/token") == 1, t.counts  # the second call used the cache
            assert t.counts.get("/api") == 2, t.counts

            # another user's connector: its own token
            bid = create(s, connector(t, "oa", t.url + "/token"), user="bob")
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % bid, {}, user="bob")
            assert st == 200 and r["success"], (st, r)
            assert t.counts.get("/token") == 2, t.counts

            # a revoked cached token: the 401 fetches a new one, once
            t.revoke()
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % cid, {})
            assert st == 200 and r["success"], (st, r)
            assert t.counts.get("/token") == 3 and t.counts.get("/api") == 5, t.counts

            # the token endpoint refuses: success false, its status, the OAuth error
            rid = create(s, connector(t, "refused", t.url + "/refuse"))
            st, _, r = s.gw("POST", "/api/connectors/%s/invoke" % rid, {})
            answers.append(r)
            assert st == 200 and r["success"] is False and r["status_code"] == 401, (st, r)
            assert "invalid_client" in r["error"] and r["data"] is None, r
            assert t.counts.get("/refuse") == 1 and t.counts.get("/api") == 5, t.counts
            st, _, r = s.gw("POST", "/api/connectors/%s/test" % rid)
            assert r["success"] is False and t.counts.get("/refuse") == 2, (r, t.counts)

            # the token endpoint does not answer: status_code 0
            dead = "http://127.0.0.1:%d/token" % free_port()
            did = create(s, connector(t, "dead", dead))
            st, _, r = s.gw("POST", "/api/connectors/%s/test" % did)
            answers.append(r)
            assert st == 200 and r["success"] is False and r["status_code"] == 0, (st, r)
            assert r["error"].startswith("oauth2 access token: "), r

            # ?validate=1 refuses a connector whose token request fails
            st, _, b = s.gw("POST", "/api/connectors/api?validate=1",
                            connector(t, "checked", t.url + "/refuse"))
            answers.append(b)
            assert st == 422 and b["error"] == "connector_test_failed", (st, b)
            assert b["test"]["status_code"] == 401, b
            no_secret(s, answers)
    finally:
        t.srv.shutdown()
        t.srv.server_close()


if __name__ == "__main__":
    main(globals())
