"""Block-dot PE (family ``blockdot``): spec validation, and the golden model against
independent references -- exact ``Fraction`` arithmetic with ml_dtypes decoding and a
hand-written round-to-nearest-even, and "dequantize with peforge.blockscale, then dot in
float64" wherever float64 is provably exact (checked per row with an error-free TwoSum)."""

from __future__ import annotations

import math
import zlib
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from peforge import blockscale
from peforge import spec as spec_mod
from peforge.models import golden
from peforge.models.golden.blockdot import operand_scheme
from peforge.spec import BlockDotSpec

ML = {
    "e4m3fn": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "e3m2fn": ml_dtypes.float6_e3m2fn,
    "e2m3fn": ml_dtypes.float6_e2m3fn,
    "e2m1fn": ml_dtypes.float4_e2m1fn,
    "e8m0fnu": ml_dtypes.float8_e8m0fnu,
}
NAN, PINF, NINF = "nan", "+inf", "-inf"


# ---- independent reference -------------------------------------------------------------------
def decode(name: str, code: int) -> tuple[object, int]:
    """(Fraction value or 'nan'/'+inf'/'-inf', sign bit) of one code, via ml_dtypes / ints."""
    if name.startswith("int"):  # MXINT-N: N-bit two's complement times 2^-(N-2)
        n = int(name[3:].split("f")[0])
        v = code - (1 << n) if code >= 1 << (n - 1) else code
        return Fraction(v, 1 << (n - 2)) if n >= 2 else Fraction(v), int(v < 0)
    if name == "ue4m3":  # NVFP4's scale without its sign bit: the e4m3fn code of a positive value
        x = float(np.array([code], np.uint8).view(ml_dtypes.float8_e4m3fn)[0])
        return (NAN if math.isnan(x) else Fraction(x)), 0
    if name == "ue5m3":  # no ml_dtypes type: 5-bit exponent (bias 15), 3-bit mantissa, 0xFF NaN
        if code == 0xFF:
            return NAN, 0
        e, m = code >> 3, code & 7
        return (Fraction(m, 8) * Fraction(2) ** -14 if e == 0 else (1 + Fraction(m, 8)) * Fraction(2) ** (e - 15)), 0
    x = float(np.array([code], np.uint8).view(ML[name])[0])
    bits = {"e8m0fnu": 0, "e4m3fn": 8, "e5m2": 8, "e3m2fn": 6, "e2m3fn": 6, "e2m1fn": 4}[name]
    sign = (code >> (bits - 1)) & 1 if bits else 0
    if math.isnan(x):
        return NAN, sign
    if math.isinf(x):
        return (NINF if x < 0 else PINF), sign
    return Fraction(x), sign


def round_fp32(x: Fraction) -> tuple[Fraction | str, bool]:
    """Round-to-nearest-even into FP32 (gradual underflow, overflow to inf); (value, negative)."""
    neg = x < 0
    m = abs(x)
    if m == 0:
        return Fraction(0), neg
    e = m.numerator.bit_length() - m.denominator.bit_length()
    if Fraction(2) ** e > m:
        e -= 1
    ulp = Fraction(2) ** (max(e, -126) - 23)
    q, r = divmod(m, ulp)
    if r * 2 > ulp or (r * 2 == ulp and q % 2 == 1):
        q += 1
    val = q * ulp
    if val >= Fraction(2) ** 128:
        return (NINF if neg else PINF), neg
    return (-val if neg else val), neg


def fp32_bits(v: Fraction | str, neg: bool) -> int:
    if v == NAN:
        return 0x7FC00000
    if v in (PINF, NINF):
        return 0xFF800000 if v == NINF else 0x7F800000
    bits = int(np.array([float(v)], np.float32).view(np.uint32)[0])
    return bits | (0x80000000 if neg else 0)


