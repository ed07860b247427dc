"""Area and throughput of the mixed-precision SIMD PE against integer MAC baselines.

Run: ``.venv/bin/python bench/simd.py [--base 8] [--jobs 2] [--json]``.

In one run, Yosys synthesises (through :func:`peforge.fpga.synthesize`, cached):

* the SIMD PE in both architectures: ``bricks`` with the base's default modes, ``bricks``
  restricted to the modes ``sub4`` supports (same function as ``sub4``), and ``sub4``;
* a fixed ``base``-bit x ``base``-bit signed integer MAC (:class:`~peforge.spec.IntMacSpec`);
* one dedicated signed integer MAC per mode (``lanes`` multipliers of ``A`` x ``B`` bits).

Every design has the same accumulator width (the SIMD PE's derived width, wrapping) and no
pipeline stages, so only the datapath differs.  The baselines are signed-only while the SIMD
PE also does unsigned and mixed signedness at run time.

Areas: ``generic`` = Yosys gates (AND/OR/XOR/MUX... after ``abc``, flip-flops excluded) and
NAND2 equivalents (FFs included); ``ice40`` = SB_LUT4 (+ SB_CARRY, SB_DFF), no DSPs.
Printed ratios: area overhead of each SIMD PE against the fixed MAC and against the sum of
the per-mode MACs, MACs per cycle per mode, and throughput per area (MACs/cycle/area)
relative to the fixed MAC and to the dedicated MAC of that mode.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from peforge.spec import IntMacSpec, SimdMacSpec


def designs(base: int) -> tuple[dict[str, SimdMacSpec], IntMacSpec, dict[str, IntMacSpec]]:
    simd = {"bricks": SimdMacSpec(base, arch="bricks"), "sub4": SimdMacSpec(base, arch="sub4")}
    sub4_modes = simd["sub4"].modes
    if sub4_modes != simd["bricks"].modes:  # same function as sub4, for a like-for-like ratio
        simd["bricks@sub4-modes"] = SimdMacSpec(base, arch="bricks", modes=sub4_modes)
    width = max(s.width for s in simd.values())
    simd = {k: SimdMacSpec(s.base, s.modes, s.arch, acc_bits=width) for k, s in simd.items()}
    fixed = IntMacSpec(f"int{base}", f"int{base}", acc_bits=width)
    per_mode = {}
    for s in simd.values():
        for mode, (a, b), lanes in zip(s.modes, s.mode_widths, s.mode_lanes):
            per_mode[mode] = IntMacSpec(f"int{a}", f"int{b}", lanes=lanes, acc_bits=width)
    return simd, fixed, per_mode


def _area(rep: Any, target: str) -> dict[str, float]:
    if target == "generic":
        return {"gates": rep.gates, "nand2": round(rep.nand2_eq, 1), "ffs": rep.ffs}
    return {"luts": rep.luts, "carry": rep.carry, "ffs": rep.ffs}


def measure(base: int, jobs: int) -> dict[str, Any]:
    from peforge import fpga

    simd, fixed, per_mode = designs(base)
    specs: list[Any] = [*simd.values(), fixed, *per_mode.values()]
    areas: dict[str, dict[str, float]] = {s.name: {} for s in specs}
    for target in ("generic", "ice40"):
        reps = fpga.synthesize_many(specs, target, jobs=jobs, progress=sys.stderr.isatty())
        for s, rep in zip(specs, reps):
            areas[s.name].update(_area(rep, target))
    return {
        "simd": {k: s.to_dict() | {"name": s.name} for k, s in simd.items()},
        "fixed": fixed.name,
        "per_mode": {m: s.name for m, s in per_mode.items()},
        "areas": areas,
    }


def report(data: dict[str, Any]) -> str:
    areas, fixed = data["areas"], data["fixed"]
    lines = [
        "Yosys area (generic: gates w/o FFs, NAND2-eq with FFs; ice40: SB_LUT4, SB_CARRY, SB_DFF*)",
        f"{'design':48s} {'gates':>6s} {'NAND2':>8s} {'LUT4':>6s} {'carry':>6s} {'FF':>4s}",
    ]
    rows = [(f"simd {k}: {v['name']}", v["name"]) for k, v in data["simd"].items()]
    rows += [(f"fixed MAC: {fixed}", fixed)]
    rows += [(f"mode {m} MAC: {n}", n) for m, n in data["per_mode"].items()]
    for label, name in rows:
        a = areas[name]
        lines.append(f"{label[:48]:48s} {a['gates']:6d} {a['nand2']:8.1f} {a['luts']:6d} {a['carry']:6d} {a['ffs']:4d}")
    lines.append("")
    lines.append("Per SIMD PE: area overhead and throughput per area (tp/area; higher is better)")
    lines.append(
        f"{'simd':18s} {'mode':6s} {'MAC/cy':>6s} | {'vs fixed MAC (gates / LUT4)':>30s} | "
        f"{'vs dedicated mode MAC (gates / LUT4)':>38s}"
    )
    fx = areas[fixed]
    for key, s in data["simd"].items():
        sa = areas[s["name"]]
        modes = s["modes"]
        sum_gates = sum(areas[data["per_mode"][m]]["gates"] for m in modes)
        sum_luts = sum(areas[data["per_mode"][m]]["luts"] for m in modes)
        lines.append(
            f"{key}: area x{sa['gates'] / fx['gates']:.2f} gates / x{sa['luts'] / fx['luts']:.2f} LUT4 "
            f"of the fixed MAC; x{sa['gates'] / sum_gates:.2f} gates / x{sa['luts'] / sum_luts:.2f} LUT4 "
            f"of the {len(modes)} per-mode MACs together"
        )
        base = s["base"]
        for m in modes:
            a_bits, b_bits = (int(w) for w in m.split("x"))
            lanes = base * base // (a_bits * b_bits)
            dm = areas[data["per_mode"][m]]
            tpa_fixed = (lanes * fx["gates"] / sa["gates"], lanes * fx["luts"] / sa["luts"])
            tpa_ded = (dm["gates"] / sa["gates"], dm["luts"] / sa["luts"])
            lines.append(
                f"{'':18s} {m:6s} {lanes:6d} | tp/area x{tpa_fixed[0]:5.2f} / x{tpa_fixed[1]:5.2f}"
                f"{'':9s} | tp/area x{tpa_ded[0]:5.2f} / x{tpa_ded[1]:5.2f} "
                f"(dedicated: {dm['gates']} gates, {dm['luts']} LUT4)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=int, default=8, choices=(8, 16), help="SIMD base width (default 8)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs (default 2)")
    ap.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    args = ap.parse_args(argv)
    try:
        data = measure(args.base, args.jobs)
    except Exception as err:  # fpga flow missing (ToolNotFoundError) or failing: say so
        print(f"bench/simd.py: the Yosys flow (peforge.fpga) is not usable here: {err}", file=sys.stderr)
        return None
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else report(data))
    return data


if __name__ == "__main__":
    main()
