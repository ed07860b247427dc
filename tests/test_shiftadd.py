"""Shift-add PE (family ``shiftadd``): spec validation and JSON round trip, the golden model
against a Python-int / Fraction reference written here (values decoded by hand from the
format definitions, FP32 rounding done with Fractions), the quantiser against brute-force
nearest-value search, ``matmul`` against plain ``x @ w`` where that is exact, and the
Amaranth RTL in the Amaranth simulator against the same reference; lint, deterministic
Verilog, manifest, CLI."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from ports import CONTROL_PORTS
from typer.testing import CliRunner

from peforge import formats, quantize, rtl
from peforge import spec as spec_mod
from peforge.cli import app
from peforge.models import golden
from peforge.spec import ShiftAddSpec

BUILD = Path(__file__).resolve().parent.parent / "build" / "test_shiftadd"


# ---- independent reference ------------------------------------------------------------------
def ref_act(spec: ShiftAddSpec, code: int) -> Fraction:
    fmt = spec.act
    if isinstance(fmt, formats.IntFormat):
        return Fraction(code - (1 << fmt.bits) if fmt.signed and code >> (fmt.bits - 1) else code)
    v = float(fmt.decode(np.array([code]))[0])  # float64 is exact for <= 8-bit floats
    return Fraction(v) if np.isfinite(v) else Fraction(0)


def ref_weight(spec: ShiftAddSpec, code: int) -> Fraction:
    """From the format definitions (formats.PotFormat / ApotFormat docstrings), by hand."""
    w, bits = spec.weight, spec.weight.bits
    sign = -1 if code >> (bits - 1) & 1 else 1
    if isinstance(w, formats.IntFormat):
        return Fraction(code - (1 << bits) if w.signed and code >> (bits - 1) else code)
    if isinstance(w, formats.PotFormat):
        k = code & ((1 << (bits - 1)) - 1)
        return Fraction(0) if k == 0 else sign * Fraction(2) ** (w.emax - (1 << (bits - 1)) + 1 + k)
    w1, w2 = (bits - 1 + 1) // 2, (bits - 1) // 2
    k1, k2 = (code >> w2) & ((1 << w1) - 1), code & ((1 << w2) - 1)
    t1 = Fraction(0) if k1 == 0 else Fraction(2) ** (-2 * (k1 - 1))
    t2 = Fraction(0) if k2 == 0 else Fraction(2) ** (-2 * (k2 - 1) - 1)
    return sign * (t1 + t2) * Fraction(2) ** w.emax


def ref_scale(spec: ShiftAddSpec, code: int) -> Fraction | None:
    """Scale value, None for NaN/inf."""
    fmt = spec.scale
    if isinstance(fmt, formats.IntFormat):
        return Fraction(code - (1 << fmt.bits) if fmt.signed and code >> (fmt.bits - 1) else code)
    v = float(fmt.decode(np.array([code]))[0])
    return Fraction(v) if np.isfinite(v) else None


def fp32_value(code: int) -> Fraction | None:
    v = float(np.array([code], np.uint32).view(np.float32)[0])
    return Fraction(v) if np.isfinite(v) else None


def rne_fp32(v: Fraction) -> int:
    """IEEE binary32 round-to-nearest-even of an exact value (sign of a zero result: +0 for an
    exact 0, the sign of v when v underflows to 0)."""
    if v == 0:
        return 0
    sign = 0x80000000 if v < 0 else 0
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, -126)
    ulp = Fraction(2) ** (e - 23)
    q, r = divmod(a, ulp)
    q = int(q)
    if r * 2 > ulp or (r * 2 == ulp and q & 1):
        q += 1
    if q == 1 << 24:
        q, e = 1 << 23, e + 1
    if e > 127:
        return sign | 0x7F800000
    if q < 1 << 23:  # subnormal (or zero)
        return sign | q
    return sign | ((e + 127) << 23) | (q - (1 << 23))


def ref_run(spec: ShiftAddSpec, a, b, first, scale=None) -> list[int]:
    """Port bits after every step of one chain row, straight from the semantics."""
    lsb = Fraction(2) ** spec.product_lsb_exp
    width = spec.width
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    acc, cnt, out, res = 0, 0, 0, []
    for t in range(len(first)):
        s = sum(ref_act(spec, int(x)) * ref_weight(spec, int(y)) for x, y in zip(a[t], b[t])) / lsb
        assert s.denominator == 1, "product LSB claim of the spec is wrong"
        start = first[t] or (spec.group is not None and cnt == 0)
        acc = (0 if start else acc) + int(s)
        if spec.overflow == "saturate" and spec.acc_bits is not None:
            acc = min(max(acc, lo), hi)
        else:
            acc = (acc - lo) % (1 << width) + lo
        if spec.group is None:
            res.append(acc & ((1 << width) - 1))
            continue
        cnt = 1 if start else cnt + 1
        base = 0 if first[t] else out
        if cnt == spec.group:
            cnt = 0
            bval, sval = fp32_value(base), ref_scale(spec, int(scale[t]))
            if bval is None:
                pass
            elif sval is None:
                base = 0x7FC00000
            elif acc * sval != 0:
                base = rne_fp32(bval + acc * sval * lsb)
        out = base
        res.append(out)
    return res


SPECS = [
    ShiftAddSpec("int8", "pot4", "pot"),
    ShiftAddSpec("e4m3fn", "pot5", "pot", lanes=4, stages=2),
    ShiftAddSpec("uint4", "pot3e2", "pot", lanes=3, acc_bits=12, overflow="saturate"),
    ShiftAddSpec("int8", "apot5", "apot", lanes=2, stages=1),
    ShiftAddSpec("e5m2", "apot7e-1", "apot", lanes=3, acc_bits=52),
    ShiftAddSpec("int4", "int8", "shiftadd-int", lanes=4, stages=3, acc_bits=15),
    ShiftAddSpec("uint8", "uint4", "shiftadd-int", lanes=2),
    ShiftAddSpec("int8", "uint8", "bitserial", acc_bits=20, overflow="saturate"),
    ShiftAddSpec("int8", "int4", "bitserial", lanes=2, stages=2, group=4, scale="e8m0fnu"),
    ShiftAddSpec("uint8", "int4", "shiftadd-int", group=8, scale="bf16"),
    ShiftAddSpec("e2m1fn", "pot3", "pot", group=3, scale="int6", lanes=2),
    ShiftAddSpec("int16", "int8", "shiftadd-int", group=5, scale="fp16", stages=1),
    ShiftAddSpec("e4m3fn", "apot5", "apot", group=2, scale="fp16", lanes=2, acc_bits=30),
    ShiftAddSpec("uint4", "pot2", "pot", group=1, scale="uint3"),
]


def random_chain(spec: ShiftAddSpec, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, spec.act.num_codes, (steps, spec.lanes))
    b = rng.integers(0, 1 << spec.weight.bits, (steps, spec.lanes))
    edge = rng.random((steps, spec.lanes)) < 0.3  # most negative activation, largest weights
    amin = 1 << (spec.act.bits - 1) if not isinstance(spec.act, formats.IntFormat) or spec.act.signed else 0
    a[edge] = amin if isinstance(spec.act, formats.IntFormat) else (spec.act.sign_mask | spec.act.max_code)
    first = rng.random(steps) < 0.04
    first[0] = True
    scale = None
    if spec.group is not None:
        scale = rng.integers(0, spec.scale.num_codes, steps)
        if isinstance(spec.scale, formats.FloatFormat) and spec.scale.bits == 16:
            ok = rng.random(steps) < 0.9  # mostly moderate scales so chains do not go NaN early
            vals = np.ldexp(1 + rng.random(steps), rng.integers(-10, 10, steps)) * np.where(
                rng.random(steps) < 0.3, -1, 1
            )
            scale = np.where(ok, spec.scale.encode(vals), scale)
    return a, b, first, scale


# ---- spec ----------------------------------------------------------------------------------
def test_spec_round_trip_name_and_geometry() -> None:
    for s in SPECS:
        assert spec_mod.from_json(s.to_json()) == s and hash(s) == hash(spec_mod.from_dict(s.to_dict()))
        assert s.name.isidentifier() and s.family == "shiftadd"
    s = ShiftAddSpec("int8", "pot4", "pot", lanes=4)
    assert s.weight_lsb_exp == -6 and s.weight_range == (-64, 64)  # pot4: 2**-6 .. 1
    assert s.width == (128 * 64 * 4 * 4096).bit_length() + 1  # (-128) * (-64) * 16384 terms, positive
    assert ShiftAddSpec("int8", "int4", "bitserial").latency == 4 + 1
    assert ShiftAddSpec("int8", "int4", "bitserial", stages=2, group=4, scale="fp16").latency == 4 + 1 + 2 + 1
    assert ShiftAddSpec("e4m3fn", "pot4", "pot").act_range == (-448 * 2**9, 448 * 2**9)


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(act="int8", weight="pot4", mode="shift"), ["mode='shift'", "pot", "apot", "bitserial"]),
        (dict(act="int8", weight="apot5", mode="pot"), ["weight='apot5'", "potN"]),
        (dict(act="int8", weight="pot7", mode="pot"), ["weight='pot7'", "N = 2..6"]),
        (dict(act="int8", weight="int9", mode="bitserial"), ["weight='int9'", "K = 2..8"]),
        (dict(act="e5m3", weight="pot4", mode="pot"), ["act='e5m3'", "at most 8 bits"]),
        (dict(act="int17", weight="pot4", mode="pot"), ["act='int17'"]),
        (dict(act="int8", weight="pot4", mode="pot", group=8), ["scale=None", "group=8"]),
        (dict(act="int8", weight="pot4", mode="pot", scale="fp16"), ["scale='fp16'", "group"]),
        (dict(act="int8", weight="pot4", mode="pot", group=8, scale="e4m3fn"), ["scale='e4m3fn'", "bf16"]),
        (dict(act="int8", weight="pot4", mode="pot", group=0, scale="fp16"), ["group=0", "1..4096"]),
        (dict(act="int8", weight="pot4", mode="pot", acc_bits=8), ["acc_bits=8", "15..128"]),
        (dict(act="int8", weight="pot4", mode="pot", overflow="clip"), ["overflow='clip'", "saturate"]),
        (dict(act="int8", weight="pot4", mode="pot", lanes=65), ["lanes=65", "1..64"]),
    ],
)
def test_spec_rejects_bad_fields(kw: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        ShiftAddSpec(**kw)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


# ---- golden model --------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_golden_matches_reference(spec: ShiftAddSpec) -> None:
    rows = []
    for seed in range(3):
        a, b, first, scale = random_chain(spec, 150, seed)
        kw = {"scale": scale[None]} if spec.group else {}
        got = golden.run(spec, a=a[None], b=b[None], first=first[None], **kw)["acc"][0]
        assert [int(v) for v in got] == ref_run(spec, a, b, first, scale)
        rows.append(got)
    assert golden.port_widths(spec) == {"acc": spec.out_bits}


def test_golden_every_pair_of_codes() -> None:
    """Every int8 activation x every pot5 / apot6 / int4 weight code, single-step chains."""
    for spec in (
        ShiftAddSpec("int8", "pot5", "pot"),
        ShiftAddSpec("int8", "apot6", "apot"),
        ShiftAddSpec("int8", "int4", "shiftadd-int"),
        ShiftAddSpec("e4m3fn", "pot4", "pot"),
    ):
        nw = 1 << spec.weight.bits
        ca, cb = np.meshgrid(np.arange(256), np.arange(nw), indexing="ij")
        got = golden.run(spec, a=ca.reshape(-1, 1, 1), b=cb.reshape(-1, 1, 1), first=np.ones((ca.size, 1), bool))
        vals = golden.value(spec, got["acc"][:, 0])
        want = [float(ref_act(spec, int(x)) * ref_weight(spec, int(y))) for x, y in zip(ca.ravel(), cb.ravel())]
        assert vals.tolist() == want


def test_golden_derived_width_holds_worst_case_and_wraps_when_given() -> None:
    spec = ShiftAddSpec("int8", "pot4", "pot", lanes=2, max_count=16)
    a = np.full((1, 16, 2), 0x80)  # -128
    b = np.full((1, 16, 2), 0xF)  # -1 (pot4 code 1|111)
    got = golden.value(spec, golden.run(spec, a=a, b=b, first=np.zeros((1, 16), bool))["acc"])
    assert got[0, -1] == 16 * 2 * 128  # positive, not wrapped
    wrap = ShiftAddSpec("int8", "pot4", "pot", lanes=2, acc_bits=17)
    sat = ShiftAddSpec("int8", "pot4", "pot", lanes=2, acc_bits=17, overflow="saturate")
    total = 13 * 2 * 128 * 64  # 13 steps, in units of 2**-6
    for s, want in ((wrap, (total + 2**16) % 2**17 - 2**16), (sat, 2**16 - 1)):
        raw = golden.run(s, a=a[:, :13], b=b[:, :13], first=np.zeros((1, 13), bool))["acc"][0, -1]
        assert golden.value(s, raw) * 64 == want


def test_group_dequant_special_cases() -> None:
    spec = ShiftAddSpec("int8", "int8", "shiftadd-int", group=2, scale="e8m0fnu")
    one, nan, big = 127, 255, 254  # 1.0, NaN, 2**127
    a = np.array([[[1], [2], [100], [100], [1], [1], [3], [0]]])
    b = np.array([[[3], [4], [100], [100], [1], [0], [5], [0]]])
    first = np.array([[1, 0, 0, 0, 0, 0, 1, 0]], bool)
    scale = np.array([[0, one, 0, big, 0, one, 0, nan]])
    got = [int(v) for v in golden.run(spec, a=a, b=b, first=first, scale=scale)["acc"][0]]
    assert got[:2] == [0, rne_fp32(Fraction(11))]  # partial group invisible, then 11
    assert got[3] == 0x7F800000 and got[5] == 0x7F800000  # 2e4 * 2**127 overflows; inf sticky
    assert got[6] == 0 and got[7] == 0x7FC00000  # first resets; NaN scale gives NaN


# ---- quantiser -----------------------------------------------------------------------------
def _nearest(vals: np.ndarray, x: float, tie_up: bool) -> float:
    d = np.abs(vals - x)
    cands = vals[d == d.min()]
    if len(cands) == 1:
        return float(cands[0])
    return float(cands[np.argmax(np.abs(cands))] if tie_up else cands[np.argmin(np.abs(cands))])


@pytest.mark.parametrize("name", ["pot4", "pot5", "pot3e2", "apot5", "apot7", "apot6e-1"])
def test_quantiser_picks_nearest_value(name: str) -> None:
    fmt = formats.get(name)
    vals = np.unique(fmt.values())
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-fmt.max, fmt.max, 3000), (vals[1:] + vals[:-1]) / 2, [fmt.max]])
    q = quantize.quantize_weights(x[:, None], fmt)
    assert q.col_scale[0] == 1.0  # amax == fmt.max: no scaling, ties stay ties
    got = quantize.dequantize(q)[:, 0] / q.col_scale[0]
    xs = x / q.col_scale[0]
    pos = vals[vals > 0]
    for xi, gi in zip(xs, got):
        if isinstance(fmt, formats.PotFormat) and abs(xi) == pos.min() / 2:
            assert gi == 0  # tie between 0 and the smallest power
            continue
        # ties go to the larger magnitude (PoT: 1.5 * 2**j rounds up to 2**(j+1); APoT: up)
        assert gi == _nearest(vals, min(max(xi, -fmt.max), fmt.max), tie_up=True), (name, xi, gi)


def test_quantiser_group_scales_never_saturate() -> None:
    rng = np.random.default_rng(5)
    w = rng.normal(size=(64, 6)) * np.exp2(rng.integers(-20, 5, (1, 6)))
    for wname in ("pot5", "apot6", "int4"):
        for sname in ("fp16", "bf16", "e8m0fnu", "uint8", "int6"):
            fmt, sf = formats.get(wname), formats.get(sname)
            q = quantize.quantize_weights(w, fmt, group=16, scale_fmt=sf)
            ideal = np.abs(w).reshape(4, 16, 6).max(axis=1) / fmt.max
            assert (q.group_values() * q.col_scale >= ideal).all()  # the largest weight fits
            assert (np.abs(w / q.scales()) <= fmt.max).all()
            err = np.abs(quantize.dequantize(q) - w).max() / np.abs(w).max()
            assert err < 0.5, (wname, sname, err)


# ---- matmul ----------------------------------------------------------------------------------
def test_matmul_is_exact_on_representable_inputs() -> None:
    rng = np.random.default_rng(11)
    x = rng.integers(-127, 128, (5, 37)).astype(np.float64)
    x[0, 0] = 127  # per-tensor scale 1
    for spec in (
        ShiftAddSpec("int8", "pot5", "pot", lanes=4),
        ShiftAddSpec("int8", "apot6", "apot", lanes=3),
        ShiftAddSpec("int8", "int4", "bitserial"),
        ShiftAddSpec("int8", "pot4", "pot", lanes=2, group=3, scale="e8m0fnu"),
    ):
        fmt = spec.weight
        vals = fmt.decode(np.arange(1 << fmt.bits))
        codes = rng.integers(0, 1 << fmt.bits, (37, 4))
        codes[vals[codes] < -fmt.max] = 0  # int4's -8 would double the scale
        codes[::6] = int(np.argmax(vals))  # +max in every column and every group
        w = fmt.decode(codes) * np.exp2(rng.integers(-3, 3, (1, 4)))
        y = golden.matmul(spec, x, w)
        assert np.array_equal(y, x @ w), spec.name  # every partial sum is exact in float64


def test_matmul_equals_quantised_operands_product() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(6, 50))
    w = rng.normal(size=(50, 7))
    for spec in (
        ShiftAddSpec("int8", "pot5", "pot", lanes=4),
        ShiftAddSpec("e4m3fn", "apot7", "apot"),
        ShiftAddSpec("int8", "int4", "shiftadd-int", lanes=2),
    ):
        sx = quantize.pow2_scale(np.abs(x).max(), spec.act.max)
        xq = spec.act.decode(spec.act.encode(x / sx)) * sx
        wq = quantize.dequantize(quantize.quantize_weights(w, spec.weight))
        assert np.allclose(golden.matmul(spec, x, w), xq @ wq, rtol=0, atol=1e-12)
    grouped = ShiftAddSpec("int8", "int4", "shiftadd-int", lanes=2, group=5, scale="fp16")
    y = golden.matmul(grouped, x, w)
    assert np.abs(y - x @ w).max() < 0.15 * np.abs(x @ w).max()


# ---- RTL -------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS[::3] + [SPECS[7]], ids=str)
def test_manifest_fields_and_multiplier_free(spec: ShiftAddSpec) -> None:
    """Lint, determinism and manifest ports: tests/test_family_contract.py."""
    man = rtl.manifest(spec)
    ports = {p["name"]: p["width"] for p in man["ports"]}
    want = {
        **CONTROL_PORTS,
        "a": spec.lanes * spec.act.bits,
        "b": spec.lanes * spec.weight.bits,
        "acc": 32 if spec.group else spec.width,
    }
    if spec.group:
        want["scale"] = spec.scale.bits
    if spec.mode == "bitserial":
        want["in_ready"] = 1
    assert ports == want
    assert man["latency"] == spec.latency and spec_mod.from_dict(man["spec"]) == spec
    k = spec.weight.bits if spec.mode == "bitserial" else 1
    assert man["datapath"]["throughput"]["macs_per_cycle"] == spec.lanes / k
    if spec.group is None:
        assert " * " not in rtl.verilog(spec)  # multiplier-free


def amaranth_run(spec: ShiftAddSpec, a, b, first, scale) -> list[int]:
    """Drive one chain through the RTL in Amaranth's simulator, one input every
    ``cycles_per_input`` cycles (bitserial: also checks ``in_ready``); read ``acc`` when
    ``out_valid`` rises, ``latency`` cycles after each input."""
    from amaranth.sim import Simulator

    dut = rtl.build(spec)
    gap = spec.cycles_per_input
    res: list[int] = []

    async def tb(ctx) -> None:
        sched = {t * gap: t for t in range(len(first))}
        seen = {}
        for cyc in range(len(first) * gap + spec.latency + 1):
            t = sched.get(cyc)
            ctx.set(dut.in_valid, int(t is not None))
            if t is not None:
                if spec.mode == "bitserial":
                    assert ctx.get(dut.in_ready) == 1
                ctx.set(dut.in_first, int(first[t]))
                ctx.set(dut.a, sum(int(x) << (i * spec.act.bits) for i, x in enumerate(a[t])))
                ctx.set(dut.b, sum(int(x) << (i * spec.weight.bits) for i, x in enumerate(b[t])))
                if spec.group:
                    ctx.set(dut.scale, int(scale[t]))
            await ctx.tick()
            seen[cyc + 1] = (ctx.get(dut.out_valid), ctx.get(dut.acc))
        for cyc in sorted(sched):
            valid, acc = seen[cyc + spec.latency]
            assert valid == 1
            res.append(acc)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return res


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_rtl_in_amaranth_simulator_matches_reference(spec: ShiftAddSpec) -> None:
    a, b, first, scale = random_chain(spec, 60, 21)
    assert amaranth_run(spec, a, b, first, scale) == ref_run(spec, a, b, first, scale)


# ---- CLI -------------------------------------------------------------------------------------
def test_cli_generate_and_bad_option() -> None:
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "generate",
            "shiftadd",
            "--act",
            "int8",
            "--weight",
            "apot5",
            "--mode",
            "apot",
            "--group",
            "8",
            "--scale",
            "e8m0fnu",
            "-o",
            str(BUILD / "cli"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["module"] == "shiftadd_apot_int8xapot5_l1_s0_g8e8m0fnu" and Path(out["verilog"]).is_file()
    res = runner.invoke(app, ["generate", "shiftadd", "--act", "int8", "--mode", "bitserial", "--weight", "pot4"])
    assert res.exit_code == 2 and "weight='pot4'" in res.output and "bitserial" in res.output
    # act, weight and mode have no defaults in the spec, so the CLI requires them too
    res = runner.invoke(app, ["generate", "shiftadd", "--mode", "pot", "--weight", "pot4"])
    assert res.exit_code == 2 and "Missing option '--act'" in res.output
