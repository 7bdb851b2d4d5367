#!/usr/bin/env python3
"""Credentials of API nodes (README "Credentials"): POST/GET/DELETE /api/credentials through the
gateway. Validation lists every field (422); no TOOLGATE_SECRET_KEY answers 503 and stores
nothing; the same name replaces (200, same id and created_at); another user's credential is 404;
no answer, log line or database column other than secret_enc holds a secret value, and
secret_enc is sealed (the plaintext is not in it)."""
import base64
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Stack, main  # noqa: E402

KEY1 = "key1:" + base64.b64encode(b"1" * 32).decode()
KEY2 = "key2:" + base64.b64encode(b"2" * 32).decode()
TOKEN = "tok-secret-6d1f0c9a8b7e"
CLIENT_SECRET = "cs-secret-93ab1e77c2d4"
PASSWORD = "pw-secret-51c8e02fa9b3"
SECRETS = (TOKEN, CLIENT_SECRET, PASSWORD)


def no_secret_in(text, what):
    for s in SECRETS:
        assert s not in text, "%s holds a secret value" % what


def test_credentials_crud():
    with Stack(mcp=False, extra_env={"TOOLGATE_SECRET_KEY": KEY1}) as s:
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "crm", "type": "bearer", "token": TOKEN,
                            "hosts": ["API.crm.example", "*.crm.example"]})
        assert st == 201, (st, body)
        assert body["name"] == "crm" and body["type"] == "bearer", body
        assert body["hosts"] == ["api.crm.example", "*.crm.example"], body
        assert body["created_at"] == body["updated_at"], body
        no_secret_in(repr(body), "the 201 answer")
        created = body["created_at"]

        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "oa", "type": "oauth2", "token_url": "https://auth.example/t",
                            "client_id": "cid", "client_secret": CLIENT_SECRET, "scope": "read"})
        assert st == 201, (st, body)
        assert body["meta"] == {"token_url": "https://auth.example/t", "client_id": "cid",
                                "scope": "read", "grant": "client_credentials"}, body
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "key.q", "type": "api_key", "value": TOKEN, "in": "query"})
        assert st == 201 and body["meta"] == {"in": "query", "param_name": "api_key"}, body

        # the same name again replaces it: 200, same created_at
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "crm", "type": "basic", "username": "u",
                            "password": PASSWORD})
        assert st == 200, (st, body)
        assert body["type"] == "basic" and body["hosts"] == [] and body["created_at"] == created
        rows = s.query("SELECT id, secret_enc, hosts, meta FROM credentials WHERE name='crm'")
        assert len(rows) == 1 and rows[0]["id"].startswith("cred_"), rows
        for r in s.query("SELECT * FROM credentials"):
            blob = bytes(r["secret_enc"])
            assert blob.startswith(b"v1:key1:"), blob[:10]
            for sec in SECRETS:
                assert sec.encode() not in blob
            no_secret_in(repr({k: v for k, v in r.items() if k != "secret_enc"}), "a column")

        st, _, body = s.gw("GET", "/api/credentials")
        assert st == 200 and [c["name"] for c in body["credentials"]] == ["crm", "key.q", "oa"]
        no_secret_in(repr(body), "the list")
        st, _, body = s.gw("GET", "/api/credentials/oa")
        assert st == 200 and body["type"] == "oauth2" and "client_secret" not in repr(body), body

        # another user sees nothing and cannot delete
        st, _, body = s.gw("GET", "/api/credentials/oa", user="bob")
        assert st == 404, (st, body)
        st, _, body = s.gw("GET", "/api/credentials", user="bob")
        assert st == 200 and body["credentials"] == [], body
        st, _, _ = s.gw("DELETE", "/api/credentials/oa", user="bob")
        assert st == 404

        st, _, _ = s.gw("DELETE", "/api/credentials/oa")
        assert st == 204
        st, _, _ = s.gw("DELETE", "/api/credentials/oa")
        assert st == 404
        st, _, _ = s.gw("GET", "/api/credentials/oa")
        assert st == 404
        for name, p in s.procs.items():
            no_secret_in(p.text(), "the %s log" % name)


def test_credentials_validation():
    with Stack(mcp=False, extra_env={"TOOLGATE_SECRET_KEY": KEY1}) as s:
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "bad name!", "type": "bearer", "hosts": ["http://x/"]})
        assert st == 422 and body["error"] == "invalid_credential", (st, body)
        fields = sorted(e["field"] for e in body["errors"])
        assert fields == ["hosts", "name", "token"], body
        st, _, body = s.gw("POST", "/api/credentials", {"name": "x", "type": "magic"})
        assert st == 422 and [e["field"] for e in body["errors"]] == ["type"], body
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "x", "type": "oauth2", "token_url": "ftp://a",
                            "client_secret": 5})
        assert st == 422, body
        fields = sorted(e["field"] for e in body["errors"])
        assert fields == ["client_id", "client_secret", "token_url"], body
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "x", "type": "api_key", "value": TOKEN, "in": "cookie"})
        assert st == 422 and [e["field"] for e in body["errors"]] == ["in"], body
        no_secret_in(repr(body), "a 422 answer")
        st, _, body = s.gw("POST", "/api/credentials", {"name": "x" * 65, "type": "bearer",
                                                        "token": "t"})
        assert st == 422 and [e["field"] for e in body["errors"]] == ["name"], body
        assert s.query("SELECT count(*) AS n FROM credentials")[0]["n"] == 0


def test_credentials_need_a_key():
    with Stack(mcp=False) as s:
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "crm", "type": "bearer", "token": TOKEN})
        assert st == 503 and body["error"] == "secret_key_missing", (st, body)
        assert "TOOLGATE_SECRET_KEY" in body["message"]
        assert s.query("SELECT count(*) AS n FROM credentials")[0]["n"] == 0
        st, _, body = s.gw("GET", "/api/credentials")
        assert st == 200 and body["credentials"] == [], body


def test_credentials_in_key_check_and_rotation():
    """The start-up check and --rotate-secrets cover credentials.secret_enc."""
    gw = os.path.join(BUILD, "toolgate-gateway")
    with Stack(mcp=False, extra_env={"TOOLGATE_SECRET_KEY": KEY1}) as s:
        st, _, body = s.gw("POST", "/api/credentials",
                           {"name": "crm", "type": "bearer", "token": TOKEN})
        assert st == 201, (st, body)
        env = dict(s.env, TOOLGATE_LISTEN="127.0.0.1:0")
        p = subprocess.run([gw], env=dict(env, TOOLGATE_SECRET_KEY=""), capture_output=True,
                           timeout=30)
        assert p.returncode != 0 and b"credentials.secret_enc" in p.stderr, p.stderr
        p = subprocess.run([gw, "--rotate-secrets"], env=dict(
            env, TOOLGATE_SECRET_KEY=KEY2, TOOLGATE_SECRET_KEY_OLD=KEY1), capture_output=True,
            timeout=30)
        assert p.returncode == 0 and b"re-encrypted 1 secret(s)" in p.stdout, p
        blob = bytes(s.query("SELECT secret_enc FROM credentials")[0]["secret_enc"])
        assert blob.startswith(b"v1:key2:"), blob[:10]


if __name__ == "__main__":
    main(globals())
