"""Kernel of the shift-add PE (``shiftadd``: PoT / APoT / INTk weights), bit exact.

Shifts and adds form every product exactly, so the integer accumulator is the integer chain of
:func:`.integer.int_chains` on the golden model's activation and weight integers (units
``2**act_lsb_exp`` and ``2**weight_lsb_exp``).

With ``group = G`` every group of ``G`` inputs restarts the integer accumulator, and its final
value ``S`` (wrapped or clamped per input like any chain) is dequantised into the FP32 output:
``out := RNE_fp32(out + S * sigma * 2**product_lsb_exp)`` with the golden model's special
rules (an inf / NaN ``out`` is sticky; a NaN or inf ``sigma`` gives NaN; a zero addend leaves
``out`` unchanged, -0 included).  The kernel computes ``z = S * sigma`` in float64, exact when
``|S| * |sig(sigma)| < 2**53`` (checked from bounds, else the NumPy reference runs), and adds
it with :mod:`.floatacc`'s round-to-odd addition, whose float32 conversion is one correct
rounding of the exact sum.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from peforge.spec import ShiftAddSpec

from .. import shiftadd as ref
from ._common import by_rows, canonical_nan, pad_k, pad_rows
from ._jit import jit
from .floatacc import _add_odd
from .integer import int_chains

__all__ = ["shiftadd_chains"]


@jit
def _dequant(out: np.ndarray, s: np.ndarray, z_scale: np.ndarray, z_finite: np.ndarray) -> None:
    """One group's dequantisation of every chain: ``out`` holds FP32 values as float64."""
    n, m = out.shape
    for i in range(n):
        for j in range(m):
            base = out[i, j]
            z = np.float64(s[i, j]) * z_scale[j]
            new: float = np.float64(np.float32(_add_odd(base, z)))
            new = base if z == 0.0 else new
            new = new if z_finite[j] else np.nan
            out[i, j] = new if abs(base) <= 3.5e38 else base


def shiftadd_chains(
    spec: ShiftAddSpec, xq: np.ndarray, wcodes: np.ndarray, group_codes: Optional[np.ndarray]
) -> Optional[np.ndarray]:
    """Final ``acc`` values (float64 ``[n, m]``, scales not undone) of the shift-add PE's chains
    of activation codes ``xq [n, k]`` and weight codes ``wcodes [k, m]`` (with ``group``, the
    group scale codes ``group_codes [groups, m]``); None when outside the kernel's conditions."""
    n, k = xq.shape
    m = wcodes.shape[1]
    lanes, group = spec.lanes, spec.group
    saturate = spec.overflow == "saturate" and spec.acc_bits is not None
    per = lanes * (group or 1)
    groups = max(1, -(-k // per))
    K = groups * per
    w = ref.weight_ints(spec, pad_k(xq[:0], wcodes, K)[1])
    if group is None:
        s = by_rows(
            n,
            K,
            m,
            lambda r0, r1: int_chains(ref.act_ints(spec, pad_rows(xq[r0:r1], K)), w, lanes, spec.width, saturate),
            np.int64,
        )
        return None if s is None else np.ldexp(s.astype(np.float64), spec.product_lsb_exp)
    assert group_codes is not None
    sig, exp, finite = ref.scale_exact(spec, np.asarray(group_codes))  # [groups, m]
    amax = max(abs(v) for v in spec.act_range)
    bmax = int(np.abs(w).max()) if w.size else 0
    s_bound = min(per * amax * bmax, 1 << (spec.width - 1))
    smax = int(np.abs(sig).max()) if sig.size else 0
    if s_bound * smax >= (1 << 53) or not (
        -1000 < spec.product_lsb_exp + int(exp.min()) and spec.product_lsb_exp + int(exp.max()) + 64 < 1000
    ):
        return None
    z_scale = np.ldexp(np.where(finite, sig, 0).astype(np.float64), exp + spec.product_lsb_exp)

    def rows(r0: int, r1: int) -> Optional[np.ndarray]:
        a = ref.act_ints(spec, pad_rows(xq[r0:r1], K))
        out = np.zeros((r1 - r0, m))
        for g in range(groups):
            cut = slice(g * per, (g + 1) * per)
            s = int_chains(a[:, cut], w[cut], lanes, spec.width, saturate)
            if s is None:
                return None
            _dequant(out, s, np.ascontiguousarray(z_scale[g]), np.ascontiguousarray(finite[g]))
        return canonical_nan(out)

    return by_rows(n, K, m, rows)
