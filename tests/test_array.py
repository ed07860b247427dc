"""PE arrays (issue 23): spec, geometry, golden model against the PE's model, RTL (Amaranth and
Verilator), cost composition, CLI.

The array's golden model is built on the PE's golden ``run``; these tests check it against the
PE's model used independently (a plain Python loop over PEs and chains, the PE's own
``golden.matmul``), and the RTL against the array's golden model cycle by cycle.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from family_references import array_steps
from typer.testing import CliRunner

from peforge import rtl
from peforge import spec as spec_mod
from peforge.arrays import ArraySpec, array_geometry, drain_levels, pe_view
from peforge.cli import app
from peforge.families import FAMILIES
from peforge.models import cost, golden
from peforge.models.golden import array as garray
from peforge.models.golden import kernels
from peforge.spec import BlockDotSpec, IntMacSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec

runner = CliRunner()


def _arrayable(fam):
    """Arrays can be built from the family's PEs (it has a view in peforge.arrays; optional)."""
    try:
        return fam.name != "array" and pe_view(fam.examples[0]) is not None
    except ValueError:
        return False


PE_FAMILIES = [f for f in FAMILIES if _arrayable(f)]
PES = [pe for f in PE_FAMILIES for pe in f.examples]
E4 = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
I8 = IntMacSpec("int8", "int8")


def _arrays(pe, rows=3, cols=2):
    """Every valid (dataflow, share, a_path) variant of a ``rows x cols`` array of ``pe``."""
    out = []
    for df in ("output-stationary", "weight-stationary"):
        for share in (True, False):
            for a_path in (None, "systolic", "broadcast"):
                try:
                    s = ArraySpec(pe, rows=rows, cols=cols, dataflow=df, share=share, a_path=a_path)
                except ValueError:
                    continue
                if s not in out:
                    out.append(s)
    return out


# --- spec ----------------------------------------------------------------------------------------
def test_spec_round_trip_and_name():
    s = ArraySpec(E4, rows=8, cols=8)
    assert s.name == "array_os8x8_mac_e4m3fnxe4m3fn_fp32_l1_s0"
    assert s.a_path == "systolic" and s.share and s.pipeline == 0
    back = spec_mod.from_json(s.to_json())
    assert back == s and back.pe == E4 and hash(back) == hash(s)
    assert ArraySpec(s.pe.to_dict(), rows=8, cols=8) == s
    lut = ArraySpec(LutSpec("int8", 2, 4), rows=2, cols=4)
    assert lut.a_path == "broadcast" and lut.row_unit
    assert (
        ArraySpec(I8, 2, 2, dataflow="weight-stationary", pipeline=1).name
        == "array_ws2x2_p1_intmac_int8xint8_l1_s0_n4096"
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pe": I8, "rows": 0}, r"rows=0 is out of range: allowed integers 1\.\.64"),
        ({"pe": I8, "cols": 65}, r"cols=65 is out of range"),
        ({"pe": I8, "dataflow": "row-stationary"}, r"dataflow='row-stationary' is not allowed"),
        ({"pe": I8, "a_path": "diagonal"}, r"a_path='diagonal' is not allowed"),
        ({"pe": I8, "pipeline": 5}, r"pipeline=5 is out of range"),
        ({"pe": E4, "dataflow": "weight-stationary"}, r"accumulator rounds or saturates"),
        (
            {"pe": IntMacSpec("int8", "int8", acc_bits=20, overflow="saturate"), "dataflow": "weight-stationary"},
            r"rounds or saturates",
        ),
        ({"pe": LutSpec("int8", 2, 4), "a_path": "systolic"}, r"needs its activations broadcast"),
        (
            {"pe": ShiftAddSpec("int4", "int4", "pot" if False else "shiftadd-int", group=4, scale="bf16"), "rows": 8},
            r"rows=8 with a shared group dequantiser.*allowed rows <= 4",
        ),
        ({"pe": "nope"}, r"pe='nope': expected a PE spec"),
        ({"pe": {"family": "array", "pe": I8.to_dict()}}, r"an array is built from a PE spec"),
    ],
)
def test_spec_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ArraySpec(**kwargs)


