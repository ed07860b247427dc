"""Cost-model blocks of the accumulators that pipeline (``rtl/accumulators.py``).

The loop (segment adders with a gated accumulator input, the segment and pending-carry
registers), the read-out of :class:`peforge.accumulator.AccumulatorPlan` step by step (carry
resolve, leading-sign count, normalising shift, sticky bit, fused increment / negation,
exponent and packing, the sticky flags and special values) with a pipeline register at each of
the plan's cuts, and the block-dot window aligner.  Widths and register bits come from the
plan, so the assembly follows the generator without importing it.
"""

from __future__ import annotations

from peforge.accumulator import AccumulatorPlan, normalise_facts

from .components import Netlist

__all__ = ["fixed_point_accumulator", "window_aligner", "align_amount"]

_STEP_FLAGS = 7  # nan, pinf, ninf, negzero, term_ovf, term_neg, inexact (deferred)


def _loop(n: Netlist, plan: AccumulatorPlan) -> None:
    """Segment adders ``Mux(first, 0, seg) + addend + carry`` and their registers (the
    addend's sign-extension slices are wires)."""
    widths = plan.segment_widths
    free = plan.settle > 0  # runs every cycle: the addend is gated too
    n.gate(plan.width, cls="acc")
    if free:
        n.logic(plan.width + 2, cls="acc")
    for w in widths:
        n.adder(w + 1, cls="acc", path=False)
    n.chain(1, max(widths) + 1)
    n.logic(len(widths) - 1, cls="acc")  # Mux(first, 0, car)
    n.register(plan.width + len(widths) - 1, cls="acc", enable=not free)
    n.feedback()  # the loop: one segment adder, no cut splits it
    n.notes.update(
        segments=len(widths),
        segment_widths=list(widths),
        loop_bits=plan.width,
        readout_stages=plan.readout_stages,
        readout_latency=plan.readout_latency,
    )


def _readout_step(n: Netlist, plan: AccumulatorPlan, name: str, resolved: list[int]) -> None:
    """The logic of one read-out step (``resolved``: the bits of a resolve group so far)."""
    kind = name.rstrip("0123456789")
    if kind == "resolve":
        k = int(name[len(kind) :])
        w = plan.segment_widths[k]
        n.adder(w + 1, cls="acc", path=False)
        if not resolved:
            n.chain(1)
        n.chain(0, w)
        resolved.append(w)
        return
    resolved.clear()
    f = plan.acc_format
    if kind == "final":
        if plan.kind == "deferred":
            n.mux(f.bits, cls="acc", path=True)
        return
    facts = normalise_facts(plan.width, plan.lsb_exp, f)
    wn, sb, m = facts["word"], facts["shift_bits"], f.man_bits
    if name == "lzc0":
        n.lzc(wn - 1, cls="acc", path=False)
        n.logic(wn - 1, cls="acc")  # XOR with the sign
        n.logic(24, cls="acc")  # the sticky flags beside it
        n.register(7, cls="acc", enable=True)
    if kind == "lzc":
        n.chain(1)
    elif kind == "limit":
        n.compare(sb, cls="acc")
        n.mux(sb, cls="acc", path=True)
    elif kind == "shift":
        if int(name[len(kind) :]) == sb - 1:
            n.shifter(wn, sb, cls="acc", path=False)
        n.chain(1)
    elif kind == "sticky":
        if name == "sticky0":
            n.equal(max(wn - 3 - m, 0), cls="acc")
        n.chain(1)
    elif kind == "inc":
        n.logic(m + 6, cls="acc", levels=1)
    elif kind == "mag":
        n.adder(m + 3, cls="acc")
        n.equal(sb, cls="acc")  # the zero sum
    elif kind == "pack":
        n.adder(sb + 2, cls="acc")
        n.compare(f.exp_bits + 1, cls="acc")
        n.mux(f.bits, 2, cls="acc", path=True)
        n.logic(12, cls="acc")  # the special value beside it
        n.mux(f.bits, cls="acc")


def fixed_point_accumulator(n: Netlist, plan: AccumulatorPlan, exact_flags: bool = False) -> None:
    """The loop and read-out of ``plan`` (``exact_flags``: a segmented register's sticky
    {nan, +inf, -inf})."""
    _loop(n, plan)
    deferred = plan.kind == "deferred"
    info = 2 + (_STEP_FLAGS if deferred else 3 * exact_flags)  # valid, first, flags
    if not deferred and plan.readout_stages == 0:  # acc = the resolve, unregistered
        n.register(1)  # out_valid
        if exact_flags:
            n.logic(6, cls="acc")
            n.register(3, cls="acc", enable=True)
        n.cut()
        resolved: list[int] = []
        for st in plan.steps[:-1]:
            _readout_step(n, plan, st.name, resolved)
        return
    n.register(info * (1 + plan.settle))  # the step's info beside the loop
    n.cut()
    resolved = []
    for i, st in enumerate(plan.steps):
        _readout_step(n, plan, st.name, resolved)
        if i in plan.cuts:
            n.register(st.bits)
            n.cut()
    if deferred:
        n.register(plan.acc_format.bits + 2, cls="acc", enable=True)  # acc, acc_flags
    else:
        n.register(plan.width, cls="acc", enable=True)
        if exact_flags:
            n.logic(6, cls="acc")
            n.register(3, cls="acc", enable=True)


def align_amount(n: Netlist, plan: AccumulatorPlan, mag_bits: int, ex_bits: int) -> None:
    """The block-dot aligner's clamped shift amount from the scale exponent sum
    (``rtl/accumulators.py`` ``blockdot_align_parts`` / ``blockdot_align_clamp``): the low bits of
    the unclamped shift (one subtract) and two compares of the sum with constants, registered,
    then the clamp; off the block value's path."""
    bits = (1 + plan.width - 2 + mag_bits).bit_length()
    n.adder(bits, cls="sum", path=False)
    n.compare(ex_bits, 2, cls="sum")
    n.mux(bits, 2, cls="sum")


def window_aligner(n: Netlist, plan: AccumulatorPlan, mag_bits: int) -> None:
    """``rtl/accumulators.py``'s window aligner, step by step with the plan's registers: one
    right-shift level per step (the bits the data can occupy) with the OR of the bits it drops
    beside it, then the bits above the window, the sticky bit, the rounding increment and the
    sign's one's complement."""
    from peforge.accumulator import align_dropped

    wm = plan.width - 2
    width = 1 + wm + mag_bits
    bits = width.bit_length()
    for i, st in enumerate(plan.align_steps):
        kind = st.name.rstrip("0123456789")
        if kind == "ashift":
            k = int(st.name[len(kind) :])
            n.mux(min(width, mag_bits + (2 << k) - 1), cls="sum", path=True)
            n.equal(align_dropped(mag_bits, wm, k), cls="sum")
        else:
            n.equal(mag_bits + bits, cls="sum")  # above the window, sticky
            n.logic(plan.width + 6, cls="sum", levels=2)  # inc, XOR with the sign, flags
        if i in plan.align_cuts:
            n.register(st.bits)
            n.cut()
    if plan.align_stages:
        n.register(plan.width + 10)  # the loop's input register
        n.cut()
    n.notes.update(window_bits=plan.window_bits, aligner_bits=width, align_stages=plan.align_stages)
