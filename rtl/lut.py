"""LUT-based mixed-precision dot-product PE (:class:`peforge.spec.LutSpec`), LUT Tensor Core style.

Datapath (no multipliers):

* **Table unit** (:class:`LutTable`, shared by all lanes).  Per input the ``group`` activations are decoded to
  signed integers (float formats: exact fixed point, ``sig << (exp - 1)``) and the table of
  signed sums is computed by a tree of adders and registered: symmetric tables hold
  ``S(m) = sum_j (m_j ? +x_j : -x_j)`` for the ``2**(group-1)`` masks with bit 0 set, full
  tables ``P(m) = sum_j m_j x_j`` for all masks.  Every entry is one add or subtract of two
  shared partial sums (halves of the group, recursively), so entries need no negation.
* **Lanes** (:class:`LutLane`, ``lanes`` weight columns, one table).  Each lane registers its weight codes and,
  one bit-plane per cycle, turns the plane into a ``group``-bit mask (the codes shift right by
  one bit per plane, so the plane in use is always bit 0), looks up the table
  (symmetric: fold ``m`` with bit 0 clear to ``~m`` and negate) and adds the entry into a
  serial register, least significant plane first, shifting right after each add like a serial
  multiplier (``R = (R +- entry) >> 1``, the shifted-out bits kept in a ``planes``-bit register;
  the top plane of a two's complement weight is subtracted).  So the adder is only as wide as
  a table entry.  Symmetric tables give ``2*y + A`` (``A`` = sum of the group's activations),
  so ``R`` starts at ``-A`` (shared, from the table unit) and ``y`` drops one bit.  Ternary
  weights have two planes, the +1 and the -1 mask, added without shift.
* **Commit**: ``acc := (first ? 0 : acc) + y``, once per step.

Timing: an input is accepted every ``planes`` cycles (``initiation_interval``); inputs closer
together are a protocol error.  ``stages=1`` registers the looked-up entry, ``stages=2`` also the
inputs; ``latency = planes + 2 + stages``.  The accumulators wrap modulo ``2**spec.width``.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..formats import FloatFormat
from ..geometry import lut_coef_range as _coef_range
from ..geometry import lut_entry_coefs as _entry_coefs
from ..geometry import lut_geometry
from ..spec import LutSpec, signed_width
from .blocks._util import SpecComponent, pe_signature
from .blocks.decode import MinifloatDecoder

__all__ = ["LutPe", "LutTable", "LutLane", "lut_signature", "lut_geometry", "lut_manifest"]

Coef = tuple[int, ...]


def lut_signature(spec: LutSpec) -> wiring.Signature:
    """Ports of the LUT PE (clk/rst come from the sync domain)."""
    return pe_signature(
        {"a": spec.group * spec.act.bits, "b": spec.lanes * spec.group * spec.weight_code_bits},
        {"acc": spec.lanes * spec.width},
    )


class LutTable(wiring.Component):
    """Table precompute unit: decodes ``group`` activations and registers their signed sums.

    Parameters
    ----------
    spec : LutSpec

    Members
    -------
    a : In(group * act.bits)
        Activation codes, activation 0 in the least significant bits.
    load : In(1)
        Register the table of ``a`` (once per input).
    table : Out(table_entries * entry_bits)
        Registered entries, entry i at bits ``[i * entry_bits +: entry_bits]``: symmetric
        S(2i+1), full P(i) (see :func:`peforge.models.golden.lut.table`).
    neg_sum : Out(serial_bits)
        Registered -A (A = sum of the activations): the serial start of symmetric two's
        complement lanes (0 otherwise).
    """

    def __init__(self, spec: LutSpec) -> None:
        self._spec = spec
        geo = lut_geometry(spec)
        super().__init__(
            {
                "a": In(spec.group * spec.act.bits),
                "load": In(1),
                "table": Out(spec.table_entries * geo["entry_bits"]),
                "neg_sum": Out(signed(geo["serial_bits"])),
            }
        )

    def _activations(self, m: Module) -> list[Signal]:
        spec = self._spec
        act, n = spec.act, spec.act.bits
        xs = []
        for j in range(spec.group):
            code = self.a[j * n : (j + 1) * n]
            x = Signal(signed(spec.act_int_bits), name=f"x{j}")
            if isinstance(act, FloatFormat):
                dec = MinifloatDecoder(act)
                m.submodules[f"dec{j}"] = dec
                sh = Signal(act.exp_bits, name=f"x{j}_shift")
                mag = Signal(spec.act_int_bits - 1, name=f"x{j}_mag")
                m.d.comb += [
                    dec.code.eq(code),
                    sh.eq(dec.exp - 1),
                    mag.eq(dec.sig << sh),
                    x.eq(Mux(dec.sign, -mag, mag)),
                ]
            else:
                m.d.comb += x.eq(code.as_signed() if act.signed else code)
            xs.append(x)
        return xs

    def _entries(self, m: Module, xs: list[Signal]) -> list[Any]:
        """Every entry as one add/subtract of shared canonical partial sums."""
        spec = self._spec
        memo: dict[Coef, Any] = {}

        def canon(c: Coef) -> tuple[Coef, bool]:
            first = next((k for k in c if k), 0)
            return (tuple(-k for k in c), True) if first < 0 else (c, False)

        def value(c: Coef) -> Any:
            if c in memo:
                return memo[c]
            nz = [j for j, k in enumerate(c) if k]
            if not nz:
                return Const(0, signed(2))
            if len(nz) == 1:
                memo[c] = xs[nz[0]]
                return xs[nz[0]]
            cut = nz[len(nz) // 2]
            left = tuple(k if j < cut else 0 for j, k in enumerate(c))
            right, neg = canon(tuple(k if j >= cut else 0 for j, k in enumerate(c)))
            lo, hi = _coef_range(spec, c)
            s = Signal(signed(signed_width(lo, hi)), name="sum_" + "".join("+-0"[(-k) % 3] for k in c))
            m.d.comb += s.eq(value(left) - value(right) if neg else value(left) + value(right))
            memo[c] = s
            return s

        return [value(c) for c in _entry_coefs(spec)]

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        spec = self._spec
        eb = lut_geometry(spec)["entry_bits"]
        entries = self._entries(m, self._activations(m))
        tab = [Signal(signed(eb), name=f"tab{i}") for i in range(len(entries))]
        with m.If(self.load):
            m.d.sync += [t.eq(e) for t, e in zip(tab, entries)]
            if spec.symmetric and not spec.ternary:
                m.d.sync += self.neg_sum.eq(-entries[-1])  # last entry: all +1 = A
        m.d.comb += self.table.eq(Cat(*tab))
        return m


class LutLane(wiring.Component):
    """One weight column: bit-plane masks, table lookup, serial shift-add, accumulator.

    Parameters
    ----------
    spec : LutSpec

    Members
    -------
    codes : In(group * weight_code_bits)
        The column's weight codes (registered on ``load``).
    load : In(1)
        Input strobe (same cycle as :class:`LutTable`'s ``load``).
    phase : In(planes)
        One-hot: plane p is looked up this cycle (least significant plane first).
    add_phase : In(planes)
        One-hot: plane p's entry is added this cycle (``phase`` delayed by the stage-1 register).
    table, init : In
        :class:`LutTable`'s ``table`` and the serial start value (its ``neg_sum``, or 0).
    commit, first : In(1)
        Add the step's sum into the accumulator (``first``: start a new accumulation).
    acc : Out(signed(width))
    """

    def __init__(self, spec: LutSpec) -> None:
        self._spec = spec
        geo = lut_geometry(spec)
        P = spec.planes
        super().__init__(
            {
                "codes": In(spec.group * spec.weight_code_bits),
                "load": In(1),
                "phase": In(P),
                "add_phase": In(P),
                "table": In(spec.table_entries * geo["entry_bits"]),
                "init": In(signed(geo["serial_bits"])),
                "commit": In(1),
                "first": In(1),
                "acc": Out(signed(spec.width)),
            }
        )

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        spec = self._spec
        geo = lut_geometry(spec)
        g, P, wb, eb, sb = spec.group, spec.planes, spec.weight_code_bits, geo["entry_bits"], geo["serial_bits"]
        wreg = Signal(len(self.codes), name="wreg")
        codes = [wreg[j * wb : (j + 1) * wb] for j in range(g)]
        mask = Signal(g, name="mask")
        with m.If(self.load):
            m.d.sync += wreg.eq(self.codes)
        if spec.ternary:  # sign-magnitude: bit 0 magnitude, bit 1 sign; the +1 mask, then the -1 mask
            planes = [Cat(*(c[0] & ~c[1] for c in codes)), Cat(*(c[0] & c[1] for c in codes))]
            m.d.comb += mask.eq(_or_select([self.phase[p] for p in range(P)], planes, g))
        else:  # least significant bit-plane first: after each lookup every code shifts right by one,
            # so the plane in use is always bit 0 and the mask needs no plane select (a select in
            # front of the table mux is duplicated into it by LUT mapping: up to 1.6x the lane)
            if P > 1:
                with m.Elif(self.phase.any()):
                    m.d.sync += wreg.eq(Cat(*(Cat(c[1:], c[-1]) for c in codes)))
            m.d.comb += mask.eq(Cat(*(c[0] for c in codes)))

        tab = Array(self.table[i * eb : (i + 1) * eb].as_signed() for i in range(spec.table_entries))
        plane_neg = self.phase[P - 1]  # top plane of two's complement weights; ternary: the -1 mask
        entry, neg = Signal(signed(eb), name="entry"), Signal(name="neg")
        if spec.symmetric:  # masks with bit 0 clear: look up ~m, negate
            flip = ~mask[0]
            idx = Signal(g - 1, name="idx")
            m.d.comb += [idx.eq(mask[1:] ^ flip.replicate(g - 1)), entry.eq(tab[idx]), neg.eq(flip ^ plane_neg)]
        else:
            m.d.comb += [entry.eq(tab[mask]), neg.eq(plane_neg)]
        if spec.stages >= 1:
            entry_r, neg_r = Signal(signed(eb), name="entry_r"), Signal(name="neg_r")
            m.d.sync += [entry_r.eq(entry), neg_r.eq(neg)]
            entry, neg = entry_r, neg_r

        # serial register R (+ the shifted-out bits lo for two's complement weights)
        r = Signal(signed(sb), name="ser")
        base = Signal(signed(sb), name="ser_base")
        m.d.comb += base.eq(Mux(self.add_phase[0], self.init, r))
        total = Signal(signed(sb + 1), name="ser_sum")
        m.d.comb += total.eq(base + (entry ^ neg.replicate(eb).as_signed()) + neg)  # base +- entry
        step = Signal(signed(spec.step_bits), name="step")
        if spec.ternary:
            with m.If(self.add_phase.any()):
                m.d.sync += r.eq(total)
            m.d.comb += step.eq(r >> 1 if spec.symmetric else r)
        else:
            lo = Signal(P, name="ser_lo")
            with m.If(self.add_phase.any()):
                m.d.sync += [r.eq(total >> 1), lo.eq(Cat(lo[1:], total[0]) if P > 1 else total[0])]
            value = Cat(lo, r).as_signed()
            m.d.comb += step.eq(value >> 1 if spec.symmetric else value)
        with m.If(self.commit):
            m.d.sync += self.acc.eq(Mux(self.first, 0, self.acc) + step)
        return m


class LutPe(SpecComponent[LutSpec]):
    """LUT-based mixed-precision dot-product PE (see module docstring): one :class:`LutTable`,
    ``lanes`` :class:`LutLane` and the plane sequencer.

    Parameters
    ----------
    spec : LutSpec
        The PE to build.

    Members
    -------
    in_valid, in_first : In(1)
        Input strobe (at most once per ``spec.initiation_interval`` cycles); ``in_first``
        starts a new accumulation in every lane.
    a : In(group * act.bits)
        Activation codes, activation 0 in the least significant bits.
    b : In(lanes * group * weight_code_bits)
        Weight codes, lane-major: weight j of lane l at ``(l * group + j) * weight_code_bits``.
    out_valid : Out(1)
        High ``latency`` cycles after an input.
    acc : Out(lanes * width)
        Per-lane accumulators (two's complement, lane 0 least significant), in units of
        ``2**spec.act_lsb_exp``.
    """

    spec_class = LutSpec

    def __init__(self, spec: LutSpec) -> None:
        super().__init__(spec, lut_signature)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        spec = self._spec
        geo = lut_geometry(spec)
        P, lw = spec.planes, spec.group * spec.weight_code_bits

        valid, first, a, b = self.in_valid, self.in_first, self.a, self.b
        if spec.stages >= 2:  # input registers before the table precompute
            rv, rf = Signal(name="in_valid_r"), Signal(name="in_first_r")
            ra, rb = Signal(len(a), name="a_r"), Signal(len(b), name="b_r")
            m.d.sync += [rv.eq(valid), rf.eq(first), ra.eq(a), rb.eq(b)]
            valid, first, a, b = rv, rf, ra, rb

        m.submodules.table = table = LutTable(spec)
        m.d.comb += [table.a.eq(a), table.load.eq(valid)]

        # plane sequencer: ph[p] high while plane p is looked up, hp[p] while it is added
        ph = Signal(P, name="phase")
        m.d.sync += ph.eq(Cat(valid, ph[:-1]) if P > 1 else valid)
        s1 = 1 if spec.stages >= 1 else 0
        hp = ph
        if s1:
            hp = Signal(P, name="add_phase")
            m.d.sync += hp.eq(ph)
        commit = Signal(name="commit")
        m.d.sync += commit.eq(hp[P - 1])
        out_valid = Signal(name="valid_out")
        m.d.sync += out_valid.eq(commit)
        # `first` delayed to the commit cycle (valid + 1 + planes + stage-1 register)
        fch = Signal(P + 1 + s1, name="first_d")
        m.d.sync += fch.eq(Cat(first, fch[:-1]))
        # the serial start value, held until the (possibly delayed) first add of the step
        init: Any = table.neg_sum
        if s1:  # the table may reload before the delayed first add
            init = Signal(signed(geo["serial_bits"]), name="neg_sum_r")
            with m.If(ph[0]):
                m.d.sync += init.eq(table.neg_sum)

        accs = []
        for lane in range(spec.lanes):
            m.submodules[f"lane{lane}"] = ln = LutLane(spec)
            m.d.comb += [
                ln.codes.eq(b[lane * lw : (lane + 1) * lw]),
                ln.load.eq(valid),
                ln.phase.eq(ph),
                ln.add_phase.eq(hp),
                ln.table.eq(table.table),
                ln.init.eq(init),
                ln.commit.eq(commit),
                ln.first.eq(fch[-1]),
            ]
            accs.append(ln.acc)
        m.d.comb += [self.acc.eq(Cat(*accs)), self.out_valid.eq(out_valid)]
        return m


def _or_select(ph: list[Signal], planes: list[Any], g: int) -> Any:
    """AND-OR mux: the plane whose phase bit is high (one-hot, or none: 0)."""
    out: Any = Const(0, g)
    for p, plane in zip(ph, planes):
        out = out | Mux(p, plane, 0)
    return out


def lut_manifest(spec: LutSpec) -> dict[str, Any]:
    act, wcb = spec.act, spec.weight_code_bits
    weights: dict[str, Any] = (
        {"encoding": "ternary_sign_magnitude", "bits": 2, "values": {"0": 0, "1": 1, "2": 0, "3": -1}}
        if spec.ternary
        else {"encoding": "twos_complement", "bits": wcb, "range": list(spec.weight_range)}
    )
    overflow = "wrap" if spec.acc_bits is not None else "never (derived width)"
    return {
        "cycles_per_weight_bit": spec.cycles_per_weight_bit,
        "initiation_interval": spec.initiation_interval,
        "result": {
            "port": "acc",
            "encoding": "twos_complement",
            "lanes": spec.lanes,
            "width": spec.width,
            "lsb_exp": spec.act_lsb_exp,
            "overflow": overflow,
            "flags": None,
            "order": "lsb_first",
        },
        "lane_packing": {
            "a": {
                "lanes": spec.group,
                "width": act.bits,
                "format": act.name,
                "order": "lsb_first",
                "note": "the group of activations shared by every weight lane",
            },
            "b": {
                "lanes": spec.lanes * spec.group,
                "width": wcb,
                "order": "lsb_first",
                "layout": "lane-major: weight j of lane l at bits (l*group + j)*width",
                **weights,
            },
        },
        "timing": {
            "latency": spec.latency,
            "initiation_interval": spec.initiation_interval,
            "cycles_per_step": spec.planes,
            "cycles_per_weight_bit": spec.cycles_per_weight_bit,
            "macs_per_cycle": spec.macs_per_cycle,
            "note": "in_valid at most once every initiation_interval cycles",
        },
        "datapath": {
            **lut_geometry(spec),
            "symmetric": spec.symmetric,
            "planes": spec.planes,
            "plane_order": "+1 mask, -1 mask" if spec.ternary else "least significant first",
            "nonfinite_activations": "read as 0" if isinstance(act, FloatFormat) else None,
        },
    }
