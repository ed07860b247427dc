"""FPGA cost of minifloat MACs against an INT8 MAC: LUTs, FFs, DSPs and Fmax on iCE40 and ECP5.

Run: ``.venv/bin/python bench/fpga.py [--jobs 2] [--seed 1] [--json]``.

Designs (one lane, no pipeline stages, subnormals on, exact products):

* :class:`~peforge.spec.MinifloatMacSpec` e4m3fn x e4m3fn -> fp32, e5m2 x e5m2 -> fp32,
  e2m1fn x e2m1fn -> fp32;
* :class:`~peforge.spec.IntMacSpec` int8 x int8 with the derived exact accumulator width
  (the cost baseline).

* :class:`~peforge.spec.ShiftAddSpec` int8 x pot4 (power-of-two weights: one shifter, no
  multiplier), derived exact accumulator width like the INT8 MAC's.

Columns per device: LUTs / FFs / DSPs of the PE alone (Yosys ``synth_ice40`` without DSPs;
``synth_ecp5 -nowidelut``, peforge's LUT4-only ECP5 flow, with DSP inference, and again with ``-nodsp`` because one
MULT18X18D swallows the whole INT8 multiplier and makes LUT ratios meaningless), and nextpnr's achieved Fmax (one seed) of the
PE inside :func:`peforge.fpga.place_and_route`'s wrapper (``up5k`` sg48 has too few pins for
most PEs, so they sit behind the serial wrapper there).  ``LUT/int8`` is each PE's LUT count
divided by the INT8 MAC's on the same device.  Results come from the FPGA result cache
(``build/fpga-cache``), so a second run takes seconds.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from _common import flow_options, measure_all
from rich.console import Console
from rich.table import Table

from peforge import fpga
from peforge.spec import IntMacSpec, MinifloatMacSpec, ShiftAddSpec, Spec

__all__ = ["DESIGNS", "DEVICES", "measure", "table", "main"]

DESIGNS: dict[str, Spec] = {
    "e4m3 x e4m3 -> fp32": MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"),
    "e5m2 x e5m2 -> fp32": MinifloatMacSpec("e5m2", "e5m2", "fp32"),
    "e2m1 x e2m1 -> fp32": MinifloatMacSpec("e2m1fn", "e2m1fn", "fp32"),
    "int8 x int8 (int MAC)": IntMacSpec("int8", "int8"),
    "int8 x pot4 (shift-add PE)": ShiftAddSpec("int8", "pot4", "pot"),
}
BASELINE = "int8 x int8 (int MAC)"

#: (column label, synthesis target, nextpnr device, DSP inference)
DEVICES: tuple[tuple[str, str, str, bool], ...] = (
    ("ice40 up5k", "ice40", "up5k", False),
    ("ecp5 25k", "ecp5", "25k", True),
    ("ecp5 25k nodsp", "ecp5", "25k", False),
)


def _one(label: str, spec: Spec, column: str, target: str, device: str, dsp: bool, seed: int) -> dict[str, Any]:
    for attempt in range(3):  # the RTL may be edited while a long sweep runs: synthesise again
        rep = fpga.synthesize(spec, target, dsp=dsp)
        try:
            pnr = fpga.place_and_route(rep, device, seed=seed)
            break
        except ValueError as err:
            if "changed since" not in str(err) or attempt == 2:
                raise
    return {
        "design": label,
        "module": spec.name,
        "column": column,
        "target": target,
        "device": device,
        "luts": rep.luts,
        "carry": rep.carry,
        "ffs": rep.ffs,
        "dsps": rep.dsps,
        "fmax_mhz": pnr.fmax_mhz,
        "wrapper": pnr.wrapper,
        "cached": rep.cached and pnr.cached,
    }


def measure(jobs: int = 2, seed: int = 1, progress: bool = True) -> list[dict[str, Any]]:
    """Synthesise and place every design on every device (cached); one row per pair."""
    work = [(label, spec, *dev) for label, spec in DESIGNS.items() for dev in DEVICES]
    rows = measure_all(
        work, lambda *w: _one(*w, seed), jobs=jobs, progress=progress, describe=lambda w: f"{w[0]} on {w[2]}"
    )
    base = {r["column"]: r["luts"] for r in rows if r["design"] == BASELINE}
    for r in rows:
        r["lut_ratio"] = round(r["luts"] / base[r["column"]], 2) if base.get(r["column"]) else None
    return rows


def table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="PE cost on FPGAs (1 lane, no pipeline; Fmax in MHz: nextpnr, one seed)")
    t.add_column("PE")
    for column, *_ in DEVICES:
        for col in ("LUT", "FF", "DSP", "Fmax", "LUT/int8"):
            t.add_column(f"{column}\n{col}", justify="right")
    by = {(r["design"], r["column"]): r for r in rows}
    for label in DESIGNS:
        cells = [label]
        for column, *_ in DEVICES:
            r = by[(label, column)]
            cells += [str(r["luts"]), str(r["ffs"]), str(r["dsps"]), f"{r['fmax_mhz']:.1f}", f"{r['lut_ratio']:.2f}"]
        t.add_row(*cells)
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    flow_options(ap)
    args = ap.parse_args(argv)
    console = Console(width=200)
    rows = measure(args.jobs, args.seed, progress=not args.json)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    console.print(table(rows))
    console.print(
        "ice40: no SB_MAC16 inference (synth_ice40 without -dsp); ecp5: LUT4-only mapping "
        "(synth_ecp5 -nowidelut), MULT18X18D inferred; ecp5 nodsp: also -nodsp. Fmax in MHz. "
        "up5k Fmax is through the serial wrapper when the PE has more ports than sg48 pins."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