def ref_block(spec: BlockDotSpec, a, b, sa: int, sb: int) -> tuple[Fraction | str, bool]:
    """Block value V (Fraction or special) and the sign of a zero V, from the rules."""
    ea, eb = spec.element_a.name, spec.element_b.name
    total, infs, nan, all_negzero = Fraction(0), set(), False, True
    for ca, cb in zip(a, b):
        (va, s1), (vb, s2) = decode(ea, int(ca)), decode(eb, int(cb))
        sign = s1 ^ s2
        if NAN in (va, vb):
            nan = True
        elif va in (PINF, NINF) or vb in (PINF, NINF):
            other = vb if va in (PINF, NINF) else va
            if other == 0:
                nan = True
            else:
                infs.add(NINF if sign else PINF)
        else:
            p = va * vb
            total += p
            all_negzero &= p == 0 and sign == 1
    (xa, ta), (xb, tb) = decode(spec.scale_a.name, sa), decode(spec.scale_b.name, sb)
    if nan or len(infs) == 2 or NAN in (xa, xb):
        return NAN, False
    x = xa * xb
    if infs:
        if x == 0:
            return NAN, False
        neg = (infs.pop() == NINF) ^ (x < 0)
        return (NINF if neg else PINF), neg
    v = total * x
    zero_sign = (all_negzero if total == 0 else total < 0) ^ bool(ta) ^ bool(tb)
    return v, (v < 0) if v != 0 else zero_sign


def ref_run(spec: BlockDotSpec, a, b, sa, sb, first) -> list[int]:
    acc: Fraction | str = Fraction(0)
    acc_neg = False
    out = []
    for t in range(len(first)):
        v, v_neg = ref_block(spec, a[t], b[t], int(sa[t]), int(sb[t]))
        terms = [(v, v_neg)] if first[t] else [(acc, acc_neg), (v, v_neg)]
        vals = [x for x, _ in terms]
        if NAN in vals or (PINF in vals and NINF in vals):
            acc, acc_neg = NAN, False
        elif PINF in vals or NINF in vals:
            acc = PINF if PINF in vals else NINF
            acc_neg = acc == NINF
        else:
            s = sum(vals, Fraction(0))
            if s == 0:
                acc, acc_neg = Fraction(0), all(x == 0 and n for x, n in terms)
            else:
                acc, acc_neg = round_fp32(s)
        out.append(fp32_bits(acc, acc_neg))
    return out


# ---- stimulus --------------------------------------------------------------------------------
def codes(fmt, shape, rng, p_special=0.02):
    """Random codes: mostly finite nonzero, some zeros of both signs, a few NaN/inf."""
    n = fmt.num_codes
    out = rng.integers(0, n, shape)
    if hasattr(fmt, "classify"):
        finite = np.nonzero(fmt.classify(np.arange(n)) == 0)[0]
        special = np.nonzero(fmt.classify(np.arange(n)) != 0)[0]
        out = rng.choice(finite, size=shape)
        if special.size:
            hit = rng.random(shape) < p_special
            out[hit] = rng.choice(special, size=int(hit.sum()))
        zero = rng.random(shape) < 0.05
        out[zero] = rng.choice([0, fmt.sign_mask], size=int(zero.sum()))
    return out


def scales(fmt, shape, rng):
    if fmt.name == "e8m0fnu":
        out = rng.integers(100, 150, shape)
        wide = rng.random(shape) < 0.15
        out[wide] = rng.integers(0, 256, int(wide.sum()))  # overflow, underflow, NaN
        return out
    out = rng.integers(0, fmt.num_codes, shape)
    return out


