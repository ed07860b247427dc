"""IntMac RTL: lint-clean and deterministic Verilog, manifest, and the cocotb regression on
Verilator against the golden model (through :mod:`peforge.sim.families`).

CI sample: one Verilator build (int8 x uint8, 4 lanes, 2 stages, 18-bit saturating
accumulator: every code pair, random chains that saturate, bubbles).  ``-m slow`` adds
signed/unsigned, wrapping and derived-width variants.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ports import CONTROL_PORTS
from regress import verified

from peforge import rtl
from peforge import spec as spec_mod
from peforge.spec import IntMacSpec

BUILD = Path(__file__).resolve().parent.parent / "build" / "test_intmac_rtl"


@pytest.mark.parametrize(
    "s",
    [
        IntMacSpec(),
        IntMacSpec("int4", "uint4", lanes=4, stages=2),
        IntMacSpec("int8", "uint8", acc_bits=18, overflow="saturate", lanes=4, stages=2),
        IntMacSpec("int16", "int16", lanes=8, stages=3),
    ],
    ids=str,
)
def test_manifest_fields(s: IntMacSpec) -> None:
    """Lint, determinism and manifest ports: tests/test_family_contract.py."""
    man = rtl.manifest(s)
    ports = {p["name"]: p["width"] for p in man["ports"]}
    assert ports == {**CONTROL_PORTS, "a": s.lanes * s.a.bits, "b": s.lanes * s.b.bits, "acc": s.width}
    assert man["result"] == {
        "port": "acc",
        "encoding": "twos_complement",
        "width": s.width,
        "overflow": man["result"]["overflow"],
        "flags": None,
    }
    assert man["latency"] == s.latency and man["lane_packing"]["a"]["lanes"] == s.lanes
    assert spec_mod.from_dict(man["spec"]) == s


@pytest.mark.sim
def test_saturating_lanes4_stages2() -> None:
    spec = IntMacSpec("int8", "uint8", acc_bits=18, overflow="saturate", lanes=4, stages=2)
    res = verified(spec, 30_000, exhaustive=True)
    assert res.sets["exhaustive_pairs"] >= 1 << 16
    assert res.sets["long_extreme"] > 0 and res.sets["random_gaps"] > 0


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(a="uint8", b="int8", lanes=2, stages=1),
        dict(a="int4", b="int4", lanes=16, acc_bits=12),  # wraps
        dict(a="int16", b="uint16", lanes=4, stages=3),
        dict(a="int2", b="uint2", lanes=64, stages=4, acc_bits=10, overflow="saturate"),
    ],
    ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "default",
)
def test_slow_matrix(kw: dict) -> None:
    spec = IntMacSpec(**kw)
    verified(spec, 100_000, exhaustive=spec.a.bits + spec.b.bits <= 16, seed=4)
