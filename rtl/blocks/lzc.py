"""Leading-zero counter: a log-depth tree, the normaliser's first half."""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._util import invalid

__all__ = ["LeadingZeroCounter"]


def _tree(bits: list[Value]) -> tuple[Value, Value | None]:
    """(all_zero, count) of ``bits`` (most significant first, power-of-two length)."""
    if len(bits) == 1:
        return ~bits[0], None
    half = len(bits) // 2
    z_hi, c_hi = _tree(bits[:half])
    z_lo, c_lo = _tree(bits[half:])
    if c_hi is None:
        return z_hi & z_lo, z_hi
    return z_hi & z_lo, Cat(Mux(z_hi, c_lo, c_hi), z_hi)


class LeadingZeroCounter(wiring.Component):
    """Count the leading zeros of ``data``.

    The word is padded with ones at the bottom to a power of two and reduced by a binary
    tree (depth log2(width)), which is what a normaliser needs.

    Parameters
    ----------
    width : int
        Width of ``data`` (>= 1).

    Members
    -------
    data : In(width)
    count : Out(range(width + 1))
        Number of leading zeros; ``width`` when ``data`` is zero.
    zero : Out(1)
        ``data == 0``.
    """

    def __init__(self, width: int) -> None:
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise invalid(self, f"width={width!r} must be an integer >= 1")
        self._width = width
        super().__init__({"data": In(width), "count": Out(range(width + 1)), "zero": Out(1)})

    @property
    def width(self) -> int:
        return self._width

    def elaborate(self, platform) -> Module:
        m = Module()
        w = self._width
        size = 1 << (w - 1).bit_length()
        bits = [self.data[i] for i in reversed(range(w))] + [C(1, 1)] * (size - w)
        all_zero, count = _tree(bits)
        m.d.comb += self.zero.eq(self.data == 0)
        if count is None:  # width 1
            m.d.comb += self.count.eq(all_zero)
        elif size == w:  # no padding one to stop the count at width
            m.d.comb += self.count.eq(Mux(all_zero, w, count))
        else:
            m.d.comb += self.count.eq(count)
        return m
