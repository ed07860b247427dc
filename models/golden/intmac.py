"""Golden model of the integer MAC baseline (:class:`peforge.spec.IntMacSpec`).

Semantics, per valid step with lane codes ``a[i]``, ``b[i]`` and ``first``:

* each code is read as an integer of its format (two's complement when signed);
* ``s = sum(a[i] * b[i])`` exactly;
* ``acc := (first ? 0 : acc) + s``; with a derived width this never overflows; with a given
  ``acc_bits`` it either wraps modulo ``2**acc_bits`` (``overflow="wrap"``) or clamps to the
  two's complement range once per step, after the exact lane sum (``"saturate"``).
* the ``acc`` port shows the two's complement bits of the state (reset state 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...spec import IntMacSpec
from .base import int_accumulate, lane_operand, twos_complement_values

__all__ = ["run_intmac", "intmac_port_widths", "intmac_value"]


def run_intmac(spec: IntMacSpec, *, a: Any, b: Any, first: Any) -> dict[str, np.ndarray]:
    """Accumulator port bits after every step, shape [batch, steps] (uint64)."""
    av = spec.a.to_int(lane_operand(a, spec.lanes, "a"))
    bv = spec.b.to_int(lane_operand(b, spec.lanes, "b"))
    first_arr = np.asarray(first, dtype=bool)
    if first_arr.shape != av.shape[:2]:
        raise ValueError(f"first must have shape {av.shape[:2]}, got {first_arr.shape}")
    width = spec.width
    out = int_accumulate(
        (av * bv).sum(axis=-1),
        first_arr,
        width,  # |sum| < 2**38: int64 is exact
        saturate=spec.overflow == "saturate",
    )
    mask = (1 << width) - 1
    if out.dtype == object:
        bits = np.array([int(v) & mask for v in out.ravel()], dtype=object).reshape(out.shape)
        return {"acc": bits.astype(np.uint64)}
    return {"acc": (out & mask).astype(np.uint64)}


def intmac_port_widths(spec: IntMacSpec) -> dict[str, int]:
    return {"acc": spec.width}


def intmac_value(spec: IntMacSpec, acc_bits: Any) -> np.ndarray:
    return twos_complement_values(acc_bits, spec.width)
