"""Integration-test harness: starts the real programs on 127.0.0.1 and talks to them over HTTP.

A Stack owns one temporary directory with a real SQLite file and starts, on free loopback ports:
the Composio simulator (tests/sim), the MCP reference server (server-everything, pinned in
tests/peers), the gateway and workers. Every process is stopped by stop(), which also checks
that the gateway and workers exited cleanly (exit 0: under ASan a leak makes that fail) and that
no process of the stack logged a sanitizer report (under TSan a race in any of them, killed or
restarted ones included, fails the test).
Everything is bounded in time: HTTP calls time out, waits have deadlines.

Only the standard library is used, so a fresh machine needs nothing beyond python3; the
PostgreSQL mode needs Debian's python3-psycopg2.

PostgreSQL mode (TOOLGATE_TEST_DB=pg; ctest's integration-pg/<name> tests): the server is the
one in TOOLGATE_TEST_PG_URI (ctest's fixture `pg`, tests/pg/pgserver.py), else the one whose
folder TOOLGATE_TEST_PG_DIR names, else one this process starts for itself and stops at exit.
Each Stack creates its own database there and passes its URI as TOOLGATE_DB; s.db() and
s.query() go through psycopg2 with sqlite3's surface (PgConnection), so a test reads and writes
rows the same way on both backends. What is SQLite's alone says so: db_path names no file,
hold_write_lock raises. A Stack that stopped cleanly drops its database; a failed one keeps it
and prints its URI.
"""
import http.client as httpc
import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SRC = os.environ.get("TOOLGATE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
# ctest passes TOOLGATE_BUILD_DIR; by hand, prefer the test build (scripts/test.sh) if present.
BUILD = os.environ.get("TOOLGATE_BUILD_DIR") or next(
    (d for d in (os.path.join(SRC, "build-asan"), os.path.join(SRC, "build")) if os.path.isdir(d)),
    os.path.join(SRC, "build"))
PEERS = os.path.join(SRC, "tests", "peers")
DB_BACKEND = os.environ.get("TOOLGATE_TEST_DB", "sqlite")  # "sqlite" or "pg"
API_KEY = "ak_test_0123456789"
PROVIDER = "everything"
AUTH_CONFIG = "ac_everything"


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out = set()  # ports free_port returned in this process


def free_port():
    """A free loopback port below the kernel's ephemeral range.

    Port 0 would come from the ephemeral range, where outgoing connections (curl, the test's own
    clients) also take their local ports, so a port picked that way can be taken before the
    server binds it. Below that range only other tests' servers compete: ctest runs two test
    files at once, and a Stack picks its ports seconds before its servers bind them, so each
    test process draws from its own slice of the range (by pid), and two processes collide only
    when their pids share a slice (1 in 64), not whenever two random picks meet. A port that is
    in use is skipped, and so is one this process handed out before (its server may not have
    bound it yet).
    """
    import random
    hi = min(_ephemeral_low(), 32768) - 1
    lo = max(hi - 12000, 1024)
    width = (hi - lo) // 64
    mine = lo + (os.getpid() % 64) * width
    for i in range(400):  # this process's slice first; the whole range if it is used up
        port = random.randint(mine, mine + width - 1) if i < 200 else random.randint(lo, hi)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port below %d" % hi)


# --- every gateway answer against docs/openapi.json ----------------------------------------
# http() checks each answer of a gateway a Stack started (GATEWAYS) against the API's
# description: the operation is found by method + path template, the response by status code
# (or "default"); a JSON body must validate against that response's application/json schema
# (JSON Schema 2020-12, $refs resolved over the whole document). A path that no route matches
# must be the router's 404 (or a protocol-level 400/408/413/414/431), a known path with another
# method its 405; both with the Error body. The web UI's static files (routes that
# `toolgate-gateway --routes` marks "static") are not API routes and are not checked. Requests
# to other servers (simulator, MCP peers) are not checked. TOOLGATE_OPENAPI_CHECK=0 turns the
# check off (only for running a test by hand without Debian's python3-jsonschema).
GATEWAYS = set()  # "http://127.0.0.1:<port>" of every gateway a Stack started
PROTOCOL_ERRORS = (400, 408, 413, 414, 431)
_openapi = {}


class OpenApiViolation(AssertionError):
    pass


def openapi_doc():
    if "doc" not in _openapi:
        with open(os.path.join(SRC, "docs", "openapi.json")) as f:
            _openapi["doc"] = json.load(f)
    return _openapi["doc"]


def _openapi_routes():
    """[(regex, {method: operation})] of the document's paths, and the static route regexes."""
    if "routes" not in _openapi:
        doc = openapi_doc()
        routes = []
        for template, item in doc["paths"].items():
            rx = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[A-Za-z0-9_.-]+",
                                         re.escape(template)) + "$")
            routes.append((rx, {m.upper(): o for m, o in item.items() if isinstance(o, dict)}))
        out = subprocess.run([os.path.join(BUILD, "toolgate-gateway"), "--routes"],
                             capture_output=True, text=True, check=True).stdout
        static = []
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[2] == "static":
                static.append((f[0], re.compile("^" + re.escape(f[1]).replace(
                    re.escape("{*}"), "[A-Za-z0-9_.-]+") + "$")))
        _openapi["routes"], _openapi["static"] = routes, static
    return _openapi["routes"], _openapi["static"]


