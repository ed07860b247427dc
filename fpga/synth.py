"""Yosys synthesis of a PE for an FPGA family or a generic gate library, with a typed report.

Yosys runs as a subprocess on a script file; the numbers come from ``stat -json`` written with
``tee -q -o``, never from scraping the log.  ``$scopeinfo`` cells (hierarchy bookkeeping that
Yosys adds when it flattens submodules) are left out of every count.

Generic target
--------------
``synth -flatten``; ``dfflegalize`` to plain D flip-flops (enables and synchronous resets
become gates, so every design is priced with one FF type); ``abc -g`` onto the fixed gate set
:data:`GENERIC_GATES`; then ``stat -json -tech cmos`` for Yosys' transistor estimate.
NAND2 equivalents weight each cell by :data:`NAND2_EQ`: the X1 cell area of the NanGate
FreePDK45 open cell library relative to NAND2_X1 (0.798 um^2), rounded to two decimals.
Gates with no X1 cell of their own are priced as the cells that build them (ANDNOT = INV +
NOR2, ORNOT = INV + NAND2).  These weights are the project's convention for comparing
designs with each other, not a sign-off area.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .cache import ResultCache, make_workdir
from .design import DesignLike, as_design
from .tools import ToolError, run_tool, tool_version

__all__ = [
    "SynthReport",
    "Target",
    "TARGETS",
    "GENERIC_GATES",
    "NAND2_EQ",
    "FLOW_VERSION",
    "synthesize",
    "check_target",
    "synth_commands",
    "run_yosys",
    "parse_stat",
]

#: Bump when scripts or parsing change, so cached results from the old flow are not reused.
FLOW_VERSION = 2

#: Gate set for ``abc -g`` on the generic target (NOT and BUF are always allowed by ABC).
GENERIC_GATES = "AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX"

#: NAND2-equivalent weight per generic cell type (see the module docstring for the source).
NAND2_EQ: dict[str, float] = {
    "$_BUF_": 1.00,  # BUF_X1   0.798
    "$_NOT_": 0.67,  # INV_X1   0.532
    "$_NAND_": 1.00,  # NAND2_X1 0.798
    "$_NOR_": 1.00,  # NOR2_X1  0.798
    "$_AND_": 1.33,  # AND2_X1  1.064
    "$_OR_": 1.33,  # OR2_X1   1.064
    "$_ANDNOT_": 1.67,  # INV_X1 + NOR2_X1
    "$_ORNOT_": 1.67,  # INV_X1 + NAND2_X1
    "$_XOR_": 2.00,  # XOR2_X1  1.596
    "$_XNOR_": 2.00,  # XNOR2_X1 1.596
    "$_MUX_": 2.33,  # MUX2_X1  1.862
    "$_DFF_P_": 5.67,  # DFF_X1   4.522
    "$_DFF_N_": 6.33,  # DFF_X1 + INV_X1 on the clock
    "$_DFF_PP0_": 6.67,  # DFFR_X1  5.320 (async reset)
    "$_DFF_PP1_": 6.67,  # DFFS_X1  5.320 (async set)
    "$_DFF_PN0_": 6.67,
    "$_DFF_PN1_": 6.67,
}

_SCOPEINFO = "$scopeinfo"


@dataclass(frozen=True)
class Target:
    """A synthesis target: its Yosys command, DSP switch and how its cells are classified.

    ``dsp_default`` is None when the target has no DSP blocks (generic).  ``classes`` maps a
    regular expression on the cell type to a category: lut, carry, ff, dsp, bram, lutram,
    mux, io, const or gate.
    """

    name: str
    description: str
    dsp_default: bool | None
    classes: tuple[tuple[str, str], ...]

    def category(self, cell: str) -> str:
        for pattern, cat in self.classes:
            if re.fullmatch(pattern, cell):
                return cat
        return "other"


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "ice40",
            "Lattice iCE40 (synth_ice40; -dsp maps multipliers to SB_MAC16)",
            False,
            (
                (r"SB_LUT4", "lut"),
                (r"SB_CARRY", "carry"),
                (r"SB_DFF\w*", "ff"),
                (r"SB_MAC16", "dsp"),
                (r"SB_RAM40_4K\w*|SB_SPRAM256KA", "bram"),
                (r"SB_IO\w*|SB_GB\w*", "io"),
            ),
        ),
        Target(
            "ecp5",
            "Lattice ECP5 (synth_ecp5 -nowidelut: LUT4s only, --widelut for PFU-mux wide LUTs; -nodsp keeps multipliers in LUTs)",
            True,
            (
                (r"LUT4", "lut"),
                (r"CCU2C", "carry"),
                (r"TRELLIS_FF", "ff"),
                (r"MULT18X18D|ALU54B", "dsp"),
                (r"DP16KD|PDPW16KD", "bram"),
                (r"TRELLIS_DPR16X4|DPR16X4C", "lutram"),
                (r"PFUMX|L6MUX21", "mux"),
                (r"TRELLIS_IO|[IOB]B", "io"),
            ),
        ),
        Target(
            "xilinx",
            "AMD/Xilinx 7-series (synth_xilinx -family xc7, no I/O or clock buffers)",
            True,
            (
                (r"LUT[1-6]|INV", "lut"),
                (r"CARRY[48]", "carry"),
                (r"FD[A-Z]*", "ff"),
                (r"DSP48E1", "dsp"),
                (r"RAMB\w+", "bram"),
                (r"RAM\d+\w*|SRL\w+", "lutram"),
                (r"MUXF[78]", "mux"),
                (r"[IO]BUF\w*|BUFG\w*", "io"),
                (r"GND|VCC", "const"),
            ),
        ),
        Target(
            "gowin",
            "Gowin GW1N (synth_gowin, no I/O buffers)",
            True,
            (
                (r"LUT[1-4]", "lut"),
                (r"ALU", "carry"),
                (r"DFF\w*", "ff"),
                (r"MULT\w+|ALU54D|PADD\w+", "dsp"),
                (r"DPB\w*|DPX9B|SPX?9?|SDPB\w*|SDPX9B|pROM\w*", "bram"),
                (r"RAM16\w+", "lutram"),
                (r"MUX2_LUT[5-8]", "mux"),
                (r"[IOT]BUF\w*", "io"),
                (r"GND|VCC", "const"),
            ),
        ),
        Target(
            "generic",
            f"technology-independent gates (synth; abc -g {GENERIC_GATES}; NAND2 equivalents)",
            None,
            (
                (
                    r"\$_DFF\w*|\$_SDFF\w*|\$_DFFE\w*|\$_SDFFE\w*|\$_SDFFCE\w*|\$_DLATCH\w*|\$_ALDFF\w*|\$_DFFSR\w*",
                    "ff",
                ),
                (r"\$_\w+_", "gate"),
            ),
        ),
    )
}


def check_target(target: str) -> Target:
    """The :class:`Target` called ``target``; ValueError listing the allowed ones otherwise."""
    if target not in TARGETS:
        raise ValueError(f"unknown synthesis target {target!r}: allowed {sorted(TARGETS)}")
    return TARGETS[target]


def _resolve_dsp(t: Target, dsp: bool | None) -> bool:
    if dsp is not None and not isinstance(dsp, bool):
        raise ValueError(f"dsp={dsp!r} must be True, False or None (target default)")
    if t.dsp_default is None:
        if dsp:
            raise ValueError(f"target {t.name!r} has no DSP blocks: dsp must be None or False")
        return False
    return t.dsp_default if dsp is None else dsp


def check_widelut(target: str, widelut: bool) -> bool:
    """``widelut`` validated: a bool, and True only for ``ecp5``."""
    if not isinstance(widelut, bool):
        raise ValueError(f"widelut={widelut!r} must be True or False")
    if widelut and target != "ecp5":
        raise ValueError(f"widelut=True applies to target 'ecp5' only, not {target!r}")
    return widelut


def _options(t: Target, dsp: bool | None, widelut: bool) -> dict[str, Any]:
    """Effective options as reports and cache keys hold them (``widelut`` on ecp5 only, so the
    other targets' keys stay as they were before it existed)."""
    check_widelut(t.name, widelut)
    return {"dsp": _resolve_dsp(t, dsp), **({"widelut": widelut} if t.name == "ecp5" else {})}


def default_options(target: str) -> dict[str, Any]:
    """The options :func:`synthesize` uses for ``target`` when given none (as in its reports)."""
    return _options(check_target(target), None, False)


def synth_commands(target: str, top: str, dsp: bool | None = None, widelut: bool = False) -> list[str]:
    """The Yosys commands that map module ``top`` for ``target`` (after reading the sources).

    ECP5 maps to LUT4s only (``-nowidelut``) unless ``widelut``: Yosys's default builds
    LUT5-LUT7 from LUT4 pairs and PFU muxes, delay-first.  Over ten PEs the LUT4-only mapping
    took 0.49-0.90x the LUT4s on eight (shift-add PoT x4: 516 vs 1018), as many on one and
    1.27x on one (a 1-lane LUT PE: 266 vs 209), at about the same Fmax (shift-add 72.9 vs
    73.1 MHz; FP8 MAC, 3 stages: 24.8 vs 26.7 MHz).
    """
    t = check_target(target)
    use_dsp = _resolve_dsp(t, dsp)
    check_widelut(target, widelut)
    if target == "ice40":
        return [f"synth_ice40 -top {top}" + (" -dsp" if use_dsp else "")]
    if target == "ecp5":
        return [f"synth_ecp5 -top {top}" + ("" if use_dsp else " -nodsp") + ("" if widelut else " -nowidelut")]
    if target == "xilinx":
        return [f"synth_xilinx -top {top} -family xc7 -flatten -noiopad -noclkbuf" + ("" if use_dsp else " -nodsp")]
    if target == "gowin":
        return [f"synth_gowin -top {top} -noiopads" + ("" if use_dsp else " -nodsp")]
    # generic: every FF becomes a plain D flip-flop (async set/reset kept), then fixed gates.
    return [
        f"synth -flatten -top {top}",
        "dfflegalize -cell $_DFF_P_ 01 -cell $_DFF_N_ 01 -cell $_DFF_P??_ 01",
        f"abc -g {GENERIC_GATES}",
        "opt_clean -purge",
    ]


@dataclass(frozen=True)
class SynthReport:
    """Resource counts of one synthesised design.

    Members
    -------
    target, module : str
        Synthesis target and top module.
    options : dict
        Effective options (``dsp``; ``widelut`` on ecp5).
    luts, carry, ffs, dsps, brams, lutrams, muxes : int
        Cells per category (see :class:`Target`); ECP5 ``carry`` counts CCU2C cells (2 bits each).
    cells : int
        All cells except ``$scopeinfo``.
    cells_by_type : dict
        Count per Yosys cell type.
    gates, nand2_eq, transistors : int, float, int or None
        Generic target only: logic gates (FFs excluded), NAND2 equivalents of everything
        (FFs included, weights :data:`NAND2_EQ`), Yosys' ``stat -tech cmos`` transistor estimate.
    yosys_version : str
        Yosys' own version line (from the stat JSON).
    script : str
        The exact Yosys script run.
    seconds : float
        Wall time of the Yosys run that produced the numbers.
    design_key : str
        Content key of the design; ``source`` rebuilds it (``{"spec": ...}`` or ``{"verilog": ...}``).
    cached : bool
        True when this report came from the result cache.
    """

    target: str
    module: str
    options: dict[str, Any]
    luts: int
    carry: int
    ffs: int
    dsps: int
    brams: int
    lutrams: int
    muxes: int
    cells: int
    cells_by_type: dict[str, int]
    gates: int | None
    nand2_eq: float | None
    transistors: int | None
    yosys_version: str
    script: str
    seconds: float
    design_key: str
    source: dict[str, Any]
    unweighted: tuple[str, ...] = ()
    cached: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unweighted"] = list(self.unweighted)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SynthReport":
        d = dict(data)
        d["unweighted"] = tuple(d.get("unweighted", ()))
        return cls(**d)

    def summary(self) -> str:
        """One line: the headline numbers of this target."""
        if self.target == "generic":
            return (
                f"{self.module} generic: {self.gates} gates, {self.ffs} FFs, "
                f"{self.nand2_eq:.0f} NAND2-eq, {self.transistors} transistors"
            )
        return (
            f"{self.module} {self.target}: {self.luts} LUTs, {self.carry} carry, {self.ffs} FFs, "
            f"{self.dsps} DSPs, {self.brams} BRAMs"
        )


def parse_stat(stat: Mapping[str, Any], target: str, module: str) -> dict[str, Any]:
    """Counts from Yosys ``stat -json`` output for ``module`` (``$scopeinfo`` left out)."""
    t = check_target(target)
    design = stat.get("design")
    if not design or "num_cells_by_type" not in design:
        modules = stat.get("modules", {})
        design = modules.get("\\" + module) or modules.get(module)
        if design is None:
            raise ValueError(f"stat JSON has no design summary and no module {module!r}: modules {sorted(modules)}")
    by_type = {k: int(v) for k, v in sorted(design.get("num_cells_by_type", {}).items()) if k != _SCOPEINFO}
    cats: dict[str, int] = {}
    for cell, n in by_type.items():
        cat = t.category(cell)
        cats[cat] = cats.get(cat, 0) + n
    out: dict[str, Any] = {
        "luts": cats.get("lut", 0),
        "carry": cats.get("carry", 0),
        "ffs": cats.get("ff", 0),
        "dsps": cats.get("dsp", 0),
        "brams": cats.get("bram", 0),
        "lutrams": cats.get("lutram", 0),
        "muxes": cats.get("mux", 0),
        "cells": sum(by_type.values()),
        "cells_by_type": by_type,
        "gates": None,
        "nand2_eq": None,
        "transistors": None,
        "unweighted": (),
    }
    if target == "generic":
        out["gates"] = cats.get("gate", 0)
        out["nand2_eq"] = round(sum(NAND2_EQ.get(c, 0.0) * n for c, n in by_type.items()), 2)
        out["unweighted"] = tuple(c for c in by_type if c not in NAND2_EQ)
        tr = design.get("estimated_num_transistors")
        out["transistors"] = int(tr) if tr is not None else None
    return out


def run_yosys(script: str, workdir: Path, *, timeout: float = 3600.0) -> float:
    """Run a Yosys ``script`` (text) in ``workdir``; return the wall time in seconds.

    Raises :class:`~peforge.fpga.tools.ToolError` with the stderr tail when Yosys fails.
    """
    (workdir / "synth.ys").write_text(script)
    log = workdir / "yosys.log"
    t0 = time.perf_counter()
    run_tool("yosys", ["-q", "-l", log.name, "-s", "synth.ys"], workdir, timeout=timeout, log=log)
    return time.perf_counter() - t0


def _as_cache(cache: bool | str | Path | ResultCache) -> ResultCache | None:
    if cache is False or cache is None:
        return None
    if isinstance(cache, ResultCache):
        return cache
    return ResultCache(None if cache is True else cache)


def synthesize(
    design: DesignLike,
    target: str,
    *,
    dsp: bool | None = None,
    widelut: bool = False,
    cache: bool | str | Path | ResultCache = True,
    keep_workdir: bool = False,
    timeout: float = 3600.0,
) -> SynthReport:
    """Synthesise ``design`` for ``target`` with Yosys and return its :class:`SynthReport`.

    Parameters
    ----------
    design : spec, (verilog_path, manifest) or Design
        Any peforge spec (its Verilog comes from :func:`peforge.rtl.verilog`), or a Verilog
        file with its manifest (dict or JSON path; only the module name is read).
    target : str
        One of :data:`TARGETS`: ice40, ecp5, xilinx, gowin, generic.
    dsp : bool, optional
        Allow DSP inference; None takes the target's default (ice40 off, others on).
    widelut : bool
        ECP5 only: Yosys's default wide-LUT mapping (PFU muxes) instead of LUT4s only (see
        :func:`synth_commands`).
    cache : bool, path or ResultCache
        True uses the default cache, a path or :class:`ResultCache` a specific one, False none.
    keep_workdir : bool
        Keep the work directory (Verilog, script, log, stat JSON) after success.
    """
    options = _options(check_target(target), dsp, widelut)
    use_dsp = options["dsp"]
    d = as_design(design)
    store = _as_cache(cache)
    key = {
        "kind": "synth",
        "flow": FLOW_VERSION,
        "design": d.key,
        "module": d.module,
        "target": target,
        "options": options,
        "yosys": tool_version("yosys"),
    }
    if store is not None:
        hit = store.get("synth", key)
        if hit is not None:
            return SynthReport.from_dict({**hit, "cached": True})

    root = store.root if store is not None else ResultCache().root
    workdir = make_workdir(root, f"synth-{target}-{d.module}"[:80])
    vfile = d.write(workdir)
    stat_cmd = "stat -json -tech cmos" if target == "generic" else "stat -json"
    script = "\n".join(
        [
            f"# peforge synthesis: target={target} module={d.module} {options} flow={FLOW_VERSION}",
            f"read_verilog {vfile.name}",
            f"hierarchy -check -top {d.module}",
            *synth_commands(target, d.module, use_dsp, widelut),
            f"tee -q -o stat.json {stat_cmd}",
            "",
        ]
    )
    seconds = run_yosys(script, workdir, timeout=timeout)
    try:
        stat = json.loads((workdir / "stat.json").read_text())
    except (OSError, ValueError) as err:
        raise ToolError("yosys", ["stat -json"], 0, f"no readable stat.json: {err}", workdir) from None
    counts = parse_stat(stat, target, d.module)
    report = SynthReport(
        target=target,
        module=d.module,
        options=options,
        **counts,
        yosys_version=str(stat.get("creator", "unknown")),
        script=script,
        seconds=round(seconds, 3),
        design_key=d.key,
        source=d.source,
    )
    if store is not None:
        store.put("synth", key, report.to_dict())
    if not keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return report
