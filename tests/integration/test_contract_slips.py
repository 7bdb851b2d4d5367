"""Contract slips of issue 12 section 2, end to end against the Composio simulator.

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway, a fresh SQLite file per test):
one answer for a Composio failure on every route; an account deleted at Composio written back at
admission; the provider list and the status route agreeing on "connected"; a forced reconnect
deleting the previous Composio account (retried after an outage); a failed OAuth start leaving
no state; the callback's stated polling budget; JWT lifetimes. Every wait is bounded.
"""
import os
import re
import subprocess
import time

from harness import API_KEY, BUILD, PROVIDER, SRC, Stack, http, jwt, main, wait_until

START = "/api/mcp/auth/%s/start" % PROVIDER
INPUTS = {"message": "hi", "a": 1, "b": 2}


def row(s, user="alice"):
    rows = s.query("SELECT * FROM connected_accounts WHERE user_id=? AND provider=?", user,
                   PROVIDER)
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def fail_next(s, count, status, retry_after=None, path_prefix=None):
    body = {"count": count, "status": status}
    if retry_after is not None:
        body["retry_after"] = retry_after
    if path_prefix is not None:
        body["path_prefix"] = path_prefix
    st, _, out = s.sim("POST", "/_sim/fail", body)
    assert st == 200, (st, out)


def test_one_answer_for_a_composio_failure_on_every_route():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        run = "/api/workflows/%s/run" % wf
        # (Composio's answer, the gateway's status, error, Retry-After) on start and admission
        cases = [(500, None, 503, "composio_unavailable", "5"),
                 (503, 7, 503, "composio_unavailable", "7"),
                 (429, 3, 503, "composio_unavailable", "3"),
                 (400, None, 502, "composio_error", None),
                 (403, None, 502, "composio_auth_failed", None)]
        for composio, ra, status, error, retry in cases:
            answers = []
            fail_next(s, 1, composio, ra)
            answers.append(("start",) + s.gw("POST", START, {"force": True}))
            # admission: the list call and the per-account lookup both fail (after a 429 or
            # 403 the lookup is not tried: the failure left over is cleared)
            fail_next(s, 2, composio, ra)
            answers.append(("admission",) + s.gw("POST", run, {"inputs": INPUTS}))
            fail_next(s, 0, 500)
            for route, st, h, body in answers:
                assert st == status and body["error"] == error, (route, composio, st, body)
                assert h.get("retry-after") == retry, (route, composio, h)
                if retry:
                    assert body["retry_after_ms"] == int(retry) * 1000, (route, body)
            # the 429 started the admission back-off: let it pass before the next case
            if composio == 429:
                time.sleep(3.1)
        # the callback: Composio fails the MCP URL call after the account is ACTIVE
        st, _, start = s.gw("POST", START, {"force": True})
        assert st == 200, start
        st, h, _ = http("GET", start["redirect_url"])
        assert st == 302, h
        fail_next(s, 1, 503, 9, path_prefix="/api/v3/mcp/")
        st, h, body = http("GET", h["location"] + "&format=json")
        assert st == 503 and body["error"] == "composio_unavailable", (st, body)
        assert h.get("retry-after") == "9", h


def delete_at_composio(s, ca):
    st, _, body = http("DELETE", s.sim_url + "/api/v3/connected_accounts/" + ca,
                       headers={"x-api-key": API_KEY})
    assert st == 200, (st, body)


def test_account_deleted_at_composio_is_written_back_at_admission():
    with Stack(mcp=False) as s:
        ca = s.connect("alice")
        wf = s.create_workflow()
        v = row(s)["version"]
        delete_at_composio(s, ca)
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
        assert st == 409 and body["reasons"] == {PROVIDER: "connected_account_not_found"}, body
        # written back as the status route writes a 404: REVOKED, connected_account_not_found
        r = row(s)
        assert r["status"] == "REVOKED" and r["status_reason"] == \
            "connected_account_not_found" and r["version"] == v + 1, r
        assert r["last_checked_at"], r
        st, _, status = s.gw("GET", "/api/mcp/auth/status?force=1")
        p = status["providers"][PROVIDER]
        assert p["status"] == "REVOKED" and p["authorized"] is False, p
        assert row(s)["version"] == v + 1, "the status route agrees: nothing more to write"


