#!/usr/bin/env bash
# Cluster test: a throwaway PostgreSQL (tests/db/with-postgres.sh), a
# throwaway redis-server (started by the test itself on a free port) and three
# conformance instances acting as one.
#
#   tests/cluster/run.sh BUILD_DIR
#
# Needs redis-server (Debian: apt-get install redis-server) and the
# PostgreSQL server binaries.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
build="$(cd "$build" && pwd)"
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    echo "cluster: redis-server not found (apt-get install redis-server)" >&2
    exit 1
fi
export DK_BUILD_DIR="$build"
cd "$here"
exec bash "$here/../db/with-postgres.sh" python3 -m unittest -v test_cluster
