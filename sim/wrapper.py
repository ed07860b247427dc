"""Test-only batch wrapper: R copies of a PE fed from an input memory, recording into an output memory.

Crossing between Python and the simulator costs far more than simulating a cycle, so the
wrapper lets the simulator run a whole piece of a chunk on its own: the testbench
(:mod:`peforge.sim.tb`) writes the piece's wide input words to :data:`DIN_FILE`, toggles
``load`` and waits ``words`` clock cycles with a single timer; the wrapper reads the words
with ``$readmemh`` and, at every falling clock edge, first records the PE copies' outputs,
then presents the next word (exactly what a testbench that reads and writes at each falling
edge does); toggling ``dump`` writes the recorded words to :data:`DOUT_FILE` (``$writememh``).
Each copy runs its own chains (one batch row of the golden model); ``rst`` and ``in_valid``
are shared, so all rows advance in lock step.

The PE is instantiated by module name, so the simulation compiles exactly the Verilog text
that ``peforge.rtl.verilog(spec)`` emits, and its ports come from the manifest
(:class:`~peforge.sim.ports.PortMap`), whatever the family.  Inside the wrapper:

``din[2 + R * in_bits]``: bit 0 ``rst``, bit 1 ``in_valid``, then copy ``r``'s inputs at
``2 + r * in_bits + field.offset`` (manifest order: ``in_first``, ``a``, ``b``, ...);
``dout[R * out_bits]``: copy ``r``'s outputs at ``r * out_bits + field.offset`` (``out_valid``,
``acc``, ...).  Ports: ``clk``, ``load``, ``dump``, ``words`` (32 bits: words in the piece,
1..depth).

The wrapper is plain wiring, so it is written as Verilog text directly (deterministic, exact
widths, lint-clean), which takes milliseconds where an Amaranth/Yosys conversion of 64
instances takes seconds.
"""

from __future__ import annotations

from .ports import VALID, PortMap

__all__ = ["wrapper_verilog", "depth_for", "CONTROL_BITS", "MAX_ROWS", "DIN_FILE", "DOUT_FILE"]

#: ``din`` bits ahead of the first copy: ``rst``, ``in_valid``.
CONTROL_BITS = 2
MAX_ROWS = 4096
#: Files the wrapper reads and writes, relative to the simulator's working directory.
DIN_FILE, DOUT_FILE = "peforge_din.bin", "peforge_dout.bin"
GROUP = 8
#: Memory budget of the wrapper's two word memories (bits) and the depth bounds.
_MEMORY_BITS = 1 << 27
_MIN_DEPTH, _MAX_DEPTH = 64, 1 << 14


def _bits(base: int, width: int) -> str:
    return f"[{base}]" if width == 1 else f"[{base + width - 1}:{base}]"


def depth_for(ports: PortMap, rows: int) -> int:
    """Words per piece: a power of two that keeps both memories within about 16 MB."""
    word_bits = CONTROL_BITS + rows * (ports.in_bits + ports.out_bits)
    depth = _MAX_DEPTH
    while depth > _MIN_DEPTH and depth * word_bits > _MEMORY_BITS:
        depth //= 2
    return depth


def group_size(rows: int) -> int:
    """PE copies per group module: the largest divisor of ``rows`` up to :data:`GROUP`."""
    return max(g for g in range(1, min(GROUP, rows) + 1) if rows % g == 0)


def group_name(name: str) -> str:
    """Module name of the group inside wrapper ``name``."""
    return f"{name}_group"


def wrapper_verilog(ports: PortMap, rows: int, name: str) -> str:
    """Verilog text of the batch wrapper: module ``name`` holding ``rows`` copies of ``ports.module``
    and memories of :func:`depth_for` words."""
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"rows={rows!r} must be an int in 1..{MAX_ROWS}")
    if not name.isidentifier():
        raise ValueError(f"wrapper name {name!r} must be a Verilog identifier")
    n_in, n_out = CONTROL_BITS + rows * ports.in_bits, rows * ports.out_bits
    clk = ports.clock
    lines = [
        f"// batch wrapper: {rows} copies of {ports.module} fed from a file (peforge.sim.wrapper; test only)",
        f"module {name} ({clk}, load, dump, words);",
        f"  input wire {clk};",
        f"  input wire load;  // toggle: the next falling edge starts a piece: `words` words from {DIN_FILE}",
        f"  input wire dump;  // toggle: flush the recorded outputs to {DOUT_FILE}",
        "  input wire [31:0] words;",
        f"  reg [{n_in - 1}:0] din;",
        f"  wire [{n_out - 1}:0] dout;",
        "  integer fd_in, fd_out;",
        "  reg [31:0] left;",
        "  reg seen;",
        "  wire [31:0] todo = load != seen ? words : left;",
        "  initial begin",
        "    fd_in = 0;",
        f'    fd_out = $fopen("{DOUT_FILE}", "wb");',
        "    left = 0;",
        "    seen = 0;",
        "    din = 0;",
        "  end",
        "  always @(load) begin",
        "    if (fd_in != 0) $fclose(fd_in);",
        f'    fd_in = $fopen("{DIN_FILE}", "rb");',
        "  end",
        "  always @(dump) $fflush(fd_out);",
        f"  always @(negedge {clk}) begin",
        "    seen <= load;",
        "    if (todo != 0) begin  // the outputs before this edge's input word, then the word",
        '      $fwrite(fd_out, "%u", dout);',
        "      void'($fread(din, fd_in));",
        "      left <= todo - 32'd1;",
        "    end",
        "  end",
    ]
    g = group_size(rows)
    group = group_name(name)
    for k in range(rows // g):
        conns = [f".{clk}({clk})", ".rst(din[0])", ".in_valid(din[1])"]
        conns.append(f".gin(din{_bits(CONTROL_BITS + k * g * ports.in_bits, g * ports.in_bits)})")
        conns.append(f".gout(dout{_bits(k * g * ports.out_bits, g * ports.out_bits)})")
        lines.append(f"  {group} g{k} ({', '.join(conns)});")
    lines.append("endmodule")
    lines += [
        "",
        f"// {g} copies of {ports.module}: the unit Verilator compiles once (a hierarchical block)",
        f"module {group} ({clk}, rst, in_valid, gin, gout);",
        f"  input wire {clk};",
        "  input wire rst;",
        "  input wire in_valid;",
        f"  input wire [{g * ports.in_bits - 1}:0] gin;",
        f"  output wire [{g * ports.out_bits - 1}:0] gout;",
    ]
    for r in range(g):
        conns = [f".{clk}({clk})", f".{ports.reset_port}(rst)", f".{VALID}(in_valid)"]
        base = r * ports.in_bits
        conns += [f".{f.name}(gin{_bits(base + f.offset, f.width)})" for f in ports.inputs]
        base = r * ports.out_bits
        conns += [f".{f.name}(gout{_bits(base + f.offset, f.width)})" for f in ports.outputs]
        lines.append(f"  {ports.module} pe{r} ({', '.join(conns)});")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
