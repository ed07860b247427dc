"""FPGA flow, board level: pipelining raises Fmax, the self-test wrapper passes and fails in
simulation, and the board platforms are well formed.

Work directories and the result cache live under the project's build/ directory (YoWASP tools
cannot see /tmp).
"""

from __future__ import annotations

import pytest

from peforge import fpga
from peforge.spec import IntMacSpec


def test_pipelined_int_mac_has_higher_fmax_on_ice40():
    """INT8 MAC on iCE40 hx8k: two pipeline stages cut the multiplier out of the accumulate
    path, so nextpnr's achieved Fmax must rise (one seed, registered wrapper)."""
    flat = fpga.place_and_route(IntMacSpec("int8", "int8", stages=0), "hx8k", seed=1)
    piped = fpga.place_and_route(IntMacSpec("int8", "int8", stages=2), "hx8k", seed=1)
    assert flat.fmax_mhz > 1 and piped.fmax_mhz > 1
    assert piped.fmax_mhz > 1.15 * flat.fmax_mhz, (flat.fmax_mhz, piped.fmax_mhz)


# ---------------------------------------------------------------- self-test wrapper (simulation)

from amaranth.sim import Simulator  # noqa: E402

from peforge.fpga import board as board_mod  # noqa: E402
from peforge.fpga.selftest import SelfTest, SelfTestPlan, expected_signature, lfsr_states, stimulus  # noqa: E402
from peforge.spec import BlockDotSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec  # noqa: E402


def _simulate(dut: SelfTest, limit: int) -> dict[str, int]:
    seen: dict[str, int] = {}

    async def bench(ctx):
        for cycle in range(limit):
            await ctx.tick()
            if ctx.get(dut.done):
                seen.update(ok=ctx.get(dut.ok), fail=ctx.get(dut.fail), cycles=cycle + 1)
                return

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def test_lfsr_galois_steps():
    # x^32 + x^22 + x^2 + x + 1, right-shifting Galois form: worked by hand from state 1.
    assert lfsr_states(1, 3) == [1, 0x80200003, 0x40100001 ^ 0x80200003]
    with pytest.raises(ValueError, match="nonzero"):
        lfsr_states(0, 1)


def test_stimulus_packs_lanes_from_lfsr():
    spec = MinifloatMacSpec("e2m1fn", "e2m1fn", "fp16", lanes=2)
    plan = SelfTestPlan(n=5, first_every=2, seed=0x12345678)
    st = stimulus(spec, plan)
    s0 = 0x12345678
    assert st["a"][0, 0].tolist() == [s0 & 0xF, (s0 >> 4) & 0xF]
    assert st["b"][0, 0].tolist() == [(s0 >> 8) & 0xF, (s0 >> 12) & 0xF]
    assert st["first"][0].tolist() == [1, 0, 1, 0, 1]


@pytest.mark.parametrize(
    "spec", [IntMacSpec("int8", "int8"), MinifloatMacSpec("e2m1fn", "e2m1fn", "fp32", stages=1)], ids=lambda s: s.name
)
def test_selftest_passes_and_detects_wrong_signature(spec):
    plan = SelfTestPlan(n=150, first_every=7)
    good = expected_signature(spec, plan)
    res = _simulate(SelfTest(spec, plan), 400)
    assert res == {"ok": 1, "fail": 0, "cycles": plan.n + spec.latency}
    bad = _simulate(SelfTest(spec, plan, expected=good ^ 0x10), 400)
    assert bad["ok"] == 0 and bad["fail"] == 1


@pytest.mark.parametrize(
    "spec",
    [
        ShiftAddSpec("int4", "pot4", "pot", lanes=2),
        ShiftAddSpec("int4", "int4", "bitserial", group=4, scale="bf16"),
        LutSpec("int4", 2, 3, lanes=2),
    ],
    ids=lambda s: s.name,
)
def test_selftest_of_other_families(spec):
    """Families whose ports are not plain a/b lanes: a scale port, one input per k cycles."""
    plan = SelfTestPlan(n=60, first_every=8)
    k = {
        "shiftadd": spec.cycles_per_input if spec.family == "shiftadd" else 1,
        "lut": getattr(spec, "initiation_interval", 1),
    }[spec.family]
    res = _simulate(SelfTest(spec, plan), 2000)
    assert res == {"ok": 1, "fail": 0, "cycles": (plan.n - 1) * k + 1 + spec.latency}
    bad = _simulate(SelfTest(spec, plan, expected=expected_signature(spec, plan) ^ 1), 2000)
    assert bad["ok"] == 0 and bad["fail"] == 1


@pytest.mark.parametrize("spec", [SimdMacSpec(8), BlockDotSpec("e2m1fn", "e2m1fn", block=2)], ids=lambda s: s.family)
def test_selftest_names_a_family_without_board_adapter(spec):
    with pytest.raises(ValueError, match=rf"family '{spec.family}' \({spec.name}\) cannot be board-built"):
        SelfTest(spec, SelfTestPlan(n=4, first_every=2))


def test_selftest_rejects_wide_operands():
    with pytest.raises(ValueError, match="LFSR gives 32"):
        SelfTest(MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=3), SelfTestPlan(n=4, first_every=2))


# ---------------------------------------------------------------- board platforms


@pytest.mark.parametrize(
    "board,constraints,pins",
    [
        ("icebreaker", "top.pcf", ["35", "11", "37"]),
        ("ulx3s", "top.lpf", ["G2", "B2", "C2", "C1", "D2", "D1", "E2", "E1", "H3"]),
    ],
)
def test_board_plan_constrains_documented_pins(board, constraints, pins):
    spec = IntMacSpec("int4", "int4")
    top = board_mod.board_top(board, spec, SelfTestPlan(n=8, first_every=4))
    plan = board_mod.BOARDS[board][0]().build(top, do_build=False)
    text = plan.files[constraints]
    text = text.decode() if isinstance(text, bytes) else text
    for pin in pins:
        assert (f" {pin}\n" in text) or (f'SITE "{pin}"' in text), (pin, text)
    assert any(name.endswith(".il") for name in plan.files)


def test_unknown_board_named():
    with pytest.raises(ValueError, match=r"unknown board 'arty'.*icebreaker.*ulx3s"):
        board_mod.build_board("arty", IntMacSpec("int4", "int4"))


@pytest.mark.slow
def test_icebreaker_bitstream_builds():
    res = board_mod.build_board(
        "icebreaker",
        MinifloatMacSpec("e2m1fn", "e2m1fn", "fp16"),
        plan=SelfTestPlan(n=256, first_every=16),
        build_dir=board_mod.default_build_dir("icebreaker-test"),
    )
    data = res.bitstream.read_bytes()
    assert b"\x7e\xaa\x99\x7e" in data[:64]  # iCE40 configuration sync word (Project IceStorm)
    assert len(data) > 50_000
