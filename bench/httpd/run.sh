#!/usr/bin/env bash
# HTTP server benchmark, one command: bench/httpd/run.sh
#
# Builds a Release gateway (build-bench) and the yardstick (yardstick.c: a minimal libuv + llhttp
# server answering a fixed body), then reports:
#   1. gateway RSS idle, with CONNS idle keep-alive connections (one GET /healthz each), and after
#      they close, for CYCLES cycles (rss.py);
#   2. GET /healthz requests/s and CPU µs per request (/proc/<pid>/stat utime+stime) with wrk,
#      for the gateway and the yardstick side by side, and the gateway's ratio to it.
# Knobs (environment): CONNS (10000), CYCLES (3), DURATION (s, 10), CONC (64), THREADS (2),
# PORT_BASE (19800: gateway PORT_BASE+2, yardstick PORT_BASE+11).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CONNS=${CONNS:-10000} CYCLES=${CYCLES:-3} DURATION=${DURATION:-10} CONC=${CONC:-64}
THREADS=${THREADS:-2} PORT_BASE=${PORT_BASE:-19800}
command -v wrk >/dev/null || { echo "wrk is required" >&2; exit 1; }
build="$root/build-bench"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTOOLGATE_SANITIZE=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target toolgate-gateway llhttp >/dev/null
llhttp_inc=$(sed -n 's/^LLHTTP_INCLUDE_DIR:PATH=//p' "$build/CMakeCache.txt")
cc -O2 -o "$build/yardstick" "$here/yardstick.c" -I"$llhttp_inc" "$build/libllhttp.a" \
  $(pkg-config --cflags --libs libuv)

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
gw_port=$((PORT_BASE + 2)) ys_port=$((PORT_BASE + 11))
env TOOLGATE_DB="$tmp/toolgate.db" TOOLGATE_LISTEN="127.0.0.1:$gw_port" \
  COMPOSIO_BASE_URL=http://127.0.0.1:9 COMPOSIO_API_KEY=ak_bench \
  TOOLGATE_MAX_CONNECTIONS_PER_PEER=1000000 "$build/toolgate-gateway" >"$tmp/gateway.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
"$build/yardstick" "$ys_port" &
ys_pid=$!
pids+=("$ys_pid")
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$gw_port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "## RSS, $CONNS idle keep-alive connections"
python3 "$here/rss.py" "$gw_pid" "$gw_port"

tck=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# load NAME PID PORT: prints "req/s cpu_us_per_req"
load() {
  local t0 t1 out
  t0=$(ticks "$2")
  out=$(wrk -t"$THREADS" -c"$CONC" -d"${DURATION}s" "http://127.0.0.1:$3/healthz")
  t1=$(ticks "$2")
  python3 - "$out" "$t0" "$t1" "$tck" "$DURATION" <<'PY'
import re, sys
out, t0, t1, tck, dur = sys.argv[1:]
n = int(re.search(r"(\d+) requests in", out).group(1))
print("%.0f %.2f" % (n / float(dur), (int(t1) - int(t0)) * 1e6 / int(tck) / max(n, 1)))
PY
}
read -r ys_rps ys_cpu < <(load yardstick "$ys_pid" "$ys_port")
read -r gw_rps gw_cpu < <(load gateway "$gw_pid" "$gw_port")
echo
echo "## GET /healthz, wrk -t$THREADS -c$CONC -d${DURATION}s"
echo "| server | req/s | CPU µs/request |"
echo "|---|---|---|"
echo "| yardstick (yardstick.c) | $ys_rps | $ys_cpu |"
echo "| gateway | $gw_rps | $gw_cpu |"
python3 -c "print('\ngateway / yardstick requests/s: %.2f' % ($gw_rps / $ys_rps))"
