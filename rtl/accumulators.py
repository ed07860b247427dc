"""Accumulators that pipeline: the carry-segmented loop, its read-out, the window aligner.

:class:`FixedPointAccumulator` is the accumulate loop and read-out of a
:class:`~peforge.accumulator.AccumulatorPlan` (the geometry, the read-out steps and where the
registers go come from the plan, so the RTL, the cost model and the manifest agree):

* the loop: the register is cut into segments; each cycle segment ``k`` computes
  ``Mux(first, 0, seg[k]) + addend[k] + Mux(first, 0, car[k])`` (``car[0]`` is the ``cin``
  input) and keeps its carry-out in ``car[k + 1]`` for the next cycle.  With ``settle > 0``
  (block-dot beats) it runs every cycle, the addend gated by ``valid``, so pending carries
  ripple up between steps; otherwise it is clock-enabled by ``valid`` like a plain register;
* the read-out, a chain of steps with registers after the plan's ``cuts`` and a final
  register stage (``acc``, ``acc_flags``, ``out_valid``; updated when the step that belongs to
  it arrives).  ``segmented``: resolve the pending carries, keep the sticky NaN / inf flags.
  ``deferred``: resolve, detect leaving the window, normalise the two's complement sum by
  successive halving (leading-sign detection), round to nearest even with the negation fused into the increment,
  pack, and apply the sticky special values (see :func:`peforge.accumulator.readout_steps`).

``_Aligner`` places a block value ``mag * 2**p`` (sign-magnitude) on the window grid (the
block-dot front of a deferred accumulator, pipelined like the read-out): bits below the window
are rounded to nearest, ties to even, with the rounding increment and the negation folded into
the loop's carry-in; bits above it flag an overflow.
"""

from __future__ import annotations

from typing import Any, Callable

from amaranth.hdl import C, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from peforge.accumulator import AccumulatorPlan, lzc_levels, normalise_facts, sticky_levels

from .blocks._util import invalid

__all__ = [
    "FixedPointAccumulator",
    "STEP_FLAGS",
    "add_with_carry",
    "connect_mac",
    "connect_blockdot",
    "blockdot_align_parts",
    "blockdot_align_clamp",
    "accumulator_flags",
    "accumulator_manifest",
]

#: Per-step flag inputs of a deferred accumulator (``nan``, ``pinf``, ``ninf`` also exact).
STEP_FLAGS = ("nan", "pinf", "ninf", "negzero", "term_ovf", "term_neg", "inexact")
_EXACT_FLAGS = ("nan", "pinf", "ninf")
#: Sticky state of the deferred read-out and its value after ``first``.
_STICKY = {"nan": 0, "pinf": 0, "ninf": 0, "ovf": 0, "ovfneg": 0, "negz": 1, "inexact": 0}


def add_with_carry(a: Value, b: Value, cin: Value) -> Value:
    """``a + b + cin`` as one adder one bit wider than ``a`` (``cin`` rides in below the LSB:
    ``(Cat(cin, a) + Cat(cin, b)) >> 1``), so synthesis builds one carry chain."""
    return (Cat(cin, a) + Cat(cin, b))[1 : len(a) + 2]


