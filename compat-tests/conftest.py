"""Harness for the StreamHouse compatibility suite.

The `broker` fixture starts a fresh `streamhouse` process per test (free port on 127.0.0.1, fresh
data dir) and gives the test process control over it (kill/restart/stop).

Environment:
  STREAMHOUSE_BIN    path of the broker binary (default: <repo>/target/debug/streamhouse)
  STREAMHOUSE_ARGS   extra command-line arguments for the broker (shell-split), e.g.
                     "--metadata-url postgres://..."
  STREAMHOUSE_LOG / RUST_LOG   passed through to the broker (default: info)
  COMPAT_BOOTSTRAP   host:port of an already running Kafka-compatible broker: no process is started,
                     tests that need kill/restart/stop are skipped.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from procs import broker_bin, die_with_parent, free_port, port_accepts

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
LOG_TAIL_LINES = 80
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


def resolve_broker_bin() -> Path:
    try:
        return broker_bin()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)


class BrokerProcess:
    """A streamhouse process under the test's control."""

    managed = True

    def __init__(self, binary: Path, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "broker.log"
        self.host = "127.0.0.1"
        self.port = free_port()
        self.bootstrap = f"{self.host}:{self.port}"
        # The HTTP API and console on ports of their own, kept across restarts.
        self.http_port = free_port()
        self.console_port = free_port()
        self.http = f"http://{self.host}:{self.http_port}"
        self.console = f"http://{self.host}:{self.console_port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        # set when the test itself ended the process (kill/stop), so an unexpected exit is detectable
        self._expected_exit = False

    # -- process control -------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [
            str(self.binary),
            "--listen", self.bootstrap,
            "--advertised-address", self.bootstrap,
            "--data-dir", str(self.data_dir),
            "--http-listen", f"{self.host}:{self.http_port}",
            "--console-listen", f"{self.host}:{self.console_port}",
        ]
        cmd += shlex.split(os.environ.get("STREAMHOUSE_ARGS", ""))
        return cmd

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        env = dict(os.environ)
        env.setdefault("STREAMHOUSE_LOG", "info")
        env.setdefault("RUST_LOG", env["STREAMHOUSE_LOG"])
        env.setdefault("RUST_BACKTRACE", "1")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(
                f"\n===== compat-tests: start #{self.starts}: {shlex.join(self.command())}\n".encode()
            )
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                preexec_fn=die_with_parent,
            )
        self._expected_exit = False
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail(
                    f"broker exited with code {rc} during startup\n{self.log_tail()}", pytrace=False
                )
            # The HTTP API binds after the Kafka port: wait for both.
            if port_accepts(self.host, self.port) and port_accepts(self.host, self.http_port):
                return
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        pytest.fail(
            f"broker did not accept connections on {self.bootstrap} within {READY_TIMEOUT_S}s\n"
            f"{self.log_tail()}",
            pytrace=False,
        )

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean up."""
        assert self.proc is not None
        self._expected_exit = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._wait_port_free()

    def stop(self) -> int:
        """SIGTERM, wait for a graceful exit, assert exit code 0."""
        assert self.proc is not None
        self._expected_exit = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(
                f"broker did not exit within {STOP_TIMEOUT_S}s of SIGTERM\n{self.log_tail()}",
                pytrace=False,
            )
        assert rc == 0, f"broker exited with code {rc} after SIGTERM\n{self.log_tail()}"
        self._wait_port_free()
        return rc

    def restart(self) -> None:
        """Start again on the same data dir and port (after kill() or stop())."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        self.start()

    def _wait_port_free(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and port_accepts(self.host, self.port, 0.2):
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self) -> None:
        assert self.alive(), (
            f"broker process died (exit code {self.proc.returncode})\n{self.log_tail()}"
        )

    def exited_unexpectedly(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None and not self._expected_exit

    def teardown(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self._expected_exit = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    # -- logs --------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- broker log {self.log_path} (last {len(tail)} lines) ---\n" + "\n".join(tail)


# consecutive broker start-up failures: after a few, fail fast instead of waiting 20 s per test
_STARTUP_FAILURES = {"count": 0}
MAX_STARTUP_FAILURES = 3


class ExternalBroker:
    """An already running broker (COMPAT_BOOTSTRAP): no process control."""

    managed = False

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        host, _, port = bootstrap.rpartition(":")
        self.host, self.port = host, int(port)
        self.data_dir = None
        self.log_path = None

    def _skip(self):
        pytest.skip("needs process control; not available with COMPAT_BOOTSTRAP")

    def kill(self):
        self._skip()

    def stop(self):
        self._skip()

    def restart(self):
        self._skip()

    def start(self):
        self._skip()

    def alive(self) -> bool:
        return port_accepts(self.host, self.port, 2.0)

    def assert_alive(self) -> None:
        assert self.alive(), f"external broker {self.bootstrap} no longer accepts connections"

    def exited_unexpectedly(self) -> bool:
        return False

    def teardown(self) -> None:
        pass

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return f"(external broker {self.bootstrap}: no log captured)"


@pytest.fixture
def broker(request, tmp_path_factory):
    external = os.environ.get("COMPAT_BOOTSTRAP")
    if external:
        b = ExternalBroker(external)
        if request.node.get_closest_marker("needs_process"):
            b._skip()
        request.node._compat_broker = b
        yield b
        return
    binary = resolve_broker_bin()
    if _STARTUP_FAILURES["count"] >= MAX_STARTUP_FAILURES:
        pytest.fail(f"the broker failed to start {MAX_STARTUP_FAILURES} times in a row; not trying "
                    f"again (see the first failures)", pytrace=False)
    b = BrokerProcess(binary, tmp_path_factory.mktemp("broker"))
    request.node._compat_broker = b
    try:
        try:
            b.start()
        except BaseException:
            _STARTUP_FAILURES["count"] += 1
            raise
        _STARTUP_FAILURES["count"] = 0
        yield b
        if b.exited_unexpectedly():
            pytest.fail(
                f"broker process exited unexpectedly with code {b.proc.returncode} during the test\n"
                f"{b.log_tail()}",
                pytrace=False,
            )
        # a panic in a task may not kill the process, but it is a bug all the same
        panics = [line for line in b.log_text().splitlines() if "panicked at" in line]
        if panics:
            pytest.fail("broker panicked during the test:\n" + "\n".join(panics[:5]) + "\n"
                        + b.log_tail(), pytrace=False)
    finally:
        b.teardown()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    b = getattr(item, "_compat_broker", None)
    if b is not None and report.failed and report.when in ("setup", "call"):
        report.sections.append(("broker log (tail)", b.log_tail()))


@pytest.fixture
def unique():
    """unique('orders') -> 'orders-1a2b3c4d5e': a fresh topic name per test."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make


def pytest_report_header(config):
    ext = os.environ.get("COMPAT_BOOTSTRAP")
    if ext:
        return [f"compat-tests: external broker COMPAT_BOOTSTRAP={ext} (process-control tests skip)"]
    return [f"compat-tests: broker binary STREAMHOUSE_BIN={os.environ.get('STREAMHOUSE_BIN', '(default)')}"]
