"""Golden model of the mixed-precision SIMD PE (:class:`peforge.spec.SimdMacSpec`).

Semantics, per valid step with port words ``a``, ``b`` and controls ``mode``, ``a_signed``,
``b_signed``, ``first`` (all sampled with the step):

* ``(A, B) = spec.mode_widths[mode]``, ``lanes = spec.mode_lanes[mode]``;
* lane i of a is ``a[i*A +: A]`` (lane 0 least significant), read as two's complement when
  ``a_signed`` else unsigned; likewise b with ``B`` and ``b_signed``; unused upper bits of
  the words are ignored;
* ``acc := (first ? 0 : acc) + sum_i a_i * b_i``, wrapping modulo ``2**spec.width``;
* the ``acc`` port shows the two's complement bits of the state (reset state 0).

A ``mode`` value outside ``range(len(spec.modes))`` is an input error (the RTL's behaviour
there is unspecified).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...spec import SimdMacSpec
from .base import int_accumulate, twos_complement_values

__all__ = ["run_simd", "unpack_lanes", "simd_port_widths", "simd_value"]


def _words(x: Any, name: str, width: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape [batch, steps], got {arr.shape}")
    if width <= 64 and arr.dtype != object:
        return arr.astype(np.uint64)
    return arr.astype(object)


def unpack_lanes(words: np.ndarray, bits: int, lanes: int, signed: Any) -> np.ndarray:
    """Lane values ``[..., lanes]`` (int64) of port words: lane i = bits ``[i*bits +: bits]``,
    two's complement where ``signed`` (broadcast against ``words``) is true."""
    if words.dtype == object:
        shifts = np.array([i * bits for i in range(lanes)], dtype=object)
        raw = ((words[..., None] >> shifts) & ((1 << bits) - 1)).astype(np.int64)
    else:
        shifts = np.arange(lanes, dtype=np.uint64) * np.uint64(bits)
        raw = ((words[..., None] >> shifts) & np.uint64((1 << bits) - 1)).astype(np.int64)
    neg = np.asarray(signed, bool)[..., None] & (raw >> (bits - 1)).astype(bool)
    return raw - (neg.astype(np.int64) << bits)


def run_simd(
    spec: SimdMacSpec, *, a: Any, b: Any, first: Any, mode: Any, a_signed: Any, b_signed: Any
) -> dict[str, np.ndarray]:
    """Accumulator port bits after every step, shape [batch, steps] (uint64).

    ``a``, ``b``: port words ``[batch, steps]`` (uint64, or Python ints in an object array for
    words wider than 64 bits); ``first``, ``mode``, ``a_signed``, ``b_signed``: ``[batch, steps]``.
    """
    aw, bw = _words(a, "a", spec.a_width), _words(b, "b", spec.b_width)
    shape = aw.shape
    ctrl = {}
    for key, arr in (("first", first), ("mode", mode), ("a_signed", a_signed), ("b_signed", b_signed)):
        ctrl[key] = np.asarray(arr)
        if ctrl[key].shape != shape or bw.shape != shape:
            raise ValueError(
                f"a, b and {key} must share the shape [batch, steps]: a {shape}, b {bw.shape}, {key} {ctrl[key].shape}"
            )
    mode_arr = ctrl["mode"].astype(np.int64)
    n_modes = len(spec.modes)
    if ((mode_arr < 0) | (mode_arr >= n_modes)).any():
        bad = int(mode_arr[(mode_arr < 0) | (mode_arr >= n_modes)][0])
        raise ValueError(f"mode={bad} is out of range: spec {spec.name} has modes 0..{n_modes - 1} {spec.modes}")
    sa, sb = ctrl["a_signed"].astype(bool), ctrl["b_signed"].astype(bool)
    sums = np.zeros(shape, np.int64)  # |sum| <= 64 * 2**32: exact in int64
    for m, ((abits, bbits), lanes) in enumerate(zip(spec.mode_widths, spec.mode_lanes)):
        sel = mode_arr == m
        if not sel.any():
            continue
        av = unpack_lanes(aw[sel], abits, lanes, sa[sel])
        bv = unpack_lanes(bw[sel], bbits, lanes, sb[sel])
        sums[sel] = (av * bv).sum(axis=-1)
    width = spec.width
    mod = 1 << width
    out = int_accumulate(sums, ctrl["first"].astype(bool), width)  # wraps to two's complement
    if out.dtype == object:
        return {"acc": np.array([int(v) % mod for v in out.ravel()], dtype=object).astype(np.uint64).reshape(shape)}
    return {"acc": (out % mod).astype(np.uint64)}


def simd_port_widths(spec: SimdMacSpec) -> dict[str, int]:
    return {"acc": spec.width}


def simd_value(spec: SimdMacSpec, acc_bits: Any) -> np.ndarray:
    return twos_complement_values(acc_bits, spec.width)
