"""The run API around admission: listing with filters and cursor paging, one run, its tool
executions, cancel (queued: refund; running: cancel_requested), retry (failed/attention through
admission again, once; else 409), and GET /api/credits.

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway, no worker: runs stay queued unless
a test moves them, as a worker would, with SQL).
"""
from harness import PROVIDER, Stack, main

INPUTS = {"message": "hi", "a": 1, "b": 2}


def admit(s, wf, user="alice", **kw):
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, dict({"inputs": INPUTS}, **kw),
                       user=user)
    assert st == 202, (st, body)
    return body["run_id"]


def balance_matches_ledger(s, user):
    credits = s.query("SELECT credits FROM users WHERE id=?", user)[0]["credits"]
    total = s.query("SELECT sum(delta) AS t FROM credit_ledger WHERE user_id=?", user)[0]["t"]
    assert credits == total, (credits, total)
    return credits


def test_list_filters_and_cursor_paging():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "20"}) as s:
        s.connect("alice")
        wf1 = s.create_workflow()
        wf2 = s.create_workflow()
        ids = [admit(s, wf1) for _ in range(5)] + [admit(s, wf2) for _ in range(2)]
        s.query("UPDATE workflow_runs SET status='failed' WHERE id=?", ids[0])
        seen, cursor, pages = [], None, 0
        while True:
            q = "/api/runs?limit=3&workflow_id=" + wf1 + ("&cursor=" + cursor if cursor else "")
            st, _, body = s.gw("GET", q)
            assert st == 200, body
            pages += 1
            seen += [r["id"] for r in body["runs"]]
            assert all(r["workflow_id"] == wf1 for r in body["runs"]), body
            cursor = body["next_cursor"]
            if not cursor:
                break
            ids.append(admit(s, wf1))  # new runs arriving meanwhile do not shift the pages
        assert pages == 2 and sorted(seen) == sorted(ids[:5]), (pages, seen)
        st, _, body = s.gw("GET", "/api/runs?status=failed")
        assert [r["id"] for r in body["runs"]] == [ids[0]], body
        st, _, body = s.gw("GET", "/api/runs")
        assert len(body["runs"]) == len(ids) == 8 and body["next_cursor"] is None, body
        assert "retry_of" not in body["runs"][0]["metadata"], body
        times = [r["created_at"] for r in body["runs"]]
        assert times == sorted(times, reverse=True), times
        st, _, body = s.gw("GET", "/api/runs", user="bob")
        assert st == 200 and body["runs"] == [], body
        for bad in ("status=nope", "limit=0", "limit=x", "cursor=garbage"):
            st, _, body = s.gw("GET", "/api/runs?" + bad)
            assert st == 400 and body["error"] == "invalid_request", (bad, body)
        st, _, run = s.gw("GET", "/api/runs/" + ids[1])
        assert st == 200 and run["inputs"] == INPUTS and run["cancel_requested"] == 0, run
        st, _, body = s.gw("GET", "/api/runs/%s/tool-executions" % ids[1])
        assert st == 200 and body == {"tool_executions": []}, body
        for path in ("/api/runs/run_nope", "/api/runs/run_nope/tool-executions"):
            assert s.gw("GET", path)[0] == 404
        assert s.gw("GET", "/api/runs/" + ids[1], user="bob")[0] == 404


