# shellcheck shell=bash
# S3 API server for tests: moto, in memory, on 127.0.0.1. Source this file, then:
#
#   start_s3 PORT VENV_DIR   installs moto[server] into VENV_DIR (created if missing) unless that version is
#                            already there, starts `moto_server` on 127.0.0.1:PORT in the background, waits until
#                            it answers HTTP, and exports what the S3 tests and the broker need:
#                              STREAMHOUSE_TEST_S3_ENDPOINT=http://127.0.0.1:PORT
#                              AWS_ENDPOINT_URL=http://127.0.0.1:PORT
#                              AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
#                            Returns non-zero (with the server log's tail on stderr) if it cannot.
#   stop_s3                  stops that server and removes its log. Safe to call twice or without a start.
#
# Example:
#   source scripts/lib/s3.sh
#   start_s3 9000 /tmp/s3-venv && trap stop_s3 EXIT
#   CARGO_TARGET_DIR=/tmp/target-s3 cargo test -p streamhouse-storage
#
# Only this server's own process id is ever signalled. Data lives in memory and vanishes with the server.

# The moto version these scripts and the storage tests were checked with (its conditional puts are atomic).
STREAMHOUSE_MOTO_VERSION="5.2.1"

_s3_log() { printf 's3.sh: %s\n' "$*" >&2; }

# _s3_answers URL: true when an HTTP server answers at URL (any status).
_s3_answers() {
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null --max-time 2 "$1"
    else
        "$S3_VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass  # an HTTP error status is still an answer
PY
    fi
}

start_s3() {
    local port="${1:-}" venv="${2:-}"
    if [ -z "$port" ] || [ -z "$venv" ]; then
        _s3_log "usage: start_s3 PORT VENV_DIR"
        return 2
    fi
    if [ -n "${S3_PID:-}" ] && kill -0 "$S3_PID" 2>/dev/null; then
        _s3_log "an S3 server started by this shell is already running (pid $S3_PID); call stop_s3 first"
        return 1
    fi
    local url="http://127.0.0.1:$port"
    S3_VENV="$venv"

    if [ ! -x "$venv/bin/python" ]; then
        _s3_log "creating virtualenv $venv"
        "${S3_PYTHON:-python3}" -m venv "$venv" || {
            _s3_log "cannot create a virtualenv at $venv: install python3-venv (Debian: apt-get install -y python3-venv)"
            return 1
        }
    fi
    local have
    have="$("$venv/bin/python" -c 'import importlib.metadata as m, flask; print(m.version("moto"))' 2>/dev/null || true)"
    if [ "$have" != "$STREAMHOUSE_MOTO_VERSION" ] || [ ! -x "$venv/bin/moto_server" ]; then
        _s3_log "installing moto[server]==$STREAMHOUSE_MOTO_VERSION into $venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "moto[server]==$STREAMHOUSE_MOTO_VERSION" || {
            _s3_log "pip could not install moto[server]==$STREAMHOUSE_MOTO_VERSION into $venv"
            return 1
        }
    fi

    if _s3_answers "$url/"; then
        _s3_log "something already answers on $url: pick another port or stop it"
        return 1
    fi
    S3_LOG="$(mktemp "${TMPDIR:-/tmp}/streamhouse-moto.XXXXXX")"
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$S3_LOG" 2>&1 &
    S3_PID=$!

    local waited=0
    until _s3_answers "$url/"; do
        if ! kill -0 "$S3_PID" 2>/dev/null; then
            _s3_log "moto_server exited before answering on $url; its log:"
            tail -n 20 "$S3_LOG" >&2
            wait "$S3_PID" 2>/dev/null
            unset S3_PID
            return 1
        fi
        if [ "$waited" -ge 300 ]; then  # 30 s in 0.1 s steps
            _s3_log "moto_server did not answer on $url within 30 s; its log:"
            tail -n 20 "$S3_LOG" >&2
            stop_s3
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done

    export STREAMHOUSE_TEST_S3_ENDPOINT="$url"
    export AWS_ENDPOINT_URL="$url"
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
    _s3_log "moto $STREAMHOUSE_MOTO_VERSION answering on $url (pid $S3_PID, log $S3_LOG)"
}

stop_s3() {
    if [ -n "${S3_PID:-}" ]; then
        kill "$S3_PID" 2>/dev/null
        wait "$S3_PID" 2>/dev/null
        unset S3_PID
    fi
    if [ -n "${S3_LOG:-}" ]; then
        rm -f "$S3_LOG"
        unset S3_LOG
    fi
    return 0
}
