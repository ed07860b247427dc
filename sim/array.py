"""Regression of PE arrays: whole GEMMs through the generated array on Verilator, every cycle
compared with the array's golden model (:mod:`peforge.models.golden.array`).

A *set* is a stream of tiles in the golden model's operand shapes (drawn with the PE family's
own random-operand model, its ``energy`` part, or from edge codes): random GEMMs, edge-code
GEMMs, long-``k`` GEMMs and streams with idle cycles between tiles.  :func:`plan` lays a set
out cycle by cycle (:func:`peforge.models.golden.array.schedule`: full rate, tiles back to back)
and packs every port word: a step's values go into the PE port least significant lane first,
``beats`` words per step; ``in_first`` / ``in_last`` mark a tile's first and last input;
weight-stationary tiles shift their weight rows in with ``w_load`` while the previous tile
runs.  The cocotb module :mod:`peforge.sim.tb_array` drives the plan and records every output,
and :func:`check` compares ``out_valid`` on every cycle and ``out`` / ``out_flags`` on every
valid one.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from peforge.arrays import COL, ROW, ArraySpec, array_geometry
from peforge.families import family_of

from . import runner
from .batch import consecutive_groups

if TYPE_CHECKING:
    from .regression import VerifyResult

__all__ = [
    "TileSet",
    "random_set",
    "edge_set",
    "verify_array",
    "plan",
    "check",
    "build",
    "simulate",
    "TB_MODULE",
    "DEFAULT_RANDOM_K",
]

TB_MODULE = "peforge.sim.tb_array"
#: ``k`` of the random GEMMs (rows x k x cols per tile).
DEFAULT_RANDOM_K = 64
_RUN = itertools.count()
Progress = Callable[[int, int], None]


@dataclass
class TileSet:
    """A stream of tiles in the golden model's shapes (see :mod:`peforge.models.golden.array`).

    Members
    -------
    name : str
    x, w : ndarray
        ``x_tiles`` and ``w_tiles``.
    ports : dict
        The PE's other ports (row, column and array-wide), by name.
    gap : int
        Idle cycles between tiles.
    """

    name: str
    x: np.ndarray
    w: np.ndarray
    ports: dict[str, np.ndarray] = field(default_factory=dict)
    gap: int = 0

    @property
    def tiles(self) -> int:
        return int(self.x.shape[0])

    def macs(self, spec: ArraySpec) -> int:
        geo = array_geometry(spec)
        steps = self.x.shape[2] if geo.dataflow == "output-stationary" else self.x.shape[1]
        return self.tiles * steps * geo.rows * geo.cols * geo.pe.k_per_step * geo.pe.acc_lanes


# --- operands -------------------------------------------------------------------------------------
def _random_inputs(spec: ArraySpec, rng: np.random.Generator, batch: int, steps: int) -> dict[str, np.ndarray]:
    """``batch`` PE chains of ``steps`` random finite operands (the PE family's toggle model)."""
    model = family_of(spec.pe).part("energy")
    return model.random(spec.pe, rng, np.zeros((batch, steps), bool))


def _edge_codes(bits: int, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Codes at the edges of a ``bits``-bit pattern: 0, 1, all ones and its neighbours, the sign
    bit and its neighbours (zeros, smallest subnormals, largest values, NaN / inf, -0, the most
    negative integer ...)."""
    top = (1 << bits) - 1
    half = 1 << (bits - 1) if bits > 1 else 1
    edges = np.array(sorted({0, 1, top, max(top - 1, 0), half, half - 1, min(half + 1, top)}), np.uint64)
    return edges[rng.integers(0, len(edges), shape)]


def _with_edges(values: np.ndarray, bits: int, rng: np.random.Generator, p: float) -> np.ndarray:
    v = np.asarray(values).astype(np.uint64)
    pick = rng.random(v.shape) < p
    return np.where(pick, _edge_codes(bits, v.shape, rng), v)


def _element_bits(spec: ArraySpec, name: str, per_step: int) -> int:
    """Bits of one element of port ``name`` (a port word holds ``per_step / beats`` elements)."""
    view = array_geometry(spec).pe
    width = view.inputs[name][1]
    per_beat = max(per_step // view.beats, 1)
    return width // per_beat if per_step > 1 else width


def _draw(spec: ArraySpec, rng: np.random.Generator, tiles: int, steps: int, edges: float) -> TileSet:
    geo = array_geometry(spec)
    R, C = geo.rows, geo.cols
    os_ = geo.dataflow == "output-stationary"
    rows = _random_inputs(spec, rng, tiles * R, steps)
    cols = _random_inputs(spec, rng, tiles * C, steps)
    ctl = _random_inputs(spec, rng, tiles, steps)

    def edge(name: str, arr: np.ndarray) -> np.ndarray:
        if not edges:
            return arr
        per = int(np.prod(arr.shape[2:], dtype=np.int64)) if arr.ndim > 2 else 1
        return _with_edges(arr, _element_bits(spec, name, per), rng, edges).astype(arr.dtype)

    a = edge("a", np.asarray(rows["a"]))
    ports: dict[str, np.ndarray] = {}
    if os_:
        b = edge("b", np.asarray(cols["b"]))
        x = a.reshape(tiles, R, steps, *a.shape[2:])  # [T, R, S, *a]
        w = np.moveaxis(b.reshape(tiles, C, steps, *b.shape[2:]), 1, 2)  # [T, S, C, *b]
    else:
        x = np.moveaxis(a.reshape(tiles, R, steps, *a.shape[2:]), 1, 2)  # [T, M, R, *a]
        wr = edge("b", np.asarray(_random_inputs(spec, rng, tiles * R * C, 1)["b"]))
        w = wr.reshape(tiles, R, C, *wr.shape[2:])  # [T, R, C, *b]
    for name, (role, _) in geo.pe.inputs.items():
        if name in ("a", "b"):
            continue
        if role == ROW:
            ports[name] = edge(name, np.asarray(rows[name])).reshape(tiles, R, steps)
        elif role == COL:
            ports[name] = np.moveaxis(edge(name, np.asarray(cols[name])).reshape(tiles, C, steps), 1, 2)
        else:
            ports[name] = np.asarray(ctl[name]).reshape(tiles, steps)
    if "mode" in ports:  # every mode of a run-time-mode PE
        modes = len(getattr(spec.pe, "modes", ()) or (1,))
        ports["mode"] = rng.integers(0, modes, (tiles, 1)).repeat(steps, axis=1)
        for key in ("a_signed", "b_signed"):
            ports[key] = rng.integers(0, 2, (tiles, 1)).repeat(steps, axis=1).astype(bool)
    return TileSet("", x, w, ports)


def _steps_for_k(spec: ArraySpec, k: int) -> int:
    geo = array_geometry(spec)
    steps = max(1, -(-k // geo.pe.k_per_step))
    dq = spec.dequant_share
    if dq is not None:
        steps = -(-steps // dq.group) * dq.group
    return steps


def random_set(
    spec: ArraySpec, tiles: int, k: int = DEFAULT_RANDOM_K, seed: int = 0, gap: int = 0, name: str = "random"
) -> TileSet:
    """``tiles`` random GEMM tiles (OS: rows x k x cols each; WS: ``k`` activation rows per
    weight tile) of random finite operands."""
    rng = np.random.default_rng(seed)
    steps = _steps_for_k(spec, k) if spec.dataflow == "output-stationary" else max(1, k)
    ts = _draw(spec, rng, tiles, steps, 0.0)
    ts.name, ts.gap = name, gap
    return ts


def edge_set(
    spec: ArraySpec, tiles: int, k: int = 16, seed: int = 0, p: float = 0.5, gap: int = 0, name: str = "edges"
) -> TileSet:
    """Tiles whose operand codes are edge codes with probability ``p`` (zeros, extremes,
    NaN / inf codes, the most negative integer ...)."""
    rng = np.random.default_rng(seed)
    steps = _steps_for_k(spec, k) if spec.dataflow == "output-stationary" else max(1, k)
    ts = _draw(spec, rng, tiles, steps, p)
    ts.name, ts.gap = name, gap
    return ts


# --- plan -----------------------------------------------------------------------------------------
@dataclass
class Plan:
    """Per-cycle port words (cycle 0 is the reset cycle) and the expected outputs."""

    inputs: dict[str, list[int]]
    widths: dict[str, int]
    expected: dict[str, Any]
    cycles: int
    macs: int


def _words(values: np.ndarray, lead: int, beats: int, width: int) -> np.ndarray:
    """Port words ``[*lead, beats]`` (Python ints) of per-step values ``[*lead, ...]``: the step's
    values, flattened, split into ``beats`` words of equal lanes, lane 0 least significant."""
    lead_shape = values.shape[:lead]
    flat = np.asarray(values).reshape(*lead_shape, -1)
    per = flat.shape[-1]
    if per == 1:
        return np.repeat(flat.astype(object), beats, axis=-1)
    if per % beats:
        raise ValueError(f"{per} values per step do not split into {beats} beats")
    lanes = per // beats
    if width % lanes:
        raise ValueError(f"{lanes} values per beat do not fill a {width}-bit port")
    eb = width // lanes
    parts = flat.astype(object).reshape(*lead_shape, beats, lanes) & ((1 << eb) - 1)
    out = np.zeros((*lead_shape, beats), dtype=object)
    for ln in range(lanes):
        out = out | (parts[..., ln] << (ln * eb))
    return out


def _concat(words: np.ndarray, axis: int, width: int) -> np.ndarray:
    """Concatenate port words along ``axis`` (index 0 least significant)."""
    moved = np.moveaxis(words, axis, -1)
    out = np.zeros(moved.shape[:-1], dtype=object)
    for k in range(moved.shape[-1]):
        out = out | (moved[..., k].astype(object) << (k * width))
    return out


def plan(spec: ArraySpec, ts: TileSet) -> Plan:
    """Lay ``ts`` out cycle by cycle and compute its expected outputs (the golden model)."""
    from peforge.models.golden.array import run_array

    geo = array_geometry(spec)
    exp = run_array(spec, ts.x, ts.w, gap=ts.gap, **ts.ports)
    sch = exp["schedule"]
    n = sch.cycles + 1
    pe = geo.pe
    widths: dict[str, int] = {"rst": 1, "in_valid": 1, "in_first": 1}
    ins: dict[str, np.ndarray] = {
        "rst": np.zeros(n, object),
        "in_valid": np.zeros(n, object),
        "in_first": np.zeros(n, object),
    }
    ins["rst"][0] = 1

    def port(name: str, width: int) -> np.ndarray:
        widths[name] = width
        ins[name] = np.zeros(n, object)
        return ins[name]

    if geo.dataflow == "output-stationary":
        T, R, S = ts.x.shape[:3]
        beats = pe.beats
        cyc = sch.beat_cycles + 1  # [T, S, beats]
        port("in_last", 1)[sch.last_cycle + 1] = 1
        ins["in_valid"][cyc.reshape(-1)] = 1
        ins["in_first"][cyc[:, 0, :].reshape(-1)] = 1  # every beat of the first step
        for name, (role, width) in pe.inputs.items():
            if name == "a" or (name != "b" and role == ROW):
                vals = ts.x if name == "a" else ts.ports[name]
                words = _words(vals, 3, beats, width)  # [T, R, S, beats]
                per_cycle = _concat(words, 1, width)  # [T, S, beats]
                port(name, R * width)[cyc.reshape(-1)] = per_cycle.reshape(-1)
            elif name == "b" or role == COL:
                vals = ts.w if name == "b" else ts.ports[name]
                words = _words(vals, 3, beats, width)  # [T, S, C, beats]
                per_cycle = _concat(np.moveaxis(words, 2, 3), 3, width)  # [T, S, beats]
                port(name, geo.cols * width)[cyc.reshape(-1)] = per_cycle.reshape(-1)
            else:
                words = _words(ts.ports[name], 2, beats, width)  # [T, S, beats]
                port(name, width)[cyc.reshape(-1)] = words.reshape(-1)
    else:
        T, M, R = ts.x.shape[:3]
        cyc = sch.step_cycle + 1  # [T, M]
        ins["in_valid"][cyc.reshape(-1)] = 1
        ins["in_first"][cyc[:, 0]] = 1
        loads = sch.load_cycle + 1  # [T, R]: row R-1-r at r
        port("w_load", 1)[loads.reshape(-1)] = 1
        for name, (_role, width) in pe.inputs.items():
            if name == "a":
                words = _words(ts.x, 3, 1, width)[..., 0]  # [T, M, R]
                port("a", R * width)[cyc.reshape(-1)] = _concat(words, 2, width).reshape(-1)
            elif name == "b":
                words = _words(ts.w, 3, 1, width)[..., 0]  # [T, R, C]
                rowwords = _concat(words, 2, width)[:, ::-1]  # load r carries row R-1-r
                port("b", geo.cols * width)[loads.reshape(-1)] = rowwords.reshape(-1)
            else:
                words = _words(ts.ports[name], 2, 1, width)[..., 0]
                port(name, width)[cyc.reshape(-1)] = words.reshape(-1)
    expected = {
        "out_valid": np.concatenate([[False], exp["out_valid"]]),
        "out": np.concatenate([np.zeros((1, geo.cols), exp["out"].dtype), exp["out"]]),
    }
    if "out_flags" in exp:
        expected["out_flags"] = np.concatenate([np.zeros((1, geo.cols), np.uint64), exp["out_flags"]])
    return Plan({k: v.tolist() for k, v in ins.items()}, widths, expected, n, ts.macs(spec))


# --- build, simulate, check -----------------------------------------------------------------------
def build(spec: ArraySpec, *, waves: bool = False) -> runner.Build:
    """Cached Verilator build of the array (its PE module compiled once, as a hierarchical block)."""
    from peforge import rtl

    geo = array_geometry(spec)
    return runner.build(
        spec.name,
        {f"{spec.name}.v": rtl.verilog(spec)},
        spec.name,
        waves=waves,
        public_top_only=True,
        hier_blocks=[geo.unit.spec.name],
    )


def _bits(v: int, width: int) -> str:
    return format(int(v), f"0{width}b")


def simulate(
    spec: ArraySpec, pl: Plan, bld: runner.Build, keep: bool = False, run_dir: Path | None = None
) -> dict[str, list[str]]:
    """Drive ``pl`` through the built array; the raw '0'/'1' strings of every output per cycle."""
    geo = array_geometry(spec)
    outs = ["out_valid", "out"] + (["out_flags"] if geo.flags_width else [])
    run_dir = run_dir or bld.directory.parent / "runs" / f"{bld.name}-{os.getpid()}-{next(_RUN)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    inp, out = run_dir / "in.npz", run_dir / "out.npz"
    names = list(pl.inputs)
    arrays: dict[str, Any] = {
        f"in_{k}": (
            np.array(pl.inputs[k], dtype=np.int64)
            if pl.widths[k] <= 63
            else np.array([_bits(v, pl.widths[k]) for v in pl.inputs[k]], dtype="S")
        )
        for k in names
    }
    np.savez(inp, inputs=np.array(names), outputs=np.array(outs), **arrays)
    runner.run_test(
        bld, TB_MODULE, run_dir, testcase="stream", env={"PEFORGE_SIM_IN": str(inp), "PEFORGE_SIM_OUT": str(out)}
    )
    with np.load(out) as data:
        raw = {k: [s.decode("ascii") for s in data[f"out_{k}"].tolist()] for k in outs}
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return raw


#: Cycles per simulator run (bounds the plan's memory and paces progress).
RUN_CYCLES = 1 << 18


def _groups(sets: Sequence[TileSet]) -> list[list[TileSet]]:
    """Consecutive sets whose tiles add up to about :data:`RUN_CYCLES` cycles each."""
    return consecutive_groups(sets, lambda ts: ts.tiles * int(np.prod(ts.x.shape[1:3])), RUN_CYCLES)


def simulate_many(spec: ArraySpec, plans: Sequence[Plan], bld: runner.Build) -> list[dict[str, list[str]]]:
    """:func:`simulate` of several plans in one simulator run (each begins with its reset cycle);
    the outputs split back per plan."""
    if len(plans) == 1:
        return [simulate(spec, plans[0], bld)]
    names = list(plans[0].inputs)
    joined = Plan(
        {k: [v for pl in plans for v in pl.inputs[k]] for k in names},
        plans[0].widths,
        {},
        sum(pl.cycles for pl in plans),
        sum(pl.macs for pl in plans),
    )
    raw = simulate(spec, joined, bld)
    out, start = [], 0
    for pl in plans:
        out.append({k: v[start : start + pl.cycles] for k, v in raw.items()})
        start += pl.cycles
    return out


def _split(text: str, cols: int, width: int) -> list[int | None]:
    if any(ch not in "01" for ch in text):
        return [None] * cols
    v = int(text, 2)
    return [(v >> (j * width)) & ((1 << width) - 1) for j in range(cols)]


def check(spec: ArraySpec, pl: Plan, raw: dict[str, list[str]], limit: int = 10) -> tuple[int, list[str]]:
    """``(mismatching samples, first descriptions)``: ``out_valid`` every cycle, ``out`` (and
    ``out_flags``) on every cycle the golden model says is valid."""
    geo = array_geometry(spec)
    bad = 0
    notes: list[str] = []
    ev = pl.expected["out_valid"]
    for c in range(pl.cycles):
        got_v = raw["out_valid"][c]
        if got_v != ("1" if ev[c] else "0"):
            bad += 1
            if len(notes) < limit:
                notes.append(f"cycle {c}: out_valid {got_v}, expected {int(ev[c])}")
            continue
        if not ev[c]:
            continue
        for port, width in (("out", geo.out_width), ("out_flags", geo.flags_width)):
            if port not in pl.expected:
                continue
            got = _split(raw[port][c], geo.cols, width)
            want = [int(v) for v in pl.expected[port][c]]
            for j, (g, w) in enumerate(zip(got, want)):
                if g != w:
                    bad += 1
                    if len(notes) < limit:
                        notes.append(f"cycle {c}: {port} column {j} = {g if g is None else hex(g)}, expected {hex(w)}")
    return bad, notes


# --- the regression -------------------------------------------------------------------------------
def vector_sets(spec: ArraySpec, vectors: int, exhaustive: bool, seed: int) -> list[TileSet]:
    """The array's regression sets for about ``vectors`` random MACs-per-PE steps: random
    GEMMs (k = 64), edge-code GEMMs, a stream with idle cycles, tiles shorter than the drain
    (idle cycles the protocol inserts) and, with ``exhaustive``, long-``k`` GEMMs."""
    geo = array_geometry(spec)
    os_ = geo.dataflow == "output-stationary"
    k = DEFAULT_RANDOM_K
    steps = _steps_for_k(spec, k) if os_ else k
    tiles = max(1, vectors // steps)
    sets = [
        random_set(spec, tiles, k, seed=seed),
        edge_set(spec, max(2, tiles // 8), 16, seed=seed + 1),
        random_set(spec, 4, 8, seed=seed + 2, gap=3, name="gaps"),
        random_set(spec, 6, 1, seed=seed + 3, name="short"),
    ]
    if exhaustive:
        sets.append(random_set(spec, 2, 4096 if os_ else 512, seed=seed + 4, name="long_k"))
        sets.append(edge_set(spec, 2, 1024 if os_ else 128, seed=seed + 5, p=0.2, name="long_k_edges"))
    return sets


def verify_sets(
    spec: ArraySpec, sets: Sequence[TileSet], progress: Progress | None = None, waves_on_failure: bool = True
) -> "VerifyResult":
    """Simulate every set on one build of the array and compare each with the golden model."""
    from .regression import VerifyResult  # lazily: regression resolves every family's sim part

    t0 = time.perf_counter()
    bld = build(spec)
    build_s = bld.seconds
    checked = bad = 0
    notes: list[str] = []
    sizes: dict[str, int] = {}
    sim_s = 0.0
    total = sum(ts.tiles for ts in sets)
    done = 0
    first_bad: TileSet | None = None
    if progress:
        progress(0, total)
    for group in _groups(sets):  # one simulator run per group of sets (its start-up costs seconds)
        plans = [plan(spec, ts) for ts in group]
        t1 = time.perf_counter()
        raws = simulate_many(spec, plans, bld)
        for ts, pl, raw in zip(group, plans, raws):
            n_bad, n_notes = check(spec, pl, raw, 10 - len(notes))
            if n_bad and first_bad is None:
                first_bad = ts
            bad += n_bad
            notes += [f"[{ts.name}] {x}" for x in n_notes]
            checked += int(np.asarray(pl.expected["out_valid"]).sum()) * spec.cols
            sizes[ts.name] = sizes.get(ts.name, 0) + ts.tiles
            done += ts.tiles
        sim_s += time.perf_counter() - t1
        if progress:
            progress(done, total)
    waves = None
    if first_bad is not None and waves_on_failure:
        try:
            wb = build(spec, waves=True)
            run_dir = wb.directory / "waves"
            simulate(spec, plan(spec, first_bad), wb, keep=True, run_dir=run_dir)
            vcd = run_dir / "dump.vcd"
            waves = vcd if vcd.exists() else None
        except Exception:  # noqa: BLE001 - waveforms are a convenience; never mask the mismatch report
            waves = None
    seconds = time.perf_counter() - t0
    lines = [
        f"verify {spec.name}: {spec.rows}x{spec.cols} {spec.dataflow} array of {spec.pe.name}",
        f"  build {build_s:.1f} s{' (cached)' if bld.cached else ''}",
        "  sets (tiles): " + ", ".join(f"{k} {v}" for k, v in sizes.items()),
        f"  checked {checked} outputs in {seconds:.1f} s",
        f"  {'PASS' if bad == 0 else 'FAIL'}: {bad} mismatching output samples",
    ]
    lines += [f"    {x}" for x in notes]
    if waves is not None:
        lines.append(f"  waveform of the first failing set: {waves}")
    vps = checked / sim_s if sim_s > 0 else 0.0
    return VerifyResult(spec.name, checked, bad, seconds, vps, "\n".join(lines), build_s, waves, sizes)


def verify_array(
    spec: ArraySpec, vectors: int = 100_000, exhaustive: bool = False, seed: int = 0, progress: Progress | None = None
) -> "VerifyResult":
    """The family's ``regression`` part: :func:`vector_sets` through :func:`verify_sets`
    (``vectors`` counts PE steps of the random GEMMs)."""
    from .regression import check_request

    check_request(spec.pe, vectors, seed)
    return verify_sets(spec, vector_sets(spec, vectors, exhaustive, seed), progress)
