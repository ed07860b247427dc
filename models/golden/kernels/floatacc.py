"""Compiled float-accumulator chains (``mac`` with a float ``acc``, ``blockdot``), bit exact.

Every output ``(i, j)`` is one chain ``acc := round(acc + V_t)`` over steps ``t``, where ``V_t``
is the exact sum of the step's lane products (times the block scales for ``blockdot``).  The
kernels compute it with IEEE float64 arithmetic vectorised over the output columns ``j``; this
equals the golden model's integer arithmetic bit for bit under these conditions, which the
callers check before dispatching (:func:`float_path_ok`):

1. **Exact products**: operand values and products are float64 numbers (at most 53
   significant bits, exponents inside float64's normal range).
2. **Exact step sums**: ``V_t`` is accumulated in float64 starting from ``-0.0``.  When every
   product is a multiple of ``2**product_lsb_exp`` and ``lanes`` of them stay below
   ``2**(product_lsb_exp + 53)``, every partial sum is exact in any order (*static*).  Otherwise
   (e.g. e5m2 x e5m2: 64-bit product span) the kernel runs TwoSum on every partial sum and
   flags the chain when one is inexact; the caller recomputes flagged chains with the NumPy
   reference (*dynamic*), so a flagged chain never yields a different result.
3. **One rounding per step**: ``s = acc + V`` in float64 is made *round-to-odd* (TwoSum gives
   the exact error; an inexact ``s`` with an even last bit moves one ulp toward the exact sum),
   then rounded to nearest even into the accumulator format.  Round-to-odd at 53 bits followed
   by round-to-nearest at ``p <= 51`` bits (accumulators have ``p <= 24``) equals a single
   rounding of the exact sum, subnormal results included (the accumulator's smallest
   exponent is far above float64's).  FP32 uses the hardware float64 -> float32 conversion;
   other formats (bf16, fp16, eXmY) scale by the power of two of their ulp, ``rint`` (ties to
   even) and scale back; ``|r| > max`` becomes inf, which is exactly "overflow at
   ``max + ulp(max)/2``".
4. **IEEE specials are the golden rules**: ``V`` starts at ``-0.0`` and ``acc`` at ``-0.0`` for
   ``first``, so an exact zero is ``-0`` only when every term is ``-0`` (x + -0 = x for every
   x); NaN and +inf + -inf give NaN; inf * 0 is NaN; a nonzero sum that rounds to zero keeps
   its sign; zero signs of products and scale products are the xor of the signs.
   ``subnormals=False`` flushes subnormal operands (decode tables) and subnormal rounded
   results (``|r| < min_normal`` -> zero of its sign).

**Lane-1 FP32 fast path** (:func:`mac_f32_l1`): when an ``a x b`` product is exact in float32
(``(Ma + 1) + (Mb + 1) <= 24`` bits, product exponents within float32's range, e.g.
e4m3fn x e4m3fn) and ``acc`` is fp32, ``round(acc + p)`` *is* the float32 addition
``acc + x * w`` (the multiply is exact, the add rounds once, ties to even, gradual underflow,
overflow to inf), so the chain is a float32 ``axpy`` over the output row.
"""

from __future__ import annotations

import numpy as np

from ._jit import bits_f64, f64_bits, jit

__all__ = ["acc_params", "float_chains", "mac_f32_l1", "float_path_ok"]

_EXP_MASK = 0x7FF0000000000000
_SIGN = -0x8000000000000000  # int64 with only the sign bit
_INV_K = 0x7FE0000000000000  # bits of 2**-e from the bits of 2**e: 2046 << 52 minus the field


def acc_params(fmt, subnormals: bool) -> tuple:
    """``(native32, two_m, m2, lo_ulp, inv_lo, maxv, min_norm, ftz)`` of an ieee acc format."""
    native32 = (fmt.exp_bits, fmt.man_bits, fmt.bias, fmt.special) == (8, 23, 127, "ieee")
    M = fmt.man_bits
    return (
        native32,
        float(2.0**M),
        float(2.0**-M),
        float(2.0**fmt.min_exp),
        float(2.0**-fmt.min_exp),
        float(fmt.max),
        float(fmt.min_normal),
        not subnormals,
    )


