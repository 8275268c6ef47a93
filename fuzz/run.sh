#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each one for a
# bounded time from its committed seed corpus. Fails when any target finds a
# crash, a sanitizer report, a leak or a timeout.
#
#   fuzz/run.sh [seconds-per-target]      default $FUZZ_SECONDS or 60
#
# Environment:
#   FUZZ_SECONDS    seconds per target (CI uses 20; a long run: FUZZ_SECONDS=3600)
#   FUZZ_BUILD_DIR  build directory (default /tmp/donkey-fuzz-build)
#   FUZZ_TARGETS    space-separated subset (default: all)
#   FUZZ_JOBS       parallel build jobs (default 2)
#
# New interesting inputs go to $FUZZ_BUILD_DIR/work/<target> (not the seed
# corpus); crash inputs to $FUZZ_BUILD_DIR/artifacts/<target>/. To keep a
# crash as a regression input, fix it and copy the file to
# fuzz/corpus/<target>/regress-<what>.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/.." && pwd)"
SECONDS_PER="${1:-${FUZZ_SECONDS:-60}}"
BUILD="${FUZZ_BUILD_DIR:-/tmp/donkey-fuzz-build}"
JOBS="${FUZZ_JOBS:-2}"
ALL="fuzz_duration fuzz_glob fuzz_sse fuzz_cron fuzz_schema fuzz_dispatch fuzz_http1 fuzz_cli"
TARGETS="${FUZZ_TARGETS:-$ALL}"

if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
echo "fuzz: building in $BUILD"
if ! CC=clang cmake -B "$BUILD" -S "$SRC" -DDK_BUILD_FUZZ=ON -DDK_BUILD_TESTS=OFF \
       -DDK_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD.configure.log" 2>&1; then
  cat "$BUILD.configure.log" >&2
  exit 1
fi
# shellcheck disable=SC2086
if ! cmake --build "$BUILD" -j "$JOBS" --target $TARGETS >"$BUILD.build.log" 2>&1; then
  tail -50 "$BUILD.build.log" >&2
  exit 1
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
# h2o keeps per-thread buffers it never frees (tests/lsan.supp).
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$SRC/tests/lsan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export DONKEY_LOG_LEVEL=error
fail=0
summary=""
for t in $TARGETS; do
  work="$BUILD/work/$t"
  art="$BUILD/artifacts/$t/"
  mkdir -p "$work" "$art"
  log="$BUILD/$t.log"
  echo "fuzz: $t for ${SECONDS_PER}s"
  "$BUILD/fuzz/$t" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 \
      -max_len=8192 -print_final_stats=1 -close_fd_mask=1 -artifact_prefix="$art" \
      "$work" "$HERE/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  if [ $rc -ne 0 ]; then
    fail=1
    summary+=$(printf '%-14s FAIL  execs=%s rc=%s (log %s)' "$t" "${execs:-?}" "$rc" "$log")$'\n'
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -20 >&2
  else
    summary+=$(printf '%-14s ok    execs=%s' "$t" "${execs:-?}")$'\n'
  fi
done
echo "---- fuzz summary (${SECONDS_PER}s per target)"
printf '%s' "$summary"
exit $fail
