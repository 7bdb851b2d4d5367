"""Many gateways on one port (README "Many gateways"): with TOOLGATE_REUSEPORT=1 two gateways
on one SQLite file listen on one address and the kernel spreads new connections over both;
each gateway's /metrics shows it admitted some of the runs; the same Idempotency-Key sent to
both at once gives one run (the database decides); after one gateway is killed with SIGKILL
every later request succeeds. Without the flag the second gateway stops at start-up and says
why.

Which gateway holds a connection is read from the kernel, not guessed: the gateway's side of
a TCP connection is the socket in /proc/net/tcp whose local port is the gateway's and whose
remote port is the client's, and the process holding it has that socket's inode among its
/proc/<pid>/fd links. A request sent on a connection known to belong to one gateway (its
/metrics, an admission) is therefore answered by that gateway.
"""
import http.client as httpc
import json
import os
import threading
import time

from harness import BUILD, Stack, http, main, wait_until

INPUTS = {"message": "hi", "a": 1, "b": 2}
GATEWAY = os.path.join(BUILD, "toolgate-gateway")


def start_second(s, extra_env=None):
    """A second gateway process of the stack, on the stack's port and SQLite file."""
    return s._start("gateway-2", [GATEWAY], dict(s.env, **(extra_env or {})))


def log_events(p, event):
    """Process p's JSON log lines of the given event, oldest first."""
    recs = (json.loads(line) for line in p.text().splitlines() if line.startswith("{"))
    return [r for r in recs if r.get("event") == event]


def server_inode(gw_port, client_port):
    """The inode of the server side of the loopback connection from client_port, or None."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            local, remote, inode = col[1], col[2], col[9]
            if (int(local.rsplit(":", 1)[1], 16) == gw_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port):
                return inode
    return None


def holds_socket(pid, inode):
    target = "socket:[%s]" % inode
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == target:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def owner(conn, gw_port, gateways):
    """The name (in gateways: {name: Proc}) of the gateway that accepted conn's connection."""
    client_port = conn.sock.getsockname()[1]

    def find():
        inode = server_inode(gw_port, client_port)
        if inode is None:
            return None
        return next((n for n, p in gateways.items() if holds_socket(p.p.pid, inode)), None)
    return wait_until(find, 5, "the gateway that accepted port %d" % client_port)


def connection_to(s, name, gateways):
    """A keep-alive connection accepted by gateway `name` (new connections until one is)."""
    for _ in range(200):
        conn = httpc.HTTPConnection("127.0.0.1", s.gw_port, timeout=15)
        conn.connect()
        if owner(conn, s.gw_port, gateways) == name:
            return conn
        conn.close()
    raise AssertionError("200 connections and none reached %s" % name)


def send(conn, method, path, body=None, headers=None):
    hdrs = dict(headers or {}, **{"X-User-Id": "alice"})
    data = None
    if body is not None:
        data = json.dumps(body)
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    ctype = resp.getheader("content-type", "")
    return resp.status, json.loads(raw) if ctype.startswith("application/json") else raw.decode()


def admitted(metrics_text):
    for line in metrics_text.splitlines():
        if line.startswith('toolgate_admissions_total{decision="queued"} '):
            return int(line.rsplit(" ", 1)[1])
    raise AssertionError("no queued admissions series in /metrics:\n" + metrics_text)


TWINS = 30  # keys sent to both gateways at once


def test_two_gateways_share_a_port():
    env = {"TOOLGATE_REUSEPORT": "1", "TOOLGATE_DEFAULT_CREDITS": "1000",
           "TOOLGATE_RUN_RATE_PER_MIN": "1000"}  # the limit is per gateway: not what is tested
    with Stack(mcp=False, extra_env=env) as s:
        second = start_second(s)
        wait_until(lambda: log_events(second, "listening"), 10, "the second gateway")
        gateways = {"gateway": s.procs["gateway"], "gateway-2": second}
        for p in gateways.values():
            assert log_events(p, "listening")[0]["reuseport"] is True
        s.connect("alice")
        wf = s.create_workflow()
        path = "/api/workflows/%s/run" % wf

        # Many admissions, each on a new connection: both gateways take some.
        n = 40
        for _ in range(n):
            st, _, body = s.gw("POST", path, {"inputs": INPUTS})
            assert st == 202, body
        counts = {}
        for name in gateways:
            conn = connection_to(s, name, gateways)
            st, text = send(conn, "GET", "/metrics")
            conn.close()
            assert st == 200, text
            counts[name] = admitted(text)
        print("admissions per gateway: %s" % counts)
        assert sum(counts.values()) == n and all(c > 0 for c in counts.values()), counts
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == n

        # One key, both gateways at once: one run, one debit, both answers name it. On
        # PostgreSQL both lookups can miss and the later insert meets the key's unique index: it
        # must replay the twin's answer, not fail (gw_admit.c, on_admitted).
        conns = {name: connection_to(s, name, gateways) for name in gateways}
        credits = s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"]
        for i in range(TWINS):
            key = {"Idempotency-Key": "twice-%d" % i}
            start = threading.Barrier(len(conns))
            res = {}

            def admit(name):
                start.wait(5)
                res[name] = send(conns[name], "POST", path, {"inputs": INPUTS}, key)
            ts = [threading.Thread(target=admit, args=(name,)) for name in conns]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            assert len(res) == 2 and all(st == 202 for st, _ in res.values()), res
            assert len({body["run_id"] for _, body in res.values()}) == 1, res
            rows = s.query("SELECT id FROM workflow_runs WHERE idempotency_key=?", key[
                "Idempotency-Key"])
            assert len(rows) == 1, rows
        for conn in conns.values():
            conn.close()
        assert s.query("SELECT credits FROM users WHERE id='alice'")[0]["credits"] == credits - TWINS
        assert len(s.query("SELECT * FROM credit_ledger WHERE reason='run_admitted'")) == n + TWINS

        # SIGKILL one: the port keeps answering, every request (new connections) succeeds.
        s.procs["gateway"].kill9()
        for i in range(60):
            st, _, body = s.gw("GET", "/healthz", user=None)
            assert st == 200, (i, st, body)
        for i in range(10):
            st, _, body = s.gw("POST", path, {"inputs": INPUTS})
            assert st == 202, (i, st, body)
        assert s.query("SELECT count(*) AS n FROM workflow_runs")[0]["n"] == n + TWINS + 10
        assert s.procs.pop("gateway-2").stop() == 0, "the second gateway exited with an error"


def test_without_the_flag_the_second_gateway_stops():
    with Stack(mcp=False) as s:
        for extra, says in (({}, "only when each sets TOOLGATE_REUSEPORT=1"),
                            ({"TOOLGATE_REUSEPORT": "1"}, "without TOOLGATE_REUSEPORT=1")):
            second = start_second(s, extra)
            t0 = time.monotonic()
            try:
                rc = second.p.wait(15)
            finally:
                second.stop()
            s.procs.pop("gateway-2")
            assert rc != 0, "the second gateway started on a port in use"
            failed = log_events(second, "startup_failed")
            assert failed and failed[0]["error"] == "address in use", second.text()
            assert says in failed[0]["hint"], failed
            assert failed[0]["port"] == s.gw_port, failed
            print("second gateway (%s) stopped in %.1fs: %s" % (extra, time.monotonic() - t0,
                                                                failed[0]["hint"]))
            # the first one still has the port to itself
            assert http("GET", s.gw_url + "/healthz")[0] == 200


if __name__ == "__main__":
    main(globals())
