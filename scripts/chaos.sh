#!/usr/bin/env bash
# Chaos run: three agents on PostgreSQL + an S3 API server (moto), an idempotent producer, a consumer that
# stays connected throughout, a consumer group, and each cycle a random SIGKILL, SIGTERM or SIGSTOP/SIGCONT
# of one agent. At the end every acknowledged record must be read back exactly once at its offset, by the
# connected consumer, by a consumer created afterwards and by a final read-back.
#
#   scripts/chaos.sh [CYCLES]          default 100 cycles of 6 s
#   CHAOS_ARGS="--rate 4000 --seed 7" scripts/chaos.sh 20    extra arguments for scripts/chaos/run.py
#
# It starts a throwaway PostgreSQL and moto (scripts/lib), builds the release binary, and prints the
# figures (records, cycles, losses, duplicates, longest stall). Exit code 1 if anything was lost,
# duplicated or misplaced. Python clients come from compat-tests/.venv (created here if missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CYCLES="${1:-100}"
VENV="$ROOT/compat-tests/.venv"
cd "$ROOT"

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating compat-tests/.venv with the pinned Python clients"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r compat-tests/requirements.txt
fi

free_port() { "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# shellcheck source=lib/postgres.sh
. "$ROOT/scripts/lib/postgres.sh"
# shellcheck source=lib/s3.sh
. "$ROOT/scripts/lib/s3.sh"
trap 'stop_s3; stop_postgres' EXIT
echo "==> starting PostgreSQL and moto"
start_postgres "$(free_port)"
start_s3 "$(free_port)" "$VENV"

echo "==> cargo build --release --bin streamhouse"
cargo build --release --bin streamhouse
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/streamhouse"

echo "==> $CYCLES cycles"
# shellcheck disable=SC2086
"$VENV/bin/python" scripts/chaos/run.py --bin "$BIN" --cycles "$CYCLES" \
    --pg-url "$STREAMHOUSE_TEST_POSTGRES_URL" --s3-endpoint "$STREAMHOUSE_TEST_S3_ENDPOINT" ${CHAOS_ARGS:-}
