"""Minifloat MAC / fused dot-product PE generator (family ``mac``, ``mult`` exact or lmul).

Datapath per lane: decode -> significand multiply -> exponent add.  ``mult="lmul"`` replaces
the significand multiplier by L-Mul's adder: each operand is normalised (a leading-zero count
and shift that only subnormals need), then ``2**m + fa + fb + 2**(m - l)`` on the grid
``2**-m``, ``m = max(Ma, Mb)``; the exponent add absorbs the normalisation shifts.
``spec.stages`` pipeline registers sit in this front part.  Then, by accumulator:

* float accumulator, one lane: the product of the *normalised* operand significands (a
  subnormal operand is shifted up, its exponent lowered) has its top bit in one of two places,
  so one mux normalises it; each operand's exponent share is a small table of its code, so one
  adder forms the product's exponent.  That float is the addend of the accumulate loop
  (:class:`~peforge.rtl.blocks.float_acc.FloatAccumulator`): no fixed-point product word.
* float accumulator, several lanes: each product is aligned into a fixed-point word whose LSB
  is ``spec.product_lsb_exp`` (every product is exact there), the lanes are summed exactly in
  a balanced adder tree, and the sum is normalised into the loop's addend.
* exact accumulator: the same lane sum into a two's complement Kulisch register of
  ``spec.exact_width`` bits.

The accumulate loop rounds once per step (``acc := round(acc + lane sum)``, today's golden
semantics bit for bit); what it may assume about the reachable accumulator is proved in
:func:`peforge.geometry.mac_reachable_acc`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from amaranth.hdl import C, Cat, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import wiring

from peforge.formats import FloatFormat
from peforge.geometry import MacGeometry, mac_cut_points, mac_geometry
from peforge.geometry import lmul_consts as _lmul_consts
from peforge.geometry import lmul_norm_bits as _lmul_norm_bits
from peforge.spec import MinifloatMacSpec

from .accumulators import accumulator_flags, accumulator_manifest, connect_mac
from .blocks import MinifloatDecoder, RoundPack
from .blocks._util import SpecComponent, invalid, pe_signature
from .blocks.float_acc import FloatAccumulator
from .blocks.lanes import aligned_terms, tree_level

__all__ = ["MacGeometry", "MinifloatMac", "mac_geometry", "mac_signature", "mac_manifest", "has_flags", "flag_width"]


def has_flags(spec: MinifloatMacSpec) -> bool:
    """Whether the PE has the ``acc_flags`` port (exact accumulator whose a or b has NaN/inf,
    or deferred rounding)."""
    return spec.rounding == "deferred" or (spec.is_exact and any(f.has_nan or f.has_inf for f in (spec.a, spec.b)))


def flag_width(spec: MinifloatMacSpec) -> int:
    """Bits of ``acc_flags``: {nan, +inf, -inf} (exact) or {overflow, inexact} (deferred)."""
    return 2 if spec.rounding == "deferred" else 3


def _signed_shape(r: range) -> Shape:
    """A signed shape holding ``r`` (and at least one value of each sign)."""
    return Shape.cast(range(min(r.start, -1), max(r.stop, 1)))


def mac_signature(spec: MinifloatMacSpec) -> wiring.Signature:
    """Port signature of the MAC of ``spec`` (see :class:`MinifloatMac`)."""
    outputs = {"acc": mac_geometry(spec).acc_width}
    if has_flags(spec):
        outputs["acc_flags"] = flag_width(spec)
    return pe_signature({"a": spec.lanes * spec.a.bits, "b": spec.lanes * spec.b.bits}, outputs)


class MinifloatMac(SpecComponent[MinifloatMacSpec]):
    """Minifloat multiply-accumulate PE for a :class:`~peforge.spec.MinifloatMacSpec`.

    Parameters
    ----------
    spec : MinifloatMacSpec
        ``mult`` ``"exact"`` (significand multiplier) or ``"lmul"`` (L-Mul adder).

    Members
    -------
    in_valid, in_first : In(1)
    a : In(lanes * a.bits), b : In(lanes * b.bits)
        Lane ``i`` at bits ``[i*w, (i+1)*w)``.
    out_valid : Out(1)
    acc : Out(acc.bits) or Out(spec.exact_width)
        The accumulator register (float code, or two's complement in units of
        ``2**spec.product_lsb_exp``).
    acc_flags : Out(3) -- exact accumulator whose a or b format has NaN or inf
        Sticky ``{bit0 nan, bit1 +inf, bit2 -inf}``.
    """

    spec_class = MinifloatMacSpec

    def __init__(self, spec: MinifloatMacSpec) -> None:
        super().__init__(spec, mac_signature)
        self._geom = mac_geometry(spec)

    def check(self, spec: MinifloatMacSpec) -> None:
        if spec.mult not in ("exact", "lmul"):
            raise invalid(self, f"mult={spec.mult!r} is not supported by the RTL generator: allowed 'exact' or 'lmul'")
        if (
            not spec.is_exact
            and spec.acc_format.nan_code is None
            and any(f.has_nan or f.has_inf for f in (spec.a, spec.b))
        ):
            raise invalid(
                self,
                f"acc={spec.acc_format.name} has no NaN code but {spec.a.name} x "
                f"{spec.b.name} can produce NaN: use an acc format with man_bits >= 1",
            )

    @property
    def geometry(self) -> MacGeometry:
        return self._geom

    # ---- front: decode, multiply, align, lane sum (pipelined) ---------------------------
    def elaborate(self, platform) -> Module:
        m = Module()
        spec, g = self._spec, self._geom
        lanes = spec.lanes
        levels = (lanes - 1).bit_length()
        cuts = mac_cut_points(spec.stages, lanes)
        ctl = {"valid": self.in_valid, "first": self.in_first}

        def pipe(point: str, values: list[Value]) -> list[Value]:
            if point not in cuts:
                return values
            valid = Signal(name=f"{point}_valid")
            m.d.sync += valid.eq(ctl["valid"])
            regs = []
            for i, v in enumerate([ctl["first"], *values]):
                r = Signal(v.shape(), name=f"{point}_r{i}", reset_less=True)
                with m.If(ctl["valid"]):
                    m.d.sync += r.eq(v)
                regs.append(r)
            ctl["valid"], ctl["first"] = valid, regs[0]
            return regs[1:]

        wa, wb = spec.a.bits, spec.b.bits
        a_in, b_in = self.a, self.b

        # decode + multiply + exponent add; a single float product is made from normalised
        # operand significands, so it needs at most a one-bit normalisation
        fixed_point = spec.is_exact or spec.accumulator is not None  # the exact lane sum feeds the loop
        float_product = lanes == 1 and not fixed_point
        lanes_ops: list[list[Value]] = []
        for i in range(lanes):
            # a NaN/inf product's significand is ignored by the single float product's loop (its
            # flags decide the result) and masked on the product by aligned_terms otherwise
            da = MinifloatDecoder(spec.a, spec.subnormals, mask_specials=False)
            db = MinifloatDecoder(spec.b, spec.subnormals, mask_specials=False)
            m.submodules[f"dec_a{i}"], m.submodules[f"dec_b{i}"] = da, db
            m.d.comb += [da.code.eq(a_in[i * wa : (i + 1) * wa]), db.code.eq(b_in[i * wb : (i + 1) * wb])]
            if spec.mult == "lmul":  # no multiplier: the L-Mul sum stands in for the operands
                ops = list(self._lmul_product(m, i, da, db))
                if float_product:
                    ops[1] = self._lmul_pexp(m, ops[0], ops[1])
            elif float_product:
                ops = list(self._normal_operands(m, da, db))
            else:  # the exponents are added after the operand register, beside the multiplier
                ops = [da.sig, db.sig, da.exp, db.exp]
            pnan = Signal(name=f"pnan{i}")
            m.d.comb += [
                pnan.eq(da.is_nan | db.is_nan | (da.is_inf & db.is_zero) | (da.is_zero & db.is_inf)),
            ]
            pinf = (da.is_inf | db.is_inf) & ~pnan
            lanes_ops.append([*ops, da.sign ^ db.sign, pnan, pinf, da.is_zero | db.is_zero])
        # the multiplier operands: registered here they are a DSP's input registers
        width = len(lanes_ops[0])
        flat = pipe("dec", [v for lane in lanes_ops for v in lane])
        lanes_ops = [flat[i * width : (i + 1) * width] for i in range(lanes)]
        if spec.mult != "lmul":
            for i, lane in enumerate(lanes_ops):
                opa, opb = lane[0], lane[1]
                psig = Signal(len(opa) + len(opb), name=f"psig{i}")
                m.d.comb += psig.eq(opa * opb)  # a zero operand's significand is 0: a zero product
                lane[:2] = [psig]
                if not float_product:  # the alignment shift from the two exponents
                    psh = Signal(range(g.shift_max + 1), name=f"psh{i}")
                    m.d.comb += psh.eq(lane[1] + lane[2] - 2)
                    lane[1:3] = [psh]
        per_lane = pipe("mul2", pipe("mul", [v for lane in lanes_ops for v in lane]))

        if float_product:
            # one float product: normalise it into the loop's addend, no fixed-point word
            psig, psh, psign, pnan, pinf, pzero = per_lane
            vals = pipe(
                "align",
                [
                    *self._normalised_product(m, psig, psh),
                    ~pzero,
                    psign,
                    pnan,
                    pinf & ~psign,
                    pinf & psign,
                    pzero & psign,
                ],
            )
            vals = pipe("sum", vals)
            valid, first = ctl["valid"], ctl["first"]
            self._float_acc(m, valid, first, *vals)
            m.d.sync += self.out_valid.eq(valid)
            return m

        # align into the fixed-point word; negative lanes as one's complement + count
        split = (lambda v: pipe("shift", v)) if "shift" in cuts else None
        terms, neg_count, flags = aligned_terms(m, per_lane, lanes, g.span, split)
        vals = pipe("align", [*terms, neg_count, *flags])
        terms, neg_count, flags = vals[:lanes], vals[lanes], vals[lanes + 1 :]

        # balanced adder tree (optionally cut half way)
        for level in range(levels):
            if level == levels // 2 and levels >= 2:
                vals = pipe("tree", [*terms, neg_count, *flags])
                terms, neg_count, flags = vals[:-5], vals[-5], vals[-4:]
            terms = tree_level(m, terms, level)
        lane_sum = Signal(signed(g.lane_sum_width))
        m.d.comb += lane_sum.eq(terms[0] + neg_count)
        lane_zero = Signal()
        m.d.comb += lane_zero.eq(lane_sum == 0)
        lane_sum, lane_zero, *flags = pipe("sum", [lane_sum, lane_zero, *flags])
        any_nan, any_pinf, any_ninf, all_neg_zero = flags
        valid, first = ctl["valid"], ctl["first"]

        if spec.accumulator is not None:  # segmented exact / deferred rounding: rtl/accumulators.py
            connect_mac(m, self, spec.accumulator, valid, first, lane_sum, any_nan, any_pinf, any_ninf, all_neg_zero)
            return m
        if spec.is_exact:
            self._exact_acc(m, valid, first, lane_sum, any_nan, any_pinf, any_ninf)
        else:
            self._frame_acc(m, valid, first, lane_sum, lane_zero, any_nan, any_pinf, any_ninf, all_neg_zero)
        m.d.sync += self.out_valid.eq(valid)
        return m

    # ---- the loop's addend: a normalised float -----------------------------------------------
    def _normal_operands(self, m: Module, da: MinifloatDecoder, db: MinifloatDecoder) -> tuple[Value, Value, Signal]:
        """The normalised operand significands (hidden bit 1, or 0 for a zero operand) and
        ``pexp``, the accumulator-biased exponent of bit ``w - 2`` of their product (so the
        product's top bit has exponent ``pexp + psig[-1]``).

        Each operand's share of ``pexp`` (its exponent after normalisation) is a table of its
        code when the code is short, so one adder forms ``pexp``; otherwise arithmetic."""
        spec, g = self._spec, self._geom
        fa, fb = spec.a, spec.b
        xa, lza = self._normalise(m, "a0", da, fa)
        xb, lzb = self._normalise(m, "b0", db, fb)
        base = g.lsb_exp + fa.man_bits + fb.man_bits + spec.acc_format.bias
        pexp = Signal(self._v_exp_shape(), name="pexp0")
        ta = self._exponent_table(m, "a0", da, fa, lza, base)
        tb = self._exponent_table(m, "b0", db, fb, lzb, 0)
        m.d.comb += pexp.eq(ta + tb)
        return Cat(xa, ~da.is_zero), Cat(xb, ~db.is_zero), pexp

    def _exponent_table(
        self, m: Module, name: str, dec: MinifloatDecoder, fmt: FloatFormat, lz: Value, offset: int
    ) -> Value:
        """``offset + exp - 1 - lz`` of one operand (``exp`` the decoder's effective exponent,
        ``lz`` its normalising shift), looked up from the code's magnitude bits when they are
        at most 8 (a LUT function, no carry chain), else computed."""
        bits = fmt.exp_bits + fmt.man_bits
        if bits > 8:
            return offset + dec.exp - 1 - lz
        M = fmt.man_bits
        values = []
        for code in range(1 << bits):
            e, man = code >> M, code & ((1 << M) - 1)
            if e == (1 << fmt.exp_bits) - 1 and fmt.special == "ieee":
                values.append(offset)  # infinity / NaN: the flags decide, the value is unused
            elif e:
                values.append(offset + e - 1)
            elif self._spec.subnormals and man:
                values.append(offset - (M + 1 - man.bit_length()))  # eff 1, lz M+1-len
            else:
                values.append(offset)  # zero (or flushed): the value is never used
        shape = _signed_shape(range(min(values), max(values) + 1))
        table = Signal(shape, name=f"{name}_exp_table")
        with m.Switch(dec.code[:bits]):
            for code, v in enumerate(values):
                with m.Case(code):
                    m.d.comb += table.eq(v)
        return table

    def _normalised_product(self, m: Module, psig: Value, pexp: Value) -> list[Value]:
        """(v_sig, v_exp, v_inc) of one product ``psig`` whose top bit is one of its two
        highest (a product of normalised significands; L-Mul's sum), ``pexp`` the biased
        exponent of its bit ``w - 2``: ``v_inc`` is the top bit, which arrives last."""
        top = psig[-1]
        v_sig = Signal(len(psig), name="v_sig")
        m.d.comb += v_sig.eq(Mux(top, psig, psig << 1))
        return [v_sig, pexp, top]

    def _normalise(self, m: Module, name: str, dec: MinifloatDecoder, fmt: FloatFormat) -> tuple[Value, Value]:
        """(fraction bits, leading zeros) of the decoded significand shifted to hidden bit 1.

        Only subnormals have leading zeros; with ``subnormals=False`` none reach here."""
        M = fmt.man_bits
        if not self._spec.subnormals or M == 0:
            return dec.sig[:M], C(0, 1)
        lz = Signal(range(M + 1), name=f"{name}_lz")
        lz_val: Value = C(M, range(M + 1))  # sig == 0: a zero operand, masked later
        for k in range(M + 1):  # the highest set bit wins
            lz_val = Mux(dec.sig[k], M - k, lz_val)
        norm = Signal(M + 1, name=f"{name}_norm")
        m.d.comb += [lz.eq(lz_val), norm.eq(dec.sig << lz)]
        return norm[:M], lz

    def _v_exp_shape(self) -> Shape:
        """Shape of the addend's biased exponent (the geometry's range)."""
        loop = self._geom.loop
        assert loop is not None
        return _signed_shape(range(loop.v_exp_lo, loop.v_exp_hi + 1))

    def _lmul_pexp(self, m: Module, psig: Value, psh: Value) -> Signal:
        """The accumulator-biased exponent of bit ``w - 2`` of an L-Mul product."""
        g = self._geom
        base = g.lsb_exp + len(psig) - 2 + self._spec.acc_format.bias
        pexp = Signal(self._v_exp_shape(), name="pexp0")
        m.d.comb += pexp.eq(base + psh)
        return pexp

    def _lmul_product(self, m: Module, i: int, da: MinifloatDecoder, db: MinifloatDecoder) -> tuple[Signal, Signal]:
        """L-Mul significand (grid 2**-m) and alignment shift of lane ``i``; 0 for a zero."""
        spec, g = self._spec, self._geom
        fa, fb = spec.a, spec.b
        frac, const = _lmul_consts(spec)
        xa, lza = self._normalise(m, f"a{i}", da, fa)
        xb, lzb = self._normalise(m, f"b{i}", db, fb)
        psig = Signal(frac + 2, name=f"psig{i}")
        psh = Signal(range(g.shift_max + 1), name=f"psh{i}")
        terms = C(const, frac + 2)
        if fa.man_bits:
            terms = terms + (xa << (frac - fa.man_bits))
        if fb.man_bits:
            terms = terms + (xb << (frac - fb.man_bits))
        zero = (da.sig == 0) | (db.sig == 0)  # zero, inf or NaN operand
        m.d.comb += [
            psig.eq(Mux(zero, 0, terms)),
            psh.eq(da.exp + db.exp + _lmul_norm_bits(spec) - 2 - lza - lzb),
        ]
        return psig, psh

    # ---- accumulate loop (one cycle) -----------------------------------------------------
    def _exact_acc(self, m, valid, first, lane_sum, any_nan, any_pinf, any_ninf) -> None:
        with m.If(valid):
            m.d.sync += self.acc.eq(Mux(first, 0, self.acc) + lane_sum)
            if has_flags(self._spec):
                m.d.sync += self.acc_flags.eq(Mux(first, 0, self.acc_flags) | Cat(any_nan, any_pinf, any_ninf))

    def _float_acc(
        self, m, valid, first, v_sig, v_exp, v_inc, v_nz, v_sign, any_nan, any_pinf, any_ninf, all_neg_zero
    ) -> None:
        assert self._geom.loop is not None and len(v_sig) == self._geom.loop.v_width
        m.submodules.acc_loop = loop = FloatAccumulator(
            self._spec.acc_format, self._geom.loop, subnormals=self._spec.subnormals
        )
        m.d.comb += [
            loop.step.eq(valid),
            loop.first.eq(first),
            loop.v_sig.eq(v_sig),
            loop.v_exp.eq(v_exp),
            loop.v_inc.eq(v_inc),
            loop.v_nz.eq(v_nz),
            loop.v_sign.eq(v_sign),
            loop.v_zero_sign.eq(all_neg_zero),
            loop.v_nan.eq(any_nan),
            loop.v_pinf.eq(any_pinf),
            loop.v_ninf.eq(any_ninf),
            self.acc.eq(loop.acc),
        ]

    def _frame_acc(self, m, valid, first, lane_sum, lane_zero, any_nan, any_pinf, any_ninf, all_neg_zero) -> None:
        """Several lanes: the accumulator aligned into the lane sum's fixed-point frame, added
        exactly, rounded once (see :class:`MacGeometry` ``frame_width``)."""
        g, f = self._geom, self._spec.acc_format
        E, M = f.exp_bits, f.man_bits
        N = g.frame_width
        acc = self.acc
        s_acc, e_acc, m_acc = acc[M + E], acc[M : M + E], acc[:M]
        top = (1 << E) - 1
        man_zero = (m_acc == 0) if M else C(1, 1)
        incl = ~first
        acc_special = e_acc == top
        acc_nan = incl & acc_special & ~man_zero
        acc_inf = incl & acc_special & man_zero
        pinf = any_pinf | (acc_inf & ~s_acc)
        ninf = any_ninf | (acc_inf & s_acc)
        nan = any_nan | acc_nan | (pinf & ninf)

        # r: how far the accumulator LSB sits below frame position smax, where the largest
        # reachable accumulator has it (see MacGeometry); r >= N - 2 shifts it all out
        smax = g.acc_shift_max
        k = smax + f.bias + M + g.lsb_exp
        limit = N - 2
        r = Signal(range(min(k - top, 0), max(k, limit) + 1))
        m.d.comb += r.eq(k - Mux(e_acc == 0, 1, e_acc))
        amag = Signal(N - 2)
        sig_acc = Mux(incl, Cat(m_acc, e_acc != 0), 0)
        m.d.comb += amag.eq((sig_acc << smax) >> Mux(r >= limit, limit, r)[: limit.bit_length()])
        aterm = Signal(signed(N))
        m.d.comb += aterm.eq(Mux(s_acc, -amag, amag))
        z = Signal(signed(N))
        m.d.comb += z.eq(aterm + lane_sum)
        zmag = Signal(N - 1)
        m.d.comb += zmag.eq(Mux(z[-1], -z, z))

        # an exact zero sum is -0 only when every term is a zero with sign 1
        acc_zero = ~incl | (acc[: E + M] == 0)
        neg_zero = lane_zero & acc_zero & all_neg_zero & (first | s_acc)
        m.submodules.round = rnd = RoundPack(f, N - 1, g.lsb_exp, subnormals=self._spec.subnormals)
        m.d.comb += [
            rnd.mag.eq(zmag),
            rnd.sign.eq(Mux(pinf | ninf, ninf, z[-1] | neg_zero)),
            rnd.inf.eq(pinf | ninf),
        ]
        if f.nan_code is not None:
            m.d.comb += rnd.nan.eq(nan)
        with m.If(valid):
            m.d.sync += acc.eq(rnd.code)


def mac_manifest(spec: MinifloatMacSpec) -> dict[str, Any]:
    """Manifest fields of the MAC: result encoding (float or Kulisch), lane packing, widths."""
    geom = mac_geometry(spec)
    if spec.is_exact:
        result: dict[str, Any] = {
            "port": "acc",
            "encoding": "twos_complement",
            "lsb_exp": spec.product_lsb_exp,
            "width": spec.exact_width,
        }
    else:
        result = {
            "port": "acc",
            "encoding": "float",
            "format": spec.acc_format.name,
            "nan_code": spec.acc_format.nan_code,
        }
    result["flags"] = (
        None
        if not has_flags(spec)
        else (
            accumulator_flags()
            if flag_width(spec) == 2
            else {"port": "acc_flags", "bits": {"0": "nan", "1": "pos_inf", "2": "neg_inf"}, "sticky": True}
        )
    )
    packing = {
        k: {"lanes": spec.lanes, "width": f.bits, "format": f.name, "order": "lsb_first"}
        for k, f in (("a", spec.a), ("b", spec.b))
    }
    datapath = {
        k: v
        for k, v in asdict(geom).items()
        if not (
            v is None
            or (k in ("frame_width", "acc_shift_max") and geom.loop is not None)
            or ((spec.is_exact or spec.rounding == "deferred") and k in ("frame_width", "acc_shift_max"))
        )
    }
    return {"result": result, "lane_packing": packing, "datapath": datapath, **accumulator_manifest(spec)}
