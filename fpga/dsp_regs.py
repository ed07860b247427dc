"""ECP5: move the registers around each ``MULT18X18D`` into the DSP block's own registers.

Lattice's synthesis packs a flip-flop that feeds a multiplier's input, or that captures its
product, into the ``MULT18X18D``'s input (``REG_INPUTA/B``) and output (``REG_OUTPUT``)
registers; Yosys's ``synth_ecp5`` maps the multiplier to a combinational ``MULT18X18D`` and
leaves those flip-flops in the fabric, so every register -> DSP -> register path pays the
fabric routing on both sides plus the DSP's combinational delay (about 7 ns: an INT8 MAC
cannot pass ~145 MHz).  :func:`absorb_dsp_registers` does the packing on the netlist
Yosys writes (``write_json``) before nextpnr reads it; the design's function is unchanged
(the same registers, moved into the block), which ``tests/test_dsp_regs.py`` checks by
simulating both netlists side by side.

A side is absorbed only when it is safe as is:

* input A (B): every non-constant bit of the port is the ``Q`` of a ``TRELLIS_FF`` with the
  same clock and enable, reset to 0 (synchronous reset or none).  A flip-flop with both a
  reset and an enable (Yosys folds a "zero when special" mux into a reset) first gets the
  reset as logic in front of it (:func:`_fold_reset`), so the DSP register never depends on
  how it orders the two; the flip-flop stays
  when anything else reads it (the DSP gets its own copy, as a vendor tool would do);
* output: every product bit that is read at all is read by exactly one such flip-flop's
  ``DI`` and nothing else; those flip-flops go, the DSP's ``P`` drives their nets.

Each distinct (clock, enable, reset) of the absorbed registers takes one of the DSP's four
``CLKk`` / ``CEk`` / ``RSTk`` slots (three sides: never more than three).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

__all__ = ["DspPacking", "absorb_dsp_registers"]

Bit = int | str  # a net number, or a constant "0" / "1" / "x" / "z"
_DSP = "MULT18X18D"
_FF = "TRELLIS_FF"


@dataclass
class DspPacking:
    """What :func:`absorb_dsp_registers` did: DSPs seen, sides absorbed, flip-flops removed."""

    dsps: int = 0
    inputs: int = 0
    outputs: int = 0
    ffs_removed: int = 0

    def summary(self) -> str:
        return (
            f"{self.dsps} MULT18X18D: {self.inputs} input and {self.outputs} output registers "
            f"absorbed, {self.ffs_removed} fabric FFs removed"
        )


def _ff_pins(cell: dict[str, Any]) -> tuple[Bit, Bit, Bit] | None:
    """``(clock, enable, reset)`` of a flip-flop with a rising clock that resets (if at all)
    synchronously to 0, with neither its enable nor its reset inverted; else None."""
    p, c = cell.get("parameters", {}), cell["connections"]
    if str(p.get("CLKMUX", "CLK")).strip() != "CLK" or str(p.get("REGSET", "RESET")).strip() != "RESET":
        return None
    if str(p.get("SRMODE", "LSR_OVER_CE")).strip() != "LSR_OVER_CE":  # asynchronous reset
        return None
    enable, reset = _mux_pin(p, c, "CEMUX", "CE", "1"), _mux_pin(p, c, "LSRMUX", "LSR", "0")
    if enable is None or reset is None:  # an inverted enable or reset
        return None
    return c["CLK"][0], enable, reset


def _mux_pin(p: dict[str, Any], c: dict[str, Any], mux: str, pin: str, off: Bit) -> Bit | None:
    """What drives a flip-flop's ``pin`` through its ``mux`` parameter: the constant ``off``
    (the pin unused), the net on the pin, or None for an inverted pin."""
    how = str(p.get(mux, pin)).strip()
    if how == off:
        return off
    if how == pin:
        return c.get(pin, [off])[0]
    return None


def _ff_control(cell: dict[str, Any]) -> tuple[Bit, Bit, Bit] | None:
    """``(clock, enable, reset)`` of a flip-flop a DSP register can stand in for, else None:
    :func:`_ff_pins`, and an enable only without a reset (so the order of the two never
    matters)."""
    pins = _ff_pins(cell)
    if pins is None or (pins[1] != "1" and pins[2] != "0"):
        return None
    return pins


def _readers(cells: dict[str, dict[str, Any]], ports: dict[str, Any]) -> dict[Bit, list[tuple[str, str]]]:
    """Net -> the (cell, input port) pairs that read it; module outputs as ``("", name)``."""
    out: dict[Bit, list[tuple[str, str]]] = defaultdict(list)
    for name, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            if dirs.get(port, "input") != "output":
                for b in bits:
                    out[b].append((name, port))
    for pname, port in ports.items():
        if port["direction"] != "input":
            for b in port["bits"]:
                out[b].append(("", pname))
    return out


def _drivers(cells: dict[str, dict[str, Any]]) -> dict[Bit, tuple[str, str]]:
    out: dict[Bit, tuple[str, str]] = {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "output":
                for b in bits:
                    out[b] = (name, port)
    return out


def _lut(inputs: list[Bit], z: int, init: str) -> dict[str, Any]:
    """A LUT4 cell on ``inputs`` (A, B, ...; the rest tied to 0) driving net ``z``."""
    ports = dict(zip("ABCD", [*inputs, "0", "0", "0", "0"]))
    return {
        "hide_name": 1,
        "type": "LUT4",
        "parameters": {"INIT": init},
        "attributes": {},
        "port_directions": {**{k: "input" for k in "ABCD"}, "Z": "output"},
        "connections": {**{k: [v] for k, v in ports.items()}, "Z": [z]},
    }


def _truth(fn: Any) -> str:
    """LUT4 ``INIT`` (bit 15 first) of ``fn(a, b)`` over inputs A, B (C, D are don't-care)."""
    return "".join(str(int(bool(fn(i & 1, (i >> 1) & 1)))) for i in reversed(range(16)))


class _Nets:
    """Fresh net numbers for a module (above every bit it uses)."""

    def __init__(self, module: dict[str, Any]) -> None:
        bits = [b for c in module["cells"].values() for v in c["connections"].values() for b in v]
        bits += [b for p in module["ports"].values() for b in p["bits"]]
        bits += [b for n in module.get("netnames", {}).values() for b in n.get("bits", [])]
        self.next = 1 + max((b for b in bits if isinstance(b, int)), default=1)

    def new(self) -> int:
        self.next += 1
        return self.next - 1


def _implies(cells: dict[str, dict[str, Any]], drivers: dict[Bit, tuple[str, str]], lsr: Bit, ce: Bit) -> bool:
    """Whether net ``lsr`` can be 1 only while net ``ce`` is 1, read off the LUT4 that drives
    ``lsr`` (Yosys makes a reset that only acts when enabled into ``reset & enable``)."""
    src = drivers.get(lsr)
    if src is None or cells[src[0]]["type"] != "LUT4":
        return False
    lut = cells[src[0]]
    init = str(lut["parameters"].get("INIT", "")).strip()
    if len(init) != 16 or set(init) - {"0", "1"}:
        return False
    pins = [k for k, port in enumerate("ABCD") if lut["connections"].get(port, ["0"])[0] == ce]
    # every row of the truth table (bit 15 first) with all the ce inputs at 0 gives 0
    return bool(pins) and all(init[15 - i] == "0" for i in range(16) if not any(i >> k & 1 for k in pins))


def _fold_reset(
    cells: dict[str, dict[str, Any]],
    name: str,
    nets: _Nets,
    enables: dict[tuple[Bit, Bit], Bit],
    drivers: dict[Bit, tuple[str, str]],
) -> None:
    """Turn flip-flop ``name``'s synchronous reset over its enable (``LSR_OVER_CE``: reset
    first, then load when enabled) into logic in front of it: ``DI & ~LSR`` loaded when
    ``CE | LSR`` (just ``CE`` when the reset implies the enable, which keeps the DSPs of
    several lanes on one enable net); the same register, now one a DSP register can stand in
    for whatever order that register gives its own reset and enable."""
    conn = cells[name]["connections"]
    di, ce, lsr = conn["DI"][0], conn["CE"][0], conn["LSR"][0]
    d2 = nets.new()
    cells[f"{name}$dsp_regs_d"] = _lut([di, lsr], d2, _truth(lambda a, b: a and not b))
    if (ce, lsr) not in enables:
        if _implies(cells, drivers, lsr, ce):
            enables[(ce, lsr)] = ce
        else:
            ce2 = nets.new()
            cells[f"{name}$dsp_regs_ce"] = _lut([ce, lsr], ce2, _truth(lambda a, b: a or b))
            enables[(ce, lsr)] = ce2
    conn["DI"], conn["CE"], conn["LSR"] = [d2], [enables[(ce, lsr)]], ["0"]


def _foldable(cell: dict[str, Any]) -> bool:
    """A flip-flop refused by :func:`_ff_control` only for having both a reset and an enable."""
    pins = _ff_pins(cell) if cell["type"] == _FF else None
    return pins is not None and isinstance(pins[1], int) and isinstance(pins[2], int)


def _fold_input_resets(
    dsp: dict[str, Any], side: str, cells: dict[str, dict[str, Any]], nets: _Nets, enables: dict[tuple[Bit, Bit], Bit]
) -> None:
    """Fold reset-and-enable flip-flops feeding input ``side`` (see :func:`_fold_reset`) when
    every non-constant bit of the side comes from a flip-flop (else nothing could be absorbed)."""
    drivers = _drivers(cells)
    ffs = _input_ffs(dsp, side, cells, drivers)
    for name in sorted(set(ffs or ())):
        if _ff_control(cells[name]) is None and _foldable(cells[name]):
            _fold_reset(cells, name, nets, enables, drivers)


def _input_ffs(
    dsp: dict[str, Any], side: str, cells: dict[str, dict[str, Any]], drivers: dict[Bit, tuple[str, str]]
) -> list[str] | None:
    """The flip-flops driving the non-constant bits of input ``side``, in bit order; None when a
    bit comes from anything else."""
    ffs = []
    for i in range(18):
        b = dsp["connections"][f"{side}{i}"][0]
        if isinstance(b, str):
            continue
        src = drivers.get(b)
        if src is None or src[1] != "Q" or cells[src[0]]["type"] != _FF:
            return None
        ffs.append(src[0])
    return ffs


def _absorb_input(
    dsp: dict[str, Any], side: str, cells: dict[str, dict[str, Any]], drivers: dict[Bit, tuple[str, str]]
) -> tuple[Bit, Bit, Bit] | None:
    """Control ``(clock, enable, reset)`` shared by the flip-flops feeding input ``side``, or None."""
    control = None
    for name in _input_ffs(dsp, side, cells, drivers) or ():
        ctl = _ff_control(cells[name])
        if ctl is None or (control is not None and ctl != control):
            return None
        control = ctl
    return control


def _rewire_input(
    dsp: dict[str, Any], side: str, cells: dict[str, dict[str, Any]], drivers: dict[Bit, tuple[str, str]]
) -> None:
    for i in range(18):
        b = dsp["connections"][f"{side}{i}"][0]
        if not isinstance(b, str):
            dsp["connections"][f"{side}{i}"] = [cells[drivers[b][0]]["connections"]["DI"][0]]


def _output_ffs(
    dsp: dict[str, Any], cells: dict[str, dict[str, Any]], readers: dict[Bit, list[tuple[str, str]]]
) -> tuple[dict[int, str], tuple[Bit, Bit, Bit]] | None:
    """``({P bit: flip-flop}, control)`` when every read product bit goes to one flip-flop only."""
    ffs: dict[int, str] = {}
    control = None
    for i in range(36):
        b = dsp["connections"][f"P{i}"][0]
        if isinstance(b, str):
            continue
        who = readers.get(b, [])
        if not who:
            continue
        if len(who) != 1 or who[0][1] != "DI" or not who[0][0] or cells[who[0][0]]["type"] != _FF:
            return None
        ctl = _ff_control(cells[who[0][0]])
        if ctl is None or (control is not None and ctl != control):
            return None
        control = ctl
        ffs[i] = who[0][0]
    if not ffs or control is None:
        return None
    return ffs, control


def absorb_dsp_registers(netlist: dict[str, Any], top: str) -> DspPacking:
    """Pack adjacent flip-flops into every ``MULT18X18D`` of module ``top`` of a Yosys JSON
    ``netlist`` (edited in place; see the module docstring for the rules)."""
    module = netlist["modules"][top]
    cells: dict[str, dict[str, Any]] = module["cells"]
    report = DspPacking()
    nets = _Nets(module)
    enables: dict[tuple[Bit, Bit], Bit] = {}
    for name in sorted(n for n, c in cells.items() if c["type"] == _DSP):
        dsp = cells[name]
        report.dsps += 1
        params = dsp.setdefault("parameters", {})
        if any(str(params.get(f"REG_{r}_CLK", "NONE")).strip() != "NONE" for r in ("INPUTA", "INPUTB", "OUTPUT")):
            continue  # already registered (an instantiated primitive): leave it as it is
        for side in ("A", "B"):
            _fold_input_resets(dsp, side, cells, nets, enables)
        drivers, readers = _drivers(cells), _readers(cells, module["ports"])
        ctl_a = _absorb_input(dsp, "A", cells, drivers)
        ctl_b = _absorb_input(dsp, "B", cells, drivers)
        out = _output_ffs(dsp, cells, readers)
        if ctl_a is None and ctl_b is None and out is None:
            continue
        conn = dsp["connections"]
        slots: list[tuple[Bit, Bit, Bit]] = []
        if ctl_a is not None:
            _rewire_input(dsp, "A", cells, drivers)
            _use_slot(dsp, slots, "INPUTA", ctl_a)
            report.inputs += 1
        if ctl_b is not None:
            _rewire_input(dsp, "B", cells, drivers)
            _use_slot(dsp, slots, "INPUTB", ctl_b)
            report.inputs += 1
        if out is not None:
            for i, ff in out[0].items():
                conn[f"P{i}"] = list(cells[ff]["connections"]["Q"])
                del cells[ff]
                report.ffs_removed += 1
            _use_slot(dsp, slots, "OUTPUT", out[1])
            report.outputs += 1
        params["GSR"] = "DISABLED"
        params["RESETMODE"] = "SYNC"
    report.ffs_removed += _remove_dead_ffs(cells, module["ports"])
    return report


def _use_slot(dsp: dict[str, Any], slots: list[tuple[Bit, Bit, Bit]], reg: str, control: tuple[Bit, Bit, Bit]) -> None:
    """Clock DSP register ``reg`` from the ``CLKk`` / ``CEk`` / ``RSTk`` slot of ``control``
    (a new slot for a control not seen yet on this DSP)."""
    conn, params = dsp["connections"], dsp["parameters"]
    if control not in slots:
        slots.append(control)
        k = len(slots) - 1
        for port, bit in zip(("CLK", "CE", "RST"), control):
            conn[f"{port}{k}"] = [bit]
            dsp.setdefault("port_directions", {})[f"{port}{k}"] = "input"
    k = slots.index(control)
    params[f"REG_{reg}_CLK"], params[f"REG_{reg}_CE"], params[f"REG_{reg}_RST"] = f"CLK{k}", f"CE{k}", f"RST{k}"


def _remove_dead_ffs(cells: dict[str, dict[str, Any]], ports: dict[str, Any]) -> int:
    """Drop flip-flops nothing reads any more (input registers now copied into a DSP)."""
    readers = _readers(cells, ports)
    dead = [n for n, c in cells.items() if c["type"] == _FF and not readers.get(c["connections"]["Q"][0])]
    for n in dead:
        del cells[n]
    return len(dead)
