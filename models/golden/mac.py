"""Golden model of :class:`peforge.spec.MinifloatMacSpec` (family ``mac``), bit exact.

Semantics (the contract shared with the RTL and the testbench).  Per valid step, with
``a[lanes]``, ``b[lanes]`` and ``first``:

1. Decode each lane (``fmt.to_exact``).  ``subnormals=False``: subnormal a/b inputs become
   zero with their sign kept.
2. Product per lane: sign = sa ^ sb, value exactly sig_a*sig_b * 2**(exp_a+exp_b).  NaN if
   either operand is NaN or for inf*0; inf (sign xor) if an operand is inf and the other is
   not zero/NaN.  ``mult="lmul"`` (L-Mul) changes only the magnitude of a product of two
   finite nonzero operands: each operand is normalised first (subnormals too: the value,
   not the encoding, counts) to ``(1 + f) * 2**e`` with ``f`` on the grid 2**-M of its
   format, and the product is exactly ``(1 + fx + fy + 2**-l) * 2**(ex + ey)`` with
   ``m = max(Ma, Mb)`` and ``l = spec.lmul_offset_exp`` (m for m <= 3, 3 for m = 4, else 4).
   Zeros, NaN and inf follow the exact rules.
3. Float accumulator: S = (first ? nothing : acc) + sum of lane products, exact.  NaN if any
   term is NaN, or +inf and -inf both occur among the terms (acc included when first=0);
   else inf of that sign if any term is inf.  If S == 0 exactly the result is -0 when every
   term (acc when included, and every product) is a zero with sign 1, else +0.  Otherwise S
   is rounded once to the acc format, round-to-nearest-even with gradual underflow;
   overflow (|S| >= max + ulp(max)/2) gives inf of S's sign; a nonzero S that rounds to zero
   keeps its sign.  ``subnormals=False``: a rounded subnormal result (0 < |r| < min_normal)
   becomes a zero of its sign.  A NaN result is the canonical code ``acc.nan_code``.
4. Exact accumulator (plain, or carry-segmented with ``segment > 0``: the same values,
   ``spec.latency`` includes its read-out): acc is a two's complement integer of ``spec.exact_width`` bits in units
   of 2**``spec.product_lsb_exp``; acc := (first ? 0 : acc) + sum of finite products,
   wrapping modulo 2**width.  Flags (sticky, cleared by first like acc): nan |= any NaN
   product; pinf |= any +inf product; ninf |= any -inf product; inf/NaN products add 0.
   ``acc_flags`` = {bit0 nan, bit1 +inf, bit2 -inf} exists when a or b has NaN or inf.

5. ``rounding="deferred"``: the exact sum in a window register, rounded on the way out; see
   :mod:`.accumulate`.

The state before the first step is the reset state: acc = +0 (code 0), flags 0.

Outputs are the raw port bits after each step: ``acc`` [batch, steps] (uint64 for ports of at
most 64 bits, else ``dtype=object`` Python ints) and ``acc_flags`` [batch, steps] (uint64).

How it stays exact and fast: lane products are exact int64 (< 2**30).  Their sum per step is
computed for all steps at once in int64 at the row's lowest exponent, falling back to Python
ints for rows whose span is too wide.  The step loop then adds only two terms (acc and the
product sum): exactly in int64 when their span fits, else by replacing a term that lies wholly
below the other's rounding position with a sticky half unit (exact for round-to-nearest),
else with Python ints.  The exact accumulator is a segmented cumulative sum modulo 2**width
(uint64 arithmetic when width <= 64).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from peforge.formats import KIND_FINITE, KIND_INF, KIND_NAN, FloatFormat
from peforge.geometry import mac_geometry
from peforge.spec import MinifloatMacSpec

from .base import first_flags
from .rounding import bit_length, reduce_sticky, round_core

__all__ = [
    "run_mac",
    "mac_port_widths",
    "mac_value",
    "has_flags",
    "FLAG_NAN",
    "FLAG_PINF",
    "FLAG_NINF",
    # the exact lane-sum and float-accumulation stages, shared with the block-dot model
    "Products",
    "Terms",
    "with_msb",
    "sum_general",
    "pair_flags",
    "table_terms",
    "run_float",
]

FLAG_NAN, FLAG_PINF, FLAG_NINF = 1, 2, 4
_FAR = 1 << 40  # sentinel exponent for absent terms


def has_flags(spec: MinifloatMacSpec) -> bool:
    """Whether the PE has the ``acc_flags`` port (exact accumulator whose a or b has NaN/inf,
    or deferred rounding: see :mod:`.accumulate`)."""
    return spec.rounding == "deferred" or (spec.is_exact and any(f.has_nan or f.has_inf for f in (spec.a, spec.b)))


def mac_port_widths(spec: MinifloatMacSpec) -> dict[str, int]:
    """``{"acc": width}`` plus ``"acc_flags"`` (3 bits exact, 2 deferred) when that port exists."""
    out = {"acc": mac_geometry(spec).acc_width}
    if has_flags(spec):
        out["acc_flags"] = 2 if spec.rounding == "deferred" else 3
    return out


def mac_value(spec: MinifloatMacSpec, acc_bits: Any) -> np.ndarray:
    """float64 value of raw ``acc`` port bits (exact accumulator: int * 2**product_lsb_exp)."""
    if not spec.is_exact:
        return spec.acc_format.decode(np.asarray(acc_bits).astype(np.uint64))
    w, e = spec.exact_width, spec.product_lsb_exp
    arr = np.asarray(acc_bits)
    if w <= 53 and arr.dtype.kind in "ui":
        x = arr.astype(np.int64)
        x = np.where(x >= (1 << (w - 1)), x - (1 << w), x)
        return np.ldexp(x.astype(np.float64), e)

    def one(bits: Any) -> float:
        v = int(bits)
        v = v - (1 << w) if v >> (w - 1) else v
        try:
            return v * 2**e if e >= 0 else v / (1 << -e)  # correctly rounded int division
        except OverflowError:
            return float("inf") if v > 0 else float("-inf")

    return np.frompyfunc(one, 1, 1)(arr).astype(np.float64)


# ---- inputs and products ---------------------------------------------------------------------


def _inputs(spec: MinifloatMacSpec, a: Any, b: Any, first: Any) -> tuple[np.ndarray, ...]:
    first = first_flags(first, "steps")
    out = []
    for label, arr in (("a", a), ("b", b)):
        arr = np.asarray(arr)
        if arr.ndim == 2 and spec.lanes == 1:
            arr = arr[..., None]
        want = (*first.shape, spec.lanes)
        if arr.shape != want:
            extra = " (or [batch, steps] when lanes == 1)" if spec.lanes == 1 else ""
            raise ValueError(f"{label} must have shape [batch, steps, lanes] = {want}{extra}, got {arr.shape}")
        out.append(arr)
    return out[0], out[1], first


@functools.lru_cache(maxsize=64)
def _decode_table(fmt: FloatFormat, subnormals: bool) -> tuple[np.ndarray, ...]:
    """(neg, sig, exp, kind) of every code of ``fmt`` (at most 2**16 codes)."""
    sign, sig, exp, kind = fmt.to_exact(fmt.all_codes())
    if not subnormals:
        sig = np.where((kind == KIND_FINITE) & (sig < (1 << fmt.man_bits)), 0, sig)
    return sign.astype(bool), sig, exp, kind


def _decode(fmt: FloatFormat, label: str, codes: np.ndarray, subnormals: bool) -> tuple[np.ndarray, ...]:
    _check_codes(fmt, label, codes)
    idx = codes.astype(np.intp)
    return tuple(np.take(t, idx) for t in _decode_table(fmt, subnormals))


class Products(NamedTuple):
    """Exact lane products ``(-1)**neg * sig * 2**exp`` of a [B, T, L] batch, specials as flags."""

    neg: np.ndarray  # bool [B, T, L]
    sig: np.ndarray  # int64, 0 for zero / inf / NaN products
    exp: np.ndarray  # int64, exponent of sig's LSB
    nan: np.ndarray  # bool
    inf: np.ndarray  # bool


def _products(spec: MinifloatMacSpec, a: np.ndarray, b: np.ndarray) -> Products:
    sa, ma, ea, ka = _decode(spec.a, "a", a, spec.subnormals)
    sb, mb, eb, kb = _decode(spec.b, "b", b, spec.subnormals)
    a_zero = (ka == KIND_FINITE) & (ma == 0)
    b_zero = (kb == KIND_FINITE) & (mb == 0)
    a_inf, b_inf = ka == KIND_INF, kb == KIND_INF
    nan = (ka == KIND_NAN) | (kb == KIND_NAN) | (a_inf & b_zero) | (b_inf & a_zero)
    inf = ~nan & (a_inf | b_inf)
    if spec.mult == "lmul":
        sig, exp = _lmul(spec, ma, ea, mb, eb)
        return Products(sa ^ sb, sig, exp, nan, inf)
    return Products(sa ^ sb, ma * mb, ea + eb, nan, inf)


def _normalise(sig: np.ndarray, exp: np.ndarray, man_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(fraction f * 2**M, exponent e) with value sig * 2**exp = (1 + f) * 2**e (sig > 0)."""
    shift = np.where(sig > 0, man_bits + 1 - bit_length(sig), 0)
    return (sig << shift) - (1 << man_bits), exp - shift + man_bits


