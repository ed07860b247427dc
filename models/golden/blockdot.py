"""Golden model of :class:`peforge.spec.BlockDotSpec` (family ``blockdot``), bit exact.

Semantics (the contract shared with the RTL and the testbench).  One *block step* has
element codes ``a[block]``, ``b[block]``, scale codes ``scale_a``, ``scale_b`` and ``first``:

1. Elements decode exactly: a float element is ``(-1)**s * sig * 2**exp`` (subnormals
   included; E5M2 has +-inf and NaN, E4M3 has NaN); an ``int8`` (MXINT8) element is its two's
   complement integer times 2**-6, with the sign of a zero being + (code 0x00).  Scales decode
   the same way: E8M0 is ``2**(code - 127)`` (0xFF is NaN), E4M3 is signed, may be +-0 and is
   NaN for 0x7F / 0xFF.
2. Element products are exact (sign = xor of the signs).  NaN if an element is NaN, or for
   inf * 0; inf of the xor sign if an element is inf and the other is neither 0 nor NaN.
3. Block sum ``S``: the exact sum of the finite products.  ``S`` is NaN if a product is NaN or
   +inf and -inf products both occur; else inf of that sign if an inf product occurs.  An
   exact zero ``S`` is -0 when every product is a zero with sign 1, else +0.
4. Block value ``V = S * Xa * Xb``, exact.  NaN if ``S`` is NaN, if a scale is NaN, or if
   ``S`` is inf and a scale is zero; inf * nonzero scale is inf with the xor sign.  The sign of
   a zero ``V`` is sign(S) xor sign(Xa) xor sign(Xb) (sign(S) of a zero S as in 3).
5. Accumulate: ``acc := round(V)`` when ``first``, else ``round(acc + V)``, the sum exact and
   rounded **once per block step** to the ``acc`` format: round to nearest, ties to even, with
   gradual underflow; overflow (``|x| >= max + ulp(max)/2``) gives inf; a nonzero sum that
   rounds to zero keeps its sign.  IEEE rules for specials: NaN if ``V`` or the included acc
   is NaN or +inf meets -inf; else inf if either is inf.  An exact zero sum is -0 only when
   ``V`` and the included acc are both zeros with sign 1 (``first``: ``V``'s own zero).  A NaN
   result is the canonical ``acc.nan_code``.  The state before the first block is +0.

With ``rounding="deferred"`` step 5 is replaced: the block values are added exactly into a
window register and the running sum is rounded once, on the way out (the rules are in
:mod:`.accumulate`; ``acc_flags`` reports window overflow and rounding below the window).

So the only rounding is the one per block step in 5; nothing is lost in the products, the
block sum or the scaling.  This is the OCP MX v1.0 reference behaviour for a dot product of
two blocks ("sum exactly, round once") extended to a running FP32 accumulation.

Inputs are per block: ``a``, ``b`` ``[batch, blocks, block]`` codes, ``scale_a``, ``scale_b``
and ``first`` ``[batch, blocks]``; the output ``acc`` ``[batch, blocks]`` (uint64 port bits)
is the accumulator after each block.  The PE itself takes a block in ``block // lanes`` beats
(see :mod:`peforge.rtl.blockdot`); the golden model does not care about beats.

How it stays exact and fast: element pairs of at most 16 bits use a product table in units of
the smallest product; the block sum is int64 whenever ``block`` products fit, else it is
summed per row at the row's lowest exponent (:func:`peforge.models.golden.mac`'s exact lane
sum), falling back to Python ints only for rows that need them.  The scale multiply is an
int64 product (Python ints where it would exceed 2**61), and step 5 reuses the minifloat MAC
model's exact two-term accumulate loop.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from peforge import blockscale
from peforge.formats import KIND_FINITE, KIND_INF, KIND_NAN, FloatFormat, IntFormat
from peforge.geometry import blockdot_geometry
from peforge.spec import BlockDotSpec

from . import kernels
from .base import first_flags, matmul_operands, row_chunks
from .mac import Products, Terms, pair_flags, run_float, sum_general, table_terms, with_msb
from .rounding import bit_length

__all__ = [
    "run_blockdot",
    "blockdot_port_widths",
    "blockdot_value",
    "element_table",
    "block_values",
    "matmul_blockdot",
    "operand_scheme",
]


@functools.lru_cache(maxsize=32)
def element_table(fmt: FloatFormat | IntFormat) -> tuple[np.ndarray, ...]:
    """(neg, sig, exp, kind) of every code of an element or scale format.

    value = (-1)**neg * sig * 2**exp for finite codes; sig is 0 for zeros, inf and NaN.
    """
    codes = np.arange(fmt.num_codes)
    if isinstance(fmt, IntFormat):
        ints = fmt.to_int(codes)
        return (ints < 0, np.abs(ints), np.full(codes.shape, -fmt.frac_bits, np.int64), np.zeros(codes.shape, np.uint8))
    sign, sig, exp, kind = fmt.to_exact(codes)
    return sign.astype(bool), sig, exp, kind


def _codes(fmt: FloatFormat | IntFormat, label: str, arr: Any, shape: tuple[int, ...] | None) -> np.ndarray:
    x = np.asarray(arr)
    if shape is not None and x.shape != shape:
        raise ValueError(f"{label} must have shape {shape}, got {x.shape}")
    if x.dtype.kind not in "ui":
        raise ValueError(f"{label}: codes of {fmt.name} must be an integer array, got dtype {x.dtype}")
    if x.size and (x.min() < 0 or x.max() >= fmt.num_codes):
        bad = x[(x < 0) | (x >= fmt.num_codes)].flat[0]
        raise ValueError(f"{label}: code {int(bad)!r} does not exist in {fmt.name}: allowed 0..{fmt.num_codes - 1}")
    return x.astype(np.intp)


def _products(spec: BlockDotSpec, a: np.ndarray, b: np.ndarray) -> Products:
    sa, ma, ea, ka = (np.take(t, a) for t in element_table(spec.element_a))
    sb, mb, eb, kb = (np.take(t, b) for t in element_table(spec.element_b))
    a_zero = (ka == KIND_FINITE) & (ma == 0)
    b_zero = (kb == KIND_FINITE) & (mb == 0)
    a_inf, b_inf = ka == KIND_INF, kb == KIND_INF
    nan = (ka == KIND_NAN) | (kb == KIND_NAN) | (a_inf & b_zero) | (b_inf & a_zero)
    inf = ~nan & (a_inf | b_inf)
    return Products(sa ^ sb, ma * mb, ea + eb, nan, inf)


@functools.lru_cache(maxsize=32)
def _pair_table(spec: BlockDotSpec) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Signed product of every code pair in units of 2**lsb, flags, and lsb; None when a
    block of such products may not fit int64."""
    fa, fb = spec.element_a, spec.element_b
    if fa.bits + fb.bits > 16:
        return None
    na, nb = fa.num_codes, fb.num_codes
    p = _products(spec, np.repeat(np.arange(na), nb), np.tile(np.arange(nb), na))
    finite = p.sig != 0
    lsb = int(p.exp[finite].min()) if finite.any() else 0
    units = p.sig << np.where(finite, p.exp - lsb, 0)
    if int(units.max()).bit_length() + int(spec.block).bit_length() > 61:
        return None
    units = np.where(p.neg, -units, units)
    return units, pair_flags(p), lsb


