"""Golden model of the LUT-based mixed-precision PE (:class:`peforge.spec.LutSpec`).

Semantics, per valid step with activation codes ``a[j]`` (j < group), weight codes
``b[lane][j]`` and ``first``:

* ``a[j]`` is read as an integer ``x_j`` (two's complement / unsigned for ``intN`` / ``uintN``;
  for a float format the exact value / ``2**spec.act_lsb_exp``, NaN and inf codes read as 0);
* ``b[lane][j]`` is a two's complement ``weight_bits``-bit integer, or for ``"ternary"`` the
  sign-magnitude code (0b00 = 0, 0b01 = +1, 0b11 = -1, 0b10 = 0);
* ``acc[lane] := (first ? 0 : acc[lane]) + sum_j x_j * w[lane][j]``, wrapping modulo
  ``2**spec.width`` (a derived width never wraps within ``max_count`` steps);
* the ``acc`` port packs the lanes' two's complement bits, lane 0 least significant, so the
  accumulator value is ``acc[lane] * 2**spec.act_lsb_exp``.

The model computes the group dot products the way the hardware does (table of signed
activation sums, one lookup per weight bit-plane, symmetric folding with negation, shift-add
over the planes, correction term) rather than by multiplying; the tests check it against plain
Python-integer dot products.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...formats import FloatFormat
from ...spec import LutSpec
from . import kernels
from .base import int_accumulate, matmul_operands

__all__ = [
    "run_lut",
    "act_ints",
    "weight_ints",
    "plane_masks",
    "table",
    "group_dot",
    "lane_values",
    "pack_lanes",
    "quantize_weights",
    "lut_port_widths",
    "lut_value",
    "matmul_lut",
]


def act_ints(spec: LutSpec, codes: Any) -> np.ndarray:
    """Activation integers (int64) of activation codes, any shape."""
    act = spec.act
    if isinstance(act, FloatFormat):
        vals = act.decode(np.asarray(codes).astype(np.int64))
        vals = np.where(np.isfinite(vals), vals, 0.0)
        return np.ldexp(vals, -spec.act_lsb_exp).astype(np.int64)  # exact: <= 2**34
    return act.to_int(np.asarray(codes).astype(np.int64))


def weight_ints(spec: LutSpec, codes: Any) -> np.ndarray:
    """Weight integers (int64) of weight codes, any shape."""
    c = np.asarray(codes).astype(np.int64)
    bits = spec.weight_code_bits
    if c.size and (c.min() < 0 or c.max() >= 1 << bits):
        raise ValueError(f"weight codes must be in 0..{(1 << bits) - 1} for weight_bits={spec.weight_bits!r}")
    if spec.ternary:
        return (c & 1) * (1 - 2 * (c >> 1))
    return np.where(c >> (bits - 1) & 1, c - (1 << bits), c)


def plane_masks(spec: LutSpec, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bit-planes of weight codes ``[..., group]`` in processing order.

    Returns ``masks [..., planes]`` (bit j = weight j's bit of that plane), the plane
    coefficients ``coef [planes]`` (signed powers of two: two's complement weights least
    significant plane first, the top plane negative; ternary the +1 mask, then the -1 mask)."""
    c = np.asarray(codes).astype(np.int64)
    j = np.arange(spec.group, dtype=np.int64)
    if spec.ternary:
        mag, sgn = c & 1, c >> 1 & 1
        planes = [mag & (1 - sgn), mag & sgn]
        coef = np.array([1, -1])
    else:
        k = int(spec.weight_bits)
        planes = [c >> p & 1 for p in range(k)]
        coef = np.array([1 << p for p in range(k - 1)] + [-(1 << (k - 1))])
    masks = np.stack([(pl << j).sum(axis=-1) for pl in planes], axis=-1)
    return masks, coef


def table(spec: LutSpec, x: np.ndarray) -> np.ndarray:
    """The PE's table for activation integers ``x [..., group]``: ``[..., table_entries]``.

    Symmetric: entry i = S(m) for the mask m = 2*i + 1 (activation 0 taken with +), where
    S(m) = sum_j (m_j ? +x_j : -x_j).  Full: entry m = P(m) = sum_j m_j * x_j."""
    g = spec.group
    m = np.arange(spec.table_entries, dtype=np.int64)
    if spec.symmetric:
        m = 2 * m + 1
    bits = m[:, None] >> np.arange(g) & 1  # [entries, group]
    signs = 2 * bits - 1 if spec.symmetric else bits
    return np.asarray(x, np.int64) @ signs.T


