"""The family contract, checked once for every family of :data:`peforge.families.FAMILIES` and
for the test-only families of :data:`TEST_FAMILIES`.

Per family: deterministic, lint-clean Verilog whose ports are the manifest's; the widths the
Verilog and the cost model have are the geometry's; spec JSON round trip; golden model against
the family's independent reference (its ``reference`` part: Python ints / Fractions) on a
seeded sample; a cost estimate for every target; energy for a workload; the CLI's generate /
cost / synth (and verify) on one spec; one design-space point.  Family-specific manifest
fields stay in the families' own test modules.

``TEST_FAMILIES`` holds a seventh family written from the contract alone, in four files under
``tests/family7/`` (spec + geometry + reference, generator, golden model + vector sets, cost):
this module adds it to the table with :func:`peforge.families.extended` for its own tests.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_shiftadd
from family7.spec import FAMILY as ZPMAC
from test_geometry import check_widths
from typer.testing import CliRunner

from peforge import families, rtl
from peforge import spec as spec_mod
from peforge.arrays import ArraySpec
from peforge.cli import app
from peforge.families import FAMILIES, Family
from peforge.models import cost, golden
from peforge.models.cost import energy
from peforge.spec import BlockDotSpec, IntMacSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec

BUILD = Path(__file__).resolve().parent.parent / "build" / "test_family_contract"
runner = CliRunner()

#: Lint / determinism sample beyond each family's examples (the specs the families' former
#: hand-copied lint tests covered); a family without an entry is checked on its examples.
LINT_SAMPLE: dict[str, list[Any]] = {
    "mac": [
        MinifloatMacSpec(),
        MinifloatMacSpec("e5m2", "e5m2", "exact", lanes=4, stages=2),
        MinifloatMacSpec("e2m1fn", "e4m3fnuz", "bf16", lanes=16, stages=4, subnormals=False),
        MinifloatMacSpec("e3m2fn", "e4m3fn", "fp16", lanes=3, stages=1),
        MinifloatMacSpec("e2m1fn", "e2m1fn", "exact", lanes=1, stages=3, max_count=1),
    ],
    "intmac": [
        IntMacSpec(),
        IntMacSpec("int4", "uint4", lanes=4, stages=2),
        IntMacSpec("int8", "uint8", acc_bits=18, overflow="saturate", lanes=4, stages=2),
        IntMacSpec("int16", "int16", lanes=8, stages=3),
    ],
    "simd": [SimdMacSpec(), SimdMacSpec(16, arch="sub4", stages=2)],
    "shiftadd": test_shiftadd.SPECS[::3] + [test_shiftadd.SPECS[7]],
    "blockdot": [
        BlockDotSpec(),
        BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16, lanes=4, stages=1),
        BlockDotSpec("int8", "int8", lanes=8, stages=4),
        BlockDotSpec("e5m2", "e3m2fn", "e4m3fn", "e8m0fnu", 8, lanes=2, acc="bf16"),
    ],
    "lut": [
        LutSpec(),
        LutSpec("e4m3fn", "ternary", group=6, lanes=4, stages=2),
        LutSpec("uint8", 1, group=3, symmetric=False, stages=1),
        LutSpec("int4", 2, acc_bits=8, lanes=16),
    ],
    "array": [
        ArraySpec(ShiftAddSpec("int4", "int4", "bitserial", group=4, scale="bf16"), rows=3, cols=2),
        ArraySpec(BlockDotSpec("e2m1fn", "e2m1fn", block=8, lanes=4), rows=2, cols=2, pipeline=2),
        ArraySpec(SimdMacSpec(8, modes=("8x8", "4x4")), rows=2, cols=2, a_path="broadcast"),
        ArraySpec(MinifloatMacSpec("e5m2", "e2m1fn", "exact", lanes=2), rows=2, cols=2, dataflow="weight-stationary"),
    ],
}
_DECL = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):0\]\s+)?([A-Za-z]\w*)\s*;", re.M)


#: Test-only families (not in FAMILIES): the zero-point INT MAC of tests/family7/.
TEST_FAMILIES: tuple[Family, ...] = (ZPMAC,)


@pytest.fixture(autouse=True, scope="module")
def _with_test_families():
    """The table in use during this module's tests: FAMILIES plus TEST_FAMILIES."""
    with families.extended(*TEST_FAMILIES):
        yield


def _fams() -> list[Family]:
    return [*FAMILIES, *TEST_FAMILIES]


def _lint_specs() -> list[Any]:
    out: dict[str, Any] = {}
    for fam in _fams():
        for s in (*fam.examples, *LINT_SAMPLE.get(fam.name, [])):
            out.setdefault(s.name, s)
    return list(out.values())


def test_lint_sample_names_families():
    assert set(LINT_SAMPLE) <= {f.name for f in _fams()}


def test_test_families_are_in_the_table_only_while_extended():
    assert [f.name for f in families.table()] == [f.name for f in _fams()]
    assert all(f.name not in {g.name for g in FAMILIES} for f in TEST_FAMILIES)


