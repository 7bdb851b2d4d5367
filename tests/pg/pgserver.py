#!/usr/bin/env python3
"""A private PostgreSQL server for tests: initdb into a folder, start, hand out databases, stop.

    pgserver.py start <dir>            initdb into <dir>/data, start on 127.0.0.1 and a free port
                                       (and a unix socket in <dir>/sock), write the URI to
                                       <dir>/uri and print it (when the server user cannot enter
                                       <dir>, data and sock go to a /tmp folder named in
                                       <dir>/home)
    pgserver.py stop <dir>             pg_ctl stop -m fast, then remove <dir>
    pgserver.py uri <dir>              print the URI of the server started in <dir>
    pgserver.py createdb <uri>         create a new, uniquely named database; print its URI
    pgserver.py exec <dir> -- CMD...   run CMD with TOOLGATE_TEST_PG_URI set to <dir>'s URI

ctest runs `start` as the fixture test pg/start and `stop` as pg/stop on ${build}/pg; a test that
needs the server is started through `exec`, so it finds the URI in TOOLGATE_TEST_PG_URI, and
creates its own database there (create_database) so that tests run in parallel.

The server is for tests only: trust authentication on loopback, fsync off, started as an
unprivileged user (`runuser -u nobody` when we are root, the folder chowned to it, since
PostgreSQL refuses to run as root; as ourselves otherwise). The binaries come from Debian's
postgresql package (scripts/setup.sh installs it); TOOLGATE_PG_BIN names another bin folder.
Every wait is bounded; a failure says what failed and shows the server log's tail.
Only the standard library is used.
"""
import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
MAX_CONNECTIONS = 300  # a gateway pool (8) and workers (4 each) per stack, two tests at a time
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; the socket is <sock>/.s.PGSQL.<port>


class PgServerError(RuntimeError):
    pass


def bin_dir():
    """The folder with initdb, pg_ctl and psql: TOOLGATE_PG_BIN, else the newest
    /usr/lib/postgresql/<major>/bin. Raises PgServerError when there is none."""
    env = os.environ.get("TOOLGATE_PG_BIN")
    candidates = [env] if env else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0, reverse=True)
    for d in candidates:
        if os.access(os.path.join(d, "initdb"), os.X_OK) and \
                os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    raise PgServerError("PostgreSQL server binaries not found (%s): install Debian's postgresql "
                        "package (scripts/setup.sh does) or set TOOLGATE_PG_BIN"
                        % (env or "/usr/lib/postgresql/*/bin"))


def _tool(name):
    path = os.path.join(bin_dir(), name)
    if not os.access(path, os.X_OK):
        path = shutil.which(name)
    if not path:
        raise PgServerError("%s not found beside initdb or on PATH" % name)
    return path


def _as_server_user(argv):
    """argv run as the user the server runs as: nobody when we are root."""
    if os.geteuid() != 0:
        return argv
    if not shutil.which("runuser"):
        raise PgServerError("running as root and runuser is missing: cannot drop to nobody")
    return ["runuser", "-u", "nobody", "--"] + argv


def _run(argv, timeout, what, cwd=None):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise PgServerError("%s did not finish within %ss" % (what, timeout))
    if p.returncode != 0:
        raise PgServerError("%s failed (exit %d):\n%s%s" % (what, p.returncode, p.stdout,
                                                             p.stderr))
    return p.stdout


