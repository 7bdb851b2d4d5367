#!/usr/bin/env bash
# Load-independent admission cost, one command: bench/admission/callgrind.sh
#
# Builds a RelWithDebInfo gateway (build-prof), runs it under valgrind --tool=callgrind with
# instrumentation off, seeds USERS users, warms up with wrk, then switches instrumentation on for
# a fixed wrk interval (0 ms Composio latency) and prints the gateway's user-space instructions
# per admission (every thread; admissions counted in /metrics). The callgrind output is kept in
# OUT (default /tmp/toolgate-callgrind.out) for callgrind_annotate.
# Knobs: USERS (256), CONC (8), DURATION (s, 20), PORT_BASE (19750), OUT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
USERS=${USERS:-256}
CONC=${CONC:-8}
DURATION=${DURATION:-20}
PORT_BASE=${PORT_BASE:-19750}
OUT=${OUT:-/tmp/toolgate-callgrind.out}
rm -f "$OUT"*
SIM=http://127.0.0.1:$((PORT_BASE + 1))
GW=http://127.0.0.1:$((PORT_BASE + 2))

cmake -S "$root" -B "$root/build-prof" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOOLGATE_SANITIZE=OFF >/dev/null
cmake --build "$root/build-prof" -j"$(nproc)" --target toolgate-gateway composio-sim >/dev/null

tmp=$(mktemp -d /tmp/toolgate-cg.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

"$root/build-prof/composio-sim" --listen "127.0.0.1:$((PORT_BASE + 1))" --api-key ak_bench \
  --auth-config everything=ac_everything --log-level warn >"$tmp/sim.log" 2>&1 &
pids+=($!)
env TOOLGATE_DB="$tmp/toolgate.db" TOOLGATE_LISTEN="127.0.0.1:$((PORT_BASE + 2))" \
  COMPOSIO_BASE_URL="$SIM" COMPOSIO_API_KEY=ak_bench COMPOSIO_AUTH_CONFIG_EVERYTHING=ac_everything \
  COMPOSIO_MCP_SERVER_ID=mcp_bench TOOLGATE_TRUST_USER_HEADER=1 TOOLGATE_RUN_RATE_PER_MIN=0 \
  TOOLGATE_LOG_LEVEL=info valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$OUT" "$root/build-prof/toolgate-gateway" >"$tmp/gateway.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
for _ in $(seq 300); do
  curl -fsS "$GW/healthz" >/dev/null 2>&1 && curl -fsS "$SIM/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
python3 "$here/seed.py" "$tmp/toolgate.db" "$SIM" "$USERS" "$root/examples/demo-workflow.json" \
  >"$tmp/pairs"
queued() { curl -fsS "$GW/metrics" | awk '/decision="queued"/ {print $2}'; }
wrk -t1 -c"$CONC" -d5s -s "$here/admit.lua" "$GW" -- "$tmp/pairs" 1 >/dev/null
callgrind_control -i on "$gw_pid" >/dev/null
q0=$(queued)
wrk -t1 -c"$CONC" -d"${DURATION}s" -s "$here/admit.lua" "$GW" -- "$tmp/pairs" 1 >/dev/null
q1=$(queued)
callgrind_control -i off "$gw_pid" >/dev/null
callgrind_control -d "$gw_pid" >/dev/null
sleep 1
ir=$(for f in "$OUT"*; do callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; done | sort -n | tail -1)
python3 -c "import sys; q=float(sys.argv[2])-float(sys.argv[1]); ir=int(sys.argv[3]); print('admissions %d, instructions %d, per admission %.0f' % (q, ir, ir/q))" "$q0" "$q1" "$ir"
