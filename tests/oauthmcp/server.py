#!/usr/bin/env python3
"""An OAuth-protected MCP server for tests (Python standard library only; 127.0.0.1).

One process plays both roles of MCP authorization (2025-11-25): the authorization server and
the protected MCP server.

  GET  /.well-known/oauth-protected-resource[/mcp]  RFC 9728 metadata (resource <base>/mcp)
  GET  /.well-known/oauth-authorization-server      RFC 8414 metadata (issuer <base>)
  POST /register                                     RFC 7591 dynamic registration (public
                                                     clients: token_endpoint_auth_method none)
  GET  /authorize                                    redirects at once to redirect_uri with
                                                     code + state (or error=access_denied when
                                                     `deny` is set); the client and redirect_uri
                                                     must be registered, S256 required
  POST /token                                        authorization_code (checks the PKCE S256
                                                     verifier, redirect_uri and resource) and
                                                     refresh_token (fails with invalid_grant
                                                     while `fail_refresh` is set)
  POST /mcp                                          JSON-RPC over POST with JSON answers:
                                                     initialize, notifications/*, tools/list
                                                     (one tool "echo"), tools/call; 401 with
                                                     WWW-Authenticate resource_metadata without
                                                     a valid bearer
  GET  /stats                                        requests per endpoint and grant

Knobs (attributes of OAuthMCP, or POST /control {...} when run as a program): access_lifetime
(seconds), fail_refresh, deny. expire_all() makes every access token issued so far invalid.
`issued` keeps every secret handed out (codes, tokens) so tests can check none leaks.

Run standalone: python3 server.py [port]  (prints the base URL).
"""
import base64
import hashlib
import json
import secrets
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

PROTOCOL = "2025-11-25"


