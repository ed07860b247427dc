"""Regression of the integer PE families on Verilator: ``intmac`` and ``simd``.

Both reuse the generic batch machinery (:func:`~peforge.sim.regression.verify_target`, the
batch wrapper, :mod:`~peforge.sim.tb_mac`) unchanged:

* ``intmac`` has the plain PE port contract, so its :class:`~peforge.sim.batch.Target` is the
  PE itself; vector codes are the raw two's complement / unsigned bit patterns.
* ``simd`` has three more per-input ports (``mode``, ``a_signed``, ``b_signed``).  A test-only
  adapter module (:class:`SimdAdapter`) presents it with the plain contract: the adapter's
  ``a`` word carries ``{b_signed, a_signed, mode, a}`` (a in the low bits), cut into
  ``chunks`` "lanes" so that the wrapper's per-lane codes stay below 64 bits.  The adapter
  instantiates the SIMD module by name, so the simulation runs the exact Verilog text that
  :func:`peforge.rtl.verilog` emits.

:func:`verify_intmac` and :func:`verify_simd` are the families' ``verify`` parts in
:data:`peforge.families.FAMILIES` (called by :func:`peforge.sim.regression.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.hdl import Cat, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import IntMacSpec, SimdMacSpec
from .batch import Target, rows_for
from .regression import Progress, VerifyResult, verify_target
from .vectors import VectorSet
from .wrapper import PeInterface

__all__ = ["intmac_target", "intmac_sets", "SimdCodec", "SimdAdapter", "simd_target", "simd_sets",
           "simd_exhaustive", "simd_random", "simd_long", "verify_intmac", "verify_simd"]

_MAX_CHUNK = 60  # bits per wrapper "lane" code (the wrapper packs int64 codes)


# --- intmac -------------------------------------------------------------------------------------

def intmac_target(spec: IntMacSpec) -> Target:
    """Target of an :class:`IntMacSpec` PE: ``peforge.rtl`` Verilog and the golden model."""
    from peforge import rtl
    from peforge.models import golden

    iface = PeInterface(module=spec.name, lanes=spec.lanes, a_bits=spec.a.bits, b_bits=spec.b.bits,
                        acc_bits=spec.width, flag_bits=0, latency=spec.latency)
    iface.check_manifest(rtl.manifest(spec))
    w = spec.width

    def show_int(fmt: Any):
        return lambda c: str(int(fmt.to_int(np.array([c]))[0]))

    return Target(label=repr(spec), iface=iface, verilog=lambda: rtl.verilog(spec),
                  golden=lambda a, b, first: golden.run(spec, a=a, b=b, first=first),
                  show_a=show_int(spec.a), show_b=show_int(spec.b),
                  show_acc=lambda c: str(c - (1 << w) if c >> (w - 1) else c))


def _edge_codes(bits: int, shape: tuple[int, ...], rng: np.random.Generator, p_edge: float = 0.4) -> np.ndarray:
    """Uniform codes, with probability ``p_edge`` one of the extremes (0, 1, min, max, -1)."""
    codes = rng.integers(0, 1 << bits, shape, dtype=np.int64)
    edges = np.array([0, 1, (1 << (bits - 1)) - 1, 1 << (bits - 1), (1 << bits) - 1], np.int64)
    mask = rng.random(shape) < p_edge
    codes[mask] = rng.choice(edges, size=int(mask.sum()))
    return codes


def _first(rng: np.random.Generator, batch: int, steps: int) -> np.ndarray:
    """Chain starts: row 0 one long chain, other rows restart with log-uniform probability."""
    p = np.exp(rng.uniform(np.log(1.0 / max(steps, 2)), np.log(0.5), size=(batch, 1)))
    first = rng.random((batch, steps)) < p
    first[:, 0] = True
    first[0, 1:] = False
    return first


def intmac_sets(spec: IntMacSpec, vectors_n: int, exhaustive: bool, seed: int, rows: int) -> list[VectorSet]:
    """Exhaustive code pairs (lane 0, other lanes random), random chains with extreme operands
    (overflow/saturation), long accumulations of the largest products, and bubbles."""
    rng = np.random.default_rng(seed)
    la, lb, lanes = spec.a.bits, spec.b.bits, spec.lanes
    out: list[VectorSet] = []
    if exhaustive:
        if la + lb > 24:
            raise ValueError(f"exhaustive intmac sweep of {spec.a.name} x {spec.b.name} has 2**{la + lb} "
                             "pairs: allowed up to 2**24")
        ca, cb = np.meshgrid(np.arange(1 << la), np.arange(1 << lb), indexing="ij")
        n = ca.size
        a = _edge_codes(la, (n, lanes), rng)
        b = _edge_codes(lb, (n, lanes), rng)
        a[:, 0], b[:, 0] = ca.ravel(), cb.ravel()
        per = -(-n // rows)
        pad = per * rows - n
        idx = np.concatenate([np.arange(n), np.arange(pad)])
        first = np.ones(per * rows, bool)
        first[1::2] = False  # every pair both starts a chain and continues one
        out.append(VectorSet("exhaustive_pairs", a[idx].reshape(rows, per, lanes),
                             b[idx].reshape(rows, per, lanes), first.reshape(rows, per)))
    if vectors_n > 0:
        steps = min(4096, max(1, -(-vectors_n // rows)))
        batch_n = max(1, -(-vectors_n // steps))
        shape = (batch_n, steps, lanes)
        out.append(VectorSet("random", _edge_codes(la, shape, rng), _edge_codes(lb, shape, rng),
                             _first(rng, batch_n, steps)))
        # long accumulations of the largest-magnitude products (fills a derived width exactly)
        lsteps = min(spec.max_count, 4096)
        lo_a, hi_a = spec.a.from_int(np.array([spec.a.min_int, spec.a.max_int]))
        lo_b, hi_b = spec.b.from_int(np.array([spec.b.min_int, spec.b.max_int]))
        pairs = np.array([[lo_a, lo_b], [hi_a, hi_b], [lo_a, hi_b], [hi_a, lo_b]], np.int64)
        k = np.arange(min(rows, 8)) % 4
        a = np.broadcast_to(pairs[k, 0][:, None, None], (k.size, lsteps, lanes)).copy()
        b = np.broadcast_to(pairs[k, 1][:, None, None], (k.size, lsteps, lanes)).copy()
        first = np.zeros((k.size, lsteps), bool)
        first[:, 0] = True
        out.append(VectorSet("long_extreme", a, b, first))
        gsteps = min(512, steps)
        gshape = (max(1, min(rows, vectors_n // 8 // gsteps + 1)), gsteps, lanes)
        gaps = np.where(rng.random(gsteps) < 0.1, rng.integers(1, 4, gsteps), 0)
        out.append(VectorSet("random_gaps", _edge_codes(la, gshape, rng), _edge_codes(lb, gshape, rng),
                             _first(rng, gshape[0], gsteps), gaps))
    return out


def verify_intmac(spec: IntMacSpec, vectors: int = 100_000, exhaustive: bool = False, seed: int = 0,
                  progress: Progress | None = None) -> VerifyResult:
    """Verify an :class:`IntMacSpec` PE's RTL against the golden model on Verilator."""
    target = intmac_target(spec)
    rows = rows_for(target.iface)
    sets = intmac_sets(spec, vectors, exhaustive, seed, rows)
    return verify_target(target, sets, name=spec.name, seed=seed, progress=progress, rows=rows)


