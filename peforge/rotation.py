"""Hadamard rotations of a matmul's inner dimension, applied before quantisation.

For ``y = x @ w`` with an orthogonal ``R`` (``R @ R.T = I``), ``(x @ R) @ (R.T @ w) == x @ w``:
rotating ``x``'s rows and ``w``'s columns spreads an outlier of one channel over a block of
channels, which shrinks the block's crest factor (max / rms) before quantisation.

Rotations (:data:`ROTATIONS`):

``none``             identity.
``hadamard``         ``R`` is block-diagonal with ``H_b / sqrt(b)`` blocks, ``H_b`` the
                     Sylvester Hadamard matrix of order ``b`` (a power of two); ``block=None``
                     rotates the whole (zero-padded) inner dimension at once.
``random-hadamard``  ``R = D H / sqrt(b)`` with ``D`` a seeded diagonal of random signs
                     (the random Hadamard transform of "Pretraining Large Language Models
                     with NVFP4" and of QuaRot-style methods): different signs per position
                     decorrelate the rotation from the data.

The inner dimension is zero-padded to a multiple of ``b`` (zeros change no product).  The
transform is the fast Walsh-Hadamard butterfly in float64: log2(b) stages of additions and
subtractions, then one scaling by 2^-(log2 b)/2, so ``(x R)(R^T w)`` equals ``x w`` up to
float64 rounding (a relative error near 1e-16 per operation, far below any quantiser).

Hardware: a weight rotation is done once, offline; an activation rotation needs a fast
Hadamard unit in front of the PE (log2(b) add/subtract stages), which
:func:`peforge.models.cost.rotation.hadamard_estimate` prices.

Only NumPy is imported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ROTATIONS", "hadamard_matrix", "fwht", "rotate_matmul", "rotation_matrix", "check_rotation"]

#: Rotation kinds accepted by :func:`rotate_matmul`, ``golden.matmul(..., rotation=...)`` and sweeps.
ROTATIONS = ("none", "hadamard", "random-hadamard")


def check_rotation(kind: Any, block: Any) -> tuple[str, int | None]:
    """Validated ``(kind, block)``: ``kind`` one of :data:`ROTATIONS`, ``block`` None or a
    power of two >= 2."""
    if kind not in ROTATIONS:
        raise ValueError(f"rotation={kind!r} is not allowed: use one of {ROTATIONS}")
    if block is None:
        return kind, None
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 2 or block & (block - 1):
        raise ValueError(f"rotation_block={block!r} must be a power of two >= 2 (or None: the whole inner dimension)")
    return kind, int(block)


def hadamard_matrix(n: int) -> np.ndarray:
    """The Sylvester Hadamard matrix of order ``n`` (a power of two), entries +-1, float64."""
    check_rotation("hadamard", n)
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def fwht(a: np.ndarray, axis: int, block: int) -> np.ndarray:
    """``a`` with every run of ``block`` entries along ``axis`` multiplied by ``H_block /
    sqrt(block)`` (fast butterfly; ``a.shape[axis]`` must be a multiple of ``block``)."""
    moved = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    n = moved.shape[-1]
    if n % block:
        raise ValueError(f"axis length {n} is not a multiple of the rotation block {block}")
    y = moved.reshape(-1, n // block, block).copy()
    h = 1
    while h < block:
        z = y.reshape(y.shape[0], y.shape[1], block // (2 * h), 2, h)
        lo, hi = z[..., 0, :], z[..., 1, :]
        y = np.stack([lo + hi, lo - hi], axis=-2).reshape(y.shape)
        h *= 2
    y *= 1.0 / np.sqrt(block)
    return np.moveaxis(y.reshape(moved.shape), -1, axis)


def _signs(n: int, seed: Any) -> np.ndarray:
    return np.where(np.random.default_rng(seed).random(n) < 0.5, -1.0, 1.0)


def _block_of(k: int, block: int | None) -> int:
    return block if block is not None else max(2, 1 << max(0, (k - 1).bit_length()))


def rotate_matmul(
    x: Any, w: Any, kind: str = "hadamard", block: int | None = None, seed: Any = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(x R, R^T w)`` for ``x`` ``[n, k]`` and ``w`` ``[k, m]``; ``k`` is zero-padded to a
    multiple of the rotation block (the whole padded ``k`` when ``block`` is None)."""
    kind, block = check_rotation(kind, block)
    xa, wa = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if xa.ndim != 2 or wa.ndim != 2 or xa.shape[1] != wa.shape[0]:
        raise ValueError(f"x must be [n, k] and w [k, m] with the same k, got x {xa.shape}, w {wa.shape}")
    if kind == "none":
        return xa, wa
    k = xa.shape[1]
    b = _block_of(k, block)
    pad = (-k) % b
    xa = np.pad(xa, ((0, 0), (0, pad)))
    wa = np.pad(wa, ((0, pad), (0, 0)))
    if kind == "random-hadamard":
        d = _signs(xa.shape[1], seed)
        xa, wa = xa * d, wa * d[:, None]
    return fwht(xa, 1, b), fwht(wa, 0, b)


def rotation_matrix(k: int, kind: str = "hadamard", block: int | None = None, seed: Any = 0) -> np.ndarray:
    """The ``[k', k']`` orthogonal matrix ``R`` of :func:`rotate_matmul` (``k'`` = ``k`` padded)."""
    kind, block = check_rotation(kind, block)
    if kind == "none":
        return np.eye(k)
    b = _block_of(k, block)
    kp = k + (-k) % b
    r = np.kron(np.eye(kp // b), hadamard_matrix(b)) / np.sqrt(b)
    if kind == "random-hadamard":
        r = _signs(kp, seed)[:, None] * r
    return r
