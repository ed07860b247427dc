"""LUT PE (family ``lut``): spec validation and JSON round trip, and the golden model (which
computes by table lookup) against plain Python-integer dot products and Fraction values."""

from __future__ import annotations

import functools
import itertools
from fractions import Fraction

import numpy as np
import pytest

from peforge import spec as spec_mod
from peforge.models import golden
from peforge.models.golden import lut as glut
from peforge.spec import LutSpec


# ---- independent reference (Python ints / Fractions, straight from the semantics) ----------
@functools.lru_cache(maxsize=None)
def ref_act(spec: LutSpec, code: int) -> Fraction:
    """Exact activation value of one code (NaN / inf read as 0)."""
    act = spec.act
    if isinstance(act, spec_mod.IntFormat):
        v = code - (1 << act.bits) if act.signed and code >> (act.bits - 1) else code
        return Fraction(v)
    x = float(act.decode(np.array([code]))[0])
    return Fraction(x) if np.isfinite(x) else Fraction(0)


@functools.lru_cache(maxsize=None)
def ref_int(spec: LutSpec, code: int) -> int:
    """Activation integer: exact value / 2**act_lsb_exp (must be an integer)."""
    x = ref_act(spec, code) * Fraction(2) ** -spec.act_lsb_exp
    assert x.denominator == 1
    return int(x)


def ref_weight(spec: LutSpec, code: int) -> int:
    if spec.ternary:
        return {0: 0, 1: 1, 2: 0, 3: -1}[code]
    k = int(spec.weight_bits)
    return code - (1 << k) if code >> (k - 1) else code


def ref_run(spec: LutSpec, a, b, first) -> list[list[list[int]]]:
    """Per row, per step, per lane: the accumulator integer (value / 2**act_lsb_exp), wrapped."""
    w = spec.width
    out = []
    for row in range(a.shape[0]):
        acc = [0] * spec.lanes
        seq = []
        for t in range(a.shape[1]):
            xs = [ref_int(spec, int(c)) for c in a[row, t]]
            for lane in range(spec.lanes):
                dot = sum(int(x) * ref_weight(spec, int(c)) for x, c in zip(xs, b[row, t, lane]))
                acc[lane] = (0 if first[row, t] else acc[lane]) + dot
                acc[lane] = (acc[lane] + (1 << (w - 1))) % (1 << w) - (1 << (w - 1))
            seq.append(list(acc))
        out.append(seq)
    return out


def random_inputs(spec: LutSpec, batch: int, steps: int, seed: int, p_first: float = 0.05):
    rng = np.random.default_rng(seed)
    na = spec.act.num_codes
    a = rng.integers(0, na, (batch, steps, spec.group))
    extreme = rng.random(a.shape) < 0.3  # most negative / largest codes often
    lo_hi = np.array([int(c) for c in _extreme_codes(spec)])
    a[extreme] = rng.choice(lo_hi, size=int(extreme.sum()))
    b = rng.integers(0, 1 << spec.weight_code_bits, (batch, steps, spec.lanes, spec.group))
    first = rng.random((batch, steps)) < p_first
    first[:, 0] = True
    return a, b, first


def _extreme_codes(spec: LutSpec) -> list[int]:
    act = spec.act
    if isinstance(act, spec_mod.IntFormat):
        return [int(c) for c in act.from_int(np.array([act.min_int, act.max_int, 0, -1 if act.signed else 1]))]
    return [act.max_code, act.max_code | act.sign_mask, 0, 1]


SPECS = [
    LutSpec(),
    LutSpec(weight_bits=1),
    LutSpec(weight_bits=2, group=2, lanes=3),
    LutSpec(weight_bits=3, group=8, lanes=2, symmetric=False),
    LutSpec(weight_bits="ternary", group=5, lanes=4),
    LutSpec(weight_bits="ternary", symmetric=False),
    LutSpec("uint8", 4, group=3, lanes=2),
    LutSpec("int16", 4, group=8, lanes=2),
    LutSpec("int4", 2, acc_bits=8),  # wraps
    LutSpec("e4m3fn", 4, lanes=2),
    LutSpec("e5m2", "ternary", group=6),
    LutSpec("e2m1fn", 1, group=7),
    LutSpec("e3m2fn", 3, symmetric=False, lanes=2),
    LutSpec("e4m3fnuz", 2, group=4),
]


