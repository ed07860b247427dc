"""Compiled golden kernels against the NumPy golden models, bit for bit.

The NumPy models are the reference (each is tested against ``fractions.Fraction`` / Python-int
references in its own test file).  Here every kernel's final accumulators are compared with
the reference's on seeded code sets built to hit the corner cases: every code of the operand
formats (NaN, +-inf, +-0, subnormals, largest finite), rows and columns of zeros of both
signs (the -0 rules), tiny accumulators (overflow, ties and subnormal results on most steps),
block scales that are NaN or zero, integer accumulators that wrap or saturate.  Each test
also asserts that the kernel really ran (it returns None only when it declines a spec).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from peforge.formats import IntFormat
from peforge.models import golden
from peforge.models.golden import kernels
from peforge.models.golden.kernels import _common, _jit, kulisch
from peforge.models.golden.matmul import chain_operands
from peforge.params import param
from peforge.spec import BlockDotSpec, IntMacSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec

N, K, M = 11, 37, 9  # odd sizes: padding of lanes / blocks / groups is exercised


def same_bits(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """float64 arrays equal bit for bit (+0 != -0), every NaN counted as equal."""
    g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert g.shape == w.shape, (what, g.shape, w.shape)
    gb = np.where(np.isnan(g), np.nan, g).view(np.uint64)
    wb = np.where(np.isnan(w), np.nan, w).view(np.uint64)
    bad = np.argwhere(gb != wb)
    if bad.size:
        i, j = bad[0]
        pytest.fail(f"{what}: {len(bad)} outputs differ, first at ({i}, {j}): kernel {g[i, j]!r} reference {w[i, j]!r}")


@functools.lru_cache(maxsize=None)
def _special_codes(fmt) -> np.ndarray:
    """Codes worth over-sampling: zeros, NaN, inf, extremes, subnormals, min normal."""
    if isinstance(fmt, IntFormat):
        return np.array(sorted({0, fmt.num_codes - 1, 1 << (fmt.bits - 1), (1 << (fmt.bits - 1)) - 1, 1}))
    vals = fmt.decode(np.arange(fmt.num_codes))
    fin = np.isfinite(vals)
    mag = np.abs(np.where(fin, vals, 0))
    picks = set(np.flatnonzero(~fin).tolist()) | set(np.flatnonzero(fin & (mag == 0)).tolist())
    for target in (mag[fin].max(), mag[fin & (mag > 0)].min(), fmt.min_normal):
        picks |= set(np.flatnonzero(fin & (mag == target)).tolist())
    return np.array(sorted(picks))


def codes(fmt, rng: np.random.Generator, shape: tuple[int, ...], p_special: float = 0.15) -> np.ndarray:
    """Uniform codes of ``fmt`` with ``p_special`` of them drawn from :func:`_special_codes`."""
    out = rng.integers(0, fmt.num_codes, shape)
    sp = _special_codes(fmt)
    hit = rng.random(shape) < p_special
    out[hit] = rng.choice(sp, hit.sum())
    return out.astype(np.int64)


def zero_lines(xq: np.ndarray, wq: np.ndarray, fmt_a, fmt_b, rng: np.random.Generator) -> None:
    """One row of ``xq`` and one column of ``wq`` of zeros with random signs (in place)."""
    for arr, fmt, axis in ((xq, fmt_a, 0), (wq, fmt_b, 1)):
        vals = fmt.decode(np.arange(fmt.num_codes))
        zeros = np.flatnonzero(vals == 0)
        line = rng.choice(zeros, arr.shape[1 - axis])
        if axis == 0:
            arr[1] = line
        else:
            arr[:, 1] = line


# ---- mac: float accumulators ------------------------------------------------------------------


def ref_mac(spec: MinifloatMacSpec, xq: np.ndarray, wq: np.ndarray, raw: bool = False) -> np.ndarray:
    a, b = chain_operands(xq, wq, spec.lanes)
    first = np.zeros(a.shape[:2], bool)
    first[:, 0] = True
    acc = golden.run(spec, a=a, b=b, first=first)["acc"][:, -1]
    out = acc if raw else golden.value(spec, acc)
    return out.reshape(xq.shape[0], wq.shape[1])


MAC_FLOAT = [
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"),  # float32 axpy path
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", subnormals=False),  # ... with flushing
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=16),
    MinifloatMacSpec("e5m2", "e4m3fn", "bf16"),
    MinifloatMacSpec("e5m2", "e5m2", "fp16", lanes=4),  # 64-bit span: checked sums
    MinifloatMacSpec("e4m3", "e4m3", "e5m2", lanes=2),  # tiny acc: overflow, ties
    MinifloatMacSpec("e2m1fn", "e3m2fn", "e4m3", lanes=3, subnormals=False),
    MinifloatMacSpec("e4m3fn", "e2m1fn", "fp32", lanes=3, mult="lmul"),
    MinifloatMacSpec("e4m3fnuz", "e5m2", "e6m9", lanes=5),  # no -0 / 0x80 NaN, custom acc
    MinifloatMacSpec("fp16", "bf16", "fp32", lanes=8),  # sums often inexact: fallback
]


@pytest.mark.parametrize("spec", MAC_FLOAT, ids=lambda s: s.name)
def test_mac_float_chains_match_reference(spec: MinifloatMacSpec) -> None:
    rng = np.random.default_rng(len(spec.name))
    for p_special in (0.02, 0.3):
        xq, wq = codes(spec.a, rng, (N, K), p_special), codes(spec.b, rng, (K, M), p_special)
        zero_lines(xq, wq, spec.a, spec.b, rng)
        got = kernels.chains(spec, xq, wq, spec.lanes)
        assert got is not None, "the kernel declined a supported spec"
        same_bits(got, ref_mac(spec, xq, wq), f"{spec.name} p_special={p_special}")


def test_mac_ties_overflow_and_zero_signs_fp32() -> None:
    """Hand-made chains: ties to even both ways, overflow to +-inf, inf - inf = NaN, and exact
    cancellations / all-negative-zero chains (fp16 x fp16 products, fp32 accumulator)."""
    spec = MinifloatMacSpec("fp16", "fp16", "fp32")
    f16 = lambda v: int(np.float16(v).view(np.uint16))  # noqa: E731
    one = f16(1.0)
    rows = [
        [f16(2.0**11), f16(2.0**11), one, one],  # 2^24 + 1 + 1: ties stay even
        [f16(2.0**11), f16(2.0**11), f16(3.0), one],  # 2^24 + 3: up to +4; + 1: stays
        [f16(65504.0)] * 4,
        [f16(-0.0)] * 4,  # all -0 products: -0
        [f16(3.0), f16(-3.0), f16(-0.0), f16(-0.0)],  # exact cancellation: +0
        [f16(2.0**-14), f16(-(2.0**-14)), f16(2.0**-24), 0],
    ]
    xq = np.array(rows, np.int64)
    wq = np.stack(
        [
            np.array([f16(2.0**12), f16(2.0**12), one, one]),
            np.array([one, one, f16(-1.0), f16(0.5)]),
            np.array([f16(65504.0)] * 4),
            np.array([f16(-0.0)] * 4),
        ],
        axis=1,
    )
    got = kernels.chains(spec, xq, wq, 1)
    assert got is not None
    same_bits(got, ref_mac(spec, xq, wq), "hand-made fp32 chains")
    assert got[0, 0] == 2.0**24 and got[1, 0] == 2.0**24 + 4  # ties to even
    assert np.signbit(got[3, 0]) and got[3, 0] == 0 and not np.signbit(got[4, 0])


def test_mac_fp16_accumulator_overflows_to_inf() -> None:
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp16", lanes=2)
    big = int(np.float32(448.0).astype(__import__("ml_dtypes").float8_e4m3fn).view(np.uint8))
    xq = np.array([[big, big, big | 0x80, big | 0x80], [big | 0x80, big | 0x80, big, big]], np.int64)
    wq = np.full((4, 3), big, np.int64)
    got = kernels.chains(spec, xq, wq, 2)
    same_bits(got, ref_mac(spec, xq, wq), "fp16 overflow")
    assert got[0, 0] == np.inf and got[1, 0] == -np.inf  # inf is sticky against finite steps


def test_checked_sums_really_fall_back() -> None:
    """e5m2 lane sums that float64 cannot hold exactly (2^31 + 2^-32) must still match."""
    spec = MinifloatMacSpec("e5m2", "e5m2", "fp32", lanes=2)
    big, tiny = 0x7B, 0x01  # 57344 and 2^-16 in e5m2
    xq = np.array([[big, tiny, big, tiny]] * 3, np.int64)
    wq = np.array([[big], [tiny], [big | 0x80], [tiny]], np.int64)
    assert 57344.0**2 + 2.0**-32 == 57344.0**2  # float64 would lose the tiny product
    got = kernels.chains(spec, xq, wq, 2)
    same_bits(got, ref_mac(spec, xq, wq), "checked lane sums")


# ---- mac: exact (Kulisch) accumulators ---------------------------------------------------------

MAC_EXACT = [
    MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"),  # int path, 49 bits
    MinifloatMacSpec("e2m1fn", "e2m1fn", "exact", max_count=2, lanes=2),  # narrow: wraps often
    MinifloatMacSpec("e5m2", "e5m2", "exact", lanes=4),  # digits, 79 bits
    MinifloatMacSpec("e4m3fn", "e2m1fn", "exact", mult="lmul"),  # digits, pair table
    MinifloatMacSpec("e5m2", "e4m3fn", "exact", subnormals=False, max_count=8),
    MinifloatMacSpec("fp16", "bf16", "exact", lanes=3),  # 315 bits
]


@pytest.mark.parametrize("spec", MAC_EXACT, ids=lambda s: s.name)
def test_kulisch_registers_match_reference(spec: MinifloatMacSpec) -> None:
    rng = np.random.default_rng(len(spec.name) + 1)
    xq, wq = codes(spec.a, rng, (N, K)), codes(spec.b, rng, (K, M))
    got = kernels.chains(spec, xq, wq, spec.lanes)
    assert got is not None
    same_bits(got, ref_mac(spec, xq, wq), f"{spec.name} values")
    steps = -(-K // spec.lanes)
    xp = np.zeros((N, steps * spec.lanes), np.int64)
    xp[:, :K] = xq
    wp = np.zeros((steps * spec.lanes, M), np.int64)
    wp[:K] = wq
    raw = kulisch.mac_exact_chains(spec, xp, wp, raw=True)
    want = ref_mac(spec, xq, wq, raw=True)
    assert [int(v) for v in raw.ravel()] == [int(v) for v in want.ravel()]


@pytest.mark.parametrize("path", ["split", "digits"])
def test_kulisch_split_and_digit_paths_for_narrow_registers(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The split and 32-bit digit paths also on registers the integer path would take."""
    monkeypatch.setattr(kulisch, "int_chains", lambda *a, **k: None)
    if path == "digits":
        monkeypatch.setattr(kulisch, "_split_fits", lambda *a: False)
    spec = MinifloatMacSpec("e4m3fn", "e3m2fn", "exact", max_count=4)
    rng = np.random.default_rng(5)
    xq, wq = codes(spec.a, rng, (N, K)), codes(spec.b, rng, (K, M))
    same_bits(kernels.chains(spec, xq, wq, 1), ref_mac(spec, xq, wq), f"{path} path")


