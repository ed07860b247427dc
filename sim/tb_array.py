"""cocotb testbench module for PE arrays, the per-cycle baseline of the benchmark (run through :func:`peforge.sim.array.simulate_naive`, never by hand).

``stream``: drives a precomputed per-cycle plan into the array's ports and records the outputs
of every cycle; it checks nothing itself (the host compares the record with the golden model).

Files (paths in environment variables):
``PEFORGE_SIM_IN``  .npz with ``inputs`` and ``outputs`` (port names; the first output is the
                    valid strobe) and, per input port, one value per cycle: an integer array for
                    ports up to 63 bits, else '0'/'1' strings (MSB first); cycle 0 holds reset.
``PEFORGE_SIM_OUT`` .npz with one '0'/'1' string per cycle per output port; the other outputs are
                    read only on cycles whose valid strobe is high (empty strings elsewhere).

Timing: at each falling edge the outputs are read (settled since the rising edge), then the
inputs for the next rising edge are written; a port is written only when its value changes.
"""

from __future__ import annotations

import os
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

__all__ = ["stream"]

_PERIOD_NS = 10


@cocotb.test()
async def stream(dut) -> None:
    """Drive the plan from ``PEFORGE_SIM_IN``, record every output to ``PEFORGE_SIM_OUT``."""
    data = np.load(os.environ["PEFORGE_SIM_IN"])
    in_names = [str(n) for n in data["inputs"].tolist()]
    out_names = [str(n) for n in data["outputs"].tolist()]
    plans = []
    for n in in_names:
        arr = data[f"in_{n}"]
        plans.append([v.decode("ascii") for v in arr.tolist()] if arr.dtype.kind == "S" else arr.tolist())
    handles = [getattr(dut, n) for n in in_names]
    outs = [getattr(dut, n) for n in out_names]
    cycles = len(plans[0])
    prev = [p[0] for p in plans]
    for h, v in zip(handles, prev):
        h.value = v
    Clock(dut.clk, _PERIOD_NS, unit="ns").start(start_high=False)
    record: list[list[str]] = [[""] * cycles for _ in outs]
    fe = FallingEdge(dut.clk)
    strobe, rest = outs[0], list(enumerate(outs))[1:]
    for c in range(cycles):
        await fe
        v = str(strobe.value)
        record[0][c] = v
        if v != "0":
            for k, h in rest:
                record[k][c] = str(h.value)
        for k, h in enumerate(handles):
            v = plans[k][c]
            if v != prev[k]:
                h.value = v
                prev[k] = v
    arrays: dict[str, Any] = {f"out_{n}": np.array(record[k], dtype="S") for k, n in enumerate(out_names)}
    np.savez(os.environ["PEFORGE_SIM_OUT"], **arrays)
