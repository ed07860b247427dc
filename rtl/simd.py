"""Run-time mixed-precision SIMD dot-product PE (:class:`peforge.spec.SimdMacSpec`).

Datapath (Bit Fusion, Sharma et al., ISCA 2018): the ``base`` x ``base`` product is cut into
an ``n`` x ``n`` grid of ``d``-bit x ``d``-bit sub-multipliers (``d`` = 2: *BitBricks*,
arch ``bricks``; ``d`` = 4: arch ``sub4``), ``n = base / d``.  In mode ``AxB`` the grid splits
into ``lanes`` blocks of ``A/d`` x ``B/d`` cells; cell ``(r, c)`` of a block multiplies digit
``r`` of its lane's a by digit ``c`` of its lane's b.  A digit is read unsigned, except the top
digit of a signed operand, which is sign-extended by one bit (so a cell is a ``(d+1)`` x
``(d+1)`` signed multiplier).  Per input, a mux in front of every cell picks its digits from
the operand words by mode.

Shift-add fusion is a quad tree over the grid: at level ``l`` four ``2**l``-cell sub-blocks
are added, the row half shifted left by ``d * 2**l`` bits when the mode's a operand spans both
halves (A > d * 2**l, "fused"), else not shifted (separate lanes, which the dot product simply
adds); the same for columns and b.  So every lane's product is assembled and every lane added
in one tree whose only mode-dependence is one shift-or-not mux per level and axis.  Every tree
node is as wide as its exact range over all modes and signedness needs.

Pipeline registers, when asked for, go after the cells first (with the fusion controls), then
after the tree, then on the tree's output.  The accumulator wraps modulo ``2**spec.width``.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring

from ..geometry import simd_geometry
from ..spec import SIMD_DIGIT_BITS, SimdMacSpec
from .blocks._util import SpecComponent, pe_signature, range_shape

__all__ = ["SimdMac", "simd_signature", "simd_layout", "DIGIT_BITS", "simd_manifest"]

#: Digit width of a sub-multiplier cell per architecture.
DIGIT_BITS = SIMD_DIGIT_BITS


def simd_signature(spec: SimdMacSpec) -> wiring.Signature:
    """Ports of the SIMD PE (clk/rst come from the sync domain)."""
    return pe_signature(
        {"mode": spec.mode_bits, "a_signed": 1, "b_signed": 1, "a": spec.a_width, "b": spec.b_width},
        {"acc": spec.width},
    )


def simd_layout(spec: SimdMacSpec) -> list[dict[tuple[int, int], tuple[int, bool, int, bool]]]:
    """Per mode: cell (r, c) -> (a bit offset, a digit is top, b bit offset, b digit is top)."""
    return spec.cell_layout()


def _union(ranges: list[tuple[int, int]]) -> tuple[int, int]:
    """The range that holds every per-mode range."""
    return min(lo for lo, _ in ranges), max(hi for _, hi in ranges)


class SimdMac(SpecComponent[SimdMacSpec]):
    """Mixed-precision SIMD dot-product PE built from fused sub-multiplier cells.

    Parameters
    ----------
    spec : SimdMacSpec
        The PE to build.

    Members
    -------
    in_valid, in_first : In(1)
        Input strobe; ``in_first`` starts a new accumulation.
    mode : In(spec.mode_bits)
        Index into ``spec.modes``, sampled with each input.
    a_signed, b_signed : In(1)
        Two's complement (1) or unsigned (0) lanes, sampled with each input.
    a, b : In(spec.a_width), In(spec.b_width)
        Operand lanes of the input's mode, lane 0 in the least significant bits.
    out_valid : Out(1)
        High ``latency`` cycles after an input.
    acc : Out(spec.width)
        Accumulator, two's complement, wrapping.
    """

    spec_class = SimdMacSpec

    def __init__(self, spec: SimdMacSpec) -> None:
        super().__init__(spec, simd_signature)

    # -- cells ----------------------------------------------------------------------------
    def _cell(
        self, m: Module, r: int, c: int, xa: Signal, xs: Signal, yb: Signal, ys: Signal, rng: tuple[int, int]
    ) -> Signal:
        """One sub-multiplier: (d-bit digit, sign-extend flag) x (d-bit digit, flag)."""
        d = DIGIT_BITS[self._spec.arch]
        p = Signal(range_shape(*rng), name=f"cell_{r}_{c}")
        if d == 2:
            # BitBrick: a 3b x 3b signed product as four signed partial-product bits.
            pp = [(xa[0] & yb[0], 0, None), (xa[1] & yb[0], 1, xs), (xa[0] & yb[1], 1, ys), (xa[1] & yb[1], 2, xs ^ ys)]
            terms = []
            for bit, shift, neg in pp:
                t = bit.as_unsigned() << shift
                terms.append(t if neg is None else Mux(neg, -t, t))
            m.d.comb += p.eq(terms[0] + terms[1] + terms[2] + terms[3])
        else:
            # 4-bit sub-multiplier: (4+1)b x (4+1)b signed.
            x = Signal(signed(d + 1), name=f"cx_{r}_{c}")
            y = Signal(signed(d + 1), name=f"cy_{r}_{c}")
            m.d.comb += [x.eq(Mux(xs, xa.as_signed(), xa)), y.eq(Mux(ys, yb.as_signed(), yb)), p.eq(x * y)]
        return p

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        spec = self._spec
        d = DIGIT_BITS[spec.arch]
        n = spec.base // d
        levels = (n - 1).bit_length()
        layout = simd_layout(spec)
        modes = range(len(spec.modes))
        das = [a // d for a, _ in spec.mode_widths]
        dbs = [b // d for _, b in spec.mode_widths]

        # Fusion controls: fuse rows / columns at level l.
        fuse_r, fuse_c = [], []
        for lv in range(levels):
            fr, fc = Signal(name=f"fuse_r{lv}"), Signal(name=f"fuse_c{lv}")
            rm = [i for i in modes if das[i] > 1 << lv]
            cm = [i for i in modes if dbs[i] > 1 << lv]
            for sig, fused in ((fr, rm), (fc, cm)):
                with m.Switch(self.mode):
                    with m.Case(*fused):
                        m.d.comb += sig.eq(1)
                    with m.Default():
                        m.d.comb += sig.eq(0)
            fuse_r.append(fr)
            fuse_c.append(fc)

        def select(word: Signal, kind: str, r: int, c: int, idx: int) -> tuple[Signal, Signal]:
            """Digit and sign-extend flag of cell (r, c) for operand ``kind`` by mode."""
            sign_in = self.a_signed if kind == "a" else self.b_signed
            digit = Signal(d, name=f"{kind}d_{r}_{c}")
            top = Signal(name=f"{kind}top_{r}_{c}")
            by_src: dict[tuple[int, int], list[int]] = {}
            for i in modes:
                cell = layout[i][(r, c)]
                by_src.setdefault((cell[idx], cell[idx + 1]), []).append(i)
            if len(by_src) == 1:
                ((off, is_top),) = by_src
                m.d.comb += [digit.eq(word[off : off + d]), top.eq(int(is_top))]
            else:
                # Modes outside spec.modes fall into the group of mode 0 (unspecified input).
                groups = sorted(by_src.items(), key=lambda kv: 0 in kv[1])
                with m.Switch(self.mode):
                    for k, ((off, is_top), ms) in enumerate(groups):
                        with m.Default() if k == len(groups) - 1 else m.Case(*ms):
                            m.d.comb += [digit.eq(word[off : off + d]), top.eq(int(is_top))]
            flag = Signal(name=f"{kind}s_{r}_{c}")
            m.d.comb += flag.eq(top & sign_in)
            return digit, flag

        # Exact per-mode ranges of cells and quad-tree nodes (union over modes): the geometry.
        geo = simd_geometry(spec)
        nodes: dict[tuple[int, int], Any] = {}
        for r in range(n):
            for c in range(n):
                xa, xs = select(self.a, "a", r, c, 0)
                yb, ys = select(self.b, "b", r, c, 2)
                nodes[(r, c)] = self._cell(m, r, c, xa, xs, yb, ys, _union(geo.cells[(r, c)]))

        valid, first = self.in_valid, self.in_first
        stage = 0

        def register(sig: Any, name: str) -> Signal:
            reg = Signal(sig.shape(), name=f"{name}_p{stage}")
            m.d.sync += reg.eq(sig)
            return reg

        if spec.stages >= 1:
            nodes = {k: register(s, s.name) for k, s in nodes.items()}
            fuse_r = [register(s, s.name) for s in fuse_r]
            fuse_c = [register(s, s.name) for s in fuse_c]
            valid, first = register(valid, "valid"), register(first, "first")
            stage += 1

        for lv in range(levels):
            shift = d << lv
            nxt = {}
            for r in range(0, n >> lv, 2):
                for c in range(0, n >> lv, 2):
                    kids = [(nodes[(r + i, c + j)], i, j) for i in (0, 1) for j in (0, 1)]
                    node_ranges = geo.levels[lv][(r // 2, c // 2)][0]
                    node = Signal(range_shape(*_union(node_ranges)), name=f"fuse{lv}_{r // 2}_{c // 2}")
                    terms = []
                    for sig, i, j in kids:
                        t = sig
                        if i:
                            t = Mux(fuse_r[lv], t << shift, t)
                        if j:
                            t = Mux(fuse_c[lv], t << shift, t)
                        terms.append(t)
                    m.d.comb += node.eq(terms[0] + terms[1] + terms[2] + terms[3])
                    nxt[(r // 2, c // 2)] = node
            nodes = nxt
        total = nodes[(0, 0)]
        for _ in range(max(spec.stages - 1, 0)):
            total = register(total, "total")
            valid, first = register(valid, "valid"), register(first, "first")
            stage += 1

        width = spec.width
        acc = Signal(signed(width), name="acc_q")
        base = Mux(first, Const(0, signed(width)), acc)
        nxt_acc = Signal(signed(simd_geometry(spec).acc_next_width), name="acc_next")
        m.d.comb += nxt_acc.eq(base + total)
        with m.If(valid):
            m.d.sync += acc.eq(nxt_acc)  # truncation to the register width wraps
        out_valid = Signal(name="valid_out")
        m.d.sync += out_valid.eq(valid)
        m.d.comb += [self.acc.eq(acc), self.out_valid.eq(out_valid)]
        return m


def simd_manifest(spec: SimdMacSpec) -> dict[str, Any]:
    d = DIGIT_BITS[spec.arch]
    modes = []
    for i, ((a_bits, b_bits), lanes) in enumerate(zip(spec.mode_widths, spec.mode_lanes)):
        modes.append(
            {
                "mode": i,
                "name": spec.modes[i],
                "a_bits": a_bits,
                "b_bits": b_bits,
                "lanes": lanes,
                "macs_per_cycle": lanes,
                "a": {"lanes": lanes, "width": a_bits, "used_bits": lanes * a_bits, "order": "lsb_first"},
                "b": {"lanes": lanes, "width": b_bits, "used_bits": lanes * b_bits, "order": "lsb_first"},
            }
        )
    return {
        "result": {
            "port": "acc",
            "encoding": "twos_complement",
            "width": spec.width,
            "overflow": "wrap",
            "flags": None,
        },
        "lane_packing": {
            "a": {"width": spec.a_width, "order": "lsb_first", "per_mode": True},
            "b": {"width": spec.b_width, "order": "lsb_first", "per_mode": True},
            "note": "in mode i, lane k of a is a[k*a_bits +: a_bits] (b likewise); upper unused "
            "bits are ignored; a_signed/b_signed choose two's complement or unsigned lanes",
        },
        "modes": modes,
        "controls": {
            "mode": "index into modes, sampled with each input (in_valid=1)",
            "a_signed": "1: a lanes are two's complement, 0: unsigned; sampled with each input",
            "b_signed": "as a_signed for b",
        },
        "datapath": {
            "arch": spec.arch,
            "digit_bits": d,
            "cells": (spec.base // d) ** 2,
            "cell": f"{d + 1}b x {d + 1}b signed",
            "fusion": "quad tree, one shift mux per level and axis",
            "step_bits": spec.step_bits,
        },
    }
