"""Schema migration 3 (schema/003_cheaper_writes.sql) on the real programs, and the query plans
it must keep.

1. A version-2 database (built here from the real schema/001 and 002 files) with rows in every
   table is opened by a worker and the gateway starting together: both come up, the file is at
   version 3, every row is kept, the views answer, a bad status is still
   refused, and a new admission is claimed and finished by the worker on the migrated schema.
2. EXPLAIN QUERY PLAN of the worker's claim (SQLite's text, expanded from
   common/tg_store_runs.c by tests/pg/check_sql.py, so the test follows the code) walks the partial indexes workflow_runs_lease, user_queue_pick and
   workflow_runs_user_queue (schema/005_fair_claim.sql), and
   the idempotency lookup and the run listing stay indexed.
(Encrypted BLOB columns stay NULL here: the programs refuse to start on sealed secrets without
their key. tests/unit/common/tg_db_migrate.c checks that BLOBs are copied byte for byte.)
"""
import os
import sqlite3
import sys
import time

from harness import BUILD, SRC, Stack, c_string, main, wait_until

TABLES = ["users", "credit_ledger", "auth_configs", "connected_accounts", "mcp_connections",
          "oauth_states", "workflows", "workflow_runs", "tool_executions", "webhook_events"]

FLOW = {"title": "t", "nodes": [{"id": "start", "type": "Start", "name": "Start", "config": {}},
                                {"id": "end", "type": "End", "name": "End", "config": {}}],
        "connections": [{"id": "c1", "from": "start", "to": "end"}]}


def build_v2(path):
    c = sqlite3.connect(path)
    for name in ("001_init.sql", "002_secret_inputs.sql"):
        with open(os.path.join(SRC, "schema", name)) as f:
            c.executescript(f.read())
    c.executescript("""
      PRAGMA user_version = 2;
      INSERT INTO users VALUES ('old', 98, 1);
      INSERT INTO credit_ledger (user_id, run_id, delta, reason, created_at) VALUES
        ('old', NULL, 100, 'grant', 1), ('old', 'run_old1', -1, 'run_admitted', 2),
        ('old', 'run_old2', -1, 'run_admitted', 2);
      INSERT INTO auth_configs VALUES ('ac_everything', 'everything', 'everything', 'E', NULL, 1, 1);
      INSERT INTO connected_accounts VALUES (5, 'old', 'everything', 'ac_everything', 'ca_gone',
        'EXPIRED', 'token expired', 4, 3, 2, 1, 3);
      INSERT INTO mcp_connections VALUES (3, 5, 'https://mcp.invalid/x', NULL, 2, NULL, 1, 2);
    """)
    now = int(time.time() * 1000)  # a live state: expired ones are pruned at start-up
    c.execute("INSERT INTO oauth_states VALUES ('st_old', 'old', 'everything', NULL, NULL, ?, ?, "
              "NULL)", (now, now + 600000))
    c.execute("INSERT INTO webhook_events VALUES ('wh_old', 'connected_account.expired', ?)",
              (now,))
    c.execute("INSERT INTO workflows VALUES ('wf_old', 'old', 'old', ?, 1, 1)",
              (__import__("json").dumps(FLOW),))
    c.executescript("""
      INSERT INTO workflow_runs (id, workflow_id, user_id, status, inputs, metadata, output, error,
        error_class, idempotency_key, request_hash, cost, attempt, claimed_by, lease_expires_at,
        available_at, cancel_requested, created_at, started_at, finished_at, inputs_secret_enc)
      VALUES ('run_old1', 'wf_old', 'old', 'failed', '{"x":1}', '{}', NULL, 'boom', 'tool_error',
        'k1', 'h1', 1, 1, 'w', NULL, 2, 0, 2, 3, 4, NULL),
             ('run_old2', 'wf_old', 'old', 'attention', '{}', '{"providers":["everything"]}', NULL,
        NULL, 'provider_auth', NULL, 'h2', 1, 1, 'w', NULL, 2, 0, 2, 3, 4, NULL);
      INSERT INTO tool_executions VALUES (1, 'run_old1', 1, 'echo', 'everything', 'echo', '{}',
        '{"isError":true}', 'failed', 'boom', 'tool_error', 5, 3, 4);
    """)
    c.commit()
    c.close()


def dump(path):
    c = sqlite3.connect(path)
    out = {t: c.execute("SELECT * FROM %s ORDER BY rowid" % t).fetchall() for t in TABLES}
    # the gateway refreshes its configured auth config at start-up (display name, updated_at)
    out["auth_configs"] = c.execute("SELECT id, provider, toolkit_slug, allowed_tools, created_at "
                                    "FROM auth_configs ORDER BY rowid").fetchall()
    c.close()
    return out


