"""RSS of the gateway (pid argv[1], listening on 127.0.0.1:argv[2]) with N idle keep-alive
connections, cycle after cycle: each cycle opens N connections (from 127.0.0.2-127.0.0.9), sends
one GET /healthz on each and reads the answer, measures VmRSS, closes them all and measures
again after a second. Prints one Markdown table row per cycle."""
import os
import resource
import selectors
import socket
import sys
import time

pid, port = int(sys.argv[1]), int(sys.argv[2])
N = int(os.environ.get("CONNS", "10000"))
CYCLES = int(os.environ.get("CYCLES", "3"))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
REQ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def rss_mib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def open_idle(n):
    socks, sel = [], selectors.DefaultSelector()
    for i in range(n):
        s = socket.socket()
        s.bind(("127.0.0.%d" % (2 + i % 8), 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(REQ)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    left, deadline = n, time.monotonic() + 60
    while left and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            if key.fileobj.recv(4096):
                sel.unregister(key.fileobj)
                left -= 1
    sel.close()
    if left:
        raise SystemExit("%d of %d connections got no answer" % (left, n))
    return socks


idle = rss_mib()
print("| cycle | idle RSS MiB | with %d idle keep-alive MiB | after close MiB |" % N)
print("|---|---|---|---|")
for c in range(1, CYCLES + 1):
    socks = open_idle(N)
    time.sleep(1)
    held = rss_mib()
    for s in socks:
        s.close()
    time.sleep(2)
    print("| %d | %.1f | %.1f | %.1f |" % (c, idle, held, rss_mib()), flush=True)
