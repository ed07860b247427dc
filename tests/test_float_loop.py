"""The facts the per-step float accumulate loop relies on (peforge.geometry.mac_reachable_acc),
checked on the golden model, which the MAC tests check against exact Fraction arithmetic.

The fast loop variant (rtl/blocks/float_acc.py) leaves out subnormal and overflow logic because
every reachable accumulator is a multiple of ``2**lsb_exp`` and below ``2**(T + p + 2)``: drive
the golden model with the sequences that push hardest against both bounds (the largest
products, of one sign and alternating; the smallest; random codes with restarts) and check
every accumulator value.  Where the geometry says overflow *is* reachable, the same drive
must reach infinity, so the check is not vacuous.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from peforge.geometry import mac_geometry, mac_reachable_acc
from peforge.models import golden
from peforge.spec import MinifloatMacSpec


def _codes_by_value(fmt) -> tuple[np.ndarray, np.ndarray]:
    codes = fmt.all_codes()
    vals = fmt.decode(codes)
    finite = np.isfinite(vals)
    return codes[finite], vals[finite]


def _drives(spec: MinifloatMacSpec, steps: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(a, b, first) batches [1, steps, lanes]: largest products, alternating signs, smallest
    nonzero products, random codes with restarts."""
    rng = np.random.default_rng(seed)
    ca, va = _codes_by_value(spec.a)
    cb, vb = _codes_by_value(spec.b)
    big_a, big_b = ca[np.argmax(va)], cb[np.argmax(vb)]
    neg_a = ca[np.argmin(va)]
    tiny_a = ca[np.argmin(np.where(va > 0, va, np.inf))]
    tiny_b = cb[np.argmin(np.where(vb > 0, vb, np.inf))]
    L = spec.lanes
    first = np.zeros((1, steps), bool)
    first[0, 0] = True
    out = []
    full = lambda c: np.full((1, steps, L), c, dtype=np.int64)  # noqa: E731
    out.append((full(big_a), full(big_b), first))
    alt = full(big_a)
    alt[:, 1::2, :] = neg_a
    out.append((alt, full(big_b), first))
    out.append((full(tiny_a), full(tiny_b), first))
    ra = rng.choice(ca, size=(1, steps, L))
    rb = rng.choice(cb, size=(1, steps, L))
    rf = rng.random((1, steps)) < 0.01
    rf[0, 0] = True
    out.append((ra, rb, rf))
    return out


SPECS = [
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"),
    MinifloatMacSpec("e4m3fn", "e4m3fn", "bf16"),
    MinifloatMacSpec("e5m2", "e5m2", "bf16", lanes=4),
    MinifloatMacSpec("e2m1fn", "e2m1fn", "e4m3"),  # an 8-bit accumulator
    MinifloatMacSpec("e2m1fn", "e3m2fn", "bf16", mult="lmul"),
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp16"),  # overflow and subnormal sums reachable
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_reachable_accumulators_stay_in_the_proven_range(spec: MinifloatMacSpec) -> None:
    g = mac_geometry(spec)
    tops, overflow = mac_reachable_acc(spec)
    if spec.lanes == 1:  # the loop's lean variant exactly when the proof allows it
        assert g.loop is not None and g.loop.fast == (tops.start >= spec.acc.emin and not overflow)
    else:  # several lanes accumulate in the lane sum's frame
        assert g.loop is None and g.frame_width > 0
    bound = Fraction(2) ** (tops.stop)  # |acc| < 2**(T + p + 2)
    grid = Fraction(2) ** g.lsb_exp  # acc is a multiple of 2**lsb_exp
    drives = _drives(spec, 4096, seed=1)  # one batch: the chains saturate within it (bf16, 8 bits)
    a, b, first = (np.concatenate(x) for x in zip(*drives))
    acc = golden.run(spec, a=a, b=b, first=first)["acc"]
    vals = spec.acc.decode(np.unique(acc).astype(np.uint64))
    reached_inf = bool(np.isinf(vals).any())
    for v in vals[np.isfinite(vals)]:
        x = Fraction(float(v))
        assert x % grid == 0, f"{spec.name}: accumulator {v!r} is not a multiple of 2**{g.lsb_exp}"
        if not overflow:
            assert abs(x) < bound, f"{spec.name}: accumulator {v!r} reaches 2**{tops.stop}"
    # the largest products in a long chain: the overflow flag is exactly whether infinity shows
    assert reached_inf == overflow
    if spec.acc.man_bits <= 7 and not overflow:  # short precision: the chain of the largest
        top = max(abs(Fraction(float(v))) for v in vals[np.isfinite(vals)])  # products saturates
        assert top >= bound / 4, f"{spec.name}: the drive never came near the bound"
