"""Place and route with nextpnr (iCE40, ECP5): Fmax per clock, utilisation, timing met.

The PE is placed inside a generated wrapper so that every path it has is register to
register (nextpnr does not time unconstrained pin-to-register paths, which would hide a
combinational multiplier that starts at the PE's input ports):

* ``registered``: a flip-flop on every input and output pin.  Needs as many pins as the PE.
* ``serial``: one shift register feeds all PE inputs, another captures and shifts out all
  outputs; four pins (``clk``, ``sin``, ``shift``, ``sout``).  For small packages (up5k sg48).
* ``auto`` (default): registered when the package has the pins, else serial.

The wrapper's own flip-flops count in the utilisation (``wrapper_ffs`` says how many).
Each seed is one deterministic nextpnr run; with several seeds the median Fmax is reported.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

from peforge.errors import DeviceFitError

from . import floorplan
from .cache import ResultCache, make_workdir
from .design import Design, DesignLike, as_design
from .dsp_regs import DspPacking, absorb_dsp_registers
from .fit import check_fit
from .synth import FLOW_VERSION, SynthReport, _as_cache, check_widelut, parse_stat, run_yosys, synth_commands
from .tools import ToolError, run_tool, tool_version

__all__ = [
    "Device",
    "DEVICES",
    "WRAPPERS",
    "PnrReport",
    "place_and_route",
    "check_device",
    "device_for",
    "family_devices",
    "wrapper_verilog",
    "pnr_netlist",
    "PnrNetlist",
    "Port",
]

WRAPPERS = ("auto", "registered", "serial")
_WRAP_TOP = "peforge_wrap"


@dataclass(frozen=True)
class Device:
    """A nextpnr device: family (synthesis target), tool, device flag, package, user I/O pins of
    that package, the part it stands for and its resources (what :mod:`.fit` checks a
    synthesised design against before place and route).

    ``luts`` counts LUT4 sites: iCE40 logic cells (one LUT4, one carry and one FF each, nextpnr's
    ``ICESTORM_LC``), ECP5 slice LUTs (two per slice, nextpnr's ``TRELLIS_COMB``; a CCU2C carry
    takes two).  ``ffs``: flip-flops; ``dsps``: multiplier blocks (iCE40 SB_MAC16, ECP5
    MULT18X18D); ``brams``: block RAMs (SB_RAM40_4K, DP16KD).
    """

    name: str
    family: str
    tool: str
    flag: str
    package: str
    io_pins: int
    part: str = ""
    luts: int = 0
    ffs: int = 0
    dsps: int = 0
    brams: int = 0

    @property
    def has_dsp(self) -> bool:
        return self.dsps > 0


#: Resources from the vendors' data sheets, the same as nextpnr 0.11's device utilisation totals
#: (checked: ICESTORM_LC / ICESTORM_DSP / ICESTORM_RAM, TRELLIS_COMB / TRELLIS_FF / MULT18X18D /
#: DP16KD): iCE40 LP/HX Family Data Sheet (Lattice FPGA-DS-02029), table 1.1, iCE40HX8K: 7,680
#: logic cells, 32 EBR, no DSP; iCE40 UltraPlus Family Data Sheet (FPGA-DS-02008), table 1.1,
#: iCE5LP / UP5K: 5,280 LUT4s, 30 EBR, 8 DSP (SB_MAC16); ECP5 and ECP5-5G Family Data Sheet
#: (FPGA-DS-02012), table 1.1: LFE5U-25F / 45F / 85F: 24K / 44K / 84K LUTs (12,144 / 21,924 /
#: 41,820 slices of two LUT4s and two FFs), 56 / 108 / 208 EBR (DP16KD), 28 / 72 / 156 18x18
#: multipliers (MULT18X18D).  I/O pins: user I/O of the package (same data sheets).
DEVICES: dict[str, Device] = {
    d.name: d
    for d in (
        Device("hx8k", "ice40", "nextpnr-ice40", "--hx8k", "ct256", 206, "iCE40HX8K", 7680, 7680, 0, 32),
        Device("up5k", "ice40", "nextpnr-ice40", "--up5k", "sg48", 39, "iCE40UP5K", 5280, 5280, 8, 30),
        Device("25k", "ecp5", "nextpnr-ecp5", "--25k", "CABGA381", 197, "LFE5U-25F", 24288, 24288, 28, 56),
        Device("45k", "ecp5", "nextpnr-ecp5", "--45k", "CABGA381", 203, "LFE5U-45F", 43848, 43848, 72, 108),
        Device("85k", "ecp5", "nextpnr-ecp5", "--85k", "CABGA381", 205, "LFE5U-85F", 83640, 83640, 156, 208),
    )
}
_DEFAULT_DEVICE = {"ice40": "hx8k", "ecp5": "25k"}


def check_device(device: str) -> Device:
    """The :class:`Device` called ``device``; ValueError listing the allowed ones otherwise."""
    if device not in DEVICES:
        raise ValueError(f"unknown nextpnr device {device!r}: allowed {sorted(DEVICES)}")
    return DEVICES[device]


def family_devices(family: str) -> list[Device]:
    """The devices of ``family`` (a synthesis target), smallest first (by LUT4s, then DSPs)."""
    return sorted((d for d in DEVICES.values() if d.family == family), key=lambda d: (d.luts, d.dsps))


def device_for(target: str, device: str | None = None) -> Device:
    """The device a design synthesised for ``target`` is placed on: ``device`` (default hx8k for
    ice40, 25k for ecp5), checked to be one of that family's; ValueError naming the allowed
    ones otherwise.  Cheap: call it before synthesis to fail fast."""
    if target not in _DEFAULT_DEVICE:
        raise ValueError(f"place and route needs target ice40 or ecp5 (nextpnr), not {target!r}")
    dev = check_device(_DEFAULT_DEVICE[target] if device is None else device)
    if dev.family != target:
        allowed = ", ".join(d.name for d in family_devices(target))
        raise ValueError(
            f"device {dev.name!r} ({dev.part}) is {dev.family}, the design is synthesised for "
            f"{target}: pick one of the {target} devices ({allowed}) or synthesise for {dev.family}"
        )
    return dev


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" or "output"
    width: int


def _ports(design: Design, workdir: Path) -> list[Port]:
    """The top module's ports, read by Yosys (``read_verilog -lib`` keeps only interfaces)."""
    vfile = design.write(workdir)
    run_yosys(f"read_verilog -lib {vfile.name}\nwrite_json ports.json\n", workdir)
    data = json.loads((workdir / "ports.json").read_text())
    mod = data["modules"].get(design.module)
    if mod is None:
        raise ValueError(f"module {design.module!r} not found in its Verilog: modules {sorted(data['modules'])}")
    ports = []
    for name, p in mod["ports"].items():
        if p["direction"] not in ("input", "output"):
            raise ValueError(f"port {name!r} of {design.module} is {p['direction']}: only input/output supported")
        ports.append(Port(name, p["direction"], len(p["bits"])))
    return ports


