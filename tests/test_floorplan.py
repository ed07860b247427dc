"""The ECP5 DSP floorplan of PE arrays (peforge.fpga.floorplan): a grid on the DSP rows."""

from __future__ import annotations

import re

import pytest

from peforge.arrays import ArraySpec
from peforge.fpga.floorplan import DSP_SITES, dsp_sites, floorplan_dsps, plan
from peforge.spec import IntMacSpec


def _xy(bel):
    x, y, _ = re.match(r"X(\d+)/Y(\d+)/(MULT18_\d)$", bel).groups()
    return int(x), int(y)


def test_site_tables_match_the_devices_dsp_counts():
    from peforge.fpga.pnr import DEVICES

    for dev, (ys, groups) in DSP_SITES.items():
        sites = dsp_sites(dev)
        assert sum(len(r) for r in sites) == DEVICES[dev].dsps == 4 * len(ys) * len(groups)
        assert len({s for r in sites for s in r}) == DEVICES[dev].dsps


@pytest.mark.parametrize(
    "rows, cols, per_pe, device",
    [(8, 8, 1, "45k"), (4, 4, 1, "25k"), (5, 3, 2, "45k"), (8, 8, 1, "85k"), (12, 12, 1, "85k")],
)
def test_plan_is_a_grid_of_distinct_sites(rows, cols, per_pe, device):
    sites = dsp_sites(device)
    bels, depth, bands = plan(rows, cols, per_pe, sites)
    assert len(bels) == rows * cols * per_pe == len(set(bels.values()))
    assert set(bels.values()) <= {s for r in sites for s in r}
    order = {s: k for r in sites for k, s in enumerate(r)}  # position along its DSP row
    for i in range(rows):
        for j in range(cols):
            slots = [order[bels[(i, j, k)]] for k in range(per_pe)]
            assert slots == list(range(slots[0], slots[0] + per_pe))  # a PE's multipliers adjacent
            if i + 1 < rows and (i + 1) // depth == i // depth:  # b hop within a band: next site(s)
                assert abs(order[bels[(i + 1, j, 0)]] - slots[0]) == per_pe
            if i + 1 < rows and (i + 1) // depth != i // depth:  # across bands: the same column x
                assert _xy(bels[(i + 1, j, 0)])[0] == _xy(bels[(i, j, 0)])[0]
            if j + 1 < cols:  # a hop: one column group further along the same DSP row
                a, b = _xy(bels[(i, j, 0)]), _xy(bels[(i, j + 1, 0)])
                assert a[1] == b[1] and b[0] > a[0]


def test_plan_refuses_what_does_not_fit():
    assert plan(8, 8, 1, dsp_sites("25k")) == ({}, 0, 0)  # 64 multipliers, 28 sites
    assert plan(1, 40, 1, dsp_sites("45k")) == ({}, 0, 0)  # a row longer than a DSP row


def _netlist(names):
    cells = {n: {"type": "MULT18X18D", "connections": {}} for n in names}
    cells["pe.acc_TRELLIS_FF_Q"] = {"type": "TRELLIS_FF", "connections": {}}
    return {"modules": {"top": {"cells": cells}}}


def test_floorplan_places_the_grid_multipliers_only():
    spec = ArraySpec(IntMacSpec("int8", "int8", lanes=2), rows=2, cols=2)
    names = [f"pe.pe_{i}_{j}.prod{k}_MULT18X18D_P9" for i in range(2) for j in range(2) for k in range(2)]
    net = _netlist([*names, "pe.dequant0.mul_MULT18X18D", "pe.pipe_1_2.x_MULT18X18D"])
    fp = floorplan_dsps(net, "top", spec, "45k")
    cells = net["modules"]["top"]["cells"]
    assert fp.placed == 8 and fp.bands == 1
    assert {cells[n]["attributes"]["BEL"] for n in names} == set(plan(2, 2, 2, dsp_sites("45k"))[0].values())
    assert (
        "attributes" not in cells["pe.dequant0.mul_MULT18X18D"]
        and "attributes" not in cells["pe.pipe_1_2.x_MULT18X18D"]
    )
    net2 = _netlist(names)
    assert floorplan_dsps(net2, "top", IntMacSpec("int8", "int8"), "45k").placed == 0  # not an array
    assert all("attributes" not in c for c in net2["modules"]["top"]["cells"].values())
    big = _netlist([f"pe.pe_{i}_{j}.p_MULT18X18D" for i in range(8) for j in range(8)])
    assert floorplan_dsps(big, "top", ArraySpec(IntMacSpec("int8", "int8"), 8, 8), "25k").placed == 0
