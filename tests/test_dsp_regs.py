"""ECP5 DSP register packing (fpga/dsp_regs.py): the rules on small hand-made netlists, and on
real PEs a bounded equivalence proof (Yosys sat, fpga/equiv.py) that the packed netlist
computes what Yosys's own netlist computes, plus a proof that a wrong packing is caught."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from peforge.fpga.dsp_regs import absorb_dsp_registers
from peforge.spec import IntMacSpec, MinifloatMacSpec

_FF_PARAMS = {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR", "REGSET": "RESET"}
_FF_DIRS = {"CLK": "input", "LSR": "input", "CE": "input", "DI": "input", "Q": "output"}


def _ff(clk: int, di: Any, q: int, lsr: Any = "0", **params: str) -> dict[str, Any]:
    return {
        "type": "TRELLIS_FF",
        "parameters": {**_FF_PARAMS, **params},
        "port_directions": dict(_FF_DIRS),
        "connections": {"CLK": [clk], "DI": [di], "Q": [q], "LSR": [lsr]},
    }


def _netlist(*, a_ff: dict[str, Any] | None = None, p_ff: dict[str, Any] | None = None, p_lut: bool = False):
    """clk=2, a[0]=3 -> (FF) -> net 10 -> DSP A0; DSP P0 = net 100 -> (FF) -> net 30 -> output y."""
    dsp_conn: dict[str, list[Any]] = {f"A{i}": ["0"] for i in range(18)}
    dsp_conn.update({f"B{i}": ["1" if i == 0 else "0"] for i in range(18)})
    dsp_conn.update({f"P{i}": [100 + i] for i in range(36)})
    dsp_conn["A0"] = [10]
    dirs = {k: ("output" if k.startswith("P") else "input") for k in dsp_conn}
    cells: dict[str, Any] = {
        "dsp": {"type": "MULT18X18D", "parameters": {}, "port_directions": dirs, "connections": dsp_conn},
        "ffa": a_ff or _ff(2, 3, 10),
        "ffp": p_ff or _ff(2, 100, 30),
    }
    if p_lut:
        cells["lut"] = {
            "type": "LUT4",
            "parameters": {"INIT": "1010101010101010"},
            "port_directions": {"A": "input", "Z": "output"},
            "connections": {"A": [100], "Z": [40]},
        }
    ports = {
        "clk": {"direction": "input", "bits": [2]},
        "a": {"direction": "input", "bits": [3]},
        "rst": {"direction": "input", "bits": [4]},
        "y": {"direction": "output", "bits": [30]},
        "z": {"direction": "output", "bits": [40]},
    }
    return {"modules": {"top": {"ports": ports, "cells": cells}}}


def test_input_and_output_registers_move_into_the_dsp():
    net = _netlist()
    rep = absorb_dsp_registers(net, "top")
    cells = net["modules"]["top"]["cells"]
    dsp = cells["dsp"]
    assert (rep.dsps, rep.inputs, rep.outputs) == (1, 1, 1)
    assert dsp["parameters"]["REG_INPUTA_CLK"] == "CLK0" and dsp["parameters"]["REG_OUTPUT_CLK"] == "CLK0"
    assert "REG_INPUTB_CLK" not in dsp["parameters"]  # B is a constant: nothing to absorb
    assert dsp["connections"]["A0"] == [3] and dsp["connections"]["P0"] == [30]
    assert dsp["connections"]["CLK0"] == [2] and dsp["connections"]["RST0"] == ["0"]
    assert "ffa" not in cells and "ffp" not in cells  # both became dead / were moved
    assert rep.ffs_removed == 2


def test_a_register_read_elsewhere_is_copied_not_moved():
    net = _netlist()
    net["modules"]["top"]["ports"]["q"] = {"direction": "output", "bits": [10]}
    absorb_dsp_registers(net, "top")
    assert "ffa" in net["modules"]["top"]["cells"]


@pytest.mark.parametrize(
    "what, ff",
    [
        ("asynchronous reset", _ff(2, 3, 10, lsr=4, SRMODE="ASYNC")),
        ("set, not reset", _ff(2, 3, 10, REGSET="SET")),
        ("inverted clock", _ff(2, 3, 10, CLKMUX="INV")),
    ],
)
def test_flip_flops_a_dsp_register_cannot_stand_in_for_stay(what, ff):
    net = _netlist(a_ff=ff)
    rep = absorb_dsp_registers(net, "top")
    assert rep.inputs == 0, what
    assert net["modules"]["top"]["cells"]["dsp"]["connections"]["A0"] == [10]


def test_a_reset_over_an_enable_becomes_logic_in_front_of_the_dsp_register():
    """An FF that resets (first) and loads when enabled: ``DI & ~LSR`` loaded on ``CE | LSR``."""
    ff = _ff(2, 3, 10, lsr=4, CEMUX="CE")
    ff["connections"]["CE"] = [5]
    net = _netlist(a_ff=ff)
    rep = absorb_dsp_registers(net, "top")
    cells = net["modules"]["top"]["cells"]
    dsp = cells["dsp"]
    assert rep.inputs == 1 and dsp["parameters"]["REG_INPUTA_CLK"] == "CLK0"
    lut_d = next(c for n, c in cells.items() if n.endswith("$dsp_regs_d"))
    lut_ce = next(c for n, c in cells.items() if n.endswith("$dsp_regs_ce"))
    assert dsp["connections"]["A0"] == lut_d["connections"]["Z"] and dsp["connections"]["RST0"] == ["0"]
    assert dsp["connections"]["CE0"] == lut_ce["connections"]["Z"]
    assert (lut_d["connections"]["A"], lut_d["connections"]["B"]) == ([3], [4])
    assert (lut_ce["connections"]["A"], lut_ce["connections"]["B"]) == ([5], [4])

    def lut(init: str, a: int, b: int) -> int:  # INIT is bit 15 first; index = D C B A
        return int(init[15 - (a | b << 1)])

    for a in (0, 1):
        for b in (0, 1):
            assert lut(lut_d["parameters"]["INIT"], a, b) == (a and not b)
            assert lut(lut_ce["parameters"]["INIT"], a, b) == (a or b)


def test_a_reset_that_implies_the_enable_keeps_the_enable_net():
    """``LSR = x & CE`` (Yosys's reset that only acts when enabled): the DSP loads on ``CE``
    itself, so the DSPs of several lanes share one enable."""
    ff = _ff(2, 3, 10, lsr=6, CEMUX="CE")
    ff["connections"]["CE"] = [5]
    net = _netlist(a_ff=ff)
    and_init = "".join(str(int((i & 1) and (i >> 1 & 1))) for i in reversed(range(16)))  # A & B
    net["modules"]["top"]["cells"]["rst_and"] = {
        "type": "LUT4",
        "parameters": {"INIT": and_init},
        "port_directions": {"A": "input", "B": "input", "C": "input", "D": "input", "Z": "output"},
        "connections": {"A": [4], "B": [5], "C": ["0"], "D": ["0"], "Z": [6]},
    }
    absorb_dsp_registers(net, "top")
    cells = net["modules"]["top"]["cells"]
    assert cells["dsp"]["connections"]["CE0"] == [5]
    assert not any(n.endswith("$dsp_regs_ce") for n in cells)


def test_a_product_read_by_logic_as_well_keeps_its_register_in_the_fabric():
    net = _netlist(p_lut=True)
    rep = absorb_dsp_registers(net, "top")
    assert rep.outputs == 0 and "ffp" in net["modules"]["top"]["cells"]


def test_input_and_output_with_different_resets_take_two_slots():
    net = _netlist(p_ff=_ff(2, 100, 30, lsr=4))
    absorb_dsp_registers(net, "top")
    dsp = net["modules"]["top"]["cells"]["dsp"]
    assert dsp["parameters"]["REG_INPUTA_RST"] == "RST0" and dsp["parameters"]["REG_OUTPUT_RST"] == "RST1"
    assert dsp["connections"]["RST0"] == ["0"] and dsp["connections"]["RST1"] == [4]


# --- real PEs: Yosys's netlist vs the packed one, proved equal for every input sequence -------
def _unpacked(spec, tmp_path):
    from peforge.fpga.design import as_design
    from peforge.fpga.pnr import check_device, pnr_netlist

    wd = tmp_path / "net"
    wd.mkdir()
    pnr_netlist(as_design(spec), check_device("25k"), wd, dsp=True, pack=False)
    return json.loads((wd / "net.json").read_text())


PROVED = [
    pytest.param(IntMacSpec("int8", "int8", stages=2), (2, 1), id="int8-s2"),
    pytest.param(
        MinifloatMacSpec("e4m3fn", "e4m3fn", "exact", segment=16, stages=4),
        (2, 1),
        id="e4m3-exact-s4",
    ),
    pytest.param(IntMacSpec("int4", "int4", lanes=4, stages=2), (8, 4), id="int4-l4-s2"),  # four DSPs
]


@pytest.mark.parametrize("spec, sides", PROVED)
def test_packed_netlist_is_equivalent(spec, sides, tmp_path):
    from peforge.fpga.equiv import equivalent

    gold = _unpacked(spec, tmp_path)
    gate = copy.deepcopy(gold)
    rep = absorb_dsp_registers(gate, "peforge_wrap")
    assert (rep.inputs, rep.outputs) >= sides, rep.summary()  # the registers the PE offers were taken
    # deep enough for an input to reach the outputs through the I/O wrapper's two registers
    equivalent(gold, gate, "peforge_wrap", tmp_path / "eq", depth=spec.latency + 3)


def test_a_wrong_packing_is_caught(tmp_path):
    """The proof can fail: drop the B input register (B now arrives a cycle early)."""
    from peforge.fpga.equiv import EquivalenceError, equivalent

    gold = _unpacked(IntMacSpec("int8", "int8", stages=2), tmp_path)
    gate = copy.deepcopy(gold)
    absorb_dsp_registers(gate, "peforge_wrap")
    for cell in gate["modules"]["peforge_wrap"]["cells"].values():
        if cell["type"] == "MULT18X18D":
            cell["parameters"]["REG_INPUTB_CLK"] = "NONE"
    with pytest.raises(EquivalenceError, match="counterexample"):
        equivalent(gold, gate, "peforge_wrap", tmp_path / "eq", depth=6)
