#!/usr/bin/env python3
"""Every SQL statement of the C sources, prepared on both backends.

What: each .c file under common/, gateway/ and worker/ is preprocessed with its own compile flags
(compile_commands.json, `cc -E`), so macros that hold SQL (FENCE, TG_SQL) are expanded. The
string literals of the output are collected with the file and line they come from (the line
markers), adjacent literals are joined into one text, and the texts that begin with SELECT,
INSERT, UPDATE, DELETE, WITH or REPLACE are statements. TG_SQL(db, sqlite, pg) expands to
`(tg_db_dialect(db) == TG_DB_PG ? (pg) : (sqlite))`: its two sides go to their own backend,
every other statement to both.

Why: the PostgreSQL backend prepares each text on first use, so a statement that only one
dialect accepts fails at run time, on the path that reaches it. Preparing every text here finds
it at test time instead, with the file and line.

How each backend checks a text:
- PostgreSQL: `?N` and bare `?` (numbered left to right as SQLite numbers them) become `$N`
  outside quoted strings and identifiers, as tg_db_pg.c does; the text is PREPAREd with no
  parameter types (so a parameter whose type the server cannot infer fails, as it would in the
  backend) inside one transaction on a fresh database migrated by schema/pg/*.sql, each in a
  savepoint, and everything is rolled back. The database is dropped at the end. A statement that
  returns rows is also run once with every parameter NULL (rolled back) to read its result
  types: a numeric column (sum() of integers) fails, since SQLite gives an integer there and
  the backend reads numeric as a real. Where the text is passed with a bind type string
  (tg_db_exec, tg_db_query), each letter must suit the type the server inferred for its
  parameter (text to a bigint fails at run time on PostgreSQL, silently works on SQLite), and
  there must be one letter per parameter.
- SQLite: the text is compiled (EXPLAIN, with every parameter bound to NULL) on an in-memory
  database migrated by schema/*.sql.

Prints `file:line [backend] error: statement` for each failure and exits 1 on any; 0 when all
pass. Usage:
  check_sql.py [--build DIR] [--pg-uri URI] [--pg-schema DIR] [--sqlite-only] [--list]
The URI defaults to $TOOLGATE_TEST_PG_URI, then the first line of DIR/pg/uri (the ctest
fixture's). Needs /usr/bin/python3 (psycopg2) for the PostgreSQL part.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import time
import urllib.parse

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# The backends themselves: their SQL is each one's own dialect (the migration runner, catalog
# reads), run only on that backend and tested there (tests/unit/common/tg_db*.c).
BACKENDS = {"common/tg_db_sqlite.c", "common/tg_db_pg.c", "common/tg_db.c"}
DIRS = ("common", "gateway", "worker")
# The opening of a statement (an HTTP method such as "DELETE" alone is not one).
KEYWORDS = re.compile(r"^\s*(SELECT\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|"
                      r"UPDATE\s+(OR\s+\w+\s+)?\w+\s+SET\s|DELETE\s+FROM\s|WITH\s|"
                      r"REPLACE\s+INTO\s)")
WORD = re.compile(r"[A-Za-z_0-9]+")
PLACEHOLDER = re.compile(r"\?(\d*)")
NUMERIC_OID = 1700
# Between a statement and its bind types: only the commas and parentheses of the call.
PUNCTUATION = re.compile(r"^[\s,():]*$")
BIND_TYPES = re.compile(r"^[siInjb]*$")
# Bind letters (tg_db.h) and the parameter types PostgreSQL may infer for each: text binds go to
# text-like parameters, numbers to numbers (or text), an int64 to nothing narrower than bigint
# (a time in ms overflows an integer), a BLOB to bytea.
BIND_OK = {
    "s": {"text", "character varying", "json", "jsonb", "unknown"},
    "j": {"text", "character varying", "json", "jsonb"},
    "i": {"bigint", "integer", "smallint", "numeric", "double precision", "text"},
    "I": {"bigint", "numeric", "double precision", "text"},  # 64 bits: not into an integer
    "b": {"bytea"},
}
LINEMARKER = re.compile(r'#\s*(\d+)\s+"((?:[^"\\]|\\.)*)"[^\n]*')
# What precedes each side of TG_SQL's expansion.
PG_SIDE = re.compile(r"tg_db_dialect\s*\([^;{}]*?\)\s*==\s*TG_DB_PG\s*\?\s*\(\s*$")
SQLITE_SIDE = re.compile(r"^\s*\)\s*:\s*\(\s*$")


class Statement:
    """A statement text at file:line for backend ("both", "pg" or "sqlite"); binds: the type
    string of tg_db_exec/tg_db_query that follows it (tg_db.h: one letter a parameter, ?1 first),
    or None where the text is not passed with one (tg_stmt_prepare)."""

    def __init__(self, file, line, text, backend, binds=None):
        self.file, self.line, self.text, self.backend = file, line, text, backend
        self.binds = binds

    def where(self):
        return "%s:%d" % (self.file, self.line)


def unescape(body):
    """The bytes of a C string literal's body as text (escapes other than \\n \\t \\" \\\\ and
    \\' are kept as the escaped character)."""
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            e = body[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(e, e))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def literal_groups(text):
    """The groups of adjacent string literals of preprocessed C text: a list of
    (file, line, joined text, the code before the group, the code after it up to the next
    group). Comments are gone after cpp; character literals are skipped."""
    groups = []
    file, line = "", 1
    i, n = 0, len(text)
    code = []  # code since the last group (not literals, not line markers)
    cur = None  # [file, line, [parts], code_before]
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and c == "#":
            m = LINEMARKER.match(text, i)
            j = text.find("\n", i)
            j = n if j < 0 else j
            if m:
                line, file = int(m.group(1)) - 1, unescape(m.group(2))
            i = j
            continue
        if c == "\n":
            line += 1
            at_line_start = True
            code.append(c)
            i += 1
            continue
        if c in " \t\r\f\v":
            code.append(c)
            i += 1
            continue
        at_line_start = False
        if c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            code.append(text[i:j + 1])
            i = j + 1
            continue
        if c == '"' or (c in "uUL" and text.startswith('"', i + 1)) or text.startswith('u8"', i):
            start = text.index('"', i)
            j = start + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            part = unescape(text[start + 1:j])
            between = "".join(code)
            if cur is not None and between.strip() == "":
                cur[2].append(part)
            else:
                if cur is not None:
                    groups.append((cur[0], cur[1], "".join(cur[2]), cur[3], between))
                cur = [file, line, [part], between]
            code = []
            i = j + 1
            continue
        # an identifier or any other token character
        m = WORD.match(text, i)
        if m:
            code.append(m.group(0))
            i = m.end()
        else:
            code.append(c)
            i += 1
    if cur is not None:
        groups.append((cur[0], cur[1], "".join(cur[2]), cur[3], "".join(code)))
    return groups


