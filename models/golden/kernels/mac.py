"""Kernels of the minifloat MAC (``mac``): float accumulators and exact (Kulisch) ones.

Float accumulators run :mod:`.floatacc` (conditions there); exact accumulators run
:mod:`.kulisch`.  Operand codes are decoded with the golden model's own tables (flushed
subnormals included); L-Mul operands are normalised by the golden model's own routine and
combined as stated in :func:`lmul_operand`.
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np

from peforge.formats import KIND_FINITE, KIND_INF, KIND_NAN, FloatFormat
from peforge.spec import MinifloatMacSpec

from .. import mac as ref
from ..base import run, value
from ._common import by_rows, canonical_nan, lane_bits, pad_k, pad_rows, redo_chains
from ._jit import run_rows
from .floatacc import acc_params, float_chains, float_path_ok, mac_f32_l1

__all__ = ["mac_chains", "value_table", "lmul_parts", "lmul_operand"]

_EMPTY = np.zeros((0, 0))


@functools.lru_cache(maxsize=64)
def value_table(fmt: FloatFormat, subnormals: bool) -> np.ndarray:
    """float64 value of every code as the MAC reads it (NaN, +-inf, +-0; flushed subnormals)."""
    neg, sig, exp, kind = ref._decode_table(fmt, subnormals)
    v = np.ldexp(sig.astype(np.float64), exp.astype(np.int64))
    v = np.where(kind == KIND_INF, np.inf, v)
    v = np.where(neg, -v, v)
    return np.where(kind == KIND_NAN, np.nan, v)


@functools.lru_cache(maxsize=64)
def lmul_parts(fmt: FloatFormat, subnormals: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every code as the L-Mul adder sees it, by the golden model's own normalisation:
    ``(f * 2**M, e, sign)`` with value ``(1 + f) * 2**e`` for finite nonzero codes (subnormals
    normalised), and ``sign`` = +-1, or 0 for zeros, inf and NaN (their products follow the
    exact rules)."""
    neg, sig, exp, kind = ref._decode_table(fmt, subnormals)
    live = (kind == KIND_FINITE) & (sig != 0)
    f, e = ref._normalise(np.where(live, sig, 1), exp, fmt.man_bits)
    sign = np.where(live, np.where(neg, -1, 1), 0)
    return np.where(live, f, 0).astype(np.int64), np.where(live, e, 0).astype(np.int64), sign.astype(np.int64)


@functools.lru_cache(maxsize=64)
def lmul_operand(fmt: FloatFormat, subnormals: bool) -> tuple[np.ndarray, np.ndarray]:
    """float64 (signed power of two, fraction) of every code for the L-Mul float kernels.

    The golden L-Mul product of finite nonzero operands is ``(1 + fx + fy + 2**-l) *
    2**(ex + ey)`` with the sign xor; as ``(Sx * Sy) * ((1 + 2**-l + fx) + fy)`` with
    ``S = +-2**e`` every operation is exact in float64 (a product of powers of two; fractions on
    the grid ``2**-m``, sum below 4).  Zeros, inf and NaN get ``S`` = their own value and
    ``f = 0``, so IEEE multiplication gives the exact-product rules (inf * 0 = NaN, signed zeros)."""
    f, e, sign = lmul_parts(fmt, subnormals)
    vals = value_table(fmt, subnormals)
    scale = np.where(sign != 0, sign * np.ldexp(1.0, e), vals)
    return scale, np.ldexp(f.astype(np.float64), -fmt.man_bits)


def _f32_exact_products(spec: MinifloatMacSpec) -> bool:
    """Lane-1 FP32 fast path: exact products, each exact in float32 (floatacc docstring)."""
    a, b = spec.a, spec.b
    return (
        spec.mult == "exact"
        and spec.lanes == 1
        and acc_params(spec.acc, True)[0]
        and (a.man_bits + 1) + (b.man_bits + 1) <= 24
        and min(a.min_exp, b.min_exp, spec.product_lsb_exp) >= -149
        and max(a.emax, b.emax, spec.product_max_exp) <= 127
    )


def _reference(
    spec: MinifloatMacSpec, xp: np.ndarray, wp: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """The NumPy model's final values of chains (rows[i], cols[i])."""
    lanes = spec.lanes
    steps = xp.shape[1] // lanes
    a = xp[rows].reshape(-1, steps, lanes)
    b = wp[:, cols].T.reshape(-1, steps, lanes)
    first = np.zeros((rows.size, steps), bool)
    first[:, 0] = True
    return value(spec, run(spec, a=a, b=b, first=first)["acc"][:, -1])


def mac_chains(spec: MinifloatMacSpec, xq: np.ndarray, wq: np.ndarray, lanes: int, **_: object) -> Optional[np.ndarray]:
    """Final accumulator values ``[n, m]`` of the chains of ``xq [n, k] @ wq [k, m]`` (codes),
    ``lanes`` products per step, the ``k`` tail padded with zero codes; None if unsupported."""
    n, k = xq.shape
    m = wq.shape[1]
    steps = max(1, -(-k // lanes))
    K = steps * lanes
    wp = pad_k(xq[:0], wq, K)[1]
    if spec.is_exact:
        from . import kulisch

        if not kulisch.supported(spec):
            return None
        return by_rows(n, K, m, lambda r0, r1: kulisch.mac_exact_chains(spec, pad_rows(xq[r0:r1], K), wp))
    fmt = spec.acc_format
    span = spec.product_max_exp + 1 + lane_bits(lanes) - spec.product_lsb_exp
    if not float_path_ok(fmt, spec.product_lsb_exp, spec.product_max_exp + lane_bits(lanes) + 1):
        return None
    p = acc_params(fmt, spec.subnormals)
    sub = spec.subnormals
    if _f32_exact_products(spec):
        t32 = value_table(spec.a, sub).astype(np.float32)
        w32 = value_table(spec.b, sub).astype(np.float32)[wp]

        def rows_f32(r0: int, r1: int) -> np.ndarray:
            out = np.empty((r1 - r0, m))
            run_rows(mac_f32_l1, r1 - r0, (r1 - r0) * m * K, t32[pad_rows(xq[r0:r1], K)], w32, p[7], p[6], out)
            return canonical_nan(out)

        return by_rows(n, K, m, rows_f32)
    if spec.mult == "exact":
        ta, tfa = value_table(spec.a, sub), None
        wv, wf = value_table(spec.b, sub)[wp], _EMPTY
        lmul_c = 0.0
    else:
        (ta, tfa), (sb, fb) = (lmul_operand(f, sub) for f in (spec.a, spec.b))
        wv, wf = sb[wp], fb[wp]
        lmul_c = 1.0 + 2.0**-spec.lmul_offset_exp
    check = lanes > 1 and span > 53

    def rows(r0: int, r1: int) -> np.ndarray:
        xp = pad_rows(xq[r0:r1], K)
        xv, xf = ta[xp], (_EMPTY if tfa is None else tfa[xp])
        out = np.empty((r1 - r0, m))
        bad = np.zeros((r1 - r0, m), np.uint8)
        run_rows(
            float_chains, r1 - r0, (r1 - r0) * m * K, xv, wv, xf, wf, lmul_c, _EMPTY, _EMPTY, lanes, check, *p, out, bad
        )
        if check:
            redo_chains(out, bad, lambda r, c: _reference(spec, xp, wp, r, c))
        return canonical_nan(out)

    return by_rows(n, K, m, rows)