def _block_sums(spec: BlockDotSpec, a: np.ndarray, b: np.ndarray) -> Terms:
    """Exact block sums S [batch, blocks] with their special-value summary."""
    table = _pair_table(spec)
    if table is None:
        return sum_general(_products(spec, a, b))
    units, flag_table, unit_lsb = table
    idx = (a << spec.element_b.bits) | b
    return table_terms(units, flag_table, idx, unit_lsb)


def block_values(spec: BlockDotSpec, s: Terms, scale_a: np.ndarray, scale_b: np.ndarray) -> Terms:
    """V = S * Xa * Xb as accumulate terms (rules 3 and 4 of the module docstring)."""
    xs_a, xm_a, xe_a, xk_a = (np.take(t, scale_a) for t in element_table(spec.scale_a))
    xs_b, xm_b, xe_b, xk_b = (np.take(t, scale_b) for t in element_table(spec.scale_b))
    x_nan = (xk_a == KIND_NAN) | (xk_b == KIND_NAN)
    x_neg = xs_a ^ xs_b
    x_sig = np.where(x_nan, 0, xm_a * xm_b)
    x_zero = ~x_nan & (x_sig == 0)
    s_nan = s.nan | (s.pinf & s.ninf)
    s_inf = ~s_nan & (s.pinf | s.ninf)
    nan = s_nan | x_nan | (s_inf & x_zero)
    inf = ~nan & s_inf
    inf_neg = s.ninf ^ x_neg
    special = nan | inf

    big = s.big & ~special & ~x_zero
    big_map = dict(zip(zip(*(x.tolist() for x in np.nonzero(s.big))), s.big_val))
    s_neg = s.val < 0
    if s.big_val:
        for idx, v in big_map.items():
            s_neg[idx] = v < 0
    keep = ~special & ~x_zero & ~s.big
    wide = keep & (bit_length(np.abs(s.val)) + bit_length(x_sig) > 61)
    val = np.where(keep & ~wide, s.val * np.where(keep & ~wide, x_sig, 0), 0)
    val = np.where(x_neg, -val, val)
    lsb = np.where(keep | big, s.lsb + xe_a + xe_b, 0)
    new_big = big | wide
    big_val: list[int] = []
    for idx in zip(*(x.tolist() for x in np.nonzero(new_big))):
        v = big_map[idx] if big[idx] else int(s.val[idx])
        v *= int(x_sig[idx])
        big_val.append(-v if x_neg[idx] else v)
    s_zero = ~s.big & (s.val == 0)
    v_zero = ~special & (x_zero | s_zero)
    negzero = v_zero & (np.where(s_zero, s.negzero, s_neg) ^ x_neg)
    return Terms(val, lsb, with_msb(val, lsb), new_big, big_val, nan, inf & ~inf_neg, inf & inf_neg, negzero)


