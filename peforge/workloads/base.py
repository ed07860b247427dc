"""What every workload is: a name, a kind, a float baseline and a score of a PE's ``matmul``.

A workload measures numerical quality by calling ``matmul(x, w)`` (``[n, k] @ [k, m]``, float64)
for every matrix product it contains.  The sweep passes a :class:`peforge.workloads.pe.PEMatmul`
(the PE's bit-exact arithmetic); the baseline passes a float matmul.  Metrics are plain
``{name: number}`` dicts without the workload prefix (the sweep adds it).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, Callable, Literal, Mapping

import numpy as np

__all__ = ["Workload", "MatMul", "Metrics", "top1_accuracy", "check_metrics", "check_name", "float64_matmul"]

MatMul = Callable[[np.ndarray, np.ndarray], np.ndarray]
Metrics = dict[str, float]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_name(name: Any, what: str) -> str:
    """``name`` if it can prefix result columns (letters, digits, ``_``), else ValueError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what}={name!r}: expected a name of letters, digits and '_' (not starting with a digit)")
    return name


def float64_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The exact-as-possible reference ``x @ w`` in float64."""
    return np.asarray(x, np.float64) @ np.asarray(w, np.float64)


def top1_accuracy(logits: Any, labels: Any) -> float:
    """Fraction of rows whose argmax equals the label; a row with a NaN logit counts as wrong
    (what a hardware argmax over NaN outputs is worth)."""
    z = np.asarray(logits, np.float64).reshape(len(labels), -1)
    y = np.asarray(labels).reshape(-1)
    if z.shape[0] == 0:
        return float("nan")
    ok = (np.argmax(np.where(np.isnan(z), -np.inf, z), axis=1) == y) & ~np.isnan(z).any(axis=1)
    return float(np.mean(ok))


def check_metrics(result: Any, where: str) -> Metrics:
    """A user function's result as metrics: a number -> ``{"score": v}``, a dict of numbers as is."""
    if isinstance(result, (int, float, np.integer, np.floating)) and not isinstance(result, bool):
        return {"score": float(result)}
    if isinstance(result, Mapping) and result:
        out: Metrics = {}
        for k, v in result.items():
            if (
                not isinstance(k, str)
                or not _NAME.match(k)
                or isinstance(v, bool)
                or not isinstance(v, (int, float, np.integer, np.floating))
            ):
                raise ValueError(
                    f"{where}: returned {{{k!r}: {v!r}}}: expected a dict of metric name "
                    "(letters, digits, '_') -> number"
                )
            out[k] = float(v)
        return out
    raise ValueError(f"{where}: returned {result!r}: expected a number or a dict of metric name -> number")


class Workload(ABC):
    """One workload (see the module docstring).

    Members
    -------
    name : str
        Prefix of its result columns.
    kind : ``"tensor"`` or ``"network"``
        Tensor workloads report ``sqnr_db`` / ``rel_err`` (averaged into ``sqnr_db_mean``),
        networks report ``acc`` (averaged into ``accuracy_mean``) and any other metrics.
    """

    name: str
    kind: Literal["tensor", "network"]

    def prepare(self) -> None:
        """Load data and run the float baseline once (called before forking workers)."""
        self.baseline()

    @abstractmethod
    def baseline(self) -> Metrics:
        """Metrics of the float run (what the PE is compared with)."""

    @abstractmethod
    def score(self, matmul: MatMul) -> Metrics:
        """Metrics with every matrix product computed by ``matmul``."""
