"""Block-scaled dot-product PE generator (family ``blockdot``): OCP MX, NVFP4 / NVINT4 and
UE4M3 / UE5M3-scaled blocks (float or ``intN`` elements, any scale of
:data:`~peforge.spec.BLOCKDOT_SCALES`).

A block of ``block`` element pairs arrives in ``beats = block // lanes`` valid cycles of
``lanes`` pairs (lane ``i`` of ``a`` at bits ``[i*w, (i+1)*w)``).  An internal beat counter
(reset by ``rst``, advanced by every ``in_valid``) marks each block's last beat; ``in_first``,
``scale_a`` and ``scale_b`` are read on that last beat only.

Datapath, all exact until the single rounding:

1. per lane, the minifloat MAC's front: decode, significand multiply, align into a fixed-point
   word whose LSB is the smallest product (``lsb_exp``); the lanes are summed in a balanced
   tree (one's complement terms plus a count of the negative ones);
2. beats > 1: the lane sums of a block collect in an exact partial-sum register;
3. scales: ``|S| * sig(Xa) * sig(Xb)`` (one small multiply; none for two E8M0 scales), its
   exponent from the scale exponents, then a leading-zero count normalises it to ``V``;
4. the accumulate loop: :class:`~peforge.rtl.blocks.float_acc.FloatAccumulator` (its general
   variant: scaled block terms reach subnormals and overflow), one rounding per block.

``stages`` pipeline registers sit in front of the loop, so latency = stages + 1 cycles from a
block's last beat to ``acc``; ``out_valid`` pulses once per block.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from amaranth.hdl import C, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.formats import FloatFormat, IntFormat
from peforge.geometry import BlockDotGeometry, blockdot_cut_points, blockdot_geometry, tree_cut_levels
from peforge.spec import BlockDotSpec

from .accumulators import (
    accumulator_flags,
    accumulator_manifest,
    blockdot_align_clamp,
    blockdot_align_parts,
    connect_blockdot,
)
from .blocks import LeadingZeroCounter, MinifloatDecoder
from .blocks._util import SpecComponent, invalid, pe_signature
from .blocks.float_acc import FloatAccumulator
from .blocks.lanes import aligned_terms, tree_level

__all__ = [
    "BlockDotGeometry",
    "BlockDot",
    "IntElementDecoder",
    "blockdot_geometry",
    "blockdot_signature",
    "blockdot_manifest",
]


def blockdot_signature(spec: BlockDotSpec) -> wiring.Signature:
    """Ports of the block-dot PE (clk/rst come from the sync domain)."""
    inputs = {
        "a": spec.lanes * spec.element_a.bits,
        "b": spec.lanes * spec.element_b.bits,
        "scale_a": spec.scale_a.bits,
        "scale_b": spec.scale_b.bits,
    }
    outputs = {"acc": spec.acc.bits}
    if spec.rounding == "deferred":
        outputs["acc_flags"] = 2  # sticky {overflow, inexact} of the window
    return pe_signature(inputs, outputs)


class IntElementDecoder(wiring.Component):
    """Two's complement element (MXINT-N: int2 .. int8) as sign and magnitude, in the members of
    :class:`~peforge.rtl.blocks.MinifloatDecoder` (``exp`` is the constant 1).

    Parameters
    ----------
    fmt : IntFormat
        A signed integer format.

    Members
    -------
    code : In(fmt.bits)
    sign, is_zero, is_inf, is_nan, exp : Out(1)
    sig : Out(fmt.bits)
        ``|value|`` (``-2**(bits-1)`` gives ``2**(bits-1)``).
    """

    def __init__(self, fmt: IntFormat) -> None:
        if not isinstance(fmt, IntFormat) or not fmt.signed:
            raise invalid(self, f"fmt={fmt!r} must be a signed IntFormat")
        self._fmt = fmt
        super().__init__(
            {
                "code": In(fmt.bits),
                "sign": Out(1),
                "sig": Out(fmt.bits),
                "exp": Out(1),
                "is_zero": Out(1),
                "is_inf": Out(1),
                "is_nan": Out(1),
            }
        )

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        w = self._fmt.bits
        sign = self.code[w - 1]
        m.d.comb += [
            self.sign.eq(sign),
            self.sig.eq(Mux(sign, -self.code, self.code)[:w]),
            self.exp.eq(1),
            self.is_zero.eq(self.code == 0),
        ]
        return m


def _decoder(fmt: FloatFormat | IntFormat) -> wiring.Component:
    return IntElementDecoder(fmt) if isinstance(fmt, IntFormat) else MinifloatDecoder(fmt, mask_specials=False)


class BlockDot(SpecComponent[BlockDotSpec]):
    """Block-scaled dot-product PE for a :class:`~peforge.spec.BlockDotSpec`.

    Parameters
    ----------
    spec : BlockDotSpec

    Members
    -------
    in_valid : In(1)
        One beat of ``lanes`` element pairs; every valid beat advances the beat counter.
    in_first : In(1)
        Read on a block's last beat: this block starts a new accumulation.
    a, b : In(lanes * element bits)
        Element lanes, lane 0 least significant; beat ``j`` of a block carries elements
        ``j*lanes .. (j+1)*lanes - 1``.
    scale_a, scale_b : In(scale bits)
        The block's scale codes, read on its last beat.
    out_valid : Out(1)
        High ``latency`` cycles after a block's last beat.
    acc : Out(acc.bits)
        The accumulator (float code); reset value +0.
    """

    spec_class = BlockDotSpec

    def __init__(self, spec: BlockDotSpec) -> None:
        super().__init__(spec, blockdot_signature)
        self._geom = blockdot_geometry(spec)

    @property
    def geometry(self) -> BlockDotGeometry:
        return self._geom

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        spec, g = self._spec, self._geom
        lanes, beats = spec.lanes, spec.beats
        cuts = blockdot_cut_points(spec.stages)

        # beat counter: marks the last beat of each block
        if beats > 1:
            cnt = Signal(range(beats), name="beat")
            with m.If(self.in_valid):
                m.d.sync += cnt.eq(Mux(cnt == beats - 1, 0, cnt + 1))
            last_in: Value = cnt == beats - 1
        else:
            last_in = C(1, 1)
        # a NaN scale, decoded at the input and carried beside the codes, so the block value's
        # mask and NaN flag come from one register bit rather than a decoder behind the codes
        nsa, nsb = MinifloatDecoder(spec.scale_a), MinifloatDecoder(spec.scale_b)
        m.submodules.nan_sa, m.submodules.nan_sb = nsa, nsb
        m.d.comb += [nsa.code.eq(self.scale_a), nsb.code.eq(self.scale_b)]
        ctl: dict[str, Value] = {
            "valid": self.in_valid,
            "last": last_in,
            "first": self.in_first,
            "sa": self.scale_a,
            "sb": self.scale_b,
            "snan": nsa.is_nan | nsb.is_nan,
        }
        plan = spec.accumulator
        v_lsb = g.lsb_exp - g.v_exp_offset
        if plan is not None:
            # a deferred accumulator's aligner shift depends on the scale exponents only: their
            # sum is formed at the input; after the first register that carries it, the
            # unclamped shift and its two clamp conditions (beside each other, each one carry
            # chain); after the next, the clamp (one LUT behind register bits); all riding
            # beside the codes, off the block value's path
            ex_in = Signal(range((1 << len(nsa.exp)) + (1 << len(nsb.exp)) - 1), name="x_exp_in")
            m.d.comb += ex_in.eq(nsa.exp + nsb.exp)
            ctl["ex"] = ex_in

        def pipe(point: str, values: list[Value]) -> list[Value]:
            if point not in cuts:
                return values
            valid = Signal(name=f"{point}_valid")
            m.d.sync += valid.eq(ctl["valid"])
            keys = [k for k in ("last", "first", "sa", "sb", "snan", "ex", "raw", "beyond", "amt", "above") if k in ctl]
            regs = []
            for i, v in enumerate([ctl[k] for k in keys] + values):
                r = Signal(v.shape(), name=f"{point}_r{i}", reset_less=True)
                with m.If(ctl["valid"]):
                    m.d.sync += r.eq(v)
                regs.append(r)
            ctl["valid"] = valid
            ctl.update(zip(keys, regs[: len(keys)]))
            if plan is not None and "raw" in ctl:  # the shift's parts are registered: clamp
                ctl["amt"] = blockdot_align_clamp(m, plan, g.v_width, ctl.pop("raw"), ctl["above"], ctl.pop("beyond"))
            elif plan is not None and "ex" in ctl:  # the exponent sum is registered: the shift's parts
                ctl["raw"], ctl["above"], ctl["beyond"] = blockdot_align_parts(m, plan, g.v_width, v_lsb, ctl.pop("ex"))
            return regs[len(keys) :]

        # 1. per lane: decode, multiply, exponent add
        fa, fb = spec.element_a, spec.element_b
        wa, wb = fa.bits, fb.bits
        lanes_ops: list[list[Value]] = []
        for i in range(lanes):
            da, db = _decoder(fa), _decoder(fb)
            m.submodules[f"dec_a{i}"], m.submodules[f"dec_b{i}"] = da, db
            m.d.comb += [da.code.eq(self.a[i * wa : (i + 1) * wa]), db.code.eq(self.b[i * wb : (i + 1) * wb])]
            psh = Signal(range(max(g.shift_max, 1) + 1), name=f"psh{i}")  # 1 bit even when unused
            pnan = Signal(name=f"pnan{i}")
            m.d.comb += [
                psh.eq(da.exp + db.exp - 2),
                pnan.eq(da.is_nan | db.is_nan | (da.is_inf & db.is_zero) | (da.is_zero & db.is_inf)),
            ]
            pinf = (da.is_inf | db.is_inf) & ~pnan
            lanes_ops.append([da.sig, db.sig, psh, da.sign ^ db.sign, pnan, pinf, da.is_zero | db.is_zero])
        # the multiplier operands: registered here they are the DSPs' input registers
        width = len(lanes_ops[0])
        flat = pipe("dec", [v for lane in lanes_ops for v in lane])
        per_lane: list[Value] = []
        for i in range(lanes):
            opa, opb, *rest = flat[i * width : (i + 1) * width]
            psig = Signal(len(opa) + len(opb), name=f"psig{i}")
            m.d.comb += psig.eq(opa * opb)
            per_lane += [psig, *rest]
        per_lane = pipe("mul", per_lane)

        # align into the fixed-point word; negative lanes as one's complement + a count
        terms, neg_count, flags = aligned_terms(m, per_lane, lanes, g.span)
        vals = pipe("align", [*terms, neg_count, *flags])
        terms, neg_count, flags = vals[:lanes], vals[lanes], vals[lanes + 1 :]
        levels = (lanes - 1).bit_length()
        at = tree_cut_levels(levels)
        for level in range(levels + 1):
            for point in ("tree", "tree2"):
                if at[point] == level:
                    vals = pipe(point, [*terms, neg_count, *flags])
                    terms, neg_count, flags = vals[: len(terms)], vals[len(terms)], vals[len(terms) + 1 :]
            if level < levels:
                terms = tree_level(m, terms, level)
        lane_sum = Signal(signed(g.lane_sum_width))
        m.d.comb += lane_sum.eq(terms[0] + neg_count)
        lane_sum, *flags = pipe("sum", [lane_sum, *flags])

        # 2. block sum over the beats (exact partial-sum register)
        valid, last = ctl["valid"], ctl["last"]
        if beats > 1:
            psum = Signal(signed(g.block_sum_width), name="psum")
            pflags = [Signal(name="pnan"), Signal(name="ppinf"), Signal(name="pninf"), Signal(name="pnegz", init=1)]
            bsum = Signal(signed(g.block_sum_width), name="bsum")
            m.d.comb += bsum.eq(psum + lane_sum)
            bflags = [pflags[0] | flags[0], pflags[1] | flags[1], pflags[2] | flags[2], pflags[3] & flags[3]]
            with m.If(valid):
                m.d.sync += psum.eq(Mux(last, 0, bsum))
                m.d.sync += [p.eq(Mux(last, p.init, f)) for p, f in zip(pflags, bflags)]
            s_sum, flags = bsum, bflags
        else:
            s_sum = lane_sum
        s_sum, *flags = pipe("block", [s_sum, *flags])  # the block sum, before the scales
        s_nan_any, s_pinf, s_ninf, s_negz = flags

        # 3. scales: V = S * Xa * Xb, exponent, specials
        dsa, dsb = MinifloatDecoder(spec.scale_a), MinifloatDecoder(spec.scale_b)
        m.submodules.dec_sa, m.submodules.dec_sb = dsa, dsb
        m.d.comb += [dsa.code.eq(ctl["sa"]), dsb.code.eq(ctl["sb"])]
        s_neg = s_sum[-1]
        s_zero = s_sum == 0
        mag_s = Signal(g.block_sum_width, name="mag_s")
        m.d.comb += mag_s.eq(Mux(s_neg, -s_sum, s_sum))
        mag_v = Signal(g.v_width, name="mag_v")
        if g.scale_sig_bits > 1:
            xsig = Signal(g.scale_sig_bits, name="xsig")
            m.d.comb += [xsig.eq(dsa.sig * dsb.sig), mag_v.eq(mag_s * xsig)]
        else:
            m.d.comb += mag_v.eq(Mux(ctl["snan"], 0, mag_s))
        x_neg = dsa.sign ^ dsb.sign
        x_zero = dsa.is_zero | dsb.is_zero
        s_nan = s_nan_any | (s_pinf & s_ninf)
        s_inf = ~s_nan & (s_pinf | s_ninf)
        v_nan = Signal(name="v_nan")
        m.d.comb += v_nan.eq(s_nan | ctl["snan"] | (s_inf & x_zero))
        v_inf_neg = s_ninf ^ x_neg
        v_pinf = ~v_nan & s_inf & ~v_inf_neg
        v_ninf = ~v_nan & s_inf & v_inf_neg
        v_sign = s_neg ^ x_neg
        v_zero_sign = Mux(s_zero, s_negz, s_neg) ^ x_neg
        if plan is not None:  # deferred rounding: rtl/accumulators.py
            if "ex" in ctl:  # no register on the scales' path yet
                ctl["raw"], ctl["above"], ctl["beyond"] = blockdot_align_parts(m, plan, g.v_width, v_lsb, ctl.pop("ex"))
            if "raw" in ctl:  # one register on it
                ctl["amt"] = blockdot_align_clamp(m, plan, g.v_width, ctl.pop("raw"), ctl["above"], ctl.pop("beyond"))
            amt, above = ctl.pop("amt"), ctl.pop("above")
            mag_v, amt, above, v_sign, v_zero_sign, v_nan, v_pinf, v_ninf = pipe(
                "vmul", [mag_v, amt, above, v_sign, v_zero_sign, v_nan, v_pinf, v_ninf]
            )
            connect_blockdot(
                m,
                self,
                plan,
                pipe,
                ctl,
                mag_v,
                amt,
                above,
                v_sign,
                v_zero_sign,
                v_nan,
                v_pinf,
                v_ninf,
            )
            return m
        ex = Signal(range((1 << len(dsa.exp)) + (1 << len(dsb.exp)) - 1), name="x_exp")
        m.d.comb += ex.eq(dsa.exp + dsb.exp)
        mag_v, ex, v_sign, v_zero_sign, v_nan, v_pinf, v_ninf = pipe(
            "vmul", [mag_v, ex, v_sign, v_zero_sign, v_nan, v_pinf, v_ninf]
        )

        # normalise V: top bit at mag_v[-1]; v_exp = its exponent, biased as the accumulator
        m.submodules.lzc_v = lzc = LeadingZeroCounter(g.v_width)
        m.d.comb += lzc.data.eq(mag_v)
        norm_v = Signal(g.v_width, name="norm_v")
        m.d.comb += norm_v.eq(mag_v << lzc.count)
        loop = g.loop
        base = g.lsb_exp - g.v_exp_offset + g.v_width - 1 + spec.acc.bias
        v_exp = Signal(range(min(loop.v_exp_lo, -1), max(loop.v_exp_hi, 0) + 1), name="v_exp")
        m.d.comb += v_exp.eq(base + ex - lzc.count)
        v_nz = ~lzc.zero
        norm_v, v_exp, v_nz, v_sign, v_zero_sign, v_nan, v_pinf, v_ninf = pipe(
            "acc", [norm_v, v_exp, v_nz, v_sign, v_zero_sign, v_nan, v_pinf, v_ninf]
        )
        valid, last, first = ctl["valid"], ctl["last"], ctl["first"]

        # 4. the accumulate loop (per block: one rounding)
        m.submodules.acc_loop = acc = FloatAccumulator(spec.acc, loop)
        m.d.comb += [
            acc.step.eq(valid & last),
            acc.first.eq(first),
            acc.v_sig.eq(norm_v),
            acc.v_exp.eq(v_exp),
            acc.v_nz.eq(v_nz),
            acc.v_sign.eq(v_sign),
            acc.v_zero_sign.eq(v_zero_sign),
            acc.v_nan.eq(v_nan),
            acc.v_pinf.eq(v_pinf),
            acc.v_ninf.eq(v_ninf),
            self.acc.eq(acc.acc),
        ]
        m.d.sync += self.out_valid.eq(valid & last)
        return m


def _scheme_name(spec: BlockDotSpec, elem: Any, scale: Any) -> str | None:
    from peforge import blockscale

    for s in blockscale.SCHEMES.values():
        if s.element == elem and s.scale == scale and s.block == spec.block:
            return s.name
    return None


def blockdot_manifest(spec: BlockDotSpec) -> dict[str, Any]:
    g = blockdot_geometry(spec)
    packing = {
        k: {
            "lanes": spec.lanes,
            "width": f.bits,
            "format": f.name,
            "order": "lsb_first",
            "scheme": _scheme_name(spec, f, s),
        }
        for k, f, s in (("a", spec.element_a, spec.scale_a), ("b", spec.element_b, spec.scale_b))
    }
    deferred = spec.rounding == "deferred"
    return {
        **accumulator_manifest(spec),
        "result": {
            "port": "acc",
            "encoding": "float",
            "format": spec.acc.name,
            "nan_code": spec.acc.nan_code,
            "flags": accumulator_flags() if deferred else None,
            "rounding": (
                "the exact running sum (a window register) rounded to nearest even once, on the way out"
                if deferred
                else "one round-to-nearest-even per block step (exact products, block sum and scaling)"
            ),
        },
        "lane_packing": packing,
        "scales": {
            k: {"port": f"scale_{k}", "width": s.bits, "format": s.name}
            for k, s in (("a", spec.scale_a), ("b", spec.scale_b))
        },
        "block": {
            "elements": spec.block,
            "lanes": spec.lanes,
            "beats": spec.beats,
            "sampled_on_last_beat": ["in_first", "scale_a", "scale_b"],
            "beat_counter": "reset by rst, advanced by every in_valid",
        },
        "throughput": {
            "cycles_per_block": spec.beats,
            "blocks_per_cycle": 1 / spec.beats,
            "products_per_cycle": spec.lanes,
        },
        "datapath": asdict(g),
    }
