"""Group commit without per-admission savepoints (gateway/gw_batch.c group_commit): when one
admission of a batch fails with a real database error, the batch is rolled back and done again
with a savepoint each, so only the failing admission loses its writes and every other one is
answered once, with the outcome it would have had alone.

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway). The failure is a trigger the test
creates in the SQLite file (RAISE(ABORT) on the 'bad' user's run_admitted ledger row). A separate
Python process holds the write lock while the requests arrive, so they queue for the database and
are committed in shared batches; the gateway's "admission_batch_redo" log line proves a batch
with more than one admission took the redo path.
"""
import json
import threading

from harness import Stack, main

INPUTS = {"message": "hi", "a": 1, "b": 2}
CREDITS = 1000
GOOD = ["good%d" % i for i in range(5)]
PER_GOOD, PER_BAD, PER_POOR = 4, 3, 2


TRIGGER = ("CREATE TRIGGER inject_bad BEFORE INSERT ON credit_ledger "
           "WHEN NEW.user_id = 'bad' AND NEW.reason = 'run_admitted' "
           "BEGIN SELECT RAISE(ABORT, 'injected'); END")


def log_events(s, event):
    out = []
    for line in s.procs["gateway"].text().splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("event") == event:
            out.append(o)
    return out


def burst(s, wfs, plan):
    """Sends plan [(user, n)] concurrently while another process holds the write lock for 1 s.
    Returns [(user, status, body)]."""
    results, lock = [], threading.Lock()

    def admit(user):
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wfs[user], {"inputs": INPUTS},
                           user=user)
        with lock:
            results.append((user, st, body))
    hold = s.hold_write_lock(1.0)
    try:
        ts = [threading.Thread(target=admit, args=(u,)) for u, n in plan for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
    finally:
        assert hold.wait(10) == 0
        hold.stdout.close()
    return results


def test_failure_in_a_shared_batch_rolls_back_only_its_own_admission():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": str(CREDITS),
                                     "TOOLGATE_RUN_RATE_PER_MIN": "0"}) as s:
        users = GOOD + ["bad", "poor"]
        wfs = {}
        for u in users:
            s.connect(u)
            wfs[u] = s.create_workflow(user=u)
        with s.db() as c:
            c.execute("UPDATE users SET credits = 0 WHERE id = 'poor'")
            c.execute("INSERT INTO credit_ledger (user_id, run_id, delta, reason, created_at) "
                      "VALUES ('poor', NULL, ?, 'test_drain', 0)", (-CREDITS,))
            c.execute(TRIGGER)
        cost = s.gw("GET", "/api/credits", user="good0")[2]["run_cost"]
        plan = [(u, PER_GOOD) for u in GOOD] + [("bad", PER_BAD), ("poor", PER_POOR)]
        results = burst(s, wfs, plan)
        assert len(results) == sum(n for _, n in plan), results

        by_user = {}
        for u, st, body in results:
            by_user.setdefault(u, []).append((st, body))
        for u in GOOD:
            assert all(st == 202 for st, _ in by_user[u]), (u, by_user[u])
        assert all(st == 500 for st, _ in by_user["bad"]), by_user["bad"]
        assert all(st == 402 and b["error"] == "insufficient_credits"
                   for st, b in by_user["poor"]), by_user["poor"]

        # Database: each 202 has exactly its run and its ledger row; nothing for bad or poor.
        for u in GOOD:
            ids = sorted(b["run_id"] for _, b in by_user[u])
            runs = s.query("SELECT id, status, cost FROM workflow_runs WHERE user_id = ?", u)
            assert sorted(r["id"] for r in runs) == ids, (u, runs, ids)
            assert all(r["status"] == "queued" and r["cost"] == cost for r in runs), runs
            debits = s.query("SELECT run_id, delta FROM credit_ledger WHERE user_id = ? AND "
                             "reason = 'run_admitted'", u)
            assert sorted(d["run_id"] for d in debits) == ids, (u, debits)
            assert all(d["delta"] == -cost for d in debits), debits
        for u in ("bad", "poor"):
            assert s.query("SELECT count(*) AS n FROM workflow_runs WHERE user_id = ?",
                           u)[0]["n"] == 0, u
            assert s.query("SELECT count(*) AS n FROM credit_ledger WHERE user_id = ? AND "
                           "reason = 'run_admitted'", u)[0]["n"] == 0, u
        # Credits add up for everyone: balance = grants - debits, and equals the ledger's sum.
        for row in s.query("SELECT u.id, u.credits, (SELECT sum(delta) FROM credit_ledger l "
                           "WHERE l.user_id = u.id) AS ledger FROM users u"):
            assert row["credits"] == row["ledger"], row
        bal = {r["id"]: r["credits"] for r in s.query("SELECT id, credits FROM users")}
        for u in GOOD:
            assert bal[u] == CREDITS - PER_GOOD * cost, (u, bal[u])
        assert bal["bad"] == CREDITS and bal["poor"] == 0, bal

        # One decision log line per request, none twice after a redo.
        decisions = log_events(s, "admission")
        assert len(decisions) == len(results), (len(decisions), len(results))
        queued = sorted(o["run_id"] for o in decisions if o.get("decision") == "queued")
        assert queued == sorted(b["run_id"] for _, st, b in results if st == 202)

        # The path under test was taken: a batch of several was rolled back and redone.
        redo = [o for o in log_events(s, "admission_batch_redo") if o["batch"] > 1]
        print("batches redone: %s" % [(o["batch"], o["user_id"]) for o in redo])
        assert redo, "no shared batch took the redo path: the test proved nothing"
        assert all(o["user_id"] == "bad" for o in redo), redo

        # Without the trigger, the same user is admitted again (the failure was only that).
        with s.db() as c:
            c.execute("DROP TRIGGER inject_bad")
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wfs["bad"], {"inputs": INPUTS},
                           user="bad")
        assert st == 202, (st, body)


if __name__ == "__main__":
    main(dict(globals()))
