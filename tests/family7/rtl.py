"""Generator of the zero-point INT MAC (:class:`family7.spec.ZeroPointMacSpec`), the family's
``rtl`` parts: component, port signature, manifest fields, and the geometry check's signal names.

Datapath: per lane ``a - za`` and ``b - zb`` (constant subtractions, as wide as their ranges)
-> one signed multiplier -> balanced adder tree, each node as wide as its exact range -> the
accumulator register ``Mux(first, 0, acc) + total``, wrapped to its width.  ``stages`` puts
registers after the products, then after the tree.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.rtl.blocks._util import range_shape

from .spec import ZeroPointMacSpec, ZpMacGeometry, zpmac_geometry

__all__ = ["ZeroPointMac", "zpmac_signature", "zpmac_manifest", "zpmac_widths"]


class ZeroPointMac(wiring.Component):
    """Zero-point unsigned INT MAC.

    Parameters
    ----------
    spec : ZeroPointMacSpec
        The PE to build.

    Members
    -------
    in_valid, in_first : In(1)
        Input strobe; ``in_first`` starts a new accumulation.
    a, b : In(lanes * bits)
        Unsigned operand codes, lane 0 in the least significant bits.
    out_valid : Out(1)
        High ``latency`` cycles after an input.
    acc : Out(spec.width)
        Accumulator, two's complement.
    """

    def __init__(self, spec: ZeroPointMacSpec) -> None:
        if not isinstance(spec, ZeroPointMacSpec):
            raise TypeError(f"ZeroPointMac needs a ZeroPointMacSpec, got {spec!r}")
        self._spec = spec
        super().__init__(zpmac_signature(spec))

    @property
    def spec(self) -> ZeroPointMacSpec:
        return self._spec

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        spec, geo = self._spec, zpmac_geometry(self._spec)
        ab, bb = spec.a.bits, spec.b.bits
        terms = []
        for i in range(spec.lanes):
            da = Signal(range_shape(*spec.a_range), name=f"da{i}")
            db = Signal(range_shape(*spec.b_range), name=f"db{i}")
            p = Signal(range_shape(*geo.product_range), name=f"prod{i}")
            m.d.comb += [
                da.eq(self.a[i * ab : (i + 1) * ab] - int(spec.a_zero or 0)),
                db.eq(self.b[i * bb : (i + 1) * bb] - int(spec.b_zero or 0)),
                p.eq(da * db),
            ]
            terms.append(p)

        valid, first = self.in_valid, self.in_first
        for stage in range(spec.stages):
            if stage == 1:  # the second register goes after the lane sum
                terms = [self._tree(m, terms, geo)]
            regs = [Signal.like(t, name=f"{t.name}_p{stage}") for t in terms]
            v, f = Signal(name=f"valid_p{stage}"), Signal(name=f"first_p{stage}")
            m.d.sync += [*(r.eq(t) for r, t in zip(regs, terms)), v.eq(valid), f.eq(first)]
            terms, valid, first = regs, v, f
        total = terms[0] if len(terms) == 1 else self._tree(m, terms, geo)

        acc = Signal(signed(geo.acc_width), name="acc_q")
        nxt = Signal(signed(geo.acc_next_width), name="acc_next")
        m.d.comb += nxt.eq(Mux(first, Const(0, signed(geo.acc_width)), acc) + total)
        with m.If(valid):
            m.d.sync += acc.eq(nxt)  # wraps: truncation to the register width
        out_valid = Signal(name="valid_out")
        m.d.sync += out_valid.eq(valid)
        m.d.comb += [self.acc.eq(acc), self.out_valid.eq(out_valid)]
        return m

    @staticmethod
    def _tree(m: Module, terms: list[Signal], geo: ZpMacGeometry) -> Signal:
        """The balanced adder tree over the lane products, nodes as wide as the geometry's ranges."""
        for level, ranges in enumerate(geo.tree_ranges[1:]):
            nxt = []
            for j in range(0, len(terms) - 1, 2):
                s = Signal(range_shape(*ranges[j // 2]), name=f"sum{level}_{j // 2}")
                m.d.comb += s.eq(terms[j] + terms[j + 1])
                nxt.append(s)
            terms = nxt + ([terms[-1]] if len(terms) % 2 else [])
        return terms[0]


def zpmac_signature(spec: ZeroPointMacSpec) -> wiring.Signature:
    """Ports of the zero-point MAC (clk/rst come from the sync domain)."""
    return wiring.Signature(
        {
            "in_valid": In(1),
            "in_first": In(1),
            "a": In(spec.lanes * spec.a.bits),
            "b": In(spec.lanes * spec.b.bits),
            "out_valid": Out(1),
            "acc": Out(spec.width),
        }
    )


def zpmac_manifest(spec: ZeroPointMacSpec) -> dict[str, Any]:
    """Manifest fields: the result's encoding, the lanes' packing (with their zero points)."""
    return {
        "result": {
            "port": "acc",
            "encoding": "twos_complement",
            "width": spec.width,
            "overflow": "wrap" if spec.acc_bits is not None else "never (derived width)",
            "flags": None,
        },
        "lane_packing": {
            k: {
                "lanes": spec.lanes,
                "width": f.bits,
                "format": f.name,
                "signed": False,
                "zero_point": zero,
                "order": "lsb_first",
            }
            for k, f, zero in (("a", spec.a, spec.a_zero), ("b", spec.b, spec.b_zero))
        },
        "datapath": {"multipliers": spec.lanes, "product_bits": spec.product_bits},
    }


def zpmac_widths(spec: ZeroPointMacSpec, geo: ZpMacGeometry) -> tuple[dict[str, int], dict[str, Any]]:
    """The geometry check (tests layer): the Verilog signals sized from the geometry, and the
    cost model's netlist notes that price the same widths."""
    want = {"da0": geo.a_bits, "db0": geo.b_bits, "prod0": geo.product_bits, "acc": geo.acc_width}
    want["acc_next"] = geo.acc_next_width
    if spec.lanes > 1:
        want[f"sum{len(geo.tree_ranges) - 2}_0"] = geo.total_bits
    priced = {"product_bits": geo.product_bits, "total_bits": geo.total_bits, "acc_width": geo.acc_width}
    return want, priced
