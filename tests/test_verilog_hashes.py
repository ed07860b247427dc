"""Generated Verilog of a seeded spec set of every family is byte-identical to the pinned
SHA-256 hashes (``tests/data/verilog_hashes.json``): refactors change no hardware.

A datapath change made on purpose regenerates the file in its own commit
(``.venv/bin/python tests/verilog_hashes.py``) and says so in the commit message.
"""

from __future__ import annotations

import json

import pytest
import verilog_hashes as vh

from peforge import spec as spec_mod

PINNED = json.loads(vh.HASH_FILE.read_text())


def test_pinned_set_is_the_drawn_set():
    names = [s.name for s in vh.specs()]
    assert sorted(names) == sorted(PINNED), "the spec set changed: regenerate tests/data/verilog_hashes.json"
    assert {PINNED[n]["spec"]["family"] for n in names} == set(spec_mod.families())


@pytest.mark.parametrize("name", sorted(PINNED))
def test_verilog_hash_unchanged(name):
    spec = spec_mod.from_dict(PINNED[name]["spec"])
    assert spec.name == name
    assert vh.verilog_hash(spec) == PINNED[name]["sha256"], (
        f"{name}: generated Verilog changed; if on purpose, regenerate with "
        "`.venv/bin/python tests/verilog_hashes.py` in the same commit"
    )