# --- simd ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimdCodec:
    """Packs one SIMD input (a word, b word, mode, a_signed, b_signed) into adapter chunks.

    Adapter ``a`` bits: ``[0, a_width)`` the a word, then ``mode``, ``a_signed``, ``b_signed``;
    cut into ``chunks`` codes of ``a_bits`` bits (chunk 0 least significant).  Adapter ``b``:
    the b word in ``chunks`` codes of ``b_bits`` bits.
    """

    spec: SimdMacSpec

    @property
    def a_total(self) -> int:
        return self.spec.a_width + self.spec.mode_bits + 2

    @property
    def chunks(self) -> int:
        return -(-max(self.a_total, self.spec.b_width) // _MAX_CHUNK)

    @property
    def a_bits(self) -> int:
        return -(-self.a_total // self.chunks)

    @property
    def b_bits(self) -> int:
        return -(-self.spec.b_width // self.chunks)

    def encode(self, a: np.ndarray, b: np.ndarray, mode: np.ndarray, sa: np.ndarray,
               sb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Words (object arrays of Python ints, any shape) -> chunk codes ``[..., chunks]``."""
        s = self.spec
        full = (a.astype(object) | (mode.astype(object) << s.a_width)
                | (sa.astype(object) << (s.a_width + s.mode_bits))
                | (sb.astype(object) << (s.a_width + s.mode_bits + 1)))
        return self._split(full, self.a_bits), self._split(b.astype(object), self.b_bits)

    def _split(self, words: np.ndarray, bits: int) -> np.ndarray:
        mask = (1 << bits) - 1
        return np.stack([((words >> (k * bits)) & mask).astype(np.int64) for k in range(self.chunks)], axis=-1)

    def _join(self, codes: np.ndarray, bits: int) -> np.ndarray:
        out = np.zeros(codes.shape[:-1], object)
        for k in range(self.chunks):
            out = out | (codes[..., k].astype(object) << (k * bits))
        return out

    def decode(self, a_codes: np.ndarray, b_codes: np.ndarray) -> dict[str, np.ndarray]:
        """Chunk codes -> golden-model inputs (a, b as object arrays; controls as int64)."""
        s = self.spec
        full = self._join(np.asarray(a_codes), self.a_bits)
        a = full & ((1 << s.a_width) - 1)
        mode = ((full >> s.a_width) & ((1 << s.mode_bits) - 1)).astype(np.int64)
        sa = ((full >> (s.a_width + s.mode_bits)) & 1).astype(np.int64)
        sb = ((full >> (s.a_width + s.mode_bits + 1)) & 1).astype(np.int64)
        return {"a": a, "b": self._join(np.asarray(b_codes), self.b_bits), "mode": mode,
                "a_signed": sa, "b_signed": sb}


def _adapter_name(spec: SimdMacSpec) -> str:
    return f"tba_{spec.name}"


class SimdAdapter(wiring.Component):
    """Test-only: the SIMD PE (by module name) behind the plain PE port contract (see module
    docstring and :class:`SimdCodec`)."""

    def __init__(self, spec: SimdMacSpec) -> None:
        self._spec = spec
        self._codec = c = SimdCodec(spec)
        super().__init__({"in_valid": In(1), "in_first": In(1), "a": In(c.chunks * c.a_bits),
                          "b": In(c.chunks * c.b_bits), "out_valid": Out(1), "acc": Out(spec.width)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        s = self._spec
        aw, mb = s.a_width, s.mode_bits
        m.submodules.pe = Instance(
            s.name, i_clk=ClockSignal(), i_rst=ResetSignal(), i_in_valid=self.in_valid,
            i_in_first=self.in_first, i_mode=self.a[aw:aw + mb], i_a_signed=self.a[aw + mb],
            i_b_signed=self.a[aw + mb + 1], i_a=self.a[:aw], i_b=self.b[:s.b_width],
            o_out_valid=self.out_valid, o_acc=self.acc)
        unused = Signal(len(self.a) - aw - mb - 2 + len(self.b) - s.b_width + 1, name="pad_unused")
        m.d.comb += unused.eq(Cat(self.a[aw + mb + 2:], self.b[s.b_width:], 0))
        return m


def simd_target(spec: SimdMacSpec) -> Target:
    """Target of a :class:`SimdMacSpec` PE seen through :class:`SimdAdapter`."""
    from amaranth.back import verilog

    from peforge import rtl
    from peforge.models import golden

    codec = SimdCodec(spec)
    iface = PeInterface(module=_adapter_name(spec), lanes=codec.chunks, a_bits=codec.a_bits,
                        b_bits=codec.b_bits, acc_bits=spec.width, flag_bits=0, latency=spec.latency)
    man = rtl.manifest(spec)
    if man["latency"] != spec.latency:
        raise ValueError(f"{spec.name}: manifest latency {man['latency']} != spec latency {spec.latency}")

    def pe_verilog() -> str:
        adapter = verilog.convert(SimdAdapter(spec), name=iface.module, emit_src=False)
        return rtl.verilog(spec) + "\n" + adapter

    def gold(a: np.ndarray, b: np.ndarray, first: np.ndarray) -> dict:
        return golden.run(spec, first=first, **codec.decode(a, b))

    w = spec.width
    return Target(label=repr(spec), iface=iface, verilog=pe_verilog, golden=gold,
                  show_a=lambda c: hex(c), show_b=lambda c: hex(c),
                  show_acc=lambda c: str(c - (1 << w) if c >> (w - 1) else c))


def _rand_words(bits: int, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(shape, object)
    for k in range(0, bits, 32):
        n = min(32, bits - k)
        out = out | (rng.integers(0, 1 << n, shape, dtype=np.int64).astype(object) << k)
    return out


def _edge_words(spec: SimdMacSpec, which: str, mode: np.ndarray, rng: np.random.Generator,
                p_edge: float) -> np.ndarray:
    """Random words whose lanes (of each step's mode) are extreme with probability p_edge."""
    width = spec.a_width if which == "a" else spec.b_width
    words = _rand_words(width, mode.shape, rng)
    for m, ((ab, bb), lanes) in enumerate(zip(spec.mode_widths, spec.mode_lanes)):
        sel = mode == m
        cnt = int(sel.sum())
        if not cnt:
            continue
        bits = ab if which == "a" else bb
        edges = np.array([0, (1 << (bits - 1)) - 1, 1 << (bits - 1), (1 << bits) - 1], np.int64)
        lanes_w = np.zeros(cnt, object)
        for i in range(lanes):
            code = _rand_words(bits, (cnt,), rng)
            hit = rng.random(cnt) < p_edge
            code[hit] = rng.choice(edges, size=int(hit.sum())).astype(object)
            lanes_w = lanes_w | (code << (i * bits))
        high = words[sel] >> (lanes * bits) << (lanes * bits)  # unused upper bits stay random
        words[sel] = high | lanes_w
    return words


def _set(codec: SimdCodec, name: str, a: np.ndarray, b: np.ndarray, mode: np.ndarray, sa: np.ndarray,
         sb: np.ndarray, first: np.ndarray, gaps: np.ndarray | None = None) -> VectorSet:
    ac, bc = codec.encode(a, b, mode, sa, sb)
    return VectorSet(name, ac, bc, first, gaps)


def simd_exhaustive(spec: SimdMacSpec, rows: int, seed: int = 0, modes: Any = None,
                    signs: Any = ((0, 0), (0, 1), (1, 0), (1, 1))) -> list[VectorSet]:
    """Per mode and signedness combination: all 65,536 (a[7:0], b[7:0]) pairs, other bits random.

    Even steps start a chain, odd steps add to it, so every pair is checked both as a fresh
    sum and on top of a previous one."""
    rng = np.random.default_rng(seed)
    codec = SimdCodec(spec)
    ga, gb = np.meshgrid(np.arange(256, dtype=np.int64), np.arange(256, dtype=np.int64), indexing="ij")
    ca, cb = ga.ravel().astype(object), gb.ravel().astype(object)
    n = ca.size
    per = -(-n // rows)
    out = []
    for m in (range(len(spec.modes)) if modes is None else modes):
        for sa, sb in signs:
            a = _rand_words(spec.a_width, (n,), rng) >> 8 << 8 | ca
            b = _rand_words(spec.b_width, (n,), rng) >> 8 << 8 | cb
            idx = np.concatenate([np.arange(n), np.arange(per * rows - n)])
            shape = (rows, per)
            first = np.zeros(per * rows, bool)
            first[0::2] = True
            full = np.full(shape, 1, np.int64)
            out.append(_set(codec, f"exhaustive:{spec.modes[m]}:{'us'[sa]}{'us'[sb]}",
                            a[idx].reshape(shape), b[idx].reshape(shape), full * m, full * sa, full * sb,
                            first.reshape(shape)))
    return out


def simd_random(spec: SimdMacSpec, vectors_n: int, rows: int, seed: int = 0, gaps: bool = False,
                max_steps: int = 4096) -> VectorSet:
    """Random words, mode and signedness switching every step, chains of random length."""
    rng = np.random.default_rng(seed)
    codec = SimdCodec(spec)
    steps = min(max_steps, max(1, -(-vectors_n // rows)))
    batch_n = max(1, -(-vectors_n // steps))
    shape = (batch_n, steps)
    mode = rng.integers(0, len(spec.modes), shape)
    sa, sb = rng.integers(0, 2, shape), rng.integers(0, 2, shape)
    a, b = _edge_words(spec, "a", mode, rng, 0.3), _edge_words(spec, "b", mode, rng, 0.3)
    gap = np.where(rng.random(steps) < 0.1, rng.integers(1, 4, steps), 0) if gaps else None
    return _set(codec, "random_gaps" if gaps else "random", a, b, mode, sa, sb,
                _first(rng, batch_n, steps), gap)


def simd_long(spec: SimdMacSpec, rows: int, seed: int = 0, steps: int = 4096) -> VectorSet:
    """Long accumulations of extreme lanes (max magnitude of every sign), per mode and
    signedness, with random mode switching in half the rows: exercises the top bits."""
    rng = np.random.default_rng(seed)
    codec = SimdCodec(spec)
    steps = min(steps, spec.max_count) if spec.acc_bits is None else steps
    nm = len(spec.modes)
    batch_n = max(rows, 2 * nm)
    mode = np.where(np.arange(batch_n)[:, None] % 2 == 0, (np.arange(batch_n)[:, None] // 2) % nm,
                    rng.integers(0, nm, (batch_n, steps)))
    mode = np.broadcast_to(mode, (batch_n, steps)).copy()
    sa = np.broadcast_to((np.arange(batch_n) // (2 * nm) % 2)[:, None], (batch_n, steps)).copy()
    sb = np.broadcast_to((np.arange(batch_n) // (4 * nm) % 2)[:, None], (batch_n, steps)).copy()
    a, b = _edge_words(spec, "a", mode, rng, 0.97), _edge_words(spec, "b", mode, rng, 0.97)
    first = np.zeros((batch_n, steps), bool)
    first[:, 0] = True
    return _set(codec, "long", a, b, mode, sa, sb, first)


def simd_sets(spec: SimdMacSpec, vectors_n: int, exhaustive: bool, seed: int, rows: int) -> list[VectorSet]:
    """The standard SIMD regression sets."""
    out: list[VectorSet] = []
    if exhaustive:
        out += simd_exhaustive(spec, rows, seed)
    if vectors_n > 0:
        gap_n = max(1, vectors_n // 8)
        out.append(simd_random(spec, max(1, vectors_n - gap_n), rows, seed))
        out.append(simd_random(spec, gap_n, rows, seed + 1, gaps=True, max_steps=512))
        out.append(simd_long(spec, rows, seed + 2))
    return out


def verify_simd(spec: SimdMacSpec, vectors: int = 100_000, exhaustive: bool = False, seed: int = 0,
                progress: Progress | None = None) -> VerifyResult:
    """Verify a :class:`SimdMacSpec` PE's RTL against the golden model on Verilator.

    ``exhaustive`` adds, for every mode and signedness combination, every (a[7:0], b[7:0]) pair
    (other bits random); the random sets switch mode and signedness every step."""
    target = simd_target(spec)
    rows = rows_for(target.iface)
    sets = simd_sets(spec, vectors, exhaustive, seed, rows)
    return verify_target(target, sets, name=spec.name, seed=seed, progress=progress, rows=rows)
