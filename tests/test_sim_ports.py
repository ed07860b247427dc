"""The shared testbench path without a simulator: ports and timing read from every family's
manifest, the wide-word encoding decoded back independently (plain string slicing of the
'0'/'1' words, not the encoder's bit arrays), the golden-output contract and bad input.

The Verilator runs of the same path are in the families' ``tests/test_*_rtl.py`` and
``tests/test_sim_mac.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from peforge import rtl
from peforge.families import FAMILIES
from peforge.sim import batch, regression
from peforge.sim.ports import PortMap
from peforge.sim.vectors import VectorSet
from peforge.sim.wrapper import CONTROL_BITS, wrapper_verilog
from peforge.spec import BlockDotSpec, MinifloatMacSpec, ShiftAddSpec

#: the families the shared testbench drives (a family with its own regression, the PE array, has no port map)
SPECS = [spec for fam in FAMILIES if fam.vector_sets is not None for spec in fam.examples]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_port_map_is_the_manifest(spec) -> None:
    man = rtl.manifest(spec)
    ports = PortMap.from_manifest(man)
    inputs = [
        (p["name"], p["width"])
        for p in man["ports"]
        if p["direction"] == "input" and p["name"] not in ("clk", "rst", "in_valid")
    ]
    outputs = [(p["name"], p["width"]) for p in man["ports"] if p["direction"] == "output"]
    assert [(f.name, f.width) for f in ports.inputs] == inputs
    assert [(f.name, f.width) for f in ports.outputs] == outputs
    assert ports.latency == spec.latency
    assert ports.interval == getattr(spec, "initiation_interval", getattr(spec, "cycles_per_input", 1))
    assert ports.beats == getattr(spec, "beats", 1)
    for name, info in man["lane_packing"].items():
        if isinstance(info, dict) and "lanes" in info:
            assert (ports.input(name).lanes, ports.input(name).lane_bits) == (info["lanes"], info["width"])
    # every output but the handshake is compared with the golden model, whose ports these are
    from peforge.models import golden

    assert {f.name for f in batch.checked_outputs(ports)} == set(golden.port_widths(spec))


def test_bad_manifests_are_named() -> None:
    man = rtl.manifest(MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=2))
    bad = dict(man, lane_packing={"a": {"lanes": 3, "width": 8}})
    with pytest.raises(ValueError, match=r"lane_packing\['a'\].*16-bit port"):
        PortMap.from_manifest(bad)
    bad = dict(man, ports=[p for p in man["ports"] if p["name"] != "in_first"])
    with pytest.raises(ValueError, match="no 'in_first' input"):
        PortMap.from_manifest(bad)
    with pytest.raises(ValueError, match="latency=0"):
        PortMap.from_manifest(dict(man, latency=0))


def _fields(word: str, ports: PortMap, row: int) -> dict[str, int]:
    """One copy's input ports from one '0'/'1' din word (MSB first), by string slicing."""
    lsb_first = word[::-1]
    base = CONTROL_BITS + row * ports.in_bits
    return {f.name: int(lsb_first[base + f.offset : base + f.offset + f.width][::-1], 2) for f in ports.inputs}


