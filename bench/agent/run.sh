#!/usr/bin/env bash
# Agent loop benchmark: builds an optimised, unsanitised tree (build-bench) and runs bench.py
# against the model simulator (tests/llmsim). Usage: bench/agent/run.sh [RUNS] [ITERATIONS]
# (defaults 50 and 10).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DTOOLGATE_SANITIZE=OFF >/dev/null
cmake --build "$root/build-bench" -j2 --target toolgate-worker toolgate-gateway composio-sim >/dev/null
TOOLGATE_BUILD_DIR="$root/build-bench" TOOLGATE_SOURCE_DIR="$root" \
  exec /usr/bin/python3 "$root/bench/agent/bench.py" "$@"
