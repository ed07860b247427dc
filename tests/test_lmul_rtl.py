"""L-Mul MAC RTL (``mult="lmul"``): Amaranth-simulator runs against the Fraction reference
(:mod:`test_lmul_reference`), geometry, lint, determinism, manifest, and no multiplier left."""

from __future__ import annotations

import json
import re
import zlib

import numpy as np
import pytest
from test_lmul_reference import ref_run
from test_rtl_mac import BUILD, all_pairs, check_steps, long_steps, random_steps, sim_run

from peforge.spec import MinifloatMacSpec


def _check(spec: MinifloatMacSpec, steps, idle_every: int = 0) -> None:
    check_steps(spec, steps, idle_every, ref=ref_run)


_FAST = [
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=1, stages=0, mult="lmul"),
    MinifloatMacSpec("e5m2", "e4m3fn", "exact", lanes=4, stages=1, mult="lmul"),
    MinifloatMacSpec("e5m2", "e5m2", "bf16", lanes=4, stages=2, subnormals=False, mult="lmul"),
    MinifloatMacSpec("e2m3fn", "e3m2fn", "fp16", lanes=3, stages=1, mult="lmul"),
]


@pytest.mark.parametrize("spec", _FAST, ids=str)
def test_lmul_random(spec):
    _check(spec, random_steps(spec, 200, seed=zlib.crc32(spec.name.encode())), idle_every=9)


@pytest.mark.parametrize(
    "spec",
    [
        MinifloatMacSpec("e2m1fn", "e2m1fn", "bf16", mult="lmul"),
        MinifloatMacSpec("e2m1fn", "e3m2fn", "exact", lanes=2, mult="lmul"),
        MinifloatMacSpec("e3m2fn", "e2m1fn", "exact", subnormals=False, mult="lmul"),
    ],
    ids=str,
)
def test_lmul_all_code_pairs_small(spec):
    _check(spec, all_pairs(spec))


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec",
    [
        MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", mult="lmul"),
        MinifloatMacSpec("e5m2", "e5m2", "exact", mult="lmul"),
        MinifloatMacSpec("e3m2fn", "e2m3fn", "fp16", subnormals=False, mult="lmul"),
    ],
    ids=str,
)
def test_lmul_all_code_pairs(spec):
    _check(spec, all_pairs(spec))


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec",
    [
        MinifloatMacSpec("e2m1fn", "e2m1fn", "e5m2", lanes=1, mult="lmul"),
        MinifloatMacSpec("e4m3fn", "e4m3fn", "e5m2", lanes=4, mult="lmul"),
        MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=16, stages=3, mult="lmul"),
        MinifloatMacSpec("e3m4", "e3m4", "bf16", lanes=2, mult="lmul"),
    ],
    ids=str,
)
def test_lmul_long_and_wide(spec):
    _check(spec, long_steps(spec, 150, seed=4))
    _check(spec, random_steps(spec, 300, seed=5), idle_every=7)


def test_lmul_rtl_matches_golden_model():
    from peforge.models import golden

    spec = MinifloatMacSpec("e4m3fn", "e5m2", "fp32", lanes=4, stages=1, mult="lmul")
    steps = random_steps(spec, 150, seed=11)
    want = golden.run(
        spec,
        a=np.array([[s[0] for s in steps]]),
        b=np.array([[s[1] for s in steps]]),
        first=np.array([[bool(s[2]) for s in steps]]),
    )
    assert [g[0] for g in sim_run(spec, steps)] == [int(x) for x in want["acc"][0]]


@pytest.mark.parametrize(
    "name", ["e4m3fn", "e5m2", "e2m1fn", "e3m2fn", "e2m3fn", "e4m3fnuz", "e3m4", "e5m10", "bf16", "e2m0fin", "e3m0"]
)
def test_lmul_geometry_matches_spec(name):
    """The generator's widths agree with the spec's lmul product facts (Kulisch LSB, MSB)."""
    from peforge.rtl.mac import mac_geometry

    for other, sub in (("e4m3fn", True), ("e2m1fn", True), (name, True), ("e5m2", False), (name, False)):
        spec = MinifloatMacSpec(name, other, "exact", lanes=3, subnormals=sub, mult="lmul")
        g = mac_geometry(spec)
        assert g.lsb_exp == spec.product_lsb_exp
        assert g.span == spec.product_max_exp - spec.product_lsb_exp + 1
        assert g.acc_width == spec.exact_width


_LINT = [
    MinifloatMacSpec(mult="lmul"),
    MinifloatMacSpec("e5m2", "e2m1fn", "exact", lanes=4, stages=2, mult="lmul"),
    MinifloatMacSpec("e2m1fn", "e4m3fnuz", "bf16", lanes=16, stages=4, subnormals=False, mult="lmul"),
    MinifloatMacSpec("e3m0", "e2m3fn", "fp16", lanes=2, mult="lmul"),
]


@pytest.mark.parametrize("spec", _LINT, ids=str)
def test_lmul_verilog_lint_clean_deterministic_and_multiplier_free(spec):
    from peforge.rtl import generate, lint

    v1, j1 = generate(spec, BUILD / "lmul_det1")
    v2, j2 = generate(spec, BUILD / "lmul_det2")
    assert v1.read_bytes() == v2.read_bytes() and j1.read_bytes() == j2.read_bytes()
    assert spec.name.endswith("_lmul")
    lint(v1)
    text = v1.read_text()
    assert not re.search(r"\S \* \S", text), "a multiplier survived in the L-Mul datapath"
    exact = generate(MinifloatMacSpec(**_exact_of(spec)), BUILD / "lmul_det1")[0]
    assert re.search(r"\S \* \S", exact.read_text()), "the exact MAC should multiply"


def _exact_of(spec: MinifloatMacSpec) -> dict:
    d = spec.to_dict()
    d.pop("family")
    d["mult"] = "exact"
    return d


def test_lmul_manifest():
    from peforge.rtl import manifest

    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "exact", lanes=2, max_count=64, mult="lmul")
    man = manifest(spec)
    assert man["spec"]["mult"] == "lmul" and man["module"].endswith("_lmul")
    assert man["result"]["lsb_exp"] == spec.product_lsb_exp == -21
    assert man["result"]["width"] == spec.exact_width
    json.dumps(man)


def test_cli_generate_lmul():
    from typer.testing import CliRunner

    from peforge.cli import app

    out = BUILD / "lmul_cli"
    runner = CliRunner()
    res = runner.invoke(
        app, ["generate", "mac", "--a", "e4m3fn", "--b", "e5m2", "--acc", "fp32", "--mult", "lmul", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    name = "mac_e4m3fnxe5m2_fp32_l1_s0_lmul"
    assert json.loads((out / f"{name}.json").read_text())["spec"]["mult"] == "lmul"
    assert (out / f"{name}.v").read_text().count(f"module {name}(") == 1
    bad = runner.invoke(app, ["generate", "mac", "--mult", "approx"])
    assert bad.exit_code == 2 and "mult='approx'" in bad.output and "lmul" in bad.output
