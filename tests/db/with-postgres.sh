#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server, runs the given command with
# DK_TEST_PG_URL pointing at an empty database on it, then stops the server
# and deletes its files. Never touches a system cluster.
#
#   tests/db/with-postgres.sh ./build/tests/test_db
#
# Needs the PostgreSQL server binaries (Debian/Ubuntu: apt-get install postgresql).
# As root, the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

bindir=""
if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    bindir="$(pg_config --bindir)"
fi
if [ -z "$bindir" ]; then
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            bindir="$d"
            break
        fi
    done
fi
if [ -z "$bindir" ]; then
    echo "with-postgres: no PostgreSQL server binaries found (initdb, pg_ctl)" >&2
    exit 1
fi

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        echo "with-postgres: running as root but there is no 'postgres' user" >&2
        exit 1
    fi
    as_pg=(runuser -u postgres --)
fi

tmp="$(mktemp -d /tmp/dk-pg-XXXXXX)"
started=0
cleanup() {
    local rc=$?
    if [ "$started" -eq 1 ]; then
        "${as_pg[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT INT TERM

chmod 755 "$tmp"
if [ "${#as_pg[@]}" -gt 0 ]; then
    chown postgres: "$tmp"
fi

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
# Several of these scripts may start at once (ctest -j): pick a random port
# and, should another server take it first, try again with another.
pick_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        if port_free "$p"; then
            echo "$p"
            return
        fi
    done
    echo 54329
}

"${as_pg[@]}" "$bindir/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 --no-sync \
    >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; exit 1; }

ok=0
for attempt in 1 2 3 4 5; do
    # A requested port is tried first; after a failure, any free one.
    if [ "$attempt" -eq 1 ] && [ -n "${DK_TEST_PG_PORT:-}" ]; then
        port="$DK_TEST_PG_PORT"
    else
        port="$(pick_port)"
    fi
    if "${as_pg[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
        -o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null; then
        ok=1
        break
    fi
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    sleep 0.$((RANDOM % 9 + 1))
done
if [ "$ok" -ne 1 ]; then
    cat "$tmp/server.log" >&2 || true
    exit 1
fi
started=1

"${as_pg[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres donkey_test

export DK_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/donkey_test"
set +e
"$@"
status=$?
set -e
exit "$status"