SPECS = [
    BlockDotSpec(),
    BlockDotSpec("e5m2", "e5m2", block=8),
    BlockDotSpec("e4m3fn", "e5m2", block=16),
    BlockDotSpec("e3m2fn", "e2m3fn"),
    BlockDotSpec("e2m1fn", "e2m1fn"),
    BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16),
    BlockDotSpec("int8", "int8"),
    BlockDotSpec("int8", "e4m3fn", "e8m0fnu", "e4m3fn", block=4),
    BlockDotSpec("e5m2", "e5m2", "e4m3fn", "e4m3fn", block=32),
    BlockDotSpec("int4", "int4", "e4m3fn", "e4m3fn", block=16),  # NVINT4
    BlockDotSpec("int4", "int4"),  # MXINT4
    BlockDotSpec("int6", "int6", block=64),  # MXINT6, 64-element blocks
    BlockDotSpec("int2", "int7", "ue5m3", "ue4m3", block=8),
    BlockDotSpec("e2m1fn", "e2m1fn", "ue5m3", "ue5m3", block=16),
    BlockDotSpec("int3", "e4m3fn", "ue4m3", "e8m0fnu", block=4),
    BlockDotSpec("int5", "e5m2", "e8m0fnu", "ue5m3", block=128),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_golden_matches_fraction_reference(spec: BlockDotSpec) -> None:
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
    B, T = 40, 6
    a = codes(spec.element_a, (B, T, spec.block), rng)
    b = codes(spec.element_b, (B, T, spec.block), rng)
    sa, sb = scales(spec.scale_a, (B, T), rng), scales(spec.scale_b, (B, T), rng)
    first = rng.random((B, T)) < 0.3
    first[:, 0] = True
    got = golden.run(spec, a=a, b=b, scale_a=sa, scale_b=sb, first=first)["acc"]
    for r in range(B):
        assert got[r].tolist() == ref_run(spec, a[r], b[r], sa[r], sb[r], first[r]), (spec.name, r)


def _cancel_case(spec: BlockDotSpec, rng) -> tuple[np.ndarray, ...]:
    """Blocks whose products cancel exactly (x, -x lane pairs) plus a tiny residual, and
    chains where a block cancels the accumulator."""
    fmt = spec.element_a
    T = 8
    finite = (
        np.nonzero(fmt.classify(np.arange(fmt.num_codes)) == 0)[0] if hasattr(fmt, "classify") else np.arange(1, 256)
    )
    half = spec.block // 2
    pos = rng.choice(finite, size=(T, half)) & ~(fmt.sign_mask if hasattr(fmt, "sign_mask") else 0)
    neg = pos | (fmt.sign_mask if hasattr(fmt, "sign_mask") else 0)
    if not hasattr(fmt, "sign_mask"):
        neg = -(fmt.to_int(pos)) & 0xFF
    a = np.concatenate([pos, neg], axis=1)
    b = np.full((T, spec.block), spec.element_b.encode(np.array([1.0]))[0], np.int64)
    a[1::2, 0] = 1  # odd blocks: smallest positive residual on top of the cancellation
    one_a = 127 if spec.scale_a.name == "e8m0fnu" else 0x38
    one_b = 127 if spec.scale_b.name == "e8m0fnu" else 0x38
    sa = np.full(T, one_a)
    sb = np.full(T, one_b)
    first = np.zeros(T, bool)
    first[::3] = True
    return a, b, sa, sb, first


@pytest.mark.parametrize("spec", [SPECS[0], SPECS[1], SPECS[4], SPECS[6]], ids=lambda s: s.name)
def test_cancellation_and_zero_signs(spec: BlockDotSpec) -> None:
    rng = np.random.default_rng(7)
    a, b, sa, sb, first = _cancel_case(spec, rng)
    got = golden.run(spec, a=a[None], b=b[None], scale_a=sa[None], scale_b=sb[None], first=first[None])["acc"][0]
    assert got.tolist() == ref_run(spec, a, b, sa, sb, first)
    # every lane a zero with sign 1 (x -0 * +1): -0; one +0 lane makes it +0
    if hasattr(spec.element_a, "sign_mask"):
        a = np.full((2, spec.block), spec.element_a.sign_mask, np.int64)
        a[1, 3] = 0
        b = np.full((2, spec.block), spec.element_b.encode(np.array([1.0]))[0], np.int64)
        got = golden.run(
            spec, a=a[None], b=b[None], scale_a=sa[None, :2], scale_b=sb[None, :2], first=np.ones((1, 2), bool)
        )["acc"][0]
        assert got.tolist() == [0x80000000, 0]


