"""cocotb testbench module for MAC PEs (run through :mod:`peforge.sim.runner`, never by hand).

``batch``: drives a precomputed cycle plan into the :mod:`~peforge.sim.wrapper` (R PEs behind
one wide port) and records the raw outputs of every cycle.  It checks nothing itself: the host
compares the whole record with the golden model in one vectorised step.

``naive``: the slow reference style kept for benchmarking (one write set, one await and one
assert per vector) on the bare PE.

Files (paths in environment variables):
``PEFORGE_SIM_IN``  .npz with ``rst``, ``valid`` (uint8 per cycle) and ``first``, ``a``, ``b``
                    (fixed-width bytes of '0'/'1', MSB first, one per cycle) for ``batch``;
                    ``a``, ``b``, ``first`` (ints per vector), ``expected`` and ``latency``
                    for ``naive``.
``PEFORGE_SIM_OUT`` .npz written by ``batch``: ``acc``, ``out_valid`` (and ``flags``) as
                    fixed-width bytes per cycle.

Timing discipline: everything happens at the falling clock edge, first reading the outputs
(settled since the rising edge), then writing the inputs for the next rising edge.  No
``ReadOnly`` phase is entered, so no write can follow one.
"""

from __future__ import annotations

import os
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

__all__ = ["batch", "naive"]

_PERIOD_NS = 10


def _strings(arr: np.ndarray) -> list[str]:
    return [s.decode("ascii") for s in arr.tolist()]


@cocotb.test()
async def batch(dut) -> None:
    """Drive the cycle plan from ``PEFORGE_SIM_IN``, record raw outputs to ``PEFORGE_SIM_OUT``."""
    data = np.load(os.environ["PEFORGE_SIM_IN"])
    rst = data["rst"].tolist()
    valid = data["valid"].tolist()
    first, a, b = _strings(data["first"]), _strings(data["a"]), _strings(data["b"])
    n = len(rst)
    has_flags = hasattr(dut, "flags_all")
    acc_h, ov_h = dut.acc_all, dut.out_valid_all
    flags_h = dut.flags_all if has_flags else None
    a_h, b_h, first_h, valid_h, rst_h = dut.a_all, dut.b_all, dut.first_all, dut.in_valid, dut.rst

    # Initial values before the first edge: reset asserted, inputs idle.
    rst_h.value = 1
    valid_h.value = 0
    first_h.value = first[0]
    a_h.value = a[0]
    b_h.value = b[0]
    Clock(dut.clk, _PERIOD_NS, unit="ns").start(start_high=False)

    acc_out: list = [None] * n
    ov_out: list = [None] * n
    fl_out: list = [None] * n
    fe = FallingEdge(dut.clk)
    prev_rst, prev_valid = 1, 0
    for i in range(n):
        await fe
        # outputs now show the state after the rising edges of cycles < i
        acc_out[i] = acc_h.value
        ov_out[i] = ov_h.value
        if flags_h is not None:
            fl_out[i] = flags_h.value
        # inputs for the rising edge of cycle i
        if rst[i] != prev_rst:
            rst_h.value = prev_rst = rst[i]
        if valid[i] != prev_valid:
            valid_h.value = prev_valid = valid[i]
        first_h.value = first[i]
        a_h.value = a[i]
        b_h.value = b[i]

    out = {"acc": np.array([str(v) for v in acc_out], dtype="S"),
           "out_valid": np.array([str(v) for v in ov_out], dtype="S")}
    if has_flags:
        out["flags"] = np.array([str(v) for v in fl_out], dtype="S")
    arrays: dict[str, Any] = out
    np.savez(os.environ["PEFORGE_SIM_OUT"], **arrays)


@cocotb.test()
async def naive(dut) -> None:
    """One vector per cycle on the bare PE: set inputs, await one edge, assert one result."""
    data = np.load(os.environ["PEFORGE_SIM_IN"])
    a, b, first = data["a"].tolist(), data["b"].tolist(), data["first"].tolist()
    expected = data["expected"].tolist()
    latency = int(data["latency"])
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.in_first.value = 0
    dut.a.value = 0
    dut.b.value = 0
    Clock(dut.clk, _PERIOD_NS, unit="ns").start(start_high=False)
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    dut.in_valid.value = 1
    for i in range(len(a) + latency - 1):
        if i < len(a):
            dut.a.value = a[i]
            dut.b.value = b[i]
            dut.in_first.value = first[i]
        else:
            dut.in_valid.value = 0
        await FallingEdge(dut.clk)
        j = i - latency + 1
        if j >= 0:
            got = int(dut.acc.value)
            assert got == expected[j], f"vector {j}: acc {got:#x} != expected {expected[j]:#x}"
