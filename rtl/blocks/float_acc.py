"""Per-step rounded float accumulation: ``acc := round((first ? 0 : acc) + V)`` every step.

The loop of every float-accumulating PE (the minifloat MAC, the block-dot PE): the state
register and the one adder that feeds it.  The addend ``V`` arrives normalised (top bit set
unless it is zero) with the biased exponent of that top bit, so the loop is a floating-point
add sized to its two operands, not to the range of the products:

1. compare the exponents of ``acc`` and ``V`` (equal: the significands); the larger goes to
   the top of a window of ``frame = max(v_width, p) + 2`` bits above a sticky slot (``p`` the
   accumulator precision), the smaller is shifted right by the distance, the bits it loses
   ORed into the sticky slot;
2. add the two with their signs: the larger on top, the sum is never negative;
3. normalise, round to nearest even once, pack.

**Why the window rounds like the exact sum.**  Let ``T`` be the top-bit exponent of the larger
operand and ``d`` the distance.  For ``d <= 1`` both operands lie wholly in the window (its two
guard bits hold a one-place shift), so the sum is exact.  For ``d >= 2`` the sum is at least
half the larger operand, so its top bit is at least ``T - 1`` and its rounding position at
least ``T - 1 - man_bits``; every bit the window drops lies more than one place below that,
and a sticky bit in their place rounds like them (it takes part in a subtraction, so a
borrow from the dropped bits is not lost).  A subnormal result rounds on the fixed grid
``emin - man_bits``, also above the window's lowest bit.

**Retimed.**  The register holds the windowed sum *before* normalising and rounding; the next
cycle rounds it (that is the ``acc`` port and the next step's accumulator) while the addend's
own logic runs beside it, so a PE without front pipeline stages does not pay for its product
and the rounding in series.  The latency is unchanged: ``acc`` shows the rounded sum one cycle
after the step, like a registered result (through the rounding logic).

**Two variants** (:class:`~peforge.geometry.FloatLoopGeometry` says which):

* ``fast``, when the caller proves that every reachable sum is zero or normal and none
  overflows (:func:`peforge.geometry.mac_reachable_acc` does for the MAC's FP32 / BF16
  accumulators): no subnormal or overflow logic, and a loop laid out for short paths:

  - *the window* is one guard bit deeper: ``sum_width = frame + 3`` bits, bit 0 the sticky
    slot, the accumulator's hidden bit at ``H = frame + 1``, its rounding carry at ``H + 1``
    (``big + small < 2 * 2**(H + 1)``: no further carry bit);
  - *the addend is taken unnormalised*: ``V`` moved back one place when ``v_inc`` is clear
    (for the MAC, the product as the multiplier gives it: synthesis folds the two
    multiplexers away), so ``v_exp`` is the exponent of its bit ``w - 2`` and ``v_inc`` (a
    product's top bit, the last to arrive) only enters the magnitude compare: under the accumulator ``V``'s bit ``w - 1`` sits at ``H + 1`` before the shift by
    ``d = e_acc - v_exp`` (where ``V`` lands does not depend on its normalisation), over it at
    ``H`` with the accumulator shifted by ``1 - d``.  ``V`` on top with a clear bit ``w - 1``
    has its top bit at ``H - 1``: the extra guard bit keeps the proof's margins;
  - *the registered sum is normalised by stages* (the count falls out of the shifter) while
    its round bit is found in place, and the next addition's decisions are taken from the
    accumulator *before* its rounding increment: the rounded significand keeps a carry bit
    one place above the hidden bit, so its value at the unrounded exponent stays exact, and
    for a narrow addend, on the accumulator's grid, ``trunc(acc) < V`` implies ``round(acc)
    <= V`` (a tie is harmless);
  - a NaN or infinity enters the adder as the sum pattern that rounds to its own code, so
    the register takes the adder's output directly.

  The proof above holds with ``T`` the larger operand's top position (``H - 1``, ``H`` or
  ``H + 1``): for ``d <= 1`` (now counted between true top bits) both operands lie wholly
  in the window, as the smaller one's lowest bit is at least two places above bit 0; for
  ``d >= 2`` the sum's top is at least ``T - 1 >= H - 2``, its rounding position at least
  ``H - 2 - man_bits = 2`` places above bit 0 when ``frame = p + 2`` (more for a wider
  addend), so every dropped bit lies more than one place below it.
* ``general``: subnormal accumulators and results, overflow to infinity and the exponent
  clamp (``[emin - man_bits - 3, emax + 2]``: below, any sum is under half the smallest
  subnormal; above, it overflows either way); a subnormal accumulator on top may be the
  smaller magnitude, so the sum takes a magnitude step.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.formats import FloatFormat
from peforge.geometry import FloatLoopGeometry

from ._util import invalid
from .round import RoundPack
from .shift import ShiftRightSticky

__all__ = ["FloatAccumulator"]


def _signed(lo: int, hi: int) -> Shape:
    """A signed shape holding ``lo..hi`` and at least one value of each sign."""
    return Shape.cast(range(min(lo, -1), max(hi, 0) + 1))


class FloatAccumulator(wiring.Component):
    """``acc := round((first ? 0 : acc) + V)`` on every ``step``, with IEEE special values.

    Exponents are in the accumulator format's biased units throughout (the exponent field of
    a normal number), so the loop never adds or removes the bias.

    Parameters
    ----------
    fmt : FloatFormat
        Accumulator format (``special="ieee"``, at least one mantissa bit).
    geometry : FloatLoopGeometry
        From :func:`~peforge.geometry.float_loop_geometry`: the addend's width and exponent
        range, and what the caller proves about the reachable accumulator (which variant).
    subnormals : bool
        False turns a rounded subnormal result into a zero of its sign.

    Members
    -------
    step, first : In(1)
        Update the accumulator; leave the old value out of the sum.
    v_sig : In(v_width)
        ``|V|`` normalised: top bit set, or 0 when ``v_nz`` is low (any pattern when ``V`` is
        NaN or infinite: the flags decide).
    v_exp, v_inc : In(signed), In(1)
        ``v_exp + v_inc`` is the biased exponent of ``v_sig``'s top bit.
    v_nz, v_sign : In(1)
        ``V != 0``; its sign.
    v_zero_sign : In(1)
        When ``V`` is an exact zero: whether every term that made it was a zero of sign 1 (a
        zero sum is -0 only if every term is -0, the accumulator included).
    v_nan, v_pinf, v_ninf : In(1)
        ``V`` is NaN, +inf, -inf (at most one set).
    acc : Out(fmt.bits)
        The accumulator code (the rounded value of the registered sum; reset: +0).
    """

    def __init__(self, fmt: FloatFormat, geometry: FloatLoopGeometry, *, subnormals: bool = True) -> None:
        if not isinstance(fmt, FloatFormat) or fmt.special != "ieee" or fmt.man_bits < 1:
            raise invalid(self, f"fmt={fmt!r} must be an ieee FloatFormat with man_bits >= 1")
        if not isinstance(geometry, FloatLoopGeometry):
            raise invalid(self, f"geometry={geometry!r} must be a FloatLoopGeometry")
        self._fmt, self._geom = fmt, geometry
        self._ve_range = range(geometry.v_exp_lo, geometry.v_exp_hi + 1)
        self._subnormals = bool(subnormals)
        super().__init__(
            {
                "step": In(1),
                "first": In(1),
                "v_sig": In(geometry.v_width),
                "v_exp": In(_signed(geometry.v_exp_lo - 1, geometry.v_exp_hi)),
                "v_inc": In(1),
                "v_nz": In(1),
                "v_sign": In(1),
                "v_zero_sign": In(1),
                "v_nan": In(1),
                "v_pinf": In(1),
                "v_ninf": In(1),
                "acc": Out(fmt.bits),
            }
        )

    @property
    def geometry(self) -> FloatLoopGeometry:
        return self._geom

    def elaborate(self, platform) -> Module:
        return self._elaborate_fast() if self._geom.fast else self._elaborate_general()

    # ---- pieces both variants share -----------------------------------------------------------
    def _flags(self, acc_nan: Value, acc_inf: Value, s_acc: Value) -> tuple[Value, Value, Value]:
        """(nan, pinf, ninf) of the sum from the addend's and the accumulator's specials."""
        incl = ~self.first
        pinf = self.v_pinf | (incl & acc_inf & ~s_acc)
        ninf = self.v_ninf | (incl & acc_inf & s_acc)
        return self.v_nan | (incl & acc_nan) | (pinf & ninf), pinf, ninf

    def _decide(
        self, m: Module, acc_nz: Value, d_av: Value, d_va: Value, a_ge_v: Value, width: int
    ) -> tuple[Signal, Signal, Signal]:
        """(acc_big, dist, too_far): the larger operand (by exponent, then significand), the
        alignment distance and whether the smaller operand lies wholly below the window."""
        acc_big = Signal(name="acc_big")
        m.d.comb += acc_big.eq(acc_nz & (~self.v_nz | d_va[-1] | (~d_av[-1] & ~d_va[-1] & a_ge_v)))
        amount_bits = (width - 1).bit_length()
        dist = Signal(amount_bits, name="align_dist")
        m.d.comb += dist.eq(Mux(acc_big, d_av[:amount_bits], d_va[:amount_bits]))
        too_far = Signal(name="align_far")
        m.d.comb += too_far.eq(Mux(acc_big, d_av >= width, d_va >= width))
        return acc_big, dist, too_far

    def _align(self, m: Module, small: Value, dist: Signal, too_far: Signal) -> Value:
        """The smaller operand shifted right by ``dist``, the bits it loses in bit 0.

        ``too_far`` saturates the shift amount (all ones, at least the width), so the shifter
        itself gives the zero word and ``sticky = small != 0``: no multiplexer after it."""
        width = len(small)
        bits = max(len(dist), width.bit_length())
        m.submodules.align = sh = ShiftRightSticky(width, bits)
        m.d.comb += [sh.data.eq(small), sh.amount.eq(Mux(too_far, (1 << bits) - 1, dist))]
        return Cat(sh.out[0] | sh.sticky, sh.out[1:])

    def _placed_v(self, m: Module, width: int) -> Signal:
        g = self._geom
        placed_v = Signal(width, name="placed_v")
        m.d.comb += placed_v.eq(self.v_sig << (g.frame + 1 - g.v_width))
        return placed_v

    @staticmethod
    def _normalise(m: Module, x: Value) -> tuple[Signal, Signal, Signal]:
        """``(x << lz, lz, x == 0)``, ``lz`` the leading zeros (any count of at least ``len(x)``
        for a zero ``x``): one stage per count bit, shifting by ``2**k`` when the top ``2**k``
        bits of the word the stages above left are zero, so the count falls out of the shifter
        (no separate leading-zero tree).  Every second stage looks ahead: it tests both places
        the stage above may leave those bits in and picks by that stage's bit, so no count bit
        waits for two shifter stages."""
        w = len(x)
        bits = w.bit_length()
        count = Signal(bits, name="sum_lz")
        cbits: list[Value] = []
        prev: Value | None = None  # the previous stage's input and count bit, if it tested
        prev_c: Value = C(0, 1)  # its own input (stages alternate: test, look ahead, test, ...)
        for k in reversed(range(bits)):
            step = 1 << k
            if step >= w:
                cbits.append(C(0, 1))
                continue
            nxt = Signal(w, name=f"sum_norm{k}")
            c = Signal(name=f"sum_lz{k}")
            if prev is None:
                m.d.comb += c.eq(x[w - step :] == 0)
            else:  # look ahead: test both places the previous stage may leave the bits in
                lo = max(w - 2 * step - step, 0)
                m.d.comb += c.eq(Mux(prev_c, prev[lo : w - 2 * step] == 0, prev[w - step :] == 0))
            m.d.comb += nxt.eq(Mux(c, x << step, x))
            cbits.append(c)
            prev, prev_c, x = (x, c, nxt) if prev is None else (None, C(0, 1), nxt)
        zero = Signal(name="sum_zero")
        m.d.comb += [zero.eq(~x[-1]), count.eq(Cat(*reversed(cbits)))]
        return x, count, zero

    @staticmethod
    def _round_up(z: Value, p: int) -> Value:
        """Whether the unnormalised sum ``z`` rounds up (to nearest even) to ``p`` bits, found
        in place, beside its normalisation: a top bit at ``L`` puts the result's LSB at ``L -
        p + 1``, above bit 0 only for the top ``len(z) - p`` positions of ``L`` (below, the sum
        is exact in ``p`` bits and nothing rounds), so it is an OR of few terms."""
        w = len(z)
        inc = []
        for j in range(1, w - p + 1):  # LSB position j: top bit at L = j + p - 1
            top = z[j + p - 1] & ((z[j + p :] == 0) if j + p < w else C(1, 1))
            sticky = (z[: j - 1] != 0) if j > 1 else C(0, 1)
            inc.append(top & z[j - 1] & (sticky | z[j]))
        return Cat(*inc).any() if inc else C(0, 1)

    # ---- fast: reachable sums normal or zero, no overflow -------------------------------------
    def _elaborate_fast(self) -> Module:
        m = Module()
        g, f = self._geom, self._fmt
        E, M = f.exp_bits, f.man_bits
        p, w = M + 1, g.v_width
        H = g.frame + 1  # the accumulator's hidden bit; below it a guard bit more than frame
        OW = H + 2  # operand words: bit 0 sticky slot, tops at H, H + 1 a rounding carry
        ZW = OW  # sums: big + small < 2 * 2**(H + 1)
        first = self.first
        top_e = (1 << E) - 1
        ev_lo, ev_hi = self._ve_range.start, self._ve_range.stop - 1
        lo, hi = g.exp_lo, max(g.exp_hi, ev_hi + 1)

        # ---- state: the windowed sum before its rounding ------------------------------------
        z_r = Signal(ZW, name="sum_mag")
        e_r = Signal(range(lo, hi + 1), name="sum_exp")  # biased exponent of bit H
        s_r = Signal(name="sum_sign")  # sign of a nonzero sum (NaN: 0)
        negz_r = Signal(name="sum_zero_sign")  # the sign if the sum is an exact zero
        nan_r = Signal(name="sum_nan")
        inf_r = Signal(name="sum_inf")

        # ---- normalise it, the round bit found in place beside that (a NaN / infinity is
        # stored as a sum that rounds to its own code: no multiplexer on acc) ------------------
        norm, count, zero = self._normalise(m, z_r)
        rsig = Signal(p + 1, name="acc_sig")  # rounded significand and its carry-out
        m.d.comb += rsig.eq(norm[ZW - p :] + self._round_up(z_r, p))
        hidden = ~zero
        e_pre = Signal(_signed(lo + 1 - ZW, hi + 1), name="acc_exp_pre")  # of the hidden bit
        m.d.comb += e_pre.eq(e_r + 1 - count)
        s_acc = Signal(name="acc_sign")
        m.d.comb += s_acc.eq(Mux(zero, negz_r, s_r))
        e_out = Mux(hidden, e_pre + rsig[p], 0)
        m.d.comb += self.acc.eq(Cat(rsig[:M], e_out[:E], s_acc))
        nan, pinf, ninf = self._flags(nan_r, inf_r, s_acc)
        acc_nz = ~first & ~zero & ~nan_r & ~inf_r

        # ---- the next addition's decisions: from the exponent of the addend's bit w - 2, so
        # its top bit (the product's, the last to arrive) only enters the magnitude compare --
        v_ref = Signal(_signed(ev_lo - 1, ev_hi), name="v_exp_ref")  # exponent of bit w - 2
        m.d.comb += v_ref.eq(self.v_exp)
        d_lo, d_hi = lo + 2 - ZW - ev_hi, hi + 3 - ev_lo
        k0 = Signal(_signed(lo + 1 - ev_hi, hi + 2 - ev_lo), name="exp_diff_base")
        m.d.comb += k0.eq(e_r + 1 - v_ref)  # register and addend only: ready early
        d = Signal(_signed(d_lo, d_hi), name="exp_diff")  # e_pre - v_ref: V's shift under acc;
        m.d.comb += d.eq(k0 - count)  # 1 - d: the accumulator's under V
        if w <= p:  # on the accumulator's grid trunc(acc) < V implies round(acc) <= V
            a_ge_v = norm[ZW - w :] >= self.v_sig
        else:  # a wide addend is not on the accumulator's grid: compare the rounded value
            a_ge_v = (rsig << (w - p)) >= self.v_sig
        top = self.v_inc  # V's top bit is w - 1 (else w - 2): its exponent is v_ref + top
        acc_big = Signal(name="acc_big")
        m.d.comb += acc_big.eq(
            acc_nz
            & (
                ~self.v_nz
                | (~d[-1] & (d[1:-1] != 0))  # e_pre >= v_ref + 2
                | ((d == 1) & (~top | a_ge_v))  # e_pre = v_ref + 1
                | ((d == 0) & ~top & a_ge_v)  # e_pre = v_ref
            )
        )
        amount_bits = A = (OW - 1).bit_length()
        dist = Signal(A, name="align_dist")
        m.d.comb += dist.eq(Mux(acc_big, d[:A], (1 - d)[:A]))
        # far: beyond the amount's range (an amount from OW up shifts the whole word out too);
        # 1 - d >= 2**A is d <= 1 - 2**A: d's bits from A up below -1, or -1 and d[:A] <= 1
        too_far = Signal(name="align_far")  # also clears a zero / left-out / special acc
        far_v = ~d[-1] & (d[A:-1] != 0)
        far_a = d[-1] & ((d[A:] != (1 << (len(d) - A)) - 1) | (d[1:A] == 0))
        m.d.comb += too_far.eq(Mux(acc_big, far_v, far_a | ~acc_nz))

        # ---- align, add: V unnormalised (its bit w - 1 at H + 1 under the accumulator, at H
        # over it), so neither the data nor the distance waits for V's top bit -------------------
        v_sig = Signal(w, name="v_sig_raw")  # the addend with its bit w - 1 possibly clear
        m.d.comb += v_sig.eq(Mux(top, self.v_sig, self.v_sig >> 1))
        placed_a = Signal(OW, name="placed_a")  # big only if nonzero; small: too_far clears it
        m.d.comb += placed_a.eq(rsig << (H - M))
        v_under = Signal(OW, name="placed_v_small")
        v_over = Signal(OW, name="placed_v_big")
        m.d.comb += [v_under.eq(v_sig << (H + 2 - w)), v_over.eq(v_sig << (H + 1 - w))]
        # a NaN / infinity result enters the adder as its stored pattern (big) plus zero, so
        # the sum register takes the adder's output with no multiplexer after it
        inf = ~nan & (pinf | ninf)
        special = Signal(name="sum_special")
        m.d.comb += special.eq(nan | inf)
        small = Mux(acc_big, v_under, placed_a)
        small_nz = Mux(acc_big, self.v_nz, acc_nz)
        clear = too_far | special
        m.submodules.align = sh = ShiftRightSticky(OW, amount_bits)
        m.d.comb += [sh.data.eq(Mux(clear, 0, small)), sh.amount.eq(dist)]
        small_al = Cat(sh.out[0] | sh.sticky | (too_far & ~special & small_nz), sh.out[1:])
        sub = (s_acc ^ self.v_sign) & ~special
        big = Mux(special, Cat(C(0, H - 1), nan, C(1, 1)), Mux(acc_big, placed_a, v_over))
        z = Signal(ZW, name="frame_sum")  # big - small >= 0, or big + small
        m.d.comb += z.eq(big + (Cat(small_al, C(0, 1)) ^ sub.replicate(ZW + 1)) + sub)

        neg_zero = ~self.v_nz & self.v_zero_sign & (first | (zero & s_acc))
        with m.If(self.step):
            m.d.sync += [
                nan_r.eq(nan),
                inf_r.eq(inf),
                negz_r.eq(neg_zero),
                s_r.eq(Mux(nan, 0, Mux(inf, ninf, Mux(acc_big, s_acc, self.v_sign)))),
                z_r.eq(z),
                e_r.eq(Mux(special, top_e, Mux(acc_big, e_pre, v_ref + 1))),
            ]
        return m

    # ---- general: subnormals, overflow ------------------------------------------------------
    def _elaborate_general(self) -> Module:
        m = Module()
        g, f = self._geom, self._fmt
        E, M = f.exp_bits, f.man_bits
        FM = g.frame
        width = FM + 1  # operand words: bit 0 sticky slot, tops at FM
        first = self.first
        ea_lo, ea_hi = g.acc_top_lo + f.bias, g.acc_top_hi + f.bias
        ev_lo, ev_hi = self._ve_range.start, self._ve_range.stop - 1
        lo, hi = g.exp_lo, g.exp_hi

        # ---- state: the windowed sum before its rounding ------------------------------------
        z_r = Signal(g.sum_width, name="sum_mag")
        e_r = Signal(range(lo, hi + 1), name="sum_exp")  # biased exponent of bit FM
        s_r = Signal(name="sum_sign")  # sign of a nonzero sum (or of the infinity)
        negz_r = Signal(name="sum_zero_sign")  # the sign if the sum is an exact zero
        nan_r = Signal(name="sum_nan")
        inf_r = Signal(name="sum_inf")
        m.submodules.round = rnd = RoundPack(
            f, g.sum_width, -FM - f.bias, subnormals=self._subnormals, exp_range=range(lo, hi + 1), overflow=g.overflow
        )
        s_acc = Signal(name="acc_sign")
        m.d.comb += s_acc.eq(Mux(inf_r | (z_r != 0), s_r, negz_r))
        m.d.comb += [rnd.mag.eq(z_r), rnd.exp.eq(e_r), rnd.sign.eq(s_acc), rnd.inf.eq(inf_r), self.acc.eq(rnd.code)]
        if f.nan_code is not None:
            m.d.comb += rnd.nan.eq(nan_r)
        code = rnd.code
        e_acc, m_acc = code[M : M + E], code[:M]
        special = e_acc == (1 << E) - 1
        acc_nan, acc_inf = special & (m_acc != 0), special & (m_acc == 0)
        acc_zero = code[: E + M] == 0
        nan, pinf, ninf = self._flags(acc_nan, acc_inf, s_acc)
        acc_nz = ~first & ~acc_zero & ~acc_nan & ~acc_inf

        # ---- compare, align, add ---------------------------------------------------------------
        hidden = e_acc != 0
        e_eff = Mux(hidden, e_acc, 1)  # a subnormal's exponent is emin
        v_e = Signal(range(ev_lo, ev_hi + 1), name="v_exp_top")
        m.d.comb += v_e.eq(self.v_exp + self.v_inc)
        d_av = Signal(_signed(ea_lo - ev_hi, ea_hi - ev_lo), name="exp_diff")
        d_va = Signal(_signed(ev_lo - ea_hi, ev_hi - ea_lo), name="exp_diff_neg")
        m.d.comb += [d_av.eq(e_eff - v_e), d_va.eq(v_e - e_eff)]
        placed_a = Signal(width, name="placed_a")
        m.d.comb += placed_a.eq(Mux(acc_nz, Cat(m_acc, hidden), 0) << (FM - M))
        placed_v = self._placed_v(m, width)
        a_ge_v = placed_a >= placed_v
        acc_big, dist, too_far = self._decide(m, acc_nz, d_av, d_va, a_ge_v, width)
        small_al = self._align(m, Mux(acc_big, placed_v, placed_a), dist, too_far)
        sub = s_acc ^ self.v_sign
        zs = Signal(signed(width + 2), name="frame_sum")
        m.d.comb += zs.eq(Mux(acc_big, placed_a, placed_v) + (Cat(small_al, C(0, 2)) ^ sub.replicate(width + 2)) + sub)
        z = Signal(g.sum_width, name="frame_mag")  # a subnormal acc on top may be smaller
        m.d.comb += z.eq(Mux(zs[-1], -zs, zs))
        sign = Mux(acc_big, s_acc, self.v_sign) ^ zs[-1]
        e_top = Mux(acc_big, e_eff, v_e)
        e_cl = Signal(range(lo, hi + 1), name="exp_top")
        if min(ea_lo, ev_lo) < lo or max(ea_hi, ev_hi) > hi:
            m.d.comb += e_cl.eq(Mux(e_top < lo, lo, Mux(e_top > hi, hi, e_top)))
        else:
            m.d.comb += e_cl.eq(e_top)

        neg_zero = ~self.v_nz & self.v_zero_sign & (first | (acc_zero & s_acc))
        inf = ~nan & (pinf | ninf)
        with m.If(self.step):
            m.d.sync += [
                z_r.eq(z),
                e_r.eq(e_cl),
                nan_r.eq(nan),
                inf_r.eq(inf),
                negz_r.eq(neg_zero),
                s_r.eq(Mux(inf, ninf, sign)),
            ]
        return m
