"""Golden model and vector sets of the zero-point INT MAC (:class:`family7.spec.ZeroPointMacSpec`):
the family's ``golden_*`` parts and its ``vector_sets`` (the regression's stimulus, in the
golden model's terms).  NumPy only, like every golden model: no Amaranth, rtl or sim.

Semantics, per valid step with lane codes ``a[i]``, ``b[i]``: ``s = sum((a[i] - za) *
(b[i] - zb))`` exactly; ``acc := (first ? 0 : acc) + s``, wrapped to ``spec.width`` bits
(two's complement); the ``acc`` port shows its bits (reset state 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from peforge.models.golden.base import (
    chain_operands,
    first_flags,
    int_accumulate,
    lane_operand,
    matmul_operands,
    row_chunks,
    twos_complement_values,
)
from peforge.quantize import pow2_scale
from peforge.vectorset import VectorSet, layout_rows

from .spec import ZeroPointMacSpec

__all__ = ["run_zpmac", "zpmac_port_widths", "zpmac_value", "matmul_zpmac", "zpmac_sets"]


def _values(codes: Any, lanes: int, name: str, code_max: int, zero: int) -> np.ndarray:
    x = lane_operand(codes, lanes, name).astype(np.int64)
    if x.size and (x.min() < 0 or x.max() > code_max):
        raise ValueError(f"{name} codes must be 0..{code_max}, got {x.min()}..{x.max()}")
    return x - zero


def run_zpmac(spec: ZeroPointMacSpec, *, a: Any, b: Any, first: Any) -> dict[str, np.ndarray]:
    """Accumulator port bits after every step, shape [batch, steps] (uint64)."""
    av = _values(a, spec.lanes, "a", spec.a_code_max, int(spec.a_zero or 0))
    bv = _values(b, spec.lanes, "b", spec.b_code_max, int(spec.b_zero or 0))
    start = first_flags(first, "steps")
    if start.shape != av.shape[:2]:
        raise ValueError(f"first must have shape {av.shape[:2]}, got {start.shape}")
    acc = int_accumulate((av * bv).sum(axis=-1), start, spec.width)  # |step sum| < 2**29: int64 exact
    return {"acc": (acc & ((1 << spec.width) - 1)).astype(np.uint64)}


def zpmac_port_widths(spec: ZeroPointMacSpec) -> dict[str, int]:
    return {"acc": spec.width}


def zpmac_value(spec: ZeroPointMacSpec, acc_bits: Any) -> np.ndarray:
    return twos_complement_values(acc_bits, spec.width)


def quantize(v: np.ndarray, code_max: int, zero: int, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Codes ``clip(rint(v / s) + zero, 0, code_max)`` and the power-of-two scales ``s`` (per
    tensor, or per slice along ``axis``): the smallest that keep both ends of ``v`` in the codes'
    range around the zero point (a zero point of 0 clamps negative values to 0)."""
    hi = v.max(axis=axis, initial=0.0)
    lo = -v.min(axis=axis, initial=0.0)
    s = pow2_scale(hi, float(max(code_max - zero, 1)))
    if zero > 0:
        s = np.maximum(s, pow2_scale(lo, float(zero)))
    sk = s if axis is None else np.expand_dims(s, axis)
    return np.clip(np.rint(v / sk) + zero, 0, code_max).astype(np.int64), s


def matmul_zpmac(spec: ZeroPointMacSpec, x: Any, w: Any) -> np.ndarray:
    """``x @ w`` on the PE: ``x`` per tensor and ``w`` per output column quantised with the PE's
    zero points and power-of-two scales, one accumulation chain per output, scales undone."""
    xa, wa = matmul_operands(x, w)
    xq, sx = quantize(xa, spec.a_code_max, int(spec.a_zero or 0), None)
    wq, sw = quantize(wa, spec.b_code_max, int(spec.b_zero or 0), 0)
    n, k = xq.shape
    m = wq.shape[1]
    out = np.empty((n, m), np.float64)
    for r0, r1 in row_chunks(n, m * k):
        # padding lanes hold the zero points: they add (z - z) * (.) = 0
        a, b = chain_operands(xq[r0:r1] - int(spec.a_zero or 0), wq - int(spec.b_zero or 0), spec.lanes)
        a, b = a + int(spec.a_zero or 0), b + int(spec.b_zero or 0)
        first = np.zeros(a.shape[:2], bool)
        first[:, 0] = True
        acc = run_zpmac(spec, a=a, b=b, first=first)["acc"][:, -1]
        out[r0:r1] = zpmac_value(spec, acc).reshape(-1, m)
    return out * (sx * sw)


