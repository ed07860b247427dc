"""The cocotb regression as the families' RTL tests run it: verify a spec, fail with its report."""

from __future__ import annotations

from peforge.sim import regression
from peforge.spec import Spec


def verified(spec: Spec, n: int, exhaustive: bool = False, seed: int = 0) -> regression.VerifyResult:
    """Run ``n`` random vectors (plus the exhaustive set when asked) through ``spec``'s RTL
    against its golden model; assert no mismatch (the message is the regression's report)."""
    res = regression.verify(spec, vectors=n, exhaustive=exhaustive, seed=seed)
    assert res.ok, res.report
    return res
