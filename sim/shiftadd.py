"""Regression of the shift-add PE (:class:`~peforge.spec.ShiftAddSpec`) on Verilator.

Reuses the generic batch machinery (:func:`~peforge.sim.regression.verify_target`, the batch
wrapper, :mod:`~peforge.sim.tb_mac`).  A PE without ``group`` and not ``bitserial`` has the
plain PE port contract and is its own target.  Otherwise a test-only adapter
(:class:`ShiftAddAdapter`, instantiating the PE by module name, so the simulation runs the
exact Verilog :func:`peforge.rtl.verilog` emits) presents the plain contract:

* adapter lane ``i < lanes``: ``a`` lane i = activation code, ``b`` lane i = weight code (low
  bits); with ``group`` one extra lane whose ``b`` code is the ``scale`` code (its ``a`` code is
  ignored);
* ``bitserial``'s ``in_ready`` is left unconnected: every set spaces its inputs by
  ``weight.bits - 1`` bubble cycles (the PE's input rate), and the checker then sees every
  cycle, so a PE that drops or double-counts an input fails.

Sets: exhaustive activation x weight codes (lane 0; with ``group``, chains of one group with
scale 1.0), corners (most negative activation x every weight code, every activation x every
zero weight code), long chains of extreme products (the accumulator at its limits: exact
width, wrap or saturation; with ``group`` also huge and tiny scales, FP32 overflow), random
chains with restarts and random chains with extra bubbles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Cat, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..formats import FloatFormat, IntFormat
from ..spec import ShiftAddSpec
from .batch import Target, rows_for
from .regression import Progress, VerifyResult, verify_target
from .vectors import VectorSet
from .wrapper import PeInterface

__all__ = ["ShiftAddAdapter", "shiftadd_target", "shiftadd_sets", "verify_shiftadd", "needs_adapter"]


def needs_adapter(spec: ShiftAddSpec) -> bool:
    return spec.group is not None or spec.mode == "bitserial"


def _lane_bits(spec: ShiftAddSpec) -> tuple[int, int, int]:
    """(adapter lanes, a code bits, b code bits)."""
    wb = spec.weight.bits
    if spec.group is None:
        return spec.lanes, spec.act.bits, wb
    return spec.lanes + 1, spec.act.bits, max(wb, spec.scale.bits)  # type: ignore[union-attr]


class ShiftAddAdapter(wiring.Component):
    """Test-only: the shift-add PE (by module name) behind the plain PE port contract."""

    def __init__(self, spec: ShiftAddSpec) -> None:
        self._spec = spec
        lanes, ab, bb = _lane_bits(spec)
        super().__init__({"in_valid": In(1), "in_first": In(1), "a": In(lanes * ab), "b": In(lanes * bb),
                          "out_valid": Out(1), "acc": Out(spec.out_bits)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        s = self._spec
        lanes, ab, bb = _lane_bits(s)
        wb = s.weight.bits
        ports: dict[str, Any] = dict(
            i_clk=ClockSignal(), i_rst=ResetSignal(), i_in_valid=self.in_valid, i_in_first=self.in_first,
            i_a=self.a[:s.lanes * ab], i_b=Cat(*(self.b[i * bb:i * bb + wb] for i in range(s.lanes))),
            o_out_valid=self.out_valid, o_acc=self.acc)
        unused = [self.a[s.lanes * ab:]] if lanes > s.lanes else []
        unused += [self.b[i * bb + wb:(i + 1) * bb] for i in range(s.lanes) if bb > wb]
        if s.group is not None:
            sb = s.scale.bits  # type: ignore[union-attr]
            ports["i_scale"] = self.b[s.lanes * bb:s.lanes * bb + sb]
            if bb > sb:
                unused.append(self.b[s.lanes * bb + sb:])
        if s.mode == "bitserial":
            ready = Signal(name="in_ready")
            ports["o_in_ready"] = ready
            unused.append(ready)
        m.submodules.pe = Instance(s.name, **ports)
        pad = Signal(sum(len(u) for u in unused) + 1, name="pad_unused")
        m.d.comb += pad.eq(Cat(*unused, 0))
        return m


def _adapter_name(spec: ShiftAddSpec) -> str:
    return f"tba_{spec.name}"


def _split(spec: ShiftAddSpec, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Adapter lane codes -> golden-model inputs."""
    wmask = (1 << spec.weight.bits) - 1
    out = {"a": a[..., :spec.lanes], "b": b[..., :spec.lanes] & wmask}
    if spec.group is not None:
        out["scale"] = b[..., spec.lanes] & ((1 << spec.scale.bits) - 1)  # type: ignore[union-attr]
    return out


