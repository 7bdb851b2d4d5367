#!/usr/bin/env bash
# Web UI benchmark: builds an optimised, unsanitised tree (build-bench) and runs bench.py, which
# starts the stack, makes a finished run and times the run page and the integrations page in
# headless chromium (bench.mjs). Usage: bench/ui/run.sh [ROUNDS]   (default 20)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DTOOLGATE_SANITIZE=OFF >/dev/null
cmake --build "$root/build-bench" -j2 --target toolgate-gateway toolgate-worker composio-sim >/dev/null
TOOLGATE_BUILD_DIR="$root/build-bench" TOOLGATE_SOURCE_DIR="$root" exec /usr/bin/python3 "$root/bench/ui/bench.py" "$@"
