"""Golden model of deferred rounding (``rounding="deferred"``, families ``mac`` and ``blockdot``).

Semantics (the contract shared with the RTL, :mod:`peforge.rtl.accumulators`).  The window of
``spec.accumulator`` is the grid ``2**L`` (``L = lsb_exp``) holding ``-2**(H+1) <= U <
2**(H+1)`` (``H = msb_exp``).  Per valid step with its exact value ``V`` (``mac``: the lane sum
of the finite products, never off the grid; ``blockdot``: the block value ``S * Xa * Xb``) and
``first``:

1. ``first`` resets the state: ``U = 0``, every sticky flag clear, ``negz = True``.  (Before
   the first step the state is the reset state: ``U = 0``, flags clear, ``negz = False``:
   ``acc`` shows +0.)
2. Specials: ``nan |= V is NaN``, ``pinf |= V is +inf``, ``ninf |= V is -inf``; a special
   ``V`` adds nothing.
3. ``negz &= V is a zero with sign 1`` (for ``mac``: every product of the step is).
4. A finite ``V`` with ``|V| >= 2**(H+1)`` is a *term overflow* (not added).  Otherwise it is
   rounded onto the grid -- ``V' = RNE(V / 2**L)`` on the magnitude, ties to even, the sign
   kept -- with ``inexact |= V' * 2**L != V``, and ``U += V'``.  ``U`` outside the window is a
   *sum overflow*.
5. The first overflow (term or sum) since ``first`` sets ``ovf`` with the sign of the
   overflowing term or sum; later ones change nothing (the register's content is lost).
6. The output after the step: with ``P = pinf | (ovf and positive)``, ``N = ninf | (ovf and
   negative)``: NaN (``acc.nan_code``) if ``nan`` or ``P and N``; else +inf if ``P``, -inf if
   ``N``; else ``U * 2**L`` rounded once to ``acc`` (round to nearest even, gradual underflow,
   ``|x| >= max + ulp(max)/2`` gives inf of the sign, ``subnormals=False`` flushes subnormal
   results to a zero of their sign, a nonzero sum that rounds to zero keeps its sign); an
   exact ``U = 0`` is -0 if ``negz`` else +0.  ``acc_flags`` = {bit0 ``ovf``, bit1 ``inexact``}.

So a window overflow acts like an IEEE overflow to infinity of the exact running sum (and then
like an infinity operand), and is flagged.  ``acc`` shows ``round(U)`` after every step: unlike
per-step rounding, it is the correctly rounded exact sum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from peforge.formats import FloatFormat

from .mac import Terms, _segmented_cumsum, with_msb
from .rounding import bit_length, round_exact

__all__ = ["run_deferred", "mac_step_units", "blockdot_step_units", "FLAG_OVERFLOW", "FLAG_INEXACT"]

FLAG_OVERFLOW, FLAG_INEXACT = 1, 2


def _objects(t: Terms) -> np.ndarray:
    """The exact sums of ``t`` as an object array of Python ints (``val``; ``big_val`` rows)."""
    vals = t.val.astype(object)
    if t.big_val:
        holder = np.empty(len(t.big_val), dtype=object)
        holder[:] = t.big_val
        vals[t.big] = holder
    return vals


def mac_step_units(t: Terms, lsb_exp: int) -> np.ndarray:
    """A MAC step's lane sum in units of ``2**lsb_exp`` (exact: every product is on the grid)."""
    shift = np.where(t.val != 0, t.lsb - lsb_exp, 0)
    if not t.big_val and int(np.abs(t.val).max(initial=0)).bit_length() + int(shift.max(initial=0)) <= 62:
        return t.val << shift
    return _objects(t) << shift.astype(object)