def _openapi_validate(schema, value, where):
    from jsonschema import Draft202012Validator, RefResolver  # Debian's python3-jsonschema
    if "resolver" not in _openapi:
        _openapi["resolver"] = RefResolver.from_schema(openapi_doc())
    v = Draft202012Validator(schema, resolver=_openapi["resolver"])
    errors = sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise OpenApiViolation("%s: the body does not match docs/openapi.json at %s: %s\nbody: %s"
                               % (where, "/".join(map(str, e.absolute_path)) or "(root)",
                                  e.message, json.dumps(value)[:2000]))


def openapi_check(method, path, status, headers, payload):
    """Raises OpenApiViolation when a gateway answer is not what docs/openapi.json says."""
    if os.environ.get("TOOLGATE_OPENAPI_CHECK") == "0":
        return
    method = method.upper()
    path = urllib.parse.urlsplit(path).path
    where = "%s %s -> %d" % (method, path, status)
    routes, static = _openapi_routes()
    if any(m == method and rx.match(path) for m, rx in static):
        return
    is_json = headers.get("content-type", "").startswith("application/json")
    error_ref = {"$ref": "#/components/schemas/Error"}
    ops = [o for rx, o in routes if rx.match(path)]
    if not ops:
        if status not in (404,) + PROTOCOL_ERRORS:
            raise OpenApiViolation("%s: no operation in docs/openapi.json for this path" % where)
        if is_json:
            _openapi_validate(error_ref, payload, where)
        return
    op = next((o[method] for o in ops if method in o), None)
    if op is None:
        if status not in (405,) + PROTOCOL_ERRORS:
            raise OpenApiViolation("%s: docs/openapi.json has no %s operation here" % (where, method))
        if is_json:
            _openapi_validate(error_ref, payload, where)
        return
    resp = op["responses"].get(str(status)) or op["responses"].get("default")
    if resp is None:
        raise OpenApiViolation("%s: status %d is not documented for %s" % (where, status,
                                                                             op["operationId"]))
    if "$ref" in resp:
        resp = openapi_doc()["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
    if not is_json:
        ctype = headers.get("content-type", "").split(";")[0].strip()
        if payload and ctype not in resp.get("content", {ctype: None}):
            raise OpenApiViolation("%s: a %s body where docs/openapi.json documents %s"
                                   % (where, ctype or "untyped", sorted(resp["content"])))
        return
    media = resp.get("content", {}).get("application/json")
    if media is None:
        raise OpenApiViolation("%s: a JSON body where docs/openapi.json documents none" % where)
    _openapi_validate(media["schema"], payload, where)


def http(method, url, body=None, headers=None, timeout=15):
    """One request without following redirects. Returns (status, headers, json_or_text).
    An answer of a gateway a Stack started is checked against docs/openapi.json
    (openapi_check)."""
    u = urllib.parse.urlsplit(url)
    conn = httpc.HTTPConnection(u.hostname, u.port, timeout=timeout)
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    path = u.path + ("?" + u.query if u.query else "")
    try:
        conn.request(method, path or "/", body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        rh = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode("utf-8", "replace")
    if "%s://%s" % (u.scheme, u.netloc) in GATEWAYS:
        openapi_check(method, path or "/", resp.status, rh, payload)
    return resp.status, rh, payload


def b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(sub, secret, exp_in=300, alg="HS256", sign=True, **claims):
    """An HS256 compact JWT made with the standard library (independent of tg_jwt)."""
    import hashlib
    import hmac
    body = dict(claims)
    if sub is not None:
        body["sub"] = sub
    if exp_in is not None:
        body["exp"] = int(time.time()) + exp_in
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    pay = b64url(json.dumps(body).encode())
    signing = ("%s.%s" % (head, pay)).encode()
    sig = b64url(hmac.new(secret.encode(), signing, hashlib.sha256).digest()) if sign else ""
    return "%s.%s.%s" % (head, pay, sig)


def raw(port, data, timeout=5, shut=True):
    """Sends raw bytes on a new connection and returns everything read until EOF or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def c_string(source, name):
    """The value of `static const char NAME[] = "..." "...";` in a C file."""
    m = re.search(r"%s\[\]\s*=\s*((?:\s*\"(?:[^\"\\]|\\.)*\")+)\s*;" % re.escape(name), source)
    assert m, name
    return "".join(bytes(p, "utf-8").decode("unicode_escape")
                   for p in re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(1)))


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except (OSError, httpc.HTTPException) as e:
            last = e
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


SANITIZER_REPORT = re.compile(
    r"WARNING: ThreadSanitizer|ERROR: AddressSanitizer|\.[ch]:\d+:\d+: runtime error:")


def sanitizer_reports(logdir):
    """A problem line per process log in logdir (restarted processes' logs included) that holds
    a sanitizer report, with the report's first lines."""
    out = []
    for name in sorted(os.listdir(logdir)):
        if not name.endswith(".log"):
            continue
        with open(os.path.join(logdir, name), "rb") as f:
            text = f.read().decode("utf-8", "replace")
        m = SANITIZER_REPORT.search(text)
        if m:
            out.append("%s has a sanitizer report:\n%s" % (name, text[m.start():m.start() + 3000]))
    return out


class Proc:
    def __init__(self, name, argv, env, logdir):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        self.log = open(self.log_path, "wb")
        self.killed = False
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
                self.log.close()
                raise AssertionError("%s did not exit within %ss of %s" % (self.name, timeout, sig))
        self.log.close()
        return self.p.returncode

    def kill9(self):
        self.killed = True  # its exit status is expected, not a failure of the stack
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(5)

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


_HOLD = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
c.execute("UPDATE users SET credits = credits WHERE id = 'nobody'")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("COMMIT")
"""


# --- PostgreSQL mode -----------------------------------------------------------------------
_pg = {}


def pgserver():
    """tests/pg/pgserver.py as a module."""
    if "mod" not in _pg:
        sys.path.insert(0, os.path.join(SRC, "tests", "pg"))
        import pgserver as mod
        _pg["mod"] = mod
    return _pg["mod"]


def pg_server_uri():
    """The URI of the PostgreSQL server for this process's stacks (see the module comment)."""
    if "uri" not in _pg:
        uri = os.environ.get("TOOLGATE_TEST_PG_URI")
        if not uri and os.environ.get("TOOLGATE_TEST_PG_DIR"):
            uri = pgserver().uri(os.environ["TOOLGATE_TEST_PG_DIR"])
        if not uri:  # by hand, without ctest's fixture: a server of our own for this process
            import atexit
            d = os.path.join(tempfile.mkdtemp(prefix="toolgate-pg-"), "pg")
            uri = pgserver().start(d)
            atexit.register(pgserver().stop, os.path.dirname(d))
        _pg["uri"] = uri
    return _pg["uri"]


def _pg_value(v):
    """A PostgreSQL value as sqlite3 would give it: numeric -> int or float, bool -> 0/1,
    bytea -> bytes."""
    import decimal
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, memoryview):
        return bytes(v)
    return v


class PgRow(tuple):
    """A row read by name or index, as sqlite3.Row (dict(row) works)."""

    def __new__(cls, values, names):
        row = tuple.__new__(cls, values)
        row._names = names
        return row

    def keys(self):
        return list(self._names)

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)


# Where a test's SQL says something SQLite's way that PostgreSQL says otherwise.
_SQLITE_MASTER = ("(SELECT CASE table_type WHEN 'VIEW' THEN 'view' ELSE 'table' END AS type, "
                  "table_name AS name, table_name AS tbl_name FROM information_schema.tables "
                  "WHERE table_schema = current_schema()) AS sqlite_master")
_TABLE_INFO = ("SELECT c.ordinal_position - 1 AS cid, c.column_name AS name, upper(c.data_type) "
               "AS type, (c.is_nullable = 'NO')::int AS notnull, c.column_default AS dflt_value, "
               "coalesce((SELECT k.ordinal_position FROM information_schema.table_constraints t "
               "JOIN information_schema.key_column_usage k ON k.constraint_name = "
               "t.constraint_name AND k.table_name = t.table_name WHERE t.table_name = "
               "c.table_name AND t.constraint_type = 'PRIMARY KEY' AND k.column_name = "
               "c.column_name), 0) AS pk FROM information_schema.columns c WHERE c.table_schema = "
               "current_schema() AND c.table_name = '%s' ORDER BY c.ordinal_position")


def pg_statement(sql, params=()):
    """(sql, params) for psycopg2 from a test's sqlite3 statement: `?` -> %s and `?N` -> %(pN)s
    outside quotes, `%` doubled; and SQLite's idioms in the tests' own SQL: `INSERT OR IGNORE`
    -> ON CONFLICT DO NOTHING, sqlite_master and PRAGMA table_info(t) -> information_schema,
    hex(column) -> upper(encode(column, 'hex')), sum(a comparison) -> sum((comparison)::int),
    json_extract(column, '$.a.b') -> (column::json #>> '{a,b}') (text, where SQLite's is typed)."""
    out, quote, i, numbered = [], None, 0, False
    while i < len(sql):
        ch = sql[i]
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            j = i + 1
            while j < len(sql) and sql[j].isdigit():
                j += 1
            if j > i + 1:
                out.append("%%(p%s)s" % sql[i + 1:j])
                numbered = True
            else:
                out.append("%s")
            i = j
            continue
        else:
            out.append("%%" if ch == "%" else ch)
        i += 1
    text = "".join(out)
    m = re.match(r"(?is)^\s*INSERT\s+OR\s+IGNORE\s+INTO\b(.*?);?\s*$", text)
    if m:
        text = "INSERT INTO" + m.group(1) + " ON CONFLICT DO NOTHING"
    text = re.sub(r"\bsqlite_master\b", _SQLITE_MASTER, text)
    m = re.match(r"(?i)^\s*PRAGMA\s+table_info\s*\(\s*(\w+)\s*\)\s*;?\s*$", text)
    if m:
        text = _TABLE_INFO % m.group(1)
    text = re.sub(r"(?i)\bhex\(\s*([\w.]+)\s*\)", r"upper(encode(\1, 'hex'))", text)
    text = re.sub(r"(?i)\bjson_extract\(\s*([\w.]+)\s*,\s*'\$\.([\w.]+)'\s*\)",
                  lambda m: "(%s::json #>> '{%s}')" % (m.group(1), m.group(2).replace(".", ",")),
                  text)
    text = re.sub(r"(?i)\bsum\(([^()]*?(?:=|<>|!=|<|>)[^()]*)\)", r"sum((\1)::int)", text)
    if numbered:
        params = {"p%d" % (k + 1): v for k, v in enumerate(params)}
    return text, params


class PgCursor:
    """What c.execute() returns: fetchone/fetchall/iteration, rowcount, description, and
    lastrowid (lastval(): the identity value the last INSERT took in this session, else None)."""

    def __init__(self, conn, cur):
        self._conn, self._cur = conn, cur
        self.rowcount = cur.rowcount
        self.description = cur.description

    def _row(self, r):
        if r is None:
            return None
        values = [_pg_value(v) for v in r]
        if self._conn.row_factory is not None:
            return PgRow(values, [d[0] for d in self._cur.description])
        return tuple(values)

    def fetchone(self):
        return self._row(self._cur.fetchone()) if self._cur.description else None

    def fetchall(self):
        return [self._row(r) for r in self._cur.fetchall()] if self._cur.description else []

    def __iter__(self):
        return iter(self.fetchall())

    @property
    def lastrowid(self):
        import psycopg2
        cur = self._conn.raw.cursor()
        cur.execute("SAVEPOINT tg_lastrowid")
        try:
            cur.execute("SELECT lastval()")
            return cur.fetchone()[0]
        except psycopg2.Error:
            cur.execute("ROLLBACK TO SAVEPOINT tg_lastrowid")
            return None
        finally:
            cur.execute("RELEASE SAVEPOINT tg_lastrowid")


class PgConnection:
    """A psycopg2 connection with the part of sqlite3.Connection the tests use: execute,
    executemany, executescript, commit, rollback, close, row_factory, and `with` (commit, or
    rollback on an exception; the connection stays open, as sqlite3's does)."""

    def __init__(self, uri):
        import psycopg2  # Debian's python3-psycopg2
        self.raw = psycopg2.connect(uri, connect_timeout=10)
        self.row_factory = None

    def execute(self, sql, params=()):
        cur = self.raw.cursor()
        cur.execute(*pg_statement(sql, params))
        return PgCursor(self, cur)

    def executemany(self, sql, seq):
        cur = self.raw.cursor()
        seq = list(seq)
        text, _ = pg_statement(sql, seq[0] if seq else ())
        cur.executemany(text, [pg_statement(sql, p)[1] for p in seq])
        return PgCursor(self, cur)

    def executescript(self, script):
        self.raw.commit()
        self.raw.cursor().execute(script)
        self.raw.commit()

    def commit(self):
        self.raw.commit()

    def rollback(self):
        self.raw.rollback()

    def close(self):
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.raw.commit()
        else:
            self.raw.rollback()
        return False


class Stack:
    """The whole product on loopback. Use as a context manager."""

    def __init__(self, mcp=True, extra_env=None, peer=False):
        self.tmp = tempfile.mkdtemp(prefix="toolgate-it-")
        self.db_path = os.path.join(self.tmp, "toolgate.db")  # SQLite's (no file on PostgreSQL)
        self.db_uri = None
        if DB_BACKEND == "pg":
            self.db_uri = pgserver().create_database(pg_server_uri())
        self.procs = {}
        self.workers = []
        self.sim_port = free_port()
        self.gw_port = free_port()
        self.mcp_port = free_port()
        self.sim_url = "http://127.0.0.1:%d" % self.sim_port
        self.gw_url = "http://127.0.0.1:%d" % self.gw_port
        GATEWAYS.add(self.gw_url)
        self.mcp_url = "http://127.0.0.1:%d/mcp" % self.mcp_port
        self.want_peer = peer
        if peer:  # tests/mcppeer instead of the reference server: the simulator hands out its URL
            self.peer_url = "http://127.0.0.1:%d" % self.mcp_port
            self.mcp_url = self.peer_url + "/mcp"
        self.env = dict(os.environ)
        self.env.update({
            "TOOLGATE_DB": self.db_uri or self.db_path,
            "TOOLGATE_LISTEN": "127.0.0.1:%d" % self.gw_port,
            "COMPOSIO_BASE_URL": self.sim_url,
            "COMPOSIO_API_KEY": API_KEY,
            "COMPOSIO_MCP_SERVER_ID": "mcp_demo_server",
            "COMPOSIO_AUTH_CONFIG_" + PROVIDER.upper(): AUTH_CONFIG,
            "COMPOSIO_DISPLAY_NAME_" + PROVIDER.upper(): "MCP reference server",
            "TOOLGATE_REDIRECT_URL": self.gw_url + "/api/composio-redirect",
            "TOOLGATE_UI_URL": self.gw_url + "/",
            "TOOLGATE_TRUST_USER_HEADER": "1",
            "TOOLGATE_POLL_MS": "50",
            "TOOLGATE_LEASE_MS": "5000",
            "TOOLGATE_LOG_LEVEL": "debug",
            # every test peer is on loopback: allowlisted explicitly (README "Egress policy")
            "TOOLGATE_EGRESS_ALLOW": "127.0.0.1",
        })
        self.env.update(extra_env or {})
        self.want_mcp = mcp

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self):
        try:
            if self.want_peer:
                self.start_peer()
            self.start_sim()
            if self.want_mcp and not self.want_peer:
                self.start_mcp()
            self.start_gateway()
        except BaseException:
            self.stop(check=False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            # A failing test shows what each process said last, so a CI failure is diagnosable;
            # a sanitizer report first (under halt_on_error it is why the test failed).
            for problem in sanitizer_reports(self.tmp):
                print("--- " + problem)
            for name, p in self.procs.items():
                try:
                    tail = p.text().splitlines()[-25:]
                except OSError:
                    continue
                print("--- %s (last %d lines of %s)" % (name, len(tail), p.log_path))
                print("\n".join(tail))
        self.stop(check=exc_type is None)
        return False

    def _start(self, name, argv, env=None):
        p = Proc(name, argv, env or self.env, self.tmp)
        self.procs[name] = p
        return p

    def start_sim(self):
        p = self._start("composio-sim", [
            os.path.join(BUILD, "composio-sim"), "--listen", "127.0.0.1:%d" % self.sim_port,
            "--api-key", API_KEY, "--mcp-url", self.mcp_url,
            "--auth-config", "%s=%s" % (PROVIDER, AUTH_CONFIG)])
        wait_until(lambda: http("GET", self.sim_url + "/healthz")[0] == 200, 10, "simulator")
        return p

    def start_mcp(self):
        env = dict(self.env, PORT=str(self.mcp_port))
        p = self._start("server-everything", [os.path.join(PEERS, "run-everything.sh")], env)
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.mcp_port), 1).close() or True,
                   20, "MCP reference server")
        return p

    def start_peer(self):
        """The scriptable MCP peer (tests/mcppeer) on self.peer_url; any path is an endpoint."""
        p = self._start("mcp-peer", [os.path.join(BUILD, "mcp-peer"), "--listen",
                                     "127.0.0.1:%d" % self.mcp_port])
        wait_until(lambda: http("GET", self.peer_url + "/healthz")[0] == 200, 10, "mcp-peer")
        return p

    def peer(self, method, path, body=None):
        """The peer's control API: /_peer/script, /_peer/log, /_peer/stats, /_peer/reset."""
        st, _, payload = http(method, self.peer_url + path, body)
        assert st == 200, (st, payload)
        return payload

    def set_mcp_url(self, user, url, provider=PROVIDER):
        """What a reconnect does to the row: a new MCP URL and a version bump."""
        with self.db() as c:
            c.execute("UPDATE mcp_connections SET url=? WHERE connected_account_id=(SELECT id FROM "
                      "connected_accounts WHERE user_id=? AND provider=?)", (url, user, provider))
            c.execute("UPDATE connected_accounts SET version=version+1 WHERE user_id=? AND "
                      "provider=?", (user, provider))

    def start_gateway(self, extra_env=None):
        env = dict(self.env, **(extra_env or {}))
        p = self._start("gateway", [os.path.join(BUILD, "toolgate-gateway")], env)
        wait_until(lambda: http("GET", self.gw_url + "/healthz")[0] == 200, 10, "gateway")
        return p

    def restart_gateway(self, extra_env=None, sig=signal.SIGTERM):
        """Stops the gateway (it must exit 0) and starts a new one on the same port and DB."""
        rc = self.procs.pop("gateway").stop(sig)
        assert sig != signal.SIGTERM or rc == 0, "gateway exited with %s" % rc
        os.rename(os.path.join(self.tmp, "gateway.log"),
                  os.path.join(self.tmp, "gateway.%d.log" % time.monotonic_ns()))
        return self.start_gateway(extra_env)

    def start_worker(self, extra_env=None, args=()):
        n = len(self.workers)
        env = dict(self.env, TOOLGATE_WORKER_ID="worker-%d" % n, **(extra_env or {}))
        p = self._start("worker-%d" % n, [os.path.join(BUILD, "toolgate-worker")] + list(args), env)
        self.workers.append(p)
        return p

    def stop(self, check=True):
        problems = []
        for name, p in reversed(list(self.procs.items())):
            try:
                rc = p.stop()
            except AssertionError as e:
                problems.append(str(e))
                continue
            ours = name == "gateway" or name.startswith("worker")
            if check and ours and rc != 0 and not p.killed:
                problems.append("%s exited with %s; log tail:\n%s" % (name, rc, p.text()[-3000:]))
        self.procs = {}
        if check:
            problems += sanitizer_reports(self.tmp)
        if self.db_uri and check and not problems:
            pgserver().drop_database(self.db_uri)
            self.db_uri = None
        elif self.db_uri:
            print("--- the stack's PostgreSQL database is kept: %s" % self.db_uri)
        if problems:
            raise AssertionError("\n".join(problems))

    # --- talking to it ---------------------------------------------------------------------
    def gw(self, method, path, body=None, user="alice", headers=None):
        h = dict(headers or {})
        if user is not None:
            h["X-User-Id"] = user
        return http(method, self.gw_url + path, body, h)

    def sim(self, method, path, body=None):
        return http(method, self.sim_url + path, body)

    def metrics(self):
        """GET /metrics as {series (with labels): value}."""
        st, h, text = self.gw("GET", "/metrics", user=None)
        assert st == 200 and h["content-type"].startswith("text/plain"), (st, h)
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def hold_write_lock(self, seconds):
        """Another process takes SQLite's write lock on the stack's file for `seconds`; returns
        its Popen once the lock is held (wait() on it; it commits and exits by itself)."""
        if self.db_uri:
            raise AssertionError("hold_write_lock: SQLite's database-wide write lock has no "
                                 "PostgreSQL equivalent (TOOLGATE_TEST_DB=pg)")
        hold = subprocess.Popen([sys.executable, "-c", _HOLD, self.db_path, str(seconds)],
                                stdout=subprocess.PIPE, text=True)
        assert hold.stdout.readline().strip() == "locked"
        return hold

    def db(self):
        """A connection to the stack's database: sqlite3's, or PgConnection on PostgreSQL."""
        if self.db_uri:
            return PgConnection(self.db_uri)
        return sqlite3.connect(self.db_path, timeout=10)

    def query(self, sql, *args):
        with self.db() as c:
            c.row_factory = sqlite3.Row
            return [dict(r) for r in c.execute(sql, args)]

    def connect(self, user="alice", provider=PROVIDER):
        """The real redirect flow: start, the browser at Composio's hosted page, our callback."""
        st, _, body = self.gw("POST", "/api/mcp/auth/%s/start" % provider, {}, user=user)
        assert st == 200, (st, body)
        st, h, _ = http("GET", body["redirect_url"])           # Composio's hosted link page
        assert st == 302, (st, h)
        callback = h["location"]
        assert callback.startswith(self.gw_url + "/api/composio-redirect"), callback
        st, h, _ = http("GET", callback)                       # our callback, as the browser
        assert st == 302, (st, h)
        assert "status=connected" in h["location"], h["location"]
        st, h2, page = http("GET", h["location"])              # the UI page the browser lands on
        assert st == 200 and h2["content-type"].startswith("text/html"), (st, h2)
        rows = self.query("SELECT * FROM connected_accounts WHERE user_id=? AND provider=?",
                          user, provider)
        assert len(rows) == 1 and rows[0]["status"] == "ACTIVE", rows
        return rows[0]["composio_account_id"]

    def create_workflow(self, definition=None, user="alice"):
        if definition is None:
            with open(os.path.join(SRC, "examples", "demo-workflow.json")) as f:
                definition = json.load(f)
        st, _, body = self.gw("POST", "/api/workflows", {"name": "demo", "definition": definition},
                              user=user)
        assert st == 201, (st, body)
        return body["id"]

    def wait_run(self, run_id, user="alice", timeout=30,
                 final=("succeeded", "failed", "attention", "canceled")):
        def done():
            st, _, body = self.gw("GET", "/api/runs/" + run_id, user=user)
            return body if st == 200 and body["status"] in final else None
        return wait_until(done, timeout, "run %s to finish" % run_id, 0.1)