def bind_types(groups, k):
    """The type string passed after the statement of groups[k]: the next literal reached across
    nothing but punctuation (over TG_SQL's other side), if it is one; else None."""
    for _, _, text, before, _ in groups[k + 1:]:
        if not PUNCTUATION.match(before):
            return None
        if BIND_TYPES.match(text):
            return text
        if not KEYWORDS.match(text):
            return None
    return None


def statements_of(preprocessed, keep_file):
    """The statements of one preprocessed translation unit whose source file passes keep_file
    (a function of the file name as cpp wrote it -> the name to report, or None)."""
    out, prev_pg = [], False
    groups = literal_groups(preprocessed)
    for k, (file, line, text, before, _) in enumerate(groups):
        backend = "both"
        if PG_SIDE.search(before):
            backend = "pg"
        elif prev_pg and SQLITE_SIDE.match(before):
            backend = "sqlite"
        prev_pg = backend == "pg"
        name = keep_file(file)
        if name is None or not KEYWORDS.match(text):
            continue
        out.append(Statement(name, line, text.strip(), backend, bind_types(groups, k)))
    return out


def compile_entries(build):
    """(source path, argv for `cc -E`) for each C file of DIRS in the build's
    compile_commands.json."""
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    roots = tuple(os.path.join(SRC, d) + os.sep for d in DIRS)
    seen, out = set(), []
    for e in entries:
        path = os.path.normpath(os.path.join(e["directory"], e["file"]))
        if not path.startswith(roots) or not path.endswith(".c") or path in seen:
            continue
        seen.add(path)
        argv = e.get("arguments") or shlex.split(e["command"])
        cmd, skip = [], False
        for a in argv:
            if skip:
                skip = False
                continue
            if a in ("-o", "-MF", "-MT", "-MQ"):
                skip = True
                continue
            if a in ("-c", "-MD", "-MMD") or a == path or a == e["file"] or a.startswith("-W"):
                continue
            cmd.append(a)
        out.append((path, e["directory"], cmd + ["-E", "-w", path]))
    return out