def test_cancel_queued_refunds_and_running_requests():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "5",
                                     "TOOLGATE_RUN_COST": "2"}) as s:
        s.connect("alice")
        wf = s.create_workflow()
        queued, running, done = admit(s, wf), admit(s, wf), None
        assert balance_matches_ledger(s, "alice") == 1
        st, _, body = s.gw("POST", "/api/runs/%s/cancel" % queued, user="bob")
        assert st == 404, body
        st, _, body = s.gw("POST", "/api/runs/%s/cancel" % queued)
        assert st == 200 and body == {"run_id": queued, "status": "canceled", "refunded": 2}, body
        st, _, body = s.gw("POST", "/api/runs/%s/cancel" % queued)  # again: no second refund
        assert st == 200 and body["refunded"] == 0, body
        assert balance_matches_ledger(s, "alice") == 3
        refund = s.query("SELECT delta FROM credit_ledger WHERE run_id=? AND reason='run_refund'",
                         queued)
        assert refund == [{"delta": 2}], refund
        # a worker claimed the other one
        s.query("UPDATE workflow_runs SET status='running', claimed_by='w', attempt=1 WHERE id=?",
                running)
        st, _, body = s.gw("POST", "/api/runs/%s/cancel" % running)
        assert st == 200 and body["status"] == "running" and body["cancel_requested"], body
        st, _, run = s.gw("GET", "/api/runs/" + running)
        assert run["status"] == "running" and run["cancel_requested"] == 1, run
        assert balance_matches_ledger(s, "alice") == 3  # the worker decides when it stops
        done = admit(s, wf)
        s.query("UPDATE workflow_runs SET status='succeeded' WHERE id=?", done)
        st, _, body = s.gw("POST", "/api/runs/%s/cancel" % done)
        assert st == 409 and body["error"] == "run_not_cancelable", body
        st, _, body = s.gw("GET", "/api/credits")
        assert st == 200 and body["credits"] == 1 and body["run_cost"] == 2, body
        reasons = [r["reason"] for r in body["ledger"]]
        assert reasons == ["run_admitted", "run_refund", "run_admitted", "run_admitted",
                           "grant"], reasons
        st, _, body = s.gw("GET", "/api/credits?limit=1")
        assert len(body["ledger"]) == 1, body
        assert s.gw("GET", "/api/credits?limit=500")[0] == 400
        st, _, body = s.gw("GET", "/api/credits", user="carol")  # first sight: the grant
        assert body["credits"] == 5 and [r["reason"] for r in body["ledger"]] == ["grant"], body


def test_retry_goes_through_admission_once():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "10"}) as s:
        s.connect("alice")
        wf = s.create_workflow()
        tc = {"providers": [PROVIDER]}
        failed, queued = admit(s, wf, tool_constraints=tc), admit(s, wf)
        s.query("UPDATE workflow_runs SET status='failed' WHERE id=?", failed)
        st, _, body = s.gw("POST", "/api/runs/%s/retry" % queued)
        assert st == 409 and body["error"] == "run_not_retryable", body
        assert s.gw("POST", "/api/runs/%s/retry" % failed, user="bob")[0] == 404
        assert s.gw("POST", "/api/runs/run_nope/retry")[0] == 404
        # blocked at Composio: 409 with the providers, the failed run stays retryable
        acct = s.query("SELECT composio_account_id FROM connected_accounts")[0]
        s.sim("PATCH", "/_sim/accounts/" + acct["composio_account_id"], {"status": "EXPIRED"})
        st, _, body = s.gw("POST", "/api/runs/%s/retry" % failed)
        assert st == 409 and body["error"] == "oauth_refresh_required", body
        s.query("UPDATE connected_accounts SET status='ACTIVE'")
        s.sim("PATCH", "/_sim/accounts/" + acct["composio_account_id"], {"status": "ACTIVE"})
        st, _, body = s.gw("POST", "/api/runs/%s/retry" % failed)
        assert st == 202 and body["retry_of"] == failed and body["run_id"] != failed, body
        st, _, run = s.gw("GET", "/api/runs/" + body["run_id"])
        assert run["inputs"] == INPUTS and run["metadata"]["retry_of"] == failed, run
        assert run["metadata"]["tool_constraints"] == tc, run
        st, _, old = s.gw("GET", "/api/runs/" + failed)
        assert old["metadata"]["retried_by"] == body["run_id"], old
        st, _, again = s.gw("POST", "/api/runs/%s/retry" % failed)
        assert st == 409 and again["retried_by"] == body["run_id"], again
        # attention runs too
        s.query("UPDATE workflow_runs SET status='attention' WHERE id=?", queued)
        st, _, body = s.gw("POST", "/api/runs/%s/retry" % queued)
        assert st == 202, body
        assert balance_matches_ledger(s, "alice") == 6
        assert len(s.query("SELECT * FROM workflow_runs")) == 4


if __name__ == "__main__":
    main(dict(globals()))