@pytest.mark.parametrize("pe", PES, ids=lambda s: s.name)
def test_pe_view_matches_the_rtl_signature_and_manifest(pe):
    """The array's view of a PE (port roles and widths, latency) is what the PE's RTL declares."""
    view = pe_view(pe)
    sig = rtl.signature(pe).members
    ins = {
        n: m.shape.width if hasattr(m.shape, "width") else int(m.shape)
        for n, m in sig.items()
        if m.flow.name == "In" and n not in ("in_valid", "in_first")
    }
    from amaranth.hdl import Shape

    ins = {n: Shape.cast(sig[n].shape).width for n in ins}
    assert {n: w for n, (_, w) in view.inputs.items()} == ins
    assert Shape.cast(sig["acc"].shape).width == view.acc_width
    assert view.flags_width == (Shape.cast(sig["acc_flags"].shape).width if "acc_flags" in sig else 0)
    outs = {n for n, m in sig.items() if m.flow.name == "Out"} - {"acc", "acc_flags", "out_valid"}
    assert outs == set(view.ignored_outputs)
    assert rtl.manifest(pe)["latency"] == view.latency
    assert view.acc_width % view.acc_lanes == 0


def test_geometry_timing():
    g = array_geometry(ArraySpec(E4, rows=8, cols=8))
    assert g.offset(3, 5) == 8 and g.max_offset == 14
    # input register, PE, result register + column register, deskew
    assert g.latency == 1 + E4.latency + 2 + 7 and g.min_last_gap == 8 and g.macs_per_cycle == 64
    assert g.drain_levels == 2 and g.drain_cuts == 0
    b = array_geometry(ArraySpec(E4, rows=8, cols=8, a_path="broadcast", pipeline=2))
    assert b.offset(3, 5) == 3 and b.latency == 1 + E4.latency + 2 + 2
    assert b.drain_cuts == 1  # the OR tree over 8 rows has 2 levels: one cut inside it, one after
    assert [drain_levels(r) for r in (1, 2, 4, 5, 16, 17, 64)] == [0, 1, 1, 2, 2, 3, 3]
    w = array_geometry(ArraySpec(I8, rows=4, cols=3, dataflow="weight-stationary"))
    assert w.latency == 1 + I8.latency + 3 + 1 + 2 and w.ws_swap_window == 3 + 2
    lut = ArraySpec(LutSpec("int8", 2, 4, lanes=2), rows=3, cols=4)
    lg = array_geometry(lut)
    assert lg.unit.spec == replace(lut.pe, lanes=8) and lg.units_per_row == 1 and lg.cols_per_unit == 4
    assert lg.macs_per_cycle == 3 * 4 * lut.pe.macs_per_cycle


# --- golden model ---------------------------------------------------------------------------------
def _step_inputs(spec, rng, batch=2, steps=9):
    first = np.zeros((batch, steps), bool)
    first[:, ::4] = True
    return cost_array_toggles().random(spec, rng, first)


def cost_array_toggles():
    from peforge.models.cost.array import ARRAY_TOGGLES

    return ARRAY_TOGGLES


@pytest.mark.parametrize("spec", [s for pe in PES for s in _arrays(pe, 2, 3)[:3]], ids=lambda s: s.name)
def test_step_view_is_every_pe_running_its_own_chain(spec):
    """Step view = PE (i, j) fed row i's and column j's operands (OS), or each column's sum of
    its PEs' step sums modulo the accumulator width (WS): one PE at a time, plain loops."""
    rng = np.random.default_rng(5)
    inp = _step_inputs(spec, rng)
    got = golden.run(spec, **inp)["acc"]
    want = array_steps(spec, inp, lambda pe, chain: [int(x) for x in golden.run(pe, **chain)["acc"][0]])
    for bt, row in enumerate(want):
        for s, word in enumerate(row):
            assert int(got[bt, s]) == word, (spec.name, bt, s)