def collect(build, only=None):
    """Every statement of the sources (or of the one file only, a path from the source root),
    deduplicated by (file, line, text, backend)."""
    def keep(file):
        p = os.path.normpath(os.path.join(build, file)) if not os.path.isabs(file) else file
        if p.startswith(tuple(os.path.join(SRC, d) + os.sep for d in DIRS)):
            rel = os.path.relpath(p, SRC)
            return None if rel in BACKENDS else rel
        return None

    def run(entry):
        path, cwd, cmd = entry
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace")
        if r.returncode != 0:
            raise RuntimeError("%s: cc -E failed:\n%s" % (path, r.stderr[-2000:]))
        return statements_of(r.stdout, keep)

    uniq = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        entries = [e for e in compile_entries(build)
                   if only is None or os.path.relpath(e[0], SRC) == only]
        for stmts in pool.map(run, entries):
            for s in stmts:
                uniq.setdefault((s.file, s.line, s.text, s.backend), s)
    return sorted(uniq.values(), key=lambda s: (s.file, s.line, s.backend))


def to_pg_placeholders(sql):
    """?N and bare ? (numbered as SQLite numbers them: one more than the largest so far) become
    $N outside '...' strings, "..." identifiers and comments."""
    out, i, n, top = [], 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif c == "?":
            m = PLACEHOLDER.match(sql, i)
            num = int(m.group(1)) if m.group(1) else top + 1
            top = max(top, num)
            out.append("$%d" % num)
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sqlite_param_count(sql):
    """The parameter count SQLite gives the text (the largest number)."""
    top = 0
    for m in PLACEHOLDER.finditer(re.sub(r"'(?:[^']|'')*'", "''", sql)):
        top = max(top, int(m.group(1)) if m.group(1) else top + 1)
    return top


def schema_files(folder):
    return [os.path.join(folder, f) for f in sorted(os.listdir(folder))
            if re.match(r"^\d{3}_.*\.sql$", f)]


def sqlite_db(src):
    db = sqlite3.connect(":memory:")
    for path in schema_files(os.path.join(src, "schema")):
        with open(path) as f:
            db.executescript(f.read())
    return db


def check_sqlite(db, stmts):
    """(statement, error) for each statement SQLite does not compile."""
    bad = []
    for s in stmts:
        try:
            db.execute("EXPLAIN " + s.text, (None,) * sqlite_param_count(s.text)).fetchall()
        except sqlite3.Error as e:
            bad.append((s, str(e)))
    return bad


