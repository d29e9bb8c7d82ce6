"""Process and port helpers shared by the single-agent harness (conftest.py) and the multi-agent one
(cluster_util.py)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
