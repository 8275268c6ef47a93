#!/usr/bin/env bash
# OpenAPI lint (CTest: openapi.lint): `donkey generate openapi` for the
# conformance app must pass `redocly lint` with Redocly's built-in recommended
# rules without errors (warnings are printed, not fatal).
#   bash tests/openapi/run.sh BUILD_DIR
# Needs Node 20+ and npm; @redocly/cli is pinned by package-lock.json (npm ci).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/dk-openapi.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== npm ci (tests/openapi)"
(cd "$here" && npm ci --silent --no-audit --no-fund)

echo "== generate"
"$build/cli/donkey" generate openapi --server "$build/examples/conformance/conformance" \
    --url https://api.conformance.test --license MIT \
    --license-url https://opensource.org/licenses/MIT --auth auth=bearer \
    --out "$work/openapi.json"

echo "== redocly lint (recommended)"
cd "$here"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
status=0
npx --no-install redocly lint "$work/openapi.json" --format=stylish > "$work/lint.txt" 2>&1 \
    || status=$?
grep -v '[║╔╚]' "$work/lint.txt" || true
if [ "$status" -ne 0 ]; then
    echo "redocly lint found errors (exit $status)"
    exit 1
fi
echo "openapi lint: ok"
