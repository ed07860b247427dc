"""cocotb testbench module of the batch wrapper (run through :mod:`peforge.sim.session`, never by hand).

``batch``: runs the wrapper (:mod:`peforge.sim.wrapper`: R PEs fed from a file of wide ``din``
words, recording their wide ``dout`` words into another) chunk after chunk.  It checks
nothing itself: the host compares each record with the golden model in one vectorised step,
while this process already simulates the next chunk.  Protocol (two named pipes, paths in
``PEFORGE_SIM_CTL`` / ``PEFORGE_SIM_ACK``): the host writes ``run K IN OUT N`` per chunk
(``IN``: N words as :func:`peforge.sim.batch.to_din` writes them); the test moves ``IN`` to the
wrapper's input file, toggles ``load``, lets N clock cycles pass with one timer, toggles
``dump`` and copies the N new output records to ``OUT``, then writes ``done K`` on the ack
pipe; ``end`` (or the host closing the pipe) ends the test.

``naive``: the slow reference style kept for benchmarking (one write set, one await and one
assert per vector) on the bare PE, inputs from the .npz named by ``PEFORGE_SIM_IN``.

Timing discipline (the same as a testbench acting at every falling edge): at each falling edge
the wrapper first records the outputs (settled since the rising edge), then presents the
inputs for the next rising edge.  The clock runs in C++ (``impl="gpi"``) and the test acts
only while the clock is low, between a falling and the next rising edge, so Python wakes up
twice per chunk, whatever its length (a per-cycle read, write and wake-up used to cost more
than simulating 64 PEs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadWrite, Timer

from .wrapper import DIN_FILE, DOUT_FILE

__all__ = ["batch", "naive"]

_PERIOD_NS = 10
_DEPOSIT = 0  # GPI set action: deposit (cocotb's _GPISetAction.DEPOSIT)
_PHASE_NS = 2  # the testbench acts this long after a falling edge (the clock is low)


@cocotb.test()
async def batch(dut) -> None:
    """Simulate the chunks the host sends over ``PEFORGE_SIM_CTL`` (see module docstring)."""
    load, dump, words = dut.load._handle, dut.dump._handle, dut.words._handle
    toggled = {"load": 0, "dump": 0}

    def toggle(name: str, handle: Any) -> None:
        toggled[name] ^= 1
        handle.set_signal_val_int(_DEPOSIT, toggled[name])

    with open(os.environ["PEFORGE_SIM_CTL"]) as ctl, open(os.environ["PEFORGE_SIM_ACK"], "w") as ack:
        Clock(dut.clk, _PERIOD_NS, unit="ns", impl="gpi").start(start_high=False)
        await Timer(_PHASE_NS, unit="ns")  # from now on the test acts while the clock is low
        settled = ReadWrite()
        with open(DOUT_FILE, "rb") as record:  # created by the wrapper at time 0; read what is new
            for line in ctl:
                cmd, *args = line.split()
                if cmd == "end":
                    break
                key, src, dst, n = args
                os.replace(src, DIN_FILE)
                words.set_signal_val_int(_DEPOSIT, int(n))
                toggle("load", load)  # the wrapper opens DIN_FILE; the next falling edge reads word 0
                await Timer(int(n) * _PERIOD_NS, unit="ns")  # n falling edges: n records, n words
                toggle("dump", dump)
                await settled  # the wrapper has flushed its record
                Path(dst).write_bytes(record.read())
                ack.write(f"done {key}\n")
                ack.flush()


@cocotb.test()
async def naive(dut) -> None:
    """One vector per cycle on the bare PE: set inputs, await one edge, assert one result."""
    import numpy as np

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
