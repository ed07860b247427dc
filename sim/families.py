"""Vector sets of the integer PE families: ``intmac`` and ``simd``.

Their ``vector_sets`` parts in :data:`peforge.families.FAMILIES`; the shared testbench
(:func:`peforge.sim.regression.verify`) drives them through the PE's own ports as its manifest
describes them (``simd``'s ``mode``, ``a_signed`` and ``b_signed`` ride in
:attr:`~peforge.sim.vectors.VectorSet.ports`) and checks them against the golden model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec import IntMacSpec, SimdMacSpec
from .vectors import VectorSet, layout_rows, random_layout

__all__ = ["intmac_sets", "simd_sets", "simd_exhaustive", "simd_random", "simd_long"]


# --- intmac -------------------------------------------------------------------------------------


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
    (overflow/saturation), long accumulations of the largest products, and bubbles, laid out in
    :func:`~peforge.sim.vectors.layout_rows` rows."""
    rows = layout_rows(rows, spec.lanes)
    rng = np.random.default_rng(seed)
    la, lb, lanes = spec.a.bits, spec.b.bits, spec.lanes
    out: list[VectorSet] = []
    if exhaustive:
        if la + lb > 24:
            raise ValueError(
                f"exhaustive intmac sweep of {spec.a.name} x {spec.b.name} has 2**{la + lb} pairs: allowed up to 2**24"
            )
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
        out.append(
            VectorSet(
                "exhaustive_pairs",
                a[idx].reshape(rows, per, lanes),
                b[idx].reshape(rows, per, lanes),
                first.reshape(rows, per),
            )
        )
    if vectors_n > 0:
        batch_n, steps = random_layout(vectors_n, rows)
        shape = (batch_n, steps, lanes)
        out.append(
            VectorSet("random", _edge_codes(la, shape, rng), _edge_codes(lb, shape, rng), _first(rng, batch_n, steps))
        )
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
        out.append(
            VectorSet(
                "random_gaps",
                _edge_codes(la, gshape, rng),
                _edge_codes(lb, gshape, rng),
                _first(rng, gshape[0], gsteps),
                gaps,
            )
        )
    return out


# --- simd ---------------------------------------------------------------------------------------


def _word_type(bits: int) -> Any:
    """Words of up to 64 bits as uint64 (fast in the golden model and the encoder), wider ones
    as Python ints."""
    return np.uint64 if bits <= 64 else object


def _shift(kind: Any, k: int) -> Any:
    """A shift amount of the words' type (uint64 words shift by uint64)."""
    return np.uint64(k) if kind is np.uint64 else k


