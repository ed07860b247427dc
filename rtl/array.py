"""PE array generator (:class:`peforge.arrays.ArraySpec`): rows x cols PEs, operand movement, drain.

Structure (output-stationary; the timing is :func:`peforge.arrays.array_geometry`'s):

* **Input register**: every input is registered once.
* **Row entry**: row ``i``'s word (its ``a``, its row ports such as ``scale_a``, and the
  control word ``valid, first, last`` plus the array-wide ports such as ``mode``) passes a skew
  chain of ``i`` registers; along the row it hops one register per PE (``a_path="systolic"``) or
  reaches every PE of the row at once (``"broadcast"``).  ``valid`` and ``first`` reach each
  grid unit through a tap register of its own (:meth:`PeArray._taps`), and in the Verilog build
  every control register is kept apart from its equivalents (:data:`KEEP`): no control net spans
  the array.
* **Column entry**: column ``j``'s word (``b``, ``scale_b`` / ``scale``) is skewed by ``j``
  cycles (systolic) and hops down the column, one register per PE.
* **Grid**: the PEs (or a row's LUT PE with ``cols * lanes`` lanes, whose one table unit serves
  the whole row).  Each PE's ``done`` flag is ``last`` delayed by the PE's manifest latency, so
  ``out_valid & done`` marks the cycle its ``acc`` holds the tile's result.
* **Drain**: each PE's result is captured in its own register, zero unless the result is ready
  (a synchronous reset, no logic on FPGAs): the accumulator drives only its neighbour, so the
  placer keeps it beside the PE's multiplier, and every long wire of the drain starts at a
  register.  Per column an OR tree (fan-in 4, one LUT4 level each) over the rows picks the
  ready one (rows finish one cycle apart, so at most one is ready while ``in_last`` inputs
  are ``rows`` cycles apart); ``pipeline`` registers cut the tree after its first levels (the
  rest follow the column register), then a deskew of ``cols - 1 - j`` registers so that a
  whole output row leaves in one cycle: ``out_valid`` and ``out`` (column ``j`` at
  ``[j * width +: width]``), rows 0..R-1 on consecutive cycles.
* **Shared group dequantiser** (grouped shift-add PE, ``share``): the PEs are integer
  shift-add PEs restarted every group by the array's group counter; per column one
  :class:`~peforge.rtl.blocks.dequant.GroupDequant` adds the group sum of the row whose group
  just completed, times the column's group scale, into that row's FP32 register.

Weight-stationary: ``w_load`` shifts one row of weight words (``b``) into a shadow chain
entering at the top (the first of ``rows`` loads ends in the bottom row); the ``in_first``
activation swaps each PE's shadow word into its active weight register as it passes, so the
next tile loads while the current one runs.  Each PE computes its step sum (``in_first`` tied
high); partial sums add down the columns (wrapping at the PE's accumulator width, flags ORed) and
leave the bottom deskewed: one output row per activation.

The PEs are instantiated by module name in the Verilog (:func:`array_verilog`: each distinct PE
module is emitted once, then the array), or as Amaranth sub-components
(``PeArray(spec, instances=False)``, for use inside a user's Amaranth design and Amaranth's
simulator).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import C, Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from peforge.arrays import COL, CTL, ROW, ArrayGeometry, ArraySpec, DequantShare, array_geometry
from peforge.families import family_of
from peforge.spec import Spec

from .blocks._util import SpecComponent, pe_signature
from .blocks.dequant import GroupDequant

__all__ = [
    "PeArray",
    "array_signature",
    "array_manifest",
    "array_verilog",
    "keep_register_verilog",
    "keep_module",
    "unit_module",
    "KEEP",
]


#: Control bits of the row words: reset to 0 (data registers are reset-less).
_CTL_BITS = frozenset({"valid", "first", "last", "gdone", "gzero"})
#: Row-word bits only the result marks read (delayed by the PE latency at the row entry).
_MARKS = frozenset({"last", "gdone", "gzero"})
#: Control bits each grid unit takes from its own tap register (see PeArray._taps).
_TAPPED = frozenset({"valid", "first"})


def array_signature(spec: ArraySpec) -> wiring.Signature:
    """Ports of the array (clk/rst come from the sync domain); see :func:`array_manifest`."""
    geo = array_geometry(spec)
    R, Cn, pe = geo.rows, geo.cols, geo.pe
    inputs = {"in_last" if geo.dataflow == "output-stationary" else "w_load": 1}
    inputs.update(pe.ports(CTL))
    inputs.update((name, R * width) for name, width in pe.ports(ROW))
    inputs.update((name, Cn * width) for name, width in pe.ports(COL))
    outputs = {"out": Cn * geo.out_width}
    if geo.flags_width:
        outputs["out_flags"] = Cn * geo.flags_width
    return pe_signature(inputs, outputs)


class _Unit:
    """One grid unit's port signals, connected to a PE sub-component or a Verilog instance."""

    def __init__(self, m: Module, spec: Spec, name: str, instances: bool, module: str, options: dict[str, Any]) -> None:
        from peforge import rtl

        sig = rtl.signature(spec)
        self.ports: dict[str, Signal] = {}
        self.outputs: set[str] = set()
        for port, member in sig.members.items():
            self.ports[port] = Signal(member.shape, name=f"{name}_{port}")
            if member.flow == Out:
                self.outputs.add(port)
        if instances:
            conns: dict[str, Any] = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
            for port, s in self.ports.items():
                conns[("o_" if port in self.outputs else "i_") + port] = s
            m.submodules[name] = Instance(module, **conns)
        else:
            comp = family_of(spec).part("generator")(spec, **options)
            m.submodules[name] = comp
            for port, s in self.ports.items():
                if port in self.outputs:
                    m.d.comb += s.eq(getattr(comp, port))
                else:
                    m.d.comb += getattr(comp, port).eq(s)

    def __getitem__(self, port: str) -> Signal:
        return self.ports[port]

    def drive(self, m: Module, port: str, value: Value) -> None:
        m.d.comb += self.ports[port].eq(value)


