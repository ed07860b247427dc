"""Quantise real weights to PoT / APoT / integer codes with power-of-two or group scales.

The shift-add PEs (:class:`peforge.spec.ShiftAddSpec`) take weights as codes of a
:class:`~peforge.formats.PotFormat`, :class:`~peforge.formats.ApotFormat` or
:class:`~peforge.formats.IntFormat`.  This module picks the scales and rounds, so a sweep can
measure what PoT or APoT weights cost in accuracy on real weight tensors.

Rounding is to the **nearest representable value** (not the nearest exponent), saturating at
``+-fmt.max``; the encoders of :mod:`peforge.formats` do it, so ties are:

* PoT: a tie between ``2**j`` and ``2**(j+1)`` (at ``1.5 * 2**j``) rounds up to ``2**(j+1)``;
  a tie between 0 and the smallest power rounds to 0;
* APoT: a tie between two neighbouring values rounds to the larger magnitude;
* INTk: ties to even.

The sign is kept (``-0`` codes may appear for small negative weights; they decode to 0).

Scales (``amax`` = largest ``|w|`` of the column or group):

* per column (:func:`quantize_weights` without ``group``): ``2**e``, the smallest power of
  two with ``amax / 2**e <= fmt.max``, so scaling never rounds and the largest weight does
  not saturate;
* per group of ``group`` rows of one column (``group`` and ``scale_fmt`` given): a group
  scale ``sigma`` in ``scale_fmt`` times a per-column power of two ``c``.  ``c`` puts the
  ideal scales ``amax / fmt.max`` into the scale format's range (below 1 for float scales,
  below ``max_int`` for integer scales); ``sigma`` is the smallest representable value at or
  above ``amax / (fmt.max * c)``, so no weight saturates.

Only the standard library, NumPy and :mod:`peforge.formats` are imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import formats
from .formats import FloatFormat, IntFormat

__all__ = ["pow2_scale", "QuantizedWeights", "quantize_weights", "dequantize", "group_scale_codes"]


def pow2_scale(amax: Any, fmt_max: float) -> np.ndarray:
    """Smallest ``2**e`` with ``amax / 2**e <= fmt_max`` (1.0 where ``amax`` is 0 or not finite)."""
    amax = np.asarray(amax, dtype=np.float64)
    ok = np.isfinite(amax) & (amax > 0)
    safe = np.where(ok, amax, fmt_max)
    _, e = np.frexp(safe / fmt_max)  # safe/fmt_max in [2**(e-1), 2**e)
    e = e.astype(np.int64)
    e = np.where(safe <= np.ldexp(fmt_max, e - 1), e - 1, e)  # exact powers: one lower
    e = np.where(safe > np.ldexp(fmt_max, e), e + 1, e)  # guard against rounding in the divide
    return np.where(ok, np.ldexp(1.0, e), 1.0)


@dataclass(frozen=True)
class QuantizedWeights:
    """Weight codes and the scales that map them back to real values.

    Members
    -------
    codes : numpy.ndarray
        Codes of ``fmt``, shape of the weights ``[k, m]``.
    fmt : Format
        The weight format.
    col_scale : numpy.ndarray
        ``[m]`` power-of-two scale per column.
    group : int or None
        Rows per group scale.
    scale_fmt : FloatFormat, IntFormat or None
        Format of the group scales.
    group_codes : numpy.ndarray or None
        ``[ceil(k / group), m]`` codes of ``scale_fmt``.
    """

    codes: np.ndarray
    fmt: Any
    col_scale: np.ndarray
    group: Optional[int] = None
    scale_fmt: Any = None
    group_codes: Optional[np.ndarray] = None

    def group_values(self) -> np.ndarray:
        """``[ceil(k / group), m]`` real group scales (1.0 without groups)."""
        if self.group_codes is None:
            return np.ones((1, self.codes.shape[1]))
        return self.scale_fmt.decode(self.group_codes)

    def scales(self) -> np.ndarray:
        """``[k, m]`` real scale of every weight."""
        k = self.codes.shape[0]
        if self.group is None:
            return np.broadcast_to(self.col_scale, self.codes.shape)
        rows = np.arange(k) // self.group
        return self.group_values()[rows] * self.col_scale


def dequantize(q: QuantizedWeights) -> np.ndarray:
    """Real weights ``[k, m]`` the codes stand for (float64, exact)."""
    return q.fmt.decode(q.codes) * q.scales()


def _check_weights(w: Any) -> np.ndarray:
    arr = np.asarray(w, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"w must be a [k, m] matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("w must be finite (no NaN or inf)")
    return arr


def group_scale_codes(ideal: Any, scale_fmt: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-column power of two ``c`` ``[m]`` and codes ``[g, m]`` of the smallest ``scale_fmt``
    values at or above ``ideal / c`` (``ideal``: ``[g, m]`` positive or zero ideal scales)."""
    ideal = np.asarray(ideal, dtype=np.float64)
    top = ideal.max(axis=0) if ideal.size else np.zeros(ideal.shape[1:])
    if isinstance(scale_fmt, IntFormat):
        c = pow2_scale(top, float(scale_fmt.max_int))
        want = np.where(ideal > 0, ideal / c, 1.0)
        ints = np.clip(np.ceil(want), 1, scale_fmt.max_int)
        return c, scale_fmt.from_int(ints.astype(np.int64)).astype(scale_fmt.code_dtype)
    if not isinstance(scale_fmt, FloatFormat):
        raise ValueError(f"scale_fmt={scale_fmt!r} must be a float or integer format")
    c = pow2_scale(top, 1.0)
    want = np.where(ideal > 0, ideal / c, np.where(top > 0, top / c, 1.0))
    codes = scale_fmt.encode(want, overflow="saturate").astype(np.int64)
    low = scale_fmt.decode(codes) < want
    codes = np.where(low, codes + 1, codes)  # next larger value: positive codes are monotonic
    return c, codes.astype(scale_fmt.code_dtype)


