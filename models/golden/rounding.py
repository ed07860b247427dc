"""Exact, vectorised rounding of ``(-1)**neg * mag * 2**exp`` to a :class:`FloatFormat`.

Round to nearest, ties to even, with gradual underflow; results above the format's largest
finite value overflow (to inf by default); a nonzero value that rounds to zero keeps its
sign; ``subnormals=False`` flushes subnormal *results* to a zero of their sign.

The magnitude is an exact integer: an ``int64``/``uint64`` array (values below 2**63) or
Python ints of any size (scalars or ``dtype=object`` arrays).  Big integers are first reduced
to 61 bits with a sticky bit, which never changes a round-to-nearest result because at least
``man_bits + 3`` significant bits stay above the sticky position.

Why integers and not float64: the golden model must be exact for sums that span hundreds of
binary orders of magnitude; float64 would double-round.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from peforge.formats import FloatFormat

__all__ = ["Rounded", "round_exact", "round_to_format", "round_core", "bit_length", "reduce_sticky", "OVERFLOWS"]

#: What a too-large result becomes: ``inf`` (IEEE), ``saturate`` (largest finite), ``nan``.
OVERFLOWS = ("inf", "saturate", "nan")

_KEEP_BITS = 61  # width of the reduced magnitude (below 2**61, as round_core needs)
_U1 = np.uint64(1)


class Rounded(NamedTuple):
    """Result of :func:`round_exact`; arrays of the input's shape.

    ``code`` (uint64) is the format's bit pattern.  For finite results the value is
    ``(-1)**neg * sig * 2**exp`` exactly (``sig`` 0 for zeros); ``overflow`` marks results that
    exceeded the largest finite value (their ``code`` follows the overflow mode).
    """

    code: np.ndarray
    sig: np.ndarray
    exp: np.ndarray
    overflow: np.ndarray


def bit_length(mag: np.ndarray) -> np.ndarray:
    """Exact bit length (int64) of a nonnegative integer array below 2**63 (0 for 0)."""
    m = np.asarray(mag)
    bl = np.frexp(m.astype(np.float64))[1].astype(np.int64)
    if m.size and m.max() >= (1 << 53):  # float64 may have rounded up to the next power of two
        m64 = m.astype(np.uint64)
        shift = np.clip(bl - 1, 0, 63).astype(np.uint64)
        bl = bl - ((bl > 0) & ((m64 >> shift) == 0))
    return bl


def reduce_sticky(mag: int, exp: int, keep: int = _KEEP_BITS) -> tuple[int, int]:
    """Shrink a Python int magnitude to at most ``keep`` bits, OR-ing dropped bits into the LSB."""
    extra = mag.bit_length() - keep
    if extra <= 0:
        return mag, exp
    sticky = 1 if mag & ((1 << extra) - 1) else 0
    return (mag >> extra) | sticky, exp + extra


def _as_small(mag: Any, exp: Any) -> tuple[np.ndarray, np.ndarray]:
    """Magnitudes as uint64 below 2**61 and exponents as int64 (reducing big ints exactly)."""
    m = np.asarray(mag)
    e = np.asarray(exp)
    if m.dtype.kind in "iu":
        if m.size and m.dtype.kind == "i" and m.min() < 0:
            raise ValueError(f"mag must be nonnegative, got {int(m.min())}")
        if m.size and m.max() >= (1 << _KEEP_BITS):
            m = m.astype(object)
        else:
            return m.astype(np.uint64), np.broadcast_to(e, m.shape).astype(np.int64)
    if m.dtype != object:
        raise ValueError(f"mag must be an integer array or Python ints, got dtype {m.dtype}")
    m, e = np.broadcast_arrays(m, e)
    out_m = np.empty(m.shape, dtype=np.uint64)
    out_e = np.empty(m.shape, dtype=np.int64)
    for idx in np.ndindex(m.shape):
        v = int(m[idx])
        if v < 0:
            raise ValueError(f"mag must be nonnegative, got {v}")
        v, ex = reduce_sticky(v, int(e[idx]))
        out_m[idx] = v
        out_e[idx] = ex
    return out_m, out_e


def round_exact(
    neg: Any, mag: Any, exp: Any, fmt: FloatFormat, *, subnormals: bool = True, overflow: str = "inf"
) -> Rounded:
    """Round ``(-1)**neg * mag * 2**exp`` (exact integers, broadcast together) into ``fmt``.

    Parameters
    ----------
    neg : bool array
        Sign of each value (also the sign of a zero ``mag``).
    mag : integer array or Python ints
        Exact magnitude, any size (see module docstring).
    exp : int array
        Exponent of ``mag``'s least significant bit (|exp| below 2**60).
    fmt : FloatFormat
        A signed target format.
    subnormals : bool
        False flushes subnormal results to zero (sign kept).
    overflow : str
        One of :data:`OVERFLOWS`; ``inf`` needs a format with infinities, ``nan`` one with NaN.
    """
    if not isinstance(fmt, FloatFormat) or not fmt.signed:
        raise ValueError(f"fmt={fmt!r} must be a signed FloatFormat")
    if overflow not in OVERFLOWS:
        raise ValueError(f"overflow={overflow!r} is not allowed: use one of {OVERFLOWS}")
    if overflow == "inf" and not fmt.has_inf:
        raise ValueError(
            f"overflow='inf' needs a format with infinities, {fmt.name} has none (use overflow='saturate' or 'nan')"
        )
    if overflow == "nan" and not fmt.has_nan:
        raise ValueError(f"overflow='nan' needs a format with NaN, {fmt.name} has none")
    m, e = _as_small(mag, exp)
    n = np.broadcast_to(np.asarray(neg, dtype=bool), m.shape)
    code, sig, q, ovf = round_core(n, m, e, fmt, subnormals)
    if overflow != "inf" and ovf.any():
        sign = np.where(n, np.uint64(fmt.sign_mask), np.uint64(0))
        if overflow == "nan":
            code = np.where(ovf, np.uint64(fmt.required_nan_code()), code)
        else:
            M = fmt.man_bits
            top_man = (1 << M) - 1 - (1 if fmt.special == "fn" and M > 0 else 0)
            sat = np.uint64(((fmt.emax + fmt.bias) << M) | top_man)
            code = np.where(ovf, sign | sat, code)
            sig = np.where(ovf, (1 << M) + top_man, sig)
            q = np.where(ovf, fmt.emax - M, q)
    return Rounded(code, sig, q, ovf)


def round_core(
    neg: np.ndarray, mag: np.ndarray, exp: np.ndarray, fmt: FloatFormat, subnormals: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unchecked fast core of :func:`round_exact`: returns (code, sig, exp, overflow).

    ``mag`` must be an integer array below 2**62 (int64 or uint64), ``exp`` int64 with
    ``|exp| < 2**60``; overflow gives inf codes when the format has them (sig 0 either way).
    """
    M, min_exp, top, nz_sign, sign_shift, inf_code, add_bias = _constants(fmt)
    one_m = np.uint64(1 << M)
    m = mag.astype(np.uint64)
    q = np.maximum(exp + (bit_length(m) - (1 + M)), min_exp)
    s = q - exp  # bits to drop (> 0) or exact left shift (< 0)
    m = m << np.maximum(-s, 0).astype(np.uint64)
    sr = np.minimum(np.maximum(s, 0), 63).astype(np.uint64)  # m < 2**62: dropping 63 gives 0
    kept = m >> sr
    rem2 = (m - (kept << sr)) << _U1  # twice the dropped part, vs one unit
    unit = _U1 << sr
    r = kept + ((rem2 > unit) | ((rem2 == unit) & ((kept & _U1) == _U1)))
    carry = r >> np.uint64(M + 1)  # rounding carried into the next binade
    r >>= carry
    q = q + carry.astype(np.int64)
    if not subnormals:
        r = np.where(r < one_m, np.uint64(0), r)
    zero = r == 0
    ovf = ~zero & ((q > top[0]) | ((q == top[0]) & (r > top[1])))
    biased = ((q + add_bias) * (r >= one_m)).astype(np.uint64)
    sign = (neg if nz_sign else neg & ~zero).astype(np.uint64) << sign_shift
    code = sign | (biased << np.uint64(M)) | (r & (one_m - _U1))
    sig = r.astype(np.int64)
    if ovf.any():
        sig = np.where(ovf, 0, sig)
        if inf_code is not None:
            code = np.where(ovf, sign | inf_code, code)
    q = np.where(zero, 0, q)
    return code, sig, q, ovf


@functools.lru_cache(maxsize=64)
def _constants(fmt: FloatFormat) -> tuple:
    M = fmt.man_bits
    top_man = (1 << M) - 1 - (1 if fmt.special == "fn" and M > 0 else 0)
    top = (fmt.emax - M, np.uint64((1 << M) + top_man))  # largest finite: exp of LSB, sig
    inf_code = np.uint64(fmt.required_inf_code()) if fmt.has_inf else None
    return (M, fmt.min_exp, top, fmt.has_negative_zero, np.uint64(fmt.bits - 1), inf_code, M + fmt.bias)


def round_to_format(
    neg: Any, mag: Any, exp: Any, fmt: FloatFormat, *, subnormals: bool = True, overflow: str = "inf"
) -> np.ndarray:
    """Codes (uint64) of :func:`round_exact`."""
    return round_exact(neg, mag, exp, fmt, subnormals=subnormals, overflow=overflow).code
