"""Assemblies of the shift-add, LUT and block-dot PEs (``rtl/shiftadd.py``, ``rtl/lut.py``,
``rtl/blockdot.py``), from the same component library and shared blocks as :mod:`.assembly`.

Register counts follow the generators' declared registers; bits that synthesis proves
constant are not all modelled here (the held-out FF error says how close this is).
"""

from __future__ import annotations

from functools import lru_cache

from peforge import formats
from peforge.formats import ApotFormat, FloatFormat, IntFormat
from peforge.geometry import blockdot_cut_points, blockdot_geometry, lut_geometry, shiftadd_geometry, tree_cut_levels
from peforge.spec import BlockDotSpec, LutSpec, ShiftAddSpec, signed_width

from .assembly import _bits, _decoder, float_loop, round_pack
from .components import Netlist, clog2

__all__ = ["assemble_shiftadd", "assemble_lut", "assemble_blockdot"]


def _fp32() -> FloatFormat:
    return formats.get_float("fp32")


def _float_act(n: Netlist, fmt: FloatFormat, out_bits: int, count: int) -> None:
    """A float activation read as exact fixed point: decode, ``sig << (exp - 1)``, negate."""
    _decoder(n, fmt, count)
    n.shifter(out_bits, clog2(max((1 << fmt.exp_bits) - 1, 2)), count, cls="operand", in_width=fmt.man_bits + 1)
    n.adder(out_bits + 1, count, cls="operand", path=False)
    n.mux(out_bits + 1, count, cls="operand")


def _acc_tail(n: Netlist, ops: list[int], width: int, total_bits: int, saturate: bool, signed: bool) -> None:
    n.accumulate(ops, width, max(width, total_bits) + 1, signed=signed)
    if saturate:
        n.compare(max(width, total_bits) + 1, 2, cls="acc", path=True)
        n.mux(width, inputs=3, cls="acc", path=True)
    n.register(width, cls="acc", enable=True)
    n.feedback()


def _dequant(n: Netlist, width: int, scale, counter_bits: int) -> None:
    """``rtl/blocks/dequant.py``: ``RNE_fp32(base + s * scale)``: multiply, normalise, align, add, round."""
    f = _fp32()
    if isinstance(scale, IntFormat):
        sig = scale.bits
    else:
        sig = scale.man_bits + 1 if scale.man_bits else 1
        _decoder(n, scale, 1)
    n.adder(width, cls="acc", path=False)  # |s|
    n.mux(width, cls="acc")
    wz = width + (sig if sig > 1 else 0)
    if sig > 1:
        n.mult(width, sig, cls="acc", unsigned=not isinstance(scale, IntFormat))  # |s| x the scale
    n.lzc(wz, cls="acc")
    n.shifter(wz, clog2(wz + 1), cls="acc")
    fw = f.man_bits + 1 + 3
    n.adder(10, 4, cls="acc", path=False)  # exponents and their difference
    n.compare(10, 2, cls="acc")
    n.mux(fw, 2, cls="acc", path=True)  # big / small
    n.shifter(fw, clog2(fw + 1), cls="acc")  # align with sticky
    n.equal(fw, cls="acc")
    n.adder(fw + 2, 3, cls="acc")  # signed add, magnitude
    n.mux(fw + 1, cls="acc")
    round_pack(n, f, fw + 1, -(f.man_bits + 3), exp_range=(-150, 130))
    n.mux(32, 2, cls="acc")
    n.register(
        32 + 1 + 1 + 1 + scale.bits + counter_bits, cls="acc", enable=True
    )  # out, done, first, valid, scale, count
    n.feedback()


