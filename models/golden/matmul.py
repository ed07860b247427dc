"""Real-valued ``x @ w`` through a PE's bit-exact golden model (:func:`.base.matmul`).

Registers :func:`peforge.models.golden.matmul` for the ``mac``, ``intmac`` and ``simd``
families.  Every family follows the same recipe:

1. power-of-two scales: one for the whole of ``x`` and one per output column of ``w``, each
   the smallest ``2**e`` with ``max|.| / 2**e <= fmt.max``, so scaling itself never rounds;
2. quantise ``x / sx`` to operand format ``a`` and ``w / sw`` to ``b`` (round to nearest even,
   saturating);
3. one accumulation chain per output ``(i, j)``: ``ceil(k / lanes)`` steps, lanes filled in
   ``k`` order and the tail padded with zero codes, ``first`` set on step 0;
4. run all chains as one batch through :func:`.base.run` (in row chunks to bound memory) and
   decode the final accumulator with :func:`.base.value`, then multiply by ``sx * sw[j]``.

So the result carries every rounding the hardware does: operand quantisation, the lane sum
and the accumulator's rounding once per step (or wrap-around of a too-narrow integer
accumulator).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...quantize import pow2_scale
from ...spec import IntMacSpec, MinifloatMacSpec, SimdMacSpec
from . import kernels
from .base import chain_operands, matmul_operands, row_chunks, run, value

__all__ = ["pow2_scale", "matmul_mac", "matmul_intmac", "matmul_simd", "chain_operands"]


def _scales(xa: np.ndarray, wa: np.ndarray, a_max: float, b_max: float) -> tuple[float, np.ndarray]:
    sx = float(pow2_scale(np.abs(xa).max() if xa.size else 0.0, a_max))
    sw = pow2_scale(np.abs(wa).max(axis=0) if wa.shape[0] else np.zeros(wa.shape[1]), b_max)
    return sx, sw


def _run_chains(spec: Any, xq: np.ndarray, wq: np.ndarray, lanes: int, pack=None, **ctrl: Any) -> np.ndarray:
    """Final accumulator values ``[n, m]`` (float64, unscaled) of every chain, row-chunked."""
    fast = kernels.chains(spec, xq, wq, lanes, **ctrl)  # compiled, bit identical; None: reference
    if fast is not None:
        return fast
    n, k = xq.shape
    m = wq.shape[1]
    out = np.empty((n, m), dtype=np.float64)
    for r0, r1 in row_chunks(n, m * k):
        a, b = chain_operands(xq[r0:r1], wq, lanes)
        if pack is not None:
            a, b = pack(a, b)
        shape = a.shape[:2]
        first = np.zeros(shape, dtype=bool)
        first[:, 0] = True
        extra = {key: np.full(shape, v) for key, v in ctrl.items()}
        acc = run(spec, a=a, b=b, first=first, **extra)["acc"][:, -1]
        out[r0:r1] = value(spec, acc).reshape(-1, m)
    return out


def matmul_mac(spec: MinifloatMacSpec, x: Any, w: Any) -> np.ndarray:
    """``x @ w`` on a minifloat MAC: a/b quantised to ``spec.a``/``spec.b`` (RNE, saturating)."""
    xa, wa = matmul_operands(x, w)
    sx, sw = _scales(xa, wa, spec.a.max, spec.b.max)
    xq = spec.a.encode(xa / sx, overflow="saturate")
    wq = spec.b.encode(wa / sw, overflow="saturate")
    return _run_chains(spec, xq, wq, spec.lanes) * (sx * sw)


def matmul_intmac(spec: IntMacSpec, x: Any, w: Any) -> np.ndarray:
    """``x @ w`` on the integer MAC: symmetric scales to ``max_int`` (an unsigned format
    clamps negative values to 0)."""
    xa, wa = matmul_operands(x, w)
    sx, sw = _scales(xa, wa, spec.a.max, spec.b.max)
    xq = spec.a.encode(xa / sx, overflow="saturate")
    wq = spec.b.encode(wa / sw, overflow="saturate")
    return _run_chains(spec, xq, wq, spec.lanes) * (sx * sw)


def _simd_mode(spec: SimdMacSpec, mode: Any) -> int:
    modes = spec.modes or ()
    if isinstance(mode, str):
        if mode not in modes:
            raise ValueError(f"mode={mode!r} is not a mode of {spec.name}: allowed {modes}")
        return modes.index(mode)
    if isinstance(mode, bool) or not isinstance(mode, (int, np.integer)) or not 0 <= mode < len(modes):
        raise ValueError(f"mode={mode!r} is out of range: allowed 0..{len(modes) - 1} or one of {modes}")
    return int(mode)


def _pack(vals: np.ndarray, bits: int) -> np.ndarray:
    """Port words ``[B, T]`` of lane values ``[B, T, L]`` (lane 0 least significant)."""
    lanes = vals.shape[-1]
    raw = vals.astype(np.int64) & ((1 << bits) - 1)
    if lanes * bits <= 64:
        shifts = np.arange(lanes, dtype=np.uint64) * np.uint64(bits)
        return np.bitwise_or.reduce(raw.astype(np.uint64) << shifts, axis=-1)
    shifts = np.array([i * bits for i in range(lanes)], dtype=object)
    return np.bitwise_or.reduce(raw.astype(object) << shifts, axis=-1)


def matmul_simd(spec: SimdMacSpec, x: Any, w: Any, *, mode: Any = 0) -> np.ndarray:
    """``x @ w`` on the SIMD PE in one of its modes (index or ``"AxB"``; default the first).

    Each operand is signed (two's complement) when its tensor has a negative value, else
    unsigned, chosen per call (the PE picks signedness at run time); scales are symmetric.
    """
    m_idx = _simd_mode(spec, mode)
    (abits, bbits), lanes = spec.mode_widths[m_idx], spec.mode_lanes[m_idx]
    xa, wa = matmul_operands(x, w)
    a_signed, b_signed = bool((xa < 0).any()), bool((wa < 0).any())
    a_max = (1 << (abits - a_signed)) - 1
    b_max = (1 << (bbits - b_signed)) - 1
    sx, sw = _scales(xa, wa, float(a_max), float(b_max))
    a_lo, b_lo = (-a_max - 1 if a_signed else 0), (-b_max - 1 if b_signed else 0)
    xq = np.clip(np.rint(xa / sx), a_lo, a_max).astype(np.int64)  # rint: ties to even
    wq = np.clip(np.rint(wa / sw), b_lo, b_max).astype(np.int64)
    return _run_chains(
        spec,
        xq,
        wq,
        lanes,
        pack=lambda a, b: (_pack(a, abits), _pack(b, bbits)),
        mode=m_idx,
        a_signed=a_signed,
        b_signed=b_signed,
    ) * (sx * sw)
