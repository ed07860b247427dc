"""cocotb testbench module of the batch wrapper (run through :mod:`peforge.sim.session`, never by hand).

``batch``: drives the wrapper (:mod:`peforge.sim.wrapper`: R PEs behind one wide ``din`` and
one wide ``dout``) with chunks of precomputed ``din`` words and records ``dout`` every cycle.
It checks nothing itself: the host compares each record with the golden model in one
vectorised step, while this process already simulates the next chunk.  Protocol (two named
pipes, paths in ``PEFORGE_SIM_CTL`` / ``PEFORGE_SIM_ACK``): the host writes ``run K IN OUT``
per chunk (``IN``: the words, ASCII '0'/'1', MSB first, back to back); the test simulates
them and writes the ``dout`` words to ``OUT``, then ``done K`` on the ack pipe; ``end`` (or
the host closing the pipe) ends the test.

``naive``: the slow reference style kept for benchmarking (one write set, one await and one
assert per vector) on the bare PE, inputs from the .npz named by ``PEFORGE_SIM_IN``.

Timing discipline: everything happens at the falling clock edge, first reading the outputs
(settled since the rising edge), then writing the inputs for the next rising edge.  Writes go
straight to the simulator (``set_signal_val_binstr``: the inputs are only sampled at the next
rising edge, half a period later), the clock runs in C++ (``impl="gpi"``), so Python does one
read, one write and one wake-up per cycle.
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

__all__ = ["batch", "naive"]

_PERIOD_NS = 10
_DEPOSIT = 0  # GPI set action: deposit (cocotb's _GPISetAction.DEPOSIT)


@cocotb.test()
async def batch(dut) -> None:
    """Simulate the chunks the host sends over ``PEFORGE_SIM_CTL`` (see module docstring)."""
    din, dout = dut.din._handle, dut.dout._handle
    width = len(dut.din)
    put, get = din.set_signal_val_binstr, dout.get_signal_val_binstr
    fe = FallingEdge(dut.clk)
    started = False
    with open(os.environ["PEFORGE_SIM_CTL"]) as ctl, open(os.environ["PEFORGE_SIM_ACK"], "w") as ack:
        for line in ctl:
            cmd, *args = line.split()
            if cmd == "end":
                break
            key, src, dst = args
            words = Path(src).read_bytes().decode("ascii")
            n = len(words) // width
            if n * width != len(words) or n == 0:
                raise ValueError(f"chunk {key}: {len(words)} bits is not a whole number of {width}-bit words")
            if not started:  # the first word (a reset) before the first edge, then the clock
                put(_DEPOSIT, words[:width])
                Clock(dut.clk, _PERIOD_NS, unit="ns", impl="gpi").start(start_high=False)
                started = True
            out = [""] * n
            for i in range(n):
                await fe
                out[i] = get()  # state after the edges of cycles < i
                put(_DEPOSIT, words[i * width : (i + 1) * width])  # inputs of cycle i's rising edge
            Path(dst).write_bytes("".join(out).encode("ascii"))
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