# --- shift-add (rtl/shiftadd.py) -----------------------------------------------------------------
def assemble_shiftadd(spec: ShiftAddSpec) -> Netlist:
    lanes = spec.lanes
    n = Netlist(macs_per_cycle=lanes)
    act, w = spec.act, spec.weight
    geo = shiftadd_geometry(spec)
    alo, ahi = spec.act_range
    abits, pbits = geo.act_bits, geo.product_bits
    lo, hi = spec.product_range
    if isinstance(act, FloatFormat):
        _float_act(n, act, ahi.bit_length(), lanes)
    ctrl_bits = 1 + (spec.scale.bits if spec.scale is not None else 0)
    wb = w.bits
    if spec.mode == "pot":
        n.equal(wb - 1, lanes, cls="product")
        n.shifter(pbits, clog2(max((1 << (wb - 1)), 2)), lanes, cls="product", in_width=abits)
        n.adder(pbits, lanes, cls="product")
        n.mux(pbits, lanes, cls="product", path=True)
    elif isinstance(w, ApotFormat):  # mode apot
        for tb in w.term_bits:
            if tb:
                n.equal(tb, lanes, cls="product")
                # amount k << 1: tb mux levels, shifting by 2, 4, ...
                n.shifter(pbits, tb, lanes, cls="product", in_width=abits, path=tb == w.term_bits[0], step_bits=1)
        n.adder(pbits, lanes, cls="product")
        n.adder(pbits, lanes, cls="product")
        n.mux(pbits, lanes, cls="product", path=True)
    elif spec.mode == "shiftadd-int":
        n.logic(wb * pbits * lanes, cls="product", levels=1)
        if isinstance(w, IntFormat) and w.signed:
            n.adder(pbits, lanes, cls="product", path=False)
        n.multi_add([pbits] * wb, pbits, lanes, cls="product", signed=alo < 0)
    else:  # bitserial: one shift-add per lane per cycle, K cycles per input
        n.register(lanes * (abits + max(wb - 1, 1) + pbits) + clog2(wb) + 1 + ctrl_bits, cls="product", enable=True)
        n.adder(pbits, lanes, cls="product")
        n.mux(pbits, 2 * lanes, cls="product", path=True)
        n.logic(4 * clog2(wb) + 6, cls="ctl")
        n.cut()
        n.macs_per_cycle = max(1, lanes // wb)
    ops = [pbits] * lanes
    if spec.stages >= 1:
        n.register(lanes * pbits + ctrl_bits + 1, cls="product")
        n.cut()
    tbits = geo.tree_bits  # the RTL's tree: each level one bit wider (Amaranth x + y)
    if spec.stages >= 2:
        n.multi_add(ops, tbits, signed=lo < 0)
        for _ in range(spec.stages - 1):
            n.register(tbits + ctrl_bits + 1, cls="sum")
            n.cut()
        ops = [tbits]
    _acc_tail(n, ops, geo.acc_width, tbits, spec.overflow == "saturate" and spec.acc_bits is not None, lo < 0)
    n.register(1)  # acc_valid
    if spec.group is not None and spec.scale is not None:
        n.adder(clog2(spec.group + 1), cls="ctl", path=False)
        n.equal(clog2(spec.group + 1), 2, cls="ctl")
        n.cut()
        with n.shared():  # the dequantiser is a shared block, priced without the shift-add scale
            _dequant(n, spec.width, spec.scale, clog2(spec.group + 1))
    n.notes.update(product_bits=pbits, acc_width=spec.width, mode=spec.mode, tree_bits=tbits)
    return n


# --- LUT tensor core (rtl/lut.py) ----------------------------------------------------------------
@lru_cache(maxsize=64)
def _lut_structure(g: int, symmetric: bool) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """(+1 / -1 term counts of every table entry, of every shared partial sum) of the table
    unit ``rtl/lut.py`` builds (``LutTable._entries``: every entry one add / subtract of two
    halves, memoised up to sign).  Independent of the activation format, so cached."""
    if symmetric:
        coefs = [tuple(1 if (2 * i + 1) >> j & 1 else -1 for j in range(g)) for i in range(1 << (g - 1))]
    else:
        coefs = [tuple(m >> j & 1 for j in range(g)) for m in range(1 << g)]
    memo: dict[tuple[int, ...], tuple[int, int]] = {}

    def canon(c: tuple[int, ...]) -> tuple[int, ...]:
        first = next((k for k in c if k), 0)
        return tuple(-k for k in c) if first < 0 else c

    def value(c: tuple[int, ...]) -> None:
        nz = [j for j, k in enumerate(c) if k]
        if len(nz) < 2 or c in memo:
            return
        cut = nz[len(nz) // 2]
        value(tuple(k if j < cut else 0 for j, k in enumerate(c)))
        value(canon(tuple(k if j >= cut else 0 for j, k in enumerate(c))))
        memo[c] = (c.count(1), c.count(-1))

    for c in coefs:
        value(c)
    return tuple((c.count(1), c.count(-1)) for c in coefs), tuple(memo.values())


def _lut_table(lo: int, hi: int, g: int, symmetric: bool) -> tuple[list[int], int]:
    """(shared-sum widths, entry register bits) of the table unit ``rtl/lut.py`` builds, for
    activations in ``[lo, hi]`` (entry and serial widths: :func:`peforge.geometry.lut_geometry`)."""
    entries, sums = _lut_structure(g, symmetric)

    def rng(p: int, m: int) -> tuple[int, int]:
        return p * lo - m * hi, p * hi - m * lo

    # each entry keeps the bits its own range needs (sign extension merges, entry 0 is 0)
    table_ffs = sum(_bits(*rng(p, m)) for p, m in entries if p or m)
    return [signed_width(*rng(p, m)) for p, m in sums], table_ffs


def assemble_lut(spec: LutSpec) -> Netlist:
    g, lanes, planes, wcb = spec.group, spec.lanes, spec.planes, spec.weight_code_bits
    n = Netlist(macs_per_cycle=max(1, round(spec.macs_per_cycle)))
    geo = lut_geometry(spec)
    entries, eb, sb = geo["table_entries"], geo["entry_bits"], geo["serial_bits"]
    sums, table_ffs = _lut_table(*spec.act_range, spec.group, spec.symmetric)
    s1 = 1 if spec.stages >= 1 else 0
    correct = spec.symmetric and not spec.ternary  # serial start -A
    xb = spec.act_int_bits
    if spec.stages >= 2:  # in_valid, in_first, a, b
        n.register(2 + g * spec.act.bits + lanes * g * wcb, cls="operand")
        n.cut()
    if isinstance(spec.act, FloatFormat):
        _float_act(n, spec.act, xb - 1, g)
    # table unit: the shared sums, then the entry registers (loaded once per input)
    n.adder(sum(sums), cls="operand", path=False)
    n.chain(1, eb * max(1, clog2(g)))
    n.register(table_ffs + correct * sb, cls="operand", enable=True)
    if correct:
        n.adder(sb, cls="operand", path=False)  # -A
    # sequencer: phase, add_phase, commit, out_valid, first delay line, held serial start
    n.register(planes + s1 * planes + 2 + (planes + 1 + s1), cls="ctl")
    if correct and s1:
        n.register(sb, cls="ctl", enable=True)
    n.cut()
    # lanes: weight register, plane mask, table lookup, serial shift-add, commit
    n.register(lanes * g * wcb, cls="operand", enable=True)
    if spec.ternary:  # the +1 / -1 masks, selected by phase
        n.logic(g * planes * lanes, cls="product")
    elif planes > 1:  # the codes load or shift right by one plane (the mask is their bit 0)
        n.mux(g * wcb, lanes, cls="operand")
    if spec.symmetric:
        n.logic((g - 1) * lanes, cls="product")
    n.mux(eb, lanes, inputs=entries, cls="product", path=True)
    if s1:  # looked-up entry and its negate flag (one shared flag when it does not depend on the lane)
        n.register(eb * lanes + (lanes if spec.symmetric else 1), cls="product")
        n.cut()
    n.logic(eb * lanes, cls="sum")  # entry ^ neg
    n.mux(sb, lanes, cls="sum")  # Mux(add_phase[0], init, R)
    n.adder(sb + 1, lanes, cls="sum")  # base +- entry (the +neg is its carry-in)
    n.register(sb * lanes + (0 if spec.ternary else planes * lanes), cls="sum", enable=True)
    n.cut()
    n.accumulate([sb], spec.width, spec.width, lanes)  # Mux(first, 0, acc) + serial sum
    n.register(spec.width * lanes, cls="acc", enable=True)
    n.feedback()
    n.notes.update(
        table_entries=entries,
        entry_bits=eb,
        serial_bits=sb,
        acc_width=spec.width,
        initiation_interval=spec.initiation_interval,
    )
    return n


# --- block-scaled dot product (rtl/blockdot.py) --------------------------------------------------
def assemble_blockdot(spec: BlockDotSpec) -> Netlist:
    lanes, beats = spec.lanes, spec.beats
    n = Netlist(macs_per_cycle=lanes)
    fa, fb, sa, sb, f = spec.element_a, spec.element_b, spec.scale_a, spec.scale_b, spec.acc
    geo = blockdot_geometry(spec)
    span0, shift_max, lsw, bsw = geo.span, geo.shift_max, geo.lane_sum_width, geo.block_sum_width
    xbits, v_width = geo.scale_sig_bits, geo.v_width
    cuts = blockdot_cut_points(spec.stages)  # the generator's cut points
    nan = any(isinstance(x, FloatFormat) and (x.has_nan or x.has_inf) for x in (fa, fb))
    inf = any(isinstance(x, FloatFormat) and x.has_inf for x in (fa, fb))
    flag_bits = nan + 2 * inf + 1  # nan, +inf, -inf (when possible), negative zero
    snan = int(sa.has_nan or sb.has_nan)  # the scales' NaN, decoded at the input (rtl/blockdot.py)

    plan = spec.accumulator
    ex_bits = ((1 << sa.exp_bits) + (1 << sb.exp_bits) - 2).bit_length()
    amt_bits = 0 if plan is None else (1 + plan.width - 2 + v_width).bit_length() + 1  # clamped shift, above
    # rtl/blockdot.py: what a deferred loop carries beside the data, cut by cut: the scale
    # exponent sum; then the raw shift and its two clamp conditions; then the clamped shift and
    # the above-window flag
    carried_bits = (ex_bits, amt_bits + 1, amt_bits)
    carried = [0]

    def pipe(point: str, bits: int) -> None:
        if point in cuts:  # + valid, last (unless one beat), first, and the scales until they are decoded
            scales = 0
            if point in ("dec", "mul", "align", "tree", "tree2", "sum", "block"):
                scales = sa.bits + sb.bits + snan
                if plan is not None:
                    scales += carried_bits[min(carried[0], 2)]
                    carried[0] += 1
            n.register(bits + (beats > 1) + 1 + scales, enable=True)
            n.register(1)
            n.cut()

    if beats > 1:
        n.register(clog2(beats), cls="ctl", enable=True)
        n.adder(clog2(beats), cls="ctl", path=False)
    sig = []
    for fmt in (fa, fb):
        if isinstance(fmt, IntFormat):
            n.adder(fmt.bits, lanes, cls="operand", path=False)  # |x|
            n.mux(fmt.bits, lanes, cls="operand")
            sig.append(fmt.bits)
        else:
            _decoder(n, fmt, lanes)
            sig.append(fmt.man_bits + 1)
    if plan is not None:  # the scale exponent sum and the aligner shift, beside the lanes
        from .accumulators import align_amount

        n.adder(max(sa.exp_bits, sb.exp_bits) + 1, cls="sum", path=False)
        align_amount(n, plan, v_width, ex_bits)
    psh_bits = max(shift_max, 1).bit_length()
    n.adder(psh_bits + 1, 2 * lanes, cls="product", path=False)
    lane_flags = (psh_bits if shift_max else 0) + 1 + nan + inf + 1  # shift, sign, flags, zero
    pipe("dec", lanes * (sig[0] + sig[1] + lane_flags))
    n.mult(sig[0], sig[1], lanes)
    if "dec" in cuts:  # the operand registers: a DSP48's A / B registers
        n.dsp_register(sig[0] + sig[1])
    # per lane: significand product, shift (constant 0 for integer elements), sign, flags, zero
    pipe("mul", lanes * (sig[0] + sig[1] + lane_flags))
    if "mul" in cuts:
        n.dsp_register(sig[0] + sig[1])
    if shift_max:
        n.shifter(span0, psh_bits, lanes, cls="product", in_width=sig[0] + sig[1])
    n.logic((span0 + 1) * lanes, cls="product", levels=1)
    pipe("align", lanes * (span0 + 1) + (lanes.bit_length() if lanes > 1 else 0) + flag_bits)
    ops = [span0 + 1] * lanes
    levels = clog2(lanes)
    level = 0
    at = tree_cut_levels(levels)  # rtl/blockdot.py: registers inside the lane adder tree
    for point in sorted((p for p in ("tree", "tree2") if p in cuts), key=lambda p: at[p]):
        if at[point] > level:  # the levels before the register: one sum per group of terms
            size = 1 << (at[point] - level)
            groups = [ops[i : i + size] for i in range(0, len(ops), size)]
            for g in groups:
                n.multi_add(g, max(g) + clog2(len(g)), path=g is groups[0], signed=True)
            ops, level = [max(g) + clog2(len(g)) for g in groups], at[point]
        pipe(point, sum(ops) + lanes.bit_length() + flag_bits)
    n.multi_add(ops + [clog2(lanes + 1)], lsw, signed=True)
    pipe("sum", lsw + flag_bits)
    if beats > 1:
        n.adder(bsw, cls="sum")
        n.logic(bsw + 8, cls="sum")
        n.register(bsw + flag_bits, cls="sum", enable=True)
    pipe("block", (bsw if beats > 1 else lsw) + flag_bits)

    # scales: V = |S| * sig(Xa) * sig(Xb), its exponent, normalisation
    def scale_decoders() -> None:
        _decoder(n, sa, 1)
        _decoder(n, sb, 1)

    def magnitude() -> None:  # |S|, then a NaN scale's zero (a register bit)
        n.adder(bsw, cls="sum")
        n.mux(bsw, cls="sum", path=True)

    if xbits > 1:  # the scale significands' product multiplies |S|: behind the decoders
        scale_decoders()
        magnitude()
    else:  # no scale significand: the decoders feed only the flags, beside |S|
        n.parallel(scale_decoders, magnitude)
    if xbits > 1:
        n.mult(sa.man_bits + 1, sb.man_bits + 1, cls="sum", path=False)
        n.mult(bsw, xbits, cls="sum")
    if plan is None:  # the scale exponent sum (a deferred loop's is formed at the input)
        n.adder(max(sa.exp_bits, sb.exp_bits) + 1, cls="sum", path=False)
    n.logic(20, cls="ctl")
    v_flags = 1 + 2 * inf  # v_nan (scales have NaN), v_pinf, v_ninf
    if plan is not None:  # deferred rounding: window aligner + loop + read-out
        from .accumulators import fixed_point_accumulator, window_aligner

        pipe("vmul", v_width + amt_bits + 2 + v_flags)
        n.logic(v_width + 4, cls="sum")  # a special value adds nothing; its -0
        n.equal(v_width, cls="sum")  # its nonzero test
        pipe("acc", v_width + amt_bits + 2 + v_flags)
        window_aligner(n, plan, v_width)
        fixed_point_accumulator(n, plan)
        n.register(1)  # out_valid
        n.notes.update(block_sum_width=bsw, v_width=v_width, beats=beats, acc_width=f.bits)
        return n
    pipe("vmul", v_width + ex_bits + 2 + v_flags)
    n.lzc(v_width, cls="sum")
    n.shifter(v_width, clog2(v_width + 1), cls="sum")
    base = geo.lsb_exp - geo.v_exp_offset + v_width - 1
    tv_bits = signed_width(base - v_width, base + (1 << ex_bits) - 1)
    n.adder(tv_bits, cls="sum", path=False)
    # the normalised V's top bit is its nonzero flag: synthesis keeps one register for both
    pipe("acc", v_width - 1 + tv_bits + 3 + v_flags)
    # the accumulate loop: swap, align with sticky, add, normalise, round once per block
    float_loop(n, f, geo.loop)
    n.register(1)  # out_valid
    n.notes.update(
        span=span0, block_sum_width=bsw, v_width=v_width, frame=geo.loop.frame, beats=beats, acc_width=f.bits
    )
    return n
