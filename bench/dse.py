"""Design-space sweep throughput and golden-model GEMM throughput.

Run: ``.venv/bin/python bench/dse.py [--repeats 3] [--json]``.

In one run:

* **sweep rate**: design points per second of :func:`peforge.dse.sweep` over a fixed space
  (mac / intmac / simd points on ``ice40``), once with the analytic cost only (no workloads)
  and once with network accuracy (the digits MLP and CNN on the whole test split, every
  product through the PE's golden model), each with 1 and 2 local workers; the ratio column
  is the 2-worker speed-up over 1 worker (pool start-up included, as a user sees it);
* **GEMM rate**: MACs per second of :func:`peforge.models.golden.matmul` for a few PEs on an
  ``n x k @ k x m`` Gaussian GEMM with the compiled kernels and with the NumPy reference
  (``kernels.disabled()``, timed on the first ``--ref-rows`` rows), against NumPy's float32
  matmul of the same shape (the faster of its default BLAS threads and one thread, see
  ``bench/golden.py``); the ratio is compiled golden / float32, next to issue 21's target
  (0.05 for e4m3fn x e4m3fn -> fp32 with 1 and 16 lanes, int8 MAC and MXFP8 block-dot, 0.01
  for the others).  ``bench/golden.py`` covers every family.

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
from peforge.models.golden import kernels
from peforge.spec import BlockDotSpec, IntMacSpec, MinifloatMacSpec, SimdMacSpec

OUT = Path(__file__).resolve().parent.parent / "build" / "bench_dse"

SPACE = {
    "name": "bench",
    "targets": ["ice40"],
    "pe": [
        {
            "family": "mac",
            "a": ["e4m3fn", "e5m2", "e2m3fn", "e2m1fn"],
            "b": ["e4m3fn", "e5m2", "e2m3fn", "e2m1fn"],
            "zip": [["a", "b"]],
            "acc": ["fp32", "bf16"],
        },
        {"family": "intmac", "a": ["int8", "int4"], "b": ["int8", "int4"], "zip": [["a", "b"]]},
        {"family": "simd", "matmul": {"mode": ["8x8", "4x4"]}},
    ],
}

#: (spec, issue 21 target: compiled golden MAC/s / float32 matmul MAC/s)
GEMM_SPECS = [
    (MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"), 0.05),
    (MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=16), 0.05),
    (IntMacSpec("int8", "int8"), 0.05),
    (BlockDotSpec(), 0.05),
    (MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"), 0.01),
    (MinifloatMacSpec("e2m1fn", "e2m1fn", "bf16", lanes=4), 0.01),
    (SimdMacSpec(8, modes=("4x4", "8x8")), 0.01),
]


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
        rows.append(
            {
                "mode": mode,
                "points": n,
                "points_per_s_1": rate[1],
                "points_per_s_2": rate[2],
                "speedup_2_vs_1": rate[2] / rate[1],
            }
        )
    return rows


def gemm_rates(shape: tuple[int, int, int], repeats: int, ref_rows: int) -> list[dict[str, Any]]:
    from golden import float32_rates  # bench/golden.py: the float32 baseline, measured the same way

    n, k, m = shape
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((n, k)), rng.standard_normal((k, m))
    xr = x[:ref_rows]
    macs = n * k * m
    f32 = float32_rates(shape, repeats)
    ref = max(f32.values())
    rows = []
    for spec, target in GEMM_SPECS:
        golden.matmul(spec, x, w)  # compile / load the kernel outside the timing
        rate = macs / _median_time(lambda: golden.matmul(spec, x, w), repeats)
        with kernels.disabled():
            rate_ref = ref_rows * k * m / _median_time(lambda: golden.matmul(spec, xr, w), max(1, repeats // 2))
        rows.append(
            {
                "pe": spec.name,
                "shape": list(shape),
                "golden_macs_per_s": rate,
                "reference_macs_per_s": rate_ref,
                "numpy_f32_macs_per_s": ref,
                "numpy_f32_default_threads": f32["default_threads"],
                "numpy_f32_one_thread": f32["one_thread"],
                "ratio_golden_vs_numpy": rate / ref,
                "target": target,
                "met": rate / ref >= target,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 256, 256), metavar=("N", "K", "M"))
    ap.add_argument("--ref-rows", type=int, default=16, help="rows of x the NumPy reference is timed on")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sweeps = sweep_rates(args.repeats)
    gemms = gemm_rates(tuple(args.shape), args.repeats, min(args.ref_rows, args.shape[0]))
    if args.json:
        print(json.dumps({"sweep": sweeps, "gemm": gemms}, indent=2))
        return
    print(f"sweep rate (design points/s, median of {args.repeats}; ratio = 2 workers / 1 worker)")
    print(f"  {'mode':28s} {'points':>6s} {'1 worker':>10s} {'2 workers':>10s} {'ratio':>7s}")
    for r in sweeps:
        print(
            f"  {r['mode']:28s} {r['points']:6d} {r['points_per_s_1']:10.2f} {r['points_per_s_2']:10.2f} "
            f"{r['speedup_2_vs_1']:7.2f}"
        )
    n, k, m = args.shape
    print(
        f"\ngolden GEMM {n}x{k} @ {k}x{m} (MAC/s, median; ratio = compiled golden / NumPy float32 matmul, "
        f"the faster of {gemms[0]['numpy_f32_default_threads']:.2e} default threads and "
        f"{gemms[0]['numpy_f32_one_thread']:.2e} one thread)"
    )
    print(f"  {'PE':42s} {'reference':>10s} {'compiled':>10s} {'numpy f32':>10s} {'ratio':>8s} {'target':>7s}")
    for r in gemms:
        print(
            f"  {r['pe']:42s} {r['reference_macs_per_s']:10.2e} {r['golden_macs_per_s']:10.2e} "
            f"{r['numpy_f32_macs_per_s']:10.2e} {r['ratio_golden_vs_numpy']:8.4f} {r['target']:6.2f}"
            f"{'' if r['met'] else ' MISSED'}"
        )


if __name__ == "__main__":
    main()
