#!/usr/bin/env bash
# StreamHouse test command: installs every client the compatibility suite needs (from nothing, on a
# fresh Debian 12), builds the broker, runs the Rust tests, then the compatibility suite against
# the built broker with REAL, unmodified Kafka clients.
#
#   scripts/test.sh                    everything
#   scripts/test.sh -k kcat            extra arguments go to pytest
#   STREAMHOUSE_BIN=/path/to/broker scripts/test.sh   use that binary, skip the cargo steps
#   COMPAT_BOOTSTRAP=127.0.0.1:9092 scripts/test.sh   test an already running broker (no process
#                                                    control: kill/restart tests skip), no cargo
#
# Everything it installs lives in gitignored folders: compat-tests/.venv, compat-tests/node_modules,
# compat-tests/.tools, compat-tests/java/build. Steps that are already done are skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CT="$ROOT/compat-tests"
VENV="$CT/.venv"
JAR_DIR="$CT/.tools/java"
JAVA_BUILD="$CT/java/build"
FLINK_WHEEL="shigawire-apache-flink-libraries==2.0.0.post1"
FLINK_WHEEL_SHA256="aaa65537d3f0c0ff279185d8243024f0efd95788ba044bf249ba0f40b69289cd"
JARS=(kafka-clients lz4-java snappy-java zstd-jni slf4j-api)
KAFKA_CLIENTS_VERSION="3.9.1"

step() { printf '==> %s\n' "$*"; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 1; }

# run_quiet LABEL CMD...: run CMD with its output in a log; show the log's tail only on failure.
run_quiet() {
    local label="$1"; shift
    local log; log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        printf 'test.sh: %s failed; last lines of its output:\n' "$label" >&2
        tail -n 40 "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: cannot apt-get install"
    SUDO="sudo"
fi

APT_UPDATED=0
# apt_install PKG...: install the Debian packages that are not installed yet (apt-get update once).
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$APT_UPDATED" = 0 ]; then
        step "apt-get update"
        run_quiet "apt-get update" $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    step "installing ${missing[*]} (apt)"
    run_quiet "apt-get install ${missing[*]}" \
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

sha256_of() { cat "$@" | sha256sum | cut -d" " -f1; }

# ---- system packages --------------------------------------------------------------------------
step "checking system packages"
apt_install ca-certificates
apt_install docker-compose prometheus  # compat-tests/test_compose.py validates docker/ with them
apt_install chromium
if ! command -v kcat >/dev/null; then
    apt_install kcat
fi
command -v kcat >/dev/null || die "kcat still missing after apt-get install kcat"

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null || ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3 python3-venv
    PYTHON=/usr/bin/python3
fi
if ! command -v javac >/dev/null || ! command -v java >/dev/null; then
    apt_install openjdk-17-jdk-headless
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi

# ---- Python venv --------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    step "creating Python venv compat-tests/.venv ($("$PYTHON" --version 2>&1))"
    rm -rf "$VENV"
    run_quiet "python venv" "$PYTHON" -m venv "$VENV"
fi
REQ_SUM="$(sha256_of "$CT/requirements.txt")"
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" != "$REQ_SUM" ]; then
    step "installing Python packages from compat-tests/requirements.txt"
    run_quiet "pip install" "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
        -r "$CT/requirements.txt"
    echo "$REQ_SUM" >"$VENV/.requirements.sha256"
else
    step "Python packages up to date"
fi

# ---- kafkajs ------------------------------------------------------------------------------------
NPM_SUM="$(sha256_of "$CT/package.json" "$CT/package-lock.json")"
if [ ! -d "$CT/node_modules/kafkajs" ] || \
   [ "$(cat "$CT/node_modules/.compat-lock.sha256" 2>/dev/null || true)" != "$NPM_SUM" ]; then
    step "installing kafkajs (npm ci)"
    run_quiet "npm ci" bash -c "cd '$CT' && npm ci --no-audit --no-fund --loglevel=error"
    echo "$NPM_SUM" >"$CT/node_modules/.compat-lock.sha256"
else
    step "kafkajs up to date"
fi

# ---- Java kafka-clients jars --------------------------------------------------------------------
have_jars=1
for j in "${JARS[@]}"; do [ -s "$JAR_DIR/$j.jar" ] || have_jars=0; done
if [ "$have_jars" = 0 ]; then
    step "fetching Java kafka-clients $KAFKA_CLIENTS_VERSION jars ($FLINK_WHEEL from PyPI)"
    tmp="$(mktemp -d)"
    echo "$FLINK_WHEEL --hash=sha256:$FLINK_WHEEL_SHA256" >"$tmp/req.txt"
    run_quiet "pip download $FLINK_WHEEL" "$VENV/bin/python" -m pip download --disable-pip-version-check \
        -q --no-deps --require-hashes -r "$tmp/req.txt" -d "$tmp/wheel"
    "$VENV/bin/python" - "$tmp" "$JAR_DIR" "$KAFKA_CLIENTS_VERSION" "${JARS[@]}" <<'PY'
import glob, os, sys, zipfile
tmp, dest, want_version, *jars = sys.argv[1:]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "wheel", "*.whl"))[0])
staging = os.path.join(tmp, "jars")
os.makedirs(staging)
for name in jars:
    with open(os.path.join(staging, name + ".jar"), "wb") as f:
        f.write(wheel.read(f"pyflink/lib/{name}.jar"))
