"""Scaling axis and the instrumented PE matmul, against independent integer / float64 references."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from peforge.models import golden
from peforge.spec import BlockDotSpec, IntMacSpec, MinifloatMacSpec, ShiftAddSpec
from peforge.workloads import digits
from peforge.workloads.base import top1_accuracy
from peforge.workloads.pe import PEMatmul
from peforge.workloads.scaling import parse_scaling, smooth_factors


def _pow2_ceil(amax: float, top: float) -> float:
    """Smallest power of two s with amax / s <= top (by brute force over exponents)."""
    if amax == 0:
        return 1.0
    e = -200
    while amax / 2.0**e > top:
        e += 1
    while e > -200 and amax / 2.0 ** (e - 1) <= top:
        e -= 1
    return 2.0**e


def _mx(amax: float, emax: int) -> float:
    return 1.0 if amax == 0 else 2.0 ** (math.floor(math.log2(amax)) - emax)


def _int8_dot(x: np.ndarray, w: np.ndarray, sx: np.ndarray, sw: np.ndarray) -> np.ndarray:
    """Exact integer dot products of int8-quantised (RNE, saturating) operands, then scaled."""
    qx = np.clip(np.rint(x / sx[:, None]), -128, 127).astype(np.int64)
    qw = np.clip(np.rint(w / sw[None, :]), -128, 127).astype(np.int64)
    ints = np.array(
        [[sum(int(a) * int(b) for a, b in zip(qx[i], qw[:, j])) for j in range(w.shape[1])] for i in range(x.shape[0])],
        dtype=np.float64,
    )
    return ints * sx[:, None] * sw[None, :]


@pytest.fixture
def operands() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 48))
    x[:, [3, 17]] *= 40.0  # outlier channels
    x[2] *= 0.01  # a quiet row
    return x, rng.standard_t(3, (48, 5))


def test_parse_and_canonical_names() -> None:
    assert parse_scaling("pe").granularity == "pe"
    sc = parse_scaling("Block32:MX+smooth0.75")
    assert (sc.granularity, sc.block, sc.kind, sc.smooth, sc.text) == ("block", 32, "mx", 0.75, "block32:mx+smooth0.75")
    assert parse_scaling("channel:pow2").text == "channel"
    assert parse_scaling("channel:float8_e4m3fn").text == "channel:e4m3fn"
    for bad, needle in (
        ("rows", "expected GRANULARITY"),
        ("pe:mx", "'pe' uses the family's own"),
        ("block0", "out of range"),
        ("tensor:int8", "not a float format"),
        ("channel:e9x", "unknown"),
        ("pe+smooth2", "out of range"),
    ):
        with pytest.raises(ValueError, match=needle):
            parse_scaling(bad)


def test_pe_scaling_is_the_family_matmul(operands) -> None:
    x, w = operands
    for spec in (IntMacSpec("int8", "int8"), MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"), BlockDotSpec()):
        assert np.array_equal(PEMatmul(spec)(x, w), golden.matmul(spec, x, w))


@pytest.mark.parametrize("scaling", ["tensor", "channel", "channel:mx", "block16", "block16:mx"])
def test_int8_scalings_match_exact_integer_reference(operands, scaling) -> None:
    x, w = operands
    got = PEMatmul(IntMacSpec("int8", "int8"), {"scaling": scaling})(x, w)
    sc = parse_scaling(scaling)
    rule = (lambda a: _pow2_ceil(a, 127.0)) if sc.kind == "pow2" else (lambda a: _mx(a, 6))
    if sc.granularity == "block":
        want = np.zeros((x.shape[0], w.shape[1]), np.float32)
        for k0 in range(0, x.shape[1], sc.block):
            xb, wb = x[:, k0 : k0 + sc.block], w[k0 : k0 + sc.block]
            sx = np.array([rule(float(np.abs(r).max())) for r in xb])
            sw = np.array([rule(float(np.abs(c).max())) for c in wb.T])
            want = (want + _int8_dot(xb, wb, sx, sw).astype(np.float32)).astype(np.float32)
        assert np.array_equal(got, want.astype(np.float64))
        return
    if sc.granularity == "tensor":
        sx = np.full(x.shape[0], rule(float(np.abs(x).max())))
        sw = np.full(w.shape[1], rule(float(np.abs(w).max())))
    else:
        sx = np.array([rule(float(np.abs(r).max())) for r in x])
        sw = np.array([rule(float(np.abs(c).max())) for c in w.T])
    assert np.array_equal(got, _int8_dot(x, w, sx, sw))


def test_fp32_scale_puts_amax_on_the_format_max() -> None:
    x = np.array([[3.0, -1.0, 0.5], [0.0, 0.25, -0.125]])
    w = np.eye(3)
    got = PEMatmul(IntMacSpec("int8", "int8"), {"scaling": "channel:fp32"})(x, w)

    def fp32_scale(amax: float) -> float:
        s = np.float32(amax / 127.0)
        if amax / float(s) > 127.0:  # FP32 scale rounded up: nothing saturates
            s = np.nextafter(s, np.float32(np.inf))
        return float(s)

    sw = fp32_scale(1.0)  # every column of the identity
    for i, row in enumerate(x):
        s = fp32_scale(float(np.abs(row).max()))
        want = np.clip(np.rint(row / s), -128, 127) * s * np.rint(1.0 / sw) * sw
        assert np.allclose(got[i], want, rtol=0, atol=1e-12)
        assert np.isclose(np.abs(got[i]).max(), np.abs(row).max(), rtol=1e-6)


def test_e4m3_channel_scaling_with_exact_accumulator(operands) -> None:
    x, w = (a.astype(np.float32).astype(np.float64) for a in operands)
    got = PEMatmul(MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"), {"scaling": "channel"})(x, w)
    sx = np.array([_pow2_ceil(float(np.abs(r).max()), 448.0) for r in x])
    sw = np.array([_pow2_ceil(float(np.abs(c).max()), 448.0) for c in w.T])
    qx = (x / sx[:, None]).astype(np.float32).astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    qw = (w / sw[None, :]).astype(np.float32).astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    want = (qx @ qw) * sx[:, None] * sw[None, :]  # products and 48-term sums are exact in float64
    assert np.array_equal(got, want)


def test_format_scales_follow_the_nvfp4_rule() -> None:
    """e4m3fn block scales: amax / max rounded to nearest E4M3 under a per-tensor FP32 scale."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 32)) * np.repeat([1.0, 30.0], 16)
    w = np.zeros((32, 1))
    w[0, 0] = 1.0
    got = PEMatmul(IntMacSpec("int8", "int8"), {"scaling": "block16:e4m3fn"})(x, w)
    ts = float(np.float32(np.abs(x).max() / (127.0 * 448.0)))
    s0 = float(np.float32(np.abs(x[0, :16]).max() / (127.0 * ts)).astype(ml_dtypes.float8_e4m3fn)) * ts
    want = np.clip(np.rint(x[0, 0] / s0), -128, 127) * s0
    assert got[0, 0] == pytest.approx(want, rel=1e-7)


