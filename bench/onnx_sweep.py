"""A 50-point sweep of mac, intmac and blockdot PEs on an ONNX CNN (issue 21's target).

Run: ``.venv/bin/python bench/onnx_sweep.py [--images 256] [--points 50] [--jobs 2] [--json]``.

The model is :func:`peforge.workloads.onnx_build.digits_cnn` (built with ``onnx.helper``, no
downloads): four 3x3 convolutions (16-32-64-64 channels) and a classifier on the digits scaled
to 3 x 32 x 32, 19.4 M MACs per image.  The sweep runs through :func:`peforge.dse.sweep` like a
user's (local process pool, one target, the float run once per process, im2col batches of 64
images), every MatMul / Gemm / Conv product through the PE's bit-exact golden model.

Printed: the sweep's wall time and the CPU time of its worker processes, MACs and PE MAC per
CPU-second; NumPy's float32 matmul MAC/s on the network's largest im2col product in the same
run and the ratio PE / float32 (per core); and the time projected to ``--target-images`` (256)
on ``--jobs`` otherwise idle cores: the worker CPU time per image times the images divided by
the workers, plus the float run (once).  On a shared machine the wall time includes other
users' load; the CPU-time projection does not.  Target: under 600 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from peforge import dse
from peforge.workloads import onnx_build

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench_onnx_sweep"
TARGET_SECONDS = 600.0

#: 50 design points: minifloat MACs (FP8..FP4, FP32 / BF16 / exact accumulators, 1 and 4
#: lanes), integer MACs and block-dot PEs (MX, NVFP4; FP32 / BF16 accumulators).
PES: list[dict[str, Any]] = [
    {
        "family": "mac",
        "a": ["e5m2", "e4m3fn", "e3m4", "e3m2fn", "e2m3fn", "e2m1fn"],
        "b": ["e5m2", "e4m3fn", "e3m4", "e3m2fn", "e2m3fn", "e2m1fn"],
        "zip": [["a", "b"]],
        "acc": ["fp32", "bf16", "exact"],
    },
    {
        "family": "mac",
        "a": ["e4m3fn", "e2m1fn"],
        "b": ["e4m3fn", "e2m1fn"],
        "zip": [["a", "b"]],
        "acc": "fp32",
        "lanes": [4, 16],
    },
    {
        "family": "intmac",
        "a": ["int8", "int7", "int6", "int5", "int4", "int3", "int2", "int8", "int8", "int6"],
        "b": ["int8", "int7", "int6", "int5", "int4", "int3", "int2", "int4", "int2", "int4"],
        "zip": [["a", "b"]],
    },
    {"family": "intmac", "a": ["int8", "int4"], "b": ["int8", "int4"], "zip": [["a", "b"]], "lanes": [4, 16]},
    {
        "family": "blockdot",
        "element_a": ["e4m3fn", "e5m2", "int8", "e3m2fn", "e2m3fn", "e2m1fn", "e2m1fn"],
        "element_b": ["e4m3fn", "e5m2", "int8", "e3m2fn", "e2m3fn", "e2m1fn", "e2m1fn"],
        "scale_a": ["e8m0fnu"] * 6 + ["e4m3fn"],
        "scale_b": ["e8m0fnu"] * 6 + ["e4m3fn"],
        "block": [32] * 6 + [16],
        "zip": [["element_a", "element_b", "scale_a", "scale_b", "block"]],
        "acc": ["fp32", "bf16"],
    },
]


def _space(points: int, model: Path, inputs: Path, images: int) -> dse.Space:
    space = dse.Space.from_dict(
        {
            "name": "onnx-cnn",
            "targets": ["ice40"],
            "pe": PES,
            "workload": {"cnn32": {"onnx": str(model), "inputs": str(inputs), "limit": images, "batch": 64}},
        }
    )
    pts = space.points()
    if len(pts) < points:
        raise SystemExit(f"--points {points}: the bench space has only {len(pts)}")
    keep = {p.key for p in pts[:points]}
    # keep the first `points` points: one [[pe]] entry per point, pinned by its full spec
    space.pes = [
        {"family": p.spec.family, **{k: v for k, v in p.spec.to_dict().items() if k != "family"}}
        for p in pts
        if p.key in keep
    ]
    return space


def _float32_rate(model: Path, inputs: Path) -> float:
    """NumPy float32 MAC/s on the CNN's largest product (conv 4, 64 images of 8x8x64 patches)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64 * 256, 576)).astype(np.float32)
    w = rng.standard_normal((576, 64)).astype(np.float32)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        x @ w
        best = min(best, time.perf_counter() - t0)
    return x.shape[0] * x.shape[1] * w.shape[1] / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256, help="images per point (measured)")
    ap.add_argument("--target-images", type=int, default=256, help="images of the target (extrapolated)")
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    model, inputs = onnx_build.save_cnn(ROOT / "build" / "workloads" / "onnx")
    build_s = time.perf_counter() - t0
    macs_img = onnx_build.macs_per_image()
    space = _space(args.points, model, inputs, args.images)
    settings = dse.EvalSettings(tuple(space.workloads), space.tensor)
    t0 = time.process_time()
    dse.evaluation.prepare(settings)  # float run, once (inherited by the workers)
    float_s = time.process_time() - t0  # CPU seconds (all BLAS threads)
    shutil.rmtree(OUT, ignore_errors=True)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    summary = dse.sweep(space, OUT, jobs=args.jobs, progress=not args.json, overwrite=True)
    sweep_s = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's workers, joined by now
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    if args.jobs == 1:
        cpu_s = sweep_s
    rows = dse.read_csv(OUT / "results.csv")
    macs = macs_img * args.images * summary.evaluated
    pe_rate = macs / cpu_s  # MAC per CPU-second (one core)
    f32 = _float32_rate(model, inputs)
    projected = (float_s + cpu_s / args.jobs) * args.target_images / args.images
    result = {
        "points": summary.evaluated,
        "errors": summary.errors,
        "images": args.images,
        "jobs": args.jobs,
        "macs_per_image": macs_img,
        "model_build_s": round(build_s, 2),
        "float_run_s": round(float_s, 2),
        "sweep_s": round(sweep_s, 2),
        "worker_cpu_s": round(cpu_s, 2),
        "pe_macs_per_cpu_s": pe_rate,
        "float32_macs_per_s": f32,
        "ratio_pe_vs_float32_per_core": pe_rate / f32,
        "projected_s_for_target_images": round(projected, 1),
        "target_images": args.target_images,
        "target_s": TARGET_SECONDS,
        "met": projected < TARGET_SECONDS,
        "acc_range": [min(r["cnn32_acc"] for r in rows), max(r["cnn32_acc"] for r in rows)],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"ONNX CNN sweep: {summary.evaluated} points x {args.images} images x {macs_img / 1e6:.1f} MMAC "
        f"= {macs / 1e9:.1f} GMAC in {sweep_s:.1f} s wall, {cpu_s:.1f} s worker CPU on {args.jobs} worker(s) "
        f"({summary.errors} errors)"
    )
    print(
        f"  PE golden rate {pe_rate:.3g} MAC per CPU-s; NumPy float32 {f32:.3g} MAC/s (all cores); "
        f"ratio {pe_rate / f32:.2e}"
    )
    print(
        f"  float run (once) {float_s:.1f} CPU-s for {args.images} images; model build {build_s:.1f} s (cached after)"
    )
    print(
        f"  projected for {args.target_images} images on {args.jobs} idle cores: {projected:.0f} s "
        f"(target < {TARGET_SECONDS:.0f} s: "
        f"{'met' if projected < TARGET_SECONDS else f'{projected / TARGET_SECONDS:.1f}x over'})"
    )
    print(f"  top-1 accuracy over the points: {result['acc_range'][0]:.3f} .. {result['acc_range'][1]:.3f}")


if __name__ == "__main__":
    main()
