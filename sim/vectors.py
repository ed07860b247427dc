"""Vector sets: the :class:`VectorSet` every family's stimulus is written in (defined in the core,
:mod:`peforge.vectorset`, and re-exported here), and the minifloat MAC's sets (exhaustive code
pairs, random chains, named corner sets).

A :class:`VectorSet` is exactly what the golden model takes (``a``/``b`` codes, further input
ports by name, ``first`` ``[batch, steps]``), plus optional bubble cycles (``gaps[t]`` cycles
with ``in_valid=0`` before input cycle ``t``, shared by all rows).  Each batch row
is one independent chain; a row may hold many chains (every ``first=1`` starts a new one), so
a million single-step vectors still fill a few long rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..vectorset import VectorSet, layout_rows, random_layout

__all__ = [
    "VectorSet",
    "layout_rows",
    "random_layout",
    "exhaustive_pairs",
    "exhaustive_chains",
    "random_chains",
    "corner_sets",
    "neutral_zero",
    "product_table",
    "table_codes",
    "DEFAULT_ROWS",
    "MAX_CHAIN",
    "FULL_TABLE_CODES",
]

DEFAULT_ROWS = 64
MAX_CHAIN = 4096
#: Formats with at most this many codes are enumerated whole in operand tables and corner
#: sets (every 8-bit format); wider ones (bf16, fp16, ...) are sampled, so the tables stay
#: about a million entries whatever the operand width.
FULL_TABLE_CODES = 1024
#: Most codes per corner-set category (subnormals, NaN payloads) of a wide format.
CORNER_SAMPLE = 64


def _fill_rows(a: np.ndarray, b: np.ndarray, first: np.ndarray, rows: int, name: str, step_group: int = 1) -> VectorSet:
    """Lay out ``n`` vectors (leading axis) as ``[rows, n/rows]``, padding by repeating the start.

    ``step_group`` keeps groups of consecutive vectors (chains) whole inside a row."""
    n = a.shape[0]
    groups = n // step_group
    rows = max(1, min(rows, groups))
    per_row = -(-groups // rows)
    pad = per_row * rows - groups
    if pad:
        idx = np.concatenate([np.arange(n), np.arange(pad * step_group) % n])
        a, b, first = a[idx], b[idx], first[idx]
    steps = per_row * step_group
    return VectorSet(name, a.reshape(rows, steps, -1), b.reshape(rows, steps, -1), first.reshape(rows, steps))


def neutral_zero(spec: Any) -> tuple[int, int]:
    """(a code, b code) whose product is a zero that changes no sum and no zero sign:
    -0 when either format has a negative zero, else +0."""
    if spec.a.has_negative_zero:
        return spec.a.sign_mask, 0
    if spec.b.has_negative_zero:
        return 0, spec.b.sign_mask
    return 0, 0


def _place(spec: Any, a_codes: np.ndarray, b_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Put pair k into lane k % lanes; the other lanes get the neutral zero."""
    n, lanes = a_codes.shape[0], spec.lanes
    za, zb = neutral_zero(spec)
    a = np.full((n, lanes), za, np.int64)
    b = np.full((n, lanes), zb, np.int64)
    lane = np.arange(n) % lanes
    a[np.arange(n), lane] = a_codes
    b[np.arange(n), lane] = b_codes
    return a, b


def _all_pairs(spec: Any) -> tuple[np.ndarray, np.ndarray]:
    na, nb = spec.a.num_codes, spec.b.num_codes
    if na * nb > 1 << 24:
        raise ValueError(
            f"exhaustive sweep of {spec.a.name} x {spec.b.name} has {na * nb} pairs: "
            "allowed only for formats with at most 2**24 pairs"
        )
    ca, cb = np.meshgrid(np.arange(na), np.arange(nb), indexing="ij")
    return ca.ravel().astype(np.int64), cb.ravel().astype(np.int64)


def exhaustive_pairs(spec: Any, rows: int = DEFAULT_ROWS) -> VectorSet:
    """Every (a, b) code pair once, each with ``first=1`` (the bare product, rounded once)."""
    ca, cb = _all_pairs(spec)
    a, b = _place(spec, ca, cb)
    return _fill_rows(a, b, np.ones(ca.shape[0], bool), rows, "exhaustive_first")


