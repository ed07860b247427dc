"""Quality of results: LUT4, FF, DSP and nextpnr Fmax of the PEs an FPGA engineer compares.

Run: ``.venv/bin/python bench/qor.py [--jobs 2] [--seed 1] [--quick] [--json]``.

One table, measured in one run (Yosys + nextpnr from the YoWASP wheels, ECP5-25k with
peforge's LUT4-only mapping and DSP inference, iCE40 HX8K), of:

* E4M3 / E5M2 / E2M1 x same -> FP32 MACs (one lane) with the per-step rounding accumulator,
  deferred rounding (``rounding="deferred"``, 16-bit carry segments) and the exact (Kulisch)
  accumulator (16-bit carry segments);
* the INT8 MAC (the baseline of the ratio columns);
* MXFP8 (E4M3 elements), MXFP4 (E2M1) and NVFP4 (E2M1, E4M3 scales, block 16) block-dot PEs
  at 8 lanes (deferred rounding into FP32);

each at ``stages=0`` and at the ``--fmax`` pick (:func:`peforge.pipelining.pick_stages`) for
the issue's clock goal on that device (ECP5: per-step 40 MHz, deferred 180, exact 200, INT8
200, block-dot 150; iCE40: half).  Next to each: LUTs and Fmax as ratios to the published
HardFloat composition (Berkeley HardFloat ``mulRecFN`` + ``addRecFN`` wired up as the same
E4M3 x E4M3 -> FP32 MAC, measured with the same flow: ECP5 800 LUT4 @ 37.0 MHz, iCE40 956
LUT4 @ 29.7 MHz) and to the INT8 MAC measured in the same run.  ``--quick``: E4M3 MACs, the
INT8 MAC and MXFP8 only.  Synthesis and place-and-route results are cached
(``build/fpga-cache`` or ``$PEFORGE_CACHE``), so a second run takes seconds.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from _common import add_columns, measure_all
from rich.console import Console
from rich.table import Table

from peforge import fpga
from peforge.pipelining import pick_stages
from peforge.spec import BlockDotSpec, IntMacSpec, MinifloatMacSpec, Spec

__all__ = ["Design", "DESIGNS", "DEVICES", "HARDFLOAT", "measure", "main"]


@dataclass(frozen=True)
class Design:
    """A PE of the table and its clock goal on ECP5 (iCE40: half)."""

    label: str
    spec: Spec
    goal_ecp5_mhz: float
    quick: bool = False


def _macs() -> list[Design]:
    out = []
    for fmt, name in (("e4m3fn", "E4M3"), ("e5m2", "E5M2"), ("e2m1fn", "E2M1")):
        q = fmt == "e4m3fn"
        out += [
            Design(f"{name} MAC, FP32 per-step", MinifloatMacSpec(fmt, fmt, "fp32"), 40.0, q),
            Design(
                f"{name} MAC, FP32 deferred",
                MinifloatMacSpec(fmt, fmt, "fp32", rounding="deferred", segment=16),
                180.0,
                q,
            ),
            Design(f"{name} MAC, exact", MinifloatMacSpec(fmt, fmt, "exact", segment=16), 200.0, q),
        ]
    return out


DESIGNS: list[Design] = [
    *_macs(),
    Design("INT8 MAC", IntMacSpec("int8", "int8"), 200.0, True),
    Design(
        "MXFP8 block-dot, 8 lanes",
        BlockDotSpec("e4m3fn", "e4m3fn", block=32, lanes=8, acc="fp32", rounding="deferred", segment=16),
        150.0,
        True,
    ),
    Design(
        "MXFP4 block-dot, 8 lanes",
        BlockDotSpec("e2m1fn", "e2m1fn", block=32, lanes=8, acc="fp32", rounding="deferred", segment=16),
        150.0,
    ),
    Design(
        "NVFP4 block-dot, 8 lanes",
        BlockDotSpec(
            "e2m1fn",
            "e2m1fn",
            block=16,
            lanes=8,
            scale_a="e4m3fn",
            scale_b="e4m3fn",
            acc="fp32",
            rounding="deferred",
            segment=16,
        ),
        150.0,
    ),
]
BASELINE = "INT8 MAC"
#: (column label, synthesis target, nextpnr device, goal scale)
DEVICES: tuple[tuple[str, str, str, float], ...] = (
    ("ECP5-25k", "ecp5", "25k", 1.0),
    ("iCE40 HX8K", "ice40", "hx8k", 0.5),
)
#: Berkeley HardFloat mulRecFN + addRecFN as the same E4M3 x E4M3 -> FP32 MAC (issue 19's table).
HARDFLOAT = {"ecp5": {"luts": 800, "fmax_mhz": 37.0}, "ice40": {"luts": 956, "fmax_mhz": 29.7}}


def _one(design: Design, depth: str, device: tuple[str, str, str, float], seed: int) -> dict[str, Any]:
    """One cell; a design the tools cannot build or place (does not fit, a tool timed out) is
    a row with ``error`` instead of a lost table."""
    try:
        return _measure_one(design, depth, device, seed)
    except (ValueError, RuntimeError, OSError) as err:  # DeviceFitError, ToolError
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return {
            "design": design.label,
            "depth": depth,
            "device": device[0],
            "target": device[1],
            "error": f"{type(err).__name__}: {first}"[:160],
        }


def _measure_one(design: Design, depth: str, device: tuple[str, str, str, float], seed: int) -> dict[str, Any]:
    column, target, part, scale = device
    goal = design.goal_ecp5_mhz * scale
    spec, pick = design.spec, None
    if depth == "pick":
        pick = pick_stages(design.spec, target, goal)
        spec = pick.spec
    rep = fpga.synthesize(spec, target, dsp=target == "ecp5")
    used = seed
    try:
        pnr = fpga.place_and_route(rep, part, seed=seed)
    except fpga.ToolError as err:
        if not err.timed_out:
            raise
        used = seed + 1  # the router did not converge on this placement: one more seed, named
        pnr = fpga.place_and_route(rep, part, seed=used)
    return {
        "design": design.label,
        "depth": depth,
        "device": column,
        "target": target,
        "module": spec.name,
        "stages": getattr(spec, "stages", None),
        "readout_stages": getattr(spec, "readout_stages", None),
        "luts": rep.luts,
        "ffs": rep.ffs,
        "dsps": rep.dsps,
        "fmax_mhz": pnr.fmax_mhz,
        "seed": used,
        "reseeded": used != seed,
        "goal_mhz": goal if pick else None,
        "estimate_mhz": round(pick.pick.fmax_mhz, 1) if pick else None,
        "met": (pnr.fmax_mhz >= goal) if pick else None,
    }


def measure(designs: list[Design], jobs: int = 2, seed: int = 1, progress: bool = True) -> list[dict[str, Any]]:
    """Every design at stages 0 and at its pick on every device (cached); one row per triple.
    A cell whose nextpnr run times out on ``seed`` is placed once more with ``seed + 1``, and
    its row says so (``seed``)."""
    work = [(d, depth, dev) for d in designs for depth in ("0", "pick") for dev in DEVICES]
    rows = measure_all(work, lambda d, depth, dev: _one(d, depth, dev, seed), jobs=jobs, progress=progress)
    base = {r["device"]: r for r in rows if r["design"] == BASELINE and r["depth"] == "0" and "error" not in r}
    for r in rows:
        if "error" in r:
            continue
        hf, b = HARDFLOAT[r["target"]], base.get(r["device"])
        r["luts_vs_hardfloat"] = round(r["luts"] / hf["luts"], 2)
        r["fmax_vs_hardfloat"] = round(r["fmax_mhz"] / hf["fmax_mhz"], 2)
        r["luts_vs_int8"] = round(r["luts"] / b["luts"], 2) if b else None
        r["fmax_vs_int8"] = round(r["fmax_mhz"] / b["fmax_mhz"], 2) if b else None
    return rows


def table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="QoR: LUT4 / FF / DSP and nextpnr Fmax (ratios: HardFloat mul+add MAC, INT8 MAC)")
    heads = ("design", "device", "depth", "LUT4", "FF", "DSP", "MHz", "goal (est.)", "LUT/HF", "MHz/HF", "LUT/int8")
    add_columns(t, (*heads, "MHz/int8"), left=("design", "device"))
    for r in rows:
        if "error" in r:
            t.add_row(r["design"], r["device"], r["depth"], r["error"], *[""] * 8)
            continue
        depth = (
            "0"
            if r["depth"] == "0"
            else f"pick s{r['stages']}" + (f" r{r['readout_stages']}" if r["readout_stages"] is not None else "")
        )
        goal = (
            ""
            if r["goal_mhz"] is None
            else (f"{r['goal_mhz']:g} ({r['estimate_mhz']}) " + ("met" if r["met"] else "MISSED"))
        )
        t.add_row(
            r["design"],
            r["device"],
            depth,
            str(r["luts"]),
            str(r["ffs"]),
            str(r["dsps"]),
            f"{r['fmax_mhz']:.1f}" + (f" (seed {r['seed']})" if r.get("reseeded") else ""),
            goal,
            f"{r['luts_vs_hardfloat']:.2f}",
            f"{r['fmax_vs_hardfloat']:.2f}",
            "" if r["luts_vs_int8"] is None else f"{r['luts_vs_int8']:.2f}",
            "" if r["fmax_vs_int8"] is None else f"{r['fmax_vs_int8']:.2f}",
        )
    return t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="parallel synthesis / place-and-route runs")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr seed")
    ap.add_argument("--quick", action="store_true", help="E4M3 MACs, the INT8 MAC and MXFP8 only")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    designs = [d for d in DESIGNS if d.quick or not args.quick]
    rows = measure(designs, jobs=args.jobs, seed=args.seed, progress=not args.json)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        Console().print(table(rows))


if __name__ == "__main__":
    main()
