"""models/golden/rounding.py against ml_dtypes casts and an exact Fraction reference."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from peforge import formats
from peforge.models.golden.rounding import bit_length, round_exact, round_to_format


def f32_parts(bits: np.ndarray):
    """(neg, mag, exp) of float32 bit patterns, by hand (finite values only)."""
    bits = bits.astype(np.int64)
    neg = (bits >> 31) == 1
    e = (bits >> 23) & 0xFF
    m = bits & 0x7FFFFF
    mag = np.where(e > 0, m | (1 << 23), m)
    exp = np.where(e > 0, e, 1) - 127 - 23
    return neg, mag, exp


@pytest.mark.parametrize("name", ["bf16", "fp16", "e5m2", "e4m3", "e3m4"])
@pytest.mark.parametrize("subset", ["random", "near_range"])
def test_matches_ml_dtypes_cast_from_float32(name, subset):
    fmt = formats.get(name)
    rng = np.random.default_rng(0)
    if subset == "random":
        bits = rng.integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32)
    else:  # values around the target's max, min normal and min subnormal, incl. exact ties
        centres = np.array([fmt.max, fmt.min_normal, fmt.min_subnormal, fmt.min_subnormal / 2], dtype=np.float32).view(
            np.uint32
        )
        bits = (centres[:, None].astype(np.int64) + np.arange(-3000, 3000)).ravel()
        bits = np.concatenate([bits, bits | (1 << 31)]).astype(np.uint32)
    x = bits.view(np.float32)
    bits = bits[np.isfinite(x)]
    x = bits.view(np.float32)
    neg, mag, exp = f32_parts(bits)
    got = round_to_format(neg, mag, exp, fmt)
    dt = fmt.to_ml_dtype()
    with np.errstate(over="ignore"):
        want = x.astype(dt).view(np.uint16 if fmt.bits == 16 else np.uint8).astype(np.uint64)
    np.testing.assert_array_equal(got, want)


def ref(fmt, value: Fraction, subnormals=True, overflow="inf") -> int:
    """Exact reference: nearest grid point at the value's binade, ties to even."""
    neg, x = value < 0, abs(value)
    sign = fmt.sign_mask if neg else 0
    if x == 0:
        return sign if fmt.has_negative_zero else 0
    e = x.numerator.bit_length() - x.denominator.bit_length()
    e -= Fraction(2) ** e > x
    ulp = Fraction(2) ** (max(e, fmt.emin) - fmt.man_bits)
    k, rem = divmod(x, ulp)
    if rem * 2 > ulp or (rem * 2 == ulp and k % 2):
        k += 1
    r = k * ulp
    if r > Fraction(fmt.max):
        if overflow == "inf":
            return sign | fmt.inf_code()
        if overflow == "nan":
            return fmt.nan_code
        r = Fraction(fmt.max)
    if not subnormals and r < Fraction(fmt.min_normal):
        r = Fraction(0)
    if r == 0:
        return sign if fmt.has_negative_zero else 0
    codes = fmt.all_codes()[: fmt.num_codes // 2]
    vals = fmt.decode(codes)
    hit = np.nonzero(vals == float(r))[0]
    assert len(hit) == 1 and Fraction(float(r)) == r
    return sign | int(codes[hit[0]])


@pytest.mark.parametrize(
    "name,overflow",
    [
        ("fp16", "inf"),
        ("bf16", "inf"),
        ("e4m3fn", "saturate"),
        ("e4m3fn", "nan"),
        ("e2m1fn", "saturate"),
        ("e4m3fnuz", "nan"),
        ("e5m3", "inf"),
    ],
)
@pytest.mark.parametrize("subnormals", [True, False])
def test_big_python_ints_against_fraction(name, overflow, subnormals):
    fmt = formats.get(name)
    rng = np.random.default_rng(1)
    cases = []
    for _ in range(300):
        bits = int(rng.integers(1, 200))
        mag = int(rng.integers(0, 1 << 62)) >> max(0, 62 - bits)
        mag = (mag << max(0, bits - 62)) | int(rng.integers(0, 2))
        if rng.random() < 0.3:  # exact ties and near-ties at various positions
            cut = int(rng.integers(1, max(2, bits)))
            mag = ((mag >> cut) << cut) | (1 << (cut - 1)) | int(rng.random() < 0.5)
        top = fmt.emax + 2
        exp = int(rng.integers(fmt.min_exp - 4, top + 1)) - mag.bit_length()
        cases.append((bool(rng.random() < 0.5), mag, exp))
    cases += [(False, 0, 5), (True, 0, -3)]
    neg = np.array([c[0] for c in cases])
    mag = np.array([c[1] for c in cases], dtype=object)
    exp = np.array([c[2] for c in cases])
    got = round_exact(neg, mag, exp, fmt, subnormals=subnormals, overflow=overflow)
    want = [
        ref(fmt, Fraction(m) * Fraction(2) ** e * (-1 if n else 1) if m else Fraction(0), subnormals, overflow)
        if m
        else (fmt.sign_mask if n and fmt.has_negative_zero else 0)
        for n, m, e in cases
    ]
    assert got.code.tolist() == want
    # finite results: value == sig * 2**exp exactly
    fin = ~got.overflow | (overflow == "saturate")
    vals = fmt.decode(got.code[fin])
    assert np.all(np.abs(vals) == np.ldexp(got.sig[fin].astype(float), got.exp[fin]))


def test_int64_fast_path_equals_python_path():
    fmt = formats.get("fp32")
    rng = np.random.default_rng(2)
    mag = rng.integers(0, 1 << 61, 5000) >> rng.integers(0, 61, 5000)
    exp = rng.integers(-220, 120, 5000)
    neg = rng.random(5000) < 0.5
    a = round_exact(neg, mag, exp, fmt)
    b = round_exact(neg, mag.astype(object) << 40, exp - 40, fmt)
    np.testing.assert_array_equal(a.code, b.code)


def test_bit_length_exact_near_powers_of_two():
    xs = np.array([0, 1, 2, 3, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, (1 << 62) - 1, 1 << 62], dtype=np.uint64)
    assert bit_length(xs).tolist() == [int(x).bit_length() for x in xs.tolist()]


def test_validation():
    fp32, e4 = formats.get("fp32"), formats.get("e4m3fn")
    with pytest.raises(ValueError, match="overflow='inf' needs a format with infinities"):
        round_exact(False, 1, 0, e4)
    with pytest.raises(ValueError, match="overflow='wrap' is not allowed"):
        round_exact(False, 1, 0, fp32, overflow="wrap")
    with pytest.raises(ValueError, match="mag must be nonnegative"):
        round_exact(False, np.array([-1]), 0, fp32)
    with pytest.raises(ValueError, match="signed FloatFormat"):
        round_exact(False, 1, 0, formats.get("e8m0fnu"))
