"""The two dialects of the schema describe the same database (docs/design-postgres.md section 2).

Each schema is the one toolgate builds: a worker started with --once applies every migration and
exits, on a new SQLite file (schema/NNN_*.sql) and on a new database on the PostgreSQL test
server (schema/pg/NNN_*.sql; schema_version is the runner's bookkeeping and is left out of the
comparison). Each side is read back from the database itself into one model:
  per table: the columns in order (name, type affinity, NOT NULL, default, rowid/identity), the
  primary key, the UNIQUE constraints, the foreign keys (columns, parent, its columns, ON DELETE,
  ON UPDATE), the CHECK constraints (a column limited to a set of values becomes that set, with
  whether NULL is allowed; any other check its text without casts, spaces or parentheses) and
  the named indexes (columns, uniqueness, the partial predicate normalised the same way);
  the views (name, columns) and the triggers (table, name).
SQLite is read through pragma_table_info, pragma_index_list/index_info,
pragma_foreign_key_list and sqlite_master (CHECKs and predicates from the CREATE text);
PostgreSQL through information_schema and pg_catalog.
1. The two models are equal, and hold what the schema has (no reader that reads nothing passes);
   both databases are at the last version, and the two series are one numbered series (each
   PostgreSQL step after the baseline has its SQLite twin, and both end at the same number).
2. The comparison reports a difference: each deliberate change to one side (a column added, a
   type, a default, NOT NULL, an identity, a CHECK value set, an index's predicate, columns or
   uniqueness, a foreign key or its ON DELETE, a trigger, a view, a table) is reported, naming
   that table, and nothing else is.
Known difference, by design: a non-INTEGER PRIMARY KEY column may hold NULL in SQLite (a
historical quirk; no statement writes one), so primary-key columns count as NOT NULL on both.
"""
import glob
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile

from harness import BUILD, SRC, main, pg_server_uri, pgserver

PG_ONLY = {"schema_version"}  # the migration runner's table, not part of the schema files

# --- normalising ---------------------------------------------------------------------------
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_CAST = re.compile(r"::\s*(?:double precision|character varying|[a-z_]+)(?:\[\])?", re.I)
_SET_WORDS = {"or", "is", "null", "any", "array", "in"}


def _outside_literals(text, fn):
    """text with fn applied to the parts outside '...' literals."""
    out, pos = [], 0
    for m in _LITERAL.finditer(text):
        out += [fn(text[pos:m.start()]), m.group(0)]
        pos = m.end()
    return "".join(out + [fn(text[pos:])])


def norm_expr(expr):
    """An expression's text without casts, whitespace or parentheses, lowercase outside
    literals: "(status = 'running'::text)" and "status = 'running'" both give status='running'."""
    return _outside_literals(_CAST.sub("", expr) if expr else "",
                             lambda s: re.sub(r"[\s()]", "", s).lower())


def norm_check(expr):
    """A CHECK as ('values', column, allowed values, NULL allowed) when it limits one column to a
    set of string values (an OR-chain of equalities, IN or = ANY (ARRAY[...]), optionally
    `column IS NULL OR ...`), else ('expr', norm_expr)."""
    e = _CAST.sub("", expr)
    values = frozenset(m[1:-1].replace("''", "'") for m in _LITERAL.findall(e))
    rest = _LITERAL.sub(" ", e)
    words = [w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", rest)]
    columns = {w for w in words if w not in _SET_WORDS}
    if values and len(columns) == 1 and not re.sub(r"[A-Za-z0-9_\s(),=\[\]]", "", rest):
        return ("values", columns.pop(), values, "null" in words)
    return ("expr", norm_expr(expr))


def norm_default(v):
    """A column default as a value: an int, a float, a string, None, or 'expr:<text>'."""
    if v is None:
        return None
    v = _CAST.sub("", v).strip()
    while v.startswith("(") and v.endswith(")"):
        v = v[1:-1].strip()
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    if re.fullmatch(r"-?\d+\.\d*(e-?\d+)?", v, re.I):
        return float(v)
    if re.fullmatch(r"'(?:[^']|'')*'", v):
        return v[1:-1].replace("''", "'")
    if v.upper() == "NULL":
        return None
    return "expr:" + norm_expr(v)


def sqlite_affinity(declared):
    """SQLite's type affinity of a declared type (https://www.sqlite.org/datatype3.html 3.1)."""
    t = (declared or "").upper()
    if "INT" in t:
        return "integer"
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if not t or "BLOB" in t:
        return "blob"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


PG_AFFINITY = {"bigint": "integer", "integer": "integer", "smallint": "integer", "text": "text",
               "character varying": "text", "bytea": "blob", "double precision": "real",
               "real": "real", "numeric": "numeric", "boolean": "boolean", "json": "text",
               "jsonb": "jsonb"}
PG_FK_ACTION = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
                "d": "SET DEFAULT"}