# ---- blockdot --------------------------------------------------------------------------------

BLOCKDOT = [
    BlockDotSpec(),  # MXFP8 e4m3, fp32
    BlockDotSpec("e5m2", "e5m2"),  # checked block sums
    BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16),  # NVFP4
    BlockDotSpec("int8", "int8"),  # MXINT8
    BlockDotSpec("e2m3fn", "e3m2fn", block=8, lanes=4, acc="bf16"),
    BlockDotSpec("e4m3fn", "e4m3fn", block=4, acc="e5m2"),  # tiny acc
]


def ref_blockdot(spec: BlockDotSpec, xc, wc, xs, ws) -> np.ndarray:
    n, m, steps = xc.shape[0], wc.shape[1], xs.shape[1]
    a = np.broadcast_to(xc.reshape(n, 1, steps, spec.block), (n, m, steps, spec.block)).reshape(-1, steps, spec.block)
    b = np.broadcast_to(wc.T.reshape(1, m, steps, spec.block), (n, m, steps, spec.block)).reshape(-1, steps, spec.block)
    sa = np.broadcast_to(xs[:, None], (n, m, steps)).reshape(-1, steps)
    sb = np.broadcast_to(ws.T[None], (n, m, steps)).reshape(-1, steps)
    first = np.zeros(sa.shape, bool)
    first[:, 0] = True
    acc = golden.run(spec, a=a, b=b, scale_a=sa, scale_b=sb, first=first)["acc"][:, -1]
    return golden.value(spec, acc).reshape(n, m)


