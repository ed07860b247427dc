"""Scaling as a design axis: how real tensors are mapped onto a PE's operand formats.

A *scaling* is a short string, ``GRANULARITY[:KIND][+smooth[ALPHA]]``:

``GRANULARITY``
    ``pe``        the PE family's own rule (the default, what every sweep did before:
                  one power-of-two scale for ``x``, one per output column of ``w``; block-scaled
                  and grouped PEs scale their blocks / groups natively);
    ``tensor``    one scale for all of ``x`` and one for all of ``w``;
    ``channel``   one scale per row of ``x`` (token / sample) and per column of ``w`` (output
                  channel);
    ``blockB``    blocks of ``B`` (1..4096) along ``k``: one scale per (row, block) of ``x`` and
                  per (block, column) of ``w``, the MX / NVFP4 layout at any block size.  The PE
                  runs one chain per block; each partial sum leaves the PE, is multiplied by its
                  two scales and summed in FP32 (one rounding per block, as GPUs combine
                  fine-grained FP8 blocks).
``KIND`` (not with ``pe``)
    ``pow2``      (default) the smallest power of two with ``amax / s <= max``: scaling never
                  rounds and nothing saturates;
    ``mx``        the OCP MX rule ``2**(floor(log2 amax) - emax)`` (E8M0-representable, the top
                  of the range saturates);
    ``fp32``      the format-native scale ``amax / max`` as an FP32 number (rounded up), so the
                  largest magnitude lands on the format's largest value;
    a scale format name (``e4m3fn``, ``e8m0fnu``, ``bf16``, ...): ``amax / max`` rounded to
                  nearest in that format, under one FP32 per-tensor scale that puts the largest
                  scale at the scale format's maximum (NVFP4's two-level rule at any block size).
``+smooth[ALPHA]``
    per-input-channel activation scales for outlier channels (LLM-FP4 / SmoothQuant): column
    ``c`` of ``x`` is divided and row ``c`` of ``w`` multiplied by
    ``2**round(log2(amax_x[c]**ALPHA / amax_w[c]**(1 - ALPHA)))`` (ALPHA default 0.5) before
    quantisation.  A power of two folds into the weights' exponents exactly, so the product is
    unchanged and only the quantisation sees flatter activations.

Scales are computed from the operands of each call (dynamic scaling: per call = per batch).
The operands, divided by their scales and clipped to the operand format's range, go through
``golden.matmul`` together with two zero-product padding steps (``x = max, w = 0`` and
``x = 0, w = max``) that pin the family's own power-of-two scales at exactly 1; the PE then
sees exactly the codes this module chose.  Each family's operand ranges are its
``operand_ranges`` part in :data:`peforge.families.FAMILIES` (the functions below).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .. import formats
from ..quantize import pow2_scale

__all__ = [
    "Scaling",
    "parse_scaling",
    "OperandRange",
    "operand_ranges",
    "check_scaling",
    "scaled_matmul",
    "smooth_factors",
    "DEFAULT_SCALING",
    "format_ranges",
    "simd_ranges",
    "lut_ranges",
    "shiftadd_ranges",
]

DEFAULT_SCALING = "pe"
_POW2, _MX, _FP32 = "pow2", "mx", "fp32"
_PATTERN = re.compile(r"^(pe|tensor|channel|block(\d+))(?::([a-z0-9_]+))?(?:\+smooth(\d*\.?\d*)?)?$")
_GRAMMAR = (
    "GRANULARITY[:KIND][+smooth[ALPHA]] with GRANULARITY pe, tensor, channel or blockB (B = 1..4096) "
    "and KIND pow2, mx, fp32 or a scale format name (e4m3fn, e8m0fnu, bf16, ...)"
)


@dataclass(frozen=True)
class Scaling:
    """A parsed scaling (see the module docstring).

    Members
    -------
    granularity : ``"pe"``, ``"tensor"``, ``"channel"`` or ``"block"``
    block : block size along ``k`` (``block`` granularity), else None
    kind : ``"pow2"``, ``"mx"``, ``"fp32"`` or a scale format name (None for ``pe``)
    smooth : SmoothQuant migration strength ALPHA, or None
    text : the canonical string
    """

    granularity: str
    block: Optional[int]
    kind: Optional[str]
    smooth: Optional[float]
    text: str


def parse_scaling(text: Any) -> Scaling:
    """Parse a scaling string; ValueError naming the value and the grammar."""
    if not isinstance(text, str):
        raise ValueError(f"scaling={text!r}: expected a string {_GRAMMAR}")
    s = text.strip().lower()
    m = _PATTERN.match(s)
    if not m:
        raise ValueError(f"scaling={text!r}: expected {_GRAMMAR}")
    gran = "block" if m.group(2) else m.group(1)
    block = int(m.group(2)) if m.group(2) else None
    if block is not None and not 1 <= block <= 4096:
        raise ValueError(f"scaling={text!r}: block size {block} is out of range: allowed 1..4096")
    kind = m.group(3)
    if gran == "pe" and kind is not None:
        raise ValueError(
            f"scaling={text!r}: 'pe' uses the family's own scales; a KIND is allowed only with "
            "tensor, channel or blockB"
        )
    if gran != "pe":
        kind = kind or _POW2
        if kind not in (_POW2, _MX, _FP32):
            try:
                fmt = formats.get(kind)
            except ValueError:
                raise ValueError(
                    f"scaling={text!r}: scale kind {kind!r} is unknown: allowed pow2, mx, fp32 "
                    "or a float scale format name"
                ) from None
            if not isinstance(fmt, formats.FloatFormat):
                raise ValueError(f"scaling={text!r}: scale format {kind!r} is not a float format")
            kind = fmt.name
    smooth: Optional[float] = None
    if "+smooth" in s:
        alpha = m.group(4)
        smooth = 0.5 if not alpha else float(alpha)
        if not 0.0 <= smooth <= 1.0:
            raise ValueError(f"scaling={text!r}: smooth ALPHA {smooth} is out of range: allowed 0..1")
    canon = "pe" if gran == "pe" else (f"block{block}" if gran == "block" else gran)
    if kind is not None and kind != _POW2:
        canon += f":{kind}"
    if smooth is not None:
        canon += "+smooth" + ("" if smooth == 0.5 else f"{smooth:g}")
    return Scaling(gran, block, kind, smooth, canon)


# ---- operand ranges of each family -------------------------------------------------------------


@dataclass(frozen=True)
class OperandRange:
    """Representable range ``lo .. hi`` of one PE operand (``hi`` is the format's max)."""

    lo: float
    hi: float

    @property
    def emax(self) -> int:
        """Exponent of the largest power of two not above ``hi`` (the MX rule's ``emax_elem``)."""
        return math.floor(math.log2(self.hi))


def _fmt_range(fmt: Any) -> OperandRange:
    lo = getattr(fmt, "min", None) if isinstance(fmt, formats.IntFormat) else None
    return OperandRange(float(-fmt.max if lo is None else lo), float(fmt.max))


# Each family's ``operand_ranges`` part (peforge.families.FAMILIES): (spec, matmul options) -> (a, b).


def format_ranges(spec: Any, options: Mapping[str, Any]) -> tuple[OperandRange, OperandRange]:
    """Operands ``spec.a`` / ``spec.b`` are number formats (``mac``, ``intmac``)."""
    return _fmt_range(spec.a), _fmt_range(spec.b)


def simd_ranges(spec: Any, options: Mapping[str, Any]) -> tuple[OperandRange, OperandRange]:
    """Signed integers of the measured mode's widths (``mode`` option, default the first)."""
    mode = options.get("mode", 0)
    idx = spec.modes.index(mode) if isinstance(mode, str) and mode in spec.modes else mode
    if not isinstance(idx, int) or not 0 <= idx < len(spec.modes):
        raise ValueError(f"mode={mode!r} is not a mode of {spec.name}: allowed {spec.modes}")
    abits, bbits = spec.mode_widths[idx]
    return (
        OperandRange(-(2.0 ** (abits - 1)), 2.0 ** (abits - 1) - 1),
        OperandRange(-(2.0 ** (bbits - 1)), 2.0 ** (bbits - 1) - 1),
    )


def lut_ranges(spec: Any, options: Mapping[str, Any]) -> tuple[OperandRange, OperandRange]:
    """The activation format and the integer weight range (at least +-1)."""
    lo, hi = spec.weight_range
    return _fmt_range(spec.act), OperandRange(float(lo), float(max(hi, 1)))


def shiftadd_ranges(spec: Any, options: Mapping[str, Any]) -> tuple[OperandRange, OperandRange]:
    """Activation and weight formats; a grouped PE scales its weight groups natively."""
    if spec.group is not None:
        raise ValueError(
            f"{spec.name} scales its weight groups natively (group={spec.group}): allowed scaling "
            "'pe' (optionally +smooth)"
        )
    return _fmt_range(spec.act), _fmt_range(spec.weight)


def array_ranges(spec: Any, options: Mapping[str, Any]) -> tuple[OperandRange, OperandRange]:
    """A PE array's operands are its PE's (``spec.pe``)."""
    return operand_ranges(spec.pe, options)


def operand_ranges(spec: Any, options: Mapping[str, Any] = {}) -> tuple[OperandRange, OperandRange]:
    """Ranges of operands ``a`` (activations) and ``b`` (weights) of ``spec``: its family's
    ``operand_ranges`` part; ValueError for a family that scales natively."""
    from ..families import family_of

    part = family_of(spec).part("operand_ranges")
    if part is None:
        raise ValueError(f"{spec.name} scales its blocks natively: allowed scaling 'pe' (optionally +smooth)")
    return part(spec, options)


def check_scaling(spec: Any, scaling: Any, options: Mapping[str, Any] = {}) -> Scaling:
    """Parse ``scaling`` and check that ``spec`` supports it (ValueError naming both)."""
    sc = parse_scaling(scaling)
    if sc.granularity != "pe":
        operand_ranges(spec, options)
    return sc


# ---- scales ------------------------------------------------------------------------------------


def _scales(amax: np.ndarray, rng: OperandRange, kind: str, tensor_amax: float) -> np.ndarray:
    """Scale per entry of ``amax`` (1.0 where ``amax`` is 0)."""
    amax = np.asarray(amax, np.float64)
    pos = amax > 0
    if kind == _POW2:
        return pow2_scale(amax, rng.hi)
    if kind == _MX:
        _, e = np.frexp(np.where(pos, amax, 1.0))
        return np.where(pos, np.ldexp(1.0, e - 1 - rng.emax), 1.0)
    if kind == _FP32:
        s = np.maximum(
            (np.where(pos, amax, rng.hi) / rng.hi).astype(np.float32), np.finfo(np.float32).smallest_subnormal
        )
        low = amax / s.astype(np.float64) > rng.hi
        s = np.where(low, np.nextafter(s, np.float32(np.inf)), s)
        return np.where(pos, s.astype(np.float64), 1.0)
    sfmt = formats.get_float(kind)
    ts = float(np.float32(tensor_amax / (rng.hi * sfmt.max))) if tensor_amax > 0 else 1.0
    ts = ts if ts > 0 else 1.0
    codes = sfmt.encode(np.where(pos, amax, 0.0) / (rng.hi * ts), "nearest_even", "saturate")
    s = np.asarray(sfmt.decode(codes), np.float64)
    s = np.where(s > 0, s, sfmt.min_subnormal if sfmt.min_subnormal > 0 else sfmt.min_normal) * ts
    return np.where(pos, s, 1.0)


def smooth_factors(x: np.ndarray, w: np.ndarray, alpha: float) -> np.ndarray:
    """Power-of-two per-input-channel factors ``[k]`` (x / f, w * f); 1 where a channel is zero."""
    ax = np.abs(x).max(axis=0) if x.shape[0] else np.zeros(x.shape[1])
    aw = np.abs(w).max(axis=1) if w.shape[1] else np.zeros(w.shape[0])
    ok = (ax > 0) & (aw > 0)
    with np.errstate(divide="ignore"):
        ratio = alpha * np.log2(np.where(ok, ax, 1.0)) - (1.0 - alpha) * np.log2(np.where(ok, aw, 1.0))
    return np.where(ok, np.ldexp(1.0, np.rint(ratio).astype(np.int64)), 1.0)


def _amax(t: np.ndarray, axis: Optional[int]) -> np.ndarray:
    if t.size == 0:
        return np.zeros(() if axis is None else t.shape[1 - axis])
    return np.abs(t).max(axis=axis)


def _pe_call(
    golden: Callable[[np.ndarray, np.ndarray], np.ndarray],
    xs: np.ndarray,
    ws: np.ndarray,
    ra: OperandRange,
    rb: OperandRange,
) -> np.ndarray:
    """``golden(xs, ws)`` with two zero-product steps that pin the family's scales at 1."""
    n, k = xs.shape
    m = ws.shape[1]
    xp = np.zeros((n, k + 2))
    xp[:, :k] = np.clip(xs, ra.lo, ra.hi)
    wp = np.zeros((k + 2, m))
    wp[:k] = np.clip(ws, rb.lo, rb.hi)
    if n:
        xp[0, k] = ra.hi  # x = max meets w = 0
    wp[k + 1] = rb.hi  # w = max meets x = 0
    return np.asarray(golden(xp, wp), np.float64)


def scaled_matmul(
    golden: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x: np.ndarray,
    w: np.ndarray,
    scaling: Scaling,
    ranges: Optional[tuple[OperandRange, OperandRange]] = None,
) -> np.ndarray:
    """``x @ w`` through ``golden`` (the PE's matmul with its own scaling) under ``scaling``.

    ``x`` ``[n, k]`` and ``w`` ``[k, m]`` are finite float64; ``ranges`` (operands a, b) is needed
    for every granularity but ``pe``.
    """
    if scaling.smooth is not None:
        f = smooth_factors(x, w, scaling.smooth)
        x, w = x / f, w * f[:, None]
    if scaling.granularity == "pe":
        return np.asarray(golden(x, w), np.float64)
    if ranges is None:
        raise ValueError(f"scaling={scaling.text!r} needs the PE's operand ranges")
    ra, rb = ranges
    kind = scaling.kind or _POW2
    tx, tw = float(_amax(x, None)), float(_amax(w, None))
    if scaling.granularity in ("tensor", "channel"):
        if scaling.granularity == "tensor":
            sx = np.full(x.shape[0], _scales(np.array(tx), ra, kind, tx))
            sw = np.full(w.shape[1], _scales(np.array(tw), rb, kind, tw))
        else:
            sx = _scales(_amax(x, 1), ra, kind, tx)
            sw = _scales(_amax(w, 0), rb, kind, tw)
        return _pe_call(golden, x / sx[:, None], w / sw[None, :], ra, rb) * sx[:, None] * sw[None, :]
    n, k = x.shape
    m = w.shape[1]
    acc = np.zeros((n, m), np.float32)
    block = scaling.block or max(k, 1)  # parse_scaling gives the block granularity its size
    for k0 in range(0, max(k, 1), block):
        xb, wb = x[:, k0 : k0 + block], w[k0 : k0 + block]
        sx = _scales(_amax(xb, 1), ra, kind, tx)
        sw = _scales(_amax(wb, 0), rb, kind, tw)
        part = _pe_call(golden, xb / sx[:, None], wb / sw[None, :], ra, rb) * sx[:, None] * sw[None, :]
        with np.errstate(over="ignore", invalid="ignore"):
            acc = (acc + part.astype(np.float32)).astype(np.float32)
    return acc.astype(np.float64)
