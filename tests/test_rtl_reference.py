"""Independent exact reference for the RTL tests (``fractions.Fraction``, Python ints),
and the checks that the reference itself is right (against NumPy's IEEE casts)."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

from peforge.formats import KIND_INF, KIND_NAN, FloatFormat, get
from peforge.spec import MinifloatMacSpec

__all__ = ["round_fraction", "ref_run"]


def _decode(fmt: FloatFormat, code: int, subnormals: bool):
    """(sign, value Fraction or None, kind) of one code."""
    sign, sig, exp, kind = (int(x[0]) for x in fmt.to_exact(np.array([code])))
    if kind != 0:
        return sign, None, kind
    if not subnormals and sig < (1 << fmt.man_bits):
        sig = 0
    return sign, Fraction(sig) * Fraction(2) ** exp * (-1 if sign else 1), 0


def round_fraction(fmt: FloatFormat, x: Fraction, subnormals: bool) -> int:
    """Code of nonzero ``x`` rounded RNE into ieee ``fmt`` (gradual underflow, inf overflow)."""
    sign = int(x < 0)
    x = abs(x)
    M, emin, emax = fmt.man_bits, fmt.emin, fmt.emax
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** e > x:
        e -= 1
    e = max(e, emin)
    q = x / Fraction(2) ** (e - M)
    n = q.numerator // q.denominator
    rem = q - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2):
        n += 1
    if n == 1 << (M + 1):
        n, e = n >> 1, e + 1
    sbit = sign << (fmt.bits - 1)
    if e > emax:
        return fmt.inf_code(bool(sign))
    if n < (1 << M):  # subnormal or zero
        return sbit | (0 if not subnormals else n)
    return sbit | ((e + fmt.bias) << M) | (n - (1 << M))


def ref_run(spec: MinifloatMacSpec, steps):
    """Accumulator state (acc code, flags) after each step ``(a_codes, b_codes, first)``."""
    A, B = spec.a, spec.b
    exact = spec.is_exact
    width = spec.exact_width if exact else 0
    acc, flags, out = 0, 0, []
    for a_codes, b_codes, first in steps:
        prods = []  # (sign, value or None, kind)
        for ca, cb in zip(a_codes, b_codes):
            sa, va, ka = _decode(A, ca, spec.subnormals)
            sb, vb, kb = _decode(B, cb, spec.subnormals)
            s = sa ^ sb
            if ka == KIND_NAN or kb == KIND_NAN or (ka == KIND_INF and vb == 0) or (kb == KIND_INF and va == 0):
                prods.append((s, None, KIND_NAN))
            elif ka == KIND_INF or kb == KIND_INF:
                prods.append((s, None, KIND_INF))
            else:
                prods.append((s, va * vb, 0))
        if exact:
            total = sum((v for _, v, k in prods if k == 0), Fraction(0))
            units = total / Fraction(2) ** spec.product_lsb_exp
            assert units.denominator == 1
            acc = ((0 if first else acc) + int(units)) % (1 << width)
            new = (
                int(any(k == KIND_NAN for _, _, k in prods))
                | int(any(k == KIND_INF and not s for s, _, k in prods)) << 1
                | int(any(k == KIND_INF and s for s, _, k in prods)) << 2
            )
            flags = (0 if first else flags) | new
            out.append((acc, flags))
            continue
        F = spec.acc
        terms = list(prods)
        if not first:
            terms.append(_decode(F, acc, True))
        if any(k == KIND_NAN for _, _, k in terms) or (
            any(k == KIND_INF and not s for s, _, k in terms) and any(k == KIND_INF and s for s, _, k in terms)
        ):
            acc = F.nan_code
        elif any(k == KIND_INF for _, _, k in terms):
            acc = F.inf_code(any(k == KIND_INF and s for s, _, k in terms))
        else:
            total = sum((v for _, v, _ in terms), Fraction(0))
            if total == 0:
                neg = all(v == 0 and s for s, v, _ in terms)
                acc = int(neg) << (F.bits - 1)
            else:
                acc = round_fraction(F, total, spec.subnormals)
        out.append((acc, 0))
    return out


# ---- the reference's own checks ---------------------------------------------------------
@pytest.mark.parametrize(
    "name, dtype, exps",
    [("fp32", np.float32, (-200, 140)), ("fp16", np.float16, (-90, -20)), ("bf16", None, (-200, 140))],
)
def test_round_fraction_matches_numpy(name, dtype, exps):
    """float64 -> float32/float16 casts are correctly rounded IEEE conversions."""
    import ml_dtypes

    fmt = get(name)
    dtype = dtype or ml_dtypes.bfloat16
    rng = random.Random(7)
    for _ in range(3000):
        # bf16 via ml_dtypes goes through float32 first: keep 24-bit significands for it
        bits = 24 if name == "bf16" else 53
        x = float(np.ldexp(rng.getrandbits(bits) | 1, rng.randint(*exps)))
        x = -x if rng.random() < 0.5 else x
        with np.errstate(over="ignore"):
            want = int(np.array([x]).astype(dtype).view(f"u{fmt.bits // 8}")[0])
        assert round_fraction(fmt, Fraction(x), True) == want, x


def test_ref_run_hand_examples():
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=2)
    one, neg_zero, nan = 0x38, 0x80, 0x7F
    out = ref_run(
        spec,
        [
            ([one, one], [one, one], 1),  # 2.0
            ([one, 0], [neg_zero, 0], 0),  # 2 + -0 + 0
            ([neg_zero, neg_zero], [one, one], 1),  # -0 + -0 -> -0
            ([nan, 0], [one, 0], 0),
        ],
    )
    assert [hex(a) for a, _ in out] == ["0x40000000", "0x40000000", "0x80000000", "0x7fc00000"]
    ex = MinifloatMacSpec("e5m2", "e5m2", "exact")
    out = ref_run(ex, [([0x7C], [0x3C], 1), ([0xFC], [0x00], 0), ([0x3C], [0x3C], 1)])
    assert out[0] == (0, 0b010) and out[1] == (0, 0b011)
    assert out[2] == (1 << -ex.product_lsb_exp, 0)
