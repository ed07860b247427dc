"""Fitting the cost model to synthesis results, and measuring its error (NumPy only).

Per target and metric the coefficients minimise the *relative* squared error over the training
set, non-negative (Lawson-Hanson NNLS), so every block costs something and small designs weigh
as much as large ones.  One multiplicative scale per PE family (geometric mean of its training
ratios, shrunk towards 1 by :data:`FAMILY_SHRINK` pseudo-rows) absorbs what a family's mapping
shares beyond its blocks; coefficients and scales are fitted alternately.  The error bars are measured on the held-out set, which the fit never
sees; the delay fit (few place-and-route runs) reports leave-one-out errors instead.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from peforge import spec as spec_mod
from peforge.spec import Spec

from .assembly import assemble
from .calibration import DATA_FILE
from .components import FEATURES
from .model import (
    FPGA_TARGETS,
    _segment_chains,
    fabric_ffs,
    features,
    group_scale,
    scale_group,
    scaled_features,
    split_features,
)

__all__ = [
    "nnls",
    "spearman",
    "error_stats",
    "fit_family_scaled",
    "FAMILY_SHRINK",
    "fit_scaled",
    "fit_delay",
    "write_calibration",
    "HOROWITZ_45NM",
    "VERSION",
    "measured_value",
]

VERSION = 2
#: Pseudo-rows at scale 1 that a family scale is shrunk with (few rows: scale near 1).
FAMILY_SHRINK = 2.0
#: Coefficients the structure fixes instead of the fit, per (target, metric): a 7-series
#: flip-flop's clock enable is a free pin (FDRE), so a loaded-under-condition register costs no
#: LUT there; fitted freely, that coefficient trades off against the ``lone`` gates it appears
#: beside in DSP-cascade accumulators.
#: On iCE40 a carry-save full adder is two LUT4s (its sum, a 3-input XOR, and its carry, a
#: majority: no carry chain serves a carry-save row); fitted freely the price sinks towards the
#: big trees' shared logic and under-prices small sums (tests/test_cost.py checks one against
#: Yosys).
FIXED_COEF: dict[tuple[str, str], dict[str, float]] = {
    ("xilinx", "luts"): {"ffe": 0.0},
    ("ice40", "luts"): {"csa": 2.0},
}

#: (label, kind, bits, energy pJ, area um^2): Horowitz, ISSCC 2014, 45 nm 0.9 V.
HOROWITZ_45NM = (
    ("8-bit int add", "add", 8, 0.03, 36.0),
    ("32-bit int add", "add", 32, 0.1, 137.0),
    ("8-bit int multiply", "mul", 8, 0.2, 282.0),
    ("32-bit int multiply", "mul", 32, 3.1, 3495.0),
)

#: nextpnr device -> the target whose delay it calibrates.
PNR_DEVICES = {"hx8k": "ice40", "25k": "ecp5"}

_METRICS = {"ice40": ("luts", "carry"), "ecp5": ("luts", "carry"), "xilinx": ("luts", "carry"), "generic": ("nand2",)}


def nnls(a: np.ndarray, b: np.ndarray, iters: int = 500) -> np.ndarray:
    """argmin ||a x - b|| subject to x >= 0 (Lawson-Hanson active set)."""
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, bool)
    w = a.T @ (b - a @ x)
    for _ in range(iters):
        if passive.all() or (w[~passive] <= 1e-10 * max(1.0, np.abs(w).max())).all():
            break
        j = int(np.argmax(np.where(passive, -np.inf, w)))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            passive &= x > 1e-12
        w = a.T @ (b - a @ x)
    return x


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation (average ranks for ties)."""

    def ranks(values: ArrayLike) -> np.ndarray:
        v = np.asarray(values, float)
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for val in np.unique(v):  # ties share their mean rank
            idx = v == val
            r[idx] = r[idx].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def error_stats(est: Sequence[float], meas: Sequence[float]) -> dict[str, float]:
    """Relative |error| statistics (median, p90, max, n) and Spearman of ``est`` vs ``meas``."""
    e, m = np.asarray(est, float), np.asarray(meas, float)
    keep = m > 0
    rel = np.abs(e[keep] - m[keep]) / m[keep]
    if not len(rel):
        return {"median": float("nan"), "p90": float("nan"), "max": float("nan"), "spearman": float("nan"), "n": 0}
    return {
        "median": round(float(np.median(rel)), 4),
        "p90": round(float(np.percentile(rel, 90)), 4),
        "max": round(float(rel.max()), 4),
        "spearman": round(spearman(e, m), 4),
        "n": int(len(rel)),
    }


