"""Shift-add PE (:class:`peforge.spec.ShiftAddSpec`): multiplier-free products, integer
accumulation, optional per-group dequantisation into FP32.

Datapath per lane, all in exact fixed point (activation LSB ``2**act_lsb_exp``, weight LSB
``2**weight_lsb_exp``):

* activation: an integer code as is; a float code ``sig * 2**(e - bias - M)`` becomes
  ``+-sig << (e_eff - 1)`` (one left shifter; NaN/inf codes decode to 0);
* ``pot``: code ``s | k``: ``k == 0`` is zero, else ``+-(A << (k - 1))``: one shifter and a
  negation per lane;
* ``apot``: code ``s | k1 | k2``: ``+-((A << sh1(k1)) + (A << sh2(k2)))``: two shifters and an
  adder;
* ``shiftadd-int``: ``sum_j w_j * (A << j)`` (the top term subtracted for signed weights):
  ``K`` gated shifted copies of A in an adder tree, no ``*``;
* ``bitserial``: the same sum over ``K`` cycles, MSB first (``P := 2P + w_j A``): one adder
  per lane; it accepts an input when ``in_ready`` is high (every ``K`` cycles).

Lane products go through a balanced adder tree into the integer accumulator (derived width,
or wrap / saturate).  ``stages`` registers go after the products first, then after the tree.
With ``group``, a group counter marks the input that completes a group; the cycle after the
accumulator update, :class:`~peforge.rtl.blocks.dequant.GroupDequant` adds ``S * scale`` to
the FP32 output register with one RNE (the ``acc`` port then shows that register).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import C, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring

from peforge.formats import ApotFormat, IntFormat, PotFormat
from peforge.spec import ShiftAddSpec

from .blocks import MinifloatDecoder
from .blocks._util import SpecComponent, pe_signature, range_shape
from .blocks.dequant import GroupDequant

__all__ = ["ShiftAddPE", "shiftadd_signature", "shiftadd_manifest"]


def shiftadd_signature(spec: ShiftAddSpec) -> wiring.Signature:
    """Ports of the shift-add PE (clk/rst come from the sync domain)."""
    inputs = {"a": spec.lanes * spec.act.bits, "b": spec.lanes * spec.weight.bits}
    if spec.group is not None:
        inputs["scale"] = spec.scale.bits if spec.scale is not None else 1
    handshake = {"in_ready": 1} if spec.mode == "bitserial" else {}
    return pe_signature(inputs, {"acc": spec.out_bits}, handshake)


class ShiftAddPE(SpecComponent[ShiftAddSpec]):
    """Shift-add PE (see the module docstring for the datapath).

    Parameters
    ----------
    spec : ShiftAddSpec
        The PE to build.

    Members
    -------
    in_valid, in_first : In(1)
        Input strobe; ``in_first`` starts a new accumulation (and a new group).
    a, b : In(lanes * bits)
        Activation and weight codes, lane 0 in the least significant bits.
    scale : In(scale.bits) -- only with ``group``
        Group scale code, used from the input that completes a group.
    in_ready : Out(1) -- only for ``bitserial``
        High when an input is accepted (``in_valid`` is ignored otherwise).
    out_valid : Out(1)
        High ``latency`` cycles after an accepted input.
    acc : Out(spec.out_bits)
        Integer accumulator (two's complement), or with ``group`` the FP32 output.
    """

    spec_class = ShiftAddSpec

    def __init__(self, spec: ShiftAddSpec) -> None:
        super().__init__(spec, shiftadd_signature)

    # ---- operands ------------------------------------------------------------------------
    def _act(self, m: Module, i: int) -> Value:
        """Lane i's activation as an exact integer in units of 2**act_lsb_exp."""
        fmt = self._spec.act
        raw = self.a[i * fmt.bits : (i + 1) * fmt.bits]
        lo, hi = self._spec.act_range
        out = Signal(range_shape(lo, hi), name=f"act{i}")
        if isinstance(fmt, IntFormat):
            m.d.comb += out.eq(raw.as_signed() if fmt.signed else raw)
            return out
        dec = MinifloatDecoder(fmt)
        m.submodules[f"adec{i}"] = dec
        mag = Signal(hi.bit_length(), name=f"act_mag{i}")
        m.d.comb += [dec.code.eq(raw), mag.eq((dec.sig << dec.exp)[1:])]
        m.d.comb += out.eq(Mux(dec.sign, -mag, mag))
        return out

    def _product(self, m: Module, i: int, act: Value, w: Value) -> Signal:
        """Unrolled product of lane i (pot, apot, shiftadd-int)."""
        spec = self._spec
        fmt = spec.weight
        lo, hi = spec.product_range
        p = Signal(range_shape(lo, hi), name=f"prod{i}")
        if isinstance(fmt, PotFormat):  # mode pot
            sign, k = w[-1], w[:-1]
            mag = Signal(signed(p.shape().width), name=f"shifted{i}")
            m.d.comb += mag.eq(Mux(k == 0, 0, (act << k) >> 1))  # A << (k - 1), exact
            m.d.comb += p.eq(Mux(sign, -mag, mag))
        elif isinstance(fmt, ApotFormat):  # mode apot
            w1, w2 = fmt.term_bits
            depth = fmt.emax - spec.weight_lsb_exp  # weight units per 2**emax
            k1, k2 = w[w2 : w2 + w1], w[:w2]
            t1 = Mux(k1 == 0, 0, (act << (depth + 2)) >> (k1 << 1))  # A << (depth - 2(k1-1))
            t2 = Mux(k2 == 0, 0, (act << (depth + 1)) >> (k2 << 1)) if w2 else C(0, 1)  # A << (depth - 2k2 + 1)
            mag = Signal(signed(p.shape().width), name=f"apot_sum{i}")
            m.d.comb += mag.eq(t1 + t2)
            m.d.comb += p.eq(Mux(w[-1], -mag, mag))
        else:  # shiftadd-int: gated shifted copies in an adder tree
            terms = []
            for j in range(fmt.bits):
                neg = fmt.signed and j == fmt.bits - 1
                t = Signal(signed(p.shape().width + 1), name=f"pp{i}_{j}")
                m.d.comb += t.eq(Mux(w[j], -(act << j) if neg else (act << j), 0))
                terms.append(t)
            m.d.comb += p.eq(_tree(terms))
        return p

    def _bitserial(
        self, m: Module, acts: list[Value], ws: list[Value], ctrl: list[Value]
    ) -> tuple[list[Signal], Value, list[Signal]]:
        """Serial products (MSB first); returns products, their valid pulse, and the control
        values (first, scale) captured with the input."""
        spec = self._spec
        fmt = spec.weight
        k = fmt.bits
        signed = isinstance(fmt, IntFormat) and fmt.signed  # bitserial weights are intK / uintK
        lo, hi = spec.product_range
        left = Signal(range(k), name="bits_left")
        pending = Signal(name="pending")
        ready = left == 0
        take = self.in_valid & ready
        done = pending & (left == 0)
        m.d.comb += self.in_ready.eq(ready)
        prods = []
        for i, (act, w) in enumerate(zip(acts, ws)):
            a_reg = Signal(act.shape(), name=f"act_q{i}")
            w_reg = Signal(max(k - 1, 1), name=f"w_q{i}")
            p = Signal(range_shape(min(lo, 0), max(hi, 0)), name=f"prod{i}")
            top = Mux(w[k - 1], -act if signed else act, 0)
            with m.If(take):
                m.d.sync += [a_reg.eq(act), w_reg.eq(w[: k - 1]), p.eq(top)]
            with m.Elif(left != 0):
                m.d.sync += [p.eq((p << 1) + Mux(w_reg[-1], a_reg, 0)), w_reg.eq(w_reg << 1)]
            prods.append(p)
        with m.If(take):
            m.d.sync += [left.eq(k - 1), pending.eq(1)]
        with m.Elif(left != 0):
            m.d.sync += left.eq(left - 1)
        with m.Elif(done):
            m.d.sync += pending.eq(0)
        held = []
        for j, v in enumerate(ctrl):
            r = Signal(v.shape(), name=f"ctrl_q{j}")
            with m.If(take):
                m.d.sync += r.eq(v)
            held.append(r)
        return prods, done, held

    # ---- elaborate -----------------------------------------------------------------------
    def elaborate(self, platform) -> Module:
        m = Module()
        spec = self._spec
        wb = spec.weight.bits
        acts = [self._act(m, i) for i in range(spec.lanes)]
        ws = [self.b[i * wb : (i + 1) * wb] for i in range(spec.lanes)]
        grouped = spec.group is not None
        ctrl: list[Value] = [self.in_first] + ([self.scale] if grouped else [])
        if spec.mode == "bitserial":
            prods, valid, ctrl = self._bitserial(m, acts, ws, ctrl)
        else:
            prods = [self._product(m, i, a, w) for i, (a, w) in enumerate(zip(acts, ws))]
            valid = self.in_valid
        stage = 0

        def register(values: list[Value], valid: Value) -> tuple[list[Signal], Signal]:
            nonlocal stage
            out = []
            for j, v in enumerate(values):
                r = Signal(v.shape(), name=f"p{stage}_{j}")
                m.d.sync += r.eq(v)
                out.append(r)
            vr = Signal(name=f"valid_p{stage}")
            m.d.sync += vr.eq(valid)
            stage += 1
            return out, vr

        n = len(prods)
        if spec.stages >= 1:
            regs, valid = register(prods + ctrl, valid)
            prods, ctrl = regs[:n], regs[n:]
        total = _tree(prods, m)
        for _ in range(max(spec.stages - 1, 0)):
            regs, valid = register([total] + ctrl, valid)
            total, ctrl = regs[0], regs[1:]
        first = ctrl[0]

        # ---- integer accumulator ---------------------------------------------------------
        width = spec.width
        acc = Signal(signed(width), name="acc_int")
        start: Value = first
        if spec.group is not None:
            cnt = Signal(range(spec.group + 1), name="group_count")
            start = first | (cnt == 0)
        nxt = Signal(signed(max(width, len(total)) + 1), name="acc_next")
        m.d.comb += nxt.eq(Mux(start, 0, acc) + total)
        if spec.overflow == "saturate" and spec.acc_bits is not None:
            hi_v, lo_v = (1 << (width - 1)) - 1, -(1 << (width - 1))
            sat = Mux(nxt > hi_v, hi_v, Mux(nxt < lo_v, lo_v, nxt))
        else:
            sat = nxt
        with m.If(valid):
            m.d.sync += acc.eq(sat)
        acc_valid = Signal(name="acc_valid")
        m.d.sync += acc_valid.eq(valid)
        if spec.scale is None:
            m.d.comb += [self.acc.eq(acc), self.out_valid.eq(acc_valid)]
            return m

        # ---- group counter and dequantisation ----------------------------------------------
        count = Mux(start, 1, cnt + 1)
        gdone = Signal(name="group_done_q")
        gfirst = Signal(name="first_q")
        gscale = Signal(spec.scale.bits, name="scale_q")
        with m.If(valid):
            m.d.sync += [
                cnt.eq(Mux(count == spec.group, 0, count)),
                gdone.eq(count == spec.group),
                gfirst.eq(first),
                gscale.eq(ctrl[1]),
            ]
        m.submodules.dequant = dq = GroupDequant(width, spec.product_lsb_exp, spec.scale)
        out = Signal(32, name="out_fp32")
        base = Mux(gfirst, 0, out)
        m.d.comb += [dq.base.eq(base), dq.s.eq(acc), dq.scale.eq(gscale)]
        with m.If(acc_valid):
            m.d.sync += out.eq(Mux(gdone, dq.result, base))
        out_valid = Signal(name="out_valid_q")
        m.d.sync += out_valid.eq(acc_valid)
        m.d.comb += [self.acc.eq(out), self.out_valid.eq(out_valid)]
        return m


def _tree(terms: list[Value], m: Module | None = None) -> Value:
    """Balanced adder tree (each sum as wide as Amaranth's exact shape of ``x + y``)."""
    level = list(terms)
    depth = 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            x, y = level[j], level[j + 1]
            if m is None:
                nxt.append(x + y)
                continue
            s = Signal((x + y).shape(), name=f"sum{depth}_{j // 2}")
            m.d.comb += s.eq(x + y)
            nxt.append(s)
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    return level[0]


def shiftadd_manifest(spec: ShiftAddSpec) -> dict[str, Any]:
    overflow = "never (derived width)" if spec.acc_bits is None else spec.overflow
    if spec.group is None:
        result: dict[str, Any] = {
            "port": "acc",
            "encoding": "twos_complement",
            "width": spec.width,
            "lsb_exp": spec.product_lsb_exp,
            "overflow": overflow,
            "flags": None,
        }
    else:
        result = {
            "port": "acc",
            "encoding": "float",
            "format": "fp32",
            "nan_code": 0x7FC00000,
            "rounding": "nearest_even, once per group",
            "flags": None,
            "group": {
                "inputs": spec.group,
                "scale_port": "scale",
                "scale_format": str(spec.scale),
                "scale_sampled": "with the input that completes the group",
                "int_width": spec.width,
                "int_lsb_exp": spec.product_lsb_exp,
                "int_overflow": overflow,
            },
        }
    packing = {
        "a": {"lanes": spec.lanes, "width": spec.act.bits, "format": spec.act.name, "order": "lsb_first"},
        "b": {"lanes": spec.lanes, "width": spec.weight.bits, "format": spec.weight.name, "order": "lsb_first"},
    }
    k = spec.cycles_per_input
    ready_port = "in_ready" if spec.mode == "bitserial" else None
    dq_mult = spec.scale is not None and spec.scale.name != "e8m0fnu"
    datapath = {
        "mode": spec.mode,
        "multipliers": 0,
        "dequant_multipliers": int(dq_mult),
        "act_lsb_exp": spec.act_lsb_exp,
        "weight_lsb_exp": spec.weight_lsb_exp,
        "product_bits": spec.product_bits,
        "throughput": {
            "inputs_per_cycle": f"1/{k}" if k > 1 else "1",
            "macs_per_cycle": spec.lanes / k,
            "ready_port": ready_port,
        },
        "latency": spec.latency,
    }
    # the input rate and handshake where every tool (the testbench too) looks for them
    return {
        "result": result,
        "lane_packing": packing,
        "datapath": datapath,
        "initiation_interval": k,
        "ready_port": ready_port,
    }
