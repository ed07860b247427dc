"""Helpers shared by the family kernels: padding, value tables, reference fall-back."""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["pad_k", "pad_rows", "lane_bits", "canonical_nan", "redo_chains", "by_rows", "CHUNK_ELEMS"]

#: operand elements of ``x`` per kernel call: bounds the temporaries (codes, values, padding)
CHUNK_ELEMS = 1 << 22


def pad_k(
    xq: np.ndarray, wq: np.ndarray, length: int, x_fill: int = 0, w_fill: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``xq [n, k]`` and ``wq [k, m]`` padded along ``k`` to ``length`` (contiguous int64)."""
    n, k = xq.shape
    m = wq.shape[1]
    xp = np.full((n, length), x_fill, dtype=np.int64)
    xp[:, :k] = xq
    wp = np.full((length, m), w_fill, dtype=np.int64)
    wp[:k] = wq
    return xp, wp


def pad_rows(xq: np.ndarray, length: int, fill: int = 0) -> np.ndarray:
    """``xq [n, k]`` padded along ``k`` to ``length`` (contiguous int64)."""
    xp = np.full((xq.shape[0], length), fill, dtype=np.int64)
    xp[:, : xq.shape[1]] = xq
    return xp


def by_rows(
    n: int, k: int, m: int, fn: Callable[[int, int], Optional[np.ndarray]], dtype: Any = np.float64
) -> Optional[np.ndarray]:
    """``fn(r0, r1)`` (the ``[r1 - r0, m]`` results of rows ``r0..r1``) over row chunks of at
    most :data:`CHUNK_ELEMS` operand elements, assembled into ``[n, m]``; None as soon as a
    chunk returns None (a case beyond the kernels: the caller runs the NumPy reference)."""
    rows = max(1, CHUNK_ELEMS // max(1, k))
    if n <= rows:
        return fn(0, n)
    out = np.empty((n, m), dtype)
    for r0 in range(0, n, rows):
        part = fn(r0, min(n, r0 + rows))
        if part is None:
            return None
        out[r0 : r0 + rows] = part
    return out


def lane_bits(lanes: int) -> int:
    """Bits a sum of ``lanes`` terms can grow by: ceil(log2(lanes))."""
    return math.ceil(math.log2(lanes)) if lanes > 1 else 0


def canonical_nan(out: np.ndarray) -> np.ndarray:
    """Every NaN as NumPy's ``nan`` (the value the reference decodes a NaN code to)."""
    nan = np.isnan(out)
    if nan.any():
        out[nan] = np.nan
    return out


def redo_chains(out: np.ndarray, bad: np.ndarray, reference: Callable[[np.ndarray, np.ndarray], Any]) -> None:
    """Replace ``out[i, j]`` where ``bad`` by ``reference(rows, cols)`` (the NumPy model)."""
    rows, cols = np.nonzero(bad)
    if rows.size:
        out[rows, cols] = reference(rows, cols)