def shiftadd_target(spec: ShiftAddSpec) -> Target:
    """Target of a :class:`ShiftAddSpec` PE (through :class:`ShiftAddAdapter` when needed)."""
    from peforge import rtl
    from peforge.models import golden

    lanes, ab, bb = _lane_bits(spec)
    adapter = needs_adapter(spec)
    iface = PeInterface(module=_adapter_name(spec) if adapter else spec.name, lanes=lanes, a_bits=ab,
                        b_bits=bb, acc_bits=spec.out_bits, flag_bits=0, latency=spec.latency)
    man = rtl.manifest(spec)
    if man["latency"] != spec.latency:
        raise ValueError(f"{spec.name}: manifest latency {man['latency']} != spec latency {spec.latency}")

    def pe_verilog() -> str:
        text = rtl.verilog(spec)
        if not adapter:
            return text
        from amaranth.back import verilog

        return text + "\n" + verilog.convert(ShiftAddAdapter(spec), name=iface.module, emit_src=False)

    def gold(a: np.ndarray, b: np.ndarray, first: np.ndarray) -> dict:
        return golden.run(spec, first=first, **_split(spec, a, b))

    def show_acc(c: int) -> str:
        if spec.group is not None:
            return repr(float(np.array([c], np.uint32).view(np.float32)[0]))
        w = spec.width
        v = c - (1 << w) if c >> (w - 1) else c
        return f"{v} * 2^{spec.product_lsb_exp}"

    def show(fmt: Any):
        return lambda c: repr(float(fmt.decode(np.array([c & ((1 << fmt.bits) - 1)]))[0]))

    return Target(label=repr(spec), iface=iface, verilog=pe_verilog, golden=gold,
                  show_a=show(spec.act), show_b=show(spec.weight), show_acc=show_acc)


# --- vector sets ----------------------------------------------------------------------------------

def _act_codes(spec: ShiftAddSpec, shape: tuple[int, ...], rng: np.random.Generator, p_edge: float = 0.3) -> np.ndarray:
    """Uniform activation codes, with probability p_edge the most negative / largest / zero."""
    fmt = spec.act
    codes = rng.integers(0, fmt.num_codes, shape, dtype=np.int64)
    edges = np.array(_act_extremes(spec), np.int64)
    hit = rng.random(shape) < p_edge
    codes[hit] = rng.choice(edges, size=int(hit.sum()))
    return codes


def _act_extremes(spec: ShiftAddSpec) -> list[int]:
    """Codes of the most negative, the largest and zero activation."""
    fmt = spec.act
    if isinstance(fmt, IntFormat):
        return [int(c) for c in fmt.from_int(np.array([fmt.min_int, fmt.max_int, 0]))]
    assert isinstance(fmt, FloatFormat)
    return [fmt.sign_mask | fmt.max_code, fmt.max_code, 0]


def _weight_codes(spec: ShiftAddSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 1 << spec.weight.bits, shape, dtype=np.int64)


def _weight_extremes(spec: ShiftAddSpec) -> tuple[int, int]:
    """Codes of the most negative and the largest weight."""
    vals = spec.weight.values()
    return int(np.argmin(vals)), int(np.argmax(vals))