def float_path_ok(fmt, lsb: int, max_exp: int) -> bool:
    """Whether an accumulator format and terms in ``[2**lsb, 2**(max_exp+1))`` stay inside
    float64's normal range with room for the round-to-odd argument (condition 1 and 3)."""
    return (
        fmt.special == "ieee"
        and fmt.man_bits <= 49
        and fmt.min_exp >= -1000
        and fmt.emax <= 1000
        and lsb >= -1000
        and max_exp <= 1000
    )


@jit(inline=True)
def _add_odd(a: float, v: float) -> float:
    """``a + v`` rounded to odd (exact sums unchanged); TwoSum gives the exact error.

    Branch-free so that the loops calling it vectorise: an inexact sum (error nonzero, not
    NaN) with an even last bit moves one ulp toward the exact value."""
    s = a + v
    bb = s - a
    err = (a - (s - bb)) + (v - bb)
    sb = f64_bits(s)
    move = ((err > 0.0) | (err < 0.0)) & ((sb & 1) == 0)
    step = 2 * np.int64((err > 0.0) == (s > 0.0)) - 1
    return bits_f64(sb + np.int64(move) * step)


@jit(inline=True)
def _round_fmt(s: float, two_m: float, m2: float, lo_ulp: float, inv_lo: float, maxv: float) -> float:
    """Round-to-nearest-even of float64 ``s`` into a format: ulp = max(2**(e-M), 2**min_exp);
    NaN and inf pass through; ``|r| > max`` is inf (overflow at max + ulp(max)/2)."""
    a = abs(s)
    e_bits = f64_bits(a) & _EXP_MASK
    ulp = max(bits_f64(e_bits) * m2, lo_ulp)
    inv = min(bits_f64(_INV_K - e_bits) * two_m, inv_lo)
    r = np.rint(a * inv) * ulp
    r = np.inf if r > maxv else r
    r = bits_f64(f64_bits(r) | (f64_bits(s) & _SIGN))
    return r if a <= 1.7e308 else s


@jit(inline=True)
def _update(
    acc: np.ndarray,
    v: np.ndarray,
    r: int,
    native32: bool,
    two_m: float,
    m2: float,
    lo_ulp: float,
    inv_lo: float,
    maxv: float,
    min_norm: float,
    ftz: bool,
) -> None:
    """acc[r, j] := round(acc[r, j] + v[r, j]) for a whole row (condition 3 of the module
    docstring).  Rows are indexed, not sliced: LLVM vectorises 2-D indexing far better."""
    m = acc.shape[1]
    if native32:
        for j in range(m):
            acc[r, j] = np.float64(np.float32(_add_odd(acc[r, j], v[r, j])))
    else:
        for j in range(m):
            acc[r, j] = _round_fmt(_add_odd(acc[r, j], v[r, j]), two_m, m2, lo_ulp, inv_lo, maxv)
    if ftz:
        for j in range(m):
            x = acc[r, j]
            acc[r, j] = x * 0.0 if abs(x) < min_norm else x


_ROWS = 8  # output rows per block: each weight row is loaded once per block, from L1 after the first


@jit(inline=True)
def _lane_sum(
    v: np.ndarray,
    r: int,
    xv: np.ndarray,
    wv: np.ndarray,
    xf: np.ndarray,
    wf: np.ndarray,
    lmul_c: float,
    i: int,
    k: int,
    check: bool,
    bad: np.ndarray,
) -> None:
    """v[r, j] += product(i, k, j) for every j; with ``check`` flag inexact partial sums."""
    m = v.shape[1]
    xk = xv[i, k]
    if lmul_c > 0.0:
        xc = lmul_c + xf[i, k]
        if check:
            for j in range(m):
                p = (xk * wv[k, j]) * (xc + wf[k, j])
                s = v[r, j] + p
                bb = s - v[r, j]
                err = (v[r, j] - (s - bb)) + (p - bb)
                if err > 0.0 or err < 0.0:
                    bad[i, j] = 1
                v[r, j] = s
        else:
            for j in range(m):
                v[r, j] += (xk * wv[k, j]) * (xc + wf[k, j])
    else:
        if check:
            for j in range(m):
                p = xk * wv[k, j]
                s = v[r, j] + p
                bb = s - v[r, j]
                err = (v[r, j] - (s - bb)) + (p - bb)
                if err > 0.0 or err < 0.0:
                    bad[i, j] = 1
                v[r, j] = s
        else:
            for j in range(m):
                v[r, j] += xk * wv[k, j]