def _reg(m: Module, value: Value, name: str, n: int = 1, reset_less: bool = True, keep: str | None = None) -> Value:
    """``value`` delayed by ``n`` registers (0: as is).  ``keep``: the module name of
    :func:`keep_register_verilog`, which builds each register (with a reset) as one that
    synthesis keeps apart from equivalent ones (see :data:`KEEP`)."""
    for k in range(n):
        r = Signal(value.shape(), name=f"{name}_d{k}", reset_less=reset_less)
        if keep is not None and not reset_less:
            m.submodules[f"{name}_d{k}"] = Instance(
                keep, p_WIDTH=len(r), i_clk=ClockSignal(), i_rst=ResetSignal(), i_d=value, o_q=r
            )
        else:
            m.d.sync += r.eq(value)
        value = r
    return value


#: Why the array's control registers are kept apart: every PE sees the array-wide ``valid`` /
#: ``first`` / ``last`` delayed by its offset ``i + j``, so all PEs of an anti-diagonal see the
#: same delay of the same signal, and synthesis merges those registers into one (Yosys's
#: ``opt_merge``) whose net then crosses the whole array to every PE on that diagonal (measured:
#: the critical path of the 8x8 INT8 array at PE stages 1).  Kept registers stay one per row
#: entry, hop, tap and mark, each next to the PEs it feeds: a fanout limit by construction.
KEEP = "control registers kept one per row and hop (no array-wide control nets)"


def keep_register_verilog(module: str) -> str:
    """Verilog of the kept control register (a ``keep`` attribute on its process, which Yosys
    and the vendor tools honour), synchronous reset to 0."""
    return (
        f"// {KEEP}\n"
        f"module {module} #(parameter WIDTH = 1) (\n"
        "  input wire clk,\n"
        "  input wire rst,\n"
        "  input wire [WIDTH-1:0] d,\n"
        "  output reg [WIDTH-1:0] q = {WIDTH{1'b0}}\n"
        ");\n"
        "  (* keep *)\n"
        "  always @(posedge clk)\n"
        "    if (rst) q <= {WIDTH{1'b0}};\n"
        "    else q <= d;\n"
        "endmodule\n"
    )


def _or_tree(
    m: Module, words: list[Value], name: str, cuts: int, reset_less: bool = True, keep: str | None = None
) -> Value:
    """OR of ``words`` in levels of fan-in 4 (one LUT4 per bit and node), a register after
    each of the first ``cuts`` levels (``cuts`` registers in all)."""
    level = 0
    while len(words) > 1:
        words = [_or(ws) for ws in _groups(words, 4)]
        level += 1
        if level <= cuts:
            words = [_reg(m, w, f"{name}_l{level}_{k}", reset_less=reset_less, keep=keep) for k, w in enumerate(words)]
    # a tree with fewer levels than cuts (one word: a shared dequantiser's result) keeps the
    # same delay
    return _reg(m, words[0], f"{name}_l{level}", max(cuts - level, 0), reset_less=reset_less, keep=keep)


