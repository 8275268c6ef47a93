# Shared helpers for bench/run and bench/compare (sourced, bash).
# Loopback only; every wait is bounded.

bk_log() { echo "[bench] $*" >&2; }

# A free TCP port on 127.0.0.1.
bk_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Builds conformance, bench_app, sse_client, bare_h2o, startup_probe into
# $BK_BUILD (configuring a Release build when the directory is new) and sets
# BK_BIN to the directory holding the bench binaries.
bk_build() {
  local src=$1
  if [ ! -f "$BK_BUILD/CMakeCache.txt" ]; then
    bk_log "configuring $BK_BUILD (Release)"
    cmake -S "$src" -B "$BK_BUILD" -DCMAKE_BUILD_TYPE=Release -DDK_WERROR=OFF \
      -DDK_BUILD_TESTS=OFF >"$BK_BUILD.configure.log" 2>&1 ||
      { cat "$BK_BUILD.configure.log" >&2; return 1; }
  fi
  bk_log "building conformance and libdonkey in $BK_BUILD"
  cmake --build "$BK_BUILD" -j"$(nproc)" --target conformance donkey_static >"$BK_BUILD/bench-build.log" 2>&1 ||
    { tail -30 "$BK_BUILD/bench-build.log" >&2; return 1; }
  local targets="bench_app sse_client bare_h2o startup_probe"
  # grep reads all of cmake's output (grep -q would exit first and, under
  # pipefail, fail the pipeline with cmake's SIGPIPE).
  if cmake --build "$BK_BUILD" --target help 2>/dev/null | grep bench_app >/dev/null; then
    # shellcheck disable=SC2086
    cmake --build "$BK_BUILD" -j"$(nproc)" --target $targets >>"$BK_BUILD/bench-build.log" 2>&1 ||
      { tail -30 "$BK_BUILD/bench-build.log" >&2; return 1; }
    BK_BIN=$BK_BUILD/bench
  else
    # The top-level CMakeLists.txt does not include bench/ (yet): build here.
    BK_BIN=$BK_BUILD/bench-bin
    mkdir -p "$BK_BIN"
    local pk="libh2o-evloop libuv jansson libpcre2-8 sqlite3 openssl libcurl libsodium"
    pkg-config --exists hiredis && pk="$pk hiredis"
    local cf="-O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter"
    # shellcheck disable=SC2086
    {
      cc $cf -I"$src/include" "$src/bench/app/bench_app.c" "$BK_BUILD/libdonkey.a" \
        $(pkg-config --libs $pk) -lboost_context -lpthread -lm -ldl -o "$BK_BIN/bench_app" &&
      cc $cf "$src/bench/sse_client.c" -o "$BK_BIN/sse_client" &&
      cc $cf "$src/bench/startup_probe.c" -o "$BK_BIN/startup_probe" &&
      cc $cf -DH2O_USE_EPOLL=1 "$src/bench/bare_h2o.c" \
        $(pkg-config --cflags --libs libh2o-evloop jansson openssl) -lz -lpthread -o "$BK_BIN/bare_h2o"
    } >>"$BK_BUILD/bench-build.log" 2>&1 || { tail -30 "$BK_BUILD/bench-build.log" >&2; return 1; }
  fi
  BK_CONF=$BK_BUILD/examples/conformance/conformance
}

# Waits (up to 10 s) until POST $1 with body $2 answers 200.
bk_wait_http() {
  local i
  for i in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -m 1 -XPOST -H 'Content-Type: application/json' \
         "$1" -d "$2" 2>/dev/null)" = 200 ] && return 0
    sleep 0.05
  done
  bk_log "no answer from $1"
  return 1
}

# Stops a server started by us (by pid), bounded.
bk_stop() {
  local pid=$1 i
  [ -z "$pid" ] && return 0
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# wrk run: bk_wrk URL CONNS SECONDS [LUA] -> "rps p50_ms p99_ms non2xx"
bk_wrk() {
  local url=$1 conns=$2 secs=$3 lua=${4:-$BK_SRC/bench/echo.lua} out
  out=$(timeout $((secs + 20)) wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$lua" "$url" 2>&1) || true
  awk '
    function ms(v) { if (v ~ /us$/) return v * 0.001; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    / 50%/ { p50 = ms($2) } / 99%/ { p99 = ms($2) }
    /Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF }
    END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, bad + 0 }' <<<"$out"
}

# Median of the numbers given as arguments.
bk_median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    if (NR % 2) print a[(NR + 1) / 2]; else printf "%g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Field k (1-based) of each line of a list -> space-separated
bk_col() { awk -v k="$1" '{ printf "%s ", $k }'; }

bk_machine() {
  local model
  model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
  [ -z "$model" ] && model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
  echo "$(nproc) cores, ${model:-unknown CPU}, $(uname -sr), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
}
