"""Helpers shared by the family kernels: padding, value tables, reference fall-back."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

__all__ = ["pad_k", "lane_bits", "canonical_nan", "redo_chains"]


def pad_k(xq: np.ndarray, wq: np.ndarray, length: int, x_fill: int = 0,
          w_fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``xq [n, k]`` and ``wq [k, m]`` padded along ``k`` to ``length`` (contiguous int64)."""
    n, k = xq.shape
    m = wq.shape[1]
    xp = np.full((n, length), x_fill, dtype=np.int64)
    xp[:, :k] = xq
    wp = np.full((length, m), w_fill, dtype=np.int64)
    wp[:k] = wq
    return xp, wp


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
