#!/usr/bin/env bash
# Admission cost against the size of the table, one command: bench/admission/table.sh
#
# Runs bench/admission/run.sh (0 ms Composio only) once per backlog in SIZES (default
# "10000 1000000" runs already queued, seeded by seed.py with their ledger rows), each on a
# fresh stack, and prints the gateway's CPU and system calls per admission for each, then the
# ratio of the last to the first (target: CPU per admission within 10 %). DURATION (s, default
# 10) and the other run.sh knobs pass through. Results also go to bench/admission/last-table.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SIZES=${SIZES:-10000 1000000}
export DURATION=${DURATION:-10}
rows=()
for n in $SIZES; do
  row=$(QUEUED=$n SCENARIOS=zero "$here/run.sh" | grep '^| run, 0 ms')
  rows+=("| $n | ${row#| }")
done
{
  echo "Admission cost by backlog, $(date -u +%Y-%m-%dT%H:%MZ), ${DURATION}s each, load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| queued before | scenario | req/s | p50 ms | p99 ms | non-2xx | Composio calls/admission | gateway CPU µs/admission (user + sys) | reads + writes/admission |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  printf '%s\n' "${rows[@]}" | awk -F'|' '{split($9, a, " "); v[NR] = a[1]} END {
    if (NR > 1) printf "CPU per admission, last / first: %.2f (target <= 1.10)\n", v[NR] / v[1] }'
} | tee "$here/last-table.md"
