"""Benchmark of the PE-array regression on Verilator (:func:`peforge.sim.array.verify_sets`):
checked GEMMs/s of the shared file-fed batch path against the per-cycle cocotb baseline.

For each array (default: the targets, 8x8 output-stationary arrays of e4m3fn x e4m3fn -> fp32
MACs and of INT8 MACs) and ``--gemms`` random 8x64x8 GEMMs back to back, every output compared
with the golden model, in the same run:

* **batch**: the array behind the shared batch wrapper (:mod:`peforge.sim.wrapper`), its port
  words read from a file by the simulator, outputs recorded into another and checked in one
  vectorised step, the next chunk planned while the simulator runs;
* **naive**: the same plans driven from Python by :mod:`peforge.sim.tb_array` (one write and
  one read per port and cycle), the path the regression used before;

wall clock with the golden model, planning and checks included, builds cached beforehand;
medians of ``--repeats`` runs, and the ratio.  The load average is printed: the machine may be
shared.  Run: ``python bench/array_sim.py [--gemms 1000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from peforge.arrays import ArraySpec
from peforge.sim import array as sim_array
from peforge.spec import IntMacSpec, MinifloatMacSpec

SPECS = (
    ArraySpec(MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"), rows=8, cols=8),
    ArraySpec(IntMacSpec("int8", "int8"), rows=8, cols=8),
)
K = 64


def _load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def _rate(spec: ArraySpec, gemms: int, seed: int, naive: bool) -> tuple[float, float]:
    """(checked GEMMs/s, checked outputs/s) of one regression run."""
    sets = [sim_array.random_set(spec, gemms, K, seed=seed)]
    t = time.perf_counter()
    res = sim_array.verify_sets(spec, sets, waves_on_failure=False, naive=naive)
    wall = time.perf_counter() - t
    assert res.ok and res.checked == gemms * spec.rows * spec.cols, res.report
    return gemms / wall, res.checked / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gemms", type=int, default=1000, help="random 8x64x8 GEMMs per run")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for spec in SPECS:
        t0 = time.perf_counter()
        sim_array.build(spec)
        sim_array.naive_build(spec)
        print(f"{spec.name}: builds ready in {time.perf_counter() - t0:.1f} s (cached after the first run); {_load()}")
        runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for rep in range(args.repeats):
            for naive in (False, True):
                runs[naive].append(_rate(spec, args.gemms, rep, naive))
        med = {naive: [statistics.median(r[i] for r in runs[naive]) for i in (0, 1)] for naive in runs}
        for naive, label in ((False, "batch (file-fed)"), (True, "naive (per cycle)")):
            g, o = med[naive]
            each = ", ".join(f"{r[0]:,.0f}" for r in runs[naive])
            print(f"  {label:18s} {g:10,.0f} checked GEMMs/s  {o:12,.0f} outputs/s  (runs: {each} GEMMs/s)")
        print(f"  ratio batch/naive  {med[False][0] / med[True][0]:10.1f} x  ({args.gemms} GEMMs 8x{K}x8 per run)")
    print(_load())


if __name__ == "__main__":
    main()
