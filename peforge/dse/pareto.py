"""Pareto fronts over any two or three objectives of result rows."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["Objective", "pareto_mask", "pareto_rows", "parse_objective"]

Objective = tuple[str, str]  # (column, "min" | "max")


def parse_objective(text: str) -> Objective:
    """``"column:min"`` / ``"column:max"`` (or a bare column, minimised) -> (column, sense)."""
    col, _, sense = text.partition(":")
    sense = sense or "min"
    if not col or sense not in ("min", "max"):
        raise ValueError(f"objective={text!r}: allowed 'column:min' or 'column:max'")
    return col, sense


def _value(row: dict[str, Any], col: str) -> float:
    v = row.get(col)
    try:
        f = float(v)  # type: ignore[arg-type]  # any cell value; non-numbers become NaN below
    except (TypeError, ValueError):
        return math.nan
    return f


def pareto_mask(rows: Sequence[dict[str, Any]], objectives: Sequence[Objective]) -> np.ndarray:
    """True for rows no other row dominates (at least as good in every objective, better in
    one).  Rows with a missing or NaN objective are never on the front."""
    if not 1 <= len(objectives) <= 3:
        raise ValueError(f"objectives={list(objectives)!r}: allowed one to three (column, sense) pairs")
    for col, sense in objectives:
        if sense not in ("min", "max"):
            raise ValueError(f"objective {col!r} sense={sense!r}: allowed 'min' or 'max'")
    # minimisation matrix: negate maximised columns
    cost = np.array(
        [[(_value(r, c) if s == "min" else -_value(r, c)) for c, s in objectives] for r in rows], dtype=np.float64
    ).reshape(len(rows), len(objectives))
    valid = np.asarray(~np.isnan(cost).any(axis=1))
    mask = valid.copy()
    for i in np.nonzero(valid)[0]:
        others = cost[valid]
        dominated = (others <= cost[i]).all(axis=1) & (others < cost[i]).any(axis=1)
        mask[i] = not dominated.any()
    return mask


def pareto_rows(rows: Sequence[dict[str, Any]], objectives: Sequence[Objective]) -> list[dict[str, Any]]:
    """The front's rows, sorted by the first objective (best first)."""
    mask = pareto_mask(rows, objectives)
    col, sense = objectives[0]
    front = [r for r, m in zip(rows, mask) if m]
    return sorted(front, key=lambda r: _value(r, col) * (1 if sense == "min" else -1))
