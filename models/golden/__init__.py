"""Bit-exact golden models of the PEs, in NumPy (no HDL tools needed).

:func:`run` dispatches on the spec type; every family registers its model in its own module
(``mac`` for :class:`peforge.spec.MinifloatMacSpec`, ``intmac`` for
:class:`peforge.spec.IntMacSpec`).  :mod:`.rounding` is the shared exact
rounding routine.
"""

from __future__ import annotations

from . import intmac, mac, rounding, simd  # noqa: F401  (importing a family module registers it)
from . import lut  # noqa: F401,E402  (registers the lut family)
from . import shiftadd  # noqa: F401,E402  (registers the shiftadd family: run and matmul)
from . import blockdot  # noqa: F401,E402  (registers the blockdot family: run and matmul)
from . import matmul as _matmul_families  # noqa: F401  (registers matmul for mac, intmac, simd)
from .base import matmul, port_widths, run, value
from .rounding import round_exact, round_to_format

__all__ = ["run", "port_widths", "value", "matmul", "round_to_format", "round_exact", "mac", "intmac", "rounding"]