def _groups(words: list[Value], n: int) -> list[list[Value]]:
    return [words[k : k + n] for k in range(0, len(words), n)]


def _or(words: list[Value]) -> Value:
    out = words[0]
    for w in words[1:]:
        out = out | w
    return out


def _slice(word: Value, k: int, width: int) -> Value:
    return word[k * width : (k + 1) * width]


class PeArray(SpecComponent[ArraySpec]):
    """A rows x cols array of one PE spec (see the module docstring).

    Parameters
    ----------
    spec : ArraySpec
    instances : bool
        True: the PEs are Verilog instances of their module (``spec.pe.name``); False: Amaranth
        sub-components (simulatable by Amaranth, usable inside an Amaranth design).

    Members
    -------
    in_valid, in_first : In(1)
        Input strobe; ``in_first`` starts a tile (OS) or marks the first activation of a newly
        loaded weight tile (WS).
    in_last : In(1) -- output-stationary
        The tile's last input: its results are drained (``in_last`` inputs at least ``rows``
        cycles apart).
    w_load : In(1) -- weight-stationary
        Shift the ``b`` words into the shadow weight chain.
    a : In(rows * pe a width), b : In(cols * pe b width)
        Row ``i`` (column ``j``) at bits ``[i * w +: w]``; the PE's other inputs likewise by
        their role (``scale_a`` per row, ``scale_b`` / ``scale`` per column, ``mode`` /
        ``a_signed`` / ``b_signed`` once).
    out_valid : Out(1)
    out : Out(cols * pe acc width)
        One output row per cycle, column ``j`` at ``[j * width +: width]``.
    out_flags : Out(cols * 3) -- PEs with ``acc_flags``
    """

    spec_class = ArraySpec

    def __init__(self, spec: ArraySpec, *, instances: bool = False) -> None:
        super().__init__(spec, array_signature)
        self._geo = array_geometry(spec)
        self._instances = instances
        # the Verilog build keeps its control registers apart (KEEP); Amaranth's simulator and
        # a user's Amaranth design get plain registers
        self._keep = keep_module(spec) if instances else None

    @property
    def geometry(self) -> ArrayGeometry:
        return self._geo

    def emit_verilog(self) -> str:
        """Deterministic Verilog: each distinct PE module once, then the array (PEs instantiated
        by module name); see :func:`array_verilog`."""
        self._MustUse__silence = True  # this component only names the design; array_verilog builds its own
        return array_verilog(self._spec)

    def unit_specs(self) -> list[Spec]:
        """The distinct PE specs the grid instantiates."""
        return [self._geo.unit.spec]

    def unit_module(self) -> tuple[str, dict[str, Any]]:
        """The grid's PE module name and its generator's options (:func:`unit_module`)."""
        return unit_module(self._geo)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        geo = self._geo
        if geo.dataflow == "output-stationary":
            self._output_stationary(m, geo)
        else:
            self._weight_stationary(m, geo)
        return m

    # --- shared pieces ----------------------------------------------------------------------
    def _entry(
        self, m: Module, geo: ArrayGeometry, ctl: list[tuple[str, Value]]
    ) -> tuple[list[dict[str, Value]], list[dict[str, Value]]]:
        """Registered, skewed row and column words: ``rows[i]`` and ``cols[j]`` map port names
        (and the control bits ``ctl``) to the values at PE ``(i, 0)`` and ``(0, j)`` (the
        tapped bits one cycle earlier: see :meth:`_taps`)."""
        pe = geo.pe
        rows, cols = [], []
        for i in range(geo.rows):
            word: dict[str, Value] = {}
            for name, value in ctl:
                word[name] = value
            for name, _width in pe.ports(CTL):
                word[name] = getattr(self, name)
            for name, width in pe.ports(ROW):
                word[name] = _slice(getattr(self, name), i, width)
            rows.append(
                {
                    # a tapped bit reaches its PEs through their own tap register (_taps): one less here
                    k: _reg(
                        m,
                        v,
                        f"row{i}_{k}",
                        (0 if k in _TAPPED else 1) + i * geo.row_skew,
                        reset_less=k not in _CTL_BITS,
                        keep=self._keep,
                    )
                    for k, v in word.items()
                }
            )
        for j in range(geo.cols if geo.dataflow == "output-stationary" else 0):
            word = {name: _slice(getattr(self, name), j, width) for name, width in pe.ports(COL)}
            cols.append({k: _reg(m, v, f"col{j}_{k}", 1 + j * geo.col_skew) for k, v in word.items()})
        return rows, cols

    def _grid_paths(
        self, m: Module, geo: ArrayGeometry, rows: list[dict[str, Value]], cols: list[dict[str, Value]]
    ) -> tuple[list[list[dict[str, Value]]], list[list[dict[str, Value]]]]:
        """Row words at every grid unit (hops along the row or broadcast) and column words at
        every PE (hops down the column)."""
        row_at: list[list[dict[str, Value]]] = []
        for i, word in enumerate(rows):
            line = [word]
            for u in range(1, geo.units_per_row):
                prev = line[-1]
                line.append(
                    prev
                    if geo.col_skew == 0
                    else {
                        k: _reg(m, v, f"hop_a{i}_{u}_{k}", reset_less=k not in _CTL_BITS, keep=self._keep)
                        for k, v in prev.items()
                        if k not in _MARKS  # the result marks hop on their own, PE latency later
                    }
                )
            row_at.append(line)
        col_at: list[list[dict[str, Value]]] = [[] for _ in range(geo.rows)]
        for j, word in enumerate(cols):
            cur = dict(word)
            for i in range(geo.rows):
                if i:
                    cur = {k: _reg(m, v, f"hop_b{i}_{j}_{k}") for k, v in cur.items()}
                col_at[i].append(cur)
        return row_at, col_at

    def _taps(self, m: Module, row_at: list[list[dict[str, Value]]]) -> list[list[dict[str, Value]]]:
        """Each grid unit's word with its own register for the tapped control bits (valid,
        first): a unit's pipeline registers that delay them then have no twin in the hop chain
        or in another unit, so synthesis merges none of them (a merged one would feed units
        several hops apart)."""
        out = []
        for i, line in enumerate(row_at):
            out.append(
                [
                    {
                        **word,
                        **{
                            k: _reg(m, word[k], f"tap{i}_{u}_{k}", reset_less=False, keep=self._keep)
                            for k in sorted(_TAPPED)  # a fixed order: deterministic Verilog
                            if k in word
                        },
                    }
                    for u, word in enumerate(line)
                ]
            )
        return out

    def _units(self, m: Module, geo: ArrayGeometry) -> list[list[_Unit]]:
        module, options = self.unit_module()
        return [
            [_Unit(m, geo.unit.spec, f"pe_{i}_{u}", self._instances, module, options) for u in range(geo.units_per_row)]
            for i in range(geo.rows)
        ]

    def _drain(
        self,
        m: Module,
        geo: ArrayGeometry,
        events: list[list[Value]],
        values: list[list[Value]],
        flags: list[list[Value]] | None,
        shared: bool = False,
    ) -> None:
        """Per column: each PE's result register (zero unless its result is ready), an OR tree
        over the rows cut by ``pipeline`` registers, the column register, the remaining pipeline
        registers, the deskew -> out.  ``shared``: a column's rows all offer the same value (a
        shared dequantiser's result): one result register per column."""
        outs, fouts = [], []
        valid: Value = C(0, 1)
        tail = geo.pipeline - geo.drain_cuts
        for j in range(geo.cols):
            rows = [0] if shared else list(range(geo.rows))
            ready = [Cat(*(events[i][j] for i in range(geo.rows))).any()] if shared else [events[i][j] for i in rows]
            words = []
            for k, i in enumerate(rows):
                value = values[i][j].as_unsigned()
                value = Cat(value, C(0, geo.out_width - len(value))) if len(value) < geo.out_width else value
                word = Cat(value, flags[i][j]) if flags is not None else value
                res = Signal(len(word), name=f"res_{i}_{j}", reset_less=True)
                m.d.sync += res.eq(Mux(ready[k], word, 0))  # a synchronous reset: no logic on FPGAs
                words.append(res)
            word = _reg(m, _or_tree(m, words, f"drain{j}", geo.drain_cuts), f"drain{j}", 1 + tail)
            deskew = (geo.cols - 1 - j) * geo.col_skew
            outs.append(_reg(m, word[: geo.out_width], f"deskew{j}", deskew))
            if flags is not None:
                fouts.append(_reg(m, word[geo.out_width :], f"deskewf{j}", deskew))
            if j == 0:
                ev = [_reg(m, events[i][0], f"ready{i}", reset_less=False, keep=self._keep) for i in range(geo.rows)]
                ev0 = _or_tree(m, ev, "ready", geo.drain_cuts, reset_less=False, keep=self._keep)
                valid = _reg(m, ev0, "drain_valid", 1 + tail + deskew, reset_less=False, keep=self._keep)
        m.d.comb += [self.out.eq(Cat(*outs)), self.out_valid.eq(valid)]
        if flags is not None:
            m.d.comb += self.out_flags.eq(Cat(*fouts))

    # --- output-stationary ------------------------------------------------------------------
    def _output_stationary(self, m: Module, geo: ArrayGeometry) -> None:
        pe, unit = geo.pe, geo.unit
        first: Value = self.in_first
        ctl: list[tuple[str, Value]] = [("valid", self.in_valid), ("last", self.in_last)]
        dq = self._spec.dequant_share
        if dq is not None:
            first, gdone, gzero = self._group_counter(m, dq.group)
            ctl += [("gdone", gdone), ("gzero", gzero)]
        ctl.append(("first", first))
        rows, cols = self._entry(m, geo, ctl)
        row_at, col_at = self._grid_paths(m, geo, rows, cols)
        row_at = self._taps(m, row_at)
        units = self._units(m, geo)
        L = unit.latency
        events: list[list[Value]] = [[C(0, 1)] * geo.cols for _ in range(geo.rows)]
        values: list[list[Value]] = [[C(0, 1)] * geo.cols for _ in range(geo.rows)]
        flags: list[list[Value]] | None = [[C(0, 1)] * geo.cols for _ in range(geo.rows)] if geo.flags_width else None
        ints: list[list[Value]] = [[C(0, 1)] * geo.cols for _ in range(geo.rows)]
        marks: list[list[dict[str, Value]]] = [[{} for _ in range(geo.cols)] for _ in range(geo.rows)]
        keep = ["last"] + (["gdone", "gzero"] if geo.shared_dequant else [])
        for i in range(geo.rows):
            # the row's result marks, delayed by the PE latency, then hopping with the row
            delayed = {k: _reg(m, rows[i][k], f"mark{i}_{k}", L, reset_less=False, keep=self._keep) for k in keep}
            for u, pe_unit in enumerate(units[i]):
                word = row_at[i][u]
                if u and geo.col_skew:
                    delayed = {
                        k: _reg(m, v, f"mark{i}_{u}_{k}", reset_less=False, keep=self._keep) for k, v in delayed.items()
                    }
                pe_unit.drive(m, "in_valid", word["valid"])
                pe_unit.drive(m, "in_first", word["first"])
                for name, _ in pe.ports(CTL) + pe.ports(ROW):
                    pe_unit.drive(m, name, word[name])
                jcols = range(u * geo.cols_per_unit, (u + 1) * geo.cols_per_unit)
                for name, _ in unit.ports(COL):
                    pe_unit.drive(m, name, Cat(*(col_at[i][j][name] for j in jcols)))
                for k, j in enumerate(jcols):
                    marks[i][j] = delayed
                    events[i][j] = pe_unit["out_valid"] & delayed["last"]
                    values[i][j] = _slice(pe_unit["acc"], k, pe.acc_width)
                    ints[i][j] = pe_unit["out_valid"]
                    if flags is not None:
                        flags[i][j] = _slice(pe_unit["acc_flags"], k, geo.flags_width)
        if dq is not None:
            events, values = self._dequantisers(m, geo, dq, cols, units, marks, ints)
        self._drain(m, geo, events, values, flags, shared=dq is not None)

    def _group_counter(self, m: Module, group: int) -> tuple[Value, Value, Value]:
        """The grouped shift-add PE's group counter, at the array input: (PE first = group
        start, group done, the group began with ``in_first``)."""
        cnt = Signal(range(group + 1), name="group_count")
        zero = Signal(name="group_zero_q")
        start = self.in_first | (cnt == 0)
        count = Mux(start, 1, cnt + 1)
        gdone = Signal(name="group_done")
        gzero = Signal(name="group_zero")
        m.d.comb += [gdone.eq(count == group), gzero.eq(Mux(start, self.in_first, zero))]
        with m.If(self.in_valid):
            m.d.sync += [cnt.eq(Mux(gdone, 0, count)), zero.eq(gzero)]
        return start, gdone, gzero

    def _dequantisers(
        self,
        m: Module,
        geo: ArrayGeometry,
        share: DequantShare,
        cols: list[dict[str, Value]],
        units: list[list[_Unit]],
        marks: list[list[dict[str, Value]]],
        valids: list[list[Value]],
    ) -> tuple[list[list[Value]], list[list[Value]]]:
        """One shared group dequantiser per column; returns the drain's events and values."""
        L = geo.unit.latency
        events: list[list[Value]] = [[C(0, 1)] * geo.cols for _ in range(geo.rows)]
        values: list[list[Value]] = [[C(0, 1)] * geo.cols for _ in range(geo.rows)]
        for j in range(geo.cols):
            dq = GroupDequant(geo.unit.acc_width, share.pe.product_lsb_exp, share.scale)
            m.submodules[f"dequant{j}"] = dq
            # the column's group scale reaches the column top with the group's last input (the
            # column skew), then waits the PE latency for row 0's group sum; later rows reuse it
            scale_top = _reg(m, cols[j]["scale"], f"scale{j}", L)
            hold = Signal(share.scale.bits, name=f"scale{j}_hold")
            ev = [valids[i][j] & marks[i][j]["gdone"] for i in range(geo.rows)]
            fp = [Signal(32, name=f"fp_{i}_{j}") for i in range(geo.rows)]
            s_sel = Const(0, signed(geo.unit.acc_width))
            base = Const(0, 32)
            zero = Const(0, 1)
            for i in range(geo.rows):
                s_sel = s_sel | Mux(ev[i], units[i][j]["acc"].as_signed(), 0)
                base = base | Mux(ev[i], fp[i], 0)
                zero = zero | (ev[i] & marks[i][j]["gzero"])
            with m.If(ev[0]):
                m.d.sync += hold.eq(scale_top)
            m.d.comb += [dq.s.eq(s_sel), dq.base.eq(Mux(zero, 0, base)), dq.scale.eq(Mux(ev[0], scale_top, hold))]
            for i in range(geo.rows):
                with m.If(ev[i]):
                    m.d.sync += fp[i].eq(dq.result)
                events[i][j] = ev[i] & marks[i][j]["last"]
                values[i][j] = dq.result
        return events, values

    # --- weight-stationary ------------------------------------------------------------------
    def _weight_stationary(self, m: Module, geo: ArrayGeometry) -> None:
        pe = geo.pe
        rows, _ = self._entry(m, geo, [("valid", self.in_valid), ("first", self.in_first)])
        row_at, _ = self._grid_paths(m, geo, rows, [])
        row_at = self._taps(m, row_at)
        units = self._units(m, geo)
        load = _reg(m, self.w_load, "w_load", 1, reset_less=False, keep=self._keep)
        wb = pe.width(COL)
        lane, lanes = pe.lane_width, pe.acc_lanes
        above = [_reg(m, _slice(self.b, j, wb), f"wb{j}") for j in range(geo.cols)]  # shadow chain input
        psum: list[Value] = [C(0, 1)] * geo.cols
        pflags: list[Value] = [C(0, 1)] * geo.cols
        for i in range(geo.rows):
            for u, pe_unit in enumerate(units[i]):
                word = row_at[i][u]
                pe_unit.drive(m, "in_valid", word["valid"])
                pe_unit.drive(m, "in_first", C(1, 1))
                for name, _ in pe.ports(CTL) + pe.ports(ROW):
                    pe_unit.drive(m, name, word[name])
                swap = word["valid"] & word["first"]
                jcols = range(u * geo.cols_per_unit, (u + 1) * geo.cols_per_unit)
                weights = []
                for j in jcols:
                    shadow = Signal(wb, name=f"wsh_{i}_{j}", reset_less=True)
                    active = Signal(wb, name=f"wact_{i}_{j}", reset_less=True)
                    with m.If(load):
                        m.d.sync += shadow.eq(above[j])
                    with m.If(swap):
                        m.d.sync += active.eq(shadow)
                    weights.append(Mux(swap, shadow, active))
                    above[j] = shadow
                pe_unit.drive(m, "b", Cat(*weights))
                for k, j in enumerate(jcols):
                    acc = _slice(pe_unit["acc"], k, pe.acc_width)
                    parts = [
                        _slice(acc, ln, lane) if i == 0 else (_slice(psum[j], ln, lane) + _slice(acc, ln, lane))[:lane]
                        for ln in range(lanes)
                    ]
                    nxt = Signal(pe.acc_width, name=f"psum_{i}_{j}", reset_less=True)
                    m.d.sync += nxt.eq(Cat(*parts))
                    psum[j] = nxt
                    if geo.flags_width:
                        f = _slice(pe_unit["acc_flags"], k, geo.flags_width)
                        nf = Signal(geo.flags_width, name=f"pflag_{i}_{j}", reset_less=True)
                        m.d.sync += nf.eq(f if i == 0 else (pflags[j] | f))
                        pflags[j] = nf
        outs, fouts = [], []
        for j in range(geo.cols):
            depth = geo.pipeline + (geo.cols - 1 - j) * geo.col_skew
            outs.append(_reg(m, psum[j], f"drain{j}", depth))
            if geo.flags_width:
                fouts.append(_reg(m, pflags[j], f"drainf{j}", depth))
        valid = _reg(m, self.in_valid, "out_valid", geo.latency, reset_less=False, keep=self._keep)
        m.d.comb += [self.out.eq(Cat(*outs)), self.out_valid.eq(valid)]
        if geo.flags_width:
            m.d.comb += self.out_flags.eq(Cat(*fouts))


