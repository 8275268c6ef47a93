#!/usr/bin/env bash
# Browser test of the board example: installs Debian's chromium and the
# pinned playwright-core if needed, starts the board on a free port with a
# throwaway SQLite file, runs board.test.mjs with node's test runner.
# Usage: tests/browser/run.sh <build dir>
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../../build}" && pwd)
BIN=$BUILD/examples/board/board
TARGET=board NAME=board
# shellcheck source=tests/browser/common.sh
. "$HERE/common.sh"
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
