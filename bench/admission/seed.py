"""Seeds the benchmark: N users, each with an ACTIVE connected account at the simulator and in
our database, plenty of credits and one workflow. Prints "user workflow_id" pairs to stdout.
With QUEUED=<rows> in the environment it also writes that many runs already 'queued', spread
round robin over the users, each with its 'run_admitted' ledger row, exactly as admission
writes them (time-ordered ids, older than any run the benchmark admits): the table a gateway
meets after a backlog piled up with no worker draining it.
Usage: seed.py <db> <sim_url> <n_users> <workflow.json>"""
import json
import os
import secrets
import sqlite3
import sys
import time
import urllib.request

db, sim, n, wf_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
definition = open(wf_path).read()
now = int(time.time() * 1000)
c = sqlite3.connect(db, timeout=30)
out = []
for k in range(n):
    user = "bench-%04d" % k
    req = urllib.request.Request(sim + "/_sim/accounts", method="POST",
                                 data=json.dumps({"user_id": user, "toolkit_slug": "everything",
                                                  "auth_config_id": "ac_everything"}).encode(),
                                 headers={"Content-Type": "application/json"})
    ca = json.load(urllib.request.urlopen(req))["id"]
    wf = "wf_bench%04d" % k
    c.execute("INSERT INTO users (id, credits, created_at) VALUES (?, ?, ?)", (user, 10**12, now))
    c.execute("INSERT INTO credit_ledger (user_id, delta, reason, created_at) "
              "VALUES (?, ?, 'grant', ?)", (user, 10**12, now))
    c.execute("INSERT INTO connected_accounts (user_id, provider, auth_config_id, "
              "composio_account_id, status, connected_at, created_at, updated_at) "
              "VALUES (?, 'everything', 'ac_everything', ?, 'ACTIVE', ?, ?, ?)",
              (user, ca, now, now, now))
    c.execute("INSERT INTO workflows (id, user_id, name, definition, created_at, updated_at) "
              "VALUES (?, ?, 'bench', ?, ?, ?)", (wf, user, definition, now, now))
    out.append("%s %s" % (user, wf))
c.commit()

queued = int(os.environ.get("QUEUED", "0"))
if queued:
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=OFF")
    t0 = now - queued  # one ms apart, ending before the benchmark starts
    rnd = secrets.token_hex(8)
    runs = ((("run_%012x%s%08x" % (t0 + i, rnd, i)), "wf_bench%04d" % (i % n), "bench-%04d" % (i % n),
             t0 + i) for i in range(queued))
    c.execute("BEGIN")
    for batch_start in range(0, queued, 100000):
        rows = []
        for _ in range(min(100000, queued - batch_start)):
            rows.append(next(runs))
        c.executemany("INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, "
                      "metadata, cost, attempt, available_at, created_at) "
                      "VALUES (?, ?, ?, 'queued', '{}', '{}', 1, 0, ?4, ?4)", rows)
        c.executemany("INSERT INTO credit_ledger (user_id, run_id, delta, reason, created_at) "
                      "VALUES (?3, ?1, -1, 'run_admitted', ?4)", rows)
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print("\n".join(out))
