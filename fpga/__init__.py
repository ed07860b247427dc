"""FPGA and gate-level flow: Yosys synthesis, nextpnr place and route, result cache, reports.

Typical use::

    from peforge import fpga
    rep = fpga.synthesize(spec, "ecp5")             # SynthReport (LUTs, carry, FFs, DSPs, ...)
    pnr = fpga.place_and_route(rep, "25k", seeds=[1, 2, 3], clock_mhz=100)   # PnrReport (Fmax)
    fpga.print_report(rep, pnr)
"""

from .cache import ResultCache, default_cache_dir, synthesize_many
from .design import Design, as_design
from .pnr import DEVICES, PnrReport, place_and_route
from .report import cli_synth, compare_table, pnr_table, print_report, report_dict, synth_table
from .synth import GENERIC_GATES, NAND2_EQ, TARGETS, SynthReport, synthesize
from .tools import ToolError, ToolNotFoundError

__all__ = [
    "synthesize",
    "synthesize_many",
    "place_and_route",
    "SynthReport",
    "PnrReport",
    "ResultCache",
    "default_cache_dir",
    "Design",
    "as_design",
    "TARGETS",
    "DEVICES",
    "GENERIC_GATES",
    "NAND2_EQ",
    "ToolError",
    "ToolNotFoundError",
    "print_report",
    "report_dict",
    "cli_synth",
    "synth_table",
    "pnr_table",
    "compare_table",
]
