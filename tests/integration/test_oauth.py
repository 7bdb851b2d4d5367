"""The OAuth connection lifecycle end to end against the Composio simulator.

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway, a fresh SQLite file per test): the
full connect flow, reconnect in place, forged/expired/replayed/foreign states, another user's
account, disconnect twice, status with its cache and with Composio down, the expiry webhook
(good, bad, stale and replayed signatures), a gateway restart between start and callback, and
the start-up re-sync and cleanup. Every wait is bounded.
"""
import base64
import hashlib
import hmac
import json
import time
import urllib.parse

from harness import AUTH_CONFIG, PROVIDER, Stack, http, main, wait_until

START = "/api/mcp/auth/%s/start" % PROVIDER
WEBHOOK_KEY = b"0123456789abcdef0123456789abcdef"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()


def row(s, user="alice"):
    rows = s.query("SELECT * FROM connected_accounts WHERE user_id=? AND provider=?", user,
                   PROVIDER)
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def count(s, table):
    return s.query("SELECT count(*) AS n FROM " + table)[0]["n"]


def sim_stats(s):
    return s.sim("GET", "/_sim/stats")[2]["by_route"]


def follow_link(s, start, fmt_json=False, user_header=None):
    """The browser at Composio's hosted page, then at our callback. Returns (status, headers,
    body) of the callback."""
    st, h, _ = http("GET", start["redirect_url"])
    assert st == 302, (st, h)
    cb = h["location"] + ("&format=json" if fmt_json else "")
    assert cb.startswith(s.gw_url + "/api/composio-redirect?state=" + start["state"]), cb
    return http("GET", cb, headers={"X-User-Id": user_header} if user_header else None)


def test_full_connect_flow():
    with Stack(mcp=False) as s:
        st, _, prov = s.gw("GET", "/api/mcp/auth/providers")
        assert st == 200 and prov["providers"][0]["connected"] is False, prov
        t0 = time.time() * 1000
        st, _, start = s.gw("POST", START, {})
        assert st == 200 and set(start) == {"redirect_url", "state", "expires_at"}, start
        assert len(start["state"]) >= 32, start  # >= 128 bits of hex
        assert t0 + 9.9 * 60e3 < start["expires_at"] <= time.time() * 1000 + 10 * 60e3, start
        states = s.query("SELECT * FROM oauth_states")
        assert len(states) == 1 and states[0]["user_id"] == "alice" and \
            states[0]["provider"] == PROVIDER and states[0]["used_at"] is None, states
        r = row(s)
        assert r["status"] == "PENDING" and r["composio_account_id"] == \
            states[0]["composio_account_id"], r
        st, h, _ = follow_link(s, start)
        assert st == 302 and h["location"] == s.gw_url + "/?provider=%s&status=connected" % \
            PROVIDER, h
        r = row(s)
        assert r["status"] == "ACTIVE" and r["connected_at"] and r["version"] == 2, r
        m = s.query("SELECT * FROM mcp_connections")
        assert len(m) == 1 and m[0]["connected_account_id"] == r["id"], m
        assert r["composio_account_id"] in m[0]["url"], m
        assert s.query("SELECT used_at FROM oauth_states")[0]["used_at"] is not None
        st, _, prov = s.gw("GET", "/api/mcp/auth/providers")
        assert prov["providers"][0]["status"] == "ACTIVE" and prov["providers"][0]["connected"]
        # Start again: Composio confirms the ACTIVE account, so no new link and no new state.
        links = sim_stats(s)["link"]
        st, _, again = s.gw("POST", START, {})
        assert st == 200 and again == {"connected": True, "provider": PROVIDER,
                                       "status": "ACTIVE",
                                       "connected_account_id": r["composio_account_id"]}, again
        assert sim_stats(s)["link"] == links and count(s, "oauth_states") == 1
        assert row(s)["version"] == r["version"]
        # The debug view: own rows only, MCP URL without query values, no secret.
        st, _, dbg = s.gw("GET", "/api/mcp/auth/debug")
        assert st == 200 and dbg["user_id"] == "alice" and len(dbg["connections"]) == 1, dbg
        c = dbg["connections"][0]
        assert c["status"] == "ACTIVE" and c["has_mcp_url"] is True, c
        u = urllib.parse.urlsplit(m[0]["url"])
        assert c["mcp_url_redacted"].startswith("%s://%s%s" % (u.scheme, u.netloc, u.path)), c
        assert r["composio_account_id"] not in c["mcp_url_redacted"] and \
            "REDACTED" in c["mcp_url_redacted"] and u.query, c
        assert "headers_enc" not in c and "mcp_url" not in c, c
        assert "state" not in json.dumps(dbg["open_oauth_states"]).replace("_states", ""), dbg
        with s.db() as c:  # userinfo, empty parameters and a fragment are not shown either
            c.execute("UPDATE mcp_connections SET url = 'https://u:Pw-9q7Z@h.example:8443/p/q?"
                      "api_key=Sk1-4xW&&&tok=Sk2-8vQ#Sk3-2mR'")
        st, _, dbg = s.gw("GET", "/api/mcp/auth/debug")
        red = dbg["connections"][0]["mcp_url_redacted"]
        assert red == "https://h.example:8443/p/q?api_key=REDACTED&=REDACTED&=REDACTED&" \
            "tok=REDACTED", red
        # Each secret is matched whole: the random account id may hold any short string.
        for secret in ("Pw-9q7Z", "Sk1-4xW", "Sk2-8vQ", "Sk3-2mR"):
            assert secret not in json.dumps(dbg), (secret, dbg)
        st, _, dbg = s.gw("GET", "/api/mcp/auth/debug", user="bob")
        assert st == 200 and dbg["connections"] == [], dbg


