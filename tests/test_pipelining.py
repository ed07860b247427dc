"""The --fmax pick (peforge.pipelining): the fewest pipeline registers whose estimate meets a goal.

The reference is a brute force over ``stages`` through the cost model's public estimate
(``peforge.models.cost.estimate``), not the pick's own segment pricing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peforge import families, pipelining
from peforge.arrays import ArraySpec
from peforge.cli import app
from peforge.models import cost
from peforge.pipelining import pick_stages
from peforge.spec import BlockDotSpec, IntMacSpec, MinifloatMacSpec

runner = CliRunner()

FP32_MAC = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
SPECS = [IntMacSpec("int8", "int8"), MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"), FP32_MAC, BlockDotSpec(lanes=8)]


def _estimates(spec, target):
    out = {}
    for k in pipelining._field_range(spec, "stages"):  # the spec's declared range
        try:
            variant = dataclasses.replace(spec, stages=k)
        except ValueError:  # a depth this spec refuses (the pick leaves it out too)
            continue
        out[k] = cost.estimate(variant, target).fmax_mhz
    return out


@pytest.mark.parametrize("target", ["ecp5", "ice40"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_pick_is_the_fewest_stages_meeting_the_goal_and_monotone(spec, target):
    est = _estimates(spec, target)
    picked = []
    for goal in sorted({10.0, 50.0, 100.0, 150.0, 300.0, *est.values()}):
        pick = pick_stages(spec, target, goal, margin=0.0)
        meeting = [k for k, f in est.items() if f >= goal]
        if meeting:
            assert pick.met and pick.spec.stages == min(meeting), (goal, est)
        else:  # the fastest estimate, fewest registers among equals
            best = max(est.values())
            assert not pick.met and pick.spec.stages == min(k for k, f in est.items() if f == best)
        assert pick.pick.fmax_mhz == est[pick.spec.stages]
        assert dataclasses.replace(pick.spec, stages=spec.stages) == spec  # nothing else changed
        picked.append(pick.spec.stages if pick.met else 99)
    assert picked == sorted(picked)  # a higher goal never picks fewer registers


@pytest.mark.parametrize("margin", [0.05, 0.2])
@pytest.mark.parametrize("spec", SPECS[:3], ids=lambda s: s.name)
def test_margin_picks_the_fewest_stages_meeting_the_guarded_goal(spec, margin):
    est = _estimates(spec, "ecp5")
    for goal in sorted({50.0, 100.0, *est.values(), *(f / (1 + margin) for f in est.values())}):
        pick = pick_stages(spec, "ecp5", goal, margin=margin)
        assert pick.margin == margin and pick.to_dict()["margin"] == margin
        meeting = [k for k, f in est.items() if f >= goal * (1 + margin)]
        if meeting:
            assert pick.met and pick.spec.stages == min(meeting), (goal, est)
        else:  # the fastest estimate; it meets the bare goal or not
            assert pick.pick.fmax_mhz == max(est.values())
            assert pick.met == (pick.pick.fmax_mhz >= goal)


def test_default_margin_is_the_delay_models_median_error():
    cal = json.loads((Path(cost.__file__).parent / "data" / "calibration.json").read_text())
    for target in ("ecp5", "ice40"):
        median = cal["error"][target]["delay_ns"]["median"]
        assert 0 < median < 1
        assert pick_stages(IntMacSpec("int8", "int8"), target, 100.0).margin == pytest.approx(median)
    with pytest.raises(ValueError, match="--margin 1.5"):
        pick_stages(FP32_MAC, "ecp5", 100.0, margin=1.5)


def test_among_equally_fast_depths_the_pick_clears_the_margin_band():
    """Read-out registers past the limit buy no estimated speed, but a depth whose other
    segments all sit outside the margin band is preferred: any of them may be the real limit."""
    spec = BlockDotSpec("e4m3fn", "e4m3fn", block=32, lanes=8, acc="fp32", rounding="deferred", segment=16)
    bare = pick_stages(spec, "ecp5", 1000.0, margin=0.0)
    guarded = pick_stages(spec, "ecp5", 1000.0, margin=0.15)
    assert bare.pick.fmax_mhz == guarded.pick.fmax_mhz  # both the fastest estimate
    fastest = [c for c in guarded.candidates if c.fmax_mhz == guarded.pick.fmax_mhz]
    band = guarded.pick.fmax_mhz * 1.15
    crowded = [sum(f < band for f in c.segments_mhz) for c in fastest]
    assert sum(f < band for f in guarded.pick.segments_mhz) == min(crowded)
    assert guarded.pick.depth == min(c.depth for c, n in zip(fastest, crowded) if n == min(crowded))
    assert bare.pick.depth == min(c.depth for c in fastest)
    assert min(guarded.pick.segments_mhz) == cost.estimate(guarded.spec, "ecp5").fmax_mhz


def test_cli_margin_reaches_the_manifest_and_is_checked(tmp_path):
    args = ["generate", "mac", "--rounding", "deferred", "--segment", "16", "--fmax", "150", "-o", str(tmp_path)]
    for margin in ("0", "0.3"):
        result = runner.invoke(app, [*args, "--margin", margin, "--json"])
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout.strip().splitlines()[-1])
        rec = json.loads((tmp_path / f"{out['module']}.json").read_text())["pipelining"]
        assert rec["margin"] == float(margin)
        expect = pick_stages(
            MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", rounding="deferred", segment=16), "ecp5", 150.0, float(margin)
        )
        assert rec["stages"] == expect.spec.stages and rec["readout_stages"] == expect.spec.readout_stages
    bad = runner.invoke(app, [*args, "--margin", "-0.1"])
    assert bad.exit_code != 0 and "--margin -0.1" in bad.output
    alone = runner.invoke(app, ["generate", "mac", "--margin", "0.1", "-o", str(tmp_path)])
    assert alone.exit_code != 0 and "--margin set without --fmax" in alone.output


def test_the_limit_segment_is_the_estimate_and_names_the_loop():
    pick = pick_stages(FP32_MAC, "ecp5", 1000.0)
    assert not pick.met
    assert pick.limit.loop and pick.limit.fmax_mhz == cost.estimate(pick.spec, "ecp5").fmax_mhz
    assert pick.limit.delay_ns == pytest.approx(cost.estimate(pick.spec, "ecp5").delay_ns, abs=1e-3)
    text = pick.message()
    assert "no pipeline depth reaches 1000 MHz" in text and "accumulate loop" in text
    assert "exact accumulation" in text and "--acc exact" in text
    has_deferred = any(f.name == "rounding" for f in dataclasses.fields(FP32_MAC))
    assert ("deferred rounding" in text) == has_deferred
    exact = next(a for a in pick.alternatives if a.option == "--acc exact")
    assert exact.fmax_mhz == max(_estimates(dataclasses.replace(FP32_MAC, acc="exact"), "ecp5").values())


def test_a_loop_without_an_option_says_so_and_a_front_segment_is_not_called_a_loop():
    sat = IntMacSpec("int4", "uint8", acc_bits=16, lanes=2, overflow="saturate")  # a loop, no option
    text = pick_stages(sat, "ecp5", 1000.0).message()
    assert "accumulate loop" in text and "no accumulator option" in text
    text = pick_stages(BlockDotSpec(lanes=8), "ecp5", 1000.0).message()  # per-step block sum: deferred
    assert "accumulate loop" in text and "--rounding deferred" in text and "no accumulator option" not in text
    int_pick = pick_stages(IntMacSpec("int8", "int8"), "ecp5", 1000.0)
    if not int_pick.limit.loop:
        assert "pipeline segment" in int_pick.message() and "accumulate loop" not in int_pick.message()


@pytest.mark.parametrize("family", families.FAMILIES, ids=lambda f: f.name)
def test_every_family_marks_its_accumulate_loop(family):
    for spec in family.examples:
        net = cost.netlist(spec)
        if net.subs:  # an array: the loops are its PEs' (each included netlist marks its own;
            # a negative count takes merged or removed logic off, it is no PE)
            assert all(sub.loops for sub, count, _ in net.subs if sub.ffs and count > 0), spec.name
            continue
        assert net.loops and max(net.loops) <= net.segment, spec.name


ACCUMULATORS = [
    MinifloatMacSpec("e4m3fn", "e4m3fn", "exact", segment=16),
    MinifloatMacSpec("e4m3fn", "e4m3fn", "exact", segment=8, readout_stages=0),
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", rounding="deferred"),
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", rounding="deferred", segment=16),
    BlockDotSpec(lanes=8, rounding="deferred"),
    BlockDotSpec(lanes=8, rounding="deferred", segment=16),
]


@pytest.mark.parametrize("spec", ACCUMULATORS, ids=lambda s: s.name)
def test_segmented_and_deferred_accumulators_mark_the_loop_not_the_readout(spec):
    """The marked loop is the one holding the loop adder (with the front fully pipelined, its
    carry chain is the widest segment + 1, from the plan), with the read-out's segments after it."""
    spec = dataclasses.replace(spec, stages=4)
    net = cost.netlist(spec)
    assert len(net.loops) == 1
    loop = next(iter(net.loops))
    assert loop < net.segment
    assert net.depth[loop][1] == max(spec.accumulator.segment_widths) + 1


