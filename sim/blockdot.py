"""Vector sets of the block-dot PE (:class:`~peforge.spec.BlockDotSpec`): its ``vector_sets`` part.

Sets are written per block, in the golden model's terms (:func:`BlockSet`: elements ``a``,
``b`` ``[batch, blocks, block]``, scales and ``first`` per block).  The shared testbench reads
the beat rule from the manifest (``block.beats`` input cycles per block, ``lanes`` elements each;
``in_first`` and the scales sampled on the last beat only, random on the others), lets bubbles
fall between any two beats (``gaps`` per beat) and checks that ``out_valid`` pulses exactly
``latency`` cycles after each block's last beat with ``acc`` the golden value of the latest
block.

Named sets: ``random`` (+ ``random_gaps``), ``all_max``, ``zeros``, ``nan_scale``,
``cancel``, ``codes_everywhere`` (every element code in every lane position, for a and for
b), with deferred rounding ``window:overflow`` / ``window:lsb``
(:mod:`peforge.sim.accumulators`) and, with ``exhaustive``, ``pairs`` (every element-code pair as the only nonzero lane).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec import BlockDotSpec
from .vectors import VectorSet

__all__ = ["BlockSet", "blockdot_sets", "named_sets", "pairs_set", "random_set"]


def BlockSet(
    name: str,
    a: np.ndarray,
    b: np.ndarray,
    scale_a: np.ndarray,
    scale_b: np.ndarray,  # noqa: N802
    first: np.ndarray,
    gaps: np.ndarray | None = None,
) -> VectorSet:
    """A block-level :class:`~peforge.sim.vectors.VectorSet`: elements ``a``, ``b``
    ``[batch, blocks, block]``, scale codes and ``first`` ``[batch, blocks]``, bubbles
    ``gaps`` ``[blocks * beats]`` before each beat (or None)."""
    return VectorSet(name, a, b, first, gaps, {"scale_a": scale_a, "scale_b": scale_b})


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


def _elements(
    fmt: Any, shape: tuple[int, ...], rng: np.random.Generator, p_special: float = 0.0, p_zero: float = 0.05
) -> np.ndarray:
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


def random_set(spec: BlockDotSpec, n_blocks: int, rows: int, seed: int = 0, gaps: bool = False) -> VectorSet:
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
    return BlockSet(
        "random_gaps" if gaps else "random",
        a,
        b,
        _scales(spec.scale_a, (B, T), rng),
        _scales(spec.scale_b, (B, T), rng),
        _first(rng, B, T, 0.05),
        g,
    )


def named_sets(spec: BlockDotSpec, rows: int, seed: int = 0) -> list[VectorSet]:
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
    b = np.where(np.isin(signs, (1, 2))[..., None], maxcode(fb, True), maxcode(fb, False)) * np.ones(
        (1, 1, k), np.int64
    )
    lane_neg = rng.random((B, T, k)) < 0.5
    a = np.where((signs[..., None] == 3) & lane_neg, maxcode(fa, True), a)
    top = lambda f: 0xFE if f.name == "e8m0fnu" else f.max_code  # noqa: E731
    choice = rng.integers(0, 4, (B, T))
    sa = np.select(
        [choice == 0, choice == 1, choice == 2],
        [_one(sa_fmt), top(sa_fmt), 1],
        rng.integers(0, top(sa_fmt) + 1, (B, T)),
    )
    sb = np.select(
        [choice == 0, choice == 1, choice == 2],
        [_one(sb_fmt), top(sb_fmt), 1],
        rng.integers(0, top(sb_fmt) + 1, (B, T)),
    )
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
        out.append(
            BlockSet(
                f"codes_everywhere:{side}",
                a,
                b,
                _scales(sa_fmt, (Bc, Tc), rng, 0.0),
                _scales(sb_fmt, (Bc, Tc), rng, 0.0),
                np.ones((Bc, Tc), bool),
            )
        )
    return out


def _negate(fmt: Any):
    if hasattr(fmt, "sign_mask"):
        return lambda c: c ^ fmt.sign_mask
    # intN: -(-2^(N-1)) saturates to 2^(N-1) - 1
    return lambda c: (-fmt.to_int(np.asarray(c)).clip(-fmt.max_int, fmt.max_int)) & (fmt.num_codes - 1)


def pairs_set(spec: BlockDotSpec, rows: int, seed: int = 0, lanes_only: bool = False) -> VectorSet:
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
    return BlockSet(
        "pairs",
        a.reshape(B, T, k),
        b.reshape(B, T, k),
        np.full((B, T), _one(spec.scale_a)),
        np.full((B, T), _one(spec.scale_b)),
        np.ones((B, T), bool),
    )


def blockdot_sets(spec: BlockDotSpec, vectors_n: int, exhaustive: bool, seed: int, rows: int) -> list[VectorSet]:
    """The standard regression sets (+ the window sets of a deferred accumulator); ``vectors_n``
    random blocks (1/8 with bubbles)."""
    from .accumulators import blockdot_sets as window_sets

    out = named_sets(spec, rows, seed) + window_sets(spec, rows, seed)
    if exhaustive:
        out.append(pairs_set(spec, rows, seed))
    if vectors_n > 0:
        gap_n = max(1, vectors_n // 8)
        out.append(random_set(spec, max(1, vectors_n - gap_n), rows, seed))
        out.append(random_set(spec, gap_n, rows, seed + 1, gaps=True))
    return out
