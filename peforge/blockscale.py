"""Block-scaled formats: OCP Microscaling (MX v1.0), NVIDIA NVFP4 and their INT / UE5M3 kin.

A block of ``block`` consecutive elements along ``axis`` shares one scale; value_i =
scale * element_i (times a per-tensor FP32 scale for two-level schemes).  :func:`quantize`
returns the element codes (same shape as the input) and the scale codes (the axis shortened
by ``block``); :func:`dequantize` inverts it in float64.

Element formats: any float element (E4M3, E5M2, E3M2, E2M3, E2M1, ...) or an ``intN``
(N = 2..8) two's complement element with the MX convention of an implied power-of-two scale
2^-(N-2), stored as ``int{N}f{N-2}``: values -2 .. 2 - 2^-(N-2), so the largest power of two
below max is 1 as for MXINT8 (``int8f6``, OCP MX v1.0).  MXINT6 is ``int6f4`` (step 1/16),
MXINT4 and NVINT4 ``int4f2`` (step 1/4).

Two scale rules (``BlockScheme.rule``):

``mx``  (OCP MX v1.0, section 6.3; E8M0 scales): X = 2^(floor(log2(amax)) - emax_elem), amax
        the block's largest magnitude, ``emax_elem`` the exponent of the element format's
        largest power of two (E4M3: 8, E5M2: 15, E3M2: 4, E2M3: 2, E2M1: 2, any MXINT: 0);
        elements are x / X (exact) rounded with saturation.  Edge cases as the Microsoft
        ``microxcaling`` reference: an exponent below -127 (tiny or all-zero blocks) clamps
        to 2^-127 (code 0x00); a block with a NaN or an infinity, or whose exponent exceeds
        127, gets the NaN scale (0xFF) and zero element codes.  As the rule implies, elements
        above max_elem * X clip: with E4M3 elements a block whose amax lies in
        [1.75, 2) * 2^k saturates those elements to 1.75 * 2^k.
``nv``  (two-level, NVFP4 as in Transformer Engine / TensorRT Model Optimizer, and the same
        for NVINT4 and for UE4M3 / UE5M3 scales): the block scale is
        amax / (max_elem * tensor_scale) rounded to nearest-even into the scale format
        (E4M3, UE4M3, UE5M3, ...) with saturation, where ``tensor_scale`` is the per-tensor
        FP32 scale (default 1; :func:`tensor_scale` gives amax(x) / (max_elem * max_scale),
        which puts the largest block scale at the top of the scale format).  A scale that
        would be 0 is raised to the smallest positive scale so no block divides by zero; NaN
        or inf in a block gives the scale format's NaN and zero element codes.  Elements are
        x / (scale * tensor_scale) (one float64 rounding, exact when tensor_scale == 1) rounded
        with saturation; value = element * scale * tensor_scale.

Element rounding is ``nearest_even`` (default) or seeded ``stochastic`` (up with probability
equal to the discarded fraction; the same seed gives the same codes).  ``clip="symmetric"``
clamps INT elements to +-(2^(N-1) - 1) steps (the INT-vs-FP paper's fix: the grid is then
symmetric, never the lone -2^(N-1)); the default ``"full"`` keeps the two's complement range
as OCP MX defines MXINT8.

The axis length must be a multiple of the block size (ValueError otherwise: pad with zeros
first, which changes no scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import formats
from .formats import FloatFormat, IntFormat, block_element

__all__ = [
    "BlockScheme",
    "SCHEMES",
    "RULES",
    "CLIPS",
    "get_scheme",
    "make_scheme",
    "block_element",
    "emax_elem",
    "quantize",
    "dequantize",
    "tensor_scale",
    "nvfp4_tensor_scale",
]

#: Scale rules: ``mx`` (power-of-two E8M0 scale from floor(log2(amax))) and ``nv`` (amax /
#: max_elem rounded into a float scale format, with a per-tensor FP32 scale).
RULES = ("mx", "nv")
#: Clipping of INT elements: the full two's complement range, or symmetric +-(2^(N-1) - 1).
CLIPS = ("full", "symmetric")


def emax_elem(element: FloatFormat | IntFormat) -> int:
    """Exponent of the element format's largest power of two (the MX rule's ``emax_elem``)."""
    if isinstance(element, IntFormat):
        return math.floor(math.log2(element.max_int)) - element.frac_bits
    return element.emax


@dataclass(frozen=True)
class BlockScheme:
    """One block-scaled format.

    Parameters
    ----------
    name : str
        Scheme name, e.g. ``mxfp8_e4m3``, ``nvfp4`` or ``nvint4``.
    element : FloatFormat or IntFormat
        Element format (MXINT8 is ``int8f6``: 8-bit two's complement times 2^-6).
    scale : FloatFormat
        Scale format (``e8m0fnu`` for MX; ``e4m3fn``, ``ue4m3``, ``ue5m3`` for two-level).
    block : int
        Elements per scale.
    emax_elem : int
        Exponent of the element format's largest power of two (MX scale rule).
    rule : str
        One of :data:`RULES` (``"nvfp4"`` is accepted for ``"nv"``).
    clip : str
        One of :data:`CLIPS` (only matters for INT elements).
    """

    name: str
    element: FloatFormat | IntFormat
    scale: FloatFormat
    block: int
    emax_elem: int
    rule: str
    clip: str = "full"

    def __post_init__(self) -> None:
        if self.rule == "nvfp4":
            object.__setattr__(self, "rule", "nv")
        if self.rule not in RULES:
            raise ValueError(f"rule={self.rule!r} is not allowed: use one of {RULES}")
        if self.clip not in CLIPS:
            raise ValueError(f"clip={self.clip!r} is not allowed: use one of {CLIPS}")
        if self.rule == "mx" and self.scale.name != "e8m0fnu":
            raise ValueError(f"{self.name}: the mx rule needs e8m0fnu scales, not {self.scale.name}")
        if self.rule == "nv" and (
            not isinstance(self.scale, FloatFormat) or self.scale.man_bits == 0 or self.scale.nan_code is None
        ):
            raise ValueError(
                f"{self.name}: the nv rule needs a float scale with mantissa bits and a NaN "
                f"code (e4m3fn, ue4m3, ue5m3), not {self.scale.name}"
            )
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1:
            raise ValueError(f"block={self.block!r} must be a positive int")

    @property
    def two_level(self) -> bool:
        """Whether the scheme takes a per-tensor FP32 scale (the ``nv`` rule)."""
        return self.rule == "nv"

    @property
    def bits_per_element(self) -> float:
        """Storage cost including the amortised scale."""
        return self.element.bits + self.scale.bits / self.block


def make_scheme(
    element: str | FloatFormat | IntFormat,
    scale: str | FloatFormat,
    block: int,
    clip: str = "full",
    name: str | None = None,
) -> BlockScheme:
    """The scheme of ``element`` blocks of ``block`` with ``scale`` scales: the ``mx`` rule for
    E8M0 scales, the ``nv`` rule for any other float scale (E4M3, UE4M3, UE5M3, ...)."""
    el = block_element(element)
    sc = formats.get(scale) if isinstance(scale, str) else scale
    if not isinstance(sc, FloatFormat):
        raise ValueError(f"scale={scale!r} must be a float format (e8m0fnu, e4m3fn, ue4m3, ue5m3)")
    rule = "mx" if sc.name == "e8m0fnu" else "nv"
    return BlockScheme(name or f"{el.name}_{sc.name}_k{block}", el, sc, block, emax_elem(el), rule, clip)


def _mx(name: str, elem: str) -> BlockScheme:
    return make_scheme(elem, "e8m0fnu", 32, name=name)


#: The built-in schemes by name.
SCHEMES: dict[str, BlockScheme] = {
    s.name: s
    for s in (
        _mx("mxfp8_e4m3", "e4m3fn"),
        _mx("mxfp8_e5m2", "e5m2"),
        _mx("mxfp6_e3m2", "e3m2fn"),
        _mx("mxfp6_e2m3", "e2m3fn"),
        _mx("mxfp4", "e2m1fn"),
        _mx("mxint8", "int8f6"),
        _mx("mxint6", "int6f4"),
        _mx("mxint4", "int4f2"),
        make_scheme("e2m1fn", "e4m3fn", 16, name="nvfp4"),
        make_scheme("int4f2", "e4m3fn", 16, name="nvint4"),
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
        raise ValueError(
            f"{what}: axis {axis} has length {n}, not a multiple of the block size {block} (pad with zeros first)"
        )
    moved = np.moveaxis(x, axis, -1)
    return moved.reshape(moved.shape[:-1] + (n // block, block)), axis


def _unblocks(b: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(b.reshape(b.shape[:-2] + (-1,)), -1, axis)


def _tensor_scale(scheme: BlockScheme, tensor_scale) -> float:
    if tensor_scale is None:
        return 1.0
    if not scheme.two_level:
        raise ValueError(
            f"tensor_scale is only used by nvfp4-style two-level schemes (nvfp4, nvint4, "
            f"UE4M3 / UE5M3 scales), not {scheme.name}"
        )
    ts = float(tensor_scale)
    if not (np.isfinite(ts) and ts > 0):
        raise ValueError(f"tensor_scale={tensor_scale!r} must be a finite positive number")
    return ts


def tensor_scale(x, scheme: str | BlockScheme) -> float | None:
    """Per-tensor FP32 scale of a two-level scheme, amax(|x|) / (max_elem * max_scale) rounded
    to FP32 (1.0 for an all-zero tensor); None for an ``mx`` scheme (no tensor scale)."""
    s = get_scheme(scheme)
    if not s.two_level:
        return None
    amax = float(np.nanmax(np.abs(np.asarray(x, dtype=np.float64)))) if np.size(x) else 0.0
    ts = float(np.float32(amax / (s.element.max * s.scale.max)))
    return ts if np.isfinite(ts) and ts > 0 else 1.0


def nvfp4_tensor_scale(x) -> float:
    """Per-tensor FP32 scale of NVFP4, amax(|x|) / (6 * 448) (1.0 for an all-zero tensor)."""
    return tensor_scale(x, SCHEMES["nvfp4"])  # type: ignore[return-value]


def _check_rounding(rounding: str, clip: str | None, scheme: BlockScheme) -> str:
    if rounding not in ("nearest_even", "stochastic"):
        raise ValueError(f"rounding={rounding!r} is not allowed: use 'nearest_even' or 'stochastic'")
    clip = scheme.clip if clip is None else clip
    if clip not in CLIPS:
        raise ValueError(f"clip={clip!r} is not allowed: use one of {CLIPS}")
    return clip


def quantize(
    x,
    scheme: str | BlockScheme,
    axis: int = -1,
    tensor_scale: float | None = None,
    rounding: str = "nearest_even",
    seed=None,
    clip: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Element codes (shape of ``x``) and scale codes (``axis`` divided by the block size).

    ``tensor_scale`` (two-level schemes only) is the per-tensor FP32 scale; pass the same value
    to :func:`dequantize`.  ``rounding`` (``nearest_even`` or ``stochastic`` with ``seed``)
    rounds the elements (scales always round to nearest-even); ``clip`` overrides the
    scheme's INT clipping.  See the module docstring for the scale rules.
    """
    s = get_scheme(scheme)
    ts = _tensor_scale(s, tensor_scale)
    clip = _check_rounding(rounding, clip, s)
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
            scale_codes[bad] = s.scale.required_nan_code()
            divisor = np.ldexp(1.0, exp)
        else:
            scale_codes = s.scale.encode(amax / (s.element.max * ts), "nearest_even", "saturate")
            np.maximum(scale_codes, 1, out=scale_codes)  # never a zero scale
            scale_codes[bad] = s.scale.required_nan_code()
            divisor = s.scale.decode(scale_codes) * ts
        divisor = np.where(bad, 1.0, divisor)
        y = b / divisor[..., None]
        if clip == "symmetric" and isinstance(s.element, IntFormat):
            np.clip(y, -s.element.max, s.element.max, out=y)  # +-(2^(N-1) - 1) steps
        elems = s.element.encode(y, rounding, "saturate", seed)
        elems[bad] = 0
    return _unblocks(elems, ax), np.moveaxis(scale_codes, -1, ax)


def dequantize(
    element_codes, scale_codes, scheme: str | BlockScheme, axis: int = -1, tensor_scale: float | None = None
) -> np.ndarray:
    """float64 values of block-scaled codes; a NaN scale makes its whole block NaN."""
    s = get_scheme(scheme)
    ts = _tensor_scale(s, tensor_scale)
    e = np.asarray(element_codes)
    sc = np.asarray(scale_codes)
    b, ax = _blocks(e, s.block, axis, "dequantize")
    sc_last = np.moveaxis(sc, ax, -1) if sc.ndim == e.ndim else None
    if sc_last is None or sc_last.shape != b.shape[:-1]:
        raise ValueError(
            f"dequantize: scale codes have shape {sc.shape}, expected "
            f"{np.moveaxis(np.empty(b.shape[:-1]), -1, ax).shape} for elements {e.shape}"
        )
    scale = s.scale.decode(sc_last)
    vals = s.element.decode(b) * scale[..., None]
    if ts != 1.0:
        vals = vals * ts
    return _unblocks(vals, ax)