class PgDatabase:
    """A new database on the server of uri, migrated by schema/pg/*.sql; drop() removes it."""

    def __init__(self, uri, folder):
        import psycopg2  # Debian's python3-psycopg2: only the PostgreSQL part needs it
        self.psycopg2 = psycopg2
        self.admin = psycopg2.connect(uri)
        self.admin.autocommit = True
        self.name = "check_sql_%d_%d" % (os.getpid(), int(time.time() * 1000))
        with self.admin.cursor() as c:
            c.execute("CREATE DATABASE %s" % self.name)
        parts = urllib.parse.urlsplit(uri)
        self.conn = psycopg2.connect(urllib.parse.urlunsplit(parts._replace(path="/" + self.name)))
        files = schema_files(folder) if os.path.isdir(folder) else []
        if not files:
            raise RuntimeError("no PostgreSQL schema in %s" % folder)
        with self.conn.cursor() as c:
            for path in files:
                with open(path) as f:
                    c.execute(f.read())
        self.conn.commit()

    def check(self, stmts):
        """(statement, error) for each statement the server does not prepare."""
        bad = []
        with self.conn.cursor() as c:
            for k, s in enumerate(stmts):
                c.execute("SAVEPOINT s")
                try:
                    # psycopg2 formats % only when given parameters: the text goes as written.
                    c.execute("PREPARE check_%d AS %s" % (k, to_pg_placeholders(s.text)))
                except self.psycopg2.Error as e:
                    c.execute("ROLLBACK TO SAVEPOINT s")
                    msg = (e.pgerror or str(e)).strip().replace("\n", " | ")
                    bad.append((s, msg))
                    continue
                mismatch = self.bind_mismatches(c, k, s.binds)
                numeric = self.numeric_columns(c, k)
                c.execute("ROLLBACK TO SAVEPOINT s")
                if numeric:
                    bad.append((s, "result column %s is numeric on PostgreSQL (SQLite gives an "
                                   "integer): CAST it AS BIGINT" % ", ".join(numeric)))
                if mismatch:
                    bad.append((s, "; ".join(mismatch)))
            self.conn.rollback()
            c.execute("DEALLOCATE ALL")
        return bad

    def bind_mismatches(self, c, k, binds):
        """How the bind letters (binds, or None) disagree with the parameter types the server
        inferred for prepared statement k: a list of messages."""
        if binds is None:
            return []
        c.execute("SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = %s",
                  ("check_%d" % k,))
        types = c.fetchone()[0] or []
        out = []
        for i, (letter, pgtype) in enumerate(zip(binds, types)):
            if letter != "n" and pgtype not in BIND_OK[letter]:
                out.append("?%d is bound '%s' but PostgreSQL types it %s" % (i + 1, letter, pgtype))
        if len(binds) != len(types):
            out.append("%d bind letters for %d parameters" % (len(binds), len(types)))
        return out

    def numeric_columns(self, c, k):
        """The result columns of prepared statement k typed numeric (sum() of integers is; rows
        read it as a real), found by running it with every parameter NULL (in the caller's
        savepoint, rolled back); [] when it returns no rows or fails with NULLs."""
        c.execute("SELECT cardinality(parameter_types) FROM pg_prepared_statements "
                  "WHERE name = %s", ("check_%d" % k,))
        nparams = c.fetchone()[0] or 0
        try:
            c.execute("SAVEPOINT run")
            c.execute("EXECUTE check_%d%s" % (k, "(%s)" % ", ".join(["NULL"] * nparams)
                                              if nparams else ""))
        except self.psycopg2.Error:
            c.execute("ROLLBACK TO SAVEPOINT run")
            return []
        return [d.name for d in (c.description or []) if d.type_code == NUMERIC_OID]

    def drop(self):
        self.conn.close()
        with self.admin.cursor() as c:
            c.execute("DROP DATABASE IF EXISTS %s" % self.name)
        self.admin.close()


def pg_uri(args):
    if args.pg_uri:
        return args.pg_uri
    if os.environ.get("TOOLGATE_TEST_PG_URI"):
        return os.environ["TOOLGATE_TEST_PG_URI"]
    path = os.path.join(args.build, "pg", "uri")
    if os.path.exists(path):
        with open(path) as f:
            return f.readline().strip()
    return None


def check(stmts, uri, src=SRC, pg_schema=None, sqlite_only=False):
    """The failures of stmts: a list of (statement, backend, error). pg_schema: the folder of
    the PostgreSQL migrations (default src/schema/pg)."""
    bad = []
    db = sqlite_db(src)
    bad += [(s, "sqlite", e) for s, e in check_sqlite(db, [s for s in stmts if s.backend != "pg"])]
    db.close()
    if not sqlite_only:
        pg = PgDatabase(uri, pg_schema or os.path.join(src, "schema", "pg"))
        try:
            bad += [(s, "pg", e) for s, e in pg.check([s for s in stmts if s.backend != "sqlite"])]
        finally:
            pg.drop()
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("TOOLGATE_BUILD_DIR") or
                    os.path.join(SRC, "build-asan"))
    ap.add_argument("--pg-uri")
    ap.add_argument("--pg-schema", help="folder of the PostgreSQL migrations (schema/pg)")
    ap.add_argument("--sqlite-only", action="store_true")
    ap.add_argument("--list", action="store_true", help="print the statements found and exit")
    args = ap.parse_args()
    stmts = collect(args.build)
    if args.list:
        for s in stmts:
            print("%s [%s] %s" % (s.where(), s.backend, " ".join(s.text.split())))
        return 0
    uri = pg_uri(args)
    if not args.sqlite_only and not uri:
        print("check_sql: no PostgreSQL URI (--pg-uri, TOOLGATE_TEST_PG_URI or BUILD/pg/uri)",
              file=sys.stderr)
        return 2
    bad = check(stmts, uri, pg_schema=args.pg_schema, sqlite_only=args.sqlite_only)
    for s, backend, err in bad:
        print("%s [%s] %s: %s" % (s.where(), backend, err, " ".join(s.text.split())[:300]))
    print("check_sql: %d statements, %d failures" % (len(stmts), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
