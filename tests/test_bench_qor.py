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


def test_a_cell_whose_router_times_out_is_placed_with_the_next_seed(monkeypatch) -> None:
    """nextpnr's router may not converge on one placement: the cell is placed once more with
    the next seed and says so, instead of leaving a hole in the table."""
    from types import SimpleNamespace

    from rich.console import Console

    from peforge import fpga

    bench = _bench()
    tried: list[int] = []

    def place(rep, part, seed=1):
        tried.append(seed)
        if seed == 1:
            raise fpga.ToolError(
                "nextpnr-ecp5", ["nextpnr-ecp5"], None, "Info: routing", note="timeout after 3600 s", timed_out=True
            )
        return SimpleNamespace(fmax_mhz=50.0)

    monkeypatch.setattr(bench.fpga, "synthesize", lambda spec, target, dsp: SimpleNamespace(luts=10, ffs=5, dsps=1))
    monkeypatch.setattr(bench.fpga, "place_and_route", place)
    design = next(d for d in bench.DESIGNS if d.label == bench.BASELINE)
    row = bench._one(design, "0", bench.DEVICES[0], 1)
    assert tried == [1, 2] and row["seed"] == 2 and row["reseeded"] and row["fmax_mhz"] == 50.0
    ratios = dict.fromkeys(("luts_vs_hardfloat", "fmax_vs_hardfloat", "luts_vs_int8", "fmax_vs_int8"), 1.0)
    console = Console(record=True, width=200)
    console.print(bench.table([{**row, **ratios}]))
    assert "50.0 (seed 2)" in console.export_text()

    def broken(rep, part, seed=1):
        raise fpga.ToolError("nextpnr-ecp5", ["nextpnr-ecp5"], 1, "ERROR: failed to route")

    monkeypatch.setattr(bench.fpga, "place_and_route", broken)
    row = bench._one(design, "0", bench.DEVICES[0], 1)
    assert row["error"].startswith("ToolError: nextpnr-ecp5 exited with status 1")
