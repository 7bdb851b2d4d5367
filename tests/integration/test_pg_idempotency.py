"""Idempotency keys across gateways on PostgreSQL (README "Many gateways").

On PostgreSQL each admission transaction looks its key up in its own snapshot, so two gateways
admitting one key at once can both miss it; the later insert then meets the unique index
(user_id, idempotency_key) when the earlier commits. The gateway must answer as if its lookup
had found the twin (a replay, or 422 when the twin's request differs), never fail the request.

The race is made certain here: this test holds the twin's insert open in its own transaction
while the gateway admits the same key (its lookup cannot see the uncommitted row, its insert
waits on the index), then commits. The twin's request hash differs from the gateway's, so the
right answer is 422 idempotency_key_reused, with nothing debited.
"""
import os
import threading
import time

os.environ["TOOLGATE_TEST_DB"] = "pg"  # this test exists only on PostgreSQL

from harness import Stack, main, wait_until  # noqa: E402

INPUTS = {"message": "hi", "a": 1, "b": 2}


def test_a_twin_committed_after_the_lookup_is_found_again():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})  # the user row
        assert st == 202, (st, body)
        credits = s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"]
        now = int(time.time() * 1000)
        twin = s.db()
        twin.execute("INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, "
                     "metadata, idempotency_key, request_hash, available_at, created_at) VALUES "
                     "('run_twin', ?, 'alice', 'queued', '{}', '{}', 'k1', 'another', ?, ?)",
                     (wf, now, now))
        res = {}

        def admit():
            res["answer"] = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS},
                                 headers={"Idempotency-Key": "k1"})
        t = threading.Thread(target=admit)
        t.start()
        # the gateway's insert is waiting on the twin's lock
        wait_until(lambda: s.query("SELECT count(*) AS n FROM pg_stat_activity WHERE "
                                   "wait_event_type = 'Lock'")[0]["n"] > 0, 10,
                   "the gateway's insert to wait on the twin")
        twin.commit()
        twin.close()
        t.join(20)
        st, _, body = res["answer"]
        assert st == 422 and body["error"] == "idempotency_key_reused", (st, body)
        assert s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"] == credits
        rows = s.query("SELECT id FROM workflow_runs WHERE idempotency_key = 'k1'")
        assert [r["id"] for r in rows] == ["run_twin"], rows


if __name__ == "__main__":
    main(globals())
