"""Shift-add PE: cocotb regression on Verilator against the golden model (through
:mod:`peforge.sim.shiftadd`), and ``peforge verify shiftadd`` end to end.

CI sample: one Verilator build (int8 x int4 bit-serial, 2 lanes, 1 stage, per-group FP16
dequantisation: exercises the adapter, the input-rate bubbles, the serial datapath and the
FP32 dequantisation): every activation x weight code pair, the corner sets, long extreme
chains and random chains.  ``-m slow`` adds one PE per mode and scale format.
"""

from __future__ import annotations

import json

import pytest
from regress import verified
from typer.testing import CliRunner

from peforge.cli import app
from peforge.spec import ShiftAddSpec

CI_SPEC = ShiftAddSpec("int8", "int4", "bitserial", lanes=2, stages=1, group=4, scale="fp16")


@pytest.mark.sim
def test_ci_sample_bitserial_grouped() -> None:
    res = verified(CI_SPEC, 20_000, exhaustive=True)
    assert res.sets["exhaustive_pairs"] >= 256 * 16
    assert res.sets["corner:min_act_and_zero_weights"] > 0 and res.sets["long_extreme"] > 0
    assert res.sets["random"] >= 20_000 - 2_500 and res.sets["random_gaps"] > 0


@pytest.mark.sim
def test_cli_verify_summary() -> None:
    """Same PE (cached build): the CLI prints a JSON summary and exits 0."""
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "verify",
            "shiftadd",
            "--act",
            "int8",
            "--weight",
            "int4",
            "--mode",
            "bitserial",
            "--lanes",
            "2",
            "--stages",
            "1",
            "--group",
            "4",
            "--scale",
            "fp16",
            "--vectors",
            "3000",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["spec"] == CI_SPEC.name and summary["mismatches"] == 0 and summary["checked"] > 3000


SLOW = [
    dict(act="int8", weight="pot5", mode="pot"),
    dict(act="e4m3fn", weight="pot4", mode="pot", lanes=4, stages=2),
    dict(act="int8", weight="apot6", mode="apot", lanes=2, stages=1, acc_bits=23, overflow="saturate"),
    dict(act="e5m2", weight="apot5", mode="apot", group=16, scale="bf16"),
    dict(act="int8", weight="int8", mode="shiftadd-int", lanes=4, stages=3, group=32, scale="e8m0fnu"),
    dict(act="uint8", weight="int4", mode="shiftadd-int", acc_bits=16),
    dict(act="int8", weight="int8", mode="bitserial"),
    dict(act="uint8", weight="uint4", mode="bitserial", stages=4, acc_bits=14, overflow="saturate"),
    dict(act="int16", weight="pot6", mode="pot", lanes=2, group=8, scale="int8"),
    dict(act="e2m1fn", weight="uint2", mode="bitserial", lanes=8, group=2, scale="uint4"),
    dict(act="int8", weight="pot4", mode="pot", lanes=4, stages=1, group=512, scale="fp16"),  # long groups
]


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("kw", SLOW, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_slow_matrix(kw: dict) -> None:
    spec = ShiftAddSpec(**kw)
    verified(spec, 100_000, exhaustive=spec.act.num_codes << spec.weight.bits <= 1 << 20, seed=3)