def test_providers_connected_is_status_authorized():
    with Stack(mcp=False) as s:
        ca = s.connect("alice")
        wf = s.create_workflow()

        def both():
            st, _, status = s.gw("GET", "/api/mcp/auth/status?force=1")
            assert st == 200, status
            st, _, prov = s.gw("GET", "/api/mcp/auth/providers")
            assert st == 200, prov
            return status["providers"][PROVIDER]["authorized"], prov["providers"][0]["connected"]

        assert both() == (True, True)
        for fields in ({"is_disabled": True}, {"is_disabled": False, "auth_refresh_required": True}):
            st, _, _ = s.sim("PATCH", "/_sim/accounts/" + ca, fields)
            assert st == 200
            assert both() == (False, False), fields
            assert row(s)["status"] == "ACTIVE", row(s)  # Composio still says ACTIVE
        # a run's check records the same: the provider list still says not connected
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf,
                           {"inputs": INPUTS, "tool_constraints": {"providers": [PROVIDER]}})
        assert st == 409 and body["reasons"] == {PROVIDER: "auth_refresh_required"}, body
        st, _, prov = s.gw("GET", "/api/mcp/auth/providers")
        assert prov["providers"][0]["connected"] is False, prov
        st, _, _ = s.sim("PATCH", "/_sim/accounts/" + ca, {"auth_refresh_required": False})
        assert both() == (True, True)
        # the start-up re-sync records it the same way
        s.sim("PATCH", "/_sim/accounts/" + ca, {"is_disabled": True})
        s.restart_gateway()
        wait_until(lambda: row(s)["status_reason"] == "is_disabled", 10, "re-sync write-back")
        st, _, prov = s.gw("GET", "/api/mcp/auth/providers")
        assert prov["providers"][0]["connected"] is False, prov


def test_failed_start_leaves_no_state_and_callback_polls_its_stated_budget():
    with Stack(mcp=False) as s:
        for status in (503, 400):
            fail_next(s, 1, status, path_prefix="/api/v3/connected_accounts/link")
            st, _, body = s.gw("POST", START, {})
            assert st in (502, 503) and body["error"].startswith("composio_"), (st, body)
            assert s.query("SELECT * FROM oauth_states") == [], "a failed start left its state"
        # The browser comes back before the account is ACTIVE (it never becomes so): the
        # callback polls for the budget its stored reason states, not less.
        st, _, start = s.gw("POST", START, {})
        assert st == 200, start
        ca = row(s)["composio_account_id"]
        t0 = time.monotonic()
        st, _, body = http("GET", s.gw_url + "/api/composio-redirect?state=%s&status=success&"
                           "connected_account_id=%s&format=json" % (start["state"], ca),
                           timeout=30)
        took = time.monotonic() - t0
        assert st == 200 and body["status"] == "failed", (st, body)
        reason = body["reason"]
        assert reason.startswith("not_active_within_"), reason
        budget_ms = int(reason[len("not_active_within_"):].split("ms")[0])
        with open(os.path.join(SRC, "gateway", "gw.h")) as f:
            constant = int(re.search(r"#define GW_POLL_TOTAL_MS (\d+)", f.read()).group(1))
        assert budget_ms == constant, (reason, constant)
        assert budget_ms / 1000.0 - 0.05 <= took < budget_ms / 1000.0 + 3, (took, reason)
        assert row(s)["status_reason"] == reason and row(s)["status"] == "FAILED", row(s)


def sim_accounts(s):
    st, _, body = s.sim("GET", "/_sim/accounts")
    assert st == 200, body
    return {a["id"]: a for a in body["items"]}


def reconnect(s):
    """A forced reconnect through the real redirect flow; returns the new account id."""
    st, _, start = s.gw("POST", START, {"force": True})
    assert st == 200 and "redirect_url" in start, start
    st, h, _ = http("GET", start["redirect_url"])
    assert st == 302, h
    st, _, body = http("GET", h["location"] + "&format=json")
    assert st == 200 and body["status"] == "connected", (st, body)
    return body["connected_account_id"]


