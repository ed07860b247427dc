"""Kernels of the integer-accumulator families: ``intmac``, ``simd``, ``lut`` (and the integer
part of ``shiftadd``), bit exact.

Each output is ``acc := (first ? 0 : acc) + sum of the step's lane products`` in two's
complement of ``width`` bits, wrapping (``wrap``) or clamped once per step (``saturate``).
:func:`int_chains` computes the final accumulators exactly:

* **Wrap** is arithmetic modulo ``2**width``, so the final value is the exact dot product
  ``S = sum_k X[i, k] * W[k, j]`` reduced modulo ``2**width`` (lane grouping does not matter).
* **Saturate** never clamps when no partial sum can leave the range: ``B <= 2**(width-1) - 1``
  with ``B = K * max|X| * max|W|`` bounding every partial sum; then it is ``S`` as well.
  Otherwise a compiled step loop clamps after every step's exact lane sum.
* ``S`` comes from a compiled loop vectorised over the output columns, in int32 when
  ``B < 2**31`` (every partial sum of every chain fits, so int32 arithmetic is exact) and in
  int64 when ``B < 2**63``; ``B >= 2**63`` stays on the NumPy reference (numba's integer
  arithmetic must not overflow).  BLAS is not used: exact, but its threads stall on a loaded
  machine and its result would rest on the library's summation staying in range.

The LUT PE computes its group dot products by table lookups, bit-planes and a correction term,
but the golden model (and the hardware) produce exactly ``sum_j x_j * w_j`` per step, wrapped
per step, so the same kernel applies; the weight and activation integers come from the golden
model's own decoders.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from peforge.spec import IntMacSpec, LutSpec, SimdMacSpec

from .. import lut as lut_ref
from ._common import by_rows, pad_k, pad_rows
from ._jit import jit, run_rows

__all__ = ["int_chains", "wrap_to", "intmac_chains", "simd_chains", "lut_chains"]

_ROWS = 8


@jit
def _dot_wrap(r0: int, r1: int, x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out[i, j] = sum_k x[i, k] * w[k, j] in the arrays' integer type (callers ensure no
    partial sum leaves it)."""
    m = out.shape[1]
    acc = np.empty((_ROWS, m), out.dtype)
    for i0 in range(r0, r1, _ROWS):
        rows = min(_ROWS, r1 - i0)
        acc[:] = 0
        for k in range(w.shape[0]):
            for r in range(rows):
                xk = x[i0 + r, k]
                for j in range(m):
                    acc[r, j] += xk * w[k, j]
        out[i0 : i0 + rows] = acc[:rows]


