"""peforge.blockscale (MX, NVFP4) against an exact Fraction reference of the scale rules."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import pytest
from test_formats_reference import Ref

from peforge import blockscale as B
from peforge import formats as F

MX = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8"]
EMAX = {"mxfp8_e4m3": 8, "mxfp8_e5m2": 15, "mxfp6_e3m2": 4, "mxfp6_e2m3": 2, "mxfp4": 2, "mxint8": 0}  # OCP MX v1.0
ELEM = {
    "mxfp8_e4m3": "e4m3fn",
    "mxfp8_e5m2": "e5m2",
    "mxfp6_e3m2": "e3m2fn",
    "mxfp6_e2m3": "e2m3fn",
    "mxfp4": "e2m1fn",
    "mxint8": "int8f6",
    "nvfp4": "e2m1fn",
}


def _floor_log2(a: Fraction) -> int:
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    return e


def _int8_ref(y: Fraction) -> int:
    return min(max(round(y * 64), -128), 127) % 256  # round(): half to even


def _elem_ref(scheme: str, y: Fraction, sign: float) -> int:
    if scheme == "mxint8":
        return _int8_ref(y)
    ref = _ref(ELEM[scheme])
    return ref.encode(math.copysign(float(y), sign), "nearest_even", "saturate")  # y is a float64 here


def _mx_ref(scheme: str, block: np.ndarray) -> tuple[list[int], int]:
    if not np.all(np.isfinite(block)):
        return [0] * len(block), 0xFF
    amax = max(abs(Fraction(float(v))) for v in block)
    e = -127 if amax == 0 else _floor_log2(amax) - EMAX[scheme]
    if e > 127:
        return [0] * len(block), 0xFF
    e = max(e, -127)
    X = Fraction(2) ** e
    return [_elem_ref(scheme, Fraction(float(v)) / X, v) for v in block], e + 127


@functools.lru_cache(maxsize=None)
def _positive(fmt) -> list[tuple[Fraction, int]]:
    return sorted(
        (Fraction(float(v)), c) for c, v in enumerate(fmt.values()) if np.isfinite(v) and v >= 0 and not np.signbit(v)
    )


@functools.lru_cache(maxsize=None)
def _ref(name: str) -> Ref:
    return Ref(F.get(name))


def _round_exact(fmt, a: Fraction, neg: bool) -> int:
    """Code of the exact rational ``a`` >= 0 rounded nearest-even with saturation (brute force)."""
    pos = _positive(fmt)
    below = [(v, c) for v, c in pos if v <= a]
    above = [(v, c) for v, c in pos if v >= a]
    (lo, cl), (hi, ch) = below[-1], (above[0] if above else pos[-1])
    if a - lo < hi - a or not above:
        code = cl
    elif a - lo > hi - a:
        code = ch
    else:
        code = cl if cl % 2 == 0 else ch
    return code | (fmt.sign_mask if neg else 0)


def _nvfp4_ref(block: np.ndarray, ts: Fraction) -> tuple[list[int], int]:
    if not np.all(np.isfinite(block)):
        return [0] * len(block), 0x7F
    e4, e2 = F.get("e4m3fn"), F.get("e2m1fn")
    amax = max(abs(Fraction(float(v))) for v in block)
    s = max(_round_exact(e4, amax / (6 * ts), False), 1)  # never a zero scale
    S = Fraction(float(e4.decode(s))) * ts
    elems = [_round_exact(e2, abs(Fraction(float(v))) / S, bool(np.signbit(v))) for v in block]
    return elems, s


def _blocks(rng, n_blocks, block, kind):
    x = rng.standard_normal((n_blocks, block)) * np.exp2(rng.uniform(-20, 20, (n_blocks, 1)))
    if kind == "zeros":
        x[::3] = 0.0
        x[1::3, ::2] = 0.0
        x[2::3, 1] = -0.0
    elif kind == "special":
        x[0, 3] = np.nan
        x[1, 5] = np.inf
        x[2, 0] = -np.inf
        x[3] = 1e300  # beyond the E8M0 range for MX
        x[4, :] = 2.0**-140  # scale clamps to 2^-127
        x[5, 7] = 1.999 * 2.0**5  # elements above max * X saturate
    elif kind == "ties":
        x = np.round(x * 8) / 8
    return x


@pytest.mark.parametrize("kind", ["random", "zeros", "special", "ties"])
@pytest.mark.parametrize("scheme", MX)
def test_mx_against_reference(scheme, kind):
    rng = np.random.default_rng([ord(c) for c in scheme + kind])
    x = _blocks(rng, 8, 32, kind)
    elems, scales = B.quantize(x, scheme)
    assert elems.shape == x.shape and scales.shape == (8, 1)
    for i in range(8):
        want_e, want_s = _mx_ref(scheme, x[i])
        assert int(scales[i, 0]) == want_s, (i, x[i])
        assert elems[i].tolist() == want_e, (i, x[i])


@pytest.mark.parametrize("kind", ["random", "zeros", "special", "ties"])
@pytest.mark.parametrize("ts", [1.0, 2.0**-3])
def test_nvfp4_against_reference(kind, ts):
    rng = np.random.default_rng(11)
    x = _blocks(rng, 8, 16, kind) * 1e-4
    if kind == "special":
        x[3] = 1e6  # amax / 6 saturates the E4M3 scale at 448
    elems, scales = B.quantize(x, "nvfp4", tensor_scale=None if ts == 1.0 else ts)
    for i in range(8):
        want_e, want_s = _nvfp4_ref(x[i], Fraction(ts))
        assert int(scales[i, 0]) == want_s, (i, x[i])
        assert elems[i].tolist() == want_e, (i, x[i])


@pytest.mark.parametrize("scheme", MX + ["nvfp4"])
def test_dequantize(scheme):
    s = B.get_scheme(scheme)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2 * s.block))
    x[0, 0] = np.nan
    elems, scales = B.quantize(x, scheme)
    y = B.dequantize(elems, scales, scheme)
    assert y.dtype == np.float64 and y.shape == x.shape
    assert np.all(np.isnan(y[0, : s.block])) and not np.isnan(y[1:]).any()
    # reference: element value times scale value, from the formats' own facts
    ev = s.element.decode(elems).reshape(4, 2, s.block)
    sv = s.scale.decode(scales)[..., None]
    assert np.array_equal(y.reshape(4, 2, s.block)[1:], (ev * sv)[1:])
    # the worst error is bounded by half an element ulp at the block's max exponent, plus clipping
    err = np.abs(y - x)[1:]
    assert np.all(err <= np.abs(x[1:]).max() * 0.5 + 1e-12)


def test_nvfp4_tensor_scale_roundtrip():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 64)) * 1e-3
    ts = B.nvfp4_tensor_scale(x)
    assert ts == float(np.float32(np.abs(x).max() / (6 * 448)))
    e, s = B.quantize(x, "nvfp4", tensor_scale=ts)
    y = B.dequantize(e, s, "nvfp4", tensor_scale=ts)
    assert np.max(np.abs(y - x)) <= np.abs(x).max() / 6  # at most one E2M1 step of the block
    assert np.array_equal(y, F.get("e2m1fn").decode(e) * np.repeat(F.get("e4m3fn").decode(s), 16, axis=1) * ts)


@pytest.mark.parametrize("scheme", ["mxfp4", "nvfp4", "mxint8"])
def test_axis(scheme):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 64, 5))
    e1, s1 = B.quantize(x, scheme, axis=1)
    e2, s2 = B.quantize(np.moveaxis(x, 1, -1), scheme)
    assert np.array_equal(np.moveaxis(e1, 1, -1), e2) and np.array_equal(np.moveaxis(s1, 1, -1), s2)
    assert s1.shape == (3, 64 // B.get_scheme(scheme).block, 5)
    assert np.array_equal(B.dequantize(e1, s1, scheme, axis=1), np.moveaxis(B.dequantize(e2, s2, scheme), -1, 1))


def test_scheme_table():
    assert set(B.SCHEMES) == set(MX) | {"nvfp4"} | set(MXINT) | {"nvint4"}
    for name, s in B.SCHEMES.items():
        if name in MXINT or name == "nvint4":
            continue  # test_int_scheme_table
        assert s.element == F.get(ELEM[name])
        if name == "nvfp4":
            assert (s.block, s.scale.name) == (16, "e4m3fn")
        else:
            assert (s.block, s.scale.name, s.emax_elem) == (32, "e8m0fnu", EMAX[name])
            if isinstance(s.element, F.FloatFormat):
                assert s.emax_elem == s.element.emax
    assert F.get("int8f6").max == 1 + 63 / 64 and F.get("int8f6").min == -2
    assert B.SCHEMES["mxfp4"].bits_per_element == 4.25


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: B.quantize(np.zeros(33), "mxfp4"), "not a multiple of the block size 32"),
        (lambda: B.quantize(np.zeros(32), "mxfp5"), "unknown block scheme 'mxfp5'"),
        (lambda: B.quantize(np.zeros(32, dtype=np.int32), "mxfp4"), "dtype int32"),
        (lambda: B.quantize(np.zeros(32), "mxfp4", tensor_scale=2.0), "only used by nvfp4"),
        (lambda: B.quantize(np.zeros(16), "nvfp4", tensor_scale=-1.0), "tensor_scale=-1.0"),
        (lambda: B.quantize(np.zeros(32), "mxfp4", axis=2), "axis=2"),
        (lambda: B.dequantize(np.zeros(32, np.uint8), np.zeros(2, np.uint8), "mxfp4"), "scale codes have shape"),
        (lambda: B.dequantize(np.full(32, 16, np.uint8), np.zeros(1, np.uint8), "mxfp4"), "code 16"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_floor_log2_helper():
    for v in [1, 2, 3, 0.75, 2.0**-130, 1e300]:
        assert _floor_log2(Fraction(v)) == math.floor(math.log2(v))


# ---- INT elements of any width, two-level rules with any float scale, clipping, rounding -------
MXINT = {"mxint6": 6, "mxint4": 4}


def _int_ref(y: Fraction, bits: int, symmetric: bool) -> int:
    """Code of ``y`` on the MXINT grid 2^-(bits-2), half to even, saturating (symmetric: no -2^(N-1))."""
    lo, hi = -(1 << (bits - 1)) + symmetric, (1 << (bits - 1)) - 1
    return min(max(round(y * 2 ** (bits - 2)), lo), hi) % (1 << bits)


def test_int_scheme_table():
    for name, bits in MXINT.items():
        s = B.SCHEMES[name]
        assert (s.element.name, s.scale.name, s.block, s.emax_elem, s.rule) == (
            f"int{bits}f{bits - 2}",
            "e8m0fnu",
            32,
            0,
            "mx",
        )
        assert s.element.max == 2 - 2.0 ** (2 - bits) and s.element.min == -2
    nv = B.SCHEMES["nvint4"]
    assert (nv.element.name, nv.scale.name, nv.block, nv.rule, nv.two_level) == ("int4f2", "e4m3fn", 16, "nv", True)
    for n in range(2, 9):
        assert B.block_element(f"int{n}") == F.get(f"int{n}f{n - 2}") == B.block_element(f"mxint{n}")
        assert B.emax_elem(B.block_element(f"int{n}")) == 0


@pytest.mark.parametrize("clip", ["full", "symmetric"])
@pytest.mark.parametrize("kind", ["random", "zeros", "ties"])
@pytest.mark.parametrize("scheme", list(MXINT) + ["mxint8"])
def test_mxint_against_reference(scheme, kind, clip):
    bits = MXINT.get(scheme, 8)
    rng = np.random.default_rng([ord(c) for c in scheme + kind + clip])
    x = _blocks(rng, 8, 32, kind)
    if kind == "ties":  # odd multiples of half a grid step: every element a tie
        k = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (8, 32)) + 0.5
        x = k * np.exp2(rng.integers(-30, 30, (8, 1)) - bits + 2.0)
    x[0, 0] = -np.abs(x[0]).max() * 1.999  # a most negative element: -2^(N-1) unless symmetric
    elems, scales = B.quantize(x, scheme, clip=clip)
    for i in range(8):
        amax = max(abs(Fraction(float(v))) for v in x[i])
        e = -127 if amax == 0 else _floor_log2(amax)
        assert int(scales[i, 0]) == max(e, -127) + 127
        X = Fraction(2) ** max(e, -127)
        want = [_int_ref(Fraction(float(v)) / X, bits, clip == "symmetric") for v in x[i]]
        assert elems[i].tolist() == want, (i, x[i])
    if clip == "symmetric":
        assert not (elems == 1 << (bits - 1)).any()


def _nv_ref(block: np.ndarray, ts: Fraction, elem, scale, symmetric: bool = False) -> tuple[list[int], int]:
    """The two-level rule from its definition: scale = RNE(amax / (max_elem * ts)) in the scale
    format (saturating, never 0), elements RNE(x / (scale * ts)) with saturation."""
    amax = max(abs(Fraction(float(v))) for v in block)
    s = max(_round_exact(scale, amax / (Fraction(elem.max) * ts), False), 1)
    S = Fraction(float(scale.decode(np.array([s]))[0])) * ts
    if isinstance(elem, F.IntFormat):
        return [_int_ref(Fraction(float(v)) / S, elem.bits, symmetric) for v in block], s
    return [_round_exact(elem, abs(Fraction(float(v))) / S, bool(np.signbit(v))) for v in block], s


@pytest.mark.parametrize(
    "elem, scale",
    [
        ("int4", "e4m3fn"),
        ("int4", "ue5m3"),
        ("e2m1fn", "ue5m3"),
        ("e2m1fn", "ue4m3"),
        ("int8", "ue4m3"),
        ("e4m3fn", "e4m3fn"),
    ],
)
@pytest.mark.parametrize("kind", ["random", "zeros", "ties"])
def test_two_level_rule_against_reference(elem, scale, kind):
    rng = np.random.default_rng([ord(c) for c in elem + scale + kind])
    s = B.make_scheme(elem, scale, 16)
    assert s.rule == "nv" and s.scale == F.get(scale)
    x = _blocks(rng, 8, 16, kind) * 1e-4
    ts = B.tensor_scale(x, s)
    assert ts == float(np.float32(np.abs(x).max() / (s.element.max * s.scale.max)))
    for t in (None, ts):
        elems, scales = B.quantize(x, s, tensor_scale=t)
        for i in range(8):
            want_e, want_s = _nv_ref(x[i], Fraction(1 if t is None else t), s.element, s.scale)
            assert int(scales[i, 0]) == want_s and elems[i].tolist() == want_e, (i, x[i])
    # NaN in a block: the scale format's NaN, zero elements
    x[2, 3] = np.nan
    elems, scales = B.quantize(x, s)
    assert int(scales[2, 0]) == s.scale.nan_code and not elems[2].any()


def test_nvint4_symmetric_clipping():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((64, 16))
    x[:, 0] = -np.abs(x).max(axis=1)  # the block's amax is negative: -7 steps, never -8
    for clip in ("full", "symmetric"):
        elems, scales = B.quantize(x, "nvint4", clip=clip)
        for i in range(0, 64, 7):
            want_e, want_s = _nv_ref(x[i], Fraction(1), F.get("int4f2"), F.get("e4m3fn"), clip == "symmetric")
            assert int(scales[i, 0]) == want_s and elems[i].tolist() == want_e
        if clip == "symmetric":
            assert not (elems == 8).any()


@pytest.mark.parametrize("scheme", ["mxint4", "nvfp4", "mxfp8_e4m3"])
def test_stochastic_rounding_is_seeded_and_unbiased(scheme):
    s = B.get_scheme(scheme)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 4 * s.block))
    e1, s1 = B.quantize(x, s, rounding="stochastic", seed=3)
    e2, s2 = B.quantize(x, s, rounding="stochastic", seed=3)
    assert np.array_equal(e1, e2) and np.array_equal(s1, s2)
    en, sn = B.quantize(x, s)
    assert np.array_equal(s1, sn)  # scales are not stochastic
    # each element is one of the two grid neighbours of x / X, and the mean over seeds is x
    near = B.dequantize(en, sn, s)
    runs = np.stack([B.dequantize(*B.quantize(x, s, rounding="stochastic", seed=k), s) for k in range(400)])
    step = np.abs(runs - near).max(axis=0)
    scale_v = np.repeat(s.scale.decode(sn), s.block, axis=1)
    grid = np.where(np.isin(s.element.name, ("int4f2",)), 0.25, 1.0) * scale_v  # bounded by one step
    assert np.all(step <= np.maximum(grid, np.abs(x)) + 1e-12)
    err = runs.mean(axis=0) - x
    assert np.abs(err).mean() < 0.25 * np.abs(near - x).mean() + 1e-3


def test_bad_scheme_options():
    with pytest.raises(ValueError, match="rounding='up'"):
        B.quantize(np.zeros(32), "mxint4", rounding="up")
    with pytest.raises(ValueError, match="clip='half'"):
        B.quantize(np.zeros(32), "mxint4", clip="half")
    with pytest.raises(ValueError, match="mx rule needs e8m0fnu"):
        B.BlockScheme("x", F.get("int4f2"), F.get("e4m3fn"), 16, 0, "mx")
    with pytest.raises(ValueError, match="nv rule needs"):
        B.make_scheme("int4", "ue5m3fin", 16)