def test_nan_scale_and_named_specials() -> None:
    spec = BlockDotSpec()
    ones = np.full((1, 3, 32), 0x38)  # 1.0
    sa = np.array([[127, 0xFF, 127]])
    first = np.array([[True, False, True]])
    got = golden.run(spec, a=ones, b=ones, scale_a=sa, scale_b=np.full((1, 3), 127), first=first)["acc"][0]
    assert got.tolist() == [np.float32(32).view(np.uint32), 0x7FC00000, np.float32(32).view(np.uint32)]
    # all max: 32 * 448 * 448 * 2^127 * 2^0 overflows to inf; with scale 2^-127 it is exact
    mx = np.full((1, 2, 32), 0x7E)
    got = golden.run(
        spec, a=mx, b=mx, scale_a=np.array([[254, 0]]), scale_b=np.array([[127, 127]]), first=np.array([[True, True]])
    )["acc"][0]
    want = Fraction(32 * 448 * 448) / 2**127
    assert got[0] == 0x7F800000 and got[1] == fp32_bits(*round_fp32(want))


def test_dequantize_then_float64_dot_where_exact() -> None:
    """MX-quantised Gaussian data: golden == float32(float64 dot of dequantised blocks)."""
    rng = np.random.default_rng(3)
    for elem in ("e4m3fn", "e3m2fn", "e2m3fn", "e2m1fn", "int8"):
        spec = BlockDotSpec(elem, elem)
        scheme = operand_scheme(spec.element_a, spec.scale_a, 32)
        x = rng.standard_normal((64, 4 * 32)) * 3.0
        w = rng.standard_normal((64, 4 * 32))
        xc, xs = blockscale.quantize(x, scheme)
        wc, ws = blockscale.quantize(w, scheme)
        xd, wd = blockscale.dequantize(xc, xs, scheme), blockscale.dequantize(wc, ws, scheme)
        blocks = (xd * wd).reshape(64, 4, 32).sum(axis=-1)  # exact: spans < 53 bits
        acc = np.zeros(64)
        exact_rows = np.ones(64, bool)
        want = np.zeros((64, 4), np.uint32)
        for t in range(4):
            s = acc + blocks[:, t]
            bb = s - acc
            err = (acc - (s - bb)) + (blocks[:, t] - bb)  # TwoSum: 0 iff s is exact
            exact_rows &= err == 0
            acc = s.astype(np.float32).astype(np.float64)  # one RNE into fp32
            want[:, t] = acc.astype(np.float32).view(np.uint32)
        got = golden.run(
            spec,
            a=xc.reshape(64, 4, 32),
            b=wc.reshape(64, 4, 32),
            scale_a=xs,
            scale_b=ws,
            first=np.eye(1, 4, dtype=bool).repeat(64, 0),
        )["acc"]
        assert exact_rows.mean() > 0.9, elem
        np.testing.assert_array_equal(got[exact_rows], want[exact_rows], err_msg=elem)


