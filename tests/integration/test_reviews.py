"""Reviews (HITL): GET /api/reviews, GET /api/reviews/{id}, POST /api/reviews/{id}/decision (422
on a decision not allowed, 409 on a second one, 404 for another user), the run requeued in the
same transaction (or flagged resume_pending while the engine has not parked it yet), expiry by a
worker's sweep (run failed/review_expired), and cancel of a waiting run (refund, review
canceled).

Waiting runs are set up with SQL where the engine would park them; test_hitl_end_to_end runs a
HITL node through a worker and skips while the engine cannot run one yet.
"""
import json
import time

from harness import Stack, main, wait_until

INPUTS = {"message": "hi", "a": 1, "b": 2}


def admit(s, wf, user="alice"):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS}, user=user)
    assert st == 202, (st, body)
    return body["run_id"]


def park(s, run_id, review_id, node="7", expires_at=None, decisions=("approve", "reject"),
         status="waiting"):
    """What the engine and the HITL executor write: the run parked, a pending review."""
    now = int(time.time() * 1000)
    with s.db() as c:
        c.execute("UPDATE workflow_runs SET status=?, attempt=1, claimed_by=NULL, "
                  "lease_expires_at=NULL, started_at=? WHERE id=?",
                  (status, now, run_id) if status == "waiting" else (status, now, run_id))
        if status == "running":
            c.execute("UPDATE workflow_runs SET claimed_by='w', lease_expires_at=? WHERE id=?",
                      (now + 600000, run_id))
        user = c.execute("SELECT user_id FROM workflow_runs WHERE id=?", (run_id,)).fetchone()[0]
        c.execute("INSERT INTO reviews (id, run_id, node_id, user_id, title, priority, message, "
                  "allowed_decisions, status, created_at, expires_at) VALUES "
                  "(?, ?, ?, ?, 'Final approval', 'high', 'Check it', ?, 'pending', ?, ?)",
                  (review_id, run_id, node, user, json.dumps(list(decisions)), now, expires_at))


def test_list_get_decide():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        r1, r2 = admit(s, wf), admit(s, wf)
        park(s, r1, "rev_one", decisions=("approve", "request_revisions"))
        park(s, r2, "rev_two")
        st, _, body = s.gw("GET", "/api/runs?status=waiting")
        assert st == 200 and sorted(r["id"] for r in body["runs"]) == sorted([r1, r2]), body
        st, _, run = s.gw("GET", "/api/runs/" + r1)
        assert run["status"] == "waiting", run
        st, _, body = s.gw("GET", "/api/reviews?status=pending")
        assert st == 200 and [r["id"] for r in body["reviews"]] in (["rev_two", "rev_one"],
                                                                  ["rev_one", "rev_two"]), body
        st, _, page = s.gw("GET", "/api/reviews?limit=1")
        assert st == 200 and len(page["reviews"]) == 1 and page["next_cursor"], page
        st, _, page2 = s.gw("GET", "/api/reviews?limit=1&cursor=" + page["next_cursor"])
        assert st == 200 and len(page2["reviews"]) == 1 and page2["next_cursor"] is None, page2
        assert page2["reviews"][0]["id"] != page["reviews"][0]["id"]
        st, _, rv = s.gw("GET", "/api/reviews/rev_one")
        assert st == 200, rv
        assert set(rv) == {"id", "run_id", "node_id", "title", "priority", "message",
                           "allowed_decisions", "status", "decision", "comment", "created_at",
                           "decided_at", "expires_at"}, rv
        assert rv["allowed_decisions"] == ["approve", "request_revisions"] and \
            rv["status"] == "pending" and rv["run_id"] == r1, rv
        for user in ("bob",):
            assert s.gw("GET", "/api/reviews/rev_one", user=user)[0] == 404
            st, _, body = s.gw("POST", "/api/reviews/rev_one/decision", {"decision": "approve"},
                               user=user)
            assert st == 404, body
        st, _, body = s.gw("GET", "/api/reviews", user="bob")
        assert st == 200 and body["reviews"] == [], body
        st, _, body = s.gw("POST", "/api/reviews/rev_one/decision", {"decision": "reject"})
        assert st == 422 and body["error"] == "decision_not_allowed", body
        for bad in ({}, {"decision": 3}, {"decision": "approve", "comment": 5}):
            st, _, body = s.gw("POST", "/api/reviews/rev_one/decision", bad)
            assert st == 400, (bad, body)
        assert s.query("SELECT status FROM workflow_runs WHERE id=?", r1)[0]["status"] == "waiting"
        st, _, rv = s.gw("POST", "/api/reviews/rev_one/decision",
                         {"decision": "request_revisions", "comment": "more detail"})
        assert st == 200 and rv["status"] == "decided" and rv["decision"] == "request_revisions" \
            and rv["comment"] == "more detail" and rv["decided_at"], rv
        run = s.query("SELECT status, available_at, claimed_by FROM workflow_runs WHERE id=?", r1)[0]
        assert run["status"] == "queued" and run["claimed_by"] is None, run
        st, _, body = s.gw("POST", "/api/reviews/rev_one/decision", {"decision": "approve"})
        assert st == 409 and body["error"] == "review_closed", body
        st, _, body = s.gw("GET", "/api/reviews?status=decided")
        assert [r["id"] for r in body["reviews"]] == ["rev_one"], body
        st, _, body = s.gw("GET", "/api/reviews?status=nope")
        assert st == 400, body
        assert s.gw("GET", "/api/reviews/rev_nope")[0] == 404


