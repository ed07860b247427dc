"""SIMD PE (family ``simd``): spec validation and JSON round trip, golden model against plain
Python integers, the Amaranth RTL in the Amaranth simulator against a Python-int reference
written here, lint, deterministic Verilog, manifest."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from ports import CONTROL_PORTS

from peforge import spec as spec_mod
from peforge.models.golden import run
from peforge.spec import SimdMacSpec

BUILD = Path(__file__).resolve().parent.parent / "build" / "test_simd"


# ---- independent reference ---------------------------------------------------------------
def ref_step(spec: SimdMacSpec, a: int, b: int, mode: int, sa: int, sb: int) -> int:
    """Sum of one step's lane products, from the port semantics with Python ints."""
    abits, bbits = (int(w) for w in spec.modes[mode].split("x"))
    lanes = spec.base * spec.base // (abits * bbits)

    def lane(word: int, bits: int, i: int, signed: int) -> int:
        v = (word >> (i * bits)) & ((1 << bits) - 1)
        return v - (1 << bits) if signed and v >> (bits - 1) else v

    return sum(lane(a, abits, i, sa) * lane(b, bbits, i, sb) for i in range(lanes))


def ref_run(spec: SimdMacSpec, steps) -> list[int]:
    """Accumulator port bits after each (a, b, first, mode, sa, sb) step."""
    w, acc, out = spec.width, 0, []
    for a, b, first, mode, sa, sb in steps:
        acc = (0 if first else acc) + ref_step(spec, a, b, mode, sa, sb)
        acc = (acc + (1 << (w - 1))) % (1 << w) - (1 << (w - 1))
        out.append(acc & ((1 << w) - 1))
    return out