@pytest.mark.parametrize(
    "spec",
    [
        BlockDotSpec(),
        BlockDotSpec("int8", "int8"),
        BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16),
        BlockDotSpec("int4", "int4", "e4m3fn", "e4m3fn", block=16),
        BlockDotSpec("int6", "e2m1fn", "e8m0fnu", "ue5m3", block=32),
    ],
    ids=lambda s: s.name,
)
def test_matmul_equals_dequantized_product(spec: BlockDotSpec) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 70))
    w = rng.standard_normal((70, 9))
    got = golden.matmul(spec, x, w)
    sa_scheme = operand_scheme(spec.element_a, spec.scale_a, spec.block)
    sb_scheme = operand_scheme(spec.element_b, spec.scale_b, spec.block)
    pad = (-70) % spec.block
    xp, wp = np.pad(x, ((0, 0), (0, pad))), np.pad(w, ((0, pad), (0, 0)))
    tx, tw = blockscale.tensor_scale(xp, sa_scheme), blockscale.tensor_scale(wp, sb_scheme)
    if spec.scale_a.name == "e4m3fn" and spec.element_a.name == "e2m1fn":
        assert tx == blockscale.nvfp4_tensor_scale(xp)
    xd = blockscale.dequantize(*blockscale.quantize(xp, sa_scheme, tensor_scale=tx), sa_scheme, tensor_scale=tx)
    wd = blockscale.dequantize(
        *blockscale.quantize(wp, sb_scheme, axis=0, tensor_scale=tw), sb_scheme, axis=0, tensor_scale=tw
    )
    ref = xd @ wd
    tol = 2.0**-22 * (np.abs(xd) @ np.abs(wd)) * (xp.shape[1] // spec.block)
    assert np.all(np.abs(got - ref) <= tol + 1e-300)
    sqnr = 10 * np.log10(((x @ w) ** 2).sum() / ((got - x @ w) ** 2).sum())
    assert np.isfinite(sqnr)


def test_spec_validation_and_json_round_trip() -> None:
    s = BlockDotSpec("int8", "mxint8", lanes=8)
    assert s.element_a.name == "int8f6" and s.beats == 4 and s.latency == 1
    assert spec_mod.from_json(s.to_json()) == s and hash(s) == hash(spec_mod.from_json(s.to_json()))
    nv = BlockDotSpec("int4", "mxint4", "ue5m3", "ue4m3", block=128, lanes=16)
    assert (nv.element_a.name, nv.element_b.name, nv.scale_a.bits, nv.scale_b.bits) == ("int4f2", "int4f2", 8, 7)
    assert spec_mod.from_json(nv.to_json()) == nv
    assert spec_mod.families()["blockdot"] is BlockDotSpec
    for kw, words in [
        (dict(element_a="e4m3"), ("element_a='e4m3'", "e4m3fn")),
        (dict(scale_b="e5m2"), ("scale_b='e5m2'", "e8m0fnu")),
        (dict(lanes=3), ("lanes=3", "divide block=32")),
        (dict(block=300), ("block=300", "1..256")),
        (dict(element_a="int9"), ("element_a='int9'", "int8")),
        (dict(element_a="uint4"), ("element_a='uint4'",)),
        (dict(scale_a="ue5m3fin"), ("scale_a='ue5m3fin'", "ue5m3")),
        (dict(acc="e2m1fn"), ("acc=",)),
        (dict(stages=10), ("stages=10", "0..9")),
    ]:
        with pytest.raises(ValueError) as err:
            BlockDotSpec(**kw)
        assert all(w in str(err.value) for w in words), err.value


def test_bad_inputs_raise_value_errors() -> None:
    spec = BlockDotSpec(block=4)
    ok = dict(
        a=np.zeros((1, 2, 4), int),
        b=np.zeros((1, 2, 4), int),
        scale_a=np.zeros((1, 2), int),
        scale_b=np.zeros((1, 2), int),
        first=np.ones((1, 2), bool),
    )
    with pytest.raises(ValueError, match="a must have shape"):
        golden.run(spec, **(ok | {"a": np.zeros((1, 2, 5), int)}))
    with pytest.raises(ValueError, match="scale_b: code 256"):
        golden.run(spec, **(ok | {"scale_b": np.full((1, 2), 256)}))
    with pytest.raises(ValueError, match="clip='half'"):
        golden.matmul(BlockDotSpec(scale_a="e4m3fn"), np.ones((2, 32)), np.ones((32, 2)), clip="half")
    with pytest.raises(ValueError, match="rounding='up'"):
        golden.matmul(BlockDotSpec(), np.ones((2, 32)), np.ones((32, 2)), rounding="up")


@pytest.mark.parametrize(
    "spec",
    [
        BlockDotSpec("int4", "int4", "e4m3fn", "e4m3fn", block=16),
        BlockDotSpec("int2", "int7", "ue5m3", "ue4m3", block=8),
        BlockDotSpec("int5", "e5m2", "e8m0fnu", "ue5m3", block=128),
    ],
    ids=lambda s: s.name,
)
def test_compiled_kernel_equals_numpy_model_on_the_new_formats(spec: BlockDotSpec) -> None:
    """INT elements and unsigned scales through the compiled golden kernel: bit for bit the
    NumPy block-step model (which the Fraction reference above checks)."""
    from peforge.models.golden import kernels

    rng = np.random.default_rng(4)
    x, w = rng.standard_t(3, (12, 256)), rng.standard_normal((256, 6))
    x[:, 9] *= 60
    fast = golden.matmul(spec, x, w, clip="symmetric", rotation="random-hadamard", rotation_block=32)
    with kernels.disabled():
        slow = golden.matmul(spec, x, w, clip="symmetric", rotation="random-hadamard", rotation_block=32)
    np.testing.assert_array_equal(fast, slow)
