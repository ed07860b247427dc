"""Regression of PE arrays: whole GEMMs through the generated array on Verilator, every cycle
compared with the array's golden model (:mod:`peforge.models.golden.array`).

A *set* is a stream of tiles in the golden model's operand shapes (drawn with the PE family's
own random-operand model, its ``energy`` part, or from edge codes): random GEMMs, edge-code
GEMMs, long-``k`` GEMMs and streams with idle cycles between tiles.  :func:`plan` lays a set
out cycle by cycle (:func:`peforge.models.golden.array.schedule`: full rate, tiles back to back)
and packs every port word: a step's values go into the PE port least significant lane first,
``beats`` words per step; ``in_first`` / ``in_last`` mark a tile's first and last input;
weight-stationary tiles shift their weight rows in with ``w_load`` while the previous tile
runs.  The array runs on the same fast path as every PE (:mod:`peforge.sim.wrapper`,
:mod:`peforge.sim.session`): :func:`encode` writes each cycle's ports as one ``din`` word of
the batch wrapper around one copy of the array, the simulator reads them from a file and
records every cycle's outputs into another, and :func:`check` compares ``out_valid`` on every
cycle and ``out`` / ``out_flags`` on every valid one, vectorised.  :func:`simulate_naive`
(the cocotb module :mod:`peforge.sim.tb_array`, one Python write and read per port and cycle)
is kept as the benchmark's baseline.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from peforge.arrays import COL, ROW, ArraySpec, array_geometry
from peforge.families import family_of

from . import batch, runner
from .batch import consecutive_groups
from .ports import OUT_VALID, VALID, PortMap
from .session import Session
from .wrapper import CONTROL_BITS

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
    "encode",
    "decode",
    "simulate",
    "naive_build",
    "simulate_naive",
    "NAIVE_TB_MODULE",
    "DEFAULT_RANDOM_K",
]

#: The per-cycle cocotb testbench of :func:`simulate_naive` (the benchmark baseline).
NAIVE_TB_MODULE = "peforge.sim.tb_array"
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
    """Cached Verilator build of the array behind the shared batch wrapper (:mod:`.wrapper`: one
    copy fed from a file of ``din`` words), its PE module compiled once, as a hierarchical block."""
    geo = array_geometry(spec)
    return batch.wrapper_build(batch.bench_for(spec), 1, waves=waves, inner_blocks=[geo.unit.spec.name])


def encode(ports: PortMap, pl: Plan) -> bytes:
    """The plan's port words as the batch wrapper's ``din`` words, one per cycle (:func:`batch.to_din`)."""
    names = {f.name for f in ports.inputs}
    unknown = sorted(set(pl.inputs) - names - {ports.reset_port, VALID})
    if unknown:
        raise ValueError(f"plan drives {unknown}, but {ports.module} has no such input: it has {sorted(names)}")
    bits = np.zeros((pl.cycles, CONTROL_BITS + ports.in_bits), np.uint8)
    bits[:, 0] = pl.inputs[ports.reset_port]
    bits[:, 1] = pl.inputs[VALID]
    for f in ports.inputs:
        if f.name in pl.inputs:
            at = CONTROL_BITS + f.offset
            # Python ints: NumPy would make a list with values >= 2**63 float64
            values = np.asarray(pl.inputs[f.name], np.int64 if f.width < 64 else object)[:, None]
            bits[:, at : at + f.width] = batch.port_bits("plan", f.name, values, f.width)
    return batch.to_din(bits)


def decode(spec: ArraySpec, ports: PortMap, blob: bytes, cycles: int) -> dict[str, np.ndarray]:
    """The wrapper's record of ``cycles`` cycles -> ``out_valid [cycles]`` and every other output
    split per column ``[cycles, cols]`` (uint64, or Python ints beyond 64 bits)."""
    cols = array_geometry(spec).cols
    bits = batch.from_dout(blob, cycles, ports.out_bits, f"simulation of {ports.module}")
    out: dict[str, np.ndarray] = {}
    for f in ports.outputs:
        part = bits[:, f.offset : f.offset + f.width]
        out[f.name] = (
            part[:, 0].astype(bool) if f.name == OUT_VALID else batch.from_bits(part.reshape(cycles, cols, -1))
        )
    return out


def _run_dir(bld: runner.Build) -> Path:
    return bld.directory.parent / "runs" / f"{bld.name}-{os.getpid()}-{next(_RUN)}"


def simulate(
    spec: ArraySpec,
    groups: Sequence[Sequence[TileSet]],
    bld: runner.Build,
    keep: bool = False,
    run_dir: Path | None = None,
) -> Iterator[tuple[list[Plan], list[dict[str, np.ndarray]]]]:
    """Plans and recorded outputs (:func:`decode`) of each group of sets, one simulator process
    for all: a group's plans back to back in one chunk (each begins with its reset cycle), the
    next group planned (golden model) while the simulator runs this one."""
    ports = batch.bench_for(spec).ports
    todo = iter(groups)
    pending: deque[tuple[list[Plan], int]] = deque()
    with Session(bld, run_dir or _run_dir(bld), batch.TB_MODULE, keep=keep) as session:

        def feed() -> None:
            group = next(todo, None)
            if group is not None:
                plans = [plan(spec, ts) for ts in group]
                blob = b"".join(encode(ports, pl) for pl in plans)
                pending.append((plans, session.submit(blob, sum(pl.cycles for pl in plans))))

        feed()
        while pending:
            plans, key = pending[0]
            feed()
            pending.popleft()
            got = decode(spec, ports, session.result(key), sum(pl.cycles for pl in plans))
            parts, start = [], 0
            for pl in plans:
                parts.append({k: v[start : start + pl.cycles] for k, v in got.items()})
                start += pl.cycles
            yield plans, parts


def naive_build(spec: ArraySpec, *, waves: bool = False) -> runner.Build:
    """Cached Verilator build of the bare array (for :func:`simulate_naive`)."""
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


def simulate_naive(spec: ArraySpec, pl: Plan, bld: runner.Build) -> dict[str, np.ndarray]:
    """The baseline the benchmark measures the batch path against: the cocotb module
    :mod:`peforge.sim.tb_array` drives ``pl`` into the bare array (:func:`naive_build`) from
    Python, one write and one read per port and cycle; outputs as :func:`decode` gives them
    (None for a column that read X or Z)."""
    geo = array_geometry(spec)
    outs = ["out_valid", "out"] + (["out_flags"] if geo.flags_width else [])
    run_dir = _run_dir(bld)
    run_dir.mkdir(parents=True, exist_ok=True)
    inp, out = run_dir / "in.npz", run_dir / "out.npz"
    arrays: dict[str, Any] = {
        f"in_{k}": (
            np.array(v, dtype=np.int64)
            if pl.widths[k] <= 63
            else np.array([format(int(x), f"0{pl.widths[k]}b") for x in v], dtype="S")
        )
        for k, v in pl.inputs.items()
    }
    np.savez(inp, inputs=np.array(list(pl.inputs)), outputs=np.array(outs), **arrays)
    runner.run_test(
        bld, NAIVE_TB_MODULE, run_dir, testcase="stream", env={"PEFORGE_SIM_IN": str(inp), "PEFORGE_SIM_OUT": str(out)}
    )
    with np.load(out) as data:
        raw = {k: [s.decode("ascii") for s in data[f"out_{k}"].tolist()] for k in outs}
    shutil.rmtree(run_dir, ignore_errors=True)
    got: dict[str, np.ndarray] = {"out_valid": np.array([v == "1" for v in raw["out_valid"]])}
    for port, width in (("out", geo.out_width), ("out_flags", geo.flags_width)):
        if port in raw:
            got[port] = np.array([_split(t, geo.cols, width) for t in raw[port]], dtype=object)
    return got


#: Size of a simulator chunk, in tile-row-steps (bounds the plan's memory, paces progress, and
#: lets the next chunk's golden model run while the simulator runs this one).
RUN_CYCLES = 1 << 16


def _size(ts: TileSet) -> int:
    return ts.tiles * int(np.prod(ts.x.shape[1:3]))


def _slices(ts: TileSet) -> list[TileSet]:
    """``ts`` cut into runs of whole tiles of about :data:`RUN_CYCLES` each (each run of tiles
    back to back after its own reset cycle, checked against its own golden plan)."""
    n = max(1, RUN_CYCLES * ts.tiles // max(_size(ts), 1))
    if ts.tiles <= n:
        return [ts]
    return [
        TileSet(ts.name, ts.x[i : i + n], ts.w[i : i + n], {k: v[i : i + n] for k, v in ts.ports.items()}, ts.gap)
        for i in range(0, ts.tiles, n)
    ]


def _groups(sets: Sequence[TileSet]) -> list[list[TileSet]]:
    """Consecutive sets (and slices of large ones) of about :data:`RUN_CYCLES` each."""
    return consecutive_groups([part for ts in sets for part in _slices(ts)], _size, RUN_CYCLES)


def _split(text: str, cols: int, width: int) -> list[int | None]:
    if any(ch not in "01" for ch in text):
        return [None] * cols
    v = int(text, 2) if text else 0
    return [(v >> (j * width)) & ((1 << width) - 1) for j in range(cols)]


def _hex(v: Any) -> str:
    return "None" if v is None else hex(int(v))


def check(spec: ArraySpec, pl: Plan, got: dict[str, np.ndarray], limit: int = 10) -> tuple[int, list[str]]:
    """``(mismatching samples, first descriptions in cycle order)``: ``out_valid`` every cycle,
    ``out`` (and ``out_flags``) per column on every cycle the golden model says is valid (and
    the array agrees), in one vectorised comparison."""
    geo = array_geometry(spec)
    want_v = np.asarray(pl.expected["out_valid"], bool)
    got_v = np.asarray(got["out_valid"], bool)
    wrong = got_v != want_v
    bad = int(wrong.sum())
    notes = [
        (int(c), f"cycle {c}: out_valid {int(got_v[c])}, expected {int(want_v[c])}")
        for c in np.flatnonzero(wrong)[:limit]
    ]
    live = np.flatnonzero(want_v & ~wrong)
    for port, width in (("out", geo.out_width), ("out_flags", geo.flags_width)):
        if port not in pl.expected:
            continue
        want = batch.as_raw(np.asarray(pl.expected[port])[live], width)
        have = np.asarray(got[port])[live]
        diff = np.argwhere(have != want)
        bad += len(diff)
        for r, j in diff[:limit]:
            c = int(live[r])
            notes.append((c, f"cycle {c}: {port} column {j} = {_hex(have[r, j])}, expected {_hex(want[r, j])}"))
    notes.sort(key=lambda n: n[0])  # stable: per cycle out_valid, then out, then out_flags
    return bad, [n for _, n in notes[:limit]]


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
    spec: ArraySpec,
    sets: Sequence[TileSet],
    progress: Progress | None = None,
    waves_on_failure: bool = True,
    naive: bool = False,
) -> "VerifyResult":
    """Simulate every set on one build of the array and compare each with the golden model
    (``naive``: through the per-cycle cocotb baseline :func:`simulate_naive`, for benchmarks)."""
    from .regression import VerifyResult  # lazily: regression resolves every family's sim part

    t0 = time.perf_counter()
    bld = naive_build(spec) if naive else build(spec)
    build_s = bld.seconds
    checked = bad = 0
    notes: list[str] = []
    sizes: dict[str, int] = {}
    total = sum(ts.tiles for ts in sets)
    done = 0
    first_bad: TileSet | None = None
    if progress:
        progress(0, total)
    t1 = time.perf_counter()
    groups: list[list[TileSet]]
    runs: Iterable[tuple[list[Plan], list[dict[str, np.ndarray]]]]
    if naive:  # one simulator run per set
        groups = [[ts] for ts in sets]
        runs = (([pl], [simulate_naive(spec, pl, bld)]) for pl in (plan(spec, ts) for ts in sets))
    else:
        groups = _groups(sets)
        runs = simulate(spec, groups, bld)
    for (plans, gots), group in zip(runs, groups):  # runs first: its last next() closes the session
        for ts, pl, got in zip(group, plans, gots):
            n_bad, n_notes = check(spec, pl, got, 10 - len(notes))
            if n_bad and first_bad is None:
                first_bad = ts
            bad += n_bad
            notes += [f"[{ts.name}] {x}" for x in n_notes]
            checked += int(np.asarray(pl.expected["out_valid"]).sum()) * spec.cols
            sizes[ts.name] = sizes.get(ts.name, 0) + ts.tiles
            done += ts.tiles
        if progress:
            progress(done, total)
    sim_s = time.perf_counter() - t1
    waves = None
    if first_bad is not None and waves_on_failure:
        try:
            wb = build(spec, waves=True)
            run_dir = _run_dir(wb)
            for _ in simulate(spec, [[first_bad]], wb, keep=True, run_dir=run_dir):
                pass
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