def unit_module(geo: ArrayGeometry) -> tuple[str, dict[str, Any]]:
    """The grid's PE module name and its generator's options: the PE's own module, or in an
    output-stationary grid of a PE with a clear group (:class:`peforge.arrays.PeView`) its
    build with a kept ``first`` delay line (its accumulator clear) per group of accumulator
    bits, ``<pe>__clr<group>``
    (same ports, function and latency)."""
    unit = geo.unit
    if geo.dataflow == "output-stationary" and unit.clear_group:
        return f"{unit.spec.name}__clr{unit.clear_group}", {"clear_group": unit.clear_group}
    return unit.spec.name, {}


def keep_module(spec: ArraySpec) -> str:
    """Name of the array's kept control register module (one per array, so several arrays'
    Verilog can share a project)."""
    return f"{spec.name}__keep"


def array_verilog(spec: ArraySpec) -> str:
    """Verilog of the array: each distinct PE module once, then the array module ``spec.name``."""
    from amaranth.back import verilog as _verilog

    from peforge import rtl

    top = PeArray(spec, instances=True)
    module, options = top.unit_module()
    if options:  # the PE built for the grid: its clear copies kept apart like the array's registers
        (unit,) = top.unit_specs()
        gen = family_of(unit).part("generator")(unit, keep=keep_module(spec), **options)
        parts = [_verilog.convert(gen, name=module, emit_src=False)]
    else:
        parts = [rtl.verilog(s) for s in top.unit_specs()]
    parts.append(keep_register_verilog(keep_module(spec)))
    parts.append(_verilog.convert(top, name=spec.name, emit_src=False))
    return "".join(parts)


