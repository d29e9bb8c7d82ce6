"""A throwaway PostgreSQL server that a test may stop and start again (test_cluster_faults.py).

The shared PostgreSQL of a test run (STREAMHOUSE_TEST_POSTGRES_URL) must never be stopped: other tests use
it. A test that takes the metadata store away starts its own server with this, the Python equivalent of
scripts/lib/postgres.sh: initdb into a fresh temporary directory (as the `postgres` user when we are root,
since initdb refuses root), `pg_ctl start` on 127.0.0.1:PORT with fsync=off and trust authentication.

    pg = ThrowawayPostgres().start()      # a free port; pg.admin_url = postgres://postgres@127.0.0.1:PORT/postgres
    pg.stop()                             # pg_ctl stop -m fast: every connection is cut, the port refuses
    pg.start()                            # the same port and data directory again
    pg.destroy()                          # stop and remove the directory

Binaries: the newest /usr/lib/postgresql/*/bin with an initdb (what scripts/test.sh installs), else initdb
and pg_ctl on PATH. `available()` says why not when neither exists, so the caller can skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from procs import free_port, port_accepts


def pg_bin_dir() -> Path | None:
    def version_key(p: Path):
        return [int(x) if x.isdigit() else 0 for x in p.parent.parent.name.split(".")]

    found = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if os.access(p, os.X_OK)),
                   key=version_key)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def available() -> str | None:
    """None when a throwaway server can be started here, else why not."""
    if pg_bin_dir() is None:
        return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no 'postgres' user to run initdb/pg_ctl as"
    return None


class ThrowawayPostgres:
    def __init__(self, port: int | None = None):
        self.bin = pg_bin_dir()
        if self.bin is None:
            raise RuntimeError(available())
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="streamhouse-faults-pg."))
        self.data = self.dir / "data"
        self.log = self.dir / "log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.admin_url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self._initialised = False
        self.running = False

    def _run(self, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no server log)"

    def start(self, timeout: float = 60.0) -> "ThrowawayPostgres":
        if not self._initialised:
            p = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                          "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
            if p.returncode != 0:
                raise RuntimeError(f"initdb failed ({p.returncode}): {p.stdout[-2000:]}{p.stderr[-2000:]}")
            self._initialised = True
        # -k: the Unix socket in our own directory; no -w games: we wait for the TCP port ourselves too
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c max_connections=200")
        p = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                      "-t", str(int(timeout)), "-o", opts, "start", timeout=timeout + 10)
        if p.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed ({p.returncode}): {p.stderr[-2000:]}\n{self.log_tail()}")
        deadline = time.monotonic() + timeout
        while not port_accepts("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL does not accept on 127.0.0.1:{self.port}\n{self.log_tail()}")
            time.sleep(0.05)
        self.running = True
        return self

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """pg_ctl stop -m MODE, waiting until the server has exited (every client connection is gone)."""
        p = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)),
                      "stop", timeout=timeout + 10)
        if p.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed ({p.returncode}): {p.stderr[-2000:]}\n{self.log_tail()}")
        self.running = False

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop(mode="immediate", timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
