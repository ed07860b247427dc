"""cocotb regression of the MAC RTL against the golden model, on Verilator (peforge.sim).

CI sample: two exhaustive pair sweeps, random chains over lanes 1/4/16 x fp32/bf16/exact,
one subnormals=False, one stages=2, the corner sets in every run, plus infrastructure tests
(build errors, failing cocotb tests, a deliberately wrong expectation) on an integer MAC.  ``-m slow`` adds the full matrix.  Builds are cached under build/sim and locked
per build directory, so ``pytest -n 2`` is safe.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from regress import verified

from peforge.sim import batch, regression, runner, vectors
from peforge.sim.session import Session
from peforge.spec import IntMacSpec, MinifloatMacSpec

pytestmark = pytest.mark.sim

FORMATS = ["e4m3fn", "e5m2", "e4m3fnuz", "e2m3fn", "e3m2fn", "e2m1fn"]


@pytest.mark.parametrize("a,b", [("e4m3fn", "e4m3fn"), ("e2m1fn", "e3m2fn")])
def test_exhaustive_pairs(a: str, b: str) -> None:
    spec = MinifloatMacSpec(a, b, "fp32")
    res = verified(spec, 4096, exhaustive=True)
    pairs = spec.a.num_codes * spec.b.num_codes
    assert res.sets["exhaustive_first"] >= pairs
    assert res.sets["exhaustive_chain2"] >= 2 * pairs


@pytest.mark.parametrize(
    "kw",
    [
        dict(a="e4m3fn", b="e5m2", acc="bf16", lanes=4, stages=2),
        dict(a="e5m2", b="e4m3fn", acc="exact", lanes=16, stages=1),
        dict(a="e4m3fn", b="e4m3fn", acc="fp32", lanes=16, subnormals=False),
        dict(a="e4m3fn", b="e4m3fn", acc="fp32", stages=5),  # every cut of one lane, operands and codes
        dict(a="e5m2", b="e4m3fn", acc="exact", lanes=4, stages=5, segment=16),  # ... and of a lane tree
    ],
)
def test_random_chains(kw: dict) -> None:
    res = verified(MinifloatMacSpec(**kw), 30_000, seed=1)
    assert res.sets["random_gaps"] > 0  # in_valid bubbles were driven and checked


def test_wrong_expectation_is_reported() -> None:
    """One flipped bit in the golden output must show up as exactly one mismatch."""
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
    bench = batch.bench_for(spec)
    vs = vectors.random_chains(spec, 2048, seed=3)
    goldens = [batch.golden_for(bench, vs)]
    goldens[0]["acc"][5, 7] ^= np.uint64(1 << 3)
    res = regression.verify_sets(bench, [vs], name=spec.name, goldens=goldens, waves_on_failure=False)
    assert res.mismatches >= 1 and not res.ok
    assert "row 5 step 7 (result" in res.report
    assert "expected 0x" in res.report and "a=0x" in res.report


# --- infrastructure on an integer MAC --------------------------------------------------------


def test_intmac_bubbles_and_latency() -> None:
    bench = batch.bench_for(IntMacSpec("uint8", "uint8", acc_bits=32, lanes=2, stages=2))
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (8, 300, 2))
    b = rng.integers(0, 256, (8, 300, 2))
    first = rng.random((8, 300)) < 0.1
    gaps = np.where(rng.random(300) < 0.3, rng.integers(1, 5, 300), 0)
    sets = [vectors.VectorSet("gaps", a, b, first, gaps), vectors.VectorSet("plain", a, b, first)]
    res = regression.verify_sets(bench, sets, name="intmac", rows=4)
    assert res.ok, res.report
    assert res.checked == 2 * 8 * 300
    # a PE that ignored in_valid would be caught: pretend the golden model did the same
    shifted = [batch.golden_for(bench, s) for s in sets]
    shifted[0]["acc"][:, 1:] = shifted[0]["acc"][:, :-1]
    bad = regression.verify_sets(bench, sets, name="intmac", rows=4, goldens=shifted, waves_on_failure=False)
    assert bad.mismatches > 0


def test_failing_cocotb_test_raises() -> None:
    bench = batch.bench_for(IntMacSpec("uint8", "uint8", acc_bits=32))
    a = (np.arange(100) % 256).reshape(1, 100, 1)
    vs = vectors.VectorSet("squares", a, a, np.ones((1, 100), bool))
    expected = (a[0, :, 0] * a[0, :, 0]).astype(np.uint64)
    batch.run_naive(bench, vs, expected)
    expected[50] += 1
    with pytest.raises(runner.SimRunError, match="1 of 1 cocotb tests failed"):
        batch.run_naive(bench, vs, expected)


def test_session_without_chunks_finishes(tmp_path) -> None:
    """A simulator session that is never sent a chunk ends when it is closed (it used to wait
    forever for a command the host had written before the simulator opened its pipe)."""
    bench = batch.bench_for(IntMacSpec("uint8", "uint8", acc_bits=32))
    bld = batch.wrapper_build(bench, 2)
    run_dir = tmp_path / "idle"

    def idle() -> None:
        with Session(bld, run_dir, batch.TB_MODULE):
            pass

    worker = threading.Thread(target=idle, daemon=True)
    worker.start()
    worker.join(timeout=60)
    hung = worker.is_alive()
    if hung:  # release the simulator so it does not outlive the test
        with open(run_dir / "ctl.fifo", "w") as ctl:
            ctl.write("end\n")
        worker.join(timeout=30)
    assert not hung, "a session with no chunk did not finish within 60 s"


def test_build_error_names_tool() -> None:
    with pytest.raises(runner.SimBuildError, match="verilator build of 'bad_design'") as err:
        runner.build("bad_design", {"bad.v": "module bad(input clk); this is not verilog\nendmodule\n"}, "bad")
    assert "syntax error" in str(err.value) or "Error" in str(err.value)


# --- the full matrix (slow) ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("a,b", list(itertools.product(FORMATS, FORMATS)))
def test_exhaustive_matrix(a: str, b: str) -> None:
    verified(MinifloatMacSpec(a, b, "fp32"), 0, exhaustive=True)


@pytest.mark.slow
@pytest.mark.parametrize("lanes,acc", list(itertools.product([1, 4, 16], ["fp32", "bf16", "exact"])))
def test_random_matrix(lanes: int, acc: str) -> None:
    verified(MinifloatMacSpec("e4m3fn", "e5m2", acc, lanes=lanes), 64 * 4096, seed=lanes)