def array_manifest(spec: ArraySpec) -> dict[str, Any]:
    """Manifest fields of the array: result, lane packing, timing, the GEMM mapping, the PE's
    own manifest and the shared units."""
    from peforge import rtl

    geo = array_geometry(spec)
    pe_man = rtl.manifest(spec.pe)
    unit = geo.unit.spec
    unit_man = pe_man if unit == spec.pe else rtl.manifest(unit)
    if unit_man["latency"] != geo.unit.latency:
        raise ValueError(
            f"{unit.name}: manifest latency {unit_man['latency']} != the array geometry's {geo.unit.latency}"
        )
    R, Cn = geo.rows, geo.cols
    pe = geo.pe
    module, options = unit_module(geo)
    result = dict(pe_man["result"])
    result.update(port="out", columns=Cn, width=geo.out_width, order="column j at bits [j*width +: width]")
    if geo.flags_width:
        result["flags"] = {
            **(pe_man["result"].get("flags") or {}),
            "port": "out_flags",
            "order": "column j at bits [j*3 +: 3]",
        }
    packing: dict[str, Any] = {}
    for name, (role, width) in pe.inputs.items():
        count = {ROW: R, COL: Cn, CTL: 1}[role]
        packing[name] = {
            "role": {ROW: "per row", COL: "per column", CTL: "array-wide"}[role],
            "count": count,
            "width": width,
            "order": "row i at bits [i*width +: width]"
            if role == ROW
            else "column j at bits [j*width +: width]"
            if role == COL
            else "one word",
            "pe_packing": pe_man.get("lane_packing", {}).get(name),
        }
    step = max(pe.beats * pe.interval, 1)
    k_per_step = pe.k_per_step
    n_per_col = pe.acc_lanes
    if geo.dataflow == "output-stationary":
        gemm = {
            "tile": {"rows": R, "cols": Cn * n_per_col, "k_per_step": k_per_step},
            "x": f"row i of the tile's x -> port a row i (and the PE's other row ports), one PE step "
            f"({k_per_step} k values) per input",
            "w": f"column j of the tile's w ({n_per_col} output column(s) per PE) -> port b column j, the same steps",
            "steps": "in_first on a tile's first input, in_last on its last; any number of steps, "
            f"in_last inputs at least {geo.min_last_gap} cycles apart",
            "output": "row i of the result tile leaves latency + i cycles after in_last; out column j "
            "= PE (i, j)'s acc port",
            "order": "every output is one PE accumulation chain in k order (the PE's rounding order)",
        }
    else:
        gemm = {
            "tile": {"k": R * k_per_step, "cols": Cn * n_per_col},
            "w": f"PE (i, j) holds the weight word of k chunk i ({k_per_step} k values) and column j: "
            f"{R} w_load cycles shift the rows of weight words in, the first load ends in row {R - 1}",
            "x": "one activation row per input: its k chunk i -> port a row i",
            "steps": f"in_first on the first activation of a newly loaded tile; the next tile's w_load "
            f"cycles start at least {geo.ws_swap_window} cycles after it and end before the next "
            "in_first",
            "output": "each activation's output row (partial sums over the tile's k range, two's "
            "complement at the PE's accumulator width) leaves latency cycles later; sum the "
            "partials of a GEMM's k tiles modulo 2**width",
            "order": "exact: integer partial sums in any order equal the PE's chain modulo 2**width",
        }
    shared: dict[str, Any] = {}
    lut = spec.row_lut
    if lut is not None:
        shared["row_table"] = {
            "units": R,
            "unit": unit.name,
            "note": "one LUT table unit per row, shared by "
            f"all {Cn} columns (a row is one LUT PE of {Cn * lut.lanes} lanes)",
        }
    if geo.shared_dequant:
        shared["column_dequantiser"] = {
            "units": Cn,
            "pe": unit.name,
            "note": "one group dequantiser per column, serving its rows one per cycle, with their FP32 registers",
        }
    if spec.pe.family == "blockdot":
        shared["block_scales"] = (
            "scale_a moves with its row's blocks, scale_b with its column's; each PE reads them on a block's last beat"
        )
    return {
        "result": result,
        "lane_packing": packing,
        "dataflow": geo.dataflow,
        "a_path": geo.a_path,
        "timing": {
            "latency": geo.latency,
            "pe_latency": geo.unit.latency,
            "initiation_interval": pe.interval,
            "beats_per_step": pe.beats,
            "cycles_per_step": step,
            "min_last_gap": geo.min_last_gap if geo.dataflow == "output-stationary" else None,
            "swap_window": geo.ws_swap_window or None,
            "pipeline": geo.pipeline,
            "pe_offset": "i + j cycles" if geo.col_skew else "i cycles",
        },
        "throughput": {"macs_per_cycle": geo.macs_per_cycle, "pes": R * Cn, "pe_macs_per_cycle": pe.macs_per_cycle},
        "gemm": gemm,
        "shared_units": shared,
        "pe": {
            "module": module,
            "spec": spec.pe.to_dict(),
            "manifest_latency": unit_man["latency"],
            "instances": R * geo.units_per_row,
            "clear_copies": geo.unit.clear_copies if options else 1,
        },
        "datapath": {"rows": R, "cols": Cn, "units_per_row": geo.units_per_row, "cols_per_unit": geo.cols_per_unit},
    }
