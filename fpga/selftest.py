"""Self-test wrapper for a PE on a board: LFSR stimulus, signature register, pass/fail.

The wrapper drives the PE from a 32-bit Galois LFSR for ``n`` valid cycles (``in_first`` on
every ``first_every``-th cycle, starting with the first), folds every ``acc`` the PE shows with
``out_valid`` into a signature register, and after ``n`` outputs compares the signature with
an expected value baked in at elaboration time.  The expected value comes from the golden model
(:func:`peforge.models.golden.run`) on the same stimulus, computed here in Python
(:func:`expected_signature`), so the RTL is checked against an independent model on the board.

Stimulus per valid input ``i``: the LFSR state ``s_i`` (``s_0`` = seed) gives the data input
ports' bits in the order the family's :class:`BoardAdapter` lists them (``a`` = bits
``[0, wa)``, ``b`` = bits ``[wa, wa + wb)``, then e.g. a group ``scale``; at most 32 bits
together; lanes packed as on the PE's ports), and the adapter turns the same words into the
golden model's inputs.  A PE that takes an input every ``k`` cycles (bit-serial shift-add, the
LUT PE) gets ``in_valid`` every ``k``-th cycle.  Signature: ``sig := rotl(sig, 1) ^ acc`` over
the ``acc`` port width (at least 1 bit), starting from 0.  A family whose ``board`` part in
:data:`peforge.families.FAMILIES` is None cannot be board-built (ValueError naming it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from peforge.families import family_of, load_layer
from peforge.spec import Spec

__all__ = [
    "SelfTestPlan",
    "SelfTest",
    "BoardAdapter",
    "LFSR_TAPS",
    "lfsr_states",
    "stimulus",
    "expected_signature",
    "LANE_OPERANDS",
    "SHIFTADD_OPERANDS",
    "LUT_OPERANDS",
]

#: Galois LFSR feedback mask for x^32 + x^22 + x^2 + x + 1 (maximal length), shifted right.
LFSR_TAPS = 0x80200003
_LFSR_WIDTH = 32


def _lfsr_next(s: int) -> int:
    return (s >> 1) ^ (LFSR_TAPS if s & 1 else 0)


def lfsr_states(seed: int, n: int) -> list[int]:
    """The first ``n`` LFSR states starting at ``seed`` (nonzero, 32-bit)."""
    if not 0 < seed < 1 << _LFSR_WIDTH:
        raise ValueError(f"seed={seed!r} must be a nonzero 32-bit integer")
    out, s = [], seed
    for _ in range(n):
        out.append(s)
        s = _lfsr_next(s)
    return out


@dataclass(frozen=True)
class SelfTestPlan:
    """Stimulus parameters: ``n`` valid cycles, ``in_first`` every ``first_every`` cycles, LFSR ``seed``."""

    n: int = 1024
    first_every: int = 16
    seed: int = 0xACE1_2024

    def __post_init__(self) -> None:
        if not 1 <= self.n <= 1 << 20:
            raise ValueError(f"n={self.n!r}: allowed 1..{1 << 20}")
        if not 1 <= self.first_every <= self.n:
            raise ValueError(f"first_every={self.first_every!r}: allowed 1..n ({self.n})")
        lfsr_states(self.seed, 1)


@dataclass(frozen=True)
class BoardAdapter:
    """How the self-test drives one family's PE (the family's ``board`` part).

    Members
    -------
    ports : callable
        ``ports(spec) -> [(port, width), ...]``: the data input ports, filled from the LFSR in
        this order (``in_valid`` / ``in_first`` are the wrapper's).
    golden : callable
        ``golden(spec, words, first) -> inputs`` of :func:`peforge.models.golden.run` for the
        port ``words`` (uint64 ``[n]`` each) and ``first`` ``[n]`` of ``n`` valid inputs.
    interval : callable
        ``interval(spec)``: cycles between two inputs (1: every cycle).
    """

    ports: Callable[[Any], list[tuple[str, int]]]
    golden: Callable[[Any, dict[str, np.ndarray], np.ndarray], dict[str, Any]]
    interval: Callable[[Any], int]


def _lanes(word: np.ndarray, bits: int, lanes: int) -> np.ndarray:
    """``[n]`` port words -> ``[1, n, lanes]`` codes (lane i at bits ``[i*bits, (i+1)*bits)``)."""
    return np.stack([(word >> np.uint64(i * bits)) & np.uint64((1 << bits) - 1) for i in range(lanes)], axis=-1)[
        None
    ].astype(np.int64)


LANE_OPERANDS = BoardAdapter(
    ports=lambda s: [("a", s.lanes * s.a.bits), ("b", s.lanes * s.b.bits)],
    golden=lambda s, w, first: {
        "a": _lanes(w["a"], s.a.bits, s.lanes),
        "b": _lanes(w["b"], s.b.bits, s.lanes),
        "first": first[None],
    },
    interval=lambda s: 1,
)


def _shiftadd_golden(s: Any, w: dict[str, np.ndarray], first: np.ndarray) -> dict[str, Any]:
    out = {"a": _lanes(w["a"], s.act.bits, s.lanes), "b": _lanes(w["b"], s.weight.bits, s.lanes), "first": first[None]}
    if s.group is not None:
        out["scale"] = w["scale"][None].astype(np.int64)
    return out


SHIFTADD_OPERANDS = BoardAdapter(
    ports=lambda s: (
        [("a", s.lanes * s.act.bits), ("b", s.lanes * s.weight.bits)]
        + ([("scale", s.scale.bits)] if s.group is not None else [])
    ),
    golden=_shiftadd_golden,
    interval=lambda s: s.cycles_per_input,
)

LUT_OPERANDS = BoardAdapter(
    ports=lambda s: [("a", s.group * s.act.bits), ("b", s.lanes * s.group * s.weight_code_bits)],
    golden=lambda s, w, first: {
        "a": _lanes(w["a"], s.act.bits, s.group),
        "b": _lanes(w["b"], s.weight_code_bits, s.lanes * s.group).reshape(1, -1, s.lanes, s.group),
        "first": first[None],
    },
    interval=lambda s: s.initiation_interval,
)


def _adapter(spec: Spec) -> BoardAdapter:
    fam = family_of(spec)
    adapter = fam.part("board")
    if adapter is None:
        raise ValueError(
            f"family {fam.name!r} ({spec.name}) cannot be board-built: it has no self-test adapter "
            "(its board part in peforge.families.FAMILIES is None)"
        )
    return adapter


def _port_geometry(spec: Spec) -> tuple[list[tuple[str, int]], int, int]:
    """(data input ports with widths, cycles per input, acc width) of ``spec``'s self-test."""
    from peforge.models import golden

    adapter = _adapter(spec)
    ports = adapter.ports(spec)
    total = sum(w for _, w in ports)
    if total > _LFSR_WIDTH:
        raise ValueError(
            f"{spec.name}: input ports {', '.join(f'{p} ({w})' for p, w in ports)} need {total} bits, "
            f"the LFSR gives {_LFSR_WIDTH}: use fewer lanes or narrower formats"
        )
    return ports, adapter.interval(spec), golden.port_widths(spec)["acc"]


def stimulus(spec: Spec, plan: SelfTestPlan) -> dict[str, np.ndarray]:
    """The golden model's inputs for the LFSR stimulus (one step per valid input)."""
    ports, _, _ = _port_geometry(spec)
    states = np.array(lfsr_states(plan.seed, plan.n), dtype=np.uint64)
    words, lo = {}, 0
    for name, width in ports:
        words[name] = (states >> np.uint64(lo)) & np.uint64((1 << width) - 1)
        lo += width
    first = (np.arange(plan.n) % plan.first_every == 0).astype(np.uint8)
    return _adapter(spec).golden(spec, words, first)


def expected_signature(spec: Spec, plan: SelfTestPlan) -> int:
    """Signature the wrapper must reach, from the golden model on the LFSR stimulus."""
    from peforge.models import golden

    *_, width = _port_geometry(spec)
    accs = golden.run(spec, **stimulus(spec, plan))["acc"][0]
    mask = (1 << width) - 1
    sig = 0
    for v in accs.tolist():
        sig = (((sig << 1) | (sig >> (width - 1))) & mask) ^ (int(v) & mask)
    return sig


class SelfTest(wiring.Component):
    """LFSR -> PE -> signature; ``done`` after ``n`` outputs, then ``ok`` (signature matched)
    or ``fail``.  Runs once after reset (sync domain).

    Parameters
    ----------
    spec : Spec
        A spec of a family with a board adapter (:class:`BoardAdapter`) whose data input ports
        have at most 32 bits together.
    plan : SelfTestPlan
        Stimulus length, ``in_first`` period and LFSR seed.
    expected : int, optional
        Signature to compare with; default :func:`expected_signature` (a wrong value is how a
        test checks that ``fail`` works).
    """

    def __init__(self, spec: Spec, plan: SelfTestPlan = SelfTestPlan(), expected: int | None = None) -> None:
        self.spec = spec
        self.plan = plan
        try:
            self.ports, self.interval, self.acc_width = _port_geometry(spec)
            self.expected = expected_signature(spec, plan) if expected is None else int(expected)
            if not 0 <= self.expected < 1 << self.acc_width:
                raise ValueError(f"expected={self.expected:#x} does not fit the {self.acc_width}-bit signature")
        except Exception:
            self._MustUse__silence = True  # a refused wrapper is not an "unused elaboratable"
            raise
        super().__init__({"done": Out(1), "ok": Out(1), "fail": Out(1)})

    def elaborate(self, platform: Any) -> Module:
        from peforge import rtl

        m = Module()
        m.submodules.pe = pe = rtl.build(self.spec)
        n, k, w = self.plan.n, self.plan.first_every, self.acc_width
        lfsr = Signal(_LFSR_WIDTH, init=self.plan.seed)
        sent = Signal(range(n + 1))
        phase = Signal(range(k))
        got = Signal(range(n + 1))
        sig = Signal(w)
        running = Signal()
        m.d.comb += running.eq(sent < n)
        take: Any = running
        if self.interval > 1:  # one input every `interval` cycles
            gap = Signal(range(self.interval))
            m.d.sync += gap.eq(_wrap_inc(gap, self.interval))
            take = running & (gap == 0)
        m.d.comb += [pe.in_valid.eq(take), pe.in_first.eq(take & (phase == 0))]
        lo = 0
        for name, width in self.ports:
            m.d.comb += getattr(pe, name).eq(lfsr[lo : lo + width])
            lo += width
        with m.If(take):
            feedback = Const(LFSR_TAPS, _LFSR_WIDTH) & lfsr[0].replicate(_LFSR_WIDTH)
            m.d.sync += [lfsr.eq((lfsr >> 1) ^ feedback), sent.eq(sent + 1), phase.eq(_wrap_inc(phase, k))]
        with m.If(pe.out_valid & (got < n)):
            rot = Cat(sig[w - 1], sig[: w - 1]) if w > 1 else sig
            m.d.sync += [sig.eq(rot ^ pe.acc[:w]), got.eq(got + 1)]
        done = got == n
        m.d.comb += [
            self.done.eq(done),
            self.ok.eq(done & (sig == self.expected)),
            self.fail.eq(done & (sig != self.expected)),
        ]
        return m


def _wrap_inc(v: Signal, k: int) -> Any:
    """Amaranth expression (v + 1) mod k."""
    return Const(0, len(v)) if k == 1 else Mux(v == k - 1, 0, v + 1)


load_layer("fpga")  # every family's board part (or None), or a FamilyError now
