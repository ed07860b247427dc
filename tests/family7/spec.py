"""A seventh PE family, built only from the family contract: the zero-point (asymmetric) unsigned
INT MAC of gemmlowp / TFLite uint8 inference, ``acc += sum((a - za) * (b - zb))``.

This module is one of the family's four files, as ``docs/architecture.md`` lays a family out
(``tests/family7/``: spec, generator, golden model with vector sets, cost); the fifth file
touched is the contract test, which adds :data:`FAMILY` to the table with
:func:`peforge.families.extended`.  Here: the spec (every field a ``param``), its geometry
(the datapath widths, pure Python), its independent reference (Python ints, never the golden
model) and the :class:`~peforge.families.Family` record naming the other files' parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import numpy as np

from peforge.families import Family
from peforge.formats import IntFormat
from peforge.geometry import range_bits, tree_range
from peforge.params import param
from peforge.spec import IntField, Spec, int_format, signed_width

__all__ = ["ZeroPointMacSpec", "ZpMacGeometry", "zpmac_geometry", "zpmac_reference", "FAMILY"]


def _unsigned(_spec: Any, field: str, value: Any) -> IntFormat:
    """An unsigned integer format ``uint2`` .. ``uint12`` (the codes; the zero point signs them)."""
    fmt = int_format(2, 12)(None, field, value)
    if fmt.signed:
        raise ValueError(f"{field}={fmt.name} must be unsigned (uint2..uint12): the zero point makes the value signed")
    return fmt


def _mid(fmt_field: str) -> Any:
    return lambda spec: 1 << (getattr(spec, fmt_field).bits - 1)


@dataclass(frozen=True)
class ZeroPointMacSpec(Spec):
    """Zero-point unsigned INT MAC / dot product (family ``zpmac``).

    Parameters
    ----------
    a, b : IntFormat or str
        Unsigned code formats ``uint2`` .. ``uint12``.
    a_zero, b_zero : int or None
        Zero points: a code ``q`` stands for ``q - zero`` (times the tensor's scale); None
        takes mid-scale, ``2**(bits - 1)``.
    lanes : int
        Products per cycle (1..16), summed exactly.
    stages : int
        Pipeline registers before the accumulator: 1 after the products, 2 also after the lane
        sum (latency = stages + 1).
    max_count : int
        Steps the derived width holds.
    acc_bits : int or None
        Accumulator width; None derives the narrowest that never overflows in ``max_count``
        steps; a given width wraps (two's complement).
    """

    a: IntField = param("uint8", "Format of operand a (unsigned codes).", convert=_unsigned, allowed="uint2..uint12")
    b: IntField = param("uint8", "Format of operand b (unsigned codes).", convert=_unsigned, allowed="uint2..uint12")
    a_zero: Optional[int] = param(
        None, "Zero point of a (default: mid-scale).", lo=0, hi="a_code_max", needs=("a",), derive=_mid("a")
    )
    b_zero: Optional[int] = param(
        None, "Zero point of b (default: mid-scale).", lo=0, hi="b_code_max", needs=("b",), derive=_mid("b")
    )
    lanes: int = param(1, "Products per cycle (dot product).", lo=1, hi=16)
    stages: int = param(0, "Pipeline registers before the accumulator (latency = stages + 1).", lo=0, hi=2)
    max_count: int = param(4096, "Accumulations the derived width holds without overflow.", lo=1, hi=1 << 16)
    acc_bits: Optional[int] = param(
        None,
        "Accumulator width (default: derived, never overflows); a given width wraps.",
        lo="product_bits",
        hi=48,
        needs=("a", "b", "a_zero", "b_zero"),
    )

    family: ClassVar[str] = "zpmac"

    @property
    def a_code_max(self) -> int:
        return (1 << self.a.bits) - 1

    @property
    def b_code_max(self) -> int:
        return (1 << self.b.bits) - 1

    @property
    def a_range(self) -> tuple[int, int]:
        """Values ``code - a_zero`` of operand a."""
        return -int(self.a_zero or 0), self.a_code_max - int(self.a_zero or 0)

    @property
    def b_range(self) -> tuple[int, int]:
        return -int(self.b_zero or 0), self.b_code_max - int(self.b_zero or 0)

    @property
    def product_bits(self) -> int:
        """Bits of one lane's product signal (the least a given ``acc_bits`` may be)."""
        return zpmac_geometry(self).product_bits

    @property
    def width(self) -> int:
        """Accumulator width in bits: ``acc_bits``, or derived by the geometry."""
        return zpmac_geometry(self).acc_width

    @property
    def name(self) -> str:
        size = f"w{self.acc_bits}" if self.acc_bits else f"n{self.max_count}"
        return f"zpmac_{self.a.name}z{self.a_zero}x{self.b.name}z{self.b_zero}_l{self.lanes}_s{self.stages}_{size}"

    @property
    def latency(self) -> int:
        return self.stages + 1


@dataclass(frozen=True)
class ZpMacGeometry:
    """Datapath widths of a zero-point MAC, read by its generator, golden model and cost model.

    Members
    -------
    a_bits, b_bits : int
        Bits of the offset operands ``code - zero`` (two's complement unless the zero is 0).
    product_range : (int, int)
        Range of one lane's product; ``product_bits`` its signal's bits.
    tree_ranges : tuple of tuple of (int, int)
        Range of every node of the balanced lane adder tree (level 0 = the products).
    total_bits : int
        Bits of the step sum.
    acc_width, acc_next_width : int
        The accumulator and ``Mux(first, 0, acc) + total`` before the wrap.
    """

    a_bits: int
    b_bits: int
    product_range: tuple[int, int]
    product_bits: int
    tree_ranges: tuple[tuple[tuple[int, int], ...], ...]
    total_bits: int
    acc_width: int
    acc_next_width: int


def zpmac_geometry(spec: ZeroPointMacSpec) -> ZpMacGeometry:
    """The widths of ``spec`` (see :class:`ZpMacGeometry`); a derived accumulator holds
    ``max_count`` step sums of either sign exactly."""
    ends = [x * y for x in spec.a_range for y in spec.b_range]
    product = (min(ends), max(ends))
    levels = tree_range([product] * spec.lanes)
    (low, high) = levels[-1][0]
    acc = spec.acc_bits if spec.acc_bits is not None else signed_width(low * spec.max_count, high * spec.max_count)
    return ZpMacGeometry(
        a_bits=range_bits(*spec.a_range),
        b_bits=range_bits(*spec.b_range),
        product_range=product,
        product_bits=range_bits(*product),
        tree_ranges=tuple(tuple(level) for level in levels),
        total_bits=range_bits(low, high),
        acc_width=acc,
        acc_next_width=max(acc, signed_width(low, high)) + 1,
    )


def zpmac_reference(spec: ZeroPointMacSpec, inp: dict[str, Any]) -> list[list[int]]:
    """The ``acc`` port's bits after every step, per batch row, from the definition with Python
    ints: ``acc := (first ? 0 : acc) + sum((a - za) * (b - zb))``, wrapped to ``spec.width``."""
    first = np.asarray(inp["first"], bool)
    batch, steps = first.shape
    a = np.asarray(inp["a"]).reshape(batch, steps, -1).tolist()
    b = np.asarray(inp["b"]).reshape(batch, steps, -1).tolist()
    za, zb, width = int(spec.a_zero or 0), int(spec.b_zero or 0), spec.width
    out = []
    for r in range(batch):
        acc, row = 0, []
        for t in range(steps):
            step = sum((int(x) - za) * (int(y) - zb) for x, y in zip(a[r][t], b[r][t]))
            acc = (0 if first[r][t] else acc) + step
            acc = (acc + (1 << (width - 1))) % (1 << width) - (1 << (width - 1))
            row.append(acc % (1 << width))
        out.append(row)
    return out


FAMILY = Family(
    "zpmac",
    ZeroPointMacSpec,
    geometry=zpmac_geometry,
    examples=(
        ZeroPointMacSpec(),
        ZeroPointMacSpec("uint4", "uint8", a_zero=3, b_zero=200, lanes=3, stages=2, acc_bits=20),
        ZeroPointMacSpec("uint2", "uint6", a_zero=0, b_zero=31, lanes=4, stages=1),
    ),
    generator="family7.rtl:ZeroPointMac",
    signature="family7.rtl:zpmac_signature",
    manifest="family7.rtl:zpmac_manifest",
    golden_run="family7.golden:run_zpmac",
    golden_port_widths="family7.golden:zpmac_port_widths",
    golden_value="family7.golden:zpmac_value",
    golden_matmul="family7.golden:matmul_zpmac",
    vector_sets="family7.golden:zpmac_sets",
    cost_assembly="family7.cost:assemble_zpmac",
    energy="family7.cost:ZPMAC_TOGGLES",
    calibration="family7.cost:ZPMAC_DRAWS",
    reference="family7.spec:zpmac_reference",
    widths="family7.rtl:zpmac_widths",
)
