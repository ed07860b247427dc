"""Golden model of the L-Mul MAC (``mult="lmul"``) against the Fraction reference.

Every code pair of e4m3fn, e5m2, e3m2fn, e2m3fn and e2m1fn (and mixed pairs) as a bare
product (fp32 holds every L-Mul product exactly, and so does the Kulisch register), then
multi-lane random chains into fp32 / bf16 / exact accumulators, FTZ, the spec geometry, and
that ``mult="exact"`` is untouched.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from test_lmul_reference import NUM, decode, ref_product, ref_run

from peforge.models import golden
from peforge.spec import MinifloatMacSpec

FORMATS = ["e4m3fn", "e5m2", "e3m2fn", "e2m3fn", "e2m1fn"]
MIXED = [
    ("e4m3fn", "e2m1fn"),
    pytest.param(("e5m2", "e4m3fn"), marks=pytest.mark.slow),
    ("e2m3fn", "e3m2fn"),
    pytest.param(("e3m2fn", "e5m2"), marks=pytest.mark.slow),
]


def _pairs(spec):
    ca, cb = np.meshgrid(np.arange(spec.a.num_codes), np.arange(spec.b.num_codes), indexing="ij")
    return ca.ravel(), cb.ravel()


def _first_step_codes(spec):
    """Golden acc code of every (a, b) pair as the first step of a chain."""
    ca, cb = _pairs(spec)
    out = golden.run(spec, a=ca[:, None], b=cb[:, None], first=np.ones((ca.size, 1), bool))
    return ca, cb, out


@pytest.mark.parametrize("pair", [(f, f) for f in FORMATS] + MIXED, ids="x".join)
def test_every_code_pair_fp32(pair):
    spec = MinifloatMacSpec(*pair, "fp32", mult="lmul")
    ca, cb, out = _first_step_codes(spec)
    got = out["acc"][:, 0].tolist()
    want = [ref_run(spec, [([x], [y], True)])[0][0] for x, y in zip(ca.tolist(), cb.tolist())]
    bad = [(hex(x), hex(y), hex(g), hex(w)) for x, y, g, w in zip(ca.tolist(), cb.tolist(), got, want) if g != w]
    assert not bad, bad[:10]


@pytest.mark.parametrize(
    "pair", [("e4m3fn", "e4m3fn"), ("e5m2", "e5m2"), ("e2m1fn", "e2m1fn"), ("e2m3fn", "e3m2fn")], ids="x".join
)
def test_every_code_pair_exact_accumulator(pair):
    """The Kulisch register holds each L-Mul product exactly (checks product_lsb_exp too)."""
    spec = MinifloatMacSpec(*pair, "exact", mult="lmul", max_count=1)
    ca, cb, out = _first_step_codes(spec)
    w = spec.exact_width
    for x, y, acc in zip(ca.tolist(), cb.tolist(), out["acc"][:, 0].tolist()):
        kind, s, mag = ref_product(spec, x, y)
        v = acc - (1 << w) if acc >> (w - 1) else acc
        want = (-mag if s else mag) if kind == NUM else 0
        assert Fraction(v) * Fraction(2) ** spec.product_lsb_exp == want, (hex(x), hex(y))


@pytest.mark.parametrize(
    "pair",
    [(f, f, True) for f in FORMATS]
    + [(*p, True) for p in MIXED[::2]]
    + [("e4m3fn", "e4m3fn", False), ("e2m1fn", "e3m2fn", False)],
    ids=lambda p: f"{p[0]}x{p[1]}{'' if p[2] else '_ftz'}",
)
def test_product_geometry(pair):
    """Every L-Mul product is a multiple of 2**product_lsb_exp, the smallest hits that bit,
    and the largest has its top bit at product_max_exp (the Kulisch width depends on both)."""
    spec = MinifloatMacSpec(pair[0], pair[1], subnormals=pair[2], mult="lmul")
    unit = Fraction(2) ** spec.product_lsb_exp
    mags = set()
    for x in range(spec.a.num_codes):
        for y in range(spec.b.num_codes):
            kind, _, mag = ref_product(spec, x, y)
            if kind == NUM and mag:
                mags.add(mag)
    assert all((v / unit).denominator == 1 for v in mags)
    assert min(mags) / unit % 2 == 1
    top = max(mags)
    assert Fraction(2) ** spec.product_max_exp <= top < Fraction(2) ** (spec.product_max_exp + 1)


def _random_steps(spec, n: int, seed: int, p_first: float = 0.1):
    rng = random.Random(seed)
    codes = []
    for fmt in (spec.a, spec.b):
        kinds = fmt.classify(np.arange(fmt.num_codes))
        finite = [int(c) for c in np.flatnonzero(kinds == 0)]
        special = [int(c) for c in np.flatnonzero(kinds != 0)]
        codes.append((finite, special))

    def draw(pool):
        finite, special = pool
        return rng.choice(special) if special and rng.random() < 0.005 else rng.choice(finite)

    steps = []
    for i in range(n):
        a = [draw(codes[0]) for _ in range(spec.lanes)]
        b = [draw(codes[1]) for _ in range(spec.lanes)]
        if steps and rng.random() < 0.2:  # negate the previous step: cancellation
            a = [x ^ spec.a.sign_mask for x in steps[-1][0]]
            b = list(steps[-1][1])
        steps.append((a, b, i == 0 or rng.random() < p_first))
    return steps


def _golden(spec, steps):
    a = np.array([[s[0] for s in steps]])
    b = np.array([[s[1] for s in steps]])
    first = np.array([[bool(s[2]) for s in steps]])
    out = golden.run(spec, a=a, b=b, first=first)
    flags = out.get("acc_flags", np.zeros_like(out["acc"]))
    return list(zip((int(x) for x in out["acc"][0]), (int(x) for x in flags[0])))


@pytest.mark.parametrize(
    "spec",
    [
        MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=4, mult="lmul"),
        MinifloatMacSpec("e5m2", "e5m2", "bf16", lanes=16, mult="lmul"),
        MinifloatMacSpec("e2m1fn", "e4m3fn", "fp16", lanes=2, mult="lmul"),
        MinifloatMacSpec("e4m3fn", "e5m2", "exact", lanes=8, max_count=64, mult="lmul"),
        MinifloatMacSpec("e5m2", "e5m2", "exact", lanes=1, mult="lmul"),
        MinifloatMacSpec("e3m2fn", "e2m3fn", "bf16", lanes=3, subnormals=False, mult="lmul"),
        MinifloatMacSpec("e4m3fn", "e4m3fn", "exact", lanes=4, max_count=4, subnormals=False, mult="lmul"),
    ],
    ids=str,
)
def test_random_chains_match_reference(spec):
    steps = _random_steps(spec, 600, seed=len(spec.name))
    assert _golden(spec, steps) == ref_run(spec, steps)


def test_flush_to_zero_flushes_operands_before_lmul():
    spec = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", subnormals=False, mult="lmul")
    out = golden.run(spec, a=np.array([[0x01, 0x81]]), b=np.array([[0x38, 0x38]]), first=np.ones((1, 2), bool))
    assert out["acc"].tolist() == [[0x0, 0x80000000]]  # +0 and -0, not (1 + 1/8) 2**-9


def test_lmul_differs_from_exact_and_exact_is_untouched():
    """The same inputs through mult=exact give the exact product; lmul gives the formula."""
    ex = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32")
    lm = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", mult="lmul")
    a, b = np.array([[0x3C]]), np.array([[0x3C]])  # 1.5 * 1.5
    first = np.ones((1, 1), bool)
    assert golden.value(ex, golden.run(ex, a=a, b=b, first=first)["acc"])[0, 0] == 2.25
    assert golden.value(lm, golden.run(lm, a=a, b=b, first=first)["acc"])[0, 0] == 2.125
    assert ex.name == "mac_e4m3fnxe4m3fn_fp32_l1_s0" and lm.name.endswith("_lmul")


def test_spec_geometry_and_validation():
    s = MinifloatMacSpec("e4m3fn", "e2m1fn", mult="lmul")
    assert s.lmul_frac_bits == 3 and s.lmul_offset_exp == 3
    ex = MinifloatMacSpec("e4m3fn", "e2m1fn")
    assert s.product_lsb_exp == ex.product_lsb_exp - 3
    ftz = MinifloatMacSpec("e4m3fn", "e2m1fn", subnormals=False, mult="lmul")
    assert ftz.product_lsb_exp == (-6) + 0 - 3  # emin_a + emin_b - m: no normalised subnormals
    assert MinifloatMacSpec("e3m4", "e3m4", mult="lmul").lmul_offset_exp == 3
    assert MinifloatMacSpec("e5m10", "e5m10", mult="lmul").lmul_offset_exp == 4
    with pytest.raises(ValueError, match=r"mult='mitchell'.*allowed"):
        MinifloatMacSpec(mult="mitchell")
    # the JSON round trip keeps the option
    from peforge.spec import from_json

    assert from_json(s.to_json()) == s


def test_decode_reference_agrees_with_format_values():
    """The reference's field decoder against the format library (guards the reference)."""
    for name in FORMATS:
        spec = MinifloatMacSpec(name, name, mult="lmul")
        vals = spec.a.values()
        for c in range(spec.a.num_codes):
            kind, s, mag = decode(spec.a, c)
            if kind == NUM:
                assert float(-mag if s else mag) == vals[c]


def test_example_runs_and_respects_the_error_bound(tmp_path):
    """examples/lmul.py end to end on a small sample; its largest e4m3fn product error is the
    formula's worst case (1 + 7/8 + 7/8 + 1/8) / (15/8)**2 - 1 = -18.2 %, never more."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "lmul.py"
    mod_spec = importlib.util.spec_from_file_location("lmul_example", path)
    example = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(example)
    out = tmp_path / "lmul.json"
    assert example.main(["--quick", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    bound = float(1 - Fraction(1 + Fraction(7, 8) * 2 + Fraction(1, 8)) / Fraction(15, 8) ** 2)
    e4m3 = [r for r in data["products"] if r["format"] == "e4m3fn"]
    assert e4m3 and all(r["max"] <= bound + 1e-12 for r in e4m3)
    assert {r["net"] for r in data["networks"]} == {"mlp", "cnn"}
    assert all(0 <= r["accuracy"] <= 1 for r in data["networks"])
