"""Analytic cost model of the PEs: FPGA cells and delay, ASIC gates, area and energy.

Pure Python + NumPy: no Amaranth, Yosys, ``rtl``, ``sim`` or ``fpga`` at run time, so it
prices a spec in microseconds where no HDL tool is installed.  Each PE family has one
assembly (:mod:`.assembly`) of blocks from one component library (:mod:`.components`),
priced with per-target coefficients fitted to Yosys / nextpnr (``peforge calibrate``,
:mod:`.fit`) and shipped in ``data/calibration.json`` with the held-out error bars that every
estimate carries.  :func:`estimate` documents targets, anchors and scaling.

    >>> from peforge.models import cost
    >>> from peforge.spec import MinifloatMacSpec
    >>> e = cost.estimate(MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"), "ecp5")
    >>> e.luts, e.error["luts"]["median"]          # doctest: +SKIP
"""

from __future__ import annotations

from peforge.families import load_layer

from .assembly import assemble, netlist
from .components import CLASSES, FEATURES, Netlist
from .model import TARGETS, CostEstimate, estimate, estimate_many, parse_target

load_layer("cost")  # every family's cost assembly and draw rules, or a FamilyError now

__all__ = [
    "estimate",
    "estimate_many",
    "CostEstimate",
    "TARGETS",
    "parse_target",
    "assemble",
    "netlist",
    "Netlist",
    "FEATURES",
    "CLASSES",
]
