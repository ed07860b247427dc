"""Integer MAC / dot-product PE (:class:`peforge.spec.IntMacSpec`): the cost yardstick.

Datapath: ``lanes`` signed/unsigned multipliers (one ``*`` each, so Yosys maps them to DSPs or
its Booth LUT multiplier) -> balanced adder tree, each level only as wide as its range needs
-> optional pipeline registers -> accumulator register (wrap or saturate).  Pipeline
registers, when asked for, go after the multipliers first, then after the adder tree, then
on the tree's output, so every stage shortens the critical path before the accumulate loop.

Inside an output-stationary array (``clear_group``) the accumulate loop's clear, the ``first``
delay line, is built once per group of accumulator bits instead of once for the whole
accumulator: a flip-flop that feeds every clear gate of the loop sits, among 64 PEs, tiles away
from most of them (measured: the critical path of an 8x8 array at PE stages 1 and 2).  Same
function and latency; the copies are kept apart in the Verilog build (``keep``).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import wiring

from ..geometry import intmac_geometry
from ..spec import IntMacSpec
from .blocks._util import SpecComponent, invalid, pe_signature, range_shape

__all__ = ["IntMac", "intmac_signature", "intmac_manifest"]


class IntMac(SpecComponent[IntMacSpec]):
    """Integer multiply-accumulate PE.

    Parameters
    ----------
    spec : IntMacSpec
        The PE to build.
    clear_group : int, optional
        With ``stages >= 1``: one copy of the ``first`` delay line (the accumulator's clear)
        per ``clear_group`` accumulator bits (see the module docstring); None: one.
    keep : str, optional
        Verilog module name of a kept register (:func:`peforge.rtl.array.keep_register_verilog`)
        to build the copies from, so that synthesis does not merge them back into one; None:
        plain registers (Amaranth's simulator).

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

    spec_class = IntMacSpec

    def __init__(self, spec: IntMacSpec, *, clear_group: int | None = None, keep: str | None = None) -> None:
        if clear_group is not None and not (isinstance(clear_group, int) and clear_group >= 1):
            raise invalid(self, f"clear_group={clear_group!r}: allowed None or an int >= 1")
        super().__init__(spec, intmac_signature)
        self._clear_group = clear_group if spec.stages >= 1 else None
        self._keep = keep

    def elaborate(self, platform) -> Module:
        m = Module()
        spec = self._spec
        fa, fb = spec.a, spec.b
        geo = intmac_geometry(spec)

        def lane(word, fmt, i):
            raw = word[i * fmt.bits : (i + 1) * fmt.bits]
            return raw.as_signed() if fmt.signed else raw

        terms = []
        for i in range(spec.lanes):
            p = Signal(range_shape(*geo.product_range), name=f"prod{i}")
            m.d.comb += p.eq(lane(self.a, fa, i) * lane(self.b, fb, i))
            terms.append(p)

        valid, first = self.in_valid, self.in_first
        stage = 0
        width = spec.width
        group = self._clear_group
        if group:  # a first delay line per group of accumulator bits (see the module docstring)
            first = [first] * -(-width // group)

        def register(sigs, valid, first):
            nonlocal stage
            out = []
            for s in sigs:
                r = Signal(s.shape(), name=f"{s.name}_p{stage}")
                m.d.sync += r.eq(s)
                out.append(r)
            v = Signal(name=f"valid_p{stage}")
            m.d.sync += v.eq(valid)
            if group:
                f = [self._first_reg(m, x, f"first_p{stage}_c{k}") for k, x in enumerate(first)]
            else:
                f = Signal(name=f"first_p{stage}")
                m.d.sync += f.eq(first)
            stage += 1
            return out, v, f

        if spec.stages >= 1:
            terms, valid, first = register(terms, valid, first)
        # balanced adder tree, each node as wide as its exact range (the geometry's tree levels)
        for level, ranges in enumerate(geo.tree_ranges[1:]):
            nxt = []
            for j in range(0, len(terms) - 1, 2):
                s = Signal(range_shape(*ranges[j // 2]), name=f"sum{level}_{j // 2}")
                m.d.comb += s.eq(terms[j] + terms[j + 1])
                nxt.append(s)
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms = nxt
        for _ in range(max(spec.stages - 1, 0)):
            terms, valid, first = register(terms, valid, first)
        total = terms[0]

        acc = Signal(signed(width), name="acc_q")
        if group:
            base = Cat(*(Mux(f, 0, acc[lo : lo + group]) for f, lo in zip(first, range(0, width, group)))).as_signed()
        else:
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

    def _first_reg(self, m: Module, first, name: str) -> Signal:
        """One register of a group's ``first`` delay line (kept apart with ``keep``)."""
        f = Signal(name=name)
        if self._keep is not None:
            m.submodules[name] = Instance(
                self._keep, p_WIDTH=1, i_clk=ClockSignal(), i_rst=ResetSignal(), i_d=first, o_q=f
            )
        else:
            m.d.sync += f.eq(first)
        return f


def intmac_signature(spec: IntMacSpec) -> wiring.Signature:
    """Ports of the integer MAC (clk/rst come from the sync domain)."""
    return pe_signature({"a": spec.lanes * spec.a.bits, "b": spec.lanes * spec.b.bits}, {"acc": spec.width})


def intmac_manifest(spec: IntMacSpec) -> dict[str, Any]:
    overflow = (
        "saturate"
        if spec.overflow == "saturate" and spec.acc_bits is not None
        else ("wrap" if spec.acc_bits is not None else "never (derived width)")
    )
    return {
        "result": {
            "port": "acc",
            "encoding": "twos_complement",
            "width": spec.width,
            "overflow": overflow,
            "flags": None,
        },
        "lane_packing": {
            k: {"lanes": spec.lanes, "width": f.bits, "format": f.name, "signed": f.signed, "order": "lsb_first"}
            for k, f in (("a", spec.a), ("b", spec.b))
        },
        "datapath": {"multipliers": spec.lanes, "product_bits": spec.product_bits},
    }
