#!/usr/bin/env bash
# Runs every test: installs and builds what is missing (scripts/setup.sh) with clang, ASan+UBSan
# and the libFuzzer targets into build-asan, then runs ctest: cmocka unit tests, integration tests
# on 127.0.0.1, and each fuzz target for FUZZ_SECONDS (default 60).
# Extra arguments go to ctest, e.g. scripts/test.sh -L integration -V   or   -LE fuzz
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=build-asan SANITIZE=ON FUZZ=ON "$root/scripts/setup.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec ctest --test-dir "$root/build-asan" --output-on-failure -j2 "$@"