def run_blockdot(
    spec: BlockDotSpec, *, a: Any, b: Any, scale_a: Any, scale_b: Any, first: Any
) -> dict[str, np.ndarray]:
    """Accumulator port bits after every block step (see the module docstring).

    Parameters
    ----------
    spec : BlockDotSpec
    a, b : integer arrays [batch, blocks, block]
        Element codes of ``spec.element_a`` / ``spec.element_b``.
    scale_a, scale_b : integer arrays [batch, blocks]
        Scale codes of ``spec.scale_a`` / ``spec.scale_b``.
    first : bool array [batch, blocks]
        Start a new accumulation with this block.

    Returns ``{"acc": [batch, blocks] uint64}``.
    """
    first = first_flags(first, "blocks")
    shape = (*first.shape, spec.block)
    a_c = _codes(spec.element_a, "a", a, shape)
    b_c = _codes(spec.element_b, "b", b, shape)
    sa_c = _codes(spec.scale_a, "scale_a", scale_a, first.shape)
    sb_c = _codes(spec.scale_b, "scale_b", scale_b, first.shape)
    v = block_values(spec, _block_sums(spec, a_c, b_c), sa_c, sb_c)
    plan = spec.accumulator
    if plan is not None:  # deferred rounding: a window register rounded on the way out
        from .accumulate import blockdot_step_units, run_deferred

        units, term_ovf, term_neg, inexact = blockdot_step_units(v, plan.lsb_exp, plan.msb_exp)
        return run_deferred(
            plan, spec.acc, True, units, first, v.nan, v.pinf, v.ninf, v.negzero, term_ovf, term_neg, inexact
        )
    return run_float(spec.acc, True, v, first)


def blockdot_port_widths(spec: BlockDotSpec) -> dict[str, int]:
    """``{"acc": bits}`` plus ``"acc_flags": 2`` (overflow, inexact) with deferred rounding."""
    out = {"acc": blockdot_geometry(spec).acc_width}
    if spec.rounding == "deferred":
        out["acc_flags"] = 2
    return out


def blockdot_value(spec: BlockDotSpec, acc_bits: Any) -> np.ndarray:
    """float64 value of raw ``acc`` port bits."""
    return spec.acc.decode(np.asarray(acc_bits).astype(np.uint64))