def test_decision_before_park_requeues_at_park():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        r = admit(s, wf)
        park(s, r, "rev_race", status="running")
        st, _, rv = s.gw("POST", "/api/reviews/rev_race/decision", {"decision": "approve"})
        assert st == 200 and rv["status"] == "decided", rv
        row = s.query("SELECT status, metadata FROM workflow_runs WHERE id=?", r)[0]
        assert row["status"] == "running" and json.loads(row["metadata"])["resume_pending"], row


def test_cancel_waiting_run():
    with Stack(mcp=False, extra_env={"TOOLGATE_RUN_COST": "2"}) as s:
        s.connect("alice")
        wf = s.create_workflow()
        r = admit(s, wf)
        before = s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"]
        park(s, r, "rev_cancel")
        st, _, body = s.gw("POST", "/api/runs/%s/cancel" % r)
        assert st == 200 and body == {"run_id": r, "status": "canceled", "refunded": 2}, body
        assert s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"] == before + 2
        st, _, rv = s.gw("GET", "/api/reviews/rev_cancel")
        assert rv["status"] == "canceled", rv
        st, _, body = s.gw("POST", "/api/reviews/rev_cancel/decision", {"decision": "approve"})
        assert st == 409, body
        ev = s.gw("GET", "/api/runs/%s/events" % r)[2]["events"]
        assert ev[-1]["type"] == "run_finished" and ev[-1]["data"] == {"status": "canceled"}, ev


def test_expiry_by_worker():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        r_old, r_new = admit(s, wf), admit(s, wf)
        now = int(time.time() * 1000)
        park(s, r_old, "rev_old", node="hitl_1", expires_at=now - 1000)
        park(s, r_new, "rev_new", expires_at=now + 3600 * 1000)
        s.start_worker()
        run = s.wait_run(r_old, timeout=20)
        assert run["status"] == "failed" and run["error_class"] == "review_expired" and \
            "hitl_1" in run["error"], run
        assert s.gw("GET", "/api/reviews/rev_old")[2]["status"] == "expired"
        ev = s.gw("GET", "/api/runs/%s/events" % r_old)[2]["events"]
        assert ev[-1]["type"] == "run_finished" and ev[-1]["data"] == {"status": "failed"}, ev
        assert s.gw("GET", "/api/reviews/rev_new")[2]["status"] == "pending"
        assert s.gw("GET", "/api/runs/" + r_new)[2]["status"] == "waiting"
        wait_until(lambda: "review_expired" in s.procs["worker-0"].text(), 10, "expiry logged")


HITL_WORKFLOW = {
    "title": "approval", "description": "Start -> HITL -> End",
    "nodes": [
        {"id": 1, "type": "Start", "name": "Start", "config": {"inputVariables": []}},
        {"id": 2, "type": "HITL", "name": "Approve",
         "config": {"reviewTitle": "Approve", "priority": "high", "message": "ok?",
                    "allowedDecisions": ["approve", "request_revisions"]}},
        {"id": 3, "type": "End", "name": "End",
         "config": {"outputVariables": [{"name": "decision", "type": "string"}]}},
    ],
    "connections": [{"id": 1, "from": 1, "to": 2}, {"id": 2, "from": 2, "to": 3}],
}


def test_hitl_end_to_end():
    """Start -> HITL -> End through a worker: waiting, a decision, succeeded with the decision."""
    with Stack(mcp=False) as s:
        st, _, body = s.gw("POST", "/api/workflows", {"name": "hitl", "definition": HITL_WORKFLOW})
        assert st == 201, (st, body)
        r = admit(s, body["id"])
        s.start_worker()
        run = s.wait_run(r, timeout=30, final=("waiting", "succeeded", "failed", "attention"))
        assert run["status"] == "waiting", run
        st, _, body = s.gw("GET", "/api/reviews?status=pending")
        assert len(body["reviews"]) == 1 and body["reviews"][0]["run_id"] == r, body
        rv = body["reviews"][0]
        assert rv["node_id"] == "2" and rv["title"] == "Approve", rv
        assert s.query("SELECT claimed_by FROM workflow_runs WHERE id=?", r)[0]["claimed_by"] \
            is None
        st, _, _ = s.gw("POST", "/api/reviews/%s/decision" % rv["id"], {"decision": "approve"})
        assert st == 200
        run = s.wait_run(r, timeout=30)
        assert run["status"] == "succeeded" and run["output"]["decision"] == "approve", run


if __name__ == "__main__":
    main(globals())
