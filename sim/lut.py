"""Vector sets of the LUT PE (:class:`~peforge.spec.LutSpec`): its ``vector_sets`` part.

Sets are written in the golden model's terms (activations ``[..., group]``, weight codes
``[..., lanes, group]``); the shared testbench packs them as the manifest's lane packing says
and spaces the inputs by the manifest's ``initiation_interval`` (``planes`` cycles).

Sets: ``table_entries`` (every weight code for every table entry: for every mask m and every
pair of codes (c, c2), the weight vector ``w_j = c if m_j else c2``, so every plane selects every
entry; single steps and two-step chains), ``act_codes`` (every activation code in every
position), ``extremes`` (long chains of the most negative or largest activations and weights:
the accumulator's top bits), ``random`` (long random dot products, 30% extreme
operands) and ``random_gaps`` (extra bubbles).
"""

from __future__ import annotations

import numpy as np

from ..formats import FloatFormat
from ..spec import LutSpec
from .vectors import VectorSet, random_layout

__all__ = ["lut_sets", "table_entries_set", "act_codes_set", "extreme_set", "random_set"]


# --- vector sets -----------------------------------------------------------------------------------


def _act_edges(spec: LutSpec) -> np.ndarray:
    """Most negative, largest, zero, one and minus one activation codes."""
    act = spec.act
    if isinstance(act, FloatFormat):
        one = int(act.encode(np.array([1.0]))[0])
        return np.array([act.max_code | act.sign_mask, act.max_code, 0, one, one | act.sign_mask, 1], np.int64)
    ints = [act.min_int, act.max_int, 0, 1] + ([-1] if act.signed else [])
    return act.from_int(np.array(ints)).astype(np.int64)


def _weight_edges(spec: LutSpec) -> np.ndarray:
    if spec.ternary:
        return np.array([0, 1, 3, 2], np.int64)
    k = spec.weight_code_bits
    return np.array([1 << (k - 1), (1 << (k - 1)) - 1, 0, (1 << k) - 1], np.int64)


def _acts(spec: LutSpec, shape: tuple[int, ...], rng: np.random.Generator, p_edge: float = 0.3) -> np.ndarray:
    codes = rng.integers(0, spec.act.num_codes, shape + (spec.group,), dtype=np.int64)
    hit = rng.random(codes.shape) < p_edge
    codes[hit] = rng.choice(_act_edges(spec), size=int(hit.sum()))
    return codes


def _weights(spec: LutSpec, shape: tuple[int, ...], rng: np.random.Generator, p_edge: float = 0.3) -> np.ndarray:
    codes = rng.integers(0, 1 << spec.weight_code_bits, shape + (spec.lanes, spec.group), dtype=np.int64)
    hit = rng.random(codes.shape) < p_edge
    codes[hit] = rng.choice(_weight_edges(spec), size=int(hit.sum()))
    return codes


def _first(rng: np.random.Generator, batch: int, steps: int) -> np.ndarray:
    p = np.exp(rng.uniform(np.log(1.0 / max(steps, 2)), np.log(0.5), size=(batch, 1)))
    first = rng.random((batch, steps)) < p
    first[:, 0] = True
    first[0, 1:] = False  # row 0: one long dot product
    return first


def _gaps(steps: int, rng: np.random.Generator, p: float = 0.1) -> np.ndarray:
    """Extra bubbles (1..3 cycles) before about ``p`` of the steps, beyond the PE's input interval."""
    return np.where(rng.random(steps) < p, rng.integers(1, 4, steps), 0)


