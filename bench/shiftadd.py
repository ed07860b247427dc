"""Area of the shift-add PEs against integer multiplier MACs (Yosys generic gates, iCE40 LUTs).

Run: ``.venv/bin/python bench/shiftadd.py [--jobs 2] [--acc-bits 32] [--json]``.

In one run, Yosys synthesises (through :func:`peforge.fpga.synthesize`, cached under
``build/fpga-cache``) one-lane, unpipelined PEs with an int8 activation and the same
``--acc-bits`` wrapping accumulator:

* shift-add (:class:`~peforge.spec.ShiftAddSpec`): PoT weights ``pot4`` (15 values, like
  INT4's 16) and ``pot5``; APoT ``apot5`` and ``apot7``; the unrolled shift-add INT
  multiplier (``shiftadd-int``) and the bit-serial one (``bitserial``, one input every K
  cycles) for int4 and int8 weights; and ``pot4`` with per-group-of-32 FP16 dequantisation
  into an FP32 accumulator (the group path's fixed cost);
* the baselines: :class:`~peforge.spec.IntMacSpec` int8 x int4 and int8 x int8 (``*``
  multipliers: Yosys' own multiplier mapping).

Areas: ``generic`` = Yosys gates after ``abc`` (flip-flops excluded) and NAND2 equivalents
(FFs included); ``ice40`` = SB_LUT4 (+ SB_CARRY, SB_DFF*), no DSPs.  Printed ratios: each PE's
area over the INT8 x INT4 and the INT8 x INT8 MAC, and "area x cycles per input" over the
same baselines (the bit-serial PE takes K cycles per input: its area-time cost per MAC).
Area is not energy: the closing note compares these ratios with published energy claims.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from peforge.spec import IntMacSpec, ShiftAddSpec, Spec

__all__ = ["designs", "measure", "report", "main"]

BASELINES = ("int8 x int4 MAC", "int8 x int8 MAC")


def designs(acc_bits: int) -> dict[str, Spec]:
    """Label -> spec of every design in the table (same accumulator width)."""
    sa = {
        "PoT pot4": ("pot4", "pot"),
        "PoT pot5": ("pot5", "pot"),
        "APoT apot5": ("apot5", "apot"),
        "APoT apot7": ("apot7", "apot"),
        "shift-add int4 (unrolled)": ("int4", "shiftadd-int"),
        "shift-add int8 (unrolled)": ("int8", "shiftadd-int"),
        "bit-serial int4": ("int4", "bitserial"),
        "bit-serial int8": ("int8", "bitserial"),
    }
    out: dict[str, Spec] = {k: ShiftAddSpec("int8", w, mode, acc_bits=acc_bits) for k, (w, mode) in sa.items()}
    out["PoT pot4 + group-32 FP16 dequant"] = ShiftAddSpec(
        "int8", "pot4", "pot", acc_bits=acc_bits, group=32, scale="fp16"
    )
    out[BASELINES[0]] = IntMacSpec("int8", "int4", acc_bits=acc_bits)
    out[BASELINES[1]] = IntMacSpec("int8", "int8", acc_bits=acc_bits)
    return out


def _cycles(spec: Spec) -> int:
    return getattr(spec, "cycles_per_input", 1)


def measure(acc_bits: int = 32, jobs: int = 2) -> dict[str, Any]:
    from peforge import fpga

    specs = designs(acc_bits)
    rows: dict[str, dict[str, Any]] = {k: {"module": s.name, "cycles_per_input": _cycles(s)} for k, s in specs.items()}
    for target in ("generic", "ice40"):
        reps = fpga.synthesize_many(list(specs.values()), target, jobs=jobs, progress=sys.stderr.isatty())
        for key, rep in zip(specs, reps):
            if target == "generic":
                rows[key].update(gates=rep.gates, nand2=round(rep.nand2_eq, 1), ffs=rep.ffs)
            else:
                rows[key].update(luts=rep.luts, carry=rep.carry, ice40_ffs=rep.ffs)
    return {"acc_bits": acc_bits, "rows": rows}


def report(data: dict[str, Any]) -> str:
    rows = data["rows"]
    b4, b8 = rows[BASELINES[0]], rows[BASELINES[1]]
    lines = [
        f"Yosys area, int8 activation, one lane, no pipeline, {data['acc_bits']}-bit accumulator "
        "(generic: gates w/o FFs and NAND2-eq with FFs; ice40: SB_LUT4 / SB_CARRY / FFs)",
        f"{'design':34s} {'cyc':>3s} {'gates':>6s} {'NAND2':>7s} {'LUT4':>5s} {'carry':>5s} {'FF':>4s} | "
        f"{'gates/i4':>8s} {'gates/i8':>8s} {'LUT/i4':>6s} {'LUT/i8':>6s} | "
        f"{'AxT gates/i4':>12s} {'AxT gates/i8':>12s}",
    ]
    for label, r in rows.items():
        c = r["cycles_per_input"]
        lines.append(
            f"{label[:34]:34s} {c:3d} {r['gates']:6d} {r['nand2']:7.1f} {r['luts']:5d} {r['carry']:5d} {r['ffs']:4d} | "
            f"{r['gates'] / b4['gates']:8.2f} {r['gates'] / b8['gates']:8.2f} {r['luts'] / b4['luts']:6.2f} "
            f"{r['luts'] / b8['luts']:6.2f} | {c * r['gates'] / b4['gates']:12.2f} {c * r['gates'] / b8['gates']:12.2f}"
        )
    lines += [
        "",
        "ratios: PE area / baseline MAC area (i4 = int8 x int4 MAC, i8 = int8 x int8 MAC); "
        "AxT = area x cycles per input / baseline (bit-serial pays K cycles per MAC).",
        "Published claims are energy, not area: ShiftAddViT 42.9% energy saving (shift vs multiply), "
        "MixPE 2.6x speedup / 1.4x energy vs conventional mixed-precision PEs.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acc-bits", type=int, default=32, help="accumulator width of every design (default 32)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs (default 2)")
    ap.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    args = ap.parse_args(argv)
    try:
        data = measure(args.acc_bits, args.jobs)
    except Exception as err:  # fpga flow missing or failing: say so
        print(f"bench/shiftadd.py: the Yosys flow (peforge.fpga) is not usable here: {err}", file=sys.stderr)
        return None
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else report(data))
    return data


if __name__ == "__main__":
    main()