def test_smoothing_is_exact_power_of_two_migration(operands) -> None:
    x, w = operands
    f = smooth_factors(x, w, 0.5)
    assert np.all(np.log2(f) == np.rint(np.log2(f)))
    assert f[3] >= 4 and f[17] >= 4 and np.median(f) <= 2  # outlier channels are divided down
    assert np.allclose((x / f) @ (w * f[:, None]), x @ w, rtol=1e-12, atol=1e-12)
    spec = IntMacSpec("int8", "int8")
    got = PEMatmul(spec, {"scaling": "channel+smooth"})(x, w)
    assert np.array_equal(got, PEMatmul(spec, {"scaling": "channel"})(x / f, w * f[:, None]))
    ref = x @ w
    err = lambda a: np.linalg.norm(a - ref)  # noqa: E731
    assert err(got) < 0.5 * err(PEMatmul(spec, {"scaling": "channel"})(x, w))


def test_native_families_reject_other_scalings() -> None:
    for spec in (BlockDotSpec(), ShiftAddSpec("int8", "int4", "shiftadd-int", group=8, scale="fp16")):
        with pytest.raises(ValueError, match="natively.*allowed scaling 'pe'"):
            PEMatmul(spec, {"scaling": "channel"})
        PEMatmul(spec, {"scaling": "pe+smooth"})


