#!/usr/bin/env bash
# Installs every Debian package donkey needs to build, test and benchmark.
# Safe to re-run; uses sudo when not root.
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev python3
      libh2o-evloop-dev libh2o-dev libuv1-dev libjansson-dev libpcre2-dev
      libsqlite3-dev libpq-dev libssl-dev libhiredis-dev libsodium-dev
      libcmocka-dev libcurl4-openssl-dev libboost-context-dev libnghttp2-dev openssl curl
      postgresql redis-server wrk kore chromium prometheus)
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
missing=()
# Node.js: the machine image may carry its own build (with npm bundled), which
# conflicts with Debian's npm package; install Debian's only when absent.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The packaged servers must not keep running on their default ports: tests
# start their own on free ports.
if command -v service >/dev/null 2>&1; then
  $SUDO service redis-server stop >/dev/null 2>&1 || true
  $SUDO service postgresql stop >/dev/null 2>&1 || true
  $SUDO service prometheus stop >/dev/null 2>&1 || true
fi