def test_the_segmented_alternative_is_offered_where_the_spec_accepts_it():
    exact = MinifloatMacSpec("e4m3fn", "e4m3fn", "exact")
    alt = {a.option: a for a in pick_stages(exact, "ecp5", 1000.0).alternatives}
    assert set(alt) == {"--segment 16"}
    best = max(
        cost.estimate(dataclasses.replace(exact, segment=16, stages=k, readout_stages=r), "ecp5").fmax_mhz
        for k in range(5)
        for r in range(3)
    )
    assert alt["--segment 16"].fmax_mhz >= best
    assert "--segment 16" not in {a.option for a in pick_stages(FP32_MAC, "ecp5", 1000.0).alternatives}


def test_bad_goal_or_target_is_refused():
    with pytest.raises(ValueError, match="asic45"):
        pick_stages(FP32_MAC, "asic45", 100.0)
    with pytest.raises(ValueError, match="--fmax -5"):
        pick_stages(FP32_MAC, "ecp5", -5)


def test_confirmed_records_achieved_goal_distance_and_error():
    pick = pick_stages(FP32_MAC, "ecp5", 40.0)
    r = pick.confirmed(36.0, "25k")
    assert r["met"] is False and r["distance_mhz"] == -4.0 and r["fmax_achieved_mhz"] == 36.0
    assert r["estimate_error"] == pytest.approx(pick.pick.fmax_mhz / 36.0 - 1, abs=1e-4)
    assert pick.confirmed(40.0, "25k")["met"] is True