def test_reconnect_without_a_duplicate_row():
    with Stack(mcp=False) as s:
        ca1 = s.connect("alice")
        v1 = row(s)["version"]
        # Composio expires the account; a new start sees that and makes a new link.
        s.sim("PATCH", "/_sim/accounts/" + ca1, {"status": "EXPIRED",
                                                 "status_reason": "OAuth refresh token expired"})
        st, _, start = s.gw("POST", START, {})
        assert st == 200 and "redirect_url" in start, start
        r = row(s)
        assert r["status"] == "PENDING" and r["composio_account_id"] != ca1 and \
            r["version"] == v1 + 1, r
        st, _, body = follow_link(s, start, fmt_json=True)
        assert st == 200 and body["status"] == "connected", body
        r = row(s)
        assert r["status"] == "ACTIVE" and r["version"] == v1 + 2, r
        assert r["composio_account_id"] == body["connected_account_id"] != ca1, r
        assert count(s, "connected_accounts") == 1 and count(s, "mcp_connections") == 1
        m = s.query("SELECT url FROM mcp_connections")[0]["url"]
        assert r["composio_account_id"] in m and ca1 not in m, m
        # A third connect through the harness' redirect flow: still one row.
        st, _, start = s.gw("POST", START, {"force": True})
        st, h, _ = follow_link(s, start)
        assert st == 302 and "status=connected" in h["location"], h
        assert count(s, "connected_accounts") == 1 and row(s)["version"] == v1 + 3