def _rng(width: int) -> str:
    return f"[{width - 1}:0] " if width > 1 else ""


def wrapper_verilog(module: str, ports: Sequence[Port], kind: str, clock: str = "clk") -> tuple[str, int]:
    """Verilog of the ``registered`` or ``serial`` wrapper around ``module``; also its FF count."""
    if kind not in ("registered", "serial"):
        raise ValueError(f"wrapper={kind!r}: allowed 'registered' or 'serial'")
    if not any(p.name == clock and p.direction == "input" for p in ports):
        raise ValueError(f"{module} has no input clock port {clock!r}: ports {[p.name for p in ports]}")
    ins = [p for p in ports if p.direction == "input" and p.name != clock]
    outs = [p for p in ports if p.direction == "output"]
    conns = [f".{clock}(clk)"]
    lines = [f"// peforge {kind} wrapper: every path of {module} is register to register"]
    if kind == "registered":
        decl = (
            ["input clk"]
            + [f"input {_rng(p.width)}{p.name}" for p in ins]
            + [f"output {_rng(p.width)}{p.name}" for p in outs]
        )
        lines.append(f"module {_WRAP_TOP}({', '.join(decl)});")
        for p in ins:
            lines.append(f"  reg {_rng(p.width)}{p.name}_q;")
            lines.append(f"  always @(posedge clk) {p.name}_q <= {p.name};")
            conns.append(f".{p.name}({p.name}_q)")
        for p in outs:
            lines.append(f"  wire {_rng(p.width)}{p.name}_w;")
            lines.append(f"  reg {_rng(p.width)}{p.name}_q;")
            lines.append(f"  always @(posedge clk) {p.name}_q <= {p.name}_w;")
            lines.append(f"  assign {p.name} = {p.name}_q;")
            conns.append(f".{p.name}({p.name}_w)")
        ffs = sum(p.width for p in ins + outs)
    else:
        ni, no = sum(p.width for p in ins), sum(p.width for p in outs)
        lines.append(f"module {_WRAP_TOP}(input clk, input sin, input shift, output sout);")
        if ni:
            lines.append(f"  reg [{ni - 1}:0] in_sr;")
            nxt = "sin" if ni == 1 else f"{{in_sr[{ni - 2}:0], sin}}"
            lines.append(f"  always @(posedge clk) if (shift) in_sr <= {nxt};")
        lo = 0
        for p in ins:
            conns.append(f".{p.name}(in_sr[{lo + p.width - 1}:{lo}])")
            lo += p.width
        if no:
            lines.append(f"  wire [{no - 1}:0] out_w;")
            lines.append(f"  reg [{no - 1}:0] out_sr;")
            shifted = "1'b0" if no == 1 else f"{{out_sr[{no - 2}:0], 1'b0}}"
            lines.append(f"  always @(posedge clk) out_sr <= shift ? {shifted} : out_w;")
            lines.append(f"  assign sout = out_sr[{no - 1}];")
        else:
            lines.append("  assign sout = 1'b0;")
        lo = 0
        for p in outs:
            conns.append(f".{p.name}(out_w[{lo + p.width - 1}:{lo}])")
            lo += p.width
        ffs = ni + no
    lines.append(f"  {module} pe ({', '.join(conns)});")
    lines.append("endmodule")
    return "\n".join(lines) + "\n", ffs


