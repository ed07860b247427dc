"""Evaluate one design point: cost, throughput, energy and numerical quality -> one flat row.

Everything dispatches on the spec type (``peforge.models.cost.estimate``,
``peforge.models.golden.matmul``), so a new PE family is swept without touching this module.
A failing part (no cost model for a target, no golden matmul for a family, a tool error) is
recorded in the row's ``error`` column and the rest of the row is still filled.

Columns: identity (``key``, ``label``, ``family``, ``spec``, ``target``, ``options``,
``spec_json``), ``cost_*`` (the cost estimate, flattened), ``macs_per_cycle`` (of the measured
mode for a run-time-mode PE), ``throughput_gmacs`` (MACs/cycle x Fmax), ``energy_pj_per_mac``,
``rotation_*`` and ``energy_pj_per_mac_with_rotation`` (a point with ``matmul = { rotation =
"hadamard" | "random-hadamard", rotation_block = b }``: the activation rotation unit of
:mod:`peforge.models.cost.rotation`, amortised over the GEMM's ``m`` output columns; a weight
rotation is offline and free), ``luts_per_mac_per_cycle`` /
``gates_per_mac_per_cycle`` (area per unit of throughput), ``synth_*`` (with ``--synth``: Yosys counts,
nextpnr Fmax on ice40 / ecp5), per tensor workload
``<w>_sqnr_db`` and ``<w>_rel_err`` (tensor files also per layer), per network ``<net>_acc`` and
``<net>_acc_drop`` (float32 baseline minus PE accuracy) and its other metrics, per workload
``<w>_overflow_frac`` / ``<w>_nan_frac`` (fraction of the PE's outputs that overflowed to +-inf or
went NaN: computed as the hardware would, not an error), the means ``sqnr_db_mean`` and
``accuracy_mean``, the worst ``overflow_frac_max`` / ``nan_frac_max``, and the
provenance columns :data:`PROVENANCE` (which differ between runs; every other column is
identical whichever executor computed it).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..workloads.registry import WorkloadDef, define, resolve
from .space import DEFAULT_WORKLOADS, Point, TensorSettings

__all__ = [
    "EvalSettings",
    "evaluate",
    "evaluate_many",
    "evaluate_dicts",
    "cost_of",
    "synth_of",
    "prepare",
    "baselines",
    "PROVENANCE",
]

PROVENANCE = ("eval_seconds", "worker", "finished_at")
_PNR_DEVICES = {"ice40": "hx8k", "ecp5": "25k"}


@dataclass(frozen=True)
class EvalSettings:
    """What to measure at every point (picklable: sent to pool and Dask workers)."""

    workloads: tuple[Any, ...] = DEFAULT_WORKLOADS  # built-in names and WorkloadDefs
    tensor: TensorSettings = field(default_factory=TensorSettings)
    synth: bool = False
    space_digest: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "workloads": [w if isinstance(w, str) else w.to_dict() for w in self.workloads],
            "tensor": {"shape": list(self.tensor.shape), "seed": self.tensor.seed},
            "synth": self.synth,
            "space_digest": self.space_digest,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvalSettings":
        t = d["tensor"]
        wls = tuple(w if isinstance(w, str) else WorkloadDef.from_dict(w) for w in d["workloads"])
        return cls(wls, TensorSettings(tuple(t["shape"]), t["seed"]), d["synth"], d["space_digest"])


def _flatten(prefix: str, data: Mapping[str, Any], out: dict[str, Any]) -> None:
    for k, v in data.items():
        name = f"{prefix}_{k}"
        if isinstance(v, Mapping):
            _flatten(name, v, out)
        elif isinstance(v, (list, tuple)):
            out[name] = json.dumps(v)
        else:
            out[name] = v


def cost_of(spec: Any, target: str) -> dict[str, Any]:
    """The analytic cost estimate of ``spec`` on ``target`` as a dict (the one cost call)."""
    from ..models import cost

    estimate = getattr(cost, "estimate", None)
    if estimate is None:
        raise RuntimeError("peforge.models.cost.estimate is not available in this build")
    return dict(estimate(spec, target).to_dict())


def synth_of(spec: Any, target: str) -> dict[str, Any]:
    """Yosys resource counts (and nextpnr Fmax on ice40/ecp5) through the fpga result cache."""
    from .. import fpga

    synth_target = "generic" if target.startswith("asic") else target  # NAND2-equivalent gates
    rep = fpga.synthesize(spec, synth_target)
    out: dict[str, Any] = {
        "luts": rep.luts,
        "carry": rep.carry,
        "ffs": rep.ffs,
        "dsps": rep.dsps,
        "nand2_eq": rep.nand2_eq,
    }
    if synth_target in _PNR_DEVICES:
        out["fmax_mhz"] = fpga.place_and_route(rep, _PNR_DEVICES[synth_target]).fmax_mhz
    return out


def workloads_of(settings: EvalSettings) -> list[Any]:
    """The :class:`peforge.workloads.base.Workload` objects of ``settings`` (cached per process)."""
    return [resolve(define(w), settings.tensor.shape, settings.tensor.seed) for w in settings.workloads]


def prepare(settings: EvalSettings) -> None:
    """Load data, train or load the networks and run every float baseline once (call before
    fanning out to workers, which inherit them)."""
    for wl in workloads_of(settings):
        wl.prepare()


def baselines(settings: EvalSettings) -> dict[str, float]:
    """Float reference numbers for the report: network metrics (``accuracy_mean`` over the
    networks), float32 GEMM SQNR of the tensor workloads."""
    out: dict[str, float] = {}
    accs = []
    for wl in workloads_of(settings):
        base = wl.baseline()
        out.update({f"{wl.name}_{k}": v for k, v in base.items()})
        if wl.kind == "network" and "acc" in base:
            accs.append(base["acc"])
    if accs:
        out["accuracy_mean"] = float(np.mean(accs))
    return out


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def _full_block(settings: EvalSettings) -> int:
    """Rotation block of a whole-``k`` rotation (``rotation_block`` unset): ``k`` padded to a power of two."""
    return max(2, 1 << (settings.tensor.shape[1] - 1).bit_length())


def _cost_columns(point: Point, settings: EvalSettings) -> tuple[dict[str, Any], list[str]]:
    row: dict[str, Any] = {}
    errors: list[str] = []
    try:
        _flatten("cost", cost_of(point.spec, point.target), row)
    except Exception as err:  # noqa: BLE001 - recorded in the row, never crashes a sweep
        errors.append(f"cost: {type(err).__name__}: {err}")
    macs, fmax = row.get("cost_macs_per_cycle"), row.get("cost_fmax_mhz")
    e = row.get("cost_energy_pj_per_mac")
    mode = dict(point.options).get("mode")
    if isinstance(mode, int) and hasattr(point.spec, "modes"):
        mode = point.spec.modes[mode]
    by_mode = row.get(f"cost_notes_macs_per_cycle_by_mode_{mode}")
    if by_mode:  # a run-time mode (SIMD): its MACs/cycle; the whole datapath's energy per op
        macs = by_mode
        per_op = row.get("cost_energy_pj_per_op")
        e = per_op / macs if per_op is not None else e
    row["macs_per_cycle"] = math.nan if macs is None else macs
    row["throughput_gmacs"] = macs * fmax / 1e3 if macs is not None and fmax is not None else math.nan
    row["energy_pj_per_mac"] = math.nan if e is None else e
    opts = dict(point.options)
    if opts.get("rotation", "none") != "none":  # the activation rotation unit beside the PE
        try:
            from ..models.cost.rotation import rotation_cost

            rc = rotation_cost(
                opts["rotation"], opts.get("rotation_block") or _full_block(settings), reuse=settings.tensor.shape[2]
            )
            row.update(
                rotation_luts=rc.luts,
                rotation_gates_nand2=rc.gates_nand2,
                rotation_energy_pj_per_mac=rc.energy_pj_per_mac,
                energy_pj_per_mac_with_rotation=(math.nan if e is None else e + (rc.energy_pj_per_mac or 0.0)),
            )
        except Exception as err:  # noqa: BLE001
            errors.append(f"rotation cost: {type(err).__name__}: {err}")
    for col, key in (("luts_per_mac_per_cycle", "cost_luts"), ("gates_per_mac_per_cycle", "cost_gates_nand2")):
        area = row.get(key)
        if area is not None and macs:
            row[col] = area / macs  # area per unit of throughput (a PE array: all its PEs and movement)
    if settings.synth:
        try:
            _flatten("synth", synth_of(point.spec, point.target), row)
            if macs is not None and row.get("synth_fmax_mhz") is not None:
                row["synth_throughput_gmacs"] = macs * row["synth_fmax_mhz"] / 1e3
        except Exception as err:  # noqa: BLE001
            errors.append(f"synth: {type(err).__name__}: {err}")
    return row, errors


def _quality_columns(point: Point, settings: EvalSettings) -> tuple[dict[str, Any], list[str]]:
    from ..workloads.pe import PEMatmul

    row: dict[str, Any] = {}
    errors: list[str] = []
    sqnrs, accs, overflow, nan = [], [], [], []
    try:
        matmul = PEMatmul(point.spec, dict(point.options))
        wls = workloads_of(settings)
    except Exception as err:  # noqa: BLE001 - recorded in the row, never crashes a sweep
        return {"sqnr_db_mean": math.nan, "accuracy_mean": math.nan}, [f"quality: {type(err).__name__}: {err}"]
    for wl in wls:
        try:
            matmul.reset()
            metrics = wl.score(matmul)
            counts = matmul.reset()
            row.update({f"{wl.name}_{k}": v for k, v in metrics.items()})
            if wl.kind == "tensor":
                sqnrs.append(metrics.get("sqnr_db", math.nan))
            elif "acc" in metrics:
                row[f"{wl.name}_acc_drop"] = wl.baseline()["acc"] - metrics["acc"]
                accs.append(metrics["acc"])
            row[f"{wl.name}_overflow_frac"] = counts.overflow_frac
            row[f"{wl.name}_nan_frac"] = counts.nan_frac
            overflow.append(counts.overflow_frac)
            nan.append(counts.nan_frac)
        except Exception as err:  # noqa: BLE001
            errors.append(f"{wl.name}: {type(err).__name__}: {err}")
    row["sqnr_db_mean"] = _mean(sqnrs)
    row["accuracy_mean"] = _mean(accs)
    row["overflow_frac_max"] = max(overflow) if overflow else math.nan
    row["nan_frac_max"] = max(nan) if nan else math.nan
    return row, errors


def evaluate_many(points: list[Point], settings: EvalSettings) -> list[dict[str, Any]]:
    """Rows of ``points``; the quality of each distinct (spec, options) is measured once and
    shared by its targets (it does not depend on the target)."""
    t0 = time.perf_counter()
    quality: dict[tuple[str, tuple], tuple[dict[str, Any], list[str]]] = {}
    rows = []
    for point in points:
        spec = point.spec
        row: dict[str, Any] = {
            "key": point.key,
            "label": point.label,
            "family": spec.family,
            "spec": spec.name,
            "target": point.target,
            "options": json.dumps(dict(point.options), sort_keys=True),
            "spec_json": spec.to_json(),
            "space": settings.space_digest,
        }
        cost_cols, errors = _cost_columns(point, settings)
        qkey = (spec.to_json(), point.options)
        if qkey not in quality:
            quality[qkey] = _quality_columns(point, settings)
        q_cols, q_errors = quality[qkey]
        row.update(cost_cols)
        row.update(q_cols)
        errors = errors + q_errors
        row["status"] = "error" if errors else "ok"
        row["error"] = "; ".join(errors)
        rows.append(row)
    seconds = round(time.perf_counter() - t0, 4)
    for row in rows:
        row["eval_seconds"] = seconds  # of the whole task that computed the row
        row["worker"] = f"{socket.gethostname()}:{os.getpid()}"
        row["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return rows


def evaluate(point: Point, settings: EvalSettings) -> dict[str, Any]:
    """One result row for ``point`` (see the module docstring for the columns)."""
    return evaluate_many([point], settings)[0]


def evaluate_dicts(points: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """:func:`evaluate_many` on plain dicts (what process-pool and Dask tasks receive)."""
    return evaluate_many([Point.from_dict(p) for p in points], EvalSettings.from_dict(settings))
