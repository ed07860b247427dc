"""Minifloat MAC / fused dot-product PE generator (family ``mac``, ``mult`` exact or lmul).

Datapath per lane: decode -> significand multiply -> exponent add -> align the product into
a fixed-point word whose LSB is ``spec.product_lsb_exp`` (every minifloat product is exact
there) -> sum the lanes exactly in a balanced adder tree.  ``mult="lmul"`` replaces the
significand multiplier by L-Mul's adder: each operand is normalised (a leading-zero count
and shift that only subnormals need), then ``2**m + fa + fb + 2**(m - l)`` on the grid
``2**-m``, ``m = max(Ma, Mb)``; the exponent add absorbs the normalisation shifts.  The
product word is exact for that too (its LSB sits ``m`` bits lower), so everything after it
is the same circuit.  ``spec.stages`` pipeline
registers sit in this front part.  The accumulate step is one cycle:

* float accumulator: the accumulator code is aligned into a fixed-point frame with the lane
  sum's LSB, added exactly, and the sum is rounded once (leading-zero count, normalise, RNE,
  pack).  Why the frame is exact is explained in :class:`MacGeometry`.
* exact accumulator: a two's complement Kulisch register of ``spec.exact_width`` bits.
"""

from __future__ import annotations

from dataclasses import asdict

from typing import Any

from amaranth.hdl import C, Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.formats import FloatFormat
from peforge.geometry import MacGeometry, lmul_consts as _lmul_consts, lmul_norm_bits as _lmul_norm_bits, mac_geometry
from peforge.spec import MinifloatMacSpec

from .blocks import MinifloatDecoder, RoundPack
from .blocks._util import invalid

__all__ = ["MacGeometry", "MinifloatMac", "mac_geometry", "mac_signature", "mac_manifest", "has_flags"]

#: Front-pipeline cut points in the order registers are added as ``stages`` grows.
_CUT_ORDER = ("sum", "mul", "align", "tree")


def has_flags(spec: MinifloatMacSpec) -> bool:
    """Whether the PE has the ``acc_flags`` port (exact accumulator, a or b has NaN/inf)."""
    return spec.is_exact and any(f.has_nan or f.has_inf for f in (spec.a, spec.b))


def mac_signature(spec: MinifloatMacSpec) -> wiring.Signature:
    """Port signature of the MAC of ``spec`` (see :class:`MinifloatMac`)."""
    members = {
        "in_valid": In(1), "in_first": In(1),
        "a": In(spec.lanes * spec.a.bits), "b": In(spec.lanes * spec.b.bits),
        "out_valid": Out(1), "acc": Out(mac_geometry(spec).acc_width),
    }
    if has_flags(spec):
        members["acc_flags"] = Out(3)
    return wiring.Signature(members)


def _cut_points(stages: int, tree_levels: int) -> set[str]:
    order = list(_CUT_ORDER)
    if tree_levels < 2:
        order[-1] = "in"  # no tree to split: register the inputs instead
    return set(order[:stages])