def random_steps(spec: SimdMacSpec, n: int, seed: int, p_first: float = 0.1, extreme: float = 0.3):
    rng = random.Random(seed)
    steps = []
    for i in range(n):
        mode = rng.randrange(len(spec.modes))
        abits, bbits = (int(w) for w in spec.modes[mode].split("x"))

        def word(width: int, bits: int) -> int:
            v = rng.getrandbits(width)
            for k in range(width // bits):
                if rng.random() < extreme:
                    code = rng.choice([0, (1 << (bits - 1)) - 1, 1 << (bits - 1), (1 << bits) - 1])
                    v = v & ~(((1 << bits) - 1) << (k * bits)) | code << (k * bits)
            return v

        steps.append(
            (
                word(spec.a_width, abits),
                word(spec.b_width, bbits),
                i == 0 or rng.random() < p_first,
                mode,
                rng.getrandbits(1),
                rng.getrandbits(1),
            )
        )
    return steps


def golden_run(spec: SimdMacSpec, steps) -> list[int]:
    cols = list(zip(*steps))
    words = lambda col: np.array([list(col)], dtype=object)  # noqa: E731
    res = run(
        spec,
        a=words(cols[0]),
        b=words(cols[1]),
        first=[list(cols[2])],
        mode=[list(cols[3])],
        a_signed=[list(cols[4])],
        b_signed=[list(cols[5])],
    )
    return [int(v) for v in res["acc"][0]]


SPECS = [
    SimdMacSpec(),
    SimdMacSpec(arch="sub4"),
    SimdMacSpec(stages=2, acc_bits=20),
    SimdMacSpec(16),
    SimdMacSpec(16, arch="sub4", stages=1),
    SimdMacSpec(16, modes=("16x2", "2x16", "2x2", "8x16"), stages=3),
]


# ---- spec ----------------------------------------------------------------------------------
def test_spec_defaults_and_geometry() -> None:
    s = SimdMacSpec()
    assert s.modes == ("8x8", "8x4", "4x4", "4x2", "2x2")
    assert s.mode_lanes == (1, 2, 4, 8, 16)
    assert (s.a_width, s.b_width, s.mode_bits, s.latency) == (32, 32, 3, 1)
    assert SimdMacSpec(arch="sub4").modes == ("8x8", "8x4", "4x4")
    assert SimdMacSpec(16).modes == ("16x16", "16x8", "8x8", "8x4", "4x4")
    assert SimdMacSpec(16).mode_lanes == (1, 2, 4, 8, 16)
    # derived width: 4096 steps of the widest sum, any signedness, never overflows
    for sp in (s, SimdMacSpec(16), SimdMacSpec(modes=("2x2",), max_count=7)):
        w = sp.width
        for m in range(len(sp.modes)):
            lo, hi = sp.step_range(m)
            assert -(1 << (w - 1)) <= lo * sp.max_count and hi * sp.max_count < 1 << (w - 1)
    assert SimdMacSpec(modes=("8x8",)).width == 29  # 4096 * 255 * 255 < 2**28


@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(base=4), "base=4"),
        (dict(base=True), "base=True"),
        (dict(modes=("8x3",)), "'8x3'"),
        (dict(modes=("16x8",)), "'16x8'"),
        (dict(modes=("8by8",)), "'8by8'"),
        (dict(arch="sub4", modes=("8x8", "4x2")), "'4x2'"),
        (dict(modes=("8x8", "8X8")), "twice"),
        (dict(modes=()), "modes=()"),
        (dict(arch="bitserial"), "arch='bitserial'"),
        (dict(acc_bits=3), "acc_bits=3"),
        (dict(stages=5), "stages=5"),
        (dict(max_count=0), "max_count=0"),
    ],
)
def test_spec_validation_names_field_and_value(kw: dict, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        SimdMacSpec(**kw)
    assert needle in str(err.value)


@pytest.mark.parametrize("s", SPECS, ids=str)
def test_spec_json_round_trip(s: SimdMacSpec) -> None:
    back = spec_mod.from_json(s.to_json())
    assert back == s and hash(back) == hash(s) and back.name == s.name
    assert isinstance(back.modes, tuple)
    assert re.fullmatch(r"[a-z0-9_]+", s.name)  # usable as a Verilog module and file name
    assert SimdMacSpec(modes="8x8, 4x4").modes == ("8x8", "4x4")


# ---- golden model vs Python ints --------------------------------------------------------------
@pytest.mark.parametrize("s", SPECS + [SimdMacSpec(modes=("2x2", "8x8"), acc_bits=17)], ids=str)
def test_golden_matches_python_ints(s: SimdMacSpec) -> None:
    steps = random_steps(s, 600, seed=hash(s.name) % 1000)
    assert golden_run(s, steps) == ref_run(s, steps)


def test_golden_batch_uint64_and_every_pair_in_low_byte() -> None:
    s = SimdMacSpec()
    a, b = np.meshgrid(np.arange(256, dtype=np.uint64), np.arange(256, dtype=np.uint64), indexing="ij")
    a, b = a.reshape(256, 256), b.reshape(256, 256)
    for mode in range(5):
        for sa in (0, 1):
            for sb in (0, 1):
                full = np.full(a.shape, 1)
                res = run(s, a=a, b=b, first=full, mode=full * mode, a_signed=full * sa, b_signed=full * sb)
                exp = [
                    [ref_run(s, [(int(x), int(y), 1, mode, sa, sb)])[0] for x, y in zip(ra, rb)]
                    for ra, rb in zip(a[::37], b[::37])
                ]
                assert res["acc"][::37].tolist() == exp


def test_golden_rejects_bad_mode_and_shapes() -> None:
    s = SimdMacSpec(modes=("8x8", "4x4", "2x2"))
    with pytest.raises(ValueError, match="mode=3"):
        run(s, a=[[1]], b=[[1]], first=[[1]], mode=[[3]], a_signed=[[0]], b_signed=[[0]])
    with pytest.raises(ValueError, match="shape"):
        run(s, a=[[1, 2]], b=[[1]], first=[[1]], mode=[[0]], a_signed=[[0]], b_signed=[[0]])


# ---- RTL in the Amaranth simulator ------------------------------------------------------------
def amaranth_run(s: SimdMacSpec, steps, idle_every: int = 0) -> list[int]:
    """Drive steps (with idle cycles carrying garbage) and check out_valid timing."""
    from amaranth.sim import Simulator

    from peforge.rtl import build

    dut = build(s)
    sched: list = []
    for i in range(len(steps)):
        if idle_every and i % idle_every == idle_every - 1:
            sched.append(None)
        sched.append(i)
    sched += [None] * s.latency
    seen: list[tuple[int, int]] = []
    rng = random.Random(0)

    async def bench(ctx):
        for idx in sched:
            if idx is None:
                ctx.set(dut.in_valid, 0)
                ctx.set(dut.a, rng.getrandbits(s.a_width))
                ctx.set(dut.mode, rng.randrange(len(s.modes)))
            else:
                a, b, first, mode, sa, sb = steps[idx]
                for port, v in (
                    (dut.in_valid, 1),
                    (dut.a, a),
                    (dut.b, b),
                    (dut.in_first, first),
                    (dut.mode, mode),
                    (dut.a_signed, sa),
                    (dut.b_signed, sb),
                ):
                    ctx.set(port, v)
            seen.append((ctx.get(dut.out_valid), ctx.get(dut.acc)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    out, lat = [], s.latency
    for cycle, idx in enumerate(sched):
        if idx is not None:
            valid, acc = seen[cycle + lat]
            assert valid == 1, f"out_valid low {lat} cycles after step {idx}"
            out.append(acc)
    assert sum(v for v, _ in seen) == len(steps)
    return out


@pytest.mark.parametrize("s", SPECS, ids=str)
def test_rtl_amaranth_sim_matches_reference(s: SimdMacSpec) -> None:
    steps = random_steps(s, 150, seed=3)
    assert amaranth_run(s, steps, idle_every=7) == ref_run(s, steps)


# ---- Verilog, lint, manifest -------------------------------------------------------------------
@pytest.mark.parametrize("s", [SimdMacSpec(), SimdMacSpec(16, arch="sub4", stages=2)], ids=str)
def test_manifest_fields(s: SimdMacSpec) -> None:
    """Lint, determinism and manifest ports: tests/test_family_contract.py."""
    from peforge import rtl

    man = rtl.manifest(s)
    assert man["module"] == s.name and man["latency"] == s.latency
    ports = {p["name"]: p["width"] for p in man["ports"]}
    assert ports == {
        **CONTROL_PORTS,
        "mode": s.mode_bits,
        "a_signed": 1,
        "b_signed": 1,
        "a": s.a_width,
        "b": s.b_width,
        "acc": s.width,
    }
    assert [(m["name"], m["lanes"]) for m in man["modes"]] == list(zip(s.modes, s.mode_lanes))
    assert man["result"]["encoding"] == "twos_complement" and man["result"]["width"] == s.width
    assert spec_mod.from_dict(man["spec"]) == s


def test_bricks_arch_has_no_multiplier_operator() -> None:
    """The bricks datapath is 2b x 2b partial products and shift-add fusion, no `*`."""
    from peforge import rtl

    text = rtl.verilog(SimdMacSpec())
    assert " * " not in text
    sub4 = rtl.verilog(SimdMacSpec(arch="sub4"))
    assert text.count(" * ") == 0 and sub4.count(" * ") == 4  # four 4b x 4b sub-multipliers


def test_cli_generate_simd(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from peforge.cli import app

    res = CliRunner().invoke(
        app, ["generate", "simd", "--modes", "8x8,4x4,2x2", "--stages", "1", "-o", str(tmp_path), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["module"] == SimdMacSpec(modes=("8x8", "4x4", "2x2"), stages=1).name
    bad = CliRunner().invoke(app, ["generate", "simd", "--modes", "8x3", "-o", str(tmp_path)])
    assert bad.exit_code == 2 and "8x3" in bad.output
