"""Test-only batch wrapper: R copies of a PE behind one wide input and one wide output port.

A simulator write costs about the same for 8 bits as for 8,000, so the wrapper lets one write
drive R independent PEs per clock cycle, and one read return all their outputs.  Each copy runs
its own chains (one batch row of the golden model); ``rst`` and ``in_valid`` are shared, so
all rows advance in lock step.

The PE is instantiated by module name, so the simulation compiles exactly the Verilog text
that ``peforge.rtl.verilog(spec)`` emits, and its ports come from the manifest
(:class:`~peforge.sim.ports.PortMap`), whatever the family:

``clk``;
``din[2 + R * in_bits]``: bit 0 ``rst``, bit 1 ``in_valid``, then copy ``r``'s inputs at
``2 + r * in_bits + field.offset`` (manifest order: ``in_first``, ``a``, ``b``, ...);
``dout[R * out_bits]``: copy ``r``'s outputs at ``r * out_bits + field.offset`` (``out_valid``,
``acc``, ...).

The wrapper is plain wiring, so it is written as Verilog text directly (deterministic, exact
widths, lint-clean), which takes milliseconds where an Amaranth/Yosys conversion of 64
instances takes seconds.
"""

from __future__ import annotations

from .ports import VALID, PortMap

__all__ = ["wrapper_verilog", "CONTROL_BITS", "MAX_ROWS"]

#: ``din`` bits ahead of the first copy: ``rst``, ``in_valid``.
CONTROL_BITS = 2
MAX_ROWS = 4096


def _bits(base: int, width: int) -> str:
    return f"[{base}]" if width == 1 else f"[{base + width - 1}:{base}]"


def wrapper_verilog(ports: PortMap, rows: int, name: str) -> str:
    """Verilog text of the batch wrapper: module ``name`` holding ``rows`` copies of ``ports.module``."""
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"rows={rows!r} must be an int in 1..{MAX_ROWS}")
    if not name.isidentifier():
        raise ValueError(f"wrapper name {name!r} must be a Verilog identifier")
    n_in, n_out = CONTROL_BITS + rows * ports.in_bits, rows * ports.out_bits
    lines = [
        f"// batch wrapper: {rows} copies of {ports.module} (peforge.sim.wrapper; test only)",
        f"module {name} ({ports.clock}, din, dout);",
        f"  input wire {ports.clock};",
        f"  input wire [{n_in - 1}:0] din;",
        f"  output wire [{n_out - 1}:0] dout;",
    ]
    for r in range(rows):
        conns = [f".{ports.clock}({ports.clock})", f".{ports.reset_port}(din[0])", f".{VALID}(din[1])"]
        base = CONTROL_BITS + r * ports.in_bits
        conns += [f".{f.name}(din{_bits(base + f.offset, f.width)})" for f in ports.inputs]
        base = r * ports.out_bits
        conns += [f".{f.name}(dout{_bits(base + f.offset, f.width)})" for f in ports.outputs]
        lines.append(f"  {ports.module} pe{r} ({', '.join(conns)});")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
