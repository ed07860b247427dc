"""cocotb testbench module for PE arrays (run through :mod:`peforge.sim.runner`, never by hand).

``stream``: drives a precomputed per-cycle plan into the array's ports and records the outputs
of every cycle; it checks nothing itself (the host compares the record with the golden model).

Files (paths in environment variables):
``PEFORGE_SIM_IN``  .npz with ``inputs`` and ``outputs`` (port names) and, per input port, one
                    '0'/'1' string per cycle (MSB first); cycle 0 holds reset.
``PEFORGE_SIM_OUT`` .npz with one '0'/'1' string per cycle per output port.

Timing: at each falling edge the outputs are read (settled since the rising edge), then the
inputs for the next rising edge are written; a port is written only when its value changes.
"""

from __future__ import annotations

import os

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
    plans = [[s.decode("ascii") for s in data[f"in_{n}"].tolist()] for n in in_names]
    handles = [getattr(dut, n) for n in in_names]
    outs = [getattr(dut, n) for n in out_names]
    cycles = len(plans[0])
    prev = [p[0] for p in plans]
    for h, v in zip(handles, prev):
        h.value = v
    Clock(dut.clk, _PERIOD_NS, unit="ns").start(start_high=False)
    record: list[list[str]] = [[""] * cycles for _ in outs]
    fe = FallingEdge(dut.clk)
    for c in range(cycles):
        await fe
        for k, h in enumerate(outs):
            record[k][c] = str(h.value)
        for k, h in enumerate(handles):
            v = plans[k][c]
            if v != prev[k]:
                h.value = v
                prev[k] = v
    np.savez(os.environ["PEFORGE_SIM_OUT"],
             **{f"out_{n}": np.array(record[k], dtype="S") for k, n in enumerate(out_names)})
