"""Python-callable workloads: ``"package.module:function"`` receives the PE's ``matmul``.

The function is called as ``function(matmul, **options)`` and returns a number (reported as
``score``) or a dict of metric name -> number.  A metric named ``acc`` counts as the network's
accuracy (``accuracy_mean``, ``acc_drop``).  The baseline is the same call with a float32
``matmul``.  The digits networks are two such functions
(``peforge.workloads.digits:mlp_accuracy`` / ``:cnn_accuracy``).
"""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .base import MatMul, Metrics, Workload, check_metrics

__all__ = ["CallableWorkload", "load_callable", "is_callable_ref", "float32_matmul"]

_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_callable_ref(text: str) -> bool:
    """True for ``"package.module:function"``."""
    return bool(_REF.match(text))


def float32_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """float32 ``x @ w`` returned as float64 (the baseline of network workloads)."""
    return (np.asarray(x, np.float32) @ np.asarray(w, np.float32)).astype(np.float64)


def load_callable(ref: str, search_path: Optional[str] = None) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (``search_path`` is put on ``sys.path`` first)."""
    if not isinstance(ref, str) or not is_callable_ref(ref):
        raise ValueError(f"callable={ref!r}: expected 'package.module:function'")
    if search_path and search_path not in sys.path:
        sys.path.insert(0, search_path)
    module_name, func_name = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"callable={ref!r}: module {module_name!r} cannot be imported: {err}") from None
    fn = getattr(module, func_name, None)
    if fn is None:
        raise ValueError(f"callable={ref!r}: module {module_name!r} has no attribute {func_name!r}")
    if not callable(fn):
        raise ValueError(f"callable={ref!r}: {func_name!r} is a {type(fn).__name__}, not a function")
    return fn


class CallableWorkload(Workload):
    """A network workload computed by a user (or built-in) function of ``matmul``."""

    kind = "network"

    def __init__(
        self, name: str, ref: str, options: Mapping[str, Any] | None = None, search_path: Optional[str] = None
    ) -> None:
        self.name, self.ref = name, ref
        self.options = dict(options or {})
        self.fn = load_callable(ref, search_path)
        self._baseline: Optional[Metrics] = None

    def _call(self, matmul: MatMul) -> Metrics:
        return check_metrics(self.fn(matmul, **self.options), f"workload {self.name!r} ({self.ref})")

    def baseline(self) -> Metrics:
        if self._baseline is None:
            self._baseline = self._call(float32_matmul)
        return self._baseline

    def score(self, matmul: MatMul) -> Metrics:
        return self._call(matmul)
