#!/usr/bin/env bash
# conf.echo with --metrics on vs off, in one alternating run (issue 17:
# metrics may cost at most 3 %). Two servers run side by side (one with
# --metrics, one without, request log off in both); each round benches one
# then the other, the order flipping every round; the result is the median
# of the rounds. A scrape of the metrics server runs every second meanwhile,
# as Prometheus would.
# Usage: bench/metrics_overhead.sh [build-dir] [rounds] [seconds] [connections]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BK_SRC=$(cd "$here/.." && pwd)
. "$here/lib.sh"
build=${1:-$BK_SRC/build}
rounds=${2:-5}
secs=${3:-5}
conns=${4:-64}
bin="$build/examples/conformance/conformance"
p_off=$(bk_port)
p_on=$(bk_port)
"$bin" --port "$p_off" --log-level warn --access-log off >/dev/null 2>&1 &
pid_off=$!
"$bin" --port "$p_on" --log-level warn --access-log off --metrics >/dev/null 2>&1 &
pid_on=$!
scraper=""
trap 'bk_stop $pid_off; bk_stop $pid_on; [ -n "$scraper" ] && kill $scraper 2>/dev/null; true' EXIT
bk_wait_http "http://127.0.0.1:$p_off/conf.echo" '{"name":"x"}'
bk_wait_http "http://127.0.0.1:$p_on/conf.echo" '{"name":"x"}'
(while true; do curl -s -o /dev/null "http://127.0.0.1:$p_on/metrics"; sleep 1; done) &
scraper=$!
off=() on=()
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order="off on"; else order="on off"; fi
  for which in $order; do
    port=$p_off
    [ "$which" = on ] && port=$p_on
    read -r rps p50 p99 bad < <(bk_wrk "http://127.0.0.1:$port/conf.echo" "$conns" "$secs")
    bk_log "round $r metrics $which: $rps req/s p50 $p50 ms p99 $p99 ms non-2xx $bad"
    if [ "$which" = on ]; then on+=("$rps"); else off+=("$rps"); fi
  done
done
m_off=$(bk_median "${off[@]}")
m_on=$(bk_median "${on[@]}")
awk -v a="$m_off" -v b="$m_on" 'BEGIN { printf "metrics off: %d req/s, on: %d req/s (median of rounds); on is %.1f %% %s\n", a, b, (a > b ? (a - b) / a : (b - a) / a) * 100, (a > b ? "slower" : "faster") }'
