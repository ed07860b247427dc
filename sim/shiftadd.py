"""Vector sets of the shift-add PE (:class:`~peforge.spec.ShiftAddSpec`): its ``vector_sets`` part.

Sets are written in the golden model's terms (``a``, ``b`` ``[..., lanes]``, and ``scale`` per
step with ``group``); the shared testbench drives them through the PE's own ports and spaces
the inputs by the manifest's ``initiation_interval`` (``weight.bits`` cycles for ``bitserial``,
whose ``in_ready`` the manifest names as a handshake), so a PE that drops or double-counts an
input fails the every-cycle check.

Sets: exhaustive activation x weight codes (lane 0; with ``group``, chains of one group with
scale 1.0), corners (most negative activation x every weight code, every activation x every
zero weight code), long chains of extreme products (the accumulator at its limits: exact
width, wrap or saturation; with ``group`` also huge and tiny scales, FP32 overflow), random
chains with restarts and random chains with extra bubbles.
"""

from __future__ import annotations

import numpy as np

from ..formats import FloatFormat, IntFormat
from ..spec import ShiftAddSpec
from .vectors import VectorSet, layout_rows, random_layout

__all__ = ["shiftadd_sets"]


# --- vector sets ----------------------------------------------------------------------------------


def _act_codes(spec: ShiftAddSpec, shape: tuple[int, ...], rng: np.random.Generator, p_edge: float = 0.3) -> np.ndarray:
    """Uniform activation codes, with probability p_edge the most negative / largest / zero."""
    fmt = spec.act
    codes = rng.integers(0, fmt.num_codes, shape, dtype=np.int64)
    edges = np.array(_act_extremes(spec), np.int64)
    hit = rng.random(shape) < p_edge
    codes[hit] = rng.choice(edges, size=int(hit.sum()))
    return codes


def _act_extremes(spec: ShiftAddSpec) -> list[int]:
    """Codes of the most negative, the largest and zero activation."""
    fmt = spec.act
    if isinstance(fmt, IntFormat):
        return [int(c) for c in fmt.from_int(np.array([fmt.min_int, fmt.max_int, 0]))]
    assert isinstance(fmt, FloatFormat)
    return [fmt.sign_mask | fmt.max_code, fmt.max_code, 0]


def _weight_codes(spec: ShiftAddSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 1 << spec.weight.bits, shape, dtype=np.int64)


def _weight_extremes(spec: ShiftAddSpec) -> tuple[int, int]:
    """Codes of the most negative and the largest weight."""
    vals = spec.weight.values()
    return int(np.argmin(vals)), int(np.argmax(vals))


def _scale_codes(
    spec: ShiftAddSpec, shape: tuple[int, ...], rng: np.random.Generator, p_any: float = 0.05
) -> np.ndarray:
    """Scale codes: mostly moderate values of both signs, some uniformly random (any special)."""
    fmt = spec.scale
    if isinstance(fmt, IntFormat):
        return rng.integers(0, fmt.num_codes, shape, dtype=np.int64)
    assert isinstance(fmt, FloatFormat)
    vals = np.ldexp(1.0 + rng.random(shape), rng.integers(-12, 12, shape))
    if fmt.signed:
        vals = np.where(rng.random(shape) < 0.3, -vals, vals)
    codes = fmt.encode(vals, overflow="saturate").astype(np.int64)
    anyc = rng.random(shape) < p_any
    codes[anyc] = rng.integers(0, fmt.num_codes, int(anyc.sum()))
    return codes


def _one_code(spec: ShiftAddSpec) -> int:
    """Code of the group scale 1 (the neutral scale of a spec with groups)."""
    fmt = spec.scale
    if fmt is None:
        raise ValueError(f"{spec.name} has no group scale")
    if isinstance(fmt, IntFormat):
        return 1
    return int(fmt.encode(np.array([1.0]))[0])


def _first(rng: np.random.Generator, batch: int, steps: int, group: int | None) -> np.ndarray:
    """Chain starts: row 0 one long chain; other rows restart with log-uniform probability
    (with ``group`` mostly on group boundaries, sometimes inside a group)."""
    p = np.exp(rng.uniform(np.log(1.0 / max(steps, 2)), np.log(0.5), size=(batch, 1)))
    first = rng.random((batch, steps)) < p
    if group:
        aligned = (np.arange(steps) % group == 0)[None, :]
        first &= aligned | (rng.random((batch, steps)) < 0.1)
    first[:, 0] = True
    first[0, 1:] = False
    return first


def _make(
    name: str, a: np.ndarray, b: np.ndarray, first: np.ndarray, scale: np.ndarray | None, gaps: np.ndarray | None = None
) -> VectorSet:
    return VectorSet(name, a, b, first, gaps, {} if scale is None else {"scale": scale})