def test_v2_database_migrates_under_gateway_and_worker_starting_together():
    s = Stack(mcp=False)
    build_v2(s.db_path)
    before = dump(s.db_path)
    s.start_worker()  # the worker starts first; the gateway follows while it may be migrating
    with s:
        c = sqlite3.connect(s.db_path)
        assert c.execute("PRAGMA user_version").fetchone()[0] >= 3  # and later ones
        after = dump(s.db_path)
        for t in TABLES:  # every row kept; later migrations may add columns at the end
            kept = [a[:len(b)] for a, b in zip(after[t], before[t])]
            assert len(after[t]) == len(before[t]) and kept == before[t], (t, before[t], after[t])
        assert c.execute("SELECT count(*) FROM pragma_foreign_key_check").fetchone()[0] == 0
        assert c.execute("SELECT tool_calls FROM v_runs WHERE id = 'run_old1'").fetchone() == (1,)
        assert c.execute("SELECT has_mcp_url FROM v_connections").fetchone() == (1,)
        assert c.execute("SELECT ledger_rows FROM v_credits WHERE user_id = 'old'").fetchone() == (3,)
        for sql in ("UPDATE workflow_runs SET status = 'done' WHERE id = 'run_old1'",
                    "UPDATE connected_accounts SET status = 'active' WHERE id = 5",
                    "UPDATE tool_executions SET status = 'ok' WHERE id = 1"):
            try:
                c.execute(sql)
                raise AssertionError("accepted: " + sql)
            except sqlite3.IntegrityError as e:
                assert "CHECK" in str(e), e
        c.close()
        # Each migration was applied once, by one of the two processes.
        logs = s.procs["gateway"].text() + s.workers[0].text()
        assert logs.count('"migration":"003_cheaper_writes.sql"') == 1, logs[-2000:]
        # The migrated file serves the API: old runs listed, the old run retried (its metadata
        # and the retried_by claim), and a new admission claimed and finished by the worker.
        st, _, body = s.gw("GET", "/api/runs?limit=10", user="old")
        assert st == 200 and sorted(r["id"] for r in body["runs"]) == ["run_old1", "run_old2"], body
        # The old run's workflow names no provider, so its scope is every provider 'old' has
        # not disconnected: the EXPIRED row blocks the retry (409) until it is disconnected.
        st, _, body = s.gw("POST", "/api/runs/run_old1/retry", user="old")
        assert st == 409 and body["reasons"] == {
            "everything": "connected_account_status=EXPIRED"}, (st, body)
        st, _, body = s.gw("DELETE", "/api/mcp/auth/everything", user="old")
        assert st == 200 and body["status"] == "DISCONNECTED", (st, body)
        st, _, body = s.gw("POST", "/api/runs/run_old1/retry", user="old")
        assert st == 202 and body["retry_of"] == "run_old1", (st, body)
        retried = s.query("SELECT json_extract(metadata, '$.retried_by') AS r FROM workflow_runs "
                          "WHERE id = 'run_old1'")[0]["r"]
        assert retried == body["run_id"], retried
        assert s.wait_run(body["run_id"], user="old", timeout=20)["status"] == "succeeded"
        s.connect("new")
        wf = s.create_workflow(FLOW, user="new")
        st, _, body = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {}}, user="new",
                           headers={"Idempotency-Key": "once"})
        assert st == 202, (st, body)
        again = s.gw("POST", "/api/workflows/%s/run" % wf, {"inputs": {}}, user="new",
                     headers={"Idempotency-Key": "once"})
        assert again[0] == 202 and again[2]["run_id"] == body["run_id"], again
        run = s.wait_run(body["run_id"], user="new", timeout=20)
        assert run["status"] == "succeeded", run


def plan(c, sql, args):
    return " | ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN " + sql, args))


def sqlite_claim():
    """SQLite's text of the claim, as the compiler sees it (CLAIM_SQL is a macro of the dialect:
    tests/pg/check_sql.py expands it)."""
    sys.path.insert(0, os.path.join(SRC, "tests", "pg"))
    import check_sql
    claims = [s.text for s in check_sql.collect(BUILD, "common/tg_store_runs.c")
              if s.backend != "pg" and s.text.startswith("UPDATE workflow_runs SET status = "
                                                         "'running', attempt = attempt + 1")]
    assert len(claims) == 1, claims
    return claims[0]


def test_claim_and_lookups_use_the_indexes():
    with Stack(mcp=False) as s:
        c = sqlite3.connect(s.db_path)
        assert c.execute("PRAGMA user_version").fetchone()[0] >= 3
        with open(os.path.join(SRC, "common", "tg_store_runs.c")) as f:
            source = f.read()
        claim = sqlite_claim()
        listing = c_string(source, "LIST_SQL")
        p = plan(c, claim, ("w", int(time.time() * 1000), 5000, 2))
        print("claim: " + p)
        assert "USING INDEX workflow_runs_lease (lease_expires_at<?)" in p, p
        assert "USING INDEX user_queue_pick (running<?)" in p, p
        assert "USING INDEX workflow_runs_user_queue (user_id=? AND available_at<?)" in p, p
        assert "SCAN" not in p, p
        p = plan(c, "SELECT id, status, request_hash FROM workflow_runs WHERE user_id = ? AND "
                    "idempotency_key = ?", ("u", "k"))
        assert "USING INDEX workflow_runs_idem (user_id=? AND idempotency_key=?)" in p, p
        p = plan(c, listing, ("u", None, None, None, 0, 50))
        assert "USING INDEX workflow_runs_user (user_id=?)" in p, p
        c.close()


if __name__ == "__main__":
    main(dict(globals()))
