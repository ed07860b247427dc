"""Integer MAC / dot-product PE (:class:`peforge.spec.IntMacSpec`): the cost yardstick.

Datapath: ``lanes`` signed/unsigned multipliers (one ``*`` each, so Yosys maps them to DSPs or
its Booth LUT multiplier) -> balanced adder tree, each level only as wide as its range needs
-> optional pipeline registers -> accumulator register (wrap or saturate).  Pipeline
registers, when asked for, go after the multipliers first, then after the adder tree, then
on the tree's output, so every stage shortens the critical path before the accumulate loop.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..geometry import intmac_geometry
from ..spec import IntMacSpec, signed_width

__all__ = ["IntMac", "intmac_signature", "intmac_manifest"]


def _shape(lo: int, hi: int):
    return unsigned(max(hi.bit_length(), 1)) if lo >= 0 else signed(signed_width(lo, hi))


class IntMac(wiring.Component):
    """Integer multiply-accumulate PE.

    Parameters
    ----------
    spec : IntMacSpec
        The PE to build.

    Members
    -------
    in_valid, in_first : In(1)
        Input strobe; ``in_first`` starts a new accumulation.
    a, b : In(lanes * bits)
        Operand lanes, lane 0 in the least significant bits.
    out_valid : Out(1)
        High ``latency`` cycles after an input.
    acc : Out(spec.width)
        Accumulator, two's complement.
    """

    def __init__(self, spec: IntMacSpec) -> None:
        if not isinstance(spec, IntMacSpec):
            raise TypeError(f"IntMac needs an IntMacSpec, got {spec!r}")
        self._spec = spec
        super().__init__({
            "in_valid": In(1), "in_first": In(1),
            "a": In(spec.lanes * spec.a.bits), "b": In(spec.lanes * spec.b.bits),  # type: ignore[union-attr]
            "out_valid": Out(1), "acc": Out(spec.width),
        })

    @property
    def spec(self) -> IntMacSpec:
        return self._spec

    def elaborate(self, platform) -> Module:
        m = Module()
        spec = self._spec
        fa, fb = spec.a, spec.b
        lo, hi = spec.product_range

        def lane(word, fmt, i):
            raw = word[i * fmt.bits:(i + 1) * fmt.bits]
            return raw.as_signed() if fmt.signed else raw

        terms = []
        for i in range(spec.lanes):
            p = Signal(_shape(lo, hi), name=f"prod{i}")
            m.d.comb += p.eq(lane(self.a, fa, i) * lane(self.b, fb, i))
            terms.append((p, lo, hi))

        valid, first = self.in_valid, self.in_first
        stage = 0

        def register(sigs, valid, first):
            nonlocal stage
            out = []
            for s, l, h in sigs:
                r = Signal(s.shape(), name=f"{s.name}_p{stage}")
                m.d.sync += r.eq(s)
                out.append((r, l, h))
            v, f = Signal(name=f"valid_p{stage}"), Signal(name=f"first_p{stage}")
            m.d.sync += [v.eq(valid), f.eq(first)]
            stage += 1
            return out, v, f

        if spec.stages >= 1:
            terms, valid, first = register(terms, valid, first)
        level = 0
        while len(terms) > 1:  # balanced adder tree, widths from exact ranges
            nxt = []
            for j in range(0, len(terms) - 1, 2):
                (x, xl, xh), (y, yl, yh) = terms[j], terms[j + 1]
                s = Signal(_shape(xl + yl, xh + yh), name=f"sum{level}_{j // 2}")
                m.d.comb += s.eq(x + y)
                nxt.append((s, xl + yl, xh + yh))
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms, level = nxt, level + 1
        for _ in range(max(spec.stages - 1, 0)):
            terms, valid, first = register(terms, valid, first)
        total = terms[0][0]

        width = spec.width
        acc = Signal(signed(width), name="acc_q")
        base = Mux(first, Const(0, signed(width)), acc)
        nxt = Signal(signed(intmac_geometry(spec).acc_next_width), name="acc_next")
        m.d.comb += nxt.eq(base + total)
        if spec.overflow == "saturate" and spec.acc_bits is not None:
            top, bottom = (1 << (width - 1)) - 1, -(1 << (width - 1))
            sat = Mux(nxt > top, top, Mux(nxt < bottom, bottom, nxt))
        else:
            sat = nxt  # wraps: truncation to the register width
        with m.If(valid):
            m.d.sync += acc.eq(sat)
        out_valid = Signal(name="valid_out")
        m.d.sync += out_valid.eq(valid)
        m.d.comb += [self.acc.eq(acc), self.out_valid.eq(out_valid)]
        return m


def intmac_signature(spec: IntMacSpec) -> wiring.Signature:
    """Ports of the integer MAC (clk/rst come from the sync domain)."""
    return wiring.Signature({
        "in_valid": In(1), "in_first": In(1),
        "a": In(spec.lanes * spec.a.bits), "b": In(spec.lanes * spec.b.bits),  # type: ignore[union-attr]
        "out_valid": Out(1), "acc": Out(spec.width),
    })


def intmac_manifest(spec: IntMacSpec) -> dict[str, Any]:
    overflow = "saturate" if spec.overflow == "saturate" and spec.acc_bits is not None else (
        "wrap" if spec.acc_bits is not None else "never (derived width)")
    return {
        "result": {"port": "acc", "encoding": "twos_complement", "width": spec.width,
                   "overflow": overflow, "flags": None},
        "lane_packing": {k: {"lanes": spec.lanes, "width": f.bits, "format": f.name,  # type: ignore[union-attr]
                             "signed": f.signed, "order": "lsb_first"}  # type: ignore[union-attr]
                         for k, f in (("a", spec.a), ("b", spec.b))},
        "datapath": {"multipliers": spec.lanes, "product_bits": spec.product_bits},
    }
