"""The ``--fmax`` pick (:mod:`peforge.pipelining`) against nextpnr: did the pick meet the goal,
and how far is the cost model's delay estimate from place and route?

Run: ``.venv/bin/python bench/fmax_pick.py [--targets ecp5,ice40] [--seed 1] [--json]``
(``PEFORGE_CACHE=/path`` shares cached synthesis and place-and-route results).

Cases (goal on ECP5-25k; on iCE40 HX8K half of it, the issue's iCE40 target):

* int8 x int8 MAC at 200 MHz;
* e4m3fn x e4m3fn -> exact (Kulisch) MAC at 200 MHz;
* e4m3fn x e4m3fn -> fp32 per-step MAC at 40 MHz;
* MXFP8 block-dot (e4m3fn, E8M0 scales, block 32), 8 lanes, at 150 MHz.

For each case the pick (:func:`~peforge.pipelining.pick_stages`) and, as the baseline measured
in the same run, the unpipelined design (``stages=0``) are synthesised (``peforge synth``'s flow:
ECP5 LUT4-only with DSPs, iCE40 without) and placed with nextpnr, one seed, clock target = the
goal.  Columns: estimated and achieved Fmax of both, the pick's verdict and distance to the goal,
the estimate's error ``est / achieved - 1`` and the pick's speed-up over ``stages=0``.  The last
lines give the median and worst |error| over every design placed, the goals met, and the
median speed-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from typing import Any

from _common import add_columns
from rich.console import Console
from rich.table import Table

from peforge import fpga
from peforge.models import cost
from peforge.pipelining import pick_stages
from peforge.spec import BlockDotSpec, IntMacSpec, MinifloatMacSpec, Spec

__all__ = ["CASES", "DEVICES", "measure", "main"]

#: (label, spec, goal in MHz on ECP5)
CASES: tuple[tuple[str, Spec, float], ...] = (
    ("int8 MAC", IntMacSpec("int8", "int8"), 200.0),
    ("e4m3 -> exact MAC", MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"), 200.0),
    ("e4m3 -> fp32 per-step MAC", MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"), 40.0),
    ("MXFP8 block-dot, 8 lanes", BlockDotSpec(lanes=8), 150.0),
)
#: target -> (nextpnr device, goal scale)
DEVICES: dict[str, tuple[str, float]] = {"ecp5": ("25k", 1.0), "ice40": ("hx8k", 0.5)}


def _place(spec: Spec, target: str, device: str, goal: float, seed: int) -> float:
    rep = fpga.synthesize(spec, target)
    return fpga.place_and_route(rep, device, seeds=[seed], clock_mhz=goal).fmax_mhz


def measure(targets: tuple[str, ...], seed: int = 1, console: Console | None = None) -> list[dict[str, Any]]:
    """One row per (case, target): the pick, its achieved Fmax, the stages=0 baseline's."""
    rows = []
    for target in targets:
        device, scale = DEVICES[target]
        for label, spec, goal_ecp5 in CASES:
            goal = goal_ecp5 * scale
            t0 = time.perf_counter()
            pick = pick_stages(spec, target, goal)
            base = dataclasses.replace(spec, stages=0)
            achieved = _place(pick.spec, target, device, goal, seed)
            base_achieved = achieved if base == pick.spec else _place(base, target, device, goal, seed)
            row = {
                "case": label,
                "target": target,
                "device": device,
                "goal": goal,
                **pick.confirmed(achieved, device),
                "base_fmax_estimate_mhz": cost.estimate(base, target).fmax_mhz,
                "base_fmax_achieved_mhz": base_achieved,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            rows.append(row)
            if console is not None:
                console.print(
                    f"[dim]{target} {label}: stages={pick.spec.stages} est {pick.pick.fmax_mhz:.1f} "
                    f"achieved {achieved:.1f} MHz (stages=0: {base_achieved:.1f}) "
                    f"{row['seconds']:.0f} s[/]"
                )
    return rows


def _errors(rows: list[dict[str, Any]]) -> list[float]:
    """|est / achieved - 1| of every distinct design placed (the pick and its baseline)."""
    out = [abs(r["estimate_error"]) for r in rows]
    out += [abs(r["base_fmax_estimate_mhz"] / r["base_fmax_achieved_mhz"] - 1.0) for r in rows if r["stages"] != 0]
    return out


def table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="--fmax pick against nextpnr (one seed, clock target = goal)", title_justify="left")
    heads = ("case", "device", "goal", "stages", "est.", "achieved", "verdict", "est. err", "stages=0 est.")
    add_columns(t, (*heads, "stages=0 ach.", "speed-up"), left=("case", "verdict"))
    for r in rows:
        verdict = "met" if r["met"] else f"short {-r['distance_mhz']:.1f}"
        if not r["met_estimate"]:
            verdict += " (est. short)"
        t.add_row(
            r["case"],
            r["device"],
            f"{r['goal']:g}",
            str(r["stages"]),
            f"{r['fmax_estimate_mhz']:.1f}",
            f"{r['fmax_achieved_mhz']:.1f}",
            verdict,
            f"{r['estimate_error']:+.0%}",
            f"{r['base_fmax_estimate_mhz']:.1f}",
            f"{r['base_fmax_achieved_mhz']:.1f}",
            f"{r['fmax_achieved_mhz'] / r['base_fmax_achieved_mhz']:.2f}x",
        )
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default="ecp5,ice40", help="Comma-separated: ecp5, ice40.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    targets = tuple(t for t in args.targets.split(",") if t)
    bad = [t for t in targets if t not in DEVICES]
    if bad or not targets:
        ap.error(f"--targets {args.targets!r}: allowed a comma-separated list of {', '.join(DEVICES)}")
    console = Console(stderr=True) if args.json else Console(width=160)
    rows = measure(targets, args.seed, console)
    errs = _errors(rows)
    summary = {
        "designs_placed": len(errs),
        "median_abs_error": round(statistics.median(errs), 4),
        "max_abs_error": round(max(errs), 4),
        "goals_met": sum(r["met"] for r in rows),
        "goals_met_by_estimate": sum(r["met_estimate"] for r in rows),
        "cases": len(rows),
        "median_speedup_vs_stages0": round(
            statistics.median(r["fmax_achieved_mhz"] / r["base_fmax_achieved_mhz"] for r in rows), 3
        ),
    }
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=2, default=str))
        return 0
    console.print(table(rows))
    console.print(
        f"delay estimate vs nextpnr over {summary['designs_placed']} designs: median |error| "
        f"{summary['median_abs_error']:.0%}, worst {summary['max_abs_error']:.0%}; goals met "
        f"{summary['goals_met']}/{summary['cases']} (estimate said {summary['goals_met_by_estimate']}); "
        f"median speed-up of the pick over stages=0: {summary['median_speedup_vs_stages0']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
