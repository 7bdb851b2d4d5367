"""Hostile load: idle and slow clients never lock a normal client out of the gateway.

One gateway with a connection cap of 2,000 and 400 per peer address. Attackers connect from
127.0.0.2-127.0.0.7 (six peers: each meets its own cap, and together they fill the server's, so
both the per-peer refusal and the eviction path run)
and hold, one phase after the other: 1,500 slowloris connections (a header byte every 2 s),
10,000 connections that send nothing, and 1,024 idle keep-alive connections (one valid request
each). Meanwhile a normal client on 127.0.0.1 asks GET /healthz 20 times per phase, and every
try must succeed; the gateway's log stays under 1,000 lines for the whole test (refused and
evicted connections and timeouts are logged once per interval with a count). Bounded: about
12,500 sockets, each phase a few seconds, everything closed at the end.
"""
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Stack, main  # noqa: E402

CAP = 2000
PER_PEER = 400
PEERS = ["127.0.0.%d" % i for i in range(2, 8)]
TRIES = 20
S = None


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def attacker_socket(i, block=1):
    """A non-blocking connect from one of the attacker peers, `block` in a row from the same one
    (completion is not awaited)."""
    s = socket.socket()
    s.setblocking(False)
    s.bind((PEERS[(i // block) % len(PEERS)], 0))
    s.connect_ex(("127.0.0.1", S.gw_port))
    return s


def healthz():
    """One GET /healthz from 127.0.0.1 on a new connection; returns the status line or why not."""
    try:
        s = socket.create_connection(("127.0.0.1", S.gw_port), timeout=5,
                                     source_address=("127.0.0.1", 0))
    except OSError as e:
        return "connect: %r" % e
    out = b""
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while True:
            c = s.recv(4096)
            if not c:
                break
            out += c
    except OSError as e:
        return "io: %r after %r" % (e, out[:60])
    finally:
        s.close()
    return out.split(b"\r\n", 1)[0].decode("latin-1")


def check_health(phase, during=None, spacing=0.1):
    """TRIES health checks, calling during() between them; every one must answer 200."""
    bad = []
    for i in range(TRIES):
        if during:
            during(i)
        got = healthz()
        if got != "HTTP/1.1 200 OK":
            bad.append((i, got))
        time.sleep(spacing)
    assert not bad, "%s: %d of %d health checks failed: %r" % (phase, len(bad), TRIES, bad[:5])


def close_all(socks):
    for s in socks:
        s.close()
    socks.clear()


def test_hostile_load_never_locks_out_healthz():
    t0 = time.monotonic()
    held = []
    try:
        # Phase 1: 1,500 slowloris connections, a header byte each every 2 s.
        for i in range(1500):
            held.append(attacker_socket(i))
        time.sleep(0.5)
        for s in held:
            try:
                s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                pass

        def trickle(i):
            if i % 8 == 0:  # every ~2 s (20 tries at ~0.25 s)
                for s in held:
                    try:
                        s.send(b"X")
                    except OSError:
                        pass
        check_health("slowloris", trickle, spacing=0.15)

        # Phase 2: 10,000 connections that send nothing, opened while the checks run.
        opened = [0]

        def flood(i):
            while opened[0] < 10000 * (i + 1) // TRIES:
                held.append(attacker_socket(opened[0], block=500))  # 500 > PER_PEER
                opened[0] += 1
        check_health("held", flood)
        close_all(held)
        time.sleep(0.5)

        # Phase 3: 1,024 idle keep-alive connections, each after one valid request.
        for i in range(1024):
            s = socket.socket()
            s.settimeout(5)
            s.bind((PEERS[i % len(PEERS)], 0))
            s.connect(("127.0.0.1", S.gw_port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(s)
        answered = 0
        for s in held:
            try:
                answered += s.recv(4096).startswith(b"HTTP/1.1 200")
            except OSError:
                pass
        assert answered > 1000, answered
        check_health("idle keep-alive")
        # ... and more of them than the cap allows, opened while the checks run.
        extra = [0]

        def more_idle(i):
            for _ in range(60):
                s = attacker_socket(extra[0])
                extra[0] += 1
                held.append(s)
        check_health("idle keep-alive over the cap", more_idle)
    finally:
        close_all(held)
    assert time.monotonic() - t0 < 60, "took %.1fs" % (time.monotonic() - t0)
    time.sleep(0.5)
    log = S.procs["gateway"].text().splitlines()
    assert len(log) < 1000, "%d log lines; last: %s" % (len(log), "\n".join(log[-5:]))
    events = "".join(log)
    assert "httpd_connection_evicted" in events, "the eviction path did not run"
    assert "httpd_connection_refused" in events, "the per-peer cap did not run"


if __name__ == "__main__":
    raise_nofile()
    with Stack(mcp=False, extra_env={"TOOLGATE_MAX_CONNECTIONS": str(CAP),
                                     "TOOLGATE_MAX_CONNECTIONS_PER_PEER": str(PER_PEER)}) as S:
        main(dict(globals()))
