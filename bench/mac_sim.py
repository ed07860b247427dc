"""Benchmark of the cocotb/Verilator regression (peforge.sim), e4m3fn x e4m3fn -> fp32, and of
the same shared path for every family.

Prints, with medians over ``--repeats`` runs, all measured in the same run:

* checked vectors/s of the batched regression (:func:`peforge.sim.regression.verify_sets`: R PEs
  fed from a file of wide words, one simulator process, golden model and checks overlapping
  the simulation) on ``--vectors`` random vectors, wall clock, golden model included, against
  the target of issue 20 (:data:`TARGET`);
* the same PE driven naively (one await and one assert per vector), and the ratio;
* golden-model MACs/s, and the CPU seconds per million vectors of the host (golden model,
  encoding, check) and of the simulator process(es), which depend far less than wall time on
  how loaded the machine is;
* the wall time of the exhaustive 65,536-pair sweep after the (cached) build;
* unless ``--mac-only``: ``peforge.sim.verify`` of every family's first example spec
  (:data:`peforge.families.FAMILIES`) on ``--family-vectors`` vectors.

The load average is printed with the numbers: the machine may be shared.
Run: ``python bench/mac_sim.py [--vectors 1048576] [--repeats 5] [--mac-only]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

from peforge.families import FAMILIES
from peforge.sim import batch, regression, vectors
from peforge.spec import MinifloatMacSpec

NAIVE_VECTORS = 50_000
#: Checked vectors/s the E4M3 -> FP32 MAC's batched regression should reach (issue 20).
TARGET = 500_000


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def mac(n_vectors: int, repeats: int) -> None:
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
    bench = batch.bench_for(spec)
    rows = batch.rows_for(bench.ports)
    t0 = time.perf_counter()
    batch.wrapper_build(bench, rows)
    naive_build = batch.bare_build(bench)
    print(f"{spec.name}: builds ready in {time.perf_counter() - t0:.1f} s (cached after the first run); {_load()}")

    vs = vectors.random_chains(spec, n_vectors, rows=rows, seed=0)
    gold_rates, batch_rates, naive_rates, sweep_s, host_cpu, sim_cpu = [], [], [], [], [], []
    for rep in range(repeats):
        t = time.perf_counter()
        batch.golden_for(bench, vs)
        gold_rates.append(vs.size / (time.perf_counter() - t))

        t, c, k = time.perf_counter(), time.process_time(), _children_cpu()
        res = regression.verify_sets(bench, [vs], name=spec.name, rows=rows)  # golden model included
        batch_rates.append(res.checked / (time.perf_counter() - t))
        host_cpu.append((time.process_time() - c) / res.checked * 1e6)
        sim_cpu.append((_children_cpu() - k) / res.checked * 1e6)
        assert res.ok, res.report

        chain = vectors.random_chains(spec, NAIVE_VECTORS, rows=1, max_steps=NAIVE_VECTORS, seed=rep)
        expected = batch.golden_for(bench, chain)["acc"][0]
        t = time.perf_counter()
        batch.run_naive(bench, chain, expected, bld=naive_build)
        naive_rates.append(NAIVE_VECTORS / (time.perf_counter() - t))

        t = time.perf_counter()
        res = regression.verify_sets(bench, [vectors.exhaustive_pairs(spec, rows=rows)], name=spec.name, rows=rows)
        sweep_s.append(time.perf_counter() - t)
        assert res.ok and res.checked == 65536, res.report

    med = statistics.median
    b, n, g = med(batch_rates), med(naive_rates), med(gold_rates)
    print(
        f"batched regression : {b:12,.0f} checked vectors/s  ({vs.size} vectors incl. golden model, "
        f"{rows} PEs/wrapper; runs {', '.join(f'{x:,.0f}' for x in batch_rates)})"
    )
    print(
        f"target             : {TARGET:12,.0f} checked vectors/s: "
        + ("met" if b >= TARGET else f"missed by {TARGET - b:,.0f} ({b / TARGET:.0%} of it)")
        + " (wall clock: depends on the load below)"
    )
    print(f"naive testbench    : {n:12,.0f} checked vectors/s  ({NAIVE_VECTORS} vectors, one await + assert each)")
    print(f"golden model       : {g:12,.0f} MACs/s")
    print(f"ratio batched/naive: {b / n:12.1f} x")
    h, s = med(host_cpu), med(sim_cpu)
    print(
        f"CPU per 1M vectors : host {h:.2f} s (golden model, encode, check) + simulator {s:.2f} s "
        f"({regression.sim_jobs()} process(es), start-up included) = {h + s:.2f} CPU s, "
        f"{1e6 / (h + s):,.0f} checked vectors per CPU second"
    )
    print(f"exhaustive 65,536-pair sweep after build: {med(sweep_s):.2f} s (median of {repeats}); {_load()}")


def families(n_vectors: int, repeats: int) -> None:
    print(
        f"\nevery family's first example, peforge.sim.verify(spec, vectors={n_vectors}) (sets included), build cached:"
    )
    for fam in FAMILIES:
        spec = fam.examples[0]
        res = regression.verify(spec, vectors=1000)  # build (cached after the first run)
        assert res.ok, res.report
        rates, cpu = [], []
        for rep in range(repeats):
            t, c, k = time.perf_counter(), time.process_time(), _children_cpu()
            res = regression.verify(spec, vectors=n_vectors, seed=rep)
            rates.append(res.checked / (time.perf_counter() - t))
            cpu.append((time.process_time() - c + _children_cpu() - k) / res.checked * 1e6)
            assert res.ok, res.report
        print(
            f"  {fam.name:9s} {statistics.median(rates):10,.0f} checked vectors/s  "
            f"({res.checked} vectors; {statistics.median(cpu):.2f} CPU s per 1M)  {spec.name}"
        )
    print(f"  {_load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", type=int, default=1 << 20)
    ap.add_argument("--family-vectors", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--mac-only", action="store_true")
    args = ap.parse_args()
    mac(args.vectors, args.repeats)
    if not args.mac_only:
        families(args.family_vectors, args.repeats)


if __name__ == "__main__":
    main()
