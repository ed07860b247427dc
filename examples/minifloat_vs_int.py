"""Minifloat (FP8 .. FP3) vs integer PEs on FPGA: which is Pareto-optimal in accuracy vs LUTs?

Run: ``.venv/bin/python examples/minifloat_vs_int.py [--jobs 2] [--synth] [--target ice40]``.

Sweeps minifloat MACs (a = b, FP8 down to FP3, with an exact Kulisch accumulator and with an
FP32 accumulator) against integer MACs of the same operand widths (INT8 .. INT3, exact
accumulator), measures the digits MLP / CNN accuracy with every product executed by each
PE's bit-exact golden model, and prices each PE on the FPGA target (analytic cost model, or
real Yosys + nextpnr numbers with ``--synth``).  Prints the Pareto front of accuracy vs LUTs,
the per-width comparison, and the conclusion.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from peforge import dse

FLOATS = {8: ["e4m3fn", "e5m2"], 7: ["e3m3fin"], 6: ["e3m2fn", "e2m3fn"], 5: ["e2m2fin"], 4: ["e2m1fn"], 3: ["e2m0fin"]}
INTS = {b: f"int{b}" for b in range(3, 9)}
OUT = Path(__file__).resolve().parent.parent / "build" / "examples" / "minifloat_vs_int"


def space(target: str) -> dse.Space:
    fps = [f for fs in FLOATS.values() for f in fs]
    ints = list(INTS.values())
    return dse.Space.from_dict(
        {
            "name": "minifloat_vs_int",
            "targets": [target],
            "workloads": ["gaussian", "laplacian", "student_t", "mlp", "cnn"],
            "pe": [
                {"family": "mac", "a": fps, "b": fps, "zip": [["a", "b"]], "acc": ["exact", "fp32"]},
                {"family": "intmac", "a": ints, "b": ints, "zip": [["a", "b"]]},
            ],
        }
    )


def _bits(row: dict) -> int:
    import json

    spec = json.loads(row["spec_json"])
    a = spec["a"]
    return int(a[3:]) if a.startswith("int") else next(b for b, fs in FLOATS.items() if a in fs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--target", default="ice40", help="FPGA cost target (ice40, ecp5, xilinx)")
    ap.add_argument("--synth", action="store_true", help="also run Yosys + nextpnr (cached; slow the first time)")
    args = ap.parse_args()
    rows = dse.run(space(args.target), OUT / args.target, jobs=args.jobs, synth=args.synth)
    luts = "synth_luts" if args.synth else "cost_luts"
    fmax = "synth_fmax_mhz" if args.synth else "cost_fmax_mhz"
    ok = [r for r in rows if isinstance(r.get(luts), (int, float)) and math.isfinite(r[luts])]
    if not ok:
        raise SystemExit(f"no cost numbers on {args.target}: {rows[0].get('error') if rows else 'no rows'}")
    cols = ["label", "accuracy_mean", "mlp_acc", "cnn_acc", "student_t_sqnr_db", luts, fmax]
    front = dse.pareto_rows(ok, [("accuracy_mean", "max"), (luts, "min")])
    dse.print_rows(front, cols, f"Pareto front: accuracy (max) vs {luts} (min) on {args.target}")
    per_width = []
    for b in sorted(FLOATS, reverse=True):
        ints = [r for r in ok if r["family"] == "intmac" and _bits(r) == b]
        fps = [r for r in ok if r["family"] == "mac" and _bits(r) == b]
        best_fp = max(fps, key=lambda r: (r["accuracy_mean"], -r[luts])) if fps else None
        cheap_fp = min(fps, key=lambda r: r[luts]) if fps else None
        for r in (ints[0] if ints else None, best_fp, cheap_fp):
            if r is not None and r not in per_width:
                per_width.append(r)
    dse.print_rows(per_width, cols, "per operand width: INTb, the most accurate FPb, the cheapest FPb")

    on_front = {r["family"] for r in front}
    n_int = sum(r["family"] == "intmac" for r in front)
    n_fp = sum(r["family"] == "mac" for r in front)
    base = dse.baselines(dse.EvalSettings(("mlp", "cnn"))).values()
    target_acc = sum(base) / len(base) - 0.01
    good = [r for r in ok if r["accuracy_mean"] >= target_acc]
    cheapest = min(good, key=lambda r: r[luts]) if good else None
    cheapest_int = min((r for r in good if r["family"] == "intmac"), key=lambda r: r[luts], default=None)
    cheapest_fp = min((r for r in good if r["family"] == "mac"), key=lambda r: r[luts], default=None)
    print(f"\nConclusion ({args.target}, {'Yosys/nextpnr' if args.synth else 'analytic'} cost):")
    print(f"  Pareto front: {n_int} integer and {n_fp} minifloat PEs ({', '.join(sorted(on_front))}).")
    if cheapest is not None:
        print(
            f"  Cheapest PE within 1 point of float32 accuracy ({target_acc:.3f}): {cheapest['label']} "
            f"({cheapest['accuracy_mean']:.4f}, {cheapest[luts]:.0f} LUTs)."
        )
    if cheapest_int is not None and cheapest_fp is not None:
        ratio = cheapest_fp[luts] / cheapest_int[luts]
        print(
            f"  At that accuracy the cheapest integer PE is {cheapest_int['label']} ({cheapest_int[luts]:.0f} LUTs) "
            f"and the cheapest minifloat PE {cheapest_fp['label']} ({cheapest_fp[luts]:.0f} LUTs): "
            f"minifloat / integer = {ratio:.2f}x LUTs."
        )
    fp32_acc = [r for r in ok if r["family"] == "mac" and '"acc": "fp32"' in r["spec_json"]]
    exact_acc = [r for r in ok if r["family"] == "mac" and '"acc": "exact"' in r["spec_json"]]
    if fp32_acc and exact_acc:
        med = sorted(
            a[luts] / e[luts] for a in fp32_acc for e in exact_acc if a["spec"].split("_")[1] == e["spec"].split("_")[1]
        )
        if med:
            print(
                f"  An FP32 accumulator costs {med[len(med) // 2]:.2f}x the LUTs of an exact (Kulisch) one for the "
                f"same minifloat operands (median over widths): the accumulate path, not the multiply, dominates."
            )
    fmaxes = {
        name: sorted(r[fmax] for r in group if isinstance(r.get(fmax), (int, float)))
        for name, group in (
            ("integer", [r for r in ok if r["family"] == "intmac"]),
            ("minifloat, exact acc", exact_acc),
            ("minifloat, fp32 acc", fp32_acc),
        )
    }
    if all(fmaxes.values()):
        print("  Median Fmax: " + ", ".join(f"{k} {v[len(v) // 2]:.1f} MHz" for k, v in fmaxes.items()) + ".")
    print(f"  Results: {OUT / args.target}/results.csv (run `peforge report {OUT / args.target}` for plots).")


if __name__ == "__main__":
    main()
