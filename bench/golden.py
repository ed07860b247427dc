"""Throughput of ``golden.matmul`` per PE family: compiled kernels vs the NumPy reference.

Run: ``.venv/bin/python bench/golden.py [--shape N K M] [--repeats 5] [--json]``.

In one run, on the same Gaussian ``x [N, K] @ w [K, M]`` (default 256 x 256 x 256):

* **compiled**: MAC/s of :func:`peforge.models.golden.matmul` (quantisation included) with the
  compiled kernels, median of ``--repeats`` after one warm-up call;
* **reference**: the same with the NumPy golden models (``kernels.disabled()``), measured on the
  first ``--ref-rows`` rows only (it is ~1000x slower; MAC/s do not depend on N);
* **float32**: NumPy's float32 matmul of the same shape, twice: with NumPy's default BLAS threads
  and with one BLAS thread (a subprocess with ``OPENBLAS_NUM_THREADS=1``); on a loaded 2-core
  machine either can be the faster.  Ratios use the **faster** of the two (the conservative
  choice: it makes the ratios smaller);
* **cpu**: the compiled rate per CPU-second of all the process's threads against one-thread
  float32 per CPU-second: wall-clock ratios swing with other processes on a shared machine
  (a short BLAS call fits in a time slice, a longer kernel call is preempted), CPU time less;
* **targets** (issue 21, on the wall-clock ratio): e4m3fn x e4m3fn -> fp32 with 1 and 16 lanes, int8 MAC and MXFP8
  block-dot >= 0.05x float32; every other family >= 0.01x;
* **start-up**: the first ``golden.matmul`` call of each kernel in a fresh process, with an
  empty numba cache (compilation) and with the cache the first run wrote (what the CLI and
  tests pay), plus ``import numba``.

Every compiled result is checked bit for bit against the reference rows before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

from peforge.models import golden
from peforge.models.golden import kernels
from peforge.spec import BlockDotSpec, IntMacSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec

#: (label, spec, matmul options, target ratio vs float32)
CASES: list[tuple[str, Any, dict[str, Any], float]] = [
    ("mac e4m3fn x e4m3fn -> fp32, 1 lane", MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"), {}, 0.05),
    ("mac e4m3fn x e4m3fn -> fp32, 16 lanes", MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=16), {}, 0.05),
    ("intmac int8 x int8", IntMacSpec("int8", "int8"), {}, 0.05),
    ("blockdot MXFP8 (e4m3fn, E8M0, k32)", BlockDotSpec(), {}, 0.05),
    ("mac e4m3fn x e4m3fn -> bf16, 1 lane", MinifloatMacSpec("e4m3fn", "e4m3fn", "bf16"), {}, 0.01),
    ("mac e5m2 x e5m2 -> fp16, 4 lanes", MinifloatMacSpec("e5m2", "e5m2", "fp16", lanes=4), {}, 0.01),
    (
        "mac e2m1fn x e2m1fn -> bf16, 4 lanes, FTZ",
        MinifloatMacSpec("e2m1fn", "e2m1fn", "bf16", lanes=4, subnormals=False),
        {},
        0.01,
    ),
    ("mac e4m3fn L-Mul -> fp32, 1 lane", MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", mult="lmul"), {}, 0.01),
    ("mac e4m3fn -> exact (Kulisch 49 b)", MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"), {}, 0.01),
    ("mac e5m2 -> exact (Kulisch 79 b)", MinifloatMacSpec("e5m2", "e5m2", "exact"), {}, 0.01),
    ("intmac int8 x int8, acc 20 b saturating", IntMacSpec("int8", "int8", acc_bits=20, overflow="saturate"), {}, 0.01),
    ("simd8 mode 4x4", SimdMacSpec(8), {"mode": "4x4"}, 0.01),
    ("lut int8 x int4, group 4", LutSpec("int8", 4, group=4), {}, 0.01),
    ("shiftadd pot int8 x pot4", ShiftAddSpec("int8", "pot4", "pot"), {}, 0.01),
    (
        "shiftadd int8 x int4, group 32 fp16",
        ShiftAddSpec("int8", "int4", "shiftadd-int", group=32, scale="fp16"),
        {},
        0.01,
    ),
    ("blockdot NVFP4 (e2m1fn, E4M3, k16)", BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16), {}, 0.01),
    ("blockdot MXINT8 (k32)", BlockDotSpec("int8", "int8"), {}, 0.01),
    ("blockdot MXFP8 e5m2 (k32)", BlockDotSpec("e5m2", "e5m2"), {}, 0.01),
]


def _median_time(fn: Callable[[], Any], repeats: int, clock: Callable[[], float] = time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


_F32_SNIPPET = """
import sys, time, statistics, numpy as np
n, k, m, r = map(int, sys.argv[1:5])
rng = np.random.default_rng(0)
x = rng.standard_normal((n, k)).astype(np.float32); w = rng.standard_normal((k, m)).astype(np.float32)
x @ w
ts, cs = [], []
for _ in range(r):
    t, c = time.perf_counter(), time.process_time(); x @ w
    ts.append(time.perf_counter() - t); cs.append(time.process_time() - c)
