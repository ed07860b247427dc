"""Design-space sweep throughput and golden-model GEMM throughput.

Run: ``.venv/bin/python bench/dse.py [--repeats 3] [--json]``.

In one run:

* **sweep rate**: design points per second of :func:`peforge.dse.sweep` over a fixed space
  (mac / intmac / simd points on ``ice40``), once with the analytic cost only (no workloads)
  and once with network accuracy (the digits MLP and CNN on the whole test split, every
  product through the PE's golden model), each with 1 and 2 local workers; the ratio column
  is the 2-worker speed-up over 1 worker (pool start-up included, as a user sees it);
* **GEMM rate**: MACs per second of :func:`peforge.models.golden.matmul` for a few PEs on an
  ``n x k @ k x m`` Gaussian GEMM, against NumPy's float32 matmul of the same shape; the
  ratio is golden / NumPy (how much slower bit-exact PE numerics are than float32).

Medians over ``--repeats`` runs.  Networks are trained (or loaded from the cache) before timing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from peforge import dse
from peforge.models import golden
from peforge.spec import IntMacSpec, MinifloatMacSpec, SimdMacSpec

OUT = Path(__file__).resolve().parent.parent / "build" / "bench_dse"

SPACE = {
    "name": "bench",
    "targets": ["ice40"],
    "pe": [
        {"family": "mac", "a": ["e4m3fn", "e5m2", "e2m3fn", "e2m1fn"], "b": ["e4m3fn", "e5m2", "e2m3fn", "e2m1fn"],
         "zip": [["a", "b"]], "acc": ["fp32", "bf16"]},
        {"family": "intmac", "a": ["int8", "int4"], "b": ["int8", "int4"], "zip": [["a", "b"]]},
        {"family": "simd", "matmul": {"mode": ["8x8", "4x4"]}},
    ],
}

GEMM_SPECS = [MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"), MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"),
              MinifloatMacSpec("e2m1fn", "e2m1fn", "bf16", lanes=4), IntMacSpec("int8", "int8"),
              SimdMacSpec(8, modes=("4x4", "8x8"))]


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sweep_rates(repeats: int) -> list[dict[str, Any]]:
    rows = []
    for mode, workloads in (("cost only", []), ("cost + MLP + CNN accuracy", ["mlp", "cnn"])):
        space = dse.Space.from_dict({**SPACE, "workloads": workloads})
        n = len(space.points())
        rate = {}
        for jobs in (1, 2):
            out = OUT / f"{'cost' if not workloads else 'net'}_{jobs}"

            def run() -> None:
                shutil.rmtree(out, ignore_errors=True)
                dse.sweep(space, out, jobs=jobs, progress=False)

            if workloads and jobs == 1:
                run()  # trains / loads the networks once, outside the timing
            rate[jobs] = n / _median_time(run, repeats)
        rows.append({"mode": mode, "points": n, "points_per_s_1": rate[1], "points_per_s_2": rate[2],
                     "speedup_2_vs_1": rate[2] / rate[1]})
    return rows


def gemm_rates(shape: tuple[int, int, int], repeats: int) -> list[dict[str, Any]]:
    n, k, m = shape
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((n, k)), rng.standard_normal((k, m))
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    macs = n * k * m
    ref = macs / _median_time(lambda: x32 @ w32, max(repeats, 5))
    rows = []
    for spec in GEMM_SPECS:
        rate = macs / _median_time(lambda: golden.matmul(spec, x, w), repeats)
        rows.append({"pe": spec.name, "shape": list(shape), "golden_macs_per_s": rate,
                     "numpy_f32_macs_per_s": ref, "ratio_golden_vs_numpy": rate / ref})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 256, 256), metavar=("N", "K", "M"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sweeps = sweep_rates(args.repeats)
    gemms = gemm_rates(tuple(args.shape), args.repeats)
    if args.json:
        print(json.dumps({"sweep": sweeps, "gemm": gemms}, indent=2))
        return
    print(f"sweep rate (design points/s, median of {args.repeats}; ratio = 2 workers / 1 worker)")
    print(f"  {'mode':28s} {'points':>6s} {'1 worker':>10s} {'2 workers':>10s} {'ratio':>7s}")
    for r in sweeps:
        print(f"  {r['mode']:28s} {r['points']:6d} {r['points_per_s_1']:10.2f} {r['points_per_s_2']:10.2f} "
              f"{r['speedup_2_vs_1']:7.2f}")
    n, k, m = args.shape
    print(f"\ngolden GEMM {n}x{k} @ {k}x{m} (MAC/s, median; ratio = golden / NumPy float32 matmul)")
    print(f"  {'PE':42s} {'golden':>12s} {'numpy f32':>12s} {'ratio':>10s}")
    for r in gemms:
        print(f"  {r['pe']:42s} {r['golden_macs_per_s']:12.3e} {r['numpy_f32_macs_per_s']:12.3e} "
              f"{r['ratio_golden_vs_numpy']:10.2e}")


if __name__ == "__main__":
    main()
