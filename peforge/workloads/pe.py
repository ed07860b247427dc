"""The ``matmul(x, w)`` a workload receives: a PE's bit-exact golden matmul, made safe for whole
networks and instrumented.

* **Scaling**: the point's ``scaling`` option (:mod:`.scaling`) maps the operands onto the PE's
  formats; the other options (e.g. a SIMD ``mode``) go to ``golden.matmul``.
* **Non-finite operands** (an earlier layer overflowed) are handled as a saturating (OCP
  "satfinite") quantiser would: ``+-inf`` becomes the largest finite magnitude of its tensor
  with its sign, and a NaN operand makes every output it feeds NaN (its row of ``x`` or its
  column of ``w``); the golden model sees only finite values.
* **Counters**: every output produced is counted, with how many are ``+-inf`` (the accumulator
  overflowed) and how many NaN, so a workload's overflow becomes a result, not an error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .scaling import DEFAULT_SCALING, check_scaling, operand_ranges, scaled_matmul

__all__ = ["PEMatmul", "OutputCounts", "satfinite"]


@dataclass
class OutputCounts:
    """Outputs produced by a :class:`PEMatmul` and how many overflowed (+-inf) or went NaN."""

    outputs: int = 0
    overflow: int = 0
    nan: int = 0

    @property
    def overflow_frac(self) -> float:
        return self.overflow / self.outputs if self.outputs else 0.0

    @property
    def nan_frac(self) -> float:
        return self.nan / self.outputs if self.outputs else 0.0


def satfinite(t: np.ndarray) -> np.ndarray:
    """``t`` with NaN -> 0 and +-inf -> +-(largest finite magnitude of ``t``)."""
    finite = np.isfinite(t)
    if finite.all():
        return t
    big = float(np.abs(t[finite]).max()) if finite.any() else 0.0
    out = np.where(np.isnan(t), 0.0, t)
    return np.where(np.isinf(out), np.copysign(big, out), out)


class PEMatmul:
    """``matmul(x, w) -> [n, m]`` float64 through the PE described by ``spec``.

    Parameters
    ----------
    spec : Spec
        The PE.
    options : mapping
        Keyword options of ``golden.matmul`` plus ``scaling`` (default ``"pe"``).

    Members
    -------
    counts : OutputCounts
        Outputs so far (reset with :meth:`reset`).
    """

    def __init__(self, spec: Any, options: Mapping[str, Any] = {}) -> None:
        from ..models import golden

        opts = dict(options)
        self.scaling = check_scaling(spec, opts.pop("scaling", DEFAULT_SCALING), opts)
        self.spec = spec
        self._golden = functools.partial(golden.matmul, spec, **opts)
        self._ranges = operand_ranges(spec, opts) if self.scaling.granularity != "pe" else None
        self.counts = OutputCounts()

    def reset(self) -> OutputCounts:
        """Return the counts so far and start new ones."""
        done, self.counts = self.counts, OutputCounts()
        return done

    def __call__(self, x: Any, w: Any) -> np.ndarray:
        xa = np.asarray(x, np.float64)
        wa = np.asarray(w, np.float64)
        if xa.ndim != 2 or wa.ndim != 2 or xa.shape[1] != wa.shape[0]:
            raise ValueError(f"x must be [n, k] and w [k, m] with the same k, got x {xa.shape}, w {wa.shape}")
        nan_rows = np.isnan(xa).any(axis=1)
        nan_cols = np.isnan(wa).any(axis=0)
        out = scaled_matmul(self._golden, satfinite(xa), satfinite(wa), self.scaling, self._ranges)
        if nan_rows.any() or nan_cols.any():
            out = out.copy()
            out[nan_rows, :] = np.nan
            out[:, nan_cols] = np.nan
        self.counts.outputs += out.size
        self.counts.overflow += int(np.isinf(out).sum())
        self.counts.nan += int(np.isnan(out).sum())
        return out
