"""Block-scaled formats: OCP Microscaling (MX v1.0) and NVIDIA NVFP4, as codes.

A block of ``block`` consecutive elements along ``axis`` shares one scale; value_i =
scale * element_i.  :func:`quantize` returns the element codes (same shape as the input) and
the scale codes (the axis shortened by ``block``); :func:`dequantize` inverts it in float64.

MX scale rule (OCP MX v1.0, section 6.3): X = 2^(floor(log2(amax)) - emax_elem), amax the
block's largest magnitude, encoded in E8M0; elements are x / X rounded to nearest-even with
saturation (x / X is exact, X being a power of two).  Edge cases, chosen as the Microsoft
``microxcaling`` reference does:

* exponent below -127 (tiny blocks, all-zero blocks): the scale clamps to 2^-127 (code 0x00);
* a block holding a NaN or an infinity, or whose exponent exceeds 127 (float64 input beyond
  the E8M0 range): the scale is NaN (0xFF) and every element code is 0 -- an MX block with
  a NaN scale is NaN whatever its elements.

As the spec's rule implies, elements above max_elem * X clip: with E4M3 elements a block whose
amax lies in [1.75, 2) * 2^k saturates those elements to 1.75 * 2^k.

NVFP4 scale rule (NVIDIA, per Transformer Engine / TensorRT Model Optimizer): the block scale
is amax / (6 * tensor_scale) rounded to nearest-even to E4M3 (saturating at 448), where
``tensor_scale`` is the optional per-tensor FP32 scale (default 1; a common choice is
``nvfp4_tensor_scale(x)`` = amax(x) / (6 * 448)).  A scale that would be 0 (all-zero or very
small blocks) is raised to the smallest E4M3 value 2^-9 so no block divides by zero.  NaN or
inf in a block gives the E4M3 NaN scale (0x7F) and zero element codes.  Elements are
x / (scale * tensor_scale) (one float64 rounding, exact when tensor_scale == 1) rounded to
E2M1 with saturation; value = element * scale * tensor_scale.

The axis length must be a multiple of the block size (ValueError otherwise: pad with zeros
first, which changes no scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import formats
from .formats import FloatFormat, IntFormat

__all__ = ["BlockScheme", "SCHEMES", "get_scheme", "quantize", "dequantize", "nvfp4_tensor_scale"]


@dataclass(frozen=True)
class BlockScheme:
    """One block-scaled format.

    Parameters
    ----------
    name : str
        Scheme name, e.g. ``mxfp8_e4m3`` or ``nvfp4``.
    element : FloatFormat or IntFormat
        Element format (MXINT8 is ``int8f6``: 8-bit two's complement times 2^-6).
    scale : FloatFormat
        Scale format (``e8m0fnu`` for MX, ``e4m3fn`` for NVFP4).
    block : int
        Elements per scale.
    emax_elem : int
        Exponent of the element format's largest power of two (MX scale rule).
    rule : str
        ``"mx"`` (power-of-two scale from floor(log2(amax))) or ``"nvfp4"`` (amax / 6 in E4M3).
    """

    name: str
    element: FloatFormat | IntFormat
    scale: FloatFormat
    block: int
    emax_elem: int
    rule: str

    @property
    def bits_per_element(self) -> float:
        """Storage cost including the amortised scale."""
        return self.element.bits + self.scale.bits / self.block


def _mx(name: str, elem: str, emax_elem: int) -> BlockScheme:
    return BlockScheme(name, formats.get(elem), formats.get("e8m0fnu"), 32, emax_elem, "mx")


#: The built-in schemes by name.
SCHEMES: dict[str, BlockScheme] = {
    s.name: s for s in (
        _mx("mxfp8_e4m3", "e4m3fn", 8),
        _mx("mxfp8_e5m2", "e5m2", 15),
        _mx("mxfp6_e3m2", "e3m2fn", 4),
        _mx("mxfp6_e2m3", "e2m3fn", 2),
        _mx("mxfp4", "e2m1fn", 2),
        _mx("mxint8", "int8f6", 0),
        BlockScheme("nvfp4", formats.get("e2m1fn"), formats.get("e4m3fn"), 16, 2, "nvfp4"),
    )
}


def get_scheme(scheme: str | BlockScheme) -> BlockScheme:
    """Resolve a scheme name (or pass a :class:`BlockScheme` through)."""
    if isinstance(scheme, BlockScheme):
        return scheme
    if isinstance(scheme, str) and scheme.strip().lower() in SCHEMES:
        return SCHEMES[scheme.strip().lower()]
    raise ValueError(f"unknown block scheme {scheme!r}: allowed are {', '.join(SCHEMES)}")


def _blocks(x: np.ndarray, block: int, axis: int, what: str) -> tuple[np.ndarray, int]:
    """Move ``axis`` last and split it into (..., nblocks, block)."""
    if x.ndim == 0:
        raise ValueError(f"{what} must have at least one dimension, got a scalar")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis!r} is out of range for a {x.ndim}-d array")
    axis %= x.ndim
    n = x.shape[axis]
    if n % block:
        raise ValueError(f"{what}: axis {axis} has length {n}, not a multiple of the block size {block} "
                         "(pad with zeros first)")
    moved = np.moveaxis(x, axis, -1)
    return moved.reshape(moved.shape[:-1] + (n // block, block)), axis


def _unblocks(b: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(b.reshape(b.shape[:-2] + (-1,)), -1, axis)


def _tensor_scale(scheme: BlockScheme, tensor_scale) -> float:
    if tensor_scale is None:
        return 1.0
    if scheme.rule != "nvfp4":
        raise ValueError(f"tensor_scale is only used by nvfp4, not {scheme.name}")
    ts = float(tensor_scale)
    if not (np.isfinite(ts) and ts > 0):
        raise ValueError(f"tensor_scale={tensor_scale!r} must be a finite positive number")
    return ts


def nvfp4_tensor_scale(x) -> float:
    """Per-tensor FP32 scale amax(|x|) / (6 * 448) (1.0 for an all-zero tensor)."""
    amax = float(np.nanmax(np.abs(np.asarray(x, dtype=np.float64)))) if np.size(x) else 0.0
    ts = float(np.float32(amax / (6.0 * 448.0)))
    return ts if np.isfinite(ts) and ts > 0 else 1.0


def quantize(x, scheme: str | BlockScheme, axis: int = -1,
             tensor_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Element codes (shape of ``x``) and scale codes (``axis`` divided by the block size).

    ``tensor_scale`` (NVFP4 only) is the per-tensor FP32 scale; pass the same value to
    :func:`dequantize`.  See the module docstring for the scale rules.
    """
    s = get_scheme(scheme)
    ts = _tensor_scale(s, tensor_scale)
    arr = np.asarray(x)
    if arr.dtype.kind != "f" and arr.dtype not in formats._float_dtypes():
        raise ValueError(f"quantize: x has dtype {arr.dtype}: allowed float arrays")
    b, ax = _blocks(arr.astype(np.float64), s.block, axis, "quantize")
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        mag = np.abs(b)
        bad = ~np.isfinite(mag).all(axis=-1)  # NaN or inf somewhere in the block
        amax = np.where(bad, 0.0, mag.max(axis=-1))
        if s.rule == "mx":
            _, e = np.frexp(amax)  # amax = f * 2^e, f in [0.5, 1): floor(log2(amax)) = e - 1
            exp = np.where(amax > 0, e - 1 - s.emax_elem, -127)
            bad |= exp > 127
            exp = np.clip(exp, -127, 127)
            scale_codes = (exp + 127).astype(np.uint8)
            scale_codes[bad] = s.scale.nan_code
            divisor = np.ldexp(1.0, exp)
        else:
            scale_codes = s.scale.encode(amax / (6.0 * ts), "nearest_even", "saturate")
            np.maximum(scale_codes, 1, out=scale_codes)  # never a zero scale
            scale_codes[bad] = s.scale.nan_code
            divisor = s.scale.decode(scale_codes) * ts
        divisor = np.where(bad, 1.0, divisor)
        elems = s.element.encode(b / divisor[..., None], "nearest_even", "saturate")
        elems[bad] = 0
    return _unblocks(elems, ax), np.moveaxis(scale_codes, -1, ax)


def dequantize(element_codes, scale_codes, scheme: str | BlockScheme, axis: int = -1,
               tensor_scale: float | None = None) -> np.ndarray:
    """float64 values of block-scaled codes; a NaN scale makes its whole block NaN."""
    s = get_scheme(scheme)
    ts = _tensor_scale(s, tensor_scale)
    e = np.asarray(element_codes)
    sc = np.asarray(scale_codes)
    b, ax = _blocks(e, s.block, axis, "dequantize")
    sc_last = np.moveaxis(sc, ax, -1) if sc.ndim == e.ndim else None
    if sc_last is None or sc_last.shape != b.shape[:-1]:
        raise ValueError(f"dequantize: scale codes have shape {sc.shape}, expected "
                         f"{np.moveaxis(np.empty(b.shape[:-1]), -1, ax).shape} for elements {e.shape}")
    scale = s.scale.decode(sc_last)
    vals = s.element.decode(b) * scale[..., None]
    if ts != 1.0:
        vals = vals * ts
    return _unblocks(vals, ax)