def _clock_name(net: str) -> str:
    """``$glbnet$clk$TRELLIS_IO_IN`` / ``clk$SB_IO_IN_$glb_clk`` -> ``clk``."""
    parts = [p for p in net.split("$") if p and p != "glbnet"]
    return parts[0] if parts else net


@dataclass(frozen=True)
class PnrReport:
    """Result of placing and routing one design on one device.

    Members
    -------
    fmax_mhz : float
        Median over seeds of the slowest clock's achieved Fmax.
    fmax_by_clock : dict
        Median achieved Fmax per clock port name.
    fmax_runs : list of float
        The slowest clock's Fmax of each seed, in ``seeds`` order.
    met : bool or None
        ``fmax_mhz >= clock_mhz`` when a target clock was given, else None.
    utilisation : dict
        nextpnr's ``{bel type: {"used", "available"}}`` of the first seed (wrapper included).
    wrapper, wrapper_ffs : str, int
        Wrapper kind used and the flip-flops it adds.
    synth_cells_by_type, synth_script : dict, str
        Cells of the wrapped design that went to nextpnr, and the Yosys script that made it.
    command : str
        The first seed's nextpnr command line.
    critical_path_ns, critical_path_ends : float, [str, str]
        Delay of the first seed's worst reported path, and its start and end cells.
    seeds, unrouted_seeds : list of int
        The seeds that routed (``fmax_runs`` follows them) and those whose nextpnr run timed out
        (its router did not converge on that placement); the report needs one routed seed.
    """

    device: str
    family: str
    package: str
    module: str
    wrapper: str
    wrapper_ffs: int
    dsp: bool
    seeds: list[int]
    clock_mhz: float | None
    fmax_mhz: float
    fmax_by_clock: dict[str, float]
    fmax_runs: list[float]
    met: bool | None
    utilisation: dict[str, dict[str, int]]
    critical_path_ns: float | None
    critical_path_ends: list[str] | None
    synth_cells_by_type: dict[str, int]
    synth_script: str
    nextpnr_version: str
    yosys_version: str
    command: str
    seconds: float
    design_key: str
    cached: bool = field(default=False, compare=False)
    unrouted_seeds: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PnrReport":
        return cls(**dict(data))

    def used(self, bel: str) -> int:
        return int(self.utilisation.get(bel, {}).get("used", 0))

    def summary(self) -> str:
        met = "" if self.met is None else (" (met)" if self.met else f" (FAILS {self.clock_mhz:g} MHz)")
        return (
            f"{self.module} on {self.device}: Fmax {self.fmax_mhz:.1f} MHz{met}, "
            f"seeds {self.seeds}, {self.wrapper} wrapper"
        )


