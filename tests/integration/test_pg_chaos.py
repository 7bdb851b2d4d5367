"""PostgreSQL under faults (issue 17, "Must show"; docs/design-postgres.md section 7).

Two gateways and four workers on one PostgreSQL server of this test's own (it is restarted, so
it is not the shared fixture server), 50 users, the fast MCP peer (tests/mcppeer):
1. 4,000 runs admitted through both gateways by 8 client threads, each request with its own
   Idempotency-Key. Mid-way one worker and one gateway are killed with SIGKILL and PostgreSQL is
   restarted once (pg_ctl restart -m fast). A client whose gateway died, or that got 503 while
   the server was down, sends the same request again (same key) to the gateway left.
   Then, by SQL: every 202 has its run and exactly one debit, there is no run without a 202 and
   no debit without a run, every run succeeded, each of its nodes succeeded exactly once in the
   journal, and the balance of each user is what the debits say.
2. Fairness with four workers: one user has 2,000 queued runs, another then queues one through
   the API; that run starts before the busy user's 25th (4 workers × 8 runs in flight at most
   are claimed ahead of it at the moment it is queued, plus the next claims of each worker).
Bounded: 4,000 + 2,001 runs, 300 s for the drain of each phase.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

os.environ["TOOLGATE_TEST_DB"] = "pg"  # this test exists only on PostgreSQL

import harness  # noqa: E402
from harness import BUILD, PROVIDER, Stack, free_port, http, main, wait_until  # noqa: E402
from test_worker_scale import FLOW  # noqa: E402  Start -> echo {{inputs.n}} -> End

N_RUNS = int(os.environ.get("PG_CHAOS_RUNS", "4000"))
N_USERS = 50
N_CLIENTS = 8
N_WORKERS = 4
BUSY_RUNS = 2000
USERS = ["u%02d" % i for i in range(N_USERS)]


def private_server():
    """A server of this test's own: started here, restarted mid-way, stopped at the end."""
    pg = harness.pgserver()
    d = os.path.join(tempfile.mkdtemp(prefix="toolgate-chaos-"), "pg")
    uri = pg.start(d)
    os.environ["TOOLGATE_TEST_PG_URI"] = uri
    harness._pg["uri"] = uri  # the stacks of this process use it
    return pg, d


def admit(url, wf, user, key, inputs):
    return http("POST", url + "/api/workflows/%s/run" % wf, {"inputs": inputs},
                {"X-User-Id": user, "Idempotency-Key": key}, timeout=20)


class Clients:
    """N_CLIENTS threads admitting runs; each run is retried with its key until it gets 202."""

    def __init__(self, urls, wfs):
        self.urls = list(urls)
        self.wfs = wfs
        self.lock = threading.Lock()
        self.accepted = {}  # key -> run_id
        self.retries = {"connection": 0, "503": 0, "other": 0}
        self.next = 0
        self.errors = []

    def take(self):
        with self.lock:
            if self.next >= N_RUNS:
                return None
            self.next += 1
            return self.next - 1

    def one(self, i):
        user = USERS[i % N_USERS]
        key = "chaos-%05d" % i
        deadline = time.monotonic() + 120
        tries = 0
        while time.monotonic() < deadline:
            url = self.urls[(i + tries) % len(self.urls)]
            tries += 1
            try:
                st, h, body = admit(url, self.wfs[user], user, key, {"n": "c%05d" % i})
            except OSError:
                with self.lock:
                    self.retries["connection"] += 1
                    if url in self.urls and len(self.urls) > 1 and not alive(url):
                        self.urls.remove(url)
                time.sleep(0.05)
                continue
            if st == 202:
                with self.lock:
                    self.accepted[key] = body["run_id"]
                return
            with self.lock:
                self.retries["503" if st == 503 else "other"] += 1
            if st == 503:
                time.sleep(min(float(h.get("retry-after", "1")), 2))
                continue
            self.errors.append((key, st, body))
            return
        self.errors.append((key, "no 202 in 120 s", None))

    def run(self):
        while True:
            i = self.take()
            if i is None:
                return
            self.one(i)