def quantize_weights(w: Any, fmt: Any, *, group: Optional[int] = None, scale_fmt: Any = None) -> QuantizedWeights:
    """Quantise ``w`` ``[k, m]`` to codes of ``fmt`` (a format or its name), nearest value.

    Without ``group``: one power-of-two scale per column.  With ``group`` and ``scale_fmt``:
    one ``scale_fmt`` scale per ``group`` rows of a column, times a per-column power of two
    (module docstring).  Raises ValueError for bad shapes, non-finite weights or formats.
    """
    wa = _check_weights(w)
    fmt = formats.get(fmt)
    if (group is None) != (scale_fmt is None):
        raise ValueError(f"group={group!r} and scale_fmt={scale_fmt!r} must be given together")
    if group is None:
        col = pow2_scale(np.abs(wa).max(axis=0) if wa.shape[0] else np.zeros(wa.shape[1]), fmt.max)
        return QuantizedWeights(fmt.encode(wa / col, overflow="saturate"), fmt, col)
    if isinstance(group, bool) or not isinstance(group, int) or group < 1:
        raise ValueError(f"group={group!r} must be an integer >= 1")
    sfmt = formats.get(scale_fmt)
    k, m = wa.shape
    ng = max(1, -(-k // group))
    padded = np.zeros((ng * group, m))
    padded[:k] = np.abs(wa)
    amax = padded.reshape(ng, group, m).max(axis=1)
    c, gcodes = group_scale_codes(amax / fmt.max, sfmt)
    q = QuantizedWeights(np.zeros(wa.shape, fmt.code_dtype), fmt, c, group, sfmt, gcodes)
    codes = fmt.encode(wa / q.scales(), overflow="saturate")
    return QuantizedWeights(codes, fmt, c, group, sfmt, gcodes)
