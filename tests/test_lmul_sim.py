"""cocotb regression of the L-Mul MAC RTL against its golden model, on Verilator.

CI sample: one build, e4m3fn x e4m3fn -> fp32, every code pair (first step and two-step
chains), the corner sets and random chains.  ``-m slow`` adds every code pair of e5m2,
e3m2fn, e2m3fn, e2m1fn and mixed pairs, and random chains over lanes / accumulators.
The golden model itself is checked against the Fraction reference in tests/test_lmul.py.
"""

from __future__ import annotations

import pytest
from regress import verified

from peforge.sim import vectors
from peforge.spec import MinifloatMacSpec

pytestmark = pytest.mark.sim


def _verify(spec: MinifloatMacSpec, n: int, exhaustive: bool = False, seed: int = 0):
    res = verified(spec, n, exhaustive, seed)
    if exhaustive:
        pairs = spec.a.num_codes * spec.b.num_codes
        assert res.sets["exhaustive_first"] >= pairs and res.sets["exhaustive_chain2"] >= 2 * pairs
    return res


def test_exhaustive_e4m3fn() -> None:
    res = _verify(MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", mult="lmul"), 20_000, exhaustive=True)
    assert res.sets["corner:ties"] > 0 and res.sets["random_gaps"] > 0


def test_lmul_ties_are_ties() -> None:
    """The tie corner set is built from L-Mul products (not exact ones) for an lmul PE."""
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", mult="lmul")
    table = vectors.product_table(spec)
    assert table[0x38, 0x38] == 1.125 and table[0x3C, 0x3C] == 2.125  # 1*1, 1.5*1.5
    assert table[0x01, 0x38] == 1.125 * 2.0**-9 and table[0xB8, 0x38] == -1.125


@pytest.mark.slow
@pytest.mark.parametrize(
    "a,b",
    [
        ("e5m2", "e5m2"),
        ("e3m2fn", "e3m2fn"),
        ("e2m3fn", "e2m3fn"),
        ("e2m1fn", "e2m1fn"),
        ("e4m3fn", "e2m1fn"),
        ("e5m2", "e4m3fn"),
    ],
)
def test_exhaustive_matrix(a: str, b: str) -> None:
    _verify(MinifloatMacSpec(a, b, "fp32", mult="lmul"), 4096, exhaustive=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kw",
    [
        dict(a="e4m3fn", b="e5m2", acc="bf16", lanes=4, stages=2),
        dict(a="e5m2", b="e4m3fn", acc="exact", lanes=16, stages=1),
        dict(a="e4m3fn", b="e4m3fn", acc="fp32", lanes=16, subnormals=False),
        dict(a="e2m1fn", b="e2m1fn", acc="exact", lanes=4, max_count=256, exhaustive=True),
    ],
)
def test_random_chains(kw: dict) -> None:
    kw = dict(kw)
    exhaustive = kw.pop("exhaustive", False)
    _verify(MinifloatMacSpec(**kw, mult="lmul"), 30_000, exhaustive=exhaustive, seed=1)