# ---- spec ------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_spec_round_trip_and_geometry(spec: LutSpec) -> None:
    assert spec_mod.from_json(spec.to_json()) == spec
    assert hash(spec) == hash(spec_mod.from_dict(spec.to_dict()))
    assert spec.latency == spec.planes + 2 + spec.stages
    assert spec.macs_per_cycle == spec.lanes * spec.group / spec.planes
    lo, hi = spec.step_range
    assert -(1 << (spec.step_bits - 1)) <= lo and hi < 1 << (spec.step_bits - 1)


def test_spec_names_are_stable() -> None:
    assert LutSpec().name == "lut_int8_w4_g4_sym_l1_s0_n4096"
    assert LutSpec("e4m3fn", "ternary", 8, False, 16, 40, 1).name == "lut_e4m3fn_wt_g8_full_l16_s1_w40"
    assert LutSpec(weight_bits="2") == LutSpec(weight_bits=2)


@pytest.mark.parametrize(
    "kw, needle",
    [
        (dict(act="fp16"), "act=fp16 has 16 bits: allowed 2..8"),
        (dict(act="int32"), "act=int32 has 32 bits: allowed 2..16"),
        (dict(act="pot4"), "act="),
        (dict(weight_bits=5), "weight_bits=5"),
        (dict(weight_bits=0), "1..4"),
        (dict(weight_bits="t"), "'ternary'"),
        (dict(group=1), "group=1"),
        (dict(group=9), "2..8"),
        (dict(lanes=65), "lanes=65"),
        (dict(stages=3), "stages=3"),
        (dict(symmetric=1), "symmetric=1"),
        (dict(acc_bits=8), "acc_bits=8"),
        (dict(max_count=0), "max_count=0"),
    ],
)
def test_spec_rejects_bad_fields(kw: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=None) as err:
        LutSpec(**kw)
    assert needle in str(err.value)


def test_derived_width_is_tight() -> None:
    s = LutSpec("int8", 4, group=4, max_count=16)
    # worst case: 16 steps of 4 * (-128) * (-8) = 4096 -> 65536 needs 18 bits signed
    assert s.width == 18
    s = LutSpec("int8", "ternary", group=8, max_count=1)
    assert s.step_range == (-1024, 1024) and s.width == 12


# ---- golden model ----------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_golden_matches_python_int_dot_products(spec: LutSpec) -> None:
    a, b, first = random_inputs(spec, 4, 60, seed=3)
    raw = golden.run(spec, a=a, b=b, first=first)["acc"]
    got = glut.lane_values(spec, raw).tolist()
    assert got == ref_run(spec, a, b, first)


@pytest.mark.parametrize(
    "spec",
    [
        LutSpec(group=3),
        LutSpec(group=3, symmetric=False),
        LutSpec("int4", 3, group=2),
        LutSpec("int4", "ternary", group=3),
        LutSpec("int4", 1, group=3, symmetric=False),
    ],
    ids=str,
)
def test_golden_every_weight_vector_with_extreme_activations(spec: LutSpec) -> None:
    """Every weight-code vector of a group (so every table entry in every plane) against the
    most negative, largest and mixed activations, single steps and chains."""
    codes = np.array(list(itertools.product(range(1 << spec.weight_code_bits), repeat=spec.group)))
    acts = _extreme_codes(spec)[:2]  # most negative and largest, in every combination
    rng = np.random.default_rng(1)
    a_rows = np.concatenate(
        [
            np.array(list(itertools.product(acts, repeat=spec.group))),
            rng.integers(0, spec.act.num_codes, (2, spec.group)),
        ]
    )
    a = np.broadcast_to(a_rows[:, None, :], (len(a_rows), len(codes), spec.group))
    b = np.broadcast_to(codes[None, :, None, :], (len(a_rows), len(codes), 1, spec.group))
    first = np.ones((len(a_rows), len(codes)), bool)
    first[:, 1::2] = False
    got = glut.lane_values(spec, golden.run(spec, a=a, b=b, first=first)["acc"]).tolist()
    assert got == ref_run(spec, a, b, first)


