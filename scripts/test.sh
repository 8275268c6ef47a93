#!/usr/bin/env bash
# Installs dependencies, builds donkey (gcc), runs every test; then builds
# with clang under AddressSanitizer + UndefinedBehaviorSanitizer and runs the
# suite again, and builds with clang under ThreadSanitizer and runs the unit
# and HTTP suites (handlers wait on other threads: docs/architecture.md).
# Usage: scripts/test.sh [--quick]  (--quick: skip the sanitizer passes)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
JOBS=$(nproc)

echo "== build (gcc, RelWithDebInfo) =="
cmake -S . -B build -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
echo "== layers =="
scripts/check-layers.sh build
# A test that fails is run once more before the run fails: several suites
# time real servers on a 2-core machine that also runs the load generators.
echo "== tests (gcc) =="
ctest --test-dir build --output-on-failure -j2 --repeat until-pass:2

if [ "${1:-}" != "--quick" ]; then
  echo "== build (clang, ASan+UBSan) =="
  cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
        -DDK_SANITIZE=address,undefined >/dev/null
  cmake --build build-asan -j"$JOBS"
  echo "== tests (ASan+UBSan) =="
  DK_SANITIZER=address ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j2 --repeat until-pass:2 -LE nosan

  echo "== build (clang, ThreadSanitizer) =="
  cmake -S . -B build-tsan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
        -DDK_SANITIZE=thread >/dev/null
  cmake --build build-tsan -j"$JOBS"
  echo "== tests (TSan: unit and HTTP suites) =="
  DK_SANITIZER=thread TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
    ctest --test-dir build-tsan --output-on-failure -j2 --repeat until-pass:2 -L 'unit|http' -LE nosan
fi
