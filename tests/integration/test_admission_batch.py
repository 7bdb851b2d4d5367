"""Admission checks of DIFFERENT users sharing one Composio list call (gateway/gw_checkpool.c).

Checks of several users that become ready in the same event-loop iteration share ONE fetch:
GET /api/v3/connected_accounts?user_ids=u1,u2,...; each admission still decides over its own
rows (accounts matched by id), so one user's account state never answers for another, the
fallback to per-account GETs covers every user of a failed shared call, a 429 on it answers
every waiter 503 and starts the back-off, and a check that arrives while its user's shared call
is in flight waits for the next call (fresh answers only).

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway, fresh SQLite file per test). The
simulator's /_sim/stats counts the Composio calls the gateway really made.

Making "ready in the same iteration" deterministic: the gateway loads admissions from SQLite in
batches (gateway/gw_admit.c: one LOAD job at a time takes everything queued meanwhile, and its
completion continues them all in one callback). gated_burst() holds SQLite's write lock from
this process, sends one admission of a new user (its LOAD must insert the user, so it waits for
the lock), then the burst; every request of the burst queues behind that LOAD. Releasing the
lock lets one LOAD job take the whole burst, so all its checks become ready together.
"""
import json
import socket
import sqlite3
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


def send_all(s, reqs, timeout=20):
    """reqs: [(user, workflow_id)]. Opens every connection, then writes every request
    (Connection: close). Returns the sockets, in order."""
    socks = [socket.create_connection(("127.0.0.1", s.gw_port), timeout=timeout) for _ in reqs]
    try:
        for sk, (user, wf) in zip(socks, reqs):
            body = json.dumps({"inputs": INPUTS}).encode()
            sk.sendall(("POST /api/workflows/%s/run HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "X-User-Id: %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n\r\n"
                        % (wf, user, len(body))).encode() + body)
    except BaseException:
        for sk in socks:
            sk.close()
        raise
    return socks


def read_all(socks):
    """Each socket's answer, read to EOF: [(status, headers, body)]; closes the sockets."""
    out = []
    try:
        for sk in socks:
            raw = b""
            while True:
                chunk = sk.recv(65536)
                if not chunk:
                    break
                raw += chunk
            out.append(_parse(raw))
    finally:
        for sk in socks:
            sk.close()
    return out


def burst(s, reqs):
    return read_all(send_all(s, reqs))


_gates = [0]


def gated_burst(s, reqs):
    """Like burst(), but every admission of reqs is loaded by one LOAD job (see the module
    docstring), so their checks are submitted in the same loop iteration."""
    _gates[0] += 1
    lock = sqlite3.connect(s.db_path, isolation_level=None, timeout=10)
    try:
        lock.execute("BEGIN IMMEDIATE")
        gate = send_all(s, [("gate-%d" % _gates[0], "wf_none")])
        time.sleep(0.15)   # the gate's LOAD job is waiting for the lock
        socks = send_all(s, reqs)
        time.sleep(0.3)    # every request of the burst is read and queued behind it
        lock.execute("ROLLBACK")
    finally:
        lock.close()
    st = read_all(gate)[0][0]
    assert st == 404, st  # the gate: a new user without that workflow
    return read_all(socks)


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
        m0 = s.metrics()
        before = sim_stats(s)
        s.sim("POST", "/_sim/latency", {"ms": 150})
        res = gated_burst(s, [(u, wfs[u]) for u in users])
        s.sim("POST", "/_sim/latency", {"ms": 0})
        # one list call for all of them (one admission per user, so only a call shared by
        # several users can do that), yet each answer is about that user's own account
        check_answers(users, res, EXPIRED)
        after = sim_stats(s)
        assert after["list"] - before["list"] == 1, (before, after)
        assert after["get"] == before["get"], "every account was in the shared list answer"
        m = s.metrics()
        started = m["toolgate_composio_list_calls_total"] - m0["toolgate_composio_list_calls_total"]
        saved = (m["toolgate_composio_calls_saved_total"] -
                 m0["toolgate_composio_calls_saved_total"])
        assert started == 1 and saved == len(users) - 1, (started, saved)
        # statuses written back per user: EXPIRED only where that user's account expired
        for u in users:
            row = s.query("SELECT status, last_checked_at FROM connected_accounts WHERE "
                          "user_id=?", u)[0]
            assert row["status"] == ("EXPIRED" if u in EXPIRED else "ACTIVE"), (u, row)
            assert row["last_checked_at"], (u, row)
        n_runs = s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"]
        assert n_runs == len(users) - len(EXPIRED), n_runs
        # without the gate, admissions still batch whenever their checks meet in an iteration
        # (how often depends on timing, so only correctness is asserted); our rows say EXPIRED
        # now, which would keep those providers out of scope: make them ACTIVE again first
        s.query("UPDATE connected_accounts SET status='ACTIVE'")
        check_answers(users, burst(s, [(u, wfs[u]) for u in users]), EXPIRED)