@pytest.mark.parametrize("pe", PES, ids=lambda s: s.name)
def test_matmul_equals_the_pe_matmul(pe):
    """golden.matmul of every array variant of every example PE equals the PE's golden.matmul,
    bit for bit (shapes that fill no tile evenly; k not a multiple of a step)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 45)) * np.exp(rng.standard_normal((7, 1)))
    w = rng.standard_normal((45, 11))
    want = golden.matmul(pe, x, w)
    for spec in _arrays(pe, 3, 2) + _arrays(pe, 1, 4)[:1]:
        got = golden.matmul(spec, x, w)
        assert got.shape == want.shape and np.array_equal(got, want, equal_nan=True), spec.name


def test_matmul_goes_through_the_tiles_with_the_kernels_off():
    """The array's matmul runs its tiles (tile_results) even with the compiled kernels disabled,
    and a float-accumulating array reproduces the PE's per-step rounding on long k."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((9, 700)), rng.standard_normal((700, 5))
    calls = []
    orig = garray.tile_results

    def spy(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    garray.tile_results = spy
    try:
        with kernels.disabled():
            for pe in (E4, MinifloatMacSpec("e4m3fn", "e4m3fn", "bf16", lanes=4)):
                got = golden.matmul(ArraySpec(pe, rows=4, cols=4), x, w)
                assert np.array_equal(got, golden.matmul(pe, x, w))
    finally:
        garray.tile_results = orig
    assert calls
    # bf16 accumulation of 700 products: the rounding order matters, and is the PE's
    pe = MinifloatMacSpec("e4m3fn", "e4m3fn", "bf16")
    exact = x @ w
    assert not np.allclose(golden.matmul(ArraySpec(pe, 2, 2), x, w), exact, rtol=1e-4)


def test_tile_view_timing_and_results():
    spec = ArraySpec(E4, rows=3, cols=4)
    geo = array_geometry(spec)
    ts = _tileset(spec, tiles=5, k=6)
    res = golden.run(spec, ts.x, ts.w)
    sch = res["schedule"]
    assert list(np.flatnonzero(res["out_valid"])) == sorted(
        (sch.last_cycle[:, None] + geo.latency + np.arange(3)).ravel().tolist()
    )
    assert np.all(np.diff(sch.last_cycle) >= geo.min_last_gap)
    for t in range(5):
        for i in range(3):
            for j in range(4):
                first = np.zeros((1, 6), bool)
                first[0, 0] = True
                chain = golden.run(E4, a=ts.x[t : t + 1, i], b=ts.w[t : t + 1, :, j], first=first)["acc"][0, -1]
                assert int(res["results"][t, i, j]) == int(chain)
                assert int(res["out"][sch.out_cycle[t, i], j]) == int(chain)
    # a tile shorter than the drain gets idle cycles; gaps add idle cycles
    short = golden.run(spec, ts.x[:, :, :1], ts.w[:, :1])["schedule"]
    assert np.all(np.diff(short.last_cycle) == geo.min_last_gap)
    gapped = golden.run(spec, ts.x, ts.w, gap=4)["schedule"]
    assert np.all(np.diff(gapped.step_cycle[:, 0]) == 6 + 4)


def test_ws_schedule_respects_the_swap_window():
    spec = ArraySpec(I8, rows=3, cols=2, dataflow="weight-stationary")
    geo = array_geometry(spec)
    sch = garray.schedule(spec, tiles=4, steps=2)
    for t in range(1, 4):
        assert sch.load_cycle[t, 0] >= sch.step_cycle[t - 1, 0] + geo.ws_swap_window
        assert sch.load_cycle[t, -1] < sch.step_cycle[t, 0]
        assert sch.step_cycle[t, 0] > sch.step_cycle[t - 1, -1]


def test_golden_run_rejects_bad_input():
    spec = ArraySpec(E4, rows=2, cols=2)
    x = np.zeros((3, 2, 4, 1), np.uint64)
    with pytest.raises(ValueError, match=r"w_tiles must have shape \[3, 4, 2, \.\.\.\]"):
        golden.run(spec, x, np.zeros((3, 4, 3, 1), np.uint64))
    with pytest.raises(ValueError, match="give both x_tiles and w_tiles"):
        golden.run(spec, x)
    with pytest.raises(ValueError, match=r"scale_a=\.\.\. is not a port"):
        golden.run(spec, x, np.zeros((3, 4, 2, 1), np.uint64), scale_a=np.zeros((3, 2, 4)))
    sa = ArraySpec(ShiftAddSpec("int4", "int4", "shiftadd-int", group=4, scale="bf16"), rows=2, cols=2)
    with pytest.raises(ValueError, match=r"steps=6: a tile of the shared group dequantiser must hold whole groups"):
        golden.run(
            sa,
            np.zeros((1, 2, 6, 1), np.uint64),
            np.zeros((1, 6, 2, 1), np.uint64),
            scale=np.zeros((1, 6, 2), np.uint64),
        )
    bd = ArraySpec(BlockDotSpec(block=8, lanes=4), rows=2, cols=2)
    with pytest.raises(ValueError, match=r"scale_b is required"):
        golden.run(
            bd,
            np.zeros((1, 2, 3, 8), np.uint64),
            np.zeros((1, 3, 2, 8), np.uint64),
            scale_a=np.zeros((1, 2, 3), np.uint64),
        )


def _tileset(spec, tiles, k, seed=0):
    from peforge.sim.array import random_set

    return random_set(spec, tiles, k, seed=seed)


# --- RTL ------------------------------------------------------------------------------------------
def test_manifest():
    spec = ArraySpec(E4, rows=8, cols=8)
    man = rtl.manifest(spec)
    geo = array_geometry(spec)
    assert man["latency"] == geo.latency == spec.latency and man["family"] == "array"
    assert man["timing"]["pe_latency"] == rtl.manifest(E4)["latency"]
    assert man["throughput"]["macs_per_cycle"] == 64
    assert man["gemm"]["tile"] == {"rows": 8, "cols": 8, "k_per_step": 1}
    assert man["lane_packing"]["a"]["count"] == 8 and man["lane_packing"]["b"]["role"] == "per column"
    assert man["result"]["port"] == "out" and man["result"]["format"] == "fp32"
    ports = {p["name"]: p["width"] for p in man["ports"]}
    assert ports == {
        "clk": 1,
        "rst": 1,
        "in_valid": 1,
        "in_first": 1,
        "in_last": 1,
        "a": 64,
        "b": 64,
        "out_valid": 1,
        "out": 256,
    }
    lut = rtl.manifest(ArraySpec(LutSpec("int8", 2, 4), rows=2, cols=4))
    assert lut["shared_units"]["row_table"]["units"] == 2
    sa = rtl.manifest(ArraySpec(ShiftAddSpec("int4", "int4", "shiftadd-int", group=4, scale="bf16"), 2, 3))
    assert sa["shared_units"]["column_dequantiser"]["units"] == 3
    ws = rtl.manifest(ArraySpec(I8, 2, 2, dataflow="weight-stationary"))
    assert {p["name"] for p in ws["ports"]} >= {"w_load", "in_first"} and "in_last" not in {
        p["name"] for p in ws["ports"]
    }


def test_verilog_has_each_pe_module_once():
    spec = ArraySpec(E4, rows=3, cols=3)
    text = rtl.verilog(spec)
    assert text.count(f"module {E4.name}(") == 1 and text.count(f"module {spec.name}(") == 1
    assert text.count(f"  {E4.name} pe_") == 9
    lut = ArraySpec(LutSpec("int8", 2, 4), rows=2, cols=3)
    assert f"module {array_geometry(lut).unit.spec.name}(" in rtl.verilog(lut)


def test_os_grid_builds_the_pe_with_a_clear_register_per_group():
    """An output-stationary grid of PEs with a clear group (the INT MAC at stages >= 1) builds
    its PE as ``<pe>__clr<group>``: the ``first`` delay line (the accumulator's clear) one kept
    copy per group of accumulator bits; the PE alone, stage-0 and weight-stationary grids keep
    the PE's module."""
    pe = IntMacSpec("int8", "int8", stages=2)  # 28-bit accumulator: 7 groups of 4 bits
    spec = ArraySpec(pe, rows=2, cols=3)
    text = rtl.verilog(spec)
    module = f"{pe.name}__clr4"
    assert text.count(f"module {module}(") == 1 and f"module {pe.name}(" not in text
    assert text.count(f"  {module} pe_") == 6
    body = text[text.index(f"module {module}(") : text.index("endmodule", text.index(f"module {module}("))]
    assert body.count(f"  {spec.name}__keep #(") == 14 and body.count(".d(in_first)") == 7
    assert all(f".d(first_p0_c{k})" in body and f".q(first_p1_c{k})" in body for k in range(7))
    assert "reg first_p0 " not in body and "reg first_p1 " not in body
    assert rtl.manifest(spec)["pe"] | {"spec": None} == {
        "module": module,
        "spec": None,
        "manifest_latency": 3,
        "instances": 6,
        "clear_copies": 7,
    }
    assert "_c0" not in rtl.verilog(pe)  # the PE alone: one clear register
    for plain in (ArraySpec(I8, rows=2, cols=2), ArraySpec(pe, rows=2, cols=2, dataflow="weight-stationary")):
        assert f"module {plain.pe.name}(" in rtl.verilog(plain) and rtl.manifest(plain)["pe"]["clear_copies"] == 1


def _amaranth_run(spec, ts):
    """Drive a tile stream through the array in Amaranth's simulator (the sub-component build);
    return the observed (out_valid, out, out_flags) per cycle."""
    from amaranth.sim import Simulator

    from peforge.rtl.array import PeArray
    from peforge.sim.array import plan

    pl = plan(spec, ts)
    dut = PeArray(spec)
    seen = []
    names = [n for n in pl.inputs if n != "rst"]

    async def bench(ctx):
        for c in range(pl.cycles):
            for n in names:
                ctx.set(getattr(dut, n), pl.inputs[n][c])
            seen.append(
                (ctx.get(dut.out_valid), ctx.get(dut.out), ctx.get(dut.out_flags) if hasattr(dut, "out_flags") else 0)
            )
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return pl, seen


@pytest.mark.parametrize(
    "spec",
    [
        ArraySpec(IntMacSpec("int4", "int4", lanes=2), rows=2, cols=3),
        # the PE built with a clear register per group of accumulator bits
        ArraySpec(IntMacSpec("int4", "uint4", stages=2, acc_bits=10, overflow="saturate"), rows=3, cols=2),
        ArraySpec(MinifloatMacSpec("e2m1fn", "e2m1fn", "fp16"), rows=3, cols=2, pipeline=1),
        ArraySpec(IntMacSpec("int4", "int4"), rows=2, cols=3, dataflow="weight-stationary"),
        ArraySpec(LutSpec("int4", 2, 2), rows=2, cols=2),
        ArraySpec(ShiftAddSpec("int4", "int4", "shiftadd-int", group=2, scale="e8m0fnu"), rows=2, cols=2),
        # drain OR trees of two levels: one pipeline cut inside the tree (and one after it)
        ArraySpec(IntMacSpec("int4", "int4"), rows=6, cols=2, pipeline=2),
        ArraySpec(ShiftAddSpec("int4", "int4", "shiftadd-int", group=8, scale="e8m0fnu"), rows=5, cols=2, pipeline=1),
    ],
    ids=lambda s: s.name,
)
def test_amaranth_component_matches_golden(spec):
    """The array as Amaranth sub-components (not the Verilog instance build) against the golden
    model, every cycle: out_valid, and out on valid cycles."""
    ts = _tileset(spec, tiles=4, k=8 if spec.dataflow == "output-stationary" else 5, seed=3)
    pl, seen = _amaranth_run(spec, ts)
    geo = array_geometry(spec)
    for c, (valid, out, _) in enumerate(seen):
        assert bool(valid) == bool(pl.expected["out_valid"][c]), f"out_valid at cycle {c}"
        if valid:
            want = sum(int(v) << (j * geo.out_width) for j, v in enumerate(pl.expected["out"][c]))
            assert out == want, f"out at cycle {c}"


@pytest.mark.sim
@pytest.mark.parametrize(
    "spec, tiles",
    [
        (ArraySpec(E4, rows=8, cols=8), 1000),
        (ArraySpec(I8, rows=8, cols=8), 1000),
    ],
    ids=lambda v: v.name if hasattr(v, "name") else str(v),
)
def test_verilator_8x8_targets_1000_gemms(spec, tiles):
    """The targets: 8x8 output-stationary arrays of e4m3fn x e4m3fn -> fp32 MACs and of INT8 MACs,
    1,000 random 8x64x8 GEMMs back to back plus edge-code GEMMs, every cycle compared."""
    from peforge.sim.array import edge_set, random_set, verify_sets

    res = verify_sets(
        spec, [random_set(spec, tiles, 64, seed=11), edge_set(spec, 40, 64, seed=12)], waves_on_failure=False
    )
    assert res.mismatches == 0, res.report
    assert res.sets == {"random": tiles, "edges": 40} and res.checked == (tiles + 40) * 64


_SIM_CI = [
    ArraySpec(LutSpec("int8", 2, 4, lanes=2), rows=2, cols=3),
    # the INT MAC at stages 1 in an output-stationary grid: its clear register kept per 4 bits
    ArraySpec(IntMacSpec("int8", "int8", stages=1), rows=3, cols=2),
]
_SIM_SLOW = [
    ArraySpec(ShiftAddSpec("int4", "int4", "bitserial", group=4, scale="bf16"), rows=3, cols=2),
    ArraySpec(IntMacSpec("int8", "int8"), rows=3, cols=2, dataflow="weight-stationary"),
    ArraySpec(BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16, lanes=4), rows=2, cols=3),
    ArraySpec(SimdMacSpec(8, modes=("8x8", "4x4", "2x2")), rows=2, cols=2),
    ArraySpec(
        MinifloatMacSpec("e5m2", "e2m1fn", "exact", lanes=2, stages=1), rows=2, cols=3, dataflow="weight-stationary"
    ),
    ArraySpec(LutSpec("e4m3fn", "ternary", 3, lanes=2), rows=3, cols=2, share=False, dataflow="weight-stationary"),
    ArraySpec(E4, rows=4, cols=4, a_path="broadcast", pipeline=2),
    ArraySpec(MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", stages=2), rows=8, cols=8),
    ArraySpec(IntMacSpec("int8", "int8", stages=2), rows=8, cols=8),
    ArraySpec(ShiftAddSpec("int8", "pot4", "pot", lanes=2, group=8, scale="fp16"), rows=4, cols=4, share=False),
]


@pytest.mark.sim
@pytest.mark.parametrize(
    "spec", _SIM_CI + [pytest.param(s, marks=pytest.mark.slow) for s in _SIM_SLOW], ids=lambda s: s.name
)
def test_verilator_regression(spec):
    """Random, edge-code, gapped and short-tile GEMM streams (long-k too in the slow set)."""
    from peforge.sim.array import verify_array

    slow = spec in _SIM_SLOW
    res = verify_array(spec, vectors=20_000 if slow else 2_000, exhaustive=slow, seed=1)
    assert res.mismatches == 0 and res.checked > 0, res.report


@pytest.mark.sim
def test_verilator_wrong_expectation_is_reported(monkeypatch):
    """One flipped bit of one expected output and one expected out_valid raised on an idle cycle
    show up as exactly two mismatches, named by set, cycle and column."""
    from peforge.sim import array as sim_array

    spec = _SIM_CI[1]
    original = sim_array.plan
    spots: list[tuple[int, int]] = []

    def wrong_plan(spec_, ts):
        pl = original(spec_, ts)
        if ts.name == "random":
            valid = np.asarray(pl.expected["out_valid"])
            c, idle = int(np.flatnonzero(valid)[3]), int(np.flatnonzero(~valid)[-1])
            pl.expected["out"][c, 1] ^= np.uint64(1 << 2)
            pl.expected["out_valid"][idle] = True
            spots[:] = [(c, idle)]
        return pl

    monkeypatch.setattr(sim_array, "plan", wrong_plan)
    res = sim_array.verify_sets(spec, [sim_array.random_set(spec, 4, 8, seed=7)], waves_on_failure=False)
    ((c, idle),) = spots
    assert res.mismatches == 2 and not res.ok, res.report
    assert f"[random] cycle {c}: out column 1 = 0x" in res.report
    assert f"[random] cycle {idle}: out_valid 0, expected 1" in res.report


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("spec", [ArraySpec(E4, rows=8, cols=8), ArraySpec(I8, rows=8, cols=8)], ids=lambda s: s.name)
def test_verilator_8x8_slow_set(spec):
    """More GEMMs than CI: 10,000 random 8x64x8, long-k (8x4096x8) and edge-code GEMMs."""
    from peforge.sim.array import edge_set, random_set, verify_sets

    res = verify_sets(
        spec,
        [
            random_set(spec, 10_000, 64, seed=21),
            random_set(spec, 8, 4096, seed=22, name="long_k"),
            edge_set(spec, 400, 64, seed=23),
            edge_set(spec, 8, 4096, seed=24, p=0.05, name="long_k_edges"),
        ],
        waves_on_failure=False,
    )
    assert res.mismatches == 0, res.report


# --- cost ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["ecp5", "ice40", "asic45"])
def test_cost_composes_pe_estimates(target):
    """An array costs its PEs' estimates plus its own registers and muxes; throughput and energy
    per MAC include the operand movement."""
    pe_e = cost.estimate(E4, target)
    arr = ArraySpec(E4, rows=4, cols=4)
    e = cost.estimate(arr, target)
    assert e.family == "array" and e.macs_per_cycle == 16
    if target == "asic45":
        assert 16 * pe_e.gates_nand2 < e.gates_nand2 < 1.6 * 16 * pe_e.gates_nand2
        assert e.energy_pj_per_mac > pe_e.energy_pj_per_mac
        assert e.ffs > 16 * pe_e.ffs
    else:
        assert 16 * pe_e.luts <= e.luts < 1.5 * 16 * pe_e.luts + 500
        assert e.ffs > 16 * pe_e.ffs and e.dsps == 16 * pe_e.dsps
        assert e.fmax_mhz <= pe_e.fmax_mhz + 1e-9
        assert "median" in e.error["luts"]


def test_cost_shared_units_and_ws_accumulators():
    """A shared LUT table per row costs less than one per PE; shared dequantisers less than one
    per PE; a weight-stationary PE loses its accumulator's adder."""
    lut = LutSpec("int8", 2, 4)
    shared = cost.estimate(ArraySpec(lut, rows=4, cols=8), "asic45").gates_nand2
    private = cost.estimate(ArraySpec(lut, rows=4, cols=8, share=False), "asic45").gates_nand2
    assert shared < 0.8 * private
    sa = ShiftAddSpec("int8", "pot4", "pot", group=32, scale="fp16")
    assert (
        cost.estimate(ArraySpec(sa, 8, 8), "asic45").gates_nand2
        < 0.8 * cost.estimate(ArraySpec(sa, 8, 8, share=False), "asic45").gates_nand2
    )
    os_ = cost.estimate(ArraySpec(I8, 4, 4), "ice40").luts
    ws = cost.estimate(ArraySpec(I8, 4, 4, dataflow="weight-stationary"), "ice40").luts
    assert ws != os_ and math.isfinite(ws)


@pytest.mark.parametrize("stages", [0, 1])
def test_cost_ws_accumulator_kept_behind_a_register(stages):
    """A weight-stationary PE's ``in_first`` is tied high: Yosys removes the accumulator's adder
    only when ``first`` reaches it unregistered (a pipelined PE's ``first`` register resets to
    0, no constant); the composition prices what Yosys keeps (ECP5 carry cells, a few seconds)."""
    from peforge import fpga

    pe = IntMacSpec("int4", "int4", stages=stages)
    arr = ArraySpec(pe, rows=1, cols=2, dataflow="weight-stationary")  # one row: no partial sums
    kept = fpga.synthesize(arr, "ecp5").carry == 2 * fpga.synthesize(pe, "ecp5").carry
    assert kept == (stages > 0)  # the reference: what synthesis keeps
    pe_carry = cost.estimate(pe, "ecp5").carry
    est = cost.estimate(arr, "ecp5").carry
    # kept: both PEs' carry chains and the glue; removed: most of one PE's worth gone
    assert (est >= 2 * pe_carry - 1.0) if kept else (est <= 1.5 * pe_carry)


@pytest.mark.parametrize(
    "spec",
    [
        ArraySpec(IntMacSpec("int4", "int4", lanes=2, stages=1), rows=5, cols=2, pipeline=1),
        ArraySpec(IntMacSpec("int4", "int4", stages=2), rows=2, cols=3, dataflow="weight-stationary"),
    ],
    ids=lambda s: s.name,
)
def test_cost_register_count_is_yosys(spec):
    """The composed register count (PEs, hops and taps, drain, the PE registers synthesis merges
    in a weight-stationary grid) is what Yosys keeps (generic gates: a few seconds each)."""
    from peforge import fpga

    assert cost.estimate(spec, "asic45").ffs == fpga.synthesize(spec, "generic").ffs


def test_array_calibration_file_is_merged():
    from peforge.models.cost import calibration

    cal = calibration.load()
    if "array" not in cal.get("family_error", {}):
        pytest.skip("no array calibration shipped")
    for target in ("ecp5", "ice40", "generic"):
        assert set(cal["targets"][target]["family_coef"]["array"]) == (
            {"nand2"} if target == "generic" else {"luts", "carry"}
        )
    e = cost.estimate(ArraySpec(I8, 4, 4), "ecp5")
    assert e.error["luts"].get("note") == "array held-out set"
    # the glue is priced with the array's own coefficients: a register-only change (the drain's
    # pipeline register after the tree, 4 rows: no cut inside it) costs what its fitted 'ff' says
    coef = cal["targets"]["ecp5"]["family_coef"]["array"]["luts"]["ff"]
    a, b = ArraySpec(I8, 4, 4), ArraySpec(I8, 4, 4, pipeline=1)
    grown = cost.netlist(b).total_ffs - cost.netlist(a).total_ffs
    assert grown == 4 * I8.width + 1
    luts = cost.estimate(b, "ecp5").luts - cost.estimate(a, "ecp5").luts
    assert luts == pytest.approx(coef * grown, abs=0.2)


def test_array_calibration_sets_are_the_shipped_ones():
    """The shipped array calibration was fitted and judged on exactly the seeded sets
    ``array_sets`` draws today, the held-out arrays apart from the training ones (a change to
    the PE pools or the draw shows here, before a refit silently judges on other arrays)."""
    from peforge.fpga.array_calibration import family_file
    from peforge.models.cost.array import array_sets

    shipped = json.loads(family_file().read_text())
    training, heldout = array_sets()
    assert shipped["training"] == [s.name for s in training]
    assert shipped["heldout"] == [s.name for s in heldout]
    assert not set(shipped["training"]) & set(shipped["heldout"])


# --- CLI ---------------------------------------------------------------------------------------------
def test_cli_generate_cost_and_errors(tmp_path):
    res = runner.invoke(
        app,
        [
            "generate",
            "array",
            "--pe",
            "mac",
            "--a",
            "e4m3fn",
            "--b",
            "e4m3fn",
            "--acc",
            "fp32",
            "--rows",
            "2",
            "--cols",
            "3",
            "-o",
            str(tmp_path),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    name = json.loads(res.output)["module"]
    assert name == ArraySpec(E4, rows=2, cols=3).name
    assert (tmp_path / f"{name}.v").read_text() == rtl.verilog(ArraySpec(E4, rows=2, cols=3))
    res = runner.invoke(
        app, ["cost", "array", "--pe", I8.to_json(), "--rows", "2", "--cols", "2", "--target", "ice40", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["luts"] == pytest.approx(cost.estimate(ArraySpec(I8, 2, 2), "ice40").luts)
    res = runner.invoke(app, ["generate", "array", "--pe", "mac", "--bogus", "1", "-o", str(tmp_path)])
    assert res.exit_code == 2 and "PE options of --pe mac" in res.output and "--bogus" in res.output
    res = runner.invoke(
        app, ["cost", "array", "--pe", "mac", "--acc", "fp32", "--rows", "2", "--dataflow", "weight-stationary"]
    )
    assert res.exit_code == 2 and "weight-stationary" in res.output
    res = runner.invoke(app, ["cost", "array", "--pe", "nope"])
    assert res.exit_code == 2 and "unknown PE family 'nope'" in res.output
    assert runner.invoke(app, ["verify", "array", "--help"]).exit_code == 0


def test_dse_array_point_reports_throughput_and_area_per_mac():
    from peforge.dse.evaluation import EvalSettings, evaluate
    from peforge.dse.space import Point, TensorSettings

    spec = ArraySpec(I8, rows=4, cols=4)
    row = evaluate(Point(spec, "ecp5"), EvalSettings(workloads=("gaussian",), tensor=TensorSettings((8, 64, 8))))
    pe_row = evaluate(Point(I8, "ecp5"), EvalSettings(workloads=("gaussian",), tensor=TensorSettings((8, 64, 8))))
    assert not row.get("error"), row
    assert row["macs_per_cycle"] == 16 and row["throughput_gmacs"] == pytest.approx(16 * row["cost_fmax_mhz"] / 1e3)
    assert row["luts_per_mac_per_cycle"] == pytest.approx(row["cost_luts"] / 16)
    assert row["gaussian_sqnr_db"] == pe_row["gaussian_sqnr_db"]


def test_examples_run_on_the_cost_model(capsys):
    """examples/array_tiles.py prints every claim's table from the cost model (no synthesis), and
    examples/array_space.toml expands into array points."""
    import runpy
    from pathlib import Path

    from peforge.dse.space import load_space

    root = Path(__file__).resolve().parents[1] / "examples"
    mod = runpy.run_path(str(root / "array_tiles.py"))
    for claim in mod["CLAIMS"].values():
        claim(False)
    out = capsys.readouterr().out
    assert out.count("\n| tile |") == 6 and "Bit Fusion array, mode 2x2" in out and "SQNR" in out
    points, invalid = load_space(root / "array_space.toml").expand()
    assert not invalid and {p.spec.family for p in points} == {"array"} and len(points) == 2 * 9
