"""cocotb regression on Verilator of the accumulators that pipeline (segmented exact, deferred
rounding) through :func:`peforge.sim.verify`.

CI sample: a deferred-rounding MAC whose window overflows within a chain (every corner set,
cancellation, window overflow, NaN/inf, bubbles, a tampered ``acc_flags`` value that must be
reported), a segmented exact MAC, and a deferred MXFP4 block-dot in 4 beats (window top and
bottom, inexact, cancellation).  ``-m slow`` adds every operand-code pair of E4M3 / E5M2 / E2M1
for both MAC architectures and of MXFP8 / NVFP4 block-dot PEs.
"""

from __future__ import annotations

import numpy as np
import pytest

from peforge.sim import batch, regression
from peforge.sim.accumulators import window_overflow_set
from peforge.spec import BlockDotSpec, MinifloatMacSpec

pytestmark = pytest.mark.sim


def _ok(res) -> None:
    assert res.ok, res.report


def test_deferred_mac_regression() -> None:
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "bf16", stages=1, max_count=16, segment=8, rounding="deferred")
    res = regression.verify(spec, vectors=6000, seed=2)
    _ok(res)
    assert res.sets["acc:window_overflow"] > 0 and res.sets["acc:cancel"] > 0 and res.sets["random_gaps"] > 0
    # the flags are compared: one flipped overflow bit must be reported
    bench = batch.bench_for(spec)
    vs = window_overflow_set(spec)
    assert vs is not None
    goldens = [batch.golden_for(bench, vs)]
    assert goldens[0]["acc_flags"].any()
    goldens[0]["acc_flags"][0, -4] ^= np.uint64(1)
    bad = regression.verify_sets(bench, [vs], name=spec.name, goldens=goldens, waves_on_failure=False)
    assert bad.mismatches == 1 and "acc_flags" in bad.report


def test_segmented_exact_mac_regression() -> None:
    spec = MinifloatMacSpec("e5m2", "e4m3fn", "exact", lanes=2, max_count=64, segment=8, readout_stages=2)
    _ok(regression.verify(spec, vectors=6000, seed=3))


def test_deferred_blockdot_regression() -> None:
    spec = BlockDotSpec("e2m1fn", "e2m1fn", block=16, lanes=4, rounding="deferred", segment=8, stages=1)
    res = regression.verify(spec, vectors=1500, seed=4)
    _ok(res)
    assert res.sets["window:overflow"] > 0 and res.sets["window:lsb"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["e4m3fn", "e5m2", "e2m1fn"])
@pytest.mark.parametrize(
    "kw",
    [
        dict(acc="exact", segment=12),
        dict(acc="fp32", rounding="deferred", segment=12),
        dict(acc="bf16", rounding="deferred", segment=16, stages=2),
    ],
    ids=["exact-seg12", "deferred-fp32", "deferred-bf16"],
)
def test_exhaustive_pairs(fmt: str, kw: dict) -> None:
    spec = MinifloatMacSpec(fmt, fmt, **kw)
    res = regression.verify(spec, vectors=64 * 4096, exhaustive=True, seed=5)
    _ok(res)
    assert res.sets["exhaustive_first"] >= spec.a.num_codes * spec.b.num_codes


@pytest.mark.slow
@pytest.mark.parametrize(
    "kw",
    [
        dict(element_a="e4m3fn", element_b="e4m3fn", block=32, lanes=8, segment=16),
        dict(element_a="e2m1fn", element_b="e2m1fn", scale_a="e4m3fn", scale_b="e4m3fn", block=16, lanes=8, segment=12),
        dict(element_a="e5m2", element_b="int8", block=32, lanes=4, segment=24, stages=3),
    ],
    ids=["mxfp8", "nvfp4", "e5m2-mxint8"],
)
def test_blockdot_exhaustive_pairs(kw: dict) -> None:
    spec = BlockDotSpec(rounding="deferred", **kw)
    _ok(regression.verify(spec, vectors=20_000, exhaustive=True, seed=6))
