#!/usr/bin/env bash
# End-to-end test of the TypeScript client (CTest: client.ts).
#   bash tests/client/run.sh BUILD_DIR
# Needs a built tree (conformance app, dk_gen_client_test), Node 20+ and npm.
# The conformance client is generated with the donkey CLI when it is built
# (else with the driver tests/client/gen_main.c), the schema fixture with the
# driver. Steps: npm ci in client/ (pinned TypeScript), check client/runtime.js is
# up to date, generate clients, tsc --strict --noEmit, start conformance on a
# free port, node --test tests/client/*.test.mjs against it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
conformance="$build/examples/conformance/conformance"
gen="${DK_GEN_CLIENT:-$build/tests/dk_gen_client_test}"

work=$(mktemp -d "${TMPDIR:-/tmp}/dk-client-test.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

echo "== npm ci (client/)"
(cd "$src/client" && npm ci --silent --no-audit --no-fund)
(cd "$src/client" && node build-js.mjs --check)

echo "== generate"
"$conformance" --routes-json > "$work/routes.json"
cli="$build/cli/donkey"
if [ -x "$cli" ]; then
    # The real command: donkey generate client --server BIN --out DIR.
    "$cli" generate client --server "$conformance" --out "$work/gen" > /dev/null
    "$gen" "$work/routes.json" "$work/gen-driver"
    for f in index.ts index.js; do
        cmp -s "$work/gen/$f" "$work/gen-driver/$f" || { echo "CLI and driver differ: $f"; exit 1; }
    done
    if "$cli" generate client --server "$conformance" --out "$work/gen" 2>/dev/null; then
        echo "donkey generate client overwrote existing files without --force"; exit 1
    fi
else
    "$gen" "$work/routes.json" "$work/gen"
fi
for f in index.ts runtime.ts index.js runtime.js; do
    test -s "$work/gen/$f" || { echo "missing $work/gen/$f"; exit 1; }
done
cmp -s "$work/gen/runtime.ts" "$src/client/runtime.ts" || { echo "runtime.ts differs"; exit 1; }
cmp -s "$work/gen/runtime.js" "$src/client/runtime.js" || { echo "runtime.js differs"; exit 1; }
if "$gen" "$work/routes.json" "$work/gen" 2>"$work/err.txt"; then
    echo "generator overwrote existing files without --force"; exit 1
fi
grep -q "already exists" "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
"$gen" "$work/routes.json" "$work/gen" --force
"$gen" "$here/schemas.json" "$work/schemas"

echo "== tsc --strict --noEmit"
cp "$here/typecheck.ts" "$here/schemas-check.ts" "$work/"
(cd "$src/client" && npx tsc --strict --noEmit --target es2022 --module esnext \
    --moduleResolution bundler "$work/typecheck.ts" "$work/schemas-check.ts" \
    "$work/gen/index.ts" "$work/schemas/index.ts")

echo "== node --test"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
NO_COLOR=1 ASAN_OPTIONS=detect_leaks=0 "$conformance" --port "$port" --host 127.0.0.1 \
    > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log"; exit 1; fi
    sleep 0.05
done
status=0
DK_CLIENT_DIR="$work/gen" DK_SCHEMAS_DIR="$work/schemas" DK_BASE_URL="http://127.0.0.1:$port" \
    node --test --test-timeout 60000 "$here"/*.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
    echo "---- server log (tail)"; tail -n 50 "$work/server.log"
fi
exit "$status"
