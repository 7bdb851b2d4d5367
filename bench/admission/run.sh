#!/usr/bin/env bash
# Admission benchmark, one command: bench/admission/run.sh
#
# Builds a Release gateway and the Composio simulator (build-bench), starts both on 127.0.0.1,
# seeds USERS users (ACTIVE account at the simulator and in SQLite, credits, one workflow each),
# then drives POST /api/workflows/{id}/run with wrk (Lua script admit.lua) and reports per
# scenario: requests/s, p50/p99 latency, Composio calls per admission (simulator's /_sim/stats),
# the gateway's CPU time per admission (/proc/<pid>/stat utime+stime, all threads) and its read
# and write system calls per admission (/proc/<pid>/io), plus GET /healthz requests/s for
# reference. No worker runs: admitted runs pile up as 'queued'.
#
# Knobs (environment): SCENARIOS (default "lat zero one healthz"), LOG_LEVEL (gateway, info),
# DURATION (s, default 10), CONC (connections, 64), LATENCY_MS (simulated
# Composio latency, 20), USERS (1024), THREADS (wrk threads, 2), PORT_BASE (19700: simulator
# PORT_BASE+1, gateway PORT_BASE+2), QUEUED (runs already queued before the first scenario,
# seed.py; 0). Results also go to bench/admission/last-run.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
CONC=${CONC:-64}
LATENCY_MS=${LATENCY_MS:-20}
USERS=${USERS:-1024}
THREADS=${THREADS:-2}
SCENARIOS=${SCENARIOS:-lat zero one healthz}
LOG_LEVEL=${LOG_LEVEL:-info}
PORT_BASE=${PORT_BASE:-19700}
. "$here/stack.sh"
need wrk wrk
start_stack build-bench Release
load0=$(cut -d' ' -f1-3 /proc/loadavg)
head -1 "$tmp/pairs" >"$tmp/one"

tck=$(getconf CLK_TCK)
# utime:stime of the gateway process (every thread; /proc/<pid>/stat fields 14 and 15)
cpu_ticks() { awk '{print $14 ":" $15}' "/proc/$gw_pid/stat"; }
# read and write system calls of the gateway so far (/proc/<pid>/io: sockets, database and WAL)
syscalls() { awk '/^syscr/ {r = $2} /^syscw/ {w = $2} END {print r ":" w}' "/proc/$gw_pid/io"; }
sim_calls() { curl -fsS "$SIM/_sim/stats" | jq '.by_route.list + .by_route.get'; }

results="$here/last-run.md"
{
  echo "| scenario | req/s | p50 ms | p99 ms | non-2xx | Composio calls/admission | gateway CPU µs/admission (user + sys) | reads + writes/admission |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$tmp/table"

# scenario NAME LATENCY_MS PAIRS_FILE
scenario() {
  local name=$1 lat=$2 pairs=$3 c0 c1 s0 s1 q0 q1 y0 y1 out
  curl -fsS -X POST -d "{\"ms\": $lat}" "$SIM/_sim/latency" >/dev/null
  c0=$(cpu_ticks); s0=$(sim_calls); q0=$(queued); y0=$(syscalls)
  out=$(wrk -t"$THREADS" -c"$CONC" -d"${DURATION}s" --latency -s "$here/admit.lua" "$GW" \
    -- "$pairs" "$THREADS" | grep '^WRK')
  c1=$(cpu_ticks); s1=$(sim_calls); q1=$(queued); y1=$(syscalls)
  python3 - "$name" "$out" "$c0" "$c1" "$s0" "$s1" "$q0" "$q1" "$tck" "$y0" "$y1" >>"$tmp/table" <<'PY'
import sys
name, out, c0, c1, s0, s1, q0, q1, tck, y0, y1 = sys.argv[1:]
f = dict(kv.split("=") for kv in out.split()[1:])
secs = int(f["duration_us"]) / 1e6
adm = float(q1) - float(q0)
u0, k0 = map(int, c0.split(":"))
u1, k1 = map(int, c1.split(":"))
per = lambda ticks: ticks * 1e6 / int(tck) / max(adm, 1)
r0, w0 = map(int, y0.split(":"))
r1, w1 = map(int, y1.split(":"))
print("| %s | %.0f | %.1f | %.1f | %s | %.3f | %.0f (%.0f + %.0f) | %.2f + %.2f |" % (
    name, int(f["requests"]) / secs, int(f["p50_us"]) / 1000, int(f["p99_us"]) / 1000,
    f["non2xx"], (int(s1) - int(s0)) / max(adm, 1), per(u1 + k1 - u0 - k0), per(u1 - u0),
    per(k1 - k0), (r1 - r0) / max(adm, 1), (w1 - w0) / max(adm, 1)))
PY
}

# warm-up (connections, page cache), not reported
wrk -t"$THREADS" -c"$CONC" -d2s -s "$here/admit.lua" "$GW" -- "$tmp/pairs" "$THREADS" >/dev/null
hz=-
for sc in $SCENARIOS; do
  case $sc in
  lat) scenario "run, ${LATENCY_MS} ms Composio, c=$CONC, $USERS users" "$LATENCY_MS" "$tmp/pairs" ;;
  zero) scenario "run, 0 ms Composio, c=$CONC, $USERS users" 0 "$tmp/pairs" ;;
  one) scenario "run, ${LATENCY_MS} ms Composio, c=$CONC, one user (coalesced)" "$LATENCY_MS" "$tmp/one" ;;
  healthz) hz=$(wrk -t"$THREADS" -c"$CONC" -d"${DURATION}s" "$GW/healthz" | awk '/Requests\/sec/ {print $2}') ;;
  esac
done

ideal=$(python3 -c "print(round($CONC / ($LATENCY_MS / 1000.0)))" 2>/dev/null || echo "-")
{
  echo "Admission benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${DURATION}s per scenario,"
  echo "${QUEUED:-0} runs queued before the first scenario, load average before: $load0,"
  echo "wrk -t$THREADS -c$CONC; gateway, simulator and wrk on one machine (shared with other jobs)."
  echo
  cat "$tmp/table"
  echo
  echo "GET /healthz: $hz req/s. Ideal for c=$CONC at ${LATENCY_MS} ms: $ideal admissions/s."
  echo "Gateway log lines: $(wc -l <"$tmp/gateway.log"); runs queued: $(sqlite3 "$tmp/toolgate.db" "SELECT count(*) FROM workflow_runs")."
} | tee "$results"