class MinifloatMac(wiring.Component):
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

    def __init__(self, spec: MinifloatMacSpec) -> None:
        if not isinstance(spec, MinifloatMacSpec):
            raise invalid(self, f"spec={spec!r} must be a MinifloatMacSpec")
        if spec.mult not in ("exact", "lmul"):
            raise invalid(self, f"mult={spec.mult!r} is not supported by the RTL generator: "
                             "allowed 'exact' or 'lmul'")
        if not spec.is_exact and spec.acc_format.nan_code is None and any(
                f.has_nan or f.has_inf for f in (spec.a, spec.b)):
            raise invalid(self, f"acc={spec.acc_format.name} has no NaN code but {spec.a.name} x "
                             f"{spec.b.name} can produce NaN: use an acc format with man_bits >= 1")
        self._spec = spec
        self._geom = mac_geometry(spec)
        super().__init__(mac_signature(spec))

    @property
    def spec(self) -> MinifloatMacSpec:
        return self._spec

    @property
    def geometry(self) -> MacGeometry:
        return self._geom

    # ---- front: decode, multiply, align, lane sum (pipelined) ---------------------------
    def elaborate(self, platform) -> Module:
        m = Module()
        spec, g = self._spec, self._geom
        lanes = spec.lanes
        levels = (lanes - 1).bit_length()
        cuts = _cut_points(spec.stages, levels)
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
        a_in, b_in = pipe("in", [self.a, self.b])

        # decode + multiply + exponent add
        per_lane = []
        for i in range(lanes):
            da = MinifloatDecoder(spec.a, spec.subnormals)
            db = MinifloatDecoder(spec.b, spec.subnormals)
            m.submodules[f"dec_a{i}"], m.submodules[f"dec_b{i}"] = da, db
            m.d.comb += [da.code.eq(a_in[i * wa:(i + 1) * wa]),
                         db.code.eq(b_in[i * wb:(i + 1) * wb])]
            if spec.mult == "lmul":
                psig, psh = self._lmul_product(m, i, da, db)
            else:
                psig = Signal(len(da.sig) + len(db.sig), name=f"psig{i}")
                psh = Signal(range(g.shift_max + 1), name=f"psh{i}")
                m.d.comb += [psig.eq(da.sig * db.sig), psh.eq(da.exp + db.exp - 2)]
            pnan = Signal(name=f"pnan{i}")
            m.d.comb += [
                pnan.eq(da.is_nan | db.is_nan | (da.is_inf & db.is_zero)
                        | (da.is_zero & db.is_inf)),
            ]
            pinf = (da.is_inf | db.is_inf) & ~pnan
            per_lane += [psig, psh, da.sign ^ db.sign, pnan, pinf, da.is_zero | db.is_zero]
        per_lane = pipe("mul", per_lane)

        # align into the fixed-point word; negative lanes as one's complement + count
        terms, signs, nans, pinfs, ninfs, nzero = [], [], [], [], [], []
        for i in range(lanes):
            psig, psh, psign, pnan, pinf, pzero = per_lane[6 * i:6 * i + 6]
            mag = Signal(g.span, name=f"pmag{i}")
            m.d.comb += mag.eq(psig << psh)
            term = Signal(signed(g.span + 1), name=f"term{i}")
            m.d.comb += term.eq(Cat(mag, C(0, 1)) ^ psign.replicate(g.span + 1))
            terms.append(term)
            signs.append(psign)
            nans.append(pnan)
            pinfs.append(pinf & ~psign)
            ninfs.append(pinf & psign)
            nzero.append(pzero & psign)
        neg_count = Signal(range(lanes + 1))
        m.d.comb += neg_count.eq(sum(signs))
        flags = [Cat(*nans).any(), Cat(*pinfs).any(), Cat(*ninfs).any(), Cat(*nzero).all()]
        vals = pipe("align", [*terms, neg_count, *flags])
        terms, neg_count, flags = vals[:lanes], vals[lanes], vals[lanes + 1:]

        # balanced adder tree (optionally cut half way)
        for level in range(levels):
            if level == levels // 2 and levels >= 2:
                vals = pipe("tree", [*terms, neg_count, *flags])
                terms, neg_count, flags = vals[:-5], vals[-5], vals[-4:]
            nxt = []
            for j in range(0, len(terms) - 1, 2):
                s = Signal(signed(len(terms[j]) + 1), name=f"sum{level}_{j // 2}")
                m.d.comb += s.eq(terms[j] + terms[j + 1])
                nxt.append(s)
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms = nxt
        lane_sum = Signal(signed(g.lane_sum_width))
        m.d.comb += lane_sum.eq(terms[0] + neg_count)
        lane_zero = Signal()
        m.d.comb += lane_zero.eq(lane_sum == 0)
        lane_sum, lane_zero, *flags = pipe("sum", [lane_sum, lane_zero, *flags])
        any_nan, any_pinf, any_ninf, all_neg_zero = flags
        valid, first = ctl["valid"], ctl["first"]

        if spec.is_exact:
            self._exact_acc(m, valid, first, lane_sum, any_nan, any_pinf, any_ninf)
        else:
            self._float_acc(m, valid, first, lane_sum, lane_zero, any_nan, any_pinf,
                            any_ninf, all_neg_zero)
        m.d.sync += self.out_valid.eq(valid)
        return m

    def _normalise(self, m: Module, name: str, dec: MinifloatDecoder,
                   fmt: FloatFormat) -> tuple[Value, Value]:
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

    def _lmul_product(self, m: Module, i: int, da: MinifloatDecoder,
                      db: MinifloatDecoder) -> tuple[Signal, Signal]:
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
                m.d.sync += self.acc_flags.eq(Mux(first, 0, self.acc_flags)
                                              | Cat(any_nan, any_pinf, any_ninf))

    def _float_acc(self, m, valid, first, lane_sum, lane_zero, any_nan, any_pinf, any_ninf,
                   all_neg_zero) -> None:
        g, f = self._geom, self._spec.acc_format
        E, M = f.exp_bits, f.man_bits
        N = g.frame_width
        acc = self.acc
        s_acc, e_acc, m_acc = acc[M + E], acc[M:M + E], acc[:M]
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
        m.d.comb += amag.eq((sig_acc << smax) >> Mux(r >= limit, limit, r)[:limit.bit_length()])
        aterm = Signal(signed(N))
        m.d.comb += aterm.eq(Mux(s_acc, -amag, amag))
        z = Signal(signed(N))
        m.d.comb += z.eq(aterm + lane_sum)
        zmag = Signal(N - 1)
        m.d.comb += zmag.eq(Mux(z[-1], -z, z))

        # an exact zero sum is -0 only when every term is a zero with sign 1
        acc_zero = ~incl | (acc[:E + M] == 0)
        neg_zero = lane_zero & acc_zero & all_neg_zero & (first | s_acc)
        m.submodules.round = rnd = RoundPack(f, N - 1, g.lsb_exp,
                                             subnormals=self._spec.subnormals)
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
        result: dict[str, Any] = {"port": "acc", "encoding": "twos_complement",
                                  "lsb_exp": spec.product_lsb_exp, "width": spec.exact_width}
    else:
        result = {"port": "acc", "encoding": "float", "format": spec.acc_format.name,
                  "nan_code": spec.acc_format.nan_code}
    result["flags"] = ({"port": "acc_flags", "bits": {"0": "nan", "1": "pos_inf", "2": "neg_inf"},
                        "sticky": True} if has_flags(spec) else None)
    packing = {k: {"lanes": spec.lanes, "width": f.bits, "format": f.name, "order": "lsb_first"}
               for k, f in (("a", spec.a), ("b", spec.b))}
    datapath = {k: v for k, v in asdict(geom).items()
                if not (spec.is_exact and k in ("frame_width", "acc_shift_max"))}
    return {"result": result, "lane_packing": packing, "datapath": datapath}