def blockdot_step_units(t: Terms, lsb_exp: int, msb_exp: int) -> tuple[np.ndarray, ...]:
    """(units, term_ovf, term_neg, inexact) of block values ``t`` on the grid ``2**lsb_exp``
    (rule 4 of the module docstring); ``units`` is an object array of Python ints."""
    vals = _objects(t)
    neg = np.array([v < 0 for v in vals.ravel()], dtype=bool).reshape(vals.shape)
    msb = with_msb(np.where(t.big, 0, t.val), t.lsb)
    if t.big_val:
        flat = np.flatnonzero(t.big.ravel())
        mflat = msb.reshape(-1)
        for i, v in zip(flat, t.big_val):
            mflat[i] = int(t.lsb.ravel()[i]) + abs(v).bit_length() - 1 if v else -(1 << 40)
    term_ovf = msb >= msb_exp + 1
    units = np.zeros(vals.shape, dtype=object)
    inexact = np.zeros(vals.shape, dtype=bool)
    k = lsb_exp - t.lsb  # bits below the grid
    ok = (vals != 0) & ~term_ovf
    small = ok & ~t.big & (k > 0)
    if small.any():  # int64 fast path: RNE of |val| >> k
        mag = np.abs(t.val[small]).astype(np.int64)
        kk = k[small]
        far = kk >= 62
        ks = np.minimum(kk, 61).astype(np.int64)
        q = np.where(far, 0, mag >> ks)
        r = np.where(far, mag, mag & ((np.int64(1) << ks) - 1))
        half = np.where(far, np.int64(1) << 61, np.int64(1) << (ks - 1))
        up = ~far & ((r > half) | ((r == half) & ((q & 1) == 1)))
        q = q + up
        inexact[small] = r != 0
        units[small] = np.where(neg[small], -q, q).astype(object)
    up_small = ok & ~t.big & (k <= 0)
    up_small &= bit_length(np.abs(np.where(up_small, t.val, 0))) - np.where(up_small, k, 0) <= 62
    if up_small.any():  # on or above the grid: an exact shift, int64
        q = np.abs(t.val[up_small]) << (-k[up_small])
        units[up_small] = np.where(neg[up_small], -q, q).astype(object)
    rest = ok & ~small & ~up_small
    for idx in zip(*np.nonzero(rest)):
        v, kk = int(vals[idx]), int(k[idx])
        m = abs(v)
        if kk <= 0:
            qi = m << -kk
        else:
            qi, ri = m >> kk, m & ((1 << kk) - 1)
            half_i = 1 << (kk - 1)
            qi += ri > half_i or (ri == half_i and qi & 1)
            inexact[idx] = ri != 0
        units[idx] = -qi if v < 0 else qi
    return units, term_ovf & ~t.nan & ~t.pinf & ~t.ninf, neg, inexact


def run_deferred(
    plan: Any,
    fmt: FloatFormat,
    subnormals: bool,
    units: np.ndarray,
    first: np.ndarray,
    nan: np.ndarray,
    pinf: np.ndarray,
    ninf: np.ndarray,
    negzero: np.ndarray,
    term_ovf: np.ndarray | None = None,
    term_neg: np.ndarray | None = None,
    inexact: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``acc`` and ``acc_flags`` [batch, steps] after each step (the module docstring's rules).

    ``units``: each step's value on the grid (0 for specials and term overflows), int64 or
    Python ints; the other arrays are per-step bool flags."""
    B, T = first.shape
    zeros = np.zeros((B, T), bool)
    term_ovf = zeros if term_ovf is None else term_ovf
    term_neg = zeros if term_neg is None else term_neg
    inexact = zeros if inexact is None else inexact
    units = np.where(term_ovf | nan | pinf | ninf, 0, units)
    u = _segmented_cumsum(units, first)
    bound = 1 << (plan.msb_exp + 1 - plan.lsb_exp)
    if u.dtype == object:
        sum_ovf = np.array([not -bound <= int(v) < bound for v in u.ravel()], bool).reshape(u.shape)
        u_neg = np.array([int(v) < 0 for v in u.ravel()], bool).reshape(u.shape)
        mag = np.abs(u)
    else:
        sum_ovf = (u < -bound) | (u >= bound)
        u_neg = u < 0
        mag = np.abs(u)
    event = term_ovf | sum_ovf
    event_neg = np.where(term_ovf, term_neg, u_neg)

    st = {k: np.zeros(B, bool) for k in ("nan", "pinf", "ninf", "ovf", "ovfneg", "negz", "inexact")}
    out = {k: np.empty((B, T), bool) for k in st}
    for t in range(T):
        f = first[:, t]
        for k in st:
            st[k] = np.where(f, k == "negz", st[k])
        st["nan"] |= nan[:, t]
        st["pinf"] |= pinf[:, t]
        st["ninf"] |= ninf[:, t]
        new = event[:, t] & ~st["ovf"]
        st["ovfneg"] = np.where(new, event_neg[:, t], st["ovfneg"])
        st["ovf"] |= event[:, t]
        st["negz"] &= negzero[:, t]
        st["inexact"] |= inexact[:, t]
        for k in st:
            out[k][:, t] = st[k]

    code = round_exact(u_neg, mag, np.full((B, T), plan.lsb_exp, np.int64), fmt, subnormals=subnormals).code
    zero = np.array([int(v) == 0 for v in u.ravel()], bool).reshape(u.shape) if u.dtype == object else u == 0
    code = np.where(zero, np.where(out["negz"], np.uint64(fmt.sign_mask), np.uint64(0)), code)
    pos = out["pinf"] | (out["ovf"] & ~out["ovfneg"])
    neg = out["ninf"] | (out["ovf"] & out["ovfneg"])
    is_nan = out["nan"] | (pos & neg)
    code = np.where(neg, np.uint64(fmt.required_inf_code(True)), code)
    code = np.where(pos, np.uint64(fmt.required_inf_code()), code)
    code = np.where(is_nan, np.uint64(fmt.required_nan_code()), code)
    flags = out["ovf"].astype(np.uint64) * FLAG_OVERFLOW + out["inexact"].astype(np.uint64) * FLAG_INEXACT
    return {"acc": code.astype(np.uint64), "acc_flags": flags.astype(np.uint64)}