def test_forged_expired_and_replayed_states():
    with Stack(mcp=False) as s:
        st, _, start = s.gw("POST", START, {})
        ca = row(s)["composio_account_id"]
        before = (row(s), count(s, "mcp_connections"), s.query("SELECT * FROM oauth_states"))
        for forged in ("f" * 48, "deadbeef"):
            st, _, body = s.gw("GET", "/api/composio-redirect?status=success&state=%s&"
                               "connected_account_id=%s" % (forged, ca), user=None)
            assert st == 400 and body["error"] == "invalid_state" and \
                body["reason"] == "unknown", body
        st, _, body = s.gw("GET", "/api/composio-redirect?status=success&state=bad%20state",
                           user=None)
        assert st == 400 and body["error"] == "invalid_state", body
        assert (row(s), count(s, "mcp_connections"), s.query("SELECT * FROM oauth_states")) == \
            before
        # Expired: refused, nothing written, the state not consumed.
        with s.db() as c:
            c.execute("UPDATE oauth_states SET expires_at = ?", (int(time.time() * 1000) - 1,))
        st, h, _ = http("GET", start["redirect_url"])
        st, _, body = http("GET", h["location"])
        assert st == 400 and body["reason"] == "expired", body
        assert s.query("SELECT used_at FROM oauth_states")[0]["used_at"] is None
        assert row(s)["status"] == "PENDING" and count(s, "mcp_connections") == 0
        # Replayed: the first callback connects, the same URL again is refused.
        st, _, start = s.gw("POST", START, {})
        st, h, _ = http("GET", start["redirect_url"])
        st, h2, _ = http("GET", h["location"])
        assert st == 302 and "status=connected" in h2["location"], h2
        after = row(s)
        st, _, body = http("GET", h["location"])
        assert st == 400 and body["error"] == "invalid_state" and body["reason"] == "used", body
        assert row(s) == after and count(s, "mcp_connections") == 1


def test_states_and_accounts_of_another_user():
    with Stack(mcp=False) as s:
        # A state started by alice cannot be finished by bob's browser.
        st, _, start = s.gw("POST", START, {}, user="alice")
        st, _, body = follow_link(s, start, user_header="bob")
        assert st == 400 and body["error"] == "invalid_state" and \
            body["reason"] == "other_user", body
        assert s.query("SELECT used_at FROM oauth_states")[0]["used_at"] is None
        assert row(s, "alice")["status"] == "PENDING" and row(s, "bob") is None
        # ... and alice can still finish it (her own identity is accepted).
        st, h, _ = http("GET", s.gw_url + "/api/composio-redirect?status=success&state=%s"
                        "&connected_account_id=%s" % (start["state"],
                                                      row(s)["composio_account_id"]),
                        headers={"X-User-Id": "alice"})
        assert st == 302 and "status=connected" in h["location"], h
        # Two users, same provider: separate rows and separate MCP URLs.
        ca_bob = s.connect("bob")
        rows = s.query("SELECT c.user_id, c.composio_account_id, m.url FROM connected_accounts c "
                       "JOIN mcp_connections m ON m.connected_account_id = c.id ORDER BY 1")
        assert [r["user_id"] for r in rows] == ["alice", "bob"], rows
        assert rows[0]["url"] != rows[1]["url"] and \
            rows[0]["composio_account_id"] != rows[1]["composio_account_id"], rows
        # An account Composio reports for another user is refused: the link answered without a
        # connected_account_id (allowed by the API), and the callback names bob's account.
        st, _, start = s.gw("POST", START, {"force": True}, user="alice")
        with s.db() as c:
            c.execute("UPDATE oauth_states SET composio_account_id = NULL WHERE state = ?",
                      (start["state"],))
        alice_before, bob_before = row(s, "alice"), row(s, "bob")
        st, _, body = s.gw("GET", "/api/composio-redirect?status=success&format=json&state=%s"
                           "&connectedAccountId=%s" % (start["state"], ca_bob), user=None)
        assert st == 400 and body["error"] == "account_mismatch", body
        assert row(s, "alice") == alice_before and row(s, "bob") == bob_before
        assert count(s, "mcp_connections") == 2
        # Every route acts on the caller's rows only: bob's disconnect leaves alice connected.
        st, _, body = s.gw("DELETE", "/api/mcp/auth/" + PROVIDER, user="bob")
        assert st == 200 and body["changed"] is True, body
        assert row(s, "alice")["status"] == "ACTIVE" and row(s, "bob")["status"] == "DISCONNECTED"