@pytest.mark.parametrize("spec", BLOCKDOT, ids=lambda s: s.name)
def test_blockdot_chains_match_reference(spec: BlockDotSpec) -> None:
    rng = np.random.default_rng(len(spec.name))
    steps = 3
    for p_special in (0.02, 0.3):
        xc = codes(spec.element_a, rng, (N, steps * spec.block), p_special)
        wc = codes(spec.element_b, rng, (steps * spec.block, M), p_special)
        xs = codes(spec.scale_a, rng, (N, steps), p_special)
        ws = codes(spec.scale_b, rng, (steps, M), p_special)
        if p_special < 0.1:  # scales near 1 so that sums meet, overflow and round
            xs = (
                np.where(rng.random(xs.shape) < 0.8, rng.integers(120, 135, xs.shape), xs)
                if spec.scale_a.name == "e8m0fnu"
                else xs
            )
        zero_lines(xc, wc, spec.element_a, spec.element_b, rng)
        got = kernels.chains(spec, xc, wc, xs, ws)
        assert got is not None
        same_bits(got, ref_blockdot(spec, xc, wc, xs, ws), f"{spec.name} p_special={p_special}")


# ---- integer families ---------------------------------------------------------------------------

INTMAC = [
    IntMacSpec("int8", "int8"),
    IntMacSpec("int4", "uint8", lanes=3),
    IntMacSpec("int8", "int8", acc_bits=16),  # wraps
    IntMacSpec("int8", "int8", acc_bits=17, overflow="saturate", lanes=4),
    IntMacSpec("uint16", "int16", lanes=2),  # int64 sums
]


