"""Analytic cost model: contract, independent register counts, error bars, energy, CLI.

References are independent of the model: register bits from the spec's own widths, DSP
counts from Yosys' documented mul2dsp rules, node scaling from its formula, toggles counted
with Python's ``bin().count``, held-out errors recomputed from the shipped Yosys results,
and one small design synthesised by Yosys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from peforge import spec as spec_mod
from peforge.cli import app
from peforge.families import FAMILIES
from peforge.models import cost
from peforge.models.cost import calibration, energy, fit, specsets, toggles
from peforge.models.cost.assembly import assemble
from peforge.models.cost.components import CLASSES, extension_discount
from peforge.spec import BlockDotSpec, IntMacSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec

E4 = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
SPECS = [
    E4,
    MinifloatMacSpec("e5m2", "e2m1fn", "bf16", lanes=4, stages=2),
    MinifloatMacSpec("e2m1fn", "e2m1fn", "exact", lanes=16, stages=3),
    IntMacSpec("int8", "int8"),
    IntMacSpec("int4", "uint4", lanes=8, stages=2, acc_bits=24, overflow="saturate"),
    SimdMacSpec(8, arch="bricks"),
    SimdMacSpec(16, arch="sub4", stages=1),
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=2, mult="lmul"),
    ShiftAddSpec("int8", "pot4", "pot", lanes=4),
    ShiftAddSpec("e4m3fn", "int4", "bitserial", stages=1),
    ShiftAddSpec("int8", "apot5", "apot", group=32, scale="bf16"),
    LutSpec("int8", 4, 4, lanes=4),
    LutSpec("int4", "ternary", 3, symmetric=False, stages=2),
    BlockDotSpec(block=32, lanes=4),
    BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16, lanes=8, acc="bf16", stages=3),
]
FIELDS = (
    "target",
    "spec",
    "luts",
    "carry",
    "ffs",
    "dsps",
    "fmax_mhz",
    "delay_ns",
    "gates_nand2",
    "area_um2",
    "energy_pj_per_op",
    "energy_pj_per_mac",
    "macs_per_cycle",
    "error",
)


@pytest.mark.parametrize("target", ["ice40", "ecp5", "xilinx", "asic45", "asic28"])
def test_estimate_contract(target: str) -> None:
    for s in SPECS:
        est = cost.estimate(s, target)
        d = json.loads(json.dumps(est.to_dict()))
        assert all(k in d for k in FIELDS)
        assert d["spec"] == s.name and d["target"] == target
        if target.startswith("asic"):
            assert est.gates_nand2 > 0 and est.area_um2 > 0 and est.energy_pj_per_op > 0
            assert est.energy_pj_per_mac == pytest.approx(est.energy_pj_per_op / est.macs_per_cycle, rel=1e-3)
            assert "gates_nand2" in est.error and est.error["gates_nand2"]["median"] >= 0
        else:
            assert est.luts > 0 and est.carry >= 0 and est.fmax_mhz > 0
            assert est.delay_ns == pytest.approx(1000.0 / est.fmax_mhz, rel=1e-2)
            assert {"median", "p90", "max"} <= set(est.error["luts"])
    assert cost.estimate_many(SPECS, target)[0].to_dict() == cost.estimate(SPECS[0], target).to_dict()


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"target": "stratix"}, "target='stratix'"),
        ({"target": "asic", "node_nm": 2}, "node_nm=2"),
        ({"target": "ecp5", "node_nm": 28}, "node_nm=28"),
    ],
)
def test_bad_target_names_the_field(bad: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("(", r"\(")):
        cost.estimate(E4, **bad)


def test_unknown_spec_type() -> None:
    with pytest.raises(ValueError, match=r"Spec \(.*\) is not a PE spec: allowed MinifloatMacSpec, IntMacSpec"):
        assemble(spec_mod.Spec())


def test_register_bits_from_the_spec() -> None:
    # no pipeline: the float accumulate loop's state plus out_valid.  The loop holds the sum
    # before its rounding: a window of max(8-bit product, 24-bit fp32 significand) + 2 guard
    # bits above a sticky slot, plus a rounding carry and a sum carry (26 + 3 = 29 bits); its
    # biased exponent (from the smallest product exponent 2**-18 -> 127 - 18 - 2 = 107 up to
    # the all-ones field 255: 8 bits); sign, zero sign, NaN and infinity flags (4)
    frame = max((15 * 15).bit_length(), 23 + 1) + 2
    exp_bits = (255).bit_length()
    assert cost.estimate(E4, "ecp5").ffs == (frame + 3) + exp_bits + 4 + 1
    assert (
        cost.estimate(MinifloatMacSpec("e2m1fn", "e2m1fn", "exact", lanes=4), "ice40").ffs
        == MinifloatMacSpec("e2m1fn", "e2m1fn", "exact", lanes=4).exact_width + 1
    )
    for s in (IntMacSpec("int8", "int8"), IntMacSpec("int4", "int4", lanes=4), SimdMacSpec(8)):
        assert cost.estimate(s, "ice40").ffs == s.width + 1
    # intmac, one stage: lane products (16-bit signed each) + valid + first registered
    s = IntMacSpec("int8", "int8", lanes=4, stages=1)
    assert cost.estimate(s, "ice40").ffs == s.width + 1 + 4 * 16 + 2
    # mac, one stage ("sum" cut): the normalised product (4 x 4 significand bits: 8) with its
    # biased exponent (fp32 bias: 127 - 18 .. 127 + 2 * 8 + 1, 107..144: 8 bits) and the flag of
    # its top bit; nonzero, sign, NaN (e4m3fn has NaN, no inf) and negative-zero flags; first
    # and valid; then the loop state and out_valid as above
    s1 = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", stages=1)
    cut = 8 + (144).bit_length() + 1 + 4 + 2
    assert cost.estimate(s1, "ice40").ffs == cut + (frame + 3) + exp_bits + 4 + 1


def test_register_bits_block_dot() -> None:
    """MX block dot e3m2fn, 32-element blocks in 8 beats of 4 lanes, bf16, one stage ("acc" cut).

    Beat counter 3; block sum register 24 (product span 18 bits + 2 for 4 lanes + sign + 3 for
    8 beats) and its negative-zero flag (no NaN / inf elements); at the cut: last + first,
    normalised V (24 bits, its top bit shared with the nonzero flag: 23), its biased exponent
    (10 bits signed: -137..399), nonzero, sign, zero sign, NaN (E8M0 scales have NaN), valid;
    the loop state: a window of max(24-bit V, 8-bit bf16 significand) + 2 guard bits over a
    sticky slot plus a sum carry (28), its biased exponent clamped to [-9, 256] (10 bits
    signed), sign, zero sign, NaN, infinity (bf16 overflows); out_valid."""
    s = BlockDotSpec("e3m2fn", "e3m2fn", block=32, lanes=4, acc="bf16", stages=1)
    loop = (24 + 2 + 2) + 10 + 4
    assert cost.estimate(s, "ice40").ffs == 3 + 24 + 1 + (2 + 23 + 10 + 3 + 1 + 1) + loop + 1


def test_dsp_rules() -> None:
    # ECP5: every multiplier with both operands >= 2 bits is one MULT18X18D
    assert cost.estimate(MinifloatMacSpec(lanes=8), "ecp5").dsps == 8
    assert cost.estimate(IntMacSpec("int8", "int8", lanes=4), "ecp5").dsps == 4
    # 7-series: products narrower than 9 bits stay in LUTs (4b x 4b significands -> 8 bits)
    assert cost.estimate(MinifloatMacSpec(lanes=8), "xilinx").dsps == 0
    assert cost.estimate(IntMacSpec("int8", "int8", lanes=4), "xilinx").dsps == 4
    assert cost.estimate(IntMacSpec("int16", "int16"), "xilinx").dsps == 1
    assert cost.estimate(IntMacSpec("int8", "int8", lanes=4), "ice40").dsps == 0
    assert cost.estimate(SimdMacSpec(8, arch="bricks"), "ecp5").dsps == 0
    # the group dequantiser's 25-bit magnitude x 8-bit bf16 significand: two 18x18 tiles on ECP5;
    # on 7-series (signed-only DSP48, 25 x 18) the magnitude needs 26 bits: two tiles as well
    grouped = ShiftAddSpec("int8", "apot6", "apot", group=16, scale="bf16")
    assert cost.estimate(grouped, "ecp5").dsps == 2 and cost.estimate(grouped, "xilinx").dsps == 2


def test_monotone_in_size() -> None:
    for target, key in (("ice40", "luts"), ("ecp5", "luts"), ("asic45", "gates_nand2")):
        lanes = [getattr(cost.estimate(MinifloatMacSpec(lanes=n), target), key) for n in (1, 2, 4, 8, 16)]
        assert lanes == sorted(lanes) and lanes[-1] > 3 * lanes[0]
        ints = [getattr(cost.estimate(IntMacSpec(f"int{b}", f"int{b}"), target), key) for b in (2, 4, 8, 16)]
        assert ints == sorted(ints)
    assert cost.estimate(MinifloatMacSpec(acc="bf16"), "asic45").gates_nand2 < cost.estimate(E4, "asic45").gates_nand2
    assert cost.estimate(MinifloatMacSpec(stages=2), "ice40").fmax_mhz > cost.estimate(E4, "ice40").fmax_mhz


def test_node_scaling_rule() -> None:
    e45, e7 = cost.estimate(E4, "asic45"), cost.estimate(E4, "asic7")
    assert e7.gates_nand2 == e45.gates_nand2
    assert e7.area_um2 == pytest.approx(e45.area_um2 * (7 / 45) ** 2, rel=1e-3)
    assert e7.energy_pj_per_op == pytest.approx(e45.energy_pj_per_op * (7 / 45) * (0.7 / 0.9) ** 2, rel=1e-3)
    assert cost.estimate(E4, "asic", node_nm=28).to_dict() == {**cost.estimate(E4, "asic28").to_dict()}


def test_asic_anchor_reproduces_the_published_figures() -> None:
    asic = calibration.load()["asic"]
    rows = {r["label"]: r for r in asic["anchors"]}
    for label, _, _, pj, um2 in fit.HOROWITZ_45NM:  # geometric-mean fit: each anchor within 2x
        assert 0.5 < rows[label]["model_energy_pj"] / pj < 2.0
        assert 0.5 < rows[label]["model_area_um2"] / um2 < 2.0


def test_shipped_calibration_and_sets() -> None:
    cal = calibration.load()
    assert cal["version"] == fit.VERSION and cal["yosys_version"] and cal["features"] == list(cost.FEATURES)
    train, held = specsets.training(), specsets.heldout()
    assert len(held) >= 60 and not {s.name for s in train} & {s.name for s in held}
    assert {s.family for s in held} == {"mac", "intmac", "simd", "shiftadd", "blockdot", "lut"}
    assert {s.mult for s in held if isinstance(s, MinifloatMacSpec)} == {"exact", "lmul"}
    assert {s.acc_name for s in held if isinstance(s, MinifloatMacSpec)} >= {"fp32", "bf16", "fp16", "exact"}
    for target in ("ice40", "ecp5", "xilinx", "generic"):
        assert cal["error"][target]["ffs"]["median"] == 0.0


@pytest.mark.parametrize(
    "target, metric", [("ice40", "luts"), ("ecp5", "luts"), ("xilinx", "luts"), ("generic", "nand2")]
)
def test_error_bars_match_the_shipped_synthesis_results(target: str, metric: str) -> None:
    """Recompute the held-out error from the Yosys results stored with the calibration."""
    cal = calibration.load()
    rows = [r for r in cal["measurements"]["heldout"] if r["target"] == target]
    assert len(rows) >= 60
    key = "gates_nand2" if metric == "nand2" else metric
    tgt = "asic45" if target == "generic" else target
    est = [getattr(cost.estimate(spec_mod.from_dict(dict(r["spec"])), tgt), key) for r in rows]
    meas = [r["nand2_eq"] if metric == "nand2" else r[metric] for r in rows]
    stats = fit.error_stats(est, meas)
    assert stats["median"] == pytest.approx(cal["error"][target][metric]["median"], abs=2e-3)
    assert stats["max"] == pytest.approx(cal["error"][target][metric]["max"], abs=2e-3)


def test_one_small_design_against_yosys() -> None:
    """The one synthesis of the CI sample (generic gates, about a second of Yosys)."""
    from peforge import fpga

    s = IntMacSpec("int4", "int4", lanes=2, stages=1)
    rep = fpga.synthesize(s, "generic")
    est = cost.estimate(s, "asic45")
    assert est.ffs == rep.ffs
    worst = calibration.load()["error"]["generic"]["nand2"]["max"]
    assert abs(est.gates_nand2 - rep.nand2_eq) / rep.nand2_eq <= worst


def test_xilinx_fabric_ffs_against_yosys() -> None:
    """A 7-series DSP48 keeps the product register inside (MREG): Yosys counts those bits as
    no fabric flip-flop, and neither may the estimate (ECP5 packs no DSP registers)."""
    from peforge import fpga

    s = IntMacSpec("int8", "int8", lanes=2, stages=1, max_count=256)
    rep = fpga.synthesize(s, "xilinx")
    est = cost.estimate(s, "xilinx")
    assert rep.dsps == est.dsps == 2
    assert est.ffs == rep.ffs
    assert cost.estimate(s, "ecp5").ffs == est.ffs + 2 * 16  # two 16-bit products registered


def test_xilinx_dsp_cascade_keeps_the_first_gate_in_luts() -> None:
    """A multi-lane INT MAC without pipeline registers runs its adder tree and accumulator in
    the DSP48 cascade; only ``Mux(first, 0, acc)`` stays in the fabric, one LUT per bit."""
    from peforge import fpga

    s = IntMacSpec("int8", "int8", lanes=2, acc_bits=24)
    rep = fpga.synthesize(s, "xilinx")
    est = cost.estimate(s, "xilinx")
    assert rep.dsps == est.dsps == 2
    assert rep.luts == 24  # the structure the model encodes (feature ``lone``)
    assert est.luts == pytest.approx(rep.luts, rel=0.10)
    f, _ = cost.model.features(assemble(s), "xilinx")
    assert f[cost.components.FEATURES.index("lone")] == 24
    assert cost.model.features(assemble(s), "ecp5")[0][cost.components.FEATURES.index("lone")] == 0


def test_xilinx_dsp_post_adders_take_the_first_add_of_each_product_pair() -> None:
    """Registered products (MREG): each pair's first add is a DSP48 post-adder, so the fabric
    sums pair sums; on ECP5 (no post-adder in Yosys' mapping) the whole tree stays in LUTs."""
    from peforge import fpga

    s = IntMacSpec("int8", "int8", lanes=4, stages=1, acc_bits=32)
    rep = fpga.synthesize(s, "xilinx")
    est = cost.estimate(s, "xilinx")
    assert rep.dsps == est.dsps == 4
    assert est.luts == pytest.approx(rep.luts, rel=0.15)
    csa = cost.components.FEATURES.index("csa")
    x = cost.model.features(assemble(s), "xilinx")[0][csa]
    e = cost.model.features(assemble(s), "ecp5")[0][csa]
    # two 17-bit pair sums + acc vs four 16-bit products + acc, all sign-extended to 33 bits
    assert x == _reduce_columns([17, 17, 32], [0] * 3, 33, True)
    assert e == _reduce_columns([16] * 4 + [32], [0] * 5, 33, True) - extension_discount([16] * 4 + [32], 33)


def test_accumulate_gates_a_two_operand_adder_and_merges_a_tree() -> None:
    from peforge.models.cost.components import FEATURES, Netlist

    one, tree = Netlist(), Netlist()
    one.accumulate([20], 24, 25)
    tree.accumulate([16, 16, 16], 24, 25, signed=True)
    total = lambda n, k: sum(r[FEATURES.index(k)] for r in n.feats)  # noqa: E731
    assert (total(one, "gate"), total(one, "logic"), total(one, "add"), total(one, "csa")) == (24, 0, 25, 0)
    assert (total(tree, "gate"), total(tree, "logic"), total(tree, "add")) == (0, 24, 25)
    assert total(tree, "csa") == _reduce_columns([16, 16, 16, 24], [0] * 4, 25, True)  # sign-extended to 25 bits


def test_signed_products_merged_into_the_macc_are_sign_extended() -> None:
    """No register after the products: Yosys sums their sign-extended partial products in the
    accumulator's ``$macc`` (feature ``sext``), in LUT logic only."""
    sext = cost.components.FEATURES.index("sext")
    s0 = IntMacSpec("int4", "int4", lanes=2, max_count=65536)
    assert cost.model.features(assemble(s0), "ice40")[0][sext] == 2 * 4 * (s0.width + 1 - 8)
    assert cost.model.features(assemble(IntMacSpec("int4", "int4", lanes=2, stages=1)), "ice40")[0][sext] == 0
    assert cost.model.features(assemble(IntMacSpec("uint4", "uint4", lanes=2)), "ice40")[0][sext] == 0
    assert cost.model.features(assemble(IntMacSpec("int8", "int8")), "ecp5")[0][sext] == 0  # in a DSP


def test_shared_dequantiser_is_priced_without_the_family_scale() -> None:
    """The group dequantiser (``rtl/blocks/dequant.py``) is a shared block: a target's
    shift-add scale multiplies only the shift-add datapath around it."""
    cal = calibration.load()
    grouped = ShiftAddSpec("int8", "pot4", "pot", group=16, scale="bf16")
    plain = ShiftAddSpec("int8", "pot4", "pot")
    assert not any(map(any, assemble(plain).shared_feats))
    for target in ("ice40", "xilinx"):
        t = cal["targets"][target]
        k = t["family_scale"]["luts"]["shiftadd"]
        f, fs, _ = cost.model.split_features(assemble(grouped), target)
        assert 0 < np.dot(t["luts"], fs) < np.dot(t["luts"], f)
        want = k * np.dot(t["luts"], np.subtract(f, fs)) + np.dot(t["luts"], fs)
        assert cost.estimate(grouped, target).luts == pytest.approx(want, rel=1e-3)


def test_focus_training_specs_stay_out_of_the_heldout_set() -> None:
    focus = specsets.extra_training("mac") + specsets.extra_training("intmac")
    held = {s.name for s in specsets.heldout()}
    assert not held & {s.name for s in focus}
    assert sum(s.family == "mac" and s.is_exact for s in focus) >= 6
    assert any(s.family == "mac" and not s.is_exact and s.lanes >= 8 for s in focus)


def _reduce_columns(widths: list[int], offsets: list[int], out_width: int, signed: bool) -> int:
    """Reference carry-save reduction on explicit bits: while a column holds more than two
    bits, a full adder takes three and leaves a sum there and a carry one column up."""
    cols: list[list[str]] = [[] for _ in range(out_width + 1)]
    for i, (w, o) in enumerate(zip(widths, offsets)):
        for j in range(o, out_width if signed else min(o + w, out_width)):
            cols[j].append(f"x{i}[{min(j - o, w - 1)}]")
    adders = 0
    for j in range(out_width):
        while len(cols[j]) > 2:
            del cols[j][:3]
            cols[j].append("s")
            cols[j + 1].append("c")
            adders += 1
    return adders


def test_carry_save_tree_counts_full_adders_column_by_column() -> None:
    from peforge.models.cost.components import tree_full_adders

    rng = np.random.default_rng(7)
    for _ in range(300):
        k = int(rng.integers(3, 18))
        widths = [int(w) for w in rng.integers(1, 20, k)]
        offsets = [int(o) for o in rng.integers(0, 8, k)] if rng.random() < 0.5 else [0] * k
        out = int(rng.integers(4, 40))
        signed = bool(rng.random() < 0.5)
        assert tree_full_adders(widths, out, signed, offsets) == _reduce_columns(widths, offsets, out, signed)
    # a constant shift leaves low columns empty: (x << 0) + (y << 4) + (z << 4) + (w << 8) of 8 bits
    assert tree_full_adders([8] * 4, 16, offsets=[0, 4, 4, 8]) == 8 < tree_full_adders([8, 12, 12, 16], 16)


def test_signed_operands_widen_the_carry_save_tree() -> None:
    from peforge.models.cost.components import FEATURES, Netlist

    csa = FEATURES.index("csa")
    signed, unsigned = Netlist(), Netlist()
    signed.multi_add([8, 8, 8, 16], 17, signed=True)
    unsigned.multi_add([8, 8, 8, 16], 17)
    # three narrow operands: no sign-extension column is shared (see the Yosys test below)
    assert sum(r[csa] for r in signed.feats) == _reduce_columns([8, 8, 8, 16], [0] * 4, 17, True)
    assert sum(r[csa] for r in unsigned.feats) == _reduce_columns([8, 8, 8, 16], [0] * 4, 17, False)
    assert sum(r[csa] for r in signed.feats) > sum(r[csa] for r in unsigned.feats)


def _bare_sum(count: int, width: int, acc_width: int):
    """``acc <= Mux(first, 0, acc) + x0 + ... `` over ``count`` signed ``width``-bit inputs."""
    from amaranth import Module, Mux, Signal, signed
    from amaranth.back import verilog

    m = Module()
    xs = [Signal(signed(width), name=f"x{i}") for i in range(count)]
    acc, first = Signal(signed(acc_width)), Signal()
    total = Mux(first, 0, acc)
    for x in xs:
        total = total + x
    m.d.sync += acc.eq(total)
    name = f"sum{count}x{width}_{acc_width}"
    return verilog.convert(m, ports=[*xs, acc, first], name=name), name


def test_sign_extension_columns_against_yosys(tmp_path: Path) -> None:
    """Eight accumulator bits above what ``E`` signed inputs can reach cost far less than a
    carry-save row each (every input is a copy of its sign there; Yosys / ABC share the
    logic): the model's extra LUTs follow iCE40 synthesis, a plain row count does not."""
    from peforge import fpga
    from peforge.models.cost.components import FEATURES, Netlist, clog2

    coef = calibration.load()["targets"]["ice40"]["luts"]
    csa = FEATURES.index("csa")

    def model(e: int, acc_width: int, discount: bool = True) -> float:
        n = Netlist()
        n.accumulate([8] * e, acc_width, acc_width, signed=True)
        f = n.totals()
        if not discount:  # every column a full carry-save row
            f[csa] += extension_discount([8] * e + [acc_width], acc_width)
        return sum(a * b for a, b in zip(coef, f))

    for e in (4, 16):
        low = 8 + clog2(e)
        luts = []
        for w in (low, low + 8):
            text, name = _bare_sum(e, 8, w)
            v = tmp_path / f"{name}.v"
            v.write_text(text)
            luts.append(fpga.synthesize((str(v), {"module": name}), "ice40", cache=False).luts)
        measured = luts[1] - luts[0]
        estimated = model(e, low + 8) - model(e, low)
        assert estimated == pytest.approx(measured, rel=0.30), (e, luts, estimated)
    rowwise = model(16, 20, discount=False) - model(16, 12, discount=False)
    assert rowwise > 1.5 * measured  # what the discount corrects


def test_family_scale_applies_per_family() -> None:
    cal = calibration.load()
    for target, metric, key in (("ice40", "luts", "luts"), ("generic", "nand2", "gates_nand2")):
        scales = cal["targets"][target]["family_scale"][metric]
        families = {"mac", "intmac", "simd", "shiftadd", "blockdot", "lut"}
        assert {g for g in scales if "/" not in g} == families
        # a family's deferred / exact accumulators have their own scale (their own rows)
        assert {g for g in scales if "/" in g} == {"mac/deferred", "mac/exact", "blockdot/deferred"}
        assert all(0.3 < v < 3.0 for v in scales.values())
        deferred = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", rounding="deferred", segment=16)
        for s, group in ((E4, "mac"), (LutSpec("int8", 4, 4, lanes=4), "lut"), (deferred, "mac/deferred")):
            f, _ = cost.model.features(assemble(s), "generic" if target == "generic" else target)
            raw = float(np.dot(cal["targets"][target][metric], f))
            got = getattr(cost.estimate(s, "asic45" if target == "generic" else target), key)
            assert got == pytest.approx(raw * scales[group], rel=1e-3)


def test_delay_fits_per_target() -> None:
    """ECP5 has its own nextpnr fit (leave-one-out error, no note); 7-series borrows iCE40's."""
    cal = calibration.load()
    for target, device in (("ice40", "hx8k"), ("ecp5", "25k")):
        assert set(cal["targets"][target]["delay"]) == {"c0", "lut", "carry"}
        assert cal["error"][target]["delay_ns"]["method"] == f"leave-one-out, nextpnr {device}"
        assert "note" not in cost.estimate(E4, target).error["delay_ns"]
    assert "delay" not in cal["targets"]["xilinx"]
    assert "uncalibrated" in cost.estimate(E4, "xilinx").error["delay_ns"]["note"]
    pnr = [r for r in cal["measurements"]["pnr"] if r["target"] == "pnr-25k"]
    assert len(pnr) >= 8 and all(r["fmax_mhz"] > 0 for r in pnr)


def test_nnls_and_spearman() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((30, 4))
    x_true = np.array([0.0, 2.0, 0.5, 0.0])
    assert fit.nnls(a, a @ x_true) == pytest.approx(x_true, abs=1e-8)
    b = a @ np.array([1.0, -1.0, 0.3, 0.2])
    x = fit.nnls(a, b)
    assert (x >= 0).all()
    for _ in range(50):  # no non-negative point nearby fits better
        y = np.clip(x + rng.normal(0, 0.05, 4), 0, None)
        assert np.linalg.norm(a @ x - b) <= np.linalg.norm(a @ y - b) + 1e-12
    assert fit.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert fit.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert fit.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(1 - 6 * 4 / (5 * 24))


def test_toggle_count_matches_python() -> None:
    rng = np.random.default_rng(2)
    w = rng.integers(0, 1 << 20, (3, 50, 2), dtype=np.uint64)
    ref = sum(
        bin(int(w[i, t, k]) ^ int(w[i, t - 1, k])).count("1") for i in range(3) for t in range(1, 50) for k in range(2)
    )
    assert toggles.toggles([w], 20) == pytest.approx(ref / (3 * 49 * 2 * 20))
    # one's complement words: +x -> -x toggles every bit of the (width + 1)-bit term
    words = toggles.fixed_words(np.array([[3.0, -3.0, -3.0]]), 0, 8)
    assert [int(x) for x in words[0][0]] == [3, 0x1FF ^ 3, 0x1FF ^ 3]


def test_energy_random_vs_real_operands() -> None:
    s = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=2)
    rnd = energy.energy(s, "random")
    assert rnd.energy_pj_per_op == cost.estimate(s, "asic45").energy_pj_per_op
    real = energy.energy(s, "digits")
    act = real.notes["activity"]
    assert set(act) == set(cost.CLASSES) and all(0 < v < 1.5 for v in act.values())
    assert real.energy_pj_per_op < rnd.energy_pj_per_op  # half the activations are exactly zero pixels


