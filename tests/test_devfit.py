"""Device fit: a design that needs more than the chosen device has is refused before nextpnr.

The needs come from arithmetic that does not depend on the fit code: an E4M3 x E4M3 significand
product is 4 x 4 bits, one MULT18X18D each, so a 32-lane MXFP8 block-dot needs 32 (the cost
model's LUT counts stand in for the rest of its Yosys report: synthesising it takes minutes);
a hand-written module of N independent 4 x 4 multipliers needs N.  The device resources are
checked against nextpnr's own totals (slow set).  Work directories live under build/: YoWASP
tools cannot see /tmp.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from scratch import scratch_dir
from typer.testing import CliRunner

from peforge import fpga
from peforge.cli import app
from peforge.errors import DeviceFitError, ExitCode, classify
from peforge.fpga import pnr
from peforge.fpga.fit import capacity, needs, shortfalls
from peforge.fpga.pnr import DEVICES, device_for
from peforge.spec import BlockDotSpec

MXFP8_32 = BlockDotSpec(
    element_a="e4m3fn", element_b="e4m3fn", scale_a="e8m0fnu", scale_b="e8m0fnu", block=32, lanes=32, stages=2
)


@pytest.fixture(scope="module")
def work():
    yield from scratch_dir("test-devfit")


class _ToolRan(Exception):
    pass


@pytest.fixture
def no_tools(monkeypatch):
    """Any Yosys or nextpnr run from place_and_route raises _ToolRan."""

    def ran(*args, **kwargs):
        raise _ToolRan(args)

    for name in ("run_tool", "run_yosys", "_ports", "_run_seed"):
        monkeypatch.setattr(pnr, name, ran)


def _mxfp8_report() -> fpga.SynthReport:
    """A Yosys-shaped ECP5 report of MXFP8_32: one DSP per lane, the rest from the cost model."""
    from peforge.models.cost import estimate

    est = estimate(MXFP8_32, "ecp5")
    design = fpga.as_design(MXFP8_32)
    return fpga.SynthReport(
        target="ecp5",
        module=design.module,
        options={"dsp": True, "widelut": False},
        luts=round(est.luts),
        carry=round(est.carry),
        ffs=est.ffs,
        dsps=MXFP8_32.lanes,
        brams=0,
        lutrams=0,
        muxes=0,
        cells=0,
        cells_by_type={},
        gates=None,
        nand2_eq=None,
        transistors=None,
        yosys_version="test",
        script="",
        seconds=0.0,
        design_key=design.key,
        source=design.source,
    )


def test_mxfp8_32_lanes_refused_on_25k_before_any_tool(no_tools):
    rep = _mxfp8_report()
    with pytest.raises(DeviceFitError) as info:
        fpga.place_and_route(rep, "25k", cache=False)
    message, code = classify(info.value)
    assert code == ExitCode.BAD_VALUE and "\n" not in message
    assert "needs 32 MULT18X18D" in message and "the 25k has 28" in message
    assert "--device 45k" in message and "45k (LFE5U-45F: 72 MULT18X18D)" in message and "85k" in message
    assert "--no-dsp" in message and "LUT4s by the cost model" in message
    assert isinstance(info.value, ValueError)  # Python callers catching ValueError still do


@pytest.mark.parametrize("device", ["45k", "85k"])
def test_mxfp8_32_lanes_passes_the_check_on_larger_ecp5(no_tools, device):
    with pytest.raises(_ToolRan):  # got past the check to the wrapper's Yosys run
        fpga.place_and_route(_mxfp8_report(), device, cache=False)


def test_no_dsp_report_is_not_refused_for_dsps(no_tools):
    rep = replace(_mxfp8_report(), dsps=0, options={"dsp": False, "widelut": False})
    with pytest.raises(_ToolRan):
        fpga.place_and_route(rep, "25k", cache=False)


def test_needs_and_shortfalls_by_family():
    ecp5 = needs("ecp5", {"luts": 100, "carry": 10, "ffs": 7, "dsps": 3, "brams": 1})
    assert ecp5 == {"LUT4": 120, "FF": 7, "DSP": 3, "BRAM": 1}  # a CCU2C takes two LUT4 sites
    ice = needs("ice40", {"luts": 100, "carry": 10, "ffs": 7, "dsps": 0, "brams": 0})
    assert ice["LUT4"] == 100 and ice["carry"] == 10
    hx = DEVICES["hx8k"]
    assert [s.resource for s in shortfalls(hx, {"luts": 7681})] == ["LUT4"]
    assert [s.resource for s in shortfalls(hx, {"ffs": 7681, "carry": 7681})] == ["carry", "FF"]
    assert not shortfalls(hx, {"luts": 7680, "ffs": 7680, "carry": 7680})
    assert capacity(DEVICES["up5k"])["DSP"] == 8 and not DEVICES["hx8k"].has_dsp
    with pytest.raises(ValueError, match="family 'xilinx'"):
        needs("xilinx", {})


def test_fits_nowhere_says_so():
    from peforge.fpga.fit import check_fit

    with pytest.raises(
        DeviceFitError,
        match=r"needs 90,000 LUT4s, the hx8k has 7,680 logic cells; no ice40 device "
        r"peforge places on fits it .*fewer lanes",
    ):
        check_fit(DEVICES["hx8k"], {"luts": 90_000}, "big", devices=DEVICES, dsp=False)
    with pytest.raises(DeviceFitError, match=r"up5k has 8; no ice40 device .* try --no-dsp"):
        check_fit(DEVICES["up5k"], {"luts": 100, "dsps": 9}, "macs", devices=DEVICES, dsp=True)
    with pytest.raises(DeviceFitError, match=r"it fits hx8k \(iCE40HX8K: 7,680 logic cells\): use --device hx8k"):
        check_fit(DEVICES["up5k"], {"luts": 6000}, "mid", devices=DEVICES, dsp=False)


# --- device / target pairing ----------------------------------------------------------------
def test_every_device_is_accepted_for_its_target_only():
    for name, dev in DEVICES.items():
        assert device_for(dev.family, name) is dev
        other = "ecp5" if dev.family == "ice40" else "ice40"
        allowed = sorted(d.name for d in DEVICES.values() if d.family == other)
        with pytest.raises(ValueError) as info:
            device_for(other, name)
        assert f"device {name!r}" in str(info.value) and all(a in str(info.value) for a in allowed)
    assert device_for("ice40").name == "hx8k" and device_for("ecp5").name == "25k"
    with pytest.raises(ValueError, match="needs target ice40 or ecp5.*'xilinx'"):
        device_for("xilinx", None)
    with pytest.raises(ValueError, match=r"unknown nextpnr device 'xc7'.*25k.*45k.*85k.*hx8k.*up5k"):
        device_for("ecp5", "xc7")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--target", "ice40", "--device", "45k"], "device '45k' (LFE5U-45F) is ecp5"),
        (["--target", "ecp5", "--device", "up5k"], "pick one of the ecp5 devices (25k, 45k, 85k)"),
        (["--target", "xilinx"], "needs target ice40 or ecp5"),
        (["--target", "ice40", "--device", "hx8k", "--dsp"], "--dsp on device hx8k"),
    ],
)
def test_cli_pairing_errors_before_synthesis(monkeypatch, args, needle):
    def no_synthesis(*a, **k):
        raise AssertionError("synthesised before checking the device")

    monkeypatch.setattr(fpga, "synthesize", no_synthesis)
    res = CliRunner().invoke(app, ["synth", "intmac", "--pnr", *args])
    assert res.exit_code == ExitCode.BAD_VALUE, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in res.stderr.replace("\n", " "), res.stderr


# --- real Yosys: N multipliers, N MULT18X18D --------------------------------------------------
def _multipliers(work: Path, n: int) -> tuple[Path, dict]:
    name = f"mults{n}"
    body = [f"module {name}(input clk, input [{4 * n - 1}:0] a, b, output reg [{8 * n - 1}:0] p);"]
    body += [
        f"  always @(posedge clk) p[{8 * i + 7}:{8 * i}] <= a[{4 * i + 3}:{4 * i}] * b[{4 * i + 3}:{4 * i}];"
        for i in range(n)
    ]
    path = work / f"{name}.v"
    path.write_text("\n".join(body + ["endmodule", ""]))
    return path, {"module": name}


def test_real_report_and_wrapped_design_refused_before_nextpnr(work, monkeypatch):
    def no_nextpnr(*args, **kwargs):
        raise AssertionError("nextpnr ran")

    monkeypatch.setattr(pnr, "_run_seed", no_nextpnr)
    cache = fpga.ResultCache(work / "cache")
    design = _multipliers(work, 29)
    rep = fpga.synthesize(design, "ecp5", cache=cache)
    assert rep.dsps == 29
    with pytest.raises(
        DeviceFitError,
        match=r"mults29 does not fit ecp5 device 25k .*needs 29 MULT18X18D DSP "
        r"blocks, the 25k has 28; it fits 45k",
    ):
        fpga.place_and_route(rep, "25k", cache=cache)
    # from the Verilog, the check runs on what nextpnr would get: the PE inside its I/O wrapper
    with pytest.raises(DeviceFitError, match=r"mults29 \(with its serial I/O wrapper\) does not fit .*needs 29 MULT"):
        fpga.place_and_route(design, "25k", cache=cache)


def test_cli_refuses_before_place_and_route(monkeypatch):
    """End to end (real Yosys): 29 INT4 lanes need 29 MULT18X18D; the 25k has 28."""
    monkeypatch.setattr(pnr, "_run_seed", lambda *a, **k: (_ for _ in ()).throw(AssertionError("nextpnr ran")))
    res = CliRunner().invoke(
        app, ["synth", "intmac", "--a", "int4", "--b", "int4", "--lanes", "29", "--target", "ecp5", "--pnr"]
    )
    assert res.exit_code == ExitCode.BAD_VALUE, res.output
    line = " ".join(res.stderr.split())
    assert line.startswith("error: intmac_int4xint4_l29") and "needs 29 MULT18X18D DSP blocks, the 25k has 28" in line
    assert "use --device 45k" in line and "--no-dsp" in line


# --- slow: the table against nextpnr, and the devices the message names really place it ----------
_NEXTPNR_TOTALS = {
    "ice40": {"luts": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "brams": "ICESTORM_RAM"},
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D", "brams": "DP16KD"},
}


@pytest.mark.slow
@pytest.mark.parametrize("device", sorted(DEVICES))
def test_device_resources_are_nextpnrs(work, device):
    dev = DEVICES[device]
    path = work / "reg4.v"
    path.write_text(
        "module reg4(input clk, input [3:0] d, output reg [3:0] q);\n  always @(posedge clk) q <= d;\nendmodule\n"
    )
    rep = fpga.place_and_route(
        (path, {"module": "reg4"}), device, dsp=dev.has_dsp and dev.family == "ecp5", cache=False
    )
    for attr, bel in _NEXTPNR_TOTALS[dev.family].items():
        assert getattr(dev, attr) == rep.utilisation.get(bel, {}).get("available", 0), (attr, bel)
    if dev.family == "ice40":
        assert dev.ffs == dev.luts == rep.utilisation["ICESTORM_LC"]["available"]  # one FF per logic cell


@pytest.mark.slow
def test_named_larger_device_places_it(work):
    cache = fpga.ResultCache(work / "cache")
    rep = fpga.synthesize(_multipliers(work, 29), "ecp5", cache=cache)
    placed = fpga.place_and_route(rep, "45k", cache=cache)
    assert placed.used("MULT18X18D") == 29 and placed.fmax_mhz > 0