def exhaustive_chains(spec: Any, rows: int = DEFAULT_ROWS, seed: int = 0) -> VectorSet:
    """Every pair as step 1 and as step 2 of a two-step chain (step 2 is a shuffled pair)."""
    ca, cb = _all_pairs(spec)
    perm = np.random.default_rng(seed).permutation(ca.shape[0])
    a1, b1 = _place(spec, ca, cb)
    a2, b2 = _place(spec, ca[perm], cb[perm])
    a = np.stack([a1, a2], axis=1).reshape(-1, spec.lanes)
    b = np.stack([b1, b2], axis=1).reshape(-1, spec.lanes)
    first = np.tile([True, False], ca.shape[0])
    return _fill_rows(a, b, first, rows, "exhaustive_chain2", step_group=2)


def _random_codes(fmt: Any, shape: tuple[int, ...], rng: np.random.Generator, p_special: float) -> np.ndarray:
    """Mostly finite codes (uniform over finite codes), specials with probability p_special."""
    codes = np.arange(fmt.num_codes)
    kind = fmt.classify(codes)
    finite, special = codes[kind == 0], codes[kind != 0]
    out = rng.choice(finite, size=shape)
    if special.size and p_special > 0:
        mask = rng.random(shape) < p_special
        out[mask] = rng.choice(special, size=int(mask.sum()))
    return out.astype(np.int64)