def group_dot(spec: LutSpec, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per-lane group dot products by table lookup: ``x [..., group]`` activation integers,
    ``codes [..., lanes, group]`` weight codes -> ``[..., lanes]`` (int64)."""
    tab = table(spec, x)[..., None, :]  # [..., 1, entries]
    masks, coef = plane_masks(spec, codes)  # [..., lanes, planes]
    g = spec.group
    # symmetric tables: P(m) = (S(m) + A) / 2, so 2*y = sum_p c_p S(m_p) + C*A with C = sum_p c_p
    # (-1 for two's complement weights, 0 ternary): the serial sum starts at C*A, drops a bit at the end
    total = np.asarray(x, np.int64).sum(axis=-1)[..., None]
    csum = int(coef.sum())
    acc = np.broadcast_to(csum * total if spec.symmetric else 0, masks.shape[:-1]).astype(np.int64)
    for p in range(spec.planes):
        mk = masks[..., p]
        if spec.symmetric:
            flip = 1 - (mk & 1)  # activation 0 taken with -
            idx = (mk ^ (-flip & ((1 << g) - 1))) >> 1
            entry = np.take_along_axis(np.broadcast_to(tab, mk.shape + tab.shape[-1:]), idx[..., None], -1)[..., 0]
            entry = np.where(flip == 1, -entry, entry)
        else:
            entry = np.take_along_axis(np.broadcast_to(tab, mk.shape + tab.shape[-1:]), mk[..., None], -1)[..., 0]
        acc = acc + int(coef[p]) * entry
    if not spec.symmetric:
        return acc
    assert (acc % 2 == 0).all()
    return acc >> 1


def pack_lanes(spec: LutSpec, lanes: np.ndarray) -> np.ndarray:
    """Port bits of per-lane accumulator integers ``[..., lanes]``: uint64 when they fit in
    64 bits, else Python ints (object)."""
    w, n = spec.width, spec.lanes
    mask = (1 << w) - 1
    if w * n <= 64:
        out = np.zeros(lanes.shape[:-1], np.uint64)
        for i in range(n):
            out |= (lanes[..., i].astype(np.int64).view(np.uint64) & np.uint64(mask)) << np.uint64(i * w)
        return out
    wide = np.zeros(lanes.shape[:-1], object)
    for i in range(n):
        wide = wide | ((lanes[..., i].astype(object) & mask) << (i * w))
    return wide


def lane_values(spec: LutSpec, acc_bits: Any) -> np.ndarray:
    """Signed per-lane accumulator integers ``[..., lanes]`` (object) of raw ``acc`` port bits."""
    bits = np.asarray(acc_bits).astype(object)
    w = spec.width
    out = np.empty(bits.shape + (spec.lanes,), object)
    for i in range(spec.lanes):
        lane = (bits >> (i * w)) & ((1 << w) - 1)
        out[..., i] = np.vectorize(lambda v: v - (1 << w) if v >> (w - 1) else v, otypes=[object])(lane)
    return out


def _inputs(spec: LutSpec, a: Any, b: Any, first: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    av, bv = np.asarray(a), np.asarray(b)
    if av.ndim != 3 or av.shape[-1] != spec.group:
        raise ValueError(f"a must have shape [batch, steps, group={spec.group}], got {av.shape}")
    if bv.ndim == 3 and spec.lanes == 1:
        bv = bv[..., None, :]
    if bv.shape != av.shape[:2] + (spec.lanes, spec.group):
        raise ValueError(
            f"b must have shape [batch, steps, lanes={spec.lanes}, group={spec.group}] "
            f"= {av.shape[:2] + (spec.lanes, spec.group)}, got {bv.shape}"
        )
    fv = np.asarray(first, dtype=bool)
    if fv.shape != av.shape[:2]:
        raise ValueError(f"first must have shape {av.shape[:2]}, got {fv.shape}")
    weight_ints(spec, bv)  # validates the codes
    return act_ints(spec, av), bv.astype(np.int64), fv


def run_lut(spec: LutSpec, *, a: Any, b: Any, first: Any) -> dict[str, np.ndarray]:
    """``acc`` port bits after every step, ``[batch, steps]``.

    ``a``: activation codes ``[batch, steps, group]``; ``b``: weight codes
    ``[batch, steps, lanes, group]`` (``[batch, steps, group]`` when lanes == 1);
    ``first``: ``[batch, steps]``."""
    x, codes, fv = _inputs(spec, a, b, first)
    dots = group_dot(spec, x, codes)  # [batch, steps, lanes]
    out = int_accumulate(dots, fv, spec.width)  # per lane, wrapping
    return {"acc": pack_lanes(spec, out)}


def lut_port_widths(spec: LutSpec) -> dict[str, int]:
    return {"acc": spec.lanes * spec.width}


def lut_value(spec: LutSpec, acc_bits: Any) -> np.ndarray:
    """float64 accumulator values ``[..., lanes]`` (activation scale included)."""
    ints = lane_values(spec, acc_bits).astype(np.float64)
    return np.ldexp(ints, spec.act_lsb_exp)


def _pow2_scale(amax: np.ndarray, target: float) -> np.ndarray:
    """Power-of-two scales s with amax / s <= target (1 where amax is 0)."""
    amax = np.asarray(amax, np.float64)
    safe = np.where(amax > 0, amax, 1.0)
    return np.where(amax > 0, np.exp2(np.ceil(np.log2(safe / target))), 1.0)


def quantize_weights(spec: LutSpec, w: Any) -> tuple[np.ndarray, np.ndarray]:
    """Weight codes ``[k, m]`` and per-column power-of-two scales ``[m]`` for real ``w``.

    Two's complement: scale so max |w| of a column fits ``2**(k-1) - 1`` (1 for 1-bit weights,
    whose values are {-1, 0}), round to nearest even, clip.  Ternary: BitNet absmean, with the
    column's mean |w| rounded to a power of two as the scale, then round and clip to {-1, 0, 1}.
    """
    wv = np.asarray(w, np.float64)
    if wv.ndim != 2:
        raise ValueError(f"w must be [k, m], got shape {wv.shape}")
    lo, hi = spec.weight_range
    if spec.ternary:
        mean = np.abs(wv).mean(axis=0)
        scale = np.where(mean > 0, np.exp2(np.round(np.log2(np.where(mean > 0, mean, 1.0)))), 1.0)
    else:
        scale = _pow2_scale(np.abs(wv).max(axis=0), max(hi, 1))
    q = np.clip(np.round(wv / scale), lo, hi).astype(np.int64)
    if spec.ternary:
        codes = np.where(q < 0, 3, q)
    else:
        codes = q & ((1 << spec.weight_code_bits) - 1)
    return codes, scale


def _quantize_acts(spec: LutSpec, x: np.ndarray) -> tuple[np.ndarray, float]:
    act = spec.act
    amax = float(np.abs(x).max()) if x.size else 0.0
    scale = float(_pow2_scale(np.array(amax), act.max))
    return act.encode(x / scale, overflow="saturate").astype(np.int64), scale


def matmul_lut(spec: LutSpec, x: Any, w: Any) -> np.ndarray:
    """``x @ w`` through the LUT PE (see :func:`peforge.models.golden.base.matmul`).

    ``x`` is quantised to ``act`` with one power-of-two scale, ``w`` by
    :func:`quantize_weights`; each output column's dot product runs as one accumulation chain
    of ``ceil(k / group)`` steps (zero-padded), ``lanes`` columns per PE, and the scales are
    undone on the float64 result."""
    xv, wv = matmul_operands(x, w)
    n, k = xv.shape
    m = wv.shape[1]
    g, lanes = spec.group, spec.lanes
    xc, xs = _quantize_acts(spec, xv)
    wc, ws = quantize_weights(spec, wv)
    zero_a = int(np.asarray(spec.act.encode(np.zeros(1))).ravel()[0])
    fast = kernels.chains(spec, xc, wc, zero_a)  # compiled, bit identical; None: reference below
    if fast is not None:
        return fast * xs * ws[None, :]
    steps = max(1, -(-k // g))
    cols = -(-m // lanes) * lanes
    a = np.full((n, steps * g), zero_a, np.int64)
    a[:, :k] = xc
    wp = np.zeros((steps * g, cols), np.int64)
    wp[:k, :m] = wc
    # batch row = (row of x, block of `lanes` columns)
    a_rows = np.repeat(a.reshape(n, steps, g), cols // lanes, axis=0)
    b_rows = np.tile(wp.reshape(steps, g, cols // lanes, lanes).transpose(2, 0, 3, 1), (n, 1, 1, 1, 1))
    b_rows = b_rows.reshape(n * (cols // lanes), steps, lanes, g)
    first = np.zeros((a_rows.shape[0], steps), bool)
    first[:, 0] = True
    raw = run_lut(spec, a=a_rows, b=b_rows, first=first)["acc"][:, -1]
    vals = lut_value(spec, raw).reshape(n, cols)[:, :m]
    return vals * xs * ws[None, :]
