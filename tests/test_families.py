"""The family table: declared once, every part resolves, a missing part fails by name."""

from __future__ import annotations

import dataclasses

import pytest

from peforge import families as fam_mod
from peforge import spec as spec_mod
from peforge.families import FAMILIES, FamilyError


def test_table_covers_every_spec_class_once():
    assert [f.spec.family for f in FAMILIES] == [f.name for f in FAMILIES]
    assert spec_mod.families() == {f.name: f.spec for f in FAMILIES}
    assert fam_mod.family_of(FAMILIES[3].examples[0]) is FAMILIES[3]
    with pytest.raises(ValueError, match=r"unknown PE family 'nope': allowed \['array', 'blockdot'"):
        fam_mod.get("nope")


@pytest.mark.parametrize("layer", sorted(fam_mod.LAYERS))
def test_every_part_resolves(layer):
    fam_mod.load_layer(layer)
    for fam in FAMILIES:
        for part in fam_mod.LAYERS[layer]:
            got = fam.part(part)
            assert got is not None or part in fam_mod._OPTIONAL, (fam.name, part)  # optional parts may be None


def test_missing_part_names_family_and_part():
    mac = FAMILIES[0]
    with pytest.raises(FamilyError, match=r"family 'mac' lacks its cost part 'cost_assembly'"):
        dataclasses.replace(mac, cost_assembly=None, _cache={})
    with pytest.raises(FamilyError, match=r"family 'mac' lacks its examples"):
        dataclasses.replace(mac, examples=(), _cache={})


def test_unresolvable_part_names_family_and_part():
    broken = dataclasses.replace(FAMILIES[1], golden_run="peforge.models.golden.intmac:no_such_run", _cache={})
    with pytest.raises(
        FamilyError,
        match=r"family 'intmac': its golden part 'golden_run' "
        r"\(peforge.models.golden.intmac:no_such_run\) does not resolve",
    ):
        broken.part("golden_run")


# --- extended(): a family added to the table explicitly, for a with block ----------------------
def test_extended_adds_a_family_for_the_block_only():
    from family7.spec import FAMILY, ZeroPointMacSpec

    spec = ZeroPointMacSpec(lanes=2)
    with fam_mod.extended(FAMILY) as table:
        assert table == (*FAMILIES, FAMILY) == fam_mod.table()
        assert fam_mod.get("zpmac") is FAMILY and fam_mod.family_of(spec) is FAMILY
        assert fam_mod.names()[-1] == "zpmac" and spec_mod.from_json(spec.to_json()) == spec
        assert [f for f, _ in fam_mod.parts("golden_run")][-1] is FAMILY
    assert fam_mod.table() == FAMILIES
    with pytest.raises(ValueError, match=r"unknown PE family 'zpmac'"):
        spec_mod.from_json(spec.to_json())
    with pytest.raises(ValueError, match=r"ZeroPointMacSpec .* is not a PE spec"):
        fam_mod.family_of(spec)


def test_extended_refuses_a_clash_and_an_unresolvable_part():
    from family7.spec import FAMILY

    with pytest.raises(FamilyError, match=r"declares a name or spec class twice"):
        with fam_mod.extended(dataclasses.replace(FAMILY, _cache={}), FAMILY):
            pass
    with pytest.raises(FamilyError, match=r"declares a name or spec class twice"):
        with fam_mod.extended(dataclasses.replace(FAMILIES[1], _cache={})):
            pass
    broken = dataclasses.replace(FAMILY, golden_value="family7.golden:no_such_value", _cache={})
    with pytest.raises(FamilyError, match=r"family 'zpmac': its golden part 'golden_value' .* does not resolve"):
        with fam_mod.extended(broken):
            pass
    with pytest.raises(TypeError, match=r"extended\(\) takes Family records"):
        with fam_mod.extended("zpmac"):
            pass
    assert fam_mod.table() == FAMILIES


def test_cli_lists_an_extended_family_while_it_is_in_the_table():
    from family7.spec import FAMILY
    from typer.testing import CliRunner

    from peforge.cli import app

    runner = CliRunner()
    assert "zpmac" not in runner.invoke(app, ["cost", "--help"]).output
    with fam_mod.extended(FAMILY):
        assert "zpmac" in runner.invoke(app, ["cost", "--help"]).output
        res = runner.invoke(app, ["cost", "zpmac", "--help"])
        assert res.exit_code == 0 and "--a-zero" in res.output
    res = runner.invoke(app, ["cost", "zpmac"])
    assert res.exit_code != 0