def _scale_codes(spec: ShiftAddSpec, shape: tuple[int, ...], rng: np.random.Generator,
                 p_any: float = 0.05) -> np.ndarray:
    """Scale codes: mostly moderate values of both signs, some uniformly random (any special)."""
    fmt = spec.scale
    if isinstance(fmt, IntFormat):
        return rng.integers(0, fmt.num_codes, shape, dtype=np.int64)
    assert isinstance(fmt, FloatFormat)
    vals = np.ldexp(1.0 + rng.random(shape), rng.integers(-12, 12, shape))
    if fmt.signed:
        vals = np.where(rng.random(shape) < 0.3, -vals, vals)
    codes = fmt.encode(vals, overflow="saturate").astype(np.int64)
    anyc = rng.random(shape) < p_any
    codes[anyc] = rng.integers(0, fmt.num_codes, int(anyc.sum()))
    return codes


def _one_code(spec: ShiftAddSpec) -> int:
    fmt = spec.scale
    if isinstance(fmt, IntFormat):
        return 1
    return int(fmt.encode(np.array([1.0]))[0])  # type: ignore[union-attr]


def _first(rng: np.random.Generator, batch: int, steps: int, group: int | None) -> np.ndarray:
    """Chain starts: row 0 one long chain; other rows restart with log-uniform probability
    (with ``group`` mostly on group boundaries, sometimes inside a group)."""
    p = np.exp(rng.uniform(np.log(1.0 / max(steps, 2)), np.log(0.5), size=(batch, 1)))
    first = rng.random((batch, steps)) < p
    if group:
        aligned = (np.arange(steps) % group == 0)[None, :]
        first &= aligned | (rng.random((batch, steps)) < 0.1)
    first[:, 0] = True
    first[0, 1:] = False
    return first


class _Builder:
    """Assembles the adapter's lane codes for a set."""

    def __init__(self, spec: ShiftAddSpec) -> None:
        self.spec = spec
        self.lanes = _lane_bits(spec)[0]

    def make(self, name: str, a: np.ndarray, b: np.ndarray, first: np.ndarray, scale: np.ndarray | None,
             extra_gaps: np.ndarray | None = None) -> VectorSet:
        s = self.spec
        batch, steps = first.shape
        if self.lanes > s.lanes:
            a = np.concatenate([a, np.zeros((batch, steps, 1), np.int64)], axis=-1)
            b = np.concatenate([b, np.asarray(scale, np.int64)[..., None]], axis=-1)
        gaps = np.full(steps, s.cycles_per_input - 1, np.int64)
        if extra_gaps is not None:
            gaps = gaps + extra_gaps
        return VectorSet(name, a, b, first, gaps if gaps.any() else None)


