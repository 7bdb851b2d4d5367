#!/usr/bin/env bash
# Catalog benchmark: builds an optimised, unsanitised tree (build-bench) and runs bench.py.
# Usage: bench/catalog/run.sh [TOOLS] [REQUESTS]   (defaults 10000 and 2000)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DTOOLGATE_SANITIZE=OFF >/dev/null
cmake --build "$root/build-bench" -j2 --target toolgate-gateway composio-sim >/dev/null
TOOLGATE_BUILD_DIR="$root/build-bench" TOOLGATE_SOURCE_DIR="$root" exec python3 "$root/bench/catalog/bench.py" "$@"
