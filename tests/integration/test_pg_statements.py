#!/usr/bin/env python3
"""Every SQL statement of common/, gateway/ and worker/ prepares on both backends
(tests/pg/check_sql.py): on PostgreSQL, in a database of its own on the fixture's server
(TOOLGATE_TEST_PG_URI) migrated by schema/pg, and on SQLite migrated by schema/*.sql.

The checker is first shown to fail: statements that one dialect refuses are reported with their
file and line, for the backend that refuses them; TG_SQL's two sides go to their own backend.
No stack is started.
"""
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg"))
from harness import BUILD, SRC, main  # noqa: E402
import check_sql  # noqa: E402


def pg_uri():
    uri = os.environ.get("TOOLGATE_TEST_PG_URI")
    assert uri, "TOOLGATE_TEST_PG_URI is not set: run through ctest (fixture pg) or " \
                "tests/pg/pgserver.py exec"
    return uri


# Preprocessed C as cpp writes it: line markers, adjacent literals, TG_SQL expanded.
SAMPLE = '''# 1 "%(src)s/common/tg_store_x.c"
# 1 "/usr/include/stdio.h" 1 3
static const char *h = "SELECT from a system header";
# 3 "%(src)s/common/tg_store_x.c" 2
int a(tg_db *db) {
  return tg_db_exec(db, 0, "SELECT id FROM users "
                    "WHERE id = ?1", "s", "x");
}
int b(tg_db *db) {
  return tg_db_exec(db, 0, (tg_db_dialect(db) == TG_DB_PG ? ("INSERT INTO users (id, credits, "
  "created_at) VALUES (?, 0, ?) ON CONFLICT DO NOTHING") : ("INSERT OR IGNORE INTO users "
  "(id, credits, created_at) VALUES (?, 0, ?)")), "sI", "u", 1LL);
}
int c(tg_db *db) {
  log("DELETE"); log("update it");
  return tg_db_exec(db, 0, "INSERT OR IGNORE INTO users (id, credits, created_at) "
                    "VALUES (?, 0, 1)", "s", "u");
}
int d(tg_db *db) {
  return tg_db_exec(db, 0, "SELECT count(*) FROM users WHERE ?2 IS NULL OR id = ?2", "s", 0);
}
int e(tg_db *db) {
  return tg_db_exec(db, 0, "SELECT nope FROM users WHERE id = '?' AND created_at = ?", "I", 0);
}
json_t *f(tg_db *db) {
  return tg_db_query(db, 0, "SELECT coalesce(sum(credits), 0) AS total FROM users", "");
}
int g(tg_db *db) {
  return tg_db_exec(db, 0, "UPDATE users SET credits = ?1 WHERE id = ?2", "ss", "x", "u");
}
'''


def sample_statements():
    keep = lambda f: os.path.relpath(f, SRC) if f.startswith(SRC + "/common/") else None
    return check_sql.statements_of(SAMPLE % {"src": SRC}, keep)


def test_statements_are_found_with_their_backend_and_line():
    got = [(s.where(), s.backend, s.text) for s in sample_statements()]
    f = "common/tg_store_x.c"
    assert got == [
        (f + ":4", "both", "SELECT id FROM users WHERE id = ?1"),
        (f + ":8", "pg", "INSERT INTO users (id, credits, created_at) VALUES (?, 0, ?) "
                         "ON CONFLICT DO NOTHING"),
        (f + ":9", "sqlite", "INSERT OR IGNORE INTO users (id, credits, created_at) "
                             "VALUES (?, 0, ?)"),
        (f + ":14", "both", "INSERT OR IGNORE INTO users (id, credits, created_at) "
                            "VALUES (?, 0, 1)"),
        (f + ":18", "both", "SELECT count(*) FROM users WHERE ?2 IS NULL OR id = ?2"),
        (f + ":21", "both", "SELECT nope FROM users WHERE id = '?' AND created_at = ?"),
        (f + ":24", "both", "SELECT coalesce(sum(credits), 0) AS total FROM users"),
        (f + ":27", "both", "UPDATE users SET credits = ?1 WHERE id = ?2"),
    ], got
    binds = [s.binds for s in sample_statements()]
    assert binds == ["s", "sI", "sI", "s", "s", "I", "", "ss"], binds


def test_placeholders_become_dollar_numbers_outside_quotes():
    t = check_sql.to_pg_placeholders
    assert t("SELECT ?, ?3, ?, '?', \"a?\" FROM x -- ?\nWHERE y = ?1") == \
        "SELECT $1, $3, $4, '?', \"a?\" FROM x -- ?\nWHERE y = $1"
    assert t("SELECT 'it''s ?' || ?") == "SELECT 'it''s ?' || $1"
    assert check_sql.sqlite_param_count("SELECT ?, ?3, ?, '?'") == 4


