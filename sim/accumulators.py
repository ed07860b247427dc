"""Vector sets for the accumulators that pipeline (segmented exact, deferred rounding).

Added to the standard sets of a MAC spec (:func:`mac_sets`, through
:func:`peforge.sim.regression.mac_sets`, the MAC family's ``vector_sets`` part) and of a deferred
block-dot spec (:func:`blockdot_sets`, through :func:`peforge.sim.blockdot.blockdot_sets`).  The
shared testbench checks ``acc_flags`` like any other output the manifest lists:

* ``acc:cancel``: chains that cross zero again and again (``+x, -x, +y, -y, ...`` and small
  residues), so carries and borrows ripple through every segment and the read-out meets both
  signs, exact zeros and -0;
* ``acc:window_overflow`` (deferred MAC): same-sign largest products until the window
  overflows, then the other sign (must stay inf), an inf of the other sign (NaN) and a new
  chain (clean again);
* ``window:overflow`` / ``window:lsb`` (deferred block-dot): block values scaled to the top of
  the window (sum and term overflow, both signs) and to its bottom (rounding below the LSB,
  ties, inexact), mixed with cancellation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .vectors import MAX_CHAIN, VectorSet, _code, neutral_zero

__all__ = ["mac_sets", "blockdot_sets", "cancel_set", "window_overflow_set"]


def _lane0(spec: Any, a0: np.ndarray, b0: np.ndarray, first: np.ndarray, name: str) -> VectorSet:
    """Chains ``[batch, steps]`` of lane-0 codes; the other lanes carry the neutral zero."""
    za, zb = neutral_zero(spec)
    a = np.full((*a0.shape, spec.lanes), za, np.int64)
    b = np.full((*b0.shape, spec.lanes), zb, np.int64)
    a[..., 0], b[..., 0] = a0, b0
    return VectorSet(name, a, b, first)


def cancel_set(spec: Any, rows: int, seed: int = 0, steps: int = 256) -> VectorSet:
    """Chains of products that cancel pairwise (every other step undoes the one before, now
    and then leaving a small residue)."""
    rng = np.random.default_rng(seed + 31)
    fa, fb = spec.a, spec.b
    finite_a = np.flatnonzero(fa.classify(np.arange(fa.num_codes)) == 0)
    finite_b = np.flatnonzero(fb.classify(np.arange(fb.num_codes)) == 0)
    n = max(4, rows)
    a = rng.choice(finite_a, size=(n, steps))
    b = rng.choice(finite_b, size=(n, steps))
    undo = rng.random((n, steps)) < 0.8
    undo[:, 0] = False
    for t in range(1, steps):  # step t = -(step t-1): flip a's sign
        a[undo[:, t], t] = a[undo[:, t], t - 1] ^ fa.sign_mask
        b[undo[:, t], t] = b[undo[:, t], t - 1]
    first = rng.random((n, steps)) < 0.02
    first[:, 0] = True
    return _lane0(spec, a, b, first, "acc:cancel")


def window_overflow_set(spec: Any, max_steps: int = 4 * MAX_CHAIN) -> VectorSet | None:
    """Same-sign largest products until a deferred MAC's window overflows, then the other
    sign, an inf of the other sign and a fresh chain (None when the window needs more than
    ``max_steps`` steps to overflow)."""
    plan = spec.accumulator
    fa, fb = spec.a, spec.b
    max_a, max_b, nmax_b = _code(fa, fa.max), _code(fb, fb.max), _code(fb, -fb.max)
    pmax = float(fa.max) * float(fb.max)
    need = math.ceil(2.0 ** (plan.msb_exp + 1) / pmax) + 1
    if need + 8 > max_steps:
        return None
    steps = need + 8
    one_a, one_b = _code(fa, 1.0), _code(fb, 1.0)
    rows = []
    for neg in (False, True):  # up to overflow, past it, back down
        b_row = np.full(steps, nmax_b if neg else max_b)
        b_row[need + 2 :] = max_b if neg else nmax_b
        rows.append((np.full(steps, max_a), b_row))
    inf_b = fb.inf_code(True)
    if inf_b is not None:  # overflow to +inf meets -inf: NaN
        b_row = np.full(steps, max_b)
        b_row[need + 1] = inf_b
        a_row = np.full(steps, max_a)
        a_row[need + 1] = one_a
        rows.append((a_row, b_row))
    a = np.stack([r[0] for r in rows])
    b = np.stack([r[1] for r in rows])
    first = np.zeros(a.shape, bool)
    first[:, 0] = True
    first[:, need + 5] = True  # a new chain starts clean
    a[:, need + 5 :] = one_a
    b[:, need + 5 :] = one_b
    return _lane0(spec, a, b, first, "acc:window_overflow")


def mac_sets(spec: Any, rows: int, seed: int = 0) -> list[VectorSet]:
    """The extra sets of a segmented / deferred MAC (none for today's accumulators)."""
    if spec.accumulator is None:
        return []
    out = [cancel_set(spec, rows, seed)]
    if spec.accumulator.kind == "deferred":
        ovf = window_overflow_set(spec)
        if ovf is not None:
            out.append(ovf)
    return out


# --- block-dot ----------------------------------------------------------------------------------


def _scale_pairs(spec: Any, targets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scale codes (a, b) whose LSB exponents sum to each target (nearest reachable sum)."""
    from peforge.models.golden.blockdot import element_table

    def usable(fmt: Any) -> tuple[np.ndarray, np.ndarray]:
        neg, sig, exp, kind = element_table(fmt)
        ok = (kind == 0) & (sig > 0) & ~neg.astype(bool)
        return np.flatnonzero(ok), exp[ok]

    ca, ea = usable(spec.scale_a)
    cb, eb = usable(spec.scale_b)
    out_a, out_b = np.empty(targets.shape, np.int64), np.empty(targets.shape, np.int64)
    for idx, t in np.ndenumerate(targets):
        i = rng.integers(ca.size)
        j = int(np.argmin(np.abs(ea[i] + eb - t) + rng.random(eb.size) * 0.5))
        out_a[idx], out_b[idx] = ca[i], cb[j]
    return out_a, out_b


def blockdot_sets(spec: Any, rows: int, seed: int = 0) -> list[Any]:
    """``window:overflow`` and ``window:lsb`` block sets of a deferred block-dot spec."""
    from .blockdot import BlockSet, _elements, _negate

    plan = spec.accumulator
    if plan is None:
        return []
    rng = np.random.default_rng(seed + 57)
    fa, fb, k = spec.element_a, spec.element_b, spec.block
    from peforge.models.golden.blockdot import element_table

    lsb_e = int(
        element_table(fa)[2][element_table(fa)[1] > 0].min() + element_table(fb)[2][element_table(fb)[1] > 0].min()
    )
    top = math.log2(
        k
        * float(np.max(np.abs(fa.values()[np.isfinite(fa.values())])))
        * float(np.max(np.abs(fb.values()[np.isfinite(fb.values())])))
    )
    B, T = max(4, rows), 48
    neg_a = _negate(fa)
    out = []

    # top of the window: the largest blocks scaled so that a few (or one) reach 2**(msb+1)
    t_hi = plan.msb_exp + 1 - top
    tgt = np.round(t_hi + rng.integers(-6, 3, (B, 1)) + np.zeros((B, T))).astype(np.int64)
    sa, sb = _scale_pairs(spec, tgt, rng)

    def maxcode(fmt: Any) -> int:
        return int(fmt.max_code) if hasattr(fmt, "max_code") else 0x7F

    a = np.full((B, T, k), maxcode(fa), np.int64)
    b = np.full((B, T, k), maxcode(fb), np.int64)
    flip = rng.random((B, 1)) < 0.5  # rows of negative blocks
    a = np.where(flip[..., None], neg_a(a), a)
    back = rng.random((B, T)) < 0.15  # some blocks of the other sign
    a = np.where(back[..., None], neg_a(a), a)
    first = rng.random((B, T)) < 0.05
    first[:, 0] = True
    out.append(BlockSet("window:overflow", a, b, sa, sb, first))

    # bottom of the window: random blocks scaled so their LSB falls 0..40 bits below it
    tgt = plan.lsb_exp - lsb_e - rng.integers(-4, 40, (B, T))
    sa, sb = _scale_pairs(spec, tgt, rng)
    a = _elements(fa, (B, T, k), rng)
    b = _elements(fb, (B, T, k), rng)
    big = rng.random((B, T)) < 0.2  # and larger ones to cancel against
    sa2, sb2 = _scale_pairs(spec, tgt + 30, rng)
    sa, sb = np.where(big, sa2, sa), np.where(big, sb2, sb)
    undo = rng.random((B, T)) < 0.3
    for t in range(1, T):
        a[undo[:, t], t] = neg_a(a[undo[:, t], t - 1])
        b[undo[:, t], t] = b[undo[:, t], t - 1]
        sa[undo[:, t], t], sb[undo[:, t], t] = sa[undo[:, t], t - 1], sb[undo[:, t], t - 1]
    first = rng.random((B, T)) < 0.05
    first[:, 0] = True
    out.append(BlockSet("window:lsb", a, b, sa, sb, first))
    return out
