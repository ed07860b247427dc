"""Right barrel shifter with sticky bit: the alignment step of a floating-point adder."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._util import invalid

__all__ = ["ShiftRightSticky"]


class ShiftRightSticky(wiring.Component):
    """``data >> amount`` and the OR of every bit shifted out.

    One mux level per ``amount`` bit; each level ORs the bits it drops into the sticky bit,
    so the sticky costs one OR tree per level, not a mask of the whole word.  Amounts of
    ``width`` or more give zero and ``sticky = (data != 0)``.

    Parameters
    ----------
    width : int
        Width of ``data`` and ``out`` (>= 1).
    amount_bits : int
        Width of ``amount`` (>= 1).

    Members
    -------
    data : In(width)
    amount : In(amount_bits)
    out : Out(width)
    sticky : Out(1)
    """

    def __init__(self, width: int, amount_bits: int) -> None:
        for label, value in (("width", width), ("amount_bits", amount_bits)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise invalid(self, f"{label}={value!r} must be an integer >= 1")
        self._width, self._amount_bits = width, amount_bits
        super().__init__({"data": In(width), "amount": In(amount_bits), "out": Out(width), "sticky": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        w = self._width
        x, sticky = self.data, 0
        for k in range(self._amount_bits):
            step = 1 << k
            nxt = Signal(w, name=f"stage{k}")
            if step >= w:
                m.d.comb += nxt.eq(Mux(self.amount[k], 0, x))
                sticky = sticky | (self.amount[k] & (x != 0))
            else:
                m.d.comb += nxt.eq(Mux(self.amount[k], x >> step, x))
                sticky = sticky | (self.amount[k] & (x[:step] != 0))
            x = nxt
        m.d.comb += [self.out.eq(x), self.sticky.eq(sticky)]
        return m