def test_the_checker_can_fail():
    """A statement only SQLite accepts, one whose parameter type PostgreSQL cannot infer, a
    wrong column, a sum() that PostgreSQL types numeric and a text bound to a number fail, each
    on the backend that refuses it; the rest pass."""
    bad = check_sql.check(sample_statements(), pg_uri())
    got = sorted((s.line, backend) for s, backend, _ in bad)
    assert got == [(14, "pg"), (18, "pg"), (21, "pg"), (21, "sqlite"), (24, "pg"), (27, "pg")], bad
    errors = {(s.line, backend): err for s, backend, err in bad}
    assert "could not determine data type of parameter $2" in errors[(18, "pg")], errors
    assert "nope" in errors[(21, "pg")] and "nope" in errors[(21, "sqlite")], errors
    assert "total is numeric" in errors[(24, "pg")], errors
    assert "?1 is bound 's' but PostgreSQL types it bigint" in errors[(27, "pg")], errors


def test_every_statement_prepares_on_both_backends():
    stmts = check_sql.collect(BUILD)
    assert len(stmts) > 100, len(stmts)  # the scan reaches the stores
    assert {s.backend for s in stmts} == {"both", "pg", "sqlite"}
    bad = check_sql.check(stmts, pg_uri())
    assert not bad, "\n" + "\n".join("%s [%s] %s: %s" % (s.where(), b, e, " ".join(s.text.split()))
                                     for s, b, e in bad)


def pg_claim_text():
    """PostgreSQL's text of the worker's claim, as the compiler expands it."""
    claims = [s.text for s in check_sql.collect(BUILD, "common/tg_store_runs.c")
              if s.backend == "pg" and s.text.startswith("UPDATE workflow_runs SET status = "
                                                         "'running', attempt = attempt + 1")]
    assert len(claims) == 1, claims
    assert claims[0].count("FOR UPDATE SKIP LOCKED") == 3, claims[0]
    return check_sql.to_pg_placeholders(claims[0])


def test_concurrent_claims_skip_each_others_rows():
    """The claim on PostgreSQL: a worker whose claim is still open holds the user's queue row and
    the run, so a second claim takes another user's run at once instead of waiting (or taking
    the same run); a user never served comes first (NULLS FIRST, as in SQLite); the per-user cap
    holds across the two; an expired lease is taken over before any queued run."""
    import psycopg2  # Debian's python3-psycopg2, as check_sql's PostgreSQL part
    db = check_sql.PgDatabase(pg_uri(), os.path.join(SRC, "schema", "pg"))
    conns = []
    try:
        setup = db.conn
        with setup.cursor() as c:
            c.execute("INSERT INTO users (id, credits, created_at) VALUES ('u1', 0, 0), "
                      "('u2', 0, 0)")
            c.execute("INSERT INTO workflows (id, user_id, name, definition, created_at, "
                      "updated_at) VALUES ('w1', 'u1', 'w', '{}', 0, 0), "
                      "('w2', 'u2', 'w', '{}', 0, 0)")
            c.execute("INSERT INTO workflow_runs (id, workflow_id, user_id, status, available_at, "
                      "created_at) VALUES ('r1a', 'w1', 'u1', 'queued', 1, 1), "
                      "('r1b', 'w1', 'u1', 'queued', 2, 2), ('r2', 'w2', 'u2', 'queued', 3, 3)")
            c.execute("UPDATE user_queue SET served_at = 5 WHERE user_id = 'u1'")
        setup.commit()
        uri = urllib.parse.urlsplit(pg_uri())._replace(path="/" + db.name).geturl()
        claim = pg_claim_text()

        def session():
            conn = psycopg2.connect(uri)
            conns.append(conn)
            cur = conn.cursor()
            cur.execute("SET statement_timeout = 3000")  # a claim that waits fails the test
            cur.execute("PREPARE claim AS " + claim)
            return conn, cur

        def run_claim(cur, worker, now, cap=10):
            cur.execute("EXECUTE claim(%s, %s, %s, %s)", (worker, now, 60000, cap))
            row = cur.fetchone()
            return row and row[0]

        a, ca = session()
        b, cb = session()
        assert run_claim(ca, "A", 100) == "r2"  # u2 was never served: first
        assert run_claim(cb, "B", 100) == "r1a"  # u2's queue row is A's: skipped, no wait
        b.commit()
        assert run_claim(cb, "B", 100, cap=1) is None  # u1 has one running: at the cap
        b.commit()
        a.commit()
        assert run_claim(cb, "B", 100) == "r1b"
        b.commit()
        # r2's lease (A's, until 60100) has expired at 70000: taken over before anything else
        assert run_claim(cb, "B", 70000) == "r2"
        b.commit()
        with setup.cursor() as c:
            c.execute("SELECT id, claimed_by, attempt FROM workflow_runs ORDER BY id")
            assert c.fetchall() == [("r1a", "B", 1), ("r1b", "B", 1), ("r2", "B", 2)]
    finally:
        for conn in conns:
            conn.close()
        db.drop()


if __name__ == "__main__":
    main(dict(globals()))