@pytest.mark.parametrize("spec", _lint_specs(), ids=lambda s: s.name)
def test_verilog_deterministic_lint_clean_ports_as_manifest(spec):
    v1, j1 = rtl.generate(spec, BUILD / "det1")
    v2, j2 = rtl.generate(spec, BUILD / "det2")
    assert v1.name == f"{spec.name}.v" and j1.name == f"{spec.name}.json"
    assert v1.read_bytes() == v2.read_bytes() and j1.read_bytes() == j2.read_bytes()
    assert rtl.verilog(spec) == v1.read_text() and j1.read_text().endswith("}\n")
    text = v1.read_text()
    assert "src =" not in text and str(BUILD) not in text
    man = json.loads(j1.read_text())
    assert man["module"] == spec.name and man["family"] == spec.family and man["latency"] == spec.latency
    assert spec_mod.from_dict(man["spec"]) == spec
    # the top module's ports, direction and width, are the manifest's
    top = text[text.index(f"module {spec.name}(") :]
    top = top[: top.index("endmodule")]
    head = top[: top.index(");")]
    names = set(head[head.index("(") + 1 :].replace(" ", "").split(","))
    decl = {n: ("input" if d == "input" else "output", int(w) + 1 if w else 1) for d, w, n in _DECL.findall(top)}
    want = {p["name"]: (p["direction"], p["width"]) for p in man["ports"]}
    assert names == set(want) and {n: decl[n] for n in names} == want
    sig = rtl.signature(spec).members
    assert {n: (p["direction"] == "input") for n, p in ((p["name"], p) for p in man["ports"]) if n in sig} == {
        n: m.flow.name == "In" for n, m in sig.items()
    }
    rtl.lint(v1)


@pytest.mark.parametrize("spec", [s for f in _fams() for s in f.examples], ids=lambda s: s.name)
def test_verilog_and_cost_widths_are_the_geometry(spec):
    check_widths(spec)


@pytest.mark.parametrize("fam", _fams(), ids=lambda f: f.name)
def test_spec_json_round_trip(fam):
    for s in fam.examples:
        back = spec_mod.from_json(s.to_json())
        assert back == s and hash(back) == hash(s) and back.name == s.name and str(back) == s.name
        assert json.loads(s.to_json())["family"] == fam.name
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s.name), s.name
    with pytest.raises(ValueError, match=r"unknown PE family 'nope'"):
        spec_mod.from_dict({"family": "nope"})


# --- golden model against each family's independent reference (its tests-layer part) ------------
@pytest.mark.parametrize("fam", _fams(), ids=lambda f: f.name)
def test_golden_matches_independent_reference(fam):
    model = fam.part("energy")  # the family's random finite operands
    for i, spec in enumerate(fam.examples):
        first = np.zeros((2, 24), bool)
        first[:, ::7] = True
        inp = model.random(spec, np.random.default_rng(100 + i), first)
        got = [[int(v) for v in row] for row in golden.run(spec, **inp)["acc"]]
        assert got == [[int(v) for v in row] for row in fam.part("reference")(spec, inp)], spec.name


# --- cost, energy, CLI, DSE ----------------------------------------------------------------------
@pytest.mark.parametrize("fam", _fams(), ids=lambda f: f.name)
def test_cost_estimate_for_every_target(fam):
    spec = fam.examples[0]
    for target in cost.TARGETS:
        e = cost.estimate(spec, target)
        d = e.to_dict()
        nums = [v for v in d.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        assert nums and all(math.isfinite(v) for v in nums), (target, d)
        if target.startswith("asic"):
            assert e.area_um2 > 0 and e.energy_pj_per_op > 0 and e.gates_nand2 > 0
        else:
            assert e.luts > 0 and e.ffs > 0 and e.fmax_mhz > 0 and e.error["luts"]["median"] > 0


@pytest.mark.parametrize("fam", _fams(), ids=lambda f: f.name)
def test_energy_for_a_workload(fam):
    spec = fam.examples[-1]
    stream = energy.random_stream(spec, steps=128, batch=2, chain=16, seed=3)
    e = energy.energy(spec, stream)
    assert e.notes["workload"] == "custom" and 0 < e.energy_pj_per_mac < 100


def _cli_args(spec) -> list[str]:
    args = [spec.family]
    for k, v in spec.to_dict().items():
        if k == "family" or v is None:
            continue
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            args.append(flag if v else f"--no-{k.replace('_', '-')}")
        elif isinstance(v, (list, tuple)):
            args += [flag, ",".join(map(str, v))]
        else:
            args += [flag, str(v)]
    return args


@pytest.mark.parametrize("fam", _fams(), ids=lambda f: f.name)
def test_cli_generate_cost_synth(fam, tmp_path):
    spec = fam.examples[0]
    args = _cli_args(spec)
    res = runner.invoke(app, ["generate", *args, "-o", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["module"] == spec.name
    assert (tmp_path / f"{spec.name}.v").read_text() == rtl.verilog(spec)
    res = runner.invoke(app, ["cost", *args, "--target", "ice40", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["luts"] == pytest.approx(cost.estimate(spec, "ice40").luts)
    res = runner.invoke(app, ["synth", *args, "--target", "generic", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["module"] == spec.name and rep["nand2_eq"] > 0


@pytest.mark.sim
@pytest.mark.parametrize(
    "fam",
    [pytest.param(f, marks=() if f.name in ("mac", ZPMAC.name) else pytest.mark.slow) for f in _fams()],
    ids=lambda f: f.name,
)
def test_cli_verify(fam):
    spec = fam.examples[0]
    res = runner.invoke(app, ["verify", *_cli_args(spec), "--vectors", "300", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["spec"] == spec.name and out["mismatches"] == 0 and out["checked"] >= 300


@pytest.mark.parametrize("fam", _fams(), ids=lambda f: f.name)
def test_dse_point(fam):
    from peforge.dse.evaluation import EvalSettings, evaluate
    from peforge.dse.space import Point, TensorSettings

    spec = fam.examples[0]
    row = evaluate(Point(spec, "ice40"), EvalSettings(workloads=("gaussian",), tensor=TensorSettings((4, 64, 4))))
    assert row["family"] == fam.name and row["spec"] == spec.name and not row.get("error"), row
    assert row["cost_luts"] > 0 and math.isfinite(row["gaussian_sqnr_db"])