@pytest.mark.parametrize("spec", INTMAC, ids=lambda s: s.name)
def test_intmac_chains_match_reference(spec: IntMacSpec) -> None:
    rng = np.random.default_rng(len(spec.name))
    xq, wq = codes(spec.a, rng, (N, 4 * K), 0.5), codes(spec.b, rng, (4 * K, M), 0.5)
    got = kernels.chains(spec, xq, wq, spec.lanes)
    assert got is not None
    same_bits(got, ref_mac(spec, xq, wq), spec.name)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["8x8", "4x2", "2x2"])
def test_simd_matmul_matches_reference(mode: str) -> None:
    spec = SimdMacSpec(8, acc_bits=18)  # narrow accumulator: wraps
    rng = np.random.default_rng(3)
    for x, w in (
        (rng.standard_normal((N, 3 * K)), rng.standard_normal((3 * K, M))),
        (rng.random((N, 3 * K)), rng.random((3 * K, M))),
    ):  # signed and unsigned
        got = golden.matmul(spec, x, w, mode=mode)
        with kernels.disabled():
            want = golden.matmul(spec, x, w, mode=mode)
        same_bits(got, want, f"simd {mode}")


LUT = [
    LutSpec(),
    LutSpec("e4m3fn", "ternary", group=4, lanes=4),
    LutSpec("int8", 2, group=3, symmetric=False, acc_bits=12),
    LutSpec("e5m2", 1, group=2, acc_bits=36),
]


