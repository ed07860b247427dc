"""Group dequantisation: ``RNE_fp32(base + s * scale * 2**lsb_exp)`` in one combinational step."""

from __future__ import annotations

from typing import Union

from amaranth.hdl import C, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge import formats
from peforge.formats import FloatFormat, IntFormat

from ._util import invalid
from .decode import MinifloatDecoder
from .lzc import LeadingZeroCounter
from .round import RoundPack
from .shift import ShiftRightSticky

__all__ = ["GroupDequant", "FP32_NAN"]

FP32_NAN = 0x7FC00000
_GUARD = 3  # guard bits below the larger operand (two for rounding, one for the sticky)


class GroupDequant(wiring.Component):
    """Add ``s * scale * 2**lsb_exp`` to an FP32 value with one round-to-nearest-even.

    ``s`` is a two's complement integer (a group's integer sum), ``scale`` a code of
    ``scale_fmt`` (``fp16``/``bf16``/``e8m0fnu`` or an integer format).  Datapath: one
    ``|s| x significand`` multiplier, a leading-zero count that normalises that product
    ``X``; then a floating-point add of ``base`` and ``X``: the operand with the larger top
    exponent sits at the top of an ``F + 4``-bit window (``F = max(width(X), 24)``), the other
    is shifted right with a sticky bit, the two are added or subtracted exactly, and
    :class:`RoundPack` rounds once.  Bits are only lost when the exponents differ by more
    than the 3 guard bits, and then the sum keeps its top bit within one place of the larger
    operand's, so the rounding position lies at least two bits above the sticky bit: the
    result is correctly rounded.

    Special cases (in priority order): ``base`` inf/NaN gives ``base``; a NaN/inf scale gives
    the canonical NaN ``0x7fc00000``; ``s * scale == 0`` gives ``base``.

    Parameters
    ----------
    s_width : int
        Width of ``s`` (>= 2).
    lsb_exp : int
        Exponent of ``s``'s least significant bit.
    scale_fmt : FloatFormat or IntFormat
        Scale format.

    Members
    -------
    base : In(32)
    s : In(signed(s_width))
    scale : In(scale_fmt.bits)
    result : Out(32)
    """

    def __init__(self, s_width: int, lsb_exp: int, scale_fmt: Union[FloatFormat, IntFormat]) -> None:
        if not isinstance(s_width, int) or isinstance(s_width, bool) or s_width < 2:
            raise invalid(self, f"s_width={s_width!r} must be an integer >= 2")
        if not isinstance(lsb_exp, int) or isinstance(lsb_exp, bool):
            raise invalid(self, f"lsb_exp={lsb_exp!r} must be an integer")
        if not isinstance(scale_fmt, (FloatFormat, IntFormat)):
            raise invalid(self, f"scale_fmt={scale_fmt!r} must be a FloatFormat or an IntFormat")
        self._s_width, self._lsb_exp, self._fmt = s_width, lsb_exp, scale_fmt
        super().__init__({"base": In(32), "s": In(signed(s_width)), "scale": In(scale_fmt.bits), "result": Out(32)})

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt, sw = self._fmt, self._s_width
        fp32 = formats.get_float("fp32")

        # ---- scale: sign, significand, exponent of the significand's LSB (relative) --------
        if isinstance(fmt, FloatFormat):
            m.submodules.sdec = dec = MinifloatDecoder(fmt)
            m.d.comb += dec.code.eq(self.scale)
            sc_sign, sc_sig, sc_exp = dec.sign, dec.sig, dec.exp
            sc_bad = dec.is_nan | dec.is_inf
            # value = sig * 2**(exp - bias - M); exp is the (effective) biased field
            exp_off = -fmt.bias - fmt.man_bits
            e_lo, e_hi = (0 if fmt.special == "fnu" else 1), (1 << fmt.exp_bits) - 1
        else:
            raw = self.scale.as_signed() if fmt.signed else self.scale
            sc_sign = raw[-1] if fmt.signed else C(0, 1)
            sc_sig = Signal(fmt.bits, name="scale_mag")
            m.d.comb += sc_sig.eq(Mux(sc_sign, -raw, raw))
            sc_exp, sc_bad, exp_off, e_lo, e_hi = C(0, 1), C(0, 1), 0, 0, 0

        # ---- X = |s| * sig, normalised ------------------------------------------------------
        s_neg = self.s[-1]
        s_mag = Signal(sw, name="s_mag")
        m.d.comb += s_mag.eq(Mux(s_neg, -self.s, self.s))
        wz = sw + len(sc_sig)
        z = Signal(wz, name="z_mag")
        m.d.comb += z.eq(s_mag * sc_sig)
        x_sign = s_neg ^ sc_sign
        m.submodules.zlzc = zlzc = LeadingZeroCounter(wz)
        m.d.comb += zlzc.data.eq(z)
        zn = Signal(wz, name="z_norm")
        m.d.comb += zn.eq(z << zlzc.count)
        # exponent of X's top bit: lsb_exp + exp_off + exp + (wz - 1) - lzc
        k = self._lsb_exp + exp_off + wz - 1
        tx = Signal(range(k + e_lo - wz, k + e_hi + 1), name="top_x")
        m.d.comb += tx.eq(k + sc_exp - zlzc.count)

        # ---- base: FP32 ----------------------------------------------------------------------
        b_sign, b_exp, b_man = self.base[31], self.base[23:31], self.base[:23]
        b_special = b_exp == 0xFF
        b_sig = Cat(b_man, b_exp != 0)
        to = Signal(range(-126, 129), name="top_o")
        m.d.comb += to.eq(Mux(b_exp == 0, 1, b_exp) - 127)

        # ---- align in a window of F + 1 + GUARD bits ----------------------------------------
        F = max(wz, 24)
        xf, of = zn << (F - wz), b_sig << (F - 24)
        x_big = tx >= to
        d_lo, d_hi = 0, max(k + e_hi + 126, 128 - (k + e_lo - wz))
        d = Signal(range(d_lo, d_hi + 1), name="exp_diff")
        m.d.comb += d.eq(Mux(x_big, tx - to, to - tx))
        top_range = range(min(k + e_lo - wz, -126), max(k + e_hi, 128) + 1)
        top = Signal(top_range, name="top_big")
        m.d.comb += top.eq(Mux(x_big, tx, to))
        big, small = Signal(F, name="big"), Signal(F, name="small")
        m.d.comb += [big.eq(Mux(x_big, xf, of)), small.eq(Mux(x_big, of, xf))]
        big_sign = Mux(x_big, x_sign, b_sign)
        same = x_sign == b_sign
        limit = F + _GUARD
        m.submodules.align = align = ShiftRightSticky(limit, (limit + 1).bit_length())
        m.d.comb += [align.data.eq(small << _GUARD), align.amount.eq(Mux(d > limit, limit + 1, d))]
        small_w = align.out | align.sticky
        big_w = big << _GUARD
        N = limit + 1
        zs = Signal(signed(N + 1), name="sum")
        m.d.comb += zs.eq(Mux(same, big_w + small_w, big_w - small_w))
        mag = Signal(unsigned(N), name="sum_mag")
        m.d.comb += mag.eq(Mux(zs[-1], -zs, zs))

        m.submodules.round = rnd = RoundPack(fp32, N, -(F - 1 + _GUARD), exp_range=top_range)
        m.d.comb += [
            rnd.sign.eq((big_sign ^ zs[-1]) & (mag != 0)),
            rnd.mag.eq(mag),
            rnd.exp.eq(top),
            rnd.inf.eq(0),
            rnd.nan.eq(0),
        ]
        out = Mux(b_special, self.base, Mux(sc_bad, Const(FP32_NAN, 32), Mux(z == 0, self.base, rnd.code)))
        m.d.comb += self.result.eq(out)
        return m
