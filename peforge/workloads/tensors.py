"""Tensor-level workloads: synthetic operand distributions and the error metrics used on them.

Gaussian data is the easy case, Laplacian has heavier tails, and Student-t (``df=3``) is the
outlier-heavy case that separates formats with wide dynamic range (minifloats, block scales)
from plain integers.  The LLM-like pairs add what transformer layers show (LLM.int8(),
SmoothQuant, LLM-FP4): a few activation *channels* (columns of ``x``) 20-100x larger than the
rest, and heavy-tailed weights.  All generators are seeded and return float64.

:data:`PAIRS` maps each built-in tensor workload to its ``(x, w)`` generator;
:class:`TensorWorkload` scores a PE's ``matmul`` on one pair against the float64 product.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .base import MatMul, Metrics, Workload

__all__ = [
    "gaussian",
    "laplacian",
    "student_t",
    "DISTRIBUTIONS",
    "sqnr_db",
    "relative_error",
    "outlier_channels",
    "PAIRS",
    "pair",
    "TensorWorkload",
]


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


def outlier_channels(
    shape: tuple[int, int], seed: int = 0, fraction: float = 1 / 64, low: float = 20.0, high: float = 100.0
) -> np.ndarray:
    """Gaussian activations ``[n, k]`` whose ``max(2, round(fraction * k))`` channels (columns,
    seeded choice) are multiplied by factors drawn uniformly from ``[low, high]``."""
    n, k = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, k))
    count = min(k, max(2, round(fraction * k)))
    cols = rng.choice(k, size=count, replace=False)
    x[:, cols] *= rng.uniform(low, high, size=count)
    return x


def _independent(
    gen: Callable[..., np.ndarray],
) -> Callable[[tuple[int, int, int], int], tuple[np.ndarray, np.ndarray]]:
    def make(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
        n, k, m = shape
        return gen((n, k), seed=seed), gen((k, m), seed=seed + 1)

    return make


def _outliers(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    n, k, m = shape
    return outlier_channels((n, k), seed), gaussian((k, m), seed + 1)


def _llm(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    n, k, m = shape
    return outlier_channels((n, k), seed), student_t((k, m), seed + 1)


#: Built-in tensor workloads: name -> ``(shape (n, k, m), seed) -> (x [n, k], w [k, m])``.
PAIRS: dict[str, Callable[[tuple[int, int, int], int], tuple[np.ndarray, np.ndarray]]] = {
    **{name: _independent(gen) for name, gen in DISTRIBUTIONS.items()},
    "outliers": _outliers,  # outlier activation channels x Gaussian weights
    "llm": _llm,  # outlier activation channels x heavy-tailed (Student-t) weights
}


def pair(name: str, shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x``, ``w`` and their float64 product of a built-in tensor workload."""
    x, w = PAIRS[name](tuple(shape), seed)  # type: ignore[arg-type]
    # BLAS-free reference: the same bits whatever thread count a pool or Dask worker runs with
    return x, w, np.einsum("nk,km->nm", x, w, optimize=False)


class TensorWorkload(Workload):
    """One built-in GEMM (:data:`PAIRS`) scored by SQNR and relative error against float64."""

    kind = "tensor"

    def __init__(self, name: str, shape: tuple[int, int, int] = (64, 256, 64), seed: int = 0) -> None:
        if name not in PAIRS:
            raise ValueError(f"tensor workload {name!r} is unknown: allowed {sorted(PAIRS)}")
        self.name, self.shape, self.seed = name, tuple(shape), seed
        self._data: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._data is None:
            self._data = pair(self.name, self.shape, self.seed)  # type: ignore[arg-type]
        return self._data

    def baseline(self) -> Metrics:
        x, w, ref = self.data()
        approx = (x.astype(np.float32) @ w.astype(np.float32)).astype(np.float64)
        return {"sqnr_db": sqnr_db(ref, approx)}

    def score(self, matmul: MatMul) -> Metrics:
        x, w, ref = self.data()
        approx = matmul(x, w)
        return {"sqnr_db": sqnr_db(ref, approx), "rel_err": relative_error(ref, approx)}


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
    signal = float(np.sum(ref**2))
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
