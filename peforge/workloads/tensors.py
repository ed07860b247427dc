"""Tensor-level workloads: synthetic operand distributions and the error metrics used on them.

Gaussian data is the easy case, Laplacian has heavier tails, and Student-t (``df=3``) is the
outlier-heavy case that separates formats with wide dynamic range (minifloats, block scales)
from plain integers.  All generators are seeded and return float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian", "laplacian", "student_t", "DISTRIBUTIONS", "sqnr_db", "relative_error"]


def gaussian(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Standard normal samples."""
    return np.random.default_rng(seed).standard_normal(shape)


def laplacian(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Laplace samples with unit variance (scale 1/sqrt(2))."""
    return np.random.default_rng(seed).laplace(0.0, 1.0 / np.sqrt(2.0), shape)


def student_t(shape: tuple[int, ...], seed: int = 0, df: float = 3.0) -> np.ndarray:
    """Student-t samples (outlier-heavy for small ``df``)."""
    if df <= 0:
        raise ValueError(f"df={df!r}: allowed a positive number of degrees of freedom")
    return np.random.default_rng(seed).standard_t(df, shape)


DISTRIBUTIONS = {"gaussian": gaussian, "laplacian": laplacian, "student_t": student_t}


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio ``10 log10(sum ref^2 / sum (ref - approx)^2)`` in dB.

    ``inf`` when ``approx`` equals ``reference``.  A non-finite ``approx`` (NaN/inf from an
    overflowing format) gives ``-inf``, so it sorts as the worst result.
    """
    ref = np.asarray(reference, np.float64)
    app = np.asarray(approx, np.float64)
    if ref.shape != app.shape:
        raise ValueError(f"shapes differ: reference {ref.shape} vs approx {app.shape}")
    if not np.all(np.isfinite(app)):
        return float("-inf")
    noise = float(np.sum((ref - app) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(signal / noise) if signal > 0 else float("-inf")


def relative_error(reference: np.ndarray, approx: np.ndarray) -> float:
    """Frobenius-norm relative error ``||ref - approx|| / ||ref||`` (``inf`` if non-finite)."""
    ref = np.asarray(reference, np.float64)
    app = np.asarray(approx, np.float64)
    if not np.all(np.isfinite(app)):
        return float("inf")
    den = float(np.linalg.norm(ref))
    return float(np.linalg.norm(ref - app)) / den if den > 0 else float(np.linalg.norm(app))
