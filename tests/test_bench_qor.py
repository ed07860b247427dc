"""bench/qor.py's designs build and its --fmax picks run (no synthesis: the bench itself measures)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from peforge.pipelining import pick_stages


def _bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "qor.py"
    if str(path.parent) not in sys.path:  # the bench imports its plumbing (bench/_common.py) by name
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("bench_qor", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_every_design_has_its_accumulator_and_a_pick_on_both_devices() -> None:
    bench = _bench()
    labels = [d.label for d in bench.DESIGNS]
    assert len(labels) == len(set(labels)) and bench.BASELINE in labels
    for d in bench.DESIGNS:
        if "deferred" in d.label:
            assert d.spec.rounding == "deferred" and d.spec.segment == 16
        if "exact" in d.label:
            assert d.spec.acc == "exact" and d.spec.segment == 16
        for _, target, _, scale in bench.DEVICES:
            pick = pick_stages(d.spec, target, d.goal_ecp5_mhz * scale)
            assert pick.spec.family == d.spec.family and pick.fmax_goal_mhz == d.goal_ecp5_mhz * scale
    assert {d.label for d in bench.DESIGNS if d.quick} >= {bench.BASELINE, "E4M3 MAC, FP32 per-step"}
