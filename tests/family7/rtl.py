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

from peforge.rtl.blocks._util import SpecComponent, pe_signature, range_shape

from .spec import ZeroPointMacSpec, ZpMacGeometry, zpmac_geometry

__all__ = ["ZeroPointMac", "zpmac_signature", "zpmac_manifest", "zpmac_widths"]


class ZeroPointMac(SpecComponent[ZeroPointMacSpec]):
    """Zero-point unsigned INT MAC: the ports of :func:`zpmac_signature` (``a`` / ``b`` carry
    ``lanes`` unsigned codes each, lane 0 lowest; ``acc`` is two's complement, valid with
    ``out_valid`` ``latency`` cycles after the input that completes it).

    Parameters
    ----------
    spec : ZeroPointMacSpec
        The PE to build (read-only as :attr:`spec`).
    """

    spec_class = ZeroPointMacSpec

    def __init__(self, spec: ZeroPointMacSpec) -> None:
        super().__init__(spec, zpmac_signature)
        self._geo = zpmac_geometry(spec)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        spec, geo = self._spec, self._geo
        products = [self._lane(m, i) for i in range(spec.lanes)]
        valid, first = self.in_valid, self.in_first
        for stage in range(spec.stages):  # after the products, then after the lane sum
            if stage == 1:
                products = [_tree(m, products, geo)]
            held = [Signal.like(p, name=f"{p.name}_p{stage}") for p in products]
            v, f = Signal(name=f"valid_p{stage}"), Signal(name=f"first_p{stage}")
            m.d.sync += [*(h.eq(p) for h, p in zip(held, products)), v.eq(valid), f.eq(first)]
            products, valid, first = held, v, f
        total = _tree(m, products, geo)

        acc = Signal(signed(geo.acc_width), name="acc_q")
        nxt = Signal(signed(geo.acc_next_width), name="acc_next")
        m.d.comb += nxt.eq(Mux(first, Const(0, signed(geo.acc_width)), acc) + total)
        with m.If(valid):
            m.d.sync += acc.eq(nxt)  # wraps: truncation to the register width
        out_valid = Signal(name="valid_out")
        m.d.sync += out_valid.eq(valid)
        m.d.comb += [self.acc.eq(acc), self.out_valid.eq(out_valid)]
        return m

    def _lane(self, m: Module, i: int) -> Signal:
        """Lane ``i``'s product ``(a - za) * (b - zb)``, each factor as wide as its range."""
        spec = self._spec
        offsets = []
        for port, fmt, zero, span in (
            ("a", spec.a, spec.a_zero, spec.a_range),
            ("b", spec.b, spec.b_zero, spec.b_range),
        ):
            x = Signal(range_shape(*span), name=f"d{port}{i}")
            m.d.comb += x.eq(getattr(self, port).word_select(i, fmt.bits) - int(zero or 0))
            offsets.append(x)
        p = Signal(range_shape(*self._geo.product_range), name=f"prod{i}")
        m.d.comb += p.eq(offsets[0] * offsets[1])
        return p


def _tree(m: Module, terms: list[Signal], geo: ZpMacGeometry) -> Signal:
    """Balanced pairwise sum of ``terms`` (``sum<level>_<j>`` nodes as wide as the geometry's
    ranges; an odd term passes up); one term is returned as it is."""
    for level, ranges in enumerate(geo.tree_ranges[1 : len(geo.tree_ranges) if len(terms) > 1 else 1]):
        pairs = [terms[j : j + 2] for j in range(0, len(terms), 2)]
        terms = [
            pair[0] if len(pair) == 1 else _node(m, f"sum{level}_{k}", ranges[k], pair) for k, pair in enumerate(pairs)
        ]
    return terms[0]


def _node(m: Module, name: str, span: tuple[int, int], pair: list[Signal]) -> Signal:
    s = Signal(range_shape(*span), name=name)
    m.d.comb += s.eq(pair[0] + pair[1])
    return s


def zpmac_signature(spec: ZeroPointMacSpec) -> wiring.Signature:
    """Ports of the zero-point MAC (clk/rst come from the sync domain): the MAC convention's
    strobes, the packed operand lanes and the accumulator."""
    return pe_signature({"a": spec.lanes * spec.a.bits, "b": spec.lanes * spec.b.bits}, {"acc": spec.width})


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
