"""Block-dot PE RTL: lint, deterministic Verilog, manifest, the Amaranth simulator against the
golden model (many small configurations, no Verilator), and the cocotb/Verilator regression.

CI sample: two Verilator builds (NVFP4 block 16 in 4 beats with 1 pipeline stage: the scale
multiplier, the beat counter, bubbles inside blocks, ignored off-beat controls; INT4 x INT6
elements with UE5M3 x UE4M3 scales in 2 beats), every named set and every element-code pair,
plus a tampered golden value that must be reported.  ``-m slow`` adds the MX, MXINT4/6,
NVINT4 and UE4M3/UE5M3 formats at full width with every element-code pair.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator
from ports import CONTROL_PORTS
from typer.testing import CliRunner

from peforge import rtl
from peforge.cli import app
from peforge.models import golden
from peforge.rtl.blockdot import BlockDot, blockdot_geometry
from peforge.spec import BlockDotSpec

BUILD = Path(__file__).resolve().parent.parent / "build" / "test_blockdot"
CI_SPEC = BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16, lanes=4, stages=1)


def _stimulus(spec: BlockDotSpec, T: int, seed: int) -> tuple[np.ndarray, ...]:
    from peforge.sim.blockdot import _elements, _scales

    rng = np.random.default_rng(seed)
    a = _elements(spec.element_a, (1, T, spec.block), rng, 0.003)
    b = _elements(spec.element_b, (1, T, spec.block), rng, 0.003)
    sa, sb = _scales(spec.scale_a, (1, T), rng, 0.15), _scales(spec.scale_b, (1, T), rng, 0.15)
    first = rng.random((1, T)) < 0.2
    first[:, 0] = True
    return a, b, sa, sb, first


def amaranth_run(spec: BlockDotSpec, a, b, sa, sb, first, seed: int = 0) -> list[int]:
    """Drive one chain through the Amaranth simulation of the PE (bubbles and random off-beat
    controls included); return ``acc`` at every ``out_valid``."""
    rng = np.random.default_rng(seed)
    dut = BlockDot(spec)
    L, n, T = spec.lanes, spec.beats, first.shape[1]
    wa, wb = spec.element_a.bits, spec.element_b.bits
    got: list[int] = []

    async def bench(ctx) -> None:
        for t in range(T):
            for j in range(n):
                if rng.random() < 0.2:  # a bubble: everything else is garbage
                    ctx.set(dut.in_valid, 0)
                    ctx.set(dut.a, int(rng.integers(1 << 30)))
                    await ctx.tick()
                last = j == n - 1
                ctx.set(dut.a, sum(int(a[0, t, j * L + i]) << (i * wa) for i in range(L)))
                ctx.set(dut.b, sum(int(b[0, t, j * L + i]) << (i * wb) for i in range(L)))
                ctx.set(dut.in_valid, 1)
                ctx.set(dut.in_first, int(first[0, t]) if last else int(rng.integers(2)))
                ctx.set(dut.scale_a, int(sa[0, t]) if last else int(rng.integers(256)))
                ctx.set(dut.scale_b, int(sb[0, t]) if last else int(rng.integers(256)))
                await ctx.tick()
        ctx.set(dut.in_valid, 0)
        for _ in range(spec.latency + 2):
            await ctx.tick()

    async def monitor(ctx) -> None:
        async for _clk, _rst, valid, acc in ctx.tick().sample(dut.out_valid, dut.acc):
            if valid:
                got.append(acc)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run()
    return got


SMALL = [
    BlockDotSpec(block=4),
    BlockDotSpec("e5m2", "e5m2", block=4, lanes=2),
    BlockDotSpec("int8", "int8", block=4, lanes=1, stages=4),
    BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=4, stages=1),
    BlockDotSpec("e4m3fn", "e5m2", "e4m3fn", "e8m0fnu", block=2, stages=3, acc="bf16"),
    BlockDotSpec("e3m2fn", "e2m3fn", block=8, lanes=4, stages=2),
    BlockDotSpec("e5m2", "e5m2", "e4m3fn", "e4m3fn", block=2),
    BlockDotSpec("int8", "e2m1fn", "e8m0fnu", "e4m3fn", block=4, lanes=2, acc="fp16"),
    BlockDotSpec("int4", "int4", "e4m3fn", "e4m3fn", block=8, lanes=4, stages=1),  # NVINT4
    BlockDotSpec("int6", "e3m2fn", "e8m0fnu", "ue5m3", block=8, lanes=2),
    BlockDotSpec("int2", "int5", "ue4m3", "ue5m3", block=4, stages=2, acc="bf16"),
    BlockDotSpec("e2m1fn", "e2m1fn", "ue5m3", "ue5m3", block=4, lanes=1, stages=3),
    BlockDotSpec("e3m2fn", "e2m3fn", block=8, lanes=8, stages=9),  # every cut: operands, align, tree, block sum
    BlockDotSpec("e2m1fn", "e2m1fn", block=4, lanes=2, stages=9),  # the tree cuts of a one-level tree
    BlockDotSpec("e4m3fn", "e4m3fn", block=8, lanes=4, stages=6, rounding="deferred", segment=16),
    # every cut: the aligner shift's parts registered after the scale exponent sum's register
    BlockDotSpec("e4m3fn", "e5m2", block=8, lanes=4, stages=9, rounding="deferred", segment=16),
]


@pytest.mark.parametrize("spec", SMALL, ids=lambda s: s.name)
def test_amaranth_simulation_matches_golden(spec: BlockDotSpec) -> None:
    a, b, sa, sb, first = _stimulus(spec, 80, seed=len(spec.name))
    want = golden.run(spec, a=a, b=b, scale_a=sa, scale_b=sb, first=first)["acc"][0].tolist()
    assert amaranth_run(spec, a, b, sa, sb, first) == want


@pytest.mark.parametrize(
    "spec",
    [
        BlockDotSpec(),
        CI_SPEC,
        BlockDotSpec("int8", "int8", lanes=8, stages=4),
        BlockDotSpec("e5m2", "e3m2fn", "e4m3fn", "e8m0fnu", 8, lanes=2, acc="bf16"),
        BlockDotSpec("int4", "int6", "ue4m3", "ue5m3", 64, lanes=8),
    ],
    ids=lambda s: s.name,
)
def test_manifest_fields(spec: BlockDotSpec) -> None:
    """Lint, determinism and manifest ports: tests/test_family_contract.py."""
    man = rtl.manifest(spec)
    ports = {p["name"]: p["width"] for p in man["ports"]}
    assert ports == {
        **CONTROL_PORTS,
        "a": spec.lanes * spec.element_a.bits,
        "b": spec.lanes * spec.element_b.bits,
        "scale_a": spec.scale_a.bits,
        "scale_b": spec.scale_b.bits,
        "acc": spec.acc.bits,
    }
    assert man["latency"] == spec.stages + 1 and man["family"] == "blockdot"
    assert man["throughput"]["cycles_per_block"] == spec.block // spec.lanes
    assert man["block"]["sampled_on_last_beat"] == ["in_first", "scale_a", "scale_b"]
    assert man["lane_packing"]["a"]["order"] == "lsb_first"
    assert man["datapath"] == dataclasses.asdict(blockdot_geometry(spec))


def test_manifest_names_the_scheme() -> None:
    man = rtl.manifest(BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16))
    assert man["lane_packing"]["a"]["scheme"] == "nvfp4"
    assert rtl.manifest(BlockDotSpec("int8", "int8"))["lane_packing"]["b"]["scheme"] == "mxint8"
    assert (
        rtl.manifest(BlockDotSpec("int4", "int4", "e4m3fn", "e4m3fn", block=16))["lane_packing"]["a"]["scheme"]
        == "nvint4"
    )
    assert rtl.manifest(BlockDotSpec("int6", "int4"))["lane_packing"]["b"]["scheme"] == "mxint4"


def test_geometry_widths_from_formats() -> None:
    g = blockdot_geometry(BlockDotSpec())
    # E4M3: products 2^-18 .. 448^2 = 200704 * 2^0 -> 2^18 * 200704 < 2^36: 36 bits; 32 lanes: +5 +sign
    assert (g.lsb_exp, g.span, g.lane_sum_width, g.v_width) == (-18, 36, 42, 42)
    # the loop clamps the (biased) exponent of its sum to [emin - man_bits - 3, emax + 2]
    assert (g.loop.exp_lo - 127, g.loop.exp_hi - 127) == (-152, 129)
    nv = blockdot_geometry(BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16, lanes=4))
    assert nv.scale_sig_bits == 8 and nv.block_sum_width == nv.lane_sum_width + 2


# ---- Verilator regression ------------------------------------------------------------------------


@pytest.mark.sim
def test_ci_regression_every_named_set() -> None:
    from peforge.sim import regression

    res = regression.verify(CI_SPEC, vectors=6000, exhaustive=True)
    assert res.ok, res.report
    for name in (
        "all_max",
        "zeros",
        "nan_scale",
        "cancel",
        "codes_everywhere:a",
        "codes_everywhere:b",
        "pairs",
        "random",
        "random_gaps",
    ):
        assert res.sets[name] > 0, name
    assert res.sets["pairs"] >= 16 * 16


@pytest.mark.sim
def test_ci_regression_int_elements_unsigned_scales() -> None:
    """The new block formats in CI: INT4 (NVINT4) against INT6 elements, UE5M3 and UE4M3
    scales, two beats; every element-code pair and every named set."""
    from peforge.sim import regression

    spec = BlockDotSpec("int4", "int6", "ue5m3", "ue4m3", block=16, lanes=8, stages=2)
    res = regression.verify(spec, vectors=3000, exhaustive=True, seed=2)
    assert res.ok, res.report
    assert res.sets["pairs"] >= 16 * 64 and res.sets["zeros"] > 0


@pytest.mark.sim
def test_tampered_golden_is_reported() -> None:
    from peforge.sim import batch, regression
    from peforge.sim import blockdot as sb

    bench = batch.bench_for(CI_SPEC)
    vs = sb.random_set(CI_SPEC, 2000, 64, seed=4)
    goldens = [batch.golden_for(bench, vs)]
    goldens[0]["acc"][2, 5] ^= np.uint64(1)
    res = regression.verify_sets(bench, [vs], name=CI_SPEC.name, goldens=goldens, waves_on_failure=False)
    assert not res.ok and "random row 2 block 5 (result" in res.report and "scale_a=" in res.report


@pytest.mark.sim
def test_cli_verify_json() -> None:
    args = [
        "verify",
        "blockdot",
        "--element-a",
        "e2m1fn",
        "--element-b",
        "e2m1fn",
        "--scale-a",
        "e4m3fn",
        "--scale-b",
        "e4m3fn",
        "--block",
        "16",
        "--lanes",
        "4",
        "--stages",
        "1",
        "--vectors",
        "500",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["mismatches"] == 0 and out["checked"] > 500


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize(
    "spec",
    [
        BlockDotSpec(),
        BlockDotSpec("e5m2", "e5m2"),
        BlockDotSpec("e3m2fn", "e2m3fn", lanes=16, stages=2),
        BlockDotSpec("e2m1fn", "e2m1fn", stages=1),
        BlockDotSpec("int8", "int8", lanes=8, stages=3),
        BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16),
        BlockDotSpec("e5m2", "e5m2", "e4m3fn", "e4m3fn", block=8, acc="bf16"),
        BlockDotSpec("int4", "int4", "e4m3fn", "e4m3fn", block=16, lanes=4),  # NVINT4
        BlockDotSpec("int4", "int4", lanes=8, stages=1),  # MXINT4
        BlockDotSpec("int6", "int6", lanes=8, stages=2),  # MXINT6
        BlockDotSpec("int8", "e4m3fn", "e8m0fnu", "ue5m3", block=64, lanes=8),
        BlockDotSpec("e2m1fn", "e2m1fn", "ue5m3", "ue5m3", block=16, lanes=4, stages=3),
        BlockDotSpec("int2", "int3", "ue4m3", "ue4m3", block=32, lanes=16),
        BlockDotSpec("int5", "int7", "ue4m3", "e8m0fnu", block=128, lanes=16, acc="bf16"),
    ],
    ids=lambda s: s.name,
)
def test_slow_formats_exhaustive(spec: BlockDotSpec) -> None:
    from peforge.sim import regression

    res = regression.verify(spec, vectors=40_000, exhaustive=True, seed=1)
    assert res.ok, res.report


def test_cli_generate_and_bad_option() -> None:
    runner = CliRunner()
    out = BUILD / "cli"
    result = runner.invoke(
        app,
        [
            "generate",
            "blockdot",
            "--element-a",
            "int8",
            "--element-b",
            "int8",
            "--lanes",
            "8",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    paths = json.loads(result.output)
    man = json.loads(Path(paths["manifest"]).read_text())
    assert man["spec"]["element_a"] == "int8f6" and man["throughput"]["cycles_per_block"] == 4
    result = runner.invoke(app, ["generate", "blockdot", "--scale-a", "e5m2"])
    assert result.exit_code == 2 and "scale_a='e5m2'" in result.output and "e8m0fnu" in result.output


@pytest.mark.parametrize(
    "spec",
    [
        BlockDotSpec(),
        CI_SPEC,
        BlockDotSpec("int8", "e2m3fn", block=8),
        BlockDotSpec("int4", "int2", "ue5m3", "ue4m3", block=8),
    ],
    ids=lambda s: s.name,
)
def test_named_sets_cover_every_code_in_every_lane(spec: BlockDotSpec) -> None:
    from peforge.sim import batch
    from peforge.sim.blockdot import named_sets
    from peforge.sim.ports import PortMap

    sets = {bs.name: bs for bs in named_sets(spec, rows=12)}
    for side, fmt in (("a", spec.element_a), ("b", spec.element_b)):
        codes = getattr(sets[f"codes_everywhere:{side}"], side).reshape(-1, spec.block)
        for lane in range(spec.block):
            assert set(codes[:, lane].tolist()) == set(range(fmt.num_codes)), (side, lane)
    nan = sets["nan_scale"]
    assert (nan.ports["scale_a"] == spec.scale_a.nan_code).any()
    assert (nan.ports["scale_b"] == spec.scale_b.nan_code).any()
    # beat layout (from the manifest): every block takes `beats` input cycles of `lanes`
    # elements, and the last beat carries the block's first and scales
    zeros = sets["zeros"]
    ports = PortMap.from_manifest(rtl.manifest(spec))
    plan = batch.make_plan([zeros], zeros.batch, ports)
    raw = np.frombuffer(batch.encode(plan, seed=1), np.uint8).reshape(plan.cycles, -1)  # bytes, MSB first
    words = np.unpackbits(raw[:, ::-1], axis=-1, bitorder="little")  # bits, LSB first
    n = spec.beats
    cycles = batch.Layout.of(zeros, ports).beat_cycle
    assert ports.beats == n and cycles.size == zeros.steps * n
    row0 = words[cycles, 2 : 2 + ports.in_bits]  # copy 0's inputs, every beat
    fa = ports.input("a")
    a = batch.from_bits(row0[:, fa.offset : fa.offset + fa.width].reshape(-1, fa.lanes, fa.lane_bits))
    np.testing.assert_array_equal(a.reshape(zeros.steps, n * fa.lanes), zeros.a[0])
    for port, want in (("in_first", zeros.first[0]), ("scale_a", zeros.ports["scale_a"][0])):
        f = ports.input(port)
        got = batch.from_bits(row0[n - 1 :: n, f.offset : f.offset + f.width])
        np.testing.assert_array_equal(got, want)
