"""Admission under stress: the event loop never waits for SQLite, and a gateway killed with
SIGKILL in the middle of an admission burst leaves no 202 without its run and ledger rows and no
debit without a run.

Real processes on 127.0.0.1 (composio-sim + toolgate-gateway); the "worker" holding the write
lock is a separate python process with its own SQLite connection.
"""
import http.client as httpc
import threading
import time

from harness import Stack, http, main, wait_until

INPUTS = {"message": "hi", "a": 1, "b": 2}



def test_loop_answers_while_another_process_holds_the_write_lock():
    with Stack(mcp=False) as s:
        s.connect("alice")
        wf = s.create_workflow()
        hold = s.hold_write_lock(2)
        try:
            t_locked = time.monotonic()
            results = []

            def admit():
                t0 = time.monotonic()
                st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS})
                results.append((st, time.monotonic() - t0, time.monotonic() - t_locked))
            ts = [threading.Thread(target=admit) for _ in range(8)]
            for t in ts:
                t.start()
            conn = httpc.HTTPConnection("127.0.0.1", s.gw_port, timeout=5)
            lat = []
            while time.monotonic() - t_locked < 1.8:
                t0 = time.perf_counter()
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                lat.append((time.perf_counter() - t0) * 1000)
                assert r.status == 200
            conn.close()
            for t in ts:
                t.join(15)
        finally:
            hold.wait(10)
        lat.sort()
        p50, p99, worst = lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]
        print("healthz during a 2 s write lock: n=%d p50=%.2fms p99=%.2fms max=%.2fms"
              % (len(lat), p50, p99, worst))
        # Behaviour, not speed (speed is in bench/admission): a loop blocked by SQLite would stall
        # every probe for the rest of the 2 s lock; here each one answers, and most at once. The
        # bounds are loose so a loaded CI machine under ASan cannot flake them; the numbers
        # printed above are what the README quotes.
        assert len(lat) > 50, len(lat)
        assert worst < 500, (p50, p99, worst)
        assert p50 < 10, (p50, p99, worst)
        # the admissions really waited for the lock (the test is not vacuous), then succeeded
        assert len(results) == 8 and all(st == 202 for st, _, _ in results), results
        assert min(end for _, _, end in results) > 1.9, results
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == 8


def test_sigkill_during_a_burst_keeps_runs_and_ledger_consistent():
    with Stack(mcp=False, extra_env={"TOOLGATE_DEFAULT_CREDITS": "100000",
                                     "TOOLGATE_RUN_RATE_PER_MIN": "0"}) as s:
        s.connect("alice")
        wf = s.create_workflow()
        accepted, lost, stop = [], [], threading.Event()

        def burst(k):
            n = 0
            while not stop.is_set():
                key = "t%d-%d" % (k, n)
                n += 1
                try:
                    st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS},
                                       headers={"Idempotency-Key": key})
                except (OSError, httpc.HTTPException):
                    lost.append(key)  # no answer: the client does not know; it may retry
                    return
                if st == 202:
                    accepted.append((key, body["run_id"]))
        ts = [threading.Thread(target=burst, args=(k,)) for k in range(12)]
        for t in ts:
            t.start()
        wait_until(lambda: len(accepted) >= 40, 20, "admissions before the kill")
        s.procs.pop("gateway").kill9()
        stop.set()
        for t in ts:
            t.join(10)
        runs = {r["id"]: r for r in s.query("SELECT id, idempotency_key, cost FROM workflow_runs")}
        debits = s.query("SELECT run_id, delta FROM credit_ledger WHERE reason='run_admitted'")
        debit_runs = [d["run_id"] for d in debits]
        print("202 before the kill: %d, runs: %d, unanswered: %d"
              % (len(accepted), len(runs), len(lost)))
        for key, run_id in accepted:
            assert run_id in runs and runs[run_id]["idempotency_key"] == key, (key, run_id)
            assert debit_runs.count(run_id) == 1, run_id
        assert sorted(debit_runs) == sorted(runs), "every debit has its run and vice versa"
        credits = s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"]
        assert credits == 100000 - sum(r["cost"] for r in runs.values()), credits
        # after a restart, a client retrying an unanswered request with its key gets one run
        s.start_gateway()
        for key in lost:
            st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS},
                               headers={"Idempotency-Key": key})
            assert st == 202, body
            again = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": INPUTS},
                         headers={"Idempotency-Key": key})
            assert again[2]["run_id"] == body["run_id"], again
        n_keys = len(accepted) + len(lost)
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] <= n_keys
        st, _, body = http("GET", s.gw_url + "/healthz")
        assert st == 200


if __name__ == "__main__":
    main(dict(globals()))