def _lmul(
    spec: MinifloatMacSpec, ma: np.ndarray, ea: np.ndarray, mb: np.ndarray, eb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """L-Mul significand (an integer on the grid 2**-m) and its LSB exponent; 0 if a zero."""
    Ma, Mb, F = spec.a.man_bits, spec.b.man_bits, spec.lmul_frac_bits
    fa, xa = _normalise(ma, ea, Ma)
    fb, xb = _normalise(mb, eb, Mb)
    sig = (1 << F) + (fa << (F - Ma)) + (fb << (F - Mb)) + (1 << (F - spec.lmul_offset_exp))
    zero = (ma == 0) | (mb == 0)  # zero, inf or NaN operand: handled as for exact products
    return np.where(zero, 0, sig), np.where(zero, 0, xa + xb - F)


class Terms(NamedTuple):
    """Per [B, T]: the exact sum of the finite lane products and the special-value summary.

    The sum is ``val * 2**lsb`` (``val`` int64 below 2**61, ``msb`` its top bit's exponent or
    -_FAR for 0).  Rows in ``big`` did not fit int64: ``val`` is 0 there and the exact sum is
    ``big_val[i] * 2**lsb`` for the i-th True entry of ``big`` (row-major order).
    """

    val: np.ndarray
    lsb: np.ndarray
    msb: np.ndarray
    big: np.ndarray
    big_val: list[int]
    nan: np.ndarray  # any NaN product
    pinf: np.ndarray  # any +inf product
    ninf: np.ndarray  # any -inf product
    negzero: np.ndarray  # every product is a zero with sign 1


def with_msb(val: np.ndarray, lsb: np.ndarray) -> np.ndarray:
    """Exponent of the top bit of ``val * 2**lsb`` (``-_FAR`` for zero)."""
    return np.where(val != 0, lsb + bit_length(np.abs(val)) - 1, -_FAR)


def sum_general(p: Products) -> Terms:
    """Exact sum of each row's lane products (any exponent spread; Python ints beyond int64)."""
    nan = np.asarray(p.nan.any(axis=-1))
    pinf = np.asarray((p.inf & ~p.neg).any(axis=-1))
    ninf = np.asarray((p.inf & p.neg).any(axis=-1))
    negzero = np.asarray((~p.nan & ~p.inf & (p.sig == 0) & p.neg).all(axis=-1))
    lanes = p.sig.shape[-1]
    if lanes == 1:
        sig, exp = p.sig[..., 0], p.exp[..., 0]
        val = np.where(p.neg[..., 0], -sig, sig)
        return Terms(val, exp, with_msb(val, exp), np.zeros(val.shape, bool), [], nan, pinf, ninf, negzero)
    nz = p.sig != 0
    pmsb = p.exp + bit_length(p.sig) - 1
    hi = np.where(nz, pmsb, -_FAR).max(axis=-1)
    lo = np.where(nz, p.exp, _FAR).min(axis=-1)
    fits = hi - lo + 1 + int(lanes).bit_length() <= 61
    shift = np.where(nz & fits[..., None], p.exp - lo[..., None], 0)
    mag = p.sig << shift
    val = np.where(p.neg, -mag, mag).sum(axis=-1)
    val = np.where(fits, val, 0)
    big = ~fits
    big_val: list[int] = []
    for idx in zip(*np.nonzero(big)):
        base = int(lo[idx])
        s = 0
        for sg, e, ng in zip(p.sig[idx].tolist(), p.exp[idx].tolist(), p.neg[idx].tolist()):
            if sg:
                s += (-sg if ng else sg) << (e - base)
        big_val.append(s)
    lsb = np.where(nz.any(axis=-1), lo, 0)
    return Terms(val, lsb, with_msb(val, lsb), big, big_val, nan, pinf, ninf, negzero)


_NOT_NEGZERO = 8


def pair_flags(p: Products) -> np.ndarray:
    """Each product's special-value summary as one byte (NaN, +inf, -inf, and "not a negative
    zero"), so a sum's summary is the bitwise OR of its products' (:func:`table_terms`)."""
    return (
        FLAG_NAN * p.nan
        + FLAG_PINF * (p.inf & ~p.neg)
        + FLAG_NINF * (p.inf & p.neg)
        + _NOT_NEGZERO * ~(~p.nan & ~p.inf & (p.sig == 0) & p.neg)
    ).astype(np.uint8)


def table_terms(units: np.ndarray, flag_table: np.ndarray, idx: np.ndarray, unit_lsb: int) -> Terms:
    """:class:`Terms` of the exact sums over the last axis of the code pairs ``idx``, read from
    a pair table: ``units`` (each product in units of ``2**unit_lsb``, int64) and its
    :func:`pair_flags` (a sum's flags are the OR of its products')."""
    total = np.take(units, idx).sum(axis=-1)
    flags = np.bitwise_or.reduce(np.take(flag_table, idx), axis=-1)
    tz = bit_length(total & -total) - 1  # strip trailing zeros: tighter spans later
    val = total >> np.maximum(tz, 0)
    lsb = np.where(total != 0, unit_lsb + tz, 0)
    return Terms(
        val,
        lsb,
        with_msb(val, lsb),
        np.zeros(val.shape, bool),
        [],
        (flags & FLAG_NAN) != 0,
        (flags & FLAG_PINF) != 0,
        (flags & FLAG_NINF) != 0,
        (flags & _NOT_NEGZERO) == 0,
    )


@functools.lru_cache(maxsize=32)
def _pair_tables(spec: MinifloatMacSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """Product of every (a, b) code pair in units of 2**product_lsb_exp, and its flags.

    Only when a and b together have at most 16 bits and a lanes-wide sum fits int64.
    """
    if spec.a.bits + spec.b.bits > 16:
        return None
    span = spec.product_max_exp - spec.product_lsb_exp + 1 + int(spec.lanes).bit_length()
    if span > 61:
        return None
    na, nb = spec.a.num_codes, spec.b.num_codes
    a = np.repeat(np.arange(na), nb)
    b = np.tile(np.arange(nb), na)
    p = _products(spec, a, b)
    units = p.sig << np.where(p.sig != 0, p.exp - spec.product_lsb_exp, 0)
    units = np.where(p.neg, -units, units)
    return units, pair_flags(p)


def _check_codes(fmt: FloatFormat, label: str, codes: np.ndarray) -> None:
    if codes.dtype.kind not in "ui":
        raise ValueError(f"{label}: codes of {fmt.name} must be an integer array, got dtype {codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= fmt.num_codes):
        bad = codes[(codes < 0) | (codes >= fmt.num_codes)].flat[0]
        raise ValueError(f"{label}: code {int(bad)!r} does not exist in {fmt.name}: allowed 0..{fmt.num_codes - 1}")


def _terms(spec: MinifloatMacSpec, a: np.ndarray, b: np.ndarray) -> Terms:
    tables = _pair_tables(spec)
    if tables is None:
        return sum_general(_products(spec, a, b))
    _check_codes(spec.a, "a", a)
    _check_codes(spec.b, "b", b)
    units, flag_table = tables
    idx = (a.astype(np.intp) << spec.b.bits) | b.astype(np.intp)
    return table_terms(units, flag_table, idx, spec.product_lsb_exp)


# ---- float accumulator -------------------------------------------------------------------------


def run_float(fmt: FloatFormat, subnormals: bool, pt: Terms, first: np.ndarray) -> dict[str, np.ndarray]:
    """Step loop over time, vectorised over the batch; two exact terms per step, each sum
    rounded to the accumulator format ``fmt`` (``subnormals=False``: subnormal sums flush to zero)."""
    B, T = first.shape
    prec = fmt.man_bits + 1
    # time-major copies so that each step reads contiguous rows
    inc_t = np.ascontiguousarray(~first.T)
    val_t, lsb_t, msb_t = (np.ascontiguousarray(x.T) for x in (pt.val, pt.lsb, pt.msb))
    lo_t = np.where(val_t != 0, lsb_t, _FAR)
    big_t = np.ascontiguousarray(pt.big.T)
    any_big = np.asarray(big_t.any(axis=1))
    big_map: dict[tuple[int, int], int] = {}
    if pt.big_val:
        big_map = dict(zip(zip(*(x.tolist() for x in np.nonzero(pt.big))), pt.big_val))
    nan_t, pinf_t, ninf_t, negzero_t = (np.ascontiguousarray(x.T) for x in (pt.nan, pt.pinf, pt.ninf, pt.negzero))
    special_t = (nan_t | pinf_t | ninf_t).any(axis=1)

    out = np.empty((T, B), dtype=np.uint64)
    # accumulator state (reset: +0); special states have sig 0
    a_neg = np.zeros(B, bool)
    a_sig = np.zeros(B, np.int64)
    a_exp = np.zeros(B, np.int64)
    a_nan = np.zeros(B, bool)
    a_inf = np.zeros(B, bool)
    state_special = False
    nan_code = np.uint64(fmt.required_nan_code())
    pinf_code, ninf_code = np.uint64(fmt.required_inf_code()), np.uint64(fmt.required_inf_code(True))

    for t in range(T):
        inc = inc_t[t]
        pv, pe, p_msb, p_lo = val_t[t], lsb_t[t], msb_t[t], lo_t[t]
        big = big_t[t] if any_big[t] else None

        # exact finite sum of two terms: X = acc (if included, finite, nonzero), Y = products
        xa = inc & (a_sig != 0)
        a_msb = np.where(xa, a_exp + bit_length(a_sig) - 1, -_FAR)
        hi = np.maximum(a_msb, p_msb)
        lo = np.minimum(np.where(xa, a_exp, _FAR), p_lo)
        tier1 = hi - lo <= 60
        if big is not None:
            tier1 &= ~big
        all1 = tier1.all()
        sa = np.where(xa, a_exp - lo, 0)
        sp = np.where(pv != 0, pe - lo, 0)
        if not all1:
            sa = np.where(tier1, sa, 0)
            sp = np.where(tier1, sp, 0)
        va = np.where(xa, a_sig, 0) << sa
        s1 = np.where(a_neg, -va, va) + (pv << sp)
        neg = s1 < 0
        mag = np.abs(s1)
        exp = lo

        if not all1:
            xp = pv != 0
            a_top = a_msb >= p_msb
            pm = np.abs(pv)
            lsb_x = np.where(a_top, a_exp, pe)
            neg_x = np.where(a_top, a_neg, pv < 0)
            neg_y = np.where(a_top, pv < 0, a_neg)
            h_y = np.where(a_top, p_msb, a_msb)
            cut = np.minimum(lsb_x, hi - prec - 2)
            # the smaller term lies wholly below the larger one's rounding position: replace
            # it by a sticky half unit at 2**(cut-1) (exact for round to nearest)
            tier2 = ~tier1 & xa & xp & (h_y < cut)
            if big is not None:
                tier2 &= ~big
            w = np.where(a_top, a_sig, pm) << np.where(tier2, lsb_x - cut, 0)
            mag = np.where(tier2, 2 * w + np.where(neg_x == neg_y, 1, -1), mag)
            exp = np.where(tier2, cut - 1, exp)
            neg = np.where(tier2, neg_x, neg)
            for i in np.nonzero(~tier1 & ~tier2)[0].tolist():  # rare: exact Python ints
                terms = []
                if xa[i]:
                    terms.append((-int(a_sig[i]) if a_neg[i] else int(a_sig[i]), int(a_exp[i])))
                if big is not None and big[i]:
                    terms.append((big_map[(i, t)], int(pe[i])))
                elif xp[i]:
                    terms.append((int(pv[i]), int(pe[i])))
                base = min(e for _, e in terms)
                total = sum(v << (e - base) for v, e in terms)
                m, e = reduce_sticky(abs(total), base, keep=61)
                mag[i], exp[i], neg[i] = m, e, total < 0

        if special_t[t] or state_special:
            pinf = pinf_t[t] | (inc & a_inf & ~a_neg)
            ninf = ninf_t[t] | (inc & a_inf & a_neg)
            nan = nan_t[t] | (inc & a_nan) | (pinf & ninf)
            inf = ~nan & (pinf | ninf)
        else:
            nan = None
        zero = mag == 0
        if zero.any():
            negzero = negzero_t[t] & (~inc | ((a_sig == 0) & a_neg & ~a_nan & ~a_inf))
            neg = np.where(zero, negzero, neg)
            exp = np.where(zero, 0, exp)
        code, r_sig, r_exp, ovf = round_core(neg, mag, exp, fmt, subnormals)
        if nan is None:
            a_neg, a_sig, a_exp, a_inf = neg, r_sig, r_exp, ovf
            state_special = bool(ovf.any())
        else:
            fin = ~nan & ~inf
            code = np.where(nan, nan_code, np.where(inf, np.where(ninf, ninf_code, pinf_code), code))
            a_nan, a_inf = nan, inf | (fin & ovf)
            a_neg = np.where(nan, False, np.where(inf, ninf, neg))
            a_sig = np.where(fin, r_sig, 0)
            a_exp = np.where(fin, r_exp, 0)
            state_special = bool(a_nan.any() or a_inf.any())
        out[t] = code
    return {"acc": np.ascontiguousarray(out.T)}


# ---- exact accumulator ------------------------------------------------------------------------


def _segmented_cumsum(x: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Cumulative sum along steps that restarts at every ``first`` (no modular reduction)."""
    T = first.shape[1]
    cs = np.cumsum(x, axis=1)
    start = np.maximum.accumulate(np.where(first, np.arange(T), -1), axis=1)
    prev = np.take_along_axis(cs, np.clip(start - 1, 0, None), axis=1)
    zero = np.zeros((), dtype=x.dtype) if x.dtype != object else 0
    return cs - np.where(start >= 1, prev, zero)


def _run_exact(spec: MinifloatMacSpec, pt: Terms, first: np.ndarray) -> dict[str, np.ndarray]:
    width, unit = spec.exact_width, spec.product_lsb_exp
    shift = np.where(pt.val != 0, pt.lsb - unit, 0)
    acc: np.ndarray
    if width <= 64 and not pt.big_val:
        # two's complement modulo 2**64, then modulo 2**width (shift < width <= 64)
        terms = pt.val.astype(np.uint64) << shift.astype(np.uint64)
        acc = _segmented_cumsum(terms, first) & np.uint64((1 << width) - 1)
    else:
        vals = pt.val.astype(object)
        if pt.big_val:
            holder = np.empty(len(pt.big_val), dtype=object)
            holder[:] = pt.big_val
            vals[pt.big] = holder
        terms = vals << np.where(pt.big, pt.lsb - unit, shift).astype(object)
        wide = _segmented_cumsum(terms, first) & ((1 << width) - 1)
        acc = wide.astype(np.uint64) if width <= 64 else wide
    out = {"acc": acc}
    if has_flags(spec):
        flags = np.zeros(first.shape, dtype=np.uint64)
        for bit, hit in ((FLAG_NAN, pt.nan), (FLAG_PINF, pt.pinf), (FLAG_NINF, pt.ninf)):
            seen = _segmented_cumsum(hit.astype(np.int64), first) > 0
            flags |= np.where(seen, np.uint64(bit), np.uint64(0))
        out["acc_flags"] = flags
    return out


def run_mac(spec: MinifloatMacSpec, *, a: Any, b: Any, first: Any) -> dict[str, np.ndarray]:
    """Raw port values after each step for a batch of MAC input sequences.

    Parameters
    ----------
    spec : MinifloatMacSpec
        The PE (``mult`` ``exact`` or ``lmul``).
    a, b : integer arrays [batch, steps, lanes] (or [batch, steps] when lanes == 1)
        Operand codes of ``spec.a`` / ``spec.b``.
    first : bool array [batch, steps]
        Start a new accumulation at this step.

    Returns ``{"acc": [batch, steps]}`` plus ``"acc_flags"`` when that port exists
    (see :func:`mac_port_widths`); the state before step 0 is the reset state.
    """
    a, b, first = _inputs(spec, a, b, first)
    terms = _terms(spec, a, b)
    plan = spec.accumulator
    if plan is not None and plan.kind == "deferred":  # a window register rounded on the way out
        from .accumulate import mac_step_units, run_deferred

        return run_deferred(
            plan,
            spec.acc_format,
            spec.subnormals,
            mac_step_units(terms, plan.lsb_exp),
            first,
            terms.nan,
            terms.pinf,
            terms.ninf,
            terms.negzero,
        )
    if spec.is_exact:  # also the carry-segmented register: same values, later by its read-out
        return _run_exact(spec, terms, first)
    return run_float(spec.acc_format, spec.subnormals, terms, first)