def test_forced_reconnect_deletes_the_previous_account_at_composio():
    with Stack(mcp=False) as s:
        ca1 = s.connect("alice")
        ca2 = reconnect(s)
        assert ca2 != ca1 and row(s)["composio_account_id"] == ca2, row(s)
        wait_until(lambda: sim_accounts(s)[ca1]["deleted"], 10, "the old account deleted")
        assert not sim_accounts(s)[ca2]["deleted"]
        wait_until(lambda: s.query("SELECT * FROM retired_accounts") == [], 10, "forgotten")
        # Composio is down for the delete: remembered, and retried by the cleanup (which runs
        # at start-up, then periodically)
        fail_next(s, 1, 503, path_prefix="/api/v3/connected_accounts/" + ca2)
        ca3 = reconnect(s)
        assert row(s)["composio_account_id"] == ca3 and row(s)["status"] == "ACTIVE", row(s)
        retired = wait_until(lambda: [r for r in s.query("SELECT * FROM retired_accounts")
                                      if r["attempts"] == 1], 10, "the failed delete noted")
        assert retired[0]["composio_account_id"] == ca2 and retired[0]["user_id"] == "alice" \
            and retired[0]["last_error"], retired
        assert not sim_accounts(s)[ca2]["deleted"] and not sim_accounts(s)[ca3]["deleted"]
        s.restart_gateway()
        wait_until(lambda: sim_accounts(s)[ca2]["deleted"], 10, "the retried delete")
        wait_until(lambda: s.query("SELECT * FROM retired_accounts") == [], 10, "forgotten")
        assert not sim_accounts(s)[ca3]["deleted"] and row(s)["composio_account_id"] == ca3


JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123456789"


def test_jwt_exp_beyond_the_maximum_lifetime_is_refused():
    env = {"TOOLGATE_JWT_SECRET": JWT_SECRET, "TOOLGATE_TRUST_USER_HEADER": "0"}
    with Stack(mcp=False, extra_env=env) as s:
        def get(**kw):
            tok = jwt("alice", JWT_SECRET, **kw)
            return s.gw("GET", "/api/workflows", user=None,
                        headers={"Authorization": "Bearer " + tok})

        now = int(time.time())
        for name, kw in (("exp 1e30", {"exp_in": None, "exp": 1e30}),
                         ("two days", {"exp_in": 2 * 86400}),
                         ("a day and a minute", {"exp_in": 86400 + 60})):
            st, _, body = get(**kw)
            assert st == 401 and "lifetime too long" in body["message"], (name, st, body)
        for name, kw in (("an hour", {"exp_in": 3600}), ("a day", {"exp_in": 86400}),
                         ("a day, a clock 20 s ahead", {"exp_in": None, "exp": now + 86420})):
            st, _, body = get(**kw)
            assert st == 200, (name, st, body)
        # the maximum is configurable (and checked at start-up)
        s.restart_gateway({"TOOLGATE_JWT_MAX_LIFETIME_S": "3600"})
        assert get(exp_in=7200)[0] == 401 and get(exp_in=1800)[0] == 200
        s.restart_gateway({"TOOLGATE_JWT_MAX_LIFETIME_S": str(3 * 86400)})
        assert get(exp_in=2 * 86400)[0] == 200
        r = subprocess.run([os.path.join(BUILD, "toolgate-gateway")], capture_output=True,
                           env=dict(s.env, TOOLGATE_JWT_MAX_LIFETIME_S="0"), timeout=20)
        assert r.returncode != 0 and b"TOOLGATE_JWT_MAX_LIFETIME_S" in r.stdout + r.stderr, r
        r = subprocess.run([os.path.join(BUILD, "toolgate-gateway"), "--help"],
                           capture_output=True, timeout=20)
        assert b"TOOLGATE_JWT_MAX_LIFETIME_S" in r.stdout + r.stderr, r


if __name__ == "__main__":
    main(dict(globals()))