def test_disconnect_twice():
    with Stack(mcp=False) as s:
        st, _, body = s.gw("DELETE", "/api/mcp/auth/nosuch")
        assert st == 404 and body["error"] == "unknown_provider" and body["known"] == [PROVIDER]
        st, _, body = s.gw("DELETE", "/api/mcp/auth/" + PROVIDER)
        assert st == 200 and body["changed"] is False and body["composio_deleted"] is None, body
        ca = s.connect("alice")
        v = row(s)["version"]
        st, _, body = s.gw("DELETE", "/api/mcp/auth/" + PROVIDER)
        assert st == 200 and body["changed"] is True and body["composio_deleted"] is True, body
        r = row(s)  # two changes: DISCONNECTED (delete pending), then the reason once deleted
        assert r["status"] == "DISCONNECTED" and r["version"] == v + 2 == body["version"], r
        m = s.query("SELECT url, headers_enc FROM mcp_connections")
        assert m == [{"url": None, "headers_enc": None}], m
        accts = {a["id"]: a for a in s.sim("GET", "/_sim/accounts")[2]["items"]}
        assert accts[ca].get("deleted") is True, accts[ca]
        deletes = sim_stats(s)["delete"]
        st, _, body = s.gw("DELETE", "/api/mcp/auth/" + PROVIDER)
        assert st == 200 and body["changed"] is False and body["composio_deleted"] is None, body
        assert row(s) == r and sim_stats(s)["delete"] == deletes
        st, _, prov = s.gw("GET", "/api/mcp/auth/providers")
        assert prov["providers"][0]["status"] == "DISCONNECTED", prov
        # Composio down during a disconnect: local disconnect stands; the next call retries.
        s.connect("alice")
        s.sim("POST", "/_sim/fail", {"count": 1, "status": 503})
        st, _, body = s.gw("DELETE", "/api/mcp/auth/" + PROVIDER)
        assert st == 200 and body["changed"] is True and body["composio_deleted"] is False, body
        v = row(s)["version"]
        st, _, body = s.gw("DELETE", "/api/mcp/auth/" + PROVIDER)
        assert st == 200 and body["changed"] is False and body["composio_deleted"] is True, body
        # The reason changed (delete pending -> deleted): one version bump, as every change.
        assert row(s)["version"] == v + 1 == body["version"] and row(s)["status"] == "DISCONNECTED"
        assert row(s)["status_reason"] == "disconnected_by_user"


def test_status_cache_force_and_composio_down():
    with Stack(mcp=False) as s:
        st, _, body = s.gw("GET", "/api/mcp/auth/status")
        assert st == 200 and body["providers"][PROVIDER]["reason"] == "not_connected", body
        assert body["providers"][PROVIDER]["authorized"] is False, body
        ca = s.connect("alice")
        gets = sim_stats(s)["get"]
        st, _, body = s.gw("GET", "/api/mcp/auth/status")
        p = body["providers"][PROVIDER]
        assert st == 200 and p["authorized"] is True and p["status"] == "ACTIVE" and \
            p["source"] == "live" and p["stale"] is False and p["checked_at"], body
        assert sim_stats(s)["get"] == gets + 1
        st, _, body = s.gw("GET", "/api/mcp/auth/status")
        assert body["providers"][PROVIDER]["source"] == "cache", body
        assert sim_stats(s)["get"] == gets + 1, "the cache did not answer"
        # Another user's status is separate (and has no row).
        st, _, body = s.gw("GET", "/api/mcp/auth/status", user="bob")
        assert body["providers"][PROVIDER]["reason"] == "not_connected", body
        # Composio expires it; the cache still says ACTIVE until force.
        s.sim("PATCH", "/_sim/accounts/" + ca, {"status": "EXPIRED",
                                                "status_reason": "OAuth refresh token expired"})
        st, _, body = s.gw("GET", "/api/mcp/auth/status")
        assert body["providers"][PROVIDER]["authorized"] is True, body
        v = row(s)["version"]
        st, _, body = s.gw("GET", "/api/mcp/auth/status?force=1")
        p = body["providers"][PROVIDER]
        assert p["authorized"] is False and p["status"] == "EXPIRED" and \
            p["reason"] == "connected_account_status=EXPIRED" and \
            p["status_reason"] == "OAuth refresh token expired" and p["source"] == "live", p
        r = row(s)
        assert r["status"] == "EXPIRED" and r["version"] == v + 1 and \
            r["status_reason"] == "OAuth refresh token expired", r
        # Composio unreachable: the last known values, marked stale, not a 500.
        s.procs.pop("composio-sim").stop()
        st, _, body = s.gw("GET", "/api/mcp/auth/status?force=1")
        p = body["providers"][PROVIDER]
        assert st == 200 and p["stale"] is True and p["status"] == "EXPIRED" and \
            p["authorized"] is False and p["source"] == "cache" and p["error"], body
        assert row(s) == r
        # A fresh gateway has no cache: the row's last known values, stale.
        s.restart_gateway()
        st, _, body = s.gw("GET", "/api/mcp/auth/status")
        p = body["providers"][PROVIDER]
        assert st == 200 and p["stale"] is True and p["source"] == "db" and \
            p["status"] == "EXPIRED" and p["status_reason"] == "OAuth refresh token expired", p