class FixedPointAccumulator(wiring.Component):
    """Carry-segmented accumulate loop and pipelined read-out of ``plan``.

    Parameters
    ----------
    plan : AccumulatorPlan
    addend_width : int
        Width of the signed ``addend`` (at most ``plan.width``; sign-extended).
    exact_flags : bool
        ``segmented``: the PE has the sticky ``acc_flags`` = {nan, +inf, -inf} port.

    Members
    -------
    valid, first : In(1)
        A step; ``first`` starts a new accumulation with it.
    addend : In(signed(addend_width))
        The step's exact value in units of ``2**plan.lsb_exp``.
    cin : In(1)
        Added at the LSB with the addend (the window aligner's fused rounding / negation).
    nan, pinf, ninf : In(1)
        The step holds a NaN / +inf / -inf (its ``addend`` excludes them).
    negzero, term_ovf, term_neg, inexact : In(1) -- ``deferred`` only
        Every term of the step is a zero with sign 1; the step's value lies beyond the window
        (``term_neg``: it is negative); bits below the window were rounded away.
    out_valid : Out(1)
    acc : Out(plan.width) (``segmented``) or Out(acc_format.bits) (``deferred``)
    acc_flags : Out(3) (``segmented`` with ``exact_flags``) or Out(2) (``deferred``)
        ``segmented``: sticky {nan, +inf, -inf}.  ``deferred``: sticky {bit0 overflow, bit1
        inexact}.
    """

    def __init__(self, plan: AccumulatorPlan, addend_width: int, exact_flags: bool = False) -> None:
        if not isinstance(plan, AccumulatorPlan):
            raise invalid(self, f"plan={plan!r} must be an AccumulatorPlan")
        if not isinstance(addend_width, int) or not 1 <= addend_width <= plan.width:
            raise invalid(self, f"addend_width={addend_width!r} must be an int in 1..{plan.width}")
        self._plan, self._addend_width = plan, addend_width
        deferred = plan.kind == "deferred"
        members: dict[str, Any] = {
            "valid": In(1),
            "first": In(1),
            "addend": In(signed(addend_width)),
            "cin": In(1),
            "out_valid": Out(1),
        }
        for name in STEP_FLAGS if deferred else _EXACT_FLAGS:
            members[name] = In(1)
        members["acc"] = Out(plan.acc_format.bits if deferred else plan.width)
        if deferred or exact_flags:
            members["acc_flags"] = Out(2 if deferred else 3)
        super().__init__(members)

    @property
    def plan(self) -> AccumulatorPlan:
        return self._plan

    # --- the loop -------------------------------------------------------------------------
    def _loop(self, m: Module) -> tuple[list[Signal], dict[int, Signal]]:
        p = self._plan
        ext = Signal(signed(p.width), name="addend_ext")
        m.d.comb += ext.eq(self.addend)
        free = p.settle > 0
        step = self.valid
        first = self.valid & self.first if free else self.first
        segs, cars, lo = [], {}, 0
        for k, w in enumerate(p.segment_widths):
            segs.append(Signal(w, name=f"seg{k}"))
            if k:
                cars[k] = Signal(name=f"car{k}")
        for k, w in enumerate(p.segment_widths):
            a = Mux(first, 0, segs[k])
            b = Mux(step, ext[lo : lo + w], 0) if free else ext[lo : lo + w]
            c = (Mux(step, self.cin, 0) if free else self.cin) if k == 0 else Mux(first, 0, cars[k])
            total = Signal(w + 1, name=f"seg{k}_sum")
            m.d.comb += total.eq(add_with_carry(a, b, c))
            upd = [segs[k].eq(total[:w])]
            if k + 1 < len(p.segment_widths):
                upd.append(cars[k + 1].eq(total[w]))
            if free:
                m.d.sync += upd
            else:
                with m.If(self.valid):
                    m.d.sync += upd
            lo += w
        return segs, cars

    # --- elaboration ----------------------------------------------------------------------
    def elaborate(self, platform: Any) -> Module:
        m = Module()
        p = self._plan
        segs, cars = self._loop(m)
        flag_names = STEP_FLAGS if p.kind == "deferred" else _EXACT_FLAGS
        info: dict[str, Value] = {"valid": self.valid, "first": self.first, **{n: getattr(self, n) for n in flag_names}}
        if p.kind == "segmented" and p.readout_stages == 0:
            self._unregistered(m, segs, cars, info)
            return m
        # the step's info travels with the loop state: one register for the loop, then
        # ``settle`` more while the carries ripple by themselves
        for d in range(1 + p.settle):
            info = _register(m, info, f"l{d}")
        bundle: dict[str, Value] = {**info, "x": Cat(*segs), "cin": C(0, 1)}
        bundle.update({f"car{k}": c for k, c in cars.items() if k > p.settle})
        build = _Readout(m, p)
        for names, cut_after in _groups(p):
            bundle = build.group(names, bundle)
            if cut_after is not None:
                bundle = _register(m, bundle, f"r{cut_after}")
        if p.kind == "deferred":
            m.d.sync += self.out_valid.eq(bundle["valid"])
            with m.If(bundle["valid"]):
                m.d.sync += [
                    self.acc.eq(Mux(bundle["special"], bundle["special_code"], bundle["finite"])),
                    self.acc_flags.eq(bundle["flags"]),
                ]
        else:
            self._final_exact(m, bundle)
        return m

    def _unregistered(self, m: Module, segs: list[Signal], cars: dict[int, Signal], info: dict[str, Value]) -> None:
        """``segmented`` with ``readout_stages=0``: acc is the combinational resolve of the
        loop registers; the sticky flags update with the loop (as the plain register does)."""
        p = self._plan
        bundle: dict[str, Value] = {"x": Cat(*segs), "cin": C(0, 1), **{f"car{k}": c for k, c in cars.items()}}
        build = _Readout(m, p)
        for names, _ in _groups(p):
            bundle = build.group(names, bundle)
        m.d.comb += self.acc.eq(bundle["x"])
        m.d.sync += self.out_valid.eq(self.valid)
        if hasattr(self, "acc_flags"):
            with m.If(self.valid):
                m.d.sync += self.acc_flags.eq(Mux(self.first, 0, self.acc_flags) | Cat(self.nan, self.pinf, self.ninf))

    def _final_exact(self, m: Module, b: dict[str, Value]) -> None:
        m.d.sync += self.out_valid.eq(b["valid"])
        with m.If(b["valid"]):
            m.d.sync += self.acc.eq(b["x"])
            if hasattr(self, "acc_flags"):
                m.d.sync += self.acc_flags.eq(Mux(b["first"], 0, self.acc_flags) | Cat(b["nan"], b["pinf"], b["ninf"]))


