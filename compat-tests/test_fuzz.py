"""A short run of the frame fuzzer (fuzz/, scripts/fuzz.sh for long runs): generated and mutated frames
of every routed API from many connections must never take the agent down, and a well-behaved client
must still be served afterwards."""

from __future__ import annotations

import subprocess

import pytest

from procs import broker_bin

FUZZ_SECONDS = 20


def fuzz_bin():
    try:
        p = broker_bin().with_name("streamhouse-fuzz")
    except FileNotFoundError:
        return None
    return p if p.exists() else None


@pytest.mark.timeout(90)
def test_mutated_frames_never_take_the_agent_down(broker):
    binary = fuzz_bin()
    if binary is None:
        pytest.skip("streamhouse-fuzz is not built next to the agent binary (cargo build --bins)")
    run = subprocess.run([str(binary), "--addr", broker.bootstrap, "--seconds", str(FUZZ_SECONDS), "--seed", "20261203"],
                         capture_output=True, text=True, timeout=75)
    print(run.stdout + run.stderr[-2000:])
    assert run.returncode == 0, f"the fuzzer failed:\n{run.stdout}\n{run.stderr[-3000:]}"
    assert "still answers" in run.stdout
    broker.assert_alive()
    assert "panicked at" not in broker.log_text()