def test_generate_fmax_writes_the_pick_into_the_manifest(tmp_path):
    result = runner.invoke(
        app, ["generate", "mac", "--acc", "exact", "--target", "ice40", "--fmax", "90", "-o", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    manifest = json.loads((tmp_path / f"{out['module']}.json").read_text())
    rec = manifest["pipelining"]
    est = _estimates(MinifloatMacSpec("e4m3fn", "e4m3fn", "exact"), "ice40")
    want = min(k for k, f in est.items() if f >= 90)
    assert manifest["spec"]["stages"] == rec["stages"] == want and manifest["latency"] == want + 1
    assert rec["target"] == "ice40" and rec["fmax_goal_mhz"] == 90 and rec["met_estimate"] is True
    assert rec["fmax_estimate_mhz"] == est[want] and len(rec["candidates"]) == len(est)


def test_generate_fmax_options_are_checked():
    r = runner.invoke(app, ["generate", "mac", "--stages", "2", "--fmax", "100"])
    assert r.exit_code == 2 and "--stages with --fmax" in r.output
    r = runner.invoke(app, ["generate", "mac", "--target", "ice40"])
    assert r.exit_code == 2 and "without --fmax" in r.output
    r = runner.invoke(app, ["generate", "mac", "--strict"])
    assert r.exit_code == 2 and "--strict set without --fmax" in r.output


def test_generate_strict_refuses_an_unreachable_goal(tmp_path):
    r = runner.invoke(app, ["generate", "mac", "--fmax", "1000", "--strict", "-o", str(tmp_path)])
    assert r.exit_code == 1 and "accumulate loop" in r.output and "--acc exact" in r.output
    assert not list(tmp_path.iterdir())
    r = runner.invoke(app, ["generate", "mac", "--fmax", "1000", "-o", str(tmp_path)])  # builds the fastest
    assert r.exit_code == 0 and "no pipeline depth reaches" in r.output
    assert len(list(tmp_path.glob("*.v"))) == 1


def test_synth_fmax_records_the_pick():
    r = runner.invoke(
        app, ["synth", "intmac", "--a", "int4", "--b", "int4", "--target", "ice40", "--fmax", "60", "--json"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout[r.stdout.index("{") :])
    rec = data["pipelining"]
    assert rec["target"] == "ice40" and rec["fmax_goal_mhz"] == 60
    assert data["module"] == dataclasses.replace(IntMacSpec("int4", "int4"), stages=rec["stages"]).name


@pytest.mark.slow
def test_synth_fmax_pnr_reports_achieved_against_the_goal():
    r = runner.invoke(
        app, ["synth", "intmac", "--a", "int4", "--b", "int4", "--target", "ice40", "--fmax", "60", "--pnr", "--json"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout[r.stdout.index("{") :])
    rec = data["pipelining"]
    assert rec["fmax_achieved_mhz"] == data["pnr"]["fmax_mhz"] and data["pnr"]["clock_mhz"] == 60
    assert rec["met"] == (data["pnr"]["fmax_mhz"] >= 60) and rec["device"] == "hx8k"


# --- PE arrays: the pick varies the PE's stages and the array's own pipeline -----------------------
ARRAY = ArraySpec(IntMacSpec("int8", "int8"), rows=8, cols=8)


def _array_estimates(spec, target):
    """Brute force over the PE's stages and the array's pipeline through the public estimate."""
    return {
        (k, p): cost.estimate(dataclasses.replace(spec, pe=dataclasses.replace(spec.pe, stages=k), pipeline=p), target)
        for k in pipelining._field_range(spec.pe, "stages")
        for p in pipelining._field_range(spec, "pipeline")
    }


@pytest.mark.parametrize("target", ["ecp5", "ice40"])
def test_array_pick_varies_the_pe_stages_and_the_array_pipeline(target):
    est = {kp: e.fmax_mhz for kp, e in _array_estimates(ARRAY, target).items()}
    assert len(set(est.values())) > 1  # the depth matters to the array's estimate
    for goal in sorted({10.0, 100.0, 1000.0, *est.values()}):
        pick = pick_stages(ARRAY, target, goal, margin=0.0)
        k, p = pick.spec.pe.stages, pick.spec.pipeline
        assert pick.pick.fields == {"stages": k, "pipeline": p}
        assert pick.pick.fmax_mhz == est[(k, p)]
        meeting = [kp for kp, f in est.items() if f >= goal]
        if meeting:  # the fewest registers in all meeting the goal
            assert pick.met and k + p == min(sum(kp) for kp in meeting)
        else:  # the fastest, fewest registers among equals
            best = max(est.values())
            assert not pick.met and est[(k, p)] == best and k + p == min(sum(kp) for kp, f in est.items() if f == best)
        assert dataclasses.replace(pick.spec, pe=ARRAY.pe, pipeline=0) == ARRAY  # nothing else changed
        assert pick.spec.latency == ARRAY.latency + k + p


def test_array_pick_names_the_pe_loop_and_its_accumulator_options():
    arr = ArraySpec(FP32_MAC, rows=4, cols=4)
    pick = pick_stages(arr, "ecp5", 1000.0)
    assert not pick.met and pick.limit.loop and pick.limit.part == "the PE"
    assert pick.limit.fmax_mhz == cost.estimate(pick.spec, "ecp5").fmax_mhz
    assert "the PE's accumulate loop" in pick.message()
    exact = next(a for a in pick.alternatives if a.option == "--acc exact")
    assert exact.spec.family == "array" and exact.spec.pe.acc == "exact"
    assert exact.fmax_mhz == max(
        e.fmax_mhz for e in _array_estimates(dataclasses.replace(arr, pe=exact.spec.pe), "ecp5").values()
    )


def test_generate_array_fmax_writes_the_pick_and_refuses_a_given_depth(tmp_path):
    base = ["generate", "array", "--rows", "8", "--cols", "8", "--target", "ice40", "--fmax", "60"]
    pe = ["--pe", "intmac", "--a", "int8", "--b", "int8"]
    r = runner.invoke(app, [*base, "-o", str(tmp_path), "--json", *pe])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    manifest = json.loads((tmp_path / f"{out['module']}.json").read_text())
    rec = manifest["pipelining"]
    assert manifest["spec"]["pe"]["stages"] == rec["stages"] and manifest["spec"]["pipeline"] == rec["pipeline"]
    assert rec["fmax_estimate_mhz"] >= 60 and rec["met_estimate"] is True
    r = runner.invoke(app, [*base, *pe, "--stages", "1"])
    assert r.exit_code == 2 and "--pe intmac --stages with --fmax" in r.output
    r = runner.invoke(app, [*base, "--pipeline", "1", *pe])
    assert r.exit_code == 2 and "--pipeline with --fmax" in r.output