def _rand_words(bits: int, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    kind = _word_type(bits)
    out = np.zeros(shape, kind)
    for k in range(0, bits, 32):
        n = min(32, bits - k)
        out = out | (rng.integers(0, 1 << n, shape, dtype=np.int64).astype(kind) << _shift(kind, k))
    return out


def _edge_words(spec: SimdMacSpec, which: str, mode: np.ndarray, rng: np.random.Generator, p_edge: float) -> np.ndarray:
    """Random words whose lanes (of each step's mode) are extreme with probability p_edge."""
    width = spec.a_width if which == "a" else spec.b_width
    kind = _word_type(width)
    words = _rand_words(width, mode.shape, rng)
    for m, ((ab, bb), lanes) in enumerate(zip(spec.mode_widths, spec.mode_lanes)):
        sel = mode == m
        cnt = int(sel.sum())
        if not cnt:
            continue
        bits = ab if which == "a" else bb
        edges = np.array([0, (1 << (bits - 1)) - 1, 1 << (bits - 1), (1 << bits) - 1], np.int64)
        lanes_w = np.zeros(cnt, kind)
        for i in range(lanes):
            code = _rand_words(bits, (cnt,), rng).astype(kind)
            hit = rng.random(cnt) < p_edge
            code[hit] = rng.choice(edges, size=int(hit.sum())).astype(kind)
            lanes_w = lanes_w | (code << _shift(kind, i * bits))
        used = lanes * bits  # unused upper bits stay random
        if used >= 64 and kind is np.uint64:
            high = np.zeros(cnt, kind)
        else:
            high = words[sel] >> _shift(kind, used) << _shift(kind, used)
        words[sel] = high | lanes_w
    return words


def _set(
    name: str,
    a: np.ndarray,
    b: np.ndarray,
    mode: np.ndarray,
    sa: np.ndarray,
    sb: np.ndarray,
    first: np.ndarray,
    gaps: np.ndarray | None = None,
) -> VectorSet:
    return VectorSet(name, a, b, first, gaps, {"mode": mode, "a_signed": sa, "b_signed": sb})


def simd_exhaustive(
    spec: SimdMacSpec, rows: int, seed: int = 0, modes: Any = None, signs: Any = ((0, 0), (0, 1), (1, 0), (1, 1))
) -> list[VectorSet]:
    """Per mode and signedness combination: all 65,536 (a[7:0], b[7:0]) pairs, other bits random.

    Even steps start a chain, odd steps add to it, so every pair is checked both as a fresh
    sum and on top of a previous one."""
    rng = np.random.default_rng(seed)
    ca, cb = np.meshgrid(np.arange(256, dtype=np.int64), np.arange(256, dtype=np.int64), indexing="ij")
    ca, cb = ca.ravel().astype(_word_type(spec.a_width)), cb.ravel().astype(_word_type(spec.b_width))
    n = ca.size
    per = -(-n // rows)
    out = []
    for m in range(len(spec.modes)) if modes is None else modes:
        for sa, sb in signs:
            eight_a, eight_b = _shift(ca.dtype.type, 8), _shift(cb.dtype.type, 8)
            a = _rand_words(spec.a_width, (n,), rng) >> eight_a << eight_a | ca
            b = _rand_words(spec.b_width, (n,), rng) >> eight_b << eight_b | cb
            idx = np.concatenate([np.arange(n), np.arange(per * rows - n)])
            shape = (rows, per)
            first = np.zeros(per * rows, bool)
            first[0::2] = True
            full = np.full(shape, 1, np.int64)
            out.append(
                _set(
                    f"exhaustive:{spec.modes[m]}:{'us'[sa]}{'us'[sb]}",
                    a[idx].reshape(shape),
                    b[idx].reshape(shape),
                    full * m,
                    full * sa,
                    full * sb,
                    first.reshape(shape),
                )
            )
    return out


def simd_random(
    spec: SimdMacSpec, vectors_n: int, rows: int, seed: int = 0, gaps: bool = False, max_steps: int = 4096
) -> VectorSet:
    """Random words, mode and signedness switching every step, chains of random length."""
    rng = np.random.default_rng(seed)
    batch_n, steps = random_layout(vectors_n, rows, max_steps)
    shape = (batch_n, steps)
    mode = rng.integers(0, len(spec.modes), shape)
    sa, sb = rng.integers(0, 2, shape), rng.integers(0, 2, shape)
    a, b = _edge_words(spec, "a", mode, rng, 0.3), _edge_words(spec, "b", mode, rng, 0.3)
    gap = np.where(rng.random(steps) < 0.1, rng.integers(1, 4, steps), 0) if gaps else None
    return _set("random_gaps" if gaps else "random", a, b, mode, sa, sb, _first(rng, batch_n, steps), gap)


def simd_long(spec: SimdMacSpec, rows: int, seed: int = 0, steps: int = 4096) -> VectorSet:
    """Long accumulations of extreme lanes (max magnitude of every sign), per mode and
    signedness, with random mode switching in half the rows: exercises the top bits."""
    rng = np.random.default_rng(seed)
    steps = min(steps, spec.max_count) if spec.acc_bits is None else steps
    nm = len(spec.modes)
    batch_n = max(rows, 2 * nm)
    mode = np.where(
        np.arange(batch_n)[:, None] % 2 == 0,
        (np.arange(batch_n)[:, None] // 2) % nm,
        rng.integers(0, nm, (batch_n, steps)),
    )
    mode = np.broadcast_to(mode, (batch_n, steps)).copy()
    sa = np.broadcast_to((np.arange(batch_n) // (2 * nm) % 2)[:, None], (batch_n, steps)).copy()
    sb = np.broadcast_to((np.arange(batch_n) // (4 * nm) % 2)[:, None], (batch_n, steps)).copy()
    a, b = _edge_words(spec, "a", mode, rng, 0.97), _edge_words(spec, "b", mode, rng, 0.97)
    first = np.zeros((batch_n, steps), bool)
    first[:, 0] = True
    return _set("long", a, b, mode, sa, sb, first)


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