@jit
def _dot_saturate(
    r0: int, r1: int, x: np.ndarray, w: np.ndarray, lanes: int, lo: int, hi: int, out: np.ndarray
) -> None:
    """Chains that clamp to ``lo..hi`` after every step's exact lane sum (int64; callers ensure
    a step sum plus an in-range accumulator cannot overflow int64)."""
    m = out.shape[1]
    acc = np.empty((_ROWS, m), np.int64)
    s = np.empty((_ROWS, m), np.int64)
    for i0 in range(r0, r1, _ROWS):
        rows = min(_ROWS, r1 - i0)
        acc[:] = 0
        for t in range(w.shape[0] // lanes):
            s[:] = 0
            for ln in range(lanes):
                k = t * lanes + ln
                for r in range(rows):
                    xk = x[i0 + r, k]
                    for j in range(m):
                        s[r, j] += xk * w[k, j]
            for r in range(rows):
                for j in range(m):
                    acc[r, j] = min(max(acc[r, j] + s[r, j], lo), hi)
        out[i0 : i0 + rows] = acc[:rows]


def wrap_to(s: np.ndarray, width: int) -> np.ndarray:
    """int64 values reduced to ``width``-bit two's complement (``width <= 64``)."""
    if width >= 64:
        return s
    half = np.int64(1 << (width - 1))
    return ((s + half) & np.int64((1 << width) - 1)) - half


def int_chains(x: np.ndarray, w: np.ndarray, lanes: int, width: int, saturate: bool) -> Optional[np.ndarray]:
    """Final ``width``-bit accumulators (int64 ``[n, m]``) of the chains of ``x [n, K] @ w [K, m]``
    (integers, ``K`` a multiple of ``lanes``), or None when beyond int64 (see module docstring)."""
    n, k = x.shape
    m = w.shape[1]
    amax = int(np.abs(x).max()) if x.size else 0
    bmax = int(np.abs(w).max()) if w.size else 0
    bound = k * amax * bmax
    if bound >= (1 << 63):
        return None  # int64 could overflow (numba's integer adds are no-signed-wrap)
    hi = (1 << (width - 1)) - 1
    if saturate and bound > hi:
        if width > 62 or lanes * amax * bmax >= (1 << 62):
            return None  # acc + step sum could leave int64
        w64 = np.ascontiguousarray(w, np.int64)

        def rows_sat(r0: int, r1: int) -> np.ndarray:
            out = np.empty((r1 - r0, m), np.int64)
            run_rows(
                _dot_saturate,
                r1 - r0,
                (r1 - r0) * m * k,
                np.ascontiguousarray(x[r0:r1], np.int64),
                w64,
                lanes,
                -hi - 1,
                hi,
                out,
            )
            return out

        return by_rows(n, k, m, rows_sat, np.int64)
    dt = np.int32 if bound < (1 << 31) else np.int64
    w_dt = np.ascontiguousarray(w, dt)

    def rows(r0: int, r1: int) -> np.ndarray:
        s = np.empty((r1 - r0, m), dt)
        run_rows(_dot_wrap, r1 - r0, (r1 - r0) * m * k, np.ascontiguousarray(x[r0:r1], dt), w_dt, s)
        return wrap_to(s.astype(np.int64), width)

    return by_rows(n, k, m, rows, np.int64)


def intmac_chains(spec: IntMacSpec, xq: np.ndarray, wq: np.ndarray, lanes: int, **_: object) -> Optional[np.ndarray]:
    """Final accumulator values (float64 ``[n, m]``) of the integer MAC's chains (codes in)."""
    K = max(1, -(-xq.shape[1] // lanes)) * lanes
    w = spec.b.to_int(pad_k(xq[:0], wq, K)[1])
    s = by_rows(
        xq.shape[0],
        K,
        w.shape[1],
        lambda r0, r1: int_chains(
            spec.a.to_int(pad_rows(xq[r0:r1], K)), w, lanes, spec.width, spec.overflow == "saturate"
        ),
        np.int64,
    )
    return None if s is None else s.astype(np.float64)


def simd_chains(spec: SimdMacSpec, xq: np.ndarray, wq: np.ndarray, lanes: int, **_: object) -> Optional[np.ndarray]:
    """Final accumulator values (float64 ``[n, m]``) of the SIMD PE's chains: ``xq``, ``wq`` are
    the lane integers of the mode (packing into port words and unpacking is the identity on
    them), the accumulator wraps modulo ``2**spec.width``."""
    K = max(1, -(-xq.shape[1] // lanes)) * lanes
    w = pad_k(xq[:0], wq, K)[1]
    s = by_rows(
        xq.shape[0],
        K,
        w.shape[1],
        lambda r0, r1: int_chains(pad_rows(xq[r0:r1], K), w, lanes, spec.width, False),
        np.int64,
    )
    return None if s is None else s.astype(np.float64)


def lut_chains(spec: LutSpec, xc: np.ndarray, wc: np.ndarray, zero_a: int) -> Optional[np.ndarray]:
    """Accumulator values (float64 ``[n, m]``, ``2**act_lsb_exp`` included) of the LUT PE's
    chains of activation codes ``xc [n, k]`` and weight codes ``wc [k, m]`` (groups of
    ``spec.group`` along ``k``, tail padded with ``zero_a`` / weight code 0)."""
    K = max(1, -(-xc.shape[1] // spec.group)) * spec.group
    w = lut_ref.weight_ints(spec, pad_k(xc[:0], wc, K)[1])
    s = by_rows(
        xc.shape[0],
        K,
        w.shape[1],
        lambda r0, r1: int_chains(
            lut_ref.act_ints(spec, pad_rows(xc[r0:r1], K, zero_a)), w, spec.group, spec.width, False
        ),
        np.int64,
    )
    return None if s is None else np.ldexp(s.astype(np.float64), spec.act_lsb_exp)
