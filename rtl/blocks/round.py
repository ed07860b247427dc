"""Round-to-nearest-even and pack a fixed-point magnitude into an IEEE-style float code."""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.formats import FloatFormat

from ._util import invalid
from .lzc import LeadingZeroCounter

__all__ = ["RoundPack"]


class RoundPack(wiring.Component):
    """Round ``(-1)**sign * mag * 2**(lsb_exp + exp)`` once to ``fmt`` and pack it.

    Round to nearest, ties to even, with gradual underflow; overflow (``|x| >= max +
    ulp(max)/2``) gives infinity of the sign; a nonzero value that rounds to zero keeps its
    sign, and ``mag == 0`` gives a zero of ``sign``.  ``subnormals=False`` turns a rounded
    subnormal result into a zero of its sign (rounding first, so a value that rounds up to
    the smallest normal stays normal).  Datapath: leading-zero count, a left shift limited
    at the subnormal boundary, then one increment of the packed exponent-mantissa word, so a
    mantissa carry moves into the exponent and onward to infinity for free.

    Parameters
    ----------
    fmt : FloatFormat
        Output format; ``special="ieee"`` (it needs an infinity for overflow).
    width : int
        Width of ``mag``.
    lsb_exp : int
        Weight exponent of ``mag``'s least significant bit.
    subnormals : bool
        False flushes subnormal results to zero.
    exp_range : range or None
        When given, a signed ``exp`` input in this range adds to ``lsb_exp``.
    overflow : bool
        False leaves out the overflow test: the caller guarantees that no finite input
        rounds to ``max + ulp(max)`` or beyond (``inf`` still forces infinity).

    Members
    -------
    sign : In(1)
    mag : In(width)
    exp : In(signed) -- only with ``exp_range``
    inf : In(1)
        Force infinity of ``sign``.
    nan : In(1) -- only when ``fmt`` has a NaN code
        Force the canonical NaN ``fmt.nan_code`` (wins over ``inf``).
    code : Out(fmt.bits)
    """

    def __init__(
        self,
        fmt: FloatFormat,
        width: int,
        lsb_exp: int,
        *,
        subnormals: bool = True,
        exp_range: range | None = None,
        overflow: bool = True,
    ) -> None:
        if not isinstance(fmt, FloatFormat) or fmt.special != "ieee":
            raise invalid(self, f"fmt={fmt!r} must be a FloatFormat with special='ieee' (overflow rounds to infinity)")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise invalid(self, f"width={width!r} must be an integer >= 1")
        if not isinstance(lsb_exp, int) or isinstance(lsb_exp, bool):
            raise invalid(self, f"lsb_exp={lsb_exp!r} must be an integer")
        if exp_range is not None and (not isinstance(exp_range, range) or len(exp_range) == 0 or exp_range.step != 1):
            raise invalid(self, f"exp_range={exp_range!r} must be a non-empty range with step 1")
        self._fmt, self._width, self._lsb_exp = fmt, width, lsb_exp
        self._subnormals, self._exp_range = bool(subnormals), exp_range
        self._overflow = bool(overflow)
        members = {"sign": In(1), "mag": In(width), "inf": In(1), "code": Out(fmt.bits)}
        if exp_range is not None:
            members["exp"] = In(Shape.cast(exp_range))
        if fmt.nan_code is not None:
            members["nan"] = In(1)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        f = self._fmt
        E, M = f.exp_bits, f.man_bits
        e_lo, e_hi = (0, 0) if self._exp_range is None else (self._exp_range.start, self._exp_range.stop - 1)
        exp = self.exp if self._exp_range is not None else C(0, 1)

        # Pad so the word holds significand + guard bits, and so the subnormal boundary
        # never lies above the word's top bit (the normalising shift is then a left shift).
        pad_lo = max(0, M + 2 - self._width)
        lsb = self._lsb_exp - pad_lo
        top_biased = self._width + pad_lo - 1 + lsb + f.bias  # biased exp of the top bit
        pad_hi = max(0, 1 - (top_biased + e_lo))
        W = self._width + pad_lo + pad_hi
        Cb = top_biased + pad_hi
        word = Cat(C(0, pad_lo), self.mag, C(0, pad_hi))

        m.submodules.lzc = lzc = LeadingZeroCounter(W)
        m.d.comb += lzc.data.eq(word)

        limit = Signal(range(Cb + e_lo - 1, Cb + e_hi))  # shift that reaches biased exp 1
        m.d.comb += limit.eq(Cb - 1 + exp)
        sh = Signal(range(W + 1))
        if Cb + e_lo - 1 >= W:
            m.d.comb += sh.eq(lzc.count)
        else:
            m.d.comb += sh.eq(Mux(lzc.count <= limit, lzc.count, limit))
        norm = Signal(W)
        m.d.comb += norm.eq(word << sh)

        be = Signal(range(min(Cb + e_lo - W, 0), max(Cb + e_hi, 1) + 1))
        m.d.comb += be.eq(Cb + exp - sh)
        efield = Signal(range(max(Cb + e_hi, 1) + 1))
        m.d.comb += efield.eq(Mux(norm[W - 1], be, 0))
        packed = Cat(norm[W - 1 - M : W - 1], efield)
        guard = norm[W - 2 - M]
        sticky = (norm[: W - 2 - M] != 0) if W - 2 - M > 0 else C(0, 1)
        rounded = Signal(max(len(packed) + 1, E + M))
        # ties go to an even significand (its LSB is the hidden bit when man_bits == 0)
        m.d.comb += rounded.eq(packed + (guard & (sticky | norm[W - 1 - M])))

        overflow = (rounded >= (((1 << E) - 1) << M)) if self._overflow else C(0, 1)
        man = rounded[:M]
        if not self._subnormals and M:
            man = Mux(rounded[M:] == 0, 0, man)
        finite = Cat(man, rounded[M : M + E], self.sign)
        out = Mux(self.inf | overflow, f.inf_code() | (self.sign << (E + M)), finite)
        if f.nan_code is not None:
            out = Mux(self.nan, f.nan_code, out)
        m.d.comb += self.code.eq(out)
        return m
