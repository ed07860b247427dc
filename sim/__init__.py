"""Verification of generated PEs: cocotb testbenches on Verilator, vector sets, the runner.

Entry point: :func:`verify` (in :mod:`.regression`) (``peforge verify mac ...``).  Internals: :mod:`.runner` (cached
Verilator builds), :mod:`.wrapper` (R PEs behind one wide port), :mod:`.tb_mac` (the cocotb
module), :mod:`.vectors` (vector sets), :mod:`.batch` (plans, encoding, vectorised check).

Imports are lazy so that the cocotb module :mod:`.tb_mac`, loaded inside the simulator,
does not pull in Amaranth.
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
