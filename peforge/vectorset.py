"""The :class:`VectorSet`: a named batch of PE input chains in the golden model's terms, the
stimulus every family's vector sets are written in.

Part of the pure core (NumPy only), so a family may write its vector sets beside its golden
model or its spec (``models`` never imports ``sim``); :mod:`peforge.sim.vectors` re-exports it
with the minifloat MAC's sets.  Each batch row is one independent chain; a row may hold many
chains (every ``first=1`` starts a new one), so a million single-step vectors still fill a few
long rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

__all__ = ["VectorSet", "layout_rows", "random_layout"]


@dataclass(frozen=True)
class VectorSet:
    """A named batch of PE input chains, in the golden model's terms.

    Members
    -------
    name : str
        Set name used in reports (``exhaustive``, ``corner:nan_inf``, ...).
    a, b : numpy.ndarray
        Operand codes ``[batch, steps, ...]`` as the family's golden model takes them
        (``[batch, steps, lanes]`` int64 for a MAC; words, or per-block elements elsewhere).
    first : numpy.ndarray
        ``[batch, steps]`` bool; True starts a new accumulation (port ``in_first``).
    gaps : numpy.ndarray or None
        Bubble cycles (``in_valid=0``) before each input cycle, shared by all rows:
        ``[steps]``, or ``[steps * beats]`` for a PE that takes a step in several beats.
    ports : dict
        Further input ports by name (``mode``, ``scale``, ``scale_a``, ...), ``[batch, steps, ...]``.
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    first: np.ndarray
    gaps: np.ndarray | None = None
    ports: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        first = np.asarray(self.first, bool)
        if first.ndim != 2:
            raise ValueError(f"{self.name}: first must be [batch, steps], got shape {first.shape}")
        object.__setattr__(self, "first", first)
        arrays = {}
        for port, values in (("a", self.a), ("b", self.b), *self.ports.items()):
            arr = np.asarray(values)
            if arr.dtype not in (object, np.uint64):  # codes as int64; wide words as uint64 / ints
                arr = arr.astype(np.int64, copy=False)
            if arr.shape[:2] != first.shape:
                raise ValueError(
                    f"{self.name}: {port} must be [batch, steps, ...] with [batch, steps] = "
                    f"{first.shape} as first, got {arr.shape}"
                )
            arrays[port] = arr
        object.__setattr__(self, "a", arrays.pop("a"))
        object.__setattr__(self, "b", arrays.pop("b"))
        object.__setattr__(self, "ports", arrays)
        if self.gaps is not None:
            gaps = np.asarray(self.gaps, np.int64)
            steps = first.shape[1]
            if gaps.ndim != 1 or (steps and gaps.size % steps) or (gaps < 0).any():
                raise ValueError(f"{self.name}: gaps must be [steps] or [steps * beats] >= 0, got shape {gaps.shape}")
            object.__setattr__(self, "gaps", gaps)

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        """Every input port's values by port name except ``in_first`` (the golden model's keywords)."""
        return {"a": self.a, "b": self.b, **self.ports}

    @property
    def batch(self) -> int:
        return self.first.shape[0]

    @property
    def steps(self) -> int:
        return self.first.shape[1]

    @property
    def lanes(self) -> int:
        return self.a.shape[2] if self.a.ndim > 2 else 1

    @property
    def size(self) -> int:
        """Number of vectors (valid steps) in the set."""
        return self.batch * self.steps

    def subset(self, rows: slice | np.ndarray, steps: int | None = None, name: str | None = None) -> "VectorSet":
        s = slice(None, steps)
        beats = 1 if self.gaps is None or not self.steps else self.gaps.size // self.steps
        gaps = self.gaps if self.gaps is None or steps is None else self.gaps[: steps * beats]
        return VectorSet(
            name or self.name,
            self.a[rows, s],
            self.b[rows, s],
            self.first[rows, s],
            gaps,
            {k: v[rows, s] for k, v in self.ports.items()},
        )


def layout_rows(rows: int, lanes: int) -> int:
    """Rows to lay a set's chains out in: about 64 operand lanes per cycle in all, 4 to ``rows``
    rows, so a many-lane PE gets long chains (its long accumulations) rather than more rows."""
    return max(4, min(rows, 64 // max(1, lanes)))


def random_layout(vectors_n: int, rows: int, max_steps: int = 4096, min_steps: int = 1) -> tuple[int, int]:
    """``(batch rows, steps)`` of a random set of about ``vectors_n`` vectors laid out over
    ``rows`` rows: chains as long as ``vectors_n / rows`` (``min_steps`` to ``max_steps``),
    as many rows as that needs."""
    steps = min(max_steps, max(min_steps, -(-vectors_n // rows)))
    return max(1, -(-vectors_n // steps)), steps
