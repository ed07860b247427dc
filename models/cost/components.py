"""Component library of the cost model: datapath blocks priced as feature counts.

A PE is described to the cost model as a :class:`Netlist`: the blocks its RTL generator
builds (adders, comparators, multipliers, shifters, leading-zero counters, muxes, random
logic, registers), each recorded as target-independent *feature* amounts (bits of adder,
partial-product bits, mux bits ...).  A target prices a netlist as a dot product of its fitted
coefficients with the feature totals (:mod:`.calibration`), so there is one component library
and one fit per target, never a table per family.

Every block also records

* the timing *segment* it sits in (pipeline registers start a new one) and whether it lies on
  the segment's critical chain: the chain's LUT levels and carry bits give the delay;
* an *activity class* (``operand``, ``product``, ``sum``, ``acc``, ``ctl``): the energy model
  weights each class by the toggle rate a workload drives into it (:mod:`.energy`).

Multipliers are kept apart (:attr:`Netlist.mults`) because a target may put them in DSP blocks.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterator, Sequence

__all__ = ["FEATURES", "CLASSES", "Mult", "Netlist", "clog2", "tree_full_adders", "extension_discount"]

#: Feature names, in the order of every coefficient vector.  Most are bits of one block kind;
#: ``gate``: per-bit logic feeding a carry chain; ``lone``: LUTs left alone between DSP blocks;
#: ``sext``: sign-extension bits of products merged into a ``$macc``; ``deep``: logic amount x
#: LUT levels per pipeline segment / 100 (delay-driven mapping duplicates logic in deep
#: segments); ``one``: the intercept.
FEATURES = (
    "add",
    "csa",
    "cmp",
    "mul",
    "mulw",
    "mux",
    "muxw",
    "shift",
    "place",
    "lzc",
    "logic",
    "gate",
    "lone",
    "sext",
    "deep",
    "ff",
    "ffe",
    "one",
)
#: Activity classes of the energy model.
CLASSES = ("operand", "product", "sum", "acc", "ctl")

_F = {name: i for i, name in enumerate(FEATURES)}
_C = {name: i for i, name in enumerate(CLASSES)}


def tree_full_adders(
    widths: Sequence[int], out_width: int, signed: bool = False, offsets: Sequence[int] | None = None
) -> int:
    """Full adders of a carry-save tree that reduces the operands to two rows, column by column.

    Operand ``i`` holds bits ``offsets[i] .. offsets[i] + widths[i] - 1`` (a constant shift
    leaves its low columns empty); a ``signed`` one also fills the columns above it up to
    ``out_width`` with its sign.  A column of height ``h`` (its bits plus the carries from the
    column below) needs ``ceil((h - 2) / 2)`` full adders, each sending one carry up.
    """
    return _tree_full_adders(tuple(widths), out_width, signed, tuple(offsets or (0,) * len(widths)))


@lru_cache(maxsize=4096)
def _tree_full_adders(widths: tuple[int, ...], out_width: int, signed: bool, offsets: tuple[int, ...]) -> int:
    heights = [0] * out_width
    for w, o in zip(widths, offsets):
        top = out_width if signed else min(o + w, out_width)
        for j in range(min(o, out_width), top):
            heights[j] += 1
    fas = carry = 0
    for h in heights:
        h += carry
        carry = max((h - 1) // 2, 0)
        fas += carry
    return fas


def extension_discount(widths: Sequence[int], out_width: int) -> float:
    """Full adders a signed multi-operand sum does not spend in its sign-extension columns.

    Above ``T = w + clog2(E)`` (the ``E`` narrow operands' sum width, ``w`` the widest of
    them) every narrow operand is a copy of its sign bit in each column: a column adds the
    widest operand's bit to the same popcount of signs, and Yosys / ABC share that logic
    across columns.  Measured on bare registered sums (8 extra columns, iCE40 and ECP5 agree):
    a column costs ``min(E - 1, 1.5 log2 E)`` full adders (E = 2, 4, 8, 16: 1, 3, 4, 5.8),
    not the ``E - 1`` of a carry-save row.
    """
    narrow = sorted(widths)[:-1]
    e = len(narrow)
    columns = out_width - narrow[-1] - clog2(e)
    if e < 3 or columns <= 0:
        return 0.0
    return columns * (e - 1 - min(e - 1, 1.5 * math.log2(e)))


def clog2(n: int) -> int:
    """ceil(log2(n)) for n >= 1 (0 for n = 1)."""
    return (n - 1).bit_length() if n > 1 else 0


@dataclass(frozen=True)
class Mult:
    """``count`` multipliers of ``a_bits`` x ``b_bits`` (``y_bits`` product bits kept);
    ``unsigned``: both operands are magnitudes (a signed-only DSP needs one more bit each);
    ``shared``: built inside :meth:`Netlist.shared`; ``macc_width``: the products are signed
    and sum, unregistered, into one ``$macc`` of that width (see :meth:`Netlist.mult`)."""

    a_bits: int
    b_bits: int
    y_bits: int
    count: int
    cls: str
    segment: int
    unsigned: bool = False
    shared: bool = False
    macc_width: int = 0
    #: ``(lut levels, carry bits)`` the multiplier added to its segment's chain, and the chain
    #: before it (``(0, 0)``: its operands come straight from registers)
    chain: tuple[float, float] = (0.0, 0.0)
    before: tuple[float, float] = (0.0, 0.0)


@dataclass
class Netlist:
    """Feature totals of one PE, built block by block (see the module docstring).

    Members
    -------
    feats : list of list of float
        ``feats[class][feature]`` amounts (multipliers excluded).
    ffs : int
        Register bits the RTL keeps (what synthesis should report).
    mults : list of Mult
    depth : dict
        Segment -> [lut_levels, carry_bits] along its critical chain.
    macs_per_cycle : float
        Products summed per cycle (mode 0 for a multi-mode PE; a PE array: all its PEs).
    notes : dict
        Family facts shown with the estimate (widths, lanes per mode, ...).
    dsp_regs : list of (int, int)
        ``(index into mults, register bits)``: registers a 7-series DSP48 absorbs (its M and P
        registers) when that multiplier group maps to DSPs; see :meth:`dsp_register`.
    dsp_logic : list of (int, list of float)
        ``(index into mults, feature amounts)``: logic a 7-series DSP48's post-adder absorbs
        (an accumulator ``first ? p : acc + p``) when that group maps to DSPs; see :meth:`totals`.
    shared_feats : list of list of float
        The part of ``feats`` built inside :meth:`shared` (priced without the family scale).
    has_shared : bool
        Whether any block was built inside :meth:`shared`.
    cut_work : list of float
        Logic amount (all features but registers) built before each :meth:`cut`; see
        :meth:`segment_work`.
    loops : set of int
        Segments that hold a feedback loop (an accumulator register feeding its own logic,
        marked by :meth:`feedback`): no pipeline register can shorten them.
    subs : list of (Netlist, float, str)
        Whole netlists of other PEs this one contains (a PE array's PEs): ``(netlist, count,
        family)``, each priced as its own family prices it (:meth:`include`).
    accumulators : list of (ops, width, out_width, n, cls, signed)
        The :meth:`accumulate` blocks built (a PE array prices what is left of them when
        ``first`` is tied high).
    intercept : bool
        Whether the target's intercept (feature ``one``) prices this netlist: a whole design's
        does; a part taken off or moved by an array (:meth:`include`) does not.
    """

    feats: list[list[float]] = field(default_factory=lambda: [[0.0] * len(FEATURES) for _ in CLASSES])
    ffs: int = 0
    mults: list[Mult] = field(default_factory=list)
    depth: dict[int, list[float]] = field(default_factory=dict)
    segment: int = 0
    macs_per_cycle: float = 1
    notes: dict = field(default_factory=dict)
    dsp_regs: list[tuple[int, int]] = field(default_factory=list)
    dsp_logic: list[tuple[int, list[float]]] = field(default_factory=list)
    shared_feats: list[list[float]] = field(default_factory=lambda: [[0.0] * len(FEATURES) for _ in CLASSES])
    cut_work: list[float] = field(default_factory=list)
    has_shared: bool = False
    loops: set[int] = field(default_factory=set)
    subs: list[tuple["Netlist", float, str]] = field(default_factory=list)
    accumulators: list[tuple[tuple[int, ...], int, int, int, str, bool]] = field(default_factory=list)
    intercept: bool = True
    priced: dict = field(default_factory=dict, repr=False)
    _scope: int = field(default=0, repr=False)
    _total: list[float] = field(default_factory=lambda: [0.0] * len(FEATURES), repr=False)

    # --- bookkeeping ----------------------------------------------------------------------
    def _put(self, feature: str, amount: float, cls: str) -> None:
        i = _F[feature]
        self.feats[_C[cls]][i] += amount
        self._total[i] += amount
        if self._scope:
            self.shared_feats[_C[cls]][i] += amount

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Blocks built inside are a building block several families share (the group
        dequantiser of ``rtl/blocks/dequant.py``): they are also recorded in
        :attr:`shared_feats`, and the target prices them without the family's scale, which
        corrects the family's own datapath only."""
        self._scope += 1
        self.has_shared = True
        try:
            yield
        finally:
            self._scope -= 1

    def chain(self, luts: float, carry: float = 0.0) -> None:
        """Add ``luts`` logic levels and ``carry`` carry bits to the current segment's chain."""
        d = self.depth.setdefault(self.segment, [0.0, 0.0])
        d[0] += luts
        d[1] += carry

    def parallel(self, *parts: Callable[[], None]) -> None:
        """Build each part (a function adding blocks); they run side by side from the same
        point, so the segment's chain grows by the longest of them only (compared as LUT
        levels plus carry bits / 8)."""
        seg = self.segment
        start = list(self.depth.get(seg, [0.0, 0.0]))
        longest = [0.0, 0.0]
        for part in parts:
            self.depth[seg] = list(start)
            part()
            end = self.depth.get(seg, [0.0, 0.0])
            delta = [end[0] - start[0], end[1] - start[1]]
            if delta[0] + delta[1] / 8 > longest[0] + longest[1] / 8:
                longest = delta
        self.depth[seg] = [start[0] + longest[0], start[1] + longest[1]]

    def cut(self) -> None:
        """A pipeline register: later blocks are timed in a new segment."""
        self.cut_work.append(self._logic_total())
        self.segment += 1

    def feedback(self) -> None:
        """The register just counted feeds back into the current segment's logic (the
        accumulator of an accumulate loop): the segment is a loop that no cut can split."""
        self.loops.add(self.segment)

    def _logic_total(self) -> float:
        t = self._total
        return sum(t) - t[_F["ff"]] - t[_F["ffe"]]

    def segment_work(self) -> list[float]:
        """Logic amount (all features but registers, multipliers excluded) per segment."""
        marks = [0.0, *self.cut_work, self._logic_total()]
        return [b - a for a, b in zip(marks, marks[1:])]

    def include(self, net: "Netlist", count: float, family: str) -> None:
        """``count`` copies of ``net``, a PE of ``family``: priced with that family's own fit
        (its scale, its DSP mapping, its delay), the copies' costs added to this netlist's.  A
        negative ``count`` takes blocks off (logic that synthesis removes from included PEs,
        e.g. an accumulator whose ``first`` input is tied high); its delay is not considered."""
        if count:
            self.subs.append((net, count, family))

    @property
    def total_ffs(self) -> float:
        """Register bits of this netlist and of every included one."""
        return self.ffs + sum(c * sub.total_ffs for sub, c, _ in self.subs)

    # --- blocks ---------------------------------------------------------------------------
    def adder(self, width: int, n: int = 1, cls: str = "sum", path: bool = True) -> None:
        """``n`` two-operand adders / subtractors of ``width`` bits (one carry chain each)."""
        if width <= 0 or n <= 0:
            return
        self._put("add", width * n, cls)
        if path:
            self.chain(1, width)

    def multi_add(
        self,
        widths: list[int],
        out_width: int,
        n: int = 1,
        cls: str = "sum",
        path: bool = True,
        signed: bool = False,
        offsets: list[int] | None = None,
    ) -> None:
        """``n`` sums of several operands in one cell (Yosys ``alumacc`` merges an adder tree
        into one ``$macc``): a carry-save tree over all but two operands, then one adder.

        The tree's full adders are counted column by column (:func:`tree_full_adders`);
        ``signed`` operands are sign extended to ``out_width`` first (``maccmap``), less
        what the sign-extension columns share (:func:`extension_discount`); unsigned ones only
        pad with zeros.  ``offsets``: constant left shifts of the operands (empty low columns).
        """
        if n <= 0 or not widths:
            return
        if len(widths) <= 2:
            self.adder(out_width, n, cls, path)
            return
        fas: float = tree_full_adders(widths, out_width, signed, offsets)
        if signed:  # sign-extension columns: see :func:`extension_discount`
            fas = max(fas - extension_discount(widths, out_width), 0.0)
        self._put("csa", fas * n, cls)
        self._put("add", out_width * n, cls)
        if path:
            self.chain(1 + math.log(len(widths) / 2, 1.5), out_width)

    def gate(self, width: int, n: int = 1, cls: str = "sum", levels: float = 0.0) -> None:
        """Per-bit logic on an operand of a two-operand adder (an AND with ``first``, an XOR
        with a sign): it feeds the carry chain, so it packs into no other LUT."""
        if width <= 0 or n <= 0:
            return
        self._put("gate", width * n, cls)
        if levels:
            self.chain(levels)

    def accumulate(
        self,
        ops: list[int],
        width: int,
        out_width: int,
        n: int = 1,
        cls: str = "acc",
        path: bool = True,
        signed: bool = False,
    ) -> None:
        """``n`` accumulator updates ``Mux(first, 0, acc) + sum(ops)`` (``acc`` ``width`` bits).

        One operand: a two-operand adder whose ``acc`` input is gated; the gate feeds the
        carry chain, so it keeps a LUT of its own (feature ``gate``).  Several: Yosys merges
        the gated ``acc`` into the carry-save tree (random ``logic``, see :meth:`multi_add`).
        """
        if n <= 0 or not ops:
            return
        self.accumulators.append((tuple(ops), width, out_width, n, cls, signed))
        if len(ops) == 1:
            self.gate(width, n, cls)
            self.adder(out_width, n, cls, path)
        else:
            self.logic(width * n, cls)
            self.multi_add(ops + [width], out_width, n, cls, path, signed)

    def compare(self, width: int, n: int = 1, cls: str = "ctl", path: bool = False) -> None:
        """Magnitude comparators (``<``, ``>=``) of ``width`` bits."""
        if width <= 0 or n <= 0:
            return
        self._put("cmp", width * n, cls)
        if path:
            self.chain(1, width)

    def equal(self, width: int, n: int = 1, cls: str = "ctl", path: bool = False) -> None:
        """Equality / zero tests and OR / AND reductions of ``width`` bits."""
        if width <= 0 or n <= 0:
            return
        self._put("logic", width * n, cls)
        if path:
            self.chain(max(1, math.ceil(math.log(max(width, 2), 4))))

    def mux(self, width: int, n: int = 1, inputs: int = 2, cls: str = "sum", path: bool = False) -> None:
        """``n`` ``inputs``-way multiplexers of ``width`` bits (``inputs - 1`` 2:1 muxes per bit)."""
        if width <= 0 or n <= 0 or inputs < 2:
            return
        self._put("mux" if inputs == 2 else "muxw", width * n * (inputs - 1), cls)  # wide selects map apart
        if path:
            self.chain(max(1, clog2(inputs) / 2))

    def shifter(
        self,
        width: int,
        levels: int,
        n: int = 1,
        cls: str = "sum",
        path: bool = True,
        in_width: int | None = None,
        step_bits: int = 0,
    ) -> None:
        """Barrel shifters with ``levels`` mux levels and ``width`` output bits.

        ``in_width`` < ``width`` (a narrow significand placed into a wide word): level k only
        muxes the ``in_width + 2**(k+1) - 1`` bits the data can have reached.  ``step_bits``:
        the amount is a multiple of ``2**step_bits`` (``k << 1``), so the levels shift by
        ``2**step_bits`` and up.
        """
        if width <= 0 or levels <= 0 or n <= 0:
            return
        w_in = width if in_width is None else in_width
        bits = sum(min(width, w_in + (2 << k) - 1) for k in range(step_bits, step_bits + levels))
        # a narrow word placed into a wide one maps differently from a full barrel shifter
        self._put("place" if w_in < width else "shift", bits * n, cls)
        if path:  # LUT4 fabrics: one 2:1 mux level per amount bit (a 4:1 mux needs 6 inputs)
            self.chain(levels)

    def lzc(self, width: int, n: int = 1, cls: str = "acc", path: bool = True) -> None:
        """Leading-zero counters over ``width`` bits (log-depth tree)."""
        if width <= 0 or n <= 0:
            return
        self._put("lzc", width * n, cls)
        if path:
            self.chain(clog2(width))

    def logic(self, gates: float, cls: str = "ctl", levels: float = 0.0) -> None:
        """Random logic of ``gates`` two-input gates (decoders, flags, XOR with a sign)."""
        if gates <= 0:
            return
        self._put("logic", gates, cls)
        if levels:
            self.chain(levels)

    def mult(
        self,
        a_bits: int,
        b_bits: int,
        n: int = 1,
        y_bits: int | None = None,
        cls: str = "product",
        path: bool = True,
        unsigned: bool = False,
        macc_width: int = 0,
    ) -> None:
        """``n`` array multipliers ``a_bits`` x ``b_bits`` (a target may map them to DSPs).

        ``macc_width``: signed products that Yosys merges (no register between) into one
        ``$macc`` of that width with the adder tree; in LUT logic its partial-product rows are
        sign-extended to that width (feature ``sext``: the extension bits).
        """
        if n <= 0:
            return
        y = a_bits + b_bits if y_bits is None else min(y_bits, a_bits + b_bits)
        now = self.depth.get(self.segment, [0.0, 0.0])
        before = (now[0], now[1])
        chain = (float(min(a_bits, b_bits)), float(a_bits + b_bits)) if path else (0.0, 0.0)
        self.mults.append(
            Mult(a_bits, b_bits, y, n, cls, self.segment, unsigned, self._scope > 0, macc_width, chain, before)
        )
        if path:
            self.chain(*chain)

    def totals(self) -> list[float]:
        """Feature totals so far (multipliers excluded): pass to :meth:`dsp_post_adder`."""
        return list(self._total)

    def dsp_post_adder(self, before: list[float], fabric_gate: int = 0, replacement: list[float] | None = None) -> None:
        """The blocks added since ``before = self.totals()`` are the post-adder of the last
        multiplier group: a DSP48 computes them when that group maps to DSPs.

        ``fabric_gate`` bits of it stay in the fabric as lone gates between hard blocks
        (feature ``lone``: a cascade's ``Mux(first, 0, acc)`` in front of the last DSP's C
        port, a LUT per bit with nothing to pack with).  ``replacement``: feature totals of
        what stays in the fabric of those blocks when the DSPs take part of them."""
        if self.mults:
            delta = [a - b for a, b in zip(self.totals(), before)]
            if replacement is not None:
                delta = [d - r for d, r in zip(delta, replacement)]
            delta[_F["lone"]] -= fabric_gate
            self.dsp_logic.append((len(self.mults) - 1, delta))

    def dsp_register(self, bits: int, per_mult: bool = True, index: int = -1) -> None:
        """The register just counted follows multiplier group ``index`` (default: the last)
        directly (``bits`` per multiplier, or in all with ``per_mult=False``): a DSP48 keeps it
        inside (``MREG``, or ``PREG`` after the post-adder), so it is not a fabric flip-flop."""
        if self.mults and bits > 0:
            i = index % len(self.mults)
            self.dsp_regs.append((i, bits * (self.mults[i].count if per_mult else 1)))

    def register(self, bits: int, cls: str = "ctl", enable: bool = False) -> None:
        """Register bits kept by synthesis (each a flip-flop); ``enable``: loaded under a
        condition (a clock-enable flip-flop on FPGAs, a mux in front of a plain one in gates)."""
        if bits <= 0:
            return
        self.ffs += bits
        self._put("ffe" if enable else "ff", bits, cls)
