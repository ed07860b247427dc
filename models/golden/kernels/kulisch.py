"""Kernels of the exact (Kulisch) accumulator of the ``mac`` family, any width, bit exact.

The register is ``acc := (first ? 0 : acc) + sum of finite products`` in units of
``2**product_lsb_exp``, wrapping modulo ``2**exact_width``; NaN / inf products add 0 (they
only set the flags, which ``matmul`` does not read).  Wrapping is arithmetic modulo
``2**width``, so the final register is the exact sum of every product of the chain, reduced
modulo ``2**width``, whatever the lanes.  Every product is an integer ``sig * 2**shift`` in
those units: exact products ``(sx * sy) << (ex + ey)`` with ``s`` the signed significand and
``e`` its exponent above ``emin - man_bits``; L-Mul products ``(C + fx + fy) << (ex + ey)``
with the golden model's normalised fractions on the grid ``2**-m`` (``C = 2**m + 2**(m-l)``).

* **Integer path** (exact products, ``width <= 64``): ``X = sx << ex`` is the operand in
  units, so the chain is the integer dot product of :func:`.integer.int_chains` (int32 or int64
  loops, with their bounds) reduced modulo ``2**width``.
* **Operand split** (exact products up to 128 bits): ``X = Xlo + (Xhi << c)`` makes the
  register ``Xlo @ W + ((Xhi @ W) << c)``, two integer dot products (e5m2 x e5m2: 79 bits).
* **Split path** (L-Mul, ``|sig| < 2**S`` and ``shift <= H``): two int64 sums vectorised over the
  columns, ``lo`` of the products with ``shift < c`` and ``hi`` of the others shifted by
  ``-c`` (``c = ceil(H / 2)``), exact when ``K * 2**(S + max(c, H - c + 1)) <= 2**62``; the
  register is ``lo + (hi << c)`` modulo ``2**width``.
* **Digit path** (anything else, e.g. 315-bit fp16 x bf16 registers): each product is added
  into 32-bit digits held in int64 (carries deferred: a digit absorbs 2**30 additions), then
  carries propagate and the top is cut at ``width`` bits.

The float64 value of the register (what ``golden.value`` returns) is the correctly rounded
``signed(acc) * 2**product_lsb_exp``: the top 63 bits with a sticky bit convert with one
hardware rounding (63 >= 53 + 2 bits, so the sticky reduction is exact for round to nearest),
then scale by a power of two; specs whose values could be subnormal or overflow float64 stay
on the NumPy reference.
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np

from peforge.formats import KIND_FINITE
from peforge.spec import MinifloatMacSpec

from .. import mac as ref
from ._jit import jit, run_rows
from .integer import int_chains
from .mac import lmul_parts

__all__ = ["mac_exact_chains", "operand_units", "product_parts", "raw_bits"]


@functools.lru_cache(maxsize=64)
def operand_units(fmt, subnormals: bool) -> tuple[np.ndarray, np.ndarray]:
    """(signed significand, exponent above ``emin - man_bits``) of every code, 0 for inf/NaN."""
    neg, sig, exp, kind = ref._decode_table(fmt, subnormals)
    live = (kind == KIND_FINITE) & (sig != 0)
    s = np.where(live, np.where(neg, -sig, sig), 0).astype(np.int64)
    return s, np.where(live, exp - (fmt.emin - fmt.man_bits), 0).astype(np.int64)


def product_parts(spec: MinifloatMacSpec) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], int, int, int]:
    """Per-operand tables ``(s, e, sign)`` of a and b, the L-Mul constant ``C`` (0 for exact
    products), and bounds ``(sig_bits, max_shift)`` with ``|sig| < 2**sig_bits``, ``shift <=
    max_shift``.  Product of codes x, y: exact ``s[x] * s[y] << (e[x] + e[y])``; L-Mul
    ``sign[x] * sign[y] * (C + s[x] + s[y]) << (e[x] + e[y])``."""
    if spec.mult == "exact":
        (sa, ea), (sb, eb) = operand_units(spec.a, spec.subnormals), operand_units(spec.b, spec.subnormals)
        ones = np.zeros(0, np.int64)
        sig_bits = (spec.a.man_bits + 1) + (spec.b.man_bits + 1)
        return (sa, ea, ones), (sb, eb, ones), 0, sig_bits, int(ea.max()) + int(eb.max())
    F = spec.lmul_frac_bits
    (fa, xa, ga), (fb, xb, gb) = lmul_parts(spec.a, spec.subnormals), lmul_parts(spec.b, spec.subnormals)
    fa, fb = fa << (F - spec.a.man_bits), fb << (F - spec.b.man_bits)
    # shift = xa + xb - F - product_lsb_exp, split evenly between the two operands' tables
    base = -F - spec.product_lsb_exp
    ea = np.where(ga != 0, xa + base // 2, 0)
    eb = np.where(gb != 0, xb + base - base // 2, 0)
    C = (1 << F) + (1 << (F - spec.lmul_offset_exp))
    return (fa, ea, ga), (fb, eb, gb), C, F + 2, int(ea.max()) + int(eb.max())


@jit(inline=True)
def _product(x: tuple, w: tuple, c: int, i: int, k: int, j: int) -> tuple[int, int]:
    """(signed significand, shift) of product (i, k, j), ``x = (xs, xe, xg)`` and ``w = (ws,
    we, wg)`` the operands' tables of :func:`product_parts` indexed by code."""
    xs, xe, xg = x
    ws, we, wg = w
    if c > 0:
        return xg[i, k] * wg[k, j] * (c + xs[i, k] + ws[k, j]), xe[i, k] + we[k, j]
    return xs[i, k] * ws[k, j], xe[i, k] + we[k, j]


