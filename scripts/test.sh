#!/usr/bin/env bash
# Runs every test: installs and builds what is missing (scripts/setup.sh) with clang, ASan+UBSan
# and the libFuzzer targets into build-asan, then runs ctest there: the clang-format check
# (lint), cmocka unit tests, integration tests on 127.0.0.1, and each fuzz target for
# FUZZ_SECONDS (default 60). The tests labelled `pg` run in that pass too: the integration tests
# named in CMakeLists.txt's TG_PG_INTEGRATION_TESTS a second time on PostgreSQL, and the tests of
# the PostgreSQL store, against one private server per run (initdb as an unprivileged user into
# build-asan/pg, on a loopback port: the fixture tests pg/start and pg/stop; `-LE pg` leaves them
# out). Then builds build-tsan (ThreadSanitizer, no fuzz targets) and runs there the tests
# labelled `threads` (those that run tg_dbq's thread pool or threads of their own; on SQLite).
# Extra arguments go to both ctest runs, e.g. scripts/test.sh -L integration -V   or   -LE fuzz
# TSAN=OFF skips the ThreadSanitizer run. Exits non-zero if either run failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=build-asan SANITIZE=ON FUZZ=ON "$root/scripts/setup.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
ctest --test-dir "$root/build-asan" --output-on-failure -j2 "$@" || status=$?

if [ "${TSAN:-ON}" != OFF ]; then
  BUILD_DIR=build-tsan SANITIZE=thread FUZZ=OFF "$root/scripts/setup.sh"
  # halt_on_error: the first race ends the process with exit code 66, which fails a unit test,
  # and the integration harness reports any "WARNING: ThreadSanitizer" in a process's log.
  tsan_default=halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp
  export TSAN_OPTIONS=${TSAN_OPTIONS:-$tsan_default}
  ctest --test-dir "$root/build-tsan" --output-on-failure -j2 -L threads "$@" || status=$?
fi
exit $status
