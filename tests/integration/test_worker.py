"""The worker's lease rules, end to end (DESIGN.md section 5): heartbeats keep a long call's
lease while a second worker polls; a lost lease stops the run without writing more; SIGTERM
releases unfinished runs (calls in flight become 'unknown') and the worker exits 0.

Real simulator, MCP reference server, gateway and workers on 127.0.0.1, fresh SQLite file.
"""
import json
import time

from harness import PROVIDER, Stack, main, wait_until

LONG = {
    "title": "long",
    "nodes": [
        {"id": "start", "type": "Start", "name": "Start", "config": {}},
        # The reference server sleeps `duration` seconds, sending progress.
        {"id": "slow", "type": "MCP", "name": "Slow",
         "config": {"provider": PROVIDER, "tool": "trigger-long-running-operation",
                    "arguments": {"duration": 4, "steps": 2}}},
        {"id": "end", "type": "End", "name": "End",
         "config": {"outputVariables": {"said": "{{nodes.slow.output.content.0.text}}"}}},
    ],
    "connections": [{"id": "c1", "from": "start", "to": "slow"},
                    {"id": "c2", "from": "slow", "to": "end"}],
}


def admit(s, definition):
    wf = s.create_workflow(definition)
    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {}})
    assert st == 202, (st, body)
    return body["run_id"]


def run_row(s, run_id):
    return s.query("SELECT * FROM workflow_runs WHERE id=?", run_id)[0]


def test_heartbeat_keeps_lease_against_a_second_worker():
    with Stack(extra_env={"TOOLGATE_LEASE_MS": "900"}) as s:
        s.connect("alice")
        run_id = admit(s, LONG)
        s.start_worker()
        s.start_worker()
        run = s.wait_run(run_id, timeout=30)
        assert run["status"] == "succeeded", run
        row = run_row(s, run_id)
        assert row["attempt"] == 1, row  # never reclaimed although the call outlived 4 leases
        assert row["lease_expires_at"] is None, row
        ex = s.query("SELECT status, attempt FROM tool_executions WHERE run_id=?", run_id)
        assert ex == [{"status": "success", "attempt": 1}], ex
        assert "Long running operation" in json.loads(row["output"])["said"], row


def test_lost_lease_stops_without_writes():
    with Stack(extra_env={"TOOLGATE_LEASE_MS": "600"}) as s:
        s.connect("alice")
        run_id = admit(s, LONG)
        w = s.start_worker()
        wait_until(lambda: s.query("SELECT 1 FROM tool_executions WHERE run_id=?", run_id), 15,
                   "the call to start")
        # Another worker "takes" the run: the fence no longer matches this one.
        with s.db() as c:
            c.execute("UPDATE workflow_runs SET claimed_by='someone-else', "
                      "lease_expires_at=? WHERE id=?", (int(time.time() * 1000) + 60000, run_id))
        wait_until(lambda: '"run_stopped"' in w.text(), 15, "the worker to stop the run")
        row = run_row(s, run_id)
        assert row["status"] == "running" and row["claimed_by"] == "someone-else", row
        assert row["output"] is None and row["finished_at"] is None, row
        ex = s.query("SELECT status FROM tool_executions WHERE run_id=?", run_id)
        assert ex == [{"status": "pending"}], ex  # the stale worker wrote nothing more
        assert '"lease_lost"' in w.text()


def test_sigterm_releases_unfinished_runs():
    with Stack(extra_env={"TOOLGATE_SHUTDOWN_GRACE_MS": "500"}) as s:
        s.connect("alice")
        run_id = admit(s, LONG)
        w = s.start_worker()
        wait_until(lambda: s.query("SELECT 1 FROM tool_executions WHERE run_id=?", run_id), 15,
                   "the call to start")
        t0 = time.monotonic()
        rc = w.stop()
        assert rc == 0, w.text()[-2000:]
        assert time.monotonic() - t0 < 4, "did not wait for the 4 s call"
        row = run_row(s, run_id)
        assert row["status"] == "queued" and row["claimed_by"] is None, row
        assert row["lease_expires_at"] is None, row
        ex = s.query("SELECT status, attempt FROM tool_executions WHERE run_id=?", run_id)
        assert ex == [{"status": "unknown", "attempt": 1}], ex
        assert '"run_released"' in w.text() and '"worker_stopped"' in w.text()
        # A new worker picks the released run up and finishes it (attempt 2).
        s.start_worker()
        run = s.wait_run(run_id, timeout=30)
        assert run["status"] == "succeeded", run
        assert run_row(s, run_id)["attempt"] == 2


if __name__ == "__main__":
    main(dict(globals()))
