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
LOG_LEVEL=info
GW_WRAPPER="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$OUT"
. "$here/stack.sh"
need wrk wrk
need valgrind valgrind
start_stack build-prof RelWithDebInfo 300
wrk -t1 -c"$CONC" -d5s -s "$here/admit.lua" "$GW" -- "$tmp/pairs" 1 >/dev/null
callgrind_control -i on "$gw_pid" >/dev/null
q0=$(queued)
wrk -t1 -c"$CONC" -d"${DURATION}s" -s "$here/admit.lua" "$GW" -- "$tmp/pairs" 1 >/dev/null
q1=$(queued)
callgrind_control -i off "$gw_pid" >/dev/null
callgrind_control -d "$gw_pid" >/dev/null
sleep 1
ir=$(for f in "$OUT"*; do callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; done | sort -n | tail -1)
python3 -c "import sys; q=float(sys.argv[2])-float(sys.argv[1]); ir=int(sys.argv[3]); print('admissions %d, instructions %d, per admission %.0f' % (q, ir, ir/q) if q > 0 else 'no admission was counted: see the gateway log') or sys.exit(q <= 0)" "$q0" "$q1" "$ir"