def _grid(n: int, rows: int, chain: int) -> tuple[np.ndarray, int]:
    """Indices 0..n-1 (padded by repeating) laid out as [rows, per], per a multiple of chain."""
    per = -(-n // rows)
    per = -(-per // chain) * chain
    idx = np.arange(rows * per) % n
    return idx.reshape(rows, per), per


def shiftadd_sets(spec: ShiftAddSpec, vectors_n: int, exhaustive: bool, seed: int, rows: int) -> list[VectorSet]:
    """The standard shift-add regression sets (module docstring), laid out in
    :func:`~peforge.sim.vectors.layout_rows` rows (the lanes and, with ``group``, the scale)."""
    rows = layout_rows(rows, spec.lanes + (spec.group is not None))
    rng = np.random.default_rng(seed)
    L, G = spec.lanes, spec.group
    chain = G or 2
    out: list[VectorSet] = []

    def pair_set(name: str, ca: np.ndarray, cb: np.ndarray) -> VectorSet:
        idx, per = _grid(ca.size, rows, chain)
        a = _act_codes(spec, (rows, per, L), rng)
        b = _weight_codes(spec, (rows, per, L), rng)
        if G:  # only lane 0 contributes, so the FP32 sum of one group stays exact
            b[..., 1:] = 0
        a[..., 0], b[..., 0] = ca[idx], cb[idx]
        first = np.zeros((rows, per), bool)
        first[:, ::chain] = True
        scale = np.full((rows, per), _one_code(spec)) if G else None
        return _make(name, a, b, first, scale)

    na, nw = spec.act.num_codes, 1 << spec.weight.bits
    if exhaustive:
        if na * nw > 1 << 20:
            raise ValueError(
                f"exhaustive sweep of {spec.act.name} x {spec.weight.name} has {na * nw} pairs: "
                "allowed up to 2**20 (activations of at most 12 bits with 8-bit weights)"
            )
        ca, cb = np.meshgrid(np.arange(na), np.arange(nw), indexing="ij")
        out.append(pair_set("exhaustive_pairs", ca.ravel(), cb.ravel()))
    # corners: most negative activation x every weight; every activation x every zero weight
    amin = _act_extremes(spec)[0]
    zeros = np.flatnonzero(spec.weight.values() == 0)
    acts = np.arange(na) if na <= 1 << 12 else rng.integers(0, na, 1 << 12)
    ca = np.concatenate([np.full(nw, amin), np.repeat(acts, zeros.size)])
    cb = np.concatenate([np.arange(nw), np.tile(zeros, acts.size)])
    out.append(pair_set("corner:min_act_and_zero_weights", ca, cb))
    if vectors_n <= 0:
        return out
    # accumulator at its limits: long chains of extreme products of every sign combination
    wlo, whi = _weight_extremes(spec)
    alo, ahi = _act_extremes(spec)[:2]
    pairs = np.array([[alo, wlo], [ahi, whi], [alo, whi], [ahi, wlo]], np.int64)
    lsteps = min(spec.count if G is None else 8 * G, 4096)
    if spec.acc_bits is not None:
        lsteps = min(4096, max(lsteps, 64 * chain))
    nrow = min(rows, 8)
    k = np.arange(nrow) % 4
    a = np.broadcast_to(pairs[k, 0][:, None, None], (nrow, lsteps, L)).copy()
    b = np.broadcast_to(pairs[k, 1][:, None, None], (nrow, lsteps, L)).copy()
    first = np.zeros((nrow, lsteps), bool)
    first[:, 0] = True
    scale = None
    if G:
        scale = _scale_codes(spec, (nrow, lsteps), rng, p_any=0.0)
        if isinstance(spec.scale, FloatFormat):  # huge and tiny scales: FP32 overflow and underflow
            big = spec.scale.max_code
            tiny = 1
            scale[nrow // 2 :, :] = np.where(np.arange(nrow - nrow // 2)[:, None] % 2 == 0, big, tiny)
    out.append(_make("long_extreme", a, b, first, scale))
    # random chains, then random chains with extra bubbles
    batch, steps = random_layout(vectors_n, rows, min_steps=chain)
    out.append(_random_set(spec, "random", (batch, steps), rng))
    gsteps = min(512, steps)
    gbatch = max(1, min(rows, vectors_n // 8 // gsteps + 1))
    gaps = np.where(rng.random(gsteps) < 0.1, rng.integers(1, 4, gsteps), 0)
    out.append(_random_set(spec, "random_gaps", (gbatch, gsteps), rng, gaps))
    return out


def _random_set(
    spec: ShiftAddSpec, name: str, shape: tuple[int, int], rng: np.random.Generator, gaps: np.ndarray | None = None
) -> VectorSet:
    """Random codes (and scales) on ``shape = (batch, steps)`` with :func:`_first` chain starts."""
    G = spec.group
    return _make(
        name,
        _act_codes(spec, shape + (spec.lanes,), rng),
        _weight_codes(spec, shape + (spec.lanes,), rng),
        _first(rng, *shape, G),
        _scale_codes(spec, shape, rng) if G else None,
        gaps,
    )
