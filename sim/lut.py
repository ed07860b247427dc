"""Regression of the LUT PE (:class:`~peforge.spec.LutSpec`) on Verilator against its golden model.

Reuses the generic batch machinery (:func:`~peforge.sim.regression.verify_target`, the batch
wrapper, :mod:`~peforge.sim.tb_mac`) unchanged.  A test-only adapter (:class:`LutAdapter`)
presents the PE with the wrapper's port contract: its ``a`` / ``b`` words are cut into
``chunks`` "lanes" of at most 60 bits (the wrapper packs int64 codes) and it instantiates the
PE by module name, so the simulation runs the exact Verilog :func:`peforge.rtl.verilog` emits.
Every step is followed by ``planes - 1`` (or more) bubble cycles: the PE takes one input per
``initiation_interval`` cycles.

Sets: ``table_entries`` (every weight code for every table entry: for every mask m and every
pair of codes (c, c2), the weight vector ``w_j = c if m_j else c2``, so every plane selects every
entry; single steps and two-step chains), ``act_codes`` (every activation code in every
position), ``extremes`` (long chains of the most negative or largest activations and weights:
the accumulator's top bits), ``random`` (long random dot products, 30% extreme
operands) and ``random_gaps`` (extra bubbles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.hdl import Cat, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..formats import FloatFormat
from ..spec import LutSpec
from .batch import Target, rows_for
from .regression import Progress, VerifyResult, verify_target
from .vectors import VectorSet
from .wrapper import PeInterface

__all__ = ["LutCodec", "LutAdapter", "lut_target", "lut_sets", "verify_lut", "table_entries_set", "act_codes_set",
           "extreme_set", "random_set"]

_MAX_CHUNK = 60


@dataclass(frozen=True)
class LutCodec:
    """Packs activation codes ``[..., group]`` and weight codes ``[..., lanes, group]`` into
    adapter chunk codes ``[..., chunks]`` (chunk 0 least significant), and back."""

    spec: LutSpec

    @property
    def a_width(self) -> int:
        return self.spec.group * self.spec.act.bits

    @property
    def b_width(self) -> int:
        return self.spec.lanes * self.spec.group * self.spec.weight_code_bits

    @property
    def chunks(self) -> int:
        return -(-max(self.a_width, self.b_width) // _MAX_CHUNK)

    @property
    def a_bits(self) -> int:
        return -(-self.a_width // self.chunks)

    @property
    def b_bits(self) -> int:
        return -(-self.b_width // self.chunks)

    def _words(self, codes: np.ndarray, bits: int) -> np.ndarray:
        out = np.zeros(codes.shape[:-1], object)
        for j in range(codes.shape[-1]):
            out = out | (codes[..., j].astype(object) << (j * bits))
        return out

    def _split(self, words: np.ndarray, bits: int) -> np.ndarray:
        mask = (1 << bits) - 1
        return np.stack([((words >> (k * bits)) & mask).astype(np.int64) for k in range(self.chunks)], axis=-1)

    def encode(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = self.spec
        aw = self._words(np.asarray(a), s.act.bits)
        bw = self._words(np.asarray(b).reshape(b.shape[:-2] + (-1,)), s.weight_code_bits)
        return self._split(aw, self.a_bits), self._split(bw, self.b_bits)

    def decode(self, a_chunks: np.ndarray, b_chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = self.spec
        aw, bw = self._words(np.asarray(a_chunks), self.a_bits), self._words(np.asarray(b_chunks), self.b_bits)
        na, nb = s.act.bits, s.weight_code_bits
        a = np.stack([((aw >> (j * na)) & ((1 << na) - 1)).astype(np.int64) for j in range(s.group)], -1)
        b = np.stack([((bw >> (i * nb)) & ((1 << nb) - 1)).astype(np.int64)
                      for i in range(s.lanes * s.group)], -1)
        return a, b.reshape(b.shape[:-1] + (s.lanes, s.group))


class LutAdapter(wiring.Component):
    """Test-only: the LUT PE (by module name) behind the batch wrapper's port contract."""

    def __init__(self, spec: LutSpec) -> None:
        self._spec = spec
        self._codec = c = LutCodec(spec)
        super().__init__({"in_valid": In(1), "in_first": In(1), "a": In(c.chunks * c.a_bits),
                          "b": In(c.chunks * c.b_bits), "out_valid": Out(1),
                          "acc": Out(spec.lanes * spec.width)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        c = self._codec
        m.submodules.pe = Instance(
            self._spec.name, i_clk=ClockSignal(), i_rst=ResetSignal(), i_in_valid=self.in_valid,
            i_in_first=self.in_first, i_a=self.a[:c.a_width], i_b=self.b[:c.b_width],
            o_out_valid=self.out_valid, o_acc=self.acc)
        unused = Signal(len(self.a) - c.a_width + len(self.b) - c.b_width + 1, name="pad_unused")
        m.d.comb += unused.eq(Cat(self.a[c.a_width:], self.b[c.b_width:], 0))
        return m


def lut_target(spec: LutSpec) -> Target:
    """Target of a :class:`LutSpec` PE seen through :class:`LutAdapter`."""
    from amaranth.back import verilog

    from peforge import rtl
    from peforge.models import golden

    codec = LutCodec(spec)
    iface = PeInterface(module=f"tba_{spec.name}", lanes=codec.chunks, a_bits=codec.a_bits,
                        b_bits=codec.b_bits, acc_bits=spec.lanes * spec.width, flag_bits=0,
                        latency=spec.latency)
    man = rtl.manifest(spec)
    if man["latency"] != spec.latency or man["timing"]["initiation_interval"] != spec.planes:
        raise ValueError(f"{spec.name}: manifest timing {man['timing']} disagrees with the spec")

    def pe_verilog() -> str:
        return rtl.verilog(spec) + "\n" + verilog.convert(LutAdapter(spec), name=iface.module, emit_src=False)

    def gold(a: np.ndarray, b: np.ndarray, first: np.ndarray) -> dict:
        ac, bc = codec.decode(a, b)
        return golden.run(spec, a=ac, b=bc, first=first)

    w = spec.width

    def show_acc(code: int) -> str:
        lanes = [(code >> (i * w)) & ((1 << w) - 1) for i in range(spec.lanes)]
        return "[" + ", ".join(str(v - (1 << w) if v >> (w - 1) else v) for v in lanes) + "]"

    return Target(label=repr(spec), iface=iface, verilog=pe_verilog, golden=gold,
                  show_a=hex, show_b=hex, show_acc=show_acc)


# --- vector sets -----------------------------------------------------------------------------------

def _act_edges(spec: LutSpec) -> np.ndarray:
    """Most negative, largest, zero, one and minus one activation codes."""
    act = spec.act
    if isinstance(act, FloatFormat):
        one = int(act.encode(np.array([1.0]))[0])
        return np.array([act.max_code | act.sign_mask, act.max_code, 0, one, one | act.sign_mask, 1], np.int64)
    ints = [act.min_int, act.max_int, 0, 1] + ([-1] if act.signed else [])
    return act.from_int(np.array(ints)).astype(np.int64)


def _weight_edges(spec: LutSpec) -> np.ndarray:
    if spec.ternary:
        return np.array([0, 1, 3, 2], np.int64)
    k = spec.weight_code_bits
    return np.array([1 << (k - 1), (1 << (k - 1)) - 1, 0, (1 << k) - 1], np.int64)


def _acts(spec: LutSpec, shape: tuple[int, ...], rng: np.random.Generator, p_edge: float = 0.3) -> np.ndarray:
    codes = rng.integers(0, spec.act.num_codes, shape + (spec.group,), dtype=np.int64)
    hit = rng.random(codes.shape) < p_edge
    codes[hit] = rng.choice(_act_edges(spec), size=int(hit.sum()))
    return codes


def _weights(spec: LutSpec, shape: tuple[int, ...], rng: np.random.Generator, p_edge: float = 0.3) -> np.ndarray:
    codes = rng.integers(0, 1 << spec.weight_code_bits, shape + (spec.lanes, spec.group), dtype=np.int64)
    hit = rng.random(codes.shape) < p_edge
    codes[hit] = rng.choice(_weight_edges(spec), size=int(hit.sum()))
    return codes


def _first(rng: np.random.Generator, batch: int, steps: int) -> np.ndarray:
    p = np.exp(rng.uniform(np.log(1.0 / max(steps, 2)), np.log(0.5), size=(batch, 1)))
    first = rng.random((batch, steps)) < p
    first[:, 0] = True
    first[0, 1:] = False  # row 0: one long dot product
    return first


def _gaps(spec: LutSpec, steps: int, rng: np.random.Generator | None = None, p: float = 0.1) -> np.ndarray:
    gaps = np.full(steps, spec.initiation_interval - 1, np.int64)
    if rng is not None:
        gaps += np.where(rng.random(steps) < p, rng.integers(1, 4, steps), 0)
    return gaps


def _set(spec: LutSpec, name: str, a: np.ndarray, b: np.ndarray, first: np.ndarray,
         gaps: np.ndarray) -> VectorSet:
    ac, bc = LutCodec(spec).encode(a, b)
    return VectorSet(name, ac, bc, first, gaps)


def _rows_of(n: int, rows: int) -> tuple[int, int]:
    per = -(-n // rows)
    return rows, per


def table_entries_set(spec: LutSpec, rows: int, seed: int = 0) -> VectorSet:
    """Every weight code for every table entry (see module docstring)."""
    rng = np.random.default_rng(seed)
    g, nc = spec.group, 1 << spec.weight_code_bits
    m, c, c2 = np.meshgrid(np.arange(1 << g), np.arange(nc), np.arange(nc), indexing="ij")
    bits = (m.ravel()[:, None] >> np.arange(g)) & 1
    vecs = np.where(bits == 1, c.ravel()[:, None], c2.ravel()[:, None])        # [N, group]
    n_steps = -(-len(vecs) // spec.lanes)
    idx = np.arange(n_steps * spec.lanes) % len(vecs)
    nrows, per = _rows_of(n_steps, rows)
    order = np.arange(nrows * per) % n_steps
    b = vecs[idx].reshape(n_steps, spec.lanes, g)[order].reshape(nrows, per, spec.lanes, g)
    a = _acts(spec, (nrows, per), rng, p_edge=0.5)
    first = np.zeros((nrows, per), bool)
    first[:, 0::2] = True  # every vector as a fresh sum and on top of a previous one
    return _set(spec, "table_entries", a, b, first, _gaps(spec, per))


def act_codes_set(spec: LutSpec, rows: int, seed: int = 0) -> VectorSet:
    """Every activation code in every group position (weights random)."""
    rng = np.random.default_rng(seed)
    n = spec.act.num_codes
    nrows, per = _rows_of(n, rows)
    t = np.arange(nrows * per).reshape(nrows, per)
    a = np.stack([(t + j * 37) % n for j in range(spec.group)], -1).astype(np.int64)
    b = _weights(spec, (nrows, per), rng)
    first = rng.random((nrows, per)) < 0.25
    first[:, 0] = True
    return _set(spec, "act_codes", a, b, first, _gaps(spec, per))


def extreme_set(spec: LutSpec, rows: int, seed: int = 0) -> VectorSet:
    """Long chains (one per row) of the most negative or the largest activations times the most
    negative, largest or mixed weights: drives the accumulator to its extremes."""
    rng = np.random.default_rng(seed)
    steps = min(spec.max_count, 4096) if spec.acc_bits is None else 4096
    a_edge, w_edge = _act_edges(spec), _weight_edges(spec)
    a = np.empty((rows, steps, spec.group), np.int64)
    b = np.empty((rows, steps, spec.lanes, spec.group), np.int64)
    for r in range(rows):
        kind, wk = r % 3, (r // 3) % (len(w_edge) + 1)
        a[r] = a_edge[kind] if kind < 2 else _acts(spec, (steps,), rng, p_edge=0.9)
        b[r] = w_edge[wk] if wk < len(w_edge) else _weights(spec, (steps,), rng, p_edge=0.9)
    first = np.zeros((rows, steps), bool)
    first[:, 0] = True
    return _set(spec, "extremes", a, b, first, _gaps(spec, steps))


def random_set(spec: LutSpec, vectors_n: int, rows: int, seed: int = 0, gaps: bool = False,
               max_steps: int = 4096) -> VectorSet:
    """Random long dot products (30% extreme operands), chains of random length."""
    rng = np.random.default_rng(seed)
    steps = min(max_steps, max(1, -(-vectors_n // rows)))
    batch_n = max(1, -(-vectors_n // steps))
    return _set(spec, "random_gaps" if gaps else "random", _acts(spec, (batch_n, steps), rng),
                _weights(spec, (batch_n, steps), rng), _first(rng, batch_n, steps),
                _gaps(spec, steps, rng if gaps else None))


def lut_sets(spec: LutSpec, vectors_n: int, exhaustive: bool, seed: int, rows: int) -> list[VectorSet]:
    """The standard LUT regression sets; ``exhaustive`` adds every activation code per position
    (the table-entry set is always run: at most 2**16 steps)."""
    out = [table_entries_set(spec, rows, seed), extreme_set(spec, rows, seed + 1)]
    if exhaustive:
        out.append(act_codes_set(spec, rows, seed + 2))
    if vectors_n > 0:
        gap_n = max(1, vectors_n // 8)
        out.append(random_set(spec, max(1, vectors_n - gap_n), rows, seed + 3))
        out.append(random_set(spec, gap_n, rows, seed + 4, gaps=True, max_steps=512))
    return out


def verify_lut(spec: LutSpec, vectors: int = 100_000, exhaustive: bool = False, seed: int = 0,
               progress: Progress | None = None) -> VerifyResult:
    """Verify a :class:`LutSpec` PE's RTL against the golden model on Verilator."""
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 0:
        raise ValueError(f"vectors={vectors!r} must be an int >= 0")
    target = lut_target(spec)
    rows = rows_for(target.iface)
    sets = lut_sets(spec, vectors, exhaustive, seed, rows)
    return verify_target(target, sets, name=spec.name, seed=seed, progress=progress, rows=rows)