@jit
def _split(r0: int, r1: int, x: tuple, w: tuple, c: int, cut: int, lo: np.ndarray, hi: np.ndarray) -> None:
    """lo[i, j] / hi[i, j]: sums of the products with shift < cut (shifted by shift) and with
    shift >= cut (shifted by shift - cut); callers ensure neither leaves int64.  Rows
    ``r0..r1`` are summed in place, one row's ``k`` products at a time (its two output rows
    stay in cache)."""
    m = lo.shape[1]
    for i in range(r0, r1):
        lo[i, :] = 0
        hi[i, :] = 0
        for k in range(w[0].shape[0]):
            for j in range(m):
                sig, sh = _product(x, w, c, i, k, j)
                if sh < cut:
                    lo[i, j] += sig << sh
                else:
                    hi[i, j] += sig << (sh - cut)


@jit(inline=True)
def _add_digits(acc: np.ndarray, j: int, v: int, sh: int) -> None:
    """acc[j, :] += v << sh, v a signed integer below 2**62 in magnitude (deferred carries);
    touches digits ``sh // 32`` to ``(sh + 32) // 32 + 1``."""
    for part, off in ((v & 0xFFFFFFFF, sh), (v >> 32, sh + 32)):
        if part != 0:
            d = off >> 5
            p = part << (off & 31)
            acc[j, d] += p & 0xFFFFFFFF
            acc[j, d + 1] += p >> 32


@jit(inline=True)
def _normalise_digits(acc: np.ndarray, width: int) -> None:
    """Propagate carries (the top digit's carry is dropped) and cut every row at ``width`` bits."""
    n_dig = acc.shape[1]
    top = width // 32
    for j in range(acc.shape[0]):
        c = 0
        for d in range(n_dig):
            t = acc[j, d] + c
            acc[j, d] = t & 0xFFFFFFFF
            c = t >> 32
        if top < n_dig:
            acc[j, top] &= (1 << (width - top * 32)) - 1
            for d in range(top + 1, n_dig):
                acc[j, d] = 0