def _log_tail(d, n=30):
    try:
        with open(os.path.join(d, "log"), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def _free_port():
    """A free loopback port in 10000-20000: below the harness's slices (tests/integration
    harness.free_port) and the kernel's ephemeral range, so only another server competes."""
    for _ in range(200):
        port = random.randint(10000, 19999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise PgServerError("no free loopback port in 10000-20000")


def _home(d):
    """The folder the server of d lives in: d itself, or the one named in d/home when the
    server user could not enter d (a checkout under /root, say)."""
    try:
        with open(os.path.join(d, "home")) as f:
            return f.read().strip()
    except OSError:
        return d


def _running(d):
    """True when a server started in d is still running (its postmaster.pid names a live
    process)."""
    try:
        with open(os.path.join(_home(d), "data", "postmaster.pid")) as f:
            pid = int(f.readline())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def stop(d):
    """Stops the server started in d (fast shutdown: sessions are cut, no checkpoint wait beyond
    the shutdown one) and removes d. Nothing to do when d does not exist."""
    d = os.path.abspath(d)
    if not os.path.isdir(d):
        return
    problem, home = None, _home(d)
    if _running(d):
        try:
            _run(_as_server_user([_tool("pg_ctl"), "stop", "-D", os.path.join(home, "data"),
                                  "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S)]),
                 STOP_TIMEOUT_S + 10, "pg_ctl stop", cwd=home)
        except PgServerError as e:
            problem = e
    if home != d:
        shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(d, ignore_errors=True)
    if problem:
        raise problem


def start(d):
    """initdb into d/data and starts the server; returns its URI (also written to d/uri).
    A folder left by an earlier run is stopped and removed first."""
    d = os.path.abspath(d)
    stop(d)
    os.makedirs(d)
    home = d
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
        if subprocess.run(_as_server_user(["test", "-w", d]), cwd="/").returncode != 0:
            home = tempfile.mkdtemp(prefix="toolgate-pg-")  # nobody cannot reach d
            os.chmod(home, 0o755)
            os.chown(home, nobody.pw_uid, nobody.pw_gid)
            with open(os.path.join(d, "home"), "w") as f:
                f.write(home + "\n")
    data, sock = os.path.join(home, "data"), os.path.join(home, "sock")
    os.makedirs(sock)
    if os.geteuid() == 0:
        os.chown(sock, nobody.pw_uid, nobody.pw_gid)
    # initdb and the server write only into home; cwd=home because nobody may not read ours.
    _run(_as_server_user([_tool("initdb"), "-D", data, "-A", "trust", "-U", "postgres",
                          "-E", "UTF8", "--locale=C", "--no-sync"]), 120, "initdb", cwd=home)
    if len(sock) + len("/.s.PGSQL.65535") > SOCKET_PATH_MAX:
        sock = ""  # too long for a unix socket path: TCP only (the URI uses TCP anyway)
    last = None
    for _ in range(5):  # another server may bind the port between the pick and our start
        port = _free_port()
        opts = ("-p %d -h 127.0.0.1 -k '%s' -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=%d"
                % (port, sock, MAX_CONNECTIONS))
        try:
            _run(_as_server_user([_tool("pg_ctl"), "start", "-D", data, "-l",
                                  os.path.join(home, "log"), "-w", "-t", str(START_TIMEOUT_S),
                                  "-o", opts]), START_TIMEOUT_S + 10, "pg_ctl start", cwd=home)
        except PgServerError as e:
            last = e
            if _running(d):
                break
            continue
        uri = "postgresql://postgres@127.0.0.1:%d/postgres" % port
        with open(os.path.join(d, "uri"), "w") as f:
            f.write(uri + "\n")
        return uri
    raise PgServerError("the server did not start: %s\nlog:\n%s" % (last, _log_tail(home)))


def uri(d):
    """The URI of the server started in d; PgServerError when there is none."""
    try:
        with open(os.path.join(d, "uri")) as f:
            return f.read().strip()
    except OSError:
        raise PgServerError("no PostgreSQL test server in %s (did the fixture pg/start run?)" % d)


def with_database(server_uri, name):
    """server_uri with its database replaced by name."""
    u = urllib.parse.urlsplit(server_uri)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


def _psql(server_uri, sql, what):
    _run([_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server_uri, "-c", sql], 30,
         what)


def create_database(server_uri, prefix="tg"):
    """Creates a new database with a unique name on the server of server_uri; returns its URI."""
    name = "%s_%d_%d_%06x" % (prefix, os.getpid(), time.monotonic_ns() % 10**9,
                              random.getrandbits(24))
    _psql(with_database(server_uri, "postgres"), 'CREATE DATABASE "%s"' % name,
          "CREATE DATABASE")
    return with_database(server_uri, name)


def drop_database(db_uri):
    """Drops the database of db_uri, cutting its sessions (PostgreSQL 13+ FORCE)."""
    name = urllib.parse.urlsplit(db_uri).path.lstrip("/")
    _psql(with_database(db_uri, "postgres"), 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name,
          "DROP DATABASE")


def main(argv):
    usage = ("usage: pgserver.py start <dir> | stop <dir> | uri <dir> | createdb <uri> | "
             "exec <dir> -- CMD...")
    if len(argv) < 2:
        print(usage, file=sys.stderr)
        return 2
    cmd, arg = argv[0], argv[1]
    try:
        if cmd == "start":
            print(start(arg))
        elif cmd == "stop":
            stop(arg)
        elif cmd == "uri":
            print(uri(arg))
        elif cmd == "createdb":
            print(create_database(arg))
        elif cmd == "exec" and len(argv) > 3 and argv[2] == "--":
            env = dict(os.environ, TOOLGATE_TEST_PG_URI=uri(arg))
            os.execvpe(argv[3], argv[3:], env)
        else:
            print(usage, file=sys.stderr)
            return 2
    except PgServerError as e:
        print("pgserver: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
