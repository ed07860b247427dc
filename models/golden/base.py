"""Spec-type dispatch for golden models.

Each PE family registers its model in its own module (``@run.register(MySpec)``), so adding
a family never edits a shared if/elif chain.  This module imports nothing of the families.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["run", "port_widths", "value", "matmul", "matmul_operands", "lane_operand",
           "twos_complement_values"]


def _unknown(what: str, spec: Any) -> TypeError:
    return TypeError(f"{what}: no golden model is registered for {type(spec).__name__} "
                     f"({spec!r}); import the module that registers it")


@functools.singledispatch
def run(spec: Any, **inputs: Any) -> dict[str, np.ndarray]:
    """Bit-exact outputs of the PE described by ``spec`` for a batch of input sequences.

    Returns one array per output port (the raw unsigned port bits), keyed by port name.
    """
    raise _unknown("run", spec)


@functools.singledispatch
def port_widths(spec: Any) -> dict[str, int]:
    """Widths in bits of the output ports :func:`run` returns."""
    raise _unknown("port_widths", spec)


@functools.singledispatch
def value(spec: Any, acc_bits: Any) -> np.ndarray:
    """Decode raw accumulator port bits to float64 values (for users; not bit-exact data)."""
    raise _unknown("value", spec)


@functools.singledispatch
def matmul(spec: Any, x: Any, w: Any) -> np.ndarray:
    """``x @ w`` computed the way the PE described by ``spec`` computes it.

    ``x`` is ``[n, k]`` real activations (operand ``a``), ``w`` is ``[k, m]`` real weights
    (operand ``b``).  Each family quantises both to its operand formats with power-of-two
    scales (per tensor for ``x``, per output column for ``w``, so scaling adds no rounding;
    block-scaled families use their own block scales), runs every length-``k`` dot product
    through its bit-exact golden model (one accumulation chain per output, including the
    accumulator's rounding), and returns the ``[n, m]`` float64 result with the scales undone.
    Used by the design-space sweeps and the examples to measure numerical quality.
    """
    raise _unknown("matmul", spec)


def lane_operand(arr: Any, lanes: int, name: str) -> np.ndarray:
    """Operand codes as ``[batch, steps, lanes]`` (``[batch, steps]`` accepted for one lane)."""
    x = np.asarray(arr)
    if x.ndim == 2 and lanes == 1:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] != lanes:
        raise ValueError(f"{name} must have shape [batch, steps, {lanes}], got {x.shape}")
    return x


def matmul_operands(x: Any, w: Any) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``w`` as float64 ``[n, k]`` and ``[k, m]``; ValueError on bad shapes or NaN/inf."""
    xa = np.asarray(x, dtype=np.float64)
    wa = np.asarray(w, dtype=np.float64)
    if xa.ndim != 2 or wa.ndim != 2 or xa.shape[1] != wa.shape[0]:
        raise ValueError(f"x must be [n, k] and w [k, m] with the same k, got x {xa.shape}, w {wa.shape}")
    if not (np.isfinite(xa).all() and np.isfinite(wa).all()):
        raise ValueError("x and w must be finite (no NaN or inf)")
    return xa, wa


def twos_complement_values(acc_bits: Any, width: int) -> np.ndarray:
    """float64 values of raw ``width``-bit two's complement port bits (any width)."""
    bits = np.asarray(acc_bits).astype(object)
    ints = [int(v) - (1 << width) if int(v) >> (width - 1) else int(v) for v in bits.ravel()]
    return np.array(ints, dtype=np.float64).reshape(bits.shape)