@dataclass(frozen=True)
class PnrNetlist:
    """What :func:`pnr_netlist` wrote to ``workdir / "net.json"`` for nextpnr."""

    wrapper: str
    wrapper_ffs: int
    script: str
    stat: dict[str, Any]
    counts: dict[str, Any]
    packing: DspPacking | None


def pnr_netlist(
    design: Design,
    dev: Device,
    workdir: Path,
    *,
    dsp: bool,
    widelut: bool = False,
    wrapper: str = "auto",
    clock: str = "clk",
    pack: bool = True,
) -> PnrNetlist:
    """Synthesise ``design`` inside its I/O wrapper for ``dev`` into ``workdir / "net.json"``
    (ECP5 with DSPs: the DSP registers packed, see :mod:`.dsp_regs`); refuse a design that
    does not fit before any place and route.  ``pack=False``: Yosys's netlist as it is."""
    ports = _ports(design, workdir)
    kind = wrapper
    pins = 1 + sum(p.width for p in ports if p.name != clock)
    if kind == "auto":
        kind = "registered" if pins <= dev.io_pins - 4 else "serial"
    elif kind == "registered" and pins > dev.io_pins:
        raise ValueError(
            f"the registered wrapper of {design.module} needs {pins} pins, the {dev.name}'s "
            f"{dev.package} package has {dev.io_pins}: use wrapper='serial' or 'auto'"
        )
    wrap, wrap_ffs = wrapper_verilog(design.module, ports, kind, clock)
    (workdir / "wrap.v").write_text(wrap)
    script = "\n".join(
        [
            f"# peforge pnr synthesis: device={dev.name} module={design.module} wrapper={kind}",
            f"read_verilog {design.module}.v",
            "read_verilog wrap.v",
            f"hierarchy -check -top {_WRAP_TOP}",
            *synth_commands(dev.family, _WRAP_TOP, dsp, widelut),
            "tee -q -o stat.json stat -json",
            "write_json net.json",
            "",
        ]
    )
    run_yosys(script, workdir)
    stat = json.loads((workdir / "stat.json").read_text())
    counts = parse_stat(stat, dev.family, _WRAP_TOP)
    # what nextpnr gets (the wrapper's FFs included): refuse before it runs
    check_fit(
        dev, counts, design.module, devices=DEVICES, dsp=dsp, spec=design.spec, what=f"(with its {kind} I/O wrapper)"
    )
    packing = _pack_dsp_registers(workdir / "net.json") if pack and dev.family == "ecp5" and dsp else None
    if packing is not None and floorplan.applies(design.spec):  # a PE array: its multipliers as a grid
        net = json.loads((workdir / "net.json").read_text())
        floorplan.floorplan_dsps(net, _WRAP_TOP, design.spec, dev.name)
        (workdir / "net.json").write_text(json.dumps(net))
    return PnrNetlist(kind, wrap_ffs, script, stat, counts, packing)


