#!/usr/bin/env bash
# Code sandbox benchmark (README "Code nodes"): sandbox start to result for `print(1)` under
# tg_sandbox (bubblewrap, prlimit, the python runner), beside a plain
# `/usr/bin/python3 -c 'print(1)'` spawned the same way, p50 and p99 over RUNS runs each
# (interleaved, so that load on the machine hits both alike). Builds an optimised, unsanitised
# tree (build-bench) and runs the unit-test binary of tg_sandbox in its bench mode.
# Usage: bench/code/run.sh [RUNS]   (default 200)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DTOOLGATE_SANITIZE=OFF >/dev/null
cmake --build "$root/build-bench" -j2 --target unit_common_tg_sandbox >/dev/null
exec "$root/build-bench/unit_common_tg_sandbox" --bench "${1:-200}"
