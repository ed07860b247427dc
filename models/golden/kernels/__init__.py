"""Compiled, bit-exact kernels behind :func:`peforge.models.golden.matmul`.

The NumPy golden models stay the reference; these kernels compute the same chains (every
output of ``x @ w`` is one accumulation chain through the PE) with numba-compiled loops,
vectorised across output columns, and are tested bit for bit against the reference.  A kernel
only takes the specs and inputs whose semantics it implements exactly (the conditions are
stated in each module); for anything else :func:`chains` returns None and the caller runs the
NumPy reference, and chains a kernel finds it cannot do exactly are recomputed by the
reference, so a kernel never changes a result.

Switches: ``PEFORGE_KERNELS=0`` in the environment, or ``with kernels.disabled():``, runs the
NumPy reference only; ``PEFORGE_THREADS=N`` sets the worker threads (default: usable CPUs).

The kernel of each family is found through the explicit table :data:`KERNELS` (spec class ->
``"module:function"`` in this package), imported on first use so that importing the golden
models does not import numba.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from dataclasses import MISSING, fields
from typing import Any, Callable, Iterator, Optional

import numpy as np

from peforge.spec import BlockDotSpec, IntMacSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec

__all__ = ["KERNELS", "chains", "enabled", "disabled", "known_fields_only", "routed"]

#: spec class -> "module:function" of its kernel (arguments: see each function)
KERNELS: dict[type, str] = {
    MinifloatMacSpec: "mac:mac_chains",
    BlockDotSpec: "blockdot:blockdot_chains",
    IntMacSpec: "integer:intmac_chains",
    SimdMacSpec: "integer:simd_chains",
    LutSpec: "integer:lut_chains",
    ShiftAddSpec: "shiftadd:shiftadd_chains",
}

#: spec fields each kernel implements; any other field must hold its default value (a field a
#: later change adds, e.g. a new rounding option, keeps such specs on the NumPy reference)
_KNOWN_FIELDS: dict[type, frozenset[str]] = {
    MinifloatMacSpec: frozenset({"a", "b", "acc", "lanes", "stages", "subnormals", "max_count", "mult"}),
    BlockDotSpec: frozenset({"element_a", "element_b", "scale_a", "scale_b", "block", "lanes", "acc", "stages"}),
    IntMacSpec: frozenset({"a", "b", "acc_bits", "lanes", "stages", "max_count", "overflow"}),
    SimdMacSpec: frozenset({"base", "modes", "arch", "acc_bits", "stages", "max_count"}),
    LutSpec: frozenset({"act", "weight_bits", "group", "symmetric", "lanes", "acc_bits", "stages", "max_count"}),
    ShiftAddSpec: frozenset(
        {"act", "weight", "mode", "acc_bits", "lanes", "stages", "group", "scale", "overflow", "max_count"}
    ),
}

_STATE = threading.local()
_resolved: dict[type, Callable[..., Optional[np.ndarray]]] = {}


def enabled() -> bool:
    """Whether :func:`chains` may run compiled kernels (``PEFORGE_KERNELS`` != 0, not disabled)."""
    if getattr(_STATE, "off", 0):
        return False
    return os.environ.get("PEFORGE_KERNELS", "1").strip() not in ("0", "off", "false", "no")


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the NumPy reference only inside the block (this thread)."""
    _STATE.off = getattr(_STATE, "off", 0) + 1
    try:
        yield
    finally:
        _STATE.off -= 1


@contextlib.contextmanager
def routed(route: Callable[..., Any]) -> Iterator[None]:
    """Inside the block (this thread), :func:`chains` first offers its arguments -- a family's
    quantised GEMM -- to ``route(spec, *args, **kwargs)``; a result other than ``NotImplemented``
    is returned as the chains' values.  A PE array's golden matmul uses it to run the PE
    family's own quantisation and then its tiles (:mod:`peforge.models.golden.array`)."""
    prev = getattr(_STATE, "route", None)
    _STATE.route = route
    try:
        yield
    finally:
        _STATE.route = prev


def known_fields_only(spec: Any) -> bool:
    """True when every field of ``spec`` outside the kernel's known set has its default."""
    known = _KNOWN_FIELDS.get(type(spec))
    if known is None:
        return False
    for f in fields(spec):
        if f.name in known:
            continue
        default = (
            f.default
            if f.default is not MISSING
            else (f.default_factory() if f.default_factory is not MISSING else MISSING)
        )
        if default is MISSING or getattr(spec, f.name) != default:
            return False
    return True


def chains(spec: Any, *args: Any, **kwargs: Any) -> Optional[np.ndarray]:
    """Final accumulator values of every output chain, or None when no kernel applies.

    The arguments are those of the family's kernel in :data:`KERNELS` (quantised operands as
    the family's ``matmul`` prepares them); the result is what the reference chain runner
    returns (float64 ``[n, m]`` with the scales not yet undone)."""
    route = getattr(_STATE, "route", None)
    if route is not None:
        out = route(spec, *args, **kwargs)
        if out is not NotImplemented:
            return out
    if not enabled() or not known_fields_only(spec):
        return None
    fn = _resolved.get(type(spec))
    if fn is None:
        target = KERNELS.get(type(spec))
        if target is None:
            return None
        module, name = target.split(":")
        fn = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        _resolved[type(spec)] = fn
    return fn(spec, *args, **kwargs)