def test_cli_cost_json_and_table() -> None:
    runner = CliRunner()
    res = runner.invoke(
        app, ["cost", "mac", "--a", "e4m3fn", "--b", "e4m3fn", "--acc", "fp32", "--target", "ecp5", "--json"]
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["spec"] == E4.name and d["luts"] > 0 and "median" in d["error"]["luts"]
    res = runner.invoke(app, ["cost", "intmac", "--target", "asic45"])
    assert res.exit_code == 0 and "NAND2" in res.output and "median" in res.output
    res = runner.invoke(app, ["cost", "mac", "--target", "fpga9"])
    assert res.exit_code == 2 and "target='fpga9'" in res.output
    assert runner.invoke(app, ["calibrate", "--help"]).exit_code == 0


def test_models_cost_imports_no_hdl_tool() -> None:
    code = (
        "import sys, peforge.models.cost as c; from peforge.spec import MinifloatMacSpec as M; "
        "c.estimate(M(), 'ecp5'); bad = [m for m in sys.modules if m.split('.')[0] == 'amaranth' "
        "or m.startswith(('peforge.rtl', 'peforge.fpga', 'peforge.sim', 'cocotb'))]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


@pytest.mark.parametrize("spec", [f.examples[0] for f in FAMILIES], ids=lambda s: s.family)
def test_energy_of_every_family(spec) -> None:
    """``energy`` works for every family: random operands give the anchored per-op energy
    (activity 1 in every class) and the digits workload an activity in a sane range."""
    rand = energy.energy(spec, "random")
    base = cost.estimate(spec, "asic45")
    assert rand.energy_pj_per_op == pytest.approx(base.energy_pj_per_op)
    digits = energy.energy(spec, "digits")
    act = digits.notes["activity"]
    assert set(act) == set(CLASSES) and act["ctl"] == 1.0
    assert all(0.0 < v < 4.0 for v in act.values()), act
    assert 0.0 < digits.energy_pj_per_op < 4.0 * rand.energy_pj_per_op
