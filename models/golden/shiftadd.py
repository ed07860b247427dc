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
from .base import lane_operand, matmul_operands, run, twos_complement_values, value
from .rounding import round_exact

__all__ = ["run_shiftadd", "matmul_shiftadd", "act_ints", "weight_ints", "scale_exact", "FP32_NAN", "shiftadd_port_widths", "shiftadd_value"]

FP32_NAN = 0x7FC00000
_FP32 = formats.get("fp32")


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
    wide = width > 62 or sums.dtype == object
    dt = object if wide else np.int64
    sums = sums.astype(dt)
    lo, hi, mod = -(1 << (width - 1)), (1 << (width - 1)) - 1, 1 << width
    batch, steps = shape
    acc = np.zeros(batch, dtype=dt)
    acc_out = np.empty(shape, dtype=dt)
    grouped = spec.group is not None
    if grouped:
        cnt = np.zeros(batch, np.int64)
        out = np.zeros(batch, np.uint64)
        out_codes = np.empty(shape, np.uint64)
    for t in range(steps):
        f = first_arr[:, t]
        start = (f | (cnt == 0)) if grouped else f
        acc = np.where(start, 0, acc) + sums[:, t]
        if spec.overflow == "saturate" and spec.acc_bits is not None:
            acc = np.minimum(np.maximum(acc, lo), hi)
        else:
            acc = (acc - lo) % mod + lo
        if not grouped:
            acc_out[:, t] = acc
            continue
        cnt = np.where(start, 1, cnt + 1)
        done = cnt == spec.group
        base = np.where(f, np.uint64(0), out)
        if done.any():
            base[done] = _dequant(spec, base[done], acc[done], scale_arr[done, t])
        out = base
        cnt = np.where(done, 0, cnt)
        out_codes[:, t] = out
    if grouped:
        return {"acc": out_codes}
    if wide:
        bits = np.array([int(v) % mod for v in acc_out.ravel()], dtype=object).reshape(shape)
        return {"acc": bits if width > 64 else bits.astype(np.uint64)}
    return {"acc": (acc_out % mod).astype(np.uint64)}


def shiftadd_port_widths(spec: ShiftAddSpec) -> dict[str, int]:
    return {"acc": spec.out_bits}


def shiftadd_value(spec: ShiftAddSpec, acc_bits: Any) -> np.ndarray:
    """Real values: FP32 ``out`` with ``group``, else ``acc * 2**product_lsb_exp``."""
    if spec.group is not None:
        return _FP32.decode(np.asarray(acc_bits).astype(np.int64))
    return np.ldexp(twos_complement_values(acc_bits, spec.width), spec.product_lsb_exp)


# --- matmul: real x @ w through the PE ------------------------------------------------------------
_CHUNK_ELEMS = 1 << 21  # operand elements per run() call (bounds memory)


def _chains(xq: np.ndarray, wq: np.ndarray, lanes: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Operands ``[n*m, steps, lanes]`` of every output's chain, ``k`` zero-padded."""
    n, k = xq.shape
    m = wq.shape[1]
    pad = steps * lanes - k
    xp = np.pad(xq, ((0, 0), (0, pad))).reshape(n, 1, steps, lanes)
    wp = np.pad(wq, ((0, pad), (0, 0))).T.reshape(1, m, steps, lanes)
    return (np.broadcast_to(xp, (n, m, steps, lanes)).reshape(n * m, steps, lanes),
            np.broadcast_to(wp, (n, m, steps, lanes)).reshape(n * m, steps, lanes))


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
    # zero codes for padding: code 0 is zero in every activation and weight format here
    out = np.empty((n, m), dtype=np.float64)
    rows = max(1, _CHUNK_ELEMS // max(1, m * steps * lanes))
    for r0 in range(0, n, rows):
        a, b = _chains(xq[r0:r0 + rows], q.codes, lanes, steps)
        first = np.zeros(a.shape[:2], dtype=bool)
        first[:, 0] = True
        extra = {}
        if spec.group is not None:
            g = q.group_codes  # [groups, m]
            sc = np.repeat(g.T, spec.group, axis=1)[:, :steps]  # [m, steps]
            extra["scale"] = np.broadcast_to(sc[None], (a.shape[0] // m, m, steps)).reshape(-1, steps)
        acc = run(spec, a=a, b=b, first=first, **extra)["acc"][:, -1]
        out[r0:r0 + rows] = value(spec, acc).reshape(-1, m)
    return out * (sx * q.col_scale)
