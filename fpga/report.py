"""Rendering synthesis and place-and-route reports: rich tables and JSON-able dicts.

:func:`cli_synth` is the whole ``peforge synth <family> ... [--pnr] [--json]`` action in one
call, so the CLI only parses options.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from .pnr import PnrReport, device_for, place_and_route
from .synth import SynthReport, synthesize

__all__ = ["synth_table", "pnr_table", "compare_table", "print_report", "report_dict", "cli_synth"]

_FPGA_COLS = (
    ("LUTs", "luts"),
    ("carry", "carry"),
    ("FFs", "ffs"),
    ("DSPs", "dsps"),
    ("BRAMs", "brams"),
    ("LUTRAM", "lutrams"),
    ("muxes", "muxes"),
    ("cells", "cells"),
)
_GEN_COLS = (
    ("gates", "gates"),
    ("FFs", "ffs"),
    ("NAND2-eq", "nand2_eq"),
    ("transistors", "transistors"),
    ("cells", "cells"),
)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def synth_table(report: SynthReport) -> Table:
    """Headline counts and every cell type of one synthesis report."""
    cached = " (cached)" if report.cached else ""
    dsp = "" if report.target == "generic" else f", dsp={'on' if report.options.get('dsp') else 'off'}"
    title = f"{report.module} on {report.target}{dsp}{cached}"
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("resource")
    table.add_column("count", justify="right")
    for label, attr in _GEN_COLS if report.target == "generic" else _FPGA_COLS:
        table.add_row(label, _fmt(getattr(report, attr)))
    table.add_section()
    for cell, n in report.cells_by_type.items():
        table.add_row(f"[dim]{cell}[/]", f"[dim]{n:,}[/]")
    table.caption = f"{report.yosys_version.split('(')[0].strip()}, {report.seconds:.2f} s"
    return table


def pnr_table(pnr: PnrReport) -> Table:
    """Fmax per clock, timing verdict and the used resources of one place-and-route report."""
    title = f"{pnr.module} placed on {pnr.device} ({pnr.package}, {pnr.wrapper} I/O wrapper)"
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("item")
    table.add_column("value", justify="right")
    how = f"median of {len(pnr.seeds)} seeds" if len(pnr.seeds) > 1 else f"seed {pnr.seeds[0]}"
    table.add_row("Fmax", f"{pnr.fmax_mhz:.1f} MHz ({how})")
    if len(pnr.seeds) > 1:
        table.add_row("  per seed", ", ".join(f"{s}: {f:.1f}" for s, f in zip(pnr.seeds, pnr.fmax_runs)))
    if pnr.unrouted_seeds:
        table.add_row("  not routed", f"seeds {pnr.unrouted_seeds} (nextpnr timed out; left out of the median)")
    for clk, f in pnr.fmax_by_clock.items():
        table.add_row(f"  clock {clk}", f"{f:.1f} MHz")
    if pnr.clock_mhz is not None:
        verdict = "[green]met[/]" if pnr.met else "[red]not met[/]"
        table.add_row("target", f"{pnr.clock_mhz:g} MHz {verdict}")
    if pnr.critical_path_ns is not None:
        ends = f" ({pnr.critical_path_ends[0]} -> {pnr.critical_path_ends[1]})" if pnr.critical_path_ends else ""
        table.add_row("critical path", f"{pnr.critical_path_ns:.2f} ns{ends}")
    table.add_section()
    for bel, u in pnr.utilisation.items():
        if u["used"]:
            pct = 100.0 * u["used"] / u["available"] if u["available"] else 0.0
            table.add_row(bel, f"{u['used']:,} / {u['available']:,} ({pct:.1f}%)")
    table.caption = (
        f"wrapper adds {pnr.wrapper_ffs} FFs; {pnr.nextpnr_version}; "
        f"{pnr.seconds:.1f} s{' (cached)' if pnr.cached else ''}"
    )
    return table


def compare_table(reports: Sequence[SynthReport], title: str = "synthesis results") -> Table:
    """One row per report (e.g. from :func:`~peforge.fpga.cache.synthesize_many`)."""
    table = Table(title=title, title_justify="left")
    for col in ("module", "target", "dsp", "LUTs", "carry", "FFs", "DSPs", "gates", "NAND2-eq", "s"):
        table.add_column(col, justify="left" if col in ("module", "target") else "right")
    for r in reports:
        table.add_row(
            r.module,
            r.target,
            "-" if r.target == "generic" else ("on" if r.options.get("dsp") else "off"),
            _fmt(r.luts),
            _fmt(r.carry),
            _fmt(r.ffs),
            _fmt(r.dsps),
            _fmt(r.gates),
            _fmt(r.nand2_eq),
            "cached" if r.cached else f"{r.seconds:.1f}",
        )
    return table


def print_report(report: SynthReport, pnr: PnrReport | None = None, *, console: Console | None = None) -> None:
    """Print the synthesis table, and the place-and-route table when given."""
    console = console or Console()
    console.print(synth_table(report))
    if pnr is not None:
        console.print(pnr_table(pnr))


def report_dict(report: SynthReport, pnr: PnrReport | None = None) -> dict[str, Any]:
    """JSON-able dict of a synthesis report, with the pnr report under ``"pnr"``."""
    data = report.to_dict()
    if pnr is not None:
        data["pnr"] = pnr.to_dict()
    return data


def cli_synth(
    spec: Any,
    target: str,
    pnr: bool = False,
    device: str | None = None,
    as_json: bool = False,
    *,
    dsp: bool | None = None,
    seeds: Sequence[int] | None = None,
    clock_mhz: float | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Synthesise ``spec`` for ``target`` (and place and route it when ``pnr``); print and return it.

    With ``as_json`` the dict is printed as JSON, else as rich tables.  ``device`` defaults to
    hx8k for ice40 and 25k for ecp5; ``pnr`` needs an ice40 or ecp5 target.
    """
    if pnr:
        device_for(target, device)  # a wrong target / device pairing fails before synthesis
    report = synthesize(spec, target, dsp=dsp)
    pnr_report = None
    if pnr:
        pnr_report = place_and_route(report, device, seeds=seeds, clock_mhz=clock_mhz)
    data = report_dict(report, pnr_report)
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print_report(report, pnr_report, console=console)
    return data
