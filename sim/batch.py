"""The shared testbench path: what to simulate (:class:`Bench`), cycle plans, wide-word encoding,
output decoding and the vectorised check.  Family-independent: everything comes from the PE's
manifest (:class:`~peforge.sim.ports.PortMap`) and its golden model.

The flow for a list of :class:`~peforge.sim.vectors.VectorSet`:

1. :func:`make_plan` cuts each set into *passes* of ``rows`` batch rows (one row per PE copy in
   the wrapper).  A pass is: one reset cycle, the steps (``beats`` input cycles each, spaced by
   the PE's initiation interval and the set's bubbles), and ``latency - 1`` idle cycles; the
   plan ends with one idle cycle.
2. :func:`encode` turns the plan into one ``din`` word per cycle (binary, :func:`to_din`):
   every input port of every copy packed as the manifest's lane packing says; cycles without
   an input carry random values (the PE must ignore them), and so do ports the PE samples only
   on a step's last beat, on the other beats.
3. The wrapper (:mod:`peforge.sim.wrapper`) reads the words from a file, one per falling clock
   edge, and records ``dout`` at every falling edge into another, so the cocotb module
   :mod:`peforge.sim.tb` crosses into Python once per chunk, not once per cycle;
   :func:`decode` cuts the record (:func:`from_dout`) into the output ports.
4. :func:`check` compares *every cycle after each reset* with what the golden model implies:
   each output equals its value after the latest step whose last beat was presented
   ``latency`` or more cycles earlier (the reset value before the first), ``out_valid`` is
   high exactly ``latency`` cycles after a last beat.  So results, bubble holds, reset and
   timing are all checked, in one NumPy comparison per set.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np

from . import runner
from .ports import FIRST, OUT_VALID, Field, PortMap
from .vectors import VectorSet
from .wrapper import CONTROL_BITS, group_name, wrapper_verilog

__all__ = [
    "Bench",
    "Layout",
    "Plan",
    "Mismatch",
    "CheckResult",
    "bench_for",
    "consecutive_groups",
    "rows_for",
    "wrapper_build",
    "bare_build",
    "make_plan",
    "encode",
    "port_bits",
    "as_raw",
    "decode",
    "from_bits",
    "to_din",
    "from_dout",
    "checked_outputs",
    "golden_for",
    "check",
    "describe",
    "run_naive",
    "TB_MODULE",
    "BUILD_ARGS",
    "MAKE_ARGS",
]

TB_MODULE = "peforge.sim.tb"
T = TypeVar("T")


@dataclass(frozen=True)
class Bench:
    """What the shared testbench needs to know about one PE design.

    Members
    -------
    label : str
        Human readable design description (the spec's repr).
    ports : PortMap
        Ports, lane packing and timing, from the manifest.
    verilog : callable
        ``() -> str``: the PE's Verilog text (module ``ports.module``).
    golden : callable
        ``(vector_set) -> {output port: [batch, steps] values}``.
    text : callable
        ``(port, code) -> str``: the value a code stands for, for reports ('' when unknown).
    """

    label: str
    ports: PortMap
    verilog: Callable[[], str]
    golden: Callable[[VectorSet], Mapping[str, Any]]
    text: Callable[[str, int], str] = lambda port, code: ""


def consecutive_groups(items: Sequence[T], size: Callable[[T], int], budget: int) -> list[list[T]]:
    """``items`` cut, in order, into groups of about ``budget`` in total ``size`` each (a group
    closes before the item that would exceed it; an item larger than the budget is a group of
    its own): one simulator round trip per group."""
    groups: list[list[T]] = [[]]
    total = 0
    for item in items:
        n = size(item)
        if groups[-1] and total + n > budget:
            groups.append([])
            total = 0
        groups[-1].append(item)
        total += n
    return groups


def bench_for(spec: Any) -> Bench:
    """The :class:`Bench` of any family's spec: its manifest, Verilog and golden model."""
    from peforge import formats, rtl
    from peforge.models import golden

    man = rtl.manifest(spec)
    ports = PortMap.from_manifest(man)
    named: dict[str, str] = {
        port: info["format"]
        for port, info in (man.get("lane_packing") or {}).items()
        if isinstance(info, Mapping) and isinstance(info.get("format"), str)
    }
    named.update(
        {
            info["port"]: info["format"]
            for info in (man.get("scales") or {}).values()
            if isinstance(info, Mapping) and isinstance(info.get("port"), str) and isinstance(info.get("format"), str)
        }
    )
    decoders: dict[str, Any] = {}
    for port, name in named.items():  # value text of input codes, where the manifest names a format
        try:
            decoders[port] = formats.get(name)
        except (TypeError, ValueError):
            pass
    result: Mapping[str, Any] = man.get("result") or {}
    flags: Mapping[str, Any] = result.get("flags") or {}

    def text(port: str, code: int) -> str:
        try:
            if port in decoders:
                return repr(float(decoders[port].decode(np.array([code], np.int64))[0]))
            if port == result.get("port"):
                vals = np.asarray(golden.value(spec, np.array([code], dtype=object if code >> 63 else np.uint64)))
                return repr(vals[0].tolist()) if vals.ndim > 1 else repr(float(vals[0]))
            if port == flags.get("port"):
                names = (n for bit, n in sorted(flags.get("bits", {}).items()) if code >> int(bit) & 1)
                return "{" + ",".join(names) + "}"
        except (ValueError, TypeError, OverflowError, IndexError):
            pass
        return ""

    return Bench(
        label=repr(spec),
        ports=ports,
        verilog=lambda: rtl.verilog(spec),
        golden=lambda vs: golden.run(spec, first=vs.first, **vs.inputs),
        text=text,
    )


def rows_for(ports: PortMap) -> int:
    """PE copies per wrapper.  The simulator pays per copy and cycle (the wrapper's file I/O
    per cycle is small beside 64 copies' evaluation; Python pays only per chunk), and the golden
    model per step, so more rows mainly shorten the sets' chains; 64 keeps one word a few
    hundred bytes and the sets' layout (:func:`~peforge.sim.vectors.layout_rows`) unchanged."""
    return 64


#: Extra Verilator arguments for wrapper builds (a group of 8 PEs is a hierarchical block,
#: compiled once: measured on 64 FP32 MACs, about half the simulator CPU time of one block per
#: PE, and a fully flattened build saves a little more but takes twice as long to compile).
BUILD_ARGS: tuple[str, ...] = ()
#: ``make`` variables for the wrapper's C++ build: -O2 instead of Verilator's -Os evaluates
#: 64 copies of an FP32 MAC about 15 % faster (measured on the batch testbench) for about the
#: same build time.
MAKE_ARGS: tuple[str, ...] = ("OPT_FAST=-O2", "OPT_GLOBAL=-O2")

_VERILOG_MEMO: dict[tuple[str, str], str] = {}


def _pe_verilog(bench: Bench) -> str:
    """The PE's Verilog, generated once per process (generation runs Yosys)."""
    key = (bench.label, bench.ports.module)
    if key not in _VERILOG_MEMO:
        _VERILOG_MEMO[key] = bench.verilog()
    return _VERILOG_MEMO[key]


def wrapper_build(
    bench: Bench, rows: int, *, waves: bool = False, root: Path | None = None, inner_blocks: Sequence[str] = ()
) -> runner.Build:
    """Cached Verilator build of ``rows`` copies of the PE behind the batch wrapper
    (``inner_blocks``: modules inside the design compiled once each too, e.g. an array's PE)."""
    module = bench.ports.module
    top = f"tb_{module}_r{rows}"
    sources = {f"{module}.v": _pe_verilog(bench), f"{top}.v": wrapper_verilog(bench.ports, rows, top)}
    return runner.build(
        top,
        sources,
        top,
        waves=waves,
        root=root,
        build_args=BUILD_ARGS,
        make_args=MAKE_ARGS,
        public_top_only=True,
        hier_blocks=[group_name(top), *inner_blocks],
    )


def bare_build(bench: Bench, *, root: Path | None = None) -> runner.Build:
    """Cached Verilator build of the bare PE (toplevel = the PE module)."""
    module = bench.ports.module
    return runner.build(module, {f"{module}.v": _pe_verilog(bench)}, module, root=root)


# --- plan -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Cycle layout shared by every pass of one vector set (offsets from the reset cycle):
    every input cycle spaced by the set's bubbles and the PE's initiation interval."""

    steps: int
    beats: int
    beat_cycle: np.ndarray  # [steps * beats] cycle of every input
    length: int  # cycles in a pass (reset included)
    latency: int

    @staticmethod
    def of(vs: VectorSet, ports: PortMap) -> "Layout":
        n = vs.steps * ports.beats
        gaps = np.zeros(n, np.int64) if vs.gaps is None else vs.gaps
        if gaps.size != n:
            raise ValueError(
                f"{vs.name}: {gaps.size} gaps for {vs.steps} steps of {ports.beats} beat(s) "
                f"({ports.module}): want one before every input cycle"
            )
        beat_cycle = 1 + np.arange(n) + np.cumsum(gaps + (ports.interval - 1))
        length = int(beat_cycle[-1]) + ports.latency if n else 1 + ports.latency
        return Layout(vs.steps, ports.beats, beat_cycle, length, ports.latency)

    @property
    def step_cycle(self) -> np.ndarray:
        """[steps] cycle of every step's last beat (the input that completes it)."""
        return self.beat_cycle[self.beats - 1 :: self.beats]

    def checked_cycles(self) -> np.ndarray:
        """Offsets 1..length whose outputs belong to this pass (the last one is the next reset)."""
        return np.arange(1, self.length + 1)

    def source_step(self) -> tuple[np.ndarray, np.ndarray]:
        """For each checked cycle: index of the latest step it must include (-1: reset value),
        and whether the cycle shows that step's result for the first time (out_valid=1)."""
        step_cycle = self.step_cycle
        src = self.checked_cycles() - self.latency
        idx = np.searchsorted(step_cycle, src, side="right") - 1
        fresh = np.zeros(src.shape, bool)
        ok = idx >= 0
        fresh[ok] = step_cycle[idx[ok]] == src[ok]
        return idx, fresh


@dataclass(frozen=True)
class _Pass:
    set_index: int
    row0: int  # first batch row of the set in this pass
    nrows: int  # real rows (the rest of the wrapper rows are padding)
    start: int  # plan cycle of the reset


@dataclass
class Plan:
    """A cycle-by-cycle schedule for the wrapper (see module docstring)."""

    rows: int
    ports: PortMap
    sets: list[VectorSet]
    layouts: list[Layout]
    passes: list[_Pass]
    cycles: int

    @property
    def vectors(self) -> int:
        return sum(p.nrows * self.layouts[p.set_index].steps for p in self.passes)


def make_plan(sets: Sequence[VectorSet], rows: int, ports: PortMap, passes: Sequence[_Pass] | None = None) -> Plan:
    """Lay ``sets`` out as passes of ``rows`` rows (or only the given ``passes``)."""
    layouts = [Layout.of(vs, ports) for vs in sets]
    if passes is None:
        todo = [(si, r0, min(rows, vs.batch - r0)) for si, vs in enumerate(sets) for r0 in range(0, vs.batch, rows)]
    else:
        todo = [(p.set_index, p.row0, p.nrows) for p in passes]
    plan_passes, start = [], 0
    for si, r0, n in todo:
        plan_passes.append(_Pass(si, r0, n, start))
        start += layouts[si].length
    return Plan(rows, ports, list(sets), layouts, plan_passes, start + 1)


# --- encode / decode ------------------------------------------------------------------------------


def _port_values(vs: VectorSet, f: Field, ports: PortMap) -> tuple[np.ndarray, bool]:
    """``[batch, inputs, lanes]`` values of port ``f`` and whether they go on last beats only."""
    if f.name == FIRST:
        values = vs.first.astype(np.int64)
    elif f.name in vs.inputs:
        values = vs.inputs[f.name]
    else:
        raise ValueError(
            f"set {vs.name!r} gives no values for input port {f.name!r} of {ports.module}: it has {sorted(vs.inputs)}"
        )
    per_step = int(np.prod(values.shape[2:], dtype=np.int64))
    batch, steps = values.shape[:2]
    if per_step == f.lanes * ports.beats:
        return values.reshape(batch, steps * ports.beats, f.lanes), False
    if per_step == f.lanes and f.name in ports.last_beat_only:
        return values.reshape(batch, steps, f.lanes), True
    raise ValueError(
        f"set {vs.name!r}: port {f.name!r} of {ports.module} takes {f.lanes} lane(s) per input "
        f"and {ports.beats} input(s) per step, got {per_step} value(s) per step "
        f"(shape {values.shape})"
    )


def port_bits(what: str, name: str, values: np.ndarray, bits: int) -> np.ndarray:
    """``[..., lanes]`` codes -> ``[..., lanes * bits]`` uint8 bits, lane 0 / bit 0 first;
    ValueError naming the set ``what`` and port when a code does not fit its lane."""
    shape = (*values.shape[:-1], values.shape[-1] * bits)
    try:
        if values.dtype != np.uint64 and np.any(values < 0):
            raise OverflowError
        if bits <= 64:
            words = values.astype(np.uint64)
            if bits < 64 and np.any(words >> np.uint64(bits)):
                raise OverflowError
            nbytes = -(-bits // 8)  # little-endian bytes of the narrowest integer type -> bits, in C
            size = next(n for n in (1, 2, 4, 8) if n >= nbytes)
            by = words.astype(f"<u{size}").view(np.uint8).reshape(*words.shape, size)[..., :nbytes]
            return np.unpackbits(by, axis=-1, bitorder="little")[..., :bits].reshape(shape)
        if np.any(values >> bits):
            raise OverflowError
    except OverflowError:
        bad = [int(v) for v in np.asarray(values).reshape(-1) if not 0 <= int(v) < 1 << bits][0]
        raise ValueError(f"set {what!r}: port {name!r} code {bad} does not fit its {bits}-bit lane") from None
    parts = []
    for k in range(0, bits, 32):  # wide words (Python ints): 32 bits at a time
        n = min(32, bits - k)
        part = ((values >> k) & ((1 << n) - 1)).astype(np.uint64)
        parts.append(((part[..., None] >> np.arange(n, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8))
    return np.concatenate(parts, axis=-1).reshape(shape)


def encode(plan: Plan, seed: int = 0) -> bytes:
    """The ``din`` words of every cycle, as the wrapper reads them (see :func:`to_din`)."""
    ports, rows, cycles = plan.ports, plan.rows, plan.cycles
    nbits = CONTROL_BITS + rows * ports.in_bits
    rng = np.random.default_rng(seed)
    raw = np.frombuffer(rng.bytes(-(-cycles * nbits // 8)), np.uint8)
    bits = np.unpackbits(raw)[: cycles * nbits].reshape(cycles, nbits)  # random: what the PE ignores
    bits[:, :CONTROL_BITS] = 0
    per_row = bits[:, CONTROL_BITS:].reshape(cycles, rows, ports.in_bits)
    names = {f.name for f in ports.inputs}
    for vs in plan.sets:
        unknown = sorted(set(vs.inputs) - names)
        if unknown:
            raise ValueError(
                f"set {vs.name!r} gives values for {unknown}, but {ports.module} has no such "
                f"input port: it has {sorted(names)}"
            )
    for p in plan.passes:
        vs, lay = plan.sets[p.set_index], plan.layouts[p.set_index]
        bits[p.start, 0] = 1  # reset
        beat_cycle = p.start + lay.beat_cycle
        bits[beat_cycle, 1] = 1  # in_valid
        last_cycle = p.start + lay.step_cycle
        for f in ports.inputs:
            values, last_only = _port_values(vs, f, ports)
            at = last_cycle if last_only else beat_cycle
            bits_of = port_bits(vs.name, f.name, values[p.row0 : p.row0 + p.nrows].transpose(1, 0, 2), f.lane_bits)
            per_row[at, : p.nrows, f.offset : f.offset + f.width] = bits_of
    return to_din(bits)


def to_din(bits: np.ndarray) -> bytes:
    """``[words, width]`` uint8 bits (LSB first) -> the wrapper's input file: per word
    ``ceil(width / 8)`` bytes, most significant first (what ``$fread`` reads into a vector)."""
    return np.packbits(bits, axis=-1, bitorder="little")[:, ::-1].tobytes()


def from_dout(blob: bytes, words: int, width: int, what: str) -> np.ndarray:
    """The wrapper's output file -> ``[words, width]`` uint8 bits, LSB first.  Per word
    ``$fwrite("%u")`` writes ``4 * ceil(width / 32)`` bytes, least significant first (Verilator
    is two-state: no X or Z to lose); ValueError naming ``what`` on a wrong size."""
    size = 4 * -(-width // 32)
    if len(blob) != words * size:
        raise ValueError(f"{what}: {len(blob)} bytes of output, expected {words} words of {size} bytes")
    raw = np.frombuffer(blob, np.uint8).reshape(words, size)
    return np.unpackbits(raw, axis=-1, bitorder="little", count=width)


def from_bits(bits: np.ndarray) -> np.ndarray:
    """``[..., width]`` uint8 bits, LSB first -> values: uint64 (width <= 64) or Python ints."""
    width = bits.shape[-1]
    by = np.packbits(bits, axis=-1, bitorder="little")
    if width <= 64:
        pad = np.zeros(by.shape[:-1] + (8,), np.uint8)
        pad[..., : by.shape[-1]] = by
        return pad.view("<u8")[..., 0]
    out = np.empty(by.shape[:-1], object)
    flat = by.reshape(-1, by.shape[-1])
    out.reshape(-1)[:] = [int.from_bytes(row.tobytes(), "little") for row in flat]
    return out


def decode(blob: bytes, plan: Plan, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The recorded ``dout`` words (see :func:`from_dout`) -> ``{output port: [cycles, rows] values}``
    (``names`` only).  A port of up to 57 bits is read straight from the record's bytes (one
    8-byte gather per copy and cycle); wider ones go through the record's bits."""
    ports, rows = plan.ports, plan.rows
    width = rows * ports.out_bits
    what = f"simulation of {ports.module}"
    size = 4 * -(-width // 32)
    if len(blob) != plan.cycles * size:
        from_dout(blob, plan.cycles, width, what)  # raises the size error
    raw = np.zeros((plan.cycles, size + 8), np.uint8)  # 8 spare bytes: every gather stays inside
    raw[:, :size] = np.frombuffer(blob, np.uint8).reshape(plan.cycles, size)
    bits: np.ndarray | None = None
    out = {}
    for f in ports.outputs:
        if names is not None and f.name not in names:
            continue
        if f.width <= 57:
            first = np.arange(rows) * ports.out_bits + f.offset  # [rows] first bit of the port
            gathered = np.take(raw, (first // 8)[:, None] + np.arange(8), axis=1)  # [cycles, rows, 8]
            words = np.ascontiguousarray(gathered).view("<u8")[..., 0]
            shift = (first % 8).astype(np.uint64)
            out[f.name] = (words >> shift) & np.uint64((1 << f.width) - 1)
        else:
            if bits is None:
                bits = from_dout(blob, plan.cycles, width, what).reshape(plan.cycles, rows, ports.out_bits)
            out[f.name] = from_bits(bits[..., f.offset : f.offset + f.width])
    return out


def as_raw(values: Any, width: int) -> np.ndarray:
    """Golden output -> uint64 array (width <= 64) or object array of Python ints: the form the
    recorded outputs are decoded to, so the two compare element by element."""
    arr = np.asarray(values)
    if width <= 64:
        if arr.dtype == object:
            return np.vectorize(int, otypes=[object])(arr).astype(np.uint64)
        return arr.astype(np.uint64)
    out = np.empty(arr.shape, object)
    out.reshape(-1)[:] = [int(v) for v in arr.reshape(-1)]
    return out


def checked_outputs(ports: PortMap) -> list[Field]:
    """Outputs compared with the golden model: all but ``out_valid`` (timing) and handshakes."""
    return [f for f in ports.outputs if f.name != OUT_VALID and f.name not in ports.unchecked]


def golden_for(bench: Bench, vs: VectorSet) -> dict[str, np.ndarray]:
    """Golden outputs of a set as raw ``[batch, steps]`` arrays, one per checked output port."""
    res = dict(bench.golden(vs))
    want = checked_outputs(bench.ports)
    missing = [f.name for f in want if f.name not in res]
    extra = sorted(set(res) - {f.name for f in want})
    if missing or extra:
        raise ValueError(
            f"{bench.ports.module}: golden model returns {sorted(res)}, the manifest's checked "
            f"outputs are {[f.name for f in want]}"
        )
    out = {}
    for f in want:
        arr = as_raw(res[f.name], f.width)
        if arr.shape != vs.first.shape:
            raise ValueError(f"{bench.ports.module}: golden {f.name!r} has shape {arr.shape}, want {vs.first.shape}")
        out[f.name] = arr
    return out


# --- check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """One disagreement between the simulated PE and the golden model.

    ``kind`` is ``result`` (the cycle that first shows step ``step``), ``hold`` (a later cycle
    that must still show it, e.g. after a bubble), ``reset`` (before any step) or
    ``out_valid``; ``signal`` is the output port.
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


def check(
    plan: Plan, raw: Mapping[str, np.ndarray], goldens: Mapping[int, Mapping[str, np.ndarray]], limit: int = 10
) -> CheckResult:
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
        cyc = starts[:, None] + offs[None, :]  # [npass, P]
        row_ids = np.concatenate([np.arange(p.row0, p.row0 + p.nrows) for p in passes])
        pass_of_row = np.concatenate([np.full(p.nrows, k) for k, p in enumerate(passes)])
        slot_of_row = np.concatenate([np.arange(p.nrows) for p in passes])
        cyc_rows = cyc[pass_of_row]  # [nrows, P]
        checked += int(row_ids.size) * lay.steps
        compared: list[tuple[str, np.ndarray, np.ndarray]] = []
        for signal, g in gold.items():
            g_rows = g[row_ids]
            reset = np.full((g_rows.shape[0], 1), plan.ports.reset_value(signal), g_rows.dtype)
            expected = np.concatenate([reset, g_rows], axis=1)[:, idx + 1]  # [nrows, P]
            compared.append((signal, expected, raw[signal][cyc_rows, slot_of_row[:, None]]))
        compared.append(
            (
                OUT_VALID,
                np.broadcast_to(fresh, cyc_rows.shape),
                raw[OUT_VALID][cyc_rows, slot_of_row[:, None]].astype(bool),
            )
        )
        for signal, expected, actual in compared:
            bad = np.argwhere(actual != expected)
            count += len(bad)
            for r, k in bad[: max(0, limit - len(found))]:
                step = int(idx[k])
                kind = (
                    "out_valid"
                    if signal == OUT_VALID
                    else ("reset" if step < 0 else ("result" if fresh[k] else "hold"))
                )
                found.append(
                    Mismatch(
                        vs.name,
                        int(row_ids[r]),
                        step,
                        kind,
                        signal,
                        int(expected[r, k]),
                        int(actual[r, k]),
                        int(cyc_rows[r, k]),
                    )
                )
    return CheckResult(checked, count, found)


def _code_text(bench: Bench, port: str, code: int, width: int) -> str:
    text = bench.text(port, code)
    return f"0x{code:0{-(-width // 4)}x}" + (f" ({text})" if text else "")


def describe(bench: Bench, plan: Plan, mismatches: Sequence[Mismatch]) -> str:
    """Human-readable mismatch lines: expected vs actual, and the chain's inputs (hex and value)."""
    ports = bench.ports
    word = "block" if ports.beats > 1 or ports.last_beat_only else "step"
    sets = {vs.name: vs for vs in plan.sets}
    lines = []
    for m in mismatches:
        vs = sets[m.set_name]
        head = f"- {m.set_name} row {m.row} {word} {m.step} ({m.kind}, cycle {m.cycle}): {m.signal}"
        if m.signal == OUT_VALID:
            lines.append(f"{head} expected {m.expected} got {m.actual}")
            continue
        width = ports.output(m.signal).width
        lines.append(
            f"{head} expected {_code_text(bench, m.signal, m.expected, width)} "
            f"got {_code_text(bench, m.signal, m.actual, width)}"
        )
        if m.step < 0:
            continue
        chain_start = m.step
        while chain_start > 0 and not vs.first[m.row, chain_start]:
            chain_start -= 1
        lo = max(chain_start, m.step - 3)
        if lo > chain_start:
            lines.append(f"    chain starts at {word} {chain_start} ({m.step - chain_start} earlier)")
        for t in range(lo, m.step + 1):
            parts = [f"first={int(vs.first[m.row, t])}"]
            for name, values in vs.inputs.items():
                f = ports.input(name)
                codes = np.asarray(values[m.row, t]).reshape(-1)
                parts.append(f"{name}=" + " ".join(_code_text(bench, name, int(c), f.lane_bits) for c in codes))
            lines.append(f"    {word} {t}: " + " ".join(parts))
    return "\n".join(lines)


# --- the naive reference testbench ------------------------------------------------------------------


def run_naive(bench: Bench, vs: VectorSet, expected: np.ndarray, bld: runner.Build | None = None) -> float:
    """Drive row 0 of ``vs`` into the bare PE the naive way (one await and one assert per
    vector, see :func:`peforge.sim.tb.naive`); return the seconds of the simulation run.
    Only for PEs whose inputs are ``in_first``, ``a``, ``b`` (the benchmark's baseline).
    Raises :class:`runner.SimRunError` on a mismatch."""
    p = bench.ports
    if sorted(f.name for f in p.inputs) != sorted([FIRST, "a", "b"]) or p.beats != 1 or p.interval != 1:
        raise ValueError(
            f"run_naive drives in_first, a and b one step per cycle; {p.module} has "
            f"{[f.name for f in p.inputs]}, {p.beats} beat(s), interval {p.interval}"
        )
    words = {}
    for name in ("a", "b"):
        f = p.input(name)
        lanes = vs.inputs[name][0].reshape(vs.steps, -1)
        words[name] = [sum(int(c) << (i * f.lane_bits) for i, c in enumerate(row)) for row in lanes]
    if max(p.input("a").width, p.input("b").width, p.output("acc").width) > 64:
        raise ValueError(f"run_naive supports ports of up to 64 bits, {p.module} has wider ones")
    bld = bld or bare_build(bench)
    run_dir = bld.directory.parent / "runs" / f"{bld.name}-naive-{os.getpid()}-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    inp = run_dir / "in.npz"
    np.savez(
        inp,
        a=np.array(words["a"], np.uint64),
        b=np.array(words["b"], np.uint64),
        first=vs.first[0].astype(np.uint8),
        expected=np.asarray(expected, np.uint64),
        latency=np.array(p.latency),
    )
    t0 = time.perf_counter()
    runner.run_test(bld, TB_MODULE, run_dir, testcase="naive", env={"PEFORGE_SIM_IN": str(inp)})
    seconds = time.perf_counter() - t0
    shutil.rmtree(run_dir, ignore_errors=True)
    return seconds
