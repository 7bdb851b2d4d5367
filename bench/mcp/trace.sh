#!/usr/bin/env bash
# Where one call's time goes, seen from toolgate-mcp's system calls.
#   [PROTO=2025-06-18] bench/mcp/trace.sh [N] [URL]
#   (default N=2000; without URL, server-everything is started on a free 127.0.0.1 port, traced
#   too, and stopped afterwards; PROTO: the protocol version toolgate-mcp offers)
# Runs `toolgate-mcp --bench N` under `strace --seccomp-bpf -f -ttt` tracing only connect, sendto,
# recvfrom and epoll_wait, and reports: TCP connections opened, sendto calls per request (1 =
# headers and body in one write), responses that arrived whole in one read with the chunked
# terminator ("reads ending with ..."), and per call (median/p90, ms) the wait from our request's
# sendto to the response's first recvfrom (the server's work plus wake-ups) and from its last
# recvfrom to the next request's sendto (ours), plus how often an epoll_wait sat between them
# (0 = the next call left in the same loop iteration). For a server it started, also per request the server's time from reading the
# request to writing the answer, and how often a 1 ms timer (epoll_pwait timeout 1) sat in
# between. strace adds some µs to each traced call, so every figure is an upper bound.
# Needs strace and a release build (BUILD_DIR, default build-release).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-2000}
URL=${2:-}
BUILD_DIR=${BUILD_DIR:-$root/build-release}
if [ ! -x "$BUILD_DIR/toolgate-mcp" ]; then
  cmake -S "$root" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DTOOLGATE_SANITIZE=OFF >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target toolgate-mcp >/dev/null
fi
tr=$(mktemp)
str=$(mktemp)
log=$(mktemp)
srv=
trap '[ -n "$srv" ] && kill $srv 2>/dev/null; wait 2>/dev/null; rm -f "$tr" "$str" "$log"' EXIT
if [ -z "$URL" ]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL=http://127.0.0.1:$PORT/mcp
  PORT=$PORT "$root/tests/peers/run-everything.sh" >"$log" 2>&1 &
  srv=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.1
  done
fi
strc=
if [ -n "$srv" ]; then
  # The server too: from reading a request to writing its answer, and the 1 ms timer waits
  # (epoll_pwait with timeout 1) in between.
  strace -f -ttt -p "$srv" -e trace=read,writev,epoll_pwait -o "$str" 2>/dev/null &
  strc=$!
  sleep 0.5
fi
TOOLGATE_LOG_LEVEL=error strace --seccomp-bpf -f -ttt -s 4096 -o "$tr" \
  -e trace=connect,sendto,recvfrom,epoll_wait \
  "$BUILD_DIR/toolgate-mcp" ${PROTO:+--protocol-version "$PROTO"} --bench "$N" "$URL" echo \
  '{"message":"bench"}'
if [ -n "$strc" ]; then
  kill $strc 2>/dev/null
  wait $strc 2>/dev/null || true
  python3 - "$str" <<'PY'
import re, statistics, sys
t_read, spans, timers, waits = None, [], 0, 0
for l in open(sys.argv[1]):
    m = re.match(r"\d+\s+(\d+\.\d+)\s+(\w+)\((.*)", l)
    if not m:
        continue
    t, name, rest = float(m.group(1)), m.group(2), m.group(3)
    if name == "read" and rest.split(",", 1)[1].lstrip().startswith('"POST'):
        t_read, timers = t, 0
    elif name == "epoll_pwait" and t_read is not None and re.search(r"\], 1024, 1,", rest):
        timers += 1
    elif name == "writev" and t_read is not None:
        spans.append((t - t_read) * 1e3)
        waits += 1 if timers else 0
        t_read = None
spans = spans[60:]
if spans:
    print("server: request read -> response writev, ms: median %.3f  mean %.3f; a 1 ms timer "
          "wait in between for %d of %d requests" % (statistics.median(spans),
          statistics.mean(spans), waits, len(spans) + 60))
PY
fi
python3 - "$tr" <<'PY'
import re, statistics, sys
ev = []  # (kind, time, line)
for l in open(sys.argv[1]):
    m = re.match(r"\d+\s+(\d+\.\d+)\s+(\w+)\(", l)
    if not m or "<unfinished" in l or "resumed>" in l:
        continue
    t, name = float(m.group(1)), m.group(2)
    if name == "connect" and "AF_INET" in l:
        ev.append(("c", t, l))
    elif name == "sendto" and ("POST " in l or "DELETE " in l):
        ev.append(("s", t, l))
    elif name == "sendto":
        ev.append(("S", t, l))  # a continuation write of the same request
    elif name == "recvfrom" and not re.search(r"= -1", l):
        ev.append(("r", t, l))
    elif name == "epoll_wait":
        ev.append(("e", t, l))
conns = sum(1 for e in ev if e[0] == "c")
reqs = sum(1 for e in ev if e[0] == "s")
extra_writes = sum(1 for e in ev if e[0] == "S")
whole = sum(1 for e in ev if e[0] == "r" and '0\\r\\n\\r\\n"' in e[2])
server, ours, waits = [], [], []
last_send = last_recv = None
epolls = reads = split = 0
first_recv, tails = None, []
for kind, t, _ in ev:
    if kind == "s":
        if last_recv is not None:
            ours.append((t - last_recv) * 1e3)
            waits.append(epolls)
        last_send, last_recv = t, None
    elif kind == "r" and last_send is not None:
        server.append((t - last_send) * 1e3)
        last_send, last_recv, epolls, reads, first_recv = None, t, 0, 1, t
    elif kind == "r" and last_recv is not None:  # more of the same response
        last_recv, epolls, reads = t, 0, reads + 1
        split += 1
        tails.append((t - first_recv) * 1e3)
    elif kind == "e" and last_recv is not None:
        epolls += 1
skip = 60  # initialize, notifications/initialized, warm-up
server, ours, waits = server[skip:], ours[skip:], waits[skip:]
def q(v):
    v = sorted(v)
    return "median %.3f  p90 %.3f  mean %.3f" % (statistics.median(v), v[int(len(v) * .9)],
                                               statistics.mean(v))
print("TCP connections opened: %d; requests: %d; extra sendto calls: %d; reads ending with the "
      "chunked terminator: %d" % (conns, reqs, extra_writes, whole))
print("request sendto -> response recvfrom (server + wake-ups), ms: " + q(server))
print("last recvfrom of a response -> next sendto (toolgate-mcp), ms: " + q(ours))
print("epoll_wait between a response's last read and the next request: %d of %d calls; "
      "responses read in more than one recvfrom: %d" % (sum(1 for w in waits if w), len(waits),
                                                        split))
if tails:
    print("first -> last recvfrom of a split response (waiting for the rest, e.g. the chunked "
          "terminator), ms: " + q(tails))
PY
