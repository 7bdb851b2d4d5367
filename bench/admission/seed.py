"""Seeds the benchmark: N users, each with an ACTIVE connected account at the simulator and in
our database, plenty of credits and one workflow. Prints "user workflow_id" pairs to stdout.
Usage: seed.py <db> <sim_url> <n_users> <workflow.json>"""
import json
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
print("\n".join(out))
