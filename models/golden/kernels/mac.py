"""Kernels of the minifloat MAC (``mac``): float accumulators and exact (Kulisch) ones.

Float accumulators run :mod:`.floatacc` (conditions there); exact accumulators run
:mod:`.kulisch`.  Operand codes are decoded with the golden model's own tables (flushed
subnormals included); L-Mul products come from the golden model's product of every code pair,
so the kernels never re-implement a product rule.
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np

from peforge.formats import KIND_INF, KIND_NAN, FloatFormat
from peforge.spec import MinifloatMacSpec

from .. import mac as ref
from ..base import run, value
from ._common import canonical_nan, lane_bits, pad_k, redo_chains
from ._jit import run_rows
from .floatacc import acc_params, float_chains, float_path_ok, mac_f32_l1

__all__ = ["mac_chains", "value_table", "product_table"]

_EMPTY_F = np.zeros(0)
_EMPTY_I = np.zeros((0, 0), np.int64)


@functools.lru_cache(maxsize=64)
def value_table(fmt: FloatFormat, subnormals: bool) -> np.ndarray:
    """float64 value of every code as the MAC reads it (NaN, +-inf, +-0; flushed subnormals)."""
    neg, sig, exp, kind = ref._decode_table(fmt, subnormals)
    v = np.ldexp(sig.astype(np.float64), exp.astype(np.int64))
    v = np.where(kind == KIND_INF, np.inf, v)
    v = np.where(neg, -v, v)
    return np.where(kind == KIND_NAN, np.nan, v)


@functools.lru_cache(maxsize=16)
def product_table(spec: MinifloatMacSpec) -> Optional[np.ndarray]:
    """float64 product of every (a, b) code pair (``a * nb + b``) by the golden model's rule,
    or None when the pair table would be too big (more than 16 code bits)."""
    fa, fb = spec.a, spec.b
    if fa.bits + fb.bits > 16:  # type: ignore[union-attr]
        return None
    na, nb = fa.num_codes, fb.num_codes  # type: ignore[union-attr]
    p = ref._products(spec, np.repeat(np.arange(na), nb), np.tile(np.arange(nb), na))
    v = np.ldexp(p.sig.astype(np.float64), p.exp.astype(np.int64))
    v = np.where(p.inf, np.inf, v)
    v = np.where(p.neg, -v, v)
    return np.where(p.nan, np.nan, v)


def _f32_exact_products(spec: MinifloatMacSpec) -> bool:
    """Lane-1 FP32 fast path: exact products, each exact in float32 (floatacc docstring)."""
    a, b = spec.a, spec.b
    return (spec.mult == "exact" and spec.lanes == 1 and acc_params(spec.acc, True)[0]  # type: ignore[arg-type]
            and (a.man_bits + 1) + (b.man_bits + 1) <= 24  # type: ignore[union-attr]
            and min(a.min_exp, b.min_exp, spec.product_lsb_exp) >= -149  # type: ignore[union-attr]
            and max(a.emax, b.emax, spec.product_max_exp) <= 127)  # type: ignore[union-attr]


def _reference(spec: MinifloatMacSpec, xp: np.ndarray, wp: np.ndarray, rows: np.ndarray,
               cols: np.ndarray) -> np.ndarray:
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
    xp, wp = pad_k(xq, wq, steps * lanes)
    if spec.is_exact:
        from . import kulisch

        return kulisch.mac_exact_chains(spec, xp, wp)
    fmt: FloatFormat = spec.acc  # type: ignore[assignment]
    span = spec.product_max_exp + 1 + lane_bits(lanes) - spec.product_lsb_exp
    if not float_path_ok(fmt, spec.product_lsb_exp, spec.product_max_exp + lane_bits(lanes) + 1):
        return None
    work = n * m * steps * lanes
    out = np.empty((n, m))
    p = acc_params(fmt, spec.subnormals)
    if _f32_exact_products(spec):
        x32 = value_table(spec.a, spec.subnormals).astype(np.float32)[xp]  # type: ignore[arg-type]
        w32 = value_table(spec.b, spec.subnormals).astype(np.float32)[wp]  # type: ignore[arg-type]
        run_rows(mac_f32_l1, n, work, x32, w32, p[7], p[6], out)
        return canonical_nan(out)
    if spec.mult == "exact":
        xv = value_table(spec.a, spec.subnormals)[xp]  # type: ignore[arg-type]
        wv = value_table(spec.b, spec.subnormals)[wp]  # type: ignore[arg-type]
        xc = wc = _EMPTY_I
        tab, nb = _EMPTY_F, 0
    else:
        tab = product_table(spec)
        if tab is None:
            return None
        xv = wv = _EMPTY_I.astype(np.float64)
        xc, wc, nb = xp, wp, spec.b.num_codes  # type: ignore[union-attr]
    check = lanes > 1 and span > 53
    bad = np.zeros((n, m), np.uint8)
    empty2 = np.zeros((0, 0))
    run_rows(float_chains, n, work, xv, wv, xc, wc, tab, nb, empty2, empty2, lanes, check, *p, out, bad)
    if check:
        redo_chains(out, bad, lambda r, c: _reference(spec, xp, wp, r, c))
    return canonical_nan(out)
