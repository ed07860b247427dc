"""Cost of PE arrays: the PEs' own estimates composed with the array's registers and shared units.

:func:`assemble_array` builds a :class:`~.components.Netlist` whose own blocks are what
``rtl/array.py`` adds around the PEs (input registers, skew chains, the hop register of every
operand per PE, each unit's valid / first tap registers, the copies of the PEs' ``first``
delay line, their accumulator clear (one per group of accumulator bits, :attr:`~peforge.arrays.PeView.clear_group`),
the PE-latency delay of the ``last`` marks, the drain's result registers, per-column OR trees, pipeline and deskew registers;
weight-stationary: shadow / active weight registers, the swap mux and the partial-sum adders),
and which *includes* the grid's PE netlists ``rows x units`` times
(:meth:`~.components.Netlist.include`): each PE is priced exactly as its family's own estimate
(its fitted scale, DSP mapping and delay); the array's own glue features
(:data:`GLUE_FEATURES`) with coefficients of their own, fitted by
:mod:`peforge.fpga.array_calibration` against Yosys on seeded arrays (without that file, by the
PE fit's coefficients).  Register counts are exact where synthesis keeps what the RTL builds
(it merges a weight-stationary grid's tied-high ``first`` delays and drops its PEs' unread
``out_valid``: taken off).

Shared units are priced where they are: a row's LUT PE of ``cols * lanes`` lanes (its one
table) is the included unit; the grouped shift-add array includes integer PEs and prices one
group dequantiser per column (the shift-add family's own dequantiser block) plus the rows' FP32
registers and the select muxes.  Weight-stationary PEs run with ``in_first`` tied high: a PE
whose ``first`` reaches its accumulator unregistered (no pipeline stage) loses the accumulator's
add and gate in synthesis, and the array takes that accumulator off the included PE's price (one
``accumulate`` block per lane, as the families' assemblies build it); a pipelined PE's ``first``
register resets to 0, is no constant, and the accumulator stays (:func:`_first_registered`).
The included PEs' multi-operand sums (carry-save full adders) are priced by the array fit, as
Yosys maps them flattened into the array (:func:`_flattened_sums`), and the drain's OR trees
are counted in gates of up to four inputs (a LUT4 each).

Energy per MAC includes the operand movement: the hop and skew registers are ``operand``
class, toggling as the operands do (:data:`ARRAY_TOGGLES` measures the PE's operand activity).
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np

from peforge.arrays import COL, CTL, ROW, ArrayGeometry, ArraySpec, DequantShare, array_geometry
from peforge.families import family_of

from .assembly import netlist
from .components import CLASSES, FEATURES, Netlist, clog2
from .families import _dequant
from .specsets import DrawRules
from .toggles import ToggleModel

__all__ = [
    "assemble_array",
    "ARRAY_TOGGLES",
    "ARRAY_DRAWS",
    "overhead",
    "array_sets",
    "glue_split",
    "GLUE_FEATURES",
    "fit_arrays",
    "FIT_METRICS",
    "ARRAY_SEED",
]


def _row_bits(geo: ArrayGeometry, ctl_bits: int) -> int:
    """Bits of one row word: the PE's row ports, the array-wide ports and the control bits."""
    return geo.pe.width(ROW) + geo.pe.width(CTL) + ctl_bits


