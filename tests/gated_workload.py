"""A test-only callable workload whose sweep points wait for the test (tests/test_reliability.py).

The first ``free`` PE points evaluated pass at once; every later one waits until the file
``gate`` exists.  A sweep of such points provably stands mid-way while a test interrupts it,
kills it or races it for its directory, however loaded the machine and however fast the golden
models are; the test then opens the gate to let a resume (or the winning sweep) finish.  The
metric itself is an ordinary deterministic one, so resumed rows can be compared with fresh ones.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: Longest a point waits for its gate: a test that never opens it fails instead of hanging.
GATE_TIMEOUT_S = 600.0


def gated_metric(matmul: Callable[[np.ndarray, np.ndarray], Any], gate: str = "", free: int = 0) -> dict[str, float]:
    """Mean absolute error of a fixed small GEMM through ``matmul`` (``"module:function"``
    workload ``gated_workload:gated_metric``); a PE point first passes the gate (see the module
    docstring).  The float baseline (a matmul without a ``spec``) never waits."""
    if gate and hasattr(matmul, "spec"):
        _pass(Path(gate), free)
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((4, 16)), rng.standard_normal((16, 3))
    return {"err": float(np.mean(np.abs(np.asarray(matmul(x, w), np.float64) - x @ w)))}


def _pass(gate: Path, free: int) -> None:
    """Return at once while one of ``free`` pass tokens is left (each claimed atomically by an
    exclusive create, so concurrent worker processes share them), else once ``gate`` exists."""
    for i in range(free):
        try:
            os.close(os.open(f"{gate}.pass{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return
        except FileExistsError:
            continue
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {str(gate)!r} was not opened within {GATE_TIMEOUT_S:.0f} s")
        time.sleep(0.02)
