"""One assembly per PE family: the blocks its RTL generator builds, as a :class:`Netlist`.

:func:`assemble` calls the spec's family's ``cost_assembly`` part (one function per family,
named in :data:`peforge.families.FAMILIES`: here for mac, intmac and simd, in
:mod:`.families` for the others).  Each assembly follows its
generator's datapath and widths (``rtl/mac.py``, ``rtl/intmac.py``, ``rtl/simd.py``) without
importing it: widths are recomputed from the spec with the same formulas, and the register
bits counted are the ones synthesis keeps (constant or unread pipeline bits left out).
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from peforge.families import family_of
from peforge.geometry import intmac_geometry, mac_cut_points, mac_geometry, range_bits, simd_geometry
from peforge.spec import IntMacSpec, MinifloatMacSpec, SimdMacSpec, Spec, signed_width

from .components import Netlist, clog2

__all__ = ["assemble", "netlist", "assemble_mac", "assemble_intmac", "assemble_simd"]


def assemble(spec: Spec) -> Netlist:
    """The :class:`Netlist` of ``spec``'s PE (its family's ``cost_assembly``)."""
    return family_of(spec).part("cost_assembly")(spec)


@lru_cache(maxsize=8192)
def netlist(spec: Spec) -> Netlist:
    """Cached :func:`assemble` (specs are frozen and hashable; treat the result as read-only)."""
    return assemble(spec)


def _decoder(n: Netlist, fmt, lanes: int, mask: bool = True) -> None:
    e, m = fmt.exp_bits, fmt.man_bits
    n.equal(e, 2 * lanes, cls="operand")  # exp == top, exp != 0
    n.equal(e + m, lanes, cls="operand")  # NaN code / mantissa zero
    if mask:
        n.mux(m + 1, lanes, cls="operand")  # significand: special -> 0, subnormal hidden bit
    n.logic(4 * lanes, cls="operand", levels=1)


# --- minifloat MAC (rtl/mac.py) ------------------------------------------------------------------
def assemble_mac(spec: MinifloatMacSpec) -> Netlist:
    n = Netlist(macs_per_cycle=spec.lanes)
    a, b, lanes = spec.a, spec.b, spec.lanes
    geo = mac_geometry(spec)  # the generator's widths (L-Mul: grid 2**-frac, FTZ: no normalisation range)
    shift_max, span, lsw = geo.shift_max, geo.span, geo.lane_sum_width
    lmul = spec.mult == "lmul"
    frac = max(a.man_bits, b.man_bits)
    levels = clog2(lanes)
    cuts = mac_cut_points(spec.stages, lanes)  # the generator's cut points
    nan = a.has_nan or b.has_nan or a.has_inf or b.has_inf  # inf * 0 is NaN too
    inf = a.has_inf or b.has_inf
    exact = spec.is_exact
    fixed_point = exact or spec.accumulator is not None  # the exact lane sum feeds the loop
    flags_live = (not exact) or nan  # exact acc reads flags only with acc_flags
    flag_bits = (nan + 2 * inf) if flags_live else 0
    nzero_bit = 0 if exact else 1
    psh_bits = max(shift_max, 1).bit_length()
    n.notes.update(span=span, lane_sum_width=lsw, shift_max=shift_max)

    def pipe(point: str, bits: int) -> None:
        if point in cuts:
            n.register(bits + 1, enable=True)  # + first (enabled by valid)
            n.register(1)  # valid
            n.cut()

    float_product = not fixed_point and lanes == 1  # rtl/mac.py: the loop ignores a special's significand
    _decoder(n, a, lanes, mask=not float_product)
    _decoder(n, b, lanes, mask=not float_product)
    sa, sb = a.man_bits + 1, b.man_bits + 1
    if float_product:
        _float_product(n, spec, pipe, cuts)
        n.register(1)  # out_valid
        return n
    flag_regs = 1 + (nan and flags_live) + (inf and flags_live) + nzero_bit  # sign, nan, inf, zero
    if lmul:
        psig_bits = frac + 2
        if spec.subnormals:  # normalise subnormal significands: priority encoder + shifter
            for fm in (a.man_bits, b.man_bits):
                if fm:
                    n.mux(clog2(fm + 1), lanes, inputs=fm + 1, cls="product")
                    n.shifter(fm + 1, clog2(fm + 1), lanes, cls="product", path=False)
        n.adder(frac + 2, 2 * lanes, cls="product")
        n.mux(frac + 2, lanes, cls="product")
        n.multi_add([max(a.exp_bits, b.exp_bits) + 1] * 4, psh_bits, lanes, cls="product", path=False)
        n.logic(8 * lanes, cls="product")
        pipe("dec", lanes * (psig_bits + psh_bits + flag_regs))
    else:
        psig_bits = sa + sb
        n.adder(max(a.exp_bits, b.exp_bits) + 1, 2 * lanes, cls="product", path=False)
        n.logic(8 * lanes, cls="product")
        pipe("dec", lanes * (sa + sb + a.exp_bits + b.exp_bits + flag_regs))  # psh is added after it
        n.mult(sa, sb, lanes)
        if "dec" in cuts:  # the operand registers: a DSP48's A / B registers
            n.dsp_register(sa + sb)
    mul_bits = lanes * (psig_bits + psh_bits + 1 + (nan and flags_live) + (inf and flags_live) * 1 + nzero_bit)
    pipe("mul", mul_bits)
    if "mul" in cuts and not lmul:
        n.dsp_register(psig_bits)
    pipe("mul2", mul_bits)  # one lane's fifth cut: the product again, in the fabric
    if "shift" in cuts:  # rtl/blocks/lanes.py aligned_terms(split=...): high half, register, low half
        low = psh_bits // 2
        n.shifter(span, psh_bits - low, lanes, cls="product", in_width=psig_bits, step_bits=low)
        pipe("shift", lanes * (span + low + 1 + (nan and flags_live) + (inf and flags_live) + nzero_bit))
        n.shifter(span, low, lanes, cls="product")
    else:
        n.shifter(span, psh_bits, lanes, cls="product", in_width=psig_bits)
    if lanes == 1:  # one's complement by the sign, then term + sign: a two-operand adder
        n.gate(span + 1, cls="product", levels=1)
    else:  # ... into the carry-save tree
        n.logic((span + 1) * lanes, cls="product", levels=1)
    if lanes > 1:
        n.adder(clog2(lanes + 1), lanes - 1, cls="ctl", path=False)
    n.equal(lanes, 4, cls="ctl")
    # one lane: neg_count is the term's sign bit, so synthesis merges the two flip-flops
    pipe("align", lanes * (span + 1) + (max(lanes, 1).bit_length() if lanes > 1 else 0) + flag_bits + nzero_bit)
    # the lane adder tree (+ neg_count) is one multi-operand sum per pipeline segment
    ops = [span + 1] * lanes
    if levels >= 2 and "tree" in cuts:
        h = levels // 2
        groups = [ops[i : i + (1 << h)] for i in range(0, lanes, 1 << h)]
        for g in groups:
            n.multi_add(g, span + 1 + clog2(len(g)), path=g is groups[0], signed=True)
        n.register(
            sum(span + 1 + clog2(len(g)) for g in groups) + max(lanes, 1).bit_length() + flag_bits + nzero_bit + 1,
            enable=True,
        )
        n.register(1)
        n.cut()
        ops = [span + 1 + clog2(len(g)) for g in groups]
    ops = ops + [max(lanes, 1).bit_length()]
    # Mux(first, 0, acc) + lane_sum joins the tree (one lane: term + sign stays its own adder)
    merged = exact and spec.segment == 0 and "sum" not in cuts and lanes > 1
    if merged:
        n.accumulate(ops, spec.exact_width, spec.exact_width, signed=True)
    else:
        n.multi_add(ops, lsw, signed=True)
    if not fixed_point:  # lane_zero (a segmented / deferred loop leaves it unused: trimmed)
        n.equal(lsw, cls="sum")
    pipe("sum", lsw + (0 if fixed_point else 1) + flag_bits + nzero_bit)

    if spec.accumulator is not None:  # segmented exact / deferred rounding (models/cost/accumulators.py)
        from .accumulators import fixed_point_accumulator

        fixed_point_accumulator(n, spec.accumulator, exact_flags=exact and nan)
        n.notes["acc_width"] = spec.exact_width if exact else spec.acc_format.bits
    elif exact:
        w = spec.exact_width
        if not merged:
            n.accumulate([lsw], w, w)
        n.register(w, cls="acc", enable=True)
        n.feedback()
        if nan:  # sticky acc_flags: the +inf / -inf bits stay 0 (removed) without an inf format
            n.logic(6, cls="acc")
            n.register(1 + 2 * inf, cls="acc", enable=True)
        n.notes["acc_width"] = w
    else:
        _frame_float_acc(n, spec, lsw, geo.lsb_exp)
    n.register(1)  # out_valid
    return n


def _float_product(n: Netlist, spec: MinifloatMacSpec, pipe, cuts: frozenset[str]) -> None:
    """One lane into a float accumulator (``rtl/mac.py``): normalised operand significands
    multiplied, the product's two possible top bits muxed, the exponent from per-operand tables
    and one adder; then the accumulate loop."""
    a, b = spec.a, spec.b
    geo = mac_geometry(spec)
    loop = geo.loop
    assert loop is not None
    nan = a.has_nan or b.has_nan or a.has_inf or b.has_inf
    inf = a.has_inf or b.has_inf
    e_bits = range_bits(loop.v_exp_lo, loop.v_exp_hi)
    if spec.mult == "lmul":
        frac = max(a.man_bits, b.man_bits)
        psig_bits = frac + 2
        if spec.subnormals:
            for fm in (a.man_bits, b.man_bits):
                if fm:
                    n.mux(clog2(fm + 1), inputs=fm + 1, cls="product")
                    n.shifter(fm + 1, clog2(fm + 1), cls="product", path=False)
        n.adder(frac + 2, 2, cls="product")
        n.mux(frac + 2, cls="product")
        n.multi_add([max(a.exp_bits, b.exp_bits) + 1] * 4, e_bits, cls="product", path=False)
        n.adder(e_bits, cls="product", path=False)
    else:
        psig_bits = a.man_bits + b.man_bits + 2
        for fmt in (a, b):
            if spec.subnormals and fmt.man_bits:
                n.mux(clog2(fmt.man_bits + 1), inputs=fmt.man_bits + 1, cls="product")
                n.shifter(fmt.man_bits + 1, clog2(fmt.man_bits + 1), cls="product", path=False)
            code_bits = fmt.exp_bits + fmt.man_bits
            if code_bits <= 8:  # the exponent share: a table of the code
                n.logic((fmt.exp_bits + 2) * code_bits, cls="product", levels=0)
        n.adder(e_bits, cls="product", path=False)
    n.logic(8, cls="product")
    if spec.mult == "lmul":
        pipe("dec", psig_bits + e_bits + 1 + nan + inf + 1)
    else:
        pipe("dec", a.man_bits + b.man_bits + 2 + e_bits + 1 + nan + inf + 1)
        n.mult(a.man_bits + 1, b.man_bits + 1)
        if "dec" in cuts:  # the operand registers: a DSP48's A / B registers
            n.dsp_register(a.man_bits + b.man_bits + 2)
    pipe("mul", psig_bits + e_bits + 1 + nan + inf + 1)
    if "mul" in cuts and spec.mult != "lmul":
        n.dsp_register(psig_bits)
    pipe("mul2", psig_bits + e_bits + 1 + nan + inf + 1)  # the fifth cut: the product again, in the fabric
    n.mux(psig_bits, cls="product", path=True)  # the product's top bit: one-bit normalise
    pipe("align", psig_bits + e_bits + 2 + nan + 2 * inf + 2)
    pipe("sum", psig_bits + e_bits + 2 + nan + 2 * inf + 2)
    float_loop(n, spec.acc_format, loop)


def _frame_float_acc(n: Netlist, spec: MinifloatMacSpec, lsw: int, lsb_exp: int) -> None:
    """Several lanes (``rtl/mac.py`` ``_frame_acc``): the accumulator aligned into the lane sum's
    fixed-point frame, added, normalised and rounded in the loop."""
    f = spec.acc_format
    e, m = f.exp_bits, f.man_bits
    big_n = mac_geometry(spec).frame_width
    top = (1 << e) - 1
    n.notes.update(frame_width=big_n, acc_width=f.bits)
    n.equal(e, 2, cls="acc")
    n.equal(m, 2, cls="acc")
    n.logic(12, cls="acc")
    k = lsw + f.bias + m + lsb_exp
    limit = big_n - 2
    r_bits = signed_width(min(k - top, 0), max(k, limit))
    n.mux(e, cls="acc")
    n.adder(r_bits, cls="acc", path=False)
    n.compare(r_bits, cls="acc")
    n.mux(limit.bit_length(), cls="acc", path=True)
    n.mux(m + 1, cls="acc")
    # the amount only takes as many values as the exponent field has (r = k - e_acc)
    n.shifter(big_n - 2, clog2(min(limit + 1, top)), cls="acc", in_width=m + 1)
    n.adder(big_n, cls="acc")  # -amag
    n.mux(big_n, cls="acc", path=True)
    n.adder(big_n, cls="acc")  # aterm + lane_sum
    n.adder(big_n - 1, cls="acc")  # -z
    n.mux(big_n - 1, cls="acc", path=True)
    n.equal(e + m, cls="acc")
    n.logic(6, cls="acc")
    round_pack(n, f, big_n - 1, lsb_exp)
    n.register(f.bits, cls="acc", enable=True)
    n.feedback()


def float_loop(n: Netlist, f, loop, cls: str = "acc") -> None:
    """``rtl/blocks/float_acc.py``: the retimed per-step float accumulate loop (its fast or its
    general variant).  The rounding of the registered sum runs beside the addend's logic of
    the same segment (:meth:`Netlist.parallel`).
    The state is the windowed sum, its biased exponent, its sign, zero sign and NaN / infinity
    flags; the flags feed themselves back, so synthesis keeps them even when no input sets them."""
    E, M = f.exp_bits, f.man_bits
    p = M + 1
    FM = loop.frame
    n.notes.update(loop_v_width=loop.v_width, loop_sum_width=loop.sum_width, acc_width=f.bits)
    eb = range_bits(min(loop.exp_lo, loop.v_exp_lo) - loop.sum_width, max(loop.exp_hi, loop.v_exp_hi) + 2)
    state_bits = loop.sum_width + range_bits(loop.exp_lo, loop.exp_hi) + 4
    if loop.fast:
        OW = ZW = loop.sum_width  # FM + 3: a guard bit below the frame, the accumulator's carry
        amount = clog2(OW)

        def round_side() -> None:
            # normalised by stages (the count falls out of the shifter): per stage a zero test,
            # every second one looking ahead (two tests and a mux); the round bit in place
            n.equal(ZW + ZW // 2, cls=cls)
            n.shifter(ZW, clog2(ZW + 1), cls=cls)
            n.logic(4 * (ZW - p), cls=cls, levels=1)  # round increment at its own position
            n.adder(p + 1, cls=cls)  # the rounded significand
            n.adder(eb, 2, cls=cls, path=False)  # exponent before rounding, and the code's
            n.mux(E, cls=cls)

        n.parallel(round_side, lambda: n.adder(eb, cls=cls))  # e_r + 1 - addend exponent
        n.adder(eb, cls=cls, path=False)  # its distance (beside the round adder)
        n.compare(min(loop.v_width, p), cls=cls)  # equal exponents: significands
        n.logic(12, cls=cls, levels=1)  # acc_big, too far (bits above the amount), flags, signs
        n.adder(amount, cls=cls, path=False)  # the accumulator's distance, 1 - d
        n.mux(amount, cls=cls)
        n.mux(OW, 3, cls=cls, path=True)  # larger (or the NaN / infinity pattern) / smaller
        n.shifter(OW, amount, cls=cls)
        n.gate(ZW, cls=cls, levels=1)  # XOR by the effective operation
        n.adder(ZW, cls=cls)
        n.mux(E, cls=cls)  # the exponent: NaN / infinity's
        n.register(state_bits, cls=cls, enable=True)
        n.feedback()
        return
    width = FM + 1
    amount = clog2(width)

    def round_side_general() -> None:
        round_pack(n, f, loop.sum_width, -FM - f.bias, exp_range=(loop.exp_lo, loop.exp_hi))
        n.equal(E, 2, cls=cls)
        n.equal(M, cls=cls)
        n.equal(E + M, cls=cls)

    n.parallel(round_side_general, lambda: n.adder(eb, cls=cls))
    n.mux(E, cls=cls)
    n.adder(eb, 2, cls=cls)
    n.compare(width, cls=cls)
    n.logic(8, cls=cls, levels=1)
    n.mux(amount, cls=cls)
    n.compare(eb, 2, cls=cls)
    n.gate(width, cls=cls)
    n.mux(width, 2, cls=cls, path=True)
    n.shifter(width, amount, cls=cls)
    n.mux(width, cls=cls)
    n.gate(width + 2, cls=cls, levels=1)
    n.adder(width + 2, cls=cls)
    n.adder(width + 1, cls=cls)  # the magnitude step
    n.mux(width + 1, cls=cls, path=True)
    n.mux(eb, cls=cls)
    if (
        min(loop.acc_top_lo + f.bias, loop.v_exp_lo) < loop.exp_lo
        or max(loop.acc_top_hi + f.bias, loop.v_exp_hi) > loop.exp_hi
    ):
        n.compare(eb, 2, cls=cls)
        n.mux(eb, 2, cls=cls)
    n.register(state_bits, cls=cls, enable=True)
    n.feedback()


def round_pack(
    n: Netlist, f, width: int, lsb_exp: int, exp_range: tuple[int, int] | None = None, cls: str = "acc"
) -> None:
    """``rtl/blocks/round.py`` RoundPack: LZC, limited normalising shift, RNE increment, pack."""
    e, m = f.exp_bits, f.man_bits
    e_lo, e_hi = exp_range if exp_range is not None else (0, 0)
    pad_lo = max(0, m + 2 - width)
    top_biased = width + pad_lo - 1 + (lsb_exp - pad_lo) + f.bias
    pad_hi = max(0, 1 - (top_biased + e_lo))
    w = width + pad_lo + pad_hi
    cb = top_biased + pad_hi
    n.lzc(w, cls=cls)
    sh_bits = w.bit_length()
    if exp_range is not None:
        n.adder(max(abs(cb + e_hi), abs(cb + e_lo - w)).bit_length() + 2, 2, cls=cls, path=False)
    if cb + e_lo - 1 < w:
        n.compare(sh_bits, cls=cls)
        n.mux(sh_bits, cls=cls, path=True)
    n.shifter(w, sh_bits, cls=cls)
    n.adder(max(cb + e_hi, 1).bit_length() + 1, cls=cls, path=False)
    n.mux(e, cls=cls)
    n.equal(max(w - 2 - m, 0), cls=cls, path=True)
    n.adder(e + m + 1, cls=cls)
    n.compare(e + m + 1, cls=cls)
    n.mux(e + m + 1, 1, inputs=3, cls=cls, path=True)


# --- integer MAC (rtl/intmac.py) -----------------------------------------------------------------
def _bits(lo: int, hi: int) -> int:
    return max(hi.bit_length(), 1) if lo >= 0 else signed_width(lo, hi)


def _int_tail(n: Netlist, width: int, total_bits: int, saturate: bool) -> None:
    n.accumulate([total_bits], width, max(width, total_bits) + 1)
    if saturate:
        n.compare(max(width, total_bits) + 1, 2, cls="acc", path=True)
        n.mux(width, inputs=3, cls="acc", path=True)
    n.register(width, cls="acc", enable=True)
    n.feedback()
    n.register(1)  # out_valid


def _scratch(build) -> list[float]:
    """Feature totals of the blocks ``build(netlist)`` adds to an empty netlist."""
    m = Netlist()
    build(m)
    return m.totals()


def assemble_intmac(spec: IntMacSpec) -> Netlist:
    n = Netlist(macs_per_cycle=spec.lanes)
    geo = intmac_geometry(spec)  # exact-range widths of the balanced tree, as the RTL sizes them
    lo, hi = geo.product_range
    pbits, tbits = geo.product_bits, geo.total_bits
    width = geo.acc_width
    out_width = geo.acc_next_width
    # no register after the products: signed ones merge into the accumulator's $macc
    n.mult(
        spec.a.bits, spec.b.bits, spec.lanes, y_bits=pbits, macc_width=out_width if spec.stages == 0 and lo < 0 else 0
    )
    if spec.stages >= 1:
        n.register(spec.lanes * pbits + 2, cls="product")
        n.dsp_register(pbits)
        n.cut()
    sat = spec.overflow == "saturate" and spec.acc_bits is not None
    ops = [pbits] * spec.lanes
    # registered products (a DSP48's MREG): each pair's first add is a DSP post-adder
    # (P = M + C), so the fabric sums the pair sums, one bit wider
    pairs = (
        [pbits + 1] * (spec.lanes // 2) + [pbits] * (spec.lanes % 2) if spec.stages >= 1 and spec.lanes > 1 else None
    )
    if spec.stages >= 2:
        before = n.totals()
        n.multi_add(ops, tbits, signed=lo < 0)
        if pairs:
            n.dsp_post_adder(before, replacement=_scratch(lambda m: m.multi_add(pairs, tbits, signed=lo < 0)))
        for k in range(spec.stages - 1):
            n.register(tbits + 2, cls="sum")
            if k == 0 and spec.lanes <= 2:  # one product or a pair: the DSP's post-adder + PREG
                n.dsp_register(tbits, per_mult=False)
            n.cut()
        ops = [tbits]
    # Mux(first, 0, acc) + total: one multi-operand sum with the tree when no register splits them
    before = n.totals()
    n.accumulate(ops, width, out_width, signed=lo < 0)
    if spec.stages == 0 and width <= 48 and not sat:  # acc + products in the DSP cascade (PREG)
        # a cascade (lanes > 1) feeds Mux(first, 0, acc) to the last DSP's C port from LUTs
        n.dsp_post_adder(before, fabric_gate=width if spec.lanes > 1 else 0)
        n.dsp_register(width, per_mult=False)
    elif spec.stages == 0 and spec.lanes > 1:  # saturating or wide: the cascade sums the products only
        n.dsp_post_adder(before, replacement=_scratch(lambda m: m.accumulate([tbits], width, out_width, signed=lo < 0)))
    elif pairs and len(ops) > 1:
        n.dsp_post_adder(before, replacement=_scratch(lambda m: m.accumulate(pairs, width, out_width, signed=lo < 0)))
    if sat:
        n.compare(out_width, 2, cls="acc", path=True)
        n.mux(width, inputs=3, cls="acc", path=True)
    n.register(width, cls="acc", enable=True)
    n.feedback()
    n.register(1)  # out_valid
    n.notes.update(product_bits=pbits, acc_width=spec.width, total_bits=tbits)
    return n


# --- mixed-precision SIMD (rtl/simd.py) ----------------------------------------------------------


def assemble_simd(spec: SimdMacSpec) -> Netlist:
    n = Netlist(macs_per_cycle=spec.mode_lanes[0])
    d = spec.digit_bits
    nn = spec.base // d
    levels = clog2(nn)
    mode_widths = spec.mode_widths
    mode_bits = spec.mode_bits
    layout = spec.cell_layout()
    modes = range(len(mode_widths))
    das = [a // d for a, _ in mode_widths]
    dbs = [b // d for _, b in mode_widths]
    # fusion controls that really depend on the mode (a constant one costs nothing)
    fuse_r = [len({das[i] > 1 << lv for i in modes}) > 1 for lv in range(levels)]
    fuse_c = [len({dbs[i] > 1 << lv for i in modes}) > 1 for lv in range(levels)]
    n.logic((sum(fuse_r) + sum(fuse_c)) * 2 * mode_bits, cls="ctl")
    # operand selection per cell digit: summed per mux width, then added as blocks
    by_inputs: Counter[int] = Counter()
    sel_logic = 0
    for r in range(nn):
        for c in range(nn):
            for idx in (0, 2):
                srcs = {(layout[i][(r, c)][idx], layout[i][(r, c)][idx + 1]) for i in modes}
                by_inputs[len(srcs)] += 1
                sel_logic += 1 + (len({t for _, t in srcs}) > 1) * mode_bits
    first = len({(layout[i][(0, 0)][0], layout[i][(0, 0)][1]) for i in modes})
    for inputs, count in sorted(by_inputs.items()):
        n.mux(d, count, inputs=inputs, cls="operand", path=False)
    if first >= 2:  # cell (0, 0)'s select is on the timed path
        n.chain(max(1, clog2(first) / 2))
    n.logic(sel_logic, cls="operand")
    geo = simd_geometry(spec)
    widths: dict[tuple[int, int], int] = dict(geo.cell_bits)
    cell_w = sum(widths.values())
    cells = nn * nn
    if d == 2:
        n.logic(4 * cells, cls="product", levels=1)
        for key, w in widths.items():
            # a partial product is negated under a sign flag that is not constant 0: a's
            # top digit, b's, or both (their XOR); an all-unsigned cell folds to a plain sum
            ta = any(layout[i][key][1] for i in modes)
            tb = any(layout[i][key][3] for i in modes)
            n.adder(w, ta + tb + (ta or tb), cls="product", path=False)  # conditional negations
            n.multi_add([w] * 4, w, cls="product", path=False, signed=ta or tb)  # sum of the four terms
        n.chain(2, 2 * max(widths.values()))
    else:
        n.mux(d + 1, 2 * cells, cls="product")
        by_width = Counter(widths.values())  # a cell whose product is narrower may stay out of a DSP
        first_mult = len(n.mults)
        for w, count in sorted(by_width.items()):
            n.mult(d + 1, d + 1, count, y_bits=w, path=w == max(by_width))
    if spec.stages >= 1:
        n.register(cell_w + sum(fuse_r) + sum(fuse_c) + 2, cls="product")
        if d != 2:
            for i, w in enumerate(sorted(by_width), start=first_mult):
                n.dsp_register(w, index=i)
        n.cut()
    for lv, level in enumerate(geo.levels):
        shift = d << lv
        nxt_w = {}
        for (r2, c2), (node, w, kid_shifts) in level.items():
            r, c = 2 * r2, 2 * c2
            kids = [((r + i, c + j), i, j) for i in (0, 1) for j in (0, 1)]
            # a kid shifted by the same amount in every mode leaves its low columns empty,
            # one whose shift depends on the mode (a mux) fills them.  Only for BitBrick
            # cells (sums of AND bits): shifted 4-bit cell products measure as full width
            # where they come from DSP blocks (ECP5 / 7-series CV 2-8 points worse)
            ws, offs = [], []
            for (key, i, j), sh in zip(kids, kid_shifts):
                n.mux(widths[key] + shift, (i and fuse_r[lv]) + (j and fuse_c[lv]), cls="sum")
                fixed = len(set(sh)) == 1 and d == 2
                ws.append(widths[key] + (0 if fixed else max(sh)))
                offs.append(sh[0] if fixed else 0)
            n.multi_add(ws, w, cls="sum", path=False, signed=min(x for x, _ in node) < 0, offsets=offs)
            nxt_w[(r2, c2)] = w
        n.chain(1 + (fuse_r[lv] or fuse_c[lv]), 2 * max(nxt_w.values()))
        widths = nxt_w
    tlo, thi = geo.total_range
    for _ in range(max(spec.stages - 1, 0)):
        n.register(widths[(0, 0)] + 2, cls="sum")
        n.cut()
    _int_tail(n, spec.width, signed_width(tlo, thi), False)
    n.notes.update(
        cells=cells,
        digit_bits=d,
        cell_bits=cell_w,
        macs_per_cycle_by_mode=dict(zip(spec.modes, spec.mode_lanes)),
        acc_width=spec.width,
    )
    return n
