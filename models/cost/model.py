"""Estimates: a netlist priced with one target's calibrated coefficients.

FPGA targets (``ice40``, ``ecp5``, ``xilinx``): LUTs and carry cells are the dot product of
the target's fitted coefficients with the netlist's feature totals; flip-flops are the
register bits the assembly counts; DSP blocks follow Yosys' ``mul2dsp`` rules for the target
(ECP5: both operands >= 2 bits, 18x18 tiles; 7-series: also >= 9 product bits, 25x18 tiles;
iCE40: none, as ``peforge synth`` maps no SB_MAC16 by default).  The delay is the slowest
pipeline segment's ``c0 + lut * levels + carry * carry_bits``, fitted to nextpnr on iCE40
hx8k and ECP5-25k; 7-series (no open place and route) reuses the iCE40 fit scaled by a fixed
speed ratio, flagged uncalibrated.  Each family's LUT / carry / gate sum is multiplied by that
family's fitted scale (:func:`.fit.fit_family_scaled`), except the blocks several families share
(the group dequantiser), which are priced by the coefficients alone.

ASIC targets (``asic45``, ``asic28``, ... or ``node_nm=``): NAND2-equivalent gates from the
``generic`` fit (Yosys ``abc -g`` gates weighted by NanGate45 cell areas), then

* area = gates x ``um2_per_nand2`` and energy per operation = gate-weighted activity x
  ``pj_per_nand2``, both fitted to the 45 nm / 0.9 V figures of Horowitz (ISSCC 2014: 8- and
  32-bit integer add and multiply; the energy column is the confirmed one, the area column
  the commonly quoted one);
* node scaling from 45 nm: area x (node/45)^2, energy x (node/45) x (Vdd/0.9)^2 with the
  nominal Vdd of :data:`VDD` (first-order constant-field rule, not a foundry figure).
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from peforge.spec import Spec

from . import calibration
from .assembly import netlist
from .components import CLASSES, FEATURES, Mult, Netlist

__all__ = [
    "CostEstimate",
    "estimate",
    "estimate_netlist",
    "estimate_many",
    "segment_delays",
    "TARGETS",
    "VDD",
    "parse_target",
    "features",
    "split_features",
    "scaled_features",
    "fabric_ffs",
]

FPGA_TARGETS = ("ice40", "ecp5", "xilinx")
#: Accepted target names (any ``asicNN`` with 5 <= NN <= 250 works too).
TARGETS = (*FPGA_TARGETS, "asic45", "asic28", "asic16", "asic7")
#: Nominal supply voltage per node (nm -> V) for the energy scaling rule; nearest node wins.
VDD = {
    250: 2.5,
    180: 1.8,
    130: 1.2,
    90: 1.0,
    65: 1.0,
    45: 0.9,
    32: 0.9,
    28: 0.9,
    22: 0.8,
    16: 0.8,
    14: 0.8,
    10: 0.75,
    7: 0.7,
    5: 0.7,
}
#: Delay of an ECP5 / 7-series path relative to the same path on iCE40 (vendor speed grades,
#: uncalibrated: no nextpnr flow for 7-series; used for ECP5 only without its own fit).
_SPEED = {"ice40": 1.0, "ecp5": 0.75, "xilinx": 0.45}
_DSP_RULES = {"ecp5": (2, 2, 0, 18, 18), "xilinx": (2, 2, 9, 25, 18)}  # a_min, b_min, y_min, a_max, b_max
#: Targets whose Yosys DSP mapping is signed only (``DSP_SIGNEDONLY``): 7-series DSP48E1.
_SIGNED_ONLY = ("xilinx",)
_I = {name: i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class CostEstimate:
    """Analytic cost of one PE on one target.

    Members
    -------
    target, spec, family : str
        Target name (``asic45`` style for ASIC), spec name, PE family.
    luts, carry, ffs, dsps : float, float, int, int
        FPGA cells (``ffs`` is also given for ASIC: register bits).
    delay_ns, fmax_mhz : float
        FPGA critical path and its Fmax.
    gates_nand2, area_um2, energy_pj_per_op, energy_pj_per_mac : float
        ASIC gates (NAND2 equivalents), area, energy per cycle (all lanes, random operands)
        and per multiply-accumulate.
    node_nm : int
        ASIC node.
    macs_per_cycle : float
        Products per cycle (mode 0 of a multi-mode PE; a PE array: all its PEs).
    error : dict
        metric -> {"median", "p90", "max"} relative |error| measured on the held-out set.
    notes : dict
        Anchors, scaling rule, calibration provenance and family facts.
    """

    target: str
    spec: str
    family: str
    macs_per_cycle: float
    ffs: int
    luts: float | None = None
    carry: float | None = None
    dsps: int | None = None
    delay_ns: float | None = None
    fmax_mhz: float | None = None
    gates_nand2: float | None = None
    area_um2: float | None = None
    energy_pj_per_op: float | None = None
    energy_pj_per_mac: float | None = None
    node_nm: int | None = None
    error: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> dict[str, Any]:
        """The numbers of this target (None fields dropped)."""
        keys = (
            ("luts", "carry", "ffs", "dsps", "delay_ns", "fmax_mhz")
            if self.node_nm is None
            else ("gates_nand2", "area_um2", "ffs", "energy_pj_per_op", "energy_pj_per_mac")
        )
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


def parse_target(target: str, node_nm: int | None = None) -> tuple[str, int | None]:
    """``(kind, node)``: kind is an FPGA target or ``asic``; ValueError for anything else."""
    if not isinstance(target, str):
        raise ValueError(f"target={target!r} must be a string: allowed {TARGETS} or asicNN")
    if target in FPGA_TARGETS:
        if node_nm is not None:
            raise ValueError(f"node_nm={node_nm!r} applies to ASIC targets only, not target={target!r}")
        return target, None
    m = re.fullmatch(r"asic(\d+)?", target)
    if not m:
        raise ValueError(f"target={target!r} is not allowed: use one of {TARGETS} (or asicNN, NN = node in nm)")
    node = node_nm if node_nm is not None else int(m.group(1) or 45)
    if isinstance(node, bool) or not isinstance(node, int) or not 5 <= node <= 250:
        raise ValueError(f"node_nm={node!r} is out of range: allowed integers 5..250 (nm)")
    return "asic", node


def _dsp_tiles(target: str, m: Mult) -> int:
    rule = _DSP_RULES.get(target)
    if rule is None:
        return 0
    amin, bmin, ymin, amax, bmax = rule
    a, b = max(m.a_bits, m.b_bits), min(m.a_bits, m.b_bits)
    if a < amin or b < bmin or m.y_bits < ymin:
        return 0
    if m.unsigned and target in _SIGNED_ONLY:  # a magnitude needs a sign bit in a signed-only DSP
        a, b = a + 1, b + 1
    return math.ceil(a / amax) * math.ceil(b / bmax)


def split_features(net: Netlist, target: str) -> tuple[list[float], list[float], int]:
    """``(totals, shared part, DSP count)`` of ``net`` for ``target``: feature totals with the
    multipliers in DSPs left out, and the part of them built by shared blocks
    (:meth:`.components.Netlist.shared`)."""
    f = net.totals()
    fs = [sum(col) for col in zip(*net.shared_feats)] if net.has_shared else [0.0] * len(f)
    dsps = 0
    in_dsp = []
    for m in net.mults:
        tiles = _dsp_tiles(target, m)
        in_dsp.append(bool(tiles))
        if tiles:
            dsps += tiles * m.count
        else:
            for v in (f, fs) if m.shared else (f,):
                v[_I["mul"]] += m.a_bits * m.b_bits * m.count
                v[_I["mulw"]] += (m.a_bits + m.b_bits) * m.count
                v[_I["sext"]] += min(m.a_bits, m.b_bits) * max(m.macc_width - m.y_bits, 0) * m.count
    work = net.segment_work()  # logic per segment (multipliers in LUTs included) x its LUT levels
    for m, d in zip(net.mults, in_dsp):
        if not d:
            work[m.segment] += m.a_bits * m.b_bits * m.count
    f[_I["deep"]] = sum(w * net.depth.get(sg, (0.0, 0.0))[0] for sg, w in enumerate(work)) / 100.0
    if target == "xilinx":  # DSP48 post-adders (ECP5's MULT18X18D has none that Yosys uses)
        for i, delta in net.dsp_logic:
            if in_dsp[i]:
                f = [max(a - b, 0.0) for a, b in zip(f, delta)]  # (a negative delta stays in the fabric)
    f[_I["one"]] = 1.0 if net.intercept else 0.0
    return f, fs, dsps


def features(net: Netlist, target: str) -> tuple[list[float], int]:
    """Feature totals of ``net`` for ``target`` (multipliers in DSPs left out) and DSP count."""
    f, _, dsps = split_features(net, target)
    return f, dsps


def scaled_features(net: Netlist, target: str, scale: float) -> list[float]:
    """Feature totals with the family's own part times its ``scale`` and the shared blocks
    as they are: ``coefficients . scaled_features`` is the estimate."""
    f, fs, _ = split_features(net, target)
    return [scale * (a - b) + b for a, b in zip(f, fs)]


def fabric_ffs(net: Netlist, target: str) -> int:
    """Flip-flops outside DSP blocks: the netlist's register bits, less those a 7-series DSP48
    absorbs (its M / P registers) on ``xilinx`` (Yosys packs no ECP5 DSP registers)."""
    if target != "xilinx":
        return net.ffs
    absorbed = sum(bits for i, bits in net.dsp_regs if _dsp_tiles(target, net.mults[i]))
    return max(net.ffs - absorbed, 0)


def _dot(c: Sequence[float], f: Sequence[float]) -> float:
    return sum(map(operator.mul, c, f))


def _scaled_dot(
    c: Sequence[float], f: Sequence[float], shared: Sequence[float], scale: float, own: Sequence[float] | None = None
) -> float:
    """``own . (scale * (f - shared)) + c . shared``: see :func:`scaled_features`; ``own``: the
    coefficients of the family's own blocks when the family has its own fit of them
    (:func:`own_coef`), else ``c``."""
    o = c if own is None else own
    mine = _dot(o, f)
    if not any(shared):
        return mine * scale
    return scale * (mine - _dot(o, shared)) + _dot(c, shared)


def own_coef(target_cal: dict[str, Any], metric: str, family: str) -> list[float] | None:
    """The target's ``metric`` coefficients with a family's own fitted ones for the features its
    own blocks use (``family_coef``: a PE array's glue), or None when the family has none."""
    fc = target_cal.get("family_coef", {}).get(group_family(family), {}).get(metric)
    if not fc:
        return None
    return [float(fc.get(name, c)) for name, c in zip(FEATURES, target_cal[metric])]


def class_gates(
    net: Netlist, coef: Sequence[float], scale: float = 1.0, own: Sequence[float] | None = None
) -> list[float]:
    """NAND2 equivalents per activity class (multipliers in LUT logic, intercept dropped);
    the family's own blocks times ``scale`` (priced with ``own`` when given), shared blocks as
    they are."""
    o = coef if own is None else own
    out = [
        scale * (_dot(o[:-1], row[:-1]) - _dot(o[:-1], sh[:-1])) + _dot(coef[:-1], sh[:-1])
        for row, sh in zip(net.feats, net.shared_feats)
    ]
    mi, wi = _I["mul"], _I["mulw"]
    for m in net.mults:
        c = coef if m.shared else o
        out[CLASSES.index(m.cls)] += (
            (c[mi] * m.a_bits * m.b_bits + c[wi] * (m.a_bits + m.b_bits)) * m.count * (1.0 if m.shared else scale)
        )
    return out


#: nextpnr's timing of a DSP multiplier by whether its operands come straight from registers
#: and whether its product goes straight into one (the flow packs those registers into the
#: block, fpga/dsp_regs.py): ns beyond a fabric flip-flop's clock-to-out.  ECP5 MULT18X18D,
#: nextpnr-ecp5 0.11: output register clock-to-out 0.74 ns (a fabric FF: 0.52), input
#: register to the product 3.86 ns, operand to the output register (setup) 3.49 ns, and
#: through both unregistered about 5.1 ns (measured on the INT8 MAC's critical paths).
_DSP_DELAY: dict[str, dict[tuple[bool, bool], float]] = {
    "ecp5": {(True, True): 0.22, (True, False): 3.34, (False, True): 3.49, (False, False): 5.1},
}


def _segment_chains(net: Netlist, kind: str) -> dict[int, tuple[float, float, float]]:
    """``{segment: (lut levels, carry bits, DSP ns)}``: a multiplier that ``kind`` maps to a
    DSP block with a timing in :data:`_DSP_DELAY` leaves the LUT chain and adds the block's
    own delay, which depends on whether registers sit right before and after it."""
    segs = {k: [v[0], v[1], 0.0] for k, v in net.depth.items()}
    table = _DSP_DELAY.get(kind)
    if table:
        for m in net.mults:
            if m.chain == (0.0, 0.0) or not _dsp_tiles(kind, m):
                continue
            total = net.depth.get(m.segment, [0.0, 0.0])
            after = (total[0] - m.before[0] - m.chain[0], total[1] - m.before[1] - m.chain[1])
            registered = (m.before == (0.0, 0.0), after[0] <= 0 and after[1] <= 0)
            seg = segs[m.segment]
            seg[0] -= m.chain[0]
            seg[1] -= m.chain[1]
            seg[2] = max(seg[2], table[registered])
    return {k: (v[0], v[1], v[2]) for k, v in segs.items()}


def _segment_delay(s: tuple[float, float, float], d: dict[str, float]) -> float:
    return d["c0"] + d["lut"] * s[0] + d["carry"] * s[1] + s[2]


def _delay(net: Netlist, d: dict[str, float], kind: str = "ice40") -> float:
    segs = _segment_chains(net, kind)
    return max((_segment_delay(s, d) for s in segs.values()), default=d["c0"])


def segment_delays(net: Netlist, target: str) -> dict[int, float]:
    """Estimated delay (ns) of every timed pipeline segment of ``net`` on the FPGA ``target``:
    the same rule as the estimate's ``delay_ns`` (its slowest segment), segment by segment."""
    kind, _ = parse_target(target)
    if kind == "asic":
        raise ValueError(f"target={target!r} has no delay model: allowed {FPGA_TARGETS}")
    cal = calibration.load()
    own = cal["targets"].get(kind, {}).get("delay")
    d = own or cal["targets"].get("ice40", {}).get("delay")
    if not d:
        raise RuntimeError(f"calibration {calibration.path()} has no delay fit for {target!r}: run `peforge calibrate`")
    scale = 1.0 if own else _SPEED[kind]
    return {seg: _segment_delay(s, d) * scale for seg, s in sorted(_segment_chains(net, kind).items())}


def _errors(cal: dict[str, Any], key: str, metrics: Iterable[str]) -> dict[str, dict[str, Any]]:
    errs = cal.get("error", {}).get(key, {})
    return {
        m: {k: v for k, v in errs[m].items() if k in ("median", "p90", "max", "n", "exact")}
        for m in metrics
        if m in errs
    }


def scale_group(spec: Spec) -> str:
    """The name a spec's fitted scale is kept under: its family, split by accumulator
    architecture (``mac/deferred``, ``mac/exact``, ``blockdot/deferred``): an exact or
    deferred-rounding window register with its pipelined read-out maps unlike a per-step float
    loop, and one scale for both leaves each off by its share of the family's rows."""
    if getattr(spec, "rounding", None) == "deferred":
        return f"{spec.family}/deferred"
    if getattr(spec, "is_exact", False):
        return f"{spec.family}/exact"
    return str(spec.family)


def group_family(group: str) -> str:
    """The family of a :func:`scale_group` name."""
    return group.split("/", 1)[0]


def group_scale(scales: Mapping[str, float], group: str) -> float:
    """The fitted scale of ``group`` (a :func:`scale_group` name) among one metric's ``scales``:
    a group without its own scale takes its family's, 1 for a name without either."""
    return float(scales.get(group, scales.get(group_family(group), 1.0)))


def _family_scale(cal_target: dict[str, Any], metric: str, family: str) -> float:
    """The fitted scale of ``family`` (a :func:`scale_group` name) in one target's calibration."""
    return group_scale(cal_target.get("family_scale", {}).get(metric, {}), family)


def _priced(net: Netlist, kind: str, cal: dict[str, Any], family: str) -> dict[str, Any]:
    """The target-specific numbers of ``net`` (memoised on the netlist per calibration file)."""
    memo = net.priced
    key = (kind, id(cal), family)
    hit = memo.get(key)
    if hit is not None:
        return hit
    fit_key = "generic" if kind == "asic" else kind
    if fit_key not in cal["targets"] or not cal["targets"][fit_key]:
        raise RuntimeError(f"calibration {calibration.path()} has no {fit_key} fit: run `peforge calibrate`")
    if kind != "asic":
        t = cal["targets"][kind]
        f, fs, dsps = split_features(net, kind)
        own = t.get("delay")  # this target's own place-and-route fit, else iCE40's scaled
        dl = own or cal["targets"].get("ice40", {}).get("delay")
        delay = (_delay(net, dl, kind) * (1.0 if own else _SPEED[kind])) if dl else None
        luts = _scaled_dot(t["luts"], f, fs, _family_scale(t, "luts", family), own_coef(t, "luts", family))
        carry = _scaled_dot(t["carry"], f, fs, _family_scale(t, "carry", family), own_coef(t, "carry", family))
        out: dict[str, Any] = {
            "luts": round(max(luts, 0.0), 1),
            "carry": round(max(carry, 0.0), 1),
            "dsps": dsps,
            "ffs": fabric_ffs(net, kind),
            "delay_ns": None if delay is None else round(delay, 3),
            "fmax_mhz": None if delay is None else round(1000.0 / delay, 1),
        }
    else:
        gen = cal["targets"]["generic"]["nand2"]
        k = _family_scale(cal["targets"]["generic"], "nand2", family)
        f, fs, _ = split_features(net, "generic")
        own = own_coef(cal["targets"]["generic"], "nand2", family)
        out = {"gates": max(_scaled_dot(gen, f, fs, k, own), 0.0), "class_gates": class_gates(net, gen, k, own)}
    if net.subs:
        out = _with_subs(out, net, kind, cal)
    memo[key] = out
    return out


def _with_subs(out: dict[str, Any], net: Netlist, kind: str, cal: dict[str, Any]) -> dict[str, Any]:
    """``out`` plus every included netlist's price (:meth:`.components.Netlist.include`)."""
    out = dict(out)
    for sub, count, family in net.subs:
        p = _priced(sub, kind, cal, family)
        if kind == "asic":
            out["gates"] += count * p["gates"]
            out["class_gates"] = [a + count * b for a, b in zip(out["class_gates"], p["class_gates"])]
            continue
        for k in ("luts", "carry"):
            out[k] = round(out[k] + count * p[k], 1)
        out["dsps"] += int(round(count * p["dsps"]))
        out["ffs"] += int(round(count * p["ffs"]))
        if count > 0 and p["delay_ns"] is not None and (out["delay_ns"] is None or p["delay_ns"] > out["delay_ns"]):
            out["delay_ns"], out["fmax_mhz"] = p["delay_ns"], p["fmax_mhz"]
    return out


_ERRORS: dict[tuple[int, str], dict[str, Any]] = {}


def _target_errors(cal: dict[str, Any], kind: str, family: str | None = None) -> dict[str, Any]:
    """Held-out error bars of ``kind``; a family measured on its own held-out set (PE arrays:
    ``cal["family_error"][family]``) gets its own bars for the metrics it measured."""
    key = (id(cal), kind)
    own = cal.get("family_error", {}).get(group_family(family or ""), {})
    if own:
        fam_key = (id(cal), f"{kind}:{family}")
        if fam_key not in _ERRORS:
            base: dict[str, Any] = dict(_target_errors(cal, kind))
            fam_cal = {"error": own}
            if kind == "asic":
                fam = _errors(fam_cal, "generic", ("nand2", "ffs"))
                if "nand2" in fam:
                    fam["gates_nand2"] = fam.pop("nand2")
            else:
                fam = _errors(fam_cal, kind, ("luts", "carry", "ffs", "dsps", "delay_ns"))
            base.update({k: {**v, "note": f"{family} held-out set"} for k, v in fam.items()})
            _ERRORS[fam_key] = base
        return _ERRORS[fam_key]
    if key not in _ERRORS:
        if kind == "asic":
            err = _errors(cal, "generic", ("nand2", "ffs"))
            if "nand2" in err:
                err["gates_nand2"] = err.pop("nand2")
        else:
            err = _errors(cal, kind, ("luts", "carry", "ffs", "dsps"))
            own = _errors(cal, kind, ("delay_ns",))
            delay = own or _errors(cal, "ice40", ("delay_ns",))
            if delay:
                err["delay_ns"] = (
                    delay["delay_ns"]
                    if own
                    else {**delay["delay_ns"], "note": "iCE40 fit scaled by a fixed speed ratio: uncalibrated here"}
                )
        _ERRORS[key] = err
    return _ERRORS[key]


def estimate(
    spec: Spec, target: str = "ecp5", node_nm: int | None = None, activity: Sequence[float] | None = None
) -> CostEstimate:
    """Analytic cost of ``spec``'s PE on ``target`` (see the module docstring).

    Parameters
    ----------
    spec : Spec
        Any PE spec with a registered assembly.
    target : str
        ``ice40``, ``ecp5``, ``xilinx``, ``asic45`` (default node) or ``asicNN``.
    node_nm : int, optional
        ASIC node in nm (overrides the number in ``target``).
    activity : sequence of float, optional
        Toggle rate per activity class (:data:`.components.CLASSES`) relative to random
        operands (1.0 each by default); :func:`peforge.models.cost.energy.activity` measures it
        for a workload.
    """
    return estimate_netlist(netlist(spec), spec.name, scale_group(spec), target, node_nm, activity)


def estimate_netlist(
    net: Netlist,
    label: str,
    family: str,
    target: str = "ecp5",
    node_nm: int | None = None,
    activity: Sequence[float] | None = None,
) -> CostEstimate:
    """:func:`estimate` of an assembled netlist (``family`` picks the fitted family scale; a
    name without one, e.g. a helper unit's, is priced with scale 1)."""
    kind, node = parse_target(target, node_nm)
    cal = calibration.load()
    p = _priced(net, kind, cal, family)
    err = _target_errors(cal, kind, family)
    notes: dict[str, Any] = {"calibration": cal.get("created"), "yosys": cal.get("yosys_version"), **net.notes}
    name = target if kind != "asic" else f"asic{node}"
    if kind != "asic" or node is None:
        return CostEstimate(
            name,
            label,
            family,
            net.macs_per_cycle,
            p["ffs"],
            p["luts"],
            p["carry"],
            p["dsps"],
            p["delay_ns"],
            p["fmax_mhz"],
            error=err,
            notes=notes,
        )
    asic = cal["asic"]
    scale_area = (node / 45.0) ** 2
    vdd = VDD[min(VDD, key=lambda k: abs(k - node))]
    scale_energy = (node / 45.0) * (vdd / 0.9) ** 2
    if activity is None:
        weighted = sum(p["class_gates"])
    else:
        act = list(activity)
        if len(act) != len(CLASSES):
            raise ValueError(f"activity has {len(act)} entries: expected one per class {CLASSES}")
        weighted = sum(g * a for g, a in zip(p["class_gates"], act))
    energy = asic["pj_per_nand2"] * weighted * scale_energy
    gates = p["gates"]
    notes.update(
        anchor="Horowitz ISSCC 2014, 45 nm 0.9 V: int add/mul energy (confirmed) and area (commonly quoted)",
        um2_per_nand2_45nm=asic["um2_per_nand2"],
        pj_per_nand2_45nm=asic["pj_per_nand2"],
        scaling=f"area x (node/45)^2 = {scale_area:.3g}; energy x (node/45) x (Vdd/0.9)^2 = "
        f"{scale_energy:.3g} (Vdd {vdd} V)",
    )
    return CostEstimate(
        name,
        label,
        family,
        net.macs_per_cycle,
        int(round(net.total_ffs)),
        gates_nand2=round(gates, 1),
        area_um2=round(gates * asic["um2_per_nand2"] * scale_area, 3),
        energy_pj_per_op=round(energy, 4),
        energy_pj_per_mac=round(energy / max(net.macs_per_cycle, 1), 4),
        node_nm=node,
        error=err,
        notes=notes,
    )


def estimate_many(specs: Iterable[Spec], target: str = "ecp5", node_nm: int | None = None) -> list[CostEstimate]:
    """:func:`estimate` for every spec (netlists are cached per spec)."""
    return [estimate(s, target, node_nm) for s in specs]
