# Shared set-up of the browser tests (sourced by run.sh and admin.sh, bash):
# needs BIN (the server binary), TARGET (its CMake target) and NAME (for the
# work directory). Checks BIN, installs Debian's chromium and Node.js when
# missing, installs the pinned playwright-core (npm ci), and makes WORK, a
# throwaway directory removed on exit together with the server whose pid the
# caller puts in PID.
if [ ! -x "$BIN" ]; then
  echo "browser test: $BIN is missing (build the '$TARGET' target)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)

WORK=$(mktemp -d "/tmp/dk-$NAME-browser.XXXXXX")
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
