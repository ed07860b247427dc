"""Kernel of the block-dot PE (``blockdot``: OCP MX, NVFP4), bit exact.

One block step is ``acc := round(acc + S * Xa * Xb)`` with ``S`` the exact block sum of the
element products: :func:`.floatacc.float_chains` with ``lanes = block`` and the step scaled
by the decoded scales.  Extra conditions beyond :mod:`.floatacc`'s:

* ``V = S * (Xa * Xb)`` is exact: E8M0 scales are powers of two (so is their product), and
  the whole range ``2**(lsb_S - 254) .. 2**(max_S + 254)`` lies inside float64; with an E4M3
  (NVFP4) scale the bits of ``S`` plus the two 4-bit scale significands must fit in 53, else
  the spec stays on the NumPy reference.
* The block sum is exact statically when ``block`` element products fit 53 bits above the
  smallest product (e4m3fn, e2m1fn, e2m3fn, e3m2fn, MXINT8); e5m2 elements (64-bit product
  span) are checked per partial sum and flagged chains are recomputed by the NumPy model.
* IEEE multiplication gives the golden rules for specials: a NaN scale (E8M0 0xFF) makes ``V``
  NaN even for ``S = 0``; inf * 0 scale is NaN; the sign of a zero ``V`` is the xor of the
  signs of ``S``, ``Xa`` and ``Xb``.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import numpy as np

from peforge.formats import KIND_INF, KIND_NAN, FloatFormat, IntFormat
from peforge.spec import BlockDotSpec

from .. import blockdot as ref
from ._common import by_rows, canonical_nan, lane_bits, redo_chains
from ._jit import run_rows
from .floatacc import acc_params, float_chains, float_path_ok

__all__ = ["blockdot_chains", "code_values", "value_range"]

_EMPTY = np.zeros((0, 0))


@functools.lru_cache(maxsize=32)
def code_values(fmt: FloatFormat | IntFormat) -> np.ndarray:
    """float64 value of every element or scale code, from the golden model's decode table."""
    neg, sig, exp, kind = ref.element_table(fmt)
    v = np.ldexp(sig.astype(np.float64), exp.astype(np.int64))
    v = np.where(kind == KIND_INF, np.inf, v)
    v = np.where(neg, -v, v)
    return np.where(kind == KIND_NAN, np.nan, v)


@functools.lru_cache(maxsize=32)
def value_range(fmt: FloatFormat | IntFormat) -> tuple[int, int, bool]:
    """(exponent of the lowest bit of any finite value, floor(log2(max |finite|)), every
    finite nonzero value is a power of two)."""
    neg, sig, exp, kind = ref.element_table(fmt)
    live = (kind != KIND_INF) & (kind != KIND_NAN) & (sig != 0)
    lsb = int(exp[live].min())
    top = int(math.floor(math.log2(float(np.abs(code_values(fmt)[live]).max()))))
    pow2 = bool(np.all((sig[live] & (sig[live] - 1)) == 0))
    return lsb, top, pow2


def _reference(
    spec: BlockDotSpec,
    xc: np.ndarray,
    wc: np.ndarray,
    xs: np.ndarray,
    ws: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    blk = spec.block
    steps = xs.shape[1]
    a = xc[rows].reshape(-1, steps, blk)
    b = wc[:, cols].T.reshape(-1, steps, blk)
    first = np.zeros((rows.size, steps), bool)
    first[:, 0] = True
    acc = ref.run_blockdot(spec, a=a, b=b, scale_a=xs[rows], scale_b=ws[:, cols].T, first=first)["acc"]
    return ref.blockdot_value(spec, acc[:, -1])


def blockdot_chains(
    spec: BlockDotSpec, xc: np.ndarray, wc: np.ndarray, xs: np.ndarray, ws: np.ndarray
) -> Optional[np.ndarray]:
    """Final accumulator values ``[n, m]`` of the block chains of ``xc [n, K] @ wc [K, m]``
    (element codes, ``K`` a multiple of ``block``) with scale codes ``xs [n, T]`` and
    ``ws [T, m]``; None when the spec is outside the kernel's conditions."""
    fa, fb, ga, gb = spec.element_a, spec.element_b, spec.scale_a, spec.scale_b
    (la, ta, _), (lb, tb, _) = value_range(fa), value_range(fb)
    (lsa, tsa, pa), (lsb, tsb, pb) = value_range(ga), value_range(gb)
    blk = spec.block
    s_lsb, s_top = la + lb, ta + tb + 1 + lane_bits(blk)  # S in [2**s_lsb, 2**(s_top+1))
    span = s_top + 1 - s_lsb
    if not (pa and pb):  # E4M3 scales: S * Xa * Xb must stay exact without a check
        if span + (ga.man_bits + 1) + (gb.man_bits + 1) > 53:
            return None
    if not float_path_ok(spec.acc, s_lsb + lsa + lsb, s_top + tsa + tsb + 2):
        return None
    n, k = xc.shape
    m = wc.shape[1]
    wc, ws = np.ascontiguousarray(wc, np.int64), np.ascontiguousarray(ws, np.int64)
    wv, sb = code_values(fb)[wc], code_values(gb)[ws]
    check = span > 53
    p = acc_params(spec.acc, True)

    def rows(r0: int, r1: int) -> np.ndarray:
        xr, xsr = np.ascontiguousarray(xc[r0:r1], np.int64), np.ascontiguousarray(xs[r0:r1], np.int64)
        xv, sa = code_values(fa)[xr], code_values(ga)[xsr]
        out = np.empty((r1 - r0, m))
        bad = np.zeros((r1 - r0, m), np.uint8)
        run_rows(
            float_chains, r1 - r0, (r1 - r0) * m * k, xv, wv, _EMPTY, _EMPTY, 0.0, sa, sb, blk, check, *p, out, bad
        )
        if check:
            redo_chains(out, bad, lambda r, c: _reference(spec, xr, wc, xsr, ws, r, c))
        return canonical_nan(out)

    return by_rows(n, k, m, rows)
