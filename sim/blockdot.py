"""Regression of the block-dot PE (:class:`~peforge.spec.BlockDotSpec`) on Verilator.

Reuses the batch machinery (wrapper of R PE copies, cycle plans, :mod:`~peforge.sim.tb_mac`)
with two additions:

* a test-only adapter (:class:`BlockDotAdapter`) presents the PE with the plain port
  contract: its ``a`` word carries ``{scale_b, scale_a, a}`` (a in the low bits) and ``b`` the
  ``b`` word, both cut into ``chunks`` "lanes" of at most 60 bits for the wrapper.  The
  adapter instantiates the PE by module name, so the exact Verilog of
  :func:`peforge.rtl.verilog` is simulated;
* vector sets are written per block (:class:`BlockSet`, what the golden model takes) and laid
  out as ``beats`` cycles per block.  ``in_first`` and the scales carry random values on every
  beat but the last (the PE must ignore them), and bubbles may fall between any two beats.
  :func:`check_blocks` compares every cycle of the record: ``out_valid`` must pulse exactly
  ``latency`` cycles after each block's last beat and ``acc`` must show the golden value of
  the latest such block (the reset value before the first).

Named sets: ``random`` (+ ``random_gaps``), ``all_max``, ``zeros``, ``nan_scale``,
``cancel``, ``codes_everywhere`` (every element code in every lane position, for a and for
b) and, with ``exhaustive``, ``pairs`` (every element-code pair as the only nonzero lane).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from amaranth.hdl import Cat, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import BlockDotSpec
from . import batch
from .batch import CheckResult, Mismatch, Target
from .regression import Progress, VerifyResult
from .vectors import VectorSet
from .wrapper import PeInterface

__all__ = ["BlockSet", "BlockDotCodec", "BlockDotAdapter", "blockdot_target", "blockdot_sets",
           "to_vectors", "check_blocks", "verify_blockdot", "verify_block_sets"]

_MAX_CHUNK = 60   # bits per wrapper "lane" code
_RUN_VECTORS = 1 << 18


@dataclass(frozen=True)
class BlockSet:
    """Block-level stimulus: the golden model's inputs plus bubbles.

    Members
    -------
    name : str
    a, b : ndarray [batch, blocks, block]
        Element codes.
    scale_a, scale_b : ndarray [batch, blocks]
        Scale codes.
    first : ndarray [batch, blocks] bool
    gaps : ndarray [blocks * beats] or None
        Bubble cycles before each beat (shared by the rows).
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    scale_a: np.ndarray
    scale_b: np.ndarray
    first: np.ndarray
    gaps: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.first.size)

    def golden(self, spec: BlockDotSpec) -> np.ndarray:
        from peforge.models import golden

        return golden.run(spec, a=self.a, b=self.b, scale_a=self.scale_a, scale_b=self.scale_b,
                          first=self.first)["acc"]


