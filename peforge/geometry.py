"""Datapath widths of every PE family, computed once from the spec (pure Python, no Amaranth).

Each family has one geometry function here, beside its spec, and every part reads it: the RTL
generator sizes its signals with it, the cost model prices those widths, the golden model takes
its port widths from it and the manifest publishes it (``datapath``).  A test reads the widths
back from the generated Verilog and compares them with what the cost model priced.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .formats import FloatFormat, IntFormat
from .spec import BlockDotSpec, IntMacSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec, signed_width

__all__ = [
    "tree_cut_levels",
    "mac_cut_points",
    "blockdot_cut_points",
    "FloatLoopGeometry",
    "float_loop_geometry",
    "mac_reachable_acc",
    "MacGeometry",
    "mac_geometry",
    "lmul_consts",
    "lmul_norm_bits",
    "BlockDotGeometry",
    "blockdot_geometry",
    "lut_geometry",
    "lut_entry_coefs",
    "lut_coef_range",
    "IntMacGeometry",
    "intmac_geometry",
    "SimdGeometry",
    "simd_geometry",
    "ShiftAddGeometry",
    "shiftadd_geometry",
    "range_bits",
    "tree_range",
]


def range_bits(lo: int, hi: int) -> int:
    """Bits of a signal holding ``lo..hi``: unsigned when ``lo >= 0`` (at least 1), else two's
    complement (the RTL's ``_shape``)."""
    return max(hi.bit_length(), 1) if lo >= 0 else signed_width(lo, hi)


def tree_range(terms: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Ranges of every level of the balanced pairwise adder tree the generators build over
    ``terms`` (level 0 = the terms; an odd term out passes to the next level unchanged)."""
    levels = [list(terms)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [(cur[j][0] + cur[j + 1][0], cur[j][1] + cur[j + 1][1]) for j in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


# --- the per-step float accumulate loop (rtl/blocks/float_acc.py) ---------------------------------
@dataclass(frozen=True)
class FloatLoopGeometry:
    """Widths of the per-step rounded float accumulate loop (see :mod:`peforge.rtl.blocks.float_acc`).

    Members
    -------
    v_width : int
        Width of the normalised addend significand.
    v_exp_lo, v_exp_hi : int
        Range of the addend's biased top-bit exponent.
    frame : int
        Window bits above its sticky slot: ``max(v_width, man_bits + 1) + 2`` (two guard bits
        below the wider operand; why that rounds like the exact sum is in the RTL block).
    sum_width : int
        Width of the registered sum: ``frame + 3`` (fast: a rounding carry and a sum carry)
        or ``frame + 2`` (general: a sum carry).
    fast : bool
        Every reachable sum is zero or normal and none overflows (no subnormal or overflow
        logic, decisions from the unrounded accumulator).
    overflow : bool
        A finite sum can round to infinity.
    acc_top_lo, acc_top_hi : int
        Unbiased exponents of the hidden bit of a reachable finite nonzero accumulator.
    exp_lo, exp_hi : int
        Range of the registered biased exponent (fast: up to the all-ones field, which holds
        a stored NaN / infinity).
    """

    v_width: int
    v_exp_lo: int
    v_exp_hi: int
    frame: int
    sum_width: int
    fast: bool
    overflow: bool
    acc_top_lo: int
    acc_top_hi: int
    exp_lo: int
    exp_hi: int


def float_loop_geometry(
    fmt: FloatFormat, v_width: int, v_exp_range: range, acc_tops: range | None, overflow: bool
) -> FloatLoopGeometry:
    """The loop's geometry for an addend of ``v_width`` bits whose biased top-bit exponent lies
    in ``v_exp_range``; ``acc_tops`` / ``overflow`` as :func:`mac_reachable_acc` proves them
    (None / True: nothing proven)."""
    frame = max(v_width, fmt.man_bits + 1) + 2
    tops = (
        range(fmt.emin, fmt.emax + 1)
        if acc_tops is None
        else range(max(acc_tops.start, fmt.emin), min(acc_tops.stop, fmt.emax + 1))
    )
    normal_sums = acc_tops is not None and acc_tops.start >= fmt.emin
    fast = normal_sums and not overflow
    ea_lo, ea_hi = tops.start + fmt.bias, tops.stop - 1 + fmt.bias
    ev_lo, ev_hi = v_exp_range.start, v_exp_range.stop - 1
    if fast:
        lo, hi = min(ea_lo, ev_lo), max(ea_hi + 1, ev_hi, (1 << fmt.exp_bits) - 1)
    else:  # outside [emin - man_bits - 3, emax + 2] a sum rounds to a zero / overflows either way
        floor, ceil = fmt.emin - fmt.man_bits - 3 + fmt.bias, fmt.emax + 2 + fmt.bias
        lo, hi = max(min(ea_lo, ev_lo), floor), min(max(ea_hi, ev_hi), ceil)
    return FloatLoopGeometry(
        v_width=v_width,
        v_exp_lo=ev_lo,
        v_exp_hi=ev_hi,
        frame=frame,
        sum_width=frame + (3 if fast else 2),
        fast=fast,
        overflow=overflow,
        acc_top_lo=tops.start,
        acc_top_hi=tops.stop - 1,
        exp_lo=lo,
        exp_hi=hi,
    )


# --- minifloat MAC (rtl/mac.py) -------------------------------------------------------------------
@dataclass(frozen=True)
class MacGeometry:
    """Widths of the MAC datapath, all derived from the formats.

    Members
    -------
    lsb_exp : int
        Exponent of the product LSB (= ``spec.product_lsb_exp``; lmul: ``m`` bits below the
        smallest normalised operand exponents).
    shift_max : int
        Largest product alignment shift, ``(emax_field_a - 1) + (emax_field_b - 1)`` (lmul
        with subnormals: plus ``Ma + Mb``, the normalisation range of subnormal operands).
    span : int
        Bits of the largest product magnitude in units of ``2**lsb_exp``.
    lane_sum_width : int
        Signed width of the exact lane sum: ``span + ceil(log2(lanes)) + 1``.
    acc_width : int
        Width of the ``acc`` port.
    loop : FloatLoopGeometry or None
        Float accumulator, one lane: the accumulate loop, its addend the single product (a
        product of normalised significands, ``Ma + Mb + 2`` bits; L-Mul's ``m + 2``), and what
        :func:`mac_reachable_acc` proves about the accumulator.
    frame_width : int
        Float accumulator, several lanes: signed width of the accumulate frame, ``lane_sum_width +
        acc.man_bits + 3``, LSB weight ``2**lsb_exp`` like the lane sum.  The frame sum is
        exact for every reachable accumulator value, by two invariants of the accumulation
        (reset gives +0; every later value is ``round(acc + lane_sum)`` or a special):

        1. it is a multiple of ``2**lsb_exp`` (rounding a multiple of ``2**lsb_exp`` gives the
           value itself or a multiple of a coarser power of two), so aligning it into the
           frame drops only zero bits;
        2. its LSB weight is at most ``2**(T + 2)``, ``T`` the top magnitude bit of the lane
           sum (``|lane sum| < 2**(T + 1)``): once the accumulator's ulp reaches ``2**(T + 2)``
           every lane sum is below half an ulp, so the sum never rounds into the next binade.
           Its top bit then sits at most ``man_bits`` above, and acc + lane sum fits in
           ``lane_sum_width + man_bits + 2`` magnitude bits plus a sign bit.

        Several lanes keep this frame rather than the loop: their exact lane sum is as wide as
        the frame, so normalising it into a loop addend costs a second shifter and leading-zero
        count without shortening the loop (measured: 1.1-1.3x the LUTs at the same Fmax).
    acc_shift_max : int
        Float accumulator, several lanes: frame position of the LSB of the largest reachable
        accumulator (``lane_sum_width``).
    """

    lsb_exp: int
    shift_max: int
    span: int
    lane_sum_width: int
    acc_width: int
    loop: FloatLoopGeometry | None = None
    frame_width: int = 0
    acc_shift_max: int = 0


def _emax_field(fmt: FloatFormat) -> int:
    return fmt.emax + fmt.bias


def _max_sig(fmt: FloatFormat) -> int:
    sig = Fraction(fmt.max) / Fraction(2) ** (fmt.emax - fmt.man_bits)
    assert sig.denominator == 1
    return int(sig)


def _lmul_offset_exp(m: int) -> int:
    """l(m) of L-Mul's offset 2**-l(m) (Luo & Sun 2024): m for m <= 3, 3 for m = 4, else 4."""
    return m if m <= 3 else (3 if m == 4 else 4)


def lmul_consts(spec: MinifloatMacSpec) -> tuple[int, int]:
    """(m, constant 2**m + 2**(m - l)) of the L-Mul adder, on the grid 2**-m."""
    m = max(spec.a.man_bits, spec.b.man_bits)
    return m, (1 << m) + (1 << (m - _lmul_offset_exp(m)))


def lmul_norm_bits(spec: MinifloatMacSpec) -> int:
    """How far operand normalisation can lower the product exponent: Ma + Mb (0 with FTZ)."""
    return spec.a.man_bits + spec.b.man_bits if spec.subnormals else 0


def _lmul_sig(spec: MinifloatMacSpec, sig_a: int, sig_b: int) -> int:
    """L-Mul significand (grid 2**-m) of two normal significands (hidden bit included)."""
    m, const = lmul_consts(spec)
    ma, mb = spec.a.man_bits, spec.b.man_bits
    return const + ((sig_a - (1 << ma)) << (m - ma)) + ((sig_b - (1 << mb)) << (m - mb))


def mac_geometry(spec: MinifloatMacSpec) -> MacGeometry:
    """Datapath widths of ``spec`` (see :class:`MacGeometry`)."""
    a, b = spec.a, spec.b
    lsb_exp = (1 - a.bias - a.man_bits) + (1 - b.bias - b.man_bits)
    shift_max = (_emax_field(a) - 1) + (_emax_field(b) - 1)
    if spec.mult == "lmul":
        # L-Mul grid 2**-m; normalised subnormals reach Ma (Mb) binades lower
        norm = lmul_norm_bits(spec)
        lsb_exp += a.man_bits + b.man_bits - norm - max(a.man_bits, b.man_bits)
        shift_max += norm
        span = _lmul_sig(spec, _max_sig(a), _max_sig(b)).bit_length() + shift_max
    else:
        span = (_max_sig(a) * _max_sig(b)).bit_length() + shift_max
    lane_sum_width = span + (spec.lanes - 1).bit_length() + 1
    if spec.is_exact:
        return MacGeometry(lsb_exp, shift_max, span, lane_sum_width, spec.exact_width)
    f = spec.acc_format
    if spec.rounding == "deferred":  # the exact lane sum feeds a window register (peforge.accumulator)
        return MacGeometry(lsb_exp, shift_max, span, lane_sum_width, f.bits)
    if spec.lanes > 1:  # the exact lane sum into a fixed-point frame (see MacGeometry)
        return MacGeometry(
            lsb_exp,
            shift_max,
            span,
            lane_sum_width,
            f.bits,
            frame_width=lane_sum_width + f.man_bits + 3,
            acc_shift_max=lane_sum_width,
        )
    # one lane: the product's top bit is one of its two highest (normalised operands)
    v_width = (2 + max(a.man_bits, b.man_bits)) if spec.mult == "lmul" else a.man_bits + b.man_bits + 2
    base = lsb_exp + v_width - 2 + f.bias  # biased exponent of the product's bit w - 2
    low = 0 if spec.mult == "lmul" else -2 - a.man_bits - b.man_bits
    v_exp_range = range(base + low, base + shift_max + 2)
    tops, overflow = _reachable(lsb_exp, span, spec.lanes, f)
    loop = float_loop_geometry(f, v_width, v_exp_range, tops, overflow)
    return MacGeometry(lsb_exp, shift_max, span, lane_sum_width, f.bits, loop)


def _reachable(lsb_exp: int, span: int, lanes: int, f: FloatFormat) -> tuple[range, bool]:
    p = f.man_bits + 1
    t_max = lsb_exp + span + (lanes - 1).bit_length() - 1
    return range(lsb_exp, t_max + p + 2), t_max + p + 2 > f.emax + 1


def mac_reachable_acc(spec: MinifloatMacSpec) -> tuple[range, bool]:
    """(hidden-bit exponents of every reachable finite nonzero float accumulator, whether a
    finite sum can overflow) of a per-step rounding MAC.

    Two invariants of the accumulation (reset gives +0; every later value is ``round(acc +
    P)`` or a special), with ``P`` the exact lane sum, a multiple of ``2**lsb_exp`` with
    ``|P| < 2**(T + 1)`` (``T = lsb_exp + span + ceil(log2(lanes)) - 1``), and ``p`` the
    accumulator precision:

    1. ``acc`` is a multiple of ``2**lsb_exp`` (rounding a multiple of ``2**lsb_exp`` gives the
       value itself or a multiple of a coarser power of two), so a nonzero ``acc`` or exact
       sum is at least ``2**lsb_exp``: with ``lsb_exp >= emin`` no sum rounds to a subnormal;
    2. ``|acc| < B = 2**(T + p + 2)``: in the binade below ``B`` the grid step is
       ``2**(T + 2)``, so from ``|acc| <= B - 2**(T + 2)`` a step reaches at most
       ``|acc + P| < B - 2**(T + 1)``, which rounds back to at most ``B - 2**(T + 2)``.

    So no finite sum overflows when ``B <= 2**(emax + 1)``.
    """
    g = mac_geometry(spec)
    f = spec.acc_format
    return _reachable(g.lsb_exp, g.span, spec.lanes, f)


# --- block-scaled dot product (rtl/blockdot.py) --------------------------------------------------
def _elem_facts(fmt: FloatFormat | IntFormat) -> tuple[int, int, int]:
    """(lsb exponent at effective exponent 1, largest alignment shift, largest magnitude in
    units of the lsb) of an element format."""
    if isinstance(fmt, IntFormat):
        return -fmt.frac_bits, 0, -fmt.min_int
    lsb = 1 - fmt.bias - fmt.man_bits
    units = Fraction(fmt.max) / Fraction(2) ** lsb
    assert units.denominator == 1
    return lsb, fmt.emax + fmt.bias - 1, int(units)


def _scale_max_sig(fmt: FloatFormat) -> int:
    """Largest significand (hidden bit included) of a scale format: 1 for E8M0."""
    return (1 << (fmt.man_bits + 1)) - 1 if fmt.man_bits else 1


@dataclass(frozen=True)
class BlockDotGeometry:
    """Widths of the block-dot datapath, all derived from the formats.

    Members
    -------
    lsb_exp : int
        Exponent of the smallest product's LSB (the lane words' LSB).
    shift_max : int
        Largest product alignment shift.
    span : int
        Bits of the largest product magnitude in units of ``2**lsb_exp``.
    lane_sum_width : int
        Signed width of one beat's exact lane sum: ``span + ceil(log2(lanes)) + 1``.
    block_sum_width : int
        Signed width of the exact block sum ``S``: adds ``ceil(log2(beats))``.
    scale_sig_bits : int
        Bits of ``sig(Xa) * sig(Xb)`` (1 for two E8M0 scales: no multiplier).
    v_width : int
        Bits of ``|V| = |S| * sig(Xa) * sig(Xb)``.
    v_exp_offset : int
        ``V``'s LSB exponent is ``lsb_exp + ea + eb - v_exp_offset``, ``ea``/``eb`` the
        scales' effective exponent fields.
    loop : FloatLoopGeometry
        The accumulate loop (general: block terms with scales reach subnormals and overflow),
        its addend ``V`` normalised.
    acc_width : int
        Width of the ``acc`` port (the accumulator format's bits).
    """

    lsb_exp: int
    shift_max: int
    span: int
    lane_sum_width: int
    block_sum_width: int
    scale_sig_bits: int
    v_width: int
    v_exp_offset: int
    loop: FloatLoopGeometry
    acc_width: int


def blockdot_geometry(spec: BlockDotSpec) -> BlockDotGeometry:
    """Datapath widths of ``spec`` (see :class:`BlockDotGeometry`)."""
    lsb_a, sh_a, max_a = _elem_facts(spec.element_a)
    lsb_b, sh_b, max_b = _elem_facts(spec.element_b)
    span = (max_a * max_b).bit_length()
    lane_sum = span + (spec.lanes - 1).bit_length() + 1
    block_sum = lane_sum + (spec.beats - 1).bit_length()
    sa, sb = spec.scale_a, spec.scale_b
    xbits = (_scale_max_sig(sa) * _scale_max_sig(sb)).bit_length()
    v_width = block_sum + (xbits if xbits > 1 else 0)
    offset = sa.bias + sa.man_bits + sb.bias + sb.man_bits
    acc = spec.acc
    lsb_exp = lsb_a + lsb_b
    # V's top-bit exponent: lsb_exp - offset + v_width - 1 + ea + eb - lz, ea + eb the scale
    # fields' sum (an unsigned signal of the width that holds their largest sum)
    ex_max = (1 << ((1 << sa.exp_bits) + (1 << sb.exp_bits) - 2).bit_length()) - 1
    base = lsb_exp - offset + v_width - 1 + acc.bias
    loop = float_loop_geometry(acc, v_width, range(base - v_width, base + ex_max + 1), None, True)
    return BlockDotGeometry(
        lsb_exp=lsb_exp,
        shift_max=sh_a + sh_b,
        span=span,
        lane_sum_width=lane_sum,
        block_sum_width=block_sum,
        scale_sig_bits=xbits,
        v_width=v_width,
        v_exp_offset=offset,
        loop=loop,
        acc_width=acc.bits,
    )


# --- LUT tensor core (rtl/lut.py) ----------------------------------------------------------------
Coef = tuple[int, ...]


def lut_entry_coefs(spec: LutSpec) -> list[Coef]:
    """Coefficient vector (per activation) of every table entry, in index order."""
    g = spec.group
    if spec.symmetric:
        return [tuple(1 if (2 * i + 1) >> j & 1 else -1 for j in range(g)) for i in range(spec.table_entries)]
    return [tuple(m >> j & 1 for j in range(g)) for m in range(spec.table_entries)]


def lut_coef_range(spec: LutSpec, c: Coef) -> tuple[int, int]:
    lo, hi = spec.act_range
    return (sum(min(k * lo, k * hi) for k in c), sum(max(k * lo, k * hi) for k in c))


def lut_geometry(spec: LutSpec) -> dict[str, Any]:
    """Widths of the datapath (for the manifest and the cost notes)."""
    ranges = [lut_coef_range(spec, c) for c in lut_entry_coefs(spec)]
    entry = signed_width(min(r[0] for r in ranges), max(r[1] for r in ranges))
    mag = max(max(-r[0], r[1]) for r in ranges)
    if spec.symmetric and not spec.ternary:  # R starts at -A
        mag = max(mag, *(abs(v) for v in lut_coef_range(spec, (1,) * spec.group)))
    bound = 2 * mag if spec.ternary else mag  # |R| stays below the largest entry (right shifts)
    return {
        "act_int_bits": spec.act_int_bits,
        "table_entries": spec.table_entries,
        "entry_bits": entry,
        "serial_bits": signed_width(-bound, bound),
        "step_bits": spec.step_bits,
    }


# --- integer MAC (rtl/intmac.py) ------------------------------------------------------------------
@dataclass(frozen=True)
class IntMacGeometry:
    """Widths of the integer MAC: products, the balanced adder tree, the accumulator.

    Members
    -------
    product_range : (int, int)
        Smallest and largest lane product.
    product_bits : int
        Bits of one product signal (unsigned when no product is negative).
    tree_bits : tuple of int
        Bits of each adder-tree level's nodes (level 1 up; empty for one lane).
    tree_ranges : tuple of tuple of (int, int)
        Range of every node of every tree level (level 0 = the products).
    total_range : (int, int)
        Range of the tree's output (the step sum).
    total_bits : int
        Bits of the step sum.
    acc_width : int
        Accumulator (``acc`` port) width.
    acc_next_width : int
        Width of ``Mux(first, 0, acc) + total`` before wrap / saturation.
    """

    product_range: tuple[int, int]
    product_bits: int
    tree_bits: tuple[int, ...]
    total_range: tuple[int, int]
    total_bits: int
    acc_width: int
    acc_next_width: int
    tree_ranges: tuple[tuple[tuple[int, int], ...], ...] = ()


def intmac_geometry(spec: IntMacSpec) -> IntMacGeometry:
    """Datapath widths of ``spec`` (see :class:`IntMacGeometry`)."""
    lo, hi = spec.product_range
    levels = tree_range([(lo, hi)] * spec.lanes)
    tlo, thi = levels[-1][0]
    return IntMacGeometry(
        (lo, hi),
        range_bits(lo, hi),
        tuple(max(range_bits(*r) for r in lv) for lv in levels[1:]),
        (tlo, thi),
        range_bits(tlo, thi),
        spec.width,
        max(spec.width, signed_width(tlo, thi)) + 1,
        tuple(tuple(lv) for lv in levels),
    )


# --- mixed-precision SIMD (rtl/simd.py) -----------------------------------------------------------
def _mul_range(x: tuple[int, int], y: tuple[int, int]) -> tuple[int, int]:
    corners = [p * q for p in x for q in y]
    return min(corners), max(corners)


@dataclass(frozen=True)
class SimdGeometry:
    """Widths of the SIMD PE's cell grid and fusion quad tree (exact ranges over every mode and
    signedness).

    Members
    -------
    digit_bits : int
        Operand bits per cell.
    cells : dict
        ``(r, c)`` -> per-mode product ranges of cell ``(r, c)``.
    cell_bits : dict
        ``(r, c)`` -> bits of the cell's product signal.
    levels : tuple of dict
        Per fusion level: node ``(r, c)`` -> (per-mode ranges, bits, per-kid per-mode shifts).
    total_range : (int, int)
        Range of the tree's output over every mode.
    acc_width : int
        Accumulator width.
    acc_next_width : int
        Width of ``Mux(first, 0, acc) + total`` before the wrap.
    """

    digit_bits: int
    cells: dict[tuple[int, int], list[tuple[int, int]]]
    cell_bits: dict[tuple[int, int], int]
    levels: tuple[dict[tuple[int, int], tuple[list[tuple[int, int]], int, list[list[int]]]], ...]
    total_range: tuple[int, int]
    acc_width: int
    acc_next_width: int


def simd_geometry(spec: SimdMacSpec) -> SimdGeometry:
    """Datapath widths of ``spec`` (see :class:`SimdGeometry`)."""
    d = spec.digit_bits
    n = spec.base // d
    layout = spec.cell_layout()
    modes = range(len(spec.mode_widths))
    das = [a // d for a, _ in spec.mode_widths]
    dbs = [b // d for _, b in spec.mode_widths]
    lo_d, hi_d = -(1 << (d - 1)), (1 << d) - 1
    rngs = {
        (r, c): [
            _mul_range((lo_d if layout[i][(r, c)][1] else 0, hi_d), (lo_d if layout[i][(r, c)][3] else 0, hi_d))
            for i in modes
        ]
        for r in range(n)
        for c in range(n)
    }
    cell_bits = {k: range_bits(min(x for x, _ in v), max(y for _, y in v)) for k, v in rngs.items()}
    cells = dict(rngs)
    levels = []
    for lv in range((n - 1).bit_length()):
        shift = d << lv
        nxt: dict[tuple[int, int], tuple[list[tuple[int, int]], int, list[list[int]]]] = {}
        for r in range(0, n >> lv, 2):
            for c in range(0, n >> lv, 2):
                kids = [((r + i, c + j), i, j) for i in (0, 1) for j in (0, 1)]
                shifts = [
                    [shift * ((i if das[mi] > 1 << lv else 0) + (j if dbs[mi] > 1 << lv else 0)) for mi in modes]
                    for _, i, j in kids
                ]
                node = [
                    (
                        sum(rngs[key][mi][0] << sh[mi] for (key, _, _), sh in zip(kids, shifts)),
                        sum(rngs[key][mi][1] << sh[mi] for (key, _, _), sh in zip(kids, shifts)),
                    )
                    for mi in modes
                ]
                nxt[(r // 2, c // 2)] = (node, range_bits(min(x for x, _ in node), max(y for _, y in node)), shifts)
        levels.append(nxt)
        rngs = {k: v[0] for k, v in nxt.items()}
    trng = rngs[(0, 0)]
    tlo, thi = min(x for x, _ in trng), max(y for _, y in trng)
    return SimdGeometry(
        d, cells, cell_bits, tuple(levels), (tlo, thi), spec.width, max(spec.width, signed_width(tlo, thi)) + 1
    )


# --- shift-add (rtl/shiftadd.py) ------------------------------------------------------------------
@dataclass(frozen=True)
class ShiftAddGeometry:
    """Widths of the shift-add PE.

    Members
    -------
    act_bits : int
        Bits of one activation integer (units of ``2**act_lsb_exp``).
    product_bits : int
        Bits of one lane product.
    tree_bits : int
        Bits of the lane sum (the RTL's pairwise tree adds one bit per level).
    acc_width : int
        Integer accumulator width.
    out_bits : int
        ``acc`` port width (32 with a group dequantiser).
    """

    act_bits: int
    product_bits: int
    tree_bits: int
    acc_width: int
    out_bits: int


def shiftadd_geometry(spec: ShiftAddSpec) -> ShiftAddGeometry:
    """Datapath widths of ``spec`` (see :class:`ShiftAddGeometry`)."""
    pbits = range_bits(*spec.product_range)
    return ShiftAddGeometry(
        range_bits(*spec.act_range), pbits, pbits + (spec.lanes - 1).bit_length(), spec.width, spec.out_bits
    )


#: Front-pipeline cut points of the minifloat MAC in the order registers are added as
#: ``stages`` grows: the loop's input, the product (a DSP's output register), the aligned terms,
#: half way down the lane adder tree, the multiplier operands (a DSP's input registers), half
#: way through the lane aligner's shifter.  Without a two-level tree (one or two lanes) the
#: fourth and fifth cuts are the operands and a second product register (``mul2``: the DSP's
#: output register is the first; this one in the fabric takes the DSP's slow clock-to-out off
#: the aligner's path).
MAC_CUT_ORDER = ("sum", "mul", "align", "tree", "dec", "shift")
MAC_SHALLOW_CUT_ORDER = ("sum", "mul", "align", "dec", "mul2", "shift")
#: The block-dot's cut points in the same sense: the loop's input, the products (the DSPs'
#: output registers), the lane sum, the scaled block sum, the aligned terms, half way down the
#: lane adder tree, the multiplier operands (the DSPs' input registers), before the tree's last
#: level (:func:`tree_cut_levels`), the block sum.
BLOCKDOT_CUT_ORDER = ("acc", "mul", "sum", "vmul", "align", "tree", "dec", "tree2", "block")


def mac_cut_points(stages: int, lanes: int) -> frozenset[str]:
    """The cut points a minifloat MAC of ``lanes`` lanes and ``stages`` registers has (shared
    by ``rtl/mac.py`` and its cost assembly)."""
    order = MAC_CUT_ORDER if (lanes - 1).bit_length() >= 2 else MAC_SHALLOW_CUT_ORDER
    return frozenset(order[:stages])


def blockdot_cut_points(stages: int) -> frozenset[str]:
    """The cut points a block-dot PE of ``stages`` registers has (``rtl/blockdot.py`` and its
    cost assembly)."""
    return frozenset(BLOCKDOT_CUT_ORDER[:stages])


def tree_cut_levels(levels: int) -> dict[str, int]:
    """Before which level of a ``levels``-deep lane adder tree the ``tree`` and ``tree2`` cuts
    sit (``levels``: after the tree, before its negative-lane count is added): ``tree`` half
    way, ``tree2`` before the last level, so each tree segment has at most two levels."""
    return {
        "tree": levels // 2 if levels >= 2 else levels,
        "tree2": levels - 1 if levels >= 3 else levels,
    }