def new_table():
    return {"columns": [], "pk": (), "unique": set(), "fks": set(), "checks": set(),
            "indexes": {}}


# --- SQLite --------------------------------------------------------------------------------
def strip_sql_comments(sql):
    """sql without -- comments (outside literals)."""
    return _outside_literals(sql, lambda s: re.sub(r"--[^\n]*", "", s))


def sqlite_checks(create_sql):
    """The expressions of every CHECK (...) in a CREATE TABLE text."""
    sql = strip_sql_comments(create_sql)
    out = []
    for m in re.finditer(r"\bCHECK\s*\(", sql, re.I):
        depth, i, quote = 1, m.end(), False
        while depth:
            ch = sql[i]
            if ch == "'":
                quote = not quote
            elif not quote:
                depth += {"(": 1, ")": -1}.get(ch, 0)
            i += 1
        out.append(sql[m.end():i - 1])
    return out


def sqlite_model(path):
    c = sqlite3.connect(path)
    model = {"tables": {}, "views": {}, "triggers": set()}
    objects = c.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                        "WHERE name NOT LIKE 'sqlite_%'").fetchall()
    for kind, name, table, sql in objects:
        if kind == "view":
            model["views"][name] = [r[1] for r in c.execute(
                "SELECT * FROM pragma_table_info(?)", (name,))]
        elif kind == "trigger":
            model["triggers"].add((table, name))
        elif kind == "table":
            t = model["tables"][name] = new_table()
            info = c.execute("SELECT name, type, \"notnull\", dflt_value, pk "
                             "FROM pragma_table_info(?) ORDER BY cid", (name,)).fetchall()
            pk = [r for r in sorted(info, key=lambda r: r[4]) if r[4]]
            rowid = len(pk) == 1 and pk[0][1].upper() == "INTEGER" and \
                "WITHOUT ROWID" not in sql.upper()
            for col, typ, notnull, default, pkpos in info:
                auto = bool(rowid and pkpos)
                t["columns"].append((col, sqlite_affinity(typ), bool(notnull or pkpos),
                                     norm_default(default), auto))
            t["pk"] = tuple(r[0] for r in pk)
            for expr in sqlite_checks(sql):
                t["checks"].add(norm_check(expr))
            fks = {}
            for fid, _seq, parent, frm, to, on_update, on_delete, _match in c.execute(
                    "SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq", (name,)):
                fks.setdefault(fid, [parent, [], [], on_delete, on_update])
                fks[fid][1].append(frm)
                fks[fid][2].append(to)
            for parent, frm, to, on_delete, on_update in fks.values():
                if to == [None] * len(to):  # REFERENCES parent: its primary key
                    to = [r[1] for r in c.execute("SELECT pk, name FROM pragma_table_info(?) "
                                                  "WHERE pk > 0 ORDER BY pk", (parent,))]
                t["fks"].add((tuple(frm), parent, tuple(to), on_delete, on_update))
            for _seq, iname, unique, origin, partial in c.execute(
                    "SELECT * FROM pragma_index_list(?)", (name,)):
                cols = tuple(r[0] for r in c.execute(
                    "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (iname,)))
                if origin == "u":
                    t["unique"].add(cols)
                elif origin == "c":
                    isql = strip_sql_comments(c.execute(
                        "SELECT sql FROM sqlite_master WHERE name = ?", (iname,)).fetchone()[0])
                    m = re.search(r"\bWHERE\b(.*)$", isql, re.I | re.S) if partial else None
                    t["indexes"][iname] = (cols, bool(unique),
                                           norm_expr(m.group(1)) if m else None)
    c.close()
    return model


# --- PostgreSQL ----------------------------------------------------------------------------
PG_CONSTRAINTS = """
SELECT rel.relname, con.contype, pg_get_constraintdef(con.oid),
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
       frel.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
       con.confdeltype, con.confupdtype
FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
JOIN pg_namespace ns ON ns.oid = rel.relnamespace LEFT JOIN pg_class frel ON frel.oid = con.confrelid
WHERE ns.nspname = current_schema() AND con.contype IN ('p', 'u', 'f', 'c')
"""
PG_INDEXES = """
SELECT t.relname, i.relname, ix.indisunique,
       ARRAY(SELECT a.attname::text FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(n, p)
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.p),
       pg_get_expr(ix.indpred, ix.indrelid)
FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace ns ON ns.oid = t.relnamespace
WHERE ns.nspname = current_schema()
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid AND c.conrelid = t.oid
                  AND c.contype IN ('p', 'u'))
"""


def pg_model(cur):
    """The model of the database cur is connected to (in cur's transaction)."""
    model = {"tables": {}, "views": {}, "triggers": set()}
    cur.execute("SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = current_schema()")
    kinds = {name: kind for name, kind in cur.fetchall() if name not in PG_ONLY}
    cur.execute("SELECT table_name, column_name, data_type, is_nullable, column_default, "
                "is_identity FROM information_schema.columns "
                "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")
    for table, col, typ, nullable, default, identity in cur.fetchall():
        if table not in kinds:
            continue
        if kinds[table] == "VIEW":
            model["views"].setdefault(table, []).append(col)
            continue
        t = model["tables"].setdefault(table, new_table())
        t["columns"].append((col, PG_AFFINITY.get(typ, typ), nullable == "NO",
                             norm_default(default), identity == "YES"))
    for name, kind in kinds.items():
        if kind == "BASE TABLE":
            model["tables"].setdefault(name, new_table())
    cur.execute(PG_CONSTRAINTS)
    for table, kind, definition, cols, parent, pcols, on_delete, on_update in cur.fetchall():
        if table in PG_ONLY:
            continue
        t = model["tables"][table]
        if kind == "p":
            t["pk"] = tuple(cols)
        elif kind == "u":
            t["unique"].add(tuple(cols))
        elif kind == "f":
            t["fks"].add((tuple(cols), parent, tuple(pcols), PG_FK_ACTION[on_delete],
                          PG_FK_ACTION[on_update]))
        else:
            t["checks"].add(norm_check(re.sub(r"^CHECK\s*", "", definition)))
    cur.execute(PG_INDEXES)
    for table, iname, unique, cols, predicate in cur.fetchall():
        if table not in PG_ONLY:
            model["tables"][table]["indexes"][iname] = (tuple(cols), bool(unique),
                                                        norm_expr(predicate) if predicate
                                                        else None)
    cur.execute("SELECT DISTINCT event_object_table, trigger_name FROM information_schema.triggers "
                "WHERE trigger_schema = current_schema()")
    model["triggers"] = set(cur.fetchall())
    return model


# --- the comparison ------------------------------------------------------------------------
def _col(c):
    name, affinity, notnull, default, auto = c
    return "%s %s%s%s%s" % (name, affinity, " NOT NULL" if notnull else "",
                            "" if default is None else " DEFAULT %r" % (default,),
                            " rowid/identity" if auto else "")


def compare(a, b, names=("sqlite", "postgresql")):
    """The differences between two models, one line each (empty when they are equal)."""
    out = []

    def one_side(what, xs, ys):
        for x in sorted(set(xs) - set(ys), key=repr):
            out.append("%s %s only in %s" % (what, x, names[0]))
        for y in sorted(set(ys) - set(xs), key=repr):
            out.append("%s %s only in %s" % (what, y, names[1]))

    ta, tb = a["tables"], b["tables"]
    one_side("table", ta, tb)
    for name in sorted(set(ta) & set(tb)):
        x, y = ta[name], tb[name]
        cx, cy = {c[0]: c for c in x["columns"]}, {c[0]: c for c in y["columns"]}
        one_side("table %s: column" % name, cx, cy)
        for col in [c[0] for c in x["columns"] if c[0] in cy]:
            if cx[col] != cy[col]:
                out.append("table %s: column %s: %s (%s) vs %s (%s)"
                           % (name, col, _col(cx[col]), names[0], _col(cy[col]), names[1]))
        common = set(cx) & set(cy)
        ox = [c[0] for c in x["columns"] if c[0] in common]
        oy = [c[0] for c in y["columns"] if c[0] in common]
        if ox != oy:
            out.append("table %s: column order %s (%s) vs %s (%s)" % (name, ox, names[0], oy,
                                                                      names[1]))
        if x["pk"] != y["pk"]:
            out.append("table %s: primary key %s (%s) vs %s (%s)" % (name, x["pk"], names[0],
                                                                     y["pk"], names[1]))
        one_side("table %s: UNIQUE" % name, x["unique"], y["unique"])
        one_side("table %s: foreign key" % name, x["fks"], y["fks"])
        one_side("table %s: CHECK" % name, x["checks"], y["checks"])
        one_side("table %s: index" % name, x["indexes"], y["indexes"])
        for iname in sorted(set(x["indexes"]) & set(y["indexes"])):
            if x["indexes"][iname] != y["indexes"][iname]:
                out.append("table %s: index %s: %s (%s) vs %s (%s)"
                           % (name, iname, x["indexes"][iname], names[0], y["indexes"][iname],
                              names[1]))
    one_side("view", a["views"], b["views"])
    for name in sorted(set(a["views"]) & set(b["views"])):
        if a["views"][name] != b["views"][name]:
            out.append("view %s: columns %s (%s) vs %s (%s)" % (name, a["views"][name], names[0],
                                                                b["views"][name], names[1]))
    one_side("trigger", a["triggers"], b["triggers"])
    return out


# --- the two databases ---------------------------------------------------------------------
def migrate_by_toolgate(db, cwd):
    """Has toolgate open TOOLGATE_DB=db and apply its migrations: a worker started with --once
    on an empty queue migrates and exits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLGATE_", "COMPOSIO_"))}
    env.update(TOOLGATE_DB=db, TOOLGATE_LOG_LEVEL="warn")
    p = subprocess.run([os.path.join(BUILD, "toolgate-worker"), "--once"], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p


def step_numbers(folder):
    return sorted(int(os.path.basename(f)[:3]) for f in glob.glob(os.path.join(folder, "*.sql")))


class Backends:
    """Both databases, each new and migrated by toolgate: .sqlite (a file path) and .pg (a
    psycopg2 connection to a new database on the test server)."""

    def __enter__(self):
        import psycopg2
        self.tmp = tempfile.mkdtemp(prefix="toolgate-schema-")
        self.sqlite = os.path.join(self.tmp, "toolgate.db")
        migrate_by_toolgate(self.sqlite, self.tmp)
        self.pg_uri = pgserver().create_database(pg_server_uri(), prefix="tg_schema")
        migrate_by_toolgate(self.pg_uri, self.tmp)
        self.pg = psycopg2.connect(self.pg_uri, connect_timeout=10)
        return self

    def __exit__(self, *exc):
        self.pg.close()
        pgserver().drop_database(self.pg_uri)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


# --- tests ---------------------------------------------------------------------------------
def test_one_numbered_series():
    """Every PostgreSQL step after the baseline has its SQLite twin, and both series end at the
    same version."""
    lite, pg = step_numbers(os.path.join(SRC, "schema")), step_numbers(os.path.join(SRC, "schema",
                                                                                    "pg"))
    assert pg and pg[0] <= lite[-1], (lite, pg)
    assert [n for n in pg[1:] if n not in lite] == [], (lite, pg)
    assert lite[-1] == pg[-1], "the last step of schema/ is %d, of schema/pg %d" % (lite[-1],
                                                                                  pg[-1])


def test_backends_have_equivalent_schemas():
    with Backends() as b:
        lite = sqlite_model(b.sqlite)
        with b.pg.cursor() as cur:
            pg = pg_model(cur)
            cur.execute("SELECT version FROM schema_version")
            versions = cur.fetchall()
        diff = compare(lite, pg)
        assert not diff, "the schemas differ:\n" + "\n".join(diff)
        last = step_numbers(os.path.join(SRC, "schema"))[-1]
        assert versions == [(last,)], versions
        c = sqlite3.connect(b.sqlite)
        assert c.execute("PRAGMA user_version").fetchone()[0] == last
        c.close()
        # The readers read something: what schema/001..008 hold, seen from SQLite.
        tables = lite["tables"]
        assert len(tables) == 20, sorted(tables)
        assert tables["workflow_runs"]["indexes"]["workflow_runs_lease"] == (
            ("lease_expires_at",), False, "status='running'"), tables["workflow_runs"]["indexes"]
        assert tables["workflow_runs"]["indexes"]["workflow_runs_idem"] == (
            ("user_id", "idempotency_key"), True, "idempotency_keyisnotnull")
        assert ("values", "resolution", frozenset({"retry", "skip", "fail"}), True) in \
            tables["node_executions"]["checks"], tables["node_executions"]["checks"]
        assert ("expr", "credits>=0") in tables["users"]["checks"]
        assert (("connected_account_id",), "connected_accounts", ("id",), "CASCADE",
                "NO ACTION") in tables["mcp_connections"]["fks"]
        assert ("run_events", "seq") not in tables and \
            tables["run_events"]["columns"][0] == ("seq", "integer", True, None, True)
        assert tables["tools"]["columns"][9] == ("status", "text", True, "active", False)
        assert ("user_id", "auth_config_id") in tables["connected_accounts"]["unique"]
        assert {t for t, _ in lite["triggers"]} == {"workflow_runs"} and \
            len(lite["triggers"]) == 3, lite["triggers"]
        assert sorted(lite["views"]) == ["v_connections", "v_credits", "v_runs",
                                         "v_tool_executions"]


# (side, statements, table the difference must name)
MUTATIONS = [
    ("sqlite", "ALTER TABLE users ADD COLUMN nickname TEXT", "users"),
    ("sqlite", "DROP INDEX workflow_runs_lease; CREATE INDEX workflow_runs_lease ON "
               "workflow_runs(lease_expires_at) WHERE status = 'queued'", "workflow_runs"),
    ("sqlite", "CREATE TABLE extra (x INTEGER)", "extra"),
    ("sqlite", "DROP TRIGGER user_queue_delete", "workflow_runs"),
    ("postgresql", "ALTER TABLE tools ALTER COLUMN version TYPE TEXT", "tools"),
    ("postgresql", "ALTER TABLE tools ALTER COLUMN status SET DEFAULT 'inactive'", "tools"),
    ("postgresql", "ALTER TABLE reviews ALTER COLUMN title SET NOT NULL", "reviews"),
    ("postgresql", "ALTER TABLE run_events ALTER COLUMN seq DROP IDENTITY", "run_events"),
    ("postgresql", "ALTER TABLE run_events DROP CONSTRAINT run_events_type_check; "
                   "ALTER TABLE run_events ADD CHECK (type IN ('node_started', 'node_finished', "
                   "'node_skipped', 'waiting', 'resumed'))", "run_events"),
    ("postgresql", "ALTER TABLE users DROP CONSTRAINT users_credits_check; "
                   "ALTER TABLE users ADD CHECK (credits > 0)", "users"),
    ("postgresql", "DROP INDEX tool_executions_run; "
                   "CREATE INDEX tool_executions_run ON tool_executions(run_id)", "tool_executions"),
    ("postgresql", "DROP INDEX connectors_name; CREATE INDEX connectors_name ON "
                   "connectors(user_id, name) WHERE deleted_at IS NULL", "connectors"),
    ("postgresql", "ALTER TABLE reviews DROP CONSTRAINT reviews_run_id_fkey", "reviews"),
    ("postgresql", "ALTER TABLE mcp_connections DROP CONSTRAINT "
                   "mcp_connections_connected_account_id_fkey; ALTER TABLE mcp_connections ADD "
                   "FOREIGN KEY (connected_account_id) REFERENCES connected_accounts(id)",
     "mcp_connections"),
    ("postgresql", "ALTER TABLE credentials DROP CONSTRAINT credentials_user_id_name_key",
     "credentials"),
    ("postgresql", "ALTER TABLE tool_executions DROP COLUMN tool_call_id", "tool_executions"),
    ("postgresql", "DROP VIEW v_credits", "v_credits"),
]


def test_comparison_reports_each_difference():
    with Backends() as b:
        base_lite = sqlite_model(b.sqlite)
        with b.pg.cursor() as cur:
            base_pg = pg_model(cur)
        assert not compare(base_lite, base_pg)
        for side, statements, table in MUTATIONS:
            if side == "sqlite":
                path = os.path.join(b.tmp, "mutated.db")
                shutil.copy(b.sqlite, path)
                c = sqlite3.connect(path)
                c.executescript(statements)
                c.close()
                lite, pg = sqlite_model(path), base_pg
                os.unlink(path)
            else:  # inside a transaction that is rolled back: DDL is transactional here
                with b.pg.cursor() as cur:
                    cur.execute(statements)
                    lite, pg = base_lite, pg_model(cur)
                b.pg.rollback()
            diff = compare(lite, pg)
            assert diff, "not reported: %s: %s" % (side, statements)
            assert all(table in line for line in diff), (statements, diff)


def test_check_and_default_normalising():
    """Both dialects' spellings of one CHECK and one default come out equal; different ones
    do not."""
    lite = norm_check("status = 'a' OR status = 'b' OR\n  status = 'it''s'")
    pg = norm_check("((status = ANY (ARRAY['a'::text, 'b'::text, 'it''s'::text])))")
    assert lite == pg == ("values", "status", frozenset({"a", "b", "it's"}), False), (lite, pg)
    assert norm_check("x IS NULL OR x = 'a'") == norm_check(
        "((x IS NULL) OR (x = ANY (ARRAY['a'::text])))")
    assert norm_check("x IS NULL OR x = 'a'") != norm_check("x = 'a'")
    assert norm_check("x = 'a' AND y = 'b'")[0] == "expr"
    assert norm_check("x NOT IN ('a')")[0] == "expr"
    assert norm_default("'{}'::text") == norm_default("'{}'") == "{}"
    assert norm_default("0") == 0 and norm_default("'0'") == "0"
    assert norm_expr("(deleted_at IS NULL)") == norm_expr("deleted_at IS NULL")
    assert norm_expr("(status = 'Running'::text)") != norm_expr("status = 'running'")


if __name__ == "__main__":
    main(globals())
