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
    ], got


def test_placeholders_become_dollar_numbers_outside_quotes():
    t = check_sql.to_pg_placeholders
    assert t("SELECT ?, ?3, ?, '?', \"a?\" FROM x -- ?\nWHERE y = ?1") == \
        "SELECT $1, $3, $4, '?', \"a?\" FROM x -- ?\nWHERE y = $1"
    assert t("SELECT 'it''s ?' || ?") == "SELECT 'it''s ?' || $1"
    assert check_sql.sqlite_param_count("SELECT ?, ?3, ?, '?'") == 4


def test_the_checker_can_fail():
    """A statement only SQLite accepts, one whose parameter type PostgreSQL cannot infer, a
    wrong column and a sum() that PostgreSQL types numeric fail, each on the backend that refuses
    it; the rest pass."""
    bad = check_sql.check(sample_statements(), pg_uri())
    got = sorted((s.line, backend) for s, backend, _ in bad)
    assert got == [(14, "pg"), (18, "pg"), (21, "pg"), (21, "sqlite"), (24, "pg")], bad
    errors = {(s.line, backend): err for s, backend, err in bad}
    assert "could not determine data type of parameter $2" in errors[(18, "pg")], errors
    assert "nope" in errors[(21, "pg")] and "nope" in errors[(21, "sqlite")], errors
    assert "total is numeric" in errors[(24, "pg")], errors


def test_every_statement_prepares_on_both_backends():
    stmts = check_sql.collect(BUILD)
    assert len(stmts) > 100, len(stmts)  # the scan reaches the stores
    assert {s.backend for s in stmts} == {"both", "pg", "sqlite"}
    bad = check_sql.check(stmts, pg_uri())
    assert not bad, "\n" + "\n".join("%s [%s] %s: %s" % (s.where(), b, e, " ".join(s.text.split()))
                                     for s, b, e in bad)


if __name__ == "__main__":
    main(dict(globals()))
