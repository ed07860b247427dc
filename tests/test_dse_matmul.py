"""golden.matmul for mac / intmac / simd against float64 (exact inputs) and a Fraction reference."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from peforge.models import golden
from peforge.models.golden.matmul import pow2_scale
from peforge.spec import IntMacSpec, MinifloatMacSpec, SimdMacSpec


def _ref_scale(amax: float, fmax: float) -> float:
    """Smallest power of two s with amax / s <= fmax (independent loop)."""
    if amax == 0:
        return 1.0
    e = 0
    while Fraction(amax) > Fraction(fmax) * Fraction(2) ** e:
        e += 1
    while Fraction(amax) <= Fraction(fmax) * Fraction(2) ** (e - 1):
        e -= 1
    return 2.0**e


def _round_rne(q: Fraction, man_bits: int, emin: int) -> Fraction:
    """q rounded to nearest even on an IEEE-like grid (man_bits fraction bits, no overflow)."""
    if q == 0:
        return Fraction(0)
    e = max(math.floor(math.log2(abs(q))), emin)
    while Fraction(2) ** e > abs(q) and e > emin:  # log2 float guard
        e -= 1
    while Fraction(2) ** (e + 1) <= abs(q):
        e += 1
    e = max(e, emin)
    ulp = Fraction(2) ** (e - man_bits)
    n = q / ulp
    fl = math.floor(n)
    rem = n - fl
    r = fl + (1 if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2) else 0)
    return r * ulp


def test_pow2_scale_matches_loop() -> None:
    rng = np.random.default_rng(1)
    amax = np.concatenate([np.exp(rng.normal(0, 6, 300)), [448.0, 448.0 * 2**-3, 1e-30, 0.0]])
    got = pow2_scale(amax, 448.0)
    want = np.array([_ref_scale(float(a), 448.0) for a in amax])
    np.testing.assert_array_equal(got, want)


def _exact_operands(rng, fmt_values: np.ndarray, shape, scale: float) -> np.ndarray:
    grid = fmt_values[np.isfinite(fmt_values)]
    grid = grid[np.abs(grid) <= grid.max()]  # symmetric scales: int min (-2**(b-1)) is off-grid
    vals = rng.choice(grid, size=shape)
    vals.flat[0] = grid.max()  # pin the scale to `scale`
    return vals * scale


@pytest.mark.parametrize(
    "spec",
    [
        MinifloatMacSpec(a="e4m3fn", b="e4m3fn", acc="exact", lanes=1),
        MinifloatMacSpec(a="e2m1fn", b="e3m2fn", acc="exact", lanes=4),
        MinifloatMacSpec(a="e5m2", b="e4m3fn", acc="exact", lanes=2),
        IntMacSpec(a="int8", b="int4", lanes=3),
        IntMacSpec(a="uint8", b="int8", lanes=1),
    ],
    ids=lambda s: s.name,
)
def test_exactly_representable_equals_float64(spec) -> None:
    """Operands on the format grid (times powers of two) and an exact accumulator: no rounding."""
    rng = np.random.default_rng(2)
    n, k, m = 7, 37, 5
    x = _exact_operands(rng, spec.a.values(), (n, k), 2.0**-5)
    w = np.stack([_exact_operands(rng, spec.b.values(), (k,), 2.0**j) for j in range(m)], axis=1)
    got = golden.matmul(spec, x, w)
    np.testing.assert_array_equal(got, x @ w)  # float64 sums of these products are exact


def test_simd_exact_integers_equal_float64() -> None:
    rng = np.random.default_rng(3)
    spec = SimdMacSpec(base=8, modes=("4x4", "8x8", "2x2"))
    for mode, (lo_a, hi_a, lo_b, hi_b) in (
        ("4x4", (-7, 7, -7, 7)),
        ("8x8", (0, 255, -127, 127)),
        ("2x2", (-1, 1, 0, 3)),
    ):
        x = rng.integers(lo_a, hi_a + 1, (6, 29)).astype(np.float64)
        w = rng.integers(lo_b, hi_b + 1, (29, 4)).astype(np.float64)
        x[0, 0] = hi_a  # symmetric scales: max |value| maps to the format's max
        w[0, :] = hi_b
        got = golden.matmul(spec, x, w, mode=mode)
        np.testing.assert_array_equal(got, x @ w)


def _fraction_mac(spec: MinifloatMacSpec, x: np.ndarray, w: np.ndarray, ml_a, ml_b) -> np.ndarray:
    """Independent reference: ml_dtypes quantisation, Fraction lane sums, RNE per step."""
    acc_fmt = spec.acc
    sx = _ref_scale(float(np.abs(x).max()), spec.a.max)
    out = np.empty((x.shape[0], w.shape[1]))
    for j in range(w.shape[1]):
        sw = _ref_scale(float(np.abs(w[:, j]).max()), spec.b.max)
        wq = (w[:, j] / sw).astype(ml_b).astype(np.float64)
        for i in range(x.shape[0]):
            xq = (x[i] / sx).astype(ml_a).astype(np.float64)
            acc = Fraction(0)
            for s in range(0, len(xq), spec.lanes):
                step = sum(Fraction(p) * Fraction(q) for p, q in zip(xq[s : s + spec.lanes], wq[s : s + spec.lanes]))
                acc = _round_rne(acc + step, acc_fmt.man_bits, acc_fmt.emin)
            out[i, j] = float(acc) * sx * sw
    return out


@pytest.mark.parametrize(
    "spec,ml_a,ml_b",
    [
        (
            MinifloatMacSpec(a="e4m3fn", b="e4m3fn", acc="bf16", lanes=1),
            ml_dtypes.float8_e4m3fn,
            ml_dtypes.float8_e4m3fn,
        ),
        (
            MinifloatMacSpec(a="e4m3fn", b="e2m1fn", acc="fp16", lanes=3),
            ml_dtypes.float8_e4m3fn,
            ml_dtypes.float4_e2m1fn,
        ),
        (MinifloatMacSpec(a="e4m3fn", b="e5m2", acc="fp32", lanes=2), ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2),
    ],
    ids=lambda v: getattr(v, "name", ""),
)
def test_float_accumulator_matches_fraction_reference(spec, ml_a, ml_b) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_t(3, (4, 23))
    w = rng.normal(0, 0.1, (23, 3))
    np.testing.assert_array_equal(golden.matmul(spec, x, w), _fraction_mac(spec, x, w, ml_a, ml_b))


def test_intmac_wraps_like_python_ints() -> None:
    """A given narrow accumulator wraps modulo 2**acc_bits; reference in Python ints."""
    spec = IntMacSpec(a="int8", b="int8", acc_bits=16, overflow="wrap")
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(3, 40)), rng.normal(size=(40, 2))
    sx = _ref_scale(float(np.abs(x).max()), 127.0)
    got = golden.matmul(spec, x, w)
    for j in range(2):
        sw = _ref_scale(float(np.abs(w[:, j]).max()), 127.0)
        for i in range(3):
            acc = sum(int(np.rint(a / sx)) * int(np.rint(b / sw)) for a, b in zip(x[i], w[:, j]))
            acc = (acc + (1 << 15)) % (1 << 16) - (1 << 15)
            assert got[i, j] == acc * sx * sw


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="same k"):
        golden.matmul(IntMacSpec(), np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="mode="):
        golden.matmul(SimdMacSpec(), np.ones((2, 3)), np.ones((3, 2)), mode="3x3")
