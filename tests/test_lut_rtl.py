"""LUT PE RTL (family ``lut``): lint-clean deterministic Verilog without multipliers, the
manifest, the Amaranth simulation against a Python-integer reference, and the cocotb regression
on Verilator against the golden model (the vector sets of :mod:`peforge.sim.lut`) and the CLI.

CI sample: one Verilator build (int8 activations x int4 weights, 4 lanes, stage 1: every weight
code for every table entry, every activation code, extreme chains, random dot products with
bubbles).  Ternary and float activations run in the Amaranth simulator in CI and on Verilator
with ``-m slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ports import CONTROL_PORTS
from regress import verified
from test_lut_golden import random_inputs, ref_run
from typer.testing import CliRunner

from peforge import rtl
from peforge import spec as spec_mod
from peforge.cli import app
from peforge.models.golden import lut as glut
from peforge.spec import LutSpec

BUILD = Path(__file__).resolve().parent.parent / "build" / "test_lut_rtl"
CI_SPEC = LutSpec("int8", 4, lanes=4, stages=1)


@pytest.mark.parametrize(
    "s",
    [
        LutSpec(),
        LutSpec("e4m3fn", "ternary", group=6, lanes=4, stages=2),
        LutSpec("uint8", 1, group=3, symmetric=False, stages=1),
        LutSpec("int4", 2, acc_bits=8, lanes=16),
    ],
    ids=str,
)
def test_manifest_fields_and_no_multiplier(s: LutSpec) -> None:
    """Lint, determinism and manifest ports: tests/test_family_contract.py."""
    assert rtl.verilog(s).count(" * ") == 0, "a multiplier in the LUT PE"
    man = rtl.manifest(s)
    ports = {p["name"]: p["width"] for p in man["ports"]}
    assert ports == {
        **CONTROL_PORTS,
        "a": s.group * s.act.bits,
        "b": s.lanes * s.group * s.weight_code_bits,
        "acc": s.lanes * s.width,
    }
    assert man["latency"] == s.planes + 2 + s.stages
    assert man["cycles_per_weight_bit"] == 1 and man["initiation_interval"] == s.planes
    assert man["timing"]["macs_per_cycle"] == s.lanes * s.group / s.planes
    assert man["result"]["lanes"] == s.lanes and man["result"]["width"] == s.width
    assert man["datapath"]["table_entries"] == (2 ** (s.group - 1) if s.symmetric else 2**s.group)
    assert spec_mod.from_dict(man["spec"]) == s


def _amaranth_run(spec: LutSpec, a, b, first, extra_gaps) -> list[int]:
    """Drive one chain through the Amaranth simulator; acc port at each result's cycle."""
    from amaranth.sim import Simulator

    dut = rtl.build(spec)
    out: list[int] = []
    due: dict[int, int] = {}

    async def bench(ctx) -> None:
        cyc = 0
        for t in range(a.shape[1]):
            ctx.set(dut.in_valid, 1)
            ctx.set(dut.in_first, int(first[0, t]))
            ctx.set(dut.a, sum(int(c) << (j * spec.act.bits) for j, c in enumerate(a[0, t])))
            ctx.set(
                dut.b,
                sum(
                    int(c) << ((i * spec.group + j) * spec.weight_code_bits)
                    for i in range(spec.lanes)
                    for j, c in enumerate(b[0, t, i])
                ),
            )
            due[cyc + spec.latency] = t
            for _ in range(spec.initiation_interval + int(extra_gaps[t])):
                await ctx.tick()
                cyc += 1
                ctx.set(dut.in_valid, 0)
                ctx.set(dut.in_first, 1)
                ctx.set(dut.a, (cyc * 0x9E3779B1) & ((1 << len(dut.a)) - 1))  # garbage between inputs
                assert ctx.get(dut.out_valid) == (cyc in due), cyc
                if cyc in due:
                    out.append(ctx.get(dut.acc))
        for _ in range(spec.latency):
            await ctx.tick()
            cyc += 1
            if cyc in due:
                out.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize(
    "spec",
    [
        LutSpec(weight_bits=1),
        LutSpec("e4m3fn", "ternary", lanes=2, stages=2),
        LutSpec("uint8", 2, group=3, symmetric=False, stages=1),
        LutSpec("int8", "ternary", symmetric=False, lanes=3),
        LutSpec("e5m2", 3, group=5, stages=1),
        LutSpec("int4", 2, acc_bits=8, lanes=2),
        LutSpec("e2m1fn", 4, group=8, symmetric=False, lanes=2, stages=2),
    ],
    ids=str,
)
def test_amaranth_sim_matches_python_ints(spec: LutSpec) -> None:
    a, b, first = random_inputs(spec, 1, 48, seed=11, p_first=0.1)
    gaps = np.random.default_rng(2).integers(0, 3, 48)
    got = glut.lane_values(spec, np.array(_amaranth_run(spec, a, b, first, gaps), dtype=object)).tolist()
    assert got == ref_run(spec, a, b, first)[0]


