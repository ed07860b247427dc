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
