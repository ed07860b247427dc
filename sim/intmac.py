"""A tiny integer MAC with the PE port contract, and its golden model.

It lets the simulation infrastructure (runner, wrapper, testbench, comparison) be tested on
its own, independent of the minifloat RTL: unsigned codes, ``acc := (first ? 0 : acc) +
sum(a_i * b_i) mod 2**acc_bits``, ``stages`` pipeline registers before the accumulator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .wrapper import PeInterface

__all__ = ["IntMac", "intmac_verilog", "intmac_golden", "intmac_interface"]


def intmac_interface(lanes: int = 1, bits: int = 8, acc_bits: int = 32, stages: int = 0) -> PeInterface:
    return PeInterface(module=f"intmac_l{lanes}_w{bits}_a{acc_bits}_s{stages}", lanes=lanes,
                       a_bits=bits, b_bits=bits, acc_bits=acc_bits, flag_bits=0, latency=stages + 1)


class IntMac(wiring.Component):
    """Integer MAC PE following the PE port contract (see module docstring)."""

    def __init__(self, iface: PeInterface) -> None:
        self._iface = iface
        super().__init__({
            "in_valid": In(1), "in_first": In(1),
            "a": In(iface.lanes * iface.a_bits), "b": In(iface.lanes * iface.b_bits),
            "out_valid": Out(1), "acc": Out(iface.acc_bits),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        f = self._iface
        total = sum(self.a[i * f.a_bits:(i + 1) * f.a_bits] * self.b[i * f.b_bits:(i + 1) * f.b_bits]
                    for i in range(f.lanes))
        valid, first, prod = self.in_valid, self.in_first, total
        for s in range(f.latency - 1):
            v, fi, p = Signal(name=f"v{s}"), Signal(name=f"f{s}"), Signal(len(total), name=f"p{s}")
            m.d.sync += [v.eq(valid), fi.eq(first), p.eq(prod)]
            valid, first, prod = v, fi, p
        acc = Signal(f.acc_bits)
        out_valid = Signal()
        m.d.sync += out_valid.eq(valid)
        with m.If(valid):
            with m.If(first):
                m.d.sync += acc.eq(prod)
            with m.Else():
                m.d.sync += acc.eq(acc + prod)
        m.d.comb += [self.acc.eq(acc), self.out_valid.eq(out_valid)]
        return m


def intmac_verilog(iface: PeInterface) -> str:
    from amaranth.back import verilog

    return verilog.convert(IntMac(iface), name=iface.module, emit_src=False)


def intmac_golden(iface: PeInterface, a: np.ndarray, b: np.ndarray, first: np.ndarray) -> dict[str, np.ndarray]:
    """Reference for :class:`IntMac`: ``acc[batch, steps]`` after every step (uint64)."""
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    first = np.asarray(first, dtype=bool)
    prod = (a * b).sum(axis=-1)
    mask = np.uint64((1 << iface.acc_bits) - 1)
    acc = np.zeros(first.shape, dtype=np.uint64)
    state = np.zeros(first.shape[0], dtype=np.uint64)
    for t in range(first.shape[1]):
        state = np.where(first[:, t], prod[:, t], state + prod[:, t]) & mask
        acc[:, t] = state
    return {"acc": acc}