@pytest.mark.parametrize(
    "spec",
    [
        ShiftAddSpec("int4", "int4", "bitserial", group=4, scale="bf16", lanes=2),
        BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16, lanes=4),
    ],
    ids=lambda s: s.family,
)
def test_encoding_drives_every_port_as_the_manifest_says(spec) -> None:
    """Inputs on the right cycles and bits: one every `interval` cycles, `beats` per step, the
    last-beat ports on the last beat, reset first; `in_valid` low in between."""
    fam = next(f for f in FAMILIES if f.name == spec.family)
    ports = PortMap.from_manifest(rtl.manifest(spec))
    vs = fam.part("vector_sets")(spec, 200, False, 0, 4)[-1]  # the random set with bubbles
    plan = batch.make_plan([vs], 4, ports)
    data = batch.encode(plan, seed=3)  # per word: ceil(width / 8) bytes, most significant first
    width = CONTROL_BITS + 4 * ports.in_bits
    size = -(-width // 8)
    words = [format(int.from_bytes(data[i : i + size], "big"), f"0{width}b") for i in range(0, len(data), size)]
    assert len(words) == plan.cycles
    p = plan.passes[0]
    assert words[p.start][-1] == "1" and all(w[-1] == "0" for w in words[p.start + 1 : p.start + 3])  # rst
    valid = [t for t, w in enumerate(words) if w[-2] == "1"]
    expect = list(p.start + plan.layouts[0].beat_cycle)
    assert valid == expect and (np.diff(expect) >= ports.interval).all()
    n = ports.beats
    for t in range(min(vs.steps, 40)):
        for row in range(min(p.nrows, 2)):
            beats = [_fields(words[expect[t * n + k]], ports, row) for k in range(n)]
            got_first = beats[-1]["in_first"]
            assert got_first == int(vs.first[p.row0 + row, t])
            for name, values in vs.inputs.items():
                f = ports.input(name)
                codes = np.asarray(values[p.row0 + row, t]).reshape(-1)
                if name in ports.last_beat_only:
                    assert beats[-1][name] == int(codes[0])
                    continue
                per_beat = codes.reshape(n, f.lanes)
                for k in range(n):
                    assert beats[k][name] == sum(int(c) << (i * f.lane_bits) for i, c in enumerate(per_beat[k]))


def test_wrapper_verilog_is_lint_clean_and_deterministic(tmp_path) -> None:
    spec = MinifloatMacSpec("e5m2", "e2m1fn", "exact", lanes=2, stages=1)  # acc_flags too
    ports = PortMap.from_manifest(rtl.manifest(spec))
    text = wrapper_verilog(ports, 3, "tb_wrap")
    assert text == wrapper_verilog(ports, 3, "tb_wrap")
    path = tmp_path / "wrap.v"
    path.write_text(rtl.verilog(spec) + text)
    rtl.lint(path)
    with pytest.raises(ValueError, match="rows=0"):
        wrapper_verilog(ports, 0, "tb_wrap")


@pytest.mark.parametrize(
    "spec",
    [MinifloatMacSpec("e5m2", "e2m1fn", "exact", lanes=2, stages=1), MinifloatMacSpec("e5m2", "e5m2", "exact")],
    ids=["acc50", "acc77"],
)
def test_output_record_is_decoded_per_port(spec) -> None:
    """The wrapper's record ($fwrite "%u": per word 4-byte units, least significant first) read
    back per copy and port equals plain Python-int slicing of each word (a 50-bit accumulator
    read from bytes, a 77-bit one through bits); a record of the wrong size is named."""
    ports = PortMap.from_manifest(rtl.manifest(spec))
    rows = 3
    vs = VectorSet("one", np.zeros((rows, 5, 1), np.int64), np.zeros((rows, 5, 1), np.int64), np.ones((rows, 5), bool))
    plan = batch.make_plan([vs], rows, ports)
    width = rows * ports.out_bits
    rng = np.random.default_rng(7)
    words = [int.from_bytes(rng.bytes(-(-width // 8)), "little") & ((1 << width) - 1) for _ in range(plan.cycles)]
    blob = b"".join(w.to_bytes(4 * -(-width // 32), "little") for w in words)
    out = batch.decode(blob, plan)
    for c, word in enumerate(words):
        for r in range(rows):
            for f in ports.outputs:
                want = word >> (r * ports.out_bits + f.offset) & ((1 << f.width) - 1)
                assert int(out[f.name][c, r]) == want
    with pytest.raises(ValueError, match="bytes of output, expected"):
        batch.decode(blob[:-4], plan)


def test_golden_outputs_must_be_the_manifests() -> None:
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
    bench = batch.bench_for(spec)
    vs = VectorSet("one", np.zeros((1, 2, 1)), np.zeros((1, 2, 1)), np.ones((1, 2), bool))
    assert set(batch.golden_for(bench, vs)) == {"acc"}
    extra = dataclasses.replace(bench, golden=lambda v: {"acc": np.zeros((1, 2)), "acc_flags": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="golden model returns"):
        batch.golden_for(extra, vs)
    missing = dataclasses.replace(bench, golden=lambda v: {})
    with pytest.raises(ValueError, match="checked outputs are \\['acc'\\]"):
        batch.golden_for(missing, vs)


def test_bad_vector_sets_are_named() -> None:
    with pytest.raises(ValueError, match="a must be"):
        VectorSet("x", np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), np.ones((2, 4), bool))
    ports = PortMap.from_manifest(rtl.manifest(MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")))
    plan = batch.make_plan(
        [VectorSet("wide", np.full((1, 2, 1), 256), np.zeros((1, 2, 1)), np.ones((1, 2), bool))], 4, ports
    )
    with pytest.raises(ValueError, match="port 'a' code 256 does not fit its 8-bit lane"):
        batch.encode(plan)
    plan = batch.make_plan(
        [
            VectorSet(
                "m", np.zeros((1, 2, 1)), np.zeros((1, 2, 1)), np.ones((1, 2), bool), ports={"mode": np.zeros((1, 2))}
            )
        ],
        4,
        ports,
    )
    with pytest.raises(ValueError, match="no such input port"):
        batch.encode(plan)


def test_sim_jobs(monkeypatch) -> None:
    monkeypatch.setenv("PEFORGE_SIM_JOBS", "3")
    assert regression.sim_jobs() == 3
    monkeypatch.setenv("PEFORGE_SIM_JOBS", "0")
    with pytest.raises(ValueError, match="PEFORGE_SIM_JOBS='0'"):
        regression.sim_jobs()