def sign(secret_key, wid, ts, raw):
    mac = hmac.new(secret_key, ("%s.%s." % (wid, ts)).encode() + raw, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def post_webhook(s, raw, wid, ts=None, sig=None, key=WEBHOOK_KEY):
    ts = str(int(time.time())) if ts is None else ts
    h = {"webhook-id": wid, "webhook-timestamp": ts, "content-type": "application/json",
         "webhook-signature": sig if sig is not None else sign(key, wid, ts, raw)}
    return http("POST", s.gw_url + "/api/webhooks/composio", raw, h)


def expired_event(ca, reason="OAuth refresh token expired"):
    return json.dumps({"id": "evt_1", "type": "composio.connected_account.expired",
                       "metadata": {"project_id": "pr_x", "org_id": "ok_x"},
                       "data": {"id": ca, "toolkit": {"slug": PROVIDER},
                                "auth_config": {"id": AUTH_CONFIG, "auth_scheme": "OAUTH2"},
                                "status": "EXPIRED", "status_reason": reason},
                       "timestamp": "2026-02-06T12:00:00.000Z"}).encode()


def test_webhook_signatures_and_replay():
    with Stack(mcp=False) as s:
        st, _, body = post_webhook(s, b"{}", "msg_0")
        assert st == 503 and body["error"] == "webhook_not_configured", body
        s.restart_gateway({"TOOLGATE_WEBHOOK_SECRET": WEBHOOK_SECRET})
        ca = s.connect("alice")
        st, _, body = s.gw("GET", "/api/mcp/auth/status")  # fills the status cache
        assert body["providers"][PROVIDER]["authorized"] is True, body
        before = row(s)
        raw = expired_event(ca)
        bad = [
            dict(sig="v1," + base64.b64encode(b"x" * 32).decode()),   # wrong MAC
            dict(key=b"another key"),                                  # wrong secret
            dict(ts=str(int(time.time()) - 360)),                      # outside 5 minutes
            dict(ts=str(int(time.time()) + 360)),
            dict(sig=""),
        ]
        for kw in bad:
            st, _, body = post_webhook(s, raw, "msg_1", **kw)
            assert st == 401 and body["error"] == "invalid_signature", (kw, body)
        # A body changed after signing.
        ts = str(int(time.time()))
        st, _, body = post_webhook(s, raw.replace(b"OAuth", b"oauth"), "msg_1", ts,
                                   sign(WEBHOOK_KEY, "msg_1", ts, raw))
        assert st == 401, body
        assert row(s) == before and count(s, "webhook_events") == 0
        # Good: several signatures, one of them valid.
        ts = str(int(time.time()))
        sig = "v1,AAAA " + sign(WEBHOOK_KEY, "msg_1", ts, raw) + " v2,zzz"
        st, _, body = post_webhook(s, raw, "msg_1", ts, sig)
        assert st == 200 and body["duplicate"] is False and body["updated"] == 1, body
        r = row(s)
        assert r["status"] == "EXPIRED" and r["status_reason"] == "OAuth refresh token expired" \
            and r["version"] == before["version"] + 1, r
        assert s.query("SELECT id, type FROM webhook_events") == \
            [{"id": "msg_1", "type": "composio.connected_account.expired"}]
        # Replayed (freshly and correctly signed, same webhook-id): processed once.
        st, _, body = post_webhook(s, expired_event(ca, "another reason"), "msg_1")
        assert st == 200 and body["duplicate"] is True and body["updated"] == 0, body
        assert row(s) == r and count(s, "webhook_events") == 1
        # The webhook dropped the cached ACTIVE answer: the next status asks Composio again
        # (which, as with the real service, says EXPIRED too).
        s.sim("PATCH", "/_sim/accounts/" + ca, {"status": "EXPIRED"})
        st, _, body = s.gw("GET", "/api/mcp/auth/status")
        p = body["providers"][PROVIDER]
        assert p["source"] == "live" and p["authorized"] is False and p["status"] == "EXPIRED", p


def test_restart_between_start_and_callback():
    with Stack(mcp=False) as s:
        st, _, start = s.gw("POST", START, {})
        assert st == 200, start
        s.restart_gateway()
        st, h, _ = follow_link(s, start)
        assert st == 302 and "status=connected" in h["location"], h
        assert row(s)["status"] == "ACTIVE" and count(s, "mcp_connections") == 1
        # Also across a crash (SIGKILL) between start and callback.
        st, _, start = s.gw("POST", START, {"force": True})
        s.procs["gateway"].kill9()
        s.procs.pop("gateway").log.close()
        s.start_gateway()
        st, _, body = follow_link(s, start, fmt_json=True)
        assert st == 200 and body["status"] == "connected", body
        assert count(s, "connected_accounts") == 1


def test_startup_resync_and_cleanup():
    with Stack(mcp=False) as s:
        ca_a = s.connect("alice")
        s.connect("bob")
        bob = row(s, "bob")
        now = int(time.time() * 1000)
        s.procs.pop("gateway").stop()
        s.sim("PATCH", "/_sim/accounts/" + ca_a, {"status": "EXPIRED",
                                                  "status_reason": "OAuth refresh token expired"})
        with s.db() as c:  # an abandoned start of carol's and a long-expired state
            c.execute("INSERT INTO users (id, credits, created_at) VALUES ('carol', 0, ?)", (now,))
            c.execute("INSERT INTO connected_accounts (user_id, provider, auth_config_id, "
                      "composio_account_id, status, version, created_at, updated_at) VALUES "
                      "('carol', ?, ?, 'ca_abandoned', 'PENDING', 1, ?, ?)",
                      (PROVIDER, AUTH_CONFIG, now - 3600e3, now - 3600e3))
            c.execute("INSERT INTO oauth_states (state, user_id, provider, created_at, expires_at) "
                      "VALUES ('old', 'carol', ?, 1, 2)", (PROVIDER,))
        s.sim("POST", "/_sim/latency", {"ms": 5000})
        t0 = time.monotonic()
        s.start_gateway()
        st, _, _ = s.gw("GET", "/readyz", user=None)
        assert st == 200 and time.monotonic() - t0 < 4, "readiness waited for the re-sync"
        assert row(s, "alice")["status"] == "ACTIVE"  # not yet: Composio is slow
        wait_until(lambda: row(s, "alice")["status"] == "EXPIRED", 15, "the re-sync")
        r = row(s, "alice")
        assert r["status_reason"] == "OAuth refresh token expired", r
        wait_until(lambda: row(s, "bob")["last_checked_at"] > bob["last_checked_at"], 10, "bob")
        assert row(s, "bob")["status"] == "ACTIVE" and row(s, "bob")["version"] == bob["version"]
        c = row(s, "carol")
        assert c["status"] == "EXPIRED" and c["status_reason"].startswith("oauth_abandoned"), c
        assert s.query("SELECT state FROM oauth_states WHERE state = 'old'") == []


if __name__ == "__main__":
    main(dict(globals()))
