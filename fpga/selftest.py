"""Self-test wrapper for a PE on a board: LFSR stimulus, signature register, pass/fail.

The wrapper drives the PE from a 32-bit Galois LFSR for ``n`` valid cycles (``in_first`` on
every ``first_every``-th cycle, starting with the first), folds every ``acc`` the PE shows with
``out_valid`` into a signature register, and after ``n`` outputs compares the signature with
an expected value baked in at elaboration time.  The expected value comes from the golden model
(:func:`peforge.models.golden.run`) on the same stimulus, computed here in Python
(:func:`expected_signature`), so the RTL is checked against an independent model on the board.

Stimulus per valid cycle ``i``: the LFSR state ``s_i`` (``s_0`` = seed) gives the operand bits,
``a`` = bits ``[0, wa)`` and ``b`` = bits ``[wa, wa + wb)`` of ``s_i`` (``wa``/``wb`` the packed
port widths, at most 32 together; lane i at bits ``[i*w, (i+1)*w)`` as on the PE's ports).
Signature: ``sig := rotl(sig, 1) ^ acc`` over the
``acc`` port width (at least 1 bit), starting from 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from peforge.spec import Spec

__all__ = ["SelfTestPlan", "SelfTest", "LFSR_TAPS", "lfsr_states", "stimulus", "expected_signature"]

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


def _port_geometry(spec: Spec) -> tuple[int, int, int, int]:
    """(lanes, a bits per lane, b bits per lane, acc width) of ``spec``'s ports."""
    from peforge.models import golden

    lanes = int(getattr(spec, "lanes", 1))
    wa, wb = spec.a.bits, spec.b.bits  # type: ignore[attr-defined]
    if lanes * (wa + wb) > _LFSR_WIDTH:
        raise ValueError(f"{spec.name}: operand ports need {lanes * (wa + wb)} bits, the LFSR gives "
                         f"{_LFSR_WIDTH}: use fewer lanes or narrower formats")
    return lanes, wa, wb, golden.port_widths(spec)["acc"]


def stimulus(spec: Spec, plan: SelfTestPlan) -> dict[str, np.ndarray]:
    """The golden model's inputs (``a``, ``b`` codes [1, n, lanes], ``first`` [1, n])."""
    lanes, wa, wb, _ = _port_geometry(spec)
    states = np.array(lfsr_states(plan.seed, plan.n), dtype=np.uint64)
    a = np.stack([(states >> np.uint64(i * wa)) & np.uint64((1 << wa) - 1) for i in range(lanes)], axis=-1)
    b = np.stack([(states >> np.uint64(lanes * wa + i * wb)) & np.uint64((1 << wb) - 1) for i in range(lanes)],
                 axis=-1)
    first = (np.arange(plan.n) % plan.first_every == 0).astype(np.uint8)
    return {"a": a[None].astype(np.int64), "b": b[None].astype(np.int64), "first": first[None]}


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
        Any spec :func:`peforge.rtl.build` and :func:`peforge.models.golden.run` accept, with
        ``a``/``b`` operand ports of at most 32 bits together.
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
            self.lanes, self.wa, self.wb, self.acc_width = _port_geometry(spec)
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
        aw, bw = self.lanes * self.wa, self.lanes * self.wb
        m.d.comb += [
            pe.in_valid.eq(running),
            pe.in_first.eq(running & (phase == 0)),
            pe.a.eq(lfsr[:aw]),
            pe.b.eq(lfsr[aw:aw + bw]),
        ]
        with m.If(running):
            feedback = Const(LFSR_TAPS, _LFSR_WIDTH) & lfsr[0].replicate(_LFSR_WIDTH)
            m.d.sync += [lfsr.eq((lfsr >> 1) ^ feedback), sent.eq(sent + 1),
                         phase.eq(_wrap_inc(phase, k))]
        with m.If(pe.out_valid & (got < n)):
            rot = Cat(sig[w - 1], sig[:w - 1]) if w > 1 else sig
            m.d.sync += [sig.eq(rot ^ pe.acc[:w]), got.eq(got + 1)]
        done = got == n
        m.d.comb += [self.done.eq(done), self.ok.eq(done & (sig == self.expected)),
                     self.fail.eq(done & (sig != self.expected))]
        return m


def _wrap_inc(v: Signal, k: int) -> Any:
    """Amaranth expression (v + 1) mod k."""
    return Const(0, len(v)) if k == 1 else Mux(v == k - 1, 0, v + 1)
