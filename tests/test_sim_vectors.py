"""Vector sets (peforge.sim.vectors): coverage facts checked with plain NumPy."""

from __future__ import annotations

import numpy as np

from peforge.sim import vectors
from peforge.spec import MinifloatMacSpec


def test_exhaustive_pairs_cover_every_pair_once() -> None:
    spec = MinifloatMacSpec("e2m1fn", "e3m2fn", "fp32", lanes=4)
    vs = vectors.exhaustive_pairs(spec, rows=8)
    assert vs.first.all()
    lane = np.arange(vs.size) % 4
    a = vs.a.reshape(-1, 4)[np.arange(vs.size), lane]
    b = vs.b.reshape(-1, 4)[np.arange(vs.size), lane]
    pairs = set(zip(a.tolist(), b.tolist()))
    assert len(pairs) == 16 * 64


def test_chains_alternate_first() -> None:
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
    vs = vectors.exhaustive_chains(spec)
    assert vs.size == 2 * 65536
    assert (vs.first[:, 0::2]).all() and not vs.first[:, 1::2].any()


def test_random_chains_lengths_and_gaps() -> None:
    spec = MinifloatMacSpec("e5m2", "e5m2", "bf16")
    vs = vectors.random_chains(spec, 64 * 4096, seed=1, gaps=True)
    assert vs.steps == 4096 and vs.first[:, 0].all() and vs.first[0].sum() == 1
    assert vs.gaps is not None and vs.gaps.sum() > 0


def test_corner_sets_contain_specials() -> None:
    spec = MinifloatMacSpec("e5m2", "e4m3fn", "fp16")
    sets = {s.name: s for s in vectors.corner_sets(spec)}
    assert {
        "corner:zeros",
        "corner:subnormals",
        "corner:largest",
        "corner:nan_inf",
        "corner:overflow",
        "corner:ties",
    } <= set(sets)
    nan_inf = sets["corner:nan_inf"]
    assert (nan_inf.a == spec.a.inf_code(True)).any()
    assert np.isin(nan_inf.b, [0x7F, 0xFF]).any()
    assert (sets["corner:zeros"].a == 0x80).any()