@pytest.mark.parametrize("spec", LUT, ids=lambda s: s.name)
def test_lut_chains_match_reference(spec: LutSpec) -> None:
    rng = np.random.default_rng(len(spec.name))
    g = spec.group
    xc = codes(spec.act, rng, (N, K), 0.2)
    wc = rng.integers(0, 1 << spec.weight_code_bits, (K, M))
    steps = -(-K // g)
    xp = np.zeros((N, steps * g), np.int64)
    xp[:, :K] = xc
    wp = np.zeros((steps * g, M), np.int64)
    wp[:K] = wc
    one = dataclasses.replace(spec, lanes=1)  # the chain of one column, as golden.run sees it
    a = np.repeat(xp.reshape(N, steps, g), M, axis=0)
    b = np.tile(wp.reshape(steps, g, M).transpose(2, 0, 1), (N, 1, 1)).reshape(N * M, steps, g)
    first = np.zeros((N * M, steps), bool)
    first[:, 0] = True
    acc = golden.run(one, a=a, b=b, first=first)["acc"][:, -1]
    want = golden.value(one, acc).reshape(N, M)
    got = kernels.chains(spec, xc, wc, 0)
    assert got is not None
    same_bits(got, want, spec.name)


SHIFTADD = [
    ShiftAddSpec("int8", "pot4", "pot"),
    ShiftAddSpec("e4m3fn", "apot5", "apot", lanes=4),
    ShiftAddSpec("int8", "int4", "bitserial", acc_bits=14, overflow="saturate", lanes=2),
    ShiftAddSpec("uint8", "int3", "shiftadd-int", acc_bits=12),
    ShiftAddSpec("int8", "int4", "shiftadd-int", group=4, scale="fp16"),
    ShiftAddSpec("e4m3fn", "pot4", "pot", group=3, scale="e8m0fnu", lanes=2),
    ShiftAddSpec("int8", "pot4", "pot", group=2, scale="int8"),
    ShiftAddSpec("uint8", "int2", "bitserial", group=8, scale="bf16", acc_bits=11, overflow="saturate"),
]


@pytest.mark.parametrize("spec", SHIFTADD, ids=lambda s: s.name)
def test_shiftadd_chains_match_reference(spec: ShiftAddSpec) -> None:
    rng = np.random.default_rng(len(spec.name))
    xq = codes(spec.act, rng, (N, K), 0.2)
    wq = rng.integers(0, spec.weight.num_codes, (K, M))
    per = spec.lanes * (spec.group or 1)
    groups = -(-K // per)
    steps = groups * (spec.group or 1)
    gc = codes(spec.scale, rng, (groups, M), 0.3) if spec.group else None
    a, b = chain_operands(xq, wq, spec.lanes, steps)
    first = np.zeros(a.shape[:2], bool)
    first[:, 0] = True
    extra = {}
    if spec.group:
        sc = np.repeat(gc.T, spec.group, axis=1)[:, :steps]
        extra["scale"] = np.broadcast_to(sc[None], (N, M, steps)).reshape(-1, steps)
    want = golden.value(spec, golden.run(spec, a=a, b=b, first=first, **extra)["acc"][:, -1]).reshape(N, M)
    got = kernels.chains(spec, xq, wq, gc)
    assert got is not None
    same_bits(got, want, spec.name)


# ---- matmul level: every family, real data, kernels vs reference --------------------------------

MATMUL_SPECS = [
    (MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"), {}),
    (MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=16), {}),
    (MinifloatMacSpec("e5m2", "e4m3fn", "fp16", lanes=4), {}),  # overflows on these tensors
    (MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"), {}),
    (IntMacSpec("int8", "int8"), {}),
    (SimdMacSpec(8), {"mode": "4x4"}),
    (LutSpec("int8", 2, group=4, lanes=2), {}),
    (ShiftAddSpec("int8", "apot5", "apot", group=8, scale="fp16"), {}),
    (BlockDotSpec(), {}),
    (BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16), {}),
]


@pytest.mark.parametrize("spec,opts", MATMUL_SPECS, ids=lambda s: getattr(s, "name", ""))
def test_matmul_kernels_equal_reference(spec, opts) -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_t(2, (N, 70)) * 40.0  # heavy tails: large sums, fp16 overflow
    w = rng.standard_normal((70, M))
    x[2] = 0.0
    x[3] = -1e-30  # quantises to -0 codes
    got = golden.matmul(spec, x, w, **opts)
    with kernels.disabled():
        want = golden.matmul(spec, x, w, **opts)
    same_bits(got, want, spec.name)


def test_threaded_rows_equal_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_jit, "_MIN_WORK", 0)
    monkeypatch.setenv("PEFORGE_THREADS", "3")
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "bf16", lanes=2)
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((29, 40)), rng.standard_normal((40, 7))
    got = golden.matmul(spec, x, w)
    with kernels.disabled():
        want = golden.matmul(spec, x, w)
    same_bits(got, want, "threaded")


