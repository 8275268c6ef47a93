#!/usr/bin/env bash
# Installs dependencies, builds donkey and runs the example application on
# its embedded default (SQLite, no other server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
if [ -x build/examples/board/board ]; then
  exec build/examples/board/board --port "${PORT:-3000}" "$@"
fi
exec build/examples/conformance/conformance --port "${PORT:-3000}" "$@"
