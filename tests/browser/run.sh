#!/usr/bin/env bash
# Browser test of the board example: installs Debian's chromium and the
# pinned playwright-core if needed, starts the board on a free port with a
# throwaway SQLite file, runs board.test.mjs with node's test runner.
# Usage: tests/browser/run.sh <build dir>
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../../build}" && pwd)
BIN=$BUILD/examples/board/board
if [ ! -x "$BIN" ]; then
  echo "browser test: $BIN is missing (build the 'board' target)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)

WORK=$(mktemp -d /tmp/dk-board-browser.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
(cd "$WORK" && exec "$BIN" --port 0 --db "sqlite:$WORK/board.db" --data-dir "$WORK" \
  --log-level warn) >"$WORK/server.log" 2>&1 &
PID=$!
URL=""
for _ in $(seq 1 150); do
  URL=$(sed -n 's|^Open \(http://[^ ]*\)/app .*|\1|p' "$WORK/server.log" | head -1)
  [ -n "$URL" ] && break
  if ! kill -0 "$PID" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$URL" ]; then
  echo "browser test: the board did not start" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
echo "board running at $URL"
status=0
(cd "$HERE" && BOARD_URL="$URL" BOARD_ARTIFACTS="$HERE/artifacts" node --test board.test.mjs) ||
  status=$?
if [ $status -ne 0 ]; then
  echo "---- server log ----" >&2
  cat "$WORK/server.log" >&2
fi
exit $status
