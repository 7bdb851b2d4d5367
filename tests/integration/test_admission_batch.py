"""Admission checks of DIFFERENT users sharing one Composio list call (gateway/gw_checkpool.c).

Checks of several users that become ready in the same event-loop iteration share ONE fetch:
GET /api/v3/connected_accounts?user_ids=u1,u2,...; each admission still decides over its own
rows (accounts matched by id), so one user's account state never answers for another, the
fallback to per-account GETs covers every user of a failed shared call, a 429 on it answers
every waiter 503 and starts the back-off, and a check that arrives while its user's shared call
is in flight waits for the next call (fresh answers only).

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway, fresh SQLite file per test). The
admissions of a round go out as one burst: every connection is opened first, then every request
is written, so the gateway reads them (and their database loads finish) close together. The
simulator's /_sim/stats counts the Composio calls the gateway really made.
"""
import json
import socket
import threading
import time

from harness import PROVIDER, Stack, main

INPUTS = {"message": "hi", "a": 1, "b": 2}
N_USERS = 14
EXPIRED = {"u01", "u04", "u05", "u09", "u12"}  # accounts EXPIRED at Composio in test (a)


def sim_stats(s):
    st, _, body = s.sim("GET", "/_sim/stats")
    assert st == 200, body
    return body["by_route"]


def metrics(s):
    st, _, text = s.gw("GET", "/metrics", user=None)
    assert st == 200, st
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def account_id(s, user):
    return s.query("SELECT composio_account_id FROM connected_accounts WHERE user_id=?",
                   user)[0]["composio_account_id"]


def set_sim_status(s, user, status):
    st, _, body = s.sim("PATCH", "/_sim/accounts/" + account_id(s, user), {"status": status})
    assert st == 200, body


def setup_users(s, n=N_USERS):
    """n users, each with an ACTIVE account (the real connect flow) and a workflow."""
    users = ["u%02d" % i for i in range(n)]
    wfs = {}
    for u in users:
        s.connect(u)
        wfs[u] = s.create_workflow(user=u)
    return users, wfs