# ---- real-valued matmul through the PE -------------------------------------------------------


def operand_scheme(
    element: FloatFormat | IntFormat, scale: FloatFormat, block: int, clip: str = "full"
) -> blockscale.BlockScheme:
    """The :mod:`peforge.blockscale` quantiser of one operand: the MX rule for E8M0 scales, the
    two-level (NVFP4-style) rule for float scales (E4M3, UE4M3, UE5M3), any element."""
    return blockscale.make_scheme(element, scale, block, clip=clip)


def _quantize(
    t: np.ndarray, scheme: blockscale.BlockScheme, axis: int, rounding: str = "nearest_even", seed: Any = None
) -> tuple[np.ndarray, np.ndarray, float]:
    ts = blockscale.tensor_scale(t, scheme)
    codes, scales = blockscale.quantize(t, scheme, axis=axis, tensor_scale=ts, rounding=rounding, seed=seed)
    return codes, scales, 1.0 if ts is None else ts


def matmul_blockdot(
    spec: BlockDotSpec, x: Any, w: Any, *, clip: str = "full", rounding: str = "nearest_even", seed: Any = None
) -> np.ndarray:
    """``x @ w`` on the block-dot PE: rows of ``x`` and columns of ``w`` are quantised into
    blocks of ``spec.block`` along ``k`` with the scheme's scales (:func:`operand_scheme`; ``k``
    padded with zeros), every output is one chain of ``k / block`` block steps through the
    golden PE, and the fp32 result is returned as float64 (the per-tensor FP32 scales of
    two-level schemes, which live outside the PE, are multiplied in afterwards).

    ``clip`` (``"full"`` or ``"symmetric"``: INT elements within +-(2^(N-1) - 1)),
    ``rounding`` (``"nearest_even"`` or seeded ``"stochastic"``) and ``seed`` go to
    :func:`peforge.blockscale.quantize` for both operands (``w`` draws from a stream spawned from ``seed``)."""
    xa, wa = matmul_operands(x, w)
    n, k = xa.shape
    m, blk = wa.shape[1], spec.block
    pad = (-k) % blk
    if pad or k == 0:
        pad = pad or blk
        xa = np.pad(xa, ((0, 0), (0, pad)))
        wa = np.pad(wa, ((0, pad), (0, 0)))
    steps = xa.shape[1] // blk
    seed_w = seed if seed is None or isinstance(seed, np.random.Generator) else np.random.SeedSequence(seed).spawn(1)[0]
    xc, xs, tx = _quantize(
        xa, operand_scheme(spec.element_a, spec.scale_a, blk, clip), axis=1, rounding=rounding, seed=seed
    )
    wc, ws, tw = _quantize(
        wa, operand_scheme(spec.element_b, spec.scale_b, blk, clip), axis=0, rounding=rounding, seed=seed_w
    )
    fast = kernels.chains(spec, xc, wc, xs, ws)  # compiled, bit identical; None: reference below
    if fast is not None:
        return fast * (tx * tw)
    xc = xc.reshape(n, 1, steps, blk)
    wc = wc.T.reshape(1, m, steps, blk)
    xs, ws = xs.reshape(n, 1, steps), ws.T.reshape(1, m, steps)
    out = np.empty((n, m), dtype=np.float64)
    for r0, r1 in row_chunks(n, m * steps * blk):
        shape = (r1 - r0, m, steps)
        a = np.broadcast_to(xc[r0:r1], (*shape, blk)).reshape(-1, steps, blk)
        b = np.broadcast_to(wc, (*shape, blk)).reshape(-1, steps, blk)
        sa = np.broadcast_to(xs[r0:r1], shape).reshape(-1, steps)
        sb = np.broadcast_to(ws, shape).reshape(-1, steps)
        first = np.zeros(sa.shape, dtype=bool)
        first[:, 0] = True
        acc = run_blockdot(spec, a=a, b=b, scale_a=sa, scale_b=sb, first=first)["acc"][:, -1]
        out[r0:r1] = blockdot_value(spec, acc).reshape(r1 - r0, m)
    return out * (tx * tw)
