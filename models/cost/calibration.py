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
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from .components import FEATURES

__all__ = ["DATA_FILE", "load", "path"]

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
        raise RuntimeError(f"calibration {p} was fitted for features {data.get('features')}, this code uses "
                           f"{list(FEATURES)}: run `peforge calibrate` again")
    return data


def load() -> dict[str, Any]:
    """The parsed calibration (cached per file path)."""
    return _load(str(path()))
