"""IntMac golden model against plain Python integer arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from peforge.models.golden import (
    intmac,  # noqa: F401  (registers the model)
    run,
)
from peforge.spec import IntMacSpec


def _reference(spec: IntMacSpec, a, b, first) -> list[list[int]]:
    """Python-int reference straight from the semantics."""
    width = spec.width
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    ai, bi = spec.a.to_int(a), spec.b.to_int(b)
    out = []
    for row in range(a.shape[0]):
        acc, seq = 0, []
        for t in range(a.shape[1]):
            s = sum(int(x) * int(y) for x, y in zip(ai[row, t], bi[row, t]))
            acc = (0 if first[row, t] else acc) + s
            if spec.overflow == "saturate":
                acc = min(max(acc, lo), hi)
            else:
                acc = (acc - lo) % (1 << width) + lo
            seq.append(acc & ((1 << width) - 1))
        out.append(seq)
    return out


@pytest.mark.parametrize(
    "spec",
    [
        IntMacSpec(),
        IntMacSpec("uint4", "int4", lanes=4),
        IntMacSpec("int16", "int16", lanes=16),
        IntMacSpec("int8", "int8", acc_bits=18),
        IntMacSpec("int8", "uint8", acc_bits=17, overflow="saturate"),
        IntMacSpec("uint16", "uint16", acc_bits=64),
        IntMacSpec("int2", "int2", lanes=64, acc_bits=63),
    ],
    ids=str,
)
def test_intmac_matches_python_ints(spec: IntMacSpec) -> None:
    rng = np.random.default_rng(7)
    batch, steps = 6, 300
    a = rng.integers(0, spec.a.num_codes, (batch, steps, spec.lanes))
    b = rng.integers(0, spec.b.num_codes, (batch, steps, spec.lanes))
    a[0] = spec.a.from_int(np.full((steps, spec.lanes), spec.a.min_int))  # extreme corners
    b[0] = spec.b.from_int(np.full((steps, spec.lanes), spec.b.min_int))
    first = rng.random((batch, steps)) < 0.01
    got = run(spec, a=a, b=b, first=first)["acc"]
    assert got.tolist() == _reference(spec, a, b, first)


def test_intmac_derived_width_holds_worst_case() -> None:
    spec = IntMacSpec("int8", "int8", lanes=4, max_count=16)
    a = np.full((1, 16, 4), 0x80)
    got = run(spec, a=a, b=a, first=np.zeros((1, 16), bool))["acc"]
    assert int(got[0, -1]) == 16 * 4 * 128 * 128  # positive and not wrapped


def test_signed_width_is_the_fewest_twos_complement_bits() -> None:
    """Closed form vs the definition: the smallest w with -2**(w-1) <= lo and hi < 2**(w-1)."""
    from peforge.spec import signed_width

    rng = np.random.default_rng(5)
    pairs = [(lo, hi) for lo in range(-70, 71) for hi in range(lo, 71)]
    pairs += [(-int(a), int(b)) for a, b in rng.integers(0, 2**62, size=(2000, 2))]
    for lo, hi in pairs:
        w = next(w for w in range(1, 80) if -(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1)
        assert signed_width(lo, hi) == w, (lo, hi)
