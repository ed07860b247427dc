"""Minifloat decoder: a code of any :class:`~peforge.formats.FloatFormat` to its fields."""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.formats import FloatFormat

from ._util import invalid

__all__ = ["MinifloatDecoder"]


class MinifloatDecoder(wiring.Component):
    """Split a code into sign, significand (hidden bit included) and effective exponent.

    A finite code's value is ``(-1)**sign * sig * 2**(exp - fmt.bias - fmt.man_bits)``:
    ``exp`` is the biased exponent with subnormals read as 1 (``fnu`` scales: the field
    itself), so ``exp - 1`` is the code's offset above the format's smallest significand
    position.  Zeros give ``sig = 0``, infinities and NaNs too (unless ``mask_specials`` is
    False).

    Parameters
    ----------
    fmt : FloatFormat
        The format (any special-value convention).
    subnormals : bool
        False flushes subnormal codes to a zero of the same sign (``is_zero`` set).
    mask_specials : bool
        True gives ``sig = 0`` for infinities and NaNs; False leaves their bit pattern (for
        datapaths whose flags decide such results anyway).

    Members
    -------
    code : In(fmt.bits)
    sign : Out(1)
    sig : Out(fmt.man_bits + 1)
    exp : Out(fmt.exp_bits)
    is_zero, is_inf, is_nan : Out(1)
    """

    def __init__(self, fmt: FloatFormat, subnormals: bool = True, *, mask_specials: bool = True) -> None:
        if not isinstance(fmt, FloatFormat):
            raise invalid(self, f"fmt={fmt!r} must be a FloatFormat")
        if not isinstance(subnormals, bool):
            raise invalid(self, f"subnormals={subnormals!r} must be True or False")
        self._fmt, self._subnormals = fmt, subnormals
        self._mask_specials = bool(mask_specials)
        super().__init__(
            {
                "code": In(fmt.bits),
                "sign": Out(1),
                "sig": Out(fmt.man_bits + 1),
                "exp": Out(fmt.exp_bits),
                "is_zero": Out(1),
                "is_inf": Out(1),
                "is_nan": Out(1),
            }
        )

    @property
    def fmt(self) -> FloatFormat:
        return self._fmt

    def elaborate(self, platform) -> Module:
        m = Module()
        f = self._fmt
        E, M = f.exp_bits, f.man_bits
        man = self.code[:M]
        exp = self.code[M : M + E]
        sign = self.code[M + E] if f.signed else C(0, 1)
        top = (1 << E) - 1
        man_zero = (man == 0) if M else C(1, 1)

        if f.special == "ieee":
            inf, nan = (exp == top) & man_zero, (exp == top) & ~man_zero
        elif f.special in ("fn", "fnu"):
            inf, nan = C(0, 1), self.code[: M + E] == f.nan_code
        elif f.special == "fnuz":
            inf, nan = C(0, 1), self.code == f.nan_code
        else:  # finite
            inf, nan = C(0, 1), C(0, 1)

        if f.special == "fnu":  # unsigned scale: 2**(e - bias), no zero, no subnormals
            sig, eff, zero = C(1, 1), exp, C(0, 1)
        else:
            normal = exp != 0
            eff = Mux(normal, exp, 1)
            if self._subnormals or M == 0:
                sig, zero = Cat(man, normal), ~normal & man_zero
            else:
                sig, zero = Mux(normal, Cat(man, normal), 0), ~normal
        special = inf | nan
        if f.special == "fnuz":
            zero = zero & ~nan  # 0x80.. is NaN, not -0
        m.d.comb += [
            self.sign.eq(sign),
            self.sig.eq(Mux(special, 0, sig) if self._mask_specials else sig),
            self.exp.eq(eff),
            self.is_zero.eq(zero),
            self.is_inf.eq(inf),
            self.is_nan.eq(nan),
        ]
        return m
