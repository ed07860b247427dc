"""INT vs FP block formats on real block-dot PEs: the crossover of "INT v.s. FP: A Comprehensive
Study of Fine-Grained Low-bit Quantization Formats" (Chen et al., 2025), re-measured.

For MXINT8 vs MXFP8 (E4M3, E5M2), MXINT6 vs MXFP6 (E2M3, E3M2), MXINT4 vs MXFP4 and NVINT4 vs
NVFP4 (plus NVFP4 / NVINT4 with UE5M3 scales), on Gaussian, Student-t (df 3) and
outlier-channel activations, without and with a random Hadamard rotation of block 32:

* ``QSNR x``: the paper's metric, -10 log10(||x - Q(x)||^2 / ||x||^2) of the quantised
  activation tensor (INT elements clipped symmetrically, as the paper does);
* ``GEMM``: the SQNR of ``x @ w`` computed bit-exactly by the block-dot PE's golden model
  (both operands quantised, exact block sums, one FP32 rounding per block step) against float64;
* each PE's cost (8 lanes, FP32 accumulator; cost model): iCE40 LUTs, NAND2 gates and energy
  per MAC at 45 nm, and the activation rotation unit's energy per MAC (a fast Hadamard unit
  shared by the GEMM's ``m`` output columns; weights are rotated offline, for free).

Run: ``python examples/int_vs_fp.py`` (about a minute on 2 cores; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from peforge import blockscale
from peforge.models import cost, golden
from peforge.models.cost.rotation import rotation_cost
from peforge.rotation import rotate_matmul
from peforge.spec import BlockDotSpec
from peforge.workloads.tensors import outlier_channels  # the LLM-like activations of the sweeps


@dataclass(frozen=True)
class Fmt:
    name: str
    bits: int
    kind: str  # "INT" or "FP"
    spec: BlockDotSpec


def formats() -> list[Fmt]:
    def mx(e: str) -> BlockDotSpec:
        return BlockDotSpec(e, e, "e8m0fnu", "e8m0fnu", block=32, lanes=8)

    def nv(e: str, s: str = "e4m3fn") -> BlockDotSpec:
        return BlockDotSpec(e, e, s, s, block=16, lanes=8)

    return [
        Fmt("MXINT8", 8, "INT", mx("int8")),
        Fmt("MXFP8 E4M3", 8, "FP", mx("e4m3fn")),
        Fmt("MXFP8 E5M2", 8, "FP", mx("e5m2")),
        Fmt("MXINT6", 6, "INT", mx("int6")),
        Fmt("MXFP6 E2M3", 6, "FP", mx("e2m3fn")),
        Fmt("MXFP6 E3M2", 6, "FP", mx("e3m2fn")),
        Fmt("MXINT4", 4, "INT", mx("int4")),
        Fmt("MXFP4", 4, "FP", mx("e2m1fn")),
        Fmt("NVINT4", 4, "INT", nv("int4")),
        Fmt("NVFP4", 4, "FP", nv("e2m1fn")),
        Fmt("NVINT4 UE5M3", 4, "INT", nv("int4", "ue5m3")),
        Fmt("NVFP4 UE5M3", 4, "FP", nv("e2m1fn", "ue5m3")),
    ]


#: (INT, FP) pairs the paper compares.
PAIRS = [
    ("MXINT8", "MXFP8 E4M3"),
    ("MXINT8", "MXFP8 E5M2"),
    ("MXINT6", "MXFP6 E2M3"),
    ("MXINT4", "MXFP4"),
    ("NVINT4", "NVFP4"),
    ("NVINT4 UE5M3", "NVFP4 UE5M3"),
]
ROTATIONS = ("none", "random-hadamard")
ROT_BLOCK = 32


def tensors(n: int, k: int, m: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "gaussian": (rng.standard_normal((n, k)), rng.standard_normal((k, m))),
        "student-t": (rng.standard_t(3, (n, k)), rng.standard_t(3, (k, m))),
        "outliers": (outlier_channels((n, k), seed + 1), rng.standard_normal((k, m))),
    }


def crest(x: np.ndarray, block: int = 32) -> float:
    """Median over blocks of ``block`` of max|x| / rms(x) (the paper's crest factor)."""
    b = x.reshape(-1, block)
    rms = np.sqrt((b**2).mean(axis=1))
    return float(np.median(np.abs(b).max(axis=1)[rms > 0] / rms[rms > 0]))


def db(ref: np.ndarray, approx: np.ndarray) -> float:
    return float(10 * np.log10((ref**2).sum() / ((ref - approx) ** 2).sum()))


def qsnr_x(f: Fmt, x: np.ndarray) -> float:
    """QSNR of the activation tensor quantised with the PE's ``a`` operand scheme."""
    s = blockscale.make_scheme(f.spec.element_a, f.spec.scale_a, f.spec.block, clip="symmetric")
    ts = blockscale.tensor_scale(x, s)
    return db(x, blockscale.dequantize(*blockscale.quantize(x, s, tensor_scale=ts), s, tensor_scale=ts))


def measure(n: int, k: int, m: int) -> tuple[dict, dict, dict]:
    data = tensors(n, k, m)
    q: dict[tuple[str, str, str], tuple[float, float]] = {}
    kappa: dict[tuple[str, str], float] = {}
    for tname, (x, w) in data.items():
        for rot in ROTATIONS:
            xr, wr = rotate_matmul(x, w, rot, ROT_BLOCK, seed=1)
            kappa[tname, rot] = crest(xr)
            ref = x @ w
            for f in formats():
                y = golden.matmul(f.spec, xr, wr, clip="symmetric")
                q[f.name, tname, rot] = (qsnr_x(f, xr), db(ref, y))
    costs = {}
    rot = rotation_cost("random-hadamard", ROT_BLOCK, reuse=m)
    for f in formats():
        i40, asic = cost.estimate(f.spec, "ice40"), cost.estimate(f.spec, "asic45")
        costs[f.name] = (i40.luts, asic.gates_nand2, asic.energy_pj_per_mac)
    costs["rotation"] = (rot.luts, rot.gates_nand2, rot.energy_pj_per_mac)
    return q, kappa, costs


def report(q: dict, kappa: dict, costs: dict, n: int, k: int, m: int) -> str:
    tn = list(dict.fromkeys(t for _, t, _ in q))
    lines = [
        f"x [{n}, {k}] @ w [{k}, {m}]; QSNR of x / GEMM SQNR in dB, without | with a random Hadamard "
        f"rotation (block {ROT_BLOCK}); cost: 8-lane PE, FP32 accumulator",
        "",
        "median crest factor of x (block 32): "
        + ", ".join(f"{t} {kappa[t, 'none']:.2f} -> {kappa[t, 'random-hadamard']:.2f}" for t in tn),
        "",
    ]
    head = (
        "| format | "
        + " | ".join(f"{t}: QSNR x | {t}: GEMM" for t in tn)
        + " | iCE40 LUTs | NAND2 gates | pJ/MAC (45 nm) |"
    )
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for f in formats():
        cells = []
        for t in tn:
            a0, g0 = q[f.name, t, "none"]
            a1, g1 = q[f.name, t, "random-hadamard"]
            cells += [f"{a0:.1f} \\| {a1:.1f}", f"{g0:.1f} \\| {g1:.1f}"]
        luts, gates, pj = costs[f.name]
        lines.append(f"| {f.name} | " + " | ".join(cells) + f" | {luts:,.0f} | {gates:,.0f} | {pj:.3f} |")
    rl, rg, rpj = costs["rotation"]
    lines += [
        "",
        f"activation rotation unit (fast Hadamard, block {ROT_BLOCK}, 16-bit inputs, shared by "
        f"m = {m} columns): {rl:,.0f} iCE40 LUTs, {rg:,.0f} NAND2 gates, +{rpj:.4f} pJ per MAC",
        "",
        "INT minus FP (GEMM SQNR, dB; > 0: INT wins) | hardware INT / FP (LUTs, gates, pJ/MAC):",
    ]
    for i, fp in PAIRS:
        diffs = []
        for t in tn:
            d0 = q[i, t, "none"][1] - q[fp, t, "none"][1]
            d1 = q[i, t, "random-hadamard"][1] - q[fp, t, "random-hadamard"][1]
            diffs.append(f"{t} {d0:+.1f} | rot {d1:+.1f}")
        ratio = " / ".join(f"{a / b:.2f}" for a, b in zip(costs[i], costs[fp]))
        lines.append(f"  {i} vs {fp}: " + "; ".join(diffs) + f"  | HW {ratio}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small tensors (a smoke run of a few seconds)")
    args = ap.parse_args(argv)
    n, k, m = (16, 128, 16) if args.quick else (128, 1024, 128)
    t0 = time.perf_counter()
    out = report(*measure(n, k, m), n, k, m)
    print(out)
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return out


if __name__ == "__main__":
    main()