def _rows_of(n: int, rows: int) -> tuple[int, int]:
    per = -(-n // rows)
    return rows, per


def table_entries_set(spec: LutSpec, rows: int, seed: int = 0) -> VectorSet:
    """Every weight code for every table entry (see module docstring)."""
    rng = np.random.default_rng(seed)
    g, nc = spec.group, 1 << spec.weight_code_bits
    m, c, c2 = np.meshgrid(np.arange(1 << g), np.arange(nc), np.arange(nc), indexing="ij")
    bits = (m.ravel()[:, None] >> np.arange(g)) & 1
    vecs = np.where(bits == 1, c.ravel()[:, None], c2.ravel()[:, None])  # [N, group]
    n_steps = -(-len(vecs) // spec.lanes)
    idx = np.arange(n_steps * spec.lanes) % len(vecs)
    nrows, per = _rows_of(n_steps, rows)
    order = np.arange(nrows * per) % n_steps
    b = vecs[idx].reshape(n_steps, spec.lanes, g)[order].reshape(nrows, per, spec.lanes, g)
    a = _acts(spec, (nrows, per), rng, p_edge=0.5)
    first = np.zeros((nrows, per), bool)
    first[:, 0::2] = True  # every vector as a fresh sum and on top of a previous one
    return VectorSet("table_entries", a, b, first)


def act_codes_set(spec: LutSpec, rows: int, seed: int = 0) -> VectorSet:
    """Every activation code in every group position (weights random)."""
    rng = np.random.default_rng(seed)
    n = spec.act.num_codes
    nrows, per = _rows_of(n, rows)
    t = np.arange(nrows * per).reshape(nrows, per)
    a = np.stack([(t + j * 37) % n for j in range(spec.group)], -1).astype(np.int64)
    b = _weights(spec, (nrows, per), rng)
    first = rng.random((nrows, per)) < 0.25
    first[:, 0] = True
    return VectorSet("act_codes", a, b, first)


def extreme_set(spec: LutSpec, rows: int, seed: int = 0) -> VectorSet:
    """Long chains (one per row) of the most negative or the largest activations times the most
    negative, largest or mixed weights: drives the accumulator to its extremes."""
    rng = np.random.default_rng(seed)
    steps = min(spec.max_count, 4096) if spec.acc_bits is None else 4096
    a_edge, w_edge = _act_edges(spec), _weight_edges(spec)
    a = np.empty((rows, steps, spec.group), np.int64)
    b = np.empty((rows, steps, spec.lanes, spec.group), np.int64)
    for r in range(rows):
        kind, wk = r % 3, (r // 3) % (len(w_edge) + 1)
        a[r] = a_edge[kind] if kind < 2 else _acts(spec, (steps,), rng, p_edge=0.9)
        b[r] = w_edge[wk] if wk < len(w_edge) else _weights(spec, (steps,), rng, p_edge=0.9)
    first = np.zeros((rows, steps), bool)
    first[:, 0] = True
    return VectorSet("extremes", a, b, first)


def random_set(
    spec: LutSpec, vectors_n: int, rows: int, seed: int = 0, gaps: bool = False, max_steps: int = 4096
) -> VectorSet:
    """Random long dot products (30% extreme operands), chains of random length."""
    rng = np.random.default_rng(seed)
    batch_n, steps = random_layout(vectors_n, rows, max_steps)
    return VectorSet(
        "random_gaps" if gaps else "random",
        _acts(spec, (batch_n, steps), rng),
        _weights(spec, (batch_n, steps), rng),
        _first(rng, batch_n, steps),
        _gaps(steps, rng) if gaps else None,
    )


def lut_sets(spec: LutSpec, vectors_n: int, exhaustive: bool, seed: int, rows: int) -> list[VectorSet]:
    """The standard LUT regression sets; ``exhaustive`` adds every activation code per position
    (the table-entry set is always run: at most 2**16 steps)."""
    out = [table_entries_set(spec, rows, seed), extreme_set(spec, rows, seed + 1)]
    if exhaustive:
        out.append(act_codes_set(spec, rows, seed + 2))
    if vectors_n > 0:
        gap_n = max(1, vectors_n // 8)
        out.append(random_set(spec, max(1, vectors_n - gap_n), rows, seed + 3))
        out.append(random_set(spec, gap_n, rows, seed + 4, gaps=True, max_steps=512))
    return out