def _groups(p: AccumulatorPlan) -> list[tuple[list[str], int | None]]:
    """The read-out steps before ``final`` in build order: consecutive ``resolve`` steps with no
    register between them form one group (one adder, one carry chain); each group with the
    index of the register after it (or None)."""
    out: list[tuple[list[str], int | None]] = []
    for i, st in enumerate(p.steps[:-1]):
        joins = out and st.chain == "resolve" and out[-1][1] is None and out[-1][0][-1].startswith("resolve")
        if joins:
            out[-1][0].append(st.name)
        else:
            out.append(([st.name], None))
        if i in p.cuts:
            out[-1] = (out[-1][0], i)
    return out


def _register(m: Module, bundle: dict[str, Value], tag: str) -> dict[str, Value]:
    """One free-running pipeline register of every value (``valid`` resets to 0)."""
    out: dict[str, Value] = {}
    for k, v in bundle.items():
        if isinstance(v, Const):
            out[k] = v
            continue
        r = Signal(v.shape(), name=f"{tag}_{k}", reset_less=k != "valid")
        m.d.sync += r.eq(v)
        out[k] = r
    return out


class _Readout:
    """Builds the read-out steps of a plan by name (see :func:`peforge.accumulator.readout_steps`)."""

    def __init__(self, m: Module, plan: AccumulatorPlan) -> None:
        self.m, self.p = m, plan
        self.bounds, lo = [], 0
        for w in plan.segment_widths:
            self.bounds.append((lo, lo + w))
            lo += w
        if plan.kind == "deferred":
            self.facts = normalise_facts(plan.width, plan.lsb_exp, plan.acc_format)

    def group(self, names: list[str], b: dict[str, Value]) -> dict[str, Value]:
        if names[0].startswith("resolve"):
            return self._resolve(dict(b), [int(n[len("resolve") :]) for n in names])
        (name,) = names
        kind = name.rstrip("0123456789")
        index = int(name[len(kind) :]) if name != kind else 0
        handler: Callable[[dict[str, Value], int], dict[str, Value]] = getattr(self, f"_{kind}")
        return handler(dict(b), index)

    def _resolve(self, b: dict[str, Value], ks: list[int]) -> dict[str, Value]:
        """Add the pending carries into segments ``ks`` (consecutive) and the carry from the
        part resolved before: one adder; the pending carry and the carry from below may both
        be 1."""
        lo, hi = self.bounds[ks[0]][0], self.bounds[ks[-1]][1]
        x = b["x"]
        pending = Cat(*(Cat(b.pop(f"car{k}"), C(0, self.bounds[k][1] - self.bounds[k][0] - 1)) for k in ks))
        t = Signal(hi - lo + 1, name=f"resolve{ks[0]}_{ks[-1]}")
        self.m.d.comb += t.eq(add_with_carry(x[lo:hi], pending, b["cin"]))
        b["x"] = Cat(x[:lo], t[: hi - lo], x[hi:])
        b["cin"] = t[hi - lo]
        return b

    # --- deferred ---------------------------------------------------------------------------
    def _lzc(self, b: dict[str, Value], level: int) -> dict[str, Value]:
        """Level ``level`` of the leading-sign count (a leading-zero tree, pairs at level 0)."""
        fa, W = self.facts, self.p.width
        wn = fa["word"]
        size = 1 << lzc_levels(wn - 1)
        if level == 0:  # the resolved sum becomes the word, sign on top
            x = b.pop("x")
            b.pop("cin")
            s = x[W - 1]
            word = Cat(C(0, fa["pad_lo"]), x[: W - 1], s.replicate(fa["pad_hi"]))
            t = word[: wn - 1] ^ s.replicate(wn - 1)
            bits = [t[i] for i in reversed(range(wn - 1))] + [C(1, 1)] * (size - (wn - 1))
            nodes = [(~bits[2 * i] & ~bits[2 * i + 1], ~bits[2 * i]) for i in range(size // 2)]
            b.update(word=word, sign=s)
            self._sticky_flags(b, sum_ovf=x[W - 1] ^ x[W - 2])
        else:
            kids = [(b.pop(f"lz{i}"), b.pop(f"lc{i}")) for i in range(size >> level)]
            nodes = [(zh & zl, Cat(Mux(zh, cl, ch), zh)) for (zh, ch), (zl, cl) in zip(kids[::2], kids[1::2])]
        if len(nodes) == 1:
            z, c = nodes[0]
            count = Signal(range(wn), name="lsd_count")
            self.m.d.comb += count.eq(Mux(z, wn - 1, c) if size == wn - 1 else c)
            b["sh"] = b["lzcnt"] = count
        else:
            for i, (z, c) in enumerate(nodes):
                zs, cs = Signal(name=f"lz{level}_{i}"), Signal(len(c), name=f"lc{level}_{i}")
                self.m.d.comb += [zs.eq(z), cs.eq(c)]
                b[f"lz{i}"], b[f"lc{i}"] = zs, cs
        return b

    def _limit(self, b: dict[str, Value], _: int) -> dict[str, Value]:
        lim = self.facts["limit"]
        sh = Signal(range(max(lim, 0) + 1), name="lsd_limited")
        self.m.d.comb += sh.eq(Mux(b["sh"] <= lim, b["sh"], lim))
        b["sh"] = sh
        return b

    def _shift(self, b: dict[str, Value], j: int) -> dict[str, Value]:
        word, amount = b["word"], b["sh"]
        out = Signal(len(word), name=f"norm{j}")
        bit = amount[j] if j < len(amount) else C(0, 1)
        self.m.d.comb += out.eq(Mux(bit, word << (1 << j), word))
        b["word"] = out
        return b

    def _split_word(self, b: dict[str, Value]) -> None:
        """The normalised word's significand ``f`` (sign, leading bit, M fraction bits), guard
        bit and the bits below it (for the sticky bit)."""
        M, wn = self.p.acc_format.man_bits, self.facts["word"]
        n = b.pop("word")
        b["f"], b["guard"] = n[wn - 2 - M :], n[wn - 3 - M]
        low = wn - 3 - M
        if sticky_levels(low) == 0:
            b["or0"] = (n[:low] != 0) if low else C(0, 1)
        else:
            for i in range(low):
                b[f"lowbit{i}"] = n[i]
            b["lowbits"] = C(low, 16)

    def _sticky(self, b: dict[str, Value], level: int) -> dict[str, Value]:
        """One level of 4-input ORs over the bits below the guard bit."""
        if level == 0:
            self._split_word(b)
            n = int(b.pop("lowbits").value)
            parts = [b.pop(f"lowbit{i}") for i in range(n)]
        else:
            parts = [b.pop(k) for k in sorted((k for k in b if k.startswith("or")), key=lambda k: int(k[2:]))]
        for i in range(0, len(parts), 4):
            o = Signal(name=f"sticky{level}_{i // 4}")
            self.m.d.comb += o.eq(Cat(*parts[i : i + 4]).any())
            b[f"or{i // 4}"] = o
        return b

    def _inc(self, b: dict[str, Value], _: int) -> dict[str, Value]:
        M = self.p.acc_format.man_bits
        if "word" in b:
            self._split_word(b)
        f, guard, s = b.pop("f"), b.pop("guard"), b["sign"]
        sticky = b.pop("or0")
        inc = guard & (sticky | f[0])
        mx = Signal(M + 3, name="mag_operand")
        self.m.d.comb += mx.eq(Cat(f, f[-1]) ^ s.replicate(M + 3))
        b["mx"], b["mcin"] = mx, inc ^ s
        return b

    def _sticky_flags(self, b: dict[str, Value], sum_ovf: Value) -> None:
        """The sticky state (see ``_STICKY``), updated when a step passes this point (any
        point after the resolve would do; here it runs beside the normaliser): the step's
        flags are replaced by the new state."""
        state = {k: Signal(name=f"sticky_{k}") for k in _STICKY}
        first = b.pop("first")
        base = {k: Mux(first, v, state[k]) for k, v in _STICKY.items()}
        term_ovf = b.pop("term_ovf")
        new = {
            "nan": base["nan"] | b.pop("nan"),
            "pinf": base["pinf"] | b.pop("pinf"),
            "ninf": base["ninf"] | b.pop("ninf"),
            "ovf": base["ovf"] | term_ovf | sum_ovf,
            "ovfneg": Mux(base["ovf"], base["ovfneg"], Mux(term_ovf, b.pop("term_neg"), b["sign"])),
            "negz": base["negz"] & b.pop("negzero"),
            "inexact": base["inexact"] | b.pop("inexact"),
        }
        for k, v in new.items():
            sig = Signal(name=f"next_{k}")
            self.m.d.comb += sig.eq(v)
            b[f"st_{k}"] = sig
        with self.m.If(b["valid"]):
            self.m.d.sync += [state[k].eq(b[f"st_{k}"]) for k in state]

    def _mag(self, b: dict[str, Value], _: int) -> dict[str, Value]:
        """``|r| = (f ^ s) + (inc ^ s)``: the increment and the negation in one adder."""
        M = self.p.acc_format.man_bits
        r = Signal(M + 3, name="mag")
        self.m.d.comb += r.eq(add_with_carry(b.pop("mx"), C(0, 1), b.pop("mcin")))
        b["r"] = r
        b["uzero"] = ~b["sign"] & (b.pop("lzcnt") == self.facts["word"] - 1)
        return b

    def _pack(self, b: dict[str, Value], _: int) -> dict[str, Value]:
        f = self.p.acc_format
        E, M = f.exp_bits, f.man_bits
        r, s = b.pop("r"), b.pop("sign")
        sh = b.pop("sh")
        top = r[M + 1]
        hidden = r[M] | top
        # the biased exponent of the word's top magnitude bit, cb - sh, is >= 1 for a nonzero
        # sum (the shift stops at the subnormal limit); + 1 when |r| carried into 2**(M+1)
        ef = Signal(range(self.facts["cb"] + 2), name="readout_efield")
        self.m.d.comb += ef.eq(Mux(hidden, self.facts["cb"] - sh + top, 0))
        man = Mux(top, 0, r[:M])
        if not self.p.subnormals:
            man = Mux(ef == 0, 0, man)
        finite = Signal(f.bits, name="readout_finite")
        inf_s = Const(f.inf_code(), f.bits) | (s << (E + M))
        st = {k: b.pop(f"st_{k}") for k in _STICKY}
        zero = Cat(C(0, E + M), st["negz"])
        self.m.d.comb += finite.eq(Mux(ef >= (1 << E) - 1, inf_s, Mux(b.pop("uzero"), zero, Cat(man, ef[:E], s))))
        # beside it: the special value the sticky flags call for
        pos = st["pinf"] | (st["ovf"] & ~st["ovfneg"])
        neg = st["ninf"] | (st["ovf"] & st["ovfneg"])
        is_nan = st["nan"] | (pos & neg)
        special, special_code = Signal(name="special"), Signal(f.bits, name="special_code")
        self.m.d.comb += [
            special.eq(is_nan | pos | neg),
            special_code.eq(Mux(is_nan, f.nan_code, Mux(pos, f.inf_code(), f.inf_code(True)))),
        ]
        b.update(finite=finite, special=special, special_code=special_code, flags=Cat(st["ovf"], st["inexact"]))
        return b


class _Aligner:
    """Builds the window aligner's steps (:func:`peforge.accumulator.align_steps`): a block
    value ``(-1)**sign * mag * 2**(lsb + p)`` (sign-magnitude) placed on the window's grid
    ``2**lsb``.  The magnitude enters at the top of a word of ``1 + window_mag + mag_width``
    bits (a guard bit, the window's magnitude bits, room above it) and shifts right by
    ``window_mag - p`` (clamped; computed in front of the aligner by
    :func:`blockdot_align_parts` and :func:`blockdot_align_clamp`), least significant level
    first; beside each level the OR of the bits it drops.  Bits below the window round to
    nearest, ties to even (of the magnitude): the
    increment and the negation of a negative value both go into the loop's carry-in
    (``-(m + inc) = ~m + (1 - inc)``); bits above it (or a shift below zero) are an overflow."""

    def __init__(self, m: Module, plan: AccumulatorPlan, mag_width: int) -> None:
        self.m, self.p, self.mw = m, plan, mag_width
        self.wm = plan.width - 2
        self.width = 1 + self.wm + mag_width

    def step(self, name: str, b: dict[str, Value]) -> dict[str, Value]:
        kind = name.rstrip("0123456789")
        index = int(name[len(kind) :]) if name != kind else 0
        return getattr(self, f"_{kind}")(dict(b), index)

    def _ashift(self, b: dict[str, Value], k: int) -> dict[str, Value]:
        if k == 0:  # the magnitude enters at the top of the word
            b["word"] = Cat(C(0, 1 + self.wm), b.pop("mag"))
        step, x = 1 << k, b["word"]
        bit = b["amt"][k]
        out = Signal(self.width, name=f"align{k}")
        if step >= self.width:  # drops everything left: the value was nonzero
            self.m.d.comb += out.eq(Mux(bit, 0, x))
            dropped = bit & b["nonzero"]
        else:
            self.m.d.comb += out.eq(Mux(bit, x >> step, x))
            dropped = bit & (x[:step] != 0)
        sk = Signal(name=f"align_sticky{k}")
        self.m.d.comb += sk.eq(dropped)
        b["word"], b[f"sk{k}"] = out, sk
        return b

    def _apost(self, b: dict[str, Value], _: int) -> dict[str, Value]:
        wm = self.wm
        out = b.pop("word")
        guard, mt, high = out[0], out[1 : 1 + wm], out[1 + wm :]
        sticky = Cat(*(b.pop(k) for k in sorted((k for k in b if k.startswith("sk")), key=lambda k: int(k[2:])))).any()
        inc = guard & (sticky | mt[0])
        sign = b.pop("sign")
        addend = Signal(signed(wm + 2), name="align_addend")
        self.m.d.comb += addend.eq(Cat(mt, C(0, 2)) ^ sign.replicate(wm + 2))
        b.pop("amt")
        b.update(
            addend=addend,
            cin=sign ^ inc,
            term_neg=sign,
            inexact=guard | sticky,
            term_ovf=(high != 0) | (b.pop("above") & b.pop("nonzero")),
        )
        return b


# --- wiring into the families' front ends ---------------------------------------------------------


def connect_mac(
    m: Module,
    pe: Any,
    plan: AccumulatorPlan,
    valid: Value,
    first: Value,
    lane_sum: Value,
    nan: Value,
    pinf: Value,
    ninf: Value,
    negzero: Value,
) -> None:
    """The minifloat MAC's segmented / deferred accumulator: ``lane_sum`` (signed, units of
    ``2**plan.lsb_exp``) is the addend; drives ``pe.acc``, ``pe.acc_flags``, ``pe.out_valid``."""
    has_flags = hasattr(pe, "acc_flags")
    m.submodules.accumulator = acc = FixedPointAccumulator(plan, len(lane_sum), exact_flags=has_flags)
    m.d.comb += [
        acc.valid.eq(valid),
        acc.first.eq(first),
        acc.addend.eq(lane_sum),
        acc.cin.eq(0),
        acc.nan.eq(nan),
        acc.pinf.eq(pinf),
        acc.ninf.eq(ninf),
        pe.acc.eq(acc.acc),
        pe.out_valid.eq(acc.out_valid),
    ]
    if plan.kind == "deferred":
        m.d.comb += [acc.negzero.eq(negzero), acc.term_ovf.eq(0), acc.term_neg.eq(0), acc.inexact.eq(0)]
    if has_flags:
        m.d.comb += pe.acc_flags.eq(acc.acc_flags)


def blockdot_align_parts(
    m: Module, plan: AccumulatorPlan, mag_width: int, v_lsb: int, ex: Value
) -> tuple[Signal, Signal, Signal]:
    """The parts of the block-dot's aligner shift (``window_mag - p`` clamped to ``0 .. word
    width``, :class:`_Aligner`) of a block value ``mag * 2**(v_lsb + ex)``, from the
    registered scale exponent sum ``ex``: the low bits of the
    unclamped shift ``K - ex`` (``K = window_mag - (v_lsb - lsb_exp)``, one subtract), whether
    ``ex`` lies above the window (``ex > K``) and whether the shift passes the word (``ex < K -
    width``), each a compare of ``ex`` with a constant beside the subtract.  Registered before
    :func:`blockdot_align_clamp` joins them, the clamp's select is a register bit rather than
    a compare behind an adder (which synthesis maps into the next register's reset)."""
    wm = plan.width - 2
    width = 1 + wm + mag_width
    k = wm - (v_lsb - plan.lsb_exp)
    ex_max = (1 << len(ex)) - 1
    raw = Signal(width.bit_length(), name="align_raw")
    b = len(raw)
    m.d.comb += raw.eq(C(k % (1 << b), b) - ex[:b])  # modulo 2**b: only the low bits of ex
    above = Signal(name="align_above")
    beyond = Signal(name="align_beyond")
    m.d.comb += [
        above.eq(_const_compare(ex, ">", k, ex_max)),
        beyond.eq(_const_compare(ex, "<", k - width, ex_max)),
    ]
    return raw, above, beyond


def blockdot_align_clamp(
    m: Module, plan: AccumulatorPlan, mag_width: int, raw: Value, above: Value, beyond: Value
) -> Signal:
    """The clamped aligner shift from :func:`blockdot_align_parts` (``0`` above the window, the
    word width past it): one LUT level per bit behind the registered selects."""
    clamped = Signal(len(raw), name="align_clamped")
    m.d.comb += clamped.eq(Mux(above, 0, Mux(beyond, 1 + plan.width - 2 + mag_width, raw)))
    return clamped


def _const_compare(x: Value, op: str, k: int, x_max: int) -> Value:
    """``x > k`` / ``x < k`` for an unsigned ``x`` in ``0 .. x_max``, folded to a constant when
    it cannot vary (so no always-true comparison reaches the Verilog)."""
    if op == ">":
        return C(1, 1) if k < 0 else C(0, 1) if k >= x_max else x > k
    return C(0, 1) if k <= 0 else C(1, 1) if k > x_max else x < k


def connect_blockdot(
    m: Module,
    pe: Any,
    plan: AccumulatorPlan,
    pipe: Callable[[str, list], list],
    ctl: dict[str, Value],
    mag_v: Value,
    amt: Value,
    above: Value,
    v_sign: Value,
    v_zero_sign: Value,
    v_nan: Value,
    v_pinf: Value,
    v_ninf: Value,
) -> None:
    """The block-dot PE's deferred accumulator: the block value ``(-1)**v_sign * mag_v`` with its
    aligner shift ``amt`` / ``above`` (:func:`blockdot_align_clamp`) passes the front's ``acc``
    pipeline cut, is aligned into the window (:class:`_Aligner`, ``plan.align_stages``
    registers, the last at the loop's input) and the loop takes one step per block."""
    special = v_nan | v_pinf | v_ninf
    mag = Signal(len(mag_v), name="v_finite")
    m.d.comb += mag.eq(Mux(special, 0, mag_v))  # a special block value adds nothing
    negzero = (mag_v == 0) & ~special & v_zero_sign
    vals = pipe("acc", [mag, mag != 0, amt, above, v_sign, negzero, v_nan, v_pinf, v_ninf])
    mag, nonzero, amt, above, v_sign, negzero, v_nan, v_pinf, v_ninf = vals
    bundle: dict[str, Value] = {
        "valid": ctl["valid"] & ctl["last"],
        "first": ctl["first"],
        "mag": mag,
        "nonzero": nonzero,
        "amt": amt,
        "above": above,
        "sign": v_sign,
        "negzero": negzero,
        "nan": v_nan,
        "pinf": v_pinf,
        "ninf": v_ninf,
    }
    build = _Aligner(m, plan, len(mag_v))
    for i, st in enumerate(plan.align_steps):
        bundle = build.step(st.name, bundle)
        if i in plan.align_cuts:
            bundle = _register(m, bundle, f"a{i}")
    if plan.align_stages:  # the last aligner register is the loop's input
        bundle = _register(m, bundle, "ain")
    m.submodules.accumulator = acc = FixedPointAccumulator(plan, plan.width)
    m.d.comb += [
        acc.valid.eq(bundle["valid"]),
        acc.first.eq(bundle["first"]),
        acc.addend.eq(bundle["addend"]),
        acc.cin.eq(bundle["cin"]),
    ]
    m.d.comb += [getattr(acc, k).eq(bundle[k]) for k in STEP_FLAGS]
    m.d.comb += [pe.acc.eq(acc.acc), pe.acc_flags.eq(acc.acc_flags), pe.out_valid.eq(acc.out_valid)]


# --- manifest -----------------------------------------------------------------------------------


def accumulator_flags() -> dict[str, Any]:
    """The ``acc_flags`` entry of a deferred-rounding accumulator's manifest."""
    return {
        "port": "acc_flags",
        "bits": {"0": "overflow", "1": "inexact"},
        "sticky": True,
        "cleared_by": "in_first",
        "meaning": {
            "overflow": "the exact running sum left the window (or a block value exceeded it): "
            "acc is +-inf by the sign of the first overflow, NaN with an inf of the other sign",
            "inexact": "bits of a block value below the window's LSB were rounded away "
            "(nearest, ties to even; never for mac)",
        },
    }


def accumulator_manifest(spec: Any) -> dict[str, Any]:
    """Manifest fields of a segmented / deferred accumulator: ``rounding``, ``accumulator``
    (architecture, window, segments, aligner and read-out pipelines, latencies); ``rounding``
    only otherwise."""
    plan = spec.accumulator
    out: dict[str, Any] = {"rounding": getattr(spec, "rounding", "per-step")}
    if plan is None:
        return out
    acc = plan.to_dict()
    acc["loop_latency"] = spec.latency - plan.readout_latency
    acc["readout"] = (
        "resolve the pending carries"
        if plan.kind == "segmented"
        else "resolve the pending carries, normalise (leading-sign count, shift), round to nearest "
        "even once, pack, specials"
    )
    out["accumulator"] = acc
    return out
