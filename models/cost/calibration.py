"""The shipped calibration data: fitted coefficients, error bars, anchors, measurements.

``data/calibration.json`` is written by ``peforge calibrate`` (:func:`peforge.models.cost.fit.
write_calibration`) and read once, lazily, at the first estimate.  ``$PEFORGE_COST_CALIBRATION``
points at another file (e.g. a user's own calibration).  Its top-level keys:

``version``, ``created``, ``yosys_version``, ``nextpnr_version``, ``features``
    Provenance; ``features`` must equal :data:`.components.FEATURES`.
``targets``
    ``{target: {metric: [coefficient per feature]}}`` for ``ice40`` / ``ecp5`` / ``xilinx``
    (``luts``, ``carry``) and ``generic`` (``nand2``), ``family_scale`` (``{metric: {family:
    scale}}``), plus ``delay`` (``c0``, ``lut``, ``carry`` in ns) per FPGA target that has a
    place-and-route fit.
``error``
    ``{target: {metric: {"median", "p90", "max", "spearman", "n"}}}`` relative |error| on the
    held-out set (delay: leave-one-out over the place-and-route set).
``asic``
    ``um2_per_nand2`` and ``pj_per_nand2`` fitted to the 45 nm anchors, with the anchors.
``measurements``
    The synthesis results the fit and the error bars came from (training / held-out rows).

A family calibrated on its own sets (PE arrays: ``peforge calibrate --arrays``) ships beside it
as ``data/family_<name>.json`` (``family``, ``family_scale`` ``{target: {metric: scale}}``,
``family_coef`` ``{target: {metric: {feature: coefficient}}}`` for the features of its own
blocks, ``error`` ``{target: {metric: stats}}``, its measurements); :func:`load` merges it in
as that family's ``family_scale`` entries, ``targets[t]["family_coef"][<name>]`` and
``family_error[<name>]`` (see :func:`peforge.models.cost.estimate`), so the PE calibration file
itself stays as written.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from .components import FEATURES

__all__ = ["DATA_FILE", "load", "path", "family_files"]

DATA_FILE = Path(__file__).resolve().parent / "data" / "calibration.json"


def path() -> Path:
    """The calibration file in use (``$PEFORGE_COST_CALIBRATION`` or the shipped one)."""
    env = os.environ.get("PEFORGE_COST_CALIBRATION")
    return Path(env) if env else DATA_FILE


@lru_cache(maxsize=4)
def _load(p: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(p).read_text())
    except OSError as err:
        raise RuntimeError(f"no cost-model calibration at {p}: run `peforge calibrate` ({err})") from None
    if tuple(data.get("features", ())) != FEATURES:
        raise RuntimeError(
            f"calibration {p} was fitted for features {data.get('features')}, this code uses "
            f"{list(FEATURES)}: run `peforge calibrate` again"
        )
    for fam_file in family_files(Path(p)):
        _merge_family(data, json.loads(fam_file.read_text()), fam_file)
    return data


def family_files(calibration: Path) -> list[Path]:
    """The per-family calibration files beside ``calibration`` (``family_<name>.json``)."""
    return sorted(calibration.parent.glob("family_*.json"))


def _merge_family(data: dict[str, Any], fam: dict[str, Any], source: Path) -> None:
    name = fam.get("family")
    if not isinstance(name, str):
        raise RuntimeError(f"family calibration {source} names no family")
    for target, metrics in fam.get("family_scale", {}).items():
        tgt = data.get("targets", {}).get(target)
        if tgt is None:
            continue
        for metric, scale in metrics.items():
            tgt.setdefault("family_scale", {}).setdefault(metric, {})[name] = scale
    for target, metrics in fam.get("family_coef", {}).items():
        tgt = data.get("targets", {}).get(target)
        if tgt is not None:
            tgt.setdefault("family_coef", {})[name] = {m: dict(c) for m, c in metrics.items()}
    data.setdefault("family_error", {})[name] = fam.get("error", {})


def load() -> dict[str, Any]:
    """The parsed calibration (cached per file path)."""
    return _load(str(path()))