@jit
def _digits(r0: int, r1: int, x: tuple, w: tuple, c: int, width: int, out: np.ndarray) -> None:
    """Registers of rows ``r0..r1`` as ``out[i, j, :]``: 32-bit digits, least significant
    first, of the sum of the products modulo ``2**width``."""
    m = out.shape[1]
    for i in range(r0, r1):
        acc = out[i]
        acc[:] = 0
        for k in range(w[0].shape[0]):
            for j in range(m):
                sig, sh = _product(x, w, c, i, k, j)
                if sig != 0:
                    _add_digits(acc, j, sig, sh)
        _normalise_digits(acc, width)


@jit
def _split_to_digits(lo: np.ndarray, hi: np.ndarray, cut: int, width: int, out: np.ndarray) -> None:
    """Digits of ``lo + (hi << cut)`` modulo ``2**width``."""
    for i in range(lo.shape[0]):
        acc = out[i]
        acc[:] = 0
        for j in range(lo.shape[1]):
            _add_digits(acc, j, lo[i, j], 0)
            _add_digits(acc, j, hi[i, j], cut)
        _normalise_digits(acc, width)


@jit
def _digits_value(r0: int, r1: int, dig: np.ndarray, width: int, lsb: int, out: np.ndarray) -> None:
    """float64 value of ``width``-bit two's complement registers given as digits, times
    ``2**lsb``, correctly rounded (top 63 bits + sticky, one conversion, exact scaling)."""
    n_dig = dig.shape[2]
    m = dig.shape[1]
    mag = np.empty(n_dig, np.int64)
    for i in range(r0, r1):
        for j in range(m):
            neg = (dig[i, j, (width - 1) // 32] >> ((width - 1) % 32)) & 1
            if neg:  # magnitude = 2**width - acc: invert within width bits, add 1
                c = 1
                for d in range(n_dig):
                    bits = min(32, max(0, width - 32 * d))
                    t = ((~dig[i, j, d]) & ((1 << bits) - 1)) + c
                    mag[d] = t & 0xFFFFFFFF
                    c = t >> 32
            else:
                for d in range(n_dig):
                    mag[d] = dig[i, j, d]
            top = -1
            for d in range(n_dig - 1, -1, -1):
                if mag[d] != 0:
                    top = d
                    break
            if top < 0:
                out[i, j] = 0.0
                continue
            # value = sum mag[d] 2**(32 d); keep digits top..top-2 (up to 96 bits) -> 63 bits
            hi = mag[top]
            nbits = 0
            while (hi >> nbits) != 0:
                nbits += 1
            total = nbits + 32 * top  # bit length of the magnitude
            shift = max(0, total - 63)  # bits dropped below the kept 63
            kept = 0
            sticky = 0
            for d in range(top, -1, -1):  # assemble kept bits, OR the rest into sticky
                lo_bit = 32 * d
                dd = mag[d]
                if lo_bit >= shift:
                    kept |= dd << (lo_bit - shift)
                elif lo_bit + 32 > shift:
                    kept |= dd >> (shift - lo_bit)
                    sticky |= dd & ((1 << (shift - lo_bit)) - 1)
                else:
                    sticky |= dd
            if sticky != 0:
                kept |= 1
            f = np.float64(kept) * 2.0 ** (shift + lsb)
            out[i, j] = -f if neg else f


def _value(spec: MinifloatMacSpec, dig: np.ndarray) -> np.ndarray:
    n, m, _ = dig.shape
    out = np.empty((n, m))
    run_rows(_digits_value, n, 0, dig, spec.exact_width, spec.product_lsb_exp, out)
    return out


def raw_bits(dig: np.ndarray) -> np.ndarray:
    """Register bits of digit arrays, for tests: uint64 ``[n, m]`` when they fit, else Python
    ints (object array)."""
    n, m, n_dig = dig.shape
    out = np.empty((n, m), dtype=object)
    for i in range(n):
        for j in range(m):
            out[i, j] = sum(int(dig[i, j, d]) << (32 * d) for d in range(n_dig))
    return out.astype(np.uint64) if all(int(v) < (1 << 64) for v in out.ravel()) else out


def supported(spec: MinifloatMacSpec) -> bool:
    """Whether register values stay normal float64 numbers (else the NumPy reference runs)."""
    return spec.product_lsb_exp >= -1000 and spec.product_lsb_exp + spec.exact_width <= 1000


def _split_fits(sig_bits: int, max_shift: int, cut: int, k: int) -> bool:
    """Whether :func:`_split`'s two sums of ``k`` products stay inside int64."""
    return sig_bits + max(cut, max_shift - cut + 1) + max(k, 1).bit_length() <= 62


def _operand_split(
    spec: MinifloatMacSpec, xs: np.ndarray, xe: np.ndarray, ws: np.ndarray, we: np.ndarray
) -> Optional[tuple[np.ndarray, np.ndarray, int]]:
    """Exact products: ``X = Xlo + (Xhi << c)`` (``Xlo`` the operands below ``2**c`` units,
    ``Xhi`` the others shifted down, exact since they are multiples of ``2**c``), so the
    register is ``X_lo @ W + ((X_hi @ W) << c)``: two integer dot products of
    :func:`.integer.int_chains` (None when an operand or a dot product could leave int64)."""
    bits_x = spec.a.man_bits + 1 + int(xe.max(initial=0))
    bits_w = spec.b.man_bits + 1 + int(we.max(initial=0))
    if bits_x > 62 or bits_w > 62:
        return None
    cut = (bits_x + 1) // 2
    x, w = xs << xe, ws << we
    low = xe < cut
    lo = int_chains(np.where(low, x, 0), w, 1, 64, False)
    hi = int_chains(np.where(low, 0, x >> cut), w, 1, 64, False)
    if lo is None or hi is None:
        return None
    return lo, hi, cut


def mac_exact_chains(spec: MinifloatMacSpec, xp: np.ndarray, wp: np.ndarray, raw: bool = False) -> np.ndarray:
    """Final Kulisch registers of the chains of padded codes ``xp [n, K] @ wp [K, m]``: their
    float64 values (for :func:`supported` specs), or with ``raw`` the register bits (uint64 up
    to 64 bits, else Python ints)."""
    width, lsb = spec.exact_width, spec.product_lsb_exp
    n, k = xp.shape
    m = wp.shape[1]
    (sa, ea, ga), (sb, eb, gb), c, sig_bits, max_shift = product_parts(spec)
    xs, xe, ws, we = sa[xp], ea[xp], sb[wp], eb[wp]
    xg, wg = (ga[xp], gb[wp]) if c else (np.zeros((0, 0), np.int64),) * 2
    if c == 0 and width <= 64:  # then every product, so every operand in units, fits int64
        s = int_chains(xs << xe, ws << we, 1, width, False)
        if s is not None:
            if raw:
                return s.view(np.uint64) & np.uint64((1 << width) - 1)
            return np.ldexp(s.astype(np.float64), lsb)
    n_dig = (max(width, max_shift) + 32) // 32 + 2  # _add_digits touches digit (shift + 32) // 32 + 1
    dig = np.empty((n, m, n_dig), np.int64)
    if c == 0 and width <= 128:
        halves = _operand_split(spec, xs, xe, ws, we)
        if halves is not None:
            _split_to_digits(*halves, width, dig)
            return raw_bits(dig) if raw else _value(spec, dig)
    cut = -(-max_shift // 2)
    if _split_fits(sig_bits, max_shift, cut, k) and width <= 128:
        lo, hi = np.empty((n, m), np.int64), np.empty((n, m), np.int64)
        run_rows(_split, n, n * m * k, (xs, xe, xg), (ws, we, wg), c, cut, lo, hi)
        _split_to_digits(lo, hi, cut, width, dig)
    else:
        run_rows(_digits, n, n * m * k, (xs, xe, xg), (ws, we, wg), c, width, dig)
    return raw_bits(dig) if raw else _value(spec, dig)
