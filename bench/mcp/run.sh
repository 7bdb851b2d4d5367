#!/usr/bin/env bash
# MCP client benchmark: toolgate-mcp --bench vs the official TypeScript SDK client
# (bench/mcp/sdk_client.mjs), same tool calls against the same server-everything, side by side.
#   bench/mcp/run.sh [N]        (default N=3000 calls per run; server on a free 127.0.0.1 port)
# Needs a build (BUILD_DIR, default build-release: configured here without sanitizers) and
# `npm ci` in tests/peers. Prints one JSON line per run and a Markdown table. Server CPU is
# not counted; each client's CPU per call is its own (getrusage / process.cpuUsage).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-3000}
BUILD_DIR=${BUILD_DIR:-$root/build-release}
NODE=${NODE:-node}
if [ ! -x "$BUILD_DIR/toolgate-mcp" ]; then
  cmake -S "$root" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DTOOLGATE_SANITIZE=OFF >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target toolgate-mcp >/dev/null
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT/mcp
log=$(mktemp)
PORT=$PORT "$root/tests/peers/run-everything.sh" >"$log" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null; wait $srv 2>/dev/null; rm -f "$log" "$out"' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  sleep 0.1
done
out=$(mktemp)
ARGS='{"message":"bench"}'
for c in 1 8; do
  for client in toolgate ts-sdk; do
    if [ $client = toolgate ]; then
      TOOLGATE_LOG_LEVEL=error "$BUILD_DIR/toolgate-mcp" --bench "$N" --concurrency $c "$URL" echo "$ARGS"
    else
      "$NODE" "$root/bench/mcp/sdk_client.mjs" "$URL" "$N" echo $c "$ARGS"
    fi | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\n| client | in flight | calls/s | p50 ms | p99 ms | CPU ms/call | errors |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print("| %s | %d | %.0f | %.2f | %.2f | %.3f | %d |" % (r["client"], r["concurrency"],
          r["calls_per_s"], r["p50_ms"], r["p99_ms"], r["cpu_ms_per_call"], r["errors"]))
by = {(r["client"], r["concurrency"]): r for r in rows}
for c in (1, 8):
    a, b = by.get(("toolgate-mcp", c)), by.get(("ts-sdk", c))
    if a and b:
        print("\nin flight %d: toolgate %.1fx the SDK's calls/s, %.2fx its CPU per call" % (
            c, a["calls_per_s"] / b["calls_per_s"], a["cpu_ms_per_call"] / b["cpu_ms_per_call"]))
PY
