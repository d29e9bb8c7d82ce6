"""Process and port helpers shared by the single-agent harness (conftest.py) and the multi-agent one
(cluster_util.py)."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free now, never handed out before in this run, and below the kernel's ephemeral range:
    between this call and the agent's bind, no outgoing connection (an agent's to PostgreSQL, a client's)
    can take it, and two agents started together never get the same one (a twenty-agent start once did)."""
    high = _ephemeral_low()
    for _ in range(2000):
        port = random.randint(10000, high - 1) if high > 11000 else 0
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port below the ephemeral range")


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def die_with_parent():
    """preexec_fn: SIGKILL the agent if the test process dies, so no agent outlives a run."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def broker_bin() -> Path:
    """The agent binary: STREAMHOUSE_BIN (relative to the current directory, then to the repo root)
    or target/debug/streamhouse. Raises FileNotFoundError saying what to do when it is missing."""
    raw = os.environ.get("STREAMHOUSE_BIN")
    if raw:
        p = Path(raw)
        if not p.is_absolute():
            p = p.resolve() if p.exists() else (REPO_ROOT / raw)
    else:
        p = REPO_ROOT / "target" / "debug" / "streamhouse"
    if not p.exists():
        raise FileNotFoundError(
            f"broker binary {p} not found: build it (cargo build --bin streamhouse), "
            "set STREAMHOUSE_BIN, or point COMPAT_BOOTSTRAP at a running broker")
    return p