@jit
def float_chains(
    r0: int,
    r1: int,
    xv: np.ndarray,
    wv: np.ndarray,
    xf: np.ndarray,
    wf: np.ndarray,
    lmul_c: float,
    sa: np.ndarray,
    sb: np.ndarray,
    lanes: int,
    check: bool,
    native32: bool,
    two_m: float,
    m2: float,
    lo_ulp: float,
    inv_lo: float,
    maxv: float,
    min_norm: float,
    ftz: bool,
    out: np.ndarray,
    bad: np.ndarray,
) -> None:
    """Final accumulator values of the chains of rows ``r0..r1`` into ``out`` ``[n, m]``.

    Products are ``xv[i, k] * wv[k, j]`` (float64 operand values), or with ``lmul_c > 0`` the
    L-Mul product ``(xv * wv) * ((lmul_c + xf) + wf)`` of operands given as signed powers of
    two ``xv``, ``wv`` and fractions ``xf``, ``wf`` (see :func:`.mac.lmul_operand`).  Step
    ``t`` sums ``k = t*lanes .. t*lanes + lanes - 1``; ``sa [n, T]`` / ``sb [T, m]`` (when not
    empty) scale each step sum (block scales).  ``check``: TwoSum every partial sum and set
    ``bad[i, j]`` where one was inexact (condition 2, dynamic)."""
    use_scale = sa.shape[0] > 0
    m = out.shape[1]
    steps = wv.shape[0] // lanes
    acc = np.empty((_ROWS, m))
    v = np.empty((_ROWS, m))
    for i0 in range(r0, r1, _ROWS):
        rows = min(_ROWS, r1 - i0)
        acc[:] = -0.0
        for t in range(steps):
            if lanes == 1 and not use_scale:  # one exact product per step: no lane sum
                for r in range(rows):
                    xk = xv[i0 + r, t]
                    if lmul_c > 0.0:
                        xc = lmul_c + xf[i0 + r, t]
                        for j in range(m):
                            v[r, j] = (xk * wv[t, j]) * (xc + wf[t, j])
                    else:
                        for j in range(m):
                            v[r, j] = xk * wv[t, j]
            else:
                v[:] = -0.0
                for ln in range(lanes):
                    k = t * lanes + ln
                    for r in range(rows):
                        _lane_sum(v, r, xv, wv, xf, wf, lmul_c, i0 + r, k, check, bad)
                if use_scale:
                    for r in range(rows):
                        st = sa[i0 + r, t]
                        for j in range(m):
                            v[r, j] = v[r, j] * (st * sb[t, j])
            for r in range(rows):
                _update(acc, v, r, native32, two_m, m2, lo_ulp, inv_lo, maxv, min_norm, ftz)
        for r in range(rows):
            for j in range(m):
                out[i0 + r, j] = acc[r, j]


@jit
def mac_f32_l1(r0: int, r1: int, x32: np.ndarray, w32: np.ndarray, ftz: bool, min_norm: float, out: np.ndarray) -> None:
    """Lane-1 FP32 chains whose products are exact in float32: ``acc += x * w`` in float32."""
    m = out.shape[1]
    k_len = w32.shape[0]
    acc = np.empty((_ROWS, m), np.float32)
    lim = np.float32(min_norm)
    for i0 in range(r0, r1, _ROWS):
        rows = min(_ROWS, r1 - i0)
        acc[:] = np.float32(-0.0)
        for k in range(k_len):
            for r in range(rows):
                xk = x32[i0 + r, k]
                for j in range(m):
                    acc[r, j] = acc[r, j] + xk * w32[k, j]
                if ftz:
                    for j in range(m):
                        y = acc[r, j]
                        acc[r, j] = y * np.float32(0.0) if abs(y) < lim else y
        for r in range(rows):
            for j in range(m):
                out[i0 + r, j] = acc[r, j]