def _grid(n: int, rows: int, chain: int) -> tuple[np.ndarray, int]:
    """Indices 0..n-1 (padded by repeating) laid out as [rows, per], per a multiple of chain."""
    per = -(-n // rows)
    per = -(-per // chain) * chain
    idx = np.arange(rows * per) % n
    return idx.reshape(rows, per), per


def shiftadd_sets(spec: ShiftAddSpec, vectors_n: int, exhaustive: bool, seed: int, rows: int) -> list[VectorSet]:
    """The standard shift-add regression sets (module docstring)."""
    rng = np.random.default_rng(seed)
    bld = _Builder(spec)
    L, G = spec.lanes, spec.group
    chain = G or 2
    out: list[VectorSet] = []

    def pair_set(name: str, ca: np.ndarray, cb: np.ndarray) -> VectorSet:
        idx, per = _grid(ca.size, rows, chain)
        a = _act_codes(spec, (rows, per, L), rng)
        b = _weight_codes(spec, (rows, per, L), rng)
        if G:  # only lane 0 contributes, so the FP32 sum of one group stays exact
            b[..., 1:] = 0
        a[..., 0], b[..., 0] = ca[idx], cb[idx]
        first = np.zeros((rows, per), bool)
        first[:, ::chain] = True
        scale = np.full((rows, per), _one_code(spec)) if G else None
        return bld.make(name, a, b, first, scale)

    na, nw = spec.act.num_codes, 1 << spec.weight.bits
    if exhaustive:
        if na * nw > 1 << 20:
            raise ValueError(f"exhaustive sweep of {spec.act.name} x {spec.weight.name} has {na * nw} pairs: "
                             "allowed up to 2**20 (activations of at most 12 bits with 8-bit weights)")
        ca, cb = np.meshgrid(np.arange(na), np.arange(nw), indexing="ij")
        out.append(pair_set("exhaustive_pairs", ca.ravel(), cb.ravel()))
    # corners: most negative activation x every weight; every activation x every zero weight
    amin = _act_extremes(spec)[0]
    zeros = np.flatnonzero(spec.weight.values() == 0)
    acts = np.arange(na) if na <= 1 << 12 else rng.integers(0, na, 1 << 12)
    ca = np.concatenate([np.full(nw, amin), np.repeat(acts, zeros.size)])
    cb = np.concatenate([np.arange(nw), np.tile(zeros, acts.size)])
    out.append(pair_set("corner:min_act_and_zero_weights", ca, cb))
    if vectors_n <= 0:
        return out
    # accumulator at its limits: long chains of extreme products of every sign combination
    wlo, whi = _weight_extremes(spec)
    alo, ahi = _act_extremes(spec)[:2]
    pairs = np.array([[alo, wlo], [ahi, whi], [alo, whi], [ahi, wlo]], np.int64)
    lsteps = min(spec.count if G is None else 8 * G, 4096)
    if spec.acc_bits is not None:
        lsteps = min(4096, max(lsteps, 64 * chain))
    nrow = min(rows, 8)
    k = np.arange(nrow) % 4
    a = np.broadcast_to(pairs[k, 0][:, None, None], (nrow, lsteps, L)).copy()
    b = np.broadcast_to(pairs[k, 1][:, None, None], (nrow, lsteps, L)).copy()
    first = np.zeros((nrow, lsteps), bool)
    first[:, 0] = True
    scale = None
    if G:
        scale = _scale_codes(spec, (nrow, lsteps), rng, p_any=0.0)
        if isinstance(spec.scale, FloatFormat):  # huge and tiny scales: FP32 overflow and underflow
            big = spec.scale.max_code
            tiny = 1
            scale[nrow // 2:, :] = np.where(np.arange(nrow - nrow // 2)[:, None] % 2 == 0, big, tiny)
    out.append(bld.make("long_extreme", a, b, first, scale))
    # random chains, then random chains with extra bubbles
    steps = min(4096, max(chain, -(-vectors_n // rows)))
    batch = max(1, -(-vectors_n // steps))
    shape = (batch, steps)
    out.append(bld.make("random", _act_codes(spec, shape + (L,), rng), _weight_codes(spec, shape + (L,), rng),
                        _first(rng, batch, steps, G), _scale_codes(spec, shape, rng) if G else None))
    gsteps = min(512, steps)
    gbatch = max(1, min(rows, vectors_n // 8 // gsteps + 1))
    gshape = (gbatch, gsteps)
    gaps = np.where(rng.random(gsteps) < 0.1, rng.integers(1, 4, gsteps), 0)
    out.append(bld.make("random_gaps", _act_codes(spec, gshape + (L,), rng), _weight_codes(spec, gshape + (L,), rng),
                        _first(rng, gbatch, gsteps, G), _scale_codes(spec, gshape, rng) if G else None, gaps))
    return out


def verify_shiftadd(spec: ShiftAddSpec, vectors: int = 100_000, exhaustive: bool = False, seed: int = 0,
                    progress: Progress | None = None) -> VerifyResult:
    """Verify a :class:`ShiftAddSpec` PE's RTL against the golden model on Verilator."""
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 0:
        raise ValueError(f"vectors={vectors!r} must be an int >= 0")
    target = shiftadd_target(spec)
    rows = rows_for(target.iface)
    sets = shiftadd_sets(spec, vectors, exhaustive, seed, rows)
    return verify_target(target, sets, name=spec.name, seed=seed, progress=progress, rows=rows)
