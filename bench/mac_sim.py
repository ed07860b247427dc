"""Benchmark of the cocotb/Verilator regression (peforge.sim) for e4m3fn x e4m3fn -> fp32.

Prints, with medians over REPEATS runs: checked vectors/s of the batched regression (R PEs
behind one wide port, vectorised golden comparison), of the same PE driven naively (one
await and one assert per vector), golden-model MACs/s, their ratios, and the wall time of
the exhaustive 65,536-pair sweep after the (cached) build.  Run: ``python bench/mac_sim.py``.
"""

from __future__ import annotations

import statistics
import time

from peforge.sim import batch, regression, vectors
from peforge.spec import MinifloatMacSpec

REPEATS = 3
BATCH_VECTORS = 1 << 20
NAIVE_VECTORS = 50_000


def main() -> None:
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
    target = batch.spec_target(spec)
    rows = batch.rows_for(target.iface)
    t0 = time.perf_counter()
    batch.wrapper_build(target, rows)
    naive_build = batch.bare_build(target)
    print(f"{spec.name}: builds ready in {time.perf_counter() - t0:.1f} s (cached after the first run)")

    vs = vectors.random_chains(spec, BATCH_VECTORS, rows=rows, seed=0)
    gold_rates, batch_rates, naive_rates, sweep_s = [], [], [], []
    for rep in range(REPEATS):
        t = time.perf_counter()
        golden = [batch.golden_for(target, vs)]
        gold_rates.append(vs.size / (time.perf_counter() - t))

        t = time.perf_counter()
        golden = [batch.golden_for(target, vs)]
        res = regression.verify_target(target, [vs], name=spec.name, rows=rows, goldens=golden)
        batch_rates.append(res.checked / (time.perf_counter() - t))
        assert res.ok, res.report

        chain = vectors.random_chains(spec, NAIVE_VECTORS, rows=1, max_steps=NAIVE_VECTORS, seed=rep)
        expected = batch.golden_for(target, chain)["acc"][0]
        t = time.perf_counter()
        batch.run_naive(target, chain.a[0], chain.b[0], chain.first[0], expected, bld=naive_build)
        naive_rates.append(NAIVE_VECTORS / (time.perf_counter() - t))

        t = time.perf_counter()
        sweep = [vectors.exhaustive_pairs(spec, rows=rows)]
        res = regression.verify_target(target, sweep, name=spec.name, rows=rows)
        sweep_s.append(time.perf_counter() - t)
        assert res.ok and res.checked == 65536, res.report

    med = statistics.median
    b, n, g = med(batch_rates), med(naive_rates), med(gold_rates)
    print(f"batched regression : {b:12,.0f} checked vectors/s  ({BATCH_VECTORS} vectors incl. golden model, "
          f"{rows} PEs/wrapper)")
    print(f"naive testbench    : {n:12,.0f} checked vectors/s  ({NAIVE_VECTORS} vectors, one await + assert each)")
    print(f"golden model       : {g:12,.0f} MACs/s")
    print(f"ratio batched/naive: {b / n:12.1f} x")
    print(f"ratio golden/batched: {g / b:11.1f} x")
    print(f"exhaustive 65,536-pair sweep after build: {med(sweep_s):.2f} s (median of {REPEATS})")


if __name__ == "__main__":
    main()
