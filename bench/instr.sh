#!/usr/bin/env bash
# Instructions per request of a server, under valgrind --tool=callgrind.
#
#   bench/instr.sh [-n N] [-c CONNS] [--out FILE] -- SERVER_CMD...
#
# SERVER_CMD must contain the word PORT (replaced by a free port). Runs the
# server twice under callgrind: once answering W warm-up requests, once W + N
# identical conf.echo requests (bench/nreq.py: CONNS keep-alive connections,
# one request in flight on each), both stopped with SIGTERM. The difference
# of the two totals over N is the cost of one request (start-up and shutdown
# cancel out). Prints "instructions/request". --out FILE keeps the profile of
# the longer run (callgrind_annotate FILE) and of the shorter one (FILE.base).
#
#   bench/instr.sh -- build/examples/conformance/conformance --port PORT --log-level warn
#   bench/instr.sh -- build/bench/bare_h2o PORT
# (callgrind_control -z is not used: its signal interrupts the event loop.)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/lib.sh"
n=2000 conns=4 warm=200 out=""
while [ $# -gt 0 ]; do
  case $1 in
    -n) n=$2; shift 2 ;;
    -c) conns=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "bench/instr.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d /tmp/donkey-instr.XXXXXX)
pid=""
trap 'bk_stop "$pid"; rm -rf "$tmp"' EXIT

# run COUNT -> prints the program's total instructions
run() {
  local count=$1 port a cmd=() i
  port=$(bk_port)
  for a in "${ARGS[@]}"; do cmd+=("${a//PORT/$port}"); done
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$count" "${cmd[@]}" \
    >"$tmp/server.$count.log" 2>&1 &
  pid=$!
  for i in $(seq 600); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
      "$port" 2>/dev/null && break
    sleep 0.1
  done
  python3 "$src/bench/nreq.py" "$port" "$count" "$conns" >&2
  bk_stop "$pid"
  pid=""
  callgrind_annotate "$tmp/cg.$count" 2>/dev/null |
    awk '/PROGRAM TOTALS/ && !t { gsub(",", "", $1); t = $1 } END { print t }'
}
ARGS=("$@")
base=$(run "$warm")
total=$(run $((warm + n)))
[ -n "$out" ] && cp "$tmp/cg.$((warm + n))" "$out" && cp "$tmp/cg.$warm" "$out.base"
awk -v a="$base" -v b="$total" -v n="$n" \
  'BEGIN { printf "%.0f instructions/request (%s - %s over %d requests)\n", (b - a) / n, b, a, n }'