def test_standard_sets_cover_the_issue_list() -> None:
    """Every weight code for every table entry, every activation code, extreme chains, random
    dot products with and without bubbles; every step followed by planes - 1 bubbles."""
    from peforge.sim import batch
    from peforge.sim import lut as slut
    from peforge.sim.ports import PortMap

    for spec in (CI_SPEC, LutSpec("e4m3fn", "ternary", lanes=2)):
        sets = {vs.name: vs for vs in slut.lut_sets(spec, 5000, True, 0, rows=8)}
        assert set(sets) == {"table_entries", "extremes", "act_codes", "random", "random_gaps"}
        b = sets["table_entries"].b
        vecs = {tuple(v) for v in b.reshape(-1, spec.group).tolist()}
        n = 2**spec.weight_code_bits
        want = {
            tuple(c if m >> j & 1 else c2 for j in range(spec.group))
            for m in range(2**spec.group)
            for c in range(n)
            for c2 in range(n)
        }
        assert want <= vecs  # so every plane selects every table entry with every weight code
        a = sets["act_codes"].a
        assert all(set(a[..., j].ravel().tolist()) == set(range(spec.act.num_codes)) for j in range(spec.group))
        a = sets["extremes"].a
        most_negative = slut._act_edges(spec)[0]
        assert (a[0] == most_negative).all() and sets["extremes"].steps >= min(spec.max_count, 4096)
        ports = PortMap.from_manifest(rtl.manifest(spec))  # the testbench spaces inputs as the manifest says
        for vs in sets.values():
            cycles = batch.Layout.of(vs, ports).beat_cycle
            assert cycles[0] >= spec.planes and (np.diff(cycles) >= spec.planes).all()


@pytest.mark.sim
def test_cli_generate_and_verify_on_verilator() -> None:
    """The CI Verilator regression, run through the CLI (one build)."""
    cli = CliRunner()
    out = BUILD / "cli"
    res = cli.invoke(
        app,
        [
            "generate",
            "lut",
            "--act",
            "int8",
            "--weight-bits",
            "4",
            "--lanes",
            "4",
            "--stages",
            "1",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["module"] == CI_SPEC.name
    res = cli.invoke(app, ["generate", "lut", "--weight-bits", "ternery"])
    assert res.exit_code == 2 and "weight_bits='ternery'" in res.output and "1..4" in res.output
    res = cli.invoke(
        app, ["verify", "lut", "--lanes", "4", "--stages", "1", "--exhaustive", "--vectors", "12000", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    expected = 16**3 // 4 + 256 + 32 * 4096 + 12_000  # table entries, act codes, extremes, random
    assert summary["spec"] == CI_SPEC.name and summary["mismatches"] == 0
    assert summary["checked"] >= expected


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize(
    "spec",
    [
        LutSpec("e4m3fn", "ternary", lanes=2),
        LutSpec("int8", "ternary", group=8, symmetric=False, lanes=4, stages=2),
        LutSpec("int16", 1, group=8, symmetric=False),
        LutSpec("e5m2", 3, group=5, lanes=16, stages=2),
        LutSpec("uint8", 2, group=2, lanes=64),
        LutSpec("int4", 4, acc_bits=10, lanes=3),
        LutSpec("e2m1fn", 2, group=6, stages=1, max_count=64),
    ],
    ids=str,
)
def test_verilator_slow_matrix(spec: LutSpec) -> None:
    verified(spec, 100_000, exhaustive=True, seed=3)
