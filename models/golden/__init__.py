"""Bit-exact golden models of the PEs, in NumPy (no HDL tools needed).

:func:`run`, :func:`port_widths`, :func:`value` and :func:`matmul` dispatch through
:data:`peforge.families.FAMILIES` to each family's model module (``mac``, ``intmac``, ``simd``,
``lut``, ``shiftadd``, ``blockdot``; ``matmul`` holds the shared real-valued matmul recipe).
:mod:`.rounding` is the shared exact rounding routine.
"""

from __future__ import annotations

from peforge.families import load_layer

from . import blockdot, intmac, lut, mac, rounding, shiftadd, simd  # noqa: F401
from . import matmul as _matmul_recipes  # noqa: F401  (registers the shared matmul recipe)
from .base import matmul, port_widths, run, value
from .rounding import round_exact, round_to_format

load_layer("golden")  # every family's golden parts, or a FamilyError now

__all__ = [
    "run",
    "port_widths",
    "value",
    "matmul",
    "round_to_format",
    "round_exact",
    "mac",
    "intmac",
    "simd",
    "lut",
    "shiftadd",
    "blockdot",
    "rounding",
]