@pytest.mark.parametrize(
    "spec,opts",
    [
        (MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"), {}),
        (MinifloatMacSpec("e5m2", "e5m2", "bf16", lanes=3), {}),
        (MinifloatMacSpec("e5m2", "e5m2", "exact", lanes=2), {}),
        (IntMacSpec("int8", "int4", acc_bits=12, overflow="saturate", lanes=2), {}),
        (LutSpec(), {}),
        (ShiftAddSpec("int8", "int4", "shiftadd-int", group=4, scale="bf16"), {}),
        (BlockDotSpec("e5m2", "e5m2", block=8), {}),
    ],
    ids=lambda s: getattr(s, "name", ""),
)
def test_row_chunks_equal_reference(spec, opts, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large inputs run in row chunks (bounded temporaries); force many small chunks."""
    monkeypatch.setattr(_common, "CHUNK_ELEMS", 50)
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((N, 2 * K)), rng.standard_normal((2 * K, M))
    got = golden.matmul(spec, x, w, **opts)
    with kernels.disabled():
        want = golden.matmul(spec, x, w, **opts)
    same_bits(got, want, "row chunks")


# ---- dispatch ------------------------------------------------------------------------------------


def test_unknown_fields_and_switches_keep_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class MacWithOption(MinifloatMacSpec):  # e.g. a future accumulator option
        rounding: str = param("per_step", "Accumulator rounding.", choices=("per_step", "per_block"))

    xq = np.zeros((2, 3), np.int64)
    wq = np.zeros((3, 2), np.int64)
    assert kernels.chains(MinifloatMacSpec(), xq, wq, 1) is not None
    assert kernels.chains(MacWithOption(), xq, wq, 1) is None  # not in the table
    assert not kernels.known_fields_only(MacWithOption())
    with kernels.disabled():
        assert kernels.chains(MinifloatMacSpec(), xq, wq, 1) is None
    monkeypatch.setenv("PEFORGE_KERNELS", "0")
    assert kernels.chains(MinifloatMacSpec(), xq, wq, 1) is None


def test_threads_env_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEFORGE_THREADS", "two")
    with pytest.raises(ValueError, match="PEFORGE_THREADS='two'"):
        _jit.threads()


# ---- slow: long equivalence sweeps (make test-all) ---------------------------------------------

_OPS = ["e4m3fn", "e5m2", "e2m1fn", "e3m2fn", "e2m3fn", "e4m3fnuz", "e4m3", "fp16", "bf16"]
_ACCS = ["fp32", "bf16", "fp16", "e5m2", "e6m9", "e8m15", "exact"]


def _sweep_specs() -> list[MinifloatMacSpec]:
    out = []
    for ia, a in enumerate(_OPS):
        for b in (_OPS[ia], _OPS[(ia + 3) % len(_OPS)]):
            for acc in _ACCS:
                for lanes, sub, mult in (
                    (1, True, "exact"),
                    (4, False, "exact"),
                    (16, True, "lmul"),
                    (3, True, "exact"),
                ):
                    out.append(MinifloatMacSpec(a, b, acc, lanes=lanes, subnormals=sub, mult=mult))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("spec", _sweep_specs(), ids=lambda s: s.name)
def test_mac_sweep_slow(spec: MinifloatMacSpec) -> None:
    rng = np.random.default_rng(abs(hash(spec.name)) % (1 << 32))
    for p_special in (0.0, 0.05, 0.5):
        xq, wq = codes(spec.a, rng, (16, 100), p_special), codes(spec.b, rng, (100, 12), p_special)
        zero_lines(xq, wq, spec.a, spec.b, rng)
        got = kernels.chains(spec, xq, wq, spec.lanes)
        if got is None:  # declined (outside the float64 range conditions): nothing to compare
            continue
        same_bits(got, ref_mac(spec, xq, wq), f"{spec.name} p_special={p_special}")


def _blockdot_sweep() -> list[BlockDotSpec]:
    out = []
    for ea in ("e4m3fn", "e5m2", "e3m2fn", "e2m3fn", "e2m1fn", "int8"):
        for eb in (ea, "e4m3fn"):
            for scale in ("e8m0fnu", "e4m3fn"):
                for block, lanes, acc in ((32, None, "fp32"), (16, 4, "bf16"), (4, 2, "fp16"), (8, 8, "e5m2")):
                    out.append(BlockDotSpec(ea, eb, scale, scale, block=block, lanes=lanes, acc=acc))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("spec", _blockdot_sweep(), ids=lambda s: s.name)
def test_blockdot_sweep_slow(spec: BlockDotSpec) -> None:
    rng = np.random.default_rng(abs(hash(spec.name)) % (1 << 32))
    steps = 5
    for p_special in (0.0, 0.05, 0.4):
        xc = codes(spec.element_a, rng, (16, steps * spec.block), p_special)
        wc = codes(spec.element_b, rng, (steps * spec.block, 12), p_special)
        xs = codes(spec.scale_a, rng, (16, steps), p_special)
        ws = codes(spec.scale_b, rng, (steps, 12), p_special)
        got = kernels.chains(spec, xc, wc, xs, ws)
        if got is None:
            continue
        same_bits(got, ref_blockdot(spec, xc, wc, xs, ws), f"{spec.name} p_special={p_special}")


def _integer_sweep() -> list:
    out: list = []
    for a, b in (("int8", "int8"), ("uint4", "int8"), ("int16", "int2"), ("uint16", "uint16")):
        for kw in ({}, {"acc_bits": 20}, {"acc_bits": 24, "overflow": "saturate", "lanes": 3}, {"lanes": 16}):
            try:
                out.append(IntMacSpec(a, b, **kw))
            except ValueError:
                pass
    for act in ("int8", "uint4", "e4m3fn", "e2m1fn"):
        for wb in (1, 2, 4, "ternary"):
            out.append(LutSpec(act, wb, group=3, lanes=2, acc_bits=None))
            out.append(LutSpec(act, wb, group=5, symmetric=False, acc_bits=40))
        for weight, mode in (("pot5", "pot"), ("apot7", "apot"), ("int4", "bitserial"), ("uint3", "shiftadd-int")):
            out.append(ShiftAddSpec(act, weight, mode, lanes=2))
            for scale in ("fp16", "bf16", "e8m0fnu", "uint6"):
                out.append(ShiftAddSpec(act, weight, mode, group=5, scale=scale))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("spec", _integer_sweep(), ids=lambda s: s.name)
def test_integer_sweep_slow(spec) -> None:
    rng = np.random.default_rng(abs(hash(spec.name)) % (1 << 32))
    for scale in (1.0, 1e3):
        x = rng.standard_t(3, (16, 100)) * scale
        w = rng.standard_t(3, (100, 12))
        got = golden.matmul(spec, x, w)
        with kernels.disabled():
            want = golden.matmul(spec, x, w)
        same_bits(got, want, spec.name)


def test_jit_without_a_writable_cache_still_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba raises at decoration when no cache directory is usable: compile uncached."""
    import numba

    real = numba.njit

    def njit(*args, **kw):
        if kw.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(*args, **kw)

    monkeypatch.setattr(numba, "njit", njit)

    def add_one(x):
        return x + 1

    assert _jit.jit(add_one)(41) == 42