def test_nonfinite_operands_and_counts() -> None:
    spec = IntMacSpec("int8", "int8")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 8)), rng.standard_normal((8, 3))
    pm = PEMatmul(spec)
    xi = x.copy()
    xi[1, 2] = np.inf
    big = x.copy()
    big[1, 2] = np.abs(np.delete(x.ravel(), 1 * 8 + 2)).max()  # +inf saturates to the tensor's largest
    assert np.array_equal(pm(xi, w), golden.matmul(spec, big, w))
    xn = x.copy()
    xn[2, 0] = np.nan
    wn = w.copy()
    wn[5, 1] = np.nan
    out = pm(xn, wn)
    assert np.isnan(out[2]).all() and np.isnan(out[:, 1]).all() and np.isfinite(np.delete(out[[0, 1, 3]], 1, 1)).all()
    assert pm.counts.outputs == 24 and pm.counts.nan == 6 and pm.counts.overflow == 0
    assert pm.reset().nan_frac == 0.25 and pm.counts.outputs == 0


def test_fp16_accumulator_overflow_is_a_result() -> None:
    """The issue's failing case: e4m3fn x e4m3fn -> fp16 on the MLP (layer 1 sums overflow)."""
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp16")
    net, ds = digits.mlp(), digits.dataset()
    pm = PEMatmul(spec)
    acc = net.accuracy(pm)
    # independent replay with golden.matmul and the satfinite rule written out
    h1 = golden.matmul(spec, ds.x_test, net.layers[0].w)
    h = np.maximum(h1 + net.layers[0].b, 0.0)
    finite = np.isfinite(h)
    h = np.where(np.isinf(h), np.abs(h[finite]).max(), h)
    logits = golden.matmul(spec, h, net.layers[1].w) + net.layers[1].b
    assert acc == top1_accuracy(logits, ds.y_test)
    want_inf = int(np.isinf(h1).sum()) + int(np.isinf(golden.matmul(spec, h, net.layers[1].w)).sum())
    assert pm.counts.overflow == want_inf > 0
    assert pm.counts.outputs == h1.size + logits.size


def test_nan_logits_count_as_wrong() -> None:
    logits = np.array([[0.0, 1.0], [np.nan, 5.0], [2.0, 1.0]])
    assert top1_accuracy(logits, [1, 1, 0]) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "mac, blockdot, scaling",
    [
        (MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"), BlockDotSpec(), "block32:mx"),
        (
            MinifloatMacSpec("e2m1fn", "e2m1fn", "exact"),
            BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", 16),
            "block16:e4m3fn",
        ),
    ],
)
def test_block_scaling_on_a_plain_mac_reproduces_the_blockdot_pe(operands, mac, blockdot, scaling) -> None:
    """MX / NVFP4 block scaling around an exact MAC vs the independently verified block-dot PE:
    the same element codes and scales; the only difference is where the FP32 rounding of each
    block's exact sum happens (once per block in both, on the scaled vs the running sum)."""
    x, w = operands
    got = PEMatmul(mac, {"scaling": scaling})(x, w)
    want = golden.matmul(blockdot, x, w)
    assert np.allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("fam", __import__("peforge.families", fromlist=["FAMILIES"]).FAMILIES, ids=lambda f: f.name)
def test_every_family_declares_its_operand_ranges_or_scales_natively(fam) -> None:
    from peforge.workloads.scaling import operand_ranges

    x = np.random.default_rng(0).standard_normal((3, 16))
    w = np.random.default_rng(1).standard_normal((16, 2))
    for spec in fam.examples:
        if fam.part("operand_ranges") is None:
            with pytest.raises(ValueError, match="natively"):
                operand_ranges(spec)
            continue
        try:
            ra, rb = operand_ranges(spec)
        except ValueError as err:  # a grouped shift-add PE scales its groups natively
            assert "natively" in str(err)
            continue
        assert ra.lo < 0 < ra.hi or ra.lo == 0 < ra.hi
        assert rb.lo < rb.hi
        out = PEMatmul(spec, {"scaling": "channel"})(x, w)
        assert out.shape == (3, 2) and np.isfinite(out).all()