#: Version of the DSP register packing applied to ECP5 netlists (part of the cache key).
DSP_REGS_VERSION = 5


def _pack_dsp_registers(net: Path) -> DspPacking:
    """ECP5: the flip-flops around each MULT18X18D into its own registers (fpga/dsp_regs.py)."""
    netlist = json.loads(net.read_text())
    packing = absorb_dsp_registers(netlist, _WRAP_TOP)
    net.write_text(json.dumps(netlist))
    return packing


def _unrouted_hint(seeds: Sequence[int]) -> str:
    """What to do when nextpnr ran out of time on every seed tried."""
    nxt = max(seeds) + 1
    return (
        f"nextpnr did not finish on seed(s) {list(seeds)}: its router may not converge on one placement "
        f"and converge on another -- try more seeds (`peforge synth ... --pnr --seeds {nxt}` runs seeds "
        f"1..{nxt} and reports those that route; Python: place_and_route(..., seed={nxt})), a larger "
        f"--device, or a longer limit (PEFORGE_TOOL_TIMEOUT, seconds)"
    )


def _try_seed(dev: Device, workdir: Path, seed: int, clock_mhz: float | None) -> dict[str, Any] | ToolError:
    """:func:`_run_seed`, with a timed-out run returned (another seed may route) instead of raised."""
    try:
        return _run_seed(dev, workdir, seed, clock_mhz)
    except ToolError as err:
        if err.timed_out:
            return err
        raise


def _run_seed(dev: Device, workdir: Path, seed: int, clock_mhz: float | None) -> dict[str, Any]:
    rep, log = f"report-{seed}.json", f"nextpnr-{seed}.log"
    args = [
        dev.flag,
        "--package",
        dev.package,
        "--json",
        "net.json",
        "--report",
        rep,
        "--seed",
        str(seed),
        "--timing-allow-fail",
        "-q",
        "-l",
        log,
    ]
    if clock_mhz is not None:
        args += ["--freq", f"{clock_mhz:g}"]
    t0 = time.perf_counter()
    run_tool(dev.tool, args, workdir, log=workdir / log)
    seconds = time.perf_counter() - t0
    data = json.loads((workdir / rep).read_text())
    fmax = {_clock_name(k): float(v["achieved"]) for k, v in data.get("fmax", {}).items()}
    if not fmax:
        raise ToolError(
            dev.tool, [dev.tool, *args], 0, "report has no clock in 'fmax': is the clock port connected?", workdir
        )
    crit, ends = None, None
    paths = [p for p in data.get("critical_paths") or [] if p.get("path")]
    if paths:
        worst = max(paths, key=lambda p: sum(float(step.get("delay", 0.0)) for step in p["path"]))
        crit = sum(float(step.get("delay", 0.0)) for step in worst["path"])
        ends = [worst["path"][0]["from"].get("cell", "?"), worst["path"][-1]["to"].get("cell", "?")]
    return {
        "seed": seed,
        "fmax": fmax,
        "utilisation": data.get("utilization", {}),
        "critical_path_ns": None if crit is None else round(crit, 3),
        "critical_path_ends": ends,
        "command": " ".join([dev.tool, *args]),
        "seconds": round(seconds, 3),
    }