def random_chains(
    spec: Any,
    vectors: int,
    rows: int = DEFAULT_ROWS,
    max_steps: int = MAX_CHAIN,
    seed: int = 0,
    p_special: float = 1e-3,
    gaps: bool = False,
) -> VectorSet:
    """About ``vectors`` random vectors in chains of 1..``max_steps`` steps.

    Row 0 is one chain of the full row length; the other rows restart with a per-row
    probability drawn log-uniformly from [1/steps, 1/2], so chain lengths span the range.
    ``gaps=True`` inserts 1..3 bubble cycles before about 10 % of the steps.
    """
    if vectors < 1:
        raise ValueError(f"vectors={vectors!r} must be >= 1")
    if not 1 <= max_steps <= MAX_CHAIN * 16:
        raise ValueError(f"max_steps={max_steps!r} must be in 1..{MAX_CHAIN * 16}")
    rng = np.random.default_rng(seed)
    rows = max(1, min(rows, vectors))
    steps = min(max_steps, -(-vectors // rows))
    batch = -(-vectors // steps)
    shape = (batch, steps, spec.lanes)
    a = _random_codes(spec.a, shape, rng, p_special)
    b = _random_codes(spec.b, shape, rng, p_special)
    p = np.exp(rng.uniform(np.log(1.0 / max(steps, 2)), np.log(0.5), size=(batch, 1)))
    first = rng.random((batch, steps)) < p
    first[:, 0] = True
    first[0, 1:] = False
    gap = None
    if gaps:
        gap = np.where(rng.random(steps) < 0.1, rng.integers(1, 4, steps), 0)
    return VectorSet("random_gaps" if gaps else "random", a, b, first, gap)


# --- corner sets ------------------------------------------------------------------------------


def _codes_of(fmt: Any, value: float) -> list[int]:
    vals = fmt.values()
    if math.isnan(value):
        return [int(c) for c in np.flatnonzero(np.isnan(vals))]
    hits = np.flatnonzero((vals == value) & (np.signbit(vals) == np.signbit(value)))
    return [int(c) for c in hits]


def _code(fmt: Any, value: float) -> int | None:
    hits = _codes_of(fmt, value)
    return hits[0] if hits else None


class _Chains:
    """Collects corner chains (lists of (a_code, b_code) steps, lane 0) for one spec."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.chains: list[list[tuple[int, int]]] = []

    def add(self, *steps: tuple[int | None, int | None]) -> None:
        chain = [(int(a), int(b)) for a, b in steps if a is not None and b is not None]
        if steps and len(chain) == len(steps):
            self.chains.append(chain)

    def build(self, name: str, rows: int) -> VectorSet | None:
        if not self.chains:
            return None
        spec = self.spec
        za, zb = neutral_zero(spec)
        steps = max(len(c) for c in self.chains)
        n = len(self.chains)
        a = np.full((n, steps, spec.lanes), za, np.int64)
        b = np.full((n, steps, spec.lanes), zb, np.int64)
        first = np.ones((n, steps), bool)
        for r, chain in enumerate(self.chains):
            for t, (ca, cb) in enumerate(chain):
                a[r, t, 0], b[r, t, 0] = ca, cb
                first[r, t] = t == 0
        # pack many short chains into fewer, longer rows so a pass stays short
        if steps <= 4 and n > rows:
            per = -(-n // rows)
            pad = per * rows - n
            if pad:
                a = np.concatenate([a, np.repeat(a[:1], pad, 0)])
                b = np.concatenate([b, np.repeat(b[:1], pad, 0)])
                first = np.concatenate([first, np.repeat(first[:1], pad, 0)])
            a = a.reshape(rows, per * steps, spec.lanes)
            b = b.reshape(rows, per * steps, spec.lanes)
            first = first.reshape(rows, per * steps)
        return VectorSet(name, a, b, first)


def corner_sets(spec: Any, rows: int = DEFAULT_ROWS) -> list[VectorSet]:
    """Named corner sets: zeros, subnormals, largest finite, nan_inf, overflow, ties.

    Corner chains drive lane 0; other lanes carry the neutral zero (see :func:`neutral_zero`).
    Sets whose values the formats cannot express (no inf, no subnormals, no tie product) are
    left out.
    """
    fa, fb = spec.a, spec.b
    one_a, one_b = _code(fa, 1.0), _code(fb, 1.0)
    neg_one_b = _code(fb, -1.0)
    pz_a, pz_b = 0, 0
    nz_a = fa.sign_mask if fa.has_negative_zero else None
    nz_b = fb.sign_mask if fb.has_negative_zero else None
    out: list[VectorSet] = []

    # zeros of both signs, cancellation to zero
    z = _Chains(spec)
    for ca in (pz_a, nz_a):
        for cb in (pz_b, nz_b):
            z.add((ca, cb))
            z.add((ca, cb), (ca, cb))
            z.add((ca, cb), (nz_a, pz_b))
            z.add((ca, cb), (pz_a, nz_b))
            z.add((ca, cb), (pz_a, pz_b))
    z.add((one_a, one_b), (one_a, neg_one_b))  # x - x = +0
    z.add((one_a, neg_one_b), (one_a, one_b))
    z.add((one_a, one_b), (one_a, neg_one_b), (nz_a, pz_b))
    zeros = z.build("corner:zeros", rows)
    if zeros is not None:
        out.append(zeros)

    # subnormals: every subnormal of a (b) times a few b (a) values, and chains of them
    s = _Chains(spec)
    sub_a, sub_b = _subnormal_codes(fa), _subnormal_codes(fb)
    partners_b = [
        c
        for c in {one_b, neg_one_b, _code(fb, fb.max), _code(fb, fb.min_subnormal), _code(fb, fb.min_normal)}
        if c is not None
    ]
    partners_a = [
        c
        for c in {one_a, _code(fa, -1.0), _code(fa, fa.max), _code(fa, fa.min_subnormal), _code(fa, fa.min_normal)}
        if c is not None
    ]
    for ca in sub_a:
        for cb in partners_b:
            s.add((ca, cb))
            s.add((ca, cb), (ca, cb), (ca, cb))
    for cb in sub_b:
        for ca in partners_a:
            s.add((ca, cb))
    if sub_a and sub_b:
        s.add(*[(sub_a[i % len(sub_a)], sub_b[i % len(sub_b)]) for i in range(16)])
    built = s.build("corner:subnormals", rows)
    if built is not None:
        out.append(built)

    # largest finite, both signs, and rounding right below / above it
    m = _Chains(spec)
    max_a, max_b = _code(fa, fa.max), _code(fb, fb.max)
    nmax_a, nmax_b = _code(fa, -fa.max), _code(fb, -fb.max)
    for ca in (max_a, nmax_a):
        for cb in (max_b, nmax_b, one_b, _code(fb, fb.min_subnormal)):
            m.add((ca, cb))
            m.add((ca, cb), (ca, cb))
            m.add((ca, cb), (_code(fa, fa.min_subnormal), _code(fb, fb.min_subnormal)))
    largest = m.build("corner:largest", rows)
    if largest is not None:
        out.append(largest)

    # NaN and inf (where the formats have them)
    if fa.has_nan or fb.has_nan or fa.has_inf or fb.has_inf:
        ni = _Chains(spec)
        spec_a, spec_b = _special_codes(fa), _special_codes(fb)
        others_b = [c for c in {pz_b, nz_b, one_b, neg_one_b, max_b} if c is not None] + spec_b
        others_a = [c for c in {pz_a, nz_a, one_a, _code(fa, -1.0), max_a} if c is not None] + spec_a
        for ca in spec_a:
            for cb in others_b:
                ni.add((ca, cb))
                ni.add((one_a, one_b), (ca, cb))
                ni.add((ca, cb), (one_a, one_b))
                ni.add((ca, cb), (one_a, one_b), (one_a, one_b))  # sticky until first
        for cb in spec_b:
            for ca in others_a:
                ni.add((ca, cb))
        pinf_a, ninf_a = fa.inf_code(False), fa.inf_code(True)
        pinf_b, ninf_b = fb.inf_code(False), fb.inf_code(True)
        if pinf_a is not None:
            ni.add((pinf_a, one_b), (ninf_a, one_b))  # +inf + -inf = NaN
            ni.add((pinf_a, one_b), (pinf_a, one_b))
            ni.add((pinf_a, one_b), (max_a, max_b))
        if pinf_b is not None:
            ni.add((one_a, pinf_b), (one_a, ninf_b))
        ni.add((max_a, max_b), (one_a, one_b))
        # a new chain after a NaN/inf starts clean
        if spec_a:
            ni.add((spec_a[0], one_b), (one_a, one_b))
        built = ni.build("corner:nan_inf", rows)
        if built is not None:
            # the recovery chain needs first=1 on its second step
            out.append(built)
            rec = ni.chains[-1] if spec_a else None
            if rec is not None:
                za, zb = neutral_zero(spec)
                a = np.full((1, 2, spec.lanes), za, np.int64)
                b = np.full((1, 2, spec.lanes), zb, np.int64)
                a[0, :, 0] = [rec[0][0], rec[1][0]]
                b[0, :, 0] = [rec[0][1], rec[1][1]]
                out.append(VectorSet("corner:nan_recovery", a, b, np.ones((1, 2), bool)))

    # accumulator overflow: same-sign max products until the accumulator overflows / wraps
    if max_a is not None and max_b is not None:
        pmax = float(_products(spec, np.array([fa.max]), np.array([fb.max]))[0, 0]) * spec.lanes
        if spec.is_exact:
            capacity = 2.0 ** (spec.exact_width - 1 + spec.product_lsb_exp)
        else:
            capacity = spec.acc.max
        needed = math.ceil(capacity / pmax) + 2
        # unreachable within a chain (e.g. FP32): a short run of large products is enough
        needed = int(needed if needed <= MAX_CHAIN else 64)
        a = np.full((2, needed, spec.lanes), max_a, np.int64)
        b = np.full((2, needed, spec.lanes), max_b, np.int64)
        if nmax_b is not None:
            b[1] = nmax_b
        first = np.zeros((2, needed), bool)
        first[:, 0] = True
        out.append(VectorSet("corner:overflow", a, b, first))

    # exact ties in the float accumulator's rounding
    if not spec.is_exact:
        t = _tie_chains(spec)
        built = t.build("corner:ties", rows)
        if built is not None:
            out.append(built)
    return [v for v in out if v is not None]


def _spread(codes: Any, limit: int) -> list[int]:
    """At most ``limit`` of ``codes`` (sorted), evenly spaced, the first and last included."""
    codes = [int(c) for c in codes]
    if len(codes) <= limit:
        return codes
    idx = np.unique(np.linspace(0, len(codes) - 1, limit).round().astype(np.int64))
    return [codes[i] for i in idx]


def table_codes(fmt: Any) -> np.ndarray:
    """Codes of ``fmt`` an operand table covers: all of them for formats of at most
    :data:`FULL_TABLE_CODES` codes; else, for every exponent, the significands 1.0, 1 + ulp,
    1.5 and 2 - ulp of both signs, the zeros, the extreme subnormals and the specials' first
    codes (about 8 x 2**E codes: 2,048 for bf16, 256 for fp16)."""
    if fmt.num_codes <= FULL_TABLE_CODES:
        return np.arange(fmt.num_codes, dtype=np.int64)
    M = fmt.man_bits
    mans = {0, 1, 1 << (M - 1) if M else 0, (1 << M) - 1}
    codes = {(e << M) | m | sign for e in range(1 << fmt.exp_bits) for m in mans for sign in (0, fmt.sign_mask)}
    codes = {c for c in codes if c < fmt.num_codes}
    special = np.flatnonzero(fmt.classify(np.arange(fmt.num_codes)) != 0)
    codes.update(int(c) for c in _spread(special, 8))
    return np.array(sorted(codes), dtype=np.int64)


def product_table(spec: Any) -> np.ndarray:
    """float64 product of every (a code, b code) pair as the PE's multiplier forms it (the
    pairs of :func:`table_codes` for formats too wide to enumerate).

    ``mult="lmul"``: L-Mul's ``(1 + fa + fb + 2**-l) 2**(ea + eb)`` on the normalised
    operand values (exact in float64 for formats of at most 16 bits), written here from the
    formula rather than taken from the golden model, so tie vectors stay independent.
    """
    return _products(spec, spec.a.values()[table_codes(spec.a)], spec.b.values()[table_codes(spec.b)])


def _products(spec: Any, va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        prod = np.multiply.outer(va, vb)
        if getattr(spec, "mult", "exact") != "lmul":
            return prod
        (ma, ea), (mb, eb) = np.frexp(np.abs(va)), np.frexp(np.abs(vb))
        frac = np.add.outer(2 * ma - 1, 2 * mb - 1) + 2.0**-spec.lmul_offset_exp
        lmul = np.ldexp(1 + frac, np.add.outer(ea - 1, eb - 1)) * np.sign(prod)
    finite = np.isfinite(prod) & (prod != 0)
    return np.where(finite, lmul, prod)


def _subnormal_codes(fmt: Any) -> list[int]:
    """Subnormal codes (exponent field 0, mantissa non-zero), both signs; a spread sample of
    :data:`CORNER_SAMPLE` per sign for wide formats (smallest and largest kept)."""
    M = fmt.man_bits
    if not M:
        return []
    mags = np.arange(1, 1 << M, dtype=np.int64)
    limit = mags.size if fmt.num_codes <= FULL_TABLE_CODES else CORNER_SAMPLE
    picked = _spread(mags, limit)
    out = picked + ([c | fmt.sign_mask for c in picked] if fmt.signed else [])
    return sorted(int(c) for c in out if c < fmt.num_codes)


def _special_codes(fmt: Any) -> list[int]:
    """NaN / inf codes; of a wide format every inf and a spread sample of NaN payloads."""
    codes = np.arange(fmt.num_codes, dtype=np.int64)
    kind = fmt.classify(codes)
    special = codes[kind != 0]
    if fmt.num_codes <= FULL_TABLE_CODES:
        return [int(c) for c in special]
    inf = [c for c in (fmt.inf_code(False), fmt.inf_code(True)) if c is not None]
    nan = [int(c) for c in special if int(c) not in inf]
    return sorted(set(inf) | set(_spread(nan, CORNER_SAMPLE)))


def _tie_chains(spec: Any) -> _Chains:
    """Chains X, (U,) H whose exact sum lies halfway between two accumulator values."""
    fa, fb, acc = spec.a, spec.b, spec.acc
    ca_codes, cb_codes = table_codes(fa), table_codes(fb)
    va, vb = fa.values()[ca_codes], fb.values()[cb_codes]
    prod = product_table(spec)
    finite = np.isfinite(prod) & (prod > 0)
    if not spec.subnormals:
        sub_a = (np.abs(va) < fa.min_normal)[:, None]
        sub_b = (np.abs(vb) < fb.min_normal)[None, :]
        finite &= ~(sub_a | sub_b)
    pos = np.unique(prod[finite])
    chains = _Chains(spec)

    def pair(value: float) -> tuple[int, int] | None:
        hit = np.argwhere(finite & (prod == value))
        return (int(ca_codes[hit[0][0]]), int(cb_codes[hit[0][1]])) if hit.size else None

    def neg(p: tuple[int, int]) -> tuple[int, int]:
        return (p[0] ^ fa.sign_mask, p[1])

    for x in pos[:: -max(1, len(pos) // 12)]:
        e = math.floor(math.log2(x))
        if e < acc.emin:
            continue
        ulp = 2.0 ** (e - acc.man_bits)
        px, pu, ph, p3 = pair(x), pair(ulp), pair(ulp / 2), pair(1.5 * ulp)
        if px is None or ph is None:
            continue
        chains.add(px, ph)  # tie, X even -> stays X
        if pu is not None:
            chains.add(px, pu, ph)  # tie, X+U odd -> rounds up
        if p3 is not None:
            chains.add(px, p3)
        chains.add(neg(px), neg(ph))
        if pu is not None:
            chains.add(neg(px), neg(pu), neg(ph))
    return chains
