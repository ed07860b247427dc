"""Golden model of the shift-add PE (:class:`peforge.spec.ShiftAddSpec`).

Semantics, per valid input (step) with lane codes ``a[i]`` (activation), ``b[i]`` (weight),
``first`` and, with ``group``, a ``scale`` code:

* ``A_i``: the activation as an exact integer in units of ``2**spec.act_lsb_exp``: an
  ``intN``/``uintN`` code's integer, or a float code's exact value / ``2**act.min_exp``
  (NaN and infinity codes read as 0: the fixed-point datapath has no encoding for them);
* ``W_i``: the weight as an integer in units of ``2**spec.weight_lsb_exp`` (PoT: 0 or
  ``+-2**j``; APoT: ``+-(2**j1 + 2**j2)`` with either term possibly absent; INTk: the
  code's integer).  Shifts and adds compute ``A_i * W_i`` exactly, so the model multiplies;
* ``s = sum_i A_i * W_i`` exactly (value ``s * 2**spec.product_lsb_exp``);
* integer accumulator ``acc := (start ? 0 : acc) + s``, where ``start = first`` (no group)
  or ``first`` or "the previous input completed a group"; with a derived width it never
  overflows; with a given ``acc_bits`` it wraps modulo ``2**acc_bits`` or saturates to the
  two's complement range once per input (``spec.overflow``).

Without ``group`` the ``acc`` port shows the integer accumulator's two's complement bits.

With ``group = G`` (per-group dequantisation, MixPE style): a group counter counts inputs
since the last ``first`` or completed group; the input that makes it ``G`` completes the
group.  Then, with ``S`` the integer accumulator after that input and ``sigma`` the value of
that input's ``scale`` code (``fp16``/``bf16``/``e8m0fnu`` exactly, or an integer),
the FP32 output accumulator ``out`` (reset and ``first`` base: +0) becomes::

    base = +0 if first else out
    base                          if base is inf or NaN (sticky)
    NaN (0x7fc00000)              elif sigma is inf or NaN (incl. E8M0 0xff)
    base                          elif S * sigma == 0 (a zero addend leaves base unchanged)
    RNE_fp32(base + S * sigma * 2**product_lsb_exp)   otherwise

one correctly rounded addition (ties to even, gradual underflow, overflow to +-inf; an
exact zero sum is +0, a nonzero sum that rounds to zero keeps its sign).  Inputs that do not
complete a group leave ``out`` unchanged, except that ``first`` resets it to +0.  The
``acc`` port shows ``out``'s FP32 bits; a chain's length should be a multiple of ``G``
(a partial group never reaches ``out``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from peforge import formats
from peforge.formats import KIND_FINITE, FloatFormat, IntFormat

from ...spec import ShiftAddSpec
from . import kernels
from .base import (
    chain_operands,
    int_accumulate,
    lane_operand,
    matmul_operands,
    row_chunks,
    run,
    twos_complement_values,
    value,
)
from .rounding import round_exact

__all__ = [
    "run_shiftadd",
    "matmul_shiftadd",
    "act_ints",
    "weight_ints",
    "scale_exact",
    "FP32_NAN",
    "shiftadd_port_widths",
    "shiftadd_value",
]

FP32_NAN = 0x7FC00000
_FP32 = formats.get_float("fp32")


def act_ints(spec: ShiftAddSpec, codes: Any) -> np.ndarray:
    """Activations (int64) in units of ``2**spec.act_lsb_exp`` (NaN/inf codes give 0)."""
    fmt = spec.act
    if isinstance(fmt, IntFormat):
        return fmt.to_int(np.asarray(codes))
    sign, sig, exp, kind = fmt.to_exact(np.asarray(codes))
    mag = np.where(kind == KIND_FINITE, sig << (exp - fmt.min_exp), 0)
    return np.where(sign == 1, -mag, mag)


def weight_ints(spec: ShiftAddSpec, codes: Any) -> np.ndarray:
    """Weights (int64) in units of ``2**spec.weight_lsb_exp`` (from the format's decode)."""
    fmt = spec.weight
    if isinstance(fmt, IntFormat):
        return fmt.to_int(np.asarray(codes))
    vals = np.ldexp(fmt.decode(np.asarray(codes)), -spec.weight_lsb_exp)  # exact: small integers
    return vals.astype(np.int64)


def scale_exact(spec: ShiftAddSpec, codes: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale codes -> (signed significand int64, exponent int64, finite bool)."""
    fmt = spec.scale
    c = np.asarray(codes)
    if isinstance(fmt, IntFormat):
        return fmt.to_int(c), np.zeros(c.shape, np.int64), np.ones(c.shape, bool)
    assert isinstance(fmt, FloatFormat)
    sign, sig, exp, kind = fmt.to_exact(c)
    return np.where(sign == 1, -sig, sig), exp, kind == KIND_FINITE


def _step_sums(spec: ShiftAddSpec, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    av, wv = act_ints(spec, a), weight_ints(spec, b)
    lo, hi = spec.product_range
    if max(-lo, hi) * spec.lanes < (1 << 62):
        return (av * wv).sum(axis=-1)
    return (av.astype(object) * wv.astype(object)).sum(axis=-1)


def _dequant(spec: ShiftAddSpec, base: np.ndarray, s: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """FP32 codes of the group update (module docstring) for rows with base codes ``base``,
    group sums ``s`` and scale codes ``scale``."""
    out = base.astype(np.uint64).copy()
    o_sign, o_sig, o_exp, o_kind = _FP32.to_exact(base.astype(np.int64))
    z_sig, z_exp, finite = scale_exact(spec, scale)
    z = s.astype(object) * z_sig.astype(object)
    special_base = o_kind != KIND_FINITE
    nan = ~special_base & ~finite
    out[nan] = FP32_NAN
    live = ~special_base & finite & (z != 0)
    if live.any():
        ex = z_exp[live] + spec.product_lsb_exp
        eo = o_exp[live]
        e = np.minimum(ex, eo)
        oval = np.where(o_sign[live] == 1, -o_sig[live], o_sig[live]).astype(object)
        total = [int(o) << int(so) for o, so in zip(oval, eo - e)]
        total = [t + (int(zz) << int(sz)) for t, zz, sz in zip(total, z[live], ex - e)]
        neg = np.array([t < 0 for t in total], dtype=bool)
        mag = np.empty(len(total), dtype=object)
        mag[:] = [abs(t) for t in total]
        out[live] = round_exact(neg, mag, e, _FP32).code
    return out


def run_shiftadd(spec: ShiftAddSpec, *, a: Any, b: Any, first: Any, scale: Any = None) -> dict[str, np.ndarray]:
    """Port ``acc`` bits after every input, shape [batch, steps] (uint64, or Python ints in an
    object array when the integer accumulator is wider than 64 bits).

    ``a``, ``b``: activation and weight codes ``[batch, steps, lanes]`` (``[batch, steps]`` for
    one lane); ``first``: ``[batch, steps]``; ``scale``: scale codes ``[batch, steps]``, required
    with ``spec.group`` (only the codes of group-completing inputs matter).
    """
    a3, b3 = lane_operand(a, spec.lanes, "a"), lane_operand(b, spec.lanes, "b")
    if a3.shape != b3.shape:
        raise ValueError(f"a and b must have the same shape, got {a3.shape} and {b3.shape}")
    shape = a3.shape[:2]
    first_arr = np.asarray(first, dtype=bool)
    if first_arr.shape != shape:
        raise ValueError(f"first must have shape {shape}, got {first_arr.shape}")
    if spec.group is not None:
        if scale is None:
            raise ValueError(f"scale codes are required: {spec.name} dequantises per group of {spec.group}")
        scale_arr = np.asarray(scale)
        if scale_arr.shape != shape:
            raise ValueError(f"scale must have shape {shape}, got {scale_arr.shape}")
    elif scale is not None:
        raise ValueError(f"scale was given but {spec.name} has no group (scale=None)")
    sums = _step_sums(spec, a3, b3)
    width = spec.width
    mod = 1 << width
    start, done = _group_marks(first_arr, spec.group) if spec.group is not None else (first_arr, None)
    acc_out = int_accumulate(sums, start, width, saturate=spec.overflow == "saturate" and spec.acc_bits is not None)
    if done is None:
        if acc_out.dtype == object:
            bits = np.array([int(v) % mod for v in acc_out.ravel()], dtype=object).reshape(shape)
            return {"acc": bits if width > 64 else bits.astype(np.uint64)}
        return {"acc": (acc_out % mod).astype(np.uint64)}
    out = np.zeros(shape[0], np.uint64)
    out_codes = np.empty(shape, np.uint64)
    for t in range(shape[1]):
        base = np.where(first_arr[:, t], np.uint64(0), out)
        d = done[:, t]
        if d.any():
            base[d] = _dequant(spec, base[d], acc_out[d, t], scale_arr[d, t])
        out = base
        out_codes[:, t] = out
    return {"acc": out_codes}


def _group_marks(first: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, done) ``[batch, steps]``: the integer sum restarts with ``first`` or after a
    completed group; ``done`` marks the input that completes a group of ``group`` inputs."""
    start = np.empty(first.shape, bool)
    done = np.empty(first.shape, bool)
    cnt = np.zeros(first.shape[0], np.int64)
    for t in range(first.shape[1]):
        start[:, t] = first[:, t] | (cnt == 0)
        cnt = np.where(start[:, t], 1, cnt + 1)
        done[:, t] = cnt == group
        cnt = np.where(done[:, t], 0, cnt)
    return start, done


def shiftadd_port_widths(spec: ShiftAddSpec) -> dict[str, int]:
    return {"acc": spec.out_bits}


def shiftadd_value(spec: ShiftAddSpec, acc_bits: Any) -> np.ndarray:
    """Real values: FP32 ``out`` with ``group``, else ``acc * 2**product_lsb_exp``."""
    if spec.group is not None:
        return _FP32.decode(np.asarray(acc_bits).astype(np.int64))
    return np.ldexp(twos_complement_values(acc_bits, spec.width), spec.product_lsb_exp)


# --- matmul: real x @ w through the PE ------------------------------------------------------------
def matmul_shiftadd(spec: ShiftAddSpec, x: Any, w: Any) -> np.ndarray:
    """``x @ w`` ``[n, m]`` (float64) computed the way the shift-add PE computes it.

    ``x`` ``[n, k]`` is quantised to ``spec.act`` with one power-of-two scale (RNE, saturating);
    ``w`` ``[k, m]`` to ``spec.weight`` codes with :func:`peforge.quantize.quantize_weights`
    (nearest value): per-column power-of-two scales, or with ``spec.group`` one ``spec.scale``
    group scale per ``group * lanes`` rows of a column (applied by the PE itself in its
    dequantisation step) times a per-column power of two.  Each output is one chain of
    ``ceil(k / lanes)`` inputs (tail padded with zero codes, rounded up to whole groups);
    the result is the PE's final ``acc`` value with the power-of-two scales undone.
    """
    from peforge.quantize import pow2_scale, quantize_weights

    xa, wa = matmul_operands(x, w)
    n, k = xa.shape
    m = wa.shape[1]
    lanes = spec.lanes
    per = lanes * (spec.group or 1)
    steps = max(1, -(-k // per)) * (spec.group or 1)
    sx = float(pow2_scale(np.abs(xa).max() if xa.size else 0.0, spec.act.max))
    xq = spec.act.encode(xa / sx, overflow="saturate")
    if spec.group is None:
        q = quantize_weights(wa, spec.weight)
    else:
        q = quantize_weights(wa, spec.weight, group=per, scale_fmt=spec.scale)
    fast = kernels.chains(spec, xq, q.codes, q.group_codes)  # compiled, bit identical; None: below
    if fast is not None:
        return fast * (sx * q.col_scale)
    # zero codes for padding: code 0 is zero in every activation and weight format here
    out = np.empty((n, m), dtype=np.float64)
    for r0, r1 in row_chunks(n, m * steps * lanes):
        a, b = chain_operands(xq[r0:r1], q.codes, lanes, steps)
        first = np.zeros(a.shape[:2], dtype=bool)
        first[:, 0] = True
        extra = {}
        if spec.group is not None and q.group_codes is not None:
            g = q.group_codes  # [groups, m]
            sc = np.repeat(g.T, spec.group, axis=1)[:, :steps]  # [m, steps]
            extra["scale"] = np.broadcast_to(sc[None], (a.shape[0] // m, m, steps)).reshape(-1, steps)
        acc = run(spec, a=a, b=b, first=first, **extra)["acc"][:, -1]
        out[r0:r1] = value(spec, acc).reshape(-1, m)
    return out * (sx * q.col_scale)
