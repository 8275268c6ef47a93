#!/usr/bin/env bash
# Browser test of the operations page (issue 17): installs Debian's chromium
# and the pinned playwright-core if needed, starts the conformance app with
# --admin-token on a free port, runs admin.test.mjs with node's test runner.
# Screenshots go to <build dir>/browser-artifacts/.
# Usage: tests/browser/admin.sh <build dir>
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../../build}" && pwd)
BIN=$BUILD/examples/conformance/conformance
TARGET=conformance NAME=admin
# shellcheck source=tests/browser/common.sh
. "$HERE/common.sh"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
TOKEN="browser-$RANDOM-$RANDOM"
"$BIN" --port "$PORT" --admin-token "$TOKEN" --log-level warn >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 150); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  if ! kill -0 "$PID" 2>/dev/null; then break; fi
  sleep 0.1
done
status=0
(cd "$HERE" && ADMIN_URL="http://127.0.0.1:$PORT" ADMIN_TOKEN="$TOKEN" \
  ADMIN_ARTIFACTS="$BUILD/browser-artifacts" node --test admin.test.mjs) || status=$?
if [ $status -ne 0 ]; then
  echo "---- server log ----" >&2
  cat "$WORK/server.log" >&2
fi
exit $status