def test_at_most_32_users_per_call():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100"}) as s:
        users, wfs = setup_users(s, 40)
        before = sim_stats(s)
        res = gated_burst(s, [(u, wfs[u]) for u in users])
        check_answers(users, res, set())
        after = sim_stats(s)
        assert after["list"] - before["list"] == 2, (before, after)  # 32 + 8
        assert after["get"] == before["get"], after


def test_shared_list_failure_falls_back_for_every_user():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100"}) as s:
        users, wfs = setup_users(s)
        expired = {"u02", "u03", "u10"}
        for u in expired:
            set_sim_status(s, u, "EXPIRED")
        # 1. The shared list call fails (500): one GET per account it asked about, i.e. for
        # every user, and those answer: right answers for everyone, from the GETs
        before = sim_stats(s)
        s.sim("POST", "/_sim/fail", {"count": 1, "status": 500})
        res = gated_burst(s, [(u, wfs[u]) for u in users])
        after = sim_stats(s)
        check_answers(users, res, expired)
        assert after["list"] - before["list"] == 1, (before, after)
        assert after["get"] - before["get"] == len(users), (before, after)
        for u in users:
            row = s.query("SELECT status FROM connected_accounts WHERE user_id=?", u)[0]
            assert row["status"] == ("EXPIRED" if u in expired else "ACTIVE"), (u, row)
        # 2. Composio fails every call: the list, then every user's GET; every admission 503
        for u in expired:  # our rows say EXPIRED now: make them ACTIVE again so all are asked
            s.query("UPDATE connected_accounts SET status='ACTIVE' WHERE user_id=?", u)
        before = sim_stats(s)
        s.sim("POST", "/_sim/fail", {"count": 1000, "status": 500})
        res = gated_burst(s, [(u, wfs[u]) for u in users])
        s.sim("POST", "/_sim/fail", {"count": 0, "status": 500})
        after = sim_stats(s)
        for u, (st, h, body) in zip(users, res):
            assert st == 503 and body["error"] == "composio_unavailable", (u, st, body)
            assert int(h["retry-after"]) >= 1, (u, h)
        assert after["list"] - before["list"] == 1, (before, after)
        assert after["get"] - before["get"] == len(users), (before, after)


def test_shared_call_rate_limited_answers_every_waiter():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100"}) as s:
        users, wfs = setup_users(s)
        before = sim_stats(s)
        s.sim("POST", "/_sim/fail", {"count": 1, "status": 429, "retry_after": 2})
        res = gated_burst(s, [(u, wfs[u]) for u in users])
        after = sim_stats(s)
        # the shared call got 429: every waiter 503 with its Retry-After, no per-account GET
        for u, (st, h, body) in zip(users, res):
            assert st == 503 and body["error"] == "composio_unavailable", (u, st, body)
            assert 1 <= int(h["retry-after"]) <= 2, (u, h)
        assert after["get"] == before["get"], "no per-account GETs while rate limited"
        assert after["list"] - before["list"] == 1, (before, after)
        assert s.metrics()["toolgate_composio_rate_limited_total"] == 1
        # the back-off is honoured: 503 at once, no call at all
        res = burst(s, [(u, wfs[u]) for u in users[:4]])
        assert all(r[0] == 503 and 1 <= int(r[1]["retry-after"]) <= 2 for r in res), res
        assert sim_stats(s) == after
        time.sleep(2.1)
        res = gated_burst(s, [(u, wfs[u]) for u in users])
        check_answers(users, res, set())
        assert sim_stats(s)["list"] - after["list"] == 1


def test_check_during_shared_call_waits_for_the_next():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100"}) as s:
        users, wfs = setup_users(s, 12)
        target = "u07"
        before = sim_stats(s)
        s.sim("POST", "/_sim/latency", {"ms": 500})
        first = {}
        t = threading.Thread(target=lambda: first.update(
            r=gated_burst(s, [(u, wfs[u]) for u in users])))
        t.start()
        # once the shared call is at the simulator (its answer is fixed), target's account
        # expires; then target and three others admit again while that call is in flight
        wait_list_started(s, before)
        set_sim_status(s, target, "EXPIRED")
        again = [target, "u00", "u03", "u11"]
        second = burst(s, [(u, wfs[u]) for u in again])
        t.join(15)
        s.sim("POST", "/_sim/latency", {"ms": 0})
        # the first answers predate the change; the second ones were asked after it, waited
        # for the next call (one, shared by the four users) and say so
        check_answers(users, first["r"], set())
        check_answers(again, second, {target})
        assert sim_stats(s)["list"] - before["list"] == 2


if __name__ == "__main__":
    main(dict(globals()))
