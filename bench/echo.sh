#!/usr/bin/env bash
# Typed route conf.echo (JSON in, validation, JSON out) under wrk.
# Usage: bench/echo.sh [build-dir] [connections] [seconds]
# wrk and the server share this machine's cores (loopback only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
conns=${2:-64}
secs=${3:-5}
port=$((20000 + RANDOM % 20000))
"$build/examples/conformance/conformance" --port "$port" --log-level warn >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 50); do
  curl -s -o /dev/null -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$port/conf.echo" -d '{"name":"x"}' && break
  sleep 0.1
done
wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$here/echo.lua" "http://127.0.0.1:$port/conf.echo"
