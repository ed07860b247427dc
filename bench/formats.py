"""Encode/decode throughput of peforge.formats next to the ml_dtypes cast of the same array.

Run: ``.venv/bin/python bench/formats.py [--n 4194304] [--runs 7]``.  Prints values/s (median of
``--runs`` timed runs after one warm-up) and the ratio peforge / ml_dtypes.  Encode input is a
float64 array, normal with sigma = max / 4 (so a few values saturate); peforge encodes it with
the default (nearest_even, saturate), ml_dtypes casts the same float64 array (through float32).  Decode input is the uint8 codes; ml_dtypes views them as its
dtype and casts to float64.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from peforge import formats

FORMATS = ("e4m3fn", "e5m2", "e2m1fn")


def _rate(fn, n: int, runs: int) -> float:
    fn()  # warm-up (tables, caches)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 22, help="array length (default 4194304)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs, median reported (>= 5)")
    args = ap.parse_args(argv)
    runs = max(args.runs, 5)
    rng = np.random.default_rng(0)
    rows = []
    print(f"n = {args.n}, median of {runs} runs, values/s (M = 1e6)")
    print(f"{'format':8} {'op':7} {'peforge':>10} {'ml_dtypes':>10} {'ratio':>6}")
    for name in FORMATS:
        fmt = formats.get(name)
        dt = fmt.to_ml_dtype()
        x = rng.standard_normal(args.n) * fmt.max / 4
        with np.errstate(all="ignore"):
            codes = x.astype(dt).view(np.uint8)
            for op, ours, theirs in (
                ("encode", lambda: fmt.encode(x), lambda: x.astype(dt)),
                ("decode", lambda: fmt.decode(codes), lambda: codes.view(dt).astype(np.float64)),
            ):
                a, b = _rate(ours, args.n, runs), _rate(theirs, args.n, runs)
                rows.append({"format": name, "op": op, "peforge": a, "ml_dtypes": b, "ratio": a / b})
                print(f"{name:8} {op:7} {a / 1e6:9.1f}M {b / 1e6:9.1f}M {a / b:6.2f}")
    return rows


if __name__ == "__main__":
    main()
