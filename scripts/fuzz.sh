#!/usr/bin/env bash
# Frame fuzzing: starts an agent (release build, SQLite + a local directory in a temporary dir) and
# feeds it generated and mutated frames of every routed API from many connections (fuzz/, the
# streamhouse-fuzz binary) for SECONDS; then checks that the agent is still running, never panicked,
# and still answers a well-behaved client. Prints how many frames it survived and at what rate.
#
#   scripts/fuzz.sh [SECONDS]           default 600
#   FUZZ_ARGS="--seed 7 --connections 32" scripts/fuzz.sh 60
#   FUZZ_ARGS="--frames 10000000" scripts/fuzz.sh 7200     (stops at whichever comes first)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-600}"
cd "$ROOT"

echo "==> cargo build --release --bin streamhouse --bin streamhouse-fuzz"
cargo build --release --bin streamhouse --bin streamhouse-fuzz
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

# The agent's data dir lives in memory where it can (/dev/shm): what is fuzzed is frame handling, and on
# disk the rate would measure the fsyncs of every flush, shared with whatever else the machine does.
# FUZZ_DIR puts it elsewhere.
PARENT="${FUZZ_DIR:-$([ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")}"
DIR="$(mktemp -d "$PARENT/streamhouse-fuzz.XXXXXX")"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Partition limits keep what the fuzzer may create small; everything else is the default agent.
"$BIN/streamhouse" --data-dir "$DIR" --listen "127.0.0.1:$PORT" --http-listen off --console-listen off --max-partitions 2000 --max-partitions-per-topic 100 \
    >"$DIR/agent.log" 2>&1 &
AGENT=$!
trap 'kill "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

echo "==> fuzzing 127.0.0.1:$PORT for ${SECONDS_TO_RUN}s (agent log: $DIR/agent.log)"
# shellcheck disable=SC2086
"$BIN/streamhouse-fuzz" --addr "127.0.0.1:$PORT" --seconds "$SECONDS_TO_RUN" ${FUZZ_ARGS:-}
if ! kill -0 "$AGENT" 2>/dev/null; then
    echo "fuzz.sh: the agent died; the end of its log:" >&2
    tail -n 40 "$DIR/agent.log" >&2
    exit 1
fi
if grep -q "panicked at" "$DIR/agent.log"; then
    echo "fuzz.sh: the agent panicked (and went on):" >&2
    grep -A5 "panicked at" "$DIR/agent.log" | head -20 >&2
    exit 1
fi
echo "==> the agent is still running and never panicked"
kill "$AGENT" 2>/dev/null || true
wait "$AGENT" 2>/dev/null || true
# Kept only when something went wrong (above): the data dir may be in memory.
rm -rf "$DIR"
