"""cocotb regression of the SIMD PE's Verilog on Verilator against the golden model
(the shared testbench, the vector sets of :mod:`peforge.sim.families`).

CI sample (two Verilator builds): base 8 bricks, every mode x every signedness with all
65,536 (a[7:0], b[7:0]) pairs, random mode/signedness switching every cycle with bubbles, and
4096-step accumulations of extreme lanes; base 8 sub4 with 2 pipeline stages, random sets.
``-m slow`` adds base 16 for both archs, exhaustive sub4, and a wrapping narrow accumulator.
"""

from __future__ import annotations

import numpy as np
import pytest
from regress import verified

from peforge.sim import batch, families, regression
from peforge.spec import SimdMacSpec

pytestmark = pytest.mark.sim


def test_base8_bricks_exhaustive_every_mode_and_signedness() -> None:
    spec = SimdMacSpec()
    res = verified(spec, 40_000, exhaustive=True)
    for mode in spec.modes:
        for signs in ("uu", "us", "su", "ss"):
            assert res.sets[f"exhaustive:{mode}:{signs}"] >= 65_536
    assert res.sets["random"] > 0 and res.sets["random_gaps"] > 0 and res.sets["long"] >= 64 * 4096


def test_base8_sub4_pipelined_random() -> None:
    verified(SimdMacSpec(arch="sub4", stages=2), 40_000, seed=1)


def test_random_set_switches_mode_and_signedness_every_cycle() -> None:
    spec = SimdMacSpec()
    vs = families.simd_random(spec, 20_000, rows=64, seed=5)
    ctrl = vs.ports
    changes = (np.diff(ctrl["mode"], axis=1) != 0).mean()
    assert changes > 0.7  # 4/5 expected for 5 modes
    assert set(np.unique(ctrl["mode"])) == set(range(5))
    assert 0.4 < ctrl["a_signed"].mean() < 0.6 and 0.4 < ctrl["b_signed"].mean() < 0.6


def test_wrong_expectation_is_reported() -> None:
    """One flipped bit in the golden output must show up as a mismatch (the check is live)."""
    spec = SimdMacSpec()
    bench = batch.bench_for(spec)
    vs = families.simd_random(spec, 4096, rows=64, seed=3)
    goldens = [batch.golden_for(bench, vs)]
    goldens[0]["acc"][5, 7] ^= np.uint64(1 << 2)
    res = regression.verify_sets(bench, [vs], name=spec.name, goldens=goldens, waves_on_failure=False)
    assert not res.ok and "row 5 step 7 (result" in res.report


@pytest.mark.slow
@pytest.mark.parametrize(
    "kw",
    [
        dict(arch="sub4", stages=2),
        dict(base=16, stages=1),
        dict(base=16, arch="sub4", stages=3),
        dict(modes=("8x8", "2x2", "8x2", "2x8"), acc_bits=18),  # wraps in long accumulations
        dict(base=16, modes=("16x2", "2x2", "8x16"), stages=4),
    ],
    ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()),
)
def test_slow_matrix(kw: dict) -> None:
    verified(SimdMacSpec(**kw), 200_000, exhaustive=True, seed=2)
