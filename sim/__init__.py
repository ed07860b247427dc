"""Verification of generated PEs: cocotb testbenches on Verilator, vector sets, the runner.

Entry point: :func:`verify` (in :mod:`.regression`) (``peforge verify mac ...``), the same
path for every family.  Internals: :mod:`.ports` (the PE's ports and timing, from its
manifest), :mod:`.wrapper` (R PEs fed from a file of wide words), :mod:`.batch` (plans, encoding,
vectorised check), :mod:`.session` (one simulator process per regression), :mod:`.tb` (the
cocotb module), :mod:`.runner` (cached Verilator builds), :mod:`.vectors` (the
:class:`~.vectors.VectorSet` and the MAC's sets) and each family's sets (:mod:`.families`,
:mod:`.lut`, :mod:`.shiftadd`, :mod:`.blockdot`).

Imports are lazy so that the cocotb module :mod:`.tb`, loaded inside the simulator, does not
pull in Amaranth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .regression import VerifyResult, verify

__all__ = ["verify", "VerifyResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import importlib

        return getattr(importlib.import_module(".regression", __name__), name)
    raise AttributeError(f"module 'peforge.sim' has no attribute {name!r}")