def alive(url):
    try:
        return http("GET", url + "/healthz", timeout=2)[0] == 200
    except OSError:
        return False


def test_two_gateways_four_workers_survive_kills_and_a_restart():
    pg, d = private_server()
    env = {"TOOLGATE_LOG_LEVEL": "warn", "TOOLGATE_DEFAULT_CREDITS": "1000",
           "TOOLGATE_RUN_RATE_PER_MIN": "100000", "TOOLGATE_WORKER_CONCURRENCY": "8",
           "TOOLGATE_LEASE_MS": "5000", "TOOLGATE_POLL_MS": "1000"}
    try:
        with Stack(peer=True, extra_env=env) as s:
            wfs = {}
            for u in USERS:
                s.connect(u)
                s.set_mcp_url(u, "%s/mcp/%s" % (s.peer_url, u))
                wfs[u] = s.create_workflow(FLOW, user=u)
            port_b = free_port()
            url_b = "http://127.0.0.1:%d" % port_b
            gw_b = s._start("gateway-b", [os.path.join(BUILD, "toolgate-gateway")],
                            dict(s.env, TOOLGATE_LISTEN="127.0.0.1:%d" % port_b))
            wait_until(lambda: alive(url_b), 10, "the second gateway")
            for _ in range(N_WORKERS):
                s.start_worker()
            c = Clients([s.gw_url, url_b], wfs)
            threads = [threading.Thread(target=c.run) for _ in range(N_CLIENTS)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            wait_until(lambda: len(c.accepted) >= N_RUNS // 4, 120, "a quarter admitted")
            s.workers[1].kill9()
            gw_b.kill9()
            wait_until(lambda: len(c.accepted) >= N_RUNS // 2, 120, "half admitted")
            home = pg._home(d)
            subprocess.run(pg._as_server_user([pg._tool("pg_ctl"), "restart", "-D",
                                               os.path.join(home, "data"), "-m", "fast", "-w",
                                               "-t", "60"]),
                           cwd=home, check=True, timeout=90, stdout=subprocess.DEVNULL)
            for t in threads:
                t.join(240)
            assert not any(t.is_alive() for t in threads), "clients still running"
            assert not c.errors, c.errors[:5]
            assert len(c.accepted) == N_RUNS, len(c.accepted)
            print("admitted %d in %.1fs, retries %s" % (N_RUNS, time.monotonic() - t0,
                                                          c.retries), flush=True)
            s.start_worker()  # the killed worker's replacement

            def drained():
                return s.query("SELECT count(*) AS n FROM workflow_runs WHERE status IN "
                               "('queued','running')")[0]["n"] == 0
            wait_until(drained, 300, "the runs to finish", 0.2)
            print("drained after %.1fs" % (time.monotonic() - t0), flush=True)

            runs = {r["id"]: r for r in s.query("SELECT id, user_id, status, cost, error_class, error FROM "
                                                "workflow_runs")}
            assert set(runs) == set(c.accepted.values()), "runs without a 202, or 202s without a run"
            bad = [r for r in runs.values() if r["status"] != "succeeded"]
            assert not bad, bad[:5]
            debits = s.query("SELECT run_id, count(*) AS n FROM credit_ledger WHERE reason = "
                             "'run_admitted' GROUP BY run_id")
            assert {r["run_id"] for r in debits} == set(runs), "a run without its debit, or a debit without a run"
            assert all(r["n"] == 1 for r in debits), [r for r in debits if r["n"] != 1][:5]
            twice = s.query("SELECT run_id, node_id, count(*) AS n FROM node_executions WHERE "
                            "status = 'success' GROUP BY run_id, node_id HAVING count(*) > 1")
            assert not twice, twice[:5]
            done = s.query("SELECT count(DISTINCT run_id) AS n FROM node_executions WHERE "
                           "node_id = 'end' AND status = 'success'")[0]["n"]
            assert done == N_RUNS, done
            # A tool call succeeded at most once per attempt. Twice in one run only across
            # attempts: the call's success was journaled, then the attempt ended (its worker
            # killed, or the server restarted) before the node's; the next attempt repeats the
            # node, and echo is readOnlyHint, so the call is made again (README "Worker").
            calls = s.query("SELECT run_id, attempt, count(*) AS n FROM tool_executions WHERE "
                            "status = 'success' GROUP BY run_id, attempt")
            assert {r["run_id"] for r in calls} == set(runs), "a run without its tool call"
            assert all(r["n"] == 1 for r in calls), [r for r in calls if r["n"] != 1][:5]
            print("runs whose read-only call was repeated by a later attempt: %d"
                  % (len(calls) - N_RUNS), flush=True)
            # finished exactly once: one run_finished event per run (written with the fenced
            # final write, so a worker that lost its lease cannot add a second)
            fin = s.query("SELECT run_id, count(*) AS n FROM run_events WHERE type = "
                          "'run_finished' GROUP BY run_id")
            assert len(fin) == N_RUNS and all(r["n"] == 1 for r in fin), \
                [r for r in fin if r["n"] != 1][:5]
            for u in USERS:
                row = s.query("SELECT credits FROM users WHERE id = ?", u)[0]
                spent = sum(r["cost"] for r in runs.values() if r["user_id"] == u)
                assert row["credits"] == 1000 - spent, (u, row, spent)
    finally:
        pg.stop(os.path.dirname(d))


def test_a_busy_user_does_not_delay_another_with_four_workers():
    env = {"TOOLGATE_LOG_LEVEL": "warn", "TOOLGATE_WORKER_CONCURRENCY": "8",
           "TOOLGATE_LEASE_MS": "30000"}
    with Stack(peer=True, extra_env=env) as s:
        wfs = {}
        for u in ("busy", "other"):
            s.connect(u)
            s.set_mcp_url(u, "%s/mcp/%s" % (s.peer_url, u))
            wfs[u] = s.create_workflow(FLOW, user=u)
        now = int(time.time() * 1000) - BUSY_RUNS
        meta = json.dumps({"tool_constraints": {"providers": [PROVIDER]}})
        rows = [("run_busy_%05d" % i, wfs["busy"], "busy", "queued", json.dumps({"n": "b%d" % i}),
                 meta, now + i, now + i) for i in range(BUSY_RUNS)]
        with s.db() as c:
            c.executemany("INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, "
                          "metadata, available_at, created_at) VALUES (?,?,?,?,?,?,?,?)", rows)
        for _ in range(N_WORKERS):
            s.start_worker()
        wait_until(lambda: s.query("SELECT count(*) AS n FROM workflow_runs WHERE status = "
                                   "'succeeded'")[0]["n"] >= 100, 60, "the busy user's runs")
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wfs["other"], {"inputs": {"n": "o"}},
                           user="other")
        queued_at = int(time.time() * 1000)  # committed: the 202 is sent after COMMIT
        assert st == 202, (st, body)
        other = body["run_id"]
        run = s.wait_run(other, user="other", timeout=60)
        assert run["status"] == "succeeded", run
        row = s.query("SELECT started_at FROM workflow_runs WHERE id = ?", other)[0]
        ahead = s.query("SELECT count(*) AS n FROM workflow_runs WHERE user_id = 'busy' AND "
                        "started_at > ? AND started_at <= ?", queued_at,
                        row["started_at"])[0]["n"]
        print("busy runs claimed between the other's 202 and its start: %d (%d ms)"
              % (ahead, row["started_at"] - queued_at), flush=True)
        assert ahead <= N_WORKERS * 2, ahead  # a few claims, not the 1,900 still queued


if __name__ == "__main__":
    main(globals())