def zpmac_sets(spec: ZeroPointMacSpec, vectors_n: int, exhaustive: bool, seed: int, rows: int) -> list[VectorSet]:
    """Every code pair on lane 0 (with ``exhaustive``; other lanes random), random chains whose
    codes are 40 % the extremes and the zero points, long chains of the largest products (they
    fill a derived width exactly, and wrap a given one), and random chains with bubbles."""
    rows = layout_rows(rows, spec.lanes)
    rng = np.random.default_rng(seed)
    lanes, amax, bmax = spec.lanes, spec.a_code_max, spec.b_code_max
    edges = {
        "a": np.array([0, 1, amax, int(spec.a_zero or 0)]),
        "b": np.array([0, 1, bmax, int(spec.b_zero or 0)]),
    }

    def codes(port: str, shape: tuple[int, ...]) -> np.ndarray:
        out = rng.integers(0, (amax if port == "a" else bmax) + 1, shape)
        pick = rng.random(shape) < 0.4
        out[pick] = rng.choice(edges[port], size=int(pick.sum()))
        return out

    def chains(batch: int, steps: int) -> np.ndarray:
        first = rng.random((batch, steps)) < rng.uniform(1 / max(steps, 2), 0.5, (batch, 1))
        first[:, 0] = True
        return first

    out: list[VectorSet] = []
    if exhaustive:
        if spec.a.bits + spec.b.bits > 24:
            raise ValueError(f"exhaustive zpmac sweep of {spec.a.name} x {spec.b.name}: allowed up to 2**24 pairs")
        ca, cb = (g.ravel() for g in np.meshgrid(np.arange(amax + 1), np.arange(bmax + 1), indexing="ij"))
        per = -(-ca.size // rows)
        idx = np.arange(per * rows) % ca.size
        a, b = codes("a", (per * rows, lanes)), codes("b", (per * rows, lanes))
        a[:, 0], b[:, 0] = ca[idx], cb[idx]
        first = np.ones(per * rows, bool)
        first[1::2] = False  # every pair both starts a chain and continues one
        shape = (rows, per, lanes)
        out.append(VectorSet("exhaustive_pairs", a.reshape(shape), b.reshape(shape), first.reshape(rows, per)))
    if vectors_n > 0:
        steps = min(4096, max(1, -(-vectors_n // rows)))
        batch = max(1, -(-vectors_n // steps))
        out.append(
            VectorSet(
                "random", codes("a", (batch, steps, lanes)), codes("b", (batch, steps, lanes)), chains(batch, steps)
            )
        )
        lsteps = min(spec.max_count, 2048)
        ends = [(a, b) for a in (0, amax) for b in (0, bmax)]  # the product range's corners
        k = np.arange(min(rows, 8)) % 4
        a = np.broadcast_to(np.array([ends[i][0] for i in k])[:, None, None], (k.size, lsteps, lanes))
        b = np.broadcast_to(np.array([ends[i][1] for i in k])[:, None, None], (k.size, lsteps, lanes))
        first = np.zeros((k.size, lsteps), bool)
        first[:, 0] = True
        out.append(VectorSet("long_extreme", a.copy(), b.copy(), first))
        gsteps = min(512, steps)
        gbatch = max(1, min(rows, vectors_n // 8 // gsteps + 1))
        gaps = np.where(rng.random(gsteps) < 0.1, rng.integers(1, 4, gsteps), 0)
        out.append(
            VectorSet(
                "random_gaps",
                codes("a", (gbatch, gsteps, lanes)),
                codes("b", (gbatch, gsteps, lanes)),
                chains(gbatch, gsteps),
                gaps,
            )
        )
    return out
