# shellcheck shell=bash
# PostgreSQL server for tests: a throwaway cluster in a temporary directory, on 127.0.0.1. Source this
# file, then:
#
#   start_postgres PORT   installs PostgreSQL with apt-get if no /usr/lib/postgresql/*/bin/initdb exists
#                         (apt-get update once, then apt-get install -y postgresql), creates a cluster with
#                         initdb (as the postgres user when run as root: initdb refuses root) in a temporary
#                         directory, starts it on 127.0.0.1:PORT with fsync=off and trust authentication,
#                         waits until it accepts connections, and exports
#                           STREAMHOUSE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres
#                         It also chains stop_postgres onto the shell's current EXIT trap (a trap set
#                         later replaces it: call stop_postgres from yours). Returns non-zero, with the
#                         server log's tail on stderr, if it cannot.
#   stop_postgres         stops that server and removes its directory. Safe to call twice or without a start.
#
# Example:
#   source scripts/lib/postgres.sh
#   start_postgres 55432
#   CARGO_TARGET_DIR=/tmp/target-metadata cargo test -p streamhouse-metadata
#
# Only this cluster is ever stopped (pg_ctl on its own data directory). Data is thrown away with it.

_pg_log() { printf 'postgres.sh: %s\n' "$*" >&2; }

# _pg_as_owner CMD...: runs CMD as the cluster's owner (postgres when we are root, else ourselves).
_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# _pg_bin: the newest installed PostgreSQL's bin directory, or nothing.
_pg_bin() {
    # Always succeeds (callers may run under set -e -o pipefail); prints nothing when none is found.
    local initdb newest
    newest="$(for initdb in /usr/lib/postgresql/*/bin/initdb; do
        if [ -x "$initdb" ]; then printf '%s\n' "$initdb"; fi
    done | sort -V | tail -n 1)"
    if [ -n "$newest" ]; then dirname "$newest"; fi
}

_pg_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            _pg_log "PostgreSQL is not installed and we are not root: apt-get install -y postgresql"
            return 1
        fi
    fi
    if [ -z "${_PG_APT_UPDATED:-}" ]; then
        _pg_log "apt-get update"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        _PG_APT_UPDATED=1
    fi
    _pg_log "apt-get install -y postgresql"
    # The package's own cluster (if it creates one) is left alone; we only use its binaries.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || return 1
}

start_postgres() {
    local port="${1:-}"
    if [ -z "$port" ]; then
        _pg_log "usage: start_postgres PORT"
        return 2
    fi
    if [ -n "${PG_DIR:-}" ]; then
        _pg_log "a PostgreSQL server started by this shell is already running ($PG_DIR); call stop_postgres first"
        return 1
    fi
    local bin
    bin="$(_pg_bin)"
    if [ -z "$bin" ]; then
        _pg_install || { _pg_log "could not install PostgreSQL"; return 1; }
        bin="$(_pg_bin)"
        [ -n "$bin" ] || { _pg_log "installed postgresql but found no /usr/lib/postgresql/*/bin/initdb"; return 1; }
    fi
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
        _pg_log "something already accepts connections on 127.0.0.1:$port: pick another port or stop it"
        return 1
    fi

    PG_BIN="$bin"
    PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/streamhouse-postgres.XXXXXX")"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$PG_DIR"
    fi
    if ! _pg_as_owner "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$PG_DIR/initdb.log" 2>&1; then
        _pg_log "initdb failed; its output:"
        tail -n 20 "$PG_DIR/initdb.log" >&2
        stop_postgres
        return 1
    fi
    # -k: the Unix socket goes in our directory, not /var/run/postgresql (which may not exist or be
    # someone else's). -t 60: pg_ctl -w waits up to 60 s for the server to accept connections.
    if ! _pg_as_owner "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        start >/dev/null; then
        _pg_log "PostgreSQL did not start on 127.0.0.1:$port; its log:"
        tail -n 20 "$PG_DIR/log" >&2
        stop_postgres
        return 1
    fi
    local waited=0
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; do
        if [ "$waited" -ge 300 ]; then  # 30 s in 0.1 s steps
            _pg_log "PostgreSQL does not accept connections on 127.0.0.1:$port within 30 s; its log:"
            tail -n 20 "$PG_DIR/log" >&2
            stop_postgres
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done

    export STREAMHOUSE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    # Chain onto whatever EXIT trap the shell has: `trap -p` prints it quoted for eval.
    local previous=""
    eval "set -- $(trap -p EXIT)"
    previous="${3:-}"
    # shellcheck disable=SC2064 # expand now: the trap must call the previous handler as it is today
    trap "stop_postgres${previous:+; $previous}" EXIT
    _pg_log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($PG_DIR)"
}

stop_postgres() {
    if [ -n "${PG_DIR:-}" ]; then
        if [ -f "$PG_DIR/data/postmaster.pid" ]; then
            _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 ||
                _pg_log "pg_ctl stop failed for $PG_DIR/data"
        fi
        rm -rf "$PG_DIR"
        unset PG_DIR PG_BIN
        unset STREAMHOUSE_TEST_POSTGRES_URL
    fi
    return 0
}
