"""Lanes of exact products summed in a fixed-point word: shared by the ``mac`` and ``blockdot``
generators (same signal names, so the Verilog of either is unchanged by sharing it)."""

from __future__ import annotations

from typing import Sequence

from amaranth.hdl import C, Cat, Module, Signal, Value, signed

__all__ = ["aligned_terms", "tree_level"]


def aligned_terms(
    m: Module, per_lane: Sequence[Value], lanes: int, span: int
) -> tuple[list[Signal], Signal, list[Value]]:
    """Each lane's product ``psig << psh`` as a ``span + 1``-bit one's complement term (a
    negative lane inverted, its +1 counted in ``neg_count``) and the lanes' special flags.

    ``per_lane`` holds six values per lane: significand, shift, sign, NaN, infinity, zero.
    Returns (terms, neg_count, [any NaN, any +inf, any -inf, all negative zero])."""
    terms, signs, nans, pinfs, ninfs, nzero = [], [], [], [], [], []
    for i in range(lanes):
        psig, psh, psign, pnan, pinf, pzero = per_lane[6 * i : 6 * i + 6]
        mag = Signal(span, name=f"pmag{i}")
        m.d.comb += mag.eq(psig << psh)
        term = Signal(signed(span + 1), name=f"term{i}")
        m.d.comb += term.eq(Cat(mag, C(0, 1)) ^ psign.replicate(span + 1))
        terms.append(term)
        signs.append(psign)
        nans.append(pnan)
        pinfs.append(pinf & ~psign)
        ninfs.append(pinf & psign)
        nzero.append(pzero & psign)
    neg_count = Signal(range(lanes + 1))
    m.d.comb += neg_count.eq(sum(signs))
    flags = [Cat(*nans).any(), Cat(*pinfs).any(), Cat(*ninfs).any(), Cat(*nzero).all()]
    return terms, neg_count, flags


def tree_level(m: Module, terms: Sequence[Value], level: int) -> list[Value]:
    """One level of the balanced adder tree: neighbours summed pairwise (one bit wider), an
    odd last term passed up."""
    nxt: list[Value] = []
    for j in range(0, len(terms) - 1, 2):
        s = Signal(signed(len(terms[j]) + 1), name=f"sum{level}_{j // 2}")
        m.d.comb += s.eq(terms[j] + terms[j + 1])
        nxt.append(s)
    if len(terms) % 2:
        nxt.append(terms[-1])
    return nxt