def measured_value(row: Mapping[str, Any], metric: str) -> float:
    return float(row["nand2_eq"] if metric == "nand2" else row[metric])


def _spec(row: Mapping[str, Any]) -> Spec:
    return spec_mod.from_dict(dict(row["spec"]))


def _design_matrix(
    rows: Sequence[Mapping[str, Any]], target: str, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features per row, their shared-block part, measured ``metric`` per row, family per row)."""
    specs = [_spec(r) for r in rows]
    split = [split_features(assemble(s), target) for s in specs]
    x = np.array([f for f, _, _ in split])
    xs = np.array([fs for _, fs, _ in split])
    y = np.array([measured_value(r, metric) for r in rows])
    return x, xs, y, np.array([scale_group(s) for s in specs])


def fit_family_scaled(
    rows: Sequence[Mapping[str, Any]], target: str, metric: str, iters: int = 10, shrink: float = FAMILY_SHRINK
) -> tuple[np.ndarray, dict[str, float]]:
    """Coefficients and one scale per family (per :func:`.model.scale_group`: a family's
    deferred and exact accumulators apart): ``metric ~ coef . (scale[group] * own + shared)``
    (see :func:`.model.scaled_features`), non-negative coefficients fitting the relative error.

    Alternates an NNLS fit of the coefficients with a closed-form update of each scale: the
    geometric mean over the family of ``(measured - shared) / own``, shrunk towards 1 by
    ``shrink`` pseudo-rows."""
    x, xs, y, fams = _design_matrix(rows, target, metric)
    keep = y > 0
    scale = {str(f): 1.0 for f in sorted(set(fams))}
    coef = np.zeros(x.shape[1])
    fixed = {FEATURES.index(k): v for k, v in FIXED_COEF.get((target, metric), {}).items()}
    free = np.array([i not in fixed for i in range(x.shape[1])])
    for i, v in fixed.items():
        coef[i] = v
    for _ in range(iters):
        sv = np.array([scale[f] for f in fams])[:, None]
        a = (sv * (x - xs) + xs)[keep] / y[keep, None]
        coef[free] = nnls(a[:, free], 1.0 - a[:, ~free] @ coef[~free])
        own, common = (x - xs) @ coef, xs @ coef
        for f in scale:
            m = (fams == f) & keep & (own > 0)
            # a row whose shared part alone exceeds the measurement still votes for a small scale
            ratio = np.maximum(y[m] - common[m], 0.05 * y[m]) / own[m]
            scale[f] = float(np.exp(np.log(ratio).sum() / (m.sum() + shrink))) if m.any() else 1.0
    return coef, {f: round(v, 5) for f, v in scale.items()}


def fit_scaled(rows: Sequence[Mapping[str, Any]], target: str, metric: str, base: np.ndarray) -> np.ndarray:
    """``k * base`` with the one scale ``k`` fitted (relative least squares) on ``rows``."""
    x, _, y, _ = _design_matrix(rows, target, metric)
    a = (x @ base) / y
    k = float(a.sum() / (a @ a)) if (a @ a) > 0 else 0.0
    return base * k


def _segments(spec: Spec, dsp_kind: str = "") -> list[list[float]]:
    """``[lut levels, carry bits, DSP ns]`` per pipeline segment; ``dsp_kind`` (a row placed with
    its multipliers in DSP blocks, e.g. ``ecp5``): the blocks leave the chains and add their
    own delay, as :func:`peforge.models.cost.model.segment_delays` prices them."""
    net = assemble(spec)
    if dsp_kind:
        return [list(v) for v in _segment_chains(net, dsp_kind).values()] or [[0.0, 0.0, 0.0]]
    return [[*v, 0.0] for v in net.depth.values()] or [[0.0, 0.0, 0.0]]


def _row_segments(row: Mapping[str, Any]) -> list[list[float]]:
    return _segments(_spec(row), str(row.get("dsp_kind") or ""))


def fit_delay(rows: Sequence[Mapping[str, Any]], iters: int = 6) -> dict[str, float]:
    """``c0 + lut * levels + carry * carry_bits`` (+ a DSP block's own delay, fixed) fitted to
    nextpnr critical paths (1000/Fmax) of the slowest segment of each row."""
    segs = [_row_segments(r) for r in rows]
    y = np.array([1000.0 / float(r["fmax_mhz"]) for r in rows])
    c = np.array([1.0, 1.0, 0.1])
    for _ in range(iters):  # the critical segment depends on the coefficients: iterate
        crit = [max(s, key=lambda t: c[1] * t[0] + c[2] * t[1] + t[2]) for s in segs]
        x = np.array([[1.0, t[0], t[1]] for t in crit])
        rest = y - np.array([t[2] for t in crit])  # the DSP blocks' fixed delay
        c = nnls(x / y[:, None], rest / y)
    return {"c0": round(float(c[0]), 4), "lut": round(float(c[1]), 4), "carry": round(float(c[2]), 4)}


def _delay_of(row: Mapping[str, Any], d: Mapping[str, float]) -> float:
    return max(d["c0"] + d["lut"] * s[0] + d["carry"] * s[1] + s[2] for s in _row_segments(row))


def _anchors(rows: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, Any]:
    """um^2 and pJ per NAND2 equivalent: geometric means of published / synthesised over the
    45 nm integer anchors (each synthesised by the same generic flow as the PEs)."""
    out: list[dict[str, Any]] = []
    ga, ge = [], []
    for label, kind, bits, pj, um2 in HOROWITZ_45NM:
        row = rows.get((f"anchor:{kind}{bits}", "generic"))
        if row is None or not row.get("nand2_eq"):
            raise RuntimeError(f"no synthesised anchor {kind}{bits}: run `peforge calibrate` (it synthesises them)")
        gates = float(row["nand2_eq"])
        out.append({"label": label, "energy_pj": pj, "area_um2": um2, "synth_nand2": gates})
        ga.append(um2 / gates)
        ge.append(pj / gates)
    um2_per = float(np.exp(np.mean(np.log(ga))))
    pj_per = float(np.exp(np.mean(np.log(ge))))
    for r in out:
        r["model_area_um2"] = round(r["synth_nand2"] * um2_per, 1)
        r["model_energy_pj"] = round(r["synth_nand2"] * pj_per, 4)
    return {
        "um2_per_nand2": round(um2_per, 5),
        "pj_per_nand2": round(pj_per, 7),
        "anchors": out,
        "rule": "geometric mean of published / synthesised (generic flow, NAND2 eq.) over the four "
        "45 nm integer anchors: 8/32-bit add (N-bit sum), 8/32-bit multiply (2N-bit product)",
    }


def _slim(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "name",
        "target",
        "spec",
        "luts",
        "carry",
        "ffs",
        "dsps",
        "nand2_eq",
        "fmax_mhz",
        "critical_path_ns",
        "seconds",
        "options",
    )
    return {k: row[k] for k in keys if k in row and row[k] is not None}


def write_calibration(
    rows: Mapping[tuple[str, str], Mapping[str, Any]],
    sets: Mapping[str, Sequence[Spec]],
    *,
    out: Path | str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Fit every target on the training rows, measure the held-out error, write the data file."""
    names = {k: {s.name for s in v} for k, v in sets.items()}
    rows = {k: r for k, r in rows.items()}
    targets: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    kept: dict[str, list[dict[str, Any]]] = {"training": [], "heldout": [], "pnr": []}
    versions = sorted({r.get("yosys_version", "") for r in rows.values() if r.get("yosys_version")})
    for target, metrics in _METRICS.items():
        train = [r for (n, t), r in sorted(rows.items()) if t == target and n in names["training"]]
        held = [r for (n, t), r in sorted(rows.items()) if t == target and n in names["heldout"]]
        # very few points (< 8): borrow the iCE40 shape and fit one scale; else NNLS (sparse anyway)
        small = len(train) < 8 and "ice40" in targets and target != "ice40"
        if len(train) < (4 if small else 8):
            log(f"{target}: only {len(train)} training rows, skipped")
            continue
        targets[target] = {}
        errors[target] = {}
        for metric in metrics:
            scale: dict[str, float] = {}
            if small and metric in targets["ice40"]:  # few points: the iCE40 shape times one fitted scale
                coef = fit_scaled(train, target, metric, np.array(targets["ice40"][metric]))
                errors[target].setdefault(
                    "method", f"iCE40 coefficients x one scale per metric ({len(train)} training specs)"
                )
            else:
                coef, scale = fit_family_scaled(train, target, metric)
                targets[target].setdefault("family_scale", {})[metric] = scale
            targets[target][metric] = [round(float(c), 6) for c in coef]
            est = [
                float(
                    np.dot(
                        coef,
                        scaled_features(
                            assemble(s),
                            target,
                            group_scale(scale, scale_group(s)),
                        ),
                    )
                )
                for s in map(_spec, held)
            ]
            errors[target][metric] = error_stats(est, [measured_value(r, metric) for r in held])
            errors[target][metric]["train_n"] = len(train)
        errors[target]["ffs"] = error_stats(
            [fabric_ffs(assemble(_spec(r)), target) for r in held], [r["ffs"] for r in held]
        )
        if target in FPGA_TARGETS:
            errors[target]["dsps"] = {
                "exact": sum(features(assemble(_spec(r)), target)[1] == r["dsps"] for r in held),
                "n": len(held),
            }
        kept["training"] += [_slim(r) for r in train]
        kept["heldout"] += [_slim(r) for r in held]
        log(f"{target}: {len(train)} training, {len(held)} held-out: {errors[target]}")
    for device, target in PNR_DEVICES.items():
        pnr = [
            r for (n, t), r in sorted(rows.items()) if t in (f"pnr-{device}", f"pnr-{device}-dsp") and r.get("fmax_mhz")
        ]
        if len(pnr) < 4:
            continue
        d = fit_delay(pnr)
        targets.setdefault(target, {})["delay"] = d
        loo = []
        for i in range(len(pnr)):  # leave-one-out: the honest error of a small fit
            di = fit_delay(pnr[:i] + pnr[i + 1 :])
            loo.append(_delay_of(pnr[i], di))
        errors.setdefault(target, {})["delay_ns"] = {
            **error_stats(loo, [1000.0 / r["fmax_mhz"] for r in pnr]),
            "method": f"leave-one-out, nextpnr {device}",
        }
        kept["pnr"] += [_slim(r) for r in pnr]
        log(f"{target} delay ({device}): {d}; leave-one-out {errors[target]['delay_ns']}")
    if "generic" not in targets:
        raise RuntimeError("no generic (gate-count) fit: the ASIC anchors need it")
    data = {
        "version": VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "yosys_version": versions[-1] if versions else None,
        "nextpnr_version": next((r.get("nextpnr_version") for r in pnr if r.get("nextpnr_version")), None),
        "features": list(FEATURES),
        "targets": targets,
        "error": errors,
        "asic": _anchors(rows),
        "sets": {k: sorted(v) for k, v in names.items()},
        "measurements": kept,
    }
    path = Path(out) if out is not None else DATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    log(f"wrote {path}")
    return path