def place_and_route(
    report_or_design: Union[SynthReport, DesignLike],
    device: str | None = None,
    *,
    seed: int = 1,
    seeds: Sequence[int] | None = None,
    clock_mhz: float | None = None,
    dsp: bool | None = None,
    widelut: bool | None = None,
    wrapper: str = "auto",
    clock: str = "clk",
    cache: bool | str | Path | ResultCache = True,
    jobs: int = 1,
    keep_workdir: bool = False,
) -> PnrReport:
    """Synthesise (with a wrapper), place and route a design with nextpnr; report Fmax.

    Parameters
    ----------
    report_or_design : SynthReport, spec or (verilog_path, manifest)
        A synthesis report (its design and ``dsp`` option are reused; its target must be the
        device's family) or anything :func:`~peforge.fpga.synth.synthesize` accepts.
    device : str, optional
        One of :data:`DEVICES` (hx8k, up5k, 25k, 45k, 85k); default hx8k for an ice40 report,
        25k otherwise.
    widelut : bool, optional
        ECP5: wide-LUT mapping (see :func:`~peforge.fpga.synth.synth_commands`); None reuses the
        report's option, else False.
    seed, seeds : int, list of int
        nextpnr placer seed(s); with several the median Fmax is reported.
    clock_mhz : float, optional
        Target clock given to nextpnr (``--freq``); sets ``met``.
    wrapper : str
        ``auto``, ``registered`` or ``serial`` (see the module docstring).
    jobs : int
        nextpnr runs in parallel when several seeds are missing from the cache.
    """
    if isinstance(report_or_design, SynthReport):
        rep = report_or_design
        dev = device_for(rep.target, device)
        design = as_design(rep.source)
        if design.key != rep.design_key:
            raise ValueError(
                f"the design of report {rep.module!r} changed since it was synthesised "
                f"(Verilog or RTL sources edited): synthesise it again"
            )
        use_dsp = bool(rep.options.get("dsp")) if dsp is None else dsp
        if widelut is None:
            widelut = bool(rep.options.get("widelut", False))
    else:
        dev = check_device(device or "25k")
        design = as_design(report_or_design)
        use_dsp = (dev.family == "ecp5") if dsp is None else dsp
    if use_dsp and not dev.has_dsp:
        raise ValueError(
            f"device {dev.name!r} has no DSP blocks: use dsp=False or a device with DSPs "
            f"({sorted(k for k, d in DEVICES.items() if d.family == dev.family and d.has_dsp)})"
        )
    use_widelut = check_widelut(dev.family, False if widelut is None else widelut)
    if wrapper not in WRAPPERS:
        raise ValueError(f"wrapper={wrapper!r}: allowed {WRAPPERS}")
    seed_list = [int(s) for s in (seeds if seeds is not None else [seed])]
    if not seed_list:
        raise ValueError("seeds must not be empty")
    if clock_mhz is not None and not clock_mhz > 0:
        raise ValueError(f"clock_mhz={clock_mhz!r} must be positive")
    given = report_or_design if isinstance(report_or_design, SynthReport) else None
    if (
        given is not None
        and use_dsp == bool(given.options.get("dsp"))
        and use_widelut == bool(given.options.get("widelut", False))
    ):  # the PE alone: refuse before any tool
        check_fit(dev, asdict(given), design.module, devices=DEVICES, dsp=use_dsp, spec=design.spec)

    store = _as_cache(cache)
    versions = {"yosys": tool_version("yosys"), "nextpnr": tool_version(dev.tool)}
    base_key = {
        "kind": "pnr",
        "flow": FLOW_VERSION,
        "design": design.key,
        "module": design.module,
        "device": dev.name,
        "package": dev.package,
        "wrapper": wrapper,
        "clock": clock,
        "dsp": use_dsp,
        "clock_mhz": clock_mhz,
        **versions,
    }
    if dev.family == "ecp5":  # iCE40 keys stay as they were
        base_key["widelut"] = use_widelut
        if use_dsp:  # DSP registers packed (fpga/dsp_regs.py): not the flow of older cache entries
            base_key["dsp_regs"] = DSP_REGS_VERSION
            if floorplan.applies(design.spec):  # and an array's multipliers placed (fpga/floorplan.py)
                base_key["floorplan"] = floorplan.FLOORPLAN_VERSION
    runs: dict[int, dict[str, Any]] = {}
    if store is not None:
        for s in seed_list:
            hit = store.get("pnr", {**base_key, "seed": s})
            if hit is not None:
                runs[s] = hit
    missing = [s for s in seed_list if s not in runs]
    all_cached = not missing
    t0 = time.perf_counter()
    if missing:
        root = store.root if store is not None else ResultCache().root
        workdir = make_workdir(root, f"pnr-{dev.name}-{design.module}"[:80])
        try:
            net = pnr_netlist(design, dev, workdir, dsp=use_dsp, widelut=use_widelut, wrapper=wrapper, clock=clock)
        except (DeviceFitError, ValueError):
            if not keep_workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            raise
        kind, wrap_ffs, script, stat, counts, packing = (
            net.wrapper,
            net.wrapper_ffs,
            net.script,
            net.stat,
            net.counts,
            net.packing,
        )
        cells = counts["cells_by_type"]
        extra = {
            "wrapper": kind,
            "wrapper_ffs": wrap_ffs,
            "synth_cells_by_type": cells,
            "synth_script": script,
            "yosys_version": str(stat.get("creator", "unknown")),
            "dsp_registers": None if packing is None else asdict(packing),
        }
        timed_out: dict[int, ToolError] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(missing)))) as pool:
            for s, res in zip(missing, pool.map(lambda s: _try_seed(dev, workdir, s, clock_mhz), missing)):
                if isinstance(res, ToolError):
                    timed_out[s] = res
                    continue
                res.update(extra)
                runs[s] = res
                if store is not None:
                    store.put("pnr", {**base_key, "seed": s}, res)
        if timed_out and not runs:  # no seed routed: the first one's error, with what to try
            err = next(iter(timed_out.values()))
            raise ToolError(
                err.tool,
                err.command,
                None,
                err.tail,
                workdir,
                note=f"{err.note}\n{_unrouted_hint(seed_list)}",
                timed_out=True,
            )
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    routed = [s for s in seed_list if s in runs]
    ordered = [runs[s] for s in routed]
    clocks = sorted(ordered[0]["fmax"])
    by_clock = {c: round(statistics.median(r["fmax"][c] for r in ordered if c in r["fmax"]), 3) for c in clocks}
    per_run = [round(min(r["fmax"].values()), 3) for r in ordered]
    fmax = round(statistics.median(per_run), 3)
    first = ordered[0]
    return PnrReport(
        device=dev.name,
        family=dev.family,
        package=dev.package,
        module=design.module,
        wrapper=first["wrapper"],
        wrapper_ffs=first["wrapper_ffs"],
        dsp=use_dsp,
        seeds=routed,
        clock_mhz=clock_mhz,
        fmax_mhz=fmax,
        fmax_by_clock=by_clock,
        fmax_runs=per_run,
        met=None if clock_mhz is None else fmax >= clock_mhz,
        utilisation={
            k: {"used": int(v["used"]), "available": int(v["available"])}
            for k, v in sorted(first["utilisation"].items())
        },
        critical_path_ns=first["critical_path_ns"],
        critical_path_ends=first.get("critical_path_ends"),
        synth_cells_by_type=first["synth_cells_by_type"],
        synth_script=first.get("synth_script", ""),
        nextpnr_version=versions["nextpnr"],
        yosys_version=first["yosys_version"],
        command=first["command"],
        seconds=round(sum(r["seconds"] for r in ordered) if all_cached else time.perf_counter() - t0, 3),
        design_key=design.key,
        cached=all_cached,
        unrouted_seeds=[s for s in seed_list if s not in runs],
    )