@dataclass(frozen=True)
class BlockDotCodec:
    """Packs one beat (a word, b word, scales) into the adapter's chunk codes."""

    spec: BlockDotSpec

    @property
    def a_word(self) -> int:
        return self.spec.lanes * self.spec.element_a.bits

    @property
    def b_word(self) -> int:
        return self.spec.lanes * self.spec.element_b.bits

    @property
    def a_total(self) -> int:
        return self.a_word + self.spec.scale_a.bits + self.spec.scale_b.bits

    @property
    def chunks(self) -> int:
        return -(-max(self.a_total, self.b_word) // _MAX_CHUNK)

    @property
    def a_bits(self) -> int:
        return -(-self.a_total // self.chunks)

    @property
    def b_bits(self) -> int:
        return -(-self.b_word // self.chunks)

    def _words(self, codes: np.ndarray, bits: int) -> np.ndarray:
        """[..., lanes] codes -> [...] words (Python ints), lane 0 least significant."""
        out = np.zeros(codes.shape[:-1], object)
        for i in range(codes.shape[-1]):
            out = out | (codes[..., i].astype(object) << (i * bits))
        return out

    def _split(self, words: np.ndarray, bits: int) -> np.ndarray:
        mask = (1 << bits) - 1
        return np.stack([((words >> (k * bits)) & mask).astype(np.int64) for k in range(self.chunks)], axis=-1)

    def encode(self, a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Beat codes ``a``/``b`` [..., lanes] and scales [...] -> chunk codes [..., chunks]."""
        s = self.spec
        full = (self._words(a, s.element_a.bits) | (sa.astype(object) << self.a_word)
                | (sb.astype(object) << (self.a_word + s.scale_a.bits)))
        return self._split(full, self.a_bits), self._split(self._words(b, s.element_b.bits), self.b_bits)


def _adapter_name(spec: BlockDotSpec) -> str:
    return f"tba_{spec.name}"


class BlockDotAdapter(wiring.Component):
    """Test-only: the block-dot PE (by module name) behind the plain PE port contract."""

    def __init__(self, spec: BlockDotSpec) -> None:
        self._spec = spec
        self._codec = c = BlockDotCodec(spec)
        super().__init__({"in_valid": In(1), "in_first": In(1), "a": In(c.chunks * c.a_bits),
                          "b": In(c.chunks * c.b_bits), "out_valid": Out(1), "acc": Out(spec.acc.bits)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        s, c = self._spec, self._codec
        aw, ws = c.a_word, s.scale_a.bits
        m.submodules.pe = Instance(
            s.name, i_clk=ClockSignal(), i_rst=ResetSignal(), i_in_valid=self.in_valid,
            i_in_first=self.in_first, i_a=self.a[:aw], i_b=self.b[:c.b_word],
            i_scale_a=self.a[aw:aw + ws], i_scale_b=self.a[aw + ws:c.a_total],
            o_out_valid=self.out_valid, o_acc=self.acc)
        unused = Signal(len(self.a) - c.a_total + len(self.b) - c.b_word + 1, name="pad_unused")
        m.d.comb += unused.eq(Cat(self.a[c.a_total:], self.b[c.b_word:], 0))
        return m


def blockdot_target(spec: BlockDotSpec) -> Target:
    """Target of a :class:`BlockDotSpec` PE seen through :class:`BlockDotAdapter` (its
    ``golden`` is unused: sets are checked per block by :func:`check_blocks`)."""
    from amaranth.back import verilog

    from peforge import rtl

    codec = BlockDotCodec(spec)
    iface = PeInterface(module=_adapter_name(spec), lanes=codec.chunks, a_bits=codec.a_bits,
                        b_bits=codec.b_bits, acc_bits=spec.acc.bits, flag_bits=0, latency=spec.latency)
    man = rtl.manifest(spec)
    if man["latency"] != spec.latency or man["block"]["beats"] != spec.beats:
        raise ValueError(f"{spec.name}: manifest latency/beats disagree with the spec")

    def pe_verilog() -> str:
        adapter = verilog.convert(BlockDotAdapter(spec), name=iface.module, emit_src=False)
        return rtl.verilog(spec) + "\n" + adapter

    def no_golden(*_: Any) -> dict:
        raise RuntimeError("block-dot sets are checked per block (sim.blockdot.check_blocks)")

    return Target(label=repr(spec), iface=iface, verilog=pe_verilog, golden=no_golden,
                  show_acc=lambda c: repr(float(spec.acc.decode(np.array([c], np.int64))[0])))


# --- beat layout and check ------------------------------------------------------------------------

def to_vectors(spec: BlockDotSpec, bs: BlockSet, seed: int = 0) -> VectorSet:
    """Beat-level wrapper stimulus of a block set (random ``first``/scales off the last beat)."""
    rng = np.random.default_rng(seed)
    codec = BlockDotCodec(spec)
    B, T = bs.first.shape
    n, L = spec.beats, spec.lanes
    a = bs.a.reshape(B, T * n, L)
    b = bs.b.reshape(B, T * n, L)
    first = rng.integers(0, 2, (B, T, n)).astype(bool)
    sa = rng.integers(0, spec.scale_a.num_codes, (B, T, n))
    sb = rng.integers(0, spec.scale_b.num_codes, (B, T, n))
    first[:, :, -1], sa[:, :, -1], sb[:, :, -1] = bs.first, bs.scale_a, bs.scale_b
    ac, bc = codec.encode(a, b, sa.reshape(B, -1), sb.reshape(B, -1))
    return VectorSet(bs.name, ac, bc, first.reshape(B, -1), bs.gaps)


def check_blocks(plan: batch.Plan, raw: dict[str, np.ndarray], goldens: Sequence[np.ndarray], beats: int,
                 limit: int = 10) -> CheckResult:
    """Compare every recorded cycle with the per-block golden values (see module docstring)."""
    checked, count = 0, 0
    found: list[Any] = []
    by_set: dict[int, list] = {}
    for p in plan.passes:
        by_set.setdefault(p.set_index, []).append(p)
    for si, passes in by_set.items():
        vs, lay, gold = plan.sets[si], plan.layouts[si], goldens[si]
        block_cycle = lay.step_cycle[beats - 1::beats]
        src = lay.checked_cycles() - lay.latency
        idx = np.searchsorted(block_cycle, src, side="right") - 1
        fresh = np.zeros(src.shape, bool)
        fresh[idx >= 0] = block_cycle[idx[idx >= 0]] == src[idx >= 0]
        starts = np.array([p.start for p in passes])
        cyc = starts[:, None] + lay.checked_cycles()[None, :]
        row_ids = np.concatenate([np.arange(p.row0, p.row0 + p.nrows) for p in passes])
        pass_of_row = np.concatenate([np.full(p.nrows, k) for k, p in enumerate(passes)])
        slot = np.concatenate([np.arange(p.nrows) for p in passes])
        cyc_rows = cyc[pass_of_row]
        checked += int(row_ids.size) * block_cycle.size
        g = gold[row_ids]
        expected = np.concatenate([np.zeros((g.shape[0], 1), g.dtype), g], axis=1)[:, idx + 1]
        for signal, exp_arr, act in (("acc", expected, raw["acc"][cyc_rows, slot[:, None]]),
                                     ("out_valid", np.broadcast_to(fresh, cyc_rows.shape),
                                      raw["out_valid"][cyc_rows, slot[:, None]])):
            bad = np.argwhere(act != exp_arr)
            count += len(bad)
            for r, k in bad[: max(0, limit - len(found))]:
                step = int(idx[k])
                kind = "out_valid" if signal == "out_valid" else (
                    "reset" if step < 0 else ("result" if fresh[k] else "hold"))
                found.append(Mismatch(vs.name, int(row_ids[r]), step, kind, signal, int(exp_arr[r, k]),
                                      int(act[r, k]), int(cyc_rows[r, k])))
    return CheckResult(checked, count, found)


def _describe(spec: BlockDotSpec, sets: dict[str, BlockSet], ms: Sequence[Mismatch]) -> list[str]:
    fa, fb, acc = spec.element_a, spec.element_b, spec.acc
    val = lambda c: float(acc.decode(np.array([c], np.int64))[0])  # noqa: E731
    lines = []
    for mm in ms:
        head = f"- {mm.set_name} row {mm.row} block {mm.step} ({mm.kind}, cycle {mm.cycle}): {mm.signal}"
        if mm.signal == "out_valid":
            lines.append(f"{head} expected {mm.expected} got {mm.actual}")
            continue
        lines.append(f"{head} expected 0x{mm.expected:08x} ({val(mm.expected)!r}) got 0x{mm.actual:08x} "
                     f"({val(mm.actual)!r})")
        if mm.step >= 0:
            bs = sets[mm.set_name]
            r, t = mm.row, mm.step
            lines.append(f"    first={int(bs.first[r, t])} scale_a=0x{int(bs.scale_a[r, t]):02x} "
                         f"scale_b=0x{int(bs.scale_b[r, t]):02x}")
            lines.append("    a: " + " ".join(f"{int(c):02x}" for c in bs.a[r, t]) + f"  ({fa.name})")
            lines.append("    b: " + " ".join(f"{int(c):02x}" for c in bs.b[r, t]) + f"  ({fb.name})")
    return lines


def verify_block_sets(spec: BlockDotSpec, sets: Sequence[BlockSet], seed: int = 0,
                      progress: Progress | None = None) -> VerifyResult:
    """Simulate block sets on the PE (R copies per run) and check them per block."""
    t0 = time.perf_counter()
    target = blockdot_target(spec)
    rows = batch.rows_for(target.iface)
    bld = batch.wrapper_build(target, rows)
    goldens = [bs.golden(spec) for bs in sets]
    vsets = [to_vectors(spec, bs, seed + i) for i, bs in enumerate(sets)]
    total = sum(bs.size for bs in sets)
    checked = mism = done = 0
    found: list[Mismatch] = []
    sim_s = 0.0
    plan_all = batch.make_plan(vsets, rows, target.iface)
    runs: list[list] = [[]]
    count = 0
    for p in plan_all.passes:
        n = p.nrows * plan_all.layouts[p.set_index].steps
        if runs[-1] and count + n > _RUN_VECTORS:
            runs.append([])
            count = 0
        runs[-1].append(p)
        count += n
    if progress:
        progress(0, total)
    for run_passes in runs:
        ts = time.perf_counter()
        plan = batch.make_plan(vsets, rows, target.iface, seed=seed, passes=run_passes)
        raw = batch.simulate(target, plan, bld)
        res = check_blocks(plan, raw, goldens, spec.beats, limit=10 - len(found))
        sim_s += time.perf_counter() - ts
        checked += res.checked
        mism += res.mismatch_count
        found += res.mismatches
        done += sum(p.nrows * plan.layouts[p.set_index].steps // spec.beats for p in run_passes)
        if progress:
            progress(done, total)
    seconds = time.perf_counter() - t0
    sizes: dict[str, int] = {}
    for bs in sets:
        sizes[bs.name] = sizes.get(bs.name, 0) + bs.size
    lines = [f"verify {spec.name}: {target.label}",
             f"  latency {spec.latency}, {spec.beats} beat(s) per block, {rows} PE copies per simulation, "
             f"build {bld.seconds:.1f} s{' (cached)' if bld.cached else ''}",
             "  sets (blocks): " + ", ".join(f"{k} {v}" for k, v in sizes.items()),
             f"  checked {checked} blocks in {seconds:.2f} s",
             f"  {'PASS' if mism == 0 else 'FAIL'}: {mism} mismatching output samples"]
    if found:
        lines.append(f"  first {len(found)} mismatches:")
        lines += _describe(spec, {bs.name: bs for bs in sets}, found)
    vps = checked / sim_s if sim_s > 0 else 0.0
    return VerifyResult(spec.name, checked, mism, seconds, vps, "\n".join(lines), bld.seconds, None, sizes)


# --- vector sets ---------------------------------------------------------------------------------

def _finite_codes(fmt: Any) -> np.ndarray:
    codes = np.arange(fmt.num_codes)
    return codes[fmt.classify(codes) == 0] if hasattr(fmt, "classify") else codes


def _special_codes(fmt: Any) -> np.ndarray:
    codes = np.arange(fmt.num_codes)
    return codes[fmt.classify(codes) != 0] if hasattr(fmt, "classify") else codes[:0]


def _one(fmt: Any) -> int:
    """Code of the scale 1.0."""
    return int(fmt.encode(np.array([1.0]))[0])


def _elements(fmt: Any, shape: tuple[int, ...], rng: np.random.Generator, p_special: float = 0.0,
              p_zero: float = 0.05) -> np.ndarray:
    out = rng.choice(_finite_codes(fmt), size=shape)
    zero = rng.random(shape) < p_zero
    out[zero] = rng.choice([0, getattr(fmt, "sign_mask", 0)], size=int(zero.sum()))
    sp = _special_codes(fmt)
    if p_special and sp.size:
        hit = rng.random(shape) < p_special
        out[hit] = rng.choice(sp, size=int(hit.sum()))
    return out


def _scales(fmt: Any, shape: tuple[int, ...], rng: np.random.Generator, p_wide: float = 0.1) -> np.ndarray:
    """Scale codes near 1.0, a fraction ``p_wide`` anywhere (overflow, underflow, NaN, zero)."""
    one = _one(fmt)
    span = 12 if fmt.name == "e8m0fnu" else 24
    out = np.clip(one + rng.integers(-span, span + 1, shape), 0, fmt.num_codes - 1)
    if fmt.name != "e8m0fnu":  # float scales: positive finite, like NVFP4's, except in the wide draws
        out = np.minimum(out, fmt.max_code)
    wide = rng.random(shape) < p_wide
    out[wide] = rng.integers(0, fmt.num_codes, int(wide.sum()))
    return out


def _first(rng: np.random.Generator, B: int, T: int, p: float) -> np.ndarray:
    first = rng.random((B, T)) < p
    first[:, 0] = True
    return first


def _shape(n_blocks: int, rows: int, max_steps: int = 256) -> tuple[int, int]:
    steps = min(max_steps, max(1, -(-n_blocks // rows)))
    return max(1, -(-n_blocks // steps)), steps


def random_set(spec: BlockDotSpec, n_blocks: int, rows: int, seed: int = 0, gaps: bool = False) -> BlockSet:
    """Random finite elements (some zeros, rare NaN/inf), scales mostly near 1, chains of
    random length; ``gaps`` adds bubbles between beats (also inside blocks)."""
    rng = np.random.default_rng(seed)
    B, T = _shape(n_blocks, rows, 128 if gaps else 256)
    k = spec.block
    a = _elements(spec.element_a, (B, T, k), rng, 0.001)
    b = _elements(spec.element_b, (B, T, k), rng, 0.001)
    g = None
    if gaps:
        nb = T * spec.beats
        g = np.where(rng.random(nb) < 0.15, rng.integers(1, 4, nb), 0)
    return BlockSet("random_gaps" if gaps else "random", a, b, _scales(spec.scale_a, (B, T), rng),
                    _scales(spec.scale_b, (B, T), rng), _first(rng, B, T, 0.05), g)


def named_sets(spec: BlockDotSpec, rows: int, seed: int = 0) -> list[BlockSet]:
    """``all_max``, ``zeros``, ``nan_scale``, ``cancel`` and ``codes_everywhere``."""
    rng = np.random.default_rng(seed + 100)
    fa, fb, k = spec.element_a, spec.element_b, spec.block
    out = []
    sa_fmt, sb_fmt = spec.scale_a, spec.scale_b

    # all max: every element at +-max, scales 1, max, min and random; long chains overflow
    def maxcode(fmt: Any, neg: bool) -> int:
        if hasattr(fmt, "max_code"):
            return fmt.max_code | (fmt.sign_mask if neg else 0)
        return int(fmt.from_int([fmt.min_int if neg else fmt.max_int])[0])  # intN: -2^(N-1) / 2^(N-1) - 1
    T = 64
    B = max(4, rows)
    signs = rng.integers(0, 4, (B, T))  # 0: all +, 1: all -, 2: a+ b-, 3: lane-random
    a = np.where(signs[..., None] == 1, maxcode(fa, True), maxcode(fa, False)) * np.ones((1, 1, k), np.int64)
    b = np.where(np.isin(signs, (1, 2))[..., None], maxcode(fb, True), maxcode(fb, False)) * np.ones((1, 1, k), np.int64)
    lane_neg = rng.random((B, T, k)) < 0.5
    a = np.where((signs[..., None] == 3) & lane_neg, maxcode(fa, True), a)
    top = lambda f: (0xFE if f.name == "e8m0fnu" else f.max_code)  # noqa: E731
    choice = rng.integers(0, 4, (B, T))
    sa = np.select([choice == 0, choice == 1, choice == 2], [_one(sa_fmt), top(sa_fmt), 1],
                   rng.integers(0, top(sa_fmt) + 1, (B, T)))
    sb = np.select([choice == 0, choice == 1, choice == 2], [_one(sb_fmt), top(sb_fmt), 1],
                   rng.integers(0, top(sb_fmt) + 1, (B, T)))
    out.append(BlockSet("all_max", a, b, sa, sb, _first(rng, B, T, 0.02)))

    # zeros: +0 / -0 elements (x nonzero partners), zero scales (E4M3), chains of zeros
    T = 32
    za = rng.choice([0, getattr(fa, "sign_mask", 0)], size=(B, T, k))
    zb = _elements(fb, (B, T, k), rng)
    swap = rng.random((B, T)) < 0.5
    a = np.where(swap[..., None], _elements(fa, (B, T, k), rng), za)
    b = np.where(swap[..., None], rng.choice([0, getattr(fb, "sign_mask", 0)], size=(B, T, k)), zb)
    sa, sb = _scales(sa_fmt, (B, T), rng, 0.0), _scales(sb_fmt, (B, T), rng, 0.0)
    if sa_fmt.name != "e8m0fnu":  # float scales with a zero (signed: both zeros)
        sa = np.where(rng.random((B, T)) < 0.3, rng.choice([0, sa_fmt.sign_mask], size=(B, T)), sa)
    if sb_fmt.name != "e8m0fnu":
        sb = np.where(rng.random((B, T)) < 0.3, rng.choice([0, sb_fmt.sign_mask], size=(B, T)), sb)
    nz = rng.random((B, T)) < 0.2  # some nonzero blocks so the accumulator also meets zeros
    a = np.where(nz[..., None], _elements(fa, (B, T, k), rng), a)
    b = np.where(nz[..., None], _elements(fb, (B, T, k), rng), b)
    out.append(BlockSet("zeros", a, b, sa, sb, _first(rng, B, T, 0.3)))

    # NaN scales (and NaN / inf elements) in random positions
    T = 32
    a = _elements(fa, (B, T, k), rng, 0.01)
    b = _elements(fb, (B, T, k), rng, 0.01)
    sa, sb = _scales(sa_fmt, (B, T), rng), _scales(sb_fmt, (B, T), rng)
    nan_a = rng.random((B, T)) < 0.1
    nan_b = rng.random((B, T)) < 0.1
    sa = np.where(nan_a, rng.choice(_special_codes(sa_fmt), size=(B, T)), sa)
    sb = np.where(nan_b, rng.choice(_special_codes(sb_fmt), size=(B, T)), sb)
    out.append(BlockSet("nan_scale", a, b, sa, sb, _first(rng, B, T, 0.3)))

    # cancellation: lanes x and -x (exact zero block), a tiny residual lane, and blocks that
    # cancel the accumulator (the previous block negated)
    T = 32
    half = k // 2
    base = _elements(fa, (B, T, max(half, 1)), rng, p_zero=0.0)
    neg_of = _negate(fa)
    if k >= 2:
        a = np.concatenate([base, neg_of(base)], axis=2)
        if k % 2:
            a = np.concatenate([a, np.zeros((B, T, 1), np.int64)], axis=2)
        a = a[:, :, rng.permutation(k)]
    else:
        a = base
    b = np.broadcast_to(_elements(fb, (B, T, 1), rng, p_zero=0.0), (B, T, k)).copy()
    resid = rng.random((B, T)) < 0.4
    a[resid, 0] = rng.choice(_finite_codes(fa)[:4], size=int(resid.sum()))
    flip = rng.random((B, T)) < 0.5  # block t = -(block t-1): cancels the accumulator
    for t in range(1, T):
        a[flip[:, t], t] = neg_of(a[flip[:, t], t - 1])
        b[flip[:, t], t] = b[flip[:, t], t - 1]
    sa = np.full((B, T), _one(sa_fmt))
    sb = np.full((B, T), _one(sb_fmt))
    sa[:, 1:] = np.where(flip[:, 1:], sa[:, :-1], sa[:, 1:])
    out.append(BlockSet("cancel", a, b, sa, sb, _first(rng, B, T, 0.1)))

    # every element code in every lane position (a side, then b side), one block per result
    for side, fmt, other in (("a", fa, fb), ("b", fb, fa)):
        n = fmt.num_codes
        j = np.arange(n + k)[:, None]
        sweep = (j + np.arange(k)[None, :]) % n
        partner = _elements(other, sweep.shape, rng, p_zero=0.0)
        m = sweep.shape[0]
        Bc, Tc = _shape(m, rows, 256)
        pad = Bc * Tc - m
        sweep = np.concatenate([sweep, sweep[:pad]]).reshape(Bc, Tc, k)
        partner = np.concatenate([partner, partner[:pad]]).reshape(Bc, Tc, k)
        a, b = (sweep, partner) if side == "a" else (partner, sweep)
        out.append(BlockSet(f"codes_everywhere:{side}", a, b, _scales(sa_fmt, (Bc, Tc), rng, 0.0),
                            _scales(sb_fmt, (Bc, Tc), rng, 0.0), np.ones((Bc, Tc), bool)))
    return out


def _negate(fmt: Any):
    if hasattr(fmt, "sign_mask"):
        return lambda c: c ^ fmt.sign_mask
    # intN: -(-2^(N-1)) saturates to 2^(N-1) - 1
    return lambda c: (-fmt.to_int(np.asarray(c)).clip(-fmt.max_int, fmt.max_int)) & (fmt.num_codes - 1)


def pairs_set(spec: BlockDotSpec, rows: int, seed: int = 0, lanes_only: bool = False) -> BlockSet:
    """Every (a code, b code) pair as the only nonzero lane of a block (lane = pair index mod
    block), scales 1, each block its own chain: every product checked alone."""
    rng = np.random.default_rng(seed + 7)
    fa, fb, k = spec.element_a, spec.element_b, spec.block
    ga, gb = np.meshgrid(np.arange(fa.num_codes), np.arange(fb.num_codes), indexing="ij")
    ca, cb = ga.ravel(), gb.ravel()
    m = ca.size
    B, T = _shape(m, rows, 512)
    idx = np.concatenate([np.arange(m), rng.integers(0, m, B * T - m)])
    a = np.zeros((B * T, k), np.int64)
    b = np.zeros((B * T, k), np.int64)
    lane = np.arange(B * T) % k
    a[np.arange(B * T), lane] = ca[idx]
    b[np.arange(B * T), lane] = cb[idx]
    return BlockSet("pairs", a.reshape(B, T, k), b.reshape(B, T, k), np.full((B, T), _one(spec.scale_a)),
                    np.full((B, T), _one(spec.scale_b)), np.ones((B, T), bool))


def blockdot_sets(spec: BlockDotSpec, vectors_n: int, exhaustive: bool, seed: int, rows: int) -> list[BlockSet]:
    """The standard regression sets; ``vectors_n`` random blocks (1/8 with bubbles)."""
    out = named_sets(spec, rows, seed)
    if exhaustive:
        out.append(pairs_set(spec, rows, seed))
    if vectors_n > 0:
        gap_n = max(1, vectors_n // 8)
        out.append(random_set(spec, max(1, vectors_n - gap_n), rows, seed))
        out.append(random_set(spec, gap_n, rows, seed + 1, gaps=True))
    return out


def verify_blockdot(spec: BlockDotSpec, vectors: int = 20_000, exhaustive: bool = False, seed: int = 0,
                    progress: Progress | None = None) -> VerifyResult:
    """Verify a :class:`BlockDotSpec` PE's RTL against the golden model on Verilator.

    ``vectors`` random blocks plus the named sets (see module docstring); ``exhaustive`` adds
    every element-code pair alone in a block."""
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 0:
        raise ValueError(f"vectors={vectors!r} must be an int >= 0")
    rows = batch.rows_for(blockdot_target(spec).iface)
    return verify_block_sets(spec, blockdot_sets(spec, vectors, exhaustive, seed, rows), seed, progress)