def test_table_symmetry_and_entries() -> None:
    """The symmetric table stores S(m) for m with bit 0 set; S(~m) = -S(m) covers the rest."""
    spec = LutSpec(group=4)
    x = np.array([3, -7, 11, -128])
    tab = glut.table(spec, x)
    assert tab.shape == (8,)
    for m in range(16):
        s = sum(v if m >> j & 1 else -v for j, v in enumerate(x.tolist()))
        got = tab[(m >> 1)] if m & 1 else -tab[((~m) & 15) >> 1]
        assert got == s
    full = glut.table(LutSpec(group=4, symmetric=False), x)
    assert full.tolist() == [sum(v for j, v in enumerate(x.tolist()) if m >> j & 1) for m in range(16)]


def test_derived_width_never_wraps() -> None:
    spec = LutSpec("int8", 4, group=8, lanes=2, max_count=64)
    a = np.full((1, 64, 8), 0x80)  # -128
    b = np.full((1, 64, 2, 8), 0x8)  # -8
    got = glut.lane_values(spec, golden.run(spec, a=a, b=b, first=np.eye(1, 64, dtype=bool))["acc"])
    assert int(got[0, -1, 0]) == 64 * 8 * 128 * 8


def test_value_and_port_widths() -> None:
    spec = LutSpec("e4m3fn", 2, lanes=3)
    assert golden.port_widths(spec) == {"acc": 3 * spec.width}
    a = np.array([[[0x38, 0x01, 0x7F, 0xB8]]])  # 1.0, 2^-9, NaN (reads 0), -1.0
    b = np.array([[[[1, 1, 1, 1], [3, 0, 0, 1], [2, 2, 2, 2]]]])  # w = 1; -1,0,0,1; -2
    vals = golden.value(spec, golden.run(spec, a=a, b=b, first=[[True]])["acc"])
    assert vals[0, 0].tolist() == [1.0 + 2.0**-9 - 1.0, -1.0 - 1.0, -2.0 * (2.0**-9)]


def test_golden_rejects_bad_shapes_and_codes() -> None:
    spec = LutSpec(lanes=2)
    a = np.zeros((1, 2, 4), np.int64)
    with pytest.raises(ValueError, match="b must have shape"):
        golden.run(spec, a=a, b=np.zeros((1, 2, 4)), first=np.ones((1, 2), bool))
    with pytest.raises(ValueError, match="weight codes"):
        golden.run(spec, a=a, b=np.full((1, 2, 2, 4), 16), first=np.ones((1, 2), bool))
    with pytest.raises(ValueError, match="a must have shape"):
        golden.run(spec, a=np.zeros((1, 2, 3)), b=np.zeros((1, 2, 2, 4)), first=np.ones((1, 2), bool))


@pytest.mark.parametrize(
    "spec",
    [LutSpec("int8", 4, lanes=4), LutSpec("int8", "ternary", group=8, lanes=3), LutSpec("e4m3fn", 2, group=4, lanes=1)],
    ids=str,
)
def test_matmul_equals_float64_of_quantised_operands(spec: LutSpec) -> None:
    """golden.matmul = quantised x @ quantised w, exactly (products and sums fit float64)."""
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(5, 37)), rng.normal(size=(37, 6))
    got = golden.matmul(spec, x, w)
    codes, ws = glut.quantize_weights(spec, w)
    wq = glut.weight_ints(spec, codes) * ws
    amax = np.abs(x).max()
    sx = 2.0 ** np.ceil(np.log2(amax / spec.act.max))
    xq = spec.act.decode(spec.act.encode(x / sx)) * sx
    assert np.array_equal(got, xq @ wq)
    if spec.weight_bits in (4, "ternary"):  # 2-bit max-scaled weights are coarse; only sanity
        assert np.corrcoef(got.ravel(), (x @ w).ravel())[0, 1] > 0.7