def overhead(spec: ArraySpec) -> Netlist:
    """The array's own blocks (no PEs): registers, muxes, shared units, partial-sum adders."""
    geo = array_geometry(spec)
    R, C = geo.rows, geo.cols
    pe = geo.pe
    n = Netlist()
    os_ = geo.dataflow == "output-stationary"
    ctl_bits = (3 + (2 if geo.shared_dequant else 0)) if os_ else 2  # valid, last, first (+ gdone, gzero)
    row_bits = _row_bits(geo, ctl_bits)
    col_bits = pe.width(COL) if os_ else 0
    hops_a = (geo.units_per_row - 1) * geo.col_skew
    marks = (1 + (2 if geo.shared_dequant else 0)) if os_ else 0  # last (gdone, gzero): marks only
    # input register, skew chains, hop registers (the control bits kept one per row and hop);
    # valid and first reach each grid unit through its own tap register, one less at the entry
    tapped = 2
    n.register(R * (row_bits - tapped) + C * (col_bits if os_ else pe.width(COL)) + (0 if os_ else 1), cls="operand")
    n.register(tapped * R * geo.units_per_row, cls="ctl")
    n.register(row_bits * R * (R - 1) // 2 * geo.row_skew, cls="operand")
    n.register(col_bits * C * (C - 1) // 2 * geo.col_skew, cls="operand")
    n.register((row_bits - marks) * R * hops_a, cls="operand")
    # a column word hops down only with what the PEs read (a shared dequantiser's scale is
    # read at the column top: synthesis drops its hops)
    hop_bits = sum(w for name, w in geo.unit.ports(COL)) // geo.cols_per_unit if os_ else 0
    n.register(hop_bits * (R - 1) * C, cls="operand")
    L = geo.unit.latency
    if os_:
        marks = 1 + (2 if geo.shared_dequant else 0)
        n.register(R * marks * (L + hops_a), cls="ctl")
        # the grid's PEs build their first delay line (the accumulator's clear) once per group of
        # accumulator bits: the copies beyond the PE's own line (rtl/array.py unit_module)
        n.register((geo.unit.clear_copies - 1) * geo.unit.ctl_delays[1] * R * geo.units_per_row, cls="ctl")
        dq = spec.dequant_share
        if dq is not None:
            _shared_dequant(n, dq, geo)
        _drain(n, geo)
        return n
    # weight-stationary: shadow chain, active weights, swap mux, partial sums
    wb = pe.width(COL)
    n.register(2 * R * C * wb, cls="operand", enable=True)
    n.mux(wb, R * C, cls="operand")
    lanes, lane = pe.acc_lanes, pe.lane_width
    n.adder(lane, (R - 1) * C * lanes, cls="acc", path=True)
    n.register(R * C * pe.acc_width, cls="acc")
    if geo.flags_width:
        n.logic((R - 1) * C * geo.flags_width, cls="ctl")
        n.register(R * C * geo.flags_width, cls="ctl")
    n.register((pe.acc_width + geo.flags_width) * (C * geo.pipeline + (C * (C - 1) // 2) * geo.col_skew), cls="acc")
    n.register(geo.latency, cls="ctl")  # out_valid (w_load's register is the entry's)
    n.notes.update(drain="partial sums down each column, pipeline, deskew")
    return n


def _drain(n: Netlist, geo: ArrayGeometry) -> None:
    """Output-stationary drain: per PE a result register zeroed unless ready (a synchronous
    reset), per column an OR tree of fan-in 4 over the rows cut after its first
    ``drain_cuts`` levels, the column register, the other pipeline registers, the deskew; the
    ready flags of column 0 through the same tree to ``out_valid``."""
    R, C = geo.rows, geo.cols
    w = geo.out_width + geo.flags_width
    data = 1 if geo.shared_dequant else R  # words per column (a shared dequantiser: one result)
    ready = R  # column 0's ready flags, for out_valid
    n.logic(R * C, cls="ctl", levels=1)  # out_valid & done per PE
    n.cut()
    n.register(w * C * data + R, cls="acc", enable=True)
    for level in range(1, geo.drain_levels + 1):
        nd, nr = -(-data // 4), -(-ready // 4)
        # one OR gate of up to four inputs per output bit (a LUT4 each), not its two-input ORs
        n.logic((nd if data > 1 else 0) * w * C + (nr if ready > 1 else 0), cls="acc", levels=1)
        data, ready = nd, nr
        if level <= geo.drain_cuts:
            n.register(data * w * C + ready, cls="acc")
            n.cut()
    tail = geo.pipeline - geo.drain_cuts
    n.register(w * C * (1 + tail), cls="acc")
    n.register(w * (C * (C - 1) // 2) * geo.col_skew, cls="acc")
    n.register(1 + tail + (C - 1) * geo.col_skew, cls="ctl")
    n.notes.update(drain="result register per PE, OR tree per column (pipeline cuts), register, deskew")


def _shared_dequant(n: Netlist, dq: DequantShare, geo: ArrayGeometry) -> None:
    """One group dequantiser per column (the shift-add family's block), the rows' FP32
    registers, the selects of the row whose group completed, the group counter, the scale."""
    R, C = geo.rows, geo.cols
    width = geo.unit.acc_width
    # the shift-add family's block, priced as that block (not as array glue); the array's
    # column dequantiser is its combinational part: the block's output registers (result,
    # done, first, valid, scale) are the rows' FP32 registers below
    block = Netlist()
    with block.shared():
        _dequant(block, width, dq.scale, 0)
    n.include(block, C, "array:dequantiser")
    outputs = Netlist()
    outputs.register(32 + 3 + dq.scale.bits, cls="acc", enable=True)
    n.include(outputs, -C, "array:dequantiser")
    n.mux(width + 32, C, inputs=R, cls="acc")  # group sum and FP32 base of the row
    n.register(R * C * 32, cls="acc", enable=True)
    n.register(C * dq.scale.bits * (geo.unit.latency + 1), cls="acc")
    n.adder(clog2(dq.group + 1), cls="ctl", path=False)
    n.equal(clog2(dq.group + 1), 2, cls="ctl")
    n.register(clog2(dq.group + 1) + 1, cls="ctl", enable=True)


def _ws_accumulator(spec: ArraySpec, geo: ArrayGeometry) -> tuple[Netlist, Netlist]:
    """What synthesis removes from a weight-stationary PE (``in_first`` tied high, reaching the
    accumulator unregistered) and what it keeps of it: ``acc := (first ? 0 : acc) + sum(ops)``
    becomes ``sum(ops)``.  Per :meth:`~.components.Netlist.accumulate` block of the PE: the
    block taken off, and the multi-operand sum of its operands put back (nothing for one
    operand: a wire).  A PE without such blocks: per lane the gate and adder of the update."""
    gone, kept = Netlist(intercept=False), Netlist(intercept=False)
    blocks = netlist(geo.unit.spec).accumulators
    for ops, width, out_width, count, cls, signed in blocks:
        gone.accumulate(list(ops), width, out_width, count, cls, path=False, signed=signed)
        if len(ops) > 1:
            kept.multi_add(list(ops), out_width, count, cls, path=False, signed=signed)
    if not blocks:
        lanes, lane = geo.unit.acc_lanes, geo.unit.lane_width  # a row's LUT unit: all its lanes
        gone.gate(lane, lanes, cls="acc")
        gone.adder(lane + 1, lanes, cls="acc", path=False)
    return gone, kept


def _first_registered(geo: ArrayGeometry) -> bool:
    """Whether a register sits between the PE's ``in_first`` and its accumulator's clear (its
    ``first`` delay line, plain or clock-enabled: a pipelined PE).  Such a register resets to 0,
    so with ``in_first`` tied high it is not a constant and synthesis keeps the accumulator
    (Yosys ECP5 / iCE40 / generic: the PEs' carry chains all stay)."""
    return geo.unit.ctl_delays[1] > 0 or int(getattr(geo.unit.spec, "stages", 0) or 0) > 0


def _ws_removed(n: Netlist, spec: ArraySpec, geo: ArrayGeometry) -> None:
    """Take off what synthesis removes or merges in a weight-stationary grid's PEs, priced as
    the PE family prices it: each PE's accumulator (``in_first`` tied high) when no register
    sits before it (:func:`_first_registered`); their plain delays
    of ``first``, the same in every PE, so the grid keeps one chain of them; their ``out_valid``
    register, read by nobody (the array's own valid chain times the output).  (Every other PE
    register has its own input: each grid unit takes valid and first from its own tap
    register.)"""
    units = geo.rows * geo.units_per_row
    family = _scale_group(geo.unit.spec)
    if not _first_registered(geo):
        gone, kept = _ws_accumulator(spec, geo)
        n.include(gone, -units, family)
        if any(kept.totals()):
            n.include(kept, units, family)
    for bits, count in ((geo.unit.ctl_delays[1], units - 1), (1, units)):
        if bits and count > 0:
            gone = Netlist(intercept=False)
            gone.register(bits, cls="ctl")
            n.include(gone, -count, family)


def _scale_group(spec: Any) -> str:
    from .model import scale_group

    return scale_group(spec)


def _flattened_sums(n: Netlist) -> None:
    """Move the included PEs' carry-save full adders (feature ``csa``: their multi-operand sums,
    one Yosys ``$macc`` each) into the array's own blocks, priced by the array fit's own ``csa``
    coefficient instead of the PE fit's.

    Why: the PE fit is measured on PEs synthesised as the top module; in an array they are
    flattened into it, and Yosys' ``maccmap`` builds a ``$macc``'s full-adder tree in another
    bit order there (the same Verilog, ECP5 LUT4s as top vs flattened into a pass-through
    wrapper: int8 x int6 4 lanes 164 vs 125, SIMD bricks 2x2 504 vs 431, 8x8 333 vs 296; PEs
    without a multi-operand sum unchanged).  Each PE family's own pricing of those full adders
    is taken off exactly (a negative include of them alone, shared parts as shared)."""
    csa = FEATURES.index("csa")
    for sub, count, family in list(n.subs):
        if family.startswith("array") or not count:
            continue  # the array's own shared blocks (a column dequantiser) are not PEs
        gone = Netlist(intercept=False)
        for c, cls in enumerate(CLASSES):
            shared = sub.shared_feats[c][csa]
            own = sub.feats[c][csa] - shared
            if own:
                gone._put("csa", own, cls)
            if shared:
                with gone.shared():
                    gone._put("csa", shared, cls)
            if own or shared:
                n._put("csa", count * (own + shared), cls)
        if any(gone.totals()):
            n.include(gone, -count, family)


def assemble_array(spec: ArraySpec) -> Netlist:
    """The array's :class:`~.components.Netlist`: :func:`overhead` plus the grid's PEs (their
    multi-operand sums priced as flattened into the array: :func:`_flattened_sums`)."""
    geo = array_geometry(spec)
    n = overhead(spec)
    units = geo.rows * geo.units_per_row
    unit = geo.unit.spec
    n.include(netlist(unit), units, _scale_group(unit))
    if geo.dataflow == "weight-stationary":
        _ws_removed(n, spec, geo)
    _flattened_sums(n)
    n.macs_per_cycle = geo.macs_per_cycle
    n.notes.update(
        rows=geo.rows,
        cols=geo.cols,
        dataflow=geo.dataflow,
        a_path=geo.a_path,
        pe=spec.pe.name,
        units=units,
        unit=unit.name,
        latency=geo.latency,
        macs_per_cycle=geo.macs_per_cycle,
    )
    return n


# --- energy: the PE's activity, the array's step view ----------------------------------------------
def _pe_model(spec: ArraySpec) -> ToggleModel:
    return family_of(spec.pe).part("energy")


def _array_random(spec: ArraySpec, rng: np.random.Generator, first: np.ndarray) -> dict[str, Any]:
    """Random finite operands in the step view (``peforge.models.golden.array``)."""
    geo = array_geometry(spec)
    B, S = first.shape
    R, C = geo.rows, geo.cols
    model = _pe_model(spec)
    rows = model.random(spec.pe, rng, np.zeros((B * R, S), bool))
    cols_n = B * C if geo.dataflow == "output-stationary" else B * R * C
    cols = model.random(spec.pe, rng, np.zeros((cols_n, S), bool))
    ctl = model.random(spec.pe, rng, first)
    out: dict[str, Any] = {"first": first}
    for name, (role, _) in geo.pe.inputs.items():
        if name == "a" or role == ROW:
            v = np.asarray(rows[name])
            out[name] = np.moveaxis(v.reshape(B, R, S, *v.shape[2:]), 1, 2)
        elif name == "b" or role == COL:
            v = np.asarray(cols[name])
            if geo.dataflow == "output-stationary":
                out[name] = np.moveaxis(v.reshape(B, C, S, *v.shape[2:]), 1, 2)
            else:
                out[name] = np.moveaxis(v.reshape(B, R, C, S, *v.shape[2:]), 3, 1)
        else:
            out[name] = np.asarray(ctl[name])
    if geo.dataflow == "weight-stationary":  # weights are held: one tile for the whole stream
        out["b"] = np.broadcast_to(out["b"][:, :1], out["b"].shape).copy()
    return out


def _array_chains(spec: ArraySpec, x: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    """Real dot products laid out as the PE's chains (``len(x)`` of them), one array step stream
    per chain ``c``: row ``i`` takes chain ``c + i``'s activations, column ``j`` chain ``c + j``'s
    weights (indices modulo the number of chains), so the array sees real operand streams."""
    geo = array_geometry(spec)
    R, C = geo.rows, geo.cols
    pe_in = {k: np.asarray(v) for k, v in _pe_model(spec).chains(spec.pe, x, w).items()}
    n = len(pe_in["a"])
    S = pe_in["a"].shape[1]
    rows = (np.arange(n)[:, None] + np.arange(R)[None]) % n  # [n, R]
    cols = (np.arange(n)[:, None] + np.arange(C)[None]) % n  # [n, C]
    out: dict[str, Any] = {}
    for name, arr in pe_in.items():
        role = geo.pe.inputs.get(name, (CTL, 0))[0]
        if name == "a" or role == ROW:
            out[name] = np.moveaxis(arr[rows], 1, 2)  # [n, S, R, ...]
        elif name == "b" or role == COL:
            if geo.dataflow == "output-stationary":
                out[name] = np.moveaxis(arr[cols], 1, 2)  # [n, S, C, ...]
            else:  # a held weight tile: each PE (i, j) the first step of chain c + i + j
                held = arr[(rows[:, :, None] + np.arange(C)[None, None]) % n][:, :, :, 0]  # [n, R, C, ...]
                out[name] = np.broadcast_to(held[:, None], (n, S, *held.shape[1:])).copy()
        else:
            out[name] = arr
    return out


def _pe_inputs(spec: ArraySpec, inputs: dict[str, Any]) -> dict[str, Any]:
    """The step view as the PE's own chains (PE (0, j) of every row i paired as the array pairs
    them), for the PE's toggle model."""
    geo = array_geometry(spec)
    first = np.asarray(inputs["first"], bool)
    B, S = first.shape
    R, C = geo.rows, geo.cols
    out: dict[str, Any] = {"first": np.broadcast_to(first[:, None], (B, R * C, S)).reshape(B * R * C, S)}
    for name, arr in inputs.items():
        if name == "first":
            continue
        arr = np.asarray(arr)
        role = geo.pe.inputs[name][0]
        if name == "a" or role == ROW:
            v = np.moveaxis(arr, 2, 1)[:, :, None]  # [B, R, 1, S, ...]
            out[name] = np.broadcast_to(v, (B, R, C, *v.shape[3:])).reshape(B * R * C, *v.shape[3:])
        elif geo.dataflow == "weight-stationary" and name == "b":
            v = np.moveaxis(arr, 1, 3)  # [B, R, C, S, ...]
            out[name] = v.reshape(B * R * C, *v.shape[3:])
        elif name == "b" or role == COL:
            v = np.moveaxis(arr, 2, 1)[:, None]  # [B, 1, C, S, ...]
            out[name] = np.broadcast_to(v, (B, R, C, *v.shape[3:])).reshape(B * R * C, *v.shape[3:])
        else:
            out[name] = np.broadcast_to(arr[:, None], (B, R * C, S)).reshape(B * R * C, S)
    return out


def _array_rates(spec: ArraySpec, inputs: dict[str, Any]) -> list[float]:
    """The PE's operand, product and sum toggle rates on the array's pairing of operands."""
    return _pe_model(spec).rates(spec.pe, _pe_inputs(spec, inputs))


#: The array family's toggle model: the PE's, on the operands as the array pairs them.
ARRAY_TOGGLES = ToggleModel(_array_rates, _array_random, _array_chains)


def _no_draw(r: Any) -> dict[str, Any]:  # pragma: no cover - pool 0: never called
    raise RuntimeError("arrays are calibrated on their own set (peforge.fpga.array_calibration)")


#: Arrays take no part in the PE calibration pools: their own seeded sets
#: (:mod:`peforge.fpga.array_calibration`) fit the array scale and measure its error bars.
ARRAY_DRAWS = DrawRules(_no_draw, pool=0, extra=0)


# --- calibration sets and fit ---------------------------------------------------------------------
ARRAY_SEED = 23
#: metric -> (synthesis row key, fitted?) per target kind: LUTs and carry cells on FPGAs, NAND2
#: gates on the generic flow are fitted (the array's own part); FFs and DSPs only measured.
FIT_METRICS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "fpga": (("luts", "luts", True), ("carry", "carry", True), ("ffs", "ffs", False), ("dsps", "dsps", False)),
    "generic": (("nand2", "nand2_eq", True), ("ffs", "ffs", False)),
}
_PE_FAMILIES = ("intmac", "mac", "lut", "shiftadd", "blockdot", "simd")


def _draw_array(r: random.Random, pes: Sequence[Any]) -> ArraySpec | None:
    pe = r.choice(pes)
    dims = (1, 2, 2, 3, 4, 4, 6, 8)
    df = "weight-stationary" if r.random() < 0.3 else "output-stationary"
    try:
        return ArraySpec(
            pe,
            rows=r.choice(dims),
            cols=r.choice(dims),
            dataflow=df,
            a_path=r.choice((None, None, "broadcast", "systolic")),
            share=r.random() < 0.8,
            pipeline=r.choice((0, 0, 0, 1, 2)),
        )
    except ValueError:
        return None


def array_sets(
    seed: int = ARRAY_SEED,
    training: int = 24,
    heldout: int = 20,
    budget_luts: float = 5000.0,
    later_training: int = 16,
) -> tuple[list[ArraySpec], list[ArraySpec]]:
    """Seeded, disjoint training and held-out arrays: PEs from the PE calibration pools (and
    the family examples), grids up to 8 x 8, both dataflows, both operand paths, shared units on
    and off, drain pipelining; kept within ``budget_luts`` estimated ECP5 LUTs (synthesis time;
    the plain composition, so the array fit these sets make does not change them).

    The draws go ``training``, then ``heldout``, then ``later_training`` more training arrays:
    the training set grew after the held-out set was drawn, and drawing its growth after the
    held-out arrays keeps that set the one earlier fits were judged on."""
    from peforge.families import get

    from .model import estimate, estimate_netlist
    from .specsets import pool

    pes = []
    for fam in _PE_FAMILIES:
        cands = list(get(fam).examples) + pool(fam)[:8]
        pes += [p for p in cands if (estimate(p, "ecp5").luts or 0.0) <= 1200]
    r = random.Random(f"{seed}-arrays")
    out: dict[str, ArraySpec] = {}

    def plain_luts(s: ArraySpec) -> float:
        return estimate_netlist(assemble_array(s), s.name, "array:unscaled", "ecp5").luts or 0.0

    total = training + heldout + later_training
    for _ in range(40 * total):
        s = _draw_array(r, pes)
        if s is not None and s.name not in out and plain_luts(s) <= budget_luts:
            out[s.name] = s
        if len(out) >= total:
            break
    specs = list(out.values())
    return specs[:training] + specs[training + heldout :], specs[training : training + heldout]


#: Features of the array's own blocks (registers, the drain's OR trees and event logic, weight
#: muxes, partial-sum adders and their gates) that the array calibration fits its own
#: coefficients for: the PE fit prices them as parts of PE datapaths, where they are collinear
#: with everything else (ECP5: 0.06 LUT per register bit, 0.04 per two-input gate).
GLUE_FEATURES = ("ff", "ffe", "logic", "mux", "muxw", "add", "gate", "csa")
_GLUE = [FEATURES.index(f) for f in GLUE_FEATURES]


def glue_split(spec: ArraySpec, target: str) -> dict[str, tuple[float, list[float]]]:
    """metric -> (the estimate without the array's own glue features, the glue feature amounts
    in :data:`GLUE_FEATURES` order) for ``target`` (an FPGA target or ``generic``), everything
    priced with the PE calibration (the PEs by their own fit, shared blocks as they are)."""
    from . import calibration
    from .model import _priced, split_features

    cal = calibration.load()
    kind = "asic" if target == "generic" else target
    net = assemble_array(spec)
    whole = _priced(net, kind, cal, "array:unscaled")
    f, fs, _ = split_features(net, "generic" if kind == "asic" else kind)  # its own blocks only
    glue = [f[i] - fs[i] for i in _GLUE]
    tcal = cal["targets"]["generic" if kind == "asic" else kind]
    out: dict[str, tuple[float, list[float]]] = {}
    for metric, key in (("nand2", "gates"),) if kind == "asic" else (("luts", "luts"), ("carry", "carry")):
        base = tcal[metric]
        out[metric] = (whole[key] - sum(base[i] * g for i, g in zip(_GLUE, glue)), glue)
    zero = [0.0] * len(_GLUE)
    out["ffs"] = (float(net.total_ffs) if kind == "asic" else float(whole["ffs"]), zero)
    if kind != "asic":
        out["dsps"] = (float(whole["dsps"]), zero)
    return out


def _stats(est: Sequence[float], meas: Sequence[float]) -> dict[str, float]:
    from .fit import error_stats

    out: dict[str, float] = dict(error_stats(est, meas))
    out["exact"] = sum(1 for e, m in zip(est, meas) if round(e) == round(m))
    return out


def fit_arrays(
    rows: Mapping[tuple[str, str], Mapping[str, Any]],
    training: Sequence[ArraySpec],
    heldout: Sequence[ArraySpec],
    targets: Sequence[str],
) -> dict[str, Any]:
    """Fit the array's own glue coefficients (:data:`GLUE_FEATURES`) per target and metric on
    ``training`` (non-negative least squares of the relative error of the composed estimate) and
    measure the held-out errors; also the errors of the plain composition (the glue priced by
    the PE fit).  Returns the family file's data."""
    from .fit import nnls

    coefs: dict[str, dict[str, dict[str, float]]] = {}
    errors: dict[str, dict[str, Any]] = {}
    plain: dict[str, dict[str, Any]] = {}
    for target in targets:
        metrics = FIT_METRICS["generic" if target == "generic" else "fpga"]
        parts = {s.name: glue_split(s, target) for s in [*training, *heldout] if (s.name, target) in rows}
        base_t = _base_coefs(target)
        for metric, key, fitted in metrics:
            base = [base_t[metric][i] for i in _GLUE] if metric in base_t else [0.0] * len(_GLUE)
            c = np.array(base)
            if fitted:
                fixed, x, meas = _fit_data(training, parts, rows, target, metric, key)
                if len(meas):
                    c = nnls(x / meas[:, None], (meas - fixed) / meas)
                    coefs.setdefault(target, {})[metric] = {
                        name: round(float(v), 5) for name, v in zip(GLUE_FEATURES, c)
                    }
            fixed, x, meas = _fit_data(heldout, parts, rows, target, metric, key)
            if not len(meas):
                continue
            errors.setdefault(target, {})[metric] = _stats(list(fixed + x @ c), list(meas))
            plain.setdefault(target, {})[metric] = _stats(list(fixed + x @ np.array(base)), list(meas))
    return {
        "family": "array",
        "version": 2,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": ARRAY_SEED,
        "family_coef": coefs,
        "error": errors,
        "error_unfitted": plain,
        "training": [s.name for s in training],
        "heldout": [s.name for s in heldout],
        "measurements": [dict(rows[k]) for k in sorted(rows)],
        "note": "held-out relative |error| of the composed array estimate (PEs priced by their own fit, the "
        "array's own glue features by the coefficients fitted here on the training arrays); error_unfitted: "
        "the same with the glue priced by the PE fit",
    }


def _fit_data(
    specs: Sequence[ArraySpec],
    parts: Mapping[str, dict[str, tuple[float, list[float]]]],
    rows: Mapping[tuple[str, str], Mapping[str, Any]],
    target: str,
    metric: str,
    key: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(estimate without the glue, glue features, measured) of the measured ``specs``."""
    got = [s for s in specs if s.name in parts and float(rows[(s.name, target)][key]) > 0]
    fixed = np.array([parts[s.name][metric][0] for s in got])
    x = np.array([parts[s.name][metric][1] for s in got]).reshape(len(got), len(_GLUE))
    meas = np.array([float(rows[(s.name, target)][key]) for s in got])
    return fixed, x, meas


def _base_coefs(target: str) -> dict[str, list[float]]:
    """The PE calibration's coefficient vectors of ``target`` (``generic``: ``nand2``)."""
    from . import calibration

    t = calibration.load()["targets"][target]
    return {m: list(t[m]) for m in ("luts", "carry", "nand2") if m in t}