def main(tests):
    """Runs test functions (name -> fn), prints one line each and 'N passed, M failed'."""
    only = sys.argv[1:]
    passed = failed = 0
    for name, fn in tests.items():
        if not name.startswith("test_") or not callable(fn) or (only and name not in only):
            continue
        t0 = time.monotonic()
        try:
            fn()
            passed += 1
            print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
        except BaseException:
            failed += 1
            print("FAIL %s (%.1fs)\n%s" % (name, time.monotonic() - t0, traceback.format_exc()),
                  flush=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or not passed else 0)


def serve_http(handler):
    """A ThreadingHTTPServer of handler (a BaseHTTPRequestHandler class) on a free loopback port,
    served by a daemon thread: the server, with .url set; close with .shutdown() and
    .server_close()."""
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def self_signed_cert(hosts):
    """A self-signed certificate for hosts (DNS names), for a local TLS server that a worker
    reaches under those names through TOOLGATE_CONNECT_TO and trusts through TOOLGATE_CA_FILE:
    (certificate file, key file) in a new temporary directory."""
    tmp = tempfile.mkdtemp(prefix="toolgate-tls-")
    crt, key = os.path.join(tmp, "crt.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=" + hosts[0],
                    "-addext", "subjectAltName=" + ",".join("DNS:" + h for h in hosts)],
                   check=True, capture_output=True)
    return crt, key


class JsonServer:
    """A JSON API on a free loopback port, HTTPS when tls = (certificate file, key file) (see
    self_signed_cert). routes: {path: fn(method, headers, body) -> (status, object)}; any other
    path is 404. Every request is recorded in .seen as (method, path with query, headers, body)
    before its route runs; hook(path) (optional) runs next, outside the lock (a test can hold a
    request there). close() when done."""

    def __init__(self, routes, tls=None, hook=None):
        self.seen = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _answer(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                path = self.path.split("?")[0]
                with server.lock:
                    server.seen.append((self.command, self.path, dict(self.headers), body))
                if hook:
                    hook(path)
                fn = routes.get(path)
                status, out = fn(self.command, self.headers, body) if fn else (404, {})
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def requests(self, path):
        """The recorded requests to path (query ignored)."""
        with self.lock:
            return [x for x in self.seen if x[1].split("?")[0] == path]

    def count(self, path):
        return len(self.requests(path))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
