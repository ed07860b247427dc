"""examples/int_vs_fp.py in its quick mode: every format and pair reported, and the 8-bit
result the INT-vs-FP paper's QSNR model predicts for Gaussian blocks (crest factor ~2.3:
INT8 about 11 dB above FP8 E4M3) holds for the bit-exact PEs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "int_vs_fp.py"


def _load():
    spec = importlib.util.spec_from_file_location("int_vs_fp", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_quick_run_reports_every_format_and_pair(capsys) -> None:
    mod = _load()
    out = mod.main(["--quick"])
    for f in mod.formats():
        assert f"| {f.name} |" in out
    for i, fp in mod.PAIRS:
        assert f"{i} vs {fp}:" in out
    q, kappa, costs = mod.measure(16, 256, 16)
    for t in ("gaussian", "student-t"):
        assert q["MXINT8", t, "none"][0] > q["MXFP8 E4M3", t, "none"][0] + 5
    assert q["MXINT8", "outliers", "none"][0] > q["MXFP8 E4M3", "outliers", "none"][0]
    # the paper's QSNR model for INT8 blocks: 10.8 + 6.02 * 7 - 20 log10(1.5 * kappa) dB
    model = 10.8 + 6.02 * 7 - 20 * np.log10(1.5 * kappa["gaussian", "none"])
    assert abs(q["MXINT8", "gaussian", "none"][0] - model) < 3.0
    assert costs["rotation"][2] > 0 and costs["MXINT8"][1] < costs["MXFP8 E4M3"][1]
