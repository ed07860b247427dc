"""Batched simulation: cycle plans, wide-port encoding, raw-output decoding, vectorised check.

The flow for a list of :class:`~peforge.sim.vectors.VectorSet`:

1. :func:`make_plan` cuts each set into *passes* of ``rows`` batch rows (one row per PE copy
   in the wrapper).  A pass is: one reset cycle, the steps (with their bubble cycles), and
   ``latency - 1`` idle cycles; the plan ends with one idle cycle.
2. :func:`encode` turns the plan into per-cycle '0'/'1' strings for the wrapper's wide ports.
3. The cocotb module :mod:`peforge.sim.tb_mac` drives them and records every cycle's outputs.
4. :func:`check` decodes the record and compares *every cycle after each reset* with what the
   golden model implies: ``acc`` equals the state after the latest step presented ``latency``
   or more cycles earlier (reset value before the first), ``out_valid`` equals ``in_valid``
   delayed by ``latency``.  So results, bubble-cycle holds, reset and timing are all checked,
   in one NumPy comparison per pass layout.
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import runner
from .vectors import VectorSet
from .wrapper import PeInterface, wrapper_verilog

__all__ = ["Target", "Plan", "Mismatch", "CheckResult", "spec_target", "intmac_target", "rows_for",
           "wrapper_build", "make_plan", "encode", "simulate", "check", "golden_for", "TB_MODULE"]

TB_MODULE = "peforge.sim.tb_mac"
_RUN_COUNTER = itertools.count()


@dataclass(frozen=True)
class Target:
    """What the batch simulation needs to know about one PE design.

    Members
    -------
    label : str
        Human readable design description (the spec's repr for MAC specs).
    iface : PeInterface
        Ports and latency.
    verilog : callable
        ``() -> str``: the PE's Verilog text (module ``iface.module``).
    golden : callable
        ``(a, b, first) -> {"acc": [batch, steps], "acc_flags": ...}`` raw port values.
    show_a, show_b, show_acc, show_flags : callable
        Code -> value text for reports.
    """

    label: str
    iface: PeInterface
    verilog: Callable[[], str]
    golden: Callable[[np.ndarray, np.ndarray, np.ndarray], dict]
    show_a: Callable[[int], str] = repr
    show_b: Callable[[int], str] = repr
    show_acc: Callable[[int], str] = repr
    show_flags: Callable[[int], str] = repr


def _float_text(value: float) -> str:
    return repr(float(value))


def spec_target(spec: Any) -> Target:
    """Target for a :class:`~peforge.spec.MinifloatMacSpec`: ``peforge.rtl`` and the golden model."""
    from peforge import rtl
    from peforge.models import golden

    iface = PeInterface.from_spec(spec, rtl.manifest(spec))

    def show_acc(code: int) -> str:
        if spec.is_exact:
            w = spec.exact_width
            v = code - (1 << w) if code >> (w - 1) else code
            return f"{v} * 2^{spec.product_lsb_exp} = {float(v) * 2.0 ** spec.product_lsb_exp!r}"
        return _float_text(spec.acc.decode(np.array([code], np.int64))[0])

    def show_flags(code: int) -> str:
        names = [n for bit, n in enumerate(("nan", "+inf", "-inf")) if code >> bit & 1]
        return "{" + ",".join(names) + "}"

    return Target(
        label=repr(spec), iface=iface, verilog=lambda: rtl.verilog(spec),
        golden=lambda a, b, first: golden.run(spec, a=a, b=b, first=first),
        show_a=lambda c: _float_text(spec.a.decode(np.array([c], np.int64))[0]),
        show_b=lambda c: _float_text(spec.b.decode(np.array([c], np.int64))[0]),
        show_acc=show_acc, show_flags=show_flags)


def intmac_target(iface: PeInterface) -> Target:
    """Target for the stand-in integer MAC of :mod:`peforge.sim.intmac`."""
    from .intmac import intmac_golden, intmac_verilog

    return Target(label=f"IntMac({iface})", iface=iface, verilog=lambda: intmac_verilog(iface),
                  golden=lambda a, b, first: intmac_golden(iface, a, b, first))


def rows_for(iface: PeInterface) -> int:
    """PE copies per wrapper: about 64 lanes in total (4..64 rows)."""
    return max(4, min(64, 64 // iface.lanes))


#: Extra Verilator arguments for wrapper builds.  The PE itself is a hierarchical block
#: (compiled once): inlined, 64 copies of an FP32 MAC make ~70 MB of C++ and a minute-long
#: build; even with ``-fno-inline`` Verilator specialises the PE's code per instance.
WRAPPER_BUILD_ARGS: tuple[str, ...] = ()

_VERILOG_MEMO: dict[tuple[str, PeInterface], str] = {}
_WRAPPER_MEMO: dict[tuple[PeInterface, int, str], str] = {}


def _pe_verilog(target: Target) -> str:
    """The PE's Verilog, generated once per process (generation runs Yosys)."""
    key = (target.label, target.iface)
    if key not in _VERILOG_MEMO:
        _VERILOG_MEMO[key] = target.verilog()
    return _VERILOG_MEMO[key]


def wrapper_build(target: Target, rows: int, *, waves: bool = False, root: Path | None = None) -> runner.Build:
    """Cached Verilator build of ``rows`` copies of the target behind the batch wrapper."""
    top = f"tb_{target.iface.module}_r{rows}"
    wkey = (target.iface, rows, top)
    if wkey not in _WRAPPER_MEMO:
        _WRAPPER_MEMO[wkey] = wrapper_verilog(target.iface, rows, top)
    sources = {f"{target.iface.module}.v": _pe_verilog(target), f"{top}.v": _WRAPPER_MEMO[wkey]}
    return runner.build(top, sources, top, waves=waves, root=root, build_args=WRAPPER_BUILD_ARGS,
                        public_top_only=True, hier_blocks=[target.iface.module])


def bare_build(target: Target, *, root: Path | None = None) -> runner.Build:
    """Cached Verilator build of the bare PE (toplevel = the PE module)."""
    return runner.build(target.iface.module, {f"{target.iface.module}.v": _pe_verilog(target)},
                        target.iface.module, root=root)


def run_naive(target: Target, a: np.ndarray, b: np.ndarray, first: np.ndarray, expected: np.ndarray,
              bld: runner.Build | None = None) -> float:
    """Drive one chain ``a``/``b`` ``[steps, lanes]`` into the bare PE the naive way (one
    await and one assert per vector, see :func:`peforge.sim.tb_mac.naive`); return the
    seconds of the simulation run.  Raises :class:`runner.SimRunError` on a mismatch."""
    import time

    bld = bld or bare_build(target)
    f = target.iface
    shifts_a = np.arange(f.lanes, dtype=object) * f.a_bits
    shifts_b = np.arange(f.lanes, dtype=object) * f.b_bits
    a_int = [sum(int(c) << int(s) for c, s in zip(row, shifts_a)) for row in a]
    b_int = [sum(int(c) << int(s) for c, s in zip(row, shifts_b)) for row in b]
    run_dir = bld.directory.parent / "runs" / f"{bld.name}-naive-{os.getpid()}-{next(_RUN_COUNTER)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    inp = run_dir / "in.npz"
    if max(f.lanes * f.a_bits, f.lanes * f.b_bits, f.acc_bits) > 64:
        raise ValueError(f"run_naive supports ports of up to 64 bits, {f.module} has wider ones")
    np.savez(inp, a=np.array(a_int, np.uint64), b=np.array(b_int, np.uint64), first=np.asarray(first, np.uint8), expected=np.asarray(expected, np.uint64),
             latency=np.array(f.latency))
    t0 = time.perf_counter()
    runner.run_test(bld, TB_MODULE, run_dir, testcase="naive", env={"PEFORGE_SIM_IN": str(inp)})
    seconds = time.perf_counter() - t0
    shutil.rmtree(run_dir, ignore_errors=True)
    return seconds


# --- plan ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    """Cycle layout shared by every pass of one vector set (offsets from the reset cycle)."""

    steps: int
    step_cycle: np.ndarray     # [steps] cycle of each step
    length: int                # cycles in a pass (reset included)
    latency: int

    @staticmethod
    def of(vs: VectorSet, latency: int) -> "_Layout":
        gaps = np.zeros(vs.steps, np.int64) if vs.gaps is None else vs.gaps
        step_cycle = 1 + np.arange(vs.steps) + np.cumsum(gaps)
        length = int(step_cycle[-1]) + latency if vs.steps else 1 + latency
        return _Layout(vs.steps, step_cycle, length, latency)

    def checked_cycles(self) -> np.ndarray:
        """Offsets 1..length whose outputs belong to this pass (the last one is the next reset)."""
        return np.arange(1, self.length + 1)

    def source_step(self) -> tuple[np.ndarray, np.ndarray]:
        """For each checked cycle: index of the latest step it must include (-1: reset value),
        and whether the cycle shows that step's result for the first time (out_valid=1)."""
        src = self.checked_cycles() - self.latency
        idx = np.searchsorted(self.step_cycle, src, side="right") - 1
        fresh = np.zeros(src.shape, bool)
        ok = idx >= 0
        fresh[ok] = self.step_cycle[idx[ok]] == src[ok]
        return idx, fresh


@dataclass(frozen=True)
class _Pass:
    set_index: int
    row0: int          # first batch row of the set in this pass
    nrows: int         # real rows (the rest of the wrapper rows are padding)
    start: int         # plan cycle of the reset


@dataclass
class Plan:
    """A cycle-by-cycle schedule for the wrapper (see module docstring)."""

    rows: int
    latency: int
    sets: list[VectorSet]
    layouts: list[_Layout]
    passes: list[_Pass]
    cycles: int
    rst: np.ndarray = field(repr=False)
    valid: np.ndarray = field(repr=False)
    first: np.ndarray = field(repr=False)     # [cycles, rows]
    a: np.ndarray = field(repr=False)         # [cycles, rows, lanes]
    b: np.ndarray = field(repr=False)

    @property
    def vectors(self) -> int:
        return sum(p.nrows * self.layouts[p.set_index].steps for p in self.passes)


def make_plan(sets: Sequence[VectorSet], rows: int, iface: PeInterface, seed: int = 0,
              passes: Sequence[_Pass] | None = None) -> Plan:
    """Lay ``sets`` out as passes of ``rows`` rows (or only the given ``passes``)."""
    latency = iface.latency
    layouts = [_Layout.of(vs, latency) for vs in sets]
    if passes is None:
        todo = [(si, r0, min(rows, vs.batch - r0)) for si, vs in enumerate(sets) for r0 in range(0, vs.batch, rows)]
    else:
        todo = [(p.set_index, p.row0, p.nrows) for p in passes]
    plan_passes, start = [], 0
    for si, r0, n in todo:
        plan_passes.append(_Pass(si, r0, n, start))
        start += layouts[si].length
    cycles = start + 1
    rng = np.random.default_rng(seed)
    lanes = iface.lanes
    rst = np.zeros(cycles, np.uint8)
    valid = np.zeros(cycles, np.uint8)
    first = rng.integers(0, 2, (cycles, rows), dtype=np.uint8)        # garbage outside steps
    a = rng.integers(0, 1 << iface.a_bits, (cycles, rows, lanes), dtype=np.int64)
    b = rng.integers(0, 1 << iface.b_bits, (cycles, rows, lanes), dtype=np.int64)
    for p in plan_passes:
        vs, lay = sets[p.set_index], layouts[p.set_index]
        rst[p.start] = 1
        cyc = p.start + lay.step_cycle
        valid[cyc] = 1
        first[cyc, :p.nrows] = vs.first[p.row0:p.row0 + p.nrows].T
        a[cyc, :p.nrows] = vs.a[p.row0:p.row0 + p.nrows].transpose(1, 0, 2)
        b[cyc, :p.nrows] = vs.b[p.row0:p.row0 + p.nrows].transpose(1, 0, 2)
        first[cyc, p.nrows:] = 1                                         # padding rows: harmless
    return Plan(rows, latency, list(sets), layouts, plan_passes, cycles, rst, valid, first, a, b)


# --- encode / decode ----------------------------------------------------------------------------

def _bits_to_strings(bits: np.ndarray) -> np.ndarray:
    """[cycles, n] 0/1 array, LSB first -> array of n-char '0'/'1' bytes strings, MSB first."""
    chars = (bits[:, ::-1].astype(np.uint8) + ord("0"))
    chars = np.ascontiguousarray(chars)
    return chars.view(f"S{chars.shape[1]}").ravel()


def _pack(codes: np.ndarray, width: int) -> np.ndarray:
    """[cycles, k] codes of ``width`` bits -> strings with code j at bits [j*width +: width]."""
    shifts = np.arange(width, dtype=np.int64)
    bits = (codes[..., None] >> shifts) & 1
    return _bits_to_strings(bits.reshape(codes.shape[0], -1))


def encode(plan: Plan, iface: PeInterface) -> dict[str, np.ndarray]:
    """The npz payload for :func:`peforge.sim.tb_mac.batch`."""
    c = plan.cycles
    return {
        "rst": plan.rst, "valid": plan.valid,
        "first": _bits_to_strings(plan.first),
        "a": _pack(plan.a.reshape(c, -1), iface.a_bits),
        "b": _pack(plan.b.reshape(c, -1), iface.b_bits),
    }


def _unpack(strings: np.ndarray, rows: int, width: int) -> np.ndarray:
    """Strings (MSB first, row r at bits [r*width +: width]) -> [cycles, rows] values:
    uint64 when width <= 64, else Python ints (object).  Non-0/1 characters raise."""
    n = rows * width
    raw = np.frombuffer(np.ascontiguousarray(strings).tobytes(), np.uint8).reshape(-1, n)
    bits = raw - ord("0")
    if (bits > 1).any():
        bad = chr(int(raw[bits > 1][0]))
        raise ValueError(f"simulator returned a non-binary value {bad!r} on a {n}-bit output")
    bits = bits.reshape(-1, rows, width)[:, ::-1, :]       # row-major, each field MSB first
    if width <= 64:
        padded = np.zeros(bits.shape[:2] + (64,), np.uint8)
        padded[..., 64 - width:] = bits
        return np.packbits(padded, axis=-1).view(">u8")[..., 0].astype(np.uint64)
    pad = (-width) % 8
    padded = np.zeros(bits.shape[:2] + (width + pad,), np.uint8)
    padded[..., pad:] = bits
    by = np.packbits(padded, axis=-1)
    out = np.empty(bits.shape[:2], object)
    flat = by.reshape(-1, by.shape[-1])
    out.reshape(-1)[:] = [int.from_bytes(row.tobytes(), "big") for row in flat]
    return out


def _as_raw(values: Any, width: int) -> np.ndarray:
    """Golden output -> uint64 array (width <= 64) or object array of Python ints."""
    arr = np.asarray(values)
    if width <= 64:
        if arr.dtype == object:
            return np.vectorize(int, otypes=[object])(arr).astype(np.uint64)
        return arr.astype(np.uint64)
    out = np.empty(arr.shape, object)
    out.reshape(-1)[:] = [int(v) for v in arr.reshape(-1)]
    return out


# --- run ------------------------------------------------------------------------------------------

def simulate(target: Target, plan: Plan, bld: runner.Build, run_dir: Path | None = None,
             keep: bool = False) -> dict[str, np.ndarray]:
    """Drive ``plan`` through the built wrapper; return decoded ``acc``, ``out_valid`` (and
    ``flags``), each ``[cycles, rows]``."""
    iface = target.iface
    if run_dir is None:
        run_dir = bld.directory.parent / "runs" / f"{bld.name}-{os.getpid()}-{next(_RUN_COUNTER)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    inp, out = run_dir / "in.npz", run_dir / "out.npz"
    arrays: dict[str, Any] = encode(plan, iface)
    np.savez(inp, **arrays)
    runner.run_test(bld, TB_MODULE, run_dir, testcase="batch",
                    env={"PEFORGE_SIM_IN": str(inp), "PEFORGE_SIM_OUT": str(out)})
    with np.load(out) as data:
        raw = {"acc": _unpack(data["acc"], plan.rows, iface.acc_bits),
               "out_valid": _unpack(data["out_valid"], plan.rows, 1).astype(bool)}
        if iface.flag_bits:
            raw["flags"] = _unpack(data["flags"], plan.rows, iface.flag_bits)
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return raw


def golden_for(target: Target, vs: VectorSet) -> dict[str, np.ndarray]:
    """Golden outputs of a set as raw arrays (``acc`` and, when the PE has it, ``flags``)."""
    res = target.golden(vs.a, vs.b, vs.first)
    out = {"acc": _as_raw(res["acc"], target.iface.acc_bits)}
    if target.iface.flag_bits:
        if "acc_flags" not in res:
            raise ValueError(f"{target.iface.module} has acc_flags but the golden model returned none")
        out["flags"] = _as_raw(res["acc_flags"], target.iface.flag_bits)
    return out


# --- check ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    """One disagreement between the simulated PE and the golden model.

    ``kind`` is ``result`` (the cycle that first shows step ``step``), ``hold`` (a later cycle
    that must still show it, e.g. after a bubble), ``reset`` (before any step) or
    ``out_valid``; ``signal`` is ``acc``, ``acc_flags`` or ``out_valid``.
    """

    set_name: str
    row: int
    step: int
    kind: str
    signal: str
    expected: int
    actual: int
    cycle: int


@dataclass
class CheckResult:
    checked: int
    mismatch_count: int
    mismatches: list[Mismatch]


def check(plan: Plan, raw: dict[str, np.ndarray], goldens: Sequence[dict[str, np.ndarray]],
          limit: int = 10) -> CheckResult:
    """Compare every checked cycle of every pass with the golden model (vectorised per set).

    ``goldens[i]`` holds the raw golden arrays of ``plan.sets[i]`` (see :func:`golden_for`).
    """
    checked = 0
    count = 0
    found: list[Mismatch] = []
    by_set: dict[int, list[_Pass]] = {}
    for p in plan.passes:
        by_set.setdefault(p.set_index, []).append(p)
    for si, passes in by_set.items():
        vs, lay, gold = plan.sets[si], plan.layouts[si], goldens[si]
        idx, fresh = lay.source_step()
        offs = lay.checked_cycles()
        starts = np.array([p.start for p in passes])
        cyc = starts[:, None] + offs[None, :]                              # [npass, P]
        # rows of the set covered by these passes, in pass order
        row_ids = np.concatenate([np.arange(p.row0, p.row0 + p.nrows) for p in passes])
        pass_of_row = np.concatenate([np.full(p.nrows, k) for k, p in enumerate(passes)])
        slot_of_row = np.concatenate([np.arange(p.nrows) for p in passes])
        cyc_rows = cyc[pass_of_row]                                         # [nrows, P]
        checked += int(row_ids.size) * lay.steps
        signals = [("acc", "acc", gold["acc"])]
        if "flags" in gold:
            signals.append(("flags", "acc_flags", gold["flags"]))
        for key, signal, g in signals:
            g_rows = g[row_ids]
            zero = np.zeros((g_rows.shape[0], 1), g_rows.dtype)
            if g_rows.dtype == object:
                zero[:] = 0
            ext = np.concatenate([zero, g_rows], axis=1)
            expected = ext[:, idx + 1]                                      # [nrows, P]
            actual = raw[key][cyc_rows, slot_of_row[:, None]]
            bad = np.argwhere(actual != expected)
            count += len(bad)
            for r, k in bad[: max(0, limit - len(found))]:
                step = int(idx[k])
                kind = "reset" if step < 0 else ("result" if fresh[k] else "hold")
                found.append(Mismatch(vs.name, int(row_ids[r]), step, kind, signal,
                                      int(expected[r, k]), int(actual[r, k]), int(cyc_rows[r, k])))
        exp_valid = np.broadcast_to(fresh, cyc_rows.shape)
        act_valid = raw["out_valid"][cyc_rows, slot_of_row[:, None]]
        bad = np.argwhere(act_valid != exp_valid)
        count += len(bad)
        for r, k in bad[: max(0, limit - len(found))]:
            found.append(Mismatch(vs.name, int(row_ids[r]), int(idx[k]), "out_valid", "out_valid",
                                  int(exp_valid[r, k]), int(act_valid[r, k]), int(cyc_rows[r, k])))
    return CheckResult(checked, count, found)


def describe(target: Target, plan: Plan, mismatches: Sequence[Mismatch]) -> str:
    """Human-readable mismatch lines: inputs (hex and value), expected vs actual."""
    f = target.iface
    wa, wb, wacc = -(-f.a_bits // 4), -(-f.b_bits // 4), -(-f.acc_bits // 4)
    sets = {vs.name: vs for vs in plan.sets}
    lines = []
    for m in mismatches:
        vs = sets[m.set_name]
        head = f"- {m.set_name} row {m.row} step {m.step} ({m.kind}, cycle {m.cycle}): {m.signal}"
        if m.signal == "out_valid":
            lines.append(f"{head} expected {m.expected} got {m.actual}")
            continue
        show = target.show_flags if m.signal == "acc_flags" else target.show_acc
        width = 1 if m.signal == "acc_flags" else wacc
        lines.append(f"{head} expected 0x{m.expected:0{width}x} ({show(m.expected)}) "
                     f"got 0x{m.actual:0{width}x} ({show(m.actual)})")
        if m.step >= 0:
            chain_start = m.step
            while chain_start > 0 and not vs.first[m.row, chain_start]:
                chain_start -= 1
            lo = max(chain_start, m.step - 3)
            if lo > chain_start:
                lines.append(f"    chain starts at step {chain_start} ({m.step - chain_start} earlier steps)")
            for t in range(lo, m.step + 1):
                ops = ", ".join(
                    f"a=0x{int(vs.a[m.row, t, i]):0{wa}x} ({target.show_a(int(vs.a[m.row, t, i]))}) "
                    f"b=0x{int(vs.b[m.row, t, i]):0{wb}x} ({target.show_b(int(vs.b[m.row, t, i]))})"
                    for i in range(vs.lanes))
                lines.append(f"    step {t} first={int(vs.first[m.row, t])}: {ops}")
    return "\n".join(lines)