props = zipfile.ZipFile(os.path.join(staging, "kafka-clients.jar")).read("kafka/kafka-version.properties")
version = dict(l.split("=", 1) for l in props.decode().splitlines() if "=" in l)["version"].strip()
if version != want_version:
    sys.exit(f"kafka-clients.jar is version {version}, expected {want_version}")
os.makedirs(dest, exist_ok=True)
for name in jars:
    os.replace(os.path.join(staging, name + ".jar"), os.path.join(dest, name + ".jar"))
PY
    rm -rf "$tmp"
else
    step "Java kafka-clients jars present"
fi

# ---- Java driver ----------------------------------------------------------------------------------
JAVA_SRCS=()
while IFS= read -r -d '' f; do JAVA_SRCS+=("$f"); done < <(find "$CT/java/src" -name '*.java' -print0)
CP="$(printf "$JAR_DIR/%s.jar:" "${JARS[@]}")"; CP="${CP%:}"
if [ ! -f "$JAVA_BUILD/.stamp" ] || [ -n "$(find "$CT/java/src" "$JAR_DIR" -newer "$JAVA_BUILD/.stamp" -type f | head -1)" ]; then
    step "compiling the Java driver (javac)"
    rm -rf "$JAVA_BUILD"
    mkdir -p "$JAVA_BUILD"
    run_quiet "javac" javac -nowarn -d "$JAVA_BUILD" -cp "$CP" "${JAVA_SRCS[@]}"
    touch "$JAVA_BUILD/.stamp"
else
    step "Java driver up to date"
fi

# ---- servers the tests use: PostgreSQL (metadata backend) and an S3 API server (moto) ---------------
free_port() { "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# shellcheck source=lib/postgres.sh
. "$ROOT/scripts/lib/postgres.sh"
# shellcheck source=lib/s3.sh
. "$ROOT/scripts/lib/s3.sh"
trap 'stop_s3; stop_postgres' EXIT
step "starting PostgreSQL for the metadata tests"
start_postgres "$(free_port)"
step "starting an S3 API server (moto) for the object-store tests"
start_s3 "$(free_port)" "$VENV"

# ---- the broker -----------------------------------------------------------------------------------
if [ -n "${COMPAT_BOOTSTRAP:-}" ]; then
    step "COMPAT_BOOTSTRAP=$COMPAT_BOOTSTRAP: testing a running broker, skipping cargo"
elif [ -n "${STREAMHOUSE_BIN:-}" ]; then
    step "STREAMHOUSE_BIN=$STREAMHOUSE_BIN: skipping cargo"
    case "$STREAMHOUSE_BIN" in /*) ;; *) STREAMHOUSE_BIN="$PWD/$STREAMHOUSE_BIN" ;; esac
    [ -x "$STREAMHOUSE_BIN" ] || die "STREAMHOUSE_BIN=$STREAMHOUSE_BIN is not an executable file"
    export STREAMHOUSE_BIN
else
    if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    command -v cargo >/dev/null || die "cargo not found (install Rust, or set STREAMHOUSE_BIN)"
    step "cargo fmt --check (one style for the workspace: rustfmt.toml)"
    (cd "$ROOT" && cargo fmt --all --check >/dev/null) || die "the code is not formatted as rustfmt.toml says: run cargo fmt --all"
    step "cargo clippy --workspace --all-targets (warnings fail the run)"
    (cd "$ROOT" && cargo clippy --workspace --all-targets --quiet -- -D warnings) || die "clippy found warnings: fix them (cargo clippy --workspace --all-targets)"
    step "cargo build --bins (the agent and the frame fuzzer)"
    (cd "$ROOT" && cargo build --bins)
    step "cargo test --workspace"
    (cd "$ROOT" && cargo test --workspace)
    STREAMHOUSE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/streamhouse"
    case "$STREAMHOUSE_BIN" in /*) ;; *) STREAMHOUSE_BIN="$ROOT/$STREAMHOUSE_BIN" ;; esac
    export STREAMHOUSE_BIN
fi

# ---- the compatibility suite ----------------------------------------------------------------------
# explicit test paths (scripts/test.sh compat-tests/test_java.py) replace the default target
TARGET=(compat-tests)
cd "$ROOT"
for a in "$@"; do
    case "$a" in -*) continue ;; esac
    if [ -e "${a%%::*}" ]; then TARGET=(); break; fi
done
step "pytest ${TARGET[*]} $*"
# Not exec: the EXIT trap must stop PostgreSQL and the S3 server afterwards.
status=0
"$VENV/bin/python" -m pytest "${TARGET[@]}" "$@" || status=$?
exit "$status"