def _parse(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = body.decode("utf-8", "replace")
    return status, headers, payload


def burst(s, reqs, timeout=20):
    """reqs: [(user, workflow_id)]. Opens every connection, then writes every request, then
    reads each answer (Connection: close). Returns [(status, headers, body)] in order."""
    socks = [socket.create_connection(("127.0.0.1", s.gw_port), timeout=timeout) for _ in reqs]
    try:
        wire = []
        for user, wf in reqs:
            body = json.dumps({"inputs": INPUTS}).encode()
            wire.append(("POST /api/workflows/%s/run HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "X-User-Id: %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\nConnection: close\r\n\r\n"
                         % (wf, user, len(body))).encode() + body)
        for sk, data in zip(socks, wire):
            sk.sendall(data)
        out = []
        for sk in socks:
            raw = b""
            while True:
                chunk = sk.recv(65536)
                if not chunk:
                    break
                raw += chunk
            out.append(_parse(raw))
        return out
    finally:
        for sk in socks:
            sk.close()


def wait_list_started(s, before, timeout=5):
    """Until the simulator has seen a list call beyond before (its answer is fixed from then)."""
    deadline = time.monotonic() + timeout
    while sim_stats(s)["list"] == before["list"] and time.monotonic() < deadline:
        time.sleep(0.005)
    assert sim_stats(s)["list"] > before["list"], "no list call reached the simulator"


def expect(user, expired):
    return 409 if user in expired else 202


def check_answers(users, res, expired):
    for u, (st, _, body) in zip(users, res):
        assert st == expect(u, expired), (u, st, body)
        if st == 409:
            # only this user's own provider, for its own account's state
            assert body["providers"] == [PROVIDER], (u, body)
            assert body["reasons"] == {PROVIDER: "connected_account_status=EXPIRED"}, (u, body)
        else:
            assert body["status"] == "queued", (u, body)


def test_users_share_a_list_call_without_cross_talk():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100"}) as s:
        users, wfs = setup_users(s)
        for u in EXPIRED:
            set_sim_status(s, u, "EXPIRED")
        m0 = metrics(s)
        before = sim_stats(s)
        s.sim("POST", "/_sim/latency", {"ms": 150})
        res = burst(s, [(u, wfs[u]) for u in users])
        s.sim("POST", "/_sim/latency", {"ms": 0})
        check_answers(users, res, EXPIRED)
        after = sim_stats(s)
        lists = after["list"] - before["list"]
        # one admission per user: only calls shared by several users can make lists < users
        print("shared: %d list calls for %d users" % (lists, len(users)))
        assert 1 <= lists < len(users), "%d list calls for %d users" % (lists, len(users))
        assert after["get"] == before["get"], "every account was in its shared list answer"
        m = metrics(s)
        started = m["toolgate_composio_list_calls_total"] - m0["toolgate_composio_list_calls_total"]
        saved = (m["toolgate_composio_calls_saved_total"] -
                 m0["toolgate_composio_calls_saved_total"])
        assert started == lists and saved == len(users) - lists, (started, saved, lists)
        # statuses written back per user: EXPIRED only where that user's account expired
        for u in users:
            row = s.query("SELECT status, last_checked_at FROM connected_accounts WHERE "
                          "user_id=?", u)[0]
            assert row["status"] == ("EXPIRED" if u in EXPIRED else "ACTIVE"), (u, row)
            assert row["last_checked_at"], (u, row)
        n_runs = s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"]
        assert n_runs == len(users) - len(EXPIRED), n_runs


def test_shared_list_failure_falls_back_for_every_user():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100"}) as s:
        users, wfs = setup_users(s)
        expired = {"u02", "u03", "u10"}
        for u in expired:
            set_sim_status(s, u, "EXPIRED")
        # 1. Composio fails every call (500): each shared list call is followed by a GET for
        # every account it asked about, i.e. one per user, then every admission is a 503.
        before = sim_stats(s)
        s.sim("POST", "/_sim/fail", {"count": 1000, "status": 500})
        res = burst(s, [(u, wfs[u]) for u in users])
        s.sim("POST", "/_sim/fail", {"count": 0, "status": 500})
        after = sim_stats(s)
        lists, gets = after["list"] - before["list"], after["get"] - before["get"]
        for u, (st, h, body) in zip(users, res):
            assert st == 503 and body["error"] == "composio_unavailable", (u, st, body)
            assert int(h["retry-after"]) >= 1, (u, h)
        assert lists < len(users), "the list calls were not shared: %d" % lists
        assert gets == len(users), "one GET per user's account after its failed list: %d" % gets
        # 2. Only the first list call fails: the accounts it asked about are answered by GETs,
        # the others by their list calls; every answer is right either way
        before = after
        s.sim("POST", "/_sim/fail", {"count": 1, "status": 500})
        res = burst(s, [(u, wfs[u]) for u in users])
        after = sim_stats(s)
        gets = after["get"] - before["get"]
        check_answers(users, res, expired)
        assert 1 <= gets <= len(users), gets  # the failed call's users only
        for u in users:
            row = s.query("SELECT status FROM connected_accounts WHERE user_id=?", u)[0]
            assert row["status"] == ("EXPIRED" if u in expired else "ACTIVE"), (u, row)


def test_shared_call_rate_limited_answers_every_waiter():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100"}) as s:
        users, wfs = setup_users(s)
        before = sim_stats(s)
        s.sim("POST", "/_sim/fail", {"count": 1000, "status": 429, "retry_after": 2})
        res = burst(s, [(u, wfs[u]) for u in users])
        after = sim_stats(s)
        s.sim("POST", "/_sim/fail", {"count": 0, "status": 429})
        # the shared call(s) got 429: every waiter 503 with Retry-After, no per-account GET
        for u, (st, h, body) in zip(users, res):
            assert st == 503 and body["error"] == "composio_unavailable", (u, st, body)
            assert 1 <= int(h["retry-after"]) <= 2, (u, h)
        assert after["get"] == before["get"], "no per-account GETs while rate limited"
        assert 1 <= after["list"] - before["list"] < len(users), after
        assert metrics(s)["toolgate_composio_rate_limited_total"] >= 1
        # the back-off is honoured: 503 at once, no call at all
        res = burst(s, [(u, wfs[u]) for u in users[:4]])
        assert all(r[0] == 503 and 1 <= int(r[1]["retry-after"]) <= 2 for r in res), res
        assert sim_stats(s) == after
        time.sleep(2.1)
        res = burst(s, [(u, wfs[u]) for u in users])
        check_answers(users, res, set())


def test_check_during_shared_call_waits_for_the_next():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100"}) as s:
        users, wfs = setup_users(s, 12)
        target = "u07"
        before = sim_stats(s)
        s.sim("POST", "/_sim/latency", {"ms": 500})
        first = {}
        t = threading.Thread(target=lambda: first.update(
            r=burst(s, [(u, wfs[u]) for u in users])))
        t.start()
        # once the first shared call is at the simulator (its answer is fixed), target's account
        # expires; then target and three others admit again while that call is in flight
        wait_list_started(s, before)
        set_sim_status(s, target, "EXPIRED")
        again = [target, "u00", "u03", "u11"]
        second = burst(s, [(u, wfs[u]) for u in again])
        t.join(15)
        s.sim("POST", "/_sim/latency", {"ms": 0})
        # every first answer predates the change (or saw it, if its call started later: then
        # only target can differ); the second answers were all asked after it
        for u, (st, _, body) in zip(users, first["r"]):
            assert st in ((202, 409) if u == target else (202,)), (u, st, body)
        check_answers(again, second, {target})
        assert sim_stats(s)["list"] - before["list"] >= 2


if __name__ == "__main__":
    main(dict(globals()))