def s256(verifier):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OAuthMCP:
    def __init__(self, port=0):
        self.access_lifetime = 3600
        self.fail_refresh = False
        self.deny = False
        self.counts = Counter()
        self.issued = []
        self.lock = threading.Lock()
        self.clients = {}   # client_id -> registration
        self.codes = {}     # code -> {client_id, redirect_uri, challenge, resource, scope}
        self.access = {}    # token -> expiry (unix seconds)
        self.refresh = {}   # token -> client_id
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer._get(self)

            def do_POST(self):
                outer._post(self)

            def do_DELETE(self):
                outer._count("DELETE " + urlparse(self.path).path)
                outer._send(self, 405, {"error": "method_not_allowed"})

        self.srv = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.base = "http://127.0.0.1:%d" % self.srv.server_address[1]
        self.mcp_url = self.base + "/mcp"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

    def expire_all(self):
        with self.lock:
            for t in self.access:
                self.access[t] = 0

    def stats(self):
        with self.lock:
            return dict(self.counts)

    # --- plumbing -----------------------------------------------------------------------------
    def _count(self, what):
        with self.lock:
            self.counts[what] += 1

    def _secret(self, prefix):
        v = prefix + secrets.token_urlsafe(24)
        with self.lock:
            self.issued.append(v)
        return v

    @staticmethod
    def _send(h, status, body, headers=None):
        data = json.dumps(body).encode() if body is not None else b""
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if body is not None:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _body(h):
        return h.rfile.read(int(h.headers.get("Content-Length") or 0))

    def _prm(self):
        return {"resource": self.mcp_url, "authorization_servers": [self.base],
                "scopes_supported": ["mcp"], "bearer_methods_supported": ["header"]}

    def _asm(self):
        return {"issuer": self.base, "authorization_endpoint": self.base + "/authorize",
                "token_endpoint": self.base + "/token",
                "registration_endpoint": self.base + "/register",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["mcp"]}

    # --- GET ----------------------------------------------------------------------------------
    def _get(self, h):
        u = urlparse(h.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if u.path.startswith("/.well-known/oauth-protected-resource"):
            self._count("prm")
            return self._send(h, 200, self._prm())
        if u.path == "/.well-known/oauth-authorization-server":
            self._count("asm")
            return self._send(h, 200, self._asm())
        if u.path == "/authorize":
            self._count("authorize")
            return self._authorize(h, q)
        if u.path == "/stats":
            return self._send(h, 200, self.stats())
        self._count("GET " + u.path)
        self._send(h, 404, {"error": "not_found"})

    def _authorize(self, h, q):
        client = self.clients.get(q.get("client_id", ""))
        if (not client or q.get("redirect_uri") not in client["redirect_uris"] or
                q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" or
                not q.get("code_challenge")):
            return self._send(h, 400, {"error": "invalid_request"})
        sep = "&" if "?" in q["redirect_uri"] else "?"
        if self.deny:
            loc = q["redirect_uri"] + sep + urlencode({"error": "access_denied",
                                                       "state": q.get("state", "")})
        else:
            code = self._secret("code-")
            with self.lock:
                self.codes[code] = {"client_id": q["client_id"],
                                    "redirect_uri": q["redirect_uri"],
                                    "challenge": q["code_challenge"],
                                    "resource": q.get("resource"), "scope": q.get("scope")}
            loc = q["redirect_uri"] + sep + urlencode({"code": code, "state": q.get("state", "")})
        h.send_response(302)
        h.send_header("Location", loc)
        h.send_header("Content-Length", "0")
        h.end_headers()

    # --- POST ---------------------------------------------------------------------------------
    def _post(self, h):
        u = urlparse(h.path)
        raw = self._body(h)
        if u.path == "/register":
            self._count("register")
            try:
                meta = json.loads(raw)
            except ValueError:
                return self._send(h, 400, {"error": "invalid_client_metadata"})
            cid = "client-" + secrets.token_hex(8)
            reg = dict(meta, client_id=cid, token_endpoint_auth_method="none")
            with self.lock:
                self.clients[cid] = reg
            return self._send(h, 201, reg)
        if u.path == "/token":
            return self._token(h, {k: v[0] for k, v in parse_qs(raw.decode()).items()})
        if u.path == "/mcp":
            self._count("mcp")
            return self._mcp(h, raw)
        if u.path == "/control":
            for k, v in json.loads(raw).items():
                setattr(self, k, v)
            if json.loads(raw).get("expire_all"):
                self.expire_all()
            return self._send(h, 200, {"ok": True})
        self._send(h, 404, {"error": "not_found"})

    def _tokens(self, client_id):
        at, rt = self._secret("at-"), self._secret("rt-")
        with self.lock:
            self.access[at] = time.time() + self.access_lifetime
            self.refresh[rt] = client_id
        return {"access_token": at, "token_type": "Bearer", "expires_in": self.access_lifetime,
                "refresh_token": rt, "scope": "mcp"}

    def _token(self, h, f):
        grant = f.get("grant_type")
        self._count("token:" + str(grant))
        if grant == "authorization_code":
            with self.lock:
                c = self.codes.pop(f.get("code", ""), None)
            if (not c or c["client_id"] != f.get("client_id") or
                    c["redirect_uri"] != f.get("redirect_uri") or
                    s256(f.get("code_verifier", "")) != c["challenge"] or
                    f.get("resource") != self.mcp_url or c["resource"] != self.mcp_url):
                return self._send(h, 400, {"error": "invalid_grant"})
            return self._send(h, 200, self._tokens(c["client_id"]))
        if grant == "refresh_token":
            with self.lock:
                cid = self.refresh.pop(f.get("refresh_token", ""), None) \
                    if not self.fail_refresh else None
            if not cid or cid != f.get("client_id") or f.get("resource") != self.mcp_url:
                return self._send(h, 400, {"error": "invalid_grant"})
            return self._send(h, 200, self._tokens(cid))
        self._send(h, 400, {"error": "unsupported_grant_type"})

    def _mcp(self, h, raw):
        auth = h.headers.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else ""
        with self.lock:
            ok = self.access.get(tok, 0) > time.time()
        if not ok:
            self._count("mcp:401")
            return self._send(h, 401, {"error": "invalid_token"}, {
                "WWW-Authenticate": 'Bearer error="invalid_token", resource_metadata="%s"' %
                (self.base + "/.well-known/oauth-protected-resource/mcp")})
        try:
            msg = json.loads(raw)
        except ValueError:
            return self._send(h, 400, {"error": "parse error"})
        method, mid = msg.get("method", ""), msg.get("id")
        self._count("mcp:" + method)
        if mid is None:
            return self._send(h, 202, None)
        if method == "initialize":
            res = {"protocolVersion": msg.get("params", {}).get("protocolVersion", PROTOCOL),
                   "capabilities": {"tools": {}},
                   "serverInfo": {"name": "oauthmcp", "version": "1.0"}}
        elif method == "tools/list":
            res = {"tools": [{"name": "echo", "description": "Echoes the message back.",
                              "inputSchema": {"type": "object",
                                              "properties": {"message": {"type": "string"}}},
                              "annotations": {"readOnlyHint": True}}]}
        elif method == "tools/call":
            args = msg.get("params", {}).get("arguments") or {}
            res = {"content": [{"type": "text", "text": "Echo: %s" % args.get("message", "")}]}
        elif method == "ping":
            res = {}
        else:
            return self._send(h, 200, {"jsonrpc": "2.0", "id": mid,
                                       "error": {"code": -32601, "message": "no such method"}})
        self._send(h, 200, {"jsonrpc": "2.0", "id": mid, "result": res})


if __name__ == "__main__":
    s = OAuthMCP(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(s.base, flush=True)
    try:
        s.thread.join()
    except KeyboardInterrupt:
        s.close()
