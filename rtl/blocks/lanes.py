"""Lanes of exact products summed in a fixed-point word: shared by the ``mac`` and ``blockdot``
generators (same signal names, so the Verilog of either is unchanged by sharing it)."""

from __future__ import annotations

from typing import Callable, Sequence

from amaranth.hdl import C, Cat, Module, Mux, Signal, Value, signed

__all__ = ["aligned_terms", "tree_level"]


def aligned_terms(
    m: Module,
    per_lane: Sequence[Value],
    lanes: int,
    span: int,
    split: Callable[[list[Value]], list[Value]] | None = None,
) -> tuple[list[Signal], Signal, list[Value]]:
    """Each lane's product ``psig << psh`` as a ``span + 1``-bit one's complement term (a
    negative lane inverted, its +1 counted in ``neg_count``) and the lanes' special flags.

    ``per_lane`` holds six values per lane: significand, shift, sign, NaN, infinity, zero.
    A NaN or infinite product's term is 0 (its flags carry it): the mask is applied here, on
    the product, rather than on the operand significands in the decoders, so the multiplier's
    inputs (a DSP's input registers) are one LUT level from the operand codes, and the mask
    shares a LUT with the shifter's first level.
    ``split`` (a pipeline register, ``per_lane``-shaped values in and out) cuts the shifter in
    two: the masked product shifted by the high half of ``psh`` is registered, the low half
    shifts after the register (about half the shifter's LUT levels on each side).
    Returns (terms, neg_count, [any NaN, any +inf, any -inf, all negative zero])."""
    if split is not None:
        coarse: list[Value] = []
        for i in range(lanes):
            psig, psh, psign, pnan, pinf, pzero = per_lane[6 * i : 6 * i + 6]
            low = len(psh) // 2
            part = Signal(span, name=f"pcoarse{i}")
            m.d.comb += part.eq(Mux(pnan | pinf, 0, psig) << Cat(C(0, low), psh[low:]))
            coarse += [part, psh[:low], psign, pnan, pinf, pzero]
        per_lane = split(coarse)
    terms, signs, nans, pinfs, ninfs, nzero = [], [], [], [], [], []
    for i in range(lanes):
        psig, psh, psign, pnan, pinf, pzero = per_lane[6 * i : 6 * i + 6]
        mag = Signal(span, name=f"pmag{i}")
        m.d.comb += mag.eq((psig if split is not None else Mux(pnan | pinf, 0, psig)) << psh)
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
