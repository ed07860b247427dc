"""Independent exact reference of the L-Mul MAC (``mult="lmul"``), in ``fractions.Fraction``.

Written from the formula of the paper ("Addition is All You Need for Energy-efficient
Language Models", Luo & Sun 2024) and the rules peforge documents for it, sharing no code
with the golden model or the RTL:

* ``x = (1 + fx) 2**ex``, ``y = (1 + fy) 2**ey`` (a subnormal operand is written this way
  too: its value is normalised first),
  ``L-Mul(x, y) = (1 + fx + fy + 2**-l(m)) 2**(ex + ey)``, sign = xor;
* ``l(m) = m`` for ``m <= 3``, 3 for ``m = 4``, 4 for ``m > 4``; ``m = max(Ma, Mb)``;
* zeros, NaN and inf as for an exact product; FTZ flushes subnormal operands to zero first.

The accumulator part (exact sum, one RNE per step, or a wrapping Kulisch register) follows
the MAC semantics; rounding uses :func:`test_rtl_reference.round_fraction`.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import pytest
from test_golden_mac import INF, NAN, NUM, ref_decode
from test_rtl_reference import round_fraction

from peforge.spec import MinifloatMacSpec

__all__ = ["offset_exp", "decode", "lmul_value", "ref_product", "ref_run"]


def offset_exp(m: int) -> int:
    """l(m) of the paper."""
    if m <= 3:
        return m
    return 3 if m == 4 else 4


#: (kind, sign, magnitude) of a code, straight from its bit fields (the MAC reference's decoder).
decode = functools.lru_cache(maxsize=None)(ref_decode)


def _split(v: Fraction, man_bits: int) -> tuple[Fraction, int]:
    """(f, e) with v = (1 + f) 2**e, 0 <= f < 1; f must lie on the grid 2**-man_bits."""
    e = v.numerator.bit_length() - v.denominator.bit_length()
    if Fraction(2) ** e > v:
        e -= 1
    f = v / Fraction(2) ** e - 1
    assert 0 <= f < 1 and (f * (1 << man_bits)).denominator == 1, (v, f)
    return f, e


def lmul_value(x: Fraction, y: Fraction, ma: int, mb: int) -> Fraction:
    """L-Mul of two positive values whose fractions have ``ma`` and ``mb`` bits."""
    fx, ex = _split(x, ma)
    fy, ey = _split(y, mb)
    return (1 + fx + fy + Fraction(1, 1 << offset_exp(max(ma, mb)))) * Fraction(2) ** (ex + ey)


def ref_product(spec: MinifloatMacSpec, ca: int, cb: int) -> tuple[str, int, Fraction]:
    """(kind, sign, magnitude) of the L-Mul product of two codes."""
    ka, sa, xa = decode(spec.a, ca, spec.subnormals)
    kb, sb, xb = decode(spec.b, cb, spec.subnormals)
    s = sa ^ sb
    if NAN in (ka, kb) or (ka == INF and xb == 0 and kb == NUM) or (kb == INF and xa == 0 and ka == NUM):
        return NAN, s, Fraction(0)
    if INF in (ka, kb):
        return INF, s, Fraction(0)
    if xa == 0 or xb == 0:
        return NUM, s, Fraction(0)
    return NUM, s, lmul_value(xa, xb, spec.a.man_bits, spec.b.man_bits)


def ref_run(spec: MinifloatMacSpec, steps) -> list[tuple[int, int]]:
    """(acc, flags) after each step ``(a_codes, b_codes, first)`` of an L-Mul MAC."""
    acc, flags, out = 0, 0, []
    for a_codes, b_codes, first in steps:
        prods = [ref_product(spec, ca, cb) for ca, cb in zip(a_codes, b_codes)]
        if spec.is_exact:
            total = sum((-v if s else v for k, s, v in prods if k == NUM), Fraction(0))
            units = total / Fraction(2) ** spec.product_lsb_exp
            assert units.denominator == 1, "an L-Mul product lies below the Kulisch LSB"
            acc = ((0 if first else acc) + int(units)) % (1 << spec.exact_width)
            new = (
                int(any(k == NAN for k, _, _ in prods))
                | int(any(k == INF and not s for k, s, _ in prods)) << 1
                | int(any(k == INF and s for k, s, _ in prods)) << 2
            )
            flags = (0 if first else flags) | new
            out.append((acc, flags))
            continue
        fmt = spec.acc
        terms = list(prods)
        if not first:
            terms.append(decode(fmt, acc))
        pinf = any(k == INF and not s for k, s, _ in terms)
        ninf = any(k == INF and s for k, s, _ in terms)
        if any(k == NAN for k, _, _ in terms) or (pinf and ninf):
            acc = fmt.nan_code
        elif pinf or ninf:
            acc = fmt.inf_code(ninf)
        else:
            total = sum((-v if s else v for _, s, v in terms), Fraction(0))
            if total == 0:
                acc = int(all(v == 0 and s for _, s, v in terms)) << (fmt.bits - 1)
            else:
                acc = round_fraction(fmt, total, spec.subnormals)
        out.append((acc, 0))
    return out


# ---- the reference's own checks (hand-worked values of the formula) -------------------------


def test_offset_exponent_table():
    assert [offset_exp(m) for m in range(1, 9)] == [1, 2, 3, 3, 4, 4, 4, 4]


@pytest.mark.parametrize(
    "x, y, m, want",
    [
        (Fraction(1), Fraction(1), 3, Fraction(9, 8)),  # 1 + 0 + 0 + 1/8
        (Fraction(3, 2), Fraction(3, 2), 3, Fraction(17, 8)),  # 1 + 1/2 + 1/2 + 1/8
        (Fraction(7, 4), Fraction(7, 4), 2, Fraction(11, 4)),  # 1 + 3/4 + 3/4 + 1/4
        (Fraction(3), Fraction(6), 1, Fraction(20)),  # (1 + 1/2 + 1/2 + 1/2) * 8
        (Fraction(1, 512), Fraction(1), 3, Fraction(9, 8 * 512)),  # e4m3 min subnormal, normalised
        (Fraction(3, 1024), Fraction(5, 4), 4, Fraction(15, 8 * 512)),  # (1 + 1/2 + 1/4 + 1/8) 2**-9
    ],
)
def test_lmul_value_by_hand(x, y, m, want):
    assert lmul_value(x, y, m, m) == want


def test_ref_product_specials():
    spec = MinifloatMacSpec("e5m2", "e4m3fn", mult="lmul")
    assert ref_product(spec, 0x7C, 0x00)[0] == NAN  # inf * 0
    assert ref_product(spec, 0x7C, 0xB8)[:2] == (INF, 1)  # inf * -1
    assert ref_product(spec, 0x80, 0x38)[:2] == (NUM, 1)  # -0 * 1 = -0
    assert ref_product(spec, 0x3C, 0x7F)[0] == NAN  # e4m3fn NaN
