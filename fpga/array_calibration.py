"""Calibration of the PE-array cost composition against Yosys (``peforge calibrate --arrays``).

Synthesises the seeded array sets of :func:`peforge.models.cost.array.array_sets` (training and
held-out, never sharing a spec) for each target through :func:`peforge.fpga.calibrate.measure`
(cached; rows go to ``build/cost/array_measurements.jsonl``), fits the coefficients of the array's
own glue per target and metric (:func:`peforge.models.cost.array.fit_arrays`) and writes
``models/cost/data/family_array.json``, which :func:`peforge.models.cost.calibration.load`
merges into the PE calibration: estimates of arrays then carry the arrays' own held-out error
bars.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from peforge.spec import Spec

from .calibrate import default_store, load_measurements, measure

__all__ = ["ARRAY_TARGETS", "array_store", "family_file", "stale_arrays", "calibrate_arrays"]

#: Targets the array composition is calibrated on.
ARRAY_TARGETS = ("generic", "ecp5", "ice40")


def array_store() -> Path:
    """``build/cost/array_measurements.jsonl`` beside the PE measurement store."""
    return default_store().with_name("array_measurements.jsonl")


def family_file() -> Path:
    """The shipped array calibration file (``family_array.json`` beside the PE calibration)."""
    from peforge.models.cost import calibration

    return calibration.DATA_FILE.with_name("family_array.json")


def stale_arrays(specs: Sequence[Spec], store: Path, targets: Sequence[str]) -> list[Spec]:
    """The specs whose stored rows (any of ``targets``) were synthesised from other Verilog than
    the spec generates now (a PE's RTL changed since): :func:`measure` skips stored pairs by name,
    so these must be measured again."""
    from .design import as_design

    rows = load_measurements(store)
    out = []
    for spec in specs:
        keys = {rows[(spec.name, t)].get("design_key") for t in targets if (spec.name, t) in rows}
        if keys and keys != {as_design(spec).key}:
            out.append(spec)
    return out


def calibrate_arrays(
    *,
    targets: Sequence[str] = ARRAY_TARGETS,
    jobs: int = 1,
    store: Path | str | None = None,
    out: Path | str | None = None,
    refit: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Measure (unless ``refit``) the array sets, fit, write the family file; returns its path."""
    from peforge.models.cost import array as cost_array
    from peforge.models.cost import calibration

    path = Path(store) if store is not None else array_store()
    training, heldout = cost_array.array_sets()
    if not refit:
        stale = stale_arrays([*training, *heldout], path, targets)
        if stale:
            log(f"arrays re-measured (their Verilog changed since stored): {sorted(s.name for s in stale)}")
            measure(stale, targets, jobs=jobs, store=path, reuse=False, log=log)
        for name, specs in (("training", training), ("heldout", heldout)):
            log(f"arrays {name}: {len(specs)} arrays x {list(targets)}")
            measure(specs, targets, jobs=jobs, store=path, log=log)
    rows = load_measurements(path)
    names = {s.name for s in [*training, *heldout]}
    rows = {k: v for k, v in rows.items() if k[0] in names and k[1] in targets}
    if not rows:
        raise RuntimeError(f"no array measurements in {path}: run `peforge calibrate --arrays` without --refit")
    dest = Path(out) if out is not None else family_file()
    data = cost_array.fit_arrays(rows, training, heldout, targets)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, dest)
    calibration._load.cache_clear()
    for target, metrics in data["error"].items():
        for metric, st in metrics.items():
            plain = data["error_unfitted"].get(target, {}).get(metric, {})
            log(
                f"{target:8s} {metric:6s} held-out n={st['n']}: median {st['median']:.1%}, worst {st['max']:.1%}, "
                f"Spearman {st['spearman']:.3f}, exact {st['exact']} (glue priced by the PE fit: median "
                f"{plain.get('median', float('nan')):.1%}, worst {plain.get('max', float('nan')):.1%})"
            )
    return dest