print(n * k * m / statistics.median(ts), n * k * m / max(statistics.median(cs), 1e-9))
"""


def float32_rates(shape: tuple[int, int, int], repeats: int) -> dict[str, float]:
    """NumPy float32 matmul MAC/s with the default BLAS threads and with one thread."""
    n, k, m = shape
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((n, k)).astype(np.float32), rng.standard_normal((k, m)).astype(np.float32)
    x @ w
    default = n * k * m / _median_time(lambda: x @ w, max(repeats, 11))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _F32_SNIPPET, str(n), str(k), str(m), str(max(repeats, 11))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = (float(v) for v in out.stdout.split())
    return {"default_threads": default, "one_thread": wall, "one_thread_cpu": cpu}


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    na, nb = np.where(np.isnan(a), np.nan, a), np.where(np.isnan(b), np.nan, b)
    return bool(np.array_equal(na.view(np.uint64), nb.view(np.uint64)))


def family_rates(
    shape: tuple[int, int, int], repeats: int, ref_rows: int, f32: float, f32_cpu: float
) -> list[dict[str, Any]]:
    n, k, m = shape
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((n, k)), rng.standard_normal((k, m))
    xr = x[:ref_rows]
    rows = []
    for label, spec, opts, target in CASES:
        fast = golden.matmul(spec, xr, w, **opts)  # compiles / loads, warms up
        with kernels.disabled():
            ref = golden.matmul(spec, xr, w, **opts)
            t_ref = _median_time(lambda: golden.matmul(spec, xr, w, **opts), max(1, repeats // 2))
        if not _same_bits(fast, ref):
            raise SystemExit(f"{label}: compiled result differs from the NumPy reference")
        t_fast = _median_time(lambda: golden.matmul(spec, x, w, **opts), repeats)
        c_fast = _median_time(lambda: golden.matmul(spec, x, w, **opts), repeats, time.process_time)
        rate, rate_ref = n * k * m / t_fast, ref_rows * k * m / t_ref
        rows.append(
            {
                "case": label,
                "pe": spec.name,
                "options": opts,
                "compiled_macs_per_s": rate,
                "reference_macs_per_s": rate_ref,
                "compiled_macs_per_cpu_s": n * k * m / max(c_fast, 1e-9),
                "speedup": rate / rate_ref,
                "ratio_vs_f32": rate / f32,
                "cpu_ratio_vs_f32": n * k * m / max(c_fast, 1e-9) / f32_cpu,
                "target": target,
                "met": rate / f32 >= target,
            }
        )
    return rows


_STARTUP_SNIPPET = """
import sys, time
t0 = time.perf_counter()
import numba
t_numba = time.perf_counter() - t0
import numpy as np
from peforge.models import golden
from peforge.spec import from_json
import json
out = {"import_numba_s": t_numba}
rng = np.random.default_rng(0)
x, w = rng.standard_normal((8, 64)), rng.standard_normal((64, 8))
for name, spec_json, opts in json.loads(sys.argv[1]):
    spec = from_json(spec_json)
    t = time.perf_counter(); golden.matmul(spec, x, w, **opts); out[name] = time.perf_counter() - t
print(json.dumps(out))
"""


def startup_costs() -> dict[str, dict[str, float]]:
    """First-call seconds per case in fresh processes: empty numba cache, then the cache it wrote."""
    cases = json.dumps([(label, spec.to_json(), opts) for label, spec, opts, _ in CASES])
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for mode in ("cold cache", "warm cache"):
            res = subprocess.run(
                [sys.executable, "-c", _STARTUP_SNIPPET, cases], env=env, capture_output=True, text=True, check=True
            )
            out[mode] = json.loads(res.stdout)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 256, 256), metavar=("N", "K", "M"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ref-rows", type=int, default=16, help="rows of x the NumPy reference is timed on")
    ap.add_argument("--no-startup", action="store_true", help="skip the fresh-process start-up timings")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    shape = tuple(args.shape)
    f32 = float32_rates(shape, args.repeats)
    base = max(f32["default_threads"], f32["one_thread"])
    rows = family_rates(shape, args.repeats, min(args.ref_rows, shape[0]), base, f32["one_thread_cpu"])
    startup = {} if args.no_startup else startup_costs()
    if args.json:
        print(json.dumps({"shape": shape, "float32": f32, "families": rows, "startup": startup}, indent=2))
        return
    n, k, m = shape
    print(
        f"golden.matmul {n}x{k} @ {k}x{m}, MAC/s (median of {args.repeats}, load average "
        f"{os.getloadavg()[0]:.1f}); float32 matmul: {f32['default_threads']:.3e} (default threads), "
        f"{f32['one_thread']:.3e} (1 thread); ratios against the faster, {base:.3e}; 'cpu' = the same "
        f"per CPU-second (all threads) against 1-thread float32 per CPU-second ({f32['one_thread_cpu']:.3e}), "
        "which a loaded machine disturbs less"
    )
    print(
        f"  {'case':42s} {'reference':>10s} {'compiled':>10s} {'speed-up':>9s} {'vs f32':>8s} {'cpu':>7s} "
        f"{'target':>7s}"
    )
    for r in rows:
        print(
            f"  {r['case']:42s} {r['reference_macs_per_s']:10.2e} {r['compiled_macs_per_s']:10.2e} "
            f"{r['speedup']:8.0f}x {r['ratio_vs_f32']:8.4f} {r['cpu_ratio_vs_f32']:7.4f} "
            f"{r['target']:6.2f}{'' if r['met'] else ' MISSED'}"
        )
    if startup:
        cold, warm = startup["cold cache"], startup["warm cache"]
        print(
            f"\nfirst call in a fresh process, s (import numba: {cold['import_numba_s']:.2f} / "
            f"{warm['import_numba_s']:.2f}): cold numba cache / warm cache"
        )
        for label, *_ in CASES:
            print(f"  {label:42s} {cold[label]:8.2f} {warm[label]:8.2f}")


if __name__ == "__main__":
    main()
