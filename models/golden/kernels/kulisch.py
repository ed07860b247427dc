"""Kernels of the exact (Kulisch) accumulator of the ``mac`` family, any width, bit exact.

The register is ``acc := (first ? 0 : acc) + sum of finite products`` in units of
``2**product_lsb_exp``, wrapping modulo ``2**exact_width``; NaN / inf products add 0 (they
only set the flags, which ``matmul`` does not read).  Wrapping is arithmetic modulo
``2**width``, so the final register is the exact sum of every product of the chain, reduced
modulo ``2**width``, whatever the lanes.

* **Integer path** (exact products, ``width <= 64``): an exact product is ``X * W`` with ``X``
  the operand in units of ``2**(emin - man_bits)`` of its format (subnormals flushed to 0 with
  ``subnormals=False``, inf / NaN as 0), so the chain is the integer dot product of
  :func:`.integer.int_chains` (BLAS or int64, with its bounds) reduced modulo ``2**width``.
* **Digit path** (any width, L-Mul products too): each product ``sig * 2**shift`` (units,
  ``|sig| < 2**31``) is added into 32-bit digits held in int64 (carries are deferred: a digit
  absorbs 2**31 additions), then carries propagate and the top is cut at ``width`` bits.

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

__all__ = ["mac_exact_chains", "operand_units", "pair_units"]

_DIGIT = 32
_MASK = (1 << 32) - 1
_ROWS = 8


@functools.lru_cache(maxsize=64)
def operand_units(fmt, subnormals: bool) -> tuple[np.ndarray, np.ndarray]:
    """(signed significand, exponent above ``emin - man_bits``) of every code, 0 for inf/NaN."""
    neg, sig, exp, kind = ref._decode_table(fmt, subnormals)
    live = (kind == KIND_FINITE) & (sig != 0)
    s = np.where(live, np.where(neg, -sig, sig), 0).astype(np.int64)
    return s, np.where(live, exp - (fmt.emin - fmt.man_bits), 0).astype(np.int64)


@functools.lru_cache(maxsize=16)
def pair_units(spec: MinifloatMacSpec) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(signed significand, shift above ``product_lsb_exp``) of the golden model's product of
    every code pair (``a * nb + b``; 0 for inf / NaN), or None above 16 code bits."""
    fa, fb = spec.a, spec.b
    if fa.bits + fb.bits > 16:  # type: ignore[union-attr]
        return None
    na, nb = fa.num_codes, fb.num_codes  # type: ignore[union-attr]
    p = ref._products(spec, np.repeat(np.arange(na), nb), np.tile(np.arange(nb), na))
    live = ~p.nan & ~p.inf & (p.sig != 0)
    s = np.where(live, np.where(p.neg, -p.sig, p.sig), 0).astype(np.int64)
    return s, np.where(live, p.exp - spec.product_lsb_exp, 0).astype(np.int64)


@jit
def _digits(r0: int, r1: int, xs: np.ndarray, xe: np.ndarray, ws: np.ndarray, we: np.ndarray,
            xc: np.ndarray, wc: np.ndarray, ts: np.ndarray, te: np.ndarray, nb: int,
            width: int, out: np.ndarray) -> None:
    """Registers of rows ``r0..r1`` as ``out[i, j, :]`` 32-bit digits (least significant
    first) of the sum modulo ``2**width``.  Products: ``xs[i,k] * ws[k,j] << (xe + we)``, or
    the pair table ``ts/te[xc * nb + wc]`` when ``ts`` is not empty."""
    n_dig = out.shape[2]
    m = out.shape[1]
    use_tab = ts.shape[0] > 0
    k_len = max(wc.shape[0], ws.shape[0])
    for i in range(r0, r1):
        acc = out[i]
        acc[:] = 0
        for k in range(k_len):
            for j in range(m):
                if use_tab:
                    idx = xc[i, k] * nb + wc[k, j]
                    sig = ts[idx]
                    sh = te[idx]
                else:
                    sig = xs[i, k] * ws[k, j]
                    sh = xe[i, k] + we[k, j]
                if sig != 0:
                    v = sig << (sh & 31)
                    d = sh >> 5
                    acc[j, d] += v & 0xFFFFFFFF
                    acc[j, d + 1] += v >> 32
        for j in range(m):  # carries, then the cut at `width` bits
            c = 0
            for d in range(n_dig):
                t = acc[j, d] + c
                acc[j, d] = t & 0xFFFFFFFF
                c = t >> 32
            top = width // 32
            if top < n_dig:
                acc[j, top] &= (1 << (width - top * 32)) - 1
                for d in range(top + 1, n_dig):
                    acc[j, d] = 0


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
            total = nbits + 32 * top            # bit length of the magnitude
            shift = max(0, total - 63)          # bits dropped below the kept 63
            kept = 0
            sticky = 0
            for d in range(top, -1, -1):        # assemble kept bits, OR the rest into sticky
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
    """Register bits (Python ints, object array ``[n, m]``) of digit arrays, for tests."""
    n, m, n_dig = dig.shape
    out = np.empty((n, m), dtype=object)
    for i in range(n):
        for j in range(m):
            out[i, j] = sum(int(dig[i, j, d]) << (32 * d) for d in range(n_dig))
    return out


def mac_exact_chains(spec: MinifloatMacSpec, xp: np.ndarray, wp: np.ndarray,
                     raw: bool = False) -> Optional[np.ndarray]:
    """Final Kulisch registers of the chains of padded codes ``xp [n, K] @ wp [K, m]``: their
    float64 values, or with ``raw`` the register bits (uint64 up to 64 bits, else Python ints);
    None when outside the kernel's conditions."""
    width, lsb = spec.exact_width, spec.product_lsb_exp
    top = spec.product_max_exp + width  # generous bound on |value| exponents
    if not raw and (lsb < -1000 or top > 1000):
        return None
    n, k = xp.shape
    m = wp.shape[1]
    if spec.mult == "exact":
        xs, xe = (t[xp] for t in operand_units(spec.a, spec.subnormals))
        ws, we = (t[wp] for t in operand_units(spec.b, spec.subnormals))
        if width <= 64:  # then every product, so every operand in units, fits int64
            s = int_chains(xs << xe, ws << we, 1, width, False)
            if s is not None:
                if raw:
                    return s.view(np.uint64) & np.uint64((1 << width) - 1)
                return np.ldexp(s.astype(np.float64), lsb)
        xc = wc = np.zeros((0, 0), np.int64)
        ts = te = np.zeros(0, np.int64)
        nb = 0
    else:
        tab = pair_units(spec)
        if tab is None:
            return None
        ts, te = tab
        xc, wc, nb = xp, wp, spec.b.num_codes  # type: ignore[union-attr]
        xs = xe = ws = we = np.zeros((0, 0), np.int64)
    n_dig = width // _DIGIT + 2
    dig = np.empty((n, m, n_dig), np.int64)
    run_rows(_digits, n, n * m * k, xs, xe, ws, we, xc, wc, ts, te, nb, width, dig)
    if raw:
        bits = raw_bits(dig)
        return bits.astype(np.uint64) if width <= 64 else bits
    return _value(spec, dig)
