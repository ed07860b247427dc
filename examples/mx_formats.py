"""Block-scaled formats at equal element bits: MXINT8 vs MXFP8, and MXFP4 vs NVFP4.

Run: ``.venv/bin/python examples/mx_formats.py [--jobs 2] [--lanes 8]``.

Every PE is a ``blockdot`` dot-product unit (FP32 accumulator, ``--lanes`` products per
cycle): MXINT8 and MXFP8 (E4M3, E5M2) with E8M0 scales on blocks of 32, MXFP4 (E2M1, E8M0
scales, blocks of 32) and NVFP4 (E2M1, E4M3 scales, blocks of 16).  Quality: SQNR of GEMMs on
Gaussian, Laplacian and outlier-heavy Student-t data and the digits MLP / CNN accuracy, with
every product through each PE's bit-exact golden model; cost: the analytic model on an ASIC
(45 nm) and an FPGA target.  Prints both comparisons and the conclusion with numbers.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from peforge import dse, formats, spec

OUT = Path(__file__).resolve().parent.parent / "build" / "examples" / "mx_formats"
# name: (element, scale, block)
PES = {
    "MXINT8": ("int8", "e8m0fnu", 32),
    "MXFP8-E4M3": ("e4m3fn", "e8m0fnu", 32),
    "MXFP8-E5M2": ("e5m2", "e8m0fnu", 32),
    "MXFP4": ("e2m1fn", "e8m0fnu", 32),
    "NVFP4": ("e2m1fn", "e4m3fn", 16),
}
PAIRS = [("MXINT8", "MXFP8-E4M3"), ("MXINT8", "MXFP8-E5M2"), ("MXFP4", "NVFP4")]


def space(lanes: int) -> dse.Space:
    cols = list(zip(*PES.values()))
    return dse.Space.from_dict(
        {
            "name": "mx_formats",
            "targets": ["asic45", "ice40"],
            "workloads": ["gaussian", "laplacian", "student_t", "mlp", "cnn"],
            "pe": [
                {
                    "family": "blockdot",
                    "element_a": list(cols[0]),
                    "element_b": list(cols[0]),
                    "scale_a": list(cols[1]),
                    "scale_b": list(cols[1]),
                    "block": list(cols[2]),
                    "lanes": lanes,
                    "zip": [["element_a", "element_b", "scale_a", "scale_b", "block"]],
                }
            ],
        }
    )


def bits_per_element(element: str, scale: str, block: int) -> float:
    return formats.get(element).bits + formats.get(scale).bits / block


def _name(row: dict) -> str:
    d = json.loads(row["spec_json"])
    key = (d["element_a"].replace("int8f6", "int8"), d["scale_a"], d["block"])
    return next(n for n, v in PES.items() if v == key)


def _num(v: object) -> float:
    return float(v) if isinstance(v, (int, float)) else math.nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--lanes", type=int, default=8, help="products per cycle (must divide 16)")
    args = ap.parse_args()
    if "blockdot" not in spec.families():
        raise SystemExit("the blockdot PE family is not available in this build")
    rows = dse.run(space(args.lanes), OUT, jobs=args.jobs)
    by = {(_name(r), r["target"]): r for r in rows}
    for r in rows:
        r["format"] = _name(r)
        r["bits_per_element"] = bits_per_element(*PES[r["format"]])
    cols = [
        "format",
        "bits_per_element",
        "gaussian_sqnr_db",
        "laplacian_sqnr_db",
        "student_t_sqnr_db",
        "mlp_acc",
        "cnn_acc",
        "cost_area_um2",
        "energy_pj_per_mac",
    ]
    dse.print_rows([r for r in rows if r["target"] == "asic45"], cols, "block-scaled PEs (asic45 cost)")
    dse.print_rows(
        [r for r in rows if r["target"] == "ice40"], ["format", "cost_luts", "cost_fmax_mhz"], "the same PEs on ice40"
    )
    print("\nConclusion:")
    for a, b in PAIRS:
        ra, rb = by[(a, "asic45")], by[(b, "asic45")]
        dq = {w: _num(rb[f"{w}_sqnr_db"]) - _num(ra[f"{w}_sqnr_db"]) for w in ("gaussian", "laplacian", "student_t")}
        dacc = _num(rb["accuracy_mean"]) - _num(ra["accuracy_mean"])
        area = _num(rb.get("cost_area_um2")) / _num(ra.get("cost_area_um2"))
        energy = _num(rb.get("energy_pj_per_mac")) / _num(ra.get("energy_pj_per_mac"))
        better = b if sum(dq.values()) > 0 else a
        if math.isnan(area):
            verdict = f"better numerics: {better} (no cost estimate)"
        else:
            cheaper = b if area < 1 else a
            verdict = (
                f"{better} is better on both counts (Pareto-dominates)"
                if better == cheaper
                else f"{better} has the better numerics, {cheaper} the smaller area: a trade-off"
            )
        print(
            f"  {b} vs {a} ({rb['bits_per_element']:.3g} vs {ra['bits_per_element']:.3g} bits/element): SQNR "
            f"{dq['gaussian']:+.1f} / {dq['laplacian']:+.1f} / {dq['student_t']:+.1f} dB (Gaussian / Laplacian / "
            f"Student-t), network accuracy {dacc:+.4f}, area {area:.2f}x, energy/MAC {energy:.2f}x: {verdict}."
        )
    print(f"  Results: {OUT}/results.csv (run `peforge report {OUT}` for plots).")


if __name__ == "__main__":
    main()
